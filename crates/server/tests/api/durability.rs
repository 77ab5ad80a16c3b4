//! No acknowledged token is lost across `kill -9` (issue 12). Token issuance goes through
//! SQLite's writer thread, which group-commits whatever is queued in one transaction; a 201
//! is sent only after that transaction committed with `synchronous=FULL`. Here 32 clients
//! mint tokens against a real `authd serve` process, which is killed with SIGKILL in the
//! middle of the burst; after a restart on the same files, every token that was answered 201
//! must authenticate.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::cli::{authd, serve};

/// How many acknowledged tokens to collect before the kill.
const BEFORE_KILL: usize = 300;

async fn mint_until_refused(
    client: reqwest::Client,
    url: String,
    admin: String,
    acked: Arc<Mutex<Vec<String>>>,
    progress: Arc<Notify>,
) {
    loop {
        let sent = client
            .post(&url)
            .header("Authorization", &admin)
            .json(&serde_json::json!({"scopes": ["observer"], "name": "burst"}))
            .send()
            .await;
        let Ok(resp) = sent else { return };
        if resp.status() != 201 {
            return;
        }
        let Ok(body) = resp.json::<serde_json::Value>().await else {
            return;
        };
        let token = body["data"]["config"][0]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        acked.lock().unwrap().push(token);
        progress.notify_one();
    }
}

#[tokio::test]
async fn no_acknowledged_token_is_lost_when_the_server_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let init = authd().args(["--data-dir", &d, "init"]).output().unwrap();
    assert!(init.status.success());
    let admin = String::from_utf8(init.stdout).unwrap();
    let admin = admin.lines().next().unwrap().trim().to_owned();

    let (mut child, addr, _) =
        serve(authd().args(["--data-dir", &d, "serve", "--listen", "127.0.0.1:0"]));
    let url = format!("http://{addr}/api/auth/createtoken");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let progress = Arc::new(Notify::new());
    let client = reqwest::Client::new();
    let clients: Vec<_> = (0..32)
        .map(|_| {
            tokio::spawn(mint_until_refused(
                client.clone(),
                url.clone(),
                admin.clone(),
                acked.clone(),
                progress.clone(),
            ))
        })
        .collect();
    // Bounded: a server that stops answering fails the test instead of hanging it.
    let enough = async {
        while acked.lock().unwrap().len() < BEFORE_KILL {
            progress.notified().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), enough)
        .await
        .expect("the burst never reached its acknowledgements");
    child.kill().unwrap(); // SIGKILL, with requests in flight
    child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= BEFORE_KILL);

    let (mut again, addr, _) =
        serve(authd().args(["--data-dir", &d, "serve", "--listen", "127.0.0.1:0"]));
    let mut lost = 0;
    for token in &acked {
        let r = client
            .get(format!("http://{addr}/api/auth/self"))
            .header("Authorization", token)
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            lost += 1;
        }
    }
    again.kill().unwrap();
    again.wait().unwrap();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged tokens lost",
        acked.len()
    );
}
