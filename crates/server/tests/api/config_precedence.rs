//! One configuration: for every key, a real `authd config show --json` process proves the
//! precedence default < TOML file < `AUTHD_*` variable < flag, through the same names
//! (`key`, `AUTHD_KEY`, `--key`). Also: the value-or-file rule of the secrets, unknown keys
//! reported, secrets never printed, and a formerly file-only key reaching a running server.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::cli::authd;

/// One key: its value in the file (a TOML literal), the environment and on the command line
/// (`None`: a switch, given bare), and what `config show` prints for each. `{dir}` is the
/// test's directory.
struct Case {
    key: &'static str,
    file: &'static str,
    env: &'static str,
    flag: Option<&'static str>,
    shown: [&'static str; 3],
}

const fn case(
    key: &'static str,
    file: &'static str,
    env: &'static str,
    flag: &'static str,
) -> Case {
    Case {
        key,
        file,
        env,
        flag: Some(flag),
        shown: [file, env, flag],
    }
}

const fn path_case(key: &'static str, f: &'static str, e: &'static str, c: &'static str) -> Case {
    Case {
        key,
        file: "",
        env: e,
        flag: Some(c),
        shown: [f, e, c],
    }
}

/// Every key of `docs/configuration.md` but `master_key` (environment only; its own test).
const CASES: &[Case] = &[
    path_case("data_dir", "{dir}/d-file", "{dir}/d-env", "{dir}/d-flag"),
    path_case(
        "database_url",
        "sqlite://{dir}/file.db",
        "sqlite://{dir}/env.db",
        "sqlite://{dir}/flag.db",
    ),
    path_case(
        "database_url_file",
        "{dir}/url-file",
        "{dir}/url-env",
        "{dir}/url-flag",
    ),
    path_case(
        "master_key_file",
        "{dir}/k-file",
        "{dir}/k-env",
        "{dir}/k-flag",
    ),
    case("db_max_connections", "5", "6", "7"),
    case("db_timeout_ms", "1001", "1002", "1003"),
    case("token_cache_max_age_ms", "11", "12", "13"),
    case("data_key_seal_budget", "101", "102", "103"),
    path_case(
        "listen",
        "127.0.0.1:7001",
        "127.0.0.1:7002",
        "127.0.0.1:7003",
    ),
    case("body_limit_bytes", "2001", "2002", "2003"),
    case("collect_limit_bytes", "3001", "3002", "3003"),
    case("token_cache_capacity", "401", "402", "403"),
    Case {
        key: "trusted_proxies",
        file: "[\"10.1.0.0/16\"]",
        env: "10.2.0.0/16,10.4.0.0/16",
        flag: Some("10.3.0.0/16"),
        shown: ["10.1.0.0/16", "10.2.0.0/16,10.4.0.0/16", "10.3.0.0/16"],
    },
    path_case("entity_key_field", "f_file", "f_env", "f_flag"),
    path_case(
        "worker_listen",
        "127.0.0.1:7101",
        "127.0.0.1:7102",
        "127.0.0.1:7103",
    ),
    Case {
        key: "worker_listen_public",
        file: "true",
        env: "false",
        flag: None,
        shown: ["true", "false", "true"],
    },
    path_case(
        "worker_token_file",
        "{dir}/w-file",
        "{dir}/w-env",
        "{dir}/w-flag",
    ),
    case("head_timeout_ms", "501", "502", "503"),
    case("body_timeout_ms", "601", "602", "603"),
    case("idle_timeout_ms", "701", "702", "703"),
    case("max_connections", "11", "12", "13"),
    case("audit_queue", "21", "22", "23"),
];

fn env_name(key: &str) -> String {
    format!("AUTHD_{}", key.to_ascii_uppercase())
}

/// Runs `authd config show --json` in `dir` with the file (if any), env and args.
fn show(dir: &Path, file: Option<&str>, env: &[(String, String)], args: &[String]) -> Output {
    let mut c = authd();
    c.current_dir(dir)
        .args(["config", "show", "--json"])
        .args(args);
    for k in [
        "AUTHD_DATA_DIR",
        "AUTHD_DATABASE_URL",
        "AUTHD_MASTER_KEY_FILE",
    ] {
        c.env_remove(k);
    }
    for case in CASES {
        c.env_remove(env_name(case.key));
    }
    if let Some(toml) = file {
        let p = dir.join("authd.toml");
        std::fs::write(&p, toml).unwrap();
        c.arg("--config").arg(p);
    }
    c.envs(env.iter().map(|(k, v)| (k, v))).output().unwrap()
}

fn shown(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "config show failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes a 0600 file holding `text`.
fn secret_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for layer in ["file", "env", "flag"] {
        let url = format!("sqlite://{}/from-{layer}.db", dir.path().display());
        secret_file(
            &dir.path().join(format!("url-{layer}")),
            &format!("{url}\n"),
        );
    }
    dir
}

/// One layering: the file, the environment, the flags, and the source expected.
type Step<'a> = (
    Option<&'a str>,
    &'a [(String, String)],
    &'a [String],
    &'a str,
);

/// One key through the four layers: default, file, file + env, file + env + flag.
fn check_case(dir: &Path, c: &Case) {
    let d = dir.display().to_string();
    let fill = |s: &str| s.replace("{dir}", &d);
    let file_value = if c.file.is_empty() {
        format!("{:?}", fill(c.shown[0]))
    } else {
        fill(c.file)
    };
    let toml = format!("{} = {file_value}\n", c.key);
    let env = vec![(env_name(c.key), fill(c.env))];
    let mut flag = vec![format!("--{}", c.key.replace('_', "-"))];
    flag.extend(c.flag.map(fill));
    let steps: [Step<'_>; 4] = [
        (None, &[], &[], "default"),
        (Some(&toml), &[], &[], "file"),
        (Some(&toml), &env, &[], "env"),
        (Some(&toml), &env, &flag, "flag"),
    ];
    for (i, (file, env, args, source)) in steps.into_iter().enumerate() {
        let v = shown(&show(dir, file, env, args));
        let row = &v[c.key];
        assert_eq!(row["source"], source, "{}: step {source}: {row}", c.key);
        if i > 0 {
            assert_eq!(
                row["value"],
                fill(c.shown[i - 1]),
                "{}: step {source}",
                c.key
            );
        }
    }
}

