//! `sqlite-commit`: the durable-commit limit of the disk.
//!
//! One connection, one single-row `INSERT` per transaction, with the settings
//! authd's store uses (WAL, `synchronous=FULL`, a busy timeout). authd's durable
//! `createtoken` rate is reported as a ratio of this one.

use std::{
    path::{Path, PathBuf},
    str::FromStr as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rand::{Rng as _, SeedableRng as _};
use serde_json::json;
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
    Connection as _, SqliteConnection,
};

/// Arguments of `authd-bench sqlite-commit`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Database file to create (on the disk under test); removed first if present.
    #[arg(long)]
    path: PathBuf,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// The JSON line both commit probes print: commits, seconds, rate and latency percentiles.
pub(crate) fn summary(commits: u64, secs: f64, hist: &Histogram<u64>) -> serde_json::Value {
    json!({
        "commits": commits,
        "seconds": secs,
        "commits_per_sec": commits as f64 / secs,
        "p50_us": hist.value_at_quantile(0.5),
        "p99_us": hist.value_at_quantile(0.99),
        "max_us": hist.max(),
    })
}

/// Commit single-row transactions for `duration` seconds; print the rate.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.duration > 0.0 && args.duration <= 600.0,
        "--duration must be in (0, 600] seconds"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        remove_db(&args.path);
        let url = format!("sqlite://{}", args.path.display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let mut conn = SqliteConnection::connect_with(&opts)
            .await
            .with_context(|| format!("opening {}", args.path.display()))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_commit (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                secret_hash BLOB NOT NULL,
                scopes TEXT NOT NULL,
                created_ms INTEGER NOT NULL
            )",
        )
        .execute(&mut conn)
        .await?;

        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(args.duration);
        let mut commits: u64 = 0;
        while Instant::now() < end {
            let id: u128 = rng.gen();
            let secret: [u8; 32] = rng.gen();
            let t0 = Instant::now();
            let mut tx = conn.begin().await?;
            sqlx::query(
                "INSERT INTO bench_commit (id, name, secret_hash, scopes, created_ms) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(format!("{id:032x}"))
            .bind("b")
            .bind(&secret[..])
            .bind(r#"["observer"]"#)
            .bind(i64::try_from(commits).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            hist.saturating_record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
            commits += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        conn.close().await?;
        remove_db(&args.path);
        let out = summary(commits, secs, &hist);
        println!("{out}");
        Ok(())
    })
}
