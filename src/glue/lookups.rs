//! Lookups in Libra's database, each behind the key-value cache: which worker a custom domain
//! goes to, and whether a name is a deployed remote worker. The database is PostgreSQL through
//! Spin's outbound-pg when `postgres_url` is set, else Spin's built-in SQLite database.

use spin_sdk::key_value::Store;

use super::settings;
use crate::cache::{self, AbsentEntry, CacheEntry};
use crate::config::{ConfigError, LookupConfig, MissSettings, Remote};
use crate::custom_domain;
use crate::error::DispatchError;
use crate::limits::overrides::{CachedOverride, Override};
use crate::membership;
use crate::pipeline::Context;
use crate::pipeline::worker_name::WorkerName;

/// One request's lookup settings, each part parsed from the request's settings the first time
/// the request needs it: a custom domain or remote worker found in the cache parses only the
/// namespace (and a remote one the template); the TTLs and the query timeout wait for a miss. So
/// an unusable TTL fails only the requests that miss the cache.
pub struct Lookups<'a> {
    ctx: Context<'a>,
    namespace: Option<String>,
    remote: Option<Result<Option<Remote>, ConfigError>>,
    misses: Option<MissSettings>,
}

impl<'a> Lookups<'a> {
    pub fn new(ctx: Context<'a>) -> Lookups<'a> {
        Lookups {
            ctx,
            namespace: None,
            remote: None,
            misses: None,
        }
    }

    pub fn ctx(&self) -> Context<'a> {
        self.ctx
    }

    pub fn namespace(&mut self) -> Result<&str, DispatchError> {
        if self.namespace.is_none() {
            self.namespace = Some(
                self.ctx
                    .config
                    .namespace()
                    .map_err(|problem| settings::invalid(self.ctx.request_id, &problem))?,
            );
        }
        Ok(self.namespace.as_deref().expect("just read"))
    }

    pub fn remote(&mut self) -> &Result<Option<Remote>, ConfigError> {
        self.remote.get_or_insert_with(|| self.ctx.config.remote())
    }

    fn misses(&mut self) -> Result<MissSettings, DispatchError> {
        if self.misses.is_none() {
            self.misses = Some(
                self.ctx
                    .config
                    .misses()
                    .map_err(|problem| settings::invalid(self.ctx.request_id, &problem))?,
            );
        }
        Ok(self.misses.expect("just read"))
    }
}

/// The database to ask: PostgreSQL when `postgres_url` is set (with the dispatcher's timeouts
/// added), else the embedded SQLite one.
pub struct Database {
    postgres_url: String,
}

/// Reads `postgres_url` (a secret, so only when a query is about to run). One that cannot be
/// read fails closed: never the embedded database instead, which would answer for a different
/// set of domains. One that is neither a URL nor key=value pairs is a configuration error.
pub fn database(ctx: Context, db_timeout_ms: u64) -> Result<Database, DispatchError> {
    let raw = super::settings::single(ctx.request_id, "postgres_url")?;
    if raw.is_empty() {
        return Ok(Database { postgres_url: raw });
    }
    let postgres_url = crate::postgres_url::with_timeouts(&raw, db_timeout_ms).map_err(|problem| {
        super::settings::invalid(
            ctx.request_id,
            &crate::config::ConfigError {
                variable: "postgres_url",
                problem: problem.0.to_string(),
            },
        )
    })?;
    Ok(Database { postgres_url })
}

impl Database {
    pub fn backend(&self) -> &'static str {
        database::backend(self)
    }

    pub fn ping(&self) -> Result<database::Schema, database::Unavailable> {
        database::ping(self)
    }
}

/// One real round trip to the database, for `/health/detailed`.
pub fn check_database(ctx: Context, lookups: &LookupConfig) -> crate::api::DatabaseCheck {
    let started = wasi::clocks::monotonic_clock::now();
    let (backend, status) = match database(ctx, lookups.misses.db_timeout_ms) {
        Ok(database) => (
            database.backend(),
            match database.ping() {
                Ok(database::Schema::Present) => "ok",
                Ok(database::Schema::NoTable) => "no_table",
                Err(_) => "error",
            },
        ),
        Err(_) => ("unknown", "error"),
    };
    let latency_ms = (wasi::clocks::monotonic_clock::now().saturating_sub(started) as f64 / 1e4).round() / 100.0;
    crate::api::DatabaseCheck {
        status,
        backend,
        latency_ms,
    }
}

