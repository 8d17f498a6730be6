//! Manifest decoding: chunk-tree manifests (validated on decode) and
//! message manifests (pieces must add up to the size, a stored structure
//! must fit the message). No panic; what is accepted is canonical and
//! keeps its rules.
#![no_main]

use epost_types::chunk::Manifest;
use epost_types::mail::MessageManifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(manifest) = Manifest::decode(bytes) {
        assert_eq!(manifest.encode(), bytes, "a non-canonical manifest was accepted");
        assert_eq!(manifest.validate(), Ok(()));
    }
    if let Ok(message) = MessageManifest::decode(bytes) {
        assert_eq!(message.encode(), bytes, "a non-canonical message manifest was accepted");
        let sum = message.pieces.iter().try_fold(0u64, |s, p| s.checked_add(p.len()));
        assert_eq!(sum, Some(message.size));
        if let Some(Ok(structure)) = message.structure() {
            assert_eq!(structure.check(message.size), Ok(()));
        }
    }
});
