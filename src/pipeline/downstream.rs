//! Phase 7, respond: the headers a client receives from a worker (Pingora's `response_filter`).
//!
//! Browsers apply some response headers to more than the response: to the whole origin
//! (`Strict-Transport-Security`, `NEL`, `Alt-Svc`, `Service-Worker-Allowed`...) or to the whole
//! site (`Clear-Site-Data`, cookies with a `Domain`). A worker must not be able to set those for
//! anyone but itself, so what passes depends on where the response is served:
//!
//! - [`Exposure::SharedOrigin`] (path and query dispatch, on the dispatcher's own origin, shared
//!   by every tenant): only an allow-list passes ([`SHARED_ORIGIN_ALLOWED`]), and the page is
//!   sandboxed into an opaque origin;
//! - [`Exposure::TenantSubdomain`] (`<worker>.<base_domain>`): the tenant's own origin, but the
//!   site (`base_domain`) is shared with every other tenant until it is on the Public Suffix
//!   List: cookies stay host-only and `Clear-Site-Data` is dropped;
//! - [`Exposure::OwnSite`] (a tenant's custom domain): everything passes.

use crate::pipeline::hop_by_hop::HopByHop;
use crate::pipeline::request::Headers;

/// Forces every page served through path or query dispatch into a unique opaque origin: scripts
/// don't run and it cannot read the dispatcher origin's storage or cookies. Without it, every
/// tenant's HTML would run as the dispatcher's origin and could act as any other tenant there.
pub const SHARED_ORIGIN_CSP: &str = "sandbox";

/// The response headers a worker may send on the shared origin. Each kind only describes this
/// one response, or restricts what a browser does with it:
/// - content and its encoding, length, range, language, disposition;
/// - caching and validators: `Cache-Control`, `Expires`, `Age`, `ETag`, `Last-Modified`,
///   `Vary`, `Pragma`;
/// - `Location` (a redirect) and `Retry-After`, `Allow`, `Accept-Ranges`, `Date`;
/// - CORS, without `Access-Control-Allow-Credentials`: another site could otherwise read, with
///   the visitor's credentials for the shared origin, what a tenant serves there;
/// - policies that only restrict this response: CSP, `X-Content-Type-Options`,
///   `X-Frame-Options`, `Referrer-Policy`, `Cross-Origin-*-Policy`, `Permissions-Policy`;
/// - `Trailer` (which trailer fields follow this body), `Server-Timing`, and application headers
///   named `x-...` (RFC 6648 retired the prefix for
///   standard headers, so browsers give them no meaning beyond those listed above).
///
/// Not on it, because a browser applies them beyond this response: `Set-Cookie` (to every
/// tenant on the origin), `Strict-Transport-Security` (`max-age=0` wipes the platform's HSTS,
/// `includeSubDomains` forces it on every tenant), `NEL`, `Report-To` and
/// `Reporting-Endpoints` (the browser reports other tenants' URLs to the worker's endpoint),
/// `Clear-Site-Data`, `Alt-Svc`, `Service-Worker-Allowed`, `Origin-Agent-Cluster`, `Accept-CH`
/// (client hints for the whole origin), `WWW-Authenticate` (a credentials prompt in the
/// platform's name), `Link` and `Refresh`; and any header not named here.
pub const SHARED_ORIGIN_ALLOWED: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "content-language",
    "content-range",
    "content-disposition",
    "content-location",
    "cache-control",
    "expires",
    "age",
    "etag",
    "last-modified",
    "vary",
    "pragma",
    "location",
    "retry-after",
    "allow",
    "accept-ranges",
    "date",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
    "content-security-policy",
    "content-security-policy-report-only",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cross-origin-resource-policy",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
    "permissions-policy",
    "server-timing",
    "trailer",
];

/// Headers that act on a whole site, and an `x-` header browsers still act on: dropped on
/// tenant subdomains too.
const SITE_WIDE: &[&str] = &["clear-site-data"];
const X_HEADERS_BROWSERS_USE: &[&str] = &["x-dns-prefetch-control", "x-permitted-cross-domain-policies"];

/// Where the response is served, which decides what a worker may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure<'a> {
    /// Path and query dispatch: the dispatcher's origin, shared by every tenant.
    SharedOrigin,
    /// `<worker>.<base_domain>`: the tenant's origin on a site shared with the other tenants.
    /// `host` is the tenant's own host name (normalised).
    TenantSubdomain { host: &'a str },
    /// A tenant's custom domain, or the dispatcher's own docs: their own site.
    OwnSite,
}

