//! The golden records in tests/fixtures/records/ (how each was made: its README.md): every
//! shape a twofactord ever wrote is read and upgraded, and the current one is written byte for
//! byte as the file has it.

use std::path::PathBuf;

use twofactor_config::Algorithm;

use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/records");

/// What a golden file must read as, and the plain codes its hashes were made from (so the
/// hashes are checked by the code they verify, not copied).
struct Expected {
    record: UserRecord,
    backup_codes: &'static [&'static str],
    temporary_code: Option<&'static str>,
    sent_code: Option<&'static str>,
}

fn enrolled(algorithm: Algorithm, digits: u32, window: Option<u32>) -> Enrollment {
    Enrollment {
        totp: TotpEnrollment {
            secret: Secret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap(),
            algorithm,
            digits,
            period: 30,
            enrolled_at: 1_764_608_000,
            last_step: Some(58_820_310),
            window,
        },
        // Taken from the file once the codes below verify against it.
        backup_codes: BackupCodeHashes::default(),
    }
}

fn last_success() -> Option<LastUse> {
    Some(LastUse {
        time: 1_764_609_300,
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
    })
}

fn one_time(expires_at: u64) -> Option<OneTimeCode> {
    Some(OneTimeCode {
        hash: BackupCodeHashes::default(),
        expires_at,
    })
}

const OUR_BACKUP_CODES: &[&str] = &["1111122222", "3333344444", "5555566666"];

/// An enrolled user of 190415b and after: SHA256, 8 digits, an imported window, a temporary
/// code and delivery.
fn enrolled_later(replace_without_code_until: u64, attempts: AttemptState) -> Expected {
    Expected {
        record: UserRecord {
            version: RECORD_VERSION,
            attempts,
            delivery_enabled: true,
            sends: vec![1_764_609_100],
            enrollment: Some(enrolled(Algorithm::Sha256, 8, Some(2))),
            last_success: last_success(),
            temporary_code: one_time(1_764_695_700),
            replace_without_code_until,
            ..UserRecord::default()
        },
        backup_codes: OUR_BACKUP_CODES,
        temporary_code: Some("739142085561"),
        sent_code: None,
    }
}

/// A user in a grace period who asked for a code by the delivery channel.
fn in_grace() -> Expected {
    Expected {
        record: UserRecord {
            version: RECORD_VERSION,
            delivery_enabled: true,
            sends: vec![1_764_600_000],
            grace_started: Some(1_764_600_000),
            sent_code: one_time(1_764_600_300),
            ..UserRecord::default()
        },
        backup_codes: &[],
        temporary_code: None,
        sent_code: Some("482913"),
    }
}

fn attempts_before_sources() -> AttemptState {
    AttemptState {
        consecutive_failures: 1,
        last_failure: 1_764_609_400,
        failures_since_success: 3,
        ..AttemptState::default()
    }
}

fn attempts_by_source() -> AttemptState {
    AttemptState {
        consecutive_failures: 4,
        last_failure: 1_764_609_400,
        locked: false,
        failures_since_success: 4,
        locked_until: 0,
        last_lock: 1_733_000_000,
        locks: 1,
        sources: vec![
            SourceAttempts {
                source: "2001:db8:0:1::/64".into(),
                failures: 1,
                last_failure: 1_764_609_000,
                last_skew: None,
            },
            SourceAttempts {
                source: "192.0.2.9".into(),
                failures: 3,
                last_failure: 1_764_609_400,
                last_skew: Some(SkewMatch {
                    seconds: -90,
                    step: 58_820_313,
                }),
            },
        ],
    }
}

fn expected(name: &str) -> Option<Expected> {
    Some(match name {
        // The first daemon: the enrollment at the top level, no backup code digits.
        "v1-17a7768-enrolled.toml" => Expected {
            record: UserRecord {
                version: RECORD_VERSION,
                attempts: AttemptState {
                    consecutive_failures: 2,
                    last_failure: 1_764_609_400,
                    failures_since_success: 2,
                    ..AttemptState::default()
                },
                enrollment: Some(enrolled(Algorithm::Sha1, 6, None)),
                last_success: last_success(),
                ..UserRecord::default()
            },
            backup_codes: &["0886531502", "2515147160", "6683262853"],
            temporary_code: None,
            sent_code: None,
        },
        "v1-190415b-enrolled.toml" => enrolled_later(0, attempts_before_sources()),
        "v1-7a7e872-enrolled.toml" => enrolled_later(1_764_610_000, attempts_before_sources()),
        "v1-190415b-in-grace.toml" | "v1-7a7e872-in-grace.toml" | "v2-in-grace.toml" => in_grace(),
        "v1-45580cc-enrolled.toml" | "v2-enrolled.toml" => {
            enrolled_later(1_764_610_000, attempts_by_source())
        }
        _ => return None,
    })
}

fn golden_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path: PathBuf| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Checks `hash` verifies `code` and has its length, then returns it for the expected record.
fn verified(hash: &BackupCodeHashes, codes: &[&str], file: &str) -> BackupCodeHashes {
    for code in codes {
        assert!(hash.fits(code), "{file}: {code} does not fit");
        assert!(
            hash.find(code).unwrap().is_some(),
            "{file}: {code} is not verified"
        );
    }
    assert_eq!(hash.remaining() as usize, codes.len(), "{file}");
    hash.clone()
}

