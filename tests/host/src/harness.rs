//! One way to run the app and talk to it over real HTTP, whether the host is the test host or a
//! real `spin up`, so an end-to-end test is written once and run on both. Where the two disagree,
//! Spin is right and the test host is fixed.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::spin_cli::{ExtraWorker, SpinApp, SpinOptions};
use crate::{App, AppOptions, HttpServer, project_root, serve_http, wasm_path};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// The wasmtime test host (`tests/host`), served over HTTP.
    TestHost,
    /// A real `spin up`.
    Spin,
}

/// What to run: the shipped `spin.toml`, with these variables and test-only workers.
#[derive(Debug, Clone, Default)]
pub struct AppSpec {
    pub variables: BTreeMap<String, String>,
    pub extra_workers: Vec<ExtraWorker>,
    /// Run against the `default` SQLite database before serving (`spin up --sqlite @file`).
    pub sqlite_files: Vec<PathBuf>,
    /// The test host's cap on an instance's linear memory (Spin has no such setting).
    pub memory_limit_bytes: Option<usize>,
    /// Names the app's outbound requests resolve to; all others fail to resolve.
    pub hosts: Vec<(String, std::net::IpAddr)>,
    /// Where to listen; a port the kernel chooses when `None`.
    pub listen: Option<SocketAddr>,
    /// Another manifest than the shipped `spin.toml`.
    pub manifest: Option<PathBuf>,
    /// Variables whose provider fails when asked, as a Vault that is down does. On Spin they come
    /// from a Vault provider (a stand-in server that answers 500 for them and 404, "not here",
    /// for any other), so they must not be set in `variables`.
    pub failing_variables: Vec<String>,
}

impl AppSpec {
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.insert(name.to_string(), value.to_string());
        self
    }

    pub fn worker(self, id: &str, package: &str) -> Self {
        self.worker_with_outbound(id, package, &[])
    }

    pub fn worker_with_outbound(mut self, id: &str, package: &str, allowed_outbound_hosts: &[&str]) -> Self {
        self.extra_workers.push(ExtraWorker {
            id: id.to_string(),
            wasm: wasm_path(package),
            allowed_outbound_hosts: allowed_outbound_hosts.iter().map(|h| h.to_string()).collect(),
        });
        self
    }

    /// Makes `name`'s provider fail.
    pub fn failing(mut self, name: &str) -> Self {
        self.failing_variables.push(name.to_string());
        self
    }

    /// Resolves `name` to `ip` for the app's outbound requests.
    pub fn host(mut self, name: &str, ip: &str) -> Self {
        self.hosts.push((name.to_string(), ip.parse().expect("an IP address")));
        self
    }

    /// Runs one of the project's SQL files (relative to the repository root) at start.
    pub fn sqlite_file(mut self, relative: &str) -> Self {
        self.sqlite_files.push(project_root().join(relative));
        self
    }
}

enum Inner {
    TestHost {
        app: App,
        _server: HttpServer,
    },
    /// With the stand-in Vault, kept running as long as Spin.
    Spin(SpinApp, #[allow(dead_code)] Option<HttpServer>),
}

/// The app, running and listening on `addr`.
pub struct Running {
    pub kind: HostKind,
    pub addr: SocketAddr,
    inner: Inner,
    _manifest_dir: Option<tempfile::TempDir>,
}

impl Running {
    /// An app of one worker component on every path (`route = "/..."`), as a tenant deployed on
    /// its own is (its own Spin app, SpinApp or Fermyon Cloud app).
    pub async fn start_single(kind: HostKind, package: &str, listen: SocketAddr) -> Result<Running> {
        let dir = tempfile::tempdir()?;
        let manifest = dir.path().join("spin.toml");
        std::fs::write(
            &manifest,
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"{package}\"\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"worker\"\n\
                 [component.worker]\nsource = {:?}\n",
                wasm_path(package).display().to_string()
            ),
        )?;
        let spec = AppSpec {
            manifest: Some(manifest),
            listen: Some(listen),
            ..AppSpec::default()
        };
        let mut running = Running::start(kind, &spec).await?;
        running._manifest_dir = Some(dir);
        Ok(running)
    }

