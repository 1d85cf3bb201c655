#!/usr/bin/env python3
"""Checks an OpenTelemetry Collector configuration (deploy/otel/collector.yaml) without a
collector: `otelcol-contrib validate` is the real check, and this is what can be checked where no
collector binary can be installed.

    target/python/bin/python scripts/check-collector.py [deploy/otel/collector.yaml]

What it checks, each problem reported with the path of the key it is about:
- the file is YAML, with no key given twice in a mapping;
- its top-level sections are those of a collector configuration, and every component id is
  `type` or `type/name`;
- every component type is one of COMPONENTS below (the contrib distribution's types this project
  uses or is likely to, each with the signals it supports); a deprecated alias is accepted and
  named on stdout;
- service.pipelines: each id is a signal type (traces, metrics or logs, optionally `/name`), with
  a non-empty `receivers` and `exporters`, an optional `processors`, and nothing else; every
  component a pipeline names is defined in its section (a connector counts as a receiver or an
  exporter), none twice in one list, and each supports the pipeline's signal;
- each connector is used as an exporter in one pipeline and as a receiver in another, from and
  to signals its type converts between, and the pipelines it links form no cycle;
- every component defined is used by a pipeline and every extension is listed in
  service.extensions (stricter than the collector, which ignores an unused component);
- `${env:NAME}` and `${env:NAME:-default}` are the only expansions: `$NAME` and `${NAME}` (the
  old environment syntax) and any other provider are refused; `$$` is a literal `$`;
- the transform processor, the count, span_metrics and signal_to_metrics connectors, and the
  memory_limiter, batch and delta_to_cumulative processors: their keys, top-level and nested,
  against the *_KEYS tables below (from each component's configuration struct), and the values
  whose set is closed (error modes, OTTL contexts, histogram units, aggregation temporality);
- every OTTL statement, condition and value expression has balanced brackets and closed strings
  (the OTTL grammar itself is the collector's to check);
- a log attribute a logs connector groups by or reads is one a transform processor of the same
  pipeline sets (`set(attributes["KEY"], ...)`) or one Spin gives every log record
  (`component_id`), so the connectors and the transform cannot drift apart.

Needs PyYAML, installed in target/python by scripts/python-env (tests/python/requirements.txt).
Prints every problem found to stderr and exits 1 when there is one, 2 when the file or PyYAML is
missing; on success prints each pipeline on stdout.
"""

import argparse
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError as missing:
    print(
        f"check-collector: the Python module {missing.name!r} is missing: run scripts/python-env and "
        "use target/python/bin/python",
        file=sys.stderr,
    )
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "deploy" / "otel" / "collector.yaml"

TRACES, METRICS, LOGS = "traces", "metrics", "logs"
ALL = frozenset({TRACES, METRICS, LOGS})
SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")
TOP_LEVEL = set(SECTIONS) | {"service"}

