//! Small text formatting: keys in groups, times, tables.

use twofactor_config::human::{self, Precision};

/// Unix seconds as `2024-05-06 07:08:09 UTC`; `never` for 0.
pub fn time(unix_seconds: u64) -> String {
    if unix_seconds == 0 {
        return "never".into();
    }
    human::utc(unix_seconds, Precision::Seconds)
}

/// Longest lifetime of a temporary code the daemon grants.
pub const MAX_TEMPORARY_CODE_SECONDS: u64 = 86_400;

/// A temporary code's lifetime: more than nothing, at most 24 hours.
pub fn parse_temporary_code_lifetime(text: &str) -> Result<u64, String> {
    match human::parse_duration(text)? {
        0 => Err("a temporary code must last more than 0 s".into()),
        seconds if seconds > MAX_TEMPORARY_CODE_SECONDS => {
            Err("a temporary code lasts at most 24h".into())
        }
        seconds => Ok(seconds),
    }
}

/// Seconds for people: `45 s`, `30 min`, `1 h`, `1 h 30 min`.
pub fn duration(seconds: u64) -> String {
    if seconds < 60 {
        return format!("{seconds} s");
    }
    let minutes = seconds.div_ceil(60);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// `yes` or `no`.
pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// Rows of cells as left-aligned columns separated by two spaces, without trailing blanks.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[column].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            line.trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc() {
        assert_eq!(time(0), "never");
        assert_eq!(time(1), "1970-01-01 00:00:01 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(time(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(time(u64::MAX), "584554051223-11-09 07:00:15 UTC");
    }

    #[test]
    fn durations() {
        for (text, seconds) in [
            ("30m", 1800),
            ("1h", 3600),
            ("24h", 86_400),
            ("90s", 90),
            ("90", 90),
            ("1d", 86_400),
            ("5min", 300),
        ] {
            assert_eq!(human::parse_duration(text), Ok(seconds), "{text}");
        }
        for bad in ["", "h", "1w", "-1h", "1.5h", "1 h", "99999999999999999999d"] {
            assert!(human::parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_temporary_code_lifetime("24h"), Ok(86_400));
        assert!(
            parse_temporary_code_lifetime("25h")
                .unwrap_err()
                .contains("24h")
        );
        assert!(parse_temporary_code_lifetime("0m").is_err());
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(1800), "30 min");
        assert_eq!(duration(3600), "1 h");
        assert_eq!(duration(5400), "1 h 30 min");
        assert_eq!(duration(86_400), "24 h");
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["USER".into(), "ENROLLED".into(), "LAST".into()],
            vec!["alexandra".into(), "yes".into(), "".into()],
        ];
        assert_eq!(table(&rows), "USER       ENROLLED  LAST\nalexandra  yes");
    }
}
