//! Providers: the third-party services an auth is for, and the built-in catalog.
//!
//! A provider declares how it authenticates ([`AuthMethod`]) and which config fields a
//! credential for it carries. Lytics itself is the provider of API tokens.

use crate::ids::ProviderId;

/// How a provider's credentials look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// Name/value config pairs (API keys).
    Config,
    /// OAuth 1.0a tokens.
    OAuth1,
    /// OAuth 2 tokens.
    OAuth2,
}

impl AuthMethod {
    /// How a credential of this kind is provided, for a built-in provider's
    /// `auth_description`.
    pub const fn describe(self) -> &'static str {
        match self {
            AuthMethod::Config => "Enter the provider's config fields (API keys).",
            AuthMethod::OAuth1 => "Connect an account of the provider with OAuth 1.0a.",
            AuthMethod::OAuth2 => "Connect an account of the provider with OAuth 2.0.",
        }
    }

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Config => "config",
            AuthMethod::OAuth1 => "oauth1",
            AuthMethod::OAuth2 => "oauth2",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "config" => Some(AuthMethod::Config),
            "oauth1" => Some(AuthMethod::OAuth1),
            "oauth2" => Some(AuthMethod::OAuth2),
            _ => None,
        }
    }
}

/// One config form field of a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigField {
    /// Field name (`apikey`).
    pub name: String,
    /// Human label.
    pub label: String,
    /// Input type (`string`, `password`).
    pub kind: String,
    /// Whether it may be omitted.
    pub optional: bool,
}

/// A provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    /// Public id.
    pub id: ProviderId,
    /// Slug (`facebook`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Description.
    pub description: String,
    /// Categories.
    pub categories: Vec<String>,
    /// How credentials look.
    pub auth_method: AuthMethod,
    /// How to authenticate with it, for people (may be empty).
    pub auth_description: String,
    /// Hidden from pickers.
    pub hidden: bool,
    /// Needs no credential.
    pub no_auth: bool,
    /// Config form fields.
    pub config: Vec<ConfigField>,
}

/// The id of the built-in Lytics provider (the provider of API tokens).
pub const LYTICS_PROVIDER_ID: ProviderId = ProviderId::from_bytes([
    0x26, 0xca, 0xe7, 0x71, 0x8c, 0x32, 0x18, 0x0a, 0x7a, 0x0f, 0x8e, 0x19, 0xd6, 0xd4, 0x0a, 0x59,
]);

fn field(name: &str, label: &str, kind: &str, optional: bool) -> ConfigField {
    ConfigField {
        name: name.into(),
        label: label.into(),
        kind: kind.into(),
        optional,
    }
}

#[allow(clippy::too_many_arguments)]
fn provider(
    id: [u8; 16],
    slug: &str,
    name: &str,
    description: &str,
    categories: &[&str],
    auth_method: AuthMethod,
    hidden: bool,
    config: Vec<ConfigField>,
) -> Provider {
    Provider {
        id: ProviderId::from_bytes(id),
        slug: slug.into(),
        name: name.into(),
        namespace: slug.into(),
        description: description.into(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        auth_method,
        auth_description: auth_method.describe().into(),
        hidden,
        no_auth: false,
        config,
    }
}

static CATALOG: std::sync::LazyLock<Vec<Provider>> = std::sync::LazyLock::new(catalog);

/// The built-in provider catalog, in a stable order.
pub fn builtin_catalog() -> Vec<Provider> {
    CATALOG.clone()
}

/// A built-in provider by id, without allocating (used on read paths).
pub fn builtin_by_id(id: ProviderId) -> Option<&'static Provider> {
    CATALOG.iter().find(|p| p.id == id)
}

fn catalog() -> Vec<Provider> {
    vec![
        provider(
            *LYTICS_PROVIDER_ID.as_bytes(),
            "lytics",
            "Lytics",
            "Lytics API tokens",
            &["internal"],
            AuthMethod::Config,
            true,
            vec![field("api_key", "API Key", "password", false)],
        ),
        provider(
            [
                0x1f, 0x8b, 0x3c, 0x2d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7,
                0xe8, 0x01,
            ],
            "facebook",
            "Facebook",
            "Facebook Ads and Pages",
            &["advertising", "social"],
            AuthMethod::OAuth2,
            false,
            vec![],
        ),
        provider(
            [
                0x1f, 0x8b, 0x3c, 0x2d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7,
                0xe8, 0x02,
            ],
            "twitter",
            "Twitter",
            "Twitter audiences",
            &["advertising", "social"],
            AuthMethod::OAuth1,
            false,
            vec![],
        ),
        provider(
            [
                0x1f, 0x8b, 0x3c, 0x2d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7,
                0xe8, 0x03,
            ],
            "mailgun",
            "Mailgun",
            "Mailgun email delivery",
            &["email"],
            AuthMethod::Config,
            false,
            vec![
                field("apikey", "API Key", "password", false),
                field("domain", "Sending domain", "string", false),
            ],
        ),
        provider(
            [
                0x1f, 0x8b, 0x3c, 0x2d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7,
                0xe8, 0x04,
            ],
            "google",
            "Google",
            "Google Ads and Analytics",
            &["advertising", "analytics"],
            AuthMethod::OAuth2,
            false,
            vec![],
        ),
        provider(
            [
                0x1f, 0x8b, 0x3c, 0x2d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7,
                0xe8, 0x05,
            ],
            "awss3",
            "Amazon S3",
            "Amazon S3 buckets",
            &["storage"],
            AuthMethod::Config,
            false,
            vec![
                field("access_key", "Access key id", "string", false),
                field("secret_key", "Secret access key", "password", false),
                field("region", "Region", "string", true),
            ],
        ),
    ]
}

/// Looks a built-in provider up by id or slug.
pub fn builtin(id_or_slug: &str) -> Option<Provider> {
    let id = ProviderId::parse(id_or_slug);
    CATALOG
        .iter()
        .find(|p| p.slug == id_or_slug || Some(p.id) == id)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_has_lytics_and_the_documented_examples() {
        let lytics = builtin("lytics").unwrap();
        assert_eq!(lytics.id, LYTICS_PROVIDER_ID);
        assert_eq!(builtin("facebook").unwrap().auth_method, AuthMethod::OAuth2);
        assert_eq!(builtin("twitter").unwrap().auth_method, AuthMethod::OAuth1);
        let mg = builtin("mailgun").unwrap();
        assert!(mg.config.iter().any(|f| f.name == "apikey"));
        assert_eq!(builtin(&mg.id.to_string()).unwrap().slug, "mailgun");
    }

    #[test]
    fn catalog_ids_and_slugs_are_unique() {
        let c = builtin_catalog();
        for (i, a) in c.iter().enumerate() {
            for b in c.iter().skip(i + 1) {
                assert_ne!(a.id, b.id);
                assert_ne!(a.slug, b.slug);
            }
        }
    }
}