# Component types of otelcol-contrib, with the signals each supports. For a connector: for each
# signal it takes (as an exporter), the signals it emits (as a receiver). The 2026 releases
# renamed several types to lower_snake_case and keep the old name as a deprecated alias
# (ALIASES); both are accepted.
COMPONENTS = {
    "receivers": {
        "otlp": ALL,
        "prometheus": {METRICS},
        "file_log": {LOGS},
        "zipkin": {TRACES},
        "jaeger": {TRACES},
        "nop": ALL,
    },
    "processors": {
        "memory_limiter": ALL,
        "batch": ALL,
        "transform": ALL,
        "filter": ALL,
        "attributes": ALL,
        "resource": ALL,
        "k8s_attributes": ALL,
        "resource_detection": ALL,
        "delta_to_cumulative": {METRICS},
        "cumulative_to_delta": {METRICS},
    },
    "exporters": {
        "otlp_grpc": ALL,
        "otlp_http": ALL,
        "debug": ALL,
        "nop": ALL,
        "prometheus": {METRICS},
        "prometheus_remote_write": {METRICS},
    },
    "connectors": {
        "count": {TRACES: {METRICS}, METRICS: {METRICS}, LOGS: {METRICS}},
        "span_metrics": {TRACES: {METRICS}},
        "signal_to_metrics": {TRACES: {METRICS}, METRICS: {METRICS}, LOGS: {METRICS}},
        "service_graph": {TRACES: {METRICS}},
        "forward": {TRACES: {TRACES}, METRICS: {METRICS}, LOGS: {LOGS}},
        "routing": {TRACES: {TRACES}, METRICS: {METRICS}, LOGS: {LOGS}},
    },
    "extensions": {"health_check": None, "pprof": None, "zpages": None},
}
ALIASES = {
    "receivers": {"filelog": "file_log"},
    "processors": {
        "k8sattributes": "k8s_attributes",
        "resourcedetection": "resource_detection",
        "deltatocumulative": "delta_to_cumulative",
        "cumulativetodelta": "cumulative_to_delta",
    },
    "exporters": {"otlp": "otlp_grpc", "otlphttp": "otlp_http", "prometheusremotewrite": "prometheus_remote_write"},
    "connectors": {"spanmetrics": "span_metrics", "signaltometrics": "signal_to_metrics", "servicegraph": "service_graph"},
    "extensions": {},
}

# The keys of the components whose configuration this project writes by hand, from each one's
# configuration struct (mapstructure tags) in opentelemetry-collector(-contrib).
TRANSFORM_KEYS = {
    "error_mode",
    "flatten_data",
    "trace_statements",
    "metric_statements",
    "log_statements",
    "profile_statements",
}
TRANSFORM_GROUP_KEYS = {"context", "statements", "conditions", "error_mode", "flatten", "shared_cache"}
TRANSFORM_CONTEXTS = {
    "trace_statements": {"resource", "scope", "span", "spanevent"},
    "metric_statements": {"resource", "scope", "metric", "datapoint"},
    "log_statements": {"resource", "scope", "log"},
    "profile_statements": {"resource", "scope", "profile"},
}
ERROR_MODES = {"ignore", "silent", "propagate"}

COUNT_KEYS = {"spans", "spanevents", "metrics", "datapoints", "logs", "profiles"}
COUNT_SIGNAL = {"spans": TRACES, "spanevents": TRACES, "metrics": METRICS, "datapoints": METRICS, "logs": LOGS}
COUNT_METRIC_KEYS = {"description", "conditions", "attributes"}
COUNT_ATTRIBUTE_KEYS = {"key", "default_value", "any_depth"}

SIGNAL_TO_METRICS_KEYS = {"spans", "datapoints", "logs", "profiles"}
SIGNAL_TO_METRICS_SIGNAL = {"spans": TRACES, "datapoints": METRICS, "logs": LOGS}
SIGNAL_TO_METRICS_METRIC_KEYS = {
    "name",
    "description",
    "unit",
    "include_resource_attributes",
    "attributes",
    "conditions",
    "histogram",
    "exponential_histogram",
    "sum",
    "gauge",
}
SIGNAL_TO_METRICS_ATTRIBUTE_KEYS = {"key", "optional", "default_value"}
SIGNAL_TO_METRICS_KINDS = {
    "histogram": {"buckets", "count", "value"},
    "exponential_histogram": {"max_size", "count", "value"},
    "sum": {"value"},
    "gauge": {"value"},
}

SPAN_METRICS_KEYS = {
    "add_resource_attributes",
    "aggregation_cardinality_limit",
    "aggregation_temporality",
    "calls_dimensions",
    "delta_temporality",
    "dimensions",
    "dimensions_cache_size",
    "enable_metrics_sampling_method",
    "events",
    "exclude_dimensions",
    "exemplars",
    "histogram",
    "include_instrumentation_scope",
    "metric_timestamp_cache_size",
    "metrics_expiration",
    "metrics_flush_interval",
    "namespace",
    "resource_metrics_cache_size",
    "resource_metrics_key_attributes",
    "series_expiration",
}
SPAN_METRICS_HISTOGRAM_KEYS = {"dimensions", "disable", "explicit", "exponential", "unit"}
SPAN_METRICS_DIMENSION_KEYS = {"name", "default", "glob"}
SPAN_METRICS_TEMPORALITIES = {"AGGREGATION_TEMPORALITY_CUMULATIVE", "AGGREGATION_TEMPORALITY_DELTA"}

