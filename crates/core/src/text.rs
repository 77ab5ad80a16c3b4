//! Free text from clients, and what authd says back about it.
//!
//! - `validate` is the one rule for the short texts authd stores and shows to others (names,
//!   labels, descriptions, workflow names…): a length limit, no control characters, no
//!   bidirectional formatting characters (U+202E and friends can make a name display as
//!   something else, "Trojan Source"), and no API token or other secret-looking run (a token
//!   pasted into a name would be shown to every reader of the list). It is private: the
//!   types of [`types`] ([`Name`], [`Label`], [`Description`], …) apply it when a client's
//!   text is parsed, once, at the edge.
//! - [`redact`] replaces whatever looks like a credential in a text quoted back to a client
//!   (every error message goes through it), so an error can quote the input that caused it
//!   without ever echoing a token.
//!
//! What "looks like a credential" ([`looks_secret`]): a word (a run of letters, digits and
//! `.`, `_`, `-`) that contains the token prefix `at.` followed by a hex digit, or a run of
//! more than 32 hex digits (longer than a public id, as long as a token's secret part).

use std::borrow::Cow;

pub mod types;
pub use types::*;

use crate::error::Error;
use crate::token::PREFIX;

/// Longer hex runs than this are treated as secrets (a public id is 32 hex digits).
const MAX_PUBLIC_HEX: usize = 32;

/// What [`redact`] puts in place of a secret-looking word.
pub const REDACTED: &str = "<redacted>";

/// Whether `c` is a bidirectional formatting character: the embeddings and overrides
/// U+202A–U+202E, the isolates U+2066–U+2069, the marks U+200E, U+200F and U+061C.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether one word (see the module docs) looks like a credential.
fn word_is_secret(w: &str) -> bool {
    let b = w.as_bytes();
    let prefixed = b.windows(PREFIX.len() + 1).any(|win| {
        win[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes())
            && win[PREFIX.len()].is_ascii_hexdigit()
    });
    if prefixed {
        return true;
    }
    let mut run = 0usize;
    for c in b {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run > MAX_PUBLIC_HEX {
            return true;
        }
    }
    false
}

/// Whether `s` holds anything that looks like a credential.
pub fn looks_secret(s: &str) -> bool {
    s.split(|c| !is_word_char(c)).any(word_is_secret)
}

/// `s` with every secret-looking word replaced by [`REDACTED`]; borrowed when nothing is.
pub fn redact(s: &str) -> Cow<'_, str> {
    if !looks_secret(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut word_start = None;
    for (i, c) in s.char_indices() {
        if is_word_char(c) {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(st) = word_start.take() {
            push_word(&mut out, &s[st..i]);
        }
        out.push(c);
    }
    if let Some(st) = word_start {
        push_word(&mut out, &s[st..]);
    }
    Cow::Owned(out)
}

fn push_word(out: &mut String, w: &str) {
    out.push_str(if word_is_secret(w) { REDACTED } else { w });
}

/// Validates a short text a client gives authd to store and show (a name, label,
/// description): at most `max` characters, no control characters, no bidirectional formatting
/// characters, nothing that looks like a credential. The message names `field`, never quotes
/// the text.
fn validate(field: &str, s: &str, max: usize) -> Result<(), Error> {
    if s.chars().count() > max {
        return Err(Error::invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    if s.chars().any(is_bidi_control) {
        return Err(Error::invalid(format!(
            "{field} must not contain bidirectional formatting characters (U+202A-U+202E, \
             U+2066-U+2069, U+200E, U+200F, U+061C)"
        )));
    }
    if looks_secret(s) {
        return Err(Error::invalid(format!(
            "{field} must not contain an API token or other secret"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AuthId;
    use crate::token::ApiToken;

    #[test]
    fn tokens_and_their_parts_are_redacted_ids_are_not() {
        let t = ApiToken::generate(AuthId::generate());
        let tok = t.expose();
        let secret = &tok[36..];
        let id = &tok[3..35];
        for s in [
            format!("Invalid expires \"{tok}\": bad"),
            format!("unknown variant `{secret}`"),
            format!("x={}", &tok[..20]),
            tok.to_uppercase(),
        ] {
            let r = redact(&s);
            assert!(
                !r.contains(secret) && !r.to_lowercase().contains(&secret[..20]),
                "{r}"
            );
            assert!(r.contains(REDACTED), "{r}");
        }
        assert_eq!(
            redact(&format!("auth {id} is listed twice")),
            format!("auth {id} is listed twice")
        );
        assert_eq!(redact("plain words, at. least"), "plain words, at. least");
    }

    #[test]
    fn validate_refuses_bidi_controls_tokens_and_long_text() {
        assert!(validate("name", "ok name", 10).is_ok());
        assert!(validate("name", "héllo wörld", 11).is_ok());
        assert!(validate("name", "x".repeat(11).as_str(), 10).is_err());
        assert!(validate("name", "a\u{7}b", 10).is_err());
        for c in [
            '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let e = validate("name", &format!("a{c}b"), 10).unwrap_err();
            assert!(e.to_string().contains("bidirectional"), "{c:?}");
        }
        let t = ApiToken::generate(AuthId::generate());
        let e = validate("name", t.expose(), 200).unwrap_err().to_string();
        assert!(!e.contains(&t.expose()[36..]));
    }
}
