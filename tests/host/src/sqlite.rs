//! Spin's SQLite (`spin:sqlite/sqlite@3.0.0`): the `default` database, one file per app, as
//! `spin up` keeps one in `.spin/`. A component may open only the databases its manifest lists
//! in `sqlite_databases`.

use wasmtime::component::Resource;

use crate::HostState;
use crate::bindings::spin::sqlite::sqlite::{Error, Host, HostConnection, QueryResult, RowResult, Value};

pub struct SqliteConnection;

impl Host for HostState {}

impl HostConnection for HostState {
    async fn open(&mut self, database: String) -> Result<Resource<SqliteConnection>, Error> {
        let allowed = &self.app.components[&self.component_id].sqlite_databases;
        if !allowed.contains(&database) {
            return Err(Error::AccessDenied);
        }
        if database != "default" {
            return Err(Error::NoSuchDatabase);
        }
        self.table.push(SqliteConnection).map_err(|e| Error::Io(e.to_string()))
    }

    async fn execute(
        &mut self,
        _connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        self.app
            .sqlite_statements
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let database = self.app.sqlite.lock().unwrap();
        execute(&database, &statement, parameters).map_err(|e| Error::Io(e.to_string()))
    }

    async fn last_insert_rowid(&mut self, _connection: Resource<SqliteConnection>) -> i64 {
        self.app.sqlite.lock().unwrap().last_insert_rowid()
    }

    async fn changes(&mut self, _connection: Resource<SqliteConnection>) -> u64 {
        self.app.sqlite.lock().unwrap().changes()
    }

    async fn drop(&mut self, connection: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

fn execute(database: &rusqlite::Connection, statement: &str, parameters: Vec<Value>) -> rusqlite::Result<QueryResult> {
    use rusqlite::types::{Value as Sql, ValueRef};
    let mut prepared = database.prepare(statement)?;
    let columns: Vec<String> = prepared.column_names().iter().map(|c| c.to_string()).collect();
    let parameters: Vec<Sql> = parameters
        .into_iter()
        .map(|p| match p {
            Value::Integer(i) => Sql::Integer(i),
            Value::Real(r) => Sql::Real(r),
            Value::Text(t) => Sql::Text(t),
            Value::Blob(b) => Sql::Blob(b),
            Value::Null => Sql::Null,
        })
        .collect();
    let mut rows = prepared.query(rusqlite::params_from_iter(parameters.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Integer(i),
                    ValueRef::Real(r) => Value::Real(r),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}
