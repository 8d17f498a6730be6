//! The POP3 session fed arbitrary client bytes against the in-memory
//! backend (alice's INBOX holds two messages). The first byte picks the
//! peer and how the rest is cut into reads. No panic; the output stays
//! within the bound and ends with a whole line.
#![no_main]

use epost_gateway::fuzzing::{self, Peer, output_bound};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&setup, bytes)) = input.split_first() else { return };
    let peer = if setup & 1 == 0 { Peer::Loopback } else { Peer::Remote };
    let read = 1 + usize::from(setup >> 1) * 8;
    let reads: Vec<Vec<u8>> = bytes.chunks(read).map(<[u8]>::to_vec).collect();
    let transcript = fuzzing::pop3(peer, &reads);
    assert!(transcript.output.len() <= output_bound(bytes), "unbounded output");
    assert!(transcript.output.starts_with(b"+OK ") && transcript.output.ends_with(b"\r\n"));
});
