//! Request helpers shared by the end-to-end tests.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use libra_test_host::{App, AppOptions, wasm_path};
use serde_json::Value;

pub const CLIENT: &str = "127.0.0.1:40123";

/// The shipped manifest plus the test-only `faulty` worker in the namespace.
pub fn options() -> AppOptions {
    AppOptions::default()
        .worker("faulty", wasm_path("faulty"))
        .variable("workers", "echo,faulty,hello")
}

/// An app whose embedded SQLite database has the `project` table (and no rows).
pub fn app() -> App {
    let app = App::new(options()).expect("app starts");
    seed_sqlite_schema(&app);
    app
}

pub fn seed_sqlite_schema(app: &App) {
    let schema = std::fs::read_to_string(libra_test_host::project_root().join("db/sqlite/schema.sql")).unwrap();
    app.sqlite_execute_batch(&schema).expect("schema applies");
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Result<Bytes, String>,
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

    pub fn bytes(&self) -> &Bytes {
        self.body.as_ref().expect("body arrives complete")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(self.bytes()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The problem document's `code`, after checking the RFC 9457 shape and the request id.
    pub fn problem(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["status"], self.status, "{body}");
        for field in ["type", "title", "detail", "code", "requestId"] {
            assert!(body[field].is_string(), "{field} missing in {body}");
        }
        assert_eq!(body["requestId"].as_str(), self.header("x-request-id"));
        body["code"].as_str().unwrap().to_string()
    }

    /// What the `echo` worker says it received.
    pub fn echoed_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name].as_str().map(str::to_string)
    }
}

pub struct Request<'a> {
    pub method: &'a str,
    pub host: Option<&'a str>,
    pub target: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
}

pub fn get<'a>(host: &'a str, target: &'a str) -> Request<'a> {
    Request {
        method: "GET",
        host: Some(host),
        target,
        headers: Vec::new(),
    }
}

pub fn request<'a>(method: &'a str, host: &'a str, target: &'a str) -> Request<'a> {
    Request {
        method,
        host: Some(host),
        target,
        headers: Vec::new(),
    }
}

impl<'a> Request<'a> {
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn builder(&self) -> http::request::Builder {
        let mut builder = http::Request::builder().method(self.method).uri(self.target);
        if let Some(host) = self.host {
            builder = builder.header("host", host);
        }
        for (name, value) in &self.headers {
            builder = builder.header(*name, *value);
        }
        builder
    }

    pub async fn send(self, app: &App) -> Reply {
        self.send_body(app, Bytes::new()).await
    }

    pub async fn send_body(self, app: &App, body: impl Into<Bytes>) -> Reply {
        let request = self.builder().body(Full::new(body.into())).expect("valid request");
        collect(app.handle(request, CLIENT.parse::<SocketAddr>().unwrap()).await).await
    }

    /// Sends `chunks` as a streamed body with no `Content-Length`.
    pub async fn send_stream(self, app: &App, chunks: Vec<Bytes>) -> Reply {
        let stream = futures::stream::iter(chunks.into_iter().map(|c| Ok::<_, Infallible>(Frame::data(c))));
        let request = self.builder().body(StreamBody::new(stream)).expect("valid request");
        collect(app.handle(request, CLIENT.parse::<SocketAddr>().unwrap()).await).await
    }
}

async fn collect(response: http::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).map_err(|e| e.to_string());
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// The dispatcher's access-log lines, once every dispatcher invocation has finished.
pub async fn access_log(app: &App) -> Vec<Value> {
    app.wait_idle("dispatcher").await;
    app.stdout("dispatcher")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}")))
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
