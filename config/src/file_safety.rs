//! Whether a file the daemon trusts as root (its configuration, the `[notify]` and `[delivery]`
//! programs) can be changed by anyone but root, by the rules of sshd's `safe_path` and sudo:
//!
//! - the file and every directory on the way to it, from `/`, belong to root;
//! - none of them is writable by group or others, whatever the group (as sshd, which does not
//!   trust a group it cannot vouch for);
//! - except a sticky directory such as `/tmp` (mode 1777): others may create entries there,
//!   but not rename or remove root's, so it passes when the next component belongs to root;
//! - symbolic links are followed by hand, each link itself in a checked directory and owned
//!   by root, and its target walked the same way; at most [`MAX_LINKS`] of them.
//!
//! When the check passes, only root can change what the path names, so a check before each
//! use leaves nothing for anyone else to race. What it cannot see: a file descriptor opened
//! for writing while the file was still writable survives a later chmod, so a file found
//! unsafe is replaced (a fresh copy), not only chmodded.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed in one path at most (Linux's own limit).
pub const MAX_LINKS: usize = 40;

const WRITABLE_BY_GROUP_OR_OTHERS: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Why a path is not root's alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NotAbsolute,
    Missing,
    NotRootOwned { uid: u32 },
    Writable { mode: u32 },
    NotAFile,
    NotADirectory,
    TooManyLinks,
    Unreadable(String),
}

/// A refusal: the component at fault, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafePath {
    pub path: PathBuf,
    pub problem: Problem,
}

impl std::error::Error for UnsafePath {}

impl fmt::Display for UnsafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.problem {
            Problem::NotAbsolute => write!(f, "{path} is not an absolute path"),
            Problem::Missing => write!(f, "{path} does not exist"),
            Problem::NotRootOwned { uid } => write!(
                f,
                "{path} belongs to uid {uid}, not root, so that user could change what the \
                 daemon trusts as root; fix: chown root {path}"
            ),
            Problem::Writable { mode } => write!(
                f,
                "{path} is writable by {} (mode {:04o}), so they could change what the \
                 daemon trusts as root; fix: chmod go-w {path}",
                writers(*mode),
                mode & 0o7777
            ),
            Problem::NotAFile => write!(f, "{path} is not a regular file"),
            Problem::NotADirectory => write!(f, "{path} is not a directory"),
            Problem::TooManyLinks => write!(
                f,
                "{path}: more than {MAX_LINKS} symbolic links; name the file itself"
            ),
            Problem::Unreadable(error) => write!(f, "cannot check {path}: {error}"),
        }
    }
}

fn writers(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "group and others",
        (true, false) => "its group",
        _ => "others",
    }
}

fn refuse<T>(path: &Path, problem: Problem) -> Result<T, UnsafePath> {
    Err(UnsafePath {
        path: path.to_owned(),
        problem,
    })
}

fn lstat(path: &Path) -> Result<std::fs::Metadata, UnsafePath> {
    std::fs::symlink_metadata(path).or_else(|error| {
        let problem = match error.kind() {
            std::io::ErrorKind::NotFound => Problem::Missing,
            _ => Problem::Unreadable(error.to_string()),
        };
        refuse(path, problem)
    })
}

/// Whether others could replace what `dir` holds: writable by them and not sticky.
fn check_directory(dir: &Path, meta: &std::fs::Metadata) -> Result<(), UnsafePath> {
    if !meta.is_dir() {
        return refuse(dir, Problem::NotADirectory);
    }
    if meta.mode() & WRITABLE_BY_GROUP_OR_OTHERS != 0 && meta.mode() & STICKY == 0 {
        return refuse(dir, Problem::Writable { mode: meta.mode() });
    }
    Ok(())
}

/// The names of `path` after its root, `..` kept (it is resolved against real directories).
fn names(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Check that only root can change the regular file `path` names; returns the path with every
/// symbolic link resolved, which is the one to open.
pub fn check_root_only_file(path: &Path) -> Result<PathBuf, UnsafePath> {
    if !path.is_absolute() {
        return refuse(path, Problem::NotAbsolute);
    }
    let mut resolved = PathBuf::from("/");
    let root = lstat(&resolved)?;
    check_root_owned(&resolved, &root)?;
    check_directory(&resolved, &root)?;
    let mut pending = names(path);
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            // `resolved` holds no link, so its parent is the real one.
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        let meta = lstat(&candidate)?;
        check_root_owned(&candidate, &meta)?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return refuse(path, Problem::TooManyLinks);
            }
            let target = std::fs::read_link(&candidate)
                .or_else(|error| refuse(&candidate, Problem::Unreadable(error.to_string())))?;
            if target.is_absolute() {
                resolved = PathBuf::from("/");
            }
            for name in names(&target).into_iter().rev() {
                pending.push_front(name);
            }
            continue;
        }
        if !pending.is_empty() {
            check_directory(&candidate, &meta)?;
        }
        resolved = candidate;
    }
    let meta = lstat(&resolved)?;
    if !meta.is_file() {
        return refuse(&resolved, Problem::NotAFile);
    }
    if meta.mode() & WRITABLE_BY_GROUP_OR_OTHERS != 0 {
        return refuse(&resolved, Problem::Writable { mode: meta.mode() });
    }
    Ok(resolved)
}

fn check_root_owned(path: &Path, meta: &std::fs::Metadata) -> Result<(), UnsafePath> {
    if meta.uid() != 0 {
        return refuse(path, Problem::NotRootOwned { uid: meta.uid() });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
