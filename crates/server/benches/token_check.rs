//! Micro-benchmarks of the token-check hot path and its parts (divan):
//! parse + checksum, keyed hash, the full in-memory check (one token and 100,000 tokens
//! picked at random), the Go-duration parser, and seal/open of a credential.
//!
//! Then the whole request path in-process (module `request`): authd's real router, built
//! by [`Application::build`] over a temporary SQLite store, driven with
//! `tower::ServiceExt::oneshot` (no socket is used), layer by layer so that a regression
//! in one layer shows without a load generator: a bare axum route (the floor), the
//! router and its middleware on `/healthz` (no auth), the auth extractor alone, the
//! `GET /api/auth/{id}` handler's serialization alone, and whole requests (a cached
//! token check, `/api/auth/self`, `/api/account/current`, `/api/user/{id}`, introspection,
//! a bad token's 401).
//! BENCHMARKS.md keeps the per-layer budget measured with these.
//!
//! Run: `cargo bench -p authd --bench token_check`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, LazyLock};

use authd::config::{Config, MasterKeySource};
use authd::startup::Application;
use authd::state::AppState;
use authd::tokens::TokenService;
use authd_core::clock::SystemClock;
use authd_core::ids::AuthId;
use authd_core::model::{NewAccount, NewToken};
use authd_core::roles::{Role, RoleSet};
use authd_core::store::Store;
use authd_core::token::{self, ApiToken};
use authd_crypto::{Aad, KeyRing, MasterKey};
use divan::black_box;

fn main() {
    divan::main();
}

struct Fixture {
    service: TokenService,
    tokens: Vec<String>,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

const MANY: usize = 100_000;

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let hasher = key.token_hasher();
    let (service, tokens) = rt.block_on(async {
        let path = dir.path().join("bench.db");
        let store = authd_store_sqlite::SqliteStore::open(path.to_str().unwrap())
            .await
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let acct = store
            .create_account(
                NewAccount {
                    id: authd_core::ids::AccountId::generate(),
                    name: "bench".into(),
                    domain: String::new(),
                    email: String::new(),
                    timezone: "UTC".into(),
                },
                0,
            )
            .await
            .unwrap();
        let mut texts = Vec::with_capacity(MANY);
        for chunk in 0..(MANY / 5_000) {
            let _ = chunk;
            let mut batch = Vec::with_capacity(5_000);
            for _ in 0..5_000 {
                let t = ApiToken::generate(AuthId::generate());
                batch.push(NewToken {
                    id: t.id(),
                    hash: hasher.hash(t.expose().as_bytes()),
                    name: String::new(),
                    label: String::new(),
                    description: String::new(),
                    user_id: None,
                    user_name: String::new(),
                    parent_id: None,
                    scopes: RoleSet::of(&[Role::Admin]),
                    expires_ms: None,
                    ttl_secs: None,
                    audit: None,
                });
                texts.push(t.expose().to_owned());
            }
            store.create_tokens(acct.id, &batch, 0).await.unwrap();
        }
        let (svc, _rx) = TokenService::new(store, hasher.clone(), Arc::new(SystemClock), MANY * 2);
        for t in &texts {
            svc.authenticate(t).await.unwrap();
        }
        // Keep the touch channel's receiver alive by leaking it: touches are dropped when full.
        std::mem::forget(_rx);
        (svc, texts)
    });
    Fixture {
        service,
        tokens,
        _dir: dir,
        _rt: rt,
    }
});

#[divan::bench]
fn parse_and_checksum(b: divan::Bencher<'_, '_>) {
    let t = ApiToken::generate(AuthId::generate());
    let text = t.expose().to_owned();
    b.bench(|| token::parse(black_box(&text)).is_some());
}

#[divan::bench]
fn keyed_hash_hmac_sha256(b: divan::Bencher<'_, '_>) {
    let h = MasterKey::generate().token_hasher();
    let t = ApiToken::generate(AuthId::generate());
    let text = t.expose().to_owned();
    b.bench(|| h.hash(black_box(text.as_bytes())));
}

#[divan::bench]
fn full_check_one_token(b: divan::Bencher<'_, '_>) {
    let f = &*FIXTURE;
    let t = &f.tokens[0];
    b.bench(|| {
        f.service
            .authenticate_cached(black_box(t))
            .unwrap()
            .unwrap()
            .account_aid
    });
}

