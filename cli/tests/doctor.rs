//! `twofactor doctor --root TREE --json` on the corpus of configuration trees in
//! `tests/doctor/`.
//!
//! Each `corpus/NAME/` holds `expected.json` (`base`: layers copied first, from
//! `tests/doctor/layers/`; `exit`; `findings`: the (severity, file, line) that must appear) and
//! `root/`, copied over the layers. A finding that disappears fails, and so does any warning or
//! error that `expected.json` does not list. Notes may come and go.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_twofactor");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn doctor_dir() -> PathBuf {
    repo().join("tests/doctor")
}

/// Copies the files under `from` into `to` (empty-directory markers left out).
fn copy_tree(from: &Path, to: &Path) {
    if !from.exists() {
        return;
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != ".keep" {
            std::fs::create_dir_all(to).unwrap();
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn layer(name: &str, to: &Path) {
    let from = doctor_dir().join("layers").join(name);
    assert!(from.is_dir(), "no layer {}", from.display());
    copy_tree(&from, to);
}

/// Runs the doctor on `root`: (exit code, findings).
fn doctor(root: &Path) -> (i32, Vec<Value>) {
    let output = Command::new(BIN)
        .args(["doctor", "--json", "--root"])
        .arg(root)
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let findings = json["findings"].as_array().expect("findings").clone();
    for finding in &findings {
        let keys: Vec<&str> = finding
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            ["file", "fix", "line", "message", "severity"],
            "{finding}"
        );
    }
    (output.status.code().unwrap(), findings)
}

fn key(finding: &Value) -> (String, String, Value) {
    (
        finding["severity"].as_str().unwrap().to_owned(),
        finding["file"].as_str().unwrap().to_owned(),
        finding["line"].clone(),
    )
}

fn shown(findings: &[Value]) -> String {
    findings.iter().map(|f| format!("  {f}\n")).collect()
}

#[test]
fn the_corpus() {
    let mut trees: Vec<PathBuf> = std::fs::read_dir(doctor_dir().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    trees.sort();
    assert!(trees.len() >= 20, "corpus missing?");
    let mut failures = Vec::new();
    for tree in trees {
        let name = tree.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(tree.join("expected.json")).unwrap())
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        for base in expected["base"].as_array().unwrap() {
            layer(base.as_str().unwrap(), dir.path());
        }
        copy_tree(&tree.join("root"), dir.path());
        let (code, found) = doctor(dir.path());
        let wanted: Vec<_> = expected["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect();
        let got: Vec<_> = found.iter().map(key).collect();
        for want in &wanted {
            if !got.contains(want) {
                failures.push(format!(
                    "{name}: missing {want:?}; found:\n{}",
                    shown(&found)
                ));
            }
        }
        for (finding, k) in found.iter().zip(&got) {
            if k.0 != "note" && !wanted.contains(k) {
                failures.push(format!("{name}: unexpected {finding}"));
            }
        }
        if Some(i64::from(code)) != expected["exit"].as_i64() {
            failures.push(format!(
                "{name}: exit {code}, expected {}",
                expected["exit"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The shipped recipes, each on top of Debian 12's defaults (with the package installed),
/// together with every recipe that is not for SSH. `TWOFACTOR_DOCTOR_RECIPES` points the test
/// at another copy (to check it before the recipes exist on this branch).
#[test]
fn the_shipped_recipes_are_clean() {
    let recipes = std::env::var_os("TWOFACTOR_DOCTOR_RECIPES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("packaging/recipes"));
    let mut names: Vec<String> = std::fs::read_dir(&recipes)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.path().join("pam.d").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    assert!(
        !names.is_empty(),
        "no recipes found in {}: the doctor must find every shipped recipe clean",
        recipes.display()
    );
    let (ssh, other): (Vec<&String>, Vec<&String>) = names
        .iter()
        .partition(|n| recipes.join(n).join("sshd_config.d").is_dir());
    let groups: Vec<Vec<&String>> = if ssh.is_empty() {
        vec![other.clone()]
    } else {
        ssh.iter()
            .map(|s| [other.clone(), vec![*s]].concat())
            .collect()
    };
    for group in groups {
        let dir = tempfile::tempdir().unwrap();
        layer("debian12", dir.path());
        layer("installed", dir.path());
        for name in &group {
            copy_tree(
                &recipes.join(name).join("pam.d"),
                &dir.path().join("etc/pam.d"),
            );
            copy_tree(
                &recipes.join(name).join("sshd_config.d"),
                &dir.path().join("etc/ssh/sshd_config.d"),
            );
        }
        let (code, found) = doctor(dir.path());
        let bad: Vec<Value> = found
            .into_iter()
            .filter(|f| f["severity"] != "note")
            .collect();
        assert!(
            bad.is_empty() && code == 0,
            "recipes {group:?}: exit {code}\n{}",
            shown(&bad)
        );
    }
}

#[test]
fn a_missing_pam_dir_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["doctor", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("etc/pam.d"), "{stderr}");
}

#[test]
fn text_output_is_one_line_per_finding() {
    let dir = tempfile::tempdir().unwrap();
    layer("debian12", dir.path());
    layer("installed", dir.path());
    let tree = doctor_dir().join("corpus/pam-auth-update-stock-sshd/root");
    copy_tree(&tree, dir.path());
    let output = Command::new(BIN)
        .args(["doctor", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    let (_, findings) = doctor(dir.path());
    assert_eq!(text.lines().count(), findings.len(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("/etc/ssh/sshd_config:62: error: ") && l.contains(" Fix: ")),
        "{text}"
    );
}
