//! The ascending UIDs of a selected mailbox, kept as runs of consecutive UIDs.
//!
//! Every session holds the sequence-number map of its mailbox. As a plain `Vec<u32>` that is
//! 40 KB for a 10,000-message mailbox, per connection: most of what an idle IMAP session cost
//! (1,000 sessions in IDLE on such a mailbox: 46 KiB each). UIDs are handed out in order and
//! only expunges make gaps, so a mailbox is usually a few runs: 12 bytes each.

/// `count` consecutive UIDs from `first`, which are sequence numbers `start + 1 ..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: u32,
    count: u32,
    start: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidMap {
    runs: Vec<Run>,
}

impl UidMap {
    /// From ascending UIDs (out-of-order ones are skipped).
    pub fn from_sorted(uids: impl IntoIterator<Item = u32>) -> UidMap {
        let mut map = UidMap::default();
        for uid in uids {
            map.push(uid);
        }
        map
    }

    pub fn len(&self) -> usize {
        self.runs.last().map_or(0, |r| (r.start + r.count) as usize)
    }

    pub fn last(&self) -> Option<u32> {
        self.runs.last().map(|r| r.first + (r.count - 1))
    }

    /// The UID at 0-based position `index`.
    pub fn get(&self, index: usize) -> Option<u32> {
        let index = u32::try_from(index).ok()?;
        let r = self.runs.partition_point(|r| r.start <= index);
        let run = self.runs.get(r.checked_sub(1)?)?;
        let offset = index - run.start;
        (offset < run.count).then(|| run.first + offset)
    }

    /// Like `slice::binary_search`: `Ok(position)` of `uid`, or `Err(where it would go)`.
    pub fn position(&self, uid: u32) -> Result<usize, usize> {
        let r = self.runs.partition_point(|r| r.first <= uid);
        let Some(run) = r.checked_sub(1).and_then(|i| self.runs.get(i)) else {
            return Err(0);
        };
        let offset = uid - run.first;
        if offset < run.count {
            Ok((run.start + offset) as usize)
        } else {
            Err((run.start + run.count) as usize)
        }
    }

    /// How many UIDs are below `uid`.
    pub fn count_below(&self, uid: u32) -> usize {
        match self.position(uid) {
            Ok(i) | Err(i) => i,
        }
    }

    pub fn contains(&self, uid: u32) -> bool {
        self.position(uid).is_ok()
    }

    /// Adds `uid` at the end; `false` (and nothing added) unless it is above the last.
    pub fn push(&mut self, uid: u32) -> bool {
        match self.runs.last_mut() {
            Some(run) if uid <= run.first + (run.count - 1) => false,
            Some(run) if run.first.checked_add(run.count) == Some(uid) => {
                run.count += 1;
                true
            }
            last => {
                let start = last.map_or(0, |r| r.start + r.count);
                self.runs.push(Run {
                    first: uid,
                    count: 1,
                    start,
                });
                true
            }
        }
    }

    /// Every UID, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        // Runs are never empty; `..=` because a run may end at u32::MAX.
        self.runs
            .iter()
            .flat_map(|r| r.first..=r.first + (r.count - 1))
    }

    /// Drops the UIDs for which `gone` is true.
    pub fn remove_where(&mut self, gone: impl Fn(u32) -> bool) {
        let kept = UidMap::from_sorted(self.iter().filter(|&u| !gone(u)));
        *self = kept;
        self.runs.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation agrees with a plain sorted Vec, over maps with gaps of all kinds.
    #[test]
    fn behaves_like_a_sorted_vec() {
        let shapes: Vec<Vec<u32>> = vec![
            vec![],
            vec![1],
            vec![u32::MAX],
            (1..=100).collect(),
            (1..=100).filter(|u| u % 7 != 0).collect(),
            vec![2, 3, 4, 10, 11, 40, u32::MAX - 1, u32::MAX],
            (1..=50).map(|u| u * 2).collect(),
        ];
        for uids in shapes {
            let map = UidMap::from_sorted(uids.iter().copied());
            assert_eq!(map.len(), uids.len());
            assert_eq!(map.last(), uids.last().copied());
            assert_eq!(map.iter().collect::<Vec<_>>(), uids);
            for i in 0..uids.len() + 2 {
                assert_eq!(map.get(i), uids.get(i).copied(), "get {i} of {uids:?}");
            }
            let probes = [0, 1, 2, 5, 9, 10, 12, 99, 100, 101, u32::MAX - 1, u32::MAX];
            for uid in probes.into_iter().chain(uids.iter().copied()) {
                assert_eq!(map.position(uid), uids.binary_search(&uid), "{uid}");
                assert_eq!(map.count_below(uid), uids.partition_point(|&u| u < uid));
            }
            let mut removed = map.clone();
            removed.remove_where(|u| u % 3 == 0);
            let expect: Vec<u32> = uids.iter().copied().filter(|u| u % 3 != 0).collect();
            assert_eq!(removed.iter().collect::<Vec<_>>(), expect);
            assert_eq!(removed, UidMap::from_sorted(expect));
        }
    }

    #[test]
    fn push_only_appends() {
        let mut map = UidMap::from_sorted([5, 6]);
        assert!(!map.push(6));
        assert!(!map.push(3));
        assert!(map.push(7));
        assert!(map.push(9));
        assert_eq!(map.iter().collect::<Vec<_>>(), [5, 6, 7, 9]);
        assert_eq!(map.runs.len(), 2);
        // A contiguous 10,000-message mailbox is one run.
        assert_eq!(UidMap::from_sorted(1..=10_000).runs.len(), 1);
    }
}
