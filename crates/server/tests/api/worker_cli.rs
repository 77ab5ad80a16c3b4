//! The `authd worker credential` CLI on a store (server stopped): create shows the credential
//! once on stdout, list never shows it, revoke by name or id, bad input refused; and the
//! `dev` tooling exists only in `dev-tools` builds, writing a private file and auditing the run.

use serde_json::Value;

use crate::cli::authd;

fn run(d: &str, args: &[&str]) -> std::process::Output {
    authd()
        .arg("--data-dir")
        .arg(d)
        .args(args)
        .output()
        .unwrap()
}

fn ok(d: &str, args: &[&str]) -> (String, String) {
    let out = run(d, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn listed(d: &str) -> Vec<Value> {
    let (out, _) = ok(d, &["worker", "credential", "list", "--json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn worker_credentials_are_created_once_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(d, &["init"]);
    ok(d, &["account", "create", "--name", "second"]);
    let (out, err) = ok(
        d,
        &["worker", "credential", "create", "etl", "--account", "2"],
    );
    let token = out.trim();
    assert_eq!(out.lines().count(), 1);
    assert!(token.starts_with("wk_") && token.len() == 67, "{token}");
    assert!(
        !err.contains(&token[3..]) && err.contains("shown only once"),
        "{err}"
    );
    ok(d, &["worker", "credential", "create", "all"]);

    let rows = listed(d);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "etl");
    assert_eq!(rows[0]["accounts"].as_array().unwrap().len(), 1);
    assert!(rows[1]["accounts"].is_null() && rows[1]["revoked"].is_null());
    let (table, _) = ok(d, &["worker", "credential", "list"]);
    assert!(table.contains("etl") && !table.contains(&token[3..]));

    // A live name is unique; names and accounts are checked.
    for (args, msg) in [
        (&["create", "etl"][..], "already exists"),
        (
            &["create", "bad name"][..],
            "invalid worker credential name",
        ),
        (
            &["create", "x", "--account", "9"][..],
            "no account with id or aid",
        ),
        (&["revoke", "nope"][..], "no live worker credential"),
    ] {
        let out = run(d, &[&["worker", "credential"][..], args].concat());
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(msg),
            "{args:?}"
        );
    }
    ok(d, &["worker", "credential", "revoke", "etl"]);
    let id = rows[1]["id"].as_str().unwrap();
    ok(d, &["worker", "credential", "revoke", id]);
    assert!(listed(d).iter().all(|r| r["revoked"].is_string()));
}

#[test]
fn worker_commands_refuse_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("none");
    let out = run(d.to_str().unwrap(), &["worker", "credential", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `authd init`"));
    assert!(!d.exists());
}

#[cfg(not(feature = "dev-tools"))]
#[test]
fn builds_without_dev_tools_have_no_dev_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("tokens");
    let o = run(
        d,
        &[
            "dev",
            "seed-tokens",
            "--count",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unrecognized subcommand"));
    assert!(!out.exists());
}

#[cfg(feature = "dev-tools")]
#[tokio::test]
async fn dev_seed_tokens_writes_a_private_file_and_is_audited_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (admin, _) = ok(d, &["init"]);
    let out = dir.path().join("tokens");
    ok(
        d,
        &[
            "dev",
            "seed-tokens",
            "--count",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let tokens = std::fs::read_to_string(&out).unwrap();
    assert_eq!(tokens.lines().count(), 3);
    // An existing file is never overwritten.
    assert!(!run(
        d,
        &[
            "dev",
            "seed-tokens",
            "--count",
            "1",
            "--out",
            out.to_str().unwrap()
        ]
    )
    .status
    .success());
    let mut config = authd::config::Config::embedded(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = crate::helpers::start(config, tempfile::tempdir().unwrap()).await;
    let audit = app
        .get("/api/audit?action=dev.seed_tokens", admin.trim())
        .await;
    let entries = audit.ok(200).as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["detail"], "count 3");
    let text = serde_json::to_string(&entries).unwrap();
    assert!(tokens.lines().all(|t| !text.contains(&t[36..])));
    app.stop().await;
}
