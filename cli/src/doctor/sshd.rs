//! sshd_config as sshd reads it: keywords case-insensitive, the first value obtained wins,
//! `Include` globs expanded in sorted order and read where they stand, `Match` blocks kept
//! apart (they override the global values for the connections they match).

use std::collections::HashMap;

use super::{Finding, Root};

pub const MAIN_FILE: &str = "/etc/ssh/sshd_config";

/// One keyword's value where it was written (`line` is None for a built-in default or a
/// value only `sshd -T` reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub keyword: String,
    pub value: String,
    pub file: String,
    pub line: Option<usize>,
}

/// A `Match` block and the keywords set in it.
#[derive(Debug, Clone)]
pub struct MatchBlock {
    pub criteria: String,
    pub file: String,
    pub line: usize,
    pub settings: Vec<Setting>,
}

#[derive(Debug, Clone, Default)]
pub struct SshdConfig {
    /// Global lines in the order sshd reads them (every occurrence, not only the winners).
    pub global: Vec<Setting>,
    pub matches: Vec<MatchBlock>,
    /// Values from `sshd -T` (live system only): they win over the reader's.
    pub effective_override: HashMap<String, String>,
}

/// Built-in defaults of OpenSSH 9.2 for the keywords the doctor looks at.
fn default_value(keyword: &str) -> &'static str {
    match keyword {
        "usepam" => "no",
        "kbdinteractiveauthentication" | "passwordauthentication" | "pubkeyauthentication" => "yes",
        "authenticationmethods" => "any",
        "permitrootlogin" => "prohibit-password",
        _ => "",
    }
}

/// Old names sshd still accepts.
fn canonical(keyword: &str) -> String {
    let lower = keyword.to_ascii_lowercase();
    match lower.as_str() {
        "challengeresponseauthentication" => "kbdinteractiveauthentication".to_owned(),
        _ => lower,
    }
}

impl SshdConfig {
    /// The value that wins globally: `sshd -T`'s, else the first one read, else the default.
    pub fn effective(&self, keyword: &str) -> Setting {
        let first = self.global.iter().find(|s| s.keyword == keyword).cloned();
        let default = || Setting {
            keyword: keyword.to_owned(),
            value: default_value(keyword).to_owned(),
            file: MAIN_FILE.to_owned(),
            line: None,
        };
        match self.effective_override.get(keyword) {
            Some(value) => match first {
                Some(setting) if same_value(keyword, &setting.value, value) => setting,
                _ => Setting {
                    value: value.clone(),
                    ..default()
                },
            },
            None => first.unwrap_or_else(default),
        }
    }

    /// The value for connections `block` matches: the block's first, else the global one.
    pub fn effective_in(&self, block: &MatchBlock, keyword: &str) -> Setting {
        block
            .settings
            .iter()
            .find(|s| s.keyword == keyword)
            .cloned()
            .unwrap_or_else(|| self.effective(keyword))
    }

    /// Every global occurrence of `keyword` after the first, with a different value.
    pub fn shadowed(&self, keyword: &str) -> Vec<(&Setting, &Setting)> {
        let mut all = self.global.iter().filter(|s| s.keyword == keyword);
        let Some(winner) = all.next() else {
            return Vec::new();
        };
        all.filter(|s| !same_value(keyword, &s.value, &winner.value))
            .map(|s| (winner, s))
            .collect()
    }
}

/// `sshd -T` prints normalised values (`without-password` for `prohibit-password`, lower case).
pub fn same_value(keyword: &str, a: &str, b: &str) -> bool {
    let norm = |v: &str| {
        let v = v.to_ascii_lowercase();
        if keyword == "permitrootlogin" && v == "without-password" {
            "prohibit-password".to_owned()
        } else {
            v.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    };
    norm(a) == norm(b)
}

/// Splits `Keyword value`, `Keyword=value` or `Keyword = value`.
fn split_line(text: &str) -> Option<(String, String)> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let end = text
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(text.len());
    let (keyword, rest) = text.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    let value = rest.split('#').next().unwrap_or("").trim().replace('"', "");
    Some((keyword.to_owned(), value))
}

/// How deep `Include`s may nest (sshd's own limit is 16).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads the main file and everything it includes. None when there is no sshd_config.
pub fn read(root: &Root, findings: &mut Vec<Finding>) -> Result<Option<SshdConfig>, String> {
    let Some(text) = root.read_optional(MAIN_FILE)? else {
        return Ok(None);
    };
    let mut config = SshdConfig::default();
    read_file(root, MAIN_FILE, &text, None, 0, &mut config, findings)?;
    Ok(Some(config))
}