/// [`check_database`], shared for [`crate::api::HEALTH_CHECK_TTL_S`] through the cache.
pub fn check_database_cached(ctx: Context, lookups: &LookupConfig) -> crate::api::DatabaseCheck {
    let store = Store::open_default().ok();
    let key = cache::key(&lookups.namespace, cache::Kind::HealthCheck, "database");
    let now = wasi::clocks::wall_clock::now().seconds;
    if let Some(check) = store
        .as_ref()
        .and_then(|store| store.get(&key).ok().flatten())
        .and_then(|bytes| crate::api::DatabaseCheck::decode(&bytes, now))
    {
        return check;
    }
    let check = check_database(ctx, lookups);
    if let Some(store) = store {
        let _ = store.set(&key, &check.encode(now + crate::api::HEALTH_CHECK_TTL_S));
    }
    check
}

/// The worker serving custom domain `host`, `None` if no verified, active project claims it.
pub fn custom_domain(lookups: &mut Lookups, host: &str) -> Result<Option<WorkerName>, DispatchError> {
    let ctx = lookups.ctx;
    cached(lookups, cache::Kind::CustomDomain, host, |database| {
        let Some(url) = database::custom_domain(host, database)? else {
            return Ok(None);
        };
        let config = ctx.config;
        match custom_domain::worker_from_deploy_url(&url, &config.base_domain, &config.reserved_names) {
            Ok(worker) => Ok(Some(worker)),
            Err(problem) => {
                super::log_warning(
                    ctx.request_id,
                    "custom domain not served: its production_deploy_url is not <worker>.<base_domain>",
                    serde_json::json!({ "host": host, "reason": format!("{problem:?}") }),
                );
                Ok(None)
            }
        }
    })
}

/// Whether `worker` is deployed as a remote worker: an active project's `production_deploy_url`
/// is its origin under the base domain.
pub fn is_deployed(lookups: &mut Lookups, worker: &WorkerName) -> Result<bool, DispatchError> {
    let ctx = lookups.ctx;
    let found = cached(lookups, cache::Kind::RemoteWorker, worker.as_str(), |database| {
        let urls = membership::deploy_urls(worker, &ctx.config.base_domain);
        Ok(database::is_deployed(&urls, database)?.then(|| worker.clone()))
    })?;
    Ok(found.is_some())
}

/// `worker`'s row of `worker_limits`, through the cache (found and not found alike, for the
/// TTLs of database answers). A row that does not parse is ignored, and cached as no row, so the
/// one warning comes once per TTL. A database that cannot answer leaves the worker with its last
/// known row (or the settings' limits when there is none), cached for a few seconds so an outage
/// costs a query per worker every few seconds, not one per request: the overrides must not take
/// down tenants that need no database.
pub fn limit_override(lookups: &mut Lookups, worker: &WorkerName) -> Result<Option<Override>, DispatchError> {
    let ctx = lookups.ctx;
    let store = Store::open_default().ok();
    let key = cache::key(lookups.namespace()?, cache::Kind::WorkerLimits, worker.as_str());
    let now = wasi::clocks::wall_clock::now().seconds;
    let cached = store
        .as_ref()
        .and_then(|store| store.get(&key).ok().flatten())
        .and_then(|bytes| CachedOverride::decode(&bytes));
    if let Some(entry) = cached.as_ref().filter(|entry| entry.is_fresh(now)) {
        return Ok(Some(entry.row).filter(|row| *row != Override::default()));
    }
    let misses = lookups.misses()?;
    let looked_up = database(ctx, misses.db_timeout_ms)
        .ok()
        .and_then(|database| database::worker_limits(worker.as_str(), &database).ok());
    let (row, ttl) = match looked_up {
        Some(row) => match row.parse() {
            Ok(parsed) if parsed == Override::default() => (parsed, misses.negative_ttl_s),
            Ok(parsed) => (parsed, misses.cache_ttl_s),
            Err(problem) => {
                super::log_warning(
                    ctx.request_id,
                    "a worker_limits row is invalid and ignored: the settings' limits apply",
                    serde_json::json!({ "worker": worker.as_str(), "problem": problem }),
                );
                (Override::default(), misses.cache_ttl_s)
            }
        },
        None => {
            let stale = cached.as_ref().map_or(Override::default(), |entry| entry.row);
            super::log_warning(
                ctx.request_id,
                "worker_limits cannot be read: the last known row (or the settings) applies",
                serde_json::json!({ "worker": worker.as_str() }),
            );
            (stale, crate::error::RETRY_AFTER_S)
        }
    };
    if let Some(store) = store {
        if ttl > 0 {
            let entry = CachedOverride {
                row,
                expires_at: now + ttl,
            };
            let _ = store.set(&key, &entry.encode());
        } else if cached.is_some() {
            let _ = store.delete(&key);
        }
    }
    Ok(Some(row).filter(|row| *row != Override::default()))
}

