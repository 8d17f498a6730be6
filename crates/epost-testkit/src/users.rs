//! Users for mail and log tests: a realm made on node 0 and trusted by
//! every running node, and its users hosted where a test wants them.

use std::str::FromStr;

use epost_node::identity::IdentityError;
use epost_types::address::Address;
use epost_types::sign::VerifyingKey;

use crate::TestNet;

/// Why users could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("`{text}` is not an address")]
    Address {
        text: String,
        #[source]
        source: epost_types::address::AddressError,
    },
    #[error("the realm's key does not parse")]
    RealmKey(#[source] epost_types::text::Base32Error),
}

/// `text` as an address; a test's literal that is not one is a broken test.
#[allow(clippy::expect_used, reason = "test literals; a bad one is a broken test")]
pub fn addr(text: &str) -> Address {
    Address::from_str(text).expect("a test address")
}

impl TestNet {
    /// Makes realm `domain` on `node`, trusted for `domain` by every
    /// running node; its public key.
    pub fn realm_on(&self, node: usize, domain: &str) -> Result<VerifyingKey, UsersError> {
        let realm = self.node(node).identity.realm_init(domain)?;
        let key = VerifyingKey::from_str(&realm.key).map_err(UsersError::RealmKey)?;
        for i in self.running() {
            self.node(i).identity.trust(key, Some(domain))?;
        }
        Ok(key)
    }

    /// Makes realm `domain` on node 0 ([`Self::realm_on`]) and hosts each
    /// `(name, node)` as `name@domain` on that node (added on node 0, then
    /// moved by export and import).
    pub async fn host_users(
        &self,
        domain: &str,
        hosted: &[(&str, usize)],
    ) -> Result<Vec<Address>, UsersError> {
        self.realm_on(0, domain)?;
        let mut addresses = Vec::with_capacity(hosted.len());
        for (name, node) in hosted {
            let text = format!("{name}@{domain}");
            let address =
                Address::from_str(&text).map_err(|source| UsersError::Address { text, source })?;
            self.node(0).identity.add_user(address.clone(), None).await?;
            if *node != 0 {
                let exported = self.node(0).identity.export_user(&address, None)?;
                self.node(*node).identity.import_user(&exported, None, None).await?;
                self.node(0).identity.remove_user(&address)?;
            }
            addresses.push(address);
        }
        Ok(addresses)
    }

    /// `name@name.test` for each `(name, node)`, each under a realm of its
    /// own made on that node and trusted everywhere, hosted there.
    pub async fn host_in_own_realms(
        &self,
        hosted: &[(&str, usize)],
    ) -> Result<Vec<Address>, UsersError> {
        for (name, node) in hosted {
            self.realm_on(*node, &format!("{name}.test"))?;
        }
        let mut addresses = Vec::with_capacity(hosted.len());
        for (name, node) in hosted {
            let address = addr(&format!("{name}@{name}.test"));
            self.node(*node).identity.add_user(address.clone(), None).await?;
            addresses.push(address);
        }
        Ok(addresses)
    }
}
