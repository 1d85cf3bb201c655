//! Phase 3, admit: limits and methods, checked before any byte reaches a worker.

use crate::error::DispatchError;
use crate::pipeline::request::Headers;

/// Longest request target (path and query) accepted; longer ones get 414.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Largest header section accepted (names, values and separators); larger ones get 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

pub fn check_target(path_and_query: &str) -> Result<(), DispatchError> {
    if path_and_query.len() > MAX_TARGET_BYTES {
        return Err(DispatchError::UriTooLong {
            limit: MAX_TARGET_BYTES,
        });
    }
    Ok(())
}

/// The headers Spin appends after the client's (`crates/trigger-http/src/headers.rs`). Two of
/// them repeat the whole URL, so counting them would refuse clients that sent less than the
/// limit.
const SPIN_APPENDED: &[&str] = &[
    "spin-path-info",
    "spin-full-url",
    "spin-matched-route",
    "spin-base-path",
    "spin-raw-component-route",
    "spin-component-route",
    "spin-client-addr",
];

/// The client's own headers: all but the run of Spin's at the end, each of which Spin appends
/// once. A client's header of the same name comes before Spin's, so it still counts.
fn client_headers(headers: &Headers) -> &[(String, Vec<u8>)] {
    // Which of `SPIN_APPENDED` the run has met, a bit each: a second one ends the run.
    let mut seen = 0u8;
    let mut end = headers.len();
    while end > 0 {
        let name = headers[end - 1].0.as_str();
        let Some(known) = SPIN_APPENDED.iter().position(|n| name.eq_ignore_ascii_case(n)) else {
            break;
        };
        if seen & (1 << known) != 0 {
            break;
        }
        seen |= 1 << known;
        end -= 1;
    }
    &headers[..end]
}

pub fn check_header_size(headers: &Headers) -> Result<(), DispatchError> {
    let size = |headers: &[(String, Vec<u8>)]| -> usize {
        headers.iter().map(|(name, value)| name.len() + value.len() + 4).sum()
    };
    // Within the limit with Spin's headers counted, the client's alone are too: only a large
    // section pays for finding Spin's run (a case-blind compare of each name against each of
    // Spin's, which was about 4,000 of a request's 47,000 WebAssembly instructions).
    if size(headers) > MAX_HEADER_BYTES && size(client_headers(headers)) > MAX_HEADER_BYTES {
        return Err(DispatchError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    Ok(())
}

/// The methods named in `Allow` when one is refused; any other but these two is forwarded too.
pub const FORWARDED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// `CONNECT` would turn the dispatcher into a tunnel and `TRACE` would reflect credentials back;
/// neither is forwarded.
pub fn check_forwardable_method(method: &str) -> Result<(), DispatchError> {
    match method {
        "CONNECT" | "TRACE" => Err(DispatchError::MethodNotAllowed {
            allow: FORWARDED_METHODS,
        }),
        _ => Ok(()),
    }
}

/// Refuses a request that has already passed through this dispatcher more than `max` times
/// (RFC 8586 `CDN-Loop`): a remote worker, or a template, that sends requests back into the
/// platform would otherwise make them circle until something times out.
pub fn check_loop(loops: usize, max: u64) -> Result<(), DispatchError> {
    if u64::try_from(loops).unwrap_or(u64::MAX) > max {
        return Err(DispatchError::LoopDetected);
    }
    Ok(())
}

/// The body length a request declares, checked: a length that is not one whole number (or two
/// that disagree) is refused before anything else is read. A body without a length is counted
/// while it streams instead (see the forwarding loop).
pub fn declared_length(headers: &Headers) -> Result<Option<u64>, DispatchError> {
    let mut declared: Option<u64> = None;
    for (_, value) in headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        let text = std::str::from_utf8(value)
            .map_err(|_| DispatchError::InvalidContentLength)?
            .trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DispatchError::InvalidContentLength);
        }
        let length: u64 = text.parse().map_err(|_| DispatchError::InvalidContentLength)?;
        if declared.is_some_and(|previous| previous != length) {
            return Err(DispatchError::InvalidContentLength);
        }
        declared = Some(length);
    }
    Ok(declared)
}

/// Refuses a declared body over the cap before forwarding anything.
pub fn check_length(declared: u64, max_body_bytes: u64) -> Result<(), DispatchError> {
    if declared > max_body_bytes {
        return Err(DispatchError::PayloadTooLarge { limit: max_body_bytes });
    }
    Ok(())
}

