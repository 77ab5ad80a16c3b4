//! Custom providers on PostgreSQL ([`ProviderStore`]), per account, unique by id and by slug
//! within the account. Categories and config fields are stored as JSON text, as in SQLite.

use async_trait::async_trait;
use authd_core::ids::{AccountId, ProviderId};
use authd_core::provider::{AuthMethod, ConfigField, Provider, ProviderStore};
use authd_core::{Error, Result};
use sqlx::postgres::PgRow;

use crate::{corrupt, db_err, get, id_col, PgStore};

const PROVIDER_COLS: &str =
    "id, slug, name, namespace, description, categories, auth_method, hidden, no_auth, config";

fn provider_from_row(row: &PgRow) -> Result<Provider> {
    let method: String = get(row, "auth_method")?;
    let categories: String = get(row, "categories")?;
    let config: String = get(row, "config")?;
    let fields: Vec<(String, String, String, bool)> =
        serde_json::from_str(&config).map_err(|_| corrupt("provider config"))?;
    Ok(Provider {
        id: id_col(row, "id", ProviderId::parse)?,
        slug: get(row, "slug")?,
        name: get(row, "name")?,
        namespace: get(row, "namespace")?,
        description: get(row, "description")?,
        categories: serde_json::from_str(&categories).map_err(|_| corrupt("categories"))?,
        auth_method: AuthMethod::parse(&method).ok_or_else(|| corrupt("auth_method"))?,
        hidden: get(row, "hidden")?,
        no_auth: get(row, "no_auth")?,
        config: fields
            .into_iter()
            .map(|(name, label, kind, optional)| ConfigField {
                name,
                label,
                kind,
                optional,
            })
            .collect(),
    })
}

#[async_trait]
impl ProviderStore for PgStore {
    async fn create_provider(
        &self,
        account: AccountId,
        p: Provider,
        now_ms: i64,
    ) -> Result<Provider> {
        let fields: Vec<(&str, &str, &str, bool)> = p
            .config
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.label.as_str(),
                    f.kind.as_str(),
                    f.optional,
                )
            })
            .collect();
        let config = serde_json::to_string(&fields).map_err(Error::internal)?;
        let categories = serde_json::to_string(&p.categories).map_err(Error::internal)?;
        self.bounded(async {
            sqlx::query(
                "INSERT INTO providers (id, account_id, slug, name, namespace, description, \
                 categories, auth_method, hidden, no_auth, config, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(p.id.to_string())
            .bind(account.to_string())
            .bind(&p.slug)
            .bind(&p.name)
            .bind(&p.namespace)
            .bind(&p.description)
            .bind(&categories)
            .bind(p.auth_method.as_str())
            .bind(p.hidden)
            .bind(p.no_auth)
            .bind(&config)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("A provider with slug {:?} already exists", p.slug))
                }
                other => other,
            })?;
            Ok(())
        })
        .await?;
        Ok(p)
    }

    async fn list_providers(&self, account: AccountId) -> Result<Vec<Provider>> {
        self.bounded(async {
            let sql = format!(
                "SELECT {PROVIDER_COLS} FROM providers WHERE account_id = $1 ORDER BY slug"
            );
            sqlx::query(&sql)
                .bind(account.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?
                .iter()
                .map(provider_from_row)
                .collect()
        })
        .await
    }

    async fn get_provider(&self, account: AccountId, key: &str) -> Result<Option<Provider>> {
        self.bounded(async {
            let sql = format!(
                "SELECT {PROVIDER_COLS} FROM providers WHERE account_id = $1 \
                 AND (id = $2 OR slug = $2)"
            );
            sqlx::query(&sql)
                .bind(account.to_string())
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(provider_from_row)
                .transpose()
        })
        .await
    }
}
