//! The module arguments from the pam.d line, e.g.
//! `auth required pam_twofactor.so timeout=5 [prompt=Code from your phone: ]`.
//!
//! Parsing never fails: a bad or unknown argument is reported as a warning (which the caller
//! logs) and otherwise ignored, so a typo cannot lock everybody out, and cannot open anything
//! either: every default is the strict choice.

use std::time::Duration;

/// Deadline of one daemon call when `timeout=` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest accepted `timeout=`.
pub const MIN_TIMEOUT_SECS: u64 = 1;
/// Longest accepted `timeout=`.
pub const MAX_TIMEOUT_SECS: u64 = 60;
/// Codes one login may try when `tries=` is not given.
pub const DEFAULT_TRIES: u32 = 3;
/// Accepted range of `tries=`.
pub const MIN_TRIES: u32 = 1;
pub const MAX_TRIES: u32 = 10;

/// Where the code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodeSource {
    /// Ask with the code prompt (the default).
    #[default]
    Prompt,
    /// `use_first_pass`: take the code from `PAM_AUTHTOK`; never prompt.
    UseFirstPass,
    /// `try_first_pass`: take the code from `PAM_AUTHTOK` if it holds one, else prompt.
    TryFirstPass,
    /// `forward_pass`: one prompt for password and code; the password goes on in `PAM_AUTHTOK`.
    ForwardPass,
}

/// What to do when the daemon cannot be reached at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unavailable {
    /// `PAM_AUTHINFO_UNAVAIL` (the default).
    #[default]
    Fail,
    /// `unavailable=ignore`: `PAM_IGNORE` when the bus or the daemon is absent. Dangerous:
    /// stopping the daemon then turns the second factor off.
    Ignore,
}

/// The parsed module arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `debug`: log each step (never a code or a password).
    pub debug: bool,
    /// `echo_code`: show the code while it is typed.
    pub echo_code: bool,
    /// `prompt=TEXT`: the code prompt.
    pub prompt: Option<String>,
    pub code_source: CodeSource,
    pub unavailable: Unavailable,
    /// `timeout=SECONDS`: deadline for each daemon call, connecting and (at the first call)
    /// the owner check included (clamped to 1..=60).
    pub timeout: Duration,
    /// `bus_address=ADDR`: talk to this bus instead of the system bus (for tests).
    pub bus_address: Option<String>,
    /// `enroll_at_login`: this stack may enroll users inside the login when the daemon says
    /// so. Only on stacks where the first factor has already succeeded when the module runs
    /// (a `requisite` password module, or sshd's `publickey,keyboard-interactive`): with a
    /// `required` one, PAM goes on after a wrong password and anyone could bind a device.
    pub enroll_at_login: bool,
    /// `require_publickey` (sshd only): refuse every login on which sshd reports no
    /// `publickey` success in `SSH_AUTH_INFO_0`, and answer `PAM_SUCCESS` rather than
    /// `PAM_IGNORE` to an exempt user whose key succeeded, so the module can stand alone.
    pub require_publickey: bool,
    /// `tries=N`: after a rejected code, ask again (without the password), up to N codes in
    /// all (clamped to 1..=10). Each is its own `Verify` and counts toward the daemon's
    /// throttling. One try with `use_first_pass` and `forward_pass`.
    pub tries: u32,
    /// `prompt_after_notices` (sshd): when a login that succeeds (or that two-factor skips)
    /// leaves messages after its last prompt, end with one more prompt, "Press Enter to
    /// continue", so that they are shown once: sshd prints messages after the last prompt
    /// twice in an interactive session (as a banner, then again in the session).
    pub prompt_after_notices: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            debug: false,
            echo_code: false,
            prompt: None,
            code_source: CodeSource::Prompt,
            unavailable: Unavailable::Fail,
            timeout: DEFAULT_TIMEOUT,
            bus_address: None,
            enroll_at_login: false,
            require_publickey: false,
            tries: DEFAULT_TRIES,
            prompt_after_notices: false,
        }
    }
}

