//! PAM configuration as libpam reads it: `/etc/pam.d/SERVICE` files, `@include`, `include` and
//! `substack`, controls in both the keyword and the `[value=action ...]` form.

use super::{Finding, Root};

/// What a module line does with each return value (Linux-PAM's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    /// Skip the next N modules of this stack level.
    Jump(usize),
}

/// The second column of a module line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Required,
    Requisite,
    Sufficient,
    Optional,
    /// `[value=action ...]`, in the order written.
    Actions(Vec<(String, Action)>),
}

/// The return values the doctor reasons about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Success,
    Ignore,
    AuthErr,
}

impl Control {
    /// The action for `ret`, as libpam resolves it (an unset value without `default` is bad).
    pub fn action(&self, ret: Ret) -> Action {
        match (self, ret) {
            (Control::Required, Ret::Success) | (Control::Requisite, Ret::Success) => Action::Ok,
            (Control::Optional, Ret::Success) => Action::Ok,
            (Control::Sufficient, Ret::Success) => Action::Done,
            (_, Ret::Ignore) if !matches!(self, Control::Actions(_)) => Action::Ignore,
            (Control::Required, _) => Action::Bad,
            (Control::Requisite, _) => Action::Die,
            (Control::Sufficient | Control::Optional, _) => Action::Ignore,
            (Control::Actions(actions), ret) => {
                let key = match ret {
                    Ret::Success => "success",
                    Ret::Ignore => "ignore",
                    Ret::AuthErr => "auth_err",
                };
                let find = |name: &str| {
                    actions
                        .iter()
                        .find(|(value, _)| value == name)
                        .map(|(_, action)| *action)
                };
                find(key).or_else(|| find("default")).unwrap_or(Action::Bad)
            }
        }
    }

    /// The value of `default=` in the bracket form.
    pub fn default_action(&self) -> Option<Action> {
        match self {
            Control::Actions(actions) => actions
                .iter()
                .find(|(value, _)| value == "default")
                .map(|(_, action)| *action),
            _ => None,
        }
    }
}

/// One module line of a stack, where it was written.
#[derive(Debug, Clone)]
pub struct ModuleLine {
    /// The file's path on the checked system (`/etc/pam.d/sshd`).
    pub file: String,
    pub line: usize,
    pub control: Control,
    /// As written: a bare name or an absolute path.
    pub module: String,
    pub args: Vec<String>,
    /// Written `-auth`: libpam skips it quietly when the module is missing.
    pub dash: bool,
}

impl ModuleLine {
    /// The module's file name (`pam_unix.so` for `/lib/security/pam_unix.so`).
    pub fn name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    pub fn is_twofactor(&self) -> bool {
        self.name() == TWOFACTOR_MODULE
    }

    pub fn has_arg(&self, name: &str) -> bool {
        self.args.iter().any(|arg| {
            arg == name
                || arg
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    }

    pub fn arg_value(&self, name: &str) -> Option<&str> {
        self.args.iter().find_map(|arg| {
            arg.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
        })
    }
}

pub const TWOFACTOR_MODULE: &str = "pam_twofactor.so";

/// A stack entry: a module, or a substack with its own entries.
#[derive(Debug, Clone)]
pub enum Entry {
    Module(ModuleLine),
    Substack { at: ModuleLine, entries: Vec<Entry> },
}

/// One service's `auth` stack, includes expanded.
#[derive(Debug, Clone)]
pub struct Stack {
    pub service: String,
    pub entries: Vec<Entry>,
}

impl Stack {
    /// Every module line, substacks flattened, in order.
    pub fn modules(&self) -> Vec<&ModuleLine> {
        fn walk<'a>(entries: &'a [Entry], out: &mut Vec<&'a ModuleLine>) {
            for entry in entries {
                match entry {
                    Entry::Module(line) => out.push(line),
                    Entry::Substack { entries, .. } => walk(entries, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.entries, &mut out);
        out
    }

    pub fn twofactor_lines(&self) -> Vec<&ModuleLine> {
        self.modules()
            .into_iter()
            .filter(|m| m.is_twofactor())
            .collect()
    }
}

/// A line of a pam.d file, before includes are expanded.
#[derive(Debug, Clone)]
enum Parsed {
    /// `@include FILE`: every type of FILE.
    IncludeAll(String),
    /// `TYPE include FILE`: FILE's lines of TYPE.
    Include(String),
    Substack(String, usize),
    Module(ModuleLine),
}

/// Splits a pam.d line into words; `[...]` is one word even with spaces inside.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '[' {
            chars.next();
            for c in chars.by_ref() {
                if c == ']' {
                    break;
                }
                word.push(c);
            }
            // The bracket form of a control keeps its brackets; of an argument, not (libpam).
            out.push(format!("[{word}]"));
            continue;
        }
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            word.push(c);
            chars.next();
        }
        out.push(word);
    }
    out
}

