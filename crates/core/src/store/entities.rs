//! Storage contract for entity (user profile) data. Every method takes the [`AccountId`] first and must not see
//! another account's rows.

use crate::audit::Audit;
use crate::ids::AccountId;
use crate::Result;
use async_trait::async_trait;
use serde_json::Value;

/// Entities (user profiles) uploaded through the collect API.
#[async_trait]
pub trait EntityStore: Send + Sync {
    /// Upserts entities of `kind` by key, in order, in one transaction. An existing entity is
    /// merged with the new object as by RFC 7396 (JSON merge patch): new fields are added,
    /// present fields replaced, fields set to `null` removed.
    async fn upsert_entities(
        &self,
        account: AccountId,
        kind: &str,
        items: &[(String, Value)],
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<()>;
    /// The first entity of `kind` (in key order) whose top-level `field` equals `value`
    /// (compared as text, so `42` matches "42").
    async fn find_entity(
        &self,
        account: AccountId,
        kind: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<Value>>;
}
