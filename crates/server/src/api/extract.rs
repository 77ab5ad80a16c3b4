//! Request extractors: the authenticated caller with the permission a handler needs
//! ([`Authed`]), and JSON/query/path extractors whose rejections use the Lytics envelope.
//!
//! A handler that takes `Authed<perm::X>` cannot run unless the caller's token is valid, not
//! expired, and its roles grant `X`; a handler without an `Authed` is public, which is visible
//! in its signature.

use std::marker::PhantomData;
use std::net::SocketAddr;

use authd_core::ids::AuthId;
use authd_core::roles::{Permission, PermissionSet};
use authd_core::Error;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::allowlist::client_ip;
use crate::state::AppState;
use crate::tokens::Principal;

/// A permission a handler requires, as a type; a pair `(A, B)` requires both.
pub trait Need: Send + Sync + 'static {
    /// The first required permission `held` lacks, if any.
    fn missing(held: PermissionSet) -> Option<Permission>;
}

impl<A: Need, B: Need> Need for (A, B) {
    fn missing(held: PermissionSet) -> Option<Permission> {
        A::missing(held).or_else(|| B::missing(held))
    }
}

/// Marker types for [`Authed`], one per permission.
pub mod perm {
    use super::Need;
    use authd_core::roles::{Permission, PermissionSet};

    macro_rules! needs {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("Requires `Permission::", stringify!($name), "`.")]
            #[derive(Debug)]
            pub struct $name;
            impl Need for $name {
                fn missing(held: PermissionSet) -> Option<Permission> {
                    (!held.contains(Permission::$name)).then_some(Permission::$name)
                }
            }
        )*};
    }

    needs!(
        AccountRead,
        UsersRead,
        UsersManage,
        AuthsRead,
        AuthsWrite,
        TokensCreate,
        ProvidersRead,
        SettingsRead,
        SettingsWrite,
        DataUpload,
        EntityRead,
        TokenIntrospect,
        ProvidersWrite,
        WorksRead,
        WorksWrite,
        AuditRead,
    );
}

/// The authenticated caller, proven to hold permission `P`.
#[derive(Debug)]
pub struct Authed<P: Need> {
    /// Who is calling.
    pub principal: Principal,
    _need: PhantomData<P>,
}

impl<P: Need> std::ops::Deref for Authed<P> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// The credential a request presents, if exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented<'a> {
    /// No credential.
    None,
    /// One credential.
    One(&'a str),
    /// More than one (RFC 6750 §2: a client must not use more than one method, nor repeat
    /// one); refused whatever the values are, so no "first wins" or "last wins" exists. The
    /// handle of the first well-formed token among them is kept only to attribute the refusal
    /// to an account in the audit trail.
    Ambiguous(Option<AuthId>),
}

/// Finds the presented credential: `Authorization: <token>` or `Authorization: Bearer
/// <token>`, `?access_token=`, `?key=`. Any two non-empty ones (or one twice) are
/// [`Presented::Ambiguous`].
fn presented(parts: &Parts) -> Presented<'_> {
    let headers = parts
        .headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|v| {
            // A header that is not visible ASCII cannot hold a token: present, but wrong.
            let v = v.to_str().unwrap_or("\u{0}").trim();
            match v.get(..7) {
                Some(p) if p.eq_ignore_ascii_case("bearer ") => v.get(7..).unwrap_or("").trim(),
                _ => v,
            }
        });
    let query = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| match pair.split_once('=') {
            Some(("access_token" | "key", v)) => Some(v),
            None if pair == "access_token" || pair == "key" => Some(""),
            _ => None,
        });
    // An empty value presents nothing (clients send `Authorization:` with no token).
    let mut all = headers.chain(query).filter(|t| !t.is_empty());
    match (all.next(), all.next()) {
        (None, _) => Presented::None,
        (Some(t), None) => Presented::One(t),
        (Some(a), Some(b)) => Presented::Ambiguous(
            [a, b]
                .into_iter()
                .chain(all)
                .find_map(|t| authd_core::token::parse(t).map(|p| p.id)),
        ),
    }
}

/// The message of the 400 for more than one credential.
pub const AMBIGUOUS: &str = "Ambiguous credentials";

/// The value of `?account_id=` if present.
fn account_param(parts: &Parts) -> Option<&str> {
    parts
        .uri
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix("account_id="))
}

