//! CORS for the dispatcher's own API (`cors_origins`): over real HTTP on both hosts, and in a
//! real browser (Debian's headless chromium), where a page on another origin either can read
//! `/openapi.json`, `/health` and `/health/detailed` or cannot, and never a tenant's path.

use std::net::SocketAddr;

use libra_test_host::ports::free_port;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

const CONSOLE: &str = "https://console.example.com";

async fn with_cors(host: HostKind, origins: &str) -> Running {
    start(host, spec().variable("cors_origins", origins)).await
}

on_both_hosts!(the_api_answers_allowed_origins_and_tenants_keep_their_own_cors);
async fn the_api_answers_allowed_origins_and_tenants_keep_their_own_cors(host: HostKind) {
    let app = with_cors(host, CONSOLE).await;
    for path in ["/health", "/dispatch", "/health/detailed", "/openapi.json"] {
        let reply = get("localhost:3000", path).header("origin", CONSOLE).send(&app).await;
        assert!(matches!(reply.status, 200 | 503), "{path}: {}", reply.status);
        assert_eq!(reply.header("access-control-allow-origin"), Some(CONSOLE), "{path}");
        assert_eq!(reply.header("vary"), Some("Origin"), "{path}");
        assert!(
            reply
                .header("access-control-expose-headers")
                .unwrap()
                .contains("x-request-id")
        );
        assert_eq!(reply.header("access-control-allow-credentials"), None, "{path}");
        // Another origin: no permission, and `Vary` so no cache hands the first one's answer on.
        let other = get("localhost:3000", path)
            .header("origin", "https://console.example.com.evil.test")
            .send(&app)
            .await;
        assert_eq!(other.header("access-control-allow-origin"), None, "{path}");
        assert_eq!(other.header("vary"), Some("Origin"), "{path}");
    }
    // A refusal of the API is readable too (the page learns why).
    let refused = get("localhost:3000", "/dispatch/explain")
        .header("origin", CONSOLE)
        .send(&app)
        .await;
    assert_eq!(refused.problem(), "invalid_url");
    assert_eq!(refused.header("access-control-allow-origin"), Some(CONSOLE));

    // The preflight, answered by the dispatcher, without the admin token it never carries.
    let preflight = request("OPTIONS", "localhost:3000", "/health/detailed")
        .header("origin", CONSOLE)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send(&app)
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(CONSOLE));
    assert_eq!(preflight.header("access-control-allow-methods"), Some("GET, HEAD"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("authorization"));
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    // An `OPTIONS` that is no preflight is routed as it always was.
    let plain = request("OPTIONS", "localhost:3000", "/health").send(&app).await;
    assert_eq!((plain.status, plain.header("allow")), (405, Some("GET, HEAD")));
    let line = app.access_line(preflight.request_id()).await;
    assert_eq!(
        (line["method"].as_str(), line["status"].as_u64()),
        (Some("OPTIONS"), Some(204))
    );
    // A method the API does not serve is not allowed.
    let delete = request("OPTIONS", "localhost:3000", "/health")
        .header("origin", CONSOLE)
        .header("access-control-request-method", "DELETE")
        .send(&app)
        .await;
    assert_eq!(delete.status, 204);
    assert_eq!(delete.header("access-control-allow-origin"), None);

    // Tenants own their CORS: their headers pass through untouched, and the dispatcher adds
    // nothing on their hosts or paths, not even `Vary`.
    let tenant_cors = "/headers?access-control-allow-origin=https%3A%2F%2Fshop.test";
    for (host, target) in [
        ("faulty.localhost:3000".to_string(), tenant_cors.to_string()),
        ("localhost:3000".to_string(), format!("/dispatch/faulty{tenant_cors}")),
    ] {
        let reply = get(&host, &target).header("origin", CONSOLE).send(&app).await;
        assert_eq!(reply.status, 200, "{host}{target}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("https://shop.test"),
            "{host}{target}"
        );
        assert_eq!(reply.header("vary"), None, "{host}{target}");
    }
    for (host, target) in [
        ("echo.localhost:3000", "/health"),
        ("localhost:3000", "/dispatch/echo/health"),
        ("localhost:3000", "/dispatch?worker=echo"),
    ] {
        let reply = request("OPTIONS", host, target)
            .header("origin", CONSOLE)
            .header("access-control-request-method", "GET")
            .send(&app)
            .await;
        assert_eq!(
            reply.status, 200,
            "{host}{target}: the tenant answers its own preflight"
        );
        assert_eq!(reply.json()["method"], "OPTIONS");
        assert_eq!(reply.header("access-control-allow-origin"), None, "{host}{target}");
    }
}

