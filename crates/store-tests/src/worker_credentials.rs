//! Conformance cases for named worker credentials: lookup by hash, name uniqueness among the
//! credentials not revoked, account limits round-trip, revocation.

use std::sync::Arc;

use authd_core::audit::Audit;
use authd_core::ids::{AccountId, WorkerCredentialId};
use authd_core::store::Store;
use authd_core::worker_credential::{NewWorkerCredential, WorkerCredential};
use authd_core::Error;

pub(crate) fn cred(name: &str, accounts: Option<Vec<AccountId>>, hash: u8) -> NewWorkerCredential {
    NewWorkerCredential {
        credential: WorkerCredential {
            id: WorkerCredentialId::generate(),
            name: name.into(),
            accounts,
            created_ms: 1_000 + i64::from(hash),
            revoked_ms: None,
        },
        hash: [hash; 32],
    }
}

pub(crate) async fn worker_credentials_hash_lookup_names_and_revocation(s: Arc<dyn Store>) {
    let a = AccountId::generate();
    let open = cred("ingest", None, 1);
    let limited = cred("limited", Some(vec![a]), 2);
    s.create_worker_credential(open.clone(), Audit::None)
        .await
        .unwrap();
    s.create_worker_credential(limited.clone(), Audit::None)
        .await
        .unwrap();
    // A live name cannot be taken twice.
    assert!(matches!(
        s.create_worker_credential(cred("ingest", None, 3), Audit::None)
            .await,
        Err(Error::Conflict(_))
    ));
    let found = s
        .worker_credential_by_hash(&[2; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, limited.credential);
    assert!(found.may_read(a) && !found.may_read(AccountId::generate()));
    assert!(s
        .worker_credential_by_hash(&[9; 32])
        .await
        .unwrap()
        .is_none());

    assert!(s
        .revoke_worker_credential(open.credential.id, 5_000, Audit::None)
        .await
        .unwrap());
    assert!(!s
        .revoke_worker_credential(open.credential.id, 6_000, Audit::None)
        .await
        .unwrap());
    assert!(s
        .worker_credential_by_hash(&[1; 32])
        .await
        .unwrap()
        .is_none());
    // A revoked credential's name can be reused.
    s.create_worker_credential(cred("ingest", None, 4), Audit::None)
        .await
        .unwrap();
    let all = s.list_worker_credentials().await.unwrap();
    let names: Vec<(&str, Option<i64>)> = all
        .iter()
        .map(|c| (c.name.as_str(), c.revoked_ms))
        .collect();
    assert_eq!(
        names,
        [("ingest", Some(5_000)), ("limited", None), ("ingest", None)]
    );
}
