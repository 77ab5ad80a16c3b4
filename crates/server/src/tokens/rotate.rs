//! Token rotation with a grace window: a new token with the same roles, name and expiry rule,
//! and the old one capped to expire when the window ends — both in one store transaction, so
//! there is neither a gap (the new token exists before the old one stops) nor an overlap
//! longer than asked (the old record's expiry is the end of the window, enforced by the same
//! check as any expiry).
//!
//! Rotation keeps the revocation tree: the new token takes the old one's place under the old
//! one's creator and is capped by that creator's expiry (never by whoever rotates), the tokens
//! the old one created move under the new one, and the old one hangs under the new one and
//! names it as successor, so deleting either (the old one during its grace window) revokes the
//! lot.

use authd_core::audit::{AuditAction, AuditEntry};
use authd_core::clock::rfc3339;
use authd_core::duration::parse_go_duration;
use authd_core::ids::AuthId;
use authd_core::model::{Auth, NewToken};
use authd_core::token::ApiToken;
use authd_core::{Error, Result};

use super::{expiry, Delegation, Lifetime, Principal, TokenService};

/// The longest grace window a rotation may ask for: 7 days.
pub const MAX_GRACE_MS: i64 = 7 * 24 * 3_600_000;

/// The outcome of a rotation.
#[derive(Debug)]
pub struct Rotated {
    /// The rotated (old) token.
    pub old: AuthId,
    /// When the old token stops working (Unix ms).
    pub old_valid_until_ms: i64,
    /// The new token's record.
    pub auth: Auth,
    /// The new token, to be shown once.
    pub token: ApiToken,
}

/// Parses the grace window: a Go duration from 0 to [`MAX_GRACE_MS`]; absent is 0.
fn grace_ms(grace: Option<&str>) -> Result<i64> {
    let Some(text) = grace.map(str::trim).filter(|g| !g.is_empty()) else {
        return Ok(0);
    };
    let ns = parse_go_duration(text)
        .map_err(|e| Error::invalid(format!("Invalid grace {text:?}: {e}")))?;
    if ns < 0 {
        return Err(Error::invalid(format!(
            "Invalid grace {text:?}: must not be negative"
        )));
    }
    let ms = ns / 1_000_000 + i64::from(ns % 1_000_000 != 0);
    if ms > MAX_GRACE_MS {
        return Err(Error::invalid(format!(
            "Invalid grace {text:?}: at most 168h (7 days)"
        )));
    }
    Ok(ms)
}

impl TokenService {
    /// Rotates the API token `id` of the caller's account. The caller needs the
    /// tokens-create permission (checked by the handler's extractor, as for minting) and must
    /// hold every role of the token (the delegation rule,
    /// as for minting and revoking; a refusal is audited); the new token never outlives the
    /// old one's creator. The `token.rotate` entry commits with the rotation.
    pub async fn rotate(
        &self,
        caller: &Principal,
        id: AuthId,
        grace: Option<&str>,
        request_id: &str,
    ) -> Result<Rotated> {
        let grace = grace_ms(grace)?;
        let old = self
            .store
            .get_auth(caller.account_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        let Some(grant) = old.token().copied() else {
            return Err(Error::invalid("Only API tokens can be rotated"));
        };
        let target = id.to_string();
        self.delegate(
            caller,
            grant.scopes,
            Delegation::Grant,
            (AuditAction::TokenRotate, &target),
            request_id,
        )
        .await?;
        let now = self.clock.now_ms();
        if self
            .store
            .rotated_successor(caller.account_id, id, now)
            .await?
            .is_some()
        {
            return Err(Error::invalid(
                "Token was already rotated; rotate its replacement instead",
            ));
        }
        if grant.expires_ms.is_some_and(|e| now >= e) {
            return Err(Error::invalid(
                "Token has already expired; create a new one instead",
            ));
        }
        // Same expiry rule: a lifetime restarts from now, a fixed instant stays.
        let own = match (grant.ttl_secs, grant.expires_ms) {
            (Some(ttl), _) => Lifetime::For(ttl.saturating_mul(1_000)),
            (None, Some(at)) => Lifetime::Until(at),
            (None, None) => Lifetime::Never,
        };
        // The creator's cap: the old token's creator, whose place in the tree the new one takes.
        let creator_expiry = match old.parent_id {
            Some(p) => self
                .store
                .get_auth(caller.account_id, p)
                .await?
                .and_then(|a| a.token().and_then(|g| g.expires_ms)),
            None => None,
        };
        let expires_ms = expiry(now, own, creator_expiry)
            .ok_or_else(|| Error::invalid("Token lifetime is too long to renew"))?;
        let old_until = now.saturating_add(grace);
        let old_valid_until_ms = grant.expires_ms.map_or(old_until, |e| e.min(old_until));
        let token = ApiToken::generate(AuthId::generate_at(now));
        // Written in the rotation's transaction.
        let audit = crate::audit::redacted(AuditEntry {
            seq: 0,
            at_ms: now,
            account_id: Some(caller.account_id),
            actor: crate::audit::actor(caller),
            action: AuditAction::TokenRotate,
            target: id.to_string(),
            outcome: "ok".into(),
            request_id: request_id.to_owned(),
            detail: format!(
                "new={} old_valid_until={}",
                token.id(),
                rfc3339(Some(old_valid_until_ms))
            ),
        });
        let new = NewToken {
            id: token.id(),
            hash: self.hasher.hash(token.expose().as_bytes()),
            name: old.name.clone(),
            label: old.label.clone(),
            description: old.description.clone(),
            user_id: old.user_id,
            user_name: old.user_name.clone(),
            // Stays in the same revocation tree as the token it replaces.
            parent_id: old.parent_id,
            scopes: grant.scopes,
            expires_ms,
            ttl_secs: grant.ttl_secs,
            audit: Some(audit),
        };
        let auth = self
            .store
            .rotate_token(caller.account_id, id, new, old_until, now)
            .await?
            .ok_or(Error::NotFound)?;
        // The cached record still carries the old expiry: drop it so the cap applies at once.
        self.evict(&[id]);
        Ok(Rotated {
            old: id,
            old_valid_until_ms,
            auth,
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_bounded_and_defaults_to_zero() {
        assert_eq!(grace_ms(None).unwrap(), 0);
        assert_eq!(grace_ms(Some("")).unwrap(), 0);
        assert_eq!(grace_ms(Some("0s")).unwrap(), 0);
        assert_eq!(grace_ms(Some("1h30m")).unwrap(), 5_400_000);
        assert_eq!(grace_ms(Some("168h")).unwrap(), MAX_GRACE_MS);
        assert!(grace_ms(Some("168h1s")).is_err());
        assert!(grace_ms(Some("-1s")).is_err());
        assert!(grace_ms(Some("soon")).is_err());
    }
}
