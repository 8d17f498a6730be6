//! Who may sign a notification: the certified key of the address it is
//! from, or, for `postmaster@` the recipient's domain, a node that the
//! realm's current MX record names (mail its MX took from the internet).

use epost_types::notify::{Notification, OpenNotificationError};
use epost_types::sign::VerifyingKey;

use crate::identity::{Identity, IdentityError};

/// Why a notification's sender was not believed.
#[derive(Debug, thiserror::Error)]
pub(super) enum SenderError {
    #[error("the sender's key cannot be looked up")]
    Lookup(#[source] IdentityError),
    #[error("the signer may not speak for the sender")]
    Forged(#[source] OpenNotificationError),
}

impl SenderError {
    /// The overlay could not be asked now: the notification stays with
    /// its holders and the next pull tries again (dropping it would lose
    /// mail to a passing partition).
    pub(super) fn is_temporary(&self) -> bool {
        matches!(
            self,
            SenderError::Lookup(
                IdentityError::Unreachable { .. } | IdentityError::MxUnreachable { .. }
            )
        )
    }
}

/// Checks that `signer` (what the notification opened with) may speak
/// for its `from`. A relayed notification is first tried as a user's
/// (a realm that hosts a real postmaster) and then against the MX record.
pub(super) async fn check(
    identity: &Identity,
    notification: &Notification,
    signer: &VerifyingKey,
) -> Result<(), SenderError> {
    let by_certificate = match identity.lookup_certificate(&notification.from).await {
        Ok(cert) => notification.check_sender(signer, &cert).map_err(SenderError::Forged),
        Err(e) => Err(SenderError::Lookup(e)),
    };
    if by_certificate.is_ok() || !notification.is_relayed() {
        return by_certificate;
    }
    let mx = identity.lookup_mx(notification.to.domain()).await.map_err(SenderError::Lookup)?;
    notification.check_relay(signer, &mx).map_err(SenderError::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_overlay_that_cannot_be_asked_is_temporary() {
        let address: epost_types::address::Address = "a@example.org".parse().unwrap();
        let domain = "example.org".to_owned();
        let why = "no peer answered".to_owned();
        let cases = [
            (IdentityError::Unreachable { address: address.clone(), why: why.clone() }, true),
            (IdentityError::MxUnreachable { domain: domain.clone(), why }, true),
            (IdentityError::NoCertificate { address: address.clone() }, false),
            (IdentityError::NoMxRecord { domain }, false),
        ];
        for (error, temporary) in cases {
            let shown = error.to_string();
            assert_eq!(SenderError::Lookup(error).is_temporary(), temporary, "{shown}");
        }
        let forged = OpenNotificationError::SenderNotCertified { from: address };
        assert!(!SenderError::Forged(forged).is_temporary());
    }
}
