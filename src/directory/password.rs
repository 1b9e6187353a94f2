//! Password storage and verification.
//!
//! New passwords are stored as argon2id in the PHC string format, behind the `{ARGON2}` scheme
//! tag OpenLDAP's argon2 module uses, so exports stay readable by OpenLDAP. Hashes imported
//! from OpenLDAP are verified as they are: `{SSHA}`, `{SSHA256}`, `{SSHA512}`, `{SMD5}`,
//! `{SHA}`, `{MD5}`, `{CRYPT}` (the crypt(3) families: `$1$`, `$5$`, `$6$`, `$2b$`, DES) and
//! `{ARGON2}`. Digest comparisons are constant-time.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::Md5;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// argon2id cost parameters for new hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Cost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Cost {
    /// OWASP's recommended minimum for argon2id (19 MiB, 2 passes, 1 lane).
    fn default() -> Self {
        Argon2Cost {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

fn argon2(cost: Argon2Cost) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| PasswordError::Params(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a new password: `{ARGON2}$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
pub fn hash_password(password: &[u8], cost: Argon2Cost) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let hash = argon2(cost)?
        .hash_password(password, &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(format!("{{ARGON2}}{hash}"))
}

/// Hashes with a given salt: only for reproducible fixtures (the generator's demo data).
pub fn hash_password_with_salt(
    password: &[u8],
    salt: &[u8],
    cost: Argon2Cost,
) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let hash = argon2(cost)?
        .hash_password(password, &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(format!("{{ARGON2}}{hash}"))
}

/// The scheme tag of a stored value (`SSHA` for `{SSHA}...`), upper-cased.
pub fn scheme_of(stored: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(stored).ok()?;
    let rest = text.strip_prefix('{')?;
    let end = rest.find('}')?;
    let scheme = rest.get(..end)?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    Some(scheme.to_ascii_uppercase())
}

/// Schemes this server can verify.
pub fn is_supported_scheme(scheme: &str) -> bool {
    matches!(
        scheme,
        "SSHA"
            | "SSHA256"
            | "SSHA512"
            | "SMD5"
            | "SHA"
            | "SHA256"
            | "SHA512"
            | "MD5"
            | "CRYPT"
            | "ARGON2"
    )
}

fn salted_check<D: Digest>(password: &[u8], decoded: &[u8], digest_len: usize) -> bool {
    if decoded.len() < digest_len {
        return false;
    }
    let (expected, salt) = decoded.split_at(digest_len);
    let mut h = D::new();
    h.update(password);
    h.update(salt);
    let got = h.finalize();
    got.as_slice().ct_eq(expected).into()
}

fn plain_check<D: Digest>(password: &[u8], decoded: &[u8]) -> bool {
    let got = D::digest(password);
    got.as_slice().ct_eq(decoded).into()
}

/// Checks a password against one stored `userPassword` value.
pub fn verify(password: &[u8], stored: &[u8]) -> bool {
    let Some(scheme) = scheme_of(stored) else {
        // A value without a scheme is a clear-text password (as OpenLDAP treats it).
        return !stored.is_empty() && password.ct_eq(stored).into();
    };
    let body = stored.get(scheme.len() + 2..).unwrap_or_default();
    let body_text = std::str::from_utf8(body).unwrap_or("");
    let decoded = || B64.decode(body_text.trim()).ok();
    match scheme.as_str() {
        "SSHA" => decoded().is_some_and(|d| salted_check::<Sha1>(password, &d, 20)),
        "SSHA256" => decoded().is_some_and(|d| salted_check::<Sha256>(password, &d, 32)),
        "SSHA512" => decoded().is_some_and(|d| salted_check::<Sha512>(password, &d, 64)),
        "SMD5" => decoded().is_some_and(|d| salted_check::<Md5>(password, &d, 16)),
        "SHA" => decoded().is_some_and(|d| plain_check::<Sha1>(password, &d)),
        "SHA256" => decoded().is_some_and(|d| plain_check::<Sha256>(password, &d)),
        "SHA512" => decoded().is_some_and(|d| plain_check::<Sha512>(password, &d)),
        "MD5" => decoded().is_some_and(|d| plain_check::<Md5>(password, &d)),
        "CRYPT" => match std::str::from_utf8(password) {
            Ok(pw) => pwhash::unix::verify(pw, body_text),
            Err(_) => false,
        },
        "ARGON2" => match PasswordHash::new(body_text) {
            Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
            Err(_) => false,
        },
        _ => false,
    }
}

/// Whether a stored hash is slow by design (argon2id, crypt's bcrypt and SHA-crypt families):
/// the ones worth remembering a successful verification of.
pub fn is_slow(stored: &[u8]) -> bool {
    matches!(scheme_of(stored).as_deref(), Some("ARGON2") | Some("CRYPT"))
}

/// Remembers, in this process's memory only, that a password verified against a slow stored
/// hash, so that a client binding on every keystroke (Thunderbird) pays for argon2id once per
/// `ttl`, not once per bind. What is stored never changes: the directory keeps argon2id.
///
/// Each record is keyed by an HMAC of the stored hash and holds an HMAC of (stored hash,
/// password), both under a random key drawn when the process starts and never written
/// anywhere. A changed password changes the stored hash, so old records cannot match; a wrong
/// password misses and pays the full verification, as does anyone the cache has not seen.
/// Records expire after `ttl`, and the cache holds at most `capacity` of them.
type Tag = [u8; 32];

pub struct VerifiedCache {
    key: [u8; 32],
    ttl: std::time::Duration,
    capacity: usize,
    records: std::sync::Mutex<std::collections::HashMap<Tag, (Tag, std::time::Instant)>>,
    slow_checks: std::sync::atomic::AtomicU64,
}

impl VerifiedCache {
    pub fn new(ttl: std::time::Duration, capacity: usize) -> VerifiedCache {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        VerifiedCache {
            key,
            ttl,
            capacity,
            records: std::sync::Mutex::new(std::collections::HashMap::new()),
            slow_checks: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return [0u8; 32];
        };
        for p in parts {
            // Length-prefixed, so that part boundaries cannot shift.
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// [`verify`], answered from memory when this password was verified against this stored
    /// hash within the last `ttl`.
    pub fn verify(&self, password: &[u8], stored: &[u8]) -> bool {
        if self.capacity == 0 || !is_slow(stored) {
            return verify(password, stored);
        }
        let id = self.tag(&[b"stored", stored]);
        let proof = self.tag(&[b"password", stored, password]);
        let now = std::time::Instant::now();
        if let Ok(records) = self.records.lock() {
            if let Some((known, at)) = records.get(&id) {
                if now.duration_since(*at) < self.ttl && bool::from(known.ct_eq(&proof)) {
                    return true;
                }
            }
        }
        self.slow_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !verify(password, stored) {
            return false;
        }
        if let Ok(mut records) = self.records.lock() {
            if records.len() >= self.capacity {
                let ttl = self.ttl;
                records.retain(|_, (_, at)| now.duration_since(*at) < ttl);
            }
            if records.len() >= self.capacity {
                // Still full of live records: start over rather than grow.
                records.clear();
            }
            records.insert(id, (proof, now));
        }
        true
    }

    /// The answer when it costs nothing: a fast scheme checked now, or a slow one this
    /// password verified against lately. `None` when only a full slow check can tell.
    pub fn quick(&self, password: &[u8], stored: &[u8]) -> Option<bool> {
        if !is_slow(stored) {
            return Some(verify(password, stored));
        }
        if self.capacity == 0 {
            return None;
        }
        let id = self.tag(&[b"stored", stored]);
        let proof = self.tag(&[b"password", stored, password]);
        let records = self.records.lock().ok()?;
        let (known, at) = records.get(&id)?;
        (at.elapsed() < self.ttl && bool::from(known.ct_eq(&proof))).then_some(true)
    }

    /// Full (slow) verifications performed so far.
    pub fn slow_checks(&self) -> u64 {
        self.slow_checks.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// An argon2id hash of a random secret at the configured cost: checking a password against it
/// measures what a wrong password costs here, the floor failed binds are held to.
pub struct DecoyHash(String);

impl DecoyHash {
    pub fn new(cost: Argon2Cost) -> Result<DecoyHash, PasswordError> {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Ok(DecoyHash(hash_password(&bytes, cost)?))
    }

    pub fn burn(&self, password: &[u8]) {
        let _ = verify(password, self.0.as_bytes());
    }

    /// The median of three checks against the decoy: what verifying a wrong password against
    /// an argon2id hash of this cost takes on this machine.
    pub fn typical_duration(&self, password: &[u8]) -> std::time::Duration {
        let mut times: Vec<std::time::Duration> = (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                self.burn(password);
                started.elapsed()
            })
            .collect();
        times.sort();
        times.get(1).copied().unwrap_or_default()
    }
}

/// Characters of a generated password: letters and digits without the ones read alike
/// (`0 O o 1 l I`), so that a password read aloud or copied by hand survives.
const GENERATED_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
/// 20 of those 56 characters: about 116 bits from the operating system's generator.
pub const GENERATED_LENGTH: usize = 20;

/// A new random password (RFC 3062 §3.3: what the server answers a Password Modify request
/// without a new password).
pub fn generate() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..GENERATED_LENGTH)
        .map(|_| {
            let i = rng.gen_range(0..GENERATED_ALPHABET.len());
            char::from(GENERATED_ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Cost {
        Argon2Cost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn generated_passwords_are_long_random_and_unambiguous() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), GENERATED_LENGTH);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| GENERATED_ALPHABET.contains(&c)));
        assert!(!a.contains(['0', 'O', 'o', '1', 'l', 'I']));
    }

    #[test]
    fn verified_cache_saves_slow_checks_only_for_the_right_password() {
        let cache = VerifiedCache::new(std::time::Duration::from_secs(60), 10);
        let h = hash_password(b"s3cret", cheap()).unwrap();
        assert!(cache.verify(b"s3cret", h.as_bytes()));
        assert_eq!(cache.slow_checks(), 1);
        assert!(cache.verify(b"s3cret", h.as_bytes()));
        assert_eq!(cache.slow_checks(), 1, "second bind answered from memory");
        // A wrong password is never answered from memory, and does not evict the right one.
        assert!(!cache.verify(b"s3cret!", h.as_bytes()));
        assert_eq!(cache.slow_checks(), 2);
        assert!(cache.verify(b"s3cret", h.as_bytes()));
        assert_eq!(cache.slow_checks(), 2);
        // A new hash of the same password (a password change) is verified again.
        let h2 = hash_password(b"s3cret", cheap()).unwrap();
        assert!(cache.verify(b"s3cret", h2.as_bytes()));
        assert_eq!(cache.slow_checks(), 3);
        // Fast schemes are not cached: they are cheaper than the cache.
        let ssha = "{SSHA}lHFzXul4wnzRItssVcTnvXWRjNgBAgMEBQYHCA==";
        assert!(cache.verify(b"secret", ssha.as_bytes()));
        assert_eq!(cache.slow_checks(), 3);
        // Records expire.
        let expired = VerifiedCache::new(std::time::Duration::ZERO, 10);
        assert!(expired.verify(b"s3cret", h.as_bytes()));
        assert!(expired.verify(b"s3cret", h.as_bytes()));
        assert_eq!(expired.slow_checks(), 2);
        // The capacity bounds memory; a full cache still answers correctly.
        let small = VerifiedCache::new(std::time::Duration::from_secs(60), 1);
        assert!(small.verify(b"s3cret", h.as_bytes()));
        assert!(small.verify(b"s3cret", h2.as_bytes()));
        assert!(small.records.lock().unwrap().len() <= 1);
        assert!(!small.verify(b"nope", h.as_bytes()));
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash_password(b"s3cret", cheap()).unwrap();
        assert!(h.starts_with("{ARGON2}$argon2id$"));
        assert!(verify(b"s3cret", h.as_bytes()));
        assert!(!verify(b"s3cret!", h.as_bytes()));
    }

    #[test]
    fn openldap_schemes() {
        // Made with Python's hashlib and `openssl passwd` for the password "secret".
        for stored in [
            "{SSHA}lHFzXul4wnzRItssVcTnvXWRjNgBAgMEBQYHCA==",
            "{SSHA256}A7N1lAy5bBb4T6qH9e85zAvHBmzNPhRFbZ105DjjWDIBAgMEBQYHCA==",
            "{SSHA512}KO8EsMPQTwZrxxbOkDAOOXEeVCc2grMQg1pnZwZhC1bBQLby8zCmFn7qTZRvoTd+yQdROQQNYHWpTUST4zjTdQECAwQFBgcI",
            "{SMD5}yeWhvSFtvhMX4jDO9I847gECAwQFBgcI",
            "{ssha}lHFzXul4wnzRItssVcTnvXWRjNgBAgMEBQYHCA==",
            "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
            "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
            "{CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
            "{CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
            "{CRYPT}abNANd1rDfiNc",
            "secret",
        ] {
            assert!(verify(b"secret", stored.as_bytes()), "{stored}");
            assert!(!verify(b"Secret", stored.as_bytes()), "{stored}");
        }
    }

    #[test]
    fn garbage_never_verifies() {
        for stored in [
            "{SSHA}",
            "{SSHA}!!!",
            "{ARGON2}nope",
            "{CRYPT}",
            "{NOPE}x",
            "",
        ] {
            assert!(!verify(b"secret", stored.as_bytes()), "{stored}");
        }
        assert_eq!(scheme_of(b"{ssha}abc").as_deref(), Some("SSHA"));
        assert_eq!(scheme_of(b"plain"), None);
    }
}
