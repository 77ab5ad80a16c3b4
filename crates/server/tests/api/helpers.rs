//! Test harness: `spawn_app()` starts authd in-process on 127.0.0.1:0 with a fresh SQLite
//! store in a temp dir, a generated master key and a [`ManualClock`], and returns a client.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use authd::config::{Config, MasterKeySource};
use authd::startup::Application;
use authd_core::clock::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// 2026-01-01T00:00:00Z
pub const T0: i64 = 1_767_225_600_000;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        authd::telemetry::init();
    }
});

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The bootstrap admin token of the first account.
    pub token: String,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub app_state: authd::state::AppState,
    /// The worker listener's address, when enabled by the tweak.
    pub worker_addr: Option<SocketAddr>,
    /// The master key given directly in the config (the server itself keeps only subkeys).
    pub master: Option<authd_crypto::MasterKey>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    LazyLock::force(&TRACING);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.master_key = MasterKeySource::Key(authd_crypto::MasterKey::generate());
    tweak(&mut config);
    let app = start(config, dir).await;
    assert!(!app.token.is_empty(), "no bootstrap token");
    app
}

/// Starts authd with exactly this config; `token` is empty when the store was not empty (or
/// is PostgreSQL, which never bootstraps on `serve`).
pub async fn start(config: Config, dir: tempfile::TempDir) -> TestApp {
    LazyLock::force(&TRACING);
    let master = match &config.master_key {
        MasterKeySource::Key(k) => Some(k.clone()),
        _ => None,
    };
    let clock = Arc::new(ManualClock::new(T0));
    let mut app = Application::build(config, clock.clone()).await.unwrap();
    let token = app
        .take_bootstrap()
        .map(|p| p.token.expose().to_owned())
        .unwrap_or_default();
    let addr = app.local_addr();
    let worker_addr = app.worker_addr();
    let app_state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        token,
        clock,
        dir,
        app_state,
        worker_addr,
        master,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A response: status and parsed JSON body (`Value::Null` for an empty body).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// Asserts the Lytics error envelope with this status and message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["status"], status, "body: {}", self.body);
        assert_eq!(self.body["message"], message, "body: {}", self.body);
        assert!(self.body["data"].is_null());
    }

    /// Asserts a success envelope with this status and returns `data`.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["status"], "success", "body: {}", self.body);
        &self.body["data"]
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with `Authorization: <token>` (if any) and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.header("Authorization", t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        into_resp(rb.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a token with the given body using `creator`; asserts 201 and returns
    /// (auth id, token text).
    pub async fn create_token(&self, creator: &str, body: Value) -> (String, String) {
        let r = self.post("/api/auth/createtoken", creator, body).await;
        let d = r.ok(201);
        let token = d["config"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "api_key")
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_owned();
        (d["id"].as_str().unwrap().to_owned(), token)
    }

    /// A token holding exactly `roles`, minted by the bootstrap admin.
    pub async fn token_with(&self, roles: &[&str]) -> String {
        self.create_token(
            &self.token,
            serde_json::json!({ "scopes": roles, "name": "t" }),
        )
        .await
        .1
    }

    /// Creates another account (tenant) exactly as `authd account create` does; returns its
    /// admin token.
    pub async fn new_account(&self, name: &str) -> String {
        let s = &self.app_state;
        let key = self
            .master
            .clone()
            .expect("the test app was given its key directly");
        authd::provision::account(
            s.store.as_ref(),
            &key.token_hasher(),
            s.clock.as_ref(),
            name,
        )
        .await
        .unwrap()
        .token
        .expose()
        .to_owned()
    }

    /// Stops the server gracefully and hands back its data dir for inspection.
    pub async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
        self.dir
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
    }
}

pub async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Resp {
        status,
        body,
        headers,
    }
}
