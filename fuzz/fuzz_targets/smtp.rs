//! SMTP input: command lines as the session frames them (bounded), parsed by smtp-proto, and
//! the same bytes through the DATA decoder, whole and split at an arbitrary point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::smtp::parser::{DataDecoder, LineScan, MAX_LINE, scan_line, skip_to_eol};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        match scan_line(rest) {
            LineScan::Line(len, used) => {
                assert!(len <= used && used <= rest.len() && used <= MAX_LINE);
                let mut line = rest[..len].to_vec();
                line.extend_from_slice(b"\r\n");
                let _ = smtp_proto::Request::parse(&mut line.iter());
                rest = &rest[used..];
            }
            LineScan::TooLong(drop) => {
                rest = &rest[drop..];
                let (n, _) = skip_to_eol(rest);
                rest = &rest[n..];
            }
            LineScan::NeedMore => break,
        }
    }
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut whole = DataDecoder::new(1 << 16);
    let (used_whole, done_whole) = whole.feed(data);
    let mut parts = DataDecoder::new(1 << 16);
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
    assert_eq!(whole.into_message(), parts.into_message());
});