fn parse_action(text: &str) -> Option<Action> {
    Some(match text {
        "ignore" => Action::Ignore,
        "ok" => Action::Ok,
        "done" => Action::Done,
        "bad" => Action::Bad,
        "die" => Action::Die,
        "reset" => Action::Reset,
        n => Action::Jump(n.parse().ok()?),
    })
}

fn parse_control(word: &str) -> Option<Control> {
    Some(match word {
        "required" => Control::Required,
        "requisite" => Control::Requisite,
        "sufficient" => Control::Sufficient,
        "optional" => Control::Optional,
        bracket => {
            let inner = bracket.strip_prefix('[')?.strip_suffix(']')?;
            let mut actions = Vec::new();
            for pair in inner.split_whitespace() {
                let (value, action) = pair.split_once('=')?;
                actions.push((value.to_ascii_lowercase(), parse_action(action)?));
            }
            Control::Actions(actions)
        }
    })
}

/// Parses one file into (type, line) pairs; `@include` has no type. Unparseable lines become
/// findings (libpam logs and skips them, or fails the stack).
fn parse_file(
    file: &str,
    text: &str,
    findings: &mut Vec<Finding>,
) -> Vec<(Option<String>, Parsed)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut first_line = 0;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let content = raw.split('#').next().unwrap_or("");
        if pending.is_empty() {
            first_line = line_no;
        }
        if let Some(start) = content.strip_suffix('\\') {
            pending.push_str(start);
            pending.push(' ');
            continue;
        }
        pending.push_str(content);
        let logical = std::mem::take(&mut pending);
        let words = words(&logical);
        let Some(first) = words.first() else { continue };
        if first == "@include" {
            if let Some(name) = words.get(1) {
                out.push((None, Parsed::IncludeAll(name.clone())));
            }
            continue;
        }
        let (dash, kind) = match first.strip_prefix('-') {
            Some(kind) => (true, kind.to_ascii_lowercase()),
            None => (false, first.to_ascii_lowercase()),
        };
        let (Some(control), Some(module)) = (words.get(1), words.get(2)) else {
            findings.push(super::messages::unparsed_pam_line(file, first_line));
            continue;
        };
        let parsed = match control.as_str() {
            "include" => Parsed::Include(module.clone()),
            "substack" => Parsed::Substack(module.clone(), first_line),
            other => match parse_control(other) {
                Some(control) => Parsed::Module(ModuleLine {
                    file: file.to_owned(),
                    line: first_line,
                    control,
                    module: module.clone(),
                    args: words[3..]
                        .iter()
                        .map(
                            |arg| match arg.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
                                Some(inner) => inner.to_owned(),
                                None => arg.clone(),
                            },
                        )
                        .collect(),
                    dash,
                }),
                None => {
                    findings.push(super::messages::unparsed_pam_line(file, first_line));
                    continue;
                }
            },
        };
        out.push((Some(kind), parsed));
    }
    out
}

/// The pam.d path of an included name: relative names are in `/etc/pam.d`.
fn include_path(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("{PAM_DIR}/{name}")
    }
}

pub const PAM_DIR: &str = "/etc/pam.d";

/// How deep includes may nest before the doctor gives up (libpam's own limit is similar).
const MAX_DEPTH: usize = 16;