#[test]
fn every_golden_record_reads_as_expected_and_is_written_as_the_current_version() {
    let files = golden_files();
    assert!(files.len() >= 8, "{files:?}");
    for (name, text) in &files {
        let Some(mut want) = expected(name) else {
            panic!("{name}: add what it must read as to expected() in record/tests.rs");
        };
        let record = UserRecord::from_text(text).unwrap_or_else(|error| panic!("{name}: {error}"));
        if let (Some(got), Some(wanted)) = (&record.enrollment, &mut want.record.enrollment) {
            wanted.backup_codes = verified(&got.backup_codes, want.backup_codes, name);
        }
        for (got, want, code) in [
            (
                &record.temporary_code,
                &mut want.record.temporary_code,
                want.temporary_code,
            ),
            (
                &record.sent_code,
                &mut want.record.sent_code,
                want.sent_code,
            ),
        ] {
            if let (Some(got), Some(wanted), Some(code)) = (got, want, code) {
                wanted.hash = verified(&got.hash, &[code], name);
            }
        }
        assert_eq!(record, want.record, "{name}");

        let written = record.to_text().unwrap();
        assert!(
            written.starts_with(&format!("version = {RECORD_VERSION}\n")),
            "{name}: {}",
            written.as_str()
        );
        assert_eq!(UserRecord::from_text(&written).unwrap(), record, "{name}");
        if name.starts_with(&format!("v{RECORD_VERSION}-")) {
            // An accidental change of the format fails here.
            assert_eq!(written.as_str(), text.as_str(), "{name}");
        }
    }
}

#[test]
fn every_version_has_a_golden_file_named_by_it() {
    let files = golden_files();
    for version in 1..=RECORD_VERSION {
        assert!(
            files
                .iter()
                .any(|(name, _)| name.starts_with(&format!("v{version}-"))),
            "no golden file of version {version}"
        );
    }
    for (name, text) in &files {
        let version = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("version = ");
        assert!(name.starts_with(&format!("v{version}-")), "{name}");
    }
}

fn current_text() -> String {
    golden_files()
        .into_iter()
        .find(|(name, _)| name == &format!("v{RECORD_VERSION}-enrolled.toml"))
        .unwrap()
        .1
}

#[test]
fn a_newer_version_is_refused_as_newer_whatever_it_holds() {
    let current = current_text();
    let newer = RECORD_VERSION + 1;
    let with_new_fields = current.replacen(
        &format!("version = {RECORD_VERSION}\n"),
        &format!("version = {newer}\nfuture_field = true\n"),
        1,
    );
    for text in [
        with_new_fields.as_str(),
        "version = 3000000000\nwhat = { ever = [1, 2] }\n",
    ] {
        let error = UserRecord::from_text(text).unwrap_err();
        assert!(
            matches!(error, FormatError::Newer { version, supported: RECORD_VERSION }
                if version >= newer),
            "{error:?}"
        );
    }
    let shown = FormatError::Newer {
        version: newer,
        supported: RECORD_VERSION,
    }
    .at(std::path::Path::new("/var/lib/twofactor/users/alice.toml"))
    .to_string();
    for part in [
        "/var/lib/twofactor/users/alice.toml",
        "newer twofactord",
        &format!("record version {newer}"),
        &format!("reads versions up to {RECORD_VERSION}"),
        "installed again",
    ] {
        assert!(shown.contains(part), "{part:?} in {shown}");
    }
}

#[test]
fn shapes_that_no_daemon_wrote_are_invalid() {
    let first = golden_files()
        .into_iter()
        .find(|(name, _)| name == "v1-17a7768-enrolled.toml")
        .unwrap()
        .1;
    let current = current_text();
    let cases = [
        // The first shape is version 1 only.
        first.replacen("version = 1\n", &format!("version = {RECORD_VERSION}\n"), 1),
        // The first shape and the enrollment table at once.
        format!("{first}\n[enrollment]\n"),
        current.replacen(&format!("version = {RECORD_VERSION}\n"), "version = 0\n", 1),
        current.replacen("locks = 1\n", "locks = 1\nunknown = 2\n", 1),
        current.replacen("window = 2", "window = 11", 1),
        "no_version = true\n".into(),
    ];
    for text in &cases {
        let result = UserRecord::from_text(text);
        assert!(
            matches!(result, Err(FormatError::Invalid(_))),
            "{text}: {result:?}"
        );
    }
}

#[test]
fn only_the_current_version_is_written() {
    let old = UserRecord {
        version: 1,
        ..UserRecord::new()
    };
    assert!(matches!(old.to_text(), Err(FormatError::Invalid(_))));
    assert_eq!(
        UserRecord::new().to_text().unwrap().as_str(),
        UserRecord::from_text(&UserRecord::new().to_text().unwrap())
            .unwrap()
            .to_text()
            .unwrap()
            .as_str()
    );
}
