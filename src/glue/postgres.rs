//! Libra's PostgreSQL database, through Spin's outbound-pg (`spin:postgres@4.0.0`). Every query
//! returns exactly one row: Spin 4.0.0-4.0.2 never return from a query that yields none
//! (spinframework/spin#3671).

use spin_sdk::pg4::{Connection, DbValue, ParameterValue, PgError, QueryError};

use crate::limits::overrides::{self, Row};
use crate::pipeline::world::{Database, Unavailable};
use crate::{custom_domain, membership};

pub struct Postgres {
    /// With the dispatcher's timeouts added (`crate::postgres_url`).
    url: String,
}

impl Postgres {
    pub fn new(url: String) -> Postgres {
        Postgres { url }
    }

    fn connect(&self) -> Result<Connection, Unavailable> {
        Connection::open(&self.url).map_err(|error| report(&error))
    }

    /// The one value of a query that always returns one row.
    fn scalar(&self, sql: &str, parameters: &[ParameterValue]) -> Result<DbValue, Unavailable> {
        let rows = self.connect()?.query(sql, parameters).map_err(|error| report(&error))?;
        rows.rows
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .ok_or_else(|| Unavailable("postgres: no row".into()))
    }

    /// One real round trip, for `/health/detailed`.
    pub fn ping(&self) -> Result<(), Unavailable> {
        self.scalar(custom_domain::PING, &[]).map(|_| ())
    }
}

impl Database for Postgres {
    fn custom_domain(&mut self, host: &str) -> Result<Option<String>, Unavailable> {
        match self.scalar(custom_domain::POSTGRES_LOOKUP, &[ParameterValue::Str(host.to_string())])? {
            DbValue::Str(url) => Ok(Some(url)),
            DbValue::DbNull => Ok(None),
            other => Err(Unavailable(format!("postgres: unexpected {other:?}"))),
        }
    }

    fn is_deployed(&mut self, urls: &[String; 2]) -> Result<bool, Unavailable> {
        let parameters = urls.clone().map(ParameterValue::Str);
        match self.scalar(membership::POSTGRES_IS_DEPLOYED, &parameters)? {
            DbValue::Boolean(found) => Ok(found),
            DbValue::DbNull => Ok(false),
            other => Err(Unavailable(format!("postgres: unexpected {other:?}"))),
        }
    }

    /// No `worker_limits` table (migration 0003 not run: SQLSTATE 42P01) is no row.
    fn worker_limits(&mut self, worker: &str) -> Result<Row, Unavailable> {
        let parameters = [ParameterValue::Str(worker.to_string())];
        let rows = match self.connect()?.query(overrides::POSTGRES_LOOKUP, &parameters) {
            Ok(rows) => rows,
            Err(PgError::QueryFailed(QueryError::DbError(error))) if error.code == "42P01" => {
                return Ok(Row::default());
            }
            Err(error) => return Err(report(&error)),
        };
        let row = rows
            .rows
            .into_iter()
            .next()
            .ok_or_else(|| Unavailable("postgres: no row".into()))?;
        let text = |value: Option<&DbValue>| match value {
            Some(DbValue::Str(text)) => Ok(Some(text.clone())),
            Some(DbValue::DbNull) => Ok(None),
            other => Err(Unavailable(format!("postgres: unexpected {other:?}"))),
        };
        Ok(Row {
            rate_limit: text(row.first())?,
            breaker: text(row.get(1))?,
        })
    }
}

/// What went wrong, for the operator's log.
fn report(error: &impl std::fmt::Debug) -> Unavailable {
    Unavailable(format!("postgres: {error:?}"))
}
