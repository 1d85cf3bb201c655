//! Limits, and what clients see when a worker misbehaves.

use bytes::Bytes;

use crate::support::*;

on_both_hosts!(declared_body_over_the_cap_is_refused_before_forwarding);
async fn declared_body_over_the_cap_is_refused_before_forwarding(host: HostKind) {
    let app = start(host, spec().variable("max_body_bytes", "1000")).await;
    let reply = request("POST", "echo.localhost", "/")
        .send_body(&app, vec![1u8; 1001])
        .await;
    assert_eq!((reply.status, reply.problem().as_str()), (413, "payload_too_large"));
    if let Some(test_host) = app.test_host() {
        assert!(test_host.outbound_requests().is_empty(), "nothing reached a worker");
    }
    let reply = request("POST", "echo.localhost", "/")
        .send_body(&app, vec![1u8; 1000])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["body"]["bytes"], 1000);
}

on_both_hosts!(streamed_body_growing_past_the_cap_is_cut_off_with_413);
async fn streamed_body_growing_past_the_cap_is_cut_off_with_413(host: HostKind) {
    let app = start(host, spec().variable("max_body_bytes", "100000")).await;
    let chunks = vec![Bytes::from(vec![0u8; 30_000]); 4];
    let reply = request("POST", "echo.localhost", "/").send_stream(&app, chunks).await;
    assert_eq!((reply.status, reply.problem().as_str()), (413, "payload_too_large"));
    let chunks = vec![Bytes::from(vec![0u8; 25_000]); 4];
    let reply = request("POST", "echo.localhost", "/").send_stream(&app, chunks).await;
    assert_eq!(reply.status, 200, "exactly at the cap is allowed");
    assert_eq!(reply.json()["body"]["bytes"], 100_000);
}

on_both_hosts!(a_zero_cap_refuses_the_first_streamed_byte);
/// The cap is read when a streamed body's first byte arrives, which the pump moves alone: a cap
/// of zero still refuses a one-byte body and admits an empty one.
async fn a_zero_cap_refuses_the_first_streamed_byte(host: HostKind) {
    let app = start(host, spec().variable("max_body_bytes", "0")).await;
    let reply = request("POST", "echo.localhost", "/")
        .send_stream(&app, vec![Bytes::from_static(b"x")])
        .await;
    assert_eq!((reply.status, reply.problem().as_str()), (413, "payload_too_large"));
    let reply = request("POST", "echo.localhost", "/")
        .send_stream(&app, Vec::new())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["body"]["bytes"], 0);
    let reply = request("POST", "echo.localhost", "/").send_body(&app, vec![1u8]).await;
    assert_eq!((reply.status, reply.problem().as_str()), (413, "payload_too_large"));
}

on_both_hosts!(long_uris_get_414_and_bad_lengths_400);
async fn long_uris_get_414_and_bad_lengths_400(host: HostKind) {
    let app = app(host).await;
    let target = format!("/{}", "a".repeat(8 * 1024));
    let reply = get("echo.localhost", &target).send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (414, "uri_too_long"));
    let reply = get("echo.localhost", &target[..8 * 1024]).send(&app).await;
    assert_eq!(reply.status, 200);
}

on_both_hosts!(connect_and_trace_are_not_forwarded_and_api_methods_are_checked);
async fn connect_and_trace_are_not_forwarded_and_api_methods_are_checked(host: HostKind) {
    let app = app(host).await;
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
    if let Some(test_host) = app.test_host() {
        assert!(test_host.outbound_requests().is_empty());
    }
    // Other methods, standard or not, are forwarded.
    let reply = request("PROPFIND", "echo.localhost", "/").send(&app).await;
    assert_eq!(reply.json()["method"], "PROPFIND");
}

on_both_hosts!(a_worker_that_does_not_answer_in_time_gets_504);
async fn a_worker_that_does_not_answer_in_time_gets_504(host: HostKind) {
    let app = start(host, spec().variable("upstream_timeout_ms", "300")).await;
    let reply = get("faulty.localhost", "/hang").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (504, "worker_timeout"));
    let line = log_of(&app, &reply).await;
    assert_eq!(
        (line["status"].as_u64(), line["error"].as_str()),
        (Some(504), Some("worker_timeout"))
    );
    assert!(line["durationMs"].as_f64().unwrap() >= 300.0, "{line}");
}

on_both_hosts!(a_worker_that_traps_gets_502_without_internal_detail);
async fn a_worker_that_traps_gets_502_without_internal_detail(host: HostKind) {
    let app = app(host).await;
    let reply = get("faulty.localhost", "/trap").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (502, "worker_failed"));
    let text = reply.text();
    assert!(
        !text.contains("panic") && !text.contains("trap") && !text.contains("wasm"),
        "{text}"
    );
}

on_both_hosts!(a_worker_that_fails_mid_body_cuts_the_response_short);
async fn a_worker_that_fails_mid_body_cuts_the_response_short(host: HostKind) {
    let app = app(host).await;
    let reply = get("faulty.localhost", "/trap-mid-body").send(&app).await;
    // Whether the status line reached the client before the connection was cut depends on how
    // much the server had flushed (status 0: nothing); either way the response is incomplete.
    assert!(reply.status == 200 || reply.status == 0, "{}", reply.status);
    assert!(reply.body.is_err(), "the client must not see a complete-looking body");
}

on_both_hosts!(a_namespace_listing_a_missing_component_is_a_502_not_a_hang);
async fn a_namespace_listing_a_missing_component_is_a_502_not_a_hang(host: HostKind) {
    // `workers` names a worker spin.toml lacks: Spin denies the call, the client gets 502.
    let app = start(host, spec().variable("workers", "echo,hello,faulty,ghost")).await;
    let reply = get("ghost.localhost", "/").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (502, "worker_failed"));
    if let Some(test_host) = app.test_host() {
        assert_eq!(test_host.outbound_requests(), vec!["http://ghost.spin.internal"]);
    }
}

on_both_hosts!(a_header_section_over_32_kib_gets_431);
async fn a_header_section_over_32_kib_gets_431(host: HostKind) {
    let app = app(host).await;
    let value = "v".repeat(4000);
    let names = ["x-a", "x-b", "x-c", "x-d", "x-e", "x-f", "x-g", "x-h", "x-i"];
    let mut large = get("echo.localhost", "/");
    for name in names {
        large = large.header(name, &value);
    }
    let reply = large.send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (431, "headers_too_large"));
    let mut fitting = get("echo.localhost", "/");
    for name in &names[..7] {
        fitting = fitting.header(name, &value);
    }
    assert_eq!(fitting.send(&app).await.status, 200);
}
