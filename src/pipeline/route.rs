//! Phase 2, resolve: what the request asks for, given the class of its host.

use crate::config::Config;
use crate::error::DispatchError;
use crate::pipeline::host::HostClass;
use crate::pipeline::worker_name::WorkerName;

/// How the worker was named; logged, and decides whether the response shares the dispatcher's
/// origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// A dispatcher endpoint answered by the dispatcher itself.
    Api,
    Subdomain,
    Path,
    Query,
    CustomDomain,
    /// The API's documentation and description, served by the `docs` component.
    Docs,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Api => "api",
            RouteKind::Subdomain => "subdomain",
            RouteKind::Path => "path",
            RouteKind::Query => "query",
            RouteKind::CustomDomain => "custom_domain",
            RouteKind::Docs => "docs",
        }
    }

    /// Path and query dispatch serve every tenant from the dispatcher's one origin, so their
    /// responses must not be able to act as that origin.
    pub fn shares_dispatcher_origin(self) -> bool {
        matches!(self, RouteKind::Path | RouteKind::Query)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    /// Checks the database with a real round trip; admin only when `admin_token_sha256` is set.
    HealthDetailed,
    /// Admin only when `admin_token_sha256` is set.
    NamespaceInfo,
    /// `/`: a browser is sent to `/docs`, any other client gets the API's links.
    Index,
    /// `OPTIONS *` (RFC 9110 9.3.7): a question about the server as a whole, which no tenant
    /// answers for, on any host: `204` with the methods the dispatcher forwards.
    ServerOptions,
    /// A CORS preflight for one of the API's paths (`crate::pipeline::cors`): `204`, with the
    /// permissions where `cors_origins` allows. Never behind the admin token: a browser's
    /// preflight carries none.
    Preflight,
    /// `GET /dispatch/explain?url=`: how a URL would be routed, without calling any worker
    /// (`crate::pipeline::explain`). Admin only when `admin_token_sha256` is set.
    Explain,
}

impl Endpoint {
    pub fn needs_admin(self) -> bool {
        matches!(
            self,
            Endpoint::HealthDetailed | Endpoint::NamespaceInfo | Endpoint::Explain
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Endpoint(Endpoint),
    /// Send to `worker`, which receives `path_and_query`.
    Worker {
        worker: WorkerName,
        kind: RouteKind,
        path_and_query: String,
    },
    /// The host must be looked up as a tenant's custom domain; the path goes through unchanged.
    CustomDomain,
}

/// Where an exact path on a dispatcher host goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiTarget {
    Endpoint(Endpoint),
    /// Forwarded unchanged to the `docs` component.
    Docs,
}

#[derive(Debug, Clone, Copy)]
pub struct ApiRoute {
    pub path: &'static str,
    pub target: ApiTarget,
}

/// Methods every exact-path route accepts: they only read.
pub const API_ROUTE_METHODS: &str = "GET, HEAD";

/// `explain`'s paths, under each of [`DISPATCH_PREFIXES`]: `explain` is a reserved worker name,
/// so no tenant's path dispatch can be shadowed by it.
pub const EXPLAIN_PATHS: [&str; 2] = ["/dispatch/explain", "/api/dispatch/explain"];

/// The exact paths a dispatcher host serves. The router and the OpenAPI description are both
/// built from this table, so neither can list a path the other does not know.
pub const API_ROUTES: [ApiRoute; 7] = [
    ApiRoute {
        path: "/",
        target: ApiTarget::Endpoint(Endpoint::Index),
    },
    ApiRoute {
        path: "/health",
        target: ApiTarget::Endpoint(Endpoint::Health),
    },
    ApiRoute {
        path: "/health/detailed",
        target: ApiTarget::Endpoint(Endpoint::HealthDetailed),
    },
    ApiRoute {
        path: "/openapi.json",
        target: ApiTarget::Docs,
    },
    ApiRoute {
        path: "/docs",
        target: ApiTarget::Docs,
    },
    ApiRoute {
        path: "/docs/scalar.js",
        target: ApiTarget::Docs,
    },
    ApiRoute {
        path: "/favicon.ico",
        target: ApiTarget::Docs,
    },
];

/// Path prefixes for path and query dispatch: `/dispatch`, and the original's `/api/dispatch`.
pub const DISPATCH_PREFIXES: [&str; 2] = ["/dispatch", "/api/dispatch"];

pub fn resolve(
    class: &HostClass,
    method: &str,
    path_and_query: &str,
    config: &Config,
) -> Result<Resolution, DispatchError> {
    // The asterisk form is for OPTIONS only (RFC 9112 3.2.4).
    if path_and_query == "*" {
        return match method {
            "OPTIONS" => Ok(Resolution::Endpoint(Endpoint::ServerOptions)),
            _ => Err(DispatchError::InvalidPath),
        };
    }
    match class {
        // A tenant host belongs to the tenant, all of it: `/health` or `/dispatch?worker=`
        // there reach the tenant, so no tenant can run under another's origin.
        HostClass::Tenant(worker) => Ok(Resolution::Worker {
            worker: worker.clone(),
            kind: RouteKind::Subdomain,
            path_and_query: path_and_query.to_string(),
        }),
        HostClass::CustomDomain => Ok(Resolution::CustomDomain),
        HostClass::Dispatcher => resolve_api(method, path_and_query, config),
    }
}

fn resolve_api(method: &str, path_and_query: &str, config: &Config) -> Result<Resolution, DispatchError> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    // `OPTIONS` there is left to path dispatch, whose name, `explain`, is reserved (`400`): the
    // path is also `/dispatch/{worker}`, which takes every method, so an `Allow` of `GET, HEAD`
    // would misdescribe it. (A preflight is answered before routing.)
    if EXPLAIN_PATHS.contains(&path) && method != "OPTIONS" {
        return match method {
            "GET" | "HEAD" => Ok(Resolution::Endpoint(Endpoint::Explain)),
            _ => Err(DispatchError::MethodNotAllowed {
                allow: API_ROUTE_METHODS,
            }),
        };
    }
    if let Some(route) = API_ROUTES.iter().find(|route| route.path == path) {
        if !matches!(method, "GET" | "HEAD") {
            return Err(DispatchError::MethodNotAllowed {
                allow: API_ROUTE_METHODS,
            });
        }
        return Ok(match route.target {
            ApiTarget::Endpoint(endpoint) => Resolution::Endpoint(endpoint),
            ApiTarget::Docs => Resolution::Worker {
                worker: WorkerName::docs_component(),
                kind: RouteKind::Docs,
                path_and_query: path_and_query.to_string(),
            },
        });
    }
    for prefix in DISPATCH_PREFIXES {
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        let worker_path = rest.strip_prefix('/');
        if worker_path.is_none() && !rest.is_empty() {
            continue; // `/dispatchx` is not a dispatch path.
        }
        // The method first: a TRACE is refused whatever name it carries.
        crate::pipeline::admit::check_forwardable_method(method)?;
        return match worker_path {
            Some(rest) => resolve_path_dispatch(rest, query, config),
            None => resolve_query_dispatch(method, query, config),
        };
    }
    Err(DispatchError::NotFound)
}