/// Parses the module arguments. Returns them with the warnings to log.
pub fn parse<I, S>(raw: I) -> (Args, Vec<String>)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut args = Args::default();
    let mut warnings = Vec::new();
    let mut use_first_pass = false;
    let mut try_first_pass = false;
    let mut forward_pass = false;

    for item in raw {
        let item = item.as_ref();
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (item, None),
        };
        match (key, value) {
            ("debug", None) => args.debug = true,
            ("echo_code", None) => args.echo_code = true,
            ("use_first_pass", None) => use_first_pass = true,
            ("try_first_pass", None) => try_first_pass = true,
            ("forward_pass", None) => forward_pass = true,
            ("enroll_at_login", None) => args.enroll_at_login = true,
            ("require_publickey", None) => args.require_publickey = true,
            ("prompt_after_notices", None) => args.prompt_after_notices = true,
            ("prompt", Some("")) => warnings.push("empty prompt= ignored".to_owned()),
            ("prompt", Some(text)) => args.prompt = Some(text.to_owned()),
            ("unavailable", Some("ignore")) => args.unavailable = Unavailable::Ignore,
            ("unavailable", Some("fail")) => args.unavailable = Unavailable::Fail,
            ("timeout", Some(text)) => match parse_timeout(text) {
                Ok((timeout, None)) => args.timeout = timeout,
                Ok((timeout, Some(warning))) => {
                    args.timeout = timeout;
                    warnings.push(warning);
                }
                Err(warning) => warnings.push(warning),
            },
            ("tries", Some(text)) => match parse_tries(text) {
                Ok((tries, warning)) => {
                    args.tries = tries;
                    warnings.extend(warning);
                }
                Err(warning) => warnings.push(warning),
            },
            ("bus_address", Some("")) => warnings.push("empty bus_address= ignored".to_owned()),
            ("bus_address", Some(address)) => args.bus_address = Some(address.to_owned()),
            _ => warnings.push(format!("unknown argument {item:?} ignored")),
        }
    }

    // The strictest source wins: never prompt beats maybe prompt beats the combined prompt.
    let given = [use_first_pass, try_first_pass, forward_pass]
        .iter()
        .filter(|given| **given)
        .count();
    args.code_source = if use_first_pass {
        CodeSource::UseFirstPass
    } else if try_first_pass {
        CodeSource::TryFirstPass
    } else if forward_pass {
        CodeSource::ForwardPass
    } else {
        CodeSource::Prompt
    };
    if given > 1 {
        warnings.push(format!(
            "use_first_pass, try_first_pass and forward_pass exclude each other; using {:?}",
            args.code_source
        ));
    }
    if args.code_source == CodeSource::ForwardPass && args.echo_code {
        warnings.push("echo_code ignored with forward_pass: the answer holds a password".into());
    }

    (args, warnings)
}

/// `timeout=` in whole seconds, clamped into range (with a warning when clamped).
fn parse_timeout(text: &str) -> Result<(Duration, Option<String>), String> {
    let seconds: u64 = text
        .parse()
        .map_err(|_| format!("timeout={text:?} is not a number of seconds; using the default"))?;
    let clamped = seconds.clamp(MIN_TIMEOUT_SECS, MAX_TIMEOUT_SECS);
    let warning = (clamped != seconds).then(|| {
        format!("timeout={seconds} out of range {MIN_TIMEOUT_SECS}..={MAX_TIMEOUT_SECS}; using {clamped}")
    });
    Ok((Duration::from_secs(clamped), warning))
}

