//! The fleet key file, `secret_key_file` in `[storage]`: the same file on every host.
//!
//! Format: one key per line, standard base64 (with padding) of 32 random bytes. The first key
//! seals, every key opens. Blank lines and lines starting with `#` are skipped, so an admin
//! can note which key is which during a rotation; spaces around a key and a final newline are
//! allowed. A bad line is refused by its number, never by its content.
//!
//! The file must be root's alone: root-owned, mode 0600 or 0400, reached through directories
//! only root can change (the rules of [`twofactor_config::file_safety`]).

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use twofactor_config::file_safety::{self, UnsafePath};
use zeroize::Zeroizing;

use super::{FleetKey, FleetKeys, KEY_LEN, KeyId};
use crate::secret::fill_random;

/// Bigger than any real key file (a key line is 45 bytes); a bigger one is not a key file.
const MAX_FILE_LEN: u64 = 64 * 1024;
/// Any permission for group or others: a key file allows none.
const ANY_ACCESS_BY_GROUP_OR_OTHERS: u32 = 0o077;

/// What is wrong with one line of a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    NotBase64,
    WrongLength {
        bytes: usize,
    },
    /// The same key as an earlier line.
    Repeated {
        first_line: usize,
    },
}

/// Why the key file cannot be used. Never holds key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileError {
    /// Missing, or changeable by someone other than root.
    Unsafe(UnsafePath),
    /// Readable by group or others.
    Readable {
        path: PathBuf,
        mode: u32,
    },
    TooLarge {
        path: PathBuf,
    },
    Unreadable {
        path: PathBuf,
        error: String,
    },
    Line {
        path: PathBuf,
        line: usize,
        problem: LineProblem,
    },
    NoKey {
        path: PathBuf,
    },
}

impl std::error::Error for KeyFileError {}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Unsafe(reason) => write!(f, "fleet key file: {reason}"),
            KeyFileError::Readable { path, mode } => write!(
                f,
                "fleet key file {path}: readable by others than root (mode {:04o}); fix: \
                 chmod 0600 {path}, and make a new key if anyone could have read it",
                mode & 0o7777,
                path = path.display()
            ),
            KeyFileError::TooLarge { path } => write!(
                f,
                "fleet key file {}: over {MAX_FILE_LEN} bytes, not a key file",
                path.display()
            ),
            KeyFileError::Unreadable { path, error } => {
                write!(f, "fleet key file {}: {error}", path.display())
            }
            KeyFileError::Line {
                path,
                line,
                problem,
            } => {
                let path = path.display();
                match problem {
                    LineProblem::NotBase64 => {
                        write!(f, "{path}:{line}: not a base64 key")
                    }
                    LineProblem::WrongLength { bytes } => write!(
                        f,
                        "{path}:{line}: a key is {KEY_LEN} bytes, this one {bytes}; make one \
                         with `twofactord storage new-key`"
                    ),
                    LineProblem::Repeated { first_line } => {
                        write!(f, "{path}:{line}: the same key as line {first_line}")
                    }
                }
            }
            KeyFileError::NoKey { path } => write!(
                f,
                "fleet key file {}: holds no key; make one with `twofactord storage new-key`",
                path.display()
            ),
        }
    }
}

impl FleetKeys {
    /// Load the key file at `path` (absolute), after checking that only root can read or
    /// change it.
    pub fn load(path: &Path) -> Result<FleetKeys, KeyFileError> {
        let resolved = file_safety::check_root_only_file(path).map_err(KeyFileError::Unsafe)?;
        let unreadable = |error: std::io::Error| KeyFileError::Unreadable {
            path: path.to_owned(),
            error: error.to_string(),
        };
        // O_NOFOLLOW: the checked path has no link left; a link appearing now is refused.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&resolved)
            .map_err(unreadable)?;
        // The opened file itself, whatever happened to the path after the check.
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err(KeyFileError::Unreadable {
                path: path.to_owned(),
                error: "changed while it was checked".into(),
            });
        }
        if meta.mode() & ANY_ACCESS_BY_GROUP_OR_OTHERS != 0 {
            return Err(KeyFileError::Readable {
                path: path.to_owned(),
                mode: meta.mode(),
            });
        }
        let mut text = Zeroizing::new(String::new());
        (&mut file)
            .take(MAX_FILE_LEN + 1)
            .read_to_string(&mut text)
            .map_err(unreadable)?;
        if text.len() as u64 > MAX_FILE_LEN {
            return Err(KeyFileError::TooLarge {
                path: path.to_owned(),
            });
        }
        FleetKeys::from_text(path, &text)
    }

    /// Parse the text of a key file; `path` only names it in errors. For tests, and for
    /// callers that have checked the file themselves.
    pub fn from_text(path: &Path, text: &str) -> Result<FleetKeys, KeyFileError> {
        let mut keys: Vec<(usize, FleetKey)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let refuse = |problem| KeyFileError::Line {
                path: path.to_owned(),
                line: number,
                problem,
            };
            let bytes = decode_key(line).map_err(refuse)?;
            let key = FleetKey::from_bytes(&bytes);
            if let Some((first_line, _)) = keys.iter().find(|(_, k)| k.key_id == key.key_id) {
                return Err(refuse(LineProblem::Repeated {
                    first_line: *first_line,
                }));
            }
            keys.push((number, key));
        }
        let mut keys = keys.into_iter().map(|(_, key)| key);
        match keys.next() {
            Some(first) => Ok(FleetKeys::new(first, keys.collect())),
            None => Err(KeyFileError::NoKey {
                path: path.to_owned(),
            }),
        }
    }
}

fn decode_key(line: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, LineProblem> {
    // Room for a longer value, so that its length can be told.
    let mut buffer = Zeroizing::new([0u8; 3 * KEY_LEN]);
    let decoded = Base64::decode(line, buffer.as_mut_slice()).map_err(|error| match error {
        base64ct::Error::InvalidLength => LineProblem::WrongLength {
            bytes: line.len() / 4 * 3,
        },
        base64ct::Error::InvalidEncoding => LineProblem::NotBase64,
    })?;
    if decoded.len() != KEY_LEN {
        return Err(LineProblem::WrongLength {
            bytes: decoded.len(),
        });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(decoded);
    Ok(key)
}

/// `twofactord storage new-key PATH`: create `path` (it must not exist) holding one new random
/// key, root-only, flushed to disk. Returns the new key's id, which is not secret.
pub fn write_new_key_file(path: &Path) -> std::io::Result<KeyId> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(key.as_mut_slice())?;
    let mut line = Zeroizing::new(Base64::encode_string(key.as_slice()));
    line.push('\n');
    // O_EXCL never overwrites a key (that would lose every secret sealed with it);
    // O_NOFOLLOW never writes through a link someone left there.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    // The umask may only take bits away; set the mode exactly anyway.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(line.as_bytes())?;
    file.sync_all()?;
    // The new name survives a crash only once its directory is flushed too.
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()?;
    Ok(FleetKey::from_bytes(&key).key_id())
}
