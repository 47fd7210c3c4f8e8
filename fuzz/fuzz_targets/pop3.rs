//! POP3 command framing and parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::pop3::parser::{COMMAND_LIMIT, parse};
use mailroom::wire::line::{Frame, LineBuffer};

fuzz_target!(|data: &[u8]| {
    let mut buf = LineBuffer::new();
    for chunk in data.chunks(7) {
        buf.extend(chunk);
        loop {
            match buf.next_line(COMMAND_LIMIT) {
                Frame::Line(line) => {
                    let _ = parse(&line);
                }
                Frame::Incomplete => break,
                _ => {}
            }
        }
    }
});
