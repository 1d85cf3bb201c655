//! The client's W3C trace context (`traceparent`, `tracestate`): which trace a request belongs
//! to, so its log line leads to the trace Spin exports, and whether the context is sound enough
//! to pass on to the worker.
//!
//! Spin (4.0.2, with an OTLP endpoint set) reads `traceparent` itself before the dispatcher runs:
//! a valid one makes Spin's spans part of the client's trace, anything else starts a new trace.
//! It then writes its own `traceparent` (and `tracestate`) on every request the dispatcher sends,
//! the chained ones included. Without an endpoint it writes nothing, and what the dispatcher
//! forwards is all the worker gets. The guest cannot see the trace id Spin gives a request that
//! came without a context (only `wasi:otel` could tell it, behind an experimental flag), so the
//! log line names a trace only when the client's context is valid.
//!
//! Valid here is W3C Trace Context level 1, narrowed to what Spin's parser (opentelemetry-sdk)
//! also accepts, so a context the dispatcher logs is one Spin continued: exactly one
//! `traceparent`; version `00` with exactly 55 characters (a later version: at least 55, `-`
//! after them); lowercase hexadecimal ids, neither all zeros; flags `00` to `02` for version
//! `00`. A context that is not valid is not forwarded at all (nor is `tracestate` without a
//! valid `traceparent`): a worker either continues a sound trace or starts its own.

use crate::pipeline::request::Headers;

/// The trace a request belongs to, as 32 lowercase hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceId([u8; 32]);

impl TraceId {
    pub fn as_str(&self) -> &str {
        // Only lowercase hexadecimal digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Whether `name` is one of the trace context's headers.
pub fn is_trace_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("traceparent") || name.eq_ignore_ascii_case("tracestate")
}

/// The trace of the client's context, when it is valid: the only case in which the context is
/// forwarded.
pub fn client_trace(headers: &Headers) -> Option<TraceId> {
    let mut parents = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("traceparent"));
    let (Some((_, value)), None) = (parents.next(), parents.next()) else {
        return None;
    };
    parse_traceparent(value)
}

fn parse_traceparent(value: &[u8]) -> Option<TraceId> {
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let (version, trace, parent, flags) = (&value[..2], &value[3..35], &value[36..52], &value[53..55]);
    if !(is_hex(version) && is_hex(trace) && is_hex(parent) && is_hex(flags)) {
        return None;
    }
    if version == b"ff" || all_zeros(trace) || all_zeros(parent) {
        return None;
    }
    if version == b"00" {
        // Version 00 has nothing after the flags, and Spin's parser takes no flag above 02.
        if value.len() != 55 || flags[0] != b'0' || flags[1] > b'2' {
            return None;
        }
    } else if value.len() > 55 && value[55] != b'-' {
        return None;
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(trace);
    Some(TraceId(id))
}

fn is_hex(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn all_zeros(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn trace_of(value: &str) -> Option<String> {
        client_trace(&headers(&[("traceparent", value)])).map(|id| id.as_str().to_string())
    }

    #[test]
    fn a_valid_context_names_its_trace() {
        assert_eq!(trace_of(VALID).as_deref(), Some(TRACE));
        // Not sampled, and the "random" flag of level 2: still the client's trace.
        assert_eq!(
            trace_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").as_deref(),
            Some(TRACE)
        );
        assert_eq!(
            trace_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02").as_deref(),
            Some(TRACE)
        );
        // A later version may add fields after a dash.
        assert_eq!(
            trace_of("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").as_deref(),
            Some(TRACE)
        );
        // Header names are case-insensitive.
        let upper = headers(&[("TraceParent", VALID)]);
        assert_eq!(
            client_trace(&upper).map(|id| id.as_str().to_string()).as_deref(),
            Some(TRACE)
        );
    }

    #[test]
    fn a_malformed_context_names_none() {
        for bad in [
            "",
            "garbage-00-xyz",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e47360-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_of(bad), None, "{bad:?}");
        }
        // Two contexts: which one a tracer read is anyone's guess.
        let two = headers(&[("traceparent", VALID), ("traceparent", VALID)]);
        assert_eq!(client_trace(&two), None);
        assert_eq!(client_trace(&headers(&[("tracestate", "a=1")])), None);
    }
}
