//! What the dispatcher remembers in its key-value store between requests (Spin keeps nothing in
//! an instance): which worker a custom domain goes to, and whether a name is a deployed remote
//! worker, each with its own deadline. Keys start with the namespace, so two deployments can
//! share one store (one Redis) without reading each other's answers.

use crate::pipeline::worker_name::WorkerName;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A custom domain → the worker serving it.
    CustomDomain,
    /// A worker name → whether it is deployed as a remote worker.
    RemoteWorker,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::CustomDomain => "custom-domain",
            Kind::RemoteWorker => "remote-worker",
        }
    }
}

/// `<namespace>:<kind>:v1:<name>`.
pub fn key(namespace: &str, kind: Kind, name: &str) -> String {
    [namespace, ":", kind.as_str(), ":v1:", name].concat()
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
    fn keys_are_namespaced() {
        assert_eq!(
            key("prod", Kind::CustomDomain, "shop.example.com"),
            "prod:custom-domain:v1:shop.example.com"
        );
        assert_ne!(key("a", Kind::RemoteWorker, "x"), key("b", Kind::RemoteWorker, "x"));
    }
}
