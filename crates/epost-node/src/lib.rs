//! An epost node's services, assembled: the overlay (`epost-dht`), the
//! local store (`epost-store`), POST's storage service with repair and
//! leases, logs, notifications, ePOST mail, the control API and `/metrics`.
//!
//! [`Node::start`] brings everything up in order and [`Node::shutdown`]
//! takes it down in reverse, finishing what was acknowledged. This crate
//! must never name libp2p or a storage engine (those belong to the crates
//! below it), and never hold a lock across an await on the network.

mod api;
mod chain;
pub mod control;
pub mod failures;
mod fsutil;
pub mod identity;
mod keyed;
pub mod keyspaces;
pub mod lease;
pub mod logs;
pub mod mail;
mod migrate;
pub mod notify;
pub mod outbound;
mod peers;
mod records;
mod stop;
pub mod storage;
mod sweep;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use epost_dht::{Dht, DhtConfig, Multiaddr, PeerId, StartOptions};
use epost_store::{Backend, Store};
use epost_types::convergent::ConvergenceSecret;

pub use epost_dht::StartError as OverlayError;
use storage::LocalFragments;
use storage::metrics::Metrics;
use storage::{StorageConfig, StorageService};

/// Everything a node needs to start, already validated by its caller.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub data_dir: PathBuf,
    pub identity_seed: [u8; 32],
    pub convergence_secret: Vec<u8>,
    pub backend: Backend,
    pub dht: DhtConfig,
    pub storage: StorageConfig,
    pub identity: identity::IdentityConfig,
    pub notify: notify::NotifyConfig,
    /// When and how fast what the hosted users reference is renewed.
    pub lease: lease::LeaseConfig,
    /// How often expired entries are swept from the store.
    pub sweep_interval: std::time::Duration,
    pub api_listen: SocketAddr,
    /// The control API's bearer token.
    pub api_token: String,
    /// The outbound queue (in `<data-dir>/outbound`), its transport and
    /// signer.
    pub outbound: outbound::OutboundOptions,
}