#[divan::bench]
fn full_check_100k_tokens_random(b: divan::Bencher<'_, '_>) {
    let f = &*FIXTURE;
    let mut i: usize = 0x9e37_79b9;
    b.bench_local(|| {
        // xorshift: cheap pseudo-random index so the cache is hit all over.
        i ^= i << 13;
        i ^= i >> 7;
        i ^= i << 17;
        let t = &f.tokens[i % f.tokens.len()];
        f.service
            .authenticate_cached(black_box(t))
            .unwrap()
            .unwrap()
            .account_aid
    });
}

#[divan::bench]
fn reject_garbage_before_lookup(b: divan::Bencher<'_, '_>) {
    let f = &*FIXTURE;
    let garbage = "x".repeat(5000);
    b.bench(|| {
        f.service
            .authenticate_cached(black_box(&garbage))
            .unwrap()
            .is_err()
    });
}

#[divan::bench(args = ["100h", "1h30m", "2h45m30.5s"])]
fn go_duration(b: divan::Bencher<'_, '_>, s: &str) {
    b.bench(|| authd_core::duration::parse_go_duration(black_box(s)).unwrap());
}

#[divan::bench]
fn seal_and_open_credential(b: divan::Bencher<'_, '_>) {
    let key = MasterKey::generate();
    let w = key.key_wrapper();
    let k = w.generate_data_key(0);
    let ring = KeyRing::new(&w, std::slice::from_ref(&k), &k.id).unwrap();
    let aad = Aad {
        account_id: "a",
        auth_id: "b",
        field: "apikey",
    };
    let secret = vec![7u8; 64];
    b.bench(|| {
        let s = ring.seal(&aad, black_box(&secret)).unwrap();
        ring.open(&aad, &s).unwrap().expose().len()
    });
}

