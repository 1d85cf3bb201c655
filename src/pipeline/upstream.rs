//! Phase 6, upstream: the headers a worker receives (Pingora's `upstream_request_filter`).
//!
//! Whatever a client says about the request's origin is dropped, and the dispatcher states it
//! itself, so a worker can trust `X-Forwarded-*` and `X-Request-Id` as the platform's word.

use crate::pipeline::hop_by_hop::HopByHop;
use crate::pipeline::request::Headers;
use crate::pipeline::trace::is_trace_header;

/// What the dispatcher knows about the request, to tell the worker.
#[derive(Debug, Clone)]
pub struct Provenance<'a> {
    /// The `Host` header as the client sent it.
    pub host: &'a str,
    /// `http` or `https`, from Spin's `spin-full-url`.
    pub proto: &'a str,
    /// The peer's IP address, from Spin's `spin-client-addr`.
    pub client_ip: Option<&'a str>,
    pub request_id: &'a str,
    /// The client's trace context is valid ([`crate::pipeline::trace`]): it passes on as it is.
    /// Otherwise neither of its headers does.
    pub traced: bool,
}

/// Client headers that claim to describe the request's origin or route: proxies' and CDNs'
/// provenance headers (a worker behind another proxy may trust them), URL rewrites, and the
/// original dispatcher's `x-custom-domain`, `x-original-url`, `x-target-worker` and
/// `x-routing-strategy`, which tenants ported from it may still trust. Names compare with `_` and
/// `-` alike: CGI-style servers read `X_Forwarded_For` as the same variable as
/// `X-Forwarded-For`.
fn is_spoofable(name: &str) -> bool {
    const PREFIXES: &[&str] = &["x-forwarded-", "spin-", "cf-"];
    const NAMES: &[&str] = &[
        "host",
        "forwarded",
        "x-real-ip",
        "x-request-id",
        "true-client-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "x-original-host",
        "x-original-url",
        "x-rewrite-url",
        "x-custom-domain",
        "x-target-worker",
        "x-routing-strategy",
    ];
    // Case-insensitive, with `_` matching `-`.
    let same = |a: u8, b: u8| a.eq_ignore_ascii_case(&b) || (matches!(a, b'-' | b'_') && matches!(b, b'-' | b'_'));
    let name = name.as_bytes();
    let starts_with =
        |prefix: &str| name.len() >= prefix.len() && name.iter().zip(prefix.as_bytes()).all(|(a, b)| same(*a, *b));
    let equals = |other: &str| name.len() == other.len() && starts_with(other);
    PREFIXES.iter().any(|prefix| starts_with(prefix)) || NAMES.iter().any(|n| equals(n))
}

/// Whether `name` is a client's cookie on the dispatcher's shared origin: no tenant can set
/// one there (the response filter drops `Set-Cookie`), so any such cookie is the platform's or
/// another site's on that origin, and must not reach a tenant.
pub fn is_cookie(name: &str) -> bool {
    name.eq_ignore_ascii_case("cookie")
}

/// The headers a worker receives. `shared_origin`: the request came through path or query
/// dispatch, on the dispatcher's own origin, so the client's cookies there are not the tenant's.
pub fn headers(client: &Headers, provenance: &Provenance, shared_origin: bool) -> Headers {
    let hop_by_hop = HopByHop::of(client);
    let mut headers: Headers = client
        .iter()
        .filter(|(name, _)| {
            let dropped = is_spoofable(name)
                || hop_by_hop.contains(name)
                || (shared_origin && is_cookie(name))
                || (!provenance.traced && is_trace_header(name));
            !dropped
        })
        .cloned()
        .collect();
    headers.push(("x-forwarded-host".into(), provenance.host.as_bytes().to_vec()));
    headers.push(("x-forwarded-proto".into(), provenance.proto.as_bytes().to_vec()));
    if let Some(ip) = provenance.client_ip {
        headers.push(("x-forwarded-for".into(), ip.as_bytes().to_vec()));
    }
    headers.push(("x-request-id".into(), provenance.request_id.as_bytes().to_vec()));
    headers
}

/// The client's trailers as the worker receives them: the same rules as its headers, so a
/// trailer can no more claim the request's origin (`X-Forwarded-For`, `spin-*`) than a header
/// can, nor carry a shared origin's cookies, nor a trace context that came too late to be
/// checked. Nothing is added.
pub fn trailers(client: Headers, shared_origin: bool) -> Headers {
    let hop_by_hop = HopByHop::of(&client);
    client
        .into_iter()
        .filter(|(name, _)| {
            !(is_spoofable(name)
                || hop_by_hop.contains(name)
                || (shared_origin && is_cookie(name))
                || is_trace_header(name))
        })
        .collect()
}

/// The value Spin gives in a header it sets. Spin appends its headers after the client's, so a
/// client can send one of the same name first: only the last value is Spin's.
pub fn spin_header<'h>(headers: &'h Headers, name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// `https` when Spin's `spin-full-url` says so, else `http`.
pub fn proto(headers: &Headers) -> &'static str {
    match spin_header(headers, "spin-full-url") {
        Some(url) if url.len() >= 8 && url[..8].eq_ignore_ascii_case(b"https://") => "https",
        _ => "http",
    }
}

