//! `authd keys rotate | rewrap | status`: the operator side of the key ring. Each runs the
//! same functions in [`crate::keys`] that tests call while a server is serving, so what the
//! tests prove is what the CLI does. Output never contains key material.

use std::sync::Arc;

use anyhow::Context;
use authd_core::clock::{rfc3339, Clock};
use clap::Subcommand;

use authd_core::store::Store;
use authd_crypto::MasterKey;

use crate::keys;

/// `authd keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new data key and make it current; running servers use it for new writes.
    Rotate,
    /// Re-encrypt every stored secret under the current key (online, resumable).
    Rewrap {
        /// Fields per batch.
        #[arg(long, default_value_t = 500)]
        batch: u32,
    },
    /// Key ids, ages and how many secrets each seals.
    Status,
}

/// Runs one `authd keys` subcommand.
/// `store` is an existing store (see [`crate::cli::open_existing`]).
pub async fn run(
    cmd: KeysCommand,
    store: Arc<dyn Store>,
    master: MasterKey,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let wrapper = master.key_wrapper();
    keys::ensure_initialised(store.as_ref(), &wrapper, clock.as_ref()).await?;
    match cmd {
        KeysCommand::Rotate => {
            let id = keys::rotate(store.as_ref(), &wrapper, clock.as_ref())
                .await
                .context("rotating the data key")?;
            eprintln!("authd: new current data key {id}; run `authd keys rewrap` to re-encrypt existing secrets");
            println!("{id}");
        }
        KeysCommand::Rewrap { batch } => {
            let p = keys::rewrap(store, wrapper, clock.as_ref(), batch.max(1), |p| {
                eprintln!(
                    "authd: rewrap progress: {} re-encrypted, {} replaced concurrently, {} unreadable",
                    p.rewrapped, p.raced, p.remaining
                );
            })
            .await
            .context("rewrapping secrets")?;
            eprintln!(
                "authd: rewrap done: {} re-encrypted, {} replaced concurrently, {} unreadable",
                p.rewrapped, p.raced, p.remaining
            );
        }
        KeysCommand::Status => {
            let now = clock.now_ms();
            for k in keys::status(store.as_ref()).await? {
                println!(
                    "{}\t{}\tcreated {} ({} days ago)\t{} secrets",
                    k.id,
                    if k.current { "current" } else { "retired" },
                    rfc3339(Some(k.created_ms)),
                    (now - k.created_ms) / 86_400_000,
                    k.secrets
                );
            }
        }
    }
    Ok(())
}