/// `/dispatch/<worker>/<rest>`: the worker receives `/<rest>` and the query. A path with a dot
/// segment (`.` or `..`, escaped or not) is refused: a cache or an edge in front may resolve it
/// (`/dispatch/a/../b` is `/dispatch/b` to them) while the dispatcher would not, and the two
/// would then disagree about which tenant the path belongs to.
fn resolve_path_dispatch(rest: &str, query: Option<&str>, config: &Config) -> Result<Resolution, DispatchError> {
    if rest.split('/').any(is_dot_segment) {
        return Err(DispatchError::InvalidPath);
    }
    let (raw_name, tail) = match rest.split_once('/') {
        Some((name, tail)) => (name, tail),
        None => (rest, ""),
    };
    let worker = parse_name(raw_name, config)?;
    let mut path_and_query = format!("/{tail}");
    if let Some(query) = query {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    Ok(Resolution::Worker {
        worker,
        kind: RouteKind::Path,
        path_and_query,
    })
}

/// `/dispatch?worker=<name>`: the worker receives `/` and the other query parameters. Without
/// `worker`, `GET`/`HEAD` is the namespace info; anything else has nothing to dispatch to.
fn resolve_query_dispatch(method: &str, query: Option<&str>, config: &Config) -> Result<Resolution, DispatchError> {
    let mut name: Option<String> = None;
    let mut others: Vec<&str> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key).as_deref() == Some("worker") {
            if name.is_some() {
                // Two names: refusing beats guessing which one a cache or a WAF looked at.
                return Err(DispatchError::InvalidWorkerName(
                    crate::pipeline::worker_name::NameError::Characters,
                ));
            }
            let decoded = percent_decode(value).ok_or(DispatchError::InvalidWorkerName(
                crate::pipeline::worker_name::NameError::Characters,
            ))?;
            name = Some(decoded);
        } else {
            others.push(pair);
        }
    }
    let Some(name) = name else {
        return match method {
            "GET" | "HEAD" => Ok(Resolution::Endpoint(Endpoint::NamespaceInfo)),
            _ => Err(DispatchError::MissingWorkerName),
        };
    };
    let worker = parse_name(&name, config)?;
    let path_and_query = if others.is_empty() {
        "/".to_string()
    } else {
        format!("/?{}", others.join("&"))
    };
    Ok(Resolution::Worker {
        worker,
        kind: RouteKind::Query,
        path_and_query,
    })
}

