//! Serves the app in `spin.toml` over HTTP with the test host, as `spin up` would (test
//! infrastructure, for browsers and API tools; not a product):
//!
//!   serve [--addr 127.0.0.1:3000] [--variable name=value]... [--sqlite file.sql]...
//!
//! `--sqlite` runs a SQL file against the `default` database first, like `spin up --sqlite @file`.
//! Prints `listening on http://<addr>` once the port accepts connections.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use libra_test_host::{App, AppOptions, serve_http};

#[tokio::main]
async fn main() -> Result<()> {
    let mut addr: SocketAddr = "127.0.0.1:3000".parse()?;
    let mut options = AppOptions::default();
    let mut sql_files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value()?.parse().context("--addr")?,
            "--variable" => {
                let pair = value()?;
                let (name, value) = pair.split_once('=').context("--variable takes name=value")?;
                options = options.variable(name, value);
            }
            "--sqlite" => sql_files.push(value()?),
            other => bail!("unknown argument {other}"),
        }
    }
    options.capture_stdout = false;
    let app = App::new(options)?;
    for file in sql_files {
        let sql = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
        app.sqlite_execute_batch(&sql)
            .with_context(|| format!("running {file}"))?;
    }
    let server = serve_http(app, addr).await?;
    println!("listening on {}", server.url());
    std::future::pending::<()>().await;
    Ok(())
}
