//! POP3 command framing and parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::pop3::parser::{Frame, LineBuffer, parse};

fuzz_target!(|data: &[u8]| {
    let mut buf = LineBuffer::new();
    for chunk in data.chunks(7) {
        buf.extend(chunk);
        loop {
            match buf.next_line(512) {
                Frame::Line(line) => {
                    let _ = parse(&line);
                }
                Frame::Incomplete => break,
                _ => {}
            }
        }
    }
});
