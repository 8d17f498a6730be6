//! Fragment decoding and verification: no panic; an accepted fragment is
//! canonical, and one that verifies carries data matching its own hash.
#![no_main]

use epost_types::fragment::Fragment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(fragment) = Fragment::decode(bytes) else { return };
    assert_eq!(fragment.encode(), bytes, "a non-canonical fragment was accepted");
    if fragment.verify().is_ok() {
        let own = fragment.hashes[usize::from(fragment.index)];
        assert_eq!(own, epost_types::hash::sha256(&fragment.data));
    }
});
