//! Custom providers on PostgreSQL ([`ProviderStore`]), per account, unique by id and by slug
//! within the account. Categories and config fields are stored as JSON text, as in SQLite.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::AccountId;
use authd_core::provider::Provider;
use authd_core::store::ProviderStore;
use authd_core::{Error, Result};
use authd_store_sql::provider_from_row;

use crate::audit::insert_audits;
use crate::{db_err, PgStore};

const PROVIDER_COLS: &str = "id, slug, name, namespace, description, categories, auth_method, \
     auth_description, hidden, no_auth, config";

#[async_trait]
impl ProviderStore for PgStore {
    async fn create_provider(
        &self,
        account: AccountId,
        p: Provider,
        now_ms: i64,
        audit: Audit<'_, Provider>,
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
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO providers (id, account_id, slug, name, namespace, description, \
                 categories, auth_method, hidden, no_auth, config, created_ms, auth_description) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
            .bind(&p.auth_description)
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("A provider with slug {:?} already exists", p.slug))
                }
                other => other,
            })?;
            insert_audits(&mut tx, &audit, &p).await?;
            tx.commit().await.map_err(db_err)
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
