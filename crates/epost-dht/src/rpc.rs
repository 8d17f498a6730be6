//! Serving a request-response [`Protocol`] from the event loop, the same
//! way for every protocol. A client's request goes out and its answer or
//! failure comes back on the caller's oneshot. A peer's request goes into
//! the protocol's bounded queue for its service; when that queue is full
//! or closed the overlay answers at once with the protocol's refusal
//! ([`Protocol::unavailable`]), so the loop never blocks and the peer never
//! waits for a service that will not answer. Before a request is queued
//! its peer's token bucket is checked (`rate`): over its rate the peer is
//! refused the same way, so one peer cannot fill the queue the others
//! share, and a peer far over it is handed back to the event loop to block.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;
use tracing::debug;

use crate::client::RequestError;
use crate::guard::{Counters, Limited};
use crate::protocol::{Codec, Protocol, Unavailable};
use crate::rate::{PeerRates, Rate, Verdict};

/// A request from a peer, for the protocol's service to answer through
/// the [`DhtClient`](crate::DhtClient).
pub struct InboundRequest<P: Protocol> {
    pub peer: PeerId,
    pub request: P::Request,
    pub reply: Reply<P>,
}

impl<P: Protocol> fmt::Debug for InboundRequest<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundRequest")
            .field("protocol", &P::LABEL)
            .field("peer", &self.peer)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// Where the answer to an [`InboundRequest`] goes. Dropping it unanswered
/// makes the peer see a failed request, never a hang.
pub struct Reply<P: Protocol>(ResponseChannel<P::Response>);

impl<P: Protocol> fmt::Debug for Reply<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reply").field(&P::LABEL).finish()
    }
}

/// Where the outcome of an outbound request goes.
pub(crate) type Answer<P> = oneshot::Sender<Result<<P as Protocol>::Response, RequestError>>;

/// What a client asks the event loop to do on one protocol.
pub(crate) enum Rpc<P: Protocol> {
    /// Send `request` to `peer`; its answer or failure goes to `answer`.
    Request { peer: PeerId, request: P::Request, answer: Answer<P> },
    /// Answer a peer's request.
    Respond { reply: Reply<P>, response: P::Response },
}

/// The swarm's behaviour for one protocol.
pub(crate) type Behaviour<P> = request_response::Behaviour<Codec<P>>;

/// The event loop's side of one protocol: the requests it sent that await
/// an answer, and the queue peers' requests go to.
pub(crate) struct Endpoint<P: Protocol> {
    outstanding: HashMap<OutboundRequestId, Answer<P>>,
    inbound: mpsc::Sender<InboundRequest<P>>,
    /// Each peer's rate of requests on this protocol.
    rates: PeerRates,
    /// Which protocol this is, in the counters.
    kind: Limited,
    counters: Arc<Counters>,
}

/// How one protocol's inbound requests are limited.
pub(crate) struct Limits {
    pub(crate) kind: Limited,
    pub(crate) rate: Rate,
    pub(crate) max_peers: usize,
    pub(crate) counters: Arc<Counters>,
}

impl<P: Protocol> Endpoint<P> {
    pub(crate) fn new(inbound: mpsc::Sender<InboundRequest<P>>, limits: Limits) -> Self {
        let Limits { kind, rate, max_peers, counters } = limits;
        Self {
            outstanding: HashMap::new(),
            inbound,
            rates: PeerRates::new(rate, max_peers),
            kind,
            counters,
        }
    }

    pub(crate) fn on_command(&mut self, behaviour: &mut Behaviour<P>, rpc: Rpc<P>) {
        match rpc {
            Rpc::Request { peer, request, answer } => {
                let id = behaviour.send_request(&peer, request);
                self.outstanding.insert(id, answer);
            }
            Rpc::Respond { reply, response } => {
                if behaviour.send_response(reply.0, response).is_err() {
                    debug!(protocol = P::LABEL, "response not sent: the requesting peer went away");
                }
            }
        }
    }

    /// Handles one event of the protocol; returns a peer that is flooding
    /// it, for the event loop to block.
    pub(crate) fn on_event(
        &mut self,
        behaviour: &mut Behaviour<P>,
        event: request_response::Event<P::Request, P::Response>,
    ) -> Option<PeerId> {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                let verdict = self.rates.check(peer, Instant::now());
                if verdict != Verdict::Allow {
                    self.counters.throttled(self.kind);
                    debug!(%peer, protocol = P::LABEL, ?verdict, "request over the peer's rate");
                    let _ =
                        behaviour.send_response(channel, P::unavailable(Unavailable::RateLimited));
                    return (verdict == Verdict::Flood).then_some(peer);
                }
                let inbound = InboundRequest { peer, request, reply: Reply(channel) };
                if let Err(refused) = self.inbound.try_send(inbound) {
                    let (why, inbound) = match refused {
                        TrySendError::Full(inbound) => (Unavailable::Busy, inbound),
                        TrySendError::Closed(inbound) => (Unavailable::Stopped, inbound),
                    };
                    // If the peer has gone too, there is nobody left to tell.
                    let _ = behaviour.send_response(inbound.reply.0, P::unavailable(why));
                }
            }
            Event::Message { message: Message::Response { request_id, response }, .. } => {
                if let Some(answer) = self.outstanding.remove(&request_id) {
                    let _ = answer.send(Ok(response));
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if let Some(answer) = self.outstanding.remove(&request_id) {
                    let _ = answer.send(Err(request_error(peer, error)));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, protocol = P::LABEL, "inbound request failed");
            }
            Event::ResponseSent { .. } => {}
        }
        None
    }
}

fn request_error(peer: PeerId, error: OutboundFailure) -> RequestError {
    match error {
        OutboundFailure::Timeout => RequestError::Timeout { peer },
        OutboundFailure::DialFailure | OutboundFailure::ConnectionClosed => {
            RequestError::Unreachable { peer, detail: error.to_string() }
        }
        OutboundFailure::UnsupportedProtocols | OutboundFailure::Io(_) => {
            RequestError::Protocol { peer, detail: error.to_string() }
        }
    }
}
