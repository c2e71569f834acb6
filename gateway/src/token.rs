//! Signed per-match player tokens: `v1.<match>.<player>.<expiry ms>.<HMAC-SHA256 hex>`.
//! The gateway stamps a command's source from the token, never from what the client says.

use std::time::Duration;

use events::{now_ms, MatchId, PlayerId, MAX_PLAYERS};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. Every variant means the same to a client: get a new token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is not in the v1 format")]
    Malformed,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

/// What a verified token grants: play `player` in `match_id` until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub match_id: MatchId,
    pub player: PlayerId,
    pub expires_ms: u64,
}

/// Signs and verifies tokens with one secret (shared by every gateway instance of a
/// deployment, so any instance accepts any instance's tokens).
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(secret: impl Into<Vec<u8>>, ttl: Duration) -> Self {
        Self {
            secret: secret.into(),
            ttl,
        }
    }

    /// A signer with a random 32-byte secret: tokens die with the process.
    pub fn random(ttl: Duration) -> Self {
        Self::new(rand::random::<[u8; 32]>().to_vec(), ttl)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| {
            <HmacSha256 as Mac>::new_from_slice(b"\0").expect("HMAC takes any key length")
        })
    }

    /// Issues a token for `player` of `match_id`, valid for the signer's TTL.
    pub fn issue(&self, match_id: &MatchId, player: PlayerId) -> (String, u64) {
        let expires_ms = now_ms().saturating_add(self.ttl.as_millis() as u64);
        (self.issue_until(match_id, player, expires_ms), expires_ms)
    }

    /// Issues a token that expires at `expires_ms` (tests use this for expired tokens).
    pub fn issue_until(&self, match_id: &MatchId, player: PlayerId, expires_ms: u64) -> String {
        let body = format!("v1.{}.{}.{}", match_id, player.0, expires_ms);
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let sig = hex(&mac.finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// Checks the format, signature (in constant time) and expiry of a token.
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let (body, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let sig = unhex(sig).ok_or(TokenError::Malformed)?;
        let mut parts = body.split('.');
        let (Some("v1"), Some(m), Some(p), Some(exp), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let match_id = MatchId::new(m).map_err(|_| TokenError::Malformed)?;
        let player: u8 = p.parse().map_err(|_| TokenError::Malformed)?;
        if usize::from(player) >= MAX_PLAYERS {
            return Err(TokenError::Malformed);
        }
        let expires_ms: u64 = exp.parse().map_err(|_| TokenError::Malformed)?;
        if expires_ms <= now_ms() {
            return Err(TokenError::Expired);
        }
        Ok(Grant {
            match_id,
            player: PlayerId(player),
            expires_ms,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(b"secret".to_vec(), Duration::from_secs(60))
    }

    #[test]
    fn issued_tokens_verify() {
        let m = MatchId::new("m1").unwrap();
        let (t, exp) = signer().issue(&m, PlayerId(1));
        let g = signer().verify(&t).unwrap();
        assert_eq!(g.match_id, m);
        assert_eq!(g.player, PlayerId(1));
        assert_eq!(g.expires_ms, exp);
    }

    #[test]
    fn forged_and_expired_tokens_are_refused() {
        let m = MatchId::new("m1").unwrap();
        let (t, _) = signer().issue(&m, PlayerId(0));
        let other = TokenSigner::new(b"other".to_vec(), Duration::from_secs(60));
        assert_eq!(other.verify(&t), Err(TokenError::BadSignature));
        let forged = t.replacen(".0.", ".1.", 1);
        assert_eq!(signer().verify(&forged), Err(TokenError::BadSignature));
        let old = signer().issue_until(&m, PlayerId(0), 1);
        assert_eq!(signer().verify(&old), Err(TokenError::Expired));
        for junk in ["", "v1", "a.b.c.d.e", "v1.m.0.99.zz", "v1.m.0.9.9.00"] {
            assert!(signer().verify(junk).is_err(), "{junk}");
        }
    }
}
