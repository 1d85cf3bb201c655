//! The request path, as a proxy pipeline with named phases:
//!
//! 1. [`host`] classify the host (dispatcher, tenant subdomain, custom domain);
//! 2. [`route`] resolve the worker or the dispatcher endpoint;
//! 3. [`admit`] check methods, limits and loops (a limit is parsed only by a request it can
//!    refuse, so an unusable one fails only those: [`admit_limits`]);
//! 4. [`namespace`] locate the worker: a component of this app, or a remote one;
//! 5. [`limit`] the tenant's circuit breaker and rate limit (only where configured);
//! 6. [`upstream`] build the request the worker receives;
//! 7. [`downstream`] filter the worker's response; the glue then logs one line.
//!
//! Phases 1 to 3 run in [`decide`] without I/O, then [`admit_limits`] with the limits the
//! request needs (most requests need none). A custom domain's worker, and whether a name is a
//! deployed remote worker, may need a database; the glue asks it between 3 and 4, then runs 5
//! ([`limit::admit`]) with the shared store, and calls [`prepare_forward`] for 6.

pub mod admit;
pub mod downstream;
pub mod hop_by_hop;
pub mod host;
pub mod limit;
pub mod namespace;
pub mod route;
pub mod trailers;
pub mod upstream;
pub mod worker_name;

use crate::config::{Config, Limit};
use crate::error::DispatchError;
use host::Host;
use namespace::Location;
use route::{Endpoint, Resolution, RouteKind};
use worker_name::WorkerName;

/// Header names and values in the order they arrived.
pub type Headers = Vec<(String, Vec<u8>)>;

#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// The request's authority as Spin gives it (taken from `Host`). Newer wasmtime releases
    /// hide `Host` itself from guests, so this is the primary source.
    pub authority: Option<String>,
    pub path_and_query: String,
    pub headers: Headers,
}

/// What every phase may need to know about the request being served.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub head: &'a RequestHead,
    pub request_id: &'a str,
    pub config: &'a Config,
}

/// What to do with a request, plus what the access log reports about it whatever the outcome.
#[derive(Debug)]
pub struct Decision {
    pub host: Option<Host>,
    pub route: Option<RouteKind>,
    pub worker: Option<WorkerName>,
    pub outcome: Result<Step, DispatchError>,
}

#[derive(Debug)]
pub enum Step {
    /// Answer from the dispatcher itself.
    Endpoint(Endpoint),
    /// Send to a worker, once it is located (and, for a custom domain, named).
    Forward(Pending),
}

/// A request admitted for forwarding whose worker may still need a lookup.
#[derive(Debug, Clone)]
pub struct Pending {
    /// `None` for a custom domain: the database names the worker.
    pub worker: Option<WorkerName>,
    pub kind: RouteKind,
    pub path_and_query: String,
    /// The body length the request declares, if any.
    pub declared_length: Option<u64>,
    /// How many times the request has already passed through this dispatcher (`CDN-Loop`).
    pub loops: usize,
}

/// Gives a limit when a request needs it: the glue parses it from the request's settings, tests
/// give values.
pub trait Limits {
    fn get(&self, limit: Limit) -> Result<u64, DispatchError>;
}

/// A request ready to send to its worker.
#[derive(Debug, Clone)]
pub struct Forward {
    pub worker: WorkerName,
    pub location: Location,
    pub kind: RouteKind,
    pub path_and_query: String,
    pub headers: Headers,
    /// The request's host (normalised), for the response filter.
    pub host: String,
    /// The body length the request declares, if any (its cap was read when it was admitted).
    pub declared_length: Option<u64>,
    /// Which trailers are worth waiting for, each way.
    pub trailers: trailers::TrailerPolicy,
    /// Headers the dispatcher adds to the worker's response, after its filter (the tenant's
    /// `RateLimit` headers).
    pub response_headers: Headers,
}

impl Forward {
    /// Where the worker's response is served, which decides what headers it may set.
    pub fn exposure(&self) -> downstream::Exposure<'_> {
        match self.kind {
            RouteKind::Path | RouteKind::Query => downstream::Exposure::SharedOrigin,
            RouteKind::Subdomain => downstream::Exposure::TenantSubdomain { host: &self.host },
            RouteKind::CustomDomain | RouteKind::Docs | RouteKind::Api => downstream::Exposure::OwnSite,
        }
    }
}