/// `tries=` as a whole number, clamped into range (with a warning when clamped).
fn parse_tries(text: &str) -> Result<(u32, Option<String>), String> {
    let tries: u64 = text
        .parse()
        .map_err(|_| format!("tries={text:?} is not a whole number; using {DEFAULT_TRIES}"))?;
    let clamped = tries.clamp(u64::from(MIN_TRIES), u64::from(MAX_TRIES));
    let warning = (clamped != tries)
        .then(|| format!("tries={tries} out of range {MIN_TRIES}..={MAX_TRIES}; using {clamped}"));
    Ok((u32::try_from(clamped).unwrap_or(DEFAULT_TRIES), warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &[&str]) -> (Args, Vec<String>) {
        parse(raw.iter().copied())
    }

    #[test]
    fn defaults_are_strict() {
        let (args, warnings) = parsed(&[]);
        assert_eq!(args, Args::default());
        assert!(warnings.is_empty());
        assert_eq!(args.code_source, CodeSource::Prompt);
        assert_eq!(args.unavailable, Unavailable::Fail);
        assert_eq!(args.timeout, Duration::from_secs(10));
        assert!(!args.echo_code && !args.debug);
        assert_eq!(args.prompt, None);
        assert_eq!(args.bus_address, None);
    }

    #[test]
    fn every_argument() {
        let (args, warnings) = parsed(&[
            "debug",
            "echo_code",
            "prompt=Code from your phone: ",
            "timeout=5",
            "unavailable=ignore",
            "bus_address=unix:path=/tmp/x/bus.sock",
            "enroll_at_login",
            "require_publickey",
            "tries=5",
            "prompt_after_notices",
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            args,
            Args {
                debug: true,
                echo_code: true,
                prompt: Some("Code from your phone: ".into()),
                code_source: CodeSource::Prompt,
                unavailable: Unavailable::Ignore,
                timeout: Duration::from_secs(5),
                bus_address: Some("unix:path=/tmp/x/bus.sock".into()),
                enroll_at_login: true,
                require_publickey: true,
                tries: 5,
                prompt_after_notices: true,
            }
        );
        assert!(
            !Args::default().enroll_at_login,
            "off unless the stack says so"
        );
    }

    #[test]
    fn code_sources() {
        for (raw, expected) in [
            ("use_first_pass", CodeSource::UseFirstPass),
            ("try_first_pass", CodeSource::TryFirstPass),
            ("forward_pass", CodeSource::ForwardPass),
        ] {
            let (args, warnings) = parsed(&[raw]);
            assert_eq!(args.code_source, expected, "{raw}");
            assert!(warnings.is_empty());
        }
    }

    #[test]
    fn conflicting_code_sources_take_the_strictest_and_warn() {
        let (args, warnings) = parsed(&["forward_pass", "try_first_pass"]);
        assert_eq!(args.code_source, CodeSource::TryFirstPass);
        assert_eq!(warnings.len(), 1);
        let (args, _) = parsed(&["forward_pass", "try_first_pass", "use_first_pass"]);
        assert_eq!(args.code_source, CodeSource::UseFirstPass);
    }

    #[test]
    fn echo_code_is_refused_for_a_password() {
        let (args, warnings) = parsed(&["forward_pass", "echo_code"]);
        assert_eq!(args.code_source, CodeSource::ForwardPass);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn timeout_is_clamped() {
        for (raw, seconds, warns) in [
            ("timeout=0", 1, true),
            ("timeout=1", 1, false),
            ("timeout=60", 60, false),
            ("timeout=61", 60, true),
            ("timeout=99999999999999999", 60, true),
        ] {
            let (args, warnings) = parsed(&[raw]);
            assert_eq!(args.timeout, Duration::from_secs(seconds), "{raw}");
            assert_eq!(!warnings.is_empty(), warns, "{raw}: {warnings:?}");
        }
    }

    #[test]
    fn tries_are_clamped() {
        assert_eq!(Args::default().tries, 3);
        for (raw, tries, warns) in [
            ("tries=0", 1, true),
            ("tries=1", 1, false),
            ("tries=10", 10, false),
            ("tries=11", 10, true),
            ("tries=99999999999999999", 10, true),
        ] {
            let (args, warnings) = parsed(&[raw]);
            assert_eq!(args.tries, tries, "{raw}");
            assert_eq!(!warnings.is_empty(), warns, "{raw}: {warnings:?}");
        }
        for raw in [
            "tries=",
            "tries=-1",
            "tries=two",
            "tries=99999999999999999999",
        ] {
            let (args, warnings) = parsed(&[raw]);
            assert_eq!(args.tries, DEFAULT_TRIES, "{raw}");
            assert_eq!(warnings.len(), 1, "{raw}");
        }
    }

    #[test]
    fn bad_timeout_keeps_the_default() {
        for raw in [
            "timeout=",
            "timeout=-1",
            "timeout=1.5",
            "timeout=ten",
            "timeout=99999999999999999999",
        ] {
            let (args, warnings) = parsed(&[raw]);
            assert_eq!(args.timeout, DEFAULT_TIMEOUT, "{raw}");
            assert_eq!(warnings.len(), 1, "{raw}");
        }
    }

    #[test]
    fn unknown_and_malformed_arguments_are_ignored_with_a_warning() {
        for raw in [
            "nullok",
            "debug=1",
            "use_first_pass=yes",
            "require_publickey=yes",
            "unavailable=yes",
            "unavailable",
            "prompt",
            "prompt=",
            "bus_address=",
            "timeout",
            "",
        ] {
            let (args, warnings) = parsed(&[raw]);
            assert_eq!(args, Args::default(), "{raw:?}");
            assert_eq!(warnings.len(), 1, "{raw:?}: {warnings:?}");
        }
    }

    #[test]
    fn prompt_keeps_spaces_and_equals_signs() {
        let (args, _) = parsed(&["prompt=Code (a=b): "]);
        assert_eq!(args.prompt.as_deref(), Some("Code (a=b): "));
    }

    #[test]
    fn later_values_win() {
        let (args, _) = parsed(&[
            "timeout=3",
            "timeout=4",
            "unavailable=ignore",
            "unavailable=fail",
        ]);
        assert_eq!(args.timeout, Duration::from_secs(4));
        assert_eq!(args.unavailable, Unavailable::Fail);
    }
}
