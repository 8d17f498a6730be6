//! The SMTP session fed arbitrary client bytes against the in-memory
//! backend. The first byte picks MX or submission, loopback or remote,
//! and how the rest is cut into reads. No panic; every line the server
//! writes is a reply line; the output stays within the bound.
#![no_main]

use epost_gateway::fuzzing::{self, Peer, output_bound};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&setup, bytes)) = input.split_first() else { return };
    let peer = if setup & 1 == 0 { Peer::Loopback } else { Peer::Remote };
    let read = 1 + usize::from(setup >> 2) * 8;
    let reads: Vec<Vec<u8>> = bytes.chunks(read).map(<[u8]>::to_vec).collect();
    let transcript = fuzzing::smtp(setup & 2 != 0, peer, &reads);
    assert!(transcript.output.len() <= output_bound(bytes), "unbounded output");
    for line in transcript.output.split_inclusive(|&b| b == b'\n') {
        let reply = line.len() >= 6
            && line[..3].iter().all(u8::is_ascii_digit)
            && (line[3] == b' ' || line[3] == b'-')
            && line.ends_with(b"\r\n");
        assert!(reply, "not a reply line: {:?}", String::from_utf8_lossy(line));
    }
});