/// The whole request path in-process: authd's router over a temporary SQLite store.
mod request {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};
    use axum::Router;
    use tower::ServiceExt as _;

    use super::*;

    pub(super) struct App {
        pub(super) rt: tokio::runtime::Runtime,
        pub(super) router: Router,
        pub(super) state: AppState,
        /// The bootstrap admin token and its id.
        pub(super) token: String,
        pub(super) id: String,
        /// The bootstrap admin user's id.
        pub(super) user: String,
        _app: Application,
        _dir: tempfile::TempDir,
    }

    /// Built once: an [`Application`] (its listener is bound to 127.0.0.1:0 but never
    /// served) and the router `run_until_stopped` would serve.
    pub(super) static APP: LazyLock<App> = LazyLock::new(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded(dir.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.master_key = MasterKeySource::Key(MasterKey::generate());
        let mut app = rt
            .block_on(Application::build(config, Arc::new(SystemClock)))
            .unwrap();
        let token = app.take_bootstrap().unwrap().token.expose().to_owned();
        let id = token.split('.').nth(1).unwrap().to_owned();
        let state = app.state().clone();
        let router = authd::api::router(state.clone());
        let user = rt
            .block_on(state.tokens.authenticate(&token))
            .unwrap()
            .user_id
            .unwrap()
            .to_string();
        let a = App {
            rt,
            router,
            state,
            token,
            id,
            user,
            _app: app,
            _dir: dir,
        };
        // Warm the token cache (and check every request answers as the benches expect).
        for (path, token, want) in [
            (
                format!("/api/auth/{}", a.id),
                a.token.as_str(),
                StatusCode::OK,
            ),
            ("/api/auth/self".into(), a.token.as_str(), StatusCode::OK),
            (
                "/api/account/current".into(),
                a.token.as_str(),
                StatusCode::OK,
            ),
            (
                format!("/api/user/{}", a.user),
                a.token.as_str(),
                StatusCode::OK,
            ),
            ("/healthz".into(), "", StatusCode::OK),
        ] {
            assert_eq!(a.call(&path, token), want, "{path}");
        }
        assert_eq!(a.introspect(), StatusCode::OK);
        assert_eq!(
            a.call(&format!("/api/auth/{}", a.id), &a.bad_token()),
            StatusCode::UNAUTHORIZED
        );
        a
    });

    impl App {
        pub(super) fn request(&self, path: &str, token: &str) -> Request<Body> {
            let mut b = Request::get(path);
            if !token.is_empty() {
                b = b.header("authorization", token);
            }
            let mut req = b.body(Body::empty()).unwrap();
            // What authd's listener adds to every request.
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
            req
        }

        /// One request through the router, body read to the end; its status.
        pub(super) fn call(&self, path: &str, token: &str) -> StatusCode {
            let req = self.request(path, token);
            self.rt.block_on(async {
                let resp = self.router.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                status
            })
        }

        /// `POST /api/auth/introspect` of the admin token by itself; its status.
        pub(super) fn introspect(&self) -> StatusCode {
            let body = serde_json::json!({ "token": self.token }).to_string();
            let mut req = Request::post("/api/auth/introspect")
                .header("authorization", &self.token)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
            self.rt.block_on(async {
                let resp = self.router.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                status
            })
        }

        /// The admin token with another secret: the id is cached, the secret is wrong.
        pub(super) fn bad_token(&self) -> String {
            let (head, secret) = self.token.rsplit_once('.').unwrap();
            let flipped: String = secret
                .chars()
                .map(|c| if c == 'a' { 'b' } else { 'a' })
                .collect();
            format!("{head}.{flipped}")
        }
    }

    /// The floor: a bare axum route answering the same envelope as `authd-bench baseline`.
    #[divan::bench]
    fn layer0_bare_axum_route(b: divan::Bencher<'_, '_>) {
        use axum::extract::Path;
        let a = &*APP;
        let bare: Router = Router::new().route(
            "/api/auth/{id}",
            axum::routing::get(|Path(id): Path<String>| async move {
                axum::Json(serde_json::json!({"status": "success", "data": {"id": id}}))
            }),
        );
        let path = format!("/api/auth/{}", a.id);
        b.bench(|| {
            let req = a.request(&path, "");
            a.rt.block_on(async {
                let resp = bare.clone().oneshot(req).await.unwrap();
                axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap()
                    .len()
            })
        });
    }

    /// authd's router and middleware (request id, tracing span, panic catcher, body
    /// limit, fallbacks) on a route with no auth and no store.
    #[divan::bench]
    fn layer1_router_healthz(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        b.bench(|| a.call("/healthz", ""));
    }

    /// The auth extractor alone: header, token check (cached), `?account_id=`, allowlist.
    #[divan::bench]
    fn layer2_extractor_authenticate(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        let (parts, ()) = a
            .request(&format!("/api/auth/{}", a.id), &a.token)
            .map(|_| ())
            .into_parts();
        b.bench(|| {
            a.rt.block_on(authd::api::extract::authenticate(&parts, &a.state))
                .unwrap()
                .account_aid
        });
    }

    /// The `GET /api/auth/{id}` handler's own work: the cached record to its wire JSON.
    #[divan::bench]
    fn layer3_handler_auth_json(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        let p = a
            .state
            .tokens
            .authenticate_cached(&a.token)
            .unwrap()
            .unwrap();
        let auth = a
            .state
            .tokens
            .cached_record(p.account_id, p.auth_id)
            .unwrap();
        b.bench(|| {
            let dto = authd::api::dto::AuthDto::new(&auth, p.account_aid, "lytics", None);
            serde_json::to_vec(&dto).unwrap().len()
        });
    }

    /// The whole request: `GET /api/auth/{id}` of the caller's own (cached) token.
    #[divan::bench]
    fn full_get_auth_cached(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        let path = format!("/api/auth/{}", a.id);
        b.bench(|| a.call(&path, &a.token));
    }

    /// The whole request: `GET /api/auth/self`.
    #[divan::bench]
    fn full_auth_self(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        b.bench(|| a.call("/api/auth/self", &a.token));
    }

    /// The whole request: `GET /api/account/current`.
    #[divan::bench]
    fn full_account_current(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        b.bench(|| a.call("/api/account/current", &a.token));
    }

    /// The whole request: `GET /api/user/{id}` (the admin's own user).
    #[divan::bench]
    fn full_user_read(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        let path = format!("/api/user/{}", a.user);
        b.bench(|| a.call(&path, &a.token));
    }

    /// The whole request: `POST /api/auth/introspect` of a cached token.
    #[divan::bench]
    fn full_introspect(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        b.bench(|| a.introspect());
    }

    /// The whole request: a known id with a wrong secret, 401 (and its refusal audit).
    #[divan::bench]
    fn full_bad_token_401(b: divan::Bencher<'_, '_>) {
        let a = &*APP;
        let path = format!("/api/auth/{}", a.id);
        let bad = a.bad_token();
        b.bench(|| a.call(&path, &bad));
    }
}