/// Loads SERVICE's stack of `kind` (e.g. `auth`), includes expanded. A missing included file
/// is a finding; an unreadable one is an error that stops the doctor.
pub fn load_stack(
    root: &Root,
    service: &str,
    kind: &str,
    findings: &mut Vec<Finding>,
) -> Result<Stack, String> {
    let entries = load_entries(root, &include_path(service), kind, 0, findings)?;
    Ok(Stack {
        service: service.to_owned(),
        entries,
    })
}

fn load_entries(
    root: &Root,
    file: &str,
    kind: &str,
    depth: usize,
    findings: &mut Vec<Finding>,
) -> Result<Vec<Entry>, String> {
    if depth > MAX_DEPTH {
        findings.push(super::messages::include_loop(file));
        return Ok(Vec::new());
    }
    let Some(text) = root.read_optional(file)? else {
        findings.push(super::messages::missing_include(file));
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    for (line_kind, parsed) in parse_file(file, &text, findings) {
        let of_kind = line_kind.as_deref() == Some(kind);
        // `@include` brings every kind of line; `auth include` only lines of its own kind.
        let included = of_kind || matches!(parsed, Parsed::IncludeAll(_));
        match parsed {
            Parsed::IncludeAll(name) | Parsed::Include(name) if included => {
                entries.extend(load_entries(
                    root,
                    &include_path(&name),
                    kind,
                    depth + 1,
                    findings,
                )?);
            }
            Parsed::Substack(name, line) if of_kind => {
                let path = include_path(&name);
                let inner = load_entries(root, &path, kind, depth + 1, findings)?;
                let at = ModuleLine {
                    file: file.to_owned(),
                    line,
                    control: Control::Required,
                    module: name,
                    args: Vec::new(),
                    dash: false,
                };
                entries.push(Entry::Substack { at, entries: inner });
            }
            Parsed::Module(module) if of_kind => entries.push(Entry::Module(module)),
            _ => {}
        }
    }
    Ok(entries)
}

/// The services of `/etc/pam.d`: every file but those only ever included.
pub fn services(root: &Root) -> Result<Vec<String>, String> {
    let mut names = root.list_dir(PAM_DIR)?;
    names.retain(|name| !is_include_only(name) && !name.starts_with('.') && !name.ends_with('~'));
    names.sort();
    Ok(names)
}

/// Files distributions ship only to be included (Debian's common-*, RHEL's *-auth, postlogin).
fn is_include_only(name: &str) -> bool {
    name.starts_with("common-")
        || matches!(
            name,
            "system-auth" | "password-auth" | "fingerprint-auth" | "smartcard-auth" | "postlogin"
        )
        || name.ends_with("-ac")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_and_arguments() {
        assert_eq!(
            words("auth [success=1 default=ignore] pam_unix.so nullok [prompt=Code: ]"),
            [
                "auth",
                "[success=1 default=ignore]",
                "pam_unix.so",
                "nullok",
                "[prompt=Code: ]"
            ]
        );
        let control = parse_control("[success=1 default=ignore]").unwrap();
        assert_eq!(control.action(Ret::Success), Action::Jump(1));
        assert_eq!(control.action(Ret::AuthErr), Action::Ignore);
        let control = parse_control("[success=ok]").unwrap();
        assert_eq!(control.action(Ret::AuthErr), Action::Bad);
        assert_eq!(Control::Requisite.action(Ret::AuthErr), Action::Die);
        assert_eq!(Control::Sufficient.action(Ret::Success), Action::Done);
        assert_eq!(Control::Required.action(Ret::Ignore), Action::Ignore);
    }

    #[test]
    fn continuation_and_comments() {
        let mut findings = Vec::new();
        let parsed = parse_file(
            "/etc/pam.d/x",
            "# c\nauth required \\\n  pam_twofactor.so tries=2 # why\n-auth optional pam_x.so\n",
            &mut findings,
        );
        assert!(findings.is_empty());
        let Parsed::Module(line) = &parsed[0].1 else {
            panic!()
        };
        assert_eq!(
            (line.line, line.args.clone()),
            (2, vec!["tries=2".to_owned()])
        );
        assert!(
            line.is_twofactor() && line.has_arg("tries") && line.arg_value("tries") == Some("2")
        );
        let Parsed::Module(line) = &parsed[1].1 else {
            panic!()
        };
        assert!(line.dash);
    }
}
