//! Custom providers ([`ProviderStore`]), per account, unique by id and by slug within the
//! account. Categories and config fields are stored as JSON text on both backends.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::AccountId;
use authd_core::provider::Provider;
use authd_core::store::ProviderStore;
use authd_core::{Error, Result};

use crate::audit::insert_audits;
use crate::{args, bounded, provider_from_row, transaction, Db, Exec, Mode, SqlStore};

/// The columns [`provider_from_row`] reads.
const PROVIDER_COLS: &str = "id, slug, name, namespace, description, categories, auth_method, \
     auth_description, hidden, no_auth, config";

#[async_trait]
impl<D: Db> ProviderStore for SqlStore<D> {
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
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                tx.execute(
                    "INSERT INTO providers (id, account_id, slug, name, namespace, description, \
                     categories, auth_method, hidden, no_auth, config, created_ms, \
                     auth_description) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    args![
                        p.id,
                        account,
                        &p.slug,
                        &p.name,
                        &p.namespace,
                        &p.description,
                        &categories,
                        p.auth_method.as_str(),
                        p.hidden,
                        p.no_auth,
                        &config,
                        now_ms,
                        &p.auth_description
                    ],
                )
                .await
                .map_err(|e| match e {
                    Error::Conflict(_) => {
                        Error::Conflict(format!("A provider with slug {:?} already exists", p.slug))
                    }
                    other => other,
                })?;
                insert_audits(tx, &audit, &p).await
            })
        })
        .await?;
        Ok(p)
    }

    async fn list_providers(&self, account: AccountId) -> Result<Vec<Provider>> {
        let sql =
            format!("SELECT {PROVIDER_COLS} FROM providers WHERE account_id = $1 ORDER BY slug");
        self.read_all(&sql, args![account], |r| provider_from_row(r))
            .await
    }

    async fn get_provider(&self, account: AccountId, key: &str) -> Result<Option<Provider>> {
        let sql = format!(
            "SELECT {PROVIDER_COLS} FROM providers WHERE account_id = $1 \
             AND (id = $2 OR slug = $2)"
        );
        self.read_optional(&sql, args![account, key], |r| provider_from_row(r))
            .await
    }
}
