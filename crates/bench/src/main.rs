//! `authd-bench`: the measuring tools behind `bench/run.sh`.
//!
//! One binary, several subcommands, so that every server (authd, the HTTP-limit
//! baseline, the oidc-provider peer) is driven by the very same client and the
//! ratios between them are fair:
//!
//! - `baseline`: the HTTP limit, a minimal axum route that checks no token;
//! - `load`: an HTTP/1.1 keep-alive load generator printing one JSON line;
//! - `sqlite-commit`: the durable-commit limit of the disk under SQLite;
//! - `pg-commit`: the durable-commit limit of a PostgreSQL server;
//! - `wait-ready`: polls a URL until it answers 200 (start-up time).

mod baseline;
mod load;
mod pg_commit;
mod procstat;
mod ready;
mod sqlite_commit;

use clap::{Parser, Subcommand};

/// Command line of `authd-bench`.
#[derive(Debug, Parser)]
#[command(name = "authd-bench", version, about = "authd benchmark harness tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP limit: `GET /api/auth/{id}` answering a Lytics envelope, no token check.
    Baseline(baseline::Args),
    /// Drive an HTTP server with keep-alive connections and print a JSON summary.
    Load(load::Args),
    /// Measure single-row durable INSERT transactions per second (WAL, synchronous=FULL).
    SqliteCommit(sqlite_commit::Args),
    /// Measure single-row durable INSERT transactions per second on PostgreSQL (synchronous_commit=on).
    PgCommit(pg_commit::Args),
    /// Poll a URL until it answers 200; print the time it took as JSON.
    WaitReady(ready::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Baseline(args) => baseline::run(args),
        Command::Load(args) => load::run(args),
        Command::SqliteCommit(args) => sqlite_commit::run(args),
        Command::PgCommit(args) => pg_commit::run(args),
        Command::WaitReady(args) => ready::run(args),
    }
}
