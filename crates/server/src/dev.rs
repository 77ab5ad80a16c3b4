//! Developer and benchmark tooling, compiled only with the `dev-tools` cargo feature (off by
//! default; release builds do not have it, `bench/run.sh` enables it): bulk admin tokens for
//! the benchmark harness (`authd dev seed-tokens`).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use authd_core::clock::Clock;
use authd_core::ids::AuthId;
use authd_core::model::{NewToken, Page};
use authd_core::roles::{Role, RoleSet};
use authd_core::store::Store;
use authd_core::token::ApiToken;
use authd_crypto::TokenHasher;

/// Inserts `count` admin tokens into the first account (by aid) and writes them to `out`, a
/// new file created with mode 0600; appends one audit entry (`dev.seed_tokens`, actor
/// `operator`) with the count, never the tokens. Only in `dev-tools` builds.
pub async fn seed_tokens(
    store: &dyn Store,
    hasher: &TokenHasher,
    clock: &dyn Clock,
    count: usize,
    out: &Path,
) -> anyhow::Result<usize> {
    let account = match store.get_account_by_aid(1).await? {
        Some(a) => a,
        None => {
            crate::provision::account(store, hasher, clock, "default")
                .await?
                .account
        }
    };
    let user = store
        .list_users(
            account.id,
            Page {
                after: None,
                limit: 1,
            },
        )
        .await?
        .into_iter()
        .next();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts
        .open(out)
        .with_context(|| format!("creating {} (it must not exist)", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let now = clock.now_ms();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(5_000);
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            let t = ApiToken::generate(AuthId::generate_at(now));
            writeln!(w, "{}", t.expose())?;
            batch.push(NewToken {
                id: t.id(),
                hash: hasher.hash(t.expose().as_bytes()),
                name: "seed".into(),
                label: "seed".into(),
                description: "seed".into(),
                user_id: user.as_ref().map(|u| u.id),
                user_name: user.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
                parent_id: None,
                scopes: RoleSet::of(&[Role::Admin]),
                expires_ms: None,
                ttl_secs: None,
                audit: None,
            });
        }
        // In id order (the bytes sort as their hex text; ids made in the same millisecond
        // differ in their random part): `auths` is clustered on the id, and sorted inserts
        // fill its pages instead of splitting them at random.
        batch.sort_unstable_by_key(|t| t.id);
        store.create_tokens(account.id, &batch, now).await?;
        done += n;
    }
    w.flush()?;
    store
        .append_audit(authd_core::audit::AuditEntry {
            seq: 0,
            at_ms: clock.now_ms(),
            account_id: Some(account.id),
            actor: crate::tokens::OPERATOR.into(),
            action: authd_core::audit::AuditAction::DevSeedTokens,
            target: String::new(),
            outcome: "ok".into(),
            request_id: String::new(),
            detail: format!("count {done}"),
        })
        .await?;
    Ok(done)
}
