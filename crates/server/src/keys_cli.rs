//! `authd keys rotate | rewrap | status | destroy | rotate-master`: the operator side of the key ring. Each runs the
//! same functions in [`crate::keys`] that tests call while a server is serving, so what the
//! tests prove is what the CLI does. Output never contains key material.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use authd_core::clock::{rfc3339, Clock};
use clap::Subcommand;

use authd_core::credential::KeyDestroy;
use authd_core::store::Store;
use authd_crypto::MasterKey;

use crate::keys;
use crate::startup::Unlocked;

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
    /// Key ids, ages, how many secrets each seals and how many seals each has made.
    Status {
        /// One JSON array on stdout instead of text lines.
        #[arg(long)]
        json: bool,
    },
    /// Remove a retired data key that no secret uses any more (after `authd keys rewrap`):
    /// backups taken before can no longer be decrypted with it.
    Destroy {
        /// The key id, as `authd keys status` lists it (`k_…`).
        key_id: String,
    },
    /// Rewrap every data key and the token-hash key under a new master key, in one
    /// transaction; API tokens and stored secrets stay valid. Restart every node with the new
    /// key afterwards (a node still on the old key refuses to start).
    RotateMaster {
        /// The new master key file (base64 of 32 bytes, mode 0600).
        #[arg(long)]
        new_key_file: PathBuf,
        /// Generate the new key and write it to --new-key-file (which must not exist).
        #[arg(long)]
        generate: bool,
    },
}

/// Runs one `authd keys` subcommand.
/// `store` is an existing store (see [`crate::cli::open_existing`]).
pub async fn run(
    cmd: KeysCommand,
    store: Arc<dyn Store>,
    unlocked: Unlocked,
    clock: Arc<dyn Clock>,
    seal_budget: u64,
) -> anyhow::Result<()> {
    let wrapper = unlocked.wrapper;
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
            let budget = seal_budget;
            let p = keys::rewrap_within(store, wrapper, clock.as_ref(), budget, batch.max(1), |p| {
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
        KeysCommand::Status { json } => status(store.as_ref(), clock.as_ref(), json).await?,
        KeysCommand::Destroy { key_id } => destroy(store.as_ref(), clock.as_ref(), &key_id).await?,
        KeysCommand::RotateMaster {
            new_key_file,
            generate,
        } => rotate_master(store.as_ref(), &wrapper, &new_key_file, generate, clock).await?,
    }
    Ok(())
}

/// `authd keys status [--json]`: one line (or JSON object) per key, oldest first.
async fn status(store: &dyn Store, clock: &dyn Clock, json: bool) -> anyhow::Result<()> {
    let keys = keys::status(store).await?;
    if json {
        let list: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "id": k.id,
                    "current": k.current,
                    "created": rfc3339(Some(k.created_ms)),
                    "created_ms": k.created_ms,
                    "secrets": k.secrets,
                    "seals": k.seals,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    let now = clock.now_ms();
    for k in keys {
        println!(
            "{}\t{}\tcreated {} ({} days ago)\t{} seals\t{} secrets",
            k.id,
            if k.current { "current" } else { "retired" },
            rfc3339(Some(k.created_ms)),
            (now - k.created_ms) / 86_400_000,
            k.seals,
            k.secrets
        );
    }
    Ok(())
}

/// `authd keys destroy <key id>`: refuses (non-zero exit) a current, referenced or unknown key.
async fn destroy(store: &dyn Store, clock: &dyn Clock, key_id: &str) -> anyhow::Result<()> {
    match keys::destroy(store, clock, key_id).await? {
        KeyDestroy::Destroyed => {
            eprintln!("authd: destroyed retired data key {key_id}");
            Ok(())
        }
        KeyDestroy::NotFound => anyhow::bail!("no data key {key_id:?}; see `authd keys status`"),
        KeyDestroy::Current => anyhow::bail!(
            "data key {key_id} is the current key; run `authd keys rotate` and \
             `authd keys rewrap` first"
        ),
        KeyDestroy::Referenced(n) => anyhow::bail!(
            "data key {key_id} still seals {n} secrets; run `authd keys rewrap` first"
        ),
    }
}

/// `authd keys rotate-master`: loads (or generates) the new key, rewraps, tells the operator
/// what to do next. The new master key is dropped as soon as its KEK is derived.
async fn rotate_master(
    store: &dyn Store,
    old: &authd_crypto::KeyWrapper,
    path: &Path,
    generate: bool,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let new = if generate {
        MasterKey::generate_file(path)
            .with_context(|| format!("writing the new master key file {}", path.display()))?
    } else {
        MasterKey::read_file(path)
            .with_context(|| format!("reading the new master key file {}", path.display()))?
    };
    let new = new.key_wrapper();
    let n = keys::rotate_master(store, old, &new, clock.as_ref())
        .await
        .context("rotating the master key")?;
    eprintln!(
        "authd: master key rotated: {n} data key(s) and the API-token hash key are now wrapped \
         under the key in {}. Restart every node with --master-key-file {} (or its \
         AUTHD_MASTER_KEY); a node still on the old key refuses to start. Back the new key up \
         separately from the data, then destroy the old one.",
        path.display(),
        path.display()
    );
    Ok(())
}
