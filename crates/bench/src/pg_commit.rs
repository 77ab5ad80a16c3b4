//! `pg-commit`: the durable-commit limit of a PostgreSQL server.
//!
//! One connection, one single-row `INSERT` per transaction, with
//! `synchronous_commit = on` (the commit returns once the WAL is flushed), into
//! a table shaped like a token row. authd's durable `createtoken` rate on
//! PostgreSQL is reported as a ratio of this one. The URL comes from
//! `AUTHD_BENCH_PG_URL` (or `--url`) so that its password stays out of `ps`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rand::{Rng as _, SeedableRng as _};
use sqlx::{Connection as _, PgConnection};

/// Arguments of `authd-bench pg-commit`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// PostgreSQL URL (loopback); prefer the environment variable.
    #[arg(long, env = "AUTHD_BENCH_PG_URL", hide_env_values = true)]
    url: String,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

/// The probe's own table, dropped before and after.
const TABLE: &str = "authd_bench_commit";

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
        // The error of a failed connect may quote the URL: do not chain it verbatim.
        let mut conn = PgConnection::connect(&args.url)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to PostgreSQL failed ({})", kind(&e)))?;
        sqlx::query("SET synchronous_commit = on")
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!("DROP TABLE IF EXISTS {TABLE}"))
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!(
            "CREATE TABLE {TABLE} (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                secret_hash BYTEA NOT NULL,
                scopes TEXT NOT NULL,
                created_ms BIGINT NOT NULL
            )"
        ))
        .execute(&mut conn)
        .await
        .context("creating the probe table")?;
        let insert = format!(
            "INSERT INTO {TABLE} (id, name, secret_hash, scopes, created_ms) VALUES ($1, $2, $3, $4, $5)"
        );

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
            sqlx::query(&insert)
                .bind(format!("{id:032x}"))
                .bind("b")
                .bind(&secret[..])
                .bind(r#"["observer"]"#)
                .bind(i64::try_from(commits).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            hist.saturating_record(
                u64::try_from(t0.elapsed().as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
            commits += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        sqlx::query(&format!("DROP TABLE IF EXISTS {TABLE}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        println!("{}", crate::sqlite_commit::summary(commits, secs, &hist));
        Ok(())
    })
}

/// A short, URL-free description of a connection error.
fn kind(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => io.kind().to_string(),
        sqlx::Error::Tls(_) => "TLS".into(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        _ => "see the server's log".into(),
    }
}
