use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, Payload};

use super::*;

/// Key file text of the key 00 01 02 … 1f.
const COUNTING_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn key(byte: u8) -> FleetKey {
    FleetKey::from_bytes(&[byte; KEY_LEN])
}

fn keys(bytes: &[u8]) -> FleetKeys {
    let mut all: Vec<FleetKey> = bytes.iter().map(|&byte| key(byte)).collect();
    let first = all.remove(0);
    FleetKeys::new(first, all)
}

fn secret() -> Secret {
    Secret::from_bytes(b"12345678901234567890".to_vec())
}

fn parse(text: &str) -> Result<FleetKeys, KeyFileError> {
    FleetKeys::from_text(Path::new("/k"), text)
}

fn line_error(text: &str) -> (usize, LineProblem) {
    match parse(text) {
        Err(KeyFileError::Line { line, problem, .. }) => (line, problem),
        other => panic!("{other:?}"),
    }
}

#[test]
fn round_trip() {
    let keys = keys(&[1]);
    let sealed = seal(&keys, "alice", "e1", &secret()).unwrap();
    assert_eq!(sealed.key_id, keys.sealing_key().key_id());
    assert_eq!(open(&keys, "alice", "e1", &sealed).unwrap(), secret());
}

#[test]
fn each_seal_has_its_own_nonce() {
    let keys = keys(&[1]);
    let a = seal(&keys, "alice", "e1", &secret()).unwrap();
    let b = seal(&keys, "alice", "e1", &secret()).unwrap();
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn the_ciphertext_does_not_hold_the_secret() {
    let sealed = seal(&keys(&[1]), "alice", "e1", &secret()).unwrap();
    let text = sealed.to_string();
    assert!(!sealed.ciphertext.windows(4).any(|w| w == b"1234"));
    assert!(!text.contains(&*secret().to_base32()), "{text}");
}

#[test]
fn another_user_or_enrollment_does_not_open() {
    let keys = keys(&[1]);
    let sealed = seal(&keys, "alice", "e1", &secret()).unwrap();
    assert_eq!(open(&keys, "bob", "e1", &sealed), Err(OpenError));
    assert_eq!(open(&keys, "alice", "e2", &sealed), Err(OpenError));
    // Length prefixes: moving a byte from one field to the next changes the data.
    let sealed = seal(&keys, "ab", "c", &secret()).unwrap();
    assert_eq!(open(&keys, "a", "bc", &sealed), Err(OpenError));
}

#[test]
fn another_key_id_does_not_open() {
    // Both keys present: only the binding of the key id can refuse this.
    let keys = keys(&[1, 2]);
    let mut sealed = seal(&keys, "alice", "e1", &secret()).unwrap();
    sealed.key_id = key(2).key_id();
    assert_eq!(open(&keys, "alice", "e1", &sealed), Err(OpenError));
}

#[test]
fn the_key_id_is_bound_even_for_the_same_sealing_key() {
    // Only a forged key can share a sealing key under another id; the binding must still hold.
    let real = key(1);
    let forged = FleetKey {
        key_id: key(2).key_id(),
        ..real.clone()
    };
    let mut sealed = seal(&FleetKeys::new(real, vec![]), "alice", "e1", &secret()).unwrap();
    sealed.key_id = forged.key_id();
    let forged_keys = FleetKeys::new(forged, vec![]);
    assert_eq!(open(&forged_keys, "alice", "e1", &sealed), Err(OpenError));
}

#[test]
fn a_key_this_host_lacks_does_not_open() {
    let sealed = seal(&keys(&[1]), "alice", "e1", &secret()).unwrap();
    assert_eq!(open(&keys(&[2]), "alice", "e1", &sealed), Err(OpenError));
}

#[test]
fn every_changed_byte_is_refused() {
    let keys = keys(&[1]);
    let sealed = seal(&keys, "alice", "e1", &secret()).unwrap();
    for index in 0..sealed.nonce.len() {
        let mut changed = sealed.clone();
        changed.nonce[index] ^= 0x01;
        assert_eq!(open(&keys, "alice", "e1", &changed), Err(OpenError));
    }
    for index in 0..sealed.ciphertext.len() {
        let mut changed = sealed.clone();
        changed.ciphertext[index] ^= 0x80;
        assert_eq!(open(&keys, "alice", "e1", &changed), Err(OpenError));
    }
    for index in 0..KEY_ID_LEN {
        let mut changed = sealed.clone();
        changed.key_id.0[index] ^= 0x01;
        assert_eq!(open(&keys, "alice", "e1", &changed), Err(OpenError));
    }
    let mut cut = sealed.clone();
    cut.ciphertext.pop();
    assert_eq!(open(&keys, "alice", "e1", &cut), Err(OpenError));
}

#[test]
fn text_form_round_trip() {
    let keys = keys(&[1]);
    let sealed = seal(&keys, "alice", "e1", &secret()).unwrap();
    let text = sealed.to_string();
    assert!(
        text.starts_with(&format!("v1:{}:", sealed.key_id)),
        "{text}"
    );
    assert_eq!(text.parse::<Sealed>().unwrap(), sealed);
}

#[test]
fn bad_text_forms_are_refused() {
    let good = seal(&keys(&[1]), "alice", "e1", &secret())
        .unwrap()
        .to_string();
    let fields: Vec<&str> = good.split(':').collect();
    let with = |index: usize, value: &str| {
        let mut fields = fields.clone();
        fields[index] = value;
        fields.join(":")
    };
    for bad in [
        String::new(),
        "v1:00".into(),
        format!("{good}:extra"),
        with(0, "v2"),
        with(1, "0011"),
        with(1, "zz11223344556677"),
        with(2, "AAAA"),
        with(2, "not base64!"),
        with(3, "not base64!"),
    ] {
        assert!(bad.parse::<Sealed>().is_err(), "{bad}");
    }
}

#[test]
fn rotation_old_and_new_both_open_and_reseal_moves_to_the_new_key() {
    let old_only = keys(&[1]);
    let rotated = keys(&[2, 1]);
    let sealed = seal(&old_only, "alice", "e1", &secret()).unwrap();
    // A host that has the new file opens rows not yet re-sealed.
    assert_eq!(open(&rotated, "alice", "e1", &sealed).unwrap(), secret());
    let resealed = reseal(&rotated, "alice", "e1", &sealed).unwrap().unwrap();
    assert_eq!(resealed.key_id, key(2).key_id());
    assert_eq!(open(&rotated, "alice", "e1", &resealed).unwrap(), secret());
    assert_eq!(open(&old_only, "alice", "e1", &resealed), Err(OpenError));
    // Already under the first key: nothing to write.
    assert!(
        reseal(&rotated, "alice", "e1", &resealed)
            .unwrap()
            .is_none()
    );
}

#[test]
fn reseal_refuses_what_does_not_open() {
    let sealed = seal(&keys(&[1]), "alice", "e1", &secret()).unwrap();
    assert!(matches!(
        reseal(&keys(&[2, 3]), "alice", "e1", &sealed),
        Err(ResealError::Open(OpenError))
    ));
    assert!(matches!(
        reseal(&keys(&[1]), "bob", "e1", &sealed),
        Err(ResealError::Open(OpenError))
    ));
}

#[test]
fn key_ids_and_verifiers_differ_between_keys_and_from_each_other() {
    assert_ne!(key(1).key_id(), key(2).key_id());
    assert_ne!(key(1).verifier(), key(2).verifier());
    assert!(!key(1).verifier().starts_with(&key(1).key_id().to_string()));
    assert_eq!(
        KeyId::parse(&key(1).key_id().to_string()),
        Some(key(1).key_id())
    );
}

#[test]
fn verifier_check() {
    let keys = keys(&[2, 1]);
    let old = key(1);
    assert_eq!(
        keys.check_verifier(&old.key_id().to_string(), &old.verifier()),
        Ok(())
    );
    let stranger = key(3);
    let mismatch = keys
        .check_verifier(&stranger.key_id().to_string(), &stranger.verifier())
        .unwrap_err();
    assert_eq!(mismatch.database_key_id, stranger.key_id().to_string());
    // The right id with another key's verifier: a key that only collides on its id.
    assert!(
        keys.check_verifier(&old.key_id().to_string(), &stranger.verifier())
            .is_err()
    );
    assert!(keys.check_verifier("not hex", &old.verifier()).is_err());
}

/// RFC 8439 §2.8.2: so that a change of algorithm or of its use fails here.
#[test]
fn aead_known_answer_rfc8439() {
    let mut key = [0u8; KEY_LEN];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = 0x80 + index as u8;
    }
    let nonce = hex::decode("070000004041424344454647").unwrap();
    let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
    let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only \
                      one tip for the future, sunscreen would be it.";
    let expected = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6\
                    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
                    92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
                    3ff4def08e4b7a9de576d26586cec64b6116\
                    1ae10b594f09e26a7e902ecbd0600691";
    let nonce: [u8; NONCE_LEN] = nonce.try_into().unwrap();
    let sealed = cipher_for(&key)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(hex::encode(sealed), expected);
}

