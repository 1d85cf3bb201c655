//! Custom-domain resolution: the key-value cache first, then the database (PostgreSQL through
//! Spin's outbound-pg when `postgres_url` is set, else Spin's built-in SQLite database).

use spin_sdk::key_value::Store;

use crate::config::{Config, DomainConfig};
use crate::custom_domain::{self, CacheEntry};
use crate::error::DispatchError;
use crate::pipeline::worker_name::WorkerName;

/// The worker serving `host`, `None` if no verified, active project claims it.
pub fn resolve(
    host: &str,
    config: &Config,
    domains: &DomainConfig,
    request_id: &str,
) -> Result<Option<WorkerName>, DispatchError> {
    // A cache that cannot be opened only costs queries; it never fails the request.
    let store = Store::open_default().ok();
    let key = custom_domain::cache_key(host);
    let now = wasi::clocks::wall_clock::now().seconds;
    if let Some(entry) = store
        .as_ref()
        .and_then(|store| store.get(&key).ok().flatten())
        .and_then(|bytes| CacheEntry::decode(&bytes))
        .filter(|entry| entry.is_fresh(now))
    {
        return Ok(entry
            .worker
            .and_then(|name| WorkerName::parse(&name, &config.reserved_names).ok()));
    }

    let deploy_url = database::lookup(host, domains).map_err(|_| DispatchError::DatabaseUnavailable)?;
    let worker = deploy_url.and_then(|url| {
        match custom_domain::worker_from_deploy_url(&url, &config.base_domain, &config.reserved_names) {
            Ok(worker) => Some(worker),
            Err(problem) => {
                super::write_log_line(
                    serde_json::json!({
                        "time": super::io::now_rfc3339(),
                        "level": "warn",
                        "requestId": request_id,
                        "message": "custom domain not served: its production_deploy_url is not <worker>.<base_domain>",
                        "host": host,
                        "reason": format!("{problem:?}"),
                    })
                    .to_string(),
                );
                None
            }
        }
    });

    let ttl = if worker.is_some() {
        domains.cache_ttl_s
    } else {
        domains.negative_ttl_s
    };
    if let (Some(store), true) = (store, ttl > 0) {
        let entry = CacheEntry {
            worker: worker.as_ref().map(WorkerName::to_string),
            expires_at: now + ttl,
        };
        let _ = store.set(&key, &entry.encode());
    }
    Ok(worker)
}

pub mod database {
    use crate::config::DomainConfig;
    use crate::custom_domain;

    /// The database could not answer; why is for the log, never for the client.
    #[derive(Debug)]
    pub struct Unavailable;

    pub fn backend(domains: &DomainConfig) -> &'static str {
        if !domains.postgres_url.is_empty() {
            "postgres"
        } else if cfg!(feature = "sqlite") {
            "sqlite"
        } else {
            "none"
        }
    }

    /// The stored `production_deploy_url` of the project serving `host`.
    pub fn lookup(host: &str, domains: &DomainConfig) -> Result<Option<String>, Unavailable> {
        match backend(domains) {
            "postgres" => postgres::lookup(host, domains),
            "sqlite" => sqlite::lookup(host),
            _ => Ok(None),
        }
    }

    /// One real round trip, for `/health/detailed`.
    pub fn ping(domains: &DomainConfig) -> Result<(), Unavailable> {
        match backend(domains) {
            "postgres" => postgres::ping(domains),
            "sqlite" => sqlite::ping(),
            _ => Ok(()),
        }
    }

    mod postgres {
        use spin_sdk::pg4::{Connection, DbValue, ParameterValue};

        use super::{DomainConfig, Unavailable, custom_domain};

        fn connect(domains: &DomainConfig) -> Result<Connection, Unavailable> {
            let url = custom_domain::postgres_url_with_timeouts(&domains.postgres_url, domains.db_timeout_ms);
            Connection::open(&url).map_err(|error| report(&error))
        }

        pub fn lookup(host: &str, domains: &DomainConfig) -> Result<Option<String>, Unavailable> {
            let connection = connect(domains)?;
            let rows = connection
                .query(custom_domain::POSTGRES_LOOKUP, &[ParameterValue::Str(host.to_string())])
                .map_err(|error| report(&error))?;
            match rows.rows.first().and_then(|row| row.first()) {
                Some(DbValue::Str(url)) => Ok(Some(url.clone())),
                Some(DbValue::DbNull) => Ok(None),
                _ => Err(Unavailable),
            }
        }

        pub fn ping(domains: &DomainConfig) -> Result<(), Unavailable> {
            connect(domains)?
                .query(custom_domain::PING, &[])
                .map(|_| ())
                .map_err(|error| report(&error))
        }

        fn report(error: &impl std::fmt::Debug) -> Unavailable {
            eprintln!("libra-dispatcher: postgres: {error:?}");
            Unavailable
        }
    }

    #[cfg(feature = "sqlite")]
    mod sqlite {
        use spin_sdk::sqlite3::{Connection, Value};

        use super::{Unavailable, custom_domain};

        pub fn lookup(host: &str) -> Result<Option<String>, Unavailable> {
            let connection = Connection::open_default().map_err(|error| report(&error))?;
            let result = connection
                .execute(custom_domain::SQLITE_LOOKUP, &[Value::Text(host.to_string())])
                .map_err(|error| report(&error))?;
            match result.rows.first().and_then(|row| row.values.first()) {
                Some(Value::Text(url)) => Ok(Some(url.clone())),
                Some(Value::Null) => Ok(None),
                _ => Err(Unavailable),
            }
        }

        pub fn ping() -> Result<(), Unavailable> {
            let connection = Connection::open_default().map_err(|error| report(&error))?;
            connection
                .execute(custom_domain::PING, &[])
                .map(|_| ())
                .map_err(|error| report(&error))
        }

        fn report(error: &impl std::fmt::Debug) -> Unavailable {
            eprintln!("libra-dispatcher: sqlite: {error:?}");
            Unavailable
        }
    }

    #[cfg(not(feature = "sqlite"))]
    mod sqlite {
        use super::Unavailable;

        pub fn lookup(_host: &str) -> Result<Option<String>, Unavailable> {
            Ok(None)
        }

        pub fn ping() -> Result<(), Unavailable> {
            Ok(())
        }
    }
}
