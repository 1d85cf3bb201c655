//! The whole app served over real HTTP (by the test host and by a real `spin up`), checked by
//! tools that know nothing about this code: an independent OpenAPI 3.1 validator and
//! schemathesis (PyPI, installed by `scripts/python-env`), and Debian's chromium rendering the
//! docs with the network otherwise closed.
//!
//! Schemathesis runs deterministically (`--generation-deterministic`), so CI gives the same
//! verdict every time. To explore with random inputs instead, set `LIBRA_SCHEMATHESIS_SEED` to a
//! number (or to `random`) and run this test by hand:
//! `LIBRA_SCHEMATHESIS_SEED=random cargo test -p libra-test-host --test e2e schemathesis`.

use std::path::PathBuf;
use std::process::Output;

use bytes::Bytes;
use libra_test_host::project_root;
use serde_json::Value;
use tokio::process::Command;

use crate::support::*;

/// The app with one more worker, `my-app` (the `echo` component under the name the OpenAPI
/// document uses in its examples), so the document's own examples reach a real worker.
async fn serve(host: HostKind) -> Running {
    let spec = spec()
        .worker("my-app", "echo")
        .variable("workers", "echo,faulty,hello,my-app");
    start(host, spec).await
}

/// One GET over a real TCP connection, with the server's address as the Host.
async fn http_get(app: &Running, path: &str) -> (u16, Bytes) {
    let reply = get(&app.addr.to_string(), path).send(app).await;
    (reply.status, reply.bytes().clone())
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

fn report(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

on_both_hosts!(the_served_document_passes_an_independent_openapi_validator);
async fn the_served_document_passes_an_independent_openapi_validator(host: HostKind) {
    let app = serve(host).await;
    let (status, body) = http_get(&app, "/openapi.json").await;
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

on_both_hosts!(schemathesis_finds_no_response_that_breaks_the_document_and_no_5xx);
async fn schemathesis_finds_no_response_that_breaks_the_document_and_no_5xx(host: HostKind) {
    let app = serve(host).await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("schemathesis.json");
    let mut command = Command::new(python_tool("schemathesis"));
    command
        .arg("--no-color")
        .arg("--config-file")
        .arg(project_root().join("tests/python/schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", app.url()), "--url", &app.url()])
        .args(["--checks", "all", "--report", "json", "--report-json-path"])
        .arg(&report_path)
        .current_dir(dir.path());
    match std::env::var("LIBRA_SCHEMATHESIS_SEED").ok().as_deref() {
        None | Some("") => command.arg("--generation-deterministic"),
        Some("random") => &mut command,
        Some(seed) => command.args(["--seed", seed]),
    };
    let output = command.output().await.unwrap();
    let text = report(&output);
    // The verdict is the exit code and the report's counts, not a summary line (warnings change
    // that line without anything being wrong).
    assert!(output.status.success(), "{text}");
    let run: Value = serde_json::from_slice(&std::fs::read(&report_path).expect("a JSON report")).unwrap();
    assert_eq!(run["exit_code"], 0, "{text}");
    assert_eq!(run["failures"], serde_json::json!([]), "{text}");
    assert_eq!(run["errors"], serde_json::json!([]), "{text}");
    assert_eq!(run["test_cases"]["with_failures"], 0, "{text}");
    assert_eq!(run["test_cases"]["errored"], 0, "{text}");
    assert_eq!(run["operations"]["errored"], 0, "{text}");
    assert!(run["test_cases"]["generated"].as_u64().unwrap() > 1000, "{text}");
    // Every operation had valid test data: each dispatch operation, OPTIONS included, reached
    // a worker with the document's example name.
    assert_eq!(run["warnings"]["missing_test_data"], serde_json::json!([]), "{text}");
    // It reached real workers through the dispatcher, not only error paths.
    let forwarded = app
        .wait_for_log(|l| (l["worker"] == "echo" || l["worker"] == "my-app") && l["status"] == 200)
        .await
        .len();
    assert!(forwarded > 10, "only {forwarded} requests reached a worker");
}

on_both_hosts!(the_docs_render_every_endpoint_in_a_real_browser_offline);
async fn the_docs_render_every_endpoint_in_a_real_browser_offline(host: HostKind) {
    let app = serve(host).await;
    let document = libra_dispatcher::openapi::document();
    let profile = tempfile::tempdir().unwrap();
    let browse = |extra: &[&str]| {
        let mut command = headless_chromium(profile.path());
        command.args(extra).arg(format!("{}/docs", app.url()));
        command
    };
    let output = browse(&["--dump-dom"]).output().await.unwrap();
    assert!(output.status.success(), "{}", report(&output));
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(dom.contains("<title>libra-dispatcher API</title>"));
    let text = visible_text(&dom);
    for (path, operations) in document["paths"].as_object().unwrap() {
        // The reference shows each path once; aliases whose operations are all hidden
        // (`x-scalar-ignore`) are named in the dispatch operations' text instead.
        let shown = operations
            .as_object()
            .unwrap()
            .values()
            .any(|op| op.get("x-scalar-ignore").is_none());
        if shown {
            assert!(text.contains(path.as_str()), "{path} is not on the rendered page");
        } else if path.contains('{') {
            assert!(!text.contains(path.as_str()), "{path} is hidden, yet rendered");
        }
    }
    assert!(text.contains("/api/dispatch"), "the aliases are mentioned");
    // "Any method" is said once per path, not once per method.
    let repeated = text
        .matches("Path dispatch: the worker receives /<path> and the query")
        .count();
    assert_eq!(repeated, 1, "{text}");
    assert!(text.contains("Dependency checks: a real database round trip"), "{text}");

    // The browser fetched the script and the document from the app itself.
    for path in ["/docs", "/docs/scalar.js", "/openapi.json"] {
        app.wait_for_log(|l| l["path"] == path && l["status"] == 200 && l["route"] == "docs")
            .await;
    }

    let screenshot = project_root().join(format!("target/api-docs-{host:?}.png").to_lowercase());
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
