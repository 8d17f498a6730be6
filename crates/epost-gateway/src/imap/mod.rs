//! IMAP4rev1 (RFC 3501) and, after ENABLE IMAP4rev2, IMAP4rev2 (RFC 9051;
//! what changes is listed in [`rev2`]), with IDLE, UIDPLUS, MOVE,
//! LITERAL+, NAMESPACE, ID, UNSELECT, SPECIAL-USE, STARTTLS, STATUS=SIZE,
//! SORT and THREAD, ESEARCH, ESORT,
//! CONTEXT=SEARCH and CONTEXT=SORT (live results and PARTIAL, RFC 5267),
//! PARTIAL (windows from either end in SEARCH, SORT and FETCH, RFC 9394),
//! SEARCHRES, BINARY, COMPRESS=DEFLATE, ENABLE, CONDSTORE, QRESYNC,
//! MULTIAPPEND and CATENATE, LIST-EXTENDED and LIST-STATUS, QUOTA
//! (read-only) and STATUS=SIZE.
//!
//! Commands are parsed and responses written with `imap-codec`, after
//! [`lift`] took out the syntax it does not know (APPEND, whose
//! MULTIAPPEND and CATENATE forms it cannot read, is read by
//! [`multiappend`] instead); the
//! [`session::Session`] is a state machine fed decoded commands, one file
//! per command family, and [`conn`] is the thin tokio loop around it
//! (framing, literals, TLS upgrade, timeouts). Nothing here may change a
//! message's bytes: BODY[] is exactly what the backend stored.

mod append;
mod auth;
mod binary;
mod catenate;
mod compress;
mod condstore;
mod conn;
mod contexts;
mod copy;
#[cfg(test)]
mod corpus;
mod cte;
mod deflate;
mod enable;
mod esearch;
mod expunge;
mod fetch;
mod frame;
mod idle;
mod imapurl;
mod lift;
mod listext;
mod mailbox;
mod mime;
mod multiappend;
mod partial;
mod qresync;
mod quota;
mod recent;
mod rev2;
mod search;
mod searchres;
mod selected;
mod session;
mod sort;
mod store;
mod subject;
mod summary;
mod thread;
mod utf7;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::backend::MailBackend;
use crate::context::Shared;

pub(crate) use recent::RecentClaims;

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use conn::serve_stream;

/// Serves one IMAP connection to its end.
pub(crate) async fn serve<B: MailBackend>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    conn::run(stream, peer, shared).await
}

/// Serves one connection of the implicit-TLS port, its handshake done.
pub(crate) async fn serve_tls<B: MailBackend>(
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    conn::run_tls(stream, peer, shared).await
}
