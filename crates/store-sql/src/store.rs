//! [`Store`]: every aggregate's trait, over one backend.

use async_trait::async_trait;
use authd_core::store::Store;
use authd_core::Result;

use crate::{Db, SqlStore};

#[async_trait]
impl<D: Db> Store for SqlStore<D> {
    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }

    fn backend(&self) -> &'static str {
        D::NAME
    }
}