/// Phases 1 to 3.
pub fn decide(ctx: Context) -> Decision {
    let mut decision = Decision {
        host: None,
        route: None,
        worker: None,
        outcome: Err(DispatchError::InvalidHost),
    };
    decision.outcome = decide_into(&mut decision, ctx);
    decision
}

fn decide_into(decision: &mut Decision, ctx: Context) -> Result<Step, DispatchError> {
    let head = ctx.head;
    admit::check_target(&head.path_and_query)?;
    admit::check_header_size(&head.headers)?;
    let host = host::normalise(host_of(head)?)?;
    let class = host::classify(&host, ctx.config);
    decision.host = Some(host);
    let resolution = route::resolve(&class?, &head.method, &head.path_and_query, ctx.config)?;
    let pending = match resolution {
        Resolution::Endpoint(endpoint) => {
            decision.route = Some(RouteKind::Api);
            return Ok(Step::Endpoint(endpoint));
        }
        Resolution::CustomDomain => Pending {
            worker: None,
            kind: RouteKind::CustomDomain,
            path_and_query: head.path_and_query.clone(),
            declared_length: None,
            loops: 0,
        },
        Resolution::Worker {
            worker,
            kind,
            path_and_query,
        } => Pending {
            worker: Some(worker),
            kind,
            path_and_query,
            declared_length: None,
            loops: 0,
        },
    };
    decision.route = Some(pending.kind);
    decision.worker = pending.worker.clone();
    // Cheap checks before any lookup: a refused request costs no query.
    admit::check_forwardable_method(&head.method)?;
    Ok(Step::Forward(Pending {
        declared_length: admit::declared_length(&head.headers)?,
        loops: crate::remote::loop_count(&head.headers),
        ..pending
    }))
}

/// The rest of phase 3, before any lookup: the limits a forwarded request can break. Each is
/// parsed only when it can refuse the request: `max_body_bytes` for a declared length above 0 (a
/// body without one is counted as it streams), `max_loop_count` when the request already
/// carries this dispatcher's `CDN-Loop` token.
pub fn admit_limits(pending: &Pending, limits: &impl Limits) -> Result<(), DispatchError> {
    if let Some(length) = pending.declared_length.filter(|length| *length > 0) {
        admit::check_length(length, limits.get(Limit::MaxBodyBytes)?)?;
    }
    if pending.loops > 0 {
        admit::check_loop(pending.loops, limits.get(Limit::MaxLoopCount)?)?;
    }
    Ok(())
}

/// Phases 4 and 5 for a worker whose location is known: the headers it receives.
pub fn prepare_forward(ctx: Context, host: &Host, worker: WorkerName, location: Location, pending: Pending) -> Forward {
    let head = ctx.head;
    let client_ip = upstream::client_ip(&head.headers);
    let provenance = upstream::Provenance {
        host: &host.authority,
        proto: upstream::proto(&head.headers),
        client_ip: client_ip.as_deref(),
        request_id: ctx.request_id,
    };
    let mut headers = upstream::headers(&head.headers, &provenance, pending.kind.shares_dispatcher_origin());
    if matches!(location, Location::Remote(_)) {
        // RFC 8586: keep the client's entries and add this dispatcher's.
        headers.push(("cdn-loop".into(), crate::remote::CDN_LOOP_TOKEN.as_bytes().to_vec()));
    }
    Forward {
        worker,
        location,
        kind: pending.kind,
        path_and_query: pending.path_and_query,
        headers,
        host: host.name.clone(),
        declared_length: pending.declared_length,
        trailers: trailers::TrailerPolicy::of(&head.headers),
        response_headers: Vec::new(),
    }
}

