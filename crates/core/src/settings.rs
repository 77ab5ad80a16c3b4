//! Account settings: the known slugs, their defaults, and the validation of the raw JSON
//! values clients send. A setting value is always validated and normalised here before it is
//! stored, so every reader can trust what the store returns.
//!
//! The IP allowlist ([`IpAllowlist`]) lives here too: it is the parsed, ready-to-match form of
//! the `api_ip_whitelist` setting that the server keeps in memory on the request path.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::{Error, Result};

/// Longest accepted field name (in `schema_user_private_fields` and entity lookups).
pub const MAX_FIELD_NAME: usize = 128;
/// Most entries a list setting may hold.
pub const MAX_LIST_ENTRIES: usize = 1_000;

/// A known account setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SettingSlug {
    /// Entity fields that hold PII (a list of field names).
    SchemaUserPrivateFields,
    /// The CIDRs API tokens may be used from (IPv4 and IPv6); empty means anywhere.
    ApiIpWhitelist,
}

impl SettingSlug {
    /// Every known setting.
    pub const ALL: [SettingSlug; 2] = [
        SettingSlug::SchemaUserPrivateFields,
        SettingSlug::ApiIpWhitelist,
    ];

    /// The wire slug.
    pub const fn slug(self) -> &'static str {
        match self {
            SettingSlug::SchemaUserPrivateFields => "schema_user_private_fields",
            SettingSlug::ApiIpWhitelist => "api_ip_whitelist",
        }
    }

    /// Looks a slug up; exact, case-sensitive.
    pub fn from_slug(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == s)
    }

    /// One-line description for listings.
    pub const fn description(self) -> &'static str {
        match self {
            SettingSlug::SchemaUserPrivateFields => {
                "User profile fields that hold PII; hidden from entity reads without PII access"
            }
            SettingSlug::ApiIpWhitelist => {
                "CIDRs (IPv4/IPv6) API tokens may be used from; empty allows any address"
            }
        }
    }

    /// The value an account has when the setting was never set (or was reset).
    pub fn default_value(self) -> Value {
        Value::Array(Vec::new())
    }

    /// Validates a raw JSON value for this setting and returns its normalised form.
    pub fn validate(self, value: &Value) -> Result<Value> {
        let items = string_list(self, value)?;
        match self {
            SettingSlug::SchemaUserPrivateFields => {
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for f in items {
                    if !valid_field_name(f) {
                        return Err(Error::invalid(format!(
                            "Invalid field name {f:?} in {}: use 1-{MAX_FIELD_NAME} letters, digits, '_', '-' or '.'",
                            self.slug()
                        )));
                    }
                    let v = Value::String(f.to_owned());
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                Ok(Value::Array(out))
            }
            SettingSlug::ApiIpWhitelist => {
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for s in items {
                    let net = parse_net(s).ok_or_else(|| {
                        Error::invalid(format!(
                            "Invalid CIDR {s:?} in {}: expected e.g. \"10.0.0.0/8\", \"2001:db8::/32\" or a single address",
                            self.slug()
                        ))
                    })?;
                    let v = Value::String(net.to_string());
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                Ok(Value::Array(out))
            }
        }
    }
}

fn string_list(slug: SettingSlug, value: &Value) -> Result<Vec<&str>> {
    let wrong = || {
        Error::invalid(format!(
            "Invalid value for {}: expected a JSON array of strings",
            slug.slug()
        ))
    };
    let arr = value.as_array().ok_or_else(wrong)?;
    if arr.len() > MAX_LIST_ENTRIES {
        return Err(Error::invalid(format!(
            "Invalid value for {}: at most {MAX_LIST_ENTRIES} entries",
            slug.slug()
        )));
    }
    arr.iter().map(|v| v.as_str().ok_or_else(wrong)).collect()
}

/// Whether `name` is an acceptable entity field name: 1–128 of `[A-Za-z0-9_.-]`, and not
/// something that looks like a credential (a field name is shown back to every reader).
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FIELD_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !crate::text::looks_secret(name)
}

/// Parses a CIDR or a bare address (a host network), IPv4 or IPv6, with host bits cleared.
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// A parsed `api_ip_whitelist`: the networks tokens of an account may be used from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpAllowlist(Vec<IpNet>);

impl IpAllowlist {
    /// Builds the allowlist from a stored (already validated) setting value. Entries that do
    /// not parse are skipped, which can only narrow the list.
    pub fn from_value(value: &Value) -> Self {
        Self(
            value
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .filter_map(parse_net)
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// Whether the list restricts anything (an empty list allows every address).
    pub fn is_restricted(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `ip` may use the account's tokens. IPv4-mapped IPv6 addresses are matched as
    /// IPv4.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// A stored account setting.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSetting {
    /// The slug.
    pub slug: String,
    /// The validated JSON value.
    pub value: Value,
    /// When it was last set (Unix ms).
    pub updated_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allowlist_values_are_validated_and_normalised() {
        let s = SettingSlug::ApiIpWhitelist;
        assert_eq!(
            s.validate(&json!([
                "10.1.2.3/8",
                "::1",
                "2001:db8::1/32",
                "10.0.0.0/8"
            ]))
            .unwrap(),
            json!(["10.0.0.0/8", "::1/128", "2001:db8::/32"])
        );
        assert!(s.validate(&json!(["10.0.0.0/33"])).is_err());
        assert!(s.validate(&json!(["nope"])).is_err());
        assert!(s.validate(&json!("10.0.0.0/8")).is_err());
        assert!(s.validate(&json!([1])).is_err());
    }

    #[test]
    fn private_fields_must_be_names() {
        let s = SettingSlug::SchemaUserPrivateFields;
        assert_eq!(
            s.validate(&json!(["email", "phone", "email"])).unwrap(),
            json!(["email", "phone"])
        );
        assert!(s.validate(&json!(["bad field"])).is_err());
        assert!(s.validate(&json!({"email": true})).is_err());
    }

    #[test]
    fn allowlist_matches_v4_v6_and_mapped_addresses() {
        let l = IpAllowlist::from_value(&json!(["10.0.0.0/8", "2001:db8::/32"]));
        assert!(l.allows("10.9.8.7".parse().unwrap()));
        assert!(l.allows("::ffff:10.9.8.7".parse().unwrap()));
        assert!(l.allows("2001:db8::5".parse().unwrap()));
        assert!(!l.allows("192.168.0.1".parse().unwrap()));
        assert!(!l.allows("::1".parse().unwrap()));
        assert!(IpAllowlist::default().allows("::1".parse().unwrap()));
    }
}
