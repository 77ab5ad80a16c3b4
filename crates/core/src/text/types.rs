//! The texts clients give authd, as types parsed once at the edge (the shape of
//! zero-to-production's `SubscriberName`: a private field, `parse(…) -> Result<Self, Error>`,
//! `AsRef<str>`). Each type applies its rule in `parse` and nowhere else, so a value of the
//! type has passed it; the short free texts all apply `text::validate` (length, control and
//! bidirectional characters, no secret-looking run), which only this module calls.
//!
//! Error messages name the field, never quote the text.

use serde_json::{Map, Value};

use super::{is_bidi_control, looks_secret, validate};
use crate::error::Error;

/// Defines a short free text: its field name (in messages) and its length limit.
macro_rules! short_text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The field name errors name.
            pub const FIELD: &'static str = $field;
            /// The most characters accepted.
            pub const MAX: usize = $max;

            /// Parses a client's text under `validate`'s rule.
            pub fn parse(s: String) -> Result<Self, Error> {
                validate($field, &s, $max)?;
                Ok(Self(s))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

short_text!(
    /// The name of an auth, a token, a work or a provider.
    Name, "name", 256
);
short_text!(
    /// An auth's label.
    Label, "label", 256
);
short_text!(
    /// The description of an auth, a token, a work or a provider.
    Description, "description", 256
);
short_text!(
    /// A provider named by a client: its id or its slug (resolved by the provider service).
    ProviderRef, "provider_id", 256
);
short_text!(
    /// A work's workflow name.
    WorkflowName, "workflow", 256
);
short_text!(
    /// A work's `workflow_id` as given: a workflow id or a name
    /// ([`crate::work::WorkflowRef`] tells them apart).
    WorkflowIdText, "workflow_id", 256
);
short_text!(
    /// A work's tag.
    Tag, "tag", 256
);
short_text!(
    /// A work's runtime override.
    Runtime, "runtime", 256
);
short_text!(
    /// A provider's namespace.
    Namespace, "namespace", 256
);
short_text!(
    /// How to authenticate with a provider, for people.
    AuthDescription, "auth_description", 256
);
short_text!(
    /// The label of a provider's config field.
    FieldLabel, "config label", 256
);
short_text!(
    /// The input type of a provider's config field.
    FieldType, "config type", 256
);
short_text!(
    /// One of a provider's categories.
    Category, "categories", 256
);

/// A user's display name: at most 200 characters under `validate`'s rule, kept trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Parses a client's text.
    pub fn parse(s: String) -> Result<Self, Error> {
        validate("name", &s, 200)?;
        Ok(Self(s.trim().to_owned()))
    }
}

/// An account's name: 1–200 characters once trimmed, under `validate`'s rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountName(String);

impl AccountName {
    /// Parses an operator's text.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid("account name must be 1–200 characters"));
        }
        validate("account name", s, 200)?;
        Ok(Self(s.to_owned()))
    }
}

/// A user's email address: trimmed, at most 254 bytes, `local@domain` with both parts
/// non-empty, no whitespace, control or bidirectional characters, nothing secret-looking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses a client's text.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let e = s.trim();
        let ok = e.len() <= 254
            && e.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
            && !e
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || is_bidi_control(c))
            && !looks_secret(e);
        if ok {
            Ok(Self(e.to_owned()))
        } else {
            Err(Error::invalid("email must be a valid address"))
        }
    }
}

/// A custom provider's slug: 2–64 lowercase letters, digits, `_` or `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    /// Parses a client's text.
    pub fn parse(s: String) -> Result<Self, Error> {
        let ok = (2..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(Self(s))
        } else {
            Err(Error::invalid(
                "slug must be 2–64 lowercase letters, digits, '_' or '-'",
            ))
        }
    }
}

/// The name of a credential's config field (declared by a provider, given in a credential):
/// 1–64 ASCII letters, digits, `_`, `-` or `.`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldName(String);

impl FieldName {
    /// Parses a client's text.
    pub fn parse(s: String) -> Result<Self, Error> {
        let ok = (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(Self(s))
        } else {
            Err(Error::invalid(
                "config field names are 1–64 letters, digits, '_', '-' or '.'",
            ))
        }
    }
}

/// A work's config: a JSON object as canonical text (keys sorted, no whitespace, so two
/// configs that differ only in key order or spacing are the same config), at most
/// [`WorkConfig::MAX`] bytes, holding nothing secret-looking (it is shown to every reader of
/// the work; secrets belong in an auth's write-only fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkConfig(String);