/// The whole construction (derived keys, associated data, text form), pinned to a value
/// computed independently (Python's `hmac` and `cryptography`): rows sealed today must open
/// after any refactoring.
#[test]
fn sealed_form_known_answer() {
    let keys = parse(COUNTING_KEY).unwrap();
    let key = keys.sealing_key();
    assert_eq!(key.key_id().to_string(), "4145e94e0464b2f1");
    assert_eq!(
        key.verifier(),
        "bff124d6bb30e9ab11c6f02af2c0dbfb05c439f60ae4a17083665f703a1223d1"
    );
    let nonce: [u8; NONCE_LEN] = core::array::from_fn(|index| index as u8);
    let sealed = seal_with_nonce(key, "alice", "e1", &secret(), nonce).unwrap();
    let expected = "v1:4145e94e0464b2f1:AAECAwQFBgcICQoL:\
                    a5b2C4Fp/wcw0U2nM4QGnUxyb/lEAFcZ+BRhW1CVlMscx3rX";
    assert_eq!(sealed.to_string(), expected);
    let parsed: Sealed = expected.parse().unwrap();
    assert_eq!(open(&keys, "alice", "e1", &parsed).unwrap(), secret());
}

/// How key bytes would look in a Debug output: hex, or a list of numbers.
fn shown_forms(bytes: &[u8]) -> [String; 2] {
    let numbers: Vec<String> = bytes[..4].iter().map(u8::to_string).collect();
    [hex::encode(&bytes[..6]), numbers.join(", ")]
}

