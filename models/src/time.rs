//! Timestamps as microseconds since the Unix epoch (UTC): civil-date
//! arithmetic, parsing the ISO 8601 forms configs and extracts use, and
//! formatting them back. Shared by the artifact (creation time), the
//! extract builder and the data generator.

/// Microseconds in a day.
pub const DAY_US: i64 = 86_400_000_000;
/// Microseconds in an hour.
pub const HOUR_US: i64 = 3_600_000_000;
/// Microseconds in a minute.
pub const MINUTE_US: i64 = 60_000_000;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn number(text: &str, digits: usize) -> Option<i64> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Parses `YYYY-MM-DD`, or that followed by `T` or a space and
/// `HH:MM[:SS[.ffffff]]`, optionally ending in `Z`. Times are UTC.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.find(['T', ' ']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year = number(parts.next()?, 4)?;
    let month = number(parts.next()?, 2)?;
    let day = number(parts.next()?, 2)?;
    if parts.next().is_some()
        || !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
    {
        return None;
    }
    let mut micros = days_from_civil(year, month, day) * DAY_US;
    if let Some(time) = time {
        let (hms, fraction) = match time.split_once('.') {
            Some((hms, f)) => (hms, Some(f)),
            None => (time, None),
        };
        let mut fields = hms.split(':');
        let hour = number(fields.next()?, 2)?;
        let minute = number(fields.next()?, 2)?;
        let second = match fields.next() {
            Some(s) => number(s, 2)?,
            None if fraction.is_none() => 0,
            None => return None,
        };
        if fields.next().is_some() || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        micros += hour * HOUR_US + minute * MINUTE_US + second * 1_000_000;
        if let Some(f) = fraction {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{f:0<6}");
            micros += padded[..6].parse::<i64>().ok()?;
        }
    }
    Some(micros)
}

/// Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`
/// (sub-second digits only when present).
pub fn format_timestamp(micros: i64) -> String {
    let days = micros.div_euclid(DAY_US);
    let rest = micros.rem_euclid(DAY_US);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, us) = (
        rest / HOUR_US,
        rest % HOUR_US / MINUTE_US,
        rest % MINUTE_US / 1_000_000,
        rest % 1_000_000,
    );
    if us == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{us:06}Z")
    }
}

/// Days as microseconds (rounded to the microsecond).
pub fn days_to_us(days: f64) -> i64 {
    (days * DAY_US as f64).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_times() {
        assert_eq!(parse_timestamp("1970-01-01"), Some(0));
        assert_eq!(parse_timestamp("1970-01-02"), Some(DAY_US));
        assert_eq!(
            parse_timestamp("2024-02-29T12:30:15Z"),
            Some(19_782 * DAY_US + 12 * HOUR_US + 30 * MINUTE_US + 15_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-29 12:30"),
            parse_timestamp("2024-02-29T12:30:00")
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:30:15.25"),
            Some(parse_timestamp("2024-02-29T12:30:15").unwrap() + 250_000)
        );
        assert_eq!(parse_timestamp("1969-12-31T23:59:59"), Some(-1_000_000));
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "24-01-01",
            "2024-1-01",
            "2024-01-01T25:00",
            "2024-01-01T10",
            "yesterday",
            "2024-01-01T10:00:00+02:00",
            "2024-01-01T10:00:00.",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T12:30:15Z",
            "1999-12-31T23:59:59.000001Z",
        ] {
            assert_eq!(format_timestamp(parse_timestamp(text).unwrap()), text);
        }
    }
}
