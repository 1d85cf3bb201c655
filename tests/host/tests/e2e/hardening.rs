//! Tenant isolation and hardening: what one tenant can do to others, what unauthenticated input
//! costs, and that every wait has a bound.

use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use libra_dispatcher::cache::{self, CacheEntry};
use libra_test_host::postgres_server::TestPostgres;
use libra_test_host::project_root;

use crate::support::*;

/// `/headers` of the faulty worker answers with the headers in its query.
fn headers_target(prefix: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(n, v)| {
            let value: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{n}={value}")
        })
        .collect();
    format!("{prefix}/headers?{}", query.join("&"))
}

const HOSTILE: &[(&str, &str)] = &[
    ("strict-transport-security", "max-age=0; includeSubDomains"),
    ("nel", r#"{"report_to":"x","max_age":86400}"#),
    (
        "report-to",
        r#"{"group":"x","endpoints":[{"url":"https://evil.example/"}]}"#,
    ),
    ("reporting-endpoints", "x=\"https://evil.example/\""),
    ("clear-site-data", "\"cookies\""),
    ("alt-svc", "h3=\":443\""),
    ("service-worker-allowed", "/"),
    ("origin-agent-cluster", "?0"),
    ("set-cookie", "sid=x; Domain=localhost; Path=/"),
    ("x-app", "kept"),
    ("cache-control", "no-store"),
];

on_both_hosts!(a_worker_cannot_set_headers_that_act_on_other_tenants);
async fn a_worker_cannot_set_headers_that_act_on_other_tenants(host: HostKind) {
    let app = app(host).await;
    // Path dispatch (query dispatch alike): the dispatcher's origin, shared by every tenant.
    // Only the allow-list passes.
    for target in [headers_target("/dispatch/faulty", HOSTILE)] {
        let reply = get("localhost", &target).send(&app).await;
        assert_eq!(reply.status, 200, "{target}");
        // Framing (content-length or transfer-encoding) is the server's own.
        let mut names: Vec<&str> = reply
            .headers
            .keys()
            .map(|k| k.as_str())
            .filter(|n| !matches!(*n, "content-length" | "transfer-encoding"))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names,
            vec![
                "cache-control",
                "content-security-policy",
                "date",
                "x-app",
                "x-request-id"
            ],
            "{target}"
        );
        assert_eq!(reply.header_all("content-security-policy"), vec!["sandbox"]);
    }
    // A tenant's subdomain is its own origin, but the site is shared: its cookies stay
    // host-only and it cannot clear the site's data.
    let reply = get("faulty.localhost", &headers_target("", HOSTILE)).send(&app).await;
    assert_eq!(reply.header_all("set-cookie"), vec!["sid=x; Path=/"]);
    assert_eq!(reply.header("clear-site-data"), None);
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=0; includeSubDomains"),
        "its own origin's HSTS is the tenant's business"
    );
    let own = get(
        "faulty.localhost",
        &headers_target("", &[("set-cookie", "sid=x; Domain=faulty.localhost")]),
    )
    .send(&app)
    .await;
    assert_eq!(own.header_all("set-cookie"), vec!["sid=x; Domain=faulty.localhost"]);
}

on_both_hosts!(provenance_headers_of_other_proxies_never_reach_a_worker);
async fn provenance_headers_of_other_proxies_never_reach_a_worker(host: HostKind) {
    let app = app(host).await;
    let reply = get("echo.localhost", "/")
        .header("cf-connecting-ip", "6.6.6.6")
        .header("cf-ipcountry", "XX")
        .header("true-client-ip", "6.6.6.6")
        .header("x-client-ip", "6.6.6.6")
        .header("x-cluster-client-ip", "6.6.6.6")
        .header("x-original-host", "victim.localhost")
        .header("x-rewrite-url", "/admin")
        .header("x_forwarded_for", "6.6.6.6")
        .header("x_real_ip", "6.6.6.6")
        .header("x_forwarded_host", "victim.localhost")
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
    let headers = reply.json()["headers"].clone();
    let seen = headers.to_string();
    assert!(
        !seen.contains("6.6.6.6") && !seen.contains("victim") && !seen.contains("/admin"),
        "{seen}"
    );
    // Judged on the names alone: a value (the random request id) may well contain "cf-".
    let names: Vec<&String> = headers.as_object().expect("the echoed headers").keys().collect();
    assert!(
        names.iter().all(|name| !name.starts_with("cf-") && !name.contains('_')),
        "{names:?}"
    );
    // On the shared origin the platform's cookies are not a tenant's to read.
    let shared = get("localhost", "/dispatch/echo/")
        .header("cookie", "platform-session=secret")
        .send(&app)
        .await;
    assert_eq!(shared.echoed_header("cookie"), None);
    let own = get("echo.localhost", "/").header("cookie", "a=1").send(&app).await;
    assert_eq!(own.echoed_header("cookie").as_deref(), Some("a=1"));
}