#[test]
fn debug_never_shows_key_bytes() {
    let keys = parse(COUNTING_KEY).unwrap();
    let key = keys.sealing_key();
    let shown = format!("{keys:?} {key:?} {keys:#?}");
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.contains(&COUNTING_KEY[..8]), "{shown}");
    // A raw key that is not a counting sequence, so "0, 1, 2, 3" cannot hide elsewhere.
    let raw: [u8; KEY_LEN] = core::array::from_fn(|i| 200 - i as u8);
    let other = FleetKey::from_bytes(&raw);
    let shown_other = format!("{other:?} {other:#?}");
    for form in shown_forms(&raw)
        .into_iter()
        .chain(shown_forms(other.sealing_key.as_slice()))
        .chain(shown_forms(key.sealing_key.as_slice()))
    {
        assert!(!shown.contains(&form), "{form} in {shown}");
        assert!(!shown_other.contains(&form), "{form} in {shown_other}");
    }
    // The verifier is not secret, but a log has no use for it either.
    assert!(!shown.contains(&key.verifier()[..16]), "{shown}");
}

#[test]
fn key_file_with_comments_blank_lines_and_rotation() {
    let other = Base64::encode_string(&[7u8; KEY_LEN]);
    let text = format!("# new key, since 2026-12\n{other}\n\n  {COUNTING_KEY}  \r\n");
    let keys = parse(&text).unwrap();
    assert_eq!(
        keys.key_ids(),
        vec![
            FleetKey::from_bytes(&[7u8; KEY_LEN]).key_id(),
            KeyId::parse("4145e94e0464b2f1").unwrap()
        ]
    );
    // No trailing newline is fine too.
    assert!(parse(COUNTING_KEY).is_ok());
}