SIMPLE_KEYS = {
    ("processors", "memory_limiter"): {
        "check_interval",
        "limit_mib",
        "spike_limit_mib",
        "limit_percentage",
        "spike_limit_percentage",
        "min_gc_interval_when_soft_limited",
        "min_gc_interval_when_hard_limited",
    },
    ("processors", "batch"): {
        "timeout",
        "send_batch_size",
        "send_batch_max_size",
        "metadata_keys",
        "metadata_cardinality_limit",
    },
    ("processors", "delta_to_cumulative"): {"max_stale", "max_streams", "max_exponential_histogram_buckets"},
}

# What Spin 4.0.2 puts on every log record it makes of a component's stdout or stderr line.
SPIN_LOG_ATTRIBUTES = {"component_id"}

COMPONENT_ID = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:/([^/\s]+))?$")
PIPELINE_ID = re.compile(r"^(traces|metrics|logs)(?:/[^/\s]+)?$")
ENV_REFERENCE = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
OLD_ENV = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$")
SET_ATTRIBUTE = re.compile(r'\bset\(\s*(?:log\.)?attributes\["([^"]+)"\]')
READ_ATTRIBUTE = re.compile(r'(?<![.\w])(?:log\.)?attributes\["([^"]+)"\]')


class DuplicateKeyLoader(yaml.SafeLoader):
    """A SafeLoader that records a key given twice in one mapping (PyYAML keeps the last)."""

    duplicates = []

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                DuplicateKeyLoader.duplicates.append((key, key_node.start_mark.line + 1))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class Checker:
    def __init__(self, label):
        self.label = label
        self.problems = []
        self.notes = []

    def problem(self, where, message):
        self.problems.append(f"{self.label}: {where}: {message}")

    # -- the file as a whole -------------------------------------------------------------------

    def check(self, config):
        if not isinstance(config, dict):
            self.problem("(top level)", "not a mapping of sections")
            return
        for key in config:
            if key not in TOP_LEVEL:
                self.problem(key, f"not a section of a collector configuration (one of {sorted(TOP_LEVEL)})")
        self.check_expansions(config, "")
        defined = {}
        for section in SECTIONS:
            defined[section] = self.check_section(section, config.get(section))
        service = config.get("service")
        if not isinstance(service, dict):
            self.problem("service", "missing, or not a mapping")
            return
        for key in service:
            if key not in {"extensions", "pipelines", "telemetry"}:
                self.problem(f"service.{key}", "not a key of service (extensions, pipelines, telemetry)")
        self.check_extensions(service.get("extensions"), defined["extensions"])
        pipelines = self.check_pipelines(service.get("pipelines"), defined)
        self.check_connectors(pipelines, defined["connectors"])
        self.check_unused(pipelines, defined)
        for section in ("processors", "connectors"):
            for component_id, (kind, body) in defined[section].items():
                self.check_component(section, component_id, kind, body)
        self.check_log_attributes(pipelines, config, defined)
        return pipelines

    def check_expansions(self, node, path):
        """Only ${env:NAME} and ${env:NAME:-default}; `$$` is a literal dollar."""
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{path}.{key}" if path else str(key)
                self.check_expansions(key, here)
                self.check_expansions(value, here)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                self.check_expansions(item, f"{path}[{index}]")
        elif isinstance(node, str) and "$" in node:
            rest = ENV_REFERENCE.sub("", node.replace("$$", ""))
            if "$" not in rest:
                return
            old = OLD_ENV.search(rest)
            if old:
                self.problem(
                    path,
                    f"old env syntax {old.group(0)!r}: the collector expands only ${{env:{old.group(1)}}} "
                    "(the bare $NAME and ${NAME} forms are gone)",
                )
            else:
                self.problem(path, f"an expansion other than ${{env:NAME}} in {node!r} (write $$ for a literal $)")

    def check_section(self, section, body):
        """The components of one section: {id: (canonical type, body)}."""
        components = {}
        if body is None:
            return components
        if not isinstance(body, dict):
            self.problem(section, "not a mapping of components")
            return components
        known, aliases = COMPONENTS[section], ALIASES[section]
        for component_id, component in body.items():
            where = f"{section}.{component_id}"
            match = COMPONENT_ID.match(str(component_id))
            if not match:
                self.problem(where, "not a component id (`type` or `type/name`)")
                continue
            kind = match.group(1)
            if kind in aliases:
                self.notes.append(f"note: {where}: {kind!r} is a deprecated alias of {aliases[kind]!r}")
                kind = aliases[kind]
            if kind not in known:
                self.problem(where, f"unknown {section[:-1]} type {match.group(1)!r} (known: {', '.join(sorted(known))})")
                continue
            if component is not None and not isinstance(component, dict):
                self.problem(where, "its configuration is not a mapping")
                component = {}
            components[component_id] = (kind, component or {})
        return components

    def check_extensions(self, listed, defined):
        if listed is None:
            listed = []
        if not isinstance(listed, list):
            self.problem("service.extensions", "not a list")
            return
        for name in listed:
            if name not in defined:
                self.problem("service.extensions", f"{name!r} is not defined under extensions")
        for name in defined:
            if name not in listed:
                self.problem(f"extensions.{name}", "defined but not listed in service.extensions")

    # -- pipelines -----------------------------------------------------------------------------

    def check_pipelines(self, pipelines, defined):
        """{pipeline id: (signal, receivers, processors, exporters)} of the well-formed ones."""
        checked = {}
        if not isinstance(pipelines, dict) or not pipelines:
            self.problem("service.pipelines", "missing, or not a mapping of pipelines")
            return checked
        for pipeline_id, pipeline in pipelines.items():
            where = f"service.pipelines.{pipeline_id}"
            match = PIPELINE_ID.match(str(pipeline_id))
            if not match:
                self.problem(where, "a pipeline id is a signal type, traces, metrics or logs, optionally followed by /name")
                continue
            signal = match.group(1)
            if not isinstance(pipeline, dict):
                self.problem(where, "not a mapping of receivers, processors and exporters")
                continue
            for key in pipeline:
                if key not in {"receivers", "processors", "exporters"}:
                    self.problem(f"{where}.{key}", "not a key of a pipeline (receivers, processors, exporters)")
            lists = {}
            for key in ("receivers", "processors", "exporters"):
                names = pipeline.get(key, [] if key == "processors" else None)
                if names is None or (key != "processors" and names == []):
                    self.problem(f"{where}.{key}", "missing or empty: a pipeline needs at least one")
                    names = []
                if not isinstance(names, list):
                    self.problem(f"{where}.{key}", "not a list")
                    names = []
                for name in {n for n in names if names.count(n) > 1}:
                    self.problem(f"{where}.{key}", f"{name!r} is listed twice")
                lists[key] = names
            for name in lists["receivers"]:
                self.check_use(where, "receivers", name, signal, defined, ("receivers", "connectors"))
            for name in lists["processors"]:
                self.check_use(where, "processors", name, signal, defined, ("processors",))
            for name in lists["exporters"]:
                self.check_use(where, "exporters", name, signal, defined, ("exporters", "connectors"))
            checked[pipeline_id] = (signal, lists["receivers"], lists["processors"], lists["exporters"])
        return checked

    def check_use(self, where, key, name, signal, defined, sections):
        for section in sections:
            if name in defined[section]:
                kind, _ = defined[section][name]
                if section != "connectors" and signal not in COMPONENTS[section][kind]:
                    supported = ", ".join(sorted(COMPONENTS[section][kind]))
                    self.problem(
                        f"{where}.{key}",
                        f"{name!r} ({section[:-1]} {kind}) does not support {signal} (only {supported})",
                    )
                return
        self.problem(f"{where}.{key}", f"{name!r} is not defined under {' or '.join(sections)}")

    def check_connectors(self, pipelines, connectors):
        """Each connector: an exporter of one pipeline, a receiver of another, signals it converts."""
        for name, (kind, _) in connectors.items():
            conversions = COMPONENTS["connectors"][kind]
            fed_by = [(p, s) for p, (s, _, _, exporters) in pipelines.items() if name in exporters]
            feeds = [(p, s) for p, (s, receivers, _, _) in pipelines.items() if name in receivers]
            if not fed_by and not feeds:
                continue  # reported as unused
            if not fed_by:
                self.problem(
                    f"connectors.{name}",
                    f"used as a receiver in {', '.join(p for p, _ in feeds)} but as an exporter in no pipeline",
                )
            if not feeds:
                self.problem(
                    f"connectors.{name}",
                    f"used as an exporter in {', '.join(p for p, _ in fed_by)} but as a receiver in no pipeline",
                )
            for pipeline_id, signal in fed_by:
                if signal not in conversions:
                    self.problem(
                        f"service.pipelines.{pipeline_id}.exporters",
                        f"connector {name!r} ({kind}) cannot take {signal} (it takes {', '.join(sorted(conversions))})",
                    )
                elif feeds and not conversions[signal] & {s for _, s in feeds}:
                    self.problem(
                        f"connectors.{name}",
                        f"fed {signal} by {pipeline_id}, but no pipeline of a signal it makes of them "
                        f"({', '.join(sorted(conversions[signal]))}) receives from it",
                    )
            made = set().union(*(conversions.get(s, set()) for _, s in fed_by)) if fed_by else set()
            for pipeline_id, signal in feeds:
                if fed_by and signal not in made:
                    self.problem(
                        f"service.pipelines.{pipeline_id}.receivers",
                        f"connector {name!r} ({kind}) makes no {signal} of what it is fed "
                        f"({', '.join(sorted({s for _, s in fed_by}))})",
                    )
        # A connector links the pipeline it exports from to the one it receives into; a cycle
        # would loop data forever, and the collector refuses it.
        edges = {p: set() for p in pipelines}
        for name in connectors:
            for source, (_, _, _, exporters) in pipelines.items():
                if name in exporters:
                    for target, (_, receivers, _, _) in pipelines.items():
                        if name in receivers:
                            edges[source].add(target)
        state = {}

        def visit(pipeline_id, trail):
            state[pipeline_id] = "open"
            for target in sorted(edges[pipeline_id]):
                if state.get(target) == "open":
                    cycle = trail[trail.index(target):] + [target] if target in trail else [pipeline_id, target]
                    self.problem("service.pipelines", f"the connectors form a cycle: {' -> '.join(cycle)}")
                elif target not in state:
                    visit(target, trail + [target])
            state[pipeline_id] = "done"

        for pipeline_id in sorted(edges):
            if pipeline_id not in state:
                visit(pipeline_id, [pipeline_id])

    def check_unused(self, pipelines, defined):
        used = set()
        for _, receivers, processors, exporters in pipelines.values():
            used.update(receivers, processors, exporters)
        for section in ("receivers", "processors", "exporters", "connectors"):
            for name in defined[section]:
                if name not in used:
                    self.problem(f"{section}.{name}", "defined but used by no pipeline")

    # -- the components written by hand ---------------------------------------------------------

    def keys(self, where, mapping, allowed):
        if not isinstance(mapping, dict):
            self.problem(where, "not a mapping")
            return False
        for key in mapping:
            if key not in allowed:
                self.problem(where, f"unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        return True

    def list_of(self, where, value, what="a list"):
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(where, f"not {what}")
            return []
        return value

    def check_component(self, section, name, kind, body):
        where = f"{section}.{name}"
        if (section, kind) in SIMPLE_KEYS:
            self.keys(where, body, SIMPLE_KEYS[(section, kind)])
        elif (section, kind) == ("processors", "transform"):
            self.check_transform(where, body)
        elif (section, kind) == ("connectors", "count"):
            self.check_count(where, body)
        elif (section, kind) == ("connectors", "signal_to_metrics"):
            self.check_signal_to_metrics(where, body)
        elif (section, kind) == ("connectors", "span_metrics"):
            self.check_span_metrics(where, body)

    def check_transform(self, where, body):
        self.keys(where, body, TRANSFORM_KEYS)
        if "error_mode" in body and body["error_mode"] not in ERROR_MODES:
            self.problem(f"{where}.error_mode", f"{body['error_mode']!r} is not one of {sorted(ERROR_MODES)}")
        if not any(key in body for key in TRANSFORM_CONTEXTS):
            self.problem(where, "no *_statements: the processor would do nothing")
        for key, contexts in TRANSFORM_CONTEXTS.items():
            for index, group in enumerate(self.list_of(f"{where}.{key}", body.get(key))):
                here = f"{where}.{key}[{index}]"
                if isinstance(group, str):
                    self.check_ottl(here, group)
                    continue
                if not self.keys(here, group, TRANSFORM_GROUP_KEYS):
                    continue
                context = group.get("context")
                if context is not None and context not in contexts:
                    self.problem(f"{here}.context", f"{context!r} is not a context of {key} ({', '.join(sorted(contexts))})")
                if "error_mode" in group and group["error_mode"] not in ERROR_MODES:
                    self.problem(f"{here}.error_mode", f"{group['error_mode']!r} is not one of {sorted(ERROR_MODES)}")
                statements = self.list_of(f"{here}.statements", group.get("statements"))
                if not statements:
                    self.problem(f"{here}.statements", "missing or empty")
                for field in ("statements", "conditions"):
                    for position, text in enumerate(self.list_of(f"{here}.{field}", group.get(field))):
                        self.check_ottl(f"{here}.{field}[{position}]", text)

    def check_count(self, where, body):
        self.keys(where, body, COUNT_KEYS)
        for key in COUNT_KEYS & set(body):
            metrics = body[key]
            if not isinstance(metrics, dict):
                self.problem(f"{where}.{key}", "not a mapping of metric names to their definitions")
                continue
            for metric, info in metrics.items():
                here = f"{where}.{key}.{metric}"
                if info is None:
                    continue
                if not self.keys(here, info, COUNT_METRIC_KEYS):
                    continue
                for position, text in enumerate(self.list_of(f"{here}.conditions", info.get("conditions"))):
                    self.check_ottl(f"{here}.conditions[{position}]", text)
                for position, attribute in enumerate(self.list_of(f"{here}.attributes", info.get("attributes"))):
                    at = f"{here}.attributes[{position}]"
                    if self.keys(at, attribute, COUNT_ATTRIBUTE_KEYS) and not attribute.get("key"):
                        self.problem(at, "no key")
                if key == "metrics" and info.get("attributes"):
                    self.problem(f"{here}.attributes", "the count connector cannot group metrics by attribute")

    def check_signal_to_metrics(self, where, body):
        self.keys(where, body, SIGNAL_TO_METRICS_KEYS)
        if not SIGNAL_TO_METRICS_KEYS & set(body):
            self.problem(where, "no metric defined (spans, datapoints, logs or profiles)")
        for key in SIGNAL_TO_METRICS_KEYS & set(body):
            for index, info in enumerate(self.list_of(f"{where}.{key}", body[key], "a list of metrics")):
                here = f"{where}.{key}[{index}]"
                if not self.keys(here, info, SIGNAL_TO_METRICS_METRIC_KEYS):
                    continue
                if not info.get("name"):
                    self.problem(here, "no name")
                kinds = [kind for kind in SIGNAL_TO_METRICS_KINDS if kind in info]
                if len(kinds) != 1:
                    self.problem(here, f"exactly one of {', '.join(SIGNAL_TO_METRICS_KINDS)} must be defined, {len(kinds)} found")
                for kind in kinds:
                    at = f"{here}.{kind}"
                    if not self.keys(at, info[kind], SIGNAL_TO_METRICS_KINDS[kind]):
                        continue
                    if not info[kind].get("value"):
                        self.problem(at, "no value expression")
                    for field in ("value", "count"):
                        if field in info[kind]:
                            self.check_ottl(f"{at}.{field}", info[kind][field])
                    buckets = info[kind].get("buckets")
                    if buckets is not None and (
                        not isinstance(buckets, list)
                        or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in buckets)
                        or buckets != sorted(set(buckets))
                    ):
                        self.problem(f"{at}.buckets", "not an increasing list of numbers")
                for field in ("attributes", "include_resource_attributes"):
                    for position, attribute in enumerate(self.list_of(f"{here}.{field}", info.get(field))):
                        at = f"{here}.{field}[{position}]"
                        if self.keys(at, attribute, SIGNAL_TO_METRICS_ATTRIBUTE_KEYS) and not attribute.get("key"):
                            self.problem(at, "no key")
                for position, text in enumerate(self.list_of(f"{here}.conditions", info.get("conditions"))):
                    self.check_ottl(f"{here}.conditions[{position}]", text)

    def check_span_metrics(self, where, body):
        self.keys(where, body, SPAN_METRICS_KEYS)
        histogram = body.get("histogram")
        if histogram is not None and self.keys(f"{where}.histogram", histogram, SPAN_METRICS_HISTOGRAM_KEYS):
            if "explicit" in histogram and "exponential" in histogram:
                self.problem(f"{where}.histogram", "explicit and exponential are exclusive")
            if "unit" in histogram and histogram["unit"] not in {"ms", "s"}:
                self.problem(f"{where}.histogram.unit", f"{histogram['unit']!r} is not ms or s")
            explicit = histogram.get("explicit")
            if explicit is not None and self.keys(f"{where}.histogram.explicit", explicit, {"buckets"}):
                for position, bucket in enumerate(self.list_of(f"{where}.histogram.explicit.buckets", explicit.get("buckets"))):
                    if not isinstance(bucket, str) or not DURATION.match(bucket):
                        self.problem(f"{where}.histogram.explicit.buckets[{position}]", f"{bucket!r} is not a duration (10ms, 1s)")
            exponential = histogram.get("exponential")
            if exponential is not None:
                self.keys(f"{where}.histogram.exponential", exponential, {"max_size"})
            self.check_dimensions(f"{where}.histogram.dimensions", histogram.get("dimensions"))
        for field in ("dimensions", "calls_dimensions"):
            self.check_dimensions(f"{where}.{field}", body.get(field))
        if "exemplars" in body:
            self.keys(f"{where}.exemplars", body["exemplars"], {"enabled", "max_per_data_point"})
        if "events" in body and self.keys(f"{where}.events", body["events"], {"enabled", "dimensions"}):
            self.check_dimensions(f"{where}.events.dimensions", body["events"].get("dimensions"))
        temporality = body.get("aggregation_temporality")
        if temporality is not None and temporality not in SPAN_METRICS_TEMPORALITIES:
            self.problem(f"{where}.aggregation_temporality", f"{temporality!r} is not one of {sorted(SPAN_METRICS_TEMPORALITIES)}")
        for field in ("metrics_flush_interval", "metrics_expiration", "series_expiration"):
            value = body.get(field)
            if value is not None and (not isinstance(value, str) or not DURATION.match(value)):
                self.problem(f"{where}.{field}", f"{value!r} is not a duration")

    def check_dimensions(self, where, dimensions):
        for position, dimension in enumerate(self.list_of(where, dimensions)):
            at = f"{where}[{position}]"
            if self.keys(at, dimension, SPAN_METRICS_DIMENSION_KEYS) and ("name" in dimension) == ("glob" in dimension):
                self.problem(at, "exactly one of name and glob")

    def check_ottl(self, where, text):
        """Brackets balanced and strings closed: what a typo breaks first."""
        if not isinstance(text, str) or not text.strip():
            self.problem(where, "not an OTTL expression (a non-empty string)")
            return
        pairs, stack, quoted, escaped = {")": "(", "]": "[", "}": "{"}, [], False, False
        for char in text:
            if quoted:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    quoted = False
            elif char == '"':
                quoted = True
            elif char in "([{":
                stack.append(char)
            elif char in pairs:
                if not stack or stack.pop() != pairs[char]:
                    self.problem(where, f"unbalanced {char!r} in OTTL {text!r}")
                    return
        if quoted:
            self.problem(where, f"unclosed string in OTTL {text!r}")
        elif stack:
            self.problem(where, f"unclosed {stack[-1]!r} in OTTL {text!r}")

    # -- across components ------------------------------------------------------------------------

    def check_log_attributes(self, pipelines, config, defined):
        """A logs connector reads only attributes a transform of its pipeline sets, or Spin's."""
        for pipeline_id, (signal, _, processors, exporters) in pipelines.items():
            if signal != LOGS:
                continue
            provided = set(SPIN_LOG_ATTRIBUTES)
            for name in processors:
                kind, body = defined["processors"].get(name, (None, {}))
                if kind != "transform":
                    continue
                for group in body.get("log_statements") or []:
                    texts = [group] if isinstance(group, str) else (group.get("statements") or [])
                    for text in texts:
                        if isinstance(text, str):
                            provided.update(SET_ATTRIBUTE.findall(text))
            for name in exporters:
                kind, body = defined["connectors"].get(name, (None, {}))
                if kind == "count":
                    metrics = body.get("logs") or {}
                    infos = [(f"logs.{m}", i) for m, i in metrics.items()] if isinstance(metrics, dict) else []
                elif kind == "signal_to_metrics":
                    infos = [(f"logs[{i}]", info) for i, info in enumerate(body.get("logs") or [])]
                else:
                    continue
                for path, info in infos:
                    if not isinstance(info, dict):
                        continue
                    read = []
                    for attribute in info.get("attributes") or []:
                        if isinstance(attribute, dict) and attribute.get("key"):
                            read.append(attribute["key"])
                    texts = list(info.get("conditions") or [])
                    for kind_key in SIGNAL_TO_METRICS_KINDS:
                        if isinstance(info.get(kind_key), dict):
                            texts += [info[kind_key].get("value") or "", info[kind_key].get("count") or ""]
                    for text in texts:
                        if isinstance(text, str):
                            read += READ_ATTRIBUTE.findall(text)
                    for key in dict.fromkeys(read):
                        if key not in provided:
                            self.problem(
                                f"connectors.{name}.{path}",
                                f"reads log attribute {key!r}, which no transform of pipeline {pipeline_id} sets "
                                "and Spin does not give a log record",
                            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG), help="the collector configuration")
    arguments = parser.parse_args()
    path = Path(arguments.config)
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        print(f"check-collector: cannot read {path}: {error.strerror}", file=sys.stderr)
        return 2
    checker = Checker(label)
    DuplicateKeyLoader.duplicates = []
    try:
        config = yaml.load(text, Loader=DuplicateKeyLoader)
    except yaml.YAMLError as error:
        print(f"{label}: not YAML: {error}", file=sys.stderr)
        return 1
    for key, line in DuplicateKeyLoader.duplicates:
        checker.problem(f"line {line}", f"key {key!r} given twice in one mapping (the collector would keep one)")
    pipelines = checker.check(config) or {}
    for note in checker.notes:
        print(f"{label}: {note}")
    if checker.problems:
        for problem in checker.problems:
            print(problem, file=sys.stderr)
        print(f"check-collector: {len(checker.problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    for pipeline_id, (_, receivers, processors, exporters) in pipelines.items():
        chain = " -> ".join(", ".join(part) for part in (receivers, processors, exporters) if part)
        print(f"{label}: service.pipelines.{pipeline_id}: {chain}")
    print(f"{label}: ok ({len(pipelines)} pipelines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
