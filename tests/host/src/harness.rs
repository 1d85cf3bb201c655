//! One way to run the app and talk to it over real HTTP, whether the host is the test host or a
//! real `spin up`, so an end-to-end test is written once and run on both. Where the two disagree,
//! Spin is right and the test host is fixed.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
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
    /// Spin only: a runtime configuration (`--runtime-config-file`), such as a key-value store on
    /// Redis. The test host has no such file: it refuses a spec that sets one.
    pub runtime_config: Option<String>,
    /// Spin only: environment variables for the Spin process (an OTLP exporter's, say). The
    /// test host exports nothing: it refuses a spec that sets one.
    pub env: Vec<(String, String)>,
}

impl AppSpec {
    pub fn env(mut self, pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(pairs);
        self
    }

    /// An application variable, or a key of the dispatcher's `settings`
    /// ([`crate::set_variable`]), so a test names the setting it changes.
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        crate::set_variable(&mut self.variables, name, value);
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
            variables: Vec::new(),
        });
        self
    }

    /// Spin only: adds `text` to the app's runtime configuration.
    pub fn runtime_config(mut self, text: &str) -> Self {
        self.runtime_config = Some(self.runtime_config.unwrap_or_default() + text);
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
        Running::start_single_with(kind, package, listen, Vec::new()).await
    }

    /// [`Running::start_single`] with environment variables for Spin ([`AppSpec::env`]).
    pub async fn start_single_with(
        kind: HostKind,
        package: &str,
        listen: SocketAddr,
        env: Vec<(String, String)>,
    ) -> Result<Running> {
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
            env,
            ..AppSpec::default()
        };
        let mut running = Running::start(kind, &spec).await?;
        running._manifest_dir = Some(dir);
        Ok(running)
    }

    pub async fn start(kind: HostKind, spec: &AppSpec) -> Result<Running> {
        if let Some(setting) = spec
            .failing_variables
            .iter()
            .find(|name| libra_dispatcher::config::is_setting(name))
        {
            // A provider fails for a whole variable; a setting is one key of `settings`.
            anyhow::bail!("'{setting}' is a key of `settings`, not a variable: make `settings` fail instead");
        }
        if let Some(both) = spec
            .failing_variables
            .iter()
            .find(|name| spec.variables.contains_key(*name))
        {
            // On Spin the value would answer before the failing provider is asked.
            anyhow::bail!("variable '{both}' is both given a value and made to fail");
        }
        match kind {
            HostKind::TestHost => {
                if spec.runtime_config.is_some() {
                    anyhow::bail!("the test host takes no runtime configuration: run this on Spin");
                }
                if !spec.env.is_empty() {
                    anyhow::bail!("the test host has no Spin process to give an environment: run this on Spin");
                }
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
                options.runtime_config = spec.runtime_config.clone();
                options.env.extend(spec.env.iter().cloned());
                let vault = if spec.failing_variables.is_empty() {
                    None
                } else {
                    let vault = failing_vault(spec.failing_variables.clone()).await?;
                    let provider = format!(
                        "[[variables_provider]]\ntype = \"vault\"\nurl = \"{}\"\ntoken = \"test\"\nmount = \"secret\"\n",
                        vault.url()
                    );
                    options.runtime_config = Some(options.runtime_config.unwrap_or_default() + &provider);
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

    /// The dispatcher's stdout as JSON lines (request lines and the others), each checked
    /// against the documented shape of a log line (`docs/log-line.schema.json`).
    pub async fn log_lines(&self) -> Vec<Value> {
        self.stdout("dispatcher")
            .await
            .lines()
            .map(|line| {
                let value: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
                check_log_line(&value);
                value
            })
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

/// Fails unless `line` has the documented shape of a dispatcher log line.
pub fn check_log_line(line: &Value) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let path = project_root().join("docs/log-line.schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the log-line schema"))
            .expect("the log-line schema is JSON");
        jsonschema::validator_for(&schema).expect("the log-line schema is a JSON schema")
    });
    let problems: Vec<String> = validator
        .iter_errors(line)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "log line does not match docs/log-line.schema.json: {problems:?}\n{line}"
    );
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

/// One HTTP/1.x response as it came off the wire, from [`exchange_raw_responses`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// `HTTP/1.1 200 OK`, as sent.
    pub status_line: String,
    pub status: u16,
    /// Names lowercased, values as sent (lossy UTF-8), in order.
    pub headers: Vec<(String, String)>,
    /// The content, de-chunked; as much of it as arrived.
    pub body: Vec<u8>,
    /// The body ended where its framing says it ends (`Content-Length`, the last chunk, or the
    /// close of a body delimited by the close). `false`: the connection ended, or the bound
    /// passed, before that.
    pub complete: bool,
    /// Interim (1xx) responses that came before this one, such as `100 Continue`.
    pub interim: Vec<u16>,
}

