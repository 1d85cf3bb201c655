//! What a worker receives and what the client gets back.

use bytes::Bytes;

use crate::support::*;

on_both_hosts!(spoofed_provenance_never_reaches_the_worker);
async fn spoofed_provenance_never_reaches_the_worker(host: HostKind) {
    let app = app(host).await;
    let reply = get("echo.localhost:3000", "/")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "victim.localhost")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "for=6.6.6.6;host=victim.localhost")
        .header("x-real-ip", "6.6.6.6")
        .header("spin-client-addr", "6.6.6.6:1")
        .header("spin-full-url", "https://victim.localhost/")
        .header("x-target-worker", "admin")
        .header("cookie", "session=abc")
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
    let echoed = reply.json();
    let text = echoed.to_string();
    assert!(!text.contains("6.6.6.6") && !text.contains("victim"), "{text}");
    assert_eq!(reply.echoed_header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        reply.echoed_header("x-forwarded-host").as_deref(),
        Some("echo.localhost:3000")
    );
    assert_eq!(reply.echoed_header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(reply.echoed_header("forwarded"), None);
    assert_eq!(reply.echoed_header("x-real-ip"), None);
    assert_eq!(reply.echoed_header("x-target-worker"), None);
    // The only spin-* values the worker sees are the ones Spin sets for a chained request.
    assert_eq!(reply.echoed_header("spin-client-addr").as_deref(), Some("0.0.0.0:0"));
    assert_eq!(
        reply.echoed_header("spin-full-url").as_deref(),
        Some("http://localhost/")
    );
    // Ordinary end-to-end headers pass.
    assert_eq!(reply.echoed_header("cookie").as_deref(), Some("session=abc"));
}

on_both_hosts!(hop_by_hop_headers_are_not_forwarded);
async fn hop_by_hop_headers_are_not_forwarded(host: HostKind) {
    let app = app(host).await;
    let reply = get("echo.localhost", "/")
        .header("te", "trailers")
        .header("trailer", "x-checksum")
        .header("keep-alive", "timeout=5")
        .header("x-end", "2")
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
    for name in ["te", "keep-alive", "connection"] {
        assert_eq!(reply.echoed_header(name), None, "{name}");
    }
    // `Trailer` is end-to-end (RFC 9110 6.6.2): it announces the trailers that follow.
    assert_eq!(reply.echoed_header("trailer").as_deref(), Some("x-checksum"));
    assert_eq!(reply.echoed_header("x-end").as_deref(), Some("2"));
    // Spin removes `Connection` before any component runs, so headers it names cannot be
    // recognised here; the dispatcher honours them where a host passes `Connection` on
    // (pipeline::hop_by_hop unit tests).
}

on_both_hosts!(request_id_is_reused_when_safe_and_generated_otherwise);
async fn request_id_is_reused_when_safe_and_generated_otherwise(host: HostKind) {
    let app = app(host).await;
    let reply = get("echo.localhost", "/")
        .header("x-request-id", "trace-42.a:b_c")
        .send(&app)
        .await;
    assert_eq!(reply.header("x-request-id"), Some("trace-42.a:b_c"));
    assert_eq!(reply.echoed_header("x-request-id").as_deref(), Some("trace-42.a:b_c"));

    let too_long = "a".repeat(129);
    for bad in ["has space", "quote\"d", too_long.as_str()] {
        let reply = get("echo.localhost", "/").header("x-request-id", bad).send(&app).await;
        let id = reply.header("x-request-id").unwrap().to_string();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(reply.echoed_header("x-request-id"), Some(id));
    }
    let first = get("echo.localhost", "/")
        .send(&app)
        .await
        .header("x-request-id")
        .unwrap()
        .to_string();
    let second = get("echo.localhost", "/")
        .send(&app)
        .await
        .header("x-request-id")
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    // Errors carry it too, in the header and the body.
    let error = get("ghost.localhost", "/")
        .header("x-request-id", "err-1")
        .send(&app)
        .await;
    assert_eq!(error.header("x-request-id"), Some("err-1"));
    assert_eq!(error.json()["requestId"], "err-1");
    assert_eq!(app.access_line("trace-42.a:b_c").await["status"], 200);
    assert_eq!(app.access_line("err-1").await["error"], "worker_not_found");
}

