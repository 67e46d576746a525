//! On a real tree in a temp dir, changed with chown and chmod: these tests run as root.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};

use super::*;

const USER: u32 = 1000;

/// A root-owned 0755 directory under /tmp (itself sticky and root's).
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    dir
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn file(path: &Path, mode: u32) -> PathBuf {
    fs::write(path, "#!/bin/sh\n").unwrap();
    chmod(path, mode);
    path.to_owned()
}

fn dir(path: &Path, mode: u32) -> PathBuf {
    fs::create_dir(path).unwrap();
    chmod(path, mode);
    path.to_owned()
}

fn problem(path: &Path) -> (PathBuf, Problem) {
    let error = check_root_only_file(path).unwrap_err();
    (error.path, error.problem)
}

#[test]
fn a_root_owned_file_in_root_owned_directories_passes() {
    let t = tree();
    let program = file(&t.path().join("notify"), 0o755);
    assert_eq!(check_root_only_file(&program).unwrap(), program);
    let config = file(&t.path().join("twofactor.toml"), 0o600);
    assert_eq!(check_root_only_file(&config).unwrap(), config);
    // Debian's /bin is a link to usr/bin.
    assert_eq!(
        check_root_only_file(Path::new("/bin/sh")).unwrap(),
        fs::canonicalize("/bin/sh").unwrap()
    );
}

#[test]
fn a_file_writable_by_group_or_others_is_refused() {
    let t = tree();
    for (mode, who) in [
        (0o666, "group and others"),
        (0o664, "its group"),
        (0o646, "others"),
    ] {
        let path = file(&t.path().join(format!("f{mode:o}")), mode);
        let error = check_root_only_file(&path).unwrap_err();
        assert_eq!(
            error.problem,
            Problem::Writable {
                mode: 0o100000 | mode
            }
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("{} is writable by {who}", path.display()))
                && message.contains(&format!("chmod go-w {}", path.display())),
            "{message}"
        );
    }
}

#[test]
fn a_file_owned_by_a_user_is_refused() {
    let t = tree();
    let path = file(&t.path().join("notify"), 0o755);
    chown(&path, Some(USER), None).unwrap();
    assert_eq!(
        problem(&path),
        (path.clone(), Problem::NotRootOwned { uid: USER })
    );
    let message = check_root_only_file(&path).unwrap_err().to_string();
    assert!(
        message.contains(&format!("chown root {}", path.display())),
        "{message}"
    );
}

#[test]
fn a_directory_above_owned_by_a_user_is_refused() {
    let t = tree();
    let bin = dir(&t.path().join("bin"), 0o755);
    let program = file(&bin.join("notify"), 0o755);
    chown(&bin, Some(USER), None).unwrap();
    assert_eq!(
        problem(&program),
        (bin, Problem::NotRootOwned { uid: USER })
    );
}

#[test]
fn a_directory_above_writable_by_group_or_others_is_refused() {
    let t = tree();
    for mode in [0o777, 0o775, 0o757] {
        let bin = dir(&t.path().join(format!("bin{mode:o}")), mode);
        let program = file(&bin.join("notify"), 0o755);
        assert_eq!(
            problem(&program),
            (
                bin,
                Problem::Writable {
                    mode: 0o040000 | mode
                }
            )
        );
    }
}

#[test]
fn a_sticky_directory_passes_when_the_next_component_is_roots() {
    let t = tree();
    let shared = dir(&t.path().join("shared"), 0o1777);
    let program = file(&shared.join("notify"), 0o755);
    assert_eq!(check_root_only_file(&program).unwrap(), program);
    let below = dir(&shared.join("sub"), 0o755);
    let deeper = file(&below.join("notify"), 0o755);
    assert_eq!(check_root_only_file(&deeper).unwrap(), deeper);
    // Planted by a user before root wrote it: the user can replace it.
    chown(&program, Some(USER), None).unwrap();
    assert_eq!(
        problem(&program),
        (program, Problem::NotRootOwned { uid: USER })
    );
    chown(&below, Some(USER), None).unwrap();
    assert_eq!(
        problem(&deeper),
        (below, Problem::NotRootOwned { uid: USER })
    );
}

#[test]
fn links_are_followed_and_their_targets_checked() {
    let t = tree();
    let real = file(&t.path().join("real"), 0o755);
    let link = t.path().join("link");
    symlink("real", &link).unwrap();
    assert_eq!(check_root_only_file(&link).unwrap(), real);
    // An absolute link through a relative one, and `..` after a link.
    let sub = dir(&t.path().join("sub"), 0o755);
    symlink(&sub, t.path().join("to-sub")).unwrap();
    assert_eq!(
        check_root_only_file(&t.path().join("to-sub/../real")).unwrap(),
        real
    );
    // A safe link to a file in a directory others may write.
    let open = dir(&t.path().join("open"), 0o777);
    file(&open.join("notify"), 0o755);
    let to_open = t.path().join("to-open");
    symlink("open/notify", &to_open).unwrap();
    assert_eq!(
        problem(&to_open),
        (open, Problem::Writable { mode: 0o040777 })
    );
}

#[test]
fn a_link_owned_by_a_user_in_a_sticky_directory_is_refused() {
    let t = tree();
    let real = file(&t.path().join("real"), 0o755);
    let shared = dir(&t.path().join("shared"), 0o1777);
    let link = shared.join("notify");
    symlink(&real, &link).unwrap();
    lchown(&link, Some(USER), None).unwrap();
    assert_eq!(problem(&link), (link, Problem::NotRootOwned { uid: USER }));
}

#[test]
fn link_loops_missing_files_and_odd_paths_are_refused() {
    let t = tree();
    symlink("b", t.path().join("a")).unwrap();
    symlink("a", t.path().join("b")).unwrap();
    let looping = t.path().join("a");
    assert_eq!(problem(&looping), (looping, Problem::TooManyLinks));
    let missing = t.path().join("absent/notify");
    assert_eq!(
        problem(&missing),
        (t.path().join("absent"), Problem::Missing)
    );
    assert_eq!(
        problem(Path::new("notify")),
        (PathBuf::from("notify"), Problem::NotAbsolute)
    );
    assert_eq!(problem(t.path()), (t.path().to_owned(), Problem::NotAFile));
    let plain = file(&t.path().join("plain"), 0o755);
    let through_a_file = plain.join("notify");
    assert_eq!(problem(&through_a_file), (plain, Problem::NotADirectory));
}
