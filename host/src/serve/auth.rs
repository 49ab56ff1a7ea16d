//! Bearer tokens: one admin token (creates teams, sees everything) and one
//! token per team (sees and changes only its team). Tokens are stored as
//! sha256 hashes; the admin token is compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who a request is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Team(i64),
}

impl Caller {
    /// Whether this caller may act on `team`.
    pub fn may_access(self, team: i64) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Team(own) => own == team,
        }
    }
}

/// sha256 (hex) of a token, as stored.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` hashes to `expected_hash`, compared in constant time.
pub fn matches(token: &str, expected_hash: &str) -> bool {
    hash(token)
        .as_bytes()
        .ct_eq(expected_hash.as_bytes())
        .into()
}

/// A new random token: `prefix` then 32 random bytes as hex.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!("{prefix}{}", hex::encode(bytes))
}

/// The token of an `Authorization: Bearer …` header. The scheme's name is
/// matched without regard to case (RFC 9110, section 11.1): `bearer abc` is
/// the same header as `Bearer abc`.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let header = header?;
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("Bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_and_match() {
        let token = generate("sp_team_");
        assert!(token.starts_with("sp_team_") && token.len() == 8 + 64);
        assert!(matches(&token, &hash(&token)));
        assert!(!matches("other", &hash(&token)));
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("BEARER  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Bearerabc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert!(
            Caller::Admin.may_access(3)
                && Caller::Team(3).may_access(3)
                && !Caller::Team(3).may_access(4)
        );
    }
}
