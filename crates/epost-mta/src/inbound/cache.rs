//! A bounded cache of DNS TXT answers for the inbound checks (SPF, DKIM
//! keys, DMARC records): mail from one domain comes in bursts. Expired
//! entries are never served; when full, expired entries are swept, and
//! if none were, everything is dropped (a cache, not a store).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mail_auth::{ResolverCache, Txt};

/// Most names kept.
const MAX_ENTRIES: usize = 10_000;

/// TXT answers by fully qualified name.
#[derive(Default)]
pub struct TxtCache {
    entries: Mutex<HashMap<Box<str>, (Txt, Instant)>>,
}

impl TxtCache {
    /// Puts an answer in for `ttl` (a test's or a static DNS's records).
    pub fn prime(&self, name: &str, txt: impl Into<Txt>, ttl: Duration) {
        let mut name = name.to_ascii_lowercase();
        if !name.ends_with('.') {
            name.push('.');
        }
        self.insert(name.into_boxed_str(), txt.into(), Instant::now() + ttl);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, (Txt, Instant)>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ResolverCache<Box<str>, Txt> for TxtCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let (txt, until) = entries.get(name)?;
        (*until > Instant::now()).then(|| txt.clone())
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(txt, _)| txt)
    }

    fn insert(&self, name: Box<str>, txt: Txt, valid_until: Instant) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&name) {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(name, (txt, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::spf::Spf;

    #[test]
    fn primed_entries_are_served_until_they_expire_and_the_size_is_bounded() {
        let cache = TxtCache::default();
        let spf = Spf::parse(b"v=spf1 -all").unwrap();
        cache.prime("Example.ORG", spf.clone(), Duration::from_secs(60));
        assert!(cache.get("example.org.").is_some());
        cache.prime("gone.test", spf.clone(), Duration::ZERO);
        assert!(cache.get("gone.test.").is_none());
        for i in 0..MAX_ENTRIES + 5 {
            cache.prime(&format!("n{i}.test"), spf.clone(), Duration::from_secs(60));
        }
        assert!(cache.lock().len() <= MAX_ENTRIES);
    }
}
