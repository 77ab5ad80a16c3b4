//! The `authd` binary: `init`, `account create` beside a running server, `serve` with config
//! layering (file < env < flag), the bootstrap banner and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use authd::config::Config;
use authd::startup::Application;
use authd_core::clock::SystemClock;

use crate::helpers::*;

pub(crate) fn authd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_authd"));
    c.env_remove("AUTHD_DATA_DIR")
        .env_remove("AUTHD_DATABASE_URL")
        .env_remove("AUTHD_MASTER_KEY")
        .env_remove("AUTHD_MASTER_KEY_FILE")
        .env_remove("AUTHD_LISTEN")
        .env_remove("AUTHD_CONFIG")
        .env_remove("AUTHD_WORKER_TOKEN")
        .env("RUST_LOG", "info");
    c
}

fn is_token(s: &str) -> bool {
    authd_core::token::parse(s).is_some()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn init_then_account_create_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = authd()
        .args(["--data-dir", d, "init", "--account", "first"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim();
    assert!(
        is_token(token),
        "stdout must be the token alone: {stdout:?}"
    );
    assert_eq!(stdout.lines().count(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("generated a new master key"), "{stderr}");
    assert!(
        !stderr.contains(&token[36..]),
        "the secret goes to stdout only"
    );

    let again = authd().args(["--data-dir", d, "init"]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));

    // A server on the same store: no bootstrap, the init token works.
    let mut config = Config::embedded(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let mut app = Application::build(config, std::sync::Arc::new(SystemClock))
        .await
        .unwrap();
    assert!(app.take_bootstrap().is_none());
    let addr = app.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let me = client
        .get(format!("http://{addr}/api/account/current"))
        .header("Authorization", token)
        .send()
        .await
        .unwrap();
    let me = into_resp(me).await;
    assert_eq!(me.ok(200)["name"], "first");

    // `account create` against the store the server is using.
    let out = authd()
        .args(["account", "create", "--name", "acme", "--data-dir", d])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t2 = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(is_token(&t2));
    let acme = client
        .get(format!("http://{addr}/api/account/current"))
        .header("Authorization", &t2)
        .send()
        .await
        .unwrap();
    let acme = into_resp(acme).await;
    assert_eq!(acme.ok(200)["name"], "acme");
    assert_eq!(acme.ok(200)["aid"], 2);
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

/// Starts `authd serve` and reads stderr until it says where it listens.
pub(crate) fn serve(cmd: &mut Command) -> (std::process::Child, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    let addr = loop {
        let line = lines
            .next()
            .expect("authd exited before listening")
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(i) = line.find("addr=") {
            break line[i + 5..].split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr, seen)
}

#[tokio::test]
async fn serve_layers_config_bootstraps_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (p_file, p_env, p_flag) = (free_port(), free_port(), free_port());
    let cfg = dir.path().join("authd.toml");
    std::fs::write(&cfg, format!("listen = \"127.0.0.1:{p_file}\"\n")).unwrap();

    // File only.
    let (mut child, addr, _) =
        serve(authd().args(["serve", "--config", cfg.to_str().unwrap(), "--data-dir", d]));
    assert_eq!(addr, format!("127.0.0.1:{p_file}"));
    stop(&mut child);

    // Env beats file.
    let (mut child, addr, _) = serve(
        authd()
            .args(["serve", "--config", cfg.to_str().unwrap(), "--data-dir", d])
            .env("AUTHD_LISTEN", format!("127.0.0.1:{p_env}")),
    );
    assert_eq!(addr, format!("127.0.0.1:{p_env}"));
    stop(&mut child);

    // Flag beats env.
    let (mut child, addr, _) = serve(
        authd()
            .args([
                "serve",
                "--config",
                cfg.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{p_flag}"),
                "--data-dir",
                d,
            ])
            .env("AUTHD_LISTEN", format!("127.0.0.1:{p_env}")),
    );
    assert_eq!(addr, format!("127.0.0.1:{p_flag}"));
    let r = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    stop(&mut child);
}

#[tokio::test]
async fn serve_prints_the_bootstrap_token_once_in_a_banner() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (mut child, addr, _) = serve(authd().args(["--data-dir", d, "serve", "--listen", &listen]));
    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    stop(&mut child);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let token = out
        .split_whitespace()
        .find(|w| is_token(w))
        .unwrap_or_else(|| panic!("no token in banner: {out}"));
    assert!(out.contains("shown ONCE"));

    // Second start: no new banner; the old token still works.
    let (mut child, addr, _) = serve(authd().args(["--data-dir", d, "serve", "--listen", &listen]));
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/api/account/current"))
        .header("Authorization", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    stop(&mut child);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(!out.split_whitespace().any(is_token), "{out}");
}

/// SIGTERM, then the process must exit successfully by itself.
pub(crate) fn stop(child: &mut std::process::Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "authd did not shut down cleanly: {status:?}"
    );
}

/// Runs `authd --data-dir <d> <args>`; asserts success and returns (stdout, stderr).
fn cli_ok(d: &str, args: &[&str]) -> (String, String) {
    let out = authd()
        .arg("--data-dir")
        .arg(d)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// `authd token create` on `d`; returns (auth id, token) from stdout's last line.
fn cli_token(d: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["token", "create", "--account", "1"];
    args.extend_from_slice(extra);
    let (stdout, stderr) = cli_ok(d, &args);
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(is_token(&token), "{stdout:?}");
    assert!(
        !stderr.contains(&token[36..]),
        "the secret goes to stdout only"
    );
    let id = authd_core::token::parse(&token).unwrap().id.to_string();
    (id, token)
}

#[tokio::test]
async fn the_token_cli_recovers_an_account_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    cli_ok(&d, &["init"]);
    let mut config = Config::embedded(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = start(config, dir).await;
    let (_, rescue) = cli_token(&d, &["--scopes", "admin", "--name", "rescue"]);
    let (victim, victim_token) = cli_token(
        &d,
        &[
            "--scopes",
            "data_manager,observer",
            "--expires",
            "100h",
            "--user",
            "admin@localhost",
        ],
    );
    app.get("/api/account", &rescue).await.ok(200);
    app.get("/api/account", &victim_token).await.ok(200);
    // A child of the victim goes with it.
    let (_, child) = app
        .create_token(&victim_token, serde_json::json!({"scopes": ["observer"]}))
        .await;
    let (listed, _) = cli_ok(&d, &["token", "list", "--account", "1", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == victim.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        row["scopes"],
        serde_json::json!(["observer", "data_manager"])
    );
    let (table, _) = cli_ok(&d, &["token", "list", "--account", "1"]);
    assert!(table.contains(&victim) && !table.contains(&victim_token[36..]));

    // Both tokens are cached by the running server before the revoke.
    for t in [&victim_token, &child] {
        assert_eq!(app.get("/api/account", t).await.status, 200);
    }
    cli_ok(&d, &["token", "revoke", &victim]);
    // The revocation reaches the running server through the file's invalidations table
    // (polled every 250 ms); the clock is not moved, so no cache age plays a part.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for t in [&victim_token, &child] {
        loop {
            let status = app.get("/api/account", t).await.status;
            if status == 401 {
                break;
            }
            assert_eq!(status, 200);
            assert!(
                std::time::Instant::now() < deadline,
                "revocation not seen within 5 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    for action in ["token.create", "token.revoke"] {
        let trail = app
            .get(
                &format!("/api/audit?action={action}&target={victim}"),
                &rescue,
            )
            .await;
        let trail = trail.ok(200).as_array().unwrap().clone();
        assert_eq!(trail.len(), 1, "{trail:?}");
        assert_eq!(trail[0]["actor"], "operator");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_token_cli_refuses_roles_its_user_lacks_and_unknown_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    cli_ok(d, &["init"]);
    cli_ok(d, &["account", "create", "--name", "second"]);
    let out = authd()
        .args(["--data-dir", d, "token", "create", "--account", "9"])
        .args(["--scopes", "admin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account with id or aid \"9\""));
    let out = authd()
        .args(["--data-dir", d, "token", "create", "--account", "2"])
        .args(["--scopes", "admin", "--user", "nobody@example.com"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user"));
    cli_token(d, &["--scopes", "admin"]);
}

#[test]
fn cli_commands_other_than_init_and_serve_refuse_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("none");
    let d = d.to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["token", "list", "--account", "1"],
        &["token", "create", "--account", "1", "--scopes", "admin"],
        &["token", "revoke", "0123456789abcdef0123456789abcdef"],
        &["account", "create", "--name", "x"],
        &[
            "account",
            "setting",
            "delete",
            "api_ip_whitelist",
            "--account",
            "1",
        ],
        &["keys", "status"],
    ];
    for args in commands {
        let out = authd().args(["--data-dir", d]).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no authd store at") && stderr.contains("run `authd init`"),
            "{args:?}: {stderr}"
        );
        assert!(!std::path::Path::new(d).exists(), "{args:?} created {d}");
    }
}
