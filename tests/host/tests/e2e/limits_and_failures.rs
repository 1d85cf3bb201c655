//! Limits, and what clients see when a worker misbehaves.

use bytes::Bytes;

use crate::support::*;
use libra_test_host::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_body_over_the_cap_is_refused_before_forwarding() {
    let app = App::new(options().variable("max_body_bytes", "1000")).unwrap();
    let reply = request("POST", "echo.localhost", "/")
        .send_body(&app, vec![1u8; 1001])
        .await;
    assert_eq!((reply.status, reply.problem().as_str()), (413, "payload_too_large"));
    assert!(app.outbound_requests().is_empty(), "nothing reached a worker");
    let reply = request("POST", "echo.localhost", "/")
        .send_body(&app, vec![1u8; 1000])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["body"]["bytes"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_body_growing_past_the_cap_is_cut_off_with_413() {
    let app = App::new(options().variable("max_body_bytes", "100000")).unwrap();
    let chunks = vec![Bytes::from(vec![0u8; 30_000]); 4];
    let reply = request("POST", "echo.localhost", "/").send_stream(&app, chunks).await;
    assert_eq!((reply.status, reply.problem().as_str()), (413, "payload_too_large"));
    let chunks = vec![Bytes::from(vec![0u8; 25_000]); 4];
    let reply = request("POST", "echo.localhost", "/").send_stream(&app, chunks).await;
    assert_eq!(reply.status, 200, "exactly at the cap is allowed");
    assert_eq!(reply.json()["body"]["bytes"], 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_uris_get_414_and_bad_lengths_400() {
    let app = app();
    let target = format!("/{}", "a".repeat(8 * 1024));
    let reply = get("echo.localhost", &target).send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (414, "uri_too_long"));
    let reply = get("echo.localhost", &target[..8 * 1024]).send(&app).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_trace_are_not_forwarded_and_api_methods_are_checked() {
    let app = app();
    for (method, host, target) in [
        ("TRACE", "echo.localhost", "/"),
        ("TRACE", "localhost", "/dispatch/echo/"),
        ("POST", "localhost", "/health"),
    ] {
        let reply = request(method, host, target).send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (405, "method_not_allowed"),
            "{method} {host}{target}"
        );
        assert!(reply.header("allow").is_some());
    }
    assert_eq!(
        request("POST", "localhost", "/health").send(&app).await.header("allow"),
        Some("GET, HEAD")
    );
    assert!(app.outbound_requests().is_empty());
    // Other methods, standard or not, are forwarded.
    let reply = request("PROPFIND", "echo.localhost", "/").send(&app).await;
    assert_eq!(reply.json()["method"], "PROPFIND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_does_not_answer_in_time_gets_504() {
    let app = App::new(options().variable("upstream_timeout_ms", "300")).unwrap();
    let reply = get("faulty.localhost", "/hang").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (504, "worker_timeout"));
    let log = access_log(&app).await;
    let line = log.last().unwrap();
    assert_eq!(
        (line["status"].as_u64(), line["error"].as_str()),
        (Some(504), Some("worker_timeout"))
    );
    assert!(line["durationMs"].as_f64().unwrap() >= 300.0, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_traps_gets_502_without_internal_detail() {
    let app = app();
    let reply = get("faulty.localhost", "/trap").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (502, "worker_failed"));
    let text = reply.text();
    assert!(
        !text.contains("panic") && !text.contains("trap") && !text.contains("wasm"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_fails_mid_body_cuts_the_response_short() {
    let app = app();
    let reply = get("faulty.localhost", "/trap-mid-body").send(&app).await;
    assert_eq!(reply.status, 200, "the status was already sent");
    assert!(reply.body.is_err(), "the client must not see a complete-looking body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_listing_a_missing_component_is_a_502_not_a_hang() {
    // `workers` names a worker spin.toml lacks: Spin denies the call, the client gets 502.
    let app = App::new(options().variable("workers", "echo,hello,faulty,ghost")).unwrap();
    let reply = get("ghost.localhost", "/").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (502, "worker_failed"));
    assert_eq!(app.outbound_requests(), vec!["http://ghost.spin.internal"]);
}
