//! Identity on a node: the realm keys it holds, the realms it trusts, the
//! users it hosts; publishing their certificates and presence in the
//! overlay; looking up and verifying other users' certificates.
//!
//! On disk, under `DIR/identity/` (every secret 0600, every file replaced
//! atomically):
//! - `realms/<domain>.key`: a realm authority key (node key file format);
//! - `trusted.json`: realm keys trusted at run time (`epost realm trust`),
//!   merged with those the config lists;
//! - `users/<base32 of the address>.bundle`: a hosted user's key bundle
//!   (keys and realm-signed certificate, the `epost user export` format);
//! - `users/<base32 of the address>.password`: the gateway password hash;
//! - `issued/<base32 of the address>.cert`: the certificates a realm here
//!   issued, to renew;
//! - `mx/<domain>.mx`: the MX record a realm here issued, to republish.
//!
//! The state sits behind a synchronous mutex that is never held across an
//! await; the trust list is also published through a `watch` so the
//! overlay's record validator reads it without locking.

mod disk;
mod logins;
mod mx;
mod records;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use epost_dht::{DhtClient, RecordError};
use epost_types::address::{Address, AddressError};
use epost_types::convergent::ConvergenceSecret;
use epost_types::envelope::SignedEnvelope;
use epost_types::identity::bundle::{BundleError, UserBundle};
use epost_types::identity::password::{self, PasswordError};
use epost_types::identity::{
    ANY_DOMAIN, CertError, Certificate, Presence, PresenceError, TrustedRealms, UserKeys,
};
use epost_types::record::{self, RecordKey};
use epost_types::sign::{RngError, SigningKey, VerifyingKey};
use epost_types::time::Timestamp;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::chain::Chain;
use crate::worker::{self, Worker, Workers};

pub use records::RecordRules;

/// How long a certificate issued here is valid.
pub const CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A certificate this close to its expiry is renewed: by the realm that
/// issued it (same keys, a higher serial), and adopted by the node that
/// hosts its user. Longer than a lease, so a user whose node is away for
/// as long as their mail is kept still has a valid certificate.
pub const CERT_RENEW_BEFORE: Duration = Duration::from_secs(200 * 24 * 3600);
/// How long a looked-up certificate is trusted from the cache.
const CERT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Looked-up certificates kept at most.
const CERT_CACHE_MAX: usize = 4096;

/// Identity settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Realm keys the configuration trusts.
    pub trusted: TrustedRealms,
    /// How often hosted users' certificates and presence are republished.
    pub republish_interval: Duration,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self { trusted: TrustedRealms::new(), republish_interval: Duration::from_secs(600) }
    }
}

/// Why an identity operation failed. Each names what to do.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: String, source: std::io::Error },
    #[error("{path} is damaged: {detail}")]
    Damaged { path: String, detail: String },
    #[error(transparent)]
    BadAddress(#[from] AddressError),
    #[error(
        "this node holds no realm key for {domain}; run `epost realm init {domain}` here, or add the user on the node that holds it"
    )]
    NoRealmKey { domain: String },
    #[error("{address} is already hosted on this node")]
    UserExists { address: Address },
    #[error("{address} is not hosted on this node")]
    UnknownUser { address: Address },
    #[error(
        "no valid certificate for {address} was found in the overlay (is its realm trusted here?)"
    )]
    NoCertificate { address: Address },
    /// The overlay could not be asked in full (no peer answered, or the
    /// lookup timed out): the certificate may exist all the same.
    #[error("cannot look up {address} in the overlay now: {why}")]
    Unreachable { address: Address, why: String },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error(transparent)]
    Presence(#[from] PresenceError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Rng(#[from] RngError),
    #[error("cannot publish in the overlay: {0}")]
    Publish(String),
    #[error(
        "{domain} names no MX node in the overlay (`epost realm mx add {domain} PEER-ID` on the node holding its realm key)"
    )]
    NoMxRecord { domain: String },
    #[error("cannot look up the MX record of {domain} in the overlay now: {why}")]
    MxUnreachable { domain: String, why: String },
    #[error(transparent)]
    Mx(#[from] epost_types::identity::mx::MxError),
}