/// The IP address of `spin-client-addr` (`ip:port`, or `[v6]:port`), when it is one.
pub fn client_ip(headers: &Headers) -> Option<String> {
    let addr = std::str::from_utf8(spin_header(headers, "spin-client-addr")?)
        .ok()?
        .trim();
    let ip = match addr.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => addr.rsplit_once(':').map_or(addr, |(ip, _)| ip),
    };
    match ip.parse::<std::net::IpAddr>().ok()? {
        // Rust's parser accepts only canonical dotted quads (no leading zeros), so the text is
        // already canonical and is copied without going through `fmt`.
        std::net::IpAddr::V4(_) => Some(ip.to_string()),
        v6 => Some(v6.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_trailer_claims_no_more_than_a_header_could() {
        let client = headers_of(&[
            ("x-checksum", "42"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("spin-client-addr", "6.6.6.6:1"),
            ("x-request-id", "mine"),
            ("te", "trailers"),
            ("cookie", "session=1"),
        ]);
        let kept = |shared| -> Vec<String> { trailers(client.clone(), shared).into_iter().map(|(n, _)| n).collect() };
        assert_eq!(kept(false), ["x-checksum", "cookie"]);
        assert_eq!(kept(true), ["x-checksum"]);
    }

    fn value<'h>(headers: &'h Headers, name: &str) -> Vec<&'h str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
            .collect()
    }

    #[test]
    fn replaces_spoofed_provenance_with_the_dispatchers_own() {
        let client = headers_of(&[
            ("host", "hello.localhost:3000"),
            ("x-forwarded-for", "6.6.6.6"),
            ("X-Forwarded-Host", "evil.example"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-request-id", "client-chosen"),
            ("spin-client-addr", "6.6.6.6:1"),
            ("x-target-worker", "admin"),
            ("SPIN-Path-Info", "/spoofed"),
            ("X-REAL-IP", "6.6.6.6"),
            ("connection", "close, x-drop-me"),
            ("x-drop-me", "1"),
            ("te", "trailers"),
            ("cookie", "a=1"),
            ("accept", "text/html"),
            ("spin-client-addr", "10.1.2.3:5555"),
        ]);
        let provenance = Provenance {
            host: "hello.localhost:3000",
            proto: "https",
            client_ip: Some("10.1.2.3"),
            request_id: "rid-1",
            traced: true,
        };
        let out = headers(&client, &provenance, false);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "cookie",
                "accept",
                "x-forwarded-host",
                "x-forwarded-proto",
                "x-forwarded-for",
                "x-request-id"
            ]
        );
        assert_eq!(value(&out, "x-forwarded-for"), vec!["10.1.2.3"]);
        assert_eq!(value(&out, "x-forwarded-host"), vec!["hello.localhost:3000"]);
        assert_eq!(value(&out, "x-forwarded-proto"), vec!["https"]);
        assert_eq!(value(&out, "x-request-id"), vec!["rid-1"]);
    }

    #[test]
    fn other_proxies_provenance_and_underscore_spellings_are_dropped() {
        for name in [
            "CF-Connecting-IP",
            "cf-ipcountry",
            "True-Client-IP",
            "X-Client-IP",
            "X-Cluster-Client-IP",
            "X-Original-Host",
            "X-Rewrite-URL",
            "X_Forwarded_For",
            "x_real_ip",
            "X_Request_Id",
            "spin_client_addr",
            "Forwarded",
        ] {
            assert!(is_spoofable(name), "{name}");
        }
        for name in ["x-forward", "accept", "x-cf", "cookie", "x-originally", "cf"] {
            assert!(!is_spoofable(name), "{name}");
        }
    }

    #[test]
    fn cookies_stay_off_the_shared_origin() {
        let client = headers_of(&[("cookie", "platform-session=1"), ("accept", "*/*")]);
        let provenance = Provenance {
            host: "libra.sh",
            proto: "https",
            client_ip: None,
            request_id: "rid",
            traced: true,
        };
        let shared = headers(&client, &provenance, true);
        assert!(!shared.iter().any(|(n, _)| n == "cookie"));
        let own = headers(&client, &provenance, false);
        assert!(own.iter().any(|(n, _)| n == "cookie"));
    }

    #[test]
    fn trusts_only_the_last_spin_header() {
        let client = headers_of(&[
            ("spin-client-addr", "6.6.6.6:1"),
            ("spin-full-url", "https://evil/"),
            ("spin-full-url", "http://hello.localhost:3000/x"),
            ("spin-client-addr", "127.0.0.1:40000"),
        ]);
        assert_eq!(client_ip(&client).as_deref(), Some("127.0.0.1"));
        assert_eq!(proto(&client), "http");
        assert_eq!(
            client_ip(&headers_of(&[("spin-client-addr", "[::1]:8080")])).as_deref(),
            Some("::1")
        );
        assert_eq!(client_ip(&headers_of(&[("spin-client-addr", "not-an-ip:1")])), None);
        assert_eq!(client_ip(&headers_of(&[("spin-client-addr", "010.1.2.3:1")])), None);
        assert_eq!(
            client_ip(&headers_of(&[("spin-client-addr", "[0:0::0001]:1")])).as_deref(),
            Some("::1")
        );
        assert_eq!(proto(&headers_of(&[("spin-full-url", "HTTPS://a/")])), "https");
    }

    #[test]
    fn an_unsound_trace_context_does_not_pass_on() {
        let client = headers_of(&[
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("tracestate", "vendor=1"),
            ("accept", "*/*"),
        ]);
        let mut provenance = Provenance {
            host: "hello.localhost",
            proto: "http",
            client_ip: None,
            request_id: "rid",
            traced: true,
        };
        let sound = headers(&client, &provenance, false);
        assert_eq!(value(&sound, "traceparent").len(), 1);
        assert_eq!(value(&sound, "tracestate"), vec!["vendor=1"]);
        provenance.traced = false;
        let unsound = headers(&client, &provenance, false);
        assert!(value(&unsound, "traceparent").is_empty() && value(&unsound, "tracestate").is_empty());
        assert_eq!(value(&unsound, "accept"), vec!["*/*"]);
        // A trailer never carries one: it arrives after the request was traced.
        assert!(trailers(client, false).iter().all(|(name, _)| !is_trace_header(name)));
    }
}