    pub async fn start(kind: HostKind, spec: &AppSpec) -> Result<Running> {
        match kind {
            HostKind::TestHost => {
                let mut options = AppOptions {
                    variables: spec.variables.clone(),
                    hosts: spec.hosts.iter().cloned().collect(),
                    failing_variables: spec.failing_variables.iter().cloned().collect(),
                    ..AppOptions::default()
                };
                if let Some(manifest) = &spec.manifest {
                    options.manifest = manifest.clone();
                }
                if let Some(limit) = spec.memory_limit_bytes {
                    options.memory_limit_bytes = limit;
                }
                for worker in &spec.extra_workers {
                    options.extra_workers.push((
                        worker.id.clone(),
                        worker.wasm.clone(),
                        worker.allowed_outbound_hosts.clone(),
                    ));
                }
                let app = App::new(options)?;
                for file in &spec.sqlite_files {
                    let sql = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                    app.sqlite_execute_batch(&sql)?;
                }
                let listen = spec.listen.unwrap_or_else(|| "127.0.0.1:0".parse().expect("valid"));
                let server = serve_http(app.clone(), listen).await?;
                Ok(Running {
                    kind,
                    addr: server.addr,
                    inner: Inner::TestHost { app, _server: server },
                    _manifest_dir: None,
                })
            }
            HostKind::Spin => {
                let mut options = SpinOptions {
                    variables: spec.variables.clone(),
                    extra_workers: spec.extra_workers.clone(),
                    sqlite_files: spec.sqlite_files.clone(),
                    hosts: spec.hosts.clone(),
                    ..SpinOptions::default()
                };
                if let Some(listen) = spec.listen {
                    options.listen = listen;
                }
                if let Some(manifest) = &spec.manifest {
                    options.manifest = manifest.clone();
                }
                let vault = if spec.failing_variables.is_empty() {
                    None
                } else {
                    let vault = failing_vault(spec.failing_variables.clone()).await?;
                    options.runtime_config = Some(format!(
                        "[[variables_provider]]\ntype = \"vault\"\nurl = \"{}\"\ntoken = \"test\"\nmount = \"secret\"\n",
                        vault.url()
                    ));
                    Some(vault)
                };
                let spin = tokio::task::spawn_blocking(move || SpinApp::start(&options)).await??;
                Ok(Running {
                    kind,
                    addr: spin.addr,
                    inner: Inner::Spin(spin, vault),
                    _manifest_dir: None,
                })
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The test host's app, for what only it can observe (outbound requests, statement counts).
    pub fn test_host(&self) -> Option<&App> {
        match &self.inner {
            Inner::TestHost { app, .. } => Some(app),
            Inner::Spin(..) => None,
        }
    }

    pub fn spin(&self) -> Option<&SpinApp> {
        match &self.inner {
            Inner::Spin(spin, _) => Some(spin),
            Inner::TestHost { .. } => None,
        }
    }

    /// Everything `component` wrote to stdout so far.
    pub async fn stdout(&self, component: &str) -> String {
        match &self.inner {
            Inner::TestHost { app, .. } => {
                app.wait_idle(component).await;
                app.stdout(component)
            }
            Inner::Spin(spin, _) => spin.stdout(component),
        }
    }

    /// The dispatcher's stdout as JSON lines (access-log lines and the others).
    pub async fn log_lines(&self) -> Vec<Value> {
        self.stdout("dispatcher")
            .await
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}")))
            .collect()
    }

    /// The access-log line of the request with `request_id`, once it is written (the dispatcher
    /// writes it after the response has gone out). Fails unless exactly one such line appears.
    pub async fn access_line(&self, request_id: &str) -> Value {
        let lines = self
            .wait_for_log(|line| line["requestId"] == request_id && line.get("status").is_some())
            .await;
        assert_eq!(lines.len(), 1, "access-log lines for request {request_id}: {lines:?}");
        lines.into_iter().next().unwrap()
    }

    /// The dispatcher's log lines that match, once there is at least one. Lines are written
    /// after the responses they describe, so this waits for them (up to 30 s, then fails).
    pub async fn wait_for_log(&self, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines: Vec<Value> = self
                .log_lines()
                .await
                .into_iter()
                .filter(|line| matches(line))
                .collect();
            if !lines.is_empty() {
                return lines;
            }
            assert!(Instant::now() < deadline, "no such log line within 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs SQL against the `default` SQLite database, as an operator with the file could.
    pub fn sqlite_execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::TestHost { app, .. } => app.sqlite_execute_batch(sql),
            Inner::Spin(spin, _) => {
                let connection = rusqlite::Connection::open(spin.sqlite_path())?;
                connection.busy_timeout(Duration::from_secs(10))?;
                connection.execute_batch(sql)?;
                Ok(())
            }
        }
    }

    /// A value of the `default` key-value store, read from outside the app.
    pub fn key_value_get(&self, key: &str) -> Option<Vec<u8>> {
        match &self.inner {
            Inner::TestHost { app, .. } => app.key_value_get(key),
            Inner::Spin(spin, _) => {
                let connection = spin_key_value(spin).ok()?;
                connection
                    .query_row(
                        "SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1",
                        [key],
                        |row| row.get::<_, Vec<u8>>(0),
                    )
                    .ok()
            }
        }
    }

    /// Writes a value into the `default` key-value store from outside the app.
    pub fn key_value_set(&self, key: &str, value: &[u8]) -> Result<()> {
        match &self.inner {
            Inner::TestHost { app, .. } => {
                app.key_value_set(key, value);
                Ok(())
            }
            Inner::Spin(spin, _) => {
                spin_key_value(spin)?.execute(
                    "INSERT INTO spin_key_value (store, key, value) VALUES ('default', ?1, ?2) \
                     ON CONFLICT (store, key) DO UPDATE SET value = ?2",
                    rusqlite::params![key, value],
                )?;
                Ok(())
            }
        }
    }

    /// The keys of the `default` key-value store.
    pub fn key_value_keys(&self) -> Result<Vec<String>> {
        match &self.inner {
            Inner::TestHost { app, .. } => Ok(app.key_value_keys()),
            Inner::Spin(spin, _) => {
                let connection = spin_key_value(spin)?;
                let mut statement = connection.prepare("SELECT key FROM spin_key_value WHERE store = 'default'")?;
                let keys = statement
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(keys)
            }
        }
    }

    /// Sends a request over a new TCP connection and reads the whole response.
    pub async fn send(&self, request: http::Request<Full<Bytes>>) -> Reply {
        exchange(self.addr, request).await
    }

    /// Sends `chunks` as a streamed (chunked) body.
    pub async fn send_stream(&self, request: http::request::Builder, chunks: Vec<Bytes>) -> Reply {
        let stream = futures::stream::iter(chunks.into_iter().map(|c| Ok::<_, Infallible>(Frame::data(c))));
        let request = request.body(StreamBody::new(stream)).expect("valid request");
        exchange(self.addr, request).await
    }

    /// Sends a body of frames that arrive when the client chooses: the test holds the sender and
    /// may pause between frames, or stop sending, as a slow or stalled client does.
    pub async fn send_frames(
        &self,
        request: http::request::Builder,
        frames: tokio::sync::mpsc::Receiver<Frame<Bytes>>,
    ) -> Reply {
        let stream = futures::stream::unfold(frames, |mut frames| async move {
            frames.recv().await.map(|frame| (Ok::<_, Infallible>(frame), frames))
        });
        let request = request.body(StreamBody::new(stream)).expect("valid request");
        exchange(self.addr, request).await
    }
}

/// A stand-in for HashiCorp Vault's KV v2 API, as Spin's Vault provider reads it
/// (`GET /v1/<mount>/data/<key>`): 500 for the failing variables, 404 for any other, which sends
/// Spin on to its next provider.
async fn failing_vault(failing: Vec<String>) -> Result<HttpServer> {
    use http_body_util::Full;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accept_loop = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let failing = failing.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let key = request.uri().path().rsplit('/').next().unwrap_or("").to_string();
                    let status = if failing.contains(&key) { 500 } else { 404 };
                    let response = http::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(b"{\"errors\":[]}")))
                        .expect("valid response");
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(HttpServer::from_parts(addr, accept_loop))
}