/// The cached answer for `name`, else `lookup`'s, which is then cached for its TTL (found and
/// not-found answers alike; failures never). A cache that cannot be opened only costs queries.
fn cached(
    lookups: &mut Lookups,
    kind: cache::Kind,
    name: &str,
    lookup: impl FnOnce(&Database) -> Result<Option<WorkerName>, database::Unavailable>,
) -> Result<Option<WorkerName>, DispatchError> {
    let ctx = lookups.ctx;
    let store = Store::open_default().ok();
    let namespace = lookups.namespace()?;
    let found_key = cache::key(namespace, kind, name);
    let absent_key = cache::absent_key(namespace, kind, name);
    let now = wasi::clocks::wall_clock::now().seconds;
    let mut stale_found = false;
    if let Some(store) = &store {
        match store.get(&found_key).ok().flatten() {
            Some(bytes) => match CacheEntry::decode(&bytes, &ctx.config.reserved_names) {
                Some(entry) if entry.is_fresh(now) => return Ok(entry.worker),
                _ => stale_found = true,
            },
            None => {
                let absent = store.get(&absent_key).ok().flatten();
                if absent
                    .and_then(|bytes| AbsentEntry::decode(&bytes))
                    .is_some_and(|e| e.answers(name, now))
                {
                    return Ok(None);
                }
            }
        }
    }
    let misses = lookups.misses()?;
    let database = database(ctx, misses.db_timeout_ms)?;
    let worker = lookup(&database).map_err(|_| DispatchError::DatabaseUnavailable)?;
    if let Some(store) = store {
        match &worker {
            Some(worker) if misses.cache_ttl_s > 0 => {
                let entry = CacheEntry {
                    worker: Some(worker.clone()),
                    expires_at: now + misses.cache_ttl_s,
                };
                let _ = store.set(&found_key, &entry.encode());
            }
            _ => {
                // An expired or unreadable entry under the name is deleted, not left to grow.
                if stale_found {
                    let _ = store.delete(&found_key);
                }
                if worker.is_none() && misses.negative_ttl_s > 0 {
                    let entry = AbsentEntry {
                        name: name.to_string(),
                        expires_at: now + misses.negative_ttl_s,
                    };
                    let _ = store.set(&absent_key, &entry.encode());
                }
            }
        }
    }
    Ok(worker)
}

pub mod database {
    use super::Database as DatabaseConfig;
    use crate::limits::overrides::Row;

    /// The database could not answer; why is for the log, never for the client.
    #[derive(Debug)]
    pub struct Unavailable;

