//! What the dispatcher remembers in its key-value store between requests (Spin keeps nothing in
//! an instance): which worker a custom domain goes to, and whether a name is a deployed remote
//! worker, each with its own deadline. Keys start with the namespace, so two deployments can
//! share one store (one Redis) without reading each other's answers.
//!
//! Found answers are kept under the name itself: there are only as many as the database has
//! rows. "Not found" answers are what unauthenticated clients can create at will (any host,
//! any name), so they are kept in [`ABSENT_SLOTS`] slots chosen by a hash of the name, each
//! holding the name it answers for: the store holds at most that many of them, whatever a
//! client sends, and a new name only takes an old one's slot.

use crate::pipeline::worker_name::WorkerName;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A custom domain → the worker serving it.
    CustomDomain,
    /// A worker name → whether it is deployed as a remote worker.
    RemoteWorker,
    /// The last database check of `/health/detailed`.
    HealthCheck,
    /// A worker name → its row of `worker_limits` (`crate::limits::overrides`).
    WorkerLimits,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::CustomDomain => "custom-domain",
            Kind::RemoteWorker => "remote-worker",
            Kind::HealthCheck => "health-check",
            Kind::WorkerLimits => "worker-limits",
        }
    }
}

/// `<namespace>:<kind>:v1:<name>`: where a found answer is kept.
pub fn key(namespace: &str, kind: Kind, name: &str) -> String {
    [namespace, ":", kind.as_str(), ":v1:", name].concat()
}

/// How many "not found" answers of each kind the store holds at most.
pub const ABSENT_SLOTS: u64 = 4096;

/// `<namespace>:<kind>-absent:v1:<slot>`: where a "not found" answer for `name` is kept.
pub fn absent_key(namespace: &str, kind: Kind, name: &str) -> String {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same name maps to the same slot in every instance.
    let mut hasher = std::hash::DefaultHasher::new();
    name.hash(&mut hasher);
    let slot = hasher.finish() % ABSENT_SLOTS;
    [namespace, ":", kind.as_str(), "-absent:v1:", &slot.to_string()].concat()
}

/// A "not found" answer: for `name` (the slot may have held another before), until
/// `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsentEntry {
    pub name: String,
    pub expires_at: u64,
}

impl AbsentEntry {
    /// `<expires_at> <name>`.
    pub fn encode(&self) -> Vec<u8> {
        [self.expires_at.to_string().as_str(), " ", &self.name]
            .concat()
            .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<AbsentEntry> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (expires_at, name) = text.split_once(' ')?;
        Some(AbsentEntry {
            name: name.to_string(),
            expires_at: expires_at.parse().ok()?,
        })
    }

    /// Whether this answers for `name` now.
    pub fn answers(&self, name: &str, now: u64) -> bool {
        self.name == name && now < self.expires_at
    }
}

/// An answer and when it expires (Unix seconds); the key-value store has no expiry of its own.
/// `worker` is `None` for "no such domain" or "not deployed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub worker: Option<WorkerName>,
    pub expires_at: u64,
}

impl CacheEntry {
    /// `<expires_at> <worker>`, or `<expires_at> -` for a negative answer.
    pub fn encode(&self) -> Vec<u8> {
        let worker = self.worker.as_ref().map_or("-", WorkerName::as_str);
        [self.expires_at.to_string().as_str(), " ", worker]
            .concat()
            .into_bytes()
    }

    /// The entry, if it is one the dispatcher wrote for this configuration. Anything else (bytes
    /// that do not parse, a name that is not a valid, unreserved worker) is a miss: the cache
    /// only saves queries, it never decides a route on its own.
    pub fn decode(bytes: &[u8], reserved: &[String]) -> Option<CacheEntry> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (expires_at, worker) = text.split_once(' ')?;
        let expires_at = expires_at.parse().ok()?;
        let worker = match worker {
            "-" => None,
            name => {
                let parsed = WorkerName::parse(name, reserved).ok()?;
                // Only the canonical (lowercase) form the dispatcher writes.
                if parsed.as_str() != name {
                    return None;
                }
                Some(parsed)
            }
        };
        Some(CacheEntry { worker, expires_at })
    }

    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: &str) -> Option<WorkerName> {
        Some(WorkerName::parse(name, &[]).unwrap())
    }

    #[test]
    fn entries_round_trip_and_expire() {
        let hit = CacheEntry {
            worker: worker("hello"),
            expires_at: 100,
        };
        let miss = CacheEntry {
            worker: None,
            expires_at: 50,
        };
        assert_eq!(CacheEntry::decode(&hit.encode(), &[]), Some(hit.clone()));
        assert_eq!(CacheEntry::decode(&miss.encode(), &[]), Some(miss.clone()));
        assert!(hit.is_fresh(99) && !hit.is_fresh(100));
    }

    #[test]
    fn anything_the_dispatcher_would_not_write_is_a_miss() {
        for junk in [
            &b""[..],
            b"x y",
            b"100",
            b"100 bad_name",
            b"100 Hello",
            b"100 admin",
            b"100 billing",
            b"-1 hello",
            &[0xff, 0x20, 0x41],
        ] {
            assert_eq!(CacheEntry::decode(junk, &["billing".into()]), None, "{junk:?}");
        }
    }

    #[test]
    fn absent_answers_share_a_bounded_number_of_slots() {
        let mut slots = std::collections::HashSet::new();
        for i in 0..20_000 {
            let key = absent_key("prod", Kind::CustomDomain, &format!("random-{i}.example.com"));
            assert!(key.starts_with("prod:custom-domain-absent:v1:"), "{key}");
            slots.insert(key);
        }
        assert!(slots.len() as u64 <= ABSENT_SLOTS);
        assert!(slots.len() as u64 > ABSENT_SLOTS / 2, "names spread over the slots");
        assert_eq!(
            absent_key("prod", Kind::CustomDomain, "a.example.com"),
            absent_key("prod", Kind::CustomDomain, "a.example.com")
        );
        let entry = AbsentEntry {
            name: "a.example.com".into(),
            expires_at: 10,
        };
        let decoded = AbsentEntry::decode(&entry.encode()).unwrap();
        assert!(decoded.answers("a.example.com", 9));
        assert!(!decoded.answers("a.example.com", 10));
        assert!(
            !decoded.answers("b.example.com", 9),
            "a slot answers for its own name only"
        );
    }

    #[test]
    fn keys_are_namespaced() {
        assert_eq!(
            key("prod", Kind::CustomDomain, "shop.example.com"),
            "prod:custom-domain:v1:shop.example.com"
        );
        assert_ne!(key("a", Kind::RemoteWorker, "x"), key("b", Kind::RemoteWorker, "x"));
    }
}
