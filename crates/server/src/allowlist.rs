//! Enforcement of the `api_ip_whitelist` account setting on the request path: finding the
//! client address (socket peer, or `X-Forwarded-For` only when the peer is a configured trusted
//! proxy) and matching it against the account's allowlist.
//!
//! The parsed allowlist is cached per account in memory (an [`EpochCache`], so a read racing a
//! change never puts the old list back) and the hot path costs one cache hit.
//! The API invalidates an account's entry as soon as the setting changes in this process;
//! entries are also re-read after [`REFRESH_MS`] of (injected) clock time, so a change made
//! elsewhere — by another node or by the operator's `authd account setting delete` on the
//! host — takes effect within that window without a restart.

use std::net::IpAddr;
use std::sync::Arc;

use authd_core::clock::Clock;
use authd_core::ids::AccountId;
use authd_core::settings::{IpAllowlist, SettingSlug};
use authd_core::store::Store;
use authd_core::{Error, Result};
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::cache::EpochCache;

/// How long a cached allowlist is trusted before it is read again (milliseconds).
pub const REFRESH_MS: i64 = 5_000;

/// Per-account cache of parsed IP allowlists.
pub struct Allowlists {
    store: Arc<dyn Store>,
    cache: EpochCache<AccountId, Arc<IpAllowlist>>,
}

impl Allowlists {
    /// An empty cache over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            cache: EpochCache::new(65_536, clock).with_policy(true, Some(REFRESH_MS)),
        }
    }

    /// Refuses (403 `Not authorized`) a request of `account` whose client address is outside
    /// the account's allowlist. `client` is only called when the account has an allowlist; a
    /// client address that cannot be determined is refused.
    pub async fn check(
        &self,
        account: AccountId,
        client: impl FnOnce() -> Option<IpAddr>,
    ) -> Result<()> {
        let list = self.list(account).await?;
        if !list.is_restricted() {
            return Ok(());
        }
        match client() {
            Some(ip) if list.allows(ip) => Ok(()),
            other => {
                // Per request, so debug only: the refusal is audited (with the account) and
                // counted in the aggregated `credential_refused` line (crate::quiet).
                tracing::debug!(account = %account, client = ?other, "token used from outside the account's api_ip_whitelist");
                Err(Error::Forbidden("Not authorized".into()))
            }
        }
    }

    /// The account's allowlist (no setting: the unrestricted default).
    async fn list(&self, account: AccountId) -> Result<Arc<IpAllowlist>> {
        let list = self
            .cache
            .get_or_load(&account, || async {
                let setting = self
                    .store
                    .get_setting(account, SettingSlug::ApiIpWhitelist.slug())
                    .await?;
                let list = setting
                    .map(|s| IpAllowlist::from_value(&s.value))
                    .unwrap_or_default();
                Ok::<_, Error>(Some(Arc::new(list)))
            })
            .await?;
        Ok(list.unwrap_or_default())
    }

    /// Forgets an account's cached allowlist; called after the setting changed.
    pub fn invalidate(&self, account: AccountId) {
        self.cache.evict([&account]);
    }
}

/// The client address of a request: the socket peer, unless the peer is a trusted proxy, in
/// which case `X-Forwarded-For` is walked from the right (the entry the nearest proxy added)
/// past further trusted proxies to the first untrusted address. `None` if there is no peer or
/// a forwarded entry that would be used cannot be parsed.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut entries: Vec<&str> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let v = v.to_str().ok()?;
        entries.extend(v.split(',').map(str::trim));
    }
    let mut ip = peer;
    for e in entries.into_iter().rev() {
        ip = parse_forwarded(e)?;
        if !is_trusted(&ip) {
            return Some(ip);
        }
    }
    Some(ip)
}

fn parse_forwarded(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        m
    }

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_header_is_ignored_from_untrusted_peers() {
        let peer = "203.0.113.9".parse().ok();
        assert_eq!(
            client_ip(peer, &h("10.0.0.1"), &nets(&["127.0.0.1/32"])),
            peer
        );
    }

    #[test]
    fn forwarded_header_is_walked_past_trusted_proxies() {
        let peer = "127.0.0.1".parse().ok();
        let t = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!(
            client_ip(peer, &h("1.1.1.1, 198.51.100.7, 10.1.1.1"), &t),
            "198.51.100.7".parse().ok()
        );
        assert_eq!(
            client_ip(peer, &h("2001:db8::7"), &t),
            "2001:db8::7".parse().ok()
        );
        assert_eq!(client_ip(peer, &h("garbage"), &t), None);
        assert_eq!(client_ip(peer, &HeaderMap::new(), &t), peer);
        assert_eq!(
            client_ip("::ffff:127.0.0.1".parse().ok(), &h("[2001:db8::8]"), &t),
            "2001:db8::8".parse().ok()
        );
    }
}
