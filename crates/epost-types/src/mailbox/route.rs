//! Where a recipient's mail goes. It is decided once, when the recipient
//! is accepted (SMTP RCPT, the control API's send), and travels with the
//! message, so delivery does what was promised instead of deciding again.

use crate::address::Address;

/// Where mail for an address goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Hosted on this node: straight into the user's INBOX.
    Local,
    /// Certified in a trusted realm and hosted elsewhere: announced by a
    /// notification through the overlay.
    Remote,
    /// A trusted realm's domain, but no such user.
    Unknown,
    /// Not a domain of any realm trusted here: a smart host's business.
    Foreign,
}

impl Route {
    /// Whether the overlay delivers it (hosted here or elsewhere).
    pub fn is_ours(self) -> bool {
        matches!(self, Route::Local | Route::Remote)
    }
}

/// An accepted recipient and the route decided for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: Address,
    pub route: Route,
}

impl Recipient {
    pub fn new(address: Address, route: Route) -> Self {
        Self { address, route }
    }
}