/// A user hosted on this node: their keys and current certificate.
pub struct HostedUser {
    pub keys: UserKeys,
    pub certificate: Certificate,
    pub envelope: SignedEnvelope,
    password_hash: Option<String>,
    /// Their realm's convergence secret, if this node was given it.
    realm_secret: Option<ConvergenceSecret>,
}

/// What the API shows of a hosted user (no secrets).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UserInfo {
    pub address: Address,
    pub signing_key: String,
    pub hpke_key: String,
    pub serial: u64,
    pub expires: u64,
    pub has_password: bool,
}

/// A realm key held here.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RealmInfo {
    pub domain: String,
    pub key: String,
    /// False when the realm already existed (the same key is returned).
    pub created: bool,
}

struct State {
    realms: BTreeMap<String, SigningKey>,
    /// The convergence secret of each realm held here.
    realm_secrets: BTreeMap<String, ConvergenceSecret>,
    /// Trust added at run time (persisted in `trusted.json`).
    added: TrustedRealms,
    users: BTreeMap<Address, Arc<HostedUser>>,
    certs: HashMap<Address, (Certificate, Instant)>,
    /// Looked-up MX records that name this node, by domain.
    mx: HashMap<String, (epost_types::identity::mx::MxRecord, Instant)>,
}

/// Identity loaded from disk, before the overlay starts (the overlay's
/// record validator needs the trust list first).
pub struct LoadedIdentity {
    disk: disk::Disk,
    config: IdentityConfig,
    state: State,
    trust: watch::Sender<Arc<TrustedRealms>>,
}

impl LoadedIdentity {
    /// Reads `DIR/identity/`. A damaged file is an error naming it.
    pub fn load(data_dir: &std::path::Path, config: IdentityConfig) -> Result<Self, IdentityError> {
        let disk = disk::Disk::new(data_dir.join("identity"));
        let realms = disk.load_realms()?;
        let mut realm_secrets = BTreeMap::new();
        for domain in realms.keys() {
            realm_secrets.insert(domain.clone(), disk.realm_secret(domain)?);
        }
        let added = disk.load_trust()?;
        let users = disk
            .load_users()?
            .into_iter()
            .map(|(bundle, password_hash)| {
                let certificate = Certificate::verify_signature(&bundle.certificate)?;
                // A user added before realms had secrets gets the realm's
                // from the realm node.
                let realm_secret = bundle
                    .realm_secret
                    .or_else(|| realm_secrets.get(bundle.keys.address.domain()).cloned());
                let user = HostedUser {
                    keys: bundle.keys,
                    certificate,
                    envelope: bundle.certificate,
                    password_hash,
                    realm_secret,
                };
                Ok((user.keys.address.clone(), Arc::new(user)))
            })
            .collect::<Result<BTreeMap<_, _>, IdentityError>>()?;
        let state = State {
            realms,
            realm_secrets,
            added,
            users,
            certs: HashMap::new(),
            mx: HashMap::new(),
        };
        let (trust, _) = watch::channel(Arc::new(effective_trust(&config.trusted, &state)));
        Ok(Self { disk, config, state, trust })
    }

    /// The record validator the overlay runs every inbound record through.
    pub fn record_rules(&self) -> RecordRules {
        RecordRules::new(self.trust.subscribe())
    }
}

/// The node's identity service. Clone freely.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    disk: disk::Disk,
    config: IdentityConfig,
    dht: DhtClient,
    /// The node's overlay key, which signs what it relays as an MX.
    node_key: SigningKey,
    peer_id: Vec<u8>,
    listen_addrs: Vec<String>,
    state: Mutex<State>,
    trust: watch::Sender<Arc<TrustedRealms>>,
    logins: logins::Logins,
}