on_both_hosts!(paths_and_hosts_that_an_edge_would_read_differently_are_refused);
async fn paths_and_hosts_that_an_edge_would_read_differently_are_refused(host: HostKind) {
    let app = app(host).await;
    for target in [
        "/dispatch/echo/../hello/",
        "/dispatch/echo/a/%2e%2e/b",
        "/dispatch/./echo/",
        "/api/dispatch/echo/%2E/x",
    ] {
        let reply = get("localhost", target).send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (400, "invalid_path"),
            "{target}"
        );
    }
    assert_eq!(
        get("localhost", "/dispatch/echo/.well-known/x").send(&app).await.status,
        200
    );
    // An empty port is the default port (RFC 9110): fine.
    assert_eq!(get("localhost:", "/health").send(&app).await.status, 200);
    for bad in ["[1:2:3]", "[::1%25eth0]", "[fe80::1%eth0]"] {
        let reply = get(bad, "/health").send(&app).await;
        // Spin refuses some authorities itself (status 0: the connection closes unanswered).
        assert!(reply.status == 400 || reply.status == 0, "{bad}: {}", reply.status);
        if reply.status == 400 {
            assert_eq!(reply.problem(), "invalid_host", "{bad}");
        }
    }
}

on_both_hosts!(the_header_limit_counts_only_what_the_client_sent);
async fn the_header_limit_counts_only_what_the_client_sent(host: HostKind) {
    // An 8 KiB target (Spin repeats it in two headers of its own) and 27 KiB of headers: the
    // client sent less than 32 KiB of headers.
    let app = app(host).await;
    let target = format!("/dispatch/echo/{}", "p".repeat(8 * 1024 - 16));
    let value = "v".repeat(9 * 1024);
    let reply = get("localhost", &target)
        .header("x-a", &value)
        .header("x-b", &value)
        .header("x-c", &value)
        .send(&app)
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        reply
            .body
            .as_ref()
            .map_or_else(|e| e.clone(), |b| String::from_utf8_lossy(b).into_owned())
    );
}

on_both_hosts!(a_worker_answering_an_informational_status_is_a_failure);
async fn a_worker_answering_an_informational_status_is_a_failure(host: HostKind) {
    let app = app(host).await;
    for status in [101, 103] {
        let reply = get("faulty.localhost", &format!("/status/{status}")).send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (502, "worker_failed"),
            "{status}"
        );
    }
}

on_both_hosts!(trailers_pass_through_both_ways);
async fn trailers_pass_through_both_ways(host: HostKind) {
    let app = app(host).await;
    // HTTP/1.1 sends trailers to a client that says it accepts them.
    let reply = get("faulty.localhost", "/trailers")
        .header("te", "trailers")
        .send(&app)
        .await;
    assert_eq!(reply.text(), "with trailers");
    let trailers = reply.trailers.clone().expect("trailers arrived");
    assert_eq!(trailers.get("x-checksum").map(|v| v.to_str().unwrap()), Some("42"));
    // The response filter holds for trailers too: no cookie, no worker-made request id.
    assert!(trailers.get("set-cookie").is_none(), "{trailers:?}");
    assert!(trailers.get("x-request-id").is_none(), "{trailers:?}");

    let (frames, receiver) = tokio::sync::mpsc::channel(4);
    frames.send(Frame::data(Bytes::from_static(b"body"))).await.unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-sent-after", "the-body".parse().unwrap());
    // A trailer can claim the request's origin no more than a header can.
    trailers.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
    frames.send(Frame::trailers(trailers)).await.unwrap();
    drop(frames);
    let reply = app
        .send_frames(
            http::Request::put("/upload")
                .header("host", "echo.localhost")
                .header("trailer", "x-sent-after, x-forwarded-for"),
            receiver,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["body"]["bytes"], 4);
    assert_eq!(reply.json()["trailers"]["x-sent-after"], "the-body");
    assert!(
        reply.json()["trailers"].get("x-forwarded-for").is_none(),
        "{}",
        reply.text()
    );
}

