//! Phase 5, respond: the headers a client receives from a worker (Pingora's `response_filter`).

use crate::pipeline::Headers;
use crate::pipeline::hop_by_hop::HopByHop;

/// Forces every page served through path or query dispatch into a unique opaque origin: scripts
/// don't run and it cannot read the dispatcher origin's storage or cookies. Without it, every
/// tenant's HTML would run as the dispatcher's origin and could act as any other tenant there.
pub const SHARED_ORIGIN_CSP: &str = "sandbox";

/// The worker's headers, unchanged but for hop-by-hop headers, plus the request id. Responses on
/// the shared dispatcher origin also lose `Set-Cookie` (a tenant could otherwise set cookies
/// that every other tenant on that origin receives) and gain a sandboxing CSP. A CSP the worker
/// sent stays: browsers enforce every policy, so adding one can only restrict.
///
/// A response to `HEAD` loses `Content-Length`: it describes a body that is not sent, and WASI
/// HTTP hosts (wasmtime-wasi-http, so Spin) fail a response whose body is shorter than it.
pub fn headers(worker: Headers, request_id: &str, shared_origin: bool, head_request: bool) -> Headers {
    let hop_by_hop = HopByHop::of(&worker);
    let mut headers: Headers = worker
        .into_iter()
        .filter(|(name, _)| {
            let dropped = hop_by_hop.contains(name)
                || name.eq_ignore_ascii_case("x-request-id")
                || (shared_origin && name.eq_ignore_ascii_case("set-cookie"))
                || (head_request && name.eq_ignore_ascii_case("content-length"));
            !dropped
        })
        .collect();
    headers.push(("x-request-id".into(), request_id.as_bytes().to_vec()));
    if shared_origin {
        headers.push(("content-security-policy".into(), SHARED_ORIGIN_CSP.as_bytes().to_vec()));
    }
    headers
}

/// Spin answers a chained request whose component trapped, or returned without responding, with
/// a bare 500: no headers, no body (`internal_error` in Spin's `trigger-http`). That is how a
/// worker failure reaches the dispatcher, so it becomes a 502. A worker that deliberately answers
/// 500 with no headers at all is indistinguishable from a crash and is reported the same way.
pub fn is_worker_failure(status: u16, headers: &Headers) -> bool {
    status == 500 && headers.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> Headers {
        [
            ("content-type", "text/html"),
            ("set-cookie", "session=1"),
            ("content-security-policy", "default-src 'self'"),
            ("connection", "x-internal"),
            ("x-internal", "1"),
            ("transfer-encoding", "chunked"),
            ("x-request-id", "worker-made"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
    }

    fn render(headers: &Headers) -> Vec<String> {
        headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
            .collect()
    }

    #[test]
    fn only_a_bare_500_is_a_worker_failure() {
        assert!(is_worker_failure(500, &Vec::new()));
        assert!(!is_worker_failure(
            500,
            &vec![("content-type".into(), b"text/plain".to_vec())]
        ));
        assert!(!is_worker_failure(503, &Vec::new()));
    }

    #[test]
    fn own_origin_keeps_everything_but_hop_by_hop() {
        assert_eq!(
            render(&headers(worker(), "rid", false, false)),
            vec![
                "content-type: text/html",
                "set-cookie: session=1",
                "content-security-policy: default-src 'self'",
                "x-request-id: rid"
            ]
        );
    }

    #[test]
    fn shared_origin_is_sandboxed_and_cookieless() {
        assert_eq!(
            render(&headers(worker(), "rid", true, false)),
            vec![
                "content-type: text/html",
                "content-security-policy: default-src 'self'",
                "x-request-id: rid",
                "content-security-policy: sandbox"
            ]
        );
    }

    #[test]
    fn a_head_response_loses_content_length_only() {
        let with_length: Headers = vec![
            ("content-type".into(), b"application/json".to_vec()),
            ("content-length".into(), b"42".to_vec()),
        ];
        assert_eq!(
            render(&headers(with_length.clone(), "rid", false, true)),
            vec!["content-type: application/json", "x-request-id: rid"]
        );
        assert_eq!(
            render(&headers(with_length, "rid", false, false)),
            vec![
                "content-type: application/json",
                "content-length: 42",
                "x-request-id: rid"
            ]
        );
    }
}
