//! The API-token wire format.
//!
//! A token is `at.<auth id>.<secret><checksum>`:
//! - `at.` marks an authd/Lytics API token;
//! - `<auth id>` is the public handle: the 32-hex id of the auth record the token belongs to;
//! - `<secret>` is 48 lowercase hex characters (192 bits from the OS CSPRNG);
//! - `<checksum>` is 8 lowercase hex characters, the CRC-32 of everything before it.
//!
//! The checksum lets authd (and secret scanners) reject a mistyped or truncated token without
//! touching the store. Scanner regex: `\bat\.[0-9a-f]{32}\.[0-9a-f]{56}\b`.
//!
//! [`ApiToken`] owns a token's text and never prints it: its `Debug` shows only the handle.

use std::fmt;
use zeroize::Zeroizing;

use crate::ids::AuthId;

/// The token prefix.
pub const PREFIX: &str = "at.";
/// Length of the secret in hex characters (192 bits).
pub const SECRET_HEX_LEN: usize = 48;
/// Length of the checksum in hex characters.
pub const CHECKSUM_HEX_LEN: usize = 8;
/// Total token length.
pub const TOKEN_LEN: usize = PREFIX.len() + 32 + 1 + SECRET_HEX_LEN + CHECKSUM_HEX_LEN;
/// A regex a secret scanner can use to find authd tokens.
pub const SCANNER_REGEX: &str = r"\bat\.[0-9a-f]{32}\.[0-9a-f]{56}\b";

/// A freshly minted token. The only place the full secret text exists in memory; wiped when
/// dropped.
pub struct ApiToken {
    id: AuthId,
    text: Zeroizing<String>,
}

impl ApiToken {
    /// Mints a token for auth `id` with a fresh 192-bit secret.
    pub fn generate(id: AuthId) -> Self {
        let secret = Zeroizing::new(rand::random::<[u8; SECRET_HEX_LEN / 2]>());
        let secret_hex = Zeroizing::new(hex::encode(secret.as_slice()));
        // Sized once, so the text never reallocates (which would leave an unwiped copy).
        let mut text = Zeroizing::new(String::with_capacity(TOKEN_LEN));
        text.push_str(PREFIX);
        text.push_str(&id.to_string());
        text.push('.');
        text.push_str(&secret_hex);
        let crc = crc32fast::hash(text.as_bytes());
        text.push_str(&format!("{crc:08x}"));
        Self { id, text }
    }

    /// The auth id (public handle).
    pub fn id(&self) -> AuthId {
        self.id
    }

    /// The full token text, to be shown to the caller exactly once.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken(at.{}.<hidden>)", self.id)
    }
}

/// A presented token that passed the format and checksum checks.
#[derive(Clone, Copy)]
pub struct ParsedToken<'a> {
    /// The auth id it claims.
    pub id: AuthId,
    /// The whole token text (what the keyed hash covers).
    pub text: &'a str,
}

impl fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParsedToken(at.{}.<hidden>)", self.id)
    }
}

/// Checks format and checksum without allocating. `None` means "not an authd token".
pub fn parse(text: &str) -> Option<ParsedToken<'_>> {
    let b = text.as_bytes();
    if b.len() != TOKEN_LEN || !text.starts_with(PREFIX) {
        return None;
    }
    let id = AuthId::parse_bytes(b.get(3..35)?)?;
    if b.get(35) != Some(&b'.') {
        return None;
    }
    let body_end = TOKEN_LEN - CHECKSUM_HEX_LEN;
    let tail = b.get(36..)?;
    if !tail.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut sum = [0u8; 4];
    hex::decode_to_slice(b.get(body_end..)?, &mut sum).ok()?;
    if crc32fast::hash(b.get(..body_end)?) != u32::from_be_bytes(sum) {
        return None;
    }
    Some(ParsedToken { id, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_back_to_its_id() {
        let id = AuthId::generate();
        let t = ApiToken::generate(id);
        assert_eq!(t.expose().len(), TOKEN_LEN);
        let p = parse(t.expose()).unwrap();
        assert_eq!(p.id, id);
    }

    #[test]
    fn a_mistyped_token_fails_the_checksum() {
        let t = ApiToken::generate(AuthId::generate());
        let mut s = t.expose().to_owned();
        let i = 40;
        let c = if &s[i..=i] == "a" { "b" } else { "a" };
        s.replace_range(i..=i, c);
        assert!(parse(&s).is_none());
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let good = ApiToken::generate(AuthId::generate());
        let g = good.expose();
        for bad in [
            String::new(),
            "at.".into(),
            g[..g.len() - 1].to_string(),
            format!("{g}0"),
            g.to_uppercase(),
            g.replacen("at.", "xt.", 1),
            "x".repeat(5000),
            g.replace('.', "_"),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = ApiToken::generate(AuthId::generate());
        let secret = &t.expose()[36..];
        assert!(!format!("{t:?}").contains(secret));
        assert!(!format!("{:?}", parse(t.expose()).unwrap()).contains(secret));
    }

    #[test]
    fn generated_tokens_are_distinct() {
        let id = AuthId::generate();
        assert_ne!(
            ApiToken::generate(id).expose(),
            ApiToken::generate(id).expose()
        );
    }
}