/// The authority, else the one `Host` header. Two `Host` headers are refused even with an
/// authority: they could make the dispatcher and a worker disagree about the tenant.
fn host_of(head: &RequestHead) -> Result<&[u8], DispatchError> {
    let mut hosts = head
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("host"));
    match (head.authority.as_deref(), hosts.next(), hosts.next()) {
        (_, Some(_), Some(_)) => Err(DispatchError::InvalidHost),
        (Some(authority), _, None) if !authority.is_empty() => Ok(authority.as_bytes()),
        (_, Some((_, value)), None) => Ok(value),
        _ => Err(DispatchError::InvalidHost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|name| match name {
            "workers" => Some("hello,echo".into()),
            _ => None,
        })
        .unwrap()
    }

    /// `max_body_bytes` 100, `max_loop_count` 1; counts the reads.
    #[derive(Default)]
    struct TestLimits {
        reads: std::cell::Cell<usize>,
    }

    impl Limits for TestLimits {
        fn get(&self, limit: Limit) -> Result<u64, DispatchError> {
            self.reads.set(self.reads.get() + 1);
            Ok(match limit {
                Limit::MaxBodyBytes => 100,
                Limit::MaxLoopCount => 1,
            })
        }
    }

    /// Decides and admits the limits, as the glue does.
    fn admitted(head: &RequestHead, limits: &TestLimits) -> Result<Pending, DispatchError> {
        let Step::Forward(pending) = decide(head, "rid", &config()).outcome? else {
            panic!("not a forward")
        };
        admit_limits(&pending, limits)?;
        Ok(pending)
    }

    fn decide(head: &RequestHead, request_id: &str, config: &Config) -> Decision {
        super::decide(Context {
            head,
            request_id,
            config,
        })
    }

    /// Decides, locates a subdomain or path worker as the glue would, and prepares it.
    fn forward(head: &RequestHead, config: &Config) -> Result<Forward, DispatchError> {
        let decision = decide(head, "rid", config);
        let Step::Forward(pending) = decision.outcome? else {
            panic!("not a forward")
        };
        let worker = pending.worker.clone().expect("named");
        if !namespace::is_local(&worker, pending.kind, config) {
            return Err(DispatchError::WorkerNotFound(worker.to_string()));
        }
        let location = Location::Local;
        let ctx = Context {
            head,
            request_id: "rid",
            config,
        };
        Ok(prepare_forward(
            ctx,
            decision.host.as_ref().unwrap(),
            worker,
            location,
            pending,
        ))
    }

    fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: method.into(),
            authority: None,
            path_and_query: target.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn subdomain_request_becomes_a_forward_with_trusted_headers() {
        let request = head(
            "POST",
            "/a?b=1",
            &[
                ("host", "echo.localhost:3000"),
                ("x-forwarded-for", "6.6.6.6"),
                ("spin-client-addr", "127.0.0.1:9"),
            ],
        );
        assert_eq!(decide(&request, "rid", &config()).route, Some(RouteKind::Subdomain));
        let forward = forward(&request, &config()).unwrap();
        assert_eq!(forward.worker.as_str(), "echo");
        assert_eq!(forward.location, Location::Local);
        assert_eq!(forward.path_and_query, "/a?b=1");
        assert!(
            forward
                .headers
                .contains(&("x-forwarded-for".into(), b"127.0.0.1".to_vec()))
        );
        assert!(!forward.headers.iter().any(|(_, v)| v == b"6.6.6.6"));
    }

    #[test]
    fn unknown_worker_is_404_without_calling_out() {
        let request = head("GET", "/", &[("host", "ghost.localhost")]);
        assert_eq!(decide(&request, "rid", &config()).worker.unwrap().as_str(), "ghost");
        assert_eq!(
            forward(&request, &config()).unwrap_err(),
            DispatchError::WorkerNotFound("ghost".into())
        );
    }

    #[test]
    fn host_header_must_be_single() {
        let decision = decide(
            &head("GET", "/", &[("host", "a.localhost"), ("host", "b.localhost")]),
            "rid",
            &config(),
        );
        assert_eq!(decision.outcome.unwrap_err(), DispatchError::InvalidHost);
        let decision = decide(&head("GET", "/", &[]), "rid", &config());
        assert_eq!(decision.outcome.unwrap_err(), DispatchError::InvalidHost);
    }

    #[test]
    fn authority_is_used_when_host_is_hidden() {
        let mut request = head("GET", "/", &[]);
        request.authority = Some("Echo.localhost:3000".into());
        let forward = forward(&request, &config()).unwrap();
        assert!(
            forward
                .headers
                .contains(&("x-forwarded-host".into(), b"Echo.localhost:3000".to_vec()))
        );
        let mut twice = head("GET", "/", &[("host", "echo.localhost"), ("host", "hello.localhost")]);
        twice.authority = Some("echo.localhost".into());
        assert_eq!(
            decide(&twice, "rid", &config()).outcome.unwrap_err(),
            DispatchError::InvalidHost
        );
    }

    #[test]
    fn limits_apply_before_forwarding() {
        let limits = TestLimits::default();
        let too_big = head("PUT", "/", &[("host", "echo.localhost"), ("content-length", "101")]);
        assert_eq!(
            admitted(&too_big, &limits).unwrap_err(),
            DispatchError::PayloadTooLarge { limit: 100 }
        );
        let fits = head("PUT", "/", &[("host", "echo.localhost"), ("content-length", "100")]);
        assert_eq!(admitted(&fits, &limits).unwrap().declared_length, Some(100));
        let token = crate::remote::CDN_LOOP_TOKEN;
        let looped = head("GET", "/", &[("host", "echo.localhost"), ("cdn-loop", token)]);
        assert_eq!(admitted(&looped, &limits).unwrap().loops, 1);
        let twice = format!("{token}, {token}");
        let circling = head("GET", "/", &[("host", "echo.localhost"), ("cdn-loop", &twice)]);
        assert_eq!(admitted(&circling, &limits).unwrap_err(), DispatchError::LoopDetected);
        assert_eq!(limits.reads.get(), 4, "each of these requests needed its limit");
        let malformed = head("PUT", "/", &[("host", "echo.localhost"), ("content-length", "1e3")]);
        assert_eq!(
            decide(&malformed, "rid", &config()).outcome.unwrap_err(),
            DispatchError::InvalidContentLength
        );
        let trace = decide(&head("TRACE", "/", &[("host", "echo.localhost")]), "rid", &config());
        assert_eq!(trace.outcome.unwrap_err().status(), 405);
        let long = decide(
            &head("GET", &format!("/{}", "a".repeat(9000)), &[("host", "echo.localhost")]),
            "rid",
            &config(),
        );
        assert_eq!(long.outcome.unwrap_err().status(), 414);
    }

    #[test]
    fn a_bodyless_request_that_does_not_loop_reads_no_limit() {
        let limits = TestLimits::default();
        let other_cdn = head("GET", "/", &[("host", "echo.localhost"), ("cdn-loop", "cloudflare")]);
        assert_eq!(admitted(&other_cdn, &limits).unwrap().loops, 0);
        assert!(admitted(&head("DELETE", "/x", &[("host", "echo.localhost")]), &limits).is_ok());
        let empty = head("POST", "/", &[("host", "echo.localhost"), ("content-length", "0")]);
        assert_eq!(admitted(&empty, &limits).unwrap().declared_length, Some(0));
        assert_eq!(limits.reads.get(), 0);
    }

    #[test]
    fn other_hosts_are_custom_domains() {
        let decision = decide(&head("GET", "/", &[("host", "shop.example.com")]), "rid", &config());
        assert!(matches!(
            decision.outcome,
            Ok(Step::Forward(Pending {
                worker: None,
                kind: RouteKind::CustomDomain,
                ..
            }))
        ));
        assert_eq!(decision.route, Some(RouteKind::CustomDomain));
    }

    #[test]
    fn cheap_checks_come_before_any_lookup() {
        // A custom domain needs the database: a refused method or size must not get that far.
        for (request, status) in [
            (head("TRACE", "/", &[("host", "shop.example.com")]), 405),
            (
                head("PUT", "/", &[("host", "shop.example.com"), ("content-length", "101")]),
                413,
            ),
            (
                head(
                    "GET",
                    "/",
                    &[
                        ("host", "shop.example.com"),
                        ("cdn-loop", "libra-dispatcher, libra-dispatcher"),
                    ],
                ),
                508,
            ),
        ] {
            // The glue admits the limits right after deciding, before it looks anything up.
            assert_eq!(admitted(&request, &TestLimits::default()).unwrap_err().status(), status);
        }
    }
}
