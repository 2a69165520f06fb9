//! What the web dashboard's login is made of: a password hash must be an argon2 PHC
//! string. Pure; the agent checks passwords against it.

use argon2::PasswordHash;

/// Whether `text` is a PHC string of one of the argon2 variants (`$argon2id$…`,
/// `$argon2i$…`, `$argon2d$…`) with a salt and a hash.
pub fn is_argon2_phc(text: &str) -> bool {
    PasswordHash::new(text).is_ok_and(|h| {
        matches!(h.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d")
            && h.salt.is_some()
            && h.hash.is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_argon2_phc_strings_with_a_salt_and_hash_are_hashes() {
        let good = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI";
        assert!(is_argon2_phc(good));
        assert!(!is_argon2_phc("hunter2"));
        assert!(!is_argon2_phc(""));
        assert!(!is_argon2_phc("$argon2id$v=19$m=19456,t=2,p=1"));
        assert!(!is_argon2_phc(
            "$pbkdf2-sha256$i=1000$c29tZXNhbHQ$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI"
        ));
    }
}
