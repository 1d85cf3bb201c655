//! The pipeline's world on Spin: the key-value cache and shared store, the database
//! (PostgreSQL when `postgres_url` is set, else the built-in SQLite one), the admin token, the
//! wall clock and the log. Each is reached at its first use.

use super::kv::{Cache, Shared};
use super::postgres::Postgres;
use super::sqlite::{Schema, Sqlite};
use super::{log, settings};
use crate::error::DispatchError;
use crate::limits::overrides::Row;
use crate::pipeline::world::{Database, Unavailable, Warning, World};

/// The database to ask: PostgreSQL when `postgres_url` is set, else the embedded SQLite one.
/// A `postgres_url` that cannot be read fails closed: never the embedded database instead,
/// which would answer for a different set of domains.
pub enum Backend {
    Postgres(Postgres),
    Sqlite(Sqlite),
}

impl Backend {
    /// Reads `postgres_url` (a secret, so only when a query is about to run) and adds the
    /// dispatcher's timeouts to it.
    pub fn open(timeout_ms: u64) -> Result<Backend, DispatchError> {
        let raw = settings::single("postgres_url")?;
        if raw.is_empty() {
            return Ok(Backend::Sqlite(Sqlite));
        }
        let url = crate::postgres_url::with_timeouts(&raw, timeout_ms).map_err(|problem| {
            DispatchError::Configuration(crate::config::ConfigError {
                variable: "postgres_url",
                problem: problem.0.to_string(),
            })
        })?;
        Ok(Backend::Postgres(Postgres::new(url)))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) if cfg!(feature = "sqlite") => "sqlite",
            Backend::Sqlite(_) => "none",
        }
    }

    /// One real round trip, for `/health/detailed`.
    pub fn ping(&self) -> Result<Schema, Unavailable> {
        match self {
            Backend::Postgres(postgres) => postgres.ping().map(|()| Schema::Present),
            Backend::Sqlite(sqlite) => sqlite.ping(),
        }
    }
}

impl Database for Backend {
    fn custom_domain(&mut self, host: &str) -> Result<Option<String>, Unavailable> {
        match self {
            Backend::Postgres(database) => database.custom_domain(host),
            Backend::Sqlite(database) => database.custom_domain(host),
        }
    }

    fn is_deployed(&mut self, urls: &[String; 2]) -> Result<bool, Unavailable> {
        match self {
            Backend::Postgres(database) => database.is_deployed(urls),
            Backend::Sqlite(database) => database.is_deployed(urls),
        }
    }

    fn worker_limits(&mut self, worker: &str) -> Result<Row, Unavailable> {
        match self {
            Backend::Postgres(database) => database.worker_limits(worker),
            Backend::Sqlite(database) => database.worker_limits(worker),
        }
    }
}

pub struct SpinWorld<'a> {
    request_id: &'a str,
    cache: Cache,
    database: Option<Backend>,
    shared: Shared,
}

impl<'a> SpinWorld<'a> {
    pub fn new(request_id: &'a str) -> SpinWorld<'a> {
        SpinWorld {
            request_id,
            cache: Cache::default(),
            database: None,
            shared: Shared::default(),
        }
    }
}

impl World for SpinWorld<'_> {
    type Cache = Cache;
    type Database = Backend;
    type Store = Shared;

    fn cache(&mut self) -> &mut Cache {
        &mut self.cache
    }

    fn database(&mut self, timeout_ms: u64) -> Result<&mut Backend, DispatchError> {
        if self.database.is_none() {
            self.database = Some(Backend::open(timeout_ms)?);
        }
        Ok(self.database.as_mut().expect("just opened"))
    }

    fn store(&mut self) -> &mut Shared {
        &mut self.shared
    }

    fn now_ms(&mut self) -> u64 {
        now_ms()
    }

    fn warn(&mut self, warning: Warning) {
        log::warn(self.request_id, &warning);
    }
}

/// The wall clock in Unix milliseconds: windows, breakers and cache deadlines must mean the same
/// instant on every replica, which a monotonic clock does not.
pub fn now_ms() -> u64 {
    let now = wasi::clocks::wall_clock::now();
    now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
}
