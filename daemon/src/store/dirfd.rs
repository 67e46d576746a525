//! Opening the state directory once, as a descriptor, after checking every component of its
//! path, so that later swaps of a path component cannot redirect the store.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, fstatat, mkdirat};

use super::StoreError;

/// How every directory of the path is opened: never through a symbolic link.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

pub(super) fn unsafe_path(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Unsafe {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

pub(super) fn errno_error(path: &Path, errno: Errno) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source: errno.into(),
    }
}

fn stat_of(fd: impl AsFd, path: &Path) -> Result<FileStat, StoreError> {
    fstat(fd).map_err(|errno| errno_error(path, errno))
}

/// Opens `name` under `parent` as a directory, creating it 0700 if `create` and missing.
fn open_dir_at(
    parent: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
    create: bool,
) -> Result<OwnedFd, StoreError> {
    let open = || openat(parent, name, dir_flags(), Mode::empty());
    let result = match open() {
        Err(Errno::ENOENT) if create => match mkdirat(parent, name, Mode::S_IRWXU) {
            Ok(()) | Err(Errno::EEXIST) => open(),
            Err(errno) => Err(errno),
        },
        other => other,
    };
    result.map_err(|errno| match errno {
        // O_DIRECTORY makes Linux report a symbolic link as ENOTDIR.
        Errno::ELOOP | Errno::ENOTDIR => {
            let is_link = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFLNK);
            unsafe_path(
                path,
                if is_link {
                    "is a symbolic link"
                } else {
                    "not a directory"
                },
            )
        }
        errno => errno_error(path, errno),
    })
}

/// Root, or the daemon itself: nobody else may control a directory on the path.
fn trusted(uid: u32, owner: u32) -> bool {
    uid == 0 || uid == owner
}

/// Whether `parent` may hold the next component. `Ok(true)`: only if that component is
/// owned by a trusted user, since the parent is a sticky directory open to others (like
/// /tmp), where nobody else can rename or remove it.
fn check_parent(path: &Path, stat: &FileStat, owner: u32) -> Result<bool, StoreError> {
    if !trusted(stat.st_uid, owner) {
        return Err(unsafe_path(path, format!("owned by uid {}", stat.st_uid)));
    }
    if stat.st_mode & 0o022 == 0 {
        return Ok(false);
    }
    if stat.st_mode & libc::S_ISVTX != 0 {
        return Ok(true);
    }
    Err(unsafe_path(path, "writable by group or others"))
}

/// Makes a directory of the store private, after checking it belongs to the daemon.
fn make_private(fd: &OwnedFd, path: &Path, owner: u32) -> Result<(), StoreError> {
    let stat = stat_of(fd, path)?;
    if stat.st_uid != owner {
        return Err(unsafe_path(
            path,
            format!("owned by uid {}, not {owner}", stat.st_uid),
        ));
    }
    fchmod(fd, Mode::S_IRWXU).map_err(|errno| errno_error(path, errno))
}

/// Walks `state_dir` from `/`, checking each parent, creates the state directory and its
/// `users/` if missing, makes both 0700, and returns a descriptor of `users/`.
pub(super) fn open_users_dir(state_dir: &Path, owner: u32) -> Result<OwnedFd, StoreError> {
    let absolute = std::path::absolute(state_dir).map_err(|source| StoreError::Io {
        path: state_dir.display().to_string(),
        source,
    })?;
    let mut names = Vec::new();
    for component in absolute.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::RootDir | Component::CurDir => {}
            // After a `..` the components checked would not be those of the directory.
            Component::ParentDir | Component::Prefix(_) => {
                return Err(unsafe_path(&absolute, "contains '..'"));
            }
        }
    }
    let Some(last) = names.len().checked_sub(1) else {
        return Err(unsafe_path(&absolute, "is the root directory"));
    };
    let mut shown = PathBuf::from("/");
    let mut fd = open(&shown, dir_flags(), Mode::empty()).map_err(|e| errno_error(&shown, e))?;
    for (index, name) in names.into_iter().enumerate() {
        let sticky = check_parent(&shown, &stat_of(&fd, &shown)?, owner)?;
        let path = shown.join(name);
        let child = open_dir_at(&fd, name, &path, index == last)?;
        let child_uid = stat_of(&child, &path)?.st_uid;
        if sticky && !trusted(child_uid, owner) {
            return Err(unsafe_path(
                &shown,
                format!(
                    "writable by group or others, and {} in it is owned by uid {child_uid}",
                    path.display()
                ),
            ));
        }
        fd = child;
        shown = path;
    }
    make_private(&fd, &shown, owner)?;
    let users_path = shown.join("users");
    let users = open_dir_at(&fd, "users".as_ref(), &users_path, true)?;
    make_private(&users, &users_path, owner)?;
    Ok(users)
}

/// Names in the directory of `dir`, without `.` and `..`.
pub(super) fn entries(dir: &OwnedFd) -> nix::Result<Vec<OsString>> {
    // A fresh descriptor of the same directory, so each listing starts at the beginning.
    let mut listing = Dir::openat(dir, ".", dir_flags(), Mode::empty())?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsStr::from_bytes(&name).to_owned());
        }
    }
    Ok(names)
}
