//! Named keyspaces: each owner of stored data has a tree of its own (as
//! Garage's `db.open_tree("name")`), with its own expiry index and its own
//! size limits, instead of tag bytes shared in one table.
//!
//! A keyspace is a constant declared by its owner; the node lists all of
//! them in one place and hands the list to [`crate::Store::open`], which
//! creates every tree before the first read.

/// How a second put of the same key behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Content-addressed values: a second put keeps the stored bytes and
    /// moves the lease to the later of the two. Counted (entries and bytes)
    /// for status and metrics.
    Immutable,
    /// A put overwrites value and lease.
    Mutable,
}

/// A named keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Keyspace {
    name: &'static str,
    expiry: &'static str,
    kind: Kind,
    max_key: usize,
    max_value: usize,
    sweep: bool,
}

impl Keyspace {
    /// A keyspace called `name` whose expiry index is the tree `expiry`.
    /// Use [`crate::keyspace!`], which names the index after the keyspace;
    /// this form exists for trees whose names predate that rule.
    pub const fn with_index(
        name: &'static str,
        expiry: &'static str,
        kind: Kind,
        max_key: usize,
        max_value: usize,
    ) -> Self {
        Self { name, expiry, kind, max_key, max_value, sweep: true }
    }

    /// The same keyspace, left out of [`crate::Store::sweep`]: its owner
    /// removes expired entries itself (it keeps an index of them in memory),
    /// or an entry's expiry is a lease end the owner acts on rather than a
    /// time after which the entry is garbage.
    pub const fn unswept(mut self) -> Self {
        self.sweep = false;
        self
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) const fn expiry_name(&self) -> &'static str {
        self.expiry
    }

    pub const fn kind(&self) -> Kind {
        self.kind
    }

    pub const fn max_key(&self) -> usize {
        self.max_key
    }

    pub const fn max_value(&self) -> usize {
        self.max_value
    }

    /// Whether [`crate::Store::sweep`] collects its expired entries.
    pub const fn swept(&self) -> bool {
        self.sweep
    }
}

/// Declares a [`Keyspace`] whose expiry index is named `<name>.expiry`:
/// `keyspace!("kad_records", Mutable, key: 64, value: 8192)`.
#[macro_export]
macro_rules! keyspace {
    ($name:literal, $kind:ident, key: $key:expr, value: $value:expr) => {
        $crate::Keyspace::with_index(
            $name,
            concat!($name, ".expiry"),
            $crate::Kind::$kind,
            $key,
            $value,
        )
    };
}
