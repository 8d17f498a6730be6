//! The stored value format: `version (1) || expires (u64 BE) || payload`.
//! A value that is too short or of an unknown version reads as `Corrupt`.

use crate::error::EngineError;

pub(crate) const VERSION: u8 = 1;
pub(crate) const HEADER: usize = 9;

pub(crate) fn encode(expires: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(VERSION);
    out.extend_from_slice(&expires.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a stored value into (expires, payload).
pub(crate) fn decode(raw: &[u8]) -> Result<(u64, &[u8]), EngineError> {
    if raw.len() < HEADER {
        return Err(EngineError::Corrupt(format!(
            "stored value of {} bytes has no header",
            raw.len()
        )));
    }
    if raw[0] != VERSION {
        return Err(EngineError::Corrupt(format!("stored value has unknown version {}", raw[0])));
    }
    let mut expires = [0u8; 8];
    expires.copy_from_slice(&raw[1..HEADER]);
    Ok((u64::from_be_bytes(expires), &raw[HEADER..]))
}

/// Expiry-index key: `expires (u64 BE) || key`, so a range scan from the
/// start finds the oldest leases first.
pub(crate) fn expiry_key(expires: u64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(&expires.to_be_bytes());
    out.extend_from_slice(key);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let raw = encode(42, b"data");
        assert_eq!(decode(&raw).unwrap(), (42, &b"data"[..]));
        assert!(decode(&raw[..5]).is_err());
        let mut bad = raw.clone();
        bad[0] = 9;
        assert!(decode(&bad).is_err());
    }
}
