//! Replays every fuzz target's committed corpus and regression inputs, on stable.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/KIND/TARGET/`, sorted; none when the directory does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_replays_its_corpus_and_regressions() {
    for (name, target) in twofactor_fuzz_targets::TARGETS {
        let corpus = inputs("corpus", name);
        let regressions = inputs("regressions", name);
        assert!(
            !corpus.is_empty() || !regressions.is_empty(),
            "fuzz/corpus/{name}/ and fuzz/regressions/{name}/ hold no input"
        );
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("read an input");
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                panic!("{name} fails on {}", path.display());
            }
        }
    }
}

#[test]
fn every_cargo_fuzz_target_is_replayed() {
    let listed = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let names: Vec<&str> = twofactor_fuzz_targets::TARGETS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    for line in listed.lines() {
        if let Some(name) = line
            .strip_prefix("name = \"")
            .and_then(|r| r.strip_suffix('"'))
            && name != "twofactor-fuzz"
        {
            assert!(names.contains(&name), "fuzz target {name} is not replayed");
        }
    }
    for name in names {
        assert!(
            listed.contains(&format!("name = \"{name}\"")),
            "{name} has no cargo-fuzz target"
        );
    }
}
