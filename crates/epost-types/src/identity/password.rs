//! Argon2id (RFC 9106) for what people type: gateway login passwords,
//! hashed into PHC strings, and the passphrase that wraps a user bundle.
//!
//! Salts come from `ring`'s system random source, which reports failure
//! instead of panicking. Verification recomputes the hash with the PHC
//! string's own parameters and compares in constant time (the `argon2`
//! crate's output comparison), after refusing parameters above
//! [`Argon2idParams::MAX`], so a hostile stored hash cannot make a login
//! allocate gigabytes. A verifier that checks many logins passes its own
//! [`HashMemory`] ([`verify_password_in`]), so each check reuses the same
//! memory instead of allocating (and the allocator keeping) a fresh 19 MiB.

use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version,
};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::sign::RngError;

/// Salt length of every hash and bundle this code makes (RFC 9106
/// recommends 16 bytes).
pub const SALT_LEN: usize = 16;

/// Argon2id cost parameters (version 0x13, 32-byte output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2idParams {
    /// Memory, in KiB.
    pub m_cost: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Argon2idParams {
    /// OWASP's recommendation: 19 MiB, 2 passes, 1 lane.
    pub const DEFAULT: Argon2idParams = Argon2idParams { m_cost: 19_456, t_cost: 2, p_cost: 1 };

    /// The most any reader spends: 1 GiB, 16 passes, 16 lanes.
    pub const MAX: Argon2idParams = Argon2idParams { m_cost: 1 << 20, t_cost: 16, p_cost: 16 };

    /// Whether a reader accepts these: within [`MAX`](Self::MAX) and
    /// valid for Argon2 (at least 8 KiB per lane, one pass, one lane).
    pub fn is_acceptable(&self) -> bool {
        self.m_cost <= Self::MAX.m_cost
            && self.t_cost <= Self::MAX.t_cost
            && self.p_cost <= Self::MAX.p_cost
            && self.argon2().is_some()
    }

    fn argon2(&self) -> Option<Argon2<'static>> {
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32)).ok()?;
        Some(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Argon2id(`secret`, `salt`) to a 32-byte key; `None` if the
    /// parameters are not acceptable.
    pub(crate) fn derive_key(&self, secret: &[u8], salt: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        if !self.is_acceptable() {
            return None;
        }
        let mut key = Zeroizing::new([0u8; 32]);
        self.argon2()?.hash_password_into(secret, salt, key.as_mut()).ok()?;
        Some(key)
    }
}

impl Default for Argon2idParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a password was not hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error(transparent)]
    Rng(#[from] RngError),
    #[error("Argon2id parameters {0:?} are not acceptable (at most {max:?})", max = Argon2idParams::MAX)]
    BadParams(Argon2idParams),
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) for
/// `password`, with the default parameters and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_password_with(password, Argon2idParams::DEFAULT)
}

/// [`hash_password`] with explicit parameters (tests use tiny ones).
pub fn hash_password_with(password: &str, params: Argon2idParams) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new().fill(&mut salt).map_err(|_| RngError)?;
    hash_password_with_salt(password, params, &salt)
}

/// [`hash_password_with`] with a given salt; reusing a salt lets equal
/// passwords be spotted, so only tests and the vectors call this.
pub(crate) fn hash_password_with_salt(
    password: &str,
    params: Argon2idParams,
    salt: &[u8; SALT_LEN],
) -> Result<String, PasswordError> {
    let argon2 = params
        .is_acceptable()
        .then(|| params.argon2())
        .flatten()
        .ok_or(PasswordError::BadParams(params))?;
    let hash = argon2
        .hash_password_with_salt(password.as_bytes(), salt)
        .map_err(|_| PasswordError::BadParams(params))?;
    Ok(hash.to_string())
}

/// Working memory for Argon2id checks, kept between them: as large as
/// the largest check made with it (19 MiB for the default parameters),
/// wiped after each.
#[derive(Default)]
pub struct HashMemory {
    blocks: Vec<Block>,
}

impl HashMemory {
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashMemory({} KiB)", self.blocks.len())
    }
}

