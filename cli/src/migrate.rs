//! Other tools' enrollments, parsed into what the daemon's `ImportEnrollment` takes: the
//! `~/.google_authenticator` file of pam_google_authenticator and the usersfile of pam_oath.
//!
//! Pure functions of the file's text, so every variant is tested without a daemon. Nothing here prints a secret or a line of the file: messages name line
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
        self.enrollment.last_code.zeroize();
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
            last_code: String::new(),
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

/// A pam_oath usersfile: `TYPE USER PIN HEXSECRET [COUNTER [LAST_OTP [TIME]]]` per line.
///
/// Blank lines and `#` comments are left out; every other line becomes an entry. The last code
/// used, when a line records one, goes to the daemon, which keeps its step spent.
pub fn oath_usersfile(text: &str) -> Vec<OathEntry> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut fields = trimmed.split_whitespace();
        let token = fields.next().unwrap_or_default();
        let user = fields.next().map(str::to_owned);
        let parsed = oath_entry(token, &mut fields);
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
    // liboath writes a placeholder until the first login: only a well-formed code is passed on.
    let last_code = fields
        .next()
        .filter(|code| code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_default()
        .to_owned();
    if !last_code.is_empty() {
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
            last_step: 0,
            scratch_codes: Vec::new(),
            source: PAM_OATH.into(),
            last_code,
        },
        notes,
        secret_bits: secret.len() * 8,
    })
}

#[cfg(test)]
#[path = "migrate/tests.rs"]
mod tests;
