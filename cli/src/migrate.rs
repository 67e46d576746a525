//! Other tools' enrollments, parsed into what the daemon's `ImportEnrollment` takes: the
//! `~/.google_authenticator` file of pam_google_authenticator and the usersfile of pam_oath.
//!
//! Pure functions of the file's text (and, for pam_oath, the time), so every variant is tested
//! without a daemon. Nothing here prints a secret or a line of the file: messages name line
//! numbers only, since these files are read as root and could be anything.

use twofactor_proto::{Algorithm, ImportedEnrollment};
use zeroize::{Zeroize, Zeroizing};

/// Source names the daemon logs.
pub const GOOGLE_AUTHENTICATOR: &str = "google-authenticator";
pub const PAM_OATH: &str = "pam_oath";

/// Fewest secret bits the daemon takes over (old google-authenticator versions made 80-bit
/// secrets); fewer than [`GOOD_SECRET_BITS`] earns a recommendation to re-enroll.
pub const MIN_SECRET_BITS: usize = 80;
pub const GOOD_SECRET_BITS: usize = 128;
/// Largest per-user window the daemon takes (steps either side of now).
pub const MAX_WINDOW: u32 = 10;
/// Periods the daemon takes.
pub const PERIODS: std::ops::RangeInclusive<u32> = 15..=120;
/// Code lengths the daemon takes.
pub const DIGITS: std::ops::RangeInclusive<u32> = 6..=8;

/// An enrollment ready to import, and what did not carry over. The secret and the scratch
/// codes are wiped when it is dropped.
#[derive(Debug)]
pub struct Parsed {
    pub enrollment: ImportedEnrollment,
    /// One sentence each, for people: what changes for the user or the admin.
    pub notes: Vec<String>,
    pub secret_bits: usize,
}

impl Drop for Parsed {
    fn drop(&mut self) {
        self.enrollment.secret_base32.zeroize();
        for code in &mut self.enrollment.scratch_codes {
            code.zeroize();
        }
    }
}

/// Why a file or an entry cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// It is valid but twofactor cannot take it over (HOTP, a period out of range, a short
    /// secret): exit 1.
    Unsupported(String),
    /// It is not what it should be (not base32, an unknown line): exit 2.
    Malformed(String),
}

impl Problem {
    pub fn message(&self) -> &str {
        match self {
            Problem::Unsupported(message) | Problem::Malformed(message) => message,
        }
    }
}

/// RFC 4648 base32 without padding, as the daemon, `oathtool -b` and the apps take it.
fn to_base32(bytes: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, bytes)
}

fn check_secret_bits(bits: usize, notes: &mut Vec<String>) -> Result<(), Problem> {
    if bits < MIN_SECRET_BITS {
        return Err(Problem::Unsupported(format!(
            "the secret has only {bits} bits (at least {MIN_SECRET_BITS} are needed): enroll \
             anew instead"
        )));
    }
    if bits < GOOD_SECRET_BITS {
        notes.push(format!(
            "The secret has {bits} bits, fewer than {GOOD_SECRET_BITS}: it keeps working, but \
             re-enroll later (`twofactor enroll --replace`) for a new 160-bit secret."
        ));
    }
    Ok(())
}

fn number<T: std::str::FromStr>(text: Option<&str>, what: &str, line: usize) -> Result<T, Problem> {
    text.and_then(|text| text.parse().ok())
        .ok_or_else(|| Problem::Malformed(format!("line {line}: {what} is not a number")))
}

