//! Micro-benchmarks of the token-check hot path and its parts (divan):
//! parse + checksum, keyed hash, the full in-memory check (one token and 100,000 tokens
//! picked at random), the Go-duration parser, and seal/open of a credential.
//!
//! Run: `cargo bench -p authd --bench token_check`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, LazyLock};

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
