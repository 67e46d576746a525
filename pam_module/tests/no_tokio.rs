//! tokio must never reach the module: a runtime with worker threads inside sshd or login
//! breaks hosts that fork. Checks what `cargo build -p pam_twofactor` links. Also that the
//! module and zbus share one copy of zruntime: the client's deadline timer runs on the
//! runtime zbus's `block_on` drives only if they are the same crate.
//!
//! The tree is the host target's, which is what the build links and what the build has
//! downloaded: `--target all` would need every other target's crates too, which a fresh
//! cargo cache does not have.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// `cargo tree` of what the module links, one crate a line ("name vX.Y.Z ...").
fn module_tree() -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = Command::new(cargo)
        .args(["tree", "--offline", "-p", "pam_twofactor", "-e", "normal"])
        .args(["--prefix", "none", "--manifest-path"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn no_tokio_in_the_module() {
    let stdout = module_tree();
    // The tree really is the module's.
    assert!(
        stdout.lines().any(|line| line.starts_with("zbus v6")),
        "{stdout}"
    );
    let tokio: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("tokio ") || line.starts_with("tokio-"))
        .collect();
    assert!(tokio.is_empty(), "tokio in the module's tree: {tokio:?}");
}

#[test]
fn one_zruntime_for_the_module_and_zbus() {
    let stdout = module_tree();
    let mut versions: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("zruntime v"))
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 1, "zruntime versions: {versions:?}");
}
