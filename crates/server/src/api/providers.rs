//! `/api/provider`: the provider catalog — the built-in providers plus the caller's account's
//! custom providers — and `POST /api/provider` to add a custom one (`providers.write`:
//! data_manager and admin). A custom provider declares its auth method and config fields,
//! which credential writes are validated against. The rules are the provider service's
//! ([`crate::services::providers`]).

use authd_core::ids::ProviderId;
use authd_core::provider::{AuthMethod, ConfigField, Provider};
use authd_core::text::{
    AuthDescription, Category, Description, FieldLabel, FieldName, FieldType, Name, Namespace, Slug,
};
use authd_core::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::dto::ProviderDto;
use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiJson, ApiPath, Authed};
use super::{Listed, Success};
use crate::audit::RequestId;
use crate::services::providers;
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/provider", get(list).post(create))
        .route("/api/provider/{id}", get(read))
}

async fn list(
    caller: Authed<perm::ProvidersRead>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let all = providers::list(&state, caller.account_id).await?;
    let data = all.iter().map(ProviderDto::from).collect();
    Ok(Listed(data, None).into_response())
}

async fn read(
    caller: Authed<perm::ProvidersRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let p = providers::read(&state, caller.account_id, &id).await?;
    Ok(Success(StatusCode::OK, ProviderDto::from(&p)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldBody {
    name: String,
    label: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    optional: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderBody {
    slug: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    description: Option<String>,
    categories: Option<Vec<String>>,
    auth_method: Option<String>,
    auth_description: Option<String>,
    hidden: Option<bool>,
    config: Option<Vec<FieldBody>>,
}

/// An optional text field, parsed into its type and back to the stored text (absent is
/// empty).
fn text<T: Into<String>>(
    v: Option<String>,
    parse: fn(String) -> Result<T, Error>,
) -> ApiResult<String> {
    Ok(parse(v.unwrap_or_default())?.into())
}

/// The body parsed into a provider (every text and field checked; a fresh id).
fn parse(body: ProviderBody) -> ApiResult<Provider> {
    let slug: String = Slug::parse(
        body.slug
            .ok_or_else(|| ApiError::bad_request("slug is required"))?,
    )?
    .into();
    let name = text(body.name, Name::parse)?;
    if name.is_empty() {
        return Err(ApiError::bad_request("name is required"));
    }
    let auth_method = body
        .auth_method
        .as_deref()
        .and_then(AuthMethod::parse)
        .ok_or_else(|| ApiError::bad_request("auth_method must be config, oauth1 or oauth2"))?;
    let mut config = Vec::new();
    for f in body.config.unwrap_or_default() {
        let name: String = FieldName::parse(f.name)?.into();
        if config.iter().any(|c: &ConfigField| c.name == name) {
            return Err(ApiError::bad_request(format!(
                "config field {name} is declared twice"
            )));
        }
        config.push(ConfigField {
            label: text(f.label, FieldLabel::parse)?,
            kind: text(f.kind, FieldType::parse)?.chars().take(32).collect(),
            optional: f.optional.unwrap_or(false),
            name,
        });
    }
    if config.len() > 64 {
        return Err(ApiError::bad_request("at most 64 config fields"));
    }
    let categories = body.categories.unwrap_or_default();
    if categories.len() > 16 {
        return Err(ApiError::bad_request("at most 16 categories"));
    }
    let categories = categories
        .into_iter()
        .map(|c| text(Some(c), Category::parse))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Provider {
        id: ProviderId::generate(),
        namespace: match text(body.namespace, Namespace::parse)? {
            n if n.is_empty() => slug.clone(),
            n => n,
        },
        slug,
        name,
        description: text(body.description, Description::parse)?,
        categories,
        auth_method,
        auth_description: text(body.auth_description, AuthDescription::parse)?,
        hidden: body.hidden.unwrap_or(false),
        no_auth: false,
        config,
    })
}

async fn create(
    caller: Authed<perm::ProvidersWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(body): ApiJson<ProviderBody>,
) -> ApiResult<Response> {
    let p = parse(body)?;
    let p = providers::create(&state, &caller, &rid, p).await?;
    Ok(Success(StatusCode::CREATED, ProviderDto::from(&p)).into_response())
}