impl WorkConfig {
    /// Largest accepted config (canonical text), in bytes.
    pub const MAX: usize = 64 * 1024;

    /// Parses a client's config; absent is the empty object.
    pub fn parse(v: Option<Value>) -> Result<Self, Error> {
        let not_object = || Error::invalid("config must be a JSON object");
        let v = match v.unwrap_or_else(|| Value::Object(Map::new())) {
            v @ Value::Object(_) => v,
            _ => return Err(not_object()),
        };
        // serde_json's map is ordered by key, so this text is canonical.
        let text = serde_json::to_string(&v).map_err(|_| not_object())?;
        if looks_secret(&text) {
            return Err(Error::invalid(
                "config must not contain an API token or other secret",
            ));
        }
        if text.len() > Self::MAX {
            return Err(Error::invalid(format!(
                "config must be at most {} bytes",
                Self::MAX
            )));
        }
        Ok(Self(text))
    }
}

macro_rules! as_str {
    ($($name:ident),*) => {$(
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    )*};
}

as_str!(UserName, AccountName, Email, Slug, FieldName, WorkConfig);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AuthId;
    use crate::token::ApiToken;
    use serde_json::json;

    fn msg<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn short_texts_apply_the_one_rule_and_name_their_field() {
        assert_eq!(Name::parse("ok".into()).unwrap().as_ref(), "ok");
        assert!(Label::parse("x".repeat(256)).is_ok());
        assert_eq!(
            msg(Label::parse("x".repeat(257))),
            "label must be at most 256 characters"
        );
        assert_eq!(
            msg(Description::parse("a\u{7}b".into())),
            "description must not contain control characters"
        );
        assert!(
            msg(Tag::parse("a\u{202E}b".into())).starts_with("tag must not contain bidirectional")
        );
        let t = ApiToken::generate(AuthId::generate());
        let e = msg(ProviderRef::parse(t.expose().to_owned()));
        assert_eq!(
            e,
            "provider_id must not contain an API token or other secret"
        );
        assert_eq!(
            msg(FieldLabel::parse("\n".into())),
            "config label must not contain control characters"
        );
    }

    #[test]
    fn user_and_account_names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ann ".into()).unwrap().as_ref(), "Ann");
        assert!(UserName::parse("x".repeat(201)).is_err());
        assert_eq!(AccountName::parse(" Acme ").unwrap().as_ref(), "Acme");
        assert_eq!(
            msg(AccountName::parse("   ")),
            "account name must be 1–200 characters"
        );
        assert_eq!(
            msg(AccountName::parse(&"x".repeat(201))),
            "account name must be at most 200 characters"
        );
    }

    #[test]
    fn emails_slugs_and_field_names_have_their_shapes() {
        assert_eq!(Email::parse(" a@b.c ").unwrap().as_ref(), "a@b.c");
        let long = format!("{}@x", "x".repeat(253));
        for bad in ["a", "@b", "a@", "a b@c", "a@b\u{202E}", &long] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(msg(Email::parse("nope")), "email must be a valid address");
        assert!(Slug::parse("my_crm-2".into()).is_ok());
        for bad in ["a", "Upper", "sp ace", &"x".repeat(65)] {
            assert!(Slug::parse(bad.into()).is_err(), "{bad}");
        }
        assert!(FieldName::parse("api.key-1_X".into()).is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert_eq!(
                msg(FieldName::parse(bad.into())),
                "config field names are 1–64 letters, digits, '_', '-' or '.'"
            );
        }
    }

    #[test]
    fn work_configs_are_canonical_objects_without_secrets() {
        let a = WorkConfig::parse(Some(json!({"b": 1, "a": [2]}))).unwrap();
        assert_eq!(a.as_ref(), r#"{"a":[2],"b":1}"#);
        assert_eq!(WorkConfig::parse(None).unwrap().as_ref(), "{}");
        assert_eq!(
            msg(WorkConfig::parse(Some(json!([1])))),
            "config must be a JSON object"
        );
        let t = ApiToken::generate(AuthId::generate());
        assert_eq!(
            msg(WorkConfig::parse(Some(json!({"k": t.expose()})))),
            "config must not contain an API token or other secret"
        );
        let big = "x ".repeat(WorkConfig::MAX);
        assert_eq!(
            msg(WorkConfig::parse(Some(json!({"k": big})))),
            "config must be at most 65536 bytes"
        );
    }
}
