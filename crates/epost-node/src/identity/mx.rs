//! The realm's MX record on a node (`spec/internet.md` section 8): the
//! node holding the realm key names and unnames MX nodes, keeps what it
//! issued under `DIR/identity/mx/` and republishes and renews it; every
//! node looks the record up, an MX to know whether it may relay for the
//! realm, a recipient to know whether a relayed notification is real.

use std::time::Instant;

use epost_types::envelope::SignedEnvelope;
use epost_types::identity::mx::MxRecord;
use epost_types::record::{self, RecordKey};
use epost_types::sign::{SigningKey, VerifyingKey};
use epost_types::time::Timestamp;
use tracing::info;

use super::{CERT_CACHE_TTL, CERT_RENEW_BEFORE, CERT_VALIDITY, Identity, IdentityError};

/// Looked-up MX records kept at most (one per realm: few).
const MX_CACHE_MAX: usize = 256;

impl Identity {
    /// This node's own key (its overlay identity), which signs what it
    /// relays as a realm's MX.
    pub fn node_key(&self) -> &SigningKey {
        &self.inner.node_key
    }

    /// This node's peer id, as `epost realm mx add` takes it.
    pub fn node_peer_id(&self) -> String {
        epost_dht::PeerId::from_bytes(&self.inner.peer_id)
            .map(|p| p.to_string())
            .unwrap_or_default()
    }

    /// Names `node` in `domain`'s MX record (`named`), or takes it out,
    /// with the realm key held here: a new record, one serial above the
    /// newest known here or in the overlay, saved and published.
    pub async fn mx_set(
        &self,
        domain: &str,
        node: VerifyingKey,
        named: bool,
    ) -> Result<MxRecord, IdentityError> {
        let domain = epost_types::address::canonical_domain(domain)?;
        let realm_key = self.realm_key(&domain)?;
        let newest = self.newest_mx(&domain).await;
        let mut nodes = newest.as_ref().map(|r| r.nodes.clone()).unwrap_or_default();
        nodes.retain(|n| *n != node);
        if named {
            nodes.push(node);
        }
        let serial = newest.map_or(1, |r| r.serial + 1);
        let now = Timestamp::now();
        let record = MxRecord::new(&domain, nodes, serial, now, now.saturating_add(CERT_VALIDITY));
        self.issue_mx(&realm_key, &record).await?;
        info!(%domain, serial, nodes = record.nodes.len(), "MX record issued");
        Ok(record)
    }

    /// `domain`'s current MX record, as the overlay holds it (verified
    /// against the realms trusted here; a record that names this node is
    /// cached for a few minutes). `NoMxRecord` only when the holders were
    /// asked and none has one.
    pub async fn lookup_mx(&self, domain: &str) -> Result<MxRecord, IdentityError> {
        let domain = domain.to_ascii_lowercase();
        if let Some((record, at)) = self.state().mx.get(&domain)
            && at.elapsed() < CERT_CACHE_TTL
            && Timestamp::now() < record.expires
        {
            return Ok(record.clone());
        }
        let key = RecordKey::for_mx(&domain).encode();
        let unreachable =
            |why: String| IdentityError::MxUnreachable { domain: domain.clone(), why };
        let lookup =
            self.inner.dht.lookup_record(&key).await.map_err(|e| unreachable(e.to_string()))?;
        let trust = self.trusted();
        let now = Timestamp::now();
        let found = lookup.found.iter().map(|r| r.value.as_slice());
        let Some(newest) = record::newest_record(&key, found, &trust, now) else {
            return Err(if lookup.complete {
                IdentityError::NoMxRecord { domain }
            } else {
                unreachable("no peer answered the lookup".into())
            });
        };
        let envelope = SignedEnvelope::decode(newest)
            .map_err(|e| unreachable(format!("a held record does not decode: {e}")))?;
        let record = MxRecord::verify(&envelope, &trust, now)?;
        // Only a naming is cached: a realm that names this node takes
        // effect at once, one that takes it back within minutes.
        if record.names(&self.inner.node_key.verifying_key()) {
            let mut state = self.state();
            if state.mx.len() >= MX_CACHE_MAX {
                state.mx.clear();
            }
            state.mx.insert(domain, (record.clone(), Instant::now()));
        }
        Ok(record)
    }

    /// Whether this node may announce internet mail for `domain`'s users
    /// as the realm's MX: a current MX record names it.
    pub async fn relays_for(&self, domain: &str) -> Result<bool, IdentityError> {
        match self.lookup_mx(domain).await {
            Ok(record) => Ok(record.names(&self.inner.node_key.verifying_key())),
            Err(IdentityError::NoMxRecord { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Republishes every MX record a realm held here issued, re-issued
    /// (same nodes, next serial) once it is near its end.
    pub(super) async fn renew_mx(&self) -> Result<(), IdentityError> {
        let soon = Timestamp::now().saturating_add(CERT_RENEW_BEFORE);
        for envelope in self.inner.disk.load_mx()? {
            let held = MxRecord::verify_signature(&envelope)?;
            let Ok(realm_key) = self.realm_key(&held.domain) else { continue };
            if held.expires > soon {
                self.put_mx(&held.domain, &envelope).await;
                continue;
            }
            let now = Timestamp::now();
            let newest = self.newest_mx(&held.domain).await.unwrap_or(held);
            let renewed = MxRecord::new(
                &newest.domain,
                newest.nodes,
                newest.serial + 1,
                now,
                now.saturating_add(CERT_VALIDITY),
            );
            self.issue_mx(&realm_key, &renewed).await?;
            info!(domain = %renewed.domain, serial = renewed.serial, "MX record renewed");
        }
        Ok(())
    }

    fn realm_key(&self, domain: &str) -> Result<SigningKey, IdentityError> {
        self.state()
            .realms
            .get(domain)
            .cloned()
            .ok_or_else(|| IdentityError::NoRealmKey { domain: domain.to_owned() })
    }

    /// The newer of the record saved here and the overlay's (whatever
    /// its nodes: serials must only grow).
    async fn newest_mx(&self, domain: &str) -> Option<MxRecord> {
        let saved = self.inner.disk.load_mx().ok().into_iter().flatten().find_map(|envelope| {
            MxRecord::verify_signature(&envelope).ok().filter(|r| r.domain == domain)
        });
        let found = self.lookup_mx(domain).await.ok();
        [saved, found].into_iter().flatten().max_by_key(|r| r.serial)
    }

    async fn issue_mx(
        &self,
        realm_key: &SigningKey,
        record: &MxRecord,
    ) -> Result<(), IdentityError> {
        let envelope = MxRecord::issue(realm_key, record)?;
        self.inner.disk.save_mx(&record.domain, &envelope)?;
        self.state().mx.remove(&record.domain);
        self.put_mx(&record.domain, &envelope).await;
        Ok(())
    }

    async fn put_mx(&self, domain: &str, envelope: &SignedEnvelope) {
        let key = RecordKey::for_mx(domain).encode();
        if let Err(e) = self.inner.dht.put_record(&key, envelope.encode()).await {
            super::log_put_failure(&domain, "MX record", &e);
        }
    }
}
