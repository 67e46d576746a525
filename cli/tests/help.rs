//! The built binary's help, version, man pages, completions and exit codes that need no daemon.
//!
//! `--help` output is compared with `tests/snapshots/`; `UPDATE_SNAPSHOTS=1 cargo test` rewrites
//! the snapshots after an intended change (review the diff).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_twofactor");

/// Every command, hidden ones included.
const COMMANDS: &[&str] = &[
    "enroll",
    "status",
    "backup-codes",
    "disable",
    "list",
    "reset",
    "unlock",
    "policy",
    "verify",
    "temp-code",
    "delivery",
    "import",
    "doctor",
    "generate",
];

/// Commands of commands.
const SUBCOMMANDS: &[&[&str]] = &[&["import", "google-authenticator"], &["import", "oath"]];

fn twofactor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
        .output()
        .expect("run twofactor")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run UPDATE_SNAPSHOTS=1 cargo test -p twofactor-cli",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} changed; if intended, run UPDATE_SNAPSHOTS=1 cargo test -p twofactor-cli\n\
         --- expected\n{expected}\n--- actual\n{actual}"
    );
}

#[test]
fn help_snapshots() {
    let output = twofactor(&["--help"]);
    assert!(output.status.success());
    snapshot("help", &text(&output.stdout));
    for command in COMMANDS {
        let output = twofactor(&[command, "--help"]);
        assert!(output.status.success(), "{command} --help");
        snapshot(&format!("help-{command}"), &text(&output.stdout));
    }
    for command in SUBCOMMANDS {
        let output = twofactor(&[command, &["--help"][..]].concat());
        assert!(output.status.success(), "{command:?} --help");
        snapshot(
            &format!("help-{}", command.join("-")),
            &text(&output.stdout),
        );
    }
}

#[test]
fn help_fits_80_columns() {
    let mut pages = vec![twofactor(&["--help"]), twofactor(&["-h"])];
    for command in COMMANDS {
        pages.push(twofactor(&[command, "--help"]));
        pages.push(twofactor(&[command, "-h"]));
    }
    for command in SUBCOMMANDS {
        pages.push(twofactor(&[command, &["--help"][..]].concat()));
        pages.push(twofactor(&[command, &["-h"][..]].concat()));
    }
    for page in pages {
        for line in text(&page.stdout).lines() {
            assert!(line.chars().count() <= 80, "too wide: {line:?}");
        }
    }
}

#[test]
fn short_help_lists_every_visible_command() {
    let help = text(&twofactor(&["--help"]).stdout);
    for command in COMMANDS.iter().filter(|c| **c != "generate") {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} missing:\n{help}"
        );
    }
    assert!(!help.contains("generate"), "generate is hidden:\n{help}");
}

#[test]
fn version() {
    let output = twofactor(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        text(&output.stdout),
        format!("twofactor {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["enroll", "--bogus"],
        &["reset"],
        &["frobnicate"],
        &["generate", "completions", "tcsh"],
    ] {
        let output = twofactor(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn an_unreachable_bus_exits_2_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("none").display());
    let output = Command::new(BIN)
        .args(["status", "root"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("twofactor: cannot reach the system bus at unix:path="),
        "{stderr}"
    );
    assert!(stderr.contains("systemctl start dbus"), "{stderr}");
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(BIN)
        .args(["generate", "completions", "bash"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stderr), "");
}

fn man_pages() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let output = twofactor(&["generate", "man", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    (dir, out)
}

#[test]
fn the_man_page_names_every_command() {
    let (_dir, out) = man_pages();
    let page = std::fs::read_to_string(out.join("twofactor.1")).unwrap();
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains("\n.TH "),
        "{page}"
    );
    assert!(page.contains(".TH twofactor 1"), "{page}");
    for command in COMMANDS.iter().filter(|c| **c != "generate") {
        let escaped = format!("twofactor\\-{}(1)", command.replace('-', "\\-"));
        assert!(page.contains(&escaped), "{escaped} missing:\n{page}");
        let sub = out.join(format!("twofactor-{command}.1"));
        let sub_page =
            std::fs::read_to_string(&sub).unwrap_or_else(|_| panic!("{} missing", sub.display()));
        assert!(sub_page.contains(".TH twofactor-"), "{sub_page}");
    }
    assert!(!out.join("twofactor-generate.1").exists());
    for command in SUBCOMMANDS {
        let sub = out.join(format!("twofactor-{}.1", command.join("-")));
        let sub_page =
            std::fs::read_to_string(&sub).unwrap_or_else(|_| panic!("{} missing", sub.display()));
        assert!(sub_page.contains(".TH twofactor-import-"), "{sub_page}");
    }
    assert!(!out.join("twofactor-import-help.1").exists());
    assert!(!page.contains("twofactor\\-help"), "{page}");
    // The same page on standard output.
    let stdout = text(&twofactor(&["generate", "man"]).stdout);
    assert_eq!(stdout, page);
}

#[test]
fn the_man_page_renders() {
    let (_dir, out) = man_pages();
    let rendered = match Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=80n"])
        .arg(out.join("twofactor.1"))
        .output()
    {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: groff is not installed; rendering not checked");
            return;
        }
        Err(error) => panic!("groff: {error}"),
    };
    assert!(rendered.status.success());
    assert_eq!(text(&rendered.stderr), "", "groff warnings");
    let plain = without_overstrike(&text(&rendered.stdout));
    for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SUBCOMMANDS"] {
        assert!(plain.contains(heading), "{heading} missing:\n{plain}");
    }
    for command in COMMANDS.iter().filter(|c| **c != "generate") {
        assert!(
            plain.contains(&format!("twofactor-{command}(1)")),
            "{command} missing:\n{plain}"
        );
    }
}

/// groff's terminal bold and underline (`c BS c`, `_ BS c`) as plain text.
fn without_overstrike(rendered: &str) -> String {
    let chars: Vec<char> = rendered.chars().collect();
    let mut plain = String::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '\u{8}' {
            i += 2;
            continue;
        }
        plain.push(chars[i]);
        i += 1;
    }
    plain
}

#[test]
fn completions_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, file) in [
        ("bash", "twofactor.bash"),
        ("zsh", "_twofactor"),
        ("fish", "twofactor.fish"),
    ] {
        let script = text(&twofactor(&["generate", "completions", shell]).stdout);
        for command in COMMANDS.iter().filter(|c| **c != "generate") {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
        let output = twofactor(&[
            "generate",
            "completions",
            shell,
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        assert!(output.status.success());
        let written = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(written, script);
        // A syntax check where the shell is installed.
        let check = Command::new(shell)
            .arg("-n")
            .arg(dir.path().join(file))
            .output();
        match check {
            Ok(output) => assert!(
                output.status.success(),
                "{shell} -n: {}",
                text(&output.stderr)
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("note: {shell} is not installed; syntax not checked");
            }
            Err(error) => panic!("{shell}: {error}"),
        }
    }
}
