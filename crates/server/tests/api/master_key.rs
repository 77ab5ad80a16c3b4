//! The master key's lifecycle through the `authd` binary on SQLite: `keys rotate-master`
//! keeps every token and data key and locks the old key out; a wrong key is refused by every
//! command before anything is written; the data dir is private and a readable key file is
//! refused. (PostgreSQL: `postgres.rs`, `a_master_key_rotation_reaches_every_node`.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use authd::config::{Config, MasterKeySource};
use authd_crypto::MasterKey;

use crate::helpers::*;

fn authd(d: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_authd"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .arg("--data-dir")
        .arg(d);
    c
}

fn run(mut c: Command, args: &[&str]) -> (Output, String) {
    let out = c.args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

fn ok(c: Command, args: &[&str]) -> (String, String) {
    let (out, stderr) = run(c, args);
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn refused(c: Command, args: &[&str]) -> String {
    let (out, stderr) = run(c, args);
    assert!(!out.status.success(), "{args:?} must fail");
    stderr
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `authd init` in a fresh data dir; returns the dir and the admin token.
fn init() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = ok(authd(dir.path()), &["init"]);
    (dir, stdout.trim().to_owned())
}

/// Serves the store with `key`, checks `token` answers 200, creates a credential (so the data
/// key is exercised), stops.
async fn token_works(dir: &Path, key: MasterKeySource, token: &str) {
    let mut c = Config::embedded(dir);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.master_key = key;
    let app = start(c, tempfile::tempdir().unwrap()).await;
    app.get("/api/account/current", token).await.ok(200);
    let body = serde_json::json!({"provider_id": "mailgun", "name": "mail", "config": [
        {"name": "apikey", "value": "k-canary"}, {"name": "domain", "value": "example.com"}]});
    app.post("/api/auth", token, body).await.ok(201);
    let _ = app.stop_keep_dir().await;
}

#[tokio::test]
async fn rotate_master_keeps_tokens_and_data_keys_and_locks_the_old_key_out() {
    let (dir, token) = init();
    let d = dir.path();
    let old = MasterKeySource::File(d.join("master.key"));
    token_works(d, old.clone(), &token).await;
    let outside = tempfile::tempdir().unwrap();
    let new = outside.path().join("new.key");
    let new_s = new.to_str().unwrap();
    let args = [
        "keys",
        "rotate-master",
        "--new-key-file",
        new_s,
        "--generate",
    ];
    let (_, stderr) = ok(authd(d), &args);
    assert!(stderr.contains("Restart every node"), "{stderr}");
    assert_eq!(mode(&new), 0o600);
    let again = refused(authd(d), &args);
    assert!(
        again.contains("the master key does not open this store"),
        "{again}"
    );
    // Every token and data key opens under the new key; the old one is refused everywhere.
    token_works(d, MasterKeySource::File(new.clone()), &token).await;
    let (status, _) = ok(authd(d), &["--master-key-file", new_s, "keys", "status"]);
    assert!(
        // Two mailgun credentials: two fields and an integrity manifest row each.
        status.contains("\tcurrent\t") && status.contains("6 secrets"),
        "{status}"
    );
    let err = refused(authd(d), &["keys", "status"]);
    assert!(
        err.contains("the master key does not open this store"),
        "{err}"
    );
    let mut c = Config::embedded(d);
    c.master_key = old;
    let built =
        authd::startup::Application::build(c, std::sync::Arc::new(authd_core::clock::SystemClock))
            .await;
    let err = format!("{:#}", built.err().expect("the old key must not start"));
    assert!(
        err.contains("the master key does not open this store"),
        "{err}"
    );
}

#[test]
fn a_wrong_master_key_is_refused_by_every_command_before_anything_is_written() {
    let (dir, _) = init();
    let d = dir.path();
    let wrong = MasterKey::generate().to_base64();
    let commands: [&[&str]; 5] = [
        &["serve", "--listen", "127.0.0.1:0"],
        &["account", "create", "--name", "x"],
        &["keys", "rotate"],
        &["token", "create", "--account", "1", "--scopes", "admin"],
        &[
            "account",
            "setting",
            "delete",
            "api_ip_whitelist",
            "--account",
            "1",
        ],
    ];
    for args in commands {
        let mut c = authd(d);
        c.env("AUTHD_MASTER_KEY", &wrong);
        let (out, stderr) = run(c, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing minted");
        assert!(
            stderr.contains("the master key does not open this store"),
            "{args:?}: {stderr}"
        );
    }
    // Nothing was written: the next account is the second, and no data key was added.
    let (_, stderr) = ok(authd(d), &["account", "create", "--name", "y"]);
    assert!(stderr.contains("(aid 2)"), "{stderr}");
    let (status, _) = ok(authd(d), &["keys", "status"]);
    assert_eq!(status.lines().count(), 1, "{status}");
}

#[test]
fn the_data_dir_is_private_and_a_readable_key_file_is_refused() {
    let (dir, _) = init();
    let d = dir.path();
    assert_eq!(mode(d), 0o700);
    for entry in std::fs::read_dir(d).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    // The default key inside the data dir works, with a warning at every start.
    let (_, stderr) = ok(authd(d), &["keys", "status"]);
    assert!(stderr.contains("is inside the data directory"), "{stderr}");
    // A store laid out by an older authd is tightened at start.
    let db = d.join("authd.db");
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(authd(d), &["keys", "status"]);
    assert_eq!((mode(d), mode(&db)), (0o700, 0o600));
    // A key file group or others can read is refused, naming it and the fix.
    let key = d.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused(authd(d), &["keys", "status"]);
    assert!(
        err.contains("master.key") && err.contains("chmod 600"),
        "{err}"
    );
}
