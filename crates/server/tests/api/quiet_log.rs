//! Quiet under attack (issue 10, defect 8): a flood of bad tokens against a real `authd serve`
//! process with a one-slot audit queue costs a bounded number of log lines, each kind at most
//! once per 10 s with the count since the last, and no line carries a presented token.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use authd_core::ids::AuthId;
use authd_core::token::ApiToken;

/// Starts `authd serve` on a free port with `args` and `env`; returns the child, its address
/// and a thread collecting every stderr line it writes until it exits.
pub fn serve_capturing(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, JoinHandle<Vec<String>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authd"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env_remove("AUTHD_CONFIG")
        .env_remove("AUTHD_DATABASE_URL")
        .env_remove("AUTHD_MASTER_KEY")
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("authd exited before listening")
            .unwrap();
        if let Some(i) = line.find("addr=") {
            break line[i + 5..].split_whitespace().next().unwrap().to_owned();
        }
    };
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    (child, addr, rest)
}

/// SIGTERM, then the process must exit successfully by itself.
pub fn stop(child: &mut Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn a_flood_of_bad_tokens_costs_a_bounded_number_of_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, lines) = serve_capturing(dir.path(), &["--audit-queue", "1"], &[]);
    // Well-formed tokens for ids that do not exist: each is refused and queued for the audit.
    let bad = ApiToken::generate(AuthId::generate()).expose().to_owned();
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/auth?limit=5");
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (client, url, bad) = (client.clone(), url.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let r = client
                    .get(&url)
                    .header("Authorization", &bad)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 401);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
    let lines = lines.join().unwrap();
    let of_kind = |k: &str| {
        lines
            .iter()
            .filter(|l| l.contains(&format!("kind=\"{k}\"")) || l.contains(&format!("kind={k}")))
            .collect::<Vec<_>>()
    };
    let overflow = of_kind("audit_overflow");
    let refused = of_kind("credential_refused");
    // 1,600 refusals: at most the first line and the final count at shutdown per kind.
    assert!(!overflow.is_empty() && overflow.len() <= 2, "{lines:#?}");
    assert!(refused.len() <= 2, "{lines:#?}");
    let counted = |l: &&String| {
        l.split("count=")
            .nth(1)
            .and_then(|c| c.split_whitespace().next())
            .and_then(|c| c.parse::<u64>().ok())
    };
    let total: u64 = refused.iter().filter_map(counted).sum();
    assert_eq!(total, 1_600, "{refused:#?}");
    assert!(
        overflow.iter().filter_map(counted).any(|c| c > 1),
        "{overflow:#?}"
    );
    assert!(lines.len() < 20, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains(&bad[36..])));
}