impl RawResponse {
    /// The values of header `name` (any case).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What came back over one raw connection.
#[derive(Debug, Clone, Default)]
pub struct RawExchange {
    /// The final responses, in order; the last one may be incomplete.
    pub responses: Vec<RawResponse>,
    /// The server closed (or reset) the connection; `false`: the bound passed first, or
    /// `stop_after` responses had arrived.
    pub closed: bool,
    /// Bytes after the last response that are not the start of a response head.
    pub unparsed: Vec<u8>,
    /// A read error (such as a reset), if the connection ended with one.
    pub error: Option<String>,
}

/// How [`exchange_raw_responses`] reads.
#[derive(Debug, Clone, Copy)]
pub struct RawRead {
    /// The longest the whole exchange may take; reading stops there.
    pub bound: Duration,
    /// Stop as soon as this many complete final responses have arrived (else read until the
    /// server closes).
    pub stop_after: Option<usize>,
    /// The requests are `HEAD`: their responses have no content whatever their headers say.
    pub head: bool,
}

impl Default for RawRead {
    fn default() -> Self {
        RawRead {
            bound: Duration::from_secs(10),
            stop_after: None,
            head: false,
        }
    }
}

/// Sends raw bytes over a new connection (never half-closing it) and reads the responses,
/// framed as RFC 9112 section 6 says: no content for 1xx, 204, 304 and `HEAD`; chunked; by
/// `Content-Length`; else until the close. Reading ends when the server closes the connection,
/// when `stop_after` complete responses have arrived, or when `bound` has passed, whichever
/// comes first: requests that end in `Connection: close` (or are HTTP/1.0) never wait on time.
pub async fn exchange_raw_responses(addr: SocketAddr, request: &[u8], read: RawRead) -> Result<RawExchange> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = tokio::time::Instant::now() + read.bound;
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut exchange = RawExchange::default();
    // The server may answer (and close) before it has read everything, as for a refused
    // head: a write error then is the server's answer, not the test's failure.
    if let Err(error) = stream.write_all(request).await {
        exchange.error = Some(format!("write: {error}"));
    }
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut parser = RawParser::new(read.head);
    loop {
        parser.parse(&received, &mut exchange.responses);
        if read
            .stop_after
            .is_some_and(|n| exchange.responses.iter().filter(|r| r.complete).count() >= n)
        {
            break;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) => {
                exchange.closed = true;
                break;
            }
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Ok(Err(error)) => {
                exchange.closed = true;
                exchange.error = Some(format!("read: {error}"));
                break;
            }
            Err(_) => break,
        }
    }
    parser.finish(
        &received,
        exchange.closed,
        &mut exchange.responses,
        &mut exchange.unparsed,
    );
    Ok(exchange)
}

/// Incremental response parsing over the bytes received so far.
struct RawParser {
    head: bool,
    /// Where the next response starts in the received bytes.
    offset: usize,
    interim: Vec<u16>,
}

enum Parsed {
    /// A whole response (or interim response) that ended at this offset.
    Done(RawResponse, usize),
    /// More bytes are needed; what has arrived of the response so far, if its head is in.
    Partial(Option<RawResponse>),
    /// Not a response head.
    Garbage,
}

