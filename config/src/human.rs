//! Durations as people write them and instants as people read them: one spelling for the
//! configuration file, the CLI's options, the CLI's output and the daemon's messages.

/// Whether [`utc`] shows the seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Minutes,
    Seconds,
}

/// The Gregorian calendar repeats every 400 years, which are exactly this many seconds.
const GREGORIAN_CYCLE_SECONDS: u64 = 146_097 * 86_400;

/// Unix seconds as `2024-05-06 07:08 UTC` or `2024-05-06 07:08:09 UTC`, for every `u64`.
pub fn utc(unix_seconds: u64, precision: Precision) -> String {
    // `time` stops at year 9999; whole cycles are added back to the year, so far instants
    // (a lock that saturated at u64::MAX) still print as a date.
    let cycles = unix_seconds / GREGORIAN_CYCLE_SECONDS;
    let within = (unix_seconds % GREGORIAN_CYCLE_SECONDS) as i64;
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(within);
    let year = i128::from(at.year()) + 400 * i128::from(cycles);
    let (month, day, hour, minute) = (u8::from(at.month()), at.day(), at.hour(), at.minute());
    match precision {
        Precision::Minutes => format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC"),
        Precision::Seconds => format!(
            "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{:02} UTC",
            at.second()
        ),
    }
}

/// The units a duration may use. Weeks, months and years (`"1M"` is a month to humantime, `"1m"`
/// a minute) and fractions of a second are refused rather than guessed at.
const UNITS: [&str; 5] = ["s", "m", "min", "h", "d"];

/// A duration in whole seconds: `"45s"`, `"30m"` (or `"30min"`), `"12h"`, `"7d"`, pieces
/// joined like `"1h30m"`, or a plain number of seconds. No spaces, signs or fractions.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!("a duration is like \"45s\", \"30m\", \"12h\", \"7d\" or \"1h30m\", not {text:?}")
    };
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed.parse().map_err(|_| invalid());
    }
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid());
    }
    let mut units = trimmed
        .split(|c: char| c.is_ascii_digit())
        .filter(|unit| !unit.is_empty());
    if let Some(unit) = units.find(|unit| !UNITS.contains(unit)) {
        return Err(format!(
            "{unit:?} in {text:?} is not a unit of duration: use s, m (or min), h or d"
        ));
    }
    let duration = humantime::parse_duration(trimmed).map_err(|_| invalid())?;
    Ok(duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_at_both_precisions() {
        for (unix, seconds, minutes) in [
            (0, "1970-01-01 00:00:00 UTC", "1970-01-01 00:00 UTC"),
            (1, "1970-01-01 00:00:01 UTC", "1970-01-01 00:00 UTC"),
            (
                951_782_400,
                "2000-02-29 00:00:00 UTC",
                "2000-02-29 00:00 UTC",
            ),
            (
                1_700_000_000,
                "2023-11-14 22:13:20 UTC",
                "2023-11-14 22:13 UTC",
            ),
            (
                4_107_542_399,
                "2100-02-28 23:59:59 UTC",
                "2100-02-28 23:59 UTC",
            ),
            (
                4_107_542_400,
                "2100-03-01 00:00:00 UTC",
                "2100-03-01 00:00 UTC",
            ),
            (
                12_622_780_800,
                "2370-01-01 00:00:00 UTC",
                "2370-01-01 00:00 UTC",
            ),
            (
                253_402_300_799,
                "9999-12-31 23:59:59 UTC",
                "9999-12-31 23:59 UTC",
            ),
            (
                253_402_300_800,
                "10000-01-01 00:00:00 UTC",
                "10000-01-01 00:00 UTC",
            ),
            (
                u64::MAX,
                "584554051223-11-09 07:00:15 UTC",
                "584554051223-11-09 07:00 UTC",
            ),
        ] {
            assert_eq!(utc(unix, Precision::Seconds), seconds, "{unix}");
            assert_eq!(utc(unix, Precision::Minutes), minutes, "{unix}");
        }
    }

    #[test]
    fn durations_people_write() {
        for (text, seconds) in [
            ("45s", 45),
            ("90", 90),
            (" 90 ", 90),
            ("0", 0),
            ("0m", 0),
            ("30m", 1800),
            ("5min", 300),
            ("12h", 43_200),
            ("1d", 86_400),
            ("7d", 604_800),
            ("1h30m", 5400),
            ("1d12h", 129_600),
            ("18446744073709551615", u64::MAX),
            ("18446744073709551615s", u64::MAX),
            ("213503982334601d", 213_503_982_334_601 * 86_400),
        ] {
            assert_eq!(parse_duration(text), Ok(seconds), "{text}");
        }
    }

    #[test]
    fn durations_refused() {
        for bad in [
            "",
            " ",
            "h",
            "-1h",
            "+1h",
            "1.5h",
            "1 h",
            "1 hour",
            "1h 30m",
            "99999999999999999999d",
            "18446744073709551616",
            "213503982334602d",
        ] {
            let message = parse_duration(bad).unwrap_err();
            assert!(message.contains("like \"45s\""), "{bad}: {message}");
        }
        for (bad, unit) in [
            ("1w", "w"),
            ("1M", "M"),
            ("1y", "y"),
            ("500ms", "ms"),
            ("1hour", "hour"),
            ("1h30x", "x"),
        ] {
            let message = parse_duration(bad).unwrap_err();
            assert!(
                message.starts_with(&format!("{unit:?} in {bad:?} is not a unit")),
                "{bad}: {message}"
            );
        }
    }
}
