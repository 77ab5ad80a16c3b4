//! Conformance case for the master-key store: the wrapped token-hash key is written once, and
//! a master-key rewrap is all-or-nothing, refused when the keys changed since they were read.

use std::sync::Arc;

use authd_core::audit::Audit;
use authd_core::credential::DataKeyRecord;
use authd_core::master_key::MasterRewrap;
use authd_core::store::Store;
use authd_core::Error;

fn data_key(id: &str, wrapped: u8) -> DataKeyRecord {
    DataKeyRecord {
        id: id.into(),
        created_ms: 1,
        wrapped: vec![wrapped; 60],
        current: false,
    }
}

/// Token-hash key: first writer wins. Rewrap: a stale blob or a missing key rolls back
/// everything; a matching one swaps every blob in one step.
pub(crate) async fn master_rewrap_is_all_or_nothing(s: Arc<dyn Store>) {
    assert_eq!(s.token_hash_key().await.unwrap(), None);
    assert_eq!(
        s.init_token_hash_key(vec![1; 60]).await.unwrap(),
        vec![1; 60]
    );
    assert_eq!(
        s.init_token_hash_key(vec![2; 60]).await.unwrap(),
        vec![1; 60]
    );
    s.add_data_key(data_key("k_a", 3), true, false, Audit::None)
        .await
        .unwrap();
    s.add_data_key(data_key("k_b", 4), true, false, Audit::None)
        .await
        .unwrap();
    let rewrap = |a: u8, with_b: bool| MasterRewrap {
        data_keys: [("k_a", a, 30u8), ("k_b", 4, 40)]
            .into_iter()
            .take(if with_b { 2 } else { 1 })
            .map(|(id, old, new)| (id.to_owned(), vec![old; 60], vec![new; 60]))
            .collect(),
        token_key: (vec![1; 60], vec![10; 60]),
    };
    for stale in [rewrap(9, true), rewrap(3, false)] {
        let err = s.rewrap_master(stale, Audit::None).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert_eq!(s.token_hash_key().await.unwrap(), Some(vec![1; 60]));
        let keys = s.list_data_keys().await.unwrap();
        assert_eq!(keys[0].wrapped, vec![3; 60]);
    }
    s.rewrap_master(rewrap(3, true), Audit::None).await.unwrap();
    assert_eq!(s.token_hash_key().await.unwrap(), Some(vec![10; 60]));
    let keys: Vec<_> = s.list_data_keys().await.unwrap();
    let blobs: Vec<_> = keys.iter().map(|k| (k.id.as_str(), k.wrapped[0])).collect();
    assert_eq!(blobs, [("k_a", 30), ("k_b", 40)]);
    assert!(keys[1].current, "the current key stays current");
}
