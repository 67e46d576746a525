//! tokio must never reach the module: a runtime with worker threads inside sshd or login
//! breaks hosts that fork. Checks what `cargo build -p pam_twofactor` links.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn no_tokio_in_the_module() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = Command::new(cargo)
        .args(["tree", "--offline", "-p", "pam_twofactor", "-e", "normal"])
        .args(["--target", "all", "--prefix", "none", "--manifest-path"])
        .arg(&manifest)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
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