/// A `~/.google_authenticator` file.
///
/// The first line is the base32 secret; lines starting with `"` are options; the rest are
/// 8-digit scratch codes. google-authenticator makes only SHA1, 6-digit codes.
pub fn google_authenticator(text: &str) -> Result<Parsed, Problem> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    let secret_line = lines
        .next()
        .map(|(_, line)| line.trim())
        .filter(|line| !line.is_empty())
        .ok_or_else(|| Problem::Malformed("the file is empty".into()))?;
    let not_base32 = || Problem::Malformed("line 1 is not a base32 secret".into());
    let upper = Zeroizing::new(secret_line.to_ascii_uppercase());
    let secret = Zeroizing::new(
        base32::decode(
            base32::Alphabet::Rfc4648 { padding: false },
            upper.trim_end_matches('='),
        )
        .ok_or_else(not_base32)?,
    );
    let secret_bits = secret.len() * 8;
    let mut notes = Vec::new();

    let mut window_size: Option<u32> = None;
    let mut step_size: Option<u32> = None;
    let mut disallow_reuse = false;
    let mut last_step: u64 = 0;
    let mut rate_limit: Option<(u32, u32)> = None;
    let mut hotp = false;
    let mut scratch_codes: Zeroizing<Vec<String>> = Zeroizing::new(Vec::new());
    for (number_of_line, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(option) = line.strip_prefix('"') {
            let mut words = option.split_whitespace();
            let Some(name) = words.next() else {
                continue;
            };
            match name {
                "RATE_LIMIT" => {
                    let logins = number(words.next(), "the RATE_LIMIT count", number_of_line)?;
                    let seconds = number(words.next(), "the RATE_LIMIT interval", number_of_line)?;
                    rate_limit = Some((logins, seconds));
                }
                "WINDOW_SIZE" => {
                    let size: u32 = number(words.next(), "WINDOW_SIZE", number_of_line)?;
                    if !(1..=100).contains(&size) {
                        return Err(Problem::Malformed(format!(
                            "line {number_of_line}: WINDOW_SIZE must be 1 to 100"
                        )));
                    }
                    window_size = Some(size);
                }
                "STEP_SIZE" => {
                    let size: u32 = number(words.next(), "STEP_SIZE", number_of_line)?;
                    step_size = Some(size);
                }
                "DISALLOW_REUSE" => {
                    disallow_reuse = true;
                    for word in words {
                        let step: u64 = number(Some(word), "a used time step", number_of_line)?;
                        last_step = last_step.max(step);
                    }
                }
                "TOTP_AUTH" => {}
                "HOTP_COUNTER" => hotp = true,
                other => {
                    let shown: String = other
                        .chars()
                        .filter(|c| c.is_ascii_uppercase() || *c == '_')
                        .take(32)
                        .collect();
                    notes.push(format!(
                        "The option {shown} (line {number_of_line}) is not known here and \
                         does not carry over."
                    ));
                }
            }
            continue;
        }
        if line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()) {
            scratch_codes.push(line.to_owned());
            continue;
        }
        return Err(Problem::Malformed(format!(
            "line {number_of_line} is neither an option nor an 8-digit scratch code"
        )));
    }
    if hotp {
        return Err(Problem::Unsupported(
            "it is counter-based (HOTP_COUNTER): twofactor supports only time-based codes; \
             enroll the user anew instead"
                .into(),
        ));
    }
    check_secret_bits(secret_bits, &mut notes)?;
    let period = period_of(step_size)?;
    if scratch_codes.len() > 64 {
        return Err(Problem::Malformed("more than 64 scratch codes".into()));
    }

    let size = window_size.unwrap_or(3);
    let mut window = (size - 1) / 2;
    if size == 1 {
        notes.push(
            "WINDOW_SIZE 1 (only the current code) does not carry over: twofactor's configured \
             window ([totp] window) applies."
                .into(),
        );
    } else if window > MAX_WINDOW {
        window = MAX_WINDOW;
        notes.push(format!(
            "WINDOW_SIZE {size} is wider than twofactor allows: {MAX_WINDOW} steps either side \
             are accepted."
        ));
    } else if size.is_multiple_of(2) {
        notes.push(format!(
            "WINDOW_SIZE {size} accepted one more step ahead than behind: twofactor accepts \
             {window} either side."
        ));
    }
    if let Some((logins, seconds)) = rate_limit {
        notes.push(format!(
            "RATE_LIMIT ({logins} logins every {seconds} s) does not carry over: twofactor's \
             delays and lockout ([lockout]) apply instead."
        ));
    }
    if !disallow_reuse {
        notes.push(
            "google-authenticator allowed a code to be used again (no DISALLOW_REUSE): \
             twofactor always refuses a code used before."
                .into(),
        );
    }
    Ok(Parsed {
        enrollment: ImportedEnrollment {
            secret_base32: to_base32(&secret),
            algorithm: Algorithm::Sha1.into(),
            digits: 6,
            period,
            window,
            last_step,
            scratch_codes: std::mem::take(&mut *scratch_codes),
            source: GOOGLE_AUTHENTICATOR.into(),
        },
        notes,
        secret_bits,
    })
}

