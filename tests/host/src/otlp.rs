//! A small OTLP/HTTP receiver for the tracing tests: what an OpenTelemetry Collector would be
//! sent, kept in memory. Spin 4.0.2 exports OTLP over HTTP as protobuf (it refuses `http/json`),
//! so the messages are decoded with the official definitions (`opentelemetry-proto`), not by
//! hand. Anything else is refused with 415, so a test cannot pass on data it never decoded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::http_server::HttpServer;

/// A span as exported, with its service (the resource's `service.name`).
#[derive(Debug, Clone)]
pub struct SeenSpan {
    pub service: String,
    pub name: String,
    /// OTLP's `SpanKind`: 2 server, 3 client.
    pub kind: i32,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
}

pub const SPAN_KIND_SERVER: i32 = 2;
pub const SPAN_KIND_CLIENT: i32 = 3;

/// A log record as exported.
#[derive(Debug, Clone)]
pub struct SeenLog {
    pub service: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub trace_id: String,
}

/// Everything received so far.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub spans: Vec<SeenSpan>,
    pub logs: Vec<SeenLog>,
    /// Each metric point's name and attributes.
    pub metrics: Vec<(String, BTreeMap<String, String>)>,
    /// Export requests accepted, per path.
    pub exports: BTreeMap<String, usize>,
}

impl Received {
    pub fn trace(&self, trace_id: &str) -> Vec<&SeenSpan> {
        self.spans.iter().filter(|span| span.trace_id == trace_id).collect()
    }
}

/// A running receiver; dropping it stops it.
pub struct OtlpReceiver {
    server: HttpServer,
    received: Arc<Mutex<Received>>,
    arrived: Arc<Notify>,
}

impl OtlpReceiver {
    pub async fn start() -> Result<OtlpReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Received::default()));
        let arrived = Arc::new(Notify::new());
        let (state, notify) = (received.clone(), arrived.clone());
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, notify) = (state.clone(), notify.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let (state, notify) = (state.clone(), notify.clone());
                        async move { Ok::<_, hyper::Error>(receive(request, &state, &notify).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(OtlpReceiver {
            server: HttpServer::from_parts(addr, accept_loop),
            received,
            arrived,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The environment that points a `spin up` at this receiver as `service`, with the batches
    /// sent every 50 ms rather than every 5 s (spans) and 1 s (logs): Spin never flushes on
    /// shutdown, so a test waits for the batch instead.
    pub fn spin_env(&self, service: &str) -> Vec<(String, String)> {
        let mut env = self.spin_env_default_batching(service);
        env.extend(
            [
                ("OTEL_BSP_SCHEDULE_DELAY", "50"),
                ("OTEL_BLRP_SCHEDULE_DELAY", "50"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            ]
            .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        env
    }

    /// How many exports arrived at each path (`/v1/traces`...), without copying what they held.
    pub fn exports(&self) -> BTreeMap<String, usize> {
        self.received.lock().unwrap().exports.clone()
    }

    /// The environment that points a `spin up` at this receiver as `service`, with Spin's own
    /// batching (spans every 5 s, logs every second): what a deployment runs, for benchmarks.
    pub fn spin_env_default_batching(&self, service: &str) -> Vec<(String, String)> {
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.server.url()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_SERVICE_NAME", service.into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    pub fn received(&self) -> Received {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `found` finds what it looks for in what has arrived, woken by each export,
    /// and fails after `deadline` with `what` and a summary of what did arrive.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        deadline: Duration,
        found: impl Fn(&Received) -> Option<T>,
    ) -> Result<T> {
        let give_up = tokio::time::Instant::now() + deadline;
        loop {
            let arrived = self.arrived.notified();
            if let Some(value) = found(&self.received.lock().unwrap()) {
                return Ok(value);
            }
            if tokio::time::timeout_at(give_up, arrived).await.is_err() {
                let received = self.received();
                let spans: Vec<String> = received
                    .spans
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {:?} trace {} span {} parent {}",
                            s.service, s.name, s.trace_id, s.span_id, s.parent_span_id
                        )
                    })
                    .collect();
                bail!(
                    "no {what} after {deadline:?}; exports {:?}; spans:\n  {}\nlogs: {:?}",
                    received.exports,
                    spans.join("\n  "),
                    received.logs.iter().map(|l| &l.body).collect::<Vec<_>>()
                );
            }
        }
    }
}

async fn receive(
    request: http::Request<hyper::body::Incoming>,
    state: &Mutex<Received>,
    arrived: &Notify,
) -> http::Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let protobuf = request
        .headers()
        .get("content-type")
        .is_some_and(|value| value.as_bytes() == b"application/x-protobuf");
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(400, Vec::new()),
    };
    if !protobuf {
        return reply(415, Vec::new());
    }
    let answer = match decode(&path, &body, state) {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("otlp receiver: {path}: {error:#}");
            return reply(400, Vec::new());
        }
    };
    *state.lock().unwrap().exports.entry(path).or_default() += 1;
    arrived.notify_waiters();
    reply(200, answer)
}