fn parse_name(raw: &str, config: &Config) -> Result<WorkerName, DispatchError> {
    if raw.is_empty() {
        return Err(DispatchError::MissingWorkerName);
    }
    WorkerName::parse(raw, &config.reserved_names).map_err(DispatchError::InvalidWorkerName)
}

/// `.` or `..`, with any of the dots written `%2e` or `%2E`.
fn is_dot_segment(segment: &str) -> bool {
    let mut dots = 0;
    let mut rest = segment;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            rest = after;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    matches!(dots, 1 | 2)
}

/// Decodes form encoding: `+` and `%XX` escapes (by the `percent-encoding` crate, which keeps a
/// malformed escape as it is; the name check then refuses its `%`). `None` for non-UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::worker_name::NameError;

    fn config() -> Config {
        Config::from_lookup(|_| None).unwrap()
    }

    fn api(method: &str, target: &str) -> Result<Resolution, DispatchError> {
        resolve(&HostClass::Dispatcher, method, target, &config())
    }

    fn worker(name: &str, kind: RouteKind, path_and_query: &str) -> Resolution {
        Resolution::Worker {
            worker: WorkerName::parse(name, &[]).unwrap(),
            kind,
            path_and_query: path_and_query.into(),
        }
    }

    #[test]
    fn the_asterisk_form_is_the_dispatchers_on_every_host() {
        let tenant = HostClass::Tenant(WorkerName::parse("victim", &[]).unwrap());
        for class in [HostClass::Dispatcher, tenant, HostClass::CustomDomain] {
            assert_eq!(
                resolve(&class, "OPTIONS", "*", &config()),
                Ok(Resolution::Endpoint(Endpoint::ServerOptions))
            );
            assert_eq!(resolve(&class, "GET", "*", &config()), Err(DispatchError::InvalidPath));
        }
    }

    #[test]
    fn tenant_hosts_keep_every_path_including_dispatcher_ones() {
        let class = HostClass::Tenant(WorkerName::parse("victim", &[]).unwrap());
        for target in [
            "/",
            "/health",
            "/dispatch?worker=attacker",
            "/dispatch/attacker/x",
            "/openapi.json",
        ] {
            assert_eq!(
                resolve(&class, "POST", target, &config()),
                Ok(worker("victim", RouteKind::Subdomain, target))
            );
        }
    }

    #[test]
    fn health_and_namespace_info() {
        assert_eq!(api("GET", "/health"), Ok(Resolution::Endpoint(Endpoint::Health)));
        assert_eq!(api("HEAD", "/health?x=1"), Ok(Resolution::Endpoint(Endpoint::Health)));
        assert_eq!(
            api("POST", "/health"),
            Err(DispatchError::MethodNotAllowed { allow: "GET, HEAD" })
        );
        assert_eq!(api("GET", "/health/"), Err(DispatchError::NotFound));
        assert_eq!(
            api("GET", "/health/detailed"),
            Ok(Resolution::Endpoint(Endpoint::HealthDetailed))
        );
        assert_eq!(api("DELETE", "/health/detailed").unwrap_err().status(), 405);
        assert_eq!(
            api("GET", "/dispatch"),
            Ok(Resolution::Endpoint(Endpoint::NamespaceInfo))
        );
        assert_eq!(
            api("GET", "/api/dispatch?other=1"),
            Ok(Resolution::Endpoint(Endpoint::NamespaceInfo))
        );
        assert_eq!(api("POST", "/dispatch"), Err(DispatchError::MissingWorkerName));
        // `OPTIONS` with a worker is the tenant's (a preflight for the API's own paths is
        // answered before routing: `pipeline::decide`).
        assert_eq!(api("OPTIONS", "/health").unwrap_err().status(), 405);
        assert_eq!(api("OPTIONS", "/dispatch"), Err(DispatchError::MissingWorkerName));
        assert_eq!(
            api("OPTIONS", "/dispatch?worker=hello"),
            Ok(worker("hello", RouteKind::Query, "/"))
        );
        assert_eq!(
            api("OPTIONS", "/dispatch/hello/health"),
            Ok(worker("hello", RouteKind::Path, "/health"))
        );
        assert_eq!(
            api("GET", "/api/dispatch/explain?url=x"),
            Ok(Resolution::Endpoint(Endpoint::Explain))
        );
        assert_eq!(api("POST", "/dispatch/explain").unwrap_err().status(), 405);
        assert_eq!(
            api("OPTIONS", "/dispatch/explain"),
            Err(DispatchError::InvalidWorkerName(NameError::Reserved))
        );
        assert_eq!(api("GET", "/"), Ok(Resolution::Endpoint(Endpoint::Index)));
        assert_eq!(api("GET", "/?x=1"), Ok(Resolution::Endpoint(Endpoint::Index)));
        assert_eq!(api("GET", "//"), Err(DispatchError::NotFound));
        assert_eq!(api("GET", "/dispatcher"), Err(DispatchError::NotFound));
    }

    #[test]
    fn path_dispatch_strips_the_prefix_and_keeps_the_query() {
        assert_eq!(
            api("GET", "/dispatch/hello/a/b?x=1"),
            Ok(worker("hello", RouteKind::Path, "/a/b?x=1"))
        );
        assert_eq!(
            api("PUT", "/api/dispatch/hello"),
            Ok(worker("hello", RouteKind::Path, "/"))
        );
        assert_eq!(
            api("GET", "/dispatch/hello/"),
            Ok(worker("hello", RouteKind::Path, "/"))
        );
        assert_eq!(
            api("GET", "/dispatch/HELLO/x"),
            Ok(worker("hello", RouteKind::Path, "/x"))
        );
        assert_eq!(api("GET", "/dispatch/"), Err(DispatchError::MissingWorkerName));
        assert_eq!(api("GET", "/dispatch//x"), Err(DispatchError::MissingWorkerName));
    }

    #[test]
    fn query_dispatch_removes_only_the_worker_parameter() {
        assert_eq!(
            api("GET", "/dispatch?worker=hello"),
            Ok(worker("hello", RouteKind::Query, "/"))
        );
        assert_eq!(
            api("POST", "/api/dispatch?a=1&worker=hello&b=%20"),
            Ok(worker("hello", RouteKind::Query, "/?a=1&b=%20"))
        );
        assert_eq!(
            api("GET", "/dispatch?%77orker=%68ello"),
            Ok(worker("hello", RouteKind::Query, "/"))
        );
        assert_eq!(api("POST", "/dispatch?worker="), Err(DispatchError::MissingWorkerName));
        assert_eq!(
            api("GET", "/dispatch?worker=a&worker=b"),
            Err(DispatchError::InvalidWorkerName(NameError::Characters))
        );
    }

    #[test]
    fn every_mode_uses_the_one_validator() {
        for (raw, error) in [
            ("a_b", NameError::Characters),
            ("..", NameError::Characters),
            ("%2e%2e", NameError::Characters),
            ("-a", NameError::Hyphen),
            ("admin", NameError::Reserved),
            ("%C3%A9", NameError::Characters),
        ] {
            let expected = Err(DispatchError::InvalidWorkerName(error));
            // A dot segment in a path is refused as such before any name is read.
            let in_path = if raw.contains("..") || raw.contains("%2e") {
                Err(DispatchError::InvalidPath)
            } else {
                expected.clone()
            };
            assert_eq!(api("GET", &format!("/dispatch/{raw}/x")), in_path, "path {raw}");
            if raw != "%2e%2e" && raw != "%C3%A9" {
                assert_eq!(api("GET", &format!("/dispatch?worker={raw}")), expected, "query {raw}");
            }
        }
        // Escapes in the query decode before validation, so they cannot smuggle a name past it.
        assert_eq!(
            api("GET", "/dispatch?worker=%2e%2e"),
            Err(DispatchError::InvalidWorkerName(NameError::Characters))
        );
        assert_eq!(
            api("GET", "/dispatch?worker=%zz"),
            Err(DispatchError::InvalidWorkerName(NameError::Characters))
        );
        assert_eq!(
            api("GET", &format!("/dispatch/{}", "a".repeat(64))),
            Err(DispatchError::InvalidWorkerName(NameError::TooLong))
        );
    }

    #[test]
    fn dot_segments_in_a_dispatch_path_are_refused() {
        for target in [
            "/dispatch/hello/../echo",
            "/dispatch/hello/a/%2e%2e/b",
            "/dispatch/hello/%2E/x",
            "/dispatch/./hello",
            "/dispatch/hello/.",
            "/api/dispatch/hello/.%2e/",
        ] {
            assert_eq!(api("GET", target), Err(DispatchError::InvalidPath), "{target}");
        }
        for fine in [
            "/dispatch/hello/.well-known/x",
            "/dispatch/hello/a..b",
            "/dispatch/hello/...",
        ] {
            assert!(api("GET", fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn refused_methods_are_refused_before_the_name_is_read() {
        for target in [
            "/dispatch?worker=",
            "/dispatch/bad_name/x",
            "/api/dispatch?worker=hello",
        ] {
            assert_eq!(
                api("TRACE", target),
                Err(DispatchError::MethodNotAllowed {
                    allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
                }),
                "{target}"
            );
        }
    }
}
