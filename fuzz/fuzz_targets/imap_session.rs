//! The IMAP connection loop (framing, literals, imap-codec, the session)
//! fed arbitrary client bytes over an in-memory pipe, against the
//! in-memory backend (alice's INBOX holds two messages). The first byte
//! picks the peer and how the rest is cut into reads. No panic; the output
//! stays within the bound.
#![no_main]

use epost_gateway::fuzzing::{self, Peer, output_bound};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&setup, bytes)) = input.split_first() else { return };
    let peer = if setup & 1 == 0 { Peer::Loopback } else { Peer::Remote };
    let read = 1 + usize::from(setup >> 1) * 8;
    let reads: Vec<Vec<u8>> = bytes.chunks(read).map(<[u8]>::to_vec).collect();
    let bound = output_bound(bytes);
    let transcript = fuzzing::imap(peer, &reads, bound);
    assert!(transcript.output.len() <= bound, "unbounded output");
    assert!(transcript.output.starts_with(b"* OK "));
});
