//! The "date" extension's pieces (RFC 5260): time zones written `+hhmm`, reading a header's
//! RFC 5322 date, and the date parts (`year`, `julian`, `std11`, …) as strings.

use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

/// `+hhmm` / `-hhmm` as an offset (hours up to 23... RFC 5260 allows any two-digit hour, but
/// real zones stay within ±14 h, and `time` accepts up to ±25:59).
pub(crate) fn parse_zone(zone: &str) -> Option<UtcOffset> {
    let bytes = zone.as_bytes();
    let (sign, digits) = match bytes.split_first()? {
        (b'+', d) => (1, d),
        (b'-', d) => (-1, d),
        _ => return None,
    };
    if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hours: i8 = std::str::from_utf8(digits.get(..2)?).ok()?.parse().ok()?;
    let minutes: i8 = std::str::from_utf8(digits.get(2..)?).ok()?.parse().ok()?;
    if minutes > 59 {
        return None;
    }
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

/// A header's date (RFC 5322 `date-time`, leniently as mail-parser reads it), in its own zone.
pub(crate) fn parse_header_date(value: &str) -> Option<OffsetDateTime> {
    let d = mail_parser::DateTime::parse_rfc822(value)?;
    let date =
        Date::from_calendar_date(i32::from(d.year), Month::try_from(d.month).ok()?, d.day).ok()?;
    let time = Time::from_hms(d.hour, d.minute, d.second).ok()?;
    let sign: i8 = if d.tz_before_gmt { -1 } else { 1 };
    let offset = UtcOffset::from_hms(
        sign * i8::try_from(d.tz_hour).ok()?,
        sign * i8::try_from(d.tz_minute).ok()?,
        0,
    )
    .ok()?;
    Some(date.with_time(time).assume_offset(offset))
}

/// `dt` moved to `offset`, unless that is out of range.
pub(crate) fn to_offset(dt: OffsetDateTime, offset: UtcOffset) -> OffsetDateTime {
    dt.checked_to_offset(offset).unwrap_or(dt)
}

fn zone_text(offset: UtcOffset, colon: bool) -> String {
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    if colon {
        format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
    } else {
        format!("{sign}{:02}{:02}", h.unsigned_abs(), m.unsigned_abs())
    }
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The date part `part` (lower case; RFC 5260 §4.2 lists them) of `dt`, or None for a part
/// not in the list (the test then matches nothing).
pub(crate) fn part(dt: OffsetDateTime, part: &str) -> Option<String> {
    let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
    let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
    let weekday = dt.weekday().number_days_from_sunday();
    Some(match part {
        "year" => format!("{y:04}"),
        "month" => format!("{mo:02}"),
        "day" => format!("{d:02}"),
        "date" => format!("{y:04}-{mo:02}-{d:02}"),
        // Modified Julian Day: days since 1858-11-17 (RFC 5260 §4.2).
        "julian" => (i64::from(dt.date().to_julian_day()) - 2_400_001).to_string(),
        "hour" => format!("{h:02}"),
        "minute" => format!("{mi:02}"),
        "second" => format!("{s:02}"),
        "time" => format!("{h:02}:{mi:02}:{s:02}"),
        // RFC 3339 form; UTC as "Z", as Pigeonhole writes it.
        "iso8601" => format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}",
            if dt.offset().is_utc() {
                "Z".to_string()
            } else {
                zone_text(dt.offset(), true)
            }
        ),
        "std11" => format!(
            "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} {}",
            DAYS.get(usize::from(weekday)).copied().unwrap_or("Sun"),
            MONTHS
                .get(usize::from(mo).saturating_sub(1))
                .copied()
                .unwrap_or("Jan"),
            zone_text(dt.offset(), false)
        ),
        "zone" => zone_text(dt.offset(), false),
        "weekday" => weekday.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_header_date() {
        let dt = parse_header_date("Fri, 13 Feb 2009 23:31:30 +0100").unwrap();
        assert_eq!(part(dt, "year").unwrap(), "2009");
        assert_eq!(part(dt, "date").unwrap(), "2009-02-13");
        assert_eq!(part(dt, "time").unwrap(), "23:31:30");
        assert_eq!(part(dt, "zone").unwrap(), "+0100");
        assert_eq!(part(dt, "weekday").unwrap(), "5");
        assert_eq!(part(dt, "julian").unwrap(), "54875");
        assert_eq!(part(dt, "iso8601").unwrap(), "2009-02-13T23:31:30+01:00");
        assert_eq!(
            part(dt, "std11").unwrap(),
            "Fri, 13 Feb 2009 23:31:30 +0100"
        );
        let utc = to_offset(dt, parse_zone("-0000").unwrap());
        assert_eq!(part(utc, "hour").unwrap(), "22");
        assert_eq!(part(utc, "iso8601").unwrap(), "2009-02-13T22:31:30Z");
        assert!(parse_zone("0100").is_none());
        assert!(parse_zone("+01:00").is_none());
        assert!(parse_zone("+0160").is_none());
    }
}