/// Authenticates the request without checking a permission.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let token = match presented(parts) {
        Presented::One(t) => t,
        Presented::None => return Err(Error::Unauthenticated.into()),
        Presented::Ambiguous(_) => return Err(ApiError::bad_request(AMBIGUOUS)),
    };
    let principal = state.tokens.authenticate(token).await?;
    // `?account_id=` never widens access: it must name the token's own account.
    if let Some(acct) = account_param(parts) {
        if !acct.is_empty()
            && acct != principal.account_id.to_string()
            && acct != principal.account_aid.to_string()
        {
            return Err(ApiError::Http(
                StatusCode::FORBIDDEN,
                "Token does not belong to the requested account".into(),
            ));
        }
    }
    // The account's IP allowlist, from an in-memory cache; the client address is only worked
    // out when the account has one.
    state
        .allowlists
        .check(principal.account_id, || {
            let peer = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            client_ip(peer, &parts.headers, &state.config.trusted_proxies)
        })
        .await?;
    Ok(principal)
}

impl<P: Need> FromRequestParts<AppState> for Authed<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = match authenticate(parts, state).await {
            Ok(p) => p,
            // The store failing is an outage, not a refused credential: nothing to audit
            // (and appending would wait out the store timeout a second time).
            Err(e @ ApiError::Domain(Error::Unavailable(_) | Error::Internal(_))) => return Err(e),
            Err(e) => {
                let handle = match presented(parts) {
                    Presented::One(t) => authd_core::token::parse(t).map(|t| t.id),
                    Presented::Ambiguous(handle) => handle,
                    Presented::None => None,
                };
                let outcome = match &e {
                    ApiError::Domain(Error::Expired) => "expired",
                    ApiError::Domain(Error::Unauthenticated) => "unauthorized",
                    ApiError::Http(StatusCode::BAD_REQUEST, _) => "ambiguous",
                    _ => "forbidden",
                };
                crate::audit::refused(state, parts, handle, None, outcome, "");
                return Err(e);
            }
        };
        if let Some(missing) = P::missing(principal.permissions) {
            crate::audit::refused(
                state,
                parts,
                Some(principal.auth_id),
                Some(principal.account_id),
                "forbidden",
                missing.name(),
            );
            return Err(Error::Forbidden(format!(
                "Not authorized: this token's roles do not grant {}",
                missing.name()
            ))
            .into());
        }
        Ok(Self {
            principal,
            _need: PhantomData,
        })
    }
}

/// JSON body extractor with Lytics-envelope rejections (400 malformed, 413 too large,
/// 415 wrong content type).
///
/// Lenient where Lytics is: the body is read as JSON when `Content-Type` is missing,
/// `text/plain` or a JSON type (`application/json`, `application/*+json`); any other declared
/// type is 415. Older clients (`lytics-api-wrapper`) send JSON with no header at all.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> ApiJson<T> {
    /// Decodes a body already accepted by [`accept_json`].
    pub fn decode(body: &[u8]) -> Result<Self, ApiError> {
        // Syntax and type errors alike are the client's mistake: 400, not axum's 422.
        axum::Json::<T>::from_bytes(body)
            .map(|axum::Json(v)| ApiJson(v))
            .map_err(|rej| ApiError::bad_request(format!("Invalid JSON body: {}", rej.body_text())))
    }
}

/// 415 in the envelope unless the declared content type may hold JSON (see [`ApiJson`]).
pub fn accept_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if json_content_type(headers) {
        Ok(())
    } else {
        Err(ApiError::Http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected a JSON body with Content-Type: application/json".to_owned(),
        ))
    }
}

/// Whether a body declared with these headers may be read as JSON: no `Content-Type`,
/// `text/plain`, `application/json` or `application/*+json` (parameters such as `charset`
/// ignored).
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(v) = v.to_str() else { return false };
    let mime = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json"
        || mime == "text/plain"
        || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads the whole body within the router's body limit (413 in the envelope beyond it).
pub async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::Http(rej.status(), "Request body too large".to_owned())
        } else {
            ApiError::bad_request("Could not read the request body")
        }
    })
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        accept_json(req.headers())?;
        let body = body_bytes(req, state).await?;
        Self::decode(&body)
    }
}

/// Query-string extractor with Lytics-envelope rejections.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_like(q).map(ApiQuery)
    }
}

fn serde_urlencoded_like<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("Invalid query string"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| ApiError::bad_request(format!("Invalid query string: {}", e.body_text())))
}

/// Path-parameter extractor with Lytics-envelope rejections (e.g. invalid UTF-8 → 400).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| ApiError::bad_request(format!("Invalid path: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_of_permissions_needs_both_and_names_the_first_missing() {
        type Rotate = (perm::AuthsWrite, perm::TokensCreate);
        let set = |p: &[Permission]| PermissionSet::of(p);
        assert_eq!(Rotate::missing(PermissionSet::ALL), None);
        assert_eq!(
            Rotate::missing(set(&[Permission::TokensCreate])),
            Some(Permission::AuthsWrite)
        );
        assert_eq!(
            Rotate::missing(set(&[Permission::AuthsWrite])),
            Some(Permission::TokensCreate)
        );
        assert_eq!(
            perm::AuthsRead::missing(set(&[Permission::AuthsRead])),
            None
        );
    }
}