on_both_hosts!(a_malformed_cors_setting_fails_the_api_paths_only);
async fn a_malformed_cors_setting_fails_the_api_paths_only(host: HostKind) {
    let app = with_cors(host, "console.example.com").await;
    let reply = get("localhost:3000", "/health")
        .header("origin", CONSOLE)
        .send(&app)
        .await;
    assert_eq!((reply.status, reply.problem().as_str()), (500, "configuration_error"));
    let line = app.access_line(reply.request_id()).await;
    assert_eq!(
        (line["variable"].as_str(), line["setting"].as_str()),
        (Some("settings"), Some("cors_origins")),
        "{line}"
    );
    assert!(
        line["problem"].as_str().unwrap().contains("'console.example.com'"),
        "{line}"
    );
    // The tenants are not touched by it.
    assert_eq!(get("echo.localhost:3000", "/").send(&app).await.status, 200);
}

/// Serves `page` to every request on `listener`, over plain HTTP/1.1, until dropped.
fn serve_page(listener: TcpListener, page: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    })
}

/// What a page on `http://127.0.0.1:<page port>` could read from the API at `app`, by `fetch`
/// in headless chromium: one result per probe, `{"ok": true, "status": ...}` when the browser
/// let the page read the answer, `{"ok": false, ...}` when it did not.
async fn what_a_page_reads(app: &Running, page_listener: TcpListener) -> Value {
    let page_addr: SocketAddr = page_listener.local_addr().unwrap();
    let page = format!(
        r#"<!doctype html><meta charset="utf-8"><title>console</title><pre id="out">pending</pre>
<script>
const api = "{api}";
async function probe(path, init) {{
  try {{
    const reply = await fetch(api + path, init);
    const text = await reply.text();
    return {{ ok: true, status: reply.status, openapi: text.includes('"openapi"'), requestId: reply.headers.get("x-request-id") }};
  }} catch (error) {{
    return {{ ok: false, error: String(error) }};
  }}
}}
(async () => {{
  const results = {{
    openapi: await probe("/openapi.json"),
    health: await probe("/health"),
    detailed: await probe("/health/detailed", {{ headers: {{ authorization: "Bearer not-needed-in-development" }} }}),
    tenant: await probe("/dispatch/echo/"),
  }};
  document.getElementById("out").textContent = "RESULTS" + JSON.stringify(results) + "END";
}})();
</script>"#,
        api = app.url()
    );
    let server = serve_page(page_listener, page);
    let profile = tempfile::tempdir().unwrap();
    let output = headless_chromium(profile.path())
        .arg("--dump-dom")
        .arg(format!("http://{page_addr}/"))
        .output()
        .await
        .unwrap();
    server.abort();
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    let start = dom.find("RESULTS").unwrap_or_else(|| {
        panic!(
            "the page never finished: {}\n{}",
            dom,
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let end = dom.find("END").expect("the results' end");
    let json = dom[start + "RESULTS".len()..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

async fn page_listener() -> TcpListener {
    TcpListener::bind(("127.0.0.1", free_port().unwrap())).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_reads_the_api_only_when_its_origin_is_allowed() {
    // Allowed: the page's own origin is in `cors_origins`.
    let listener = page_listener().await;
    let page_origin = format!("http://{}", listener.local_addr().unwrap());
    let app = with_cors(HostKind::Spin, &format!("{CONSOLE}, {page_origin}")).await;
    let read = what_a_page_reads(&app, listener).await;
    for probe in ["openapi", "health", "detailed"] {
        assert_eq!(read[probe]["ok"], true, "{probe}: {read}");
    }
    assert_eq!(read["openapi"]["status"], 200, "{read}");
    assert_eq!(read["openapi"]["openapi"], true, "the page read the document: {read}");
    assert_eq!(read["health"]["status"], 200, "{read}");
    assert!(
        read["health"]["requestId"].is_string(),
        "X-Request-Id is exposed: {read}"
    );
    // A tenant's path is the tenant's: echo sets no CORS header, so the page cannot read it.
    assert_eq!(read["tenant"]["ok"], false, "{read}");

    // Not allowed: the same page, a dispatcher that allows only the console.
    let listener = page_listener().await;
    let app = with_cors(HostKind::Spin, CONSOLE).await;
    let read = what_a_page_reads(&app, listener).await;
    for probe in ["openapi", "health", "detailed", "tenant"] {
        assert_eq!(read[probe]["ok"], false, "{probe}: {read}");
    }
    // The browser did reach the dispatcher: it is CORS that kept the answers from the page.
    app.wait_for_log(|line| line["path"] == "/health" && line["status"] == 200)
        .await;
    app.wait_for_log(|line| line["path"] == "/openapi.json" && line["status"] == 200)
        .await;
}
