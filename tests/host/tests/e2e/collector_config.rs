//! The OpenTelemetry Collector configuration of `deploy/otel` passes `scripts/check-collector.py`,
//! and each mistake that would stop the collector or lose a per-tenant figure is refused, with a
//! message that names the key. Each case copies the file, makes one edit, and runs the checker on
//! the copy; a checker that accepted everything would fail every case.

use std::path::Path;
use std::process::Output;

use libra_test_host::project_root;

use crate::support::{python_script, unexpected_verdict};

const CONFIG: &str = "deploy/otel/collector.yaml";

fn check(config: &Path) -> Output {
    python_script("check-collector.py")
        .arg(config)
        .output()
        .expect("the checker runs")
}

/// A copy of the configuration with `from` replaced by `to` (once), in a directory of its own.
fn edited(from: &str, to: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let text = std::fs::read_to_string(project_root().join(CONFIG)).unwrap();
    assert!(
        text.contains(from),
        "{CONFIG} no longer contains {from:?}: update this case"
    );
    let copy = tempfile::tempdir().unwrap();
    let path = copy.path().join("collector.yaml");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    (copy, path)
}

#[test]
fn the_shipped_collector_configuration_passes() {
    let output = check(&project_root().join(CONFIG));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = String::from_utf8_lossy(&output.stdout);
    // Every pipeline was read, with the connectors that make the per-tenant figures.
    for line in [
        "service.pipelines.traces: otlp -> memory_limiter, batch -> otlp_grpc/backend, span_metrics/tenants",
        "service.pipelines.logs: otlp -> memory_limiter, transform/access_log, batch -> otlp_grpc/backend, \
         count/access_log, signal_to_metrics/access_log",
        "service.pipelines.metrics: otlp, count/access_log, signal_to_metrics/access_log, span_metrics/tenants \
         -> memory_limiter, delta_to_cumulative, batch -> prometheus",
        "ok (3 pipelines)",
    ] {
        assert!(report.contains(line), "{line:?} is not in:\n{report}");
    }
}

/// (what the edit does, from, to, what the refusal must say)
const MISTAKES: &[(&str, &str, &str, &str)] = &[
    (
        "a pipeline names a processor that is not defined",
        "processors: [memory_limiter, transform/access_log, batch]",
        "processors: [memory_limiter, transform/access_log, filter/drop, batch]",
        "service.pipelines.logs.processors: 'filter/drop' is not defined under processors",
    ),
    (
        "a connector used only as an exporter: the request counts would go nowhere",
        "receivers: [otlp, count/access_log, signal_to_metrics/access_log",
        "receivers: [otlp, signal_to_metrics/access_log",
        "connectors.count/access_log: used as an exporter in logs but as a receiver in no pipeline",
    ),
    (
        "a metrics-only processor in the logs pipeline",
        "processors: [memory_limiter, transform/access_log, batch]",
        "processors: [memory_limiter, transform/access_log, delta_to_cumulative, batch]",
        "'delta_to_cumulative' (processor delta_to_cumulative) does not support logs",
    ),
    (
        "a misspelt key of span_metrics: the per-tenant dimensions would be ignored",
        "    dimensions:\n      - name: server.address",
        "    dimension:\n      - name: server.address",
        "connectors.span_metrics/tenants: unknown key 'dimension'",
    ),
    (
        "the old environment syntax, which the collector no longer expands",
        "${env:OTLP_BACKEND}",
        "$OTLP_BACKEND",
        "exporters.otlp_grpc/backend.endpoint: old env syntax '$OTLP_BACKEND'",
    ),
    (
        "a pipeline id that is not a signal type",
        "    traces:\n      receivers: [otlp]",
        "    trace:\n      receivers: [otlp]",
        "service.pipelines.trace: a pipeline id is a signal type",
    ),
    (
        "a connector that only makes metrics received into a traces pipeline",
        "    traces:\n      receivers: [otlp]",
        "    traces:\n      receivers: [otlp, count/access_log]",
        "connector 'count/access_log' (count) makes no traces of what it is fed (logs)",
    ),
    (
        "a count grouped by an attribute the transform never sets",
        "          - key: libra.worker\n            default_value: none\n          - key: libra.location\n            \
         default_value: none\n          - key: libra.route",
        "          - key: libra.wroker\n            default_value: none\n          - key: libra.location\n            \
         default_value: none\n          - key: libra.route",
        "reads log attribute 'libra.wroker', which no transform of pipeline logs sets",
    ),
    (
        "an OTTL statement with an unclosed parenthesis",
        "set(attributes[\"libra.route\"], cache[\"route\"]) where",
        "set(attributes[\"libra.route\"], cache[\"route\"] where",
        "unclosed '(' in OTTL",
    ),
    (
        "a misspelt key of the transform processor",
        "    error_mode: ignore",
        "    errormode: ignore",
        "processors.transform/access_log: unknown key 'errormode'",
    ),
    (
        "a key given twice, of which YAML keeps one",
        "    max_stale: 15m",
        "    max_stale: 15m\n    max_stale: 5m",
        "key 'max_stale' given twice",
    ),
];

#[test]
fn each_mistake_is_refused_with_the_key_named() {
    let mut failures = Vec::new();
    for (what, from, to, says) in MISTAKES {
        let (_copy, path) = edited(from, to);
        failures.extend(unexpected_verdict(what, says, &check(&path)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
