//! CORS for the dispatcher's own API: which pages on other origins may read `/dispatch`,
//! `/health`, `/health/detailed`, `/openapi.json` and `/dispatch/explain` (the `cors_origins`
//! setting), and the preflight the browser sends first.
//!
//! Only these paths on a dispatcher host: a tenant's host and the tenant paths
//! (`/dispatch/<worker>/`, `?worker=`) belong to the tenant, which answers its own preflights and
//! sets its own headers (they pass through untouched). No response ever allows credentials: the
//! API needs none a browser would attach by itself (the admin token is an `Authorization` header
//! a page sets explicitly, which the preflight allows), so a `*` can never be combined with them.

/// Header names and values, as `crate::pipeline::request::Headers`: spelt out here, so that
/// `crate::config` can parse `cors_origins` with this module without a module cycle (the request
/// type depends on the configuration).
type Headers = Vec<(String, Vec<u8>)>;

/// The paths a page on another origin may read, when `cors_origins` allows its origin.
pub const PATHS: [&str; 8] = [
    "/dispatch",
    "/api/dispatch",
    "/dispatch/explain",
    "/api/dispatch/explain",
    "/health",
    "/health/detailed",
    "/openapi.json",
    // Not an API path, but the same document's other address would surprise a reader.
    "/openapi.json/",
];

/// The methods these paths serve.
pub const METHODS: &str = "GET, HEAD";

/// The request headers a page may send: the admin token.
pub const ALLOWED_HEADERS: &str = "authorization";

/// The response headers a page may read, besides the CORS-safelisted ones.
pub const EXPOSED_HEADERS: &str = "x-request-id, retry-after";

/// How long a browser may keep a preflight's answer.
pub const MAX_AGE_S: &str = "600";

/// Which origins may read the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// `*`: any page.
    Any,
    /// Exact origins, `scheme://host[:port]`, lowercase, without a default port.
    Listed(Vec<String>),
}

impl Origins {
    /// `cors_origins`: `*`, or comma-separated origins; `None` when empty (no CORS at all).
    pub fn parse(value: &str) -> Result<Option<Origins>, String> {
        let entries: Vec<&str> = value.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        if entries.is_empty() {
            return Ok(None);
        }
        if entries.contains(&"*") {
            if entries.len() > 1 {
                return Err("`*` allows every origin: it cannot be listed with others".into());
            }
            return Ok(Some(Origins::Any));
        }
        entries
            .iter()
            .map(|entry| origin(entry))
            .collect::<Result<Vec<_>, _>>()
            .map(|origins| Some(Origins::Listed(origins)))
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::Listed(origins) => origins.iter().any(|allowed| allowed == origin),
        }
    }
}