impl Identity {
    /// Starts the service once the overlay is up: publishes every hosted
    /// user's certificate and presence now and every republish interval.
    pub(crate) fn start(
        loaded: LoadedIdentity,
        dht: DhtClient,
        node_key: SigningKey,
        listen_addrs: Vec<String>,
        workers: &Workers,
    ) -> (Self, Worker) {
        let peer_id = dht.local_peer_id().to_bytes();
        let identity = Self {
            inner: Arc::new(Inner {
                disk: loaded.disk,
                config: loaded.config,
                dht,
                node_key,
                peer_id,
                listen_addrs,
                state: Mutex::new(loaded.state),
                trust: loaded.trust,
                logins: logins::Logins::new(),
            }),
        };
        let publisher = identity.clone();
        let task = workers.start("identity", |ctx| async move {
            let mut tick = worker::every(publisher.inner.config.republish_interval, true);
            while ctx.tick(&mut tick).await {
                let _busy = ctx.busy();
                publisher.republish_all().await;
            }
        });
        (identity, task)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated
        // (every update is one insert), so a poisoned lock is still usable.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The realms trusted now (config and run-time additions, and every
    /// realm whose key is held here).
    pub fn trusted(&self) -> Arc<TrustedRealms> {
        self.inner.trust.borrow().clone()
    }

    fn refresh_trust(&self, state: &State) {
        self.inner.trust.send_replace(Arc::new(effective_trust(&self.inner.config.trusted, state)));
    }

    /// Makes a realm authority key for `domain` (or returns the one held).
    pub fn realm_init(&self, domain: &str) -> Result<RealmInfo, IdentityError> {
        let domain = epost_types::address::canonical_domain(domain)?;
        let mut state = self.state();
        if let Some(key) = state.realms.get(&domain) {
            let key = key.verifying_key().to_string();
            return Ok(RealmInfo { domain, key, created: false });
        }
        let key = SigningKey::generate()?;
        self.inner.disk.save_realm(&domain, &key)?;
        let secret = self.inner.disk.realm_secret(&domain)?;
        let public = key.verifying_key().to_string();
        state.realms.insert(domain.clone(), key);
        state.realm_secrets.insert(domain.clone(), secret);
        self.refresh_trust(&state);
        info!(%domain, key = %public, "realm created");
        Ok(RealmInfo { domain, key: public, created: true })
    }

    /// Realm keys held here.
    pub fn realms(&self) -> Vec<RealmInfo> {
        let state = self.state();
        state
            .realms
            .iter()
            .map(|(domain, key)| RealmInfo {
                domain: domain.clone(),
                key: key.verifying_key().to_string(),
                created: false,
            })
            .collect()
    }

    /// Trusts `key` to certify `domain`, or every domain when `None`.
    pub fn trust(&self, key: VerifyingKey, domain: Option<&str>) -> Result<(), IdentityError> {
        let mut state = self.state();
        let mut added = state.added.clone();
        added.trust(domain.unwrap_or(ANY_DOMAIN), key)?;
        self.inner.disk.save_trust(&added)?;
        state.added = added;
        state.certs.clear();
        self.refresh_trust(&state);
        Ok(())
    }

    /// Makes `address`'s keys, has this node's realm key certify them, and
    /// publishes the certificate and the user's presence.
    pub async fn add_user(
        &self,
        address: Address,
        password: Option<&str>,
    ) -> Result<UserInfo, IdentityError> {
        let (realm_key, realm_secret) = {
            let state = self.state();
            if state.users.contains_key(&address) {
                return Err(IdentityError::UserExists { address });
            }
            let key =
                state.realms.get(address.domain()).cloned().ok_or_else(|| {
                    IdentityError::NoRealmKey { domain: address.domain().to_owned() }
                })?;
            (key, state.realm_secrets.get(address.domain()).cloned())
        };
        // A user re-added after being lost gets a serial above the old one,
        // so the new certificate replaces it everywhere.
        let serial = match self.lookup_certificate(&address).await {
            Ok(old) => old.serial + 1,
            Err(_) => 1,
        };
        let keys = UserKeys::generate(address.clone())?;
        let now = Timestamp::now();
        let certificate = keys.certificate(serial, now, now.saturating_add(CERT_VALIDITY));
        let envelope = Certificate::issue(&realm_key, &certificate)?;
        self.inner.disk.save_issued(&address, &envelope)?;
        let password_hash = password.map(password::hash_password).transpose()?;
        let bundle = UserBundle::new(keys, envelope)?.with_extras(realm_secret, None);
        let user = self.host(bundle, certificate, password_hash)?;
        self.publish(&user).await;
        info!(%address, serial, "user added");
        Ok(user_info(&user))
    }

    /// Hosts a user moved from another node: no help from the realm needed,
    /// only that this node trusts the realm that certified them. The
    /// gateway password is `password` if given, else the one the bundle
    /// carries (so the user logs in as before), else the one already held.
    pub async fn import_user(
        &self,
        bytes: &[u8],
        passphrase: Option<&str>,
        password: Option<&str>,
    ) -> Result<UserInfo, IdentityError> {
        let bundle = UserBundle::decode(bytes, passphrase)?;
        let certificate =
            Certificate::verify(&bundle.certificate, &self.trusted(), Timestamp::now())?;
        let address = certificate.address.clone();
        let password_hash = match password {
            Some(password) => Some(password::hash_password(password)?),
            None => bundle
                .password_hash
                .clone()
                .or_else(|| self.state().users.get(&address).and_then(|u| u.password_hash.clone())),
        };
        let user = self.host(bundle, certificate, password_hash)?;
        self.publish(&user).await;
        info!(%address, "user imported");
        Ok(user_info(&user))
    }

    /// The user's key bundle, with their realm's secret and their gateway
    /// password hash, passphrase-wrapped if one is given.
    pub fn export_user(
        &self,
        address: &Address,
        passphrase: Option<&str>,
    ) -> Result<Vec<u8>, IdentityError> {
        let user = self.user(address)?;
        let bundle = UserBundle::new(clone_keys(&user.keys), user.envelope.clone())?
            .with_extras(user.realm_secret.clone(), user.password_hash.clone());
        Ok(match passphrase {
            Some(passphrase) => bundle.wrap(passphrase)?,
            None => bundle.encode_plain().to_vec(),
        })
    }

    /// Stops hosting `address` here (after a move with export and import):
    /// its key files are deleted and its presence is no longer published.
    /// Its certificate, logs and mail stay in the overlay.
    pub fn remove_user(&self, address: &Address) -> Result<(), IdentityError> {
        let mut state = self.state();
        if !state.users.contains_key(address) {
            return Err(IdentityError::UnknownUser { address: address.clone() });
        }
        self.inner.disk.remove_user(address)?;
        state.users.remove(address);
        info!(%address, "user no longer hosted here");
        Ok(())
    }

    /// Sets (or replaces) a hosted user's gateway password.
    pub fn set_password(&self, address: &Address, password: &str) -> Result<(), IdentityError> {
        let user = self.user(address)?;
        let hash = password::hash_password(password)?;
        let bundle = UserBundle::new(clone_keys(&user.keys), user.envelope.clone())?
            .with_extras(user.realm_secret.clone(), None);
        self.host(bundle, user.certificate.clone(), Some(hash))?;
        Ok(())
    }

    /// Writes a user's files, then hosts them (replacing any earlier copy).
    fn host(
        &self,
        bundle: UserBundle,
        certificate: Certificate,
        password_hash: Option<String>,
    ) -> Result<Arc<HostedUser>, IdentityError> {
        self.inner.disk.save_user(&bundle, password_hash.as_deref())?;
        let address = bundle.keys.address.clone();
        let user = Arc::new(HostedUser {
            keys: bundle.keys,
            certificate,
            envelope: bundle.certificate,
            password_hash,
            realm_secret: bundle.realm_secret,
        });
        self.state().users.insert(address, user.clone());
        Ok(user)
    }

    /// Whether `password` is `address`'s gateway password (false for
    /// unknown users and users without one). Constant-time in the hash;
    /// a login that succeeded lately is answered without hashing again,
    /// and at most a few checks hash at once (`logins`). Blocks: call it
    /// off the async workers.
    pub fn check_password(&self, address: &Address, password: &str) -> bool {
        let hash = self.state().users.get(address).and_then(|u| u.password_hash.clone());
        hash.is_some_and(|hash| self.inner.logins.check(address, &hash, password))
    }

    /// A hosted user.
    pub fn user(&self, address: &Address) -> Result<Arc<HostedUser>, IdentityError> {
        self.state()
            .users
            .get(address)
            .cloned()
            .ok_or_else(|| IdentityError::UnknownUser { address: address.clone() })
    }

    /// The convergence secret of `domain`'s realm, if this node holds the
    /// realm or hosts one of its users: what mail of that realm is sealed
    /// under, so the same attachment is one object across the realm.
    pub fn realm_secret(&self, domain: &str) -> Option<ConvergenceSecret> {
        let state = self.state();
        state.realm_secrets.get(domain).cloned().or_else(|| {
            state
                .users
                .values()
                .filter(|u| u.keys.address.domain() == domain)
                .find_map(|u| u.realm_secret.clone())
        })
    }

    /// Every hosted user's keys and certificate.
    pub fn hosted_users(&self) -> Vec<Arc<HostedUser>> {
        self.state().users.values().cloned().collect()
    }

    /// Every hosted user.
    pub fn users(&self) -> Vec<UserInfo> {
        self.state().users.values().map(|u| user_info(u)).collect()
    }

    /// `address`'s certificate, verified against the realms trusted here:
    /// the hosted user's own, a cached one, or the newest valid copy the
    /// closest holders return.
    pub async fn lookup_certificate(
        &self,
        address: &Address,
    ) -> Result<Certificate, IdentityError> {
        {
            let state = self.state();
            if let Some(user) = state.users.get(address) {
                return Ok(user.certificate.clone());
            }
            if let Some((cert, at)) = state.certs.get(address)
                && at.elapsed() < CERT_CACHE_TTL
                && Timestamp::now() < cert.expires
            {
                return Ok(cert.clone());
            }
        }
        let key = RecordKey::for_certificate(address).encode();
        let lookup = self.inner.dht.lookup_record(&key).await.map_err(|e| {
            IdentityError::Unreachable { address: address.clone(), why: e.to_string() }
        })?;
        let trust = self.trusted();
        let now = Timestamp::now();
        let found = lookup.found.iter().map(|r| r.value.as_slice());
        let Some(newest) = record::newest_record(&key, found, &trust, now) else {
            // "Not found" only if the holders were asked and answered.
            return Err(if lookup.complete {
                IdentityError::NoCertificate { address: address.clone() }
            } else {
                IdentityError::Unreachable {
                    address: address.clone(),
                    why: "no peer answered the lookup".into(),
                }
            });
        };
        let envelope = SignedEnvelope::decode(newest)
            .map_err(|_| IdentityError::NoCertificate { address: address.clone() })?;
        let cert = Certificate::verify(&envelope, &trust, now)?;
        let mut state = self.state();
        if state.certs.len() >= CERT_CACHE_MAX {
            state.certs.clear();
        }
        state.certs.insert(address.clone(), (cert.clone(), Instant::now()));
        Ok(cert)
    }

    /// Where `address` is hosted: the newest presence signed by the key
    /// its certificate names.
    pub async fn lookup_presence(&self, address: &Address) -> Result<Presence, IdentityError> {
        let cert = self.lookup_certificate(address).await?;
        let key = RecordKey::for_presence(address).encode();
        let found = self.inner.dht.get_record(&key).await.unwrap_or_default();
        Presence::newest(found.iter().map(|r| r.value.as_slice()), &cert)
            .ok_or_else(|| IdentityError::NoCertificate { address: address.clone() })
    }

    async fn republish_all(&self) {
        if let Err(e) = self.renew_issued().await {
            warn!(error = %Chain(&e), "cannot renew the certificates issued here");
        }
        if let Err(e) = self.renew_mx().await {
            warn!(error = %Chain(&e), "cannot republish the MX records issued here");
        }
        let users: Vec<Arc<HostedUser>> = self.state().users.values().cloned().collect();
        for user in users {
            let user = match self.adopt_renewed(&user).await {
                Ok(Some(renewed)) => renewed,
                Ok(None) => user,
                Err(e) => {
                    warn!(address = %user.keys.address, error = %Chain(&e), "cannot take up a renewed certificate");
                    user
                }
            };
            self.publish(&user).await;
        }
    }

    /// Renews, for the same keys, every certificate a realm held here
    /// issued that is near its end (and records the hosted users' own).
    async fn renew_issued(&self) -> Result<(), IdentityError> {
        let now = Timestamp::now();
        let soon = now.saturating_add(CERT_RENEW_BEFORE);
        let mut issued: Vec<SignedEnvelope> = self.inner.disk.load_issued()?;
        // Users added before the registry existed.
        let hosted: Vec<SignedEnvelope> = {
            let state = self.state();
            state
                .users
                .values()
                .filter(|u| state.realms.contains_key(u.keys.address.domain()))
                .map(|u| u.envelope.clone())
                .collect()
        };
        for envelope in hosted {
            let address = Certificate::verify_signature(&envelope)?.address;
            let known = issued
                .iter()
                .any(|e| Certificate::verify_signature(e).is_ok_and(|c| c.address == address));
            if !known {
                self.inner.disk.save_issued(&address, &envelope)?;
                issued.push(envelope);
            }
        }
        for envelope in issued {
            let old = Certificate::verify_signature(&envelope)?;
            if old.expires > soon {
                continue;
            }
            let Some(realm_key) = self.state().realms.get(old.address.domain()).cloned() else {
                continue;
            };
            let serial = match self.lookup_certificate(&old.address).await {
                Ok(newest) if newest.serial > old.serial => {
                    // Someone re-added the user with new keys, or it was
                    // renewed already: only a certificate for these keys is
                    // renewed, and never below the newest serial.
                    if newest.signing_key != old.signing_key || newest.expires > soon {
                        continue;
                    }
                    newest.serial + 1
                }
                _ => old.serial + 1,
            };
            let renewed = Certificate::new(
                old.address.clone(),
                old.signing_key,
                old.hpke_key,
                serial,
                now,
                now.saturating_add(CERT_VALIDITY),
            );
            let envelope = Certificate::issue(&realm_key, &renewed)?;
            self.inner.disk.save_issued(&old.address, &envelope)?;
            let key = RecordKey::for_certificate(&old.address).encode();
            if let Err(e) = self.inner.dht.put_record(&key, envelope.encode()).await {
                log_put_failure(&old.address, "renewed certificate", &e);
            }
            self.state().certs.remove(&old.address);
            info!(address = %old.address, serial, "certificate renewed");
            // The guard goes before `take_certificate` locks the state again.
            let hosted = self.state().users.get(&old.address).cloned();
            if let Some(user) = hosted {
                self.take_certificate(&user, envelope, renewed)?;
            }
        }
        Ok(())
    }

    /// A hosted user's certificate near its end is replaced by a newer one
    /// the realm published for the same keys, if there is one.
    async fn adopt_renewed(
        &self,
        user: &Arc<HostedUser>,
    ) -> Result<Option<Arc<HostedUser>>, IdentityError> {
        let soon = Timestamp::now().saturating_add(CERT_RENEW_BEFORE);
        if user.certificate.expires > soon {
            return Ok(None);
        }
        let key = RecordKey::for_certificate(&user.keys.address).encode();
        let found = self.inner.dht.get_record(&key).await.unwrap_or_default();
        let trust = self.trusted();
        let now = Timestamp::now();
        let Some(newest) =
            record::newest_record(&key, found.iter().map(|r| r.value.as_slice()), &trust, now)
        else {
            return Ok(None);
        };
        let envelope = SignedEnvelope::decode(newest)
            .map_err(|e| IdentityError::Publish(format!("a certificate record: {e}")))?;
        let cert = Certificate::verify(&envelope, &trust, now)?;
        let same_keys = cert.signing_key == user.keys.verifying_key()
            && cert.hpke_key == user.keys.hpke_public();
        if !same_keys || cert.serial <= user.certificate.serial {
            return Ok(None);
        }
        info!(address = %cert.address, serial = cert.serial, "renewed certificate taken up");
        self.take_certificate(user, envelope, cert).map(Some)
    }

    /// Hosts `user` with a new certificate for the same keys.
    fn take_certificate(
        &self,
        user: &HostedUser,
        envelope: SignedEnvelope,
        certificate: Certificate,
    ) -> Result<Arc<HostedUser>, IdentityError> {
        let bundle = UserBundle::new(clone_keys(&user.keys), envelope)?
            .with_extras(user.realm_secret.clone(), None);
        self.host(bundle, certificate, user.password_hash.clone())
    }

    /// Puts the user's certificate and a fresh presence in the overlay. A
    /// put that reaches no peer (a lone node) is kept locally and retried
    /// at the next republish, so it is logged, not failed.
    async fn publish(&self, user: &HostedUser) {
        let address = &user.keys.address;
        let cert_key = RecordKey::for_certificate(address).encode();
        if let Err(e) = self.inner.dht.put_record(&cert_key, user.envelope.encode()).await {
            log_put_failure(address, "certificate", &e);
        }
        let presence = Presence::new(
            address.clone(),
            vec![self.inner.peer_id.clone()],
            self.inner.listen_addrs.iter().take(16).cloned().collect(),
            Timestamp::now(),
        );
        match Presence::sign(&user.keys.signing, &presence) {
            Ok(envelope) => {
                let key = RecordKey::for_presence(address).encode();
                if let Err(e) = self.inner.dht.put_record(&key, envelope.encode()).await {
                    log_put_failure(address, "presence", &e);
                }
            }
            Err(e) => warn!(%address, error = %Chain(&e), "cannot sign presence"),
        }
    }
}

/// `of` is the address (or domain) whose record it is.
fn log_put_failure(of: &dyn std::fmt::Display, what: &str, error: &RecordError) {
    match error {
        RecordError::QuorumFailed(_) => {
            debug!(%of, what, "no peer took the record yet; kept here, republished later")
        }
        other => warn!(%of, what, error = %other, "cannot publish"),
    }
}

fn effective_trust(configured: &TrustedRealms, state: &State) -> TrustedRealms {
    let mut trust = configured.clone();
    for domain in state.added.domains().map(str::to_owned).collect::<Vec<_>>() {
        for key in state.added.keys(&domain) {
            // Domains in `added` were validated when added.
            let _ = trust.trust(&domain, *key);
        }
    }
    for (domain, key) in &state.realms {
        let _ = trust.trust(domain, key.verifying_key());
    }
    trust
}

fn user_info(user: &HostedUser) -> UserInfo {
    UserInfo {
        address: user.keys.address.clone(),
        signing_key: user.keys.verifying_key().to_string(),
        hpke_key: user.keys.hpke_public().to_string(),
        serial: user.certificate.serial,
        expires: user.certificate.expires.as_millis(),
        has_password: user.password_hash.is_some(),
    }
}

fn clone_keys(keys: &UserKeys) -> UserKeys {
    UserKeys {
        address: keys.address.clone(),
        signing: keys.signing.clone(),
        hpke: keys.hpke.clone(),
    }
}
