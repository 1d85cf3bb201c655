//! Request helpers shared by the end-to-end tests. Every request goes over real HTTP to the app,
//! served by the test host or by a real `spin up` (see [`on_both_hosts!`]).

use bytes::Bytes;
use http_body_util::Full;
pub use libra_test_host::harness::{AppSpec, HostKind, Reply, Running};
use serde_json::Value;

/// Runs the test function `$name(host: HostKind)` on both hosts, as `$name::test_host` and
/// `$name::spin`: written once, checked against the test host and a real `spin up`.
macro_rules! on_both_hosts {
    ($name:ident) => {
        mod $name {
            use super::HostKind;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn test_host() {
                super::$name(HostKind::TestHost).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn spin() {
                super::$name(HostKind::Spin).await
            }
        }
    };
}
pub(crate) use on_both_hosts;

/// The shipped manifest plus the test-only `faulty` worker in the namespace, and the custom-domain
/// table (no rows) in the embedded SQLite database.
pub fn spec() -> AppSpec {
    AppSpec::default()
        .worker("faulty", "faulty")
        .variable("workers", "echo,faulty,hello")
        .sqlite_file("db/sqlite/schema.sql")
}

pub async fn start(host: HostKind, spec: AppSpec) -> Running {
    Running::start(host, &spec).await.expect("the app starts")
}

/// The default app on `host`.
pub async fn app(host: HostKind) -> Running {
    start(host, spec()).await
}

/// What the project's tests ask of a response beyond the harness' basics.
pub trait ReplyExt {
    fn problem(&self) -> String;
    fn echoed_header(&self, name: &str) -> Option<String>;
}

impl ReplyExt for Reply {
    /// The problem document's `code`, after checking the RFC 9457 shape and the request id.
    fn problem(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "status {}: {}",
            self.status,
            self.body
                .as_ref()
                .map_or_else(|e| e.clone(), |b| String::from_utf8_lossy(b).into_owned())
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
    fn echoed_header(&self, name: &str) -> Option<String> {
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
    request("GET", host, target)
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

    pub async fn send(self, app: &Running) -> Reply {
        self.send_body(app, Bytes::new()).await
    }

    pub async fn send_body(self, app: &Running, body: impl Into<Bytes>) -> Reply {
        let request = self.builder().body(Full::new(body.into())).expect("valid request");
        app.send(request).await
    }

    /// Sends `chunks` as a streamed body with no `Content-Length`.
    pub async fn send_stream(self, app: &Running, chunks: Vec<Bytes>) -> Reply {
        app.send_stream(self.builder(), chunks).await
    }
}

/// The access-log line of the request `reply` answered.
pub async fn log_of(app: &Running, reply: &Reply) -> Value {
    app.access_line(reply.request_id()).await
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Debian's chromium (`CHROMIUM` overrides the path), headless, with a profile of its own in
/// `profile`, and no name resolving but `127.0.0.1`: nothing but the test's loopback servers can
/// be reached. The caller adds what it does (`--dump-dom`, `--screenshot`) and the URL.
pub fn headless_chromium(profile: &std::path::Path) -> tokio::process::Command {
    let path = std::path::PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.exists(),
        "{} is missing: apt-get install chromium (.ci/run does)",
        path.display()
    );
    let mut command = tokio::process::Command::new(path);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ])
        .args(["--disable-component-update", "--disable-sync", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        .arg("--virtual-time-budget=20000");
    command
}

/// One of the project's Python scripts (`scripts/<name>`), run by the virtualenv's interpreter
/// from the repository's root.
pub fn python_script(name: &str) -> std::process::Command {
    let root = libra_test_host::project_root();
    let python = root.join("target/python/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/python-env (scripts/test does)",
        python.display()
    );
    let mut command = std::process::Command::new(python);
    command.arg(root.join("scripts").join(name)).current_dir(root);
    command
}

/// Why a checker's verdict on a copy with one mistake is not the refusal expected (exit 1, with
/// `says` in its messages); `None` when it is.
pub fn unexpected_verdict(what: &str, says: &str, output: &std::process::Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code() != Some(1) || !stderr.contains(says)).then(|| {
        format!(
            "{what}: expected exit 1 and {says:?}, got {:?}:\n{stderr}",
            output.status.code()
        )
    })
}