fn read_file(
    root: &Root,
    file: &str,
    text: &str,
    mut in_match: Option<usize>,
    depth: usize,
    config: &mut SshdConfig,
    findings: &mut Vec<Finding>,
) -> Result<(), String> {
    for (index, raw) in text.lines().enumerate() {
        let Some((keyword, value)) = split_line(raw) else {
            continue;
        };
        let line = index + 1;
        let keyword = canonical(&keyword);
        match keyword.as_str() {
            "include" => {
                if depth >= MAX_INCLUDE_DEPTH {
                    findings.push(super::messages::sshd_include_too_deep(file, line));
                    continue;
                }
                for pattern in value.split_whitespace() {
                    let pattern = if pattern.starts_with('/') {
                        pattern.to_owned()
                    } else {
                        format!("/etc/ssh/{pattern}")
                    };
                    for included in root.glob(&pattern)? {
                        if let Some(text) = root.read_optional(&included)? {
                            read_file(
                                root,
                                &included,
                                &text,
                                in_match,
                                depth + 1,
                                config,
                                findings,
                            )?;
                        }
                    }
                }
            }
            "match" => {
                config.matches.push(MatchBlock {
                    criteria: value,
                    file: file.to_owned(),
                    line,
                    settings: Vec::new(),
                });
                in_match = Some(config.matches.len() - 1);
            }
            _ => {
                let setting = Setting {
                    keyword,
                    value,
                    file: file.to_owned(),
                    line: Some(line),
                };
                match in_match.and_then(|i| config.matches.get_mut(i)) {
                    Some(block) => block.settings.push(setting),
                    None => config.global.push(setting),
                }
            }
        }
    }
    Ok(())
}

/// Parses `sshd -T` output: one `keyword value` a line.
pub fn parse_effective(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (keyword, value) = line.split_once(' ')?;
            Some((keyword.to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect()
}

/// The lists of `AuthenticationMethods` (`any` is one list of its own).
pub fn method_lists(value: &str) -> Vec<Vec<String>> {
    value
        .split_whitespace()
        .map(|list| {
            list.split(',')
                .map(|m| m.split(':').next().unwrap_or(m).to_owned())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_forms() {
        assert_eq!(
            split_line("UsePAM yes"),
            Some(("UsePAM".into(), "yes".into()))
        );
        assert_eq!(
            split_line("UsePAM=no"),
            Some(("UsePAM".into(), "no".into()))
        );
        assert_eq!(
            split_line("  UsePAM = no # x"),
            Some(("UsePAM".into(), "no".into()))
        );
        assert_eq!(split_line("# UsePAM no"), None);
        assert_eq!(
            canonical("ChallengeResponseAuthentication"),
            "kbdinteractiveauthentication"
        );
    }

    #[test]
    fn methods() {
        assert_eq!(
            method_lists("publickey,keyboard-interactive:pam password"),
            vec![
                vec!["publickey".to_owned(), "keyboard-interactive".to_owned()],
                vec!["password".to_owned()]
            ]
        );
        assert!(same_value(
            "permitrootlogin",
            "without-password",
            "prohibit-password"
        ));
    }

    #[test]
    fn includes_sorted_first_value_wins_match_ends_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "etc/ssh/sshd_config",
            "Include sshd_config.d/*.conf\nkbdinteractiveauthentication no\nUsePAM yes\n",
        );
        write(
            "etc/ssh/sshd_config.d/50-b.conf",
            "KbdInteractiveAuthentication no\nMatch User x\n  UsePAM no\n",
        );
        write(
            "etc/ssh/sshd_config.d/10-a.conf",
            "ChallengeResponseAuthentication=yes\n",
        );
        let root = Root::new(dir.path(), false);
        let config = read(&root, &mut Vec::new()).unwrap().unwrap();
        let kbd = config.effective("kbdinteractiveauthentication");
        assert_eq!(kbd.value, "yes");
        assert_eq!(kbd.file, "/etc/ssh/sshd_config.d/10-a.conf");
        assert_eq!(config.shadowed("kbdinteractiveauthentication").len(), 2);
        // The Match of 50-b.conf ends with that file: the main file's UsePAM is global.
        assert_eq!(config.effective("usepam").line, Some(3));
        assert_eq!(config.matches.len(), 1);
        assert_eq!(
            config.effective_in(&config.matches[0], "usepam").value,
            "no"
        );
        assert_eq!(config.effective("permitrootlogin").line, None);
    }
}