fn period_of(step_size: Option<u32>) -> Result<u32, Problem> {
    let period = step_size.unwrap_or(30);
    if PERIODS.contains(&period) {
        Ok(period)
    } else {
        Err(Problem::Unsupported(format!(
            "its codes change every {period} s; twofactor supports {} to {} s",
            PERIODS.start(),
            PERIODS.end()
        )))
    }
}

/// One entry (line) of a pam_oath usersfile.
#[derive(Debug)]
pub struct OathEntry {
    /// 1-based line number.
    pub line: usize,
    /// The user name field, when there is one.
    pub user: Option<String>,
    pub parsed: Result<Parsed, Problem>,
}

/// `HOTP/T30/6` → period 30, 6 digits. Event-based types (`HOTP`, `HOTP/E`, `HOTP/E/8`) are
/// `Unsupported`.
fn oath_type(token: &str) -> Result<(u32, u32), Problem> {
    let unknown = || Problem::Malformed(format!("{token:?} is not a pam_oath token type"));
    let rest = token.strip_prefix("HOTP").ok_or_else(unknown)?;
    let mut parts = rest.split('/');
    if parts.next() != Some("") && !rest.is_empty() {
        return Err(unknown());
    }
    let kind = parts.next();
    let digits_of = |text: Option<&str>| -> Result<u32, Problem> {
        match text {
            None => Ok(6),
            Some(text) => text
                .parse()
                .ok()
                .filter(|digits| DIGITS.contains(digits))
                .ok_or_else(unknown),
        }
    };
    let event_based = || {
        Problem::Unsupported(
            "it is event-based (HOTP): twofactor supports only time-based (HOTP/T) entries; \
             enroll the user anew instead"
                .into(),
        )
    };
    match kind {
        None => Err(event_based()),
        Some("E") => {
            digits_of(parts.next())?;
            if parts.next().is_some() {
                return Err(unknown());
            }
            Err(event_based())
        }
        Some(time) if time.starts_with('T') => {
            let period: u32 = time[1..].parse().map_err(|_| unknown())?;
            let digits = digits_of(parts.next())?;
            if parts.next().is_some() {
                return Err(unknown());
            }
            if !PERIODS.contains(&period) {
                return Err(Problem::Unsupported(format!(
                    "its codes change every {period} s; twofactor supports {} to {} s",
                    PERIODS.start(),
                    PERIODS.end()
                )));
            }
            Ok((period, digits))
        }
        Some(_) => Err(unknown()),
    }
}

/// The newest time step within [`MAX_WINDOW`] steps of `now` whose code is `code`.
fn steps_matching(secret: &[u8], period: u32, digits: u32, code: &str, now: u64) -> Option<u64> {
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(u8::try_from(digits).ok()?)
        .with_step_duration(u64::from(period))
        .with_skew(0)
        .with_secret(secret)
        .build_noncompliant();
    let period = u64::from(period);
    let current = now / period;
    let reach = u64::from(MAX_WINDOW);
    (current.saturating_sub(reach)..=current.saturating_add(reach))
        .rev()
        .find(|step| totp.generate(step * period).to_string() == code)
}

/// A pam_oath usersfile: `TYPE USER PIN HEXSECRET [COUNTER [LAST_OTP [TIME]]]` per line.
///
/// Blank lines and `#` comments are left out; every other line becomes an entry. `now` (Unix
/// seconds) places the last code used, when the line records one, so it stays spent.
pub fn oath_usersfile(text: &str, now: u64) -> Vec<OathEntry> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut fields = trimmed.split_whitespace();
        let token = fields.next().unwrap_or_default();
        let user = fields.next().map(str::to_owned);
        let parsed = oath_entry(token, &mut fields, now);
        entries.push(OathEntry {
            line: index + 1,
            user,
            parsed,
        });
    }
    entries
}