fn spin_key_value(spin: &SpinApp) -> Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open(spin.key_value_path())?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, \
         value BLOB NOT NULL, PRIMARY KEY (store, key))",
    )?;
    Ok(connection)
}

/// A response as the client saw it. `body` is an error when the response was cut short.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Result<Bytes, String>,
    /// The body's trailers, if it had any.
    pub trailers: Option<http::HeaderMap>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ASCII header"))
            .collect()
    }

    /// The request id the dispatcher answered with.
    pub fn request_id(&self) -> &str {
        self.header("x-request-id").expect("every response has a request id")
    }

    pub fn bytes(&self) -> &Bytes {
        self.body.as_ref().expect("body arrives complete")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(self.bytes()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request over a fresh connection. A connection the server closes without answering is a
/// reply with status 0 and the error as its body.
pub async fn exchange<B>(addr: SocketAddr, request: http::Request<B>) -> Reply
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match try_exchange(addr, request).await {
        Ok(reply) => reply,
        Err(error) => Reply {
            status: 0,
            headers: http::HeaderMap::new(),
            body: Err(format!("{error:#}")),
            trailers: None,
        },
    }
}

async fn try_exchange<B>(addr: SocketAddr, request: http::Request<B>) -> Result<Reply>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let (body, trailers) = match body.collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().cloned();
            (Ok(collected.to_bytes()), trailers)
        }
        Err(error) => (Err(error.to_string()), None),
    };
    drop(sender);
    let _ = connection.await;
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        trailers,
    })
}

/// Sends raw bytes over a new connection and returns everything the server sent back until it
/// closed the connection or `quiet` passed without a byte (for requests no HTTP library would
/// write).
pub async fn exchange_raw(addr: SocketAddr, request: &[u8], quiet: Duration) -> Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(quiet, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Err(_) => return Ok(received),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Ok(Err(error)) if received.is_empty() => bail!(error),
            Ok(Err(_)) => return Ok(received),
        }
    }
}
