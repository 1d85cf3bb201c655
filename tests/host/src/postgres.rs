//! Spin's outbound PostgreSQL (`spin:postgres/postgres@4.0.0`) against a real server, through
//! tokio-postgres as Spin's `crates/factor-outbound-pg` does. The address must be allowed by the
//! component's `allowed_outbound_hosts` (`postgres://host:port`). Only the value types the
//! project's components use are mapped; others are `unsupported`, not guessed.

// Errors here are the interface's own type, returned to the guest as they are.
#![allow(clippy::result_large_err)]

use tokio_postgres::types::{ToSql, Type};
use wasmtime::component::Resource;

use crate::HostState;
use crate::bindings::spin::postgres::postgres::{
    Column, DbDataType, DbValue, Error, Host, HostConnection, ParameterValue, QueryError, RowSet,
};

pub struct PgConnection {
    client: tokio_postgres::Client,
}

impl Host for HostState {}

impl HostState {
    fn pg_client(&self, connection: &Resource<PgConnection>) -> Result<&tokio_postgres::Client, Error> {
        self.table
            .get(connection)
            .map(|c| &c.client)
            .map_err(|e| Error::Other(e.to_string()))
    }
}

fn as_refs(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// `host:port` of a `postgres://` URL (default port 5432).
fn address(url: &str) -> Option<String> {
    let config: tokio_postgres::Config = url.parse().ok()?;
    let host = match config.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Some(format!("{host}:{port}"))
}

fn allowed(allowed_hosts: &[String], address: &str) -> bool {
    allowed_hosts.iter().any(|entry| {
        entry
            .strip_prefix("postgres://")
            .is_some_and(|host| host == address || host == "*" || host == "*:*")
    })
}

impl HostConnection for HostState {
    async fn open(&mut self, address_url: String) -> Result<Resource<PgConnection>, Error> {
        let address = address(&address_url).ok_or_else(|| Error::ConnectionFailed("invalid address".into()))?;
        if self.app.variables.prepare_fails()
            || !allowed(
                &self.app.components[&self.component_id].allowed_outbound_hosts,
                &address,
            )
        {
            return Err(Error::ConnectionFailed(format!(
                "destination not allowed: postgres://{address}"
            )));
        }
        let (client, connection) = tokio_postgres::connect(&address_url, tokio_postgres::NoTls)
            .await
            .map_err(|e| Error::ConnectionFailed(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.table
            .push(PgConnection { client })
            .map_err(|e| Error::Other(e.to_string()))
    }

    async fn query(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, Error> {
        let client = self.pg_client(&connection)?;
        let params = to_sql(params)?;
        let refs = as_refs(&params);
        let rows = client.query(&statement, &refs).await.map_err(query_failed)?;
        let columns = rows
            .first()
            .map(|row| {
                row.columns()
                    .iter()
                    .map(|c| Column {
                        name: c.name().to_string(),
                        data_type: data_type(c.type_()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows = rows
            .iter()
            .map(|row| (0..row.len()).map(|i| value(row, i)).collect())
            .collect();
        Ok(RowSet { columns, rows })
    }

    async fn execute(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<u64, Error> {
        let client = self.pg_client(&connection)?;
        let params = to_sql(params)?;
        let refs = as_refs(&params);
        client.execute(&statement, &refs).await.map_err(query_failed)
    }

    async fn drop(&mut self, connection: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

/// As Spin's `crates/factor-outbound-pg/src/client.rs` does: PostgreSQL's own errors keep their
/// SQLSTATE code, others are text.
fn query_failed(error: tokio_postgres::Error) -> Error {
    match error.as_db_error() {
        Some(db) => Error::QueryFailed(QueryError::DbError(
            crate::bindings::spin::postgres::postgres::DbError {
                as_text: error.to_string(),
                severity: db.severity().to_string(),
                code: db.code().code().to_string(),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                extras: Vec::new(),
            },
        )),
        None => Error::QueryFailed(QueryError::Text(error.to_string())),
    }
}

fn to_sql(params: Vec<ParameterValue>) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, Error> {
    params
        .into_iter()
        .map(|p| -> Result<Box<dyn ToSql + Sync + Send>, Error> {
            Ok(match p {
                ParameterValue::Boolean(b) => Box::new(b),
                ParameterValue::Int32(i) => Box::new(i),
                ParameterValue::Int64(i) => Box::new(i),
                ParameterValue::Str(s) => Box::new(s),
                ParameterValue::DbNull => Box::new(None::<String>),
                _ => {
                    return Err(Error::BadParameter(
                        "the test host maps bool, int32, int64, str and null".into(),
                    ));
                }
            })
        })
        .collect()
}

fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DbDataType::Str,
        _ => DbDataType::Other(ty.name().to_string()),
    }
}

fn value(row: &tokio_postgres::Row, i: usize) -> DbValue {
    let ty = row.columns()[i].type_().clone();
    let mapped = match ty {
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map(|v| v.map(DbValue::Boolean)),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(DbValue::Int32)),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(DbValue::Int64)),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            row.try_get::<_, Option<String>>(i).map(|v| v.map(DbValue::Str))
        }
        _ => return DbValue::Unsupported(Vec::new()),
    };
    match mapped {
        Ok(Some(value)) => value,
        Ok(None) => DbValue::DbNull,
        Err(_) => DbValue::Unsupported(Vec::new()),
    }
}