fn is_allowed_on_shared_origin(name: &str) -> bool {
    let lower = |n: &str| name.eq_ignore_ascii_case(n);
    SHARED_ORIGIN_ALLOWED.iter().any(|n| lower(n))
        || (name.len() > 2
            && name.as_bytes()[..2].eq_ignore_ascii_case(b"x-")
            && !X_HEADERS_BROWSERS_USE.iter().any(|n| lower(n)))
}

/// The worker's headers as the client gets them: without hop-by-hop headers and the worker's
/// own `X-Request-Id` (the dispatcher's is added), filtered for `exposure`.
///
/// A response to `HEAD` loses `Content-Length`: it describes a body that is not sent, and WASI
/// HTTP hosts (wasmtime-wasi-http, so Spin) fail a response whose body is shorter than it.
pub fn headers(worker: Headers, request_id: &str, exposure: Exposure, head_request: bool) -> Headers {
    let hop_by_hop = HopByHop::of(&worker);
    let mut headers: Headers = Vec::with_capacity(worker.len() + 2);
    for (name, mut value) in worker {
        if hop_by_hop.contains(&name)
            || name.eq_ignore_ascii_case("x-request-id")
            || (head_request && name.eq_ignore_ascii_case("content-length"))
        {
            continue;
        }
        if name.eq_ignore_ascii_case("ratelimit") || name.eq_ignore_ascii_case("ratelimit-policy") {
            // The dispatcher's own policy is named `tenant`: a worker may state its own limits,
            // never pass for the dispatcher's.
            match without_member(&value, crate::limits::rate::POLICY_NAME) {
                Some(kept) => value = kept,
                None => continue,
            }
        }
        match exposure {
            Exposure::SharedOrigin if !is_allowed_on_shared_origin(&name) => continue,
            Exposure::TenantSubdomain { host } => {
                if SITE_WIDE.iter().any(|n| name.eq_ignore_ascii_case(n)) {
                    continue;
                }
                if name.eq_ignore_ascii_case("set-cookie") {
                    headers.push((name, host_only_cookie(&value, host)));
                    continue;
                }
            }
            _ => {}
        }
        headers.push((name, value));
    }
    headers.push(("x-request-id".into(), request_id.as_bytes().to_vec()));
    if exposure == Exposure::SharedOrigin {
        headers.push(("content-security-policy".into(), SHARED_ORIGIN_CSP.as_bytes().to_vec()));
    }
    headers
}

/// A structured-field list (RFC 9651) without its members named `name` (as a string or a
/// token), `None` when nothing is left. Commas inside strings do not split members.
pub fn without_member(value: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut members: Vec<&[u8]> = Vec::new();
    let (mut start, mut in_string, mut escaped) = (0, false, false);
    for (i, &byte) in value.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b',' if !in_string => {
                members.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members.push(&value[start..]);
    let named = |member: &[u8]| {
        let item = member.trim_ascii();
        let bare = item.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        let bare = bare
            .strip_prefix(b"\"")
            .and_then(|rest| rest.strip_suffix(b"\""))
            .unwrap_or(bare);
        bare == name.as_bytes()
    };
    let kept: Vec<&[u8]> = members
        .into_iter()
        .filter(|member| !member.trim_ascii().is_empty() && !named(member))
        .map(<[u8]>::trim_ascii)
        .collect();
    (!kept.is_empty()).then(|| kept.join(&b", "[..]))
}

/// The worker's trailers as the client gets them: what [`headers`] would let through, less
/// `Set-Cookie` (a cookie is for the header section, and a cookie filter that a trailer could go
/// around would be no filter). Nothing is added.
pub fn trailers(worker: Headers, exposure: Exposure) -> Headers {
    let hop_by_hop = HopByHop::of(&worker);
    worker
        .into_iter()
        .filter(|(name, _)| {
            !(hop_by_hop.contains(name)
                || name.eq_ignore_ascii_case("x-request-id")
                || name.eq_ignore_ascii_case("set-cookie")
                || match exposure {
                    Exposure::SharedOrigin => !is_allowed_on_shared_origin(name),
                    Exposure::TenantSubdomain { .. } => SITE_WIDE.iter().any(|n| name.eq_ignore_ascii_case(n)),
                    Exposure::OwnSite => false,
                })
        })
        .collect()
}

/// A `Set-Cookie` value without any `Domain` attribute that is not exactly the tenant's own
/// host: `Domain=<base_domain>` (or a sibling's host) would send the cookie to every other
/// tenant, or let a tenant overwrite theirs. Without `Domain` a cookie is host-only, which is
/// what a tenant on a shared site may have.
pub fn host_only_cookie(value: &[u8], host: &str) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(value.len());
    for (i, part) in value.split(|b| *b == b';').enumerate() {
        if i > 0 {
            let attribute = part.trim_ascii();
            let (key, domain) = match attribute.iter().position(|b| *b == b'=') {
                Some(eq) => (attribute[..eq].trim_ascii(), attribute[eq + 1..].trim_ascii()),
                None => (attribute, &b""[..]),
            };
            if key.eq_ignore_ascii_case(b"domain") {
                let domain = domain.strip_prefix(b".").unwrap_or(domain);
                if !domain.eq_ignore_ascii_case(host.as_bytes()) {
                    continue;
                }
            }
            out.push(b';');
        }
        out.extend_from_slice(part);
    }
    out
}

