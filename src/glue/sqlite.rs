//! Spin's built-in SQLite database (`default`), where custom domains come from when no
//! `postgres_url` is set. The dispatcher only reads it: without Libra's `project` table (a fresh
//! `spin up`) there are no custom domains and no remote members, which is not a failure.

/// Whether the database has Libra's `project` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Present,
    /// The embedded SQLite database before anyone created the table.
    NoTable,
}

pub struct Sqlite;

#[cfg(feature = "sqlite")]
mod embedded {
    use spin_sdk::sqlite3::{Connection, Value};

    use crate::glue::sqlite::{Schema, Sqlite};
    use crate::limits::overrides::{self, Row};
    use crate::pipeline::world::{Database, Unavailable};
    use crate::{custom_domain, membership};

    /// The one value of a query that returns one row; `Ok(None)` when `table` does not exist.
    fn scalar(sql: &str, parameters: &[Value], table: &str) -> Result<Option<Vec<Value>>, Unavailable> {
        let connection = Connection::open_default().map_err(|error| report(&error))?;
        match connection.execute(sql, parameters) {
            Ok(result) => Ok(result.rows.into_iter().next().map(|row| row.values)),
            Err(error) if format!("{error:?}").contains(&format!("no such table: {table}")) => Ok(None),
            Err(error) => Err(report(&error)),
        }
    }

    fn first(sql: &str, parameters: &[Value], table: &str) -> Result<Option<Value>, Unavailable> {
        match scalar(sql, parameters, table)? {
            None => Ok(None),
            Some(values) => values
                .into_iter()
                .next()
                .map(Some)
                .ok_or_else(|| Unavailable("sqlite: no value".into())),
        }
    }

    impl Sqlite {
        pub fn ping(&self) -> Result<Schema, Unavailable> {
            match first(custom_domain::SQLITE_HAS_TABLE, &[], "project")? {
                Some(Value::Integer(0)) => Ok(Schema::NoTable),
                Some(Value::Integer(_)) => Ok(Schema::Present),
                other => Err(Unavailable(format!("sqlite: unexpected {other:?}"))),
            }
        }
    }

    impl Database for Sqlite {
        fn custom_domain(&mut self, host: &str) -> Result<Option<String>, Unavailable> {
            match first(
                custom_domain::SQLITE_LOOKUP,
                &[Value::Text(host.to_string())],
                "project",
            )? {
                Some(Value::Text(url)) => Ok(Some(url)),
                Some(Value::Null) | None => Ok(None),
                other => Err(Unavailable(format!("sqlite: unexpected {other:?}"))),
            }
        }

        fn is_deployed(&mut self, urls: &[String; 2]) -> Result<bool, Unavailable> {
            match first(
                membership::SQLITE_IS_DEPLOYED,
                &urls.clone().map(Value::Text),
                "project",
            )? {
                Some(Value::Integer(_)) => Ok(true),
                Some(Value::Null) | None => Ok(false),
                other => Err(Unavailable(format!("sqlite: unexpected {other:?}"))),
            }
        }

        fn worker_limits(&mut self, worker: &str) -> Result<Row, Unavailable> {
            let Some(values) = scalar(
                overrides::SQLITE_LOOKUP,
                &[Value::Text(worker.to_string())],
                "worker_limits",
            )?
            else {
                return Ok(Row::default());
            };
            let text = |value: Option<&Value>| match value {
                Some(Value::Text(text)) => Ok(Some(text.clone())),
                Some(Value::Null) | None => Ok(None),
                other => Err(Unavailable(format!("sqlite: unexpected {other:?}"))),
            };
            Ok(Row {
                rate_limit: text(values.first())?,
                breaker: text(values.get(1))?,
            })
        }
    }

    fn report(error: &impl std::fmt::Debug) -> Unavailable {
        Unavailable(format!("sqlite: {error:?}"))
    }
}

/// Built without SQLite (hosts that have none): no custom domains, no remote members.
#[cfg(not(feature = "sqlite"))]
mod absent {
    use crate::glue::sqlite::{Schema, Sqlite};
    use crate::limits::overrides::Row;
    use crate::pipeline::world::{Database, Unavailable};

    impl Sqlite {
        pub fn ping(&self) -> Result<Schema, Unavailable> {
            Ok(Schema::Present)
        }
    }

    impl Database for Sqlite {
        fn custom_domain(&mut self, _host: &str) -> Result<Option<String>, Unavailable> {
            Ok(None)
        }

        fn is_deployed(&mut self, _urls: &[String; 2]) -> Result<bool, Unavailable> {
            Ok(false)
        }

        fn worker_limits(&mut self, _worker: &str) -> Result<Row, Unavailable> {
            Ok(Row::default())
        }
    }
}