/// Why a node could not start. Each names what to check.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot open the local store in {path}: {source}")]
    Store { path: String, source: epost_store::OpenError },
    #[error("cannot move the records of {path} to their keyspaces: {source}")]
    Migrate { path: String, source: epost_store::StoreError },
    #[error("cannot start the overlay: {0}")]
    Overlay(#[from] OverlayError),
    #[error("cannot load this node's identity files: {0}")]
    Identity(#[from] identity::IdentityError),
    #[error("cannot open the outbound queue in {path}: {source}")]
    Outbound { path: String, source: outbound::OpenError },
    #[error("cannot serve the control API on {addr}: {source}")]
    Api { addr: SocketAddr, source: std::io::Error },
}

/// A running node.
pub struct Node {
    pub peer_id: PeerId,
    /// Full listen addresses, each ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// Where the control API listens.
    pub api_addr: SocketAddr,
    pub storage: StorageService,
    pub identity: identity::Identity,
    pub logs: logs::LogService,
    pub mail: mail::MailService,
    mail_task: mail::MailTask,
    /// Mail for other domains, queued durably and delivered.
    pub outbound: outbound::OutboundService,
    outbound_task: worker::Worker,
    identity_task: worker::Worker,
    dht: Dht,
    storage_tasks: storage::StorageTasks,
    pub notify: notify::NotifyHolder,
    notify_task: worker::Worker,
    pub notifications: notify::NotifyService,
    notifications_task: worker::Worker,
    api: api::ApiServer,
    peer_memory: peers::PeerMemory,
    records: records::RecordWriter,
    /// Runs renewal passes (`epost renew`).
    pub renewer: lease::Renewer,
    renew_task: worker::Worker,
    sweep_task: worker::Worker,
    /// What this node renews for its users.
    pub book: lease::LeaseBook,
    book_task: worker::Worker,
    workers: worker::Workers,
    store: Store,
}

impl Node {
    /// Opens the store, joins the overlay, starts the services and the API.
    pub async fn start(options: NodeOptions) -> Result<Self, NodeError> {
        let store_path = options.data_dir.join("store");
        let store =
            Store::open(&store_path, options.backend, keyspaces::ALL).map_err(|source| {
                NodeError::Store { path: store_path.display().to_string(), source }
            })?;
        migrate::legacy_records(&store, epost_types::time::Timestamp::now().as_millis())
            .await
            .map_err(|source| NodeError::Migrate {
                path: store_path.display().to_string(),
                source,
            })?;

        let workers = worker::Workers::new();
        let (book, book_task) = lease::LeaseBook::start(store.clone(), &workers);
        let (sweeper, sweep_task) =
            sweep::Sweeper::start(store.clone(), options.sweep_interval, &workers);
        let loaded = identity::LoadedIdentity::load(&options.data_dir, options.identity.clone())?;
        let (stored_records, records) = records::RecordWriter::start(store.clone(), &workers);
        let (dht, inbound) = Dht::start(StartOptions {
            config: options.dht.clone(),
            identity_seed: options.identity_seed,
            validator: Arc::new(loaded.record_rules()),
            stored_records,
            record_writes: Some(records.sender()),
            remembered_peers: peers::load(&options.data_dir),
        })
        .await?;

        let peer_memory =
            peers::PeerMemory::start(options.data_dir.clone(), dht.client.clone(), &workers);
        let listen_text = dht.started.listen_addrs.iter().map(ToString::to_string).collect();
        let (identity, identity_task) = identity::Identity::start(
            loaded,
            dht.client.clone(),
            epost_types::sign::SigningKey::from_seed(options.identity_seed),
            listen_text,
            &workers,
        );
        let metrics = Arc::new(Metrics::default());
        let local = LocalFragments::new(store.clone(), options.storage.quota, dht.started.peer_id);
        let (storage, storage_tasks) = StorageService::start(
            options.storage.clone(),
            ConvergenceSecret::new(options.convergence_secret.clone()),
            dht.client.clone(),
            inbound.frag,
            local.clone(),
            metrics,
            &workers,
        );
        let (notify, notify_task) = notify::NotifyHolder::start(
            options.notify.clone(),
            dht.client.clone(),
            store.clone(),
            inbound.notify,
            &workers,
        );
        let (notifications, notifications_task) = notify::NotifyService::start(
            dht.client.clone(),
            identity.clone(),
            notify.clone(),
            store.clone(),
            &options.notify,
            &workers,
        );
        let logs = logs::LogService::new(
            storage.clone(),
            identity.clone(),
            dht.client.clone(),
            book.clone(),
            store.clone(),
        );
        let (renewer, renew_task) = lease::Renewer::start(
            options.lease.clone(),
            storage.clone(),
            dht.client.clone(),
            book.clone(),
            logs.clone(),
            &workers,
        );
        let (mail, mail_task) = mail::MailService::start(
            storage.clone(),
            logs.clone(),
            identity.clone(),
            notifications.clone(),
            book.clone(),
            &workers,
        );
        let outbound_dir = options.data_dir.join("outbound");
        let (outbound, outbound_task) = outbound::OutboundService::start(
            &outbound_dir,
            options.outbound.clone(),
            mail.clone(),
            &workers,
        )
        .await
        .map_err(|source| NodeError::Outbound {
            path: outbound_dir.display().to_string(),
            source,
        })?;
        let state = api::AppState {
            storage: storage.clone(),
            identity: identity.clone(),
            logs: logs.clone(),
            mail: mail.clone(),
            outbound: outbound.clone(),
            notifications: notifications.clone(),
            notify_holder: notify.clone(),
            dht: dht.client.clone(),
            renewer: renewer.clone(),
            sweeper: sweeper.clone(),
            book: book.clone(),
            workers: workers.clone(),
            token: options.api_token.clone().into(),
        };
        let api = api::ApiServer::start(options.api_listen, state)
            .await
            .map_err(|source| NodeError::Api { addr: options.api_listen, source })?;

        Ok(Self {
            peer_id: dht.started.peer_id,
            listen_addrs: dht.started.listen_addrs.clone(),
            api_addr: api.addr,
            storage,
            identity,
            logs,
            mail,
            mail_task,
            outbound,
            outbound_task,
            identity_task,
            dht,
            storage_tasks,
            notify,
            notify_task,
            notifications,
            notifications_task,
            api,
            peer_memory,
            records,
            renewer,
            renew_task,
            sweep_task,
            book,
            book_task,
            workers,
            store,
        })
    }

    /// The overlay handle (for status and tests).
    pub fn dht(&self) -> &epost_dht::DhtClient {
        &self.dht.client
    }

    /// The node's workers as status reports them.
    pub fn workers(&self) -> Vec<control::WorkerInfo> {
        self.workers.list()
    }

    /// Stops in reverse order of start: no new API requests, services finish
    /// what they accepted, the overlay stops, records and store are flushed.
    /// Each worker is given [`worker::DRAIN`] to finish.
    pub async fn shutdown(mut self) {
        use worker::DRAIN;
        self.api.shutdown().await;
        // Repair first: it must not work on while the services below and
        // this node's peers go.
        self.storage_tasks.stop_repair().await;
        self.renew_task.shutdown(DRAIN).await;
        // Before mail: its DSNs are filed through it.
        self.outbound_task.shutdown(DRAIN).await;
        self.mail_task.shutdown(&self.mail).await;
        self.logs.shutdown().await;
        self.notifications_task.shutdown(DRAIN).await;
        self.identity_task.shutdown(DRAIN).await;
        self.storage_tasks.shutdown().await;
        self.notify_task.shutdown(DRAIN).await;
        // What requests and workers spawned (a put's last stores, a
        // download) ends while the overlay still runs.
        self.workers.drain().await;
        self.peer_memory.shutdown().await;
        self.dht.shutdown().await;
        self.records.shutdown().await;
        self.sweep_task.shutdown(DRAIN).await;
        self.book_task.shutdown(DRAIN).await;
        self.store.close();
    }
}
