//! The `authd` binary: parses the command line and hands off to [`authd::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let mut cli = authd::cli::Cli::parse();
    // Before any other thread exists: take the key out of the environment.
    cli.take_master_key_env();
    authd::telemetry::init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("authd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(authd::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
