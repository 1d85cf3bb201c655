//! The API's description and docs, served by the `docs` component through the dispatcher, on
//! dispatcher hosts only.

use crate::support::*;

on_both_hosts!(openapi_json_is_the_document_built_from_the_router);
async fn openapi_json_is_the_document_built_from_the_router(host: HostKind) {
    let app = app(host).await;
    let reply = get("localhost:3000", "/openapi.json").send(&app).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("x-request-id").is_some());
    assert_eq!(reply.json(), libra_dispatcher::openapi::document());
}

on_both_hosts!(docs_page_script_and_icon_are_served_offline);
async fn docs_page_script_and_icon_are_served_offline(host: HostKind) {
    let app = app(host).await;
    let page = get("localhost", "/docs").send(&app).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = page.text();
    assert!(html.contains("<title>libra-dispatcher API</title>"), "{html}");
    assert!(html.contains(r#"<script src="/docs/scalar.js"></script>"#));
    assert!(html.contains("url: '/openapi.json'"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing off-site: {html}"
    );
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(policy.contains("connect-src 'self'") && policy.contains("script-src 'self' 'sha256-"));
    // Not the sandbox of tenant responses on this origin: the page must run its script.
    assert!(!policy.contains("sandbox"));

    let script = get("localhost", "/docs/scalar.js").send(&app).await;
    assert_eq!(script.status, 200);
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert!(
        script
            .text()
            .starts_with("/*! @scalar/api-reference 1.76.0 | MIT License")
    );
    assert!(script.bytes().len() > 1_000_000, "the whole bundle");

    let icon = get("127.0.0.1", "/favicon.ico").send(&app).await;
    assert_eq!(icon.status, 200);
    assert_eq!(icon.header("content-type"), Some("image/x-icon"));
    let shipped = std::fs::read(libra_test_host::project_root().join("components/docs/assets/favicon.ico")).unwrap();
    assert_eq!(icon.bytes().as_ref(), shipped.as_slice());
}

on_both_hosts!(head_answers_without_a_body_and_writes_are_refused);
async fn head_answers_without_a_body_and_writes_are_refused(host: HostKind) {
    let app = app(host).await;
    let head = request("HEAD", "localhost", "/openapi.json").send(&app).await;
    assert_eq!(head.status, 200);
    assert!(head.bytes().is_empty());
    let post = request("POST", "localhost", "/docs").send(&app).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.problem(), "method_not_allowed");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

on_both_hosts!(tenant_hosts_keep_their_own_docs_paths);
async fn tenant_hosts_keep_their_own_docs_paths(host: HostKind) {
    let app = app(host).await;
    for path in ["/docs", "/openapi.json", "/favicon.ico", "/docs/scalar.js"] {
        let reply = get("echo.localhost", path).send(&app).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.json()["path"], path, "echo answered {path}");
    }
}

on_both_hosts!(the_docs_component_is_not_a_worker);
async fn the_docs_component_is_not_a_worker(host: HostKind) {
    let app = app(host).await;
    let by_path = get("localhost", "/dispatch/docs/openapi.json").send(&app).await;
    assert_eq!(by_path.status, 400);
    assert_eq!(by_path.problem(), "reserved_worker_name");
    let by_query = get("localhost", "/dispatch?worker=docs").send(&app).await;
    assert_eq!(by_query.problem(), "reserved_worker_name");
    let by_host = get("docs.localhost", "/openapi.json").send(&app).await;
    assert_eq!(by_host.status, 400);
    assert_eq!(by_host.problem(), "reserved_worker_name");
    let unknown = get("localhost", "/docs/other.js").send(&app).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.problem(), "not_found");
}

on_both_hosts!(docs_requests_are_logged_as_such);
async fn docs_requests_are_logged_as_such(host: HostKind) {
    let app = app(host).await;
    let reply = get("localhost", "/docs").send(&app).await;
    assert_eq!(reply.status, 200);
    let line = log_of(&app, &reply).await;
    assert_eq!(line["path"], "/docs");
    assert_eq!(line["route"], "docs");
    assert_eq!(line["worker"], "docs");
    assert_eq!(line["status"], 200);
}

on_both_hosts!(the_script_is_gzipped_for_clients_that_accept_it);
async fn the_script_is_gzipped_for_clients_that_accept_it(host: HostKind) {
    use std::io::Read;

    let app = app(host).await;
    let plain = get("localhost", "/docs/scalar.js").send(&app).await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("accept-encoding"));

    let gzipped = get("localhost", "/docs/scalar.js")
        .header("accept-encoding", "gzip, deflate, br")
        .send(&app)
        .await;
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gzipped.header("vary"), Some("accept-encoding"));
    assert!(gzipped.bytes().len() * 2 < plain.bytes().len(), "compressed");
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(gzipped.bytes().as_ref())
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated.as_slice(), plain.bytes().as_ref());

    let refused = get("localhost", "/docs/scalar.js")
        .header("accept-encoding", "gzip;q=0, identity")
        .send(&app)
        .await;
    assert_eq!(refused.header("content-encoding"), None);
}
