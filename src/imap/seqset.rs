//! Sequence sets (RFC 3501 §9 `sequence-set`) as inclusive ranges, and the few set
//! operations on ascending number lists the commands need.
//!
//! A set is never expanded number by number: `1:4294967295` is one range, and membership of
//! a message is checked against the ranges, so no input makes us allocate per number asked.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// Inclusive ranges with `lo <= hi`, in the order given, with `*` replaced by `star`.
pub fn ranges(set: &SequenceSet, star: u32) -> Vec<(u32, u32)> {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => star,
    };
    set.0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(v) => (value(v), value(v)),
            Sequence::Range(a, b) => {
                let (a, b) = (value(a), value(b));
                (a.min(b), a.max(b))
            }
        })
        .collect()
}

/// Whether `n` lies in any of `ranges`.
pub fn contains(ranges: &[(u32, u32)], n: u32) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= n && n <= hi)
}

/// Formats ascending numbers compactly: `1:3,5,7:8` (UIDPLUS, ESEARCH, VANISHED).
pub fn compact(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&start) = numbers.get(i) {
        let mut end = start;
        let mut j = i + 1;
        while let Some(&next) = numbers.get(j) {
            if Some(next) == end.checked_add(1) {
                end = next;
                j += 1;
            } else {
                break;
            }
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::sequence::SequenceSet;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::try_from(s).expect("valid set")
    }

    #[test]
    fn ranges_replace_star_and_order() {
        assert_eq!(ranges(&set("1:3,7,*"), 9), vec![(1, 3), (7, 7), (9, 9)]);
        assert_eq!(ranges(&set("5:2"), 9), vec![(2, 5)]);
        assert_eq!(ranges(&set("10:*"), 4), vec![(4, 10)]);
        assert!(contains(&ranges(&set("1:4294967295"), 1), 4_000_000_000));
    }

    #[test]
    fn compacts() {
        assert_eq!(compact(&[]), "");
        assert_eq!(compact(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compact(&[u32::MAX]), "4294967295");
    }
}