    /// Whether the database has Libra's `project` table.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Schema {
        Present,
        /// The embedded SQLite database before anyone created the table: no custom domains and
        /// no remote members yet, which is how a fresh `spin up` starts.
        NoTable,
    }

    pub fn backend(database: &DatabaseConfig) -> &'static str {
        if !database.postgres_url.is_empty() {
            "postgres"
        } else if cfg!(feature = "sqlite") {
            "sqlite"
        } else {
            "none"
        }
    }

    /// The stored `production_deploy_url` of the project serving `host`.
    pub fn custom_domain(host: &str, database: &DatabaseConfig) -> Result<Option<String>, Unavailable> {
        match backend(database) {
            "postgres" => postgres::custom_domain(host, database),
            "sqlite" => sqlite::custom_domain(host),
            _ => Ok(None),
        }
    }

    /// Whether an active project's deploy URL is one of `urls`.
    pub fn is_deployed(urls: &[String; 2], database: &DatabaseConfig) -> Result<bool, Unavailable> {
        match backend(database) {
            "postgres" => postgres::is_deployed(urls, database),
            "sqlite" => sqlite::is_deployed(urls),
            _ => Ok(false),
        }
    }

    /// `worker`'s row of `worker_limits` (empty when it has none).
    pub fn worker_limits(worker: &str, database: &DatabaseConfig) -> Result<Row, Unavailable> {
        match backend(database) {
            "postgres" => postgres::worker_limits(worker, database),
            "sqlite" => sqlite::worker_limits(worker),
            _ => Ok(Row::default()),
        }
    }

    /// One real round trip, for `/health/detailed`.
    pub fn ping(database: &DatabaseConfig) -> Result<Schema, Unavailable> {
        match backend(database) {
            "postgres" => postgres::ping(database).map(|()| Schema::Present),
            "sqlite" => sqlite::ping(),
            _ => Ok(Schema::Present),
        }
    }

    mod postgres {
        use spin_sdk::pg4::{Connection, DbValue, ParameterValue, PgError, QueryError};

        use super::{DatabaseConfig, Row, Unavailable};
        use crate::limits::overrides;
        use crate::{custom_domain, membership};

        fn connect(database: &DatabaseConfig) -> Result<Connection, Unavailable> {
            Connection::open(&database.postgres_url).map_err(|error| report(&error))
        }

        /// The one value of a query that always returns one row (see `custom_domain`).
        fn scalar(database: &DatabaseConfig, sql: &str, parameters: &[ParameterValue]) -> Result<DbValue, Unavailable> {
            let rows = connect(database)?
                .query(sql, parameters)
                .map_err(|error| report(&error))?;
            rows.rows
                .into_iter()
                .next()
                .and_then(|row| row.into_iter().next())
                .ok_or(Unavailable)
        }

        pub fn custom_domain(host: &str, database: &DatabaseConfig) -> Result<Option<String>, Unavailable> {
            let parameters = [ParameterValue::Str(host.to_string())];
            match scalar(database, custom_domain::POSTGRES_LOOKUP, &parameters)? {
                DbValue::Str(url) => Ok(Some(url)),
                DbValue::DbNull => Ok(None),
                _ => Err(Unavailable),
            }
        }

        pub fn is_deployed(urls: &[String; 2], database: &DatabaseConfig) -> Result<bool, Unavailable> {
            let parameters = urls.clone().map(ParameterValue::Str);
            match scalar(database, membership::POSTGRES_IS_DEPLOYED, &parameters)? {
                DbValue::Boolean(found) => Ok(found),
                DbValue::DbNull => Ok(false),
                _ => Err(Unavailable),
            }
        }

        pub fn ping(database: &DatabaseConfig) -> Result<(), Unavailable> {
            scalar(database, custom_domain::PING, &[]).map(|_| ())
        }

        /// No `worker_limits` table (migration 0003 not run: SQLSTATE 42P01) is no row.
        pub fn worker_limits(worker: &str, database: &DatabaseConfig) -> Result<Row, Unavailable> {
            let parameters = [ParameterValue::Str(worker.to_string())];
            let rows = match connect(database)?.query(overrides::POSTGRES_LOOKUP, &parameters) {
                Ok(rows) => rows,
                Err(PgError::QueryFailed(QueryError::DbError(error))) if error.code == "42P01" => {
                    return Ok(Row::default());
                }
                Err(error) => return Err(report(&error)),
            };
            let row = rows.rows.into_iter().next().ok_or(Unavailable)?;
            let text = |value: Option<&DbValue>| match value {
                Some(DbValue::Str(text)) => Ok(Some(text.clone())),
                Some(DbValue::DbNull) => Ok(None),
                _ => Err(Unavailable),
            };
            Ok(Row {
                rate_limit: text(row.first())?,
                breaker: text(row.get(1))?,
            })
        }

        fn report(error: &impl std::fmt::Debug) -> Unavailable {
            eprintln!("libra-dispatcher: postgres: {error:?}");
            Unavailable
        }
    }

    #[cfg(feature = "sqlite")]
    mod sqlite {
        use spin_sdk::sqlite3::{Connection, Value};

        use super::{Row, Schema, Unavailable};
        use crate::limits::overrides;
        use crate::{custom_domain, membership};

        /// The one value of a query that returns one row; `Ok(None)` when Libra's `project`
        /// table does not exist (yet): the embedded database of a fresh `spin up` has none, and
        /// that means "no custom domains", not a failure. The dispatcher never creates it: it
        /// only reads the database.
        fn scalar(sql: &str, parameters: &[Value]) -> Result<Option<Value>, Unavailable> {
            let connection = Connection::open_default().map_err(|error| report(&error))?;
            let result = match connection.execute(sql, parameters) {
                Ok(result) => result,
                Err(error) if format!("{error:?}").contains("no such table: project") => return Ok(None),
                Err(error) => return Err(report(&error)),
            };
            result
                .rows
                .into_iter()
                .next()
                .and_then(|row| row.values.into_iter().next())
                .map(Some)
                .ok_or(Unavailable)
        }

        pub fn custom_domain(host: &str) -> Result<Option<String>, Unavailable> {
            match scalar(custom_domain::SQLITE_LOOKUP, &[Value::Text(host.to_string())])? {
                Some(Value::Text(url)) => Ok(Some(url)),
                Some(Value::Null) | None => Ok(None),
                _ => Err(Unavailable),
            }
        }

        pub fn is_deployed(urls: &[String; 2]) -> Result<bool, Unavailable> {
            match scalar(membership::SQLITE_IS_DEPLOYED, &urls.clone().map(Value::Text))? {
                Some(Value::Integer(_)) => Ok(true),
                Some(Value::Null) | None => Ok(false),
                _ => Err(Unavailable),
            }
        }

        pub fn ping() -> Result<Schema, Unavailable> {
            match scalar(custom_domain::SQLITE_HAS_TABLE, &[])? {
                Some(Value::Integer(0)) => Ok(Schema::NoTable),
                Some(Value::Integer(_)) => Ok(Schema::Present),
                _ => Err(Unavailable),
            }
        }

        /// No `worker_limits` table (a fresh database) is no row.
        pub fn worker_limits(worker: &str) -> Result<Row, Unavailable> {
            let connection = Connection::open_default().map_err(|error| report(&error))?;
            let result = match connection.execute(overrides::SQLITE_LOOKUP, &[Value::Text(worker.to_string())]) {
                Ok(result) => result,
                Err(error) if format!("{error:?}").contains("no such table: worker_limits") => {
                    return Ok(Row::default());
                }
                Err(error) => return Err(report(&error)),
            };
            let row = result.rows.into_iter().next().ok_or(Unavailable)?;
            let text = |value: Option<&Value>| match value {
                Some(Value::Text(text)) => Ok(Some(text.clone())),
                Some(Value::Null) | None => Ok(None),
                _ => Err(Unavailable),
            };
            Ok(Row {
                rate_limit: text(row.values.first())?,
                breaker: text(row.values.get(1))?,
            })
        }

        fn report(error: &impl std::fmt::Debug) -> Unavailable {
            eprintln!("libra-dispatcher: sqlite: {error:?}");
            Unavailable
        }
    }

    #[cfg(not(feature = "sqlite"))]
    mod sqlite {
        use super::{Row, Schema, Unavailable};

        pub fn custom_domain(_host: &str) -> Result<Option<String>, Unavailable> {
            Ok(None)
        }

        pub fn is_deployed(_urls: &[String; 2]) -> Result<bool, Unavailable> {
            Ok(false)
        }

        pub fn ping() -> Result<Schema, Unavailable> {
            Ok(Schema::Present)
        }

        pub fn worker_limits(_worker: &str) -> Result<Row, Unavailable> {
            Ok(Row::default())
        }
    }
}
