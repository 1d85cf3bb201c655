//! The whole app served over real HTTP (the test host's `serve_http`), checked by tools that
//! know nothing about this code: an independent OpenAPI 3.1 validator and schemathesis (PyPI,
//! installed by `scripts/python-env`), and Debian's chromium rendering the docs with the network
//! otherwise closed.

use std::path::PathBuf;
use std::process::Output;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use libra_test_host::{HttpServer, project_root, serve_http};
use serde_json::Value;
use tokio::process::Command;

use crate::support::*;

async fn serve() -> (libra_test_host::App, HttpServer) {
    let app = app();
    let server = serve_http(app.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds a free port");
    (app, server)
}

/// One GET over a real TCP connection, with the server's address as the Host.
async fn http_get(server: &HttpServer, path: &str) -> (u16, Bytes) {
    let stream = tokio::net::TcpStream::connect(server.addr).await.expect("connects");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", server.addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("answers");
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.expect("whole body").to_bytes(),
    )
}

fn python_tool(name: &str) -> PathBuf {
    let path = project_root().join("target/python/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/python-env (scripts/test does)",
        path.display()
    );
    path
}

fn chromium() -> PathBuf {
    let path = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.exists(),
        "{} is missing: apt-get install chromium (.ci/run does)",
        path.display()
    );
    path
}

fn report(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_passes_an_independent_openapi_validator() {
    let (_app, server) = serve().await;
    let (status, body) = http_get(&server, "/openapi.json").await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_slice(&body).expect("JSON");
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("openapi.json");
    std::fs::write(&valid, &body).unwrap();
    let output = Command::new(python_tool("openapi-spec-validator"))
        .arg(&valid)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", report(&output));

    // The validator really judges: the same document with a response that lacks its required
    // description is refused.
    let mut broken = document.clone();
    broken["paths"]["/health"]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let invalid = dir.path().join("broken.json");
    std::fs::write(&invalid, serde_json::to_vec(&broken).unwrap()).unwrap();
    let output = Command::new(python_tool("openapi-spec-validator"))
        .arg(&invalid)
        .output()
        .await
        .unwrap();
    assert!(
        !output.status.success(),
        "a broken document passed: {}",
        report(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_response_that_breaks_the_document_and_no_5xx() {
    let (app, server) = serve().await;
    let output = Command::new(python_tool("schemathesis"))
        .arg("--no-color")
        .arg("--config-file")
        .arg(project_root().join("tests/python/schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", server.url()), "--url", &server.url()])
        .args(["--checks", "all"])
        .output()
        .await
        .unwrap();
    let text = report(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("No issues found"), "{text}");
    // It reached real workers through the dispatcher, not only error paths.
    let log = access_log(&app).await;
    let forwarded = log
        .iter()
        .filter(|l| l["worker"] == "echo" && l["status"] == 200)
        .count();
    assert!(forwarded > 10, "only {forwarded} requests reached echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_render_every_endpoint_in_a_real_browser_offline() {
    let (app, server) = serve().await;
    let document = libra_dispatcher::openapi::document();
    let profile = tempfile::tempdir().unwrap();
    let browse = |extra: &[&str]| {
        let mut command = Command::new(chromium());
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
            ])
            .args(["--disable-component-update", "--disable-sync", "--no-first-run"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // No name resolves, so nothing but this loopback server can be reached.
            .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
            .arg("--virtual-time-budget=20000")
            .args(extra)
            .arg(format!("{}/docs", server.url()));
        command
    };
    let output = browse(&["--dump-dom"]).output().await.unwrap();
    assert!(output.status.success(), "{}", report(&output));
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(dom.contains("<title>libra-dispatcher API</title>"));
    let text = visible_text(&dom);
    for path in document["paths"].as_object().unwrap().keys() {
        assert!(text.contains(path.as_str()), "{path} is not on the rendered page");
    }
    assert!(text.contains("Dependency checks: a real database round trip"), "{text}");

    // The browser fetched the script and the document from the app itself.
    let log = access_log(&app).await;
    for path in ["/docs", "/docs/scalar.js", "/openapi.json"] {
        assert!(
            log.iter()
                .any(|l| l["path"] == path && l["status"] == 200 && l["route"] == "docs"),
            "the browser did not load {path}"
        );
    }

    let screenshot = project_root().join("target/api-docs.png");
    let output = browse(&[
        "--window-size=1400,1000",
        &format!("--screenshot={}", screenshot.display()),
    ])
    .output()
    .await
    .unwrap();
    assert!(output.status.success(), "{}", report(&output));
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "an image with content"
    );
}

/// The text a reader sees: no scripts, styles or tags, entities decoded, whitespace collapsed.
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        text.push(' ');
        let tail = &rest[start..];
        let skip_to = ["script", "style"]
            .iter()
            .find(|tag| tail[1..].starts_with(*tag))
            .and_then(|tag| tail.find(&format!("</{tag}>")).map(|end| end + tag.len() + 3));
        let end = match skip_to {
            Some(end) => end,
            None => tail.find('>').map_or(tail.len(), |end| end + 1),
        };
        rest = &tail[end..];
    }
    text.push_str(rest);
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
