//! Passwords, for the centre's operators and the gate's booth guards alike: hashing and
//! checking with argon2id ([`hash_password_blocking`], [`verify_password_blocking`]) and the
//! policy a new password must pass ([`policy`]).
//!
//! The functions here block for tens of milliseconds by design: async callers run them on the
//! blocking pool (`spawn_blocking`). What it never does: log or keep a password, or depend on
//! the centre or the gate that use it.

pub mod policy;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand_core::OsRng;

/// Hashes a password with argon2id (blocking: call from `spawn_blocking` or a CLI).
pub fn hash_password_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

/// Whether `password` matches the stored PHC string `hash` (blocking); a hash that does not
/// parse matches nothing.
pub fn verify_password_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}