/// The token this dispatcher adds to `CDN-Loop` (RFC 8586) on every request it sends to a remote
/// worker, and counts on the requests it receives.
pub const CDN_LOOP_TOKEN: &str = "libra-dispatcher";

/// How many times `CDN-Loop` headers already name this dispatcher. A remote worker that sends a
/// request back through the platform (or a template pointing at a dispatcher) adds one each time.
pub fn loop_count(headers: &Headers) -> usize {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cdn-loop"))
        .flat_map(|(_, value)| value.split(|b| *b == b','))
        .filter(|info| {
            // cdn-info = cdn-id *( OWS ";" OWS parameter )
            let id = info.split(|b| *b == b';').next().unwrap_or_default();
            id.trim_ascii().eq_ignore_ascii_case(CDN_LOOP_TOKEN.as_bytes())
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn target_limit_is_inclusive() {
        assert!(check_target(&"a".repeat(MAX_TARGET_BYTES)).is_ok());
        assert_eq!(
            check_target(&"a".repeat(MAX_TARGET_BYTES + 1)),
            Err(DispatchError::UriTooLong { limit: 8192 })
        );
    }

    #[test]
    fn header_section_limit() {
        assert!(check_header_size(&headers(&[("a", "b")])).is_ok());
        let big = "x".repeat(MAX_HEADER_BYTES);
        assert_eq!(
            check_header_size(&headers(&[("a", &big)])),
            Err(DispatchError::HeadersTooLarge {
                limit: MAX_HEADER_BYTES
            })
        );
    }

    #[test]
    fn the_header_limit_counts_the_clients_headers_only() {
        let long = format!("http://echo.localhost/{}", "a".repeat(8_000));
        let mut request = headers(&[("a", &"x".repeat(MAX_HEADER_BYTES - 100))]);
        let client = request.clone();
        for name in SPIN_APPENDED {
            request.push((name.to_string(), long.clone().into_bytes()));
        }
        assert_eq!(client_headers(&request), client.as_slice());
        assert!(check_header_size(&request).is_ok());
        // A client's own spin-* header before Spin's still counts, whatever its name.
        let mut smuggled = headers(&[("spin-full-url", &"x".repeat(MAX_HEADER_BYTES))]);
        smuggled.push(("spin-full-url".into(), b"http://h/".to_vec()));
        assert_eq!(client_headers(&smuggled).len(), 1);
        assert!(check_header_size(&smuggled).is_err());
    }

    #[test]
    fn connect_and_trace_are_not_forwarded() {
        assert!(check_forwardable_method("PROPFIND").is_ok());
        assert_eq!(check_forwardable_method("CONNECT").unwrap_err().status(), 405);
        assert_eq!(check_forwardable_method("TRACE").unwrap_err().status(), 405);
    }

    #[test]
    fn declared_length_over_the_cap_is_refused() {
        assert_eq!(declared_length(&headers(&[])), Ok(None));
        assert_eq!(declared_length(&headers(&[("content-length", "10")])), Ok(Some(10)));
        assert_eq!(declared_length(&headers(&[("Content-Length", " 11 ")])), Ok(Some(11)));
        assert_eq!(check_length(10, 10), Ok(()));
        assert_eq!(check_length(11, 10), Err(DispatchError::PayloadTooLarge { limit: 10 }));
        for bad in ["", "-1", "1e3", "0x10", "99999999999999999999999"] {
            assert_eq!(
                declared_length(&headers(&[("content-length", bad)])),
                Err(DispatchError::InvalidContentLength),
                "{bad}"
            );
        }
        assert_eq!(
            declared_length(&headers(&[("content-length", "1"), ("content-length", "2")])),
            Err(DispatchError::InvalidContentLength)
        );
    }

    #[test]
    fn a_loop_is_refused_past_the_count() {
        assert_eq!(check_loop(0, 0), Ok(()));
        assert_eq!(check_loop(1, 1), Ok(()));
        assert_eq!(check_loop(2, 1), Err(DispatchError::LoopDetected));
    }

    #[test]
    fn counts_this_dispatcher_in_cdn_loop() {
        let headers: Headers = vec![
            ("CDN-Loop".into(), b"cloudflare, libra-dispatcher; ns=a".to_vec()),
            ("cdn-loop".into(), b"LIBRA-DISPATCHER ,other".to_vec()),
            ("x".into(), b"libra-dispatcher".to_vec()),
        ];
        assert_eq!(loop_count(&headers), 2);
        assert_eq!(loop_count(&Vec::new()), 0);
    }
}