#[test]
fn key_file_bad_lines_are_named_by_number() {
    let good = COUNTING_KEY;
    assert_eq!(
        line_error(&format!("{good}\n\n{good}x\n")),
        (3, LineProblem::NotBase64)
    );
    assert_eq!(
        line_error(&format!("# c\n{}\n", Base64::encode_string(&[1u8; 16]))),
        (2, LineProblem::WrongLength { bytes: 16 })
    );
    assert_eq!(
        line_error(&Base64::encode_string(&[1u8; 33])),
        (1, LineProblem::WrongLength { bytes: 33 })
    );
    assert_eq!(
        line_error(&Base64::encode_string(&[1u8; 200])).1,
        LineProblem::WrongLength { bytes: 201 }
    );
    // Unpadded or URL-safe base64 is not the format.
    assert_eq!(
        line_error(good.trim_end_matches('=')),
        (1, LineProblem::NotBase64)
    );
    assert_eq!(
        line_error(&format!("{good}\n{good}\n")),
        (2, LineProblem::Repeated { first_line: 1 })
    );
    assert!(matches!(
        parse("# only a comment\n\n"),
        Err(KeyFileError::NoKey { .. })
    ));
    // The message names the line, never what is on it.
    let bad = format!("{}!\n", &good[..43]);
    let message = parse(&bad).unwrap_err().to_string();
    assert!(message.starts_with("/k:1:"), "{message}");
    assert!(!message.contains(&good[..20]), "{message}");
}

fn key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
fn new_key_file_loads_and_refuses_to_overwrite() {
    let dir = key_dir();
    let path = dir.path().join("secret.key");
    let key_id = write_new_key_file(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 45);
    assert!(text.ends_with('\n'));
    let keys = FleetKeys::load(&path).unwrap();
    assert_eq!(keys.key_ids(), vec![key_id]);
    let error = write_new_key_file(&path).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let second = dir.path().join("second.key");
    assert_ne!(write_new_key_file(&second).unwrap(), key_id);
}

#[test]
fn new_key_file_does_not_follow_a_link() {
    let dir = key_dir();
    let target = dir.path().join("target");
    let link = dir.path().join("secret.key");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(write_new_key_file(&link).is_err());
    assert!(!target.exists());
}

#[test]
fn key_file_modes() {
    let dir = key_dir();
    let path = dir.path().join("secret.key");
    std::fs::write(&path, format!("{COUNTING_KEY}\n")).unwrap();
    for (mode, loads) in [
        (0o600, true),
        (0o400, true),
        (0o640, false),
        (0o604, false),
        (0o620, false),
        (0o601, false),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(FleetKeys::load(&path).is_ok(), loads, "{mode:o}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let message = FleetKeys::load(&path).unwrap_err().to_string();
    assert!(message.contains("chmod 0600"), "{message}");
}

#[test]
fn key_file_owner_and_place() {
    let dir = key_dir();
    let path = dir.path().join("secret.key");
    std::fs::write(&path, format!("{COUNTING_KEY}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(FleetKeys::load(&path).is_ok());
    // The directory on the way: others could replace the file.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        FleetKeys::load(&path),
        Err(KeyFileError::Unsafe(_))
    ));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    match FleetKeys::load(&path) {
        Err(KeyFileError::Unsafe(reason)) => assert_eq!(
            reason.problem,
            twofactor_config::file_safety::Problem::NotRootOwned { uid: 65534 }
        ),
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("missing.key");
    match FleetKeys::load(&missing) {
        Err(KeyFileError::Unsafe(reason)) => assert_eq!(
            reason.problem,
            twofactor_config::file_safety::Problem::Missing
        ),
        other => panic!("{other:?}"),
    }
    let directory = dir.path().join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    assert!(FleetKeys::load(&directory).is_err());
}

#[test]
fn key_file_bad_line_through_load_names_the_file_and_line() {
    let dir = key_dir();
    let path = dir.path().join("secret.key");
    std::fs::write(&path, format!("{COUNTING_KEY}\nshort\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let message = FleetKeys::load(&path).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}:2:", path.display())),
        "{message}"
    );
}
