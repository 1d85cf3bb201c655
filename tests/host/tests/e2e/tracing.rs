//! One trace per request across every hop, as an operator's OpenTelemetry Collector receives it:
//! real `spin up`s (the dispatcher's app, and a tenant deployed as an app of its own) export to
//! a real OTLP/HTTP receiver (`libra_test_host::otlp`, protobuf decoded with the official
//! definitions). Spin only: the test host exports nothing. Each wait is for the receiver to get
//! what it looks for, with a deadline: a receiver that never started, or that got no spans,
//! fails the test.

use std::net::SocketAddr;
use std::time::Duration;

use libra_test_host::otlp::{OtlpReceiver, Received, SPAN_KIND_CLIENT, SPAN_KIND_SERVER, SeenSpan};
use libra_test_host::ports::free_port;
use serde_json::Value;

use crate::support::*;

const DOMAIN: &str = "workers.test";
const WAIT: Duration = Duration::from_secs(20);

/// The spans of `trace` once `enough` holds for them.
async fn spans_of(
    receiver: &OtlpReceiver,
    trace: &str,
    what: &str,
    enough: impl Fn(&[&SeenSpan]) -> bool,
) -> Vec<SeenSpan> {
    receiver
        .wait_for(what, WAIT, |received: &Received| {
            let spans = received.trace(trace);
            enough(&spans).then(|| spans.into_iter().cloned().collect::<Vec<_>>())
        })
        .await
        .unwrap()
}

fn named<'a>(spans: &'a [SeenSpan], service: &str, name: &str) -> &'a SeenSpan {
    spans
        .iter()
        .find(|span| span.service == service && span.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} of {service} in {spans:#?}"))
}

/// The trace id of a `traceparent` a worker received.
fn trace_of(traceparent: &str) -> &str {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert!(
        parts.len() == 4 && parts[0] == "00" && parts[1].len() == 32 && parts[2].len() == 16,
        "a well-formed traceparent: {traceparent:?}"
    );
    parts[1]
}

fn received_header(echoed: &Value, name: &str) -> Option<String> {
    echoed["headers"][name].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_crosses_the_dispatcher_to_local_and_remote_workers() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let port = free_port().unwrap();
    let listen: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
    // A tenant deployed as an app of its own (the echo component), exporting to the same
    // receiver as a service of its own.
    let _shop = Running::start_single_with(HostKind::Spin, "echo", listen, receiver.spin_env("tenant-shop"))
        .await
        .unwrap();
    let front = start(
        HostKind::Spin,
        spec()
            .variable("worker_url_template", &format!("http://{{worker}}.{DOMAIN}:{port}"))
            .variable("remote_hosts", &format!("http://*.{DOMAIN}:{port}"))
            .variable("remote_workers", "shop")
            .host(&format!("shop.{DOMAIN}"), "127.0.0.3")
            .env(receiver.spin_env("libra-dispatcher")),
    )
    .await;

    // 1. A local worker, over service chaining, continuing the client's trace.
    let local_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let reply = get("echo.localhost:3000", "/local?x=1")
        .header("traceparent", &format!("00-{local_trace}-{client_span}-01"))
        .header("tracestate", "vendor=1")
        .send(&front)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echoed = reply.json();
    let received = received_header(&echoed, "traceparent").expect("the worker receives a traceparent");
    assert_eq!(
        trace_of(&received),
        local_trace,
        "the worker continues the client's trace"
    );
    assert_eq!(received_header(&echoed, "tracestate").as_deref(), Some("vendor=1"));
    assert_eq!(log_of(&front, &reply).await["traceId"], local_trace);

    let spans = spans_of(&receiver, local_trace, "the local hop's spans", |spans| {
        spans.iter().any(|s| s.name == "execute_wasm_component echo")
            && spans.iter().any(|s| s.kind == SPAN_KIND_SERVER)
    })
    .await;
    let server = spans
        .iter()
        .find(|s| s.kind == SPAN_KIND_SERVER && s.service == "libra-dispatcher")
        .unwrap_or_else(|| panic!("no server span: {spans:#?}"));
    assert_eq!(
        server.parent_span_id, client_span,
        "Spin's server span is the client's child"
    );
    let dispatcher = named(&spans, "libra-dispatcher", "execute_wasm_component dispatcher");
    assert_eq!(dispatcher.parent_span_id, server.span_id);
    let chained = spans
        .iter()
        .find(|s| {
            s.kind == SPAN_KIND_CLIENT
                && s.attributes
                    .get("url.full")
                    .is_some_and(|u| u.starts_with("http://echo.spin.internal/local"))
        })
        .unwrap_or_else(|| panic!("no outbound span to the echo component: {spans:#?}"));
    assert_eq!(chained.parent_span_id, dispatcher.span_id, "the dispatcher sent it");
    // The tenant is the component the chained call ran: its id is in the span's name.
    let worker = named(&spans, "libra-dispatcher", "execute_wasm_component echo");
    assert_eq!(
        worker.parent_span_id, chained.span_id,
        "the worker ran inside the outbound call"
    );
    assert_eq!(
        received,
        format!("00-{local_trace}-{}-01", chained.span_id),
        "the worker's parent is the dispatcher's outbound span"
    );

    // 2. A remote member: the tenant app's own server span is the child of the dispatcher's
    //    outbound span, across real HTTP.
    let remote_trace = "0af7651916cd43dd8448eb211c80319c";
    let reply = get("shop.localhost:3000", "/remote")
        .header("traceparent", &format!("00-{remote_trace}-b7ad6b7169203331-01"))
        .send(&front)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(log_of(&front, &reply).await["location"], "remote");
    let spans = spans_of(&receiver, remote_trace, "the remote hop's spans", |spans| {
        spans
            .iter()
            .any(|s| s.service == "tenant-shop" && s.kind == SPAN_KIND_SERVER)
            && spans.iter().any(is_outbound_to_shop)
    })
    .await;
    // Spin's host calls (variables, key-value) are client spans too: the outbound request is
    // the one with the remote URL.
    let outbound = spans.iter().find(is_outbound_to_shop).unwrap();
    // The tenant is the outbound host.
    assert_eq!(
        outbound.attributes.get("server.address").map(String::as_str),
        Some("shop.workers.test"),
        "{outbound:#?}"
    );
    let tenant_server = spans
        .iter()
        .find(|s| s.service == "tenant-shop" && s.kind == SPAN_KIND_SERVER)
        .unwrap();
    assert_eq!(
        tenant_server.parent_span_id, outbound.span_id,
        "one trace across the hop"
    );
    named(&spans, "tenant-shop", "execute_wasm_component worker");

    // 3. The access line arrived as an OTLP log record of the dispatcher's component, with the
    //    request id and the trace id (Spin leaves the record's own trace id empty: the line's
    //    field is the link).
    let request_id = reply.request_id().to_string();
    let record = receiver
        .wait_for("the access line as a log record", WAIT, |received| {
            received
                .logs
                .iter()
                .find(|log| log.body.contains(&request_id) && log.body.contains("\"status\""))
                .cloned()
        })
        .await
        .unwrap();
    assert_eq!(
        record.attributes.get("component_id").map(String::as_str),
        Some("dispatcher")
    );
    assert_eq!(record.service, "libra-dispatcher");
    let line: Value = serde_json::from_str(record.body.trim()).expect("one JSON line");
    assert_eq!(line["traceId"], remote_trace);
    assert_eq!(line["worker"], "shop");
}