/// Spin answers a chained request whose component trapped, or returned without responding, with
/// a bare 500: no headers, no body (`internal_error` in Spin's `trigger-http`). That is how a
/// worker failure reaches the dispatcher, so it becomes a 502. A worker that deliberately answers
/// 500 with no headers at all is indistinguishable from a crash and is reported the same way.
/// A worker answering with an informational status (1xx, 101 included) to a plain request has
/// not answered it: that is a failure too, as there is no upgrade or interim response to pass on.
pub fn is_worker_failure(status: u16, headers: &Headers) -> bool {
    (status == 500 && headers.is_empty()) || status < 200
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_cannot_pass_its_limits_for_the_dispatchers() {
        assert_eq!(without_member(b"\"tenant\";q=1;w=1", "tenant"), None);
        assert_eq!(without_member(b"tenant;r=0;t=1", "tenant"), None);
        assert_eq!(
            without_member(b"\"api\";q=100;w=60, \"tenant\";q=1;w=1,\"a,b\";q=2", "tenant"),
            Some(b"\"api\";q=100;w=60, \"a,b\";q=2".to_vec())
        );
        assert_eq!(
            without_member(b"\"tenants\";q=1", "tenant"),
            Some(b"\"tenants\";q=1".to_vec())
        );
        let worker = vec![
            (
                "RateLimit".to_string(),
                b"\"tenant\";r=999;t=1, \"api\";r=5;t=9".to_vec(),
            ),
            ("ratelimit-policy".to_string(), b"\"tenant\";q=1000;w=1".to_vec()),
        ];
        let filtered = headers(worker, "rid", Exposure::OwnSite, false);
        assert_eq!(filtered[0], ("RateLimit".to_string(), b"\"api\";r=5;t=9".to_vec()));
        assert!(
            !filtered.iter().any(|(name, _)| name == "ratelimit-policy"),
            "{filtered:?}"
        );
    }

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

    fn of(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_trailer_goes_round_no_response_filter() {
        let worker = of(&[
            ("x-checksum", "42"),
            ("grpc-status", "0"),
            ("set-cookie", "session=1; Domain=libra.sh"),
            ("x-request-id", "worker-made"),
            ("clear-site-data", "\"*\""),
            ("connection", "x-internal"),
            ("x-internal", "1"),
        ]);
        let kept =
            |exposure| -> Vec<String> { trailers(worker.clone(), exposure).into_iter().map(|(n, _)| n).collect() };
        assert_eq!(
            kept(Exposure::OwnSite),
            ["x-checksum", "grpc-status", "clear-site-data"]
        );
        assert_eq!(
            kept(Exposure::TenantSubdomain { host: "a.libra.sh" }),
            ["x-checksum", "grpc-status"]
        );
        assert_eq!(kept(Exposure::SharedOrigin), ["x-checksum"]);
    }

    #[test]
    fn a_bare_500_or_an_informational_status_is_a_worker_failure() {
        assert!(is_worker_failure(500, &Vec::new()));
        assert!(!is_worker_failure(
            500,
            &vec![("content-type".into(), b"text/plain".to_vec())]
        ));
        assert!(!is_worker_failure(503, &Vec::new()));
        for status in [100, 101, 103, 199] {
            assert!(is_worker_failure(status, &of(&[("a", "b")])), "{status}");
        }
        assert!(!is_worker_failure(200, &Vec::new()));
    }

    #[test]
    fn own_site_keeps_everything_but_hop_by_hop() {
        assert_eq!(
            render(&headers(worker(), "rid", Exposure::OwnSite, false)),
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
            render(&headers(worker(), "rid", Exposure::SharedOrigin, false)),
            vec![
                "content-type: text/html",
                "content-security-policy: default-src 'self'",
                "x-request-id: rid",
                "content-security-policy: sandbox"
            ]
        );
    }

    #[test]
    fn shared_origin_passes_only_headers_that_act_on_this_response() {
        let hostile = of(&[
            ("Strict-Transport-Security", "max-age=0; includeSubDomains"),
            ("NEL", r#"{"report_to":"x","max_age":1}"#),
            ("Report-To", r#"{"group":"x"}"#),
            ("Reporting-Endpoints", "x=\"https://evil.example/\""),
            ("Clear-Site-Data", "\"*\""),
            ("Alt-Svc", "h3=\":443\""),
            ("Service-Worker-Allowed", "/"),
            ("Origin-Agent-Cluster", "?0"),
            ("Accept-CH", "Sec-CH-UA-Model"),
            ("WWW-Authenticate", "Basic realm=\"libra\""),
            ("Access-Control-Allow-Credentials", "true"),
            ("Link", "<https://evil.example/>; rel=preload"),
            ("Refresh", "0; url=https://evil.example/"),
            ("X-DNS-Prefetch-Control", "on"),
            ("Made-Up-Header", "1"),
            ("Set-Cookie", "a=1"),
        ]);
        let kept = of(&[
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("ETag", "\"1\""),
            ("Vary", "Accept"),
            ("Location", "/elsewhere"),
            ("Access-Control-Allow-Origin", "*"),
            ("X-RateLimit-Remaining", "9"),
        ]);
        let out = headers(
            hostile.into_iter().chain(kept.clone()).collect(),
            "rid",
            Exposure::SharedOrigin,
            false,
        );
        let mut expected = kept;
        expected.push(("x-request-id".into(), b"rid".to_vec()));
        expected.push(("content-security-policy".into(), b"sandbox".to_vec()));
        assert_eq!(out, expected);
    }

    #[test]
    fn tenant_subdomains_keep_cookies_host_only_and_lose_site_wide_headers() {
        let host = "shop.libra.sh";
        assert_eq!(
            host_only_cookie(b"sid=x; Domain=libra.sh; Path=/; Secure", host),
            b"sid=x; Path=/; Secure".to_vec()
        );
        assert_eq!(host_only_cookie(b"sid=x;domain=.LIBRA.SH", host), b"sid=x".to_vec());
        assert_eq!(
            host_only_cookie(b"sid=x; Domain=victim.libra.sh", host),
            b"sid=x".to_vec()
        );
        // Its own host, or no Domain at all, stays as it was.
        for own in [
            &b"sid=x; Domain=shop.libra.sh; HttpOnly"[..],
            b"sid=x; HttpOnly",
            b"sid=",
        ] {
            assert_eq!(host_only_cookie(own, host), own.to_vec());
        }
        let out = headers(
            of(&[
                ("set-cookie", "a=1; Domain=libra.sh"),
                ("clear-site-data", "\"cookies\""),
                ("strict-transport-security", "max-age=63072000"),
            ]),
            "rid",
            Exposure::TenantSubdomain { host },
            false,
        );
        assert_eq!(
            render(&out),
            vec![
                "set-cookie: a=1",
                "strict-transport-security: max-age=63072000",
                "x-request-id: rid"
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
            render(&headers(with_length.clone(), "rid", Exposure::OwnSite, true)),
            vec!["content-type: application/json", "x-request-id: rid"]
        );
        assert_eq!(
            render(&headers(with_length, "rid", Exposure::OwnSite, false)),
            vec![
                "content-type: application/json",
                "content-length: 42",
                "x-request-id: rid"
            ]
        );
    }
}
