//! Backup codes: 10 random digits each, single use, stored as argon2id hashes under one
//! per-user salt so that checking an attempt costs one argon2 evaluation however many remain.

use std::sync::{Condvar, Mutex, OnceLock};

use argon2::{Argon2, Block};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secret::{constant_time_eq, fill_random};

pub use twofactor_proto::codes::BACKUP_CODE_DIGITS;
use twofactor_proto::codes::{BACKUP_CODE_GROUPS, group};
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// The stored form: a salt and the hashes of the codes not yet used. Hex encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupCodeHashes {
    /// Digits per code: 10 for ours, others for imported scratch codes.
    #[serde(default = "default_digits")]
    pub digits: usize,
    pub salt: String,
    pub hashes: Vec<String>,
}

fn default_digits() -> usize {
    BACKUP_CODE_DIGITS
}

/// Codes shown to the user once, formatted `12345-67890`.
pub type PlainCodes = Vec<Zeroizing<String>>;

fn hash(digits: &str, salt: &[u8]) -> std::io::Result<Zeroizing<[u8; HASH_LEN]>> {
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    let argon2 = Argon2::default();
    WorkAreas::global().with_area(argon2.params().block_count(), |area| {
        argon2
            .hash_password_into_with_memory(digits.as_bytes(), salt, out.as_mut(), area)
            .map_err(|error| std::io::Error::other(format!("argon2: {error}")))
    })?;
    Ok(out)
}

/// Argon2's 19 MiB work areas, reused and at most one per CPU. Allocating one per hash let
/// glibc keep every freed area in per-thread arenas (over 1 GB after a burst of enrollments);
/// with a fixed pool, memory stays bounded and concurrent hashes wait their turn.
struct WorkAreas {
    free: Mutex<Vec<Vec<Block>>>,
    returned: Condvar,
    limit: usize,
    made: Mutex<usize>,
}

impl WorkAreas {
    fn global() -> &'static WorkAreas {
        static AREAS: OnceLock<WorkAreas> = OnceLock::new();
        AREAS.get_or_init(|| WorkAreas {
            free: Mutex::new(Vec::new()),
            returned: Condvar::new(),
            limit: std::thread::available_parallelism().map_or(2, |n| n.get()),
            made: Mutex::new(0),
        })
    }

    fn with_area<R>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> R) -> R {
        let mut area = self.take(blocks);
        let result = work(&mut area);
        // What is left in the area is derived from the code: wipe it before the next use.
        area.fill(Block::new());
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(area);
        self.returned.notify_one();
        result
    }

    fn take(&self, blocks: usize) -> Vec<Block> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(area) = free.pop() {
                return area;
            }
            {
                let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
                if *made < self.limit {
                    *made += 1;
                    return vec![Block::new(); blocks];
                }
            }
            free = self.returned.wait(free).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A new set of `count` codes and their hashes under a new salt.
pub fn generate(count: usize) -> std::io::Result<(PlainCodes, BackupCodeHashes)> {
    let mut codes: Vec<Zeroizing<String>> = Vec::with_capacity(count);
    while codes.len() < count {
        let digits = random_digits(BACKUP_CODE_DIGITS)?;
        if !codes.contains(&digits) {
            codes.push(digits);
        }
    }
    let hashes = BackupCodeHashes::of(&codes)?;
    let plain = codes
        .iter()
        .map(|digits| group(digits, BACKUP_CODE_GROUPS[0]))
        .collect();
    Ok((plain, hashes))
}

/// Uniform random decimal digits (rejection sampling, no modulo bias).
pub fn random_digits(count: usize) -> std::io::Result<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(count));
    let mut pool = Zeroizing::new([0u8; 32]);
    while out.len() < count {
        fill_random(pool.as_mut())?;
        for &byte in pool.iter() {
            if byte < 250 && out.len() < count {
                out.push(char::from(b'0' + byte % 10));
            }
        }
    }
    Ok(out)
}

impl BackupCodeHashes {
    /// Hashes of `codes` (digits only, all of one length) under a new salt.
    pub fn of(codes: &[Zeroizing<String>]) -> std::io::Result<BackupCodeHashes> {
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let hashes = codes
            .iter()
            .map(|digits| Ok(hex::encode(hash(digits, &salt)?.as_ref())))
            .collect::<std::io::Result<Vec<String>>>()?;
        Ok(BackupCodeHashes {
            digits: codes.first().map_or(BACKUP_CODE_DIGITS, |code| code.len()),
            salt: hex::encode(salt),
            hashes,
        })
    }

    /// Whether typed digits have the length of these codes.
    pub fn fits(&self, digits: &str) -> bool {
        !self.hashes.is_empty() && digits.len() == self.digits
    }

    pub fn remaining(&self) -> u32 {
        self.hashes.len() as u32
    }

    /// The index of the stored code matching `digits` (already normalized), if any. One argon2
    /// evaluation; every stored hash is compared in constant time.
    pub fn find(&self, digits: &str) -> std::io::Result<Option<usize>> {
        let salt = hex::decode(&self.salt)
            .map_err(|_| std::io::Error::other("backup code salt is not hex"))?;
        let attempt = hash(digits, &salt)?;
        let mut found = None;
        for (index, stored) in self.hashes.iter().enumerate() {
            let stored = hex::decode(stored)
                .map_err(|_| std::io::Error::other("backup code hash is not hex"))?;
            if constant_time_eq(&stored, attempt.as_ref()) && found.is_none() {
                found = Some(index);
            }
        }
        Ok(found)
    }