/// Whether `password` matches the PHC string `phc`. `false` also for a
/// string that is not an Argon2id PHC string or whose parameters are over
/// [`Argon2idParams::MAX`]: a login can only succeed or fail.
pub fn verify_password(phc: &str, password: &str) -> bool {
    verify_password_in(phc, password, &mut HashMemory::new())
}

/// [`verify_password`] working in `memory` (grown if the stored
/// parameters need more), so repeated checks allocate nothing.
pub fn verify_password_in(phc: &str, password: &str, memory: &mut HashMemory) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != ARGON2ID_IDENT {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let costs = Argon2idParams {
        m_cost: params.m_cost(),
        t_cost: params.t_cost(),
        p_cost: params.p_cost(),
    };
    if !costs.is_acceptable() {
        return false;
    }
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    if memory.blocks.len() < blocks {
        memory.blocks.resize(blocks, Block::default());
    }
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
    let mut computed = Zeroizing::new(vec![0u8; expected.len()]);
    let hashed = argon2.hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut computed,
        &mut memory.blocks[..blocks],
    );
    // What is left in the blocks is derived from the password.
    memory.blocks[..blocks].fill(Block::default());
    hashed.is_ok()
        && argon2::password_hash::phc::Output::new(&computed).is_ok_and(|c| c == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: Argon2idParams = Argon2idParams { m_cost: 64, t_cost: 1, p_cost: 1 };

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let phc = hash_password_with("correct horse", TINY).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horsf"));
        assert!(!verify_password(&phc, ""));
        assert_ne!(phc, hash_password_with("correct horse", TINY).unwrap());
    }

    #[test]
    fn reused_memory_verifies_the_same_as_fresh() {
        let small = hash_password_with("pw", TINY).unwrap();
        let large = hash_password_with("pw", Argon2idParams { m_cost: 256, ..TINY }).unwrap();
        let mut memory = HashMemory::new();
        // (hash, password, matches): the memory grows for the larger one
        // and is reused, wiped, for the rest.
        let cases = [
            (&small, "pw", true),
            (&large, "pw", true),
            (&small, "pw", true),
            (&large, "px", false),
            (&small, "", false),
            (&large, "pw", true),
        ];
        for (phc, password, matches) in cases {
            assert_eq!(verify_password_in(phc, password, &mut memory), matches, "{phc} {password}");
            assert_eq!(verify_password(phc, password), matches, "{phc} {password}");
        }
        assert_eq!(memory.blocks.len(), 256);
    }

    #[test]
    fn default_parameters_are_owasp() {
        let phc = hash_password("pw").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "pw"));
    }

    #[test]
    fn refuses_other_algorithms_garbage_and_huge_costs() {
        assert!(!verify_password("", "pw"));
        assert!(!verify_password("not a hash", "pw"));
        let phc = hash_password_with_salt("pw", TINY, &[7; SALT_LEN]).unwrap();
        assert!(verify_password(&phc, "pw"));
        // The same output relabelled as Argon2i must not verify.
        assert!(!verify_password(&phc.replace("argon2id", "argon2i"), "pw"));
        // Parameters over the bound are refused before any work is done.
        let huge = phc.replace("m=64", "m=4194304");
        assert!(!verify_password(&huge, "pw"));
        assert_eq!(
            hash_password_with("pw", Argon2idParams { m_cost: 1, t_cost: 1, p_cost: 1 }),
            Err(PasswordError::BadParams(Argon2idParams { m_cost: 1, t_cost: 1, p_cost: 1 }))
        );
    }

    #[test]
    fn key_derivation_is_deterministic_and_bounded() {
        let a = TINY.derive_key(b"pass", &[1; SALT_LEN]).unwrap();
        assert_eq!(*a, *TINY.derive_key(b"pass", &[1; SALT_LEN]).unwrap());
        assert_ne!(*a, *TINY.derive_key(b"pass", &[2; SALT_LEN]).unwrap());
        let over = Argon2idParams { t_cost: 17, ..TINY };
        assert!(over.derive_key(b"pass", &[1; SALT_LEN]).is_none());
    }
}