#[test]
fn every_key_follows_flag_over_env_over_file_over_default() {
    let dir = fixture();
    let all = shown(&show(dir.path(), None, &[], &[]));
    let printed: BTreeSet<&str> = all
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let tested: BTreeSet<&str> = CASES.iter().map(|c| c.key).chain(["master_key"]).collect();
    assert_eq!(
        printed, tested,
        "every key config show prints has a precedence case"
    );
    for c in CASES {
        check_case(dir.path(), c);
    }
}

#[test]
fn the_database_url_comes_from_its_file_and_is_never_printed() {
    let dir = fixture();
    let d = dir.path();
    let url_file = d.join("pg-url");
    secret_file(&url_file, "postgres://authd:pg-s3cret@127.0.0.1:1/authd\n");
    let key = authd_crypto::MasterKey::generate().to_base64();
    let env = vec![
        (
            "AUTHD_DATABASE_URL_FILE".to_owned(),
            url_file.display().to_string(),
        ),
        ("AUTHD_MASTER_KEY".to_owned(), key.clone()),
    ];
    let out = show(d, Some("database_url = \"sqlite://x.db\"\n"), &env, &[]);
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!all.contains("pg-s3cret") && !all.contains(&key), "{all}");
    let v = shown(&out);
    // The file (env layer) beats the file key; the trailing newline is gone.
    assert_eq!(
        v["database_url"]["value"],
        "postgres://authd:***@127.0.0.1:1/authd"
    );
    assert_eq!(v["database_url"]["source"], "env");
    assert_eq!(v["master_key"]["value"], "<hidden>");
    assert_eq!(v["master_key"]["source"], "env");
    // Both forms in one layer are ambiguous; a readable file is refused by name only.
    let both = [
        env[0].clone(),
        ("AUTHD_DATABASE_URL".to_owned(), "sqlite://y.db".to_owned()),
    ];
    let out = show(d, None, &both, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("set only one"));
    std::fs::set_permissions(
        &url_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let out = show(d, None, &env, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("accessible to group or others") && !stderr.contains("pg-s3cret"),
        "{stderr}"
    );
}

#[test]
fn the_master_key_flag_beats_its_variable_which_beats_the_file() {
    let dir = fixture();
    let d = dir.path();
    let key = authd_crypto::MasterKey::generate().to_base64();
    let env = vec![("AUTHD_MASTER_KEY".to_owned(), key.clone())];
    let file = format!("master_key_file = \"{}/k-file\"\n", d.display());
    let v = shown(&show(d, Some(&file), &env, &[]));
    assert_eq!(v["master_key"]["value"], "<hidden>");
    assert_eq!(v["master_key"]["source"], "env");
    let flag = vec![
        "--master-key-file".to_owned(),
        d.join("k-flag").display().to_string(),
    ];
    let v = shown(&show(d, Some(&file), &env, &flag));
    assert_eq!(
        v["master_key"]["value"],
        format!("file {}/k-flag", d.display())
    );
    assert_eq!(v["master_key"]["source"], "flag");
    let mut both = env.clone();
    both.push(("AUTHD_MASTER_KEY_FILE".to_owned(), "/k".to_owned()));
    let out = show(d, None, &both, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("set only one") && !stderr.contains(&key),
        "{stderr}"
    );
}

#[test]
fn unknown_variables_are_warned_about_by_name_and_unknown_file_keys_refused() {
    let dir = fixture();
    let d = dir.path();
    let env = vec![("AUTHD_LISTNE".to_owned(), "hunter2-value".to_owned())];
    let out = show(d, None, &env, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("AUTHD_LISTNE is not an authd setting"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let out = show(d, Some("lisen = \"127.0.0.1:1\"\n"), &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("unknown key `lisen`") && stderr.contains("authd.toml"),
        "{stderr}"
    );
    // A bad value names the variable, not the value.
    let env = vec![("AUTHD_DB_TIMEOUT_MS".to_owned(), "soon-value".to_owned())];
    let out = show(d, None, &env, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("AUTHD_DB_TIMEOUT_MS") && !stderr.contains("soon-value"),
        "{stderr}"
    );
}

/// `authd init` in `d`; returns the admin token.
fn init(d: &Path) -> String {
    let out = authd()
        .arg("--data-dir")
        .arg(d)
        .arg("init")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_formerly_file_only_key_reaches_the_running_server_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let token = init(dir.path());
    let (mut child, addr, _) = crate::cli::serve(
        authd()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("AUTHD_BODY_LIMIT_BYTES", "256"),
    );
    let post = |body: String| {
        reqwest::Client::new()
            .post(format!("http://{addr}/api/auth/createtoken"))
            .header("Authorization", &token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let small = post(r#"{"scopes":["data"],"name":"small"}"#.to_owned())
        .await
        .unwrap();
    assert_eq!(small.status(), 201, "{:?}", small.text().await);
    let big = format!(r#"{{"scopes":["data"],"name":"{}"}}"#, "a".repeat(300));
    assert_eq!(post(big).await.unwrap().status(), 413);
    crate::cli::stop(&mut child);
}
