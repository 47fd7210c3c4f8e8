//! SMTP input: command lines as the session frames them (bounded), parsed by smtp-proto, and
//! the same bytes through the DATA decoder, whole and split at an arbitrary point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::budget::Budget;
use mailroom::smtp::parser::{DataDecoder, LINE_LIMIT, MAX_LINE, MessageBuffer, mail_size_param};
use mailroom::wire::line::{Frame, LineBuffer};

fuzz_target!(|data: &[u8]| {
    let mut lines = LineBuffer::new();
    for chunk in data.chunks(7) {
        lines.extend(chunk);
        loop {
            match lines.next_line(LINE_LIMIT) {
                Frame::Line(mut line) => {
                    assert!(line.len() < MAX_LINE);
                    let _ = mail_size_param(&line);
                    line.extend_from_slice(b"\r\n");
                    let _ = smtp_proto::Request::parse(&mut line.iter());
                }
                Frame::TooLong => {}
                Frame::Incomplete => break,
            }
        }
        assert!(lines.pending().len() <= MAX_LINE + 7, "bounded");
    }
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    // A budget smaller than the size limit, so both ways of dropping a message are reached.
    let client = std::net::IpAddr::from([192, 0, 2, 1]);
    let budget = Budget::new(1 << 15, 1 << 15);
    let mut whole = DataDecoder::new(MessageBuffer::new(1 << 17, budget.claim(client)));
    let (used_whole, done_whole) = whole.feed(data);
    let other = Budget::new(1 << 15, 1 << 15);
    let mut parts = DataDecoder::new(MessageBuffer::new(1 << 17, other.claim(client)));
    let (a, done_a) = parts.feed(&data[..split]);
    let (used_parts, done_parts) = if done_a {
        (a, true)
    } else {
        let (b, done_b) = parts.feed(&data[split..]);
        (a + b, done_b)
    };
    assert_eq!(
        (used_whole, done_whole),
        (used_parts, done_parts),
        "chunking changes nothing"
    );
    let (whole, parts) = (whole.finish(), parts.finish());
    assert_eq!(whole.size(), parts.size());
    match (whole.finish(), parts.finish()) {
        (Ok((a, _)), Ok((b, _))) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("one kept, one dropped: {:?} {:?}", a.is_ok(), b.is_ok()),
    }
    assert_eq!(budget.used(), 0, "claims given back");
});
