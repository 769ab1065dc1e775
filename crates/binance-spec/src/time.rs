//! UTC time as Binance speaks it: epoch milliseconds.
//!
//! Binance has no time zones in its market data: every open and close time is UTC epoch
//! milliseconds, and the calendar interval `1M` starts on the first day of each month at
//! 00:00 UTC. This module holds the small amount of civil-calendar arithmetic that needs
//! (days ⇄ year/month/day), parsing of the dates people type (`2024-01-01`, RFC 3339) and
//! the one timestamp format the events use (`2024-01-15T10:30:00.000Z`).

use std::fmt;

/// Milliseconds in one second, minute, hour and day.
pub const SECOND_MS: i64 = 1_000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1..=12, day 1..=31) of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Start (00:00 UTC on the 1st) of the month containing `ms`.
pub fn month_start(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    days_from_civil(y, m, 1) * DAY_MS
}

/// `ms` (which must be a month start) moved by `months` calendar months.
pub fn add_months(ms: i64, months: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    let index = y * 12 + i64::from(m) - 1 + months;
    let (ny, nm) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32);
    days_from_civil(ny, nm, 1) * DAY_MS + ms.rem_euclid(DAY_MS)
}

/// Formats epoch milliseconds as `2024-01-15T10:30:00.000Z` (UTC, milliseconds, `Z`).
pub fn format_rfc3339_ms(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    write_rfc3339_ms(&mut s, ms);
    s
}

/// Appends the `format_rfc3339_ms` form of `ms` to `out`.
pub fn write_rfc3339_ms(out: &mut String, ms: i64) {
    use fmt::Write;
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        in_day / HOUR_MS,
        in_day / MINUTE_MS % 60,
        in_day / SECOND_MS % 60,
        in_day % SECOND_MS,
    );
    let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z");
}

/// Why a date or time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date/time '{input}': {reason}; use YYYY-MM-DD or RFC 3339 such as 2024-03-01T00:00:00Z")]
pub struct TimeParseError {
    /// What the user typed.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DDTHH:MM[:SS[.fff…]]` followed by `Z` or a
/// `±HH:MM` offset (RFC 3339; a space may replace the `T`), or a bare integer of epoch
/// milliseconds. Returns UTC epoch milliseconds; sub-millisecond digits are truncated.
pub fn parse_timestamp(input: &str) -> Result<i64, TimeParseError> {
    let fail = |reason| TimeParseError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if !s.is_empty() && s.len() >= 11 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map_err(|_| fail("number out of range"));
    }
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(fail("expected a date like 2024-01-31"));
    }
    let (year, month, day) = match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => (i64::from(y), m, d),
        _ => return Err(fail("expected a date like 2024-01-31")),
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(fail("no such calendar date"));
    }
    let date_ms = days_from_civil(year, month, day) * DAY_MS;
    if b.len() == 10 {
        return Ok(date_ms);
    }
    if b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
        return Err(fail("expected 'T' between date and time"));
    }
    let (h, mi) = match (num(11..13), num(14..16)) {
        (Some(h), Some(mi)) if b.get(13) == Some(&b':') => (h, mi),
        _ => return Err(fail("expected a time like 10:30:00")),
    };
    let mut pos = 16;
    let mut sec = 0;
    let mut millis = 0i64;
    if b.get(pos) == Some(&b':') {
        sec = num(17..19).ok_or_else(|| fail("expected seconds after ':'"))?;
        pos = 19;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos == start {
                return Err(fail("expected digits after '.'"));
            }
            let digits = &s[start..pos.min(start + 3)];
            millis = digits.parse::<i64>().unwrap_or(0) * 10_i64.pow(3 - digits.len() as u32);
        }
    }
    if h > 23 || mi > 59 || sec > 60 {
        return Err(fail("hour, minute or second out of range"));
    }
    let offset_ms = match &s[pos..] {
        "Z" | "z" => 0,
        rest if (rest.starts_with('+') || rest.starts_with('-')) && rest.len() == 6 => {
            let rb = rest.as_bytes();
            let (oh, om) = match (num(pos + 1..pos + 3), num(pos + 4..pos + 6)) {
                (Some(oh), Some(om)) if rb[3] == b':' && oh < 24 && om < 60 => (oh, om),
                _ => return Err(fail("expected an offset like +02:00")),
            };
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (i64::from(oh) * HOUR_MS + i64::from(om) * MINUTE_MS)
        }
        "" => return Err(fail("a time needs a zone: add 'Z' for UTC")),
        _ => return Err(fail("unexpected text after the time")),
    };
    Ok(date_ms
        + i64::from(h) * HOUR_MS
        + i64::from(mi) * MINUTE_MS
        + i64::from(sec.min(59)) * SECOND_MS
        + millis
        - offset_ms)
}

/// Number of days in `month` of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (-146_097 * 2..146_097 * 2).step_by(13) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn formats_like_the_seed() {
        // 2024-01-15T10:30:00.000Z, the seed's example timestamp.
        assert_eq!(format_rfc3339_ms(1_705_314_600_000), "2024-01-15T10:30:00.000Z");
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_ms(1_499_644_799_999), "2017-07-09T23:59:59.999Z");
    }

    #[test]
    fn parses_dates_and_rfc3339() {
        let cases: &[(&str, i64)] = &[
            ("2024-01-01", 1_704_067_200_000),
            ("2024-03-01T00:00:00Z", 1_709_251_200_000),
            ("2024-03-01T00:00Z", 1_709_251_200_000),
            ("2024-03-01 00:00:00Z", 1_709_251_200_000),
            ("2024-03-01T02:00:00+02:00", 1_709_251_200_000),
            ("2024-02-29T23:00:00-01:00", 1_709_251_200_000),
            ("2024-01-15T10:30:00.123Z", 1_705_314_600_123),
            ("2024-01-15T10:30:00.1Z", 1_705_314_600_100),
            ("2024-01-15T10:30:00.123456Z", 1_705_314_600_123),
            ("1705314600123", 1_705_314_600_123),
        ];
        for (input, want) in cases {
            assert_eq!(parse_timestamp(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn rejects_bad_dates_with_the_reason() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2023-02-29",
            "2024-01-01T10:00:00",
            "2024-01-01T25:00:00Z",
            "2024-01-01T10:00:00+2",
            "2024/01/01",
        ] {
            let err = parse_timestamp(bad).unwrap_err();
            assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
        }
    }

    #[test]
    fn months_move_on_the_calendar() {
        let jan = parse_timestamp("2024-01-01").unwrap();
        assert_eq!(add_months(jan, 1), parse_timestamp("2024-02-01").unwrap());
        assert_eq!(add_months(jan, 12), parse_timestamp("2025-01-01").unwrap());
        assert_eq!(add_months(jan, -1), parse_timestamp("2023-12-01").unwrap());
        assert_eq!(
            month_start(parse_timestamp("2024-02-29T13:00:00Z").unwrap()),
            add_months(jan, 1)
        );
    }
}
