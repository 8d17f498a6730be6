//! [`Transport`] and [`Sign`] behind an `Arc`, so a node can hold
//! whichever the binary gives it without being generic over them:
//! [`Transport`]'s `impl Future` makes it unusable as `dyn`, so
//! [`DynTransport`] boxes the future, once per attempt.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::outbound::{Message, Outcome, Sign, SignError, Transport};

/// A boxed future that may be sent between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Transport`] as a `dyn`-compatible trait; every transport is one.
pub trait DynTransport: Send + Sync + 'static {
    fn send_boxed<'a>(
        &'a self,
        domain: &'a str,
        message: Message<'a>,
    ) -> BoxFuture<'a, Vec<Outcome>>;
}

impl<T: Transport> DynTransport for T {
    fn send_boxed<'a>(
        &'a self,
        domain: &'a str,
        message: Message<'a>,
    ) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(self.send(domain, message))
    }
}

/// Any transport, shared.
#[derive(Clone)]
pub struct SharedTransport {
    inner: Arc<dyn DynTransport>,
    name: &'static str,
}

impl SharedTransport {
    /// `name` says which transport this is in logs and `Debug`.
    pub fn new(name: &'static str, transport: impl Transport) -> Self {
        Self { inner: Arc::new(transport), name }
    }
}

impl fmt::Debug for SharedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedTransport").field(&self.name).finish()
    }
}

impl Transport for SharedTransport {
    async fn send(&self, domain: &str, message: Message<'_>) -> Vec<Outcome> {
        self.inner.send_boxed(domain, message).await
    }
}

/// Any signer, shared.
#[derive(Clone)]
pub struct SharedSigner {
    inner: Arc<dyn Sign>,
    name: &'static str,
}

impl SharedSigner {
    pub fn new(name: &'static str, signer: impl Sign) -> Self {
        Self { inner: Arc::new(signer), name }
    }
}

impl fmt::Debug for SharedSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedSigner").field(&self.name).finish()
    }
}

impl Sign for SharedSigner {
    fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.inner.sign(domain, message)
    }
}