on_both_hosts!(a_slow_upload_is_not_charged_to_the_worker);
async fn a_slow_upload_is_not_charged_to_the_worker(host: HostKind) {
    // The upload takes longer than upstream_timeout_ms (the client pauses between chunks, as a
    // slow client does); the worker answers at once when it is in.
    let app = start(
        host,
        spec()
            .variable("upstream_timeout_ms", "300")
            .variable("idle_timeout_ms", "5000"),
    )
    .await;
    let (frames, receiver) = tokio::sync::mpsc::channel(1);
    let client = tokio::spawn(async move {
        for _ in 0..8 {
            frames
                .send(Frame::data(Bytes::from(vec![1u8; 64 * 1024])))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let reply = app
        .send_frames(http::Request::put("/upload").header("host", "echo.localhost"), receiver)
        .await;
    client.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["body"]["bytes"], 8 * 64 * 1024);
    assert!(log_of(&app, &reply).await["durationMs"].as_f64().unwrap() >= 700.0);
}

on_both_hosts!(a_client_that_stops_sending_its_body_gets_408);
async fn a_client_that_stops_sending_its_body_gets_408(host: HostKind) {
    let app = start(host, spec().variable("idle_timeout_ms", "400")).await;
    let (frames, receiver) = tokio::sync::mpsc::channel(1);
    frames.send(Frame::data(Bytes::from_static(b"a start"))).await.unwrap();
    let reply = app
        .send_frames(http::Request::put("/upload").header("host", "echo.localhost"), receiver)
        .await;
    drop(frames);
    assert_eq!((reply.status, reply.problem().as_str()), (408, "request_timeout"));
}

on_both_hosts!(a_worker_that_stalls_mid_body_has_its_response_cut_short);
async fn a_worker_that_stalls_mid_body_has_its_response_cut_short(host: HostKind) {
    let app = start(host, spec().variable("idle_timeout_ms", "400")).await;
    let reply = get("faulty.localhost", "/stall-mid-body").send(&app).await;
    assert!(reply.status == 200 || reply.status == 0, "{}", reply.status);
    assert!(reply.body.is_err(), "never a complete-looking body");
    let line = app.wait_for_log(|l| l["error"] == "worker_stalled").await;
    assert_eq!(line[0]["worker"], "faulty");
}

on_both_hosts!(a_client_that_stops_reading_a_response_is_let_go);
/// A client that asks for a large body and stops reading it, keeping the connection open, must
/// not hold the dispatcher and the worker for ever: the response is cut after `idle_timeout_ms`
/// without a byte taken.
async fn a_client_that_stops_reading_a_response_is_let_go(host: HostKind) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = start(host, spec().variable("idle_timeout_ms", "400")).await;
    let mut client = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    client
        .write_all(b"GET /stream?bytes=1073741824 HTTP/1.1\r\nHost: faulty.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0u8; 64 * 1024];
    let read = client.read(&mut head).await.unwrap();
    assert!(
        head[..read].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head[..64])
    );
    // The client reads no more but stays connected: the buffers fill and the dispatcher waits.
    let line = app.wait_for_log(|l| l["error"] == "client_stalled").await;
    assert_eq!(line[0]["worker"], "faulty");
    assert_eq!(line[0]["status"], 200);
    drop(client);
}

on_both_hosts!(cheap_checks_cost_no_query_even_with_the_database_down);
async fn cheap_checks_cost_no_query_even_with_the_database_down(host: HostKind) {
    let mut server = TestPostgres::start().expect("postgres starts");
    let schema = std::fs::read_to_string(project_root().join("db/postgres/schema.sql")).unwrap();
    server.execute("postgres", &schema).await.unwrap();
    let app = start(
        host,
        spec()
            .variable("postgres_url", &server.url("postgres"))
            .variable("postgres_host", &server.address()),
    )
    .await;
    server.stop().unwrap();
    let trace = request("TRACE", "shop.example.com", "/").send(&app).await;
    assert_eq!(trace.status, 405);
    let large = request("PUT", "shop.example.com", "/")
        .header("content-length", "999999999999")
        .send(&app)
        .await;
    assert_eq!(large.status, 413);
    // Hosts no tenant can have registered are never looked up.
    for host in ["10.0.0.1", "intranet", "[::1]"] {
        let reply = get(host, "/").send(&app).await;
        assert_eq!(reply.problem(), "custom_domain_not_found", "{host}");
    }
    // And the others are: the database is down, so they are 503.
    assert_eq!(get("shop.example.com", "/").send(&app).await.status, 503);
}

on_both_hosts!(an_open_detailed_health_check_is_no_free_database_ping);
async fn an_open_detailed_health_check_is_no_free_database_ping(host: HostKind) {
    let server = TestPostgres::start().expect("postgres starts");
    server
        .execute("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .unwrap();
    let pings = || async {
        let client = server.client("postgres").await.unwrap();
        let row = client
            .query_one(
                "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query IN ('SELECT 1', 'SELECT $1')",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    for (token, expected) in [(None, 1), (Some("s3cret"), 5)] {
        let mut spec = spec()
            .variable("postgres_url", &server.url("postgres"))
            .variable("postgres_host", &server.address());
        if let Some(token) = token {
            spec = spec.variable("admin_token_sha256", &sha256_hex(token.as_bytes()));
        }
        let app = start(host, spec).await;
        let before = pings().await;
        for _ in 0..5 {
            let reply = get("localhost", "/health/detailed")
                .header("authorization", "Bearer s3cret")
                .send(&app)
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
        // Open to anyone: one round trip for the lot. Behind the token: each one checks.
        assert_eq!(pings().await - before, expected, "token {token:?}");
    }
}

on_both_hosts!(cache_entries_the_dispatcher_would_not_write_are_misses);
async fn cache_entries_the_dispatcher_would_not_write_are_misses(host: HostKind) {
    let app = app(host).await;
    app.sqlite_execute_batch(
        "INSERT INTO project (id, custom_domain, custom_domain_status, production_deploy_url) \
         VALUES ('p1', 'shop.example.com', 'active', 'https://echo.localhost')",
    )
    .unwrap();
    // A tenant (or anyone with the store) plants entries: a reserved name, a foreign spelling,
    // garbage. None of them routes: each is a miss that goes to the database.
    for planted in [
        &b"99999999999 admin"[..],
        b"99999999999 Hello",
        b"99999999999 a_b",
        b"garbage",
    ] {
        let key = cache::key("default", cache::Kind::CustomDomain, "shop.example.com");
        app.key_value_set(&key, planted).unwrap();
        let reply = get("shop.example.com", "/").send(&app).await;
        assert_eq!(reply.status, 200, "{planted:?}");
        assert_eq!(reply.json()["method"], "GET", "echo answered, as the database says");
        let rewritten = CacheEntry::decode(&app.key_value_get(&key).unwrap(), &[]).unwrap();
        assert_eq!(rewritten.worker.unwrap().as_str(), "echo");
    }
    // "Not found" answers live in a bounded set of slots, not under the name.
    assert_eq!(get("nobody.example.com", "/").send(&app).await.status, 404);
    let keys = app.key_value_keys().unwrap();
    assert!(keys.iter().all(|k| !k.contains("nobody")), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.starts_with("default:custom-domain-absent:v1:")),
        "{keys:?}"
    );
}

on_both_hosts!(variables_that_cannot_be_read_fail_closed);
async fn variables_that_cannot_be_read_fail_closed(host: HostKind) {
    // The secret provider is down for `admin_token`, which the admin token used to be. The app
    // no longer has such a variable (its digest is a setting), so nothing asks the provider for
    // it: on Spin 4.0.2, where one failing variable stops every outbound request of the app,
    // forwarding keeps working, and the admin endpoints answer the token's holder.
    let app = start(
        host,
        spec()
            .variable("admin_token_sha256", &sha256_hex(b"t0ken"))
            .failing("admin_token"),
    )
    .await;
    assert_eq!(get("echo.localhost", "/").send(&app).await.status, 200);
    let admin = get("localhost", "/dispatch")
        .header("authorization", "Bearer t0ken")
        .send(&app)
        .await;
    assert_eq!(admin.status, 200);
    assert_eq!(get("localhost", "/dispatch").send(&app).await.status, 401);
    assert_eq!(get("localhost", "/health").send(&app).await.status, 200);

    // The database URL's provider is down: custom domains are unavailable, never answered from
    // the embedded SQLite database instead.
    let app = start(host, spec().failing("postgres_url")).await;
    app.sqlite_execute_batch(
        "INSERT INTO project (id, custom_domain, custom_domain_status, production_deploy_url) \
         VALUES ('p1', 'shop.example.com', 'active', 'https://echo.localhost')",
    )
    .unwrap();
    let reply = get("shop.example.com", "/").send(&app).await;
    assert_eq!(
        (reply.status, reply.problem().as_str()),
        (503, "configuration_unavailable")
    );
    assert!(reply.header("retry-after").is_some());
    let logged = app
        .wait_for_log(|l| l["requestId"] == reply.request_id() && l["variable"] == "postgres_url")
        .await;
    assert_eq!(logged.len(), 1);
    assert_eq!(get("localhost", "/health").send(&app).await.status, 200);
    // Spin 4.0.2 resolves every application variable before a component's first outbound
    // request, and refuses all of them when one fails: no worker can be reached at all then
    // (see docs/performance.md). The dispatcher's own answers still come.
    assert_eq!(get("echo.localhost", "/").send(&app).await.status, 502);
    assert_eq!(get("ghost.localhost", "/").send(&app).await.status, 404);
}

on_both_hosts!(options_asterisk_is_answered_by_the_dispatcher_on_every_host);
async fn options_asterisk_is_answered_by_the_dispatcher_on_every_host(host: HostKind) {
    let app = app(host).await;
    for host in ["localhost", "echo.localhost", "shop.example.com"] {
        let reply = request("OPTIONS", host, "*").send(&app).await;
        assert_eq!(reply.status, 204, "{host}");
        assert_eq!(
            reply.header("allow"),
            Some("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            "{host}"
        );
        assert_eq!(log_of(&app, &reply).await["worker"], serde_json::Value::Null, "{host}");
    }
}
