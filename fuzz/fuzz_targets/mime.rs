//! The message analysis run at delivery: never panics, and every part's offsets stay inside
//! the message and inside their parent; the envelope and body structure read back as stored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::mime::{BodyPart, EnvelopeRef, analyze, pack_envelope};

fn check(part: &BodyPart, lo: u64, hi: u64) {
    assert!(lo <= part.header_start && part.header_start <= part.body_start);
    assert!(part.body_start <= part.body_end && part.body_end <= hi);
    for child in &part.parts {
        check(child, part.body_start, part.body_end);
    }
    if let Some(inner) = &part.message {
        check(&inner.1, part.body_start, part.body_end);
    }
}

fuzz_target!(|data: &[u8]| {
    let a = analyze(data);
    check(&a.body, 0, data.len() as u64);
    // What the store keeps must read back.
    let json = serde_json::to_string(&a.body).expect("serialise");
    let _: BodyPart = serde_json::from_str(&json).expect("read back");
    let packed = pack_envelope(&a.envelope);
    let back = EnvelopeRef::parse(&packed).expect("packed envelope reads back");
    assert_eq!(back.to_envelope(), a.envelope);
});