fn is_outbound_to_shop(span: &&SeenSpan) -> bool {
    span.service == "libra-dispatcher"
        && span.kind == SPAN_KIND_CLIENT
        && span
            .attributes
            .get("url.full")
            .is_some_and(|url| url.starts_with(&format!("http://shop.{DOMAIN}:")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_trace_context_is_replaced_not_forwarded() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let front = start(HostKind::Spin, spec().env(receiver.spin_env("libra-dispatcher"))).await;
    for malformed in [
        "garbage-00-xyz",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ] {
        let reply = get("echo.localhost:3000", "/")
            .header("traceparent", malformed)
            .header("tracestate", "vendor=1")
            .send(&front)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let echoed = reply.json();
        // Spin started a trace of its own and told the worker; the client's never reached it.
        let received = received_header(&echoed, "traceparent").expect("Spin's own traceparent");
        let trace = trace_of(&received).to_string();
        assert!(
            !malformed.to_ascii_lowercase().contains(&trace),
            "{malformed} -> {received}"
        );
        assert_ne!(received_header(&echoed, "tracestate").as_deref(), Some("vendor=1"));
        // The log names no trace: the one Spin started is not visible to the dispatcher.
        assert!(log_of(&front, &reply).await.get("traceId").is_none());
        // And Spin did export that new trace.
        spans_of(&receiver, &trace, "the new trace's spans", |spans| {
            spans.iter().any(|s| s.name == "execute_wasm_component echo")
        })
        .await;
    }
    assert!(receiver.received().exports.get("/v1/traces").is_some_and(|n| *n > 0));
}

on_both_hosts!(without_an_exporter_a_sound_context_passes_and_an_unsound_one_does_not);
/// Without an exporter, Spin writes no trace context: the dispatcher passes a sound one on as
/// it is (so a tenant's own tracing still sees the client's trace) and drops an unsound one.
async fn without_an_exporter_a_sound_context_passes_and_an_unsound_one_does_not(host: HostKind) {
    let app = app(host).await;
    let sound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = get("echo.localhost:3000", "/")
        .header("traceparent", sound)
        .header("tracestate", "vendor=1")
        .send(&app)
        .await;
    let echoed = reply.json();
    assert_eq!(received_header(&echoed, "traceparent").as_deref(), Some(sound));
    assert_eq!(received_header(&echoed, "tracestate").as_deref(), Some("vendor=1"));
    assert_eq!(
        log_of(&app, &reply).await["traceId"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );

    let reply = get("echo.localhost:3000", "/")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff")
        .header("tracestate", "vendor=1")
        .send(&app)
        .await;
    let echoed = reply.json();
    assert_eq!(received_header(&echoed, "traceparent"), None);
    assert_eq!(received_header(&echoed, "tracestate"), None);
    assert!(log_of(&app, &reply).await.get("traceId").is_none());
}