/// Decodes one export and keeps its contents; the answer is the export's (empty) response.
fn decode(path: &str, body: &[u8], state: &Mutex<Received>) -> Result<Vec<u8>> {
    let mut received = state.lock().unwrap();
    match path {
        "/v1/traces" => {
            let export = ExportTraceServiceRequest::decode(body).context("a trace export")?;
            for resource in export.resource_spans {
                let service = service_name(resource.resource.as_ref().map(|r| r.attributes.as_slice()));
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        received.spans.push(SeenSpan {
                            service: service.clone(),
                            name: span.name,
                            kind: span.kind,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_span_id: hex(&span.parent_span_id),
                            attributes: attributes(&span.attributes),
                        });
                    }
                }
            }
            Ok(ExportTraceServiceResponse::default().encode_to_vec())
        }
        "/v1/logs" => {
            let export = ExportLogsServiceRequest::decode(body).context("a log export")?;
            for resource in export.resource_logs {
                let service = service_name(resource.resource.as_ref().map(|r| r.attributes.as_slice()));
                for scope in resource.scope_logs {
                    for record in scope.log_records {
                        received.logs.push(SeenLog {
                            service: service.clone(),
                            body: record.body.as_ref().map(text).unwrap_or_default(),
                            attributes: attributes(&record.attributes),
                            trace_id: hex(&record.trace_id),
                        });
                    }
                }
            }
            Ok(ExportLogsServiceResponse::default().encode_to_vec())
        }
        "/v1/metrics" => {
            use opentelemetry_proto::tonic::metrics::v1::metric::Data;
            let export = ExportMetricsServiceRequest::decode(body).context("a metrics export")?;
            for resource in export.resource_metrics {
                for scope in resource.scope_metrics {
                    for metric in scope.metrics {
                        let points: Vec<&[KeyValue]> = match &metric.data {
                            Some(Data::Sum(sum)) => sum.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
                            Some(Data::Gauge(gauge)) => {
                                gauge.data_points.iter().map(|p| p.attributes.as_slice()).collect()
                            }
                            Some(Data::Histogram(histogram)) => {
                                histogram.data_points.iter().map(|p| p.attributes.as_slice()).collect()
                            }
                            _ => Vec::new(),
                        };
                        for point in points {
                            received.metrics.push((metric.name.clone(), attributes(point)));
                        }
                    }
                }
            }
            Ok(ExportMetricsServiceResponse::default().encode_to_vec())
        }
        other => bail!("no OTLP signal at {other}"),
    }
}

fn reply(status: u16, body: Vec<u8>) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn service_name(attributes: Option<&[KeyValue]>) -> String {
    attributes
        .map(self::attributes)
        .and_then(|mut all| all.remove("service.name"))
        .unwrap_or_default()
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), pair.value.as_ref().map(text).unwrap_or_default()))
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
