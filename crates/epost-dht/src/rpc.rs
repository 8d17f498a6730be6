//! Serving a request-response [`Protocol`] from the event loop, the same
//! way for every protocol. A client's request goes out and its answer or
//! failure comes back on the caller's oneshot. A peer's request goes into
//! the protocol's bounded queue for its service; when that queue is full
//! or closed the overlay answers at once with the protocol's refusal
//! ([`Protocol::unavailable`]), so the loop never blocks and the peer never
//! waits for a service that will not answer.

use std::collections::HashMap;
use std::fmt;

use libp2p::PeerId;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;
use tracing::debug;

use crate::client::RequestError;
use crate::protocol::{Codec, Protocol, Unavailable};

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
}

impl<P: Protocol> Endpoint<P> {
    pub(crate) fn new(inbound: mpsc::Sender<InboundRequest<P>>) -> Self {
        Self { outstanding: HashMap::new(), inbound }
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

    pub(crate) fn on_event(
        &mut self,
        behaviour: &mut Behaviour<P>,
        event: request_response::Event<P::Request, P::Response>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
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
