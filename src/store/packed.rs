//! Message rows packed by SQLite into one text, for reads of every message of a mailbox
//! (SELECT's flag snapshot, FETCH of metadata): sqlx hands rows over one thread switch at a
//! time, which cost more than SQLite took to read them (SELECT on 10,000 messages: 18 ms as
//! rows). A statement packs each row as a line of numbers and then the keywords, all separated
//! by spaces (`group_concat(a || ' ' || b || … || ' ' || keywords, char(10))`; keywords are
//! atoms, so no line holds a line feed), and [`lines`] reads them back.
//!
//! The statements leave out the aggregate's `ORDER BY`: SQLite sorts for it through a
//! temporary b-tree whatever the index gives (a third of `UID FETCH 1:* (FLAGS)` on 100,000
//! messages), so the rows come in the index's order and the callers sort by UID, which costs
//! one pass over rows already in order.

use super::{Result, StoreError};

/// The lines of `packed`: each one's `N` leading numbers and the rest (its keywords), or
/// `StoreError::Corrupt` naming `what` for a line that does not start with `N` numbers.
pub(super) fn lines<'a, const N: usize>(
    packed: Option<&'a str>,
    what: &'a str,
) -> impl Iterator<Item = Result<([i64; N], &'a str)>> + 'a {
    packed
        .unwrap_or_default()
        .split('\n')
        .filter(|line| !line.is_empty())
        .map(move |line| {
            let corrupt = || StoreError::Corrupt(format!("{what}: {line:?}"));
            let mut numbers = [0i64; N];
            let mut rest = line;
            for number in &mut numbers {
                let (field, after) = rest.split_once(' ').unwrap_or((rest, ""));
                *number = field.parse().map_err(|_| corrupt())?;
                rest = after;
            }
            Ok((numbers, rest))
        })
}

/// Keywords as a line holds them (separated by spaces).
pub(super) fn keywords(rest: &str) -> Vec<String> {
    rest.split(' ')
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{keywords, lines};

    #[test]
    fn numbers_then_keywords() {
        let packed = "3 1 9 $Junk Work\n1 0 7 \n\n2 4 8";
        let read: Vec<([i64; 3], &str)> = lines::<3>(Some(packed), "t")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            read,
            vec![([3, 1, 9], "$Junk Work"), ([1, 0, 7], ""), ([2, 4, 8], "")]
        );
        assert_eq!(keywords("$Junk Work"), vec!["$Junk", "Work"]);
        assert!(keywords("").is_empty());
        assert_eq!(lines::<2>(None, "t").count(), 0);
        assert!(lines::<3>(Some("1 x 3"), "t").next().unwrap().is_err());
        assert!(lines::<3>(Some("1 2"), "t").next().unwrap().is_err());
    }
}