    /// Spend the code at `index`.
    pub fn remove(&mut self, index: usize) {
        if index < self.hashes.len() {
            self.hashes.remove(index);
        }
    }
}

/// The cost of checking a backup code, for users that do not exist or have no codes, so that
/// timing does not tell them apart.
pub fn dummy_check(digits: &str) {
    let _ = hash(digits, &[0u8; SALT_LEN]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofactor_proto::codes::normalize;

    #[test]
    fn ten_distinct_well_formed_codes() {
        let (plain, hashes) = generate(10).unwrap();
        assert_eq!(plain.len(), 10);
        assert_eq!(hashes.remaining(), 10);
        for code in &plain {
            let bytes = code.as_bytes();
            assert_eq!(bytes.len(), 11, "{}", code.as_str());
            assert_eq!(bytes[5], b'-');
            assert!(
                bytes
                    .iter()
                    .enumerate()
                    .all(|(i, b)| i == 5 || b.is_ascii_digit())
            );
        }
        let mut unique: Vec<&str> = plain.iter().map(|c| c.as_str()).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
    }

    #[test]
    fn hashes_reveal_no_code() {
        let (plain, hashes) = generate(3).unwrap();
        let stored = format!("{hashes:?}");
        for code in &plain {
            assert!(!stored.contains(&normalize(code).to_string()));
        }
    }

    #[test]
    fn single_use_in_any_spelling() {
        let (plain, mut hashes) = generate(10).unwrap();
        let code = plain[3].as_str();
        for spelling in [
            code.to_string(),
            code.replace('-', ""),
            code.replace('-', " "),
        ] {
            assert_eq!(
                hashes.find(&normalize(&spelling)).unwrap(),
                Some(3),
                "{spelling}"
            );
        }
        hashes.remove(3);
        assert_eq!(hashes.find(&normalize(code)).unwrap(), None);
        assert_eq!(hashes.remaining(), 9);
        // The others still work.
        assert!(hashes.find(&normalize(&plain[9])).unwrap().is_some());
    }

    #[test]
    fn wrong_code_is_refused() {
        let (_, hashes) = generate(10).unwrap();
        assert_eq!(hashes.find("0000000000").unwrap(), None);
    }

    #[test]
    fn a_new_set_invalidates_the_old() {
        let (old_plain, _) = generate(10).unwrap();
        let (_, new_hashes) = generate(10).unwrap();
        for code in &old_plain {
            assert_eq!(new_hashes.find(&normalize(code)).unwrap(), None);
        }
    }

    #[test]
    fn imported_codes_keep_their_length() {
        let codes: Vec<Zeroizing<String>> = ["12345678", "87654321"]
            .iter()
            .map(|c| Zeroizing::new(c.to_string()))
            .collect();
        let hashes = BackupCodeHashes::of(&codes).unwrap();
        assert_eq!(hashes.digits, 8);
        assert!(hashes.fits("11112222") && !hashes.fits("1111222233"));
        assert_eq!(hashes.find("87654321").unwrap(), Some(1));
    }

    #[test]
    fn concurrent_hashes_share_a_bounded_pool() {
        let (_, hashes) = generate(1).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| assert_eq!(hashes.find("0000000000").unwrap(), None));
            }
        });
        let areas = WorkAreas::global();
        let made = *areas.made.lock().unwrap();
        assert!(
            made >= 1 && made <= areas.limit,
            "{made} areas for {} CPUs",
            areas.limit
        );
    }

    #[test]
    fn grouping() {
        assert_eq!(group("123456789012", 4).as_str(), "1234-5678-9012");
        assert_eq!(group("1234567890", 5).as_str(), "12345-67890");
    }

    #[test]
    fn corrupt_hex_is_an_error_not_a_miss() {
        let hashes = BackupCodeHashes {
            digits: 10,
            salt: "zz".into(),
            hashes: vec![],
        };
        assert!(hashes.find("1234567890").is_err());
    }

    /// A record written before the hex crate replaced the hand-written encoder must still verify.
    #[test]
    fn a_stored_record_still_verifies() {
        let stored: BackupCodeHashes = toml::from_str(
            r#"
            digits = 10
            salt = "a5caef14395e83a8cdf2173c6186abd0"
            hashes = ["7c0240e25dcab607a5c29c667dfa6ebf6cb1c53cd31676fd31dcad9920afcb27"]
            "#,
        )
        .unwrap();
        assert_eq!(stored.find("1234567890").unwrap(), Some(0));
        assert_eq!(stored.find("1234567891").unwrap(), None);
        assert_eq!(
            toml::to_string(&stored)
                .unwrap()
                .matches("7c0240e2")
                .count(),
            1
        );
    }

    #[test]
    fn new_records_are_lowercase_hex_of_the_same_lengths() {
        let (_, hashes) = generate(1).unwrap();
        for text in std::iter::once(&hashes.salt).chain(&hashes.hashes) {
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
        assert_eq!(hashes.salt.len(), 2 * SALT_LEN);
        assert_eq!(hashes.hashes[0].len(), 2 * HASH_LEN);
    }
}
