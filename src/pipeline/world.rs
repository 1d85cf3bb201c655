//! What the pipeline asks of the world outside: a cache, a database, the shared store of limits,
//! a clock and an operator to warn. The glue implements it with Spin's key-value stores,
//! PostgreSQL or SQLite and WASI's clock; the tests in memory, counting every call. The phases
//! decide; only these calls reach out.

use crate::error::DispatchError;
use crate::limits::overrides::Row;
use crate::limits::store::SharedStore;

/// The key-value cache of database answers (custom domains, remote members, limit overrides).
/// A cache that cannot be read or written only costs queries, so these never fail.
pub trait CacheStore {
    fn get(&mut self, key: &str) -> Option<Vec<u8>>;
    fn set(&mut self, key: &str, value: &[u8]);
    fn delete(&mut self, key: &str);
}

/// The database could not answer; why is for the operator's log, never for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// Libra's database (the `project` table) and the dispatcher's own (`worker_limits`).
pub trait Database {
    /// The stored `production_deploy_url` of the project serving custom domain `host`.
    fn custom_domain(&mut self, host: &str) -> Result<Option<String>, Unavailable>;
    /// Whether an active project's deploy URL is one of `urls`.
    fn is_deployed(&mut self, urls: &[String; 2]) -> Result<bool, Unavailable>;
    /// `worker`'s row of `worker_limits`, empty when it has none (or there is no table).
    fn worker_limits(&mut self, worker: &str) -> Result<Row, Unavailable>;
}

/// Something the operator should know that does not change the request's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A custom domain's `production_deploy_url` is not `<worker>.<base_domain>`: not followed.
    DeployUrlNotAWorker { host: String, reason: String },
    /// A `worker_limits` row does not parse: ignored.
    InvalidLimitRow { worker: String, problem: String },
    /// `worker_limits` could not be read: the last known row, or the settings, apply.
    LimitRowsUnreadable { worker: String, cause: String },
    /// The database failed a lookup (the request gets `503 database_unavailable`).
    DatabaseFailed { cause: String },
    /// A remote worker could not be reached, or failed: what the host said.
    RemoteWorkerFailed { worker: String, cause: String },
}

/// The world as the pipeline uses it.
pub trait World {
    type Cache: CacheStore;
    type Database: Database;
    type Store: SharedStore;

    fn cache(&mut self) -> &mut Self::Cache;
    /// The database, opened at its first use (reading `postgres_url`), each query bounded by
    /// `timeout_ms`.
    fn database(&mut self, timeout_ms: u64) -> Result<&mut Self::Database, DispatchError>;
    /// The shared store of rate limits and breakers.
    fn store(&mut self) -> &mut Self::Store;
    /// Unix time in milliseconds: the wall clock every replica shares.
    fn now_ms(&mut self) -> u64;
    fn warn(&mut self, warning: Warning);
}

/// The world in memory, for tests: a map for a cache, a table of domains, members and limit
/// rows for a database, a [`MemoryStore`](crate::limits::store::MemoryStore), a clock that
/// stands still unless moved, and every call counted.
pub mod memory {
    use std::collections::BTreeMap;

    use crate::error::DispatchError;
    use crate::limits::overrides::Row;
    use crate::limits::store::{Encoding, MemoryStore};
    use crate::pipeline::world::{CacheStore, Database, Unavailable, Warning, World};

    #[derive(Debug, Default)]
    pub struct MemoryCache {
        pub values: BTreeMap<String, Vec<u8>>,
        pub calls: usize,
    }

    impl CacheStore for MemoryCache {
        fn get(&mut self, key: &str) -> Option<Vec<u8>> {
            self.calls += 1;
            self.values.get(key).cloned()
        }

        fn set(&mut self, key: &str, value: &[u8]) {
            self.calls += 1;
            self.values.insert(key.to_string(), value.to_vec());
        }

        fn delete(&mut self, key: &str) {
            self.calls += 1;
            self.values.remove(key);
        }
    }

    #[derive(Debug, Default)]
    pub struct MemoryDatabase {
        /// Custom domain → `production_deploy_url`.
        pub domains: BTreeMap<String, String>,
        /// Active projects' `production_deploy_url`s.
        pub deployed: Vec<String>,
        pub limits: BTreeMap<String, Row>,
        /// Every query fails while this is set.
        pub failing: bool,
        pub queries: usize,
    }

    impl MemoryDatabase {
        fn query(&mut self) -> Result<(), Unavailable> {
            self.queries += 1;
            if self.failing {
                return Err(Unavailable("the test database is down".into()));
            }
            Ok(())
        }
    }

    impl Database for MemoryDatabase {
        fn custom_domain(&mut self, host: &str) -> Result<Option<String>, Unavailable> {
            self.query()?;
            Ok(self.domains.get(host).cloned())
        }

        fn is_deployed(&mut self, urls: &[String; 2]) -> Result<bool, Unavailable> {
            self.query()?;
            Ok(self.deployed.iter().any(|url| urls.contains(url)))
        }

        fn worker_limits(&mut self, worker: &str) -> Result<Row, Unavailable> {
            self.query()?;
            Ok(self.limits.get(worker).cloned().unwrap_or_default())
        }
    }

    #[derive(Debug)]
    pub struct MemoryWorld {
        pub cache: MemoryCache,
        pub database: MemoryDatabase,
        /// How many times the database was opened (on Spin: `postgres_url` read).
        pub opened: usize,
        pub store: MemoryStore,
        pub now_ms: u64,
        pub warnings: Vec<Warning>,
    }

    impl Default for MemoryWorld {
        fn default() -> MemoryWorld {
            MemoryWorld {
                cache: MemoryCache::default(),
                database: MemoryDatabase::default(),
                opened: 0,
                store: MemoryStore::new(Encoding::Sqlite),
                now_ms: 1_800_000_000_000,
                warnings: Vec::new(),
            }
        }
    }

    impl MemoryWorld {
        /// Calls to anything outside the request: the cache, the database, the shared store.
        pub fn calls(&self) -> usize {
            self.cache.calls + self.database.queries + self.opened + self.store.calls
        }
    }

    impl World for MemoryWorld {
        type Cache = MemoryCache;
        type Database = MemoryDatabase;
        type Store = MemoryStore;

        fn cache(&mut self) -> &mut MemoryCache {
            &mut self.cache
        }

        fn database(&mut self, _timeout_ms: u64) -> Result<&mut MemoryDatabase, DispatchError> {
            self.opened += 1;
            Ok(&mut self.database)
        }

        fn store(&mut self) -> &mut MemoryStore {
            &mut self.store
        }

        fn now_ms(&mut self) -> u64 {
            self.now_ms
        }

        fn warn(&mut self, warning: Warning) {
            self.warnings.push(warning);
        }
    }
}