/// One configured origin, normalised as a browser serialises it.
fn origin(entry: &str) -> Result<String, String> {
    let bad = |why: &str| format!("'{entry}' is not an origin ({why}), e.g. https://console.example.com");
    let lower = entry.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return Err(bad("not http or https")),
    };
    if rest.contains(['/', '?', '#', '@']) {
        return Err(bad("an origin has no path, query or user"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !host_ok {
        return Err(bad("not a host name"));
    }
    match port {
        Some(port) if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 => {
            Err(bad("not a port"))
        }
        Some(port) if port == default_port => Ok(format!("{scheme}://{host}")),
        Some(port) => Ok(format!("{scheme}://{host}:{port}")),
        None => Ok(format!("{scheme}://{host}")),
    }
}

/// Whether `path` (without its query) is one a page may read.
pub fn applies_to(path: &str) -> bool {
    PATHS.contains(&path)
}

/// Whether the request is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub fn is_preflight(method: &str, request: &Headers) -> bool {
    method == "OPTIONS"
        && header(request, "origin").is_some()
        && header(request, "access-control-request-method").is_some()
}

/// The headers of a response to a request on one of [`PATHS`]. `Vary: Origin` always (the
/// answer depends on it, and a cache must not give one origin's to another); the rest only
/// when the request's origin is allowed. A preflight also gets the methods and headers it may
/// use, when the method it asks for is one of [`METHODS`].
pub fn response_headers(origins: &Origins, request: &Headers, preflight: bool) -> Headers {
    let mut headers: Headers = vec![("vary".into(), b"Origin".to_vec())];
    let Some(origin) = header(request, "origin").filter(|origin| origins.allows(origin)) else {
        return headers;
    };
    let allowed_origin = match origins {
        Origins::Any => b"*".to_vec(),
        Origins::Listed(_) => origin.as_bytes().to_vec(),
    };
    if preflight {
        let method = header(request, "access-control-request-method").unwrap_or("");
        if !matches!(method, "GET" | "HEAD") {
            return headers;
        }
        headers[0].1 = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_vec();
        headers.extend([
            ("access-control-allow-origin".into(), allowed_origin),
            ("access-control-allow-methods".into(), METHODS.as_bytes().to_vec()),
            (
                "access-control-allow-headers".into(),
                ALLOWED_HEADERS.as_bytes().to_vec(),
            ),
            ("access-control-max-age".into(), MAX_AGE_S.as_bytes().to_vec()),
        ]);
    } else {
        headers.extend([
            ("access-control-allow-origin".into(), allowed_origin),
            (
                "access-control-expose-headers".into(),
                EXPOSED_HEADERS.as_bytes().to_vec(),
            ),
        ]);
    }
    headers
}

/// The one value of `name`, as text; `None` if absent, repeated or not UTF-8 (a browser sends
/// one `Origin`).
fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    let mut values = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    match (values.next(), values.next()) {
        (Some((_, value)), None) => std::str::from_utf8(value).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn origins_parse_strictly_and_normalise() {
        assert_eq!(Origins::parse(""), Ok(None));
        assert_eq!(Origins::parse(" , "), Ok(None));
        assert_eq!(Origins::parse("*"), Ok(Some(Origins::Any)));
        assert_eq!(
            Origins::parse("HTTPS://Console.Example.com:443, http://localhost:8080"),
            Ok(Some(Origins::Listed(vec![
                "https://console.example.com".into(),
                "http://localhost:8080".into()
            ])))
        );
        assert_eq!(
            Origins::parse("http://[::1]:3000"),
            Ok(Some(Origins::Listed(vec!["http://[::1]:3000".into()])))
        );
        for bad in [
            "*, https://a.example",
            "console.example.com",
            "ftp://a.example",
            "https://a.example/",
            "https://a.example/path",
            "https://user@a.example",
            "https://a.example:port",
            "https://a.example:",
            "https://a_b.example",
            "https://",
            "null",
        ] {
            assert!(Origins::parse(bad).is_err(), "{bad}");
        }
        // The problem names the entry, so the operator can find it.
        assert!(
            Origins::parse("https://ok.example, nope")
                .unwrap_err()
                .contains("'nope'")
        );
    }

    #[test]
    fn an_allowed_origin_is_echoed_and_others_get_only_vary() {
        let listed = Origins::parse("https://console.example.com").unwrap().unwrap();
        let allowed = request(&[("origin", "https://console.example.com")]);
        let headers = response_headers(&listed, &allowed, false);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some("https://console.example.com")
        );
        assert_eq!(header(&headers, "vary"), Some("Origin"));
        assert_eq!(header(&headers, "access-control-allow-credentials"), None);
        for other in [
            "https://evil.example",
            "https://console.example.com.evil.example",
            "http://console.example.com",
            "null",
        ] {
            let headers = response_headers(&listed, &request(&[("origin", other)]), false);
            assert_eq!(headers, vec![("vary".to_string(), b"Origin".to_vec())], "{other}");
        }
        // No origin (not a cross-origin request): only `Vary`.
        assert_eq!(response_headers(&listed, &request(&[]), false).len(), 1);
        // Two `Origin` headers: no browser sends them; nothing is allowed.
        let twice = request(&[
            ("origin", "https://console.example.com"),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(response_headers(&listed, &twice, false).len(), 1);
    }

    #[test]
    fn any_origin_is_a_star_never_with_credentials() {
        let headers = response_headers(&Origins::Any, &request(&[("origin", "https://anyone.example")]), false);
        assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
        assert!(!headers.iter().any(|(n, _)| n.contains("credentials")));
    }

    #[test]
    fn a_preflight_gets_the_methods_and_the_admin_header() {
        let listed = Origins::parse("https://console.example.com").unwrap().unwrap();
        let preflight = request(&[
            ("origin", "https://console.example.com"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ]);
        assert!(is_preflight("OPTIONS", &preflight));
        assert!(!is_preflight("GET", &preflight));
        assert!(!is_preflight(
            "OPTIONS",
            &request(&[("origin", "https://console.example.com")])
        ));
        let headers = response_headers(&listed, &preflight, true);
        assert_eq!(header(&headers, "access-control-allow-methods"), Some(METHODS));
        assert_eq!(header(&headers, "access-control-allow-headers"), Some("authorization"));
        assert_eq!(header(&headers, "access-control-max-age"), Some("600"));
        // A method the API does not serve is not allowed.
        let delete = request(&[
            ("origin", "https://console.example.com"),
            ("access-control-request-method", "DELETE"),
        ]);
        assert_eq!(
            header(&response_headers(&listed, &delete, true), "access-control-allow-origin"),
            None
        );
    }

    #[test]
    fn only_the_api_paths_are_covered() {
        for path in [
            "/dispatch",
            "/health",
            "/health/detailed",
            "/openapi.json",
            "/dispatch/explain",
        ] {
            assert!(applies_to(path), "{path}");
        }
        for path in ["/", "/docs", "/dispatch/shop", "/dispatch/shop/health", "/healthz"] {
            assert!(!applies_to(path), "{path}");
        }
    }
}