impl RawParser {
    fn new(head: bool) -> RawParser {
        RawParser {
            head,
            offset: 0,
            interim: Vec::new(),
        }
    }

    fn parse(&mut self, received: &[u8], responses: &mut Vec<RawResponse>) {
        while let Parsed::Done(response, end) = self.parse_one(&received[self.offset..], false) {
            self.offset += end;
            if (100..200).contains(&response.status) && response.status != 101 {
                self.interim.push(response.status);
            } else {
                responses.push(RawResponse {
                    interim: std::mem::take(&mut self.interim),
                    ..response
                });
            }
        }
    }

    fn finish(&mut self, received: &[u8], closed: bool, responses: &mut Vec<RawResponse>, unparsed: &mut Vec<u8>) {
        self.parse(received, responses);
        let rest = &received[self.offset..];
        if rest.is_empty() {
            return;
        }
        match self.parse_one(rest, closed) {
            Parsed::Done(response, _) | Parsed::Partial(Some(response)) => responses.push(RawResponse {
                interim: std::mem::take(&mut self.interim),
                ..response
            }),
            Parsed::Partial(None) | Parsed::Garbage => unparsed.extend_from_slice(rest),
        }
    }

    /// One response from the start of `bytes`. `closed`: no more bytes will come, so a body
    /// delimited by the close is complete.
    fn parse_one(&self, bytes: &[u8], closed: bool) -> Parsed {
        if !bytes.starts_with(b"HTTP/") && !b"HTTP/".starts_with(&bytes[..bytes.len().min(5)]) {
            return Parsed::Garbage;
        }
        let Some(head_end) = find(bytes, b"\r\n\r\n").map(|i| i + 4) else {
            return Parsed::Partial(None);
        };
        let head = String::from_utf8_lossy(&bytes[..head_end - 4]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let Some(status) = status_line.split(' ').nth(1).and_then(|code| code.parse::<u16>().ok()) else {
            return Parsed::Garbage;
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut response = RawResponse {
            status_line,
            status,
            headers,
            body: Vec::new(),
            complete: false,
            interim: Vec::new(),
        };
        let content = &bytes[head_end..];
        let no_content = self.head || (100..200).contains(&status) || status == 204 || status == 304;
        let chunked = response.header_all("transfer-encoding").last().is_some_and(|te| {
            te.rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
        });
        let length = response
            .header_all("content-length")
            .first()
            .and_then(|l| l.parse::<usize>().ok());
        if no_content {
            response.complete = true;
            return Parsed::Done(response, head_end);
        }
        if chunked {
            let (body, end) = dechunk(content);
            response.body = body;
            return match end {
                Some(end) => {
                    response.complete = true;
                    Parsed::Done(response, head_end + end)
                }
                None => Parsed::Partial(Some(response)),
            };
        }
        if let Some(length) = length {
            if content.len() >= length {
                response.body = content[..length].to_vec();
                response.complete = true;
                return Parsed::Done(response, head_end + length);
            }
            response.body = content.to_vec();
            return Parsed::Partial(Some(response));
        }
        response.body = content.to_vec();
        if closed {
            response.complete = true;
            return Parsed::Done(response, bytes.len());
        }
        Parsed::Partial(Some(response))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The data of a chunked body, and where the body (trailers included) ends, if it has.
fn dechunk(bytes: &[u8]) -> (Vec<u8>, Option<usize>) {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = find(&bytes[at..], b"\r\n") else {
            return (body, None);
        };
        let line = String::from_utf8_lossy(&bytes[at..at + line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (body, None);
        };
        at += line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(end) = find(&bytes[at..], b"\r\n") else {
                    return (body, None);
                };
                at += end + 2;
                if end == 0 {
                    return (body, Some(at));
                }
            }
        }
        let available = bytes.len().saturating_sub(at).min(size);
        body.extend_from_slice(&bytes[at..at + available]);
        if available < size || bytes.len() < at + size + 2 {
            return (body, None);
        }
        at += size + 2;
    }
}