fn oath_entry<'a>(
    token: &str,
    fields: &mut impl Iterator<Item = &'a str>,
    now: u64,
) -> Result<Parsed, Problem> {
    let (period, digits) = oath_type(token)?;
    let mut notes = Vec::new();
    let pin = fields
        .next()
        .ok_or_else(|| Problem::Malformed("no PIN field (use - for none)".into()))?;
    match pin {
        "-" | "+" => {}
        _ => notes.push(
            "pam_oath's PIN does not carry over: twofactor asks for the code alone (the login \
             password stays the first factor)."
                .into(),
        ),
    }
    let hex_secret = fields
        .next()
        .ok_or_else(|| Problem::Malformed("no secret field".into()))?;
    let secret = Zeroizing::new(
        hex::decode(hex_secret)
            .map_err(|_| Problem::Malformed("the secret is not hexadecimal".into()))?,
    );
    check_secret_bits(secret.len() * 8, &mut notes)?;
    let _counter = fields.next();
    let mut last_step = 0;
    if let Some(last_code) = fields.next()
        && last_code.len() == digits as usize
        && last_code.bytes().all(|b| b.is_ascii_digit())
        && let Some(step) = steps_matching(&secret, period, digits, last_code, now)
    {
        last_step = step;
        notes.push("The last code used with pam_oath stays spent.".into());
    }
    notes.push(
        "pam_oath's window (window= in the PAM configuration) is not in the usersfile: \
         twofactor's configured window ([totp] window) applies."
            .into(),
    );
    Ok(Parsed {
        enrollment: ImportedEnrollment {
            secret_base32: to_base32(&secret),
            algorithm: Algorithm::Sha1.into(),
            digits,
            period,
            window: 0,
            last_step,
            scratch_codes: Vec::new(),
            source: PAM_OATH.into(),
        },
        notes,
        secret_bits: secret.len() * 8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `google-authenticator -t -D -f -u -w 3 -Q NONE -q -e 5` writes.
    const DEFAULT_FILE: &str = "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" WINDOW_SIZE 3\n\" TOTP_AUTH\n\
                                98522760\n17405866\n55807435\n59029570\n87217154\n";

    /// `-t -d -r 3 -R 30 -w 17 -S 60`, after two logins.
    const TUNED_FILE: &str = "OT2BGW4HU5MNEGNZD55Z45ZAMY\n\" RATE_LIMIT 3 30 1764613500\n\
                              \" WINDOW_SIZE 17\n\" STEP_SIZE 60\n\
                              \" DISALLOW_REUSE 29410224 29410226\n\" TOTP_AUTH\n81718281\n";

    fn problem(result: Result<Parsed, Problem>) -> Problem {
        result.map(|parsed| parsed.notes.clone()).unwrap_err()
    }

    #[test]
    fn a_default_file() {
        let parsed = google_authenticator(DEFAULT_FILE).unwrap();
        let e = &parsed.enrollment;
        assert_eq!(e.secret_base32, "JF6C54BAUUCPKN2XFK3Y5G5LLM");
        assert_eq!(parsed.secret_bits, 128);
        assert_eq!((e.algorithm.as_str(), e.digits, e.period), ("SHA1", 6, 30));
        assert_eq!(e.window, 1);
        assert_eq!(e.last_step, 0);
        assert_eq!(e.scratch_codes.len(), 5);
        assert_eq!(e.scratch_codes[0], "98522760");
        assert_eq!(e.source, "google-authenticator");
        assert_eq!(parsed.notes.len(), 1, "{:?}", parsed.notes);
        assert!(
            parsed.notes[0].contains("no DISALLOW_REUSE"),
            "{:?}",
            parsed.notes
        );
    }

    #[test]
    fn window_step_reuse_and_rate_limit() {
        let parsed = google_authenticator(TUNED_FILE).unwrap();
        let e = &parsed.enrollment;
        assert_eq!(e.window, 8, "(17 - 1) / 2");
        assert_eq!(e.period, 60);
        assert_eq!(e.last_step, 29_410_226, "the newest used step");
        assert_eq!(e.scratch_codes, ["81718281"]);
        assert_eq!(parsed.notes.len(), 1, "{:?}", parsed.notes);
        assert!(parsed.notes[0].starts_with("RATE_LIMIT (3 logins every 30 s)"));
    }

    #[test]
    fn window_sizes() {
        let with = |size: u32| {
            google_authenticator(&format!(
                "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" WINDOW_SIZE {size}\n\" DISALLOW_REUSE\n"
            ))
            .unwrap()
        };
        let one = with(1);
        assert_eq!(one.enrollment.window, 0);
        assert!(one.notes[0].contains("WINDOW_SIZE 1"), "{:?}", one.notes);
        assert_eq!(with(5).enrollment.window, 2);
        assert!(with(5).notes.is_empty());
        let even = with(4);
        assert_eq!(even.enrollment.window, 1);
        assert!(
            even.notes[0].contains("one more step ahead"),
            "{:?}",
            even.notes
        );
        let wide = with(99);
        assert_eq!(wide.enrollment.window, MAX_WINDOW);
        assert!(wide.notes[0].contains("wider"), "{:?}", wide.notes);
        assert!(matches!(
            google_authenticator("JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" WINDOW_SIZE 0\n"),
            Err(Problem::Malformed(_))
        ));
        // No WINDOW_SIZE line: google-authenticator's default of 3.
        let none = google_authenticator("JF6C54BAUUCPKN2XFK3Y5G5LLM\n").unwrap();
        assert_eq!(none.enrollment.window, 1);
        assert!(none.enrollment.scratch_codes.is_empty());
    }

    #[test]
    fn hotp_is_refused() {
        let text = "QWKEADFS63ON7O5DOOSZLMXCRY\n\" WINDOW_SIZE 3\n\" HOTP_COUNTER 1\n20406225\n";
        let refused = problem(google_authenticator(text));
        assert!(matches!(refused, Problem::Unsupported(_)));
        assert!(refused.message().contains("counter-based"), "{refused:?}");
    }

    #[test]
    fn short_and_bad_secrets() {
        // 80 bits, as old versions made: taken over, with advice to re-enroll later.
        let old = google_authenticator("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n").unwrap();
        assert_eq!(old.secret_bits, 80);
        assert!(
            old.notes
                .iter()
                .any(|n| n.contains("80 bits, fewer than 128")),
            "{:?}",
            old.notes
        );
        let odd = google_authenticator("JBSWY3DPEHPK3PXPJBSWY3DP\n").unwrap();
        assert!(
            odd.notes.iter().any(|n| n.contains("has 120 bits")),
            "{:?}",
            odd.notes
        );
        // Lower case is the same key.
        let lower = google_authenticator("jf6c54bauucpkn2xfk3y5g5llm\n").unwrap();
        assert_eq!(lower.enrollment.secret_base32, "JF6C54BAUUCPKN2XFK3Y5G5LLM");
        let short = problem(google_authenticator("JBSWY3DP\n"));
        assert!(matches!(short, Problem::Unsupported(_)), "{short:?}");
        for bad in [
            "",
            "\n",
            "JBSW Y3DP EHPK 3PXP\n",
            "01234567\n",
            "JBSWY3DPEHPK3PX!\n",
        ] {
            assert!(
                matches!(problem(google_authenticator(bad)), Problem::Malformed(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn step_sizes() {
        let fast = problem(google_authenticator(
            "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" STEP_SIZE 10\n",
        ));
        assert!(matches!(fast, Problem::Unsupported(_)), "{fast:?}");
        assert!(matches!(
            problem(google_authenticator(
                "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" STEP_SIZE x\n"
            )),
            Problem::Malformed(_)
        ));
    }

    #[test]
    fn unknown_lines() {
        let odd = problem(google_authenticator(
            "JF6C54BAUUCPKN2XFK3Y5G5LLM\n1234567\n",
        ));
        assert_eq!(
            odd,
            Problem::Malformed("line 2 is neither an option nor an 8-digit scratch code".into())
        );
        // An unknown option is reported, not fatal; the message never quotes the line.
        let parsed = google_authenticator(
            "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" NEW_THING secret-ish\n\" DISALLOW_REUSE\r\n\r\n",
        )
        .unwrap();
        assert_eq!(parsed.notes.len(), 1, "{:?}", parsed.notes);
        assert!(parsed.notes[0].contains("NEW_THING (line 2)"));
        assert!(!parsed.notes[0].contains("secret-ish"));
        assert!(matches!(
            problem(google_authenticator(
                "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" DISALLOW_REUSE 12 x\n"
            )),
            Problem::Malformed(_)
        ));
    }

    const HEX: &str = "3132333435363738393031323334353637383930";

    fn entry(line: &str) -> Result<Parsed, Problem> {
        let mut entries = oath_usersfile(line, 1_800_000_000);
        assert_eq!(entries.len(), 1);
        entries.remove(0).parsed
    }

    #[test]
    fn oath_totp_entries() {
        let parsed = entry(&format!("HOTP/T30/6 alice - {HEX}")).unwrap();
        let e = &parsed.enrollment;
        // RFC 6238's SHA1 seed "12345678901234567890" in base32.
        assert_eq!(e.secret_base32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!((e.digits, e.period, e.window, e.last_step), (6, 30, 0, 0));
        assert!(e.scratch_codes.is_empty());
        assert_eq!(e.source, "pam_oath");
        assert_eq!(parsed.notes.len(), 1, "only the window: {:?}", parsed.notes);

        let e = entry(&format!("HOTP/T60\tbob\t-\t{}", HEX.to_uppercase())).unwrap();
        assert_eq!((e.enrollment.digits, e.enrollment.period), (6, 60));
        let e = entry(&format!("HOTP/T30/8 carol + {HEX}")).unwrap();
        assert_eq!(e.enrollment.digits, 8);
        assert_eq!(e.notes.len(), 1, "+ is not a PIN: {:?}", e.notes);
    }

    #[test]
    fn oath_pins_are_reported() {
        let parsed = entry(&format!("HOTP/T30 alice 1234 {HEX}")).unwrap();
        assert!(
            parsed.notes[0].contains("PIN does not carry over"),
            "{:?}",
            parsed.notes
        );
        assert!(!parsed.notes.iter().any(|n| n.contains("1234")));
    }

    #[test]
    fn oath_event_based_entries_are_refused() {
        for token in ["HOTP", "HOTP/E", "HOTP/E/8"] {
            let refused = problem(entry(&format!("{token} alice - {HEX}")));
            assert!(
                matches!(refused, Problem::Unsupported(_)),
                "{token}: {refused:?}"
            );
            assert!(refused.message().contains("event-based"), "{refused:?}");
        }
        for token in [
            "TOTP",
            "HOTP/X30",
            "HOTP/T30/9",
            "HOTP/T30/6/1",
            "HOTP/T",
            "HOTPX",
        ] {
            assert!(
                matches!(
                    problem(entry(&format!("{token} alice - {HEX}"))),
                    Problem::Malformed(_)
                ),
                "{token}"
            );
        }
        assert!(matches!(
            problem(entry(&format!("HOTP/T5 alice - {HEX}"))),
            Problem::Unsupported(_)
        ));
    }

    #[test]
    fn oath_bad_fields() {
        assert!(matches!(
            problem(entry("HOTP/T30 alice - 31323")),
            Problem::Malformed(_)
        ));
        assert!(matches!(
            problem(entry("HOTP/T30 alice - xyz0")),
            Problem::Malformed(_)
        ));
        assert!(matches!(
            problem(entry("HOTP/T30 alice -")),
            Problem::Malformed(_)
        ));
        assert!(matches!(
            problem(entry("HOTP/T30 alice")),
            Problem::Malformed(_)
        ));
        // 64 bits: too short to take over.
        assert!(matches!(
            problem(entry("HOTP/T30 alice - 3132333435363738")),
            Problem::Unsupported(_)
        ));
        // 80 bits: taken over, with advice to re-enroll later.
        let short = entry("HOTP/T30 alice - 31323334353637383930").unwrap();
        assert!(
            short.notes.iter().any(|n| n.contains("80 bits")),
            "{:?}",
            short.notes
        );
    }

    #[test]
    fn oath_files_keep_line_numbers_and_skip_comments() {
        let text = format!(
            "# users.oath\n\nHOTP/T30 alice - {HEX}\nHOTP bob - {HEX}\n  \nHOTP/T30/6 carol - {HEX} 0\n"
        );
        let entries = oath_usersfile(&text, 0);
        let summary: Vec<(usize, Option<&str>, bool)> = entries
            .iter()
            .map(|e| (e.line, e.user.as_deref(), e.parsed.is_ok()))
            .collect();
        assert_eq!(
            summary,
            [
                (3, Some("alice"), true),
                (4, Some("bob"), false),
                (6, Some("carol"), true)
            ]
        );
    }

    #[test]
    fn oath_the_last_code_used_stays_spent() {
        // RFC 6238 Appendix B: T = 1111111109 gives 07081804 (8 digits, SHA1).
        let now = 1_111_111_109;
        let line = format!("HOTP/T30/8 alice - {HEX} 0 07081804 2005-03-18T01:58:29L");
        let parsed = oath_usersfile(&line, now + 60).remove(0).parsed.unwrap();
        assert_eq!(parsed.enrollment.last_step, now / 30);
        assert!(parsed.notes.iter().any(|n| n.contains("stays spent")));
        // Long ago: nothing near now matches, so nothing is marked.
        let parsed = oath_usersfile(&line, now + 86_400)
            .remove(0)
            .parsed
            .unwrap();
        assert_eq!(parsed.enrollment.last_step, 0);
    }
}