on_both_hosts!(shared_origin_responses_are_sandboxed_and_lose_cookies);
async fn shared_origin_responses_are_sandboxed_and_lose_cookies(host: HostKind) {
    let app = app(host).await;
    let reply = get("localhost", "/dispatch/faulty/cookie").send(&app).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header_all("set-cookie"), Vec::<&str>::new());
    assert_eq!(reply.header_all("content-security-policy"), vec!["sandbox"]);
    assert!(reply.text().contains("<script>"), "the body itself is untouched");
    // Query dispatch shares the origin too (the worker answers `/` with a plain 404).
    let reply = get("localhost", "/dispatch?worker=faulty").send(&app).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header_all("content-security-policy"), vec!["sandbox"]);

    // On the tenant's own origin the same response is the tenant's business.
    let own = get("faulty.localhost", "/cookie").send(&app).await;
    assert_eq!(own.header_all("set-cookie"), vec!["tenant=faulty; Path=/"]);
    assert!(own.header("content-security-policy").is_none());
}

on_both_hosts!(worker_errors_pass_through_unchanged);
async fn worker_errors_pass_through_unchanged(host: HostKind) {
    let app = app(host).await;
    for status in [400u16, 404, 418, 500, 503] {
        let reply = get("faulty.localhost", &format!("/status/{status}")).send(&app).await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.text(), format!("faulty worker answered {status}"));
        assert_eq!(reply.header("content-type"), Some("text/plain"));
        assert!(reply.header("x-request-id").is_some());
    }
}

on_both_hosts!(large_bodies_stream_through_without_being_held);
async fn large_bodies_stream_through_without_being_held(host: HostKind) {
    // 96 MiB each way. On the test host each instance may hold at most 32 MiB of memory, so only
    // streaming gets the bodies through; on Spin, its peak resident memory must not grow by more
    // than half a body.
    const SIZE: usize = 96 << 20;
    let mut spec = spec().variable("max_body_bytes", &(128u64 << 20).to_string());
    spec.memory_limit_bytes = Some(32 << 20);
    let app = start(host, spec).await;
    // The same two paths once with small bodies first, so what the first requests cost
    // (instances, buffers, allocator arenas) is in the baseline and not charged to the bodies.
    for _ in 0..4 {
        let small = get("faulty.localhost", "/stream?bytes=1048576").send(&app).await;
        assert_eq!(small.bytes().len(), 1 << 20);
        let small = request("PUT", "echo.localhost", "/upload")
            .send_stream(&app, vec![Bytes::from(vec![7u8; 1 << 20])])
            .await;
        assert_eq!(small.status, 200);
    }
    let peak_before = app.spin().map(|spin| spin.memory_kib().unwrap().1);

    let reply = get("faulty.localhost", &format!("/stream?bytes={SIZE}"))
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
    let body = reply.bytes();
    assert_eq!(body.len(), SIZE);
    assert!(
        body.iter()
            .enumerate()
            .step_by(4099)
            .all(|(i, b)| *b == (i % 65_536 % 251) as u8)
    );

    let peak_after_download = app.spin().map(|spin| spin.memory_kib().unwrap().1);
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    let chunks = vec![chunk.clone(); SIZE >> 20];
    let expected = sha256_hex(&vec![7u8; SIZE]);
    let reply = request("PUT", "echo.localhost", "/upload")
        .send_stream(&app, chunks)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["body"]["bytes"], SIZE as u64);
    assert_eq!(reply.json()["body"]["sha256"], expected);
    if let (Some(spin), Some(before)) = (app.spin(), peak_before) {
        let after = spin.memory_kib().unwrap().1;
        assert!(
            after.saturating_sub(before) < (SIZE as u64 / 2) >> 10,
            "Spin's peak memory grew from {before} KiB to {after} KiB ({peak_after_download:?} KiB after the download)"
        );
    }
}

on_both_hosts!(head_passes_through_to_a_worker_and_back_complete);
async fn head_passes_through_to_a_worker_and_back_complete(host: HostKind) {
    let app = app(host).await;
    for host in ["hello.localhost", "echo.localhost"] {
        let reply = request("HEAD", host, "/").send(&app).await;
        assert_eq!(reply.status, 200, "{host}");
        // A worker that failed after its headers would leave the body cut off (an error here).
        assert_eq!(reply.body.as_ref().map(|b| b.len()), Ok(0), "{host}");
        assert_eq!(reply.header("content-length"), None, "{host}");
    }
}
