//! The request path, as a proxy pipeline with named phases. [`plan`] runs them in this order,
//! the one place that states it:
//!
//! 1. [`host`] classify the host (dispatcher, tenant subdomain, custom domain);
//! 2. [`route`] resolve the worker or the dispatcher endpoint (and whether an admin endpoint
//!    may be served: [`authorize`]);
//! 3. [`admit`] check methods, sizes and loops: first what needs nothing, then the limits a
//!    forwarded request can break, each parsed only when it can refuse it ([`admit_limits`]);
//! 4. [`namespace`] locate the worker: a component of this app, or a remote one, looking custom
//!    domains and remote members up in the [`directory`];
//! 5. [`limit`] the tenant's circuit breaker and rate limit (only where configured);
//! 6. [`upstream`] build the request the worker receives.
//!
//! Then the glue sends it and streams the answer, [`downstream`] filtering the response (phase
//! 7), and [`finish`] tells the tenant's breaker how it went. Each phase is plain Rust without
//! Spin types; what they need from outside (cache, database, shared store, clock) comes through
//! the [`world::World`] trait, which the glue implements for Spin and the tests in memory.

pub mod admit;
pub mod cors;
pub mod directory;
pub mod downstream;
pub mod explain;
pub mod hop_by_hop;
pub mod host;
pub mod limit;
pub mod namespace;
pub mod request;
pub mod route;
pub mod trace;
pub mod trailers;
pub mod upstream;
pub mod worker_name;
pub mod world;

use crate::config::{Config, Limit};
use crate::error::DispatchError;
use directory::Directory;
use host::Host;
use limit::{Admission, Keys};
use namespace::Location;
pub use request::{Context, Headers, RequestHead};
use route::{Endpoint, Resolution, RouteKind};
use worker_name::WorkerName;
use world::World;

/// The outcome of phases 1 to 3, plus what the access log reports about it whatever the outcome.
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

/// Gives a limit when a request needs it. [`ConfigLimits`] parses it from the request's
/// settings; tests give values.
pub trait Limits {
    fn get(&self, limit: Limit) -> Result<u64, DispatchError>;
}

/// The limits of one request, from its settings: each parsed only when the request can be
/// refused by it, so an unusable limit fails only those requests.
pub struct ConfigLimits<'a>(pub &'a Config);

impl Limits for ConfigLimits<'_> {
    fn get(&self, limit: Limit) -> Result<u64, DispatchError> {
        self.0.limit(limit).map_err(DispatchError::Configuration)
    }
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

/// What the glue does with a request.
#[derive(Debug)]
pub enum Plan {
    /// Answer from the dispatcher's own endpoint. `authenticated`: the request proved it holds
    /// the admin token.
    Endpoint { endpoint: Endpoint, authenticated: bool },
    /// Answer with this problem; no worker is called.
    Refuse(DispatchError),
    /// Send to the worker. (Not boxed: the hot path would pay an allocation for the size.)
    #[allow(clippy::large_enum_variant)]
    Forward(Forward),
}

/// What the access log says about a request, whatever its outcome.
#[derive(Debug, Default)]
pub struct Report {
    pub host: Option<Host>,
    pub route: Option<RouteKind>,
    pub worker: Option<WorkerName>,
    /// `local` or `remote`, once the worker is located.
    pub location: Option<&'static str>,
    /// The tenant's rate limit and breaker decisions, where it has them.
    pub limit: Option<&'static str>,
    pub breaker: Option<&'static str>,
    /// The client's trace, when its trace context is valid ([`trace`]).
    pub trace: Option<trace::TraceId>,
}

/// A request's plan, with its report, and what [`finish`] needs to tell the tenant's breaker.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub report: Report,
    /// Headers the dispatcher adds to what it answers itself, endpoint or refusal (CORS, on the
    /// API's paths); a forward to the docs component carries them in its `response_headers`.
    pub headers: Headers,
    tenant: Option<(Admission, Keys)>,
}

/// Runs the phases in their order (see the module's note) and gives what to do.
pub fn plan(ctx: Context, world: &mut impl World) -> Planned {
    let decision = decide(ctx);
    let mut planned = Planned {
        plan: Plan::Refuse(DispatchError::InvalidHost),
        report: Report {
            host: decision.host,
            route: decision.route,
            worker: decision.worker,
            trace: trace::client_trace(&ctx.head.headers),
            ..Report::default()
        },
        tenant: None,
        headers: Vec::new(),
    };
    planned.plan = match decision.outcome {
        Err(error) => Plan::Refuse(error),
        Ok(Step::Endpoint(endpoint)) => match authorize(ctx, endpoint) {
            Ok(authenticated) => Plan::Endpoint {
                endpoint,
                authenticated,
            },
            Err(error) => Plan::Refuse(error),
        },
        Ok(Step::Forward(pending)) => {
            // Lent to the phases and given back, rather than cloned.
            let host = planned.report.host.take().expect("a forwarded request has a host");
            let forward = plan_forward(ctx, world, &mut planned, &host, pending);
            planned.report.host = Some(host);
            match forward {
                Ok(forward) => Plan::Forward(forward),
                Err(error) => Plan::Refuse(error),
            }
        }
    };
    // Only the dispatcher's own answers can carry CORS headers: a tenant's request pays nothing.
    if matches!(planned.report.route, Some(RouteKind::Api | RouteKind::Docs)) {
        match cors_headers(ctx) {
            Ok(headers) => {
                if let Plan::Forward(forward) = &mut planned.plan {
                    forward.response_headers.extend(headers.iter().cloned());
                }
                planned.headers = headers;
            }
            Err(error) => planned.plan = Plan::Refuse(error),
        }
    }
    planned
}

/// The CORS headers of a request to one of the API's paths on a dispatcher host
/// ([`cors::PATHS`]), where `cors_origins` is set; none elsewhere, so a tenant's host or path
/// never gets any from the dispatcher. `cors_origins` is parsed only by these requests.
fn cors_headers(ctx: Context) -> Result<Headers, DispatchError> {
    if !cors::applies_to(crate::log::path_only(&ctx.head.path_and_query)) {
        return Ok(Vec::new());
    }
    let Some(origins) = ctx.config.cors().map_err(DispatchError::Configuration)? else {
        return Ok(Vec::new());
    };
    let preflight = cors::is_preflight(&ctx.head.method, &ctx.head.headers);
    Ok(cors::response_headers(&origins, &ctx.head.headers, preflight))
}

/// Phases 3 (the limits), 4, 5 and 6 for a request to forward.
fn plan_forward(
    ctx: Context,
    world: &mut impl World,
    planned: &mut Planned,
    host: &Host,
    pending: Pending,
) -> Result<Forward, DispatchError> {
    admit_limits(&pending, &ConfigLimits(ctx.config))?;
    let mut directory = Directory::new(ctx);
    let (worker, location) = namespace::locate(
        ctx,
        &mut directory,
        world,
        &host.name,
        pending.worker.as_ref(),
        pending.kind,
    )?;
    planned.report.worker = Some(worker.clone());
    planned.report.location = Some(match location {
        Location::Local => "local",
        Location::Remote(_) => "remote",
    });
    let tenant = limit::admit_tenant(ctx, &mut directory, world, &worker, pending.kind)?;
    let mut response_headers = Vec::new();
    if let Some((admission, keys)) = tenant {
        planned.report.limit = admission.limit;
        planned.report.breaker = admission.breaker;
        if let Some(refusal) = admission.refusal.clone() {
            return Err(refusal);
        }
        response_headers = admission.headers.clone();
        planned.tenant = Some((admission, keys));
    }
    let traced = planned.report.trace.is_some();
    let mut forward = prepare_forward(ctx, host, worker, location, pending, traced);
    forward.response_headers = response_headers;
    Ok(forward)
}

/// After the worker's answer: tells the tenant's breaker how it went (a tenant without one has
/// nothing to tell, and no store is touched).
pub fn finish(planned: &Planned, world: &mut impl World, outcome: crate::limits::breaker::Outcome) {
    if let Some((admission, keys)) = planned
        .tenant
        .as_ref()
        .filter(|(admission, _)| admission.has_breaker_pass())
    {
        let now_ms = world.now_ms();
        limit::finish(world.store(), admission, keys, outcome, now_ms);
    }
}

/// An admin endpoint needs the bearer token when `admin_token_sha256` is set. A digest that
/// does not parse fails closed: the endpoint is unavailable, not public. So does production
/// without a digest: a deployment that still sets the old `admin_token` variable (which Spin
/// now ignores, as `spin.toml` no longer declares it) must not find its admin endpoints open.
/// `Ok(true)`: the request proved it holds the token; `Ok(false)`: no token is needed (none is
/// set outside production, or not an admin endpoint).
pub fn authorize(ctx: Context, endpoint: Endpoint) -> Result<bool, DispatchError> {
    if !endpoint.needs_admin() {
        return Ok(false);
    }
    match ctx.config.admin_token_digest().map_err(DispatchError::Configuration)? {
        None if ctx.config.environment() == "production" => Err(DispatchError::Unauthorized),
        None => Ok(false),
        Some(digest) if crate::auth::is_authorized(&ctx.head.headers, &digest) => Ok(true),
        Some(_) => Err(DispatchError::Unauthorized),
    }
}

/// Phases 1 to 3, as far as they need nothing but the request and its settings.
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
    let class = class?;
    if is_api_preflight(&class, ctx) {
        decision.route = Some(RouteKind::Api);
        return Ok(Step::Endpoint(Endpoint::Preflight));
    }
    let resolution = route::resolve(&class, &head.method, &head.path_and_query, ctx.config)?;
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
        loops: admit::loop_count(&head.headers),
        ..pending
    }))
}

/// Whether the request is a CORS preflight the dispatcher answers: one whose announced request
/// (the method of `Access-Control-Request-Method`, on the same URL) would be served by one of
/// the API's paths ([`cors::PATHS`]) on a dispatcher host. A preflight for a tenant's host or
/// path is the tenant's, forwarded like any `OPTIONS`; any other `OPTIONS` is routed as usual.
fn is_api_preflight(class: &host::HostClass, ctx: Context) -> bool {
    let head = ctx.head;
    if !matches!(class, host::HostClass::Dispatcher)
        || !cors::is_preflight(&head.method, &head.headers)
        || !cors::applies_to(crate::log::path_only(&head.path_and_query))
    {
        return false;
    }
    matches!(
        route::resolve(class, "GET", &head.path_and_query, ctx.config),
        Ok(Resolution::Endpoint(_))
            | Ok(Resolution::Worker {
                kind: RouteKind::Docs,
                ..
            })
    )
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

/// Phase 6 for a worker whose location is known: the request it receives. `traced`: the client's
/// trace context is valid, and passes on.
pub fn prepare_forward(
    ctx: Context,
    host: &Host,
    worker: WorkerName,
    location: Location,
    pending: Pending,
    traced: bool,
) -> Forward {
    let head = ctx.head;
    let client_ip = upstream::client_ip(&head.headers);
    let provenance = upstream::Provenance {
        host: &host.authority,
        proto: upstream::proto(&head.headers),
        client_ip: client_ip.as_deref(),
        request_id: ctx.request_id,
        traced,
    };
    let mut headers = upstream::headers(&head.headers, &provenance, pending.kind.shares_dispatcher_origin());
    if matches!(location, Location::Remote(_)) {
        // RFC 8586: keep the client's entries and add this dispatcher's.
        headers.push(("cdn-loop".into(), admit::CDN_LOOP_TOKEN.as_bytes().to_vec()));
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
    use crate::pipeline::world::memory::MemoryWorld;

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

    /// Plans `head` in `world`: the forward, or the problem it is answered with.
    fn plan_in(head: &RequestHead, config: &Config, world: &mut MemoryWorld) -> Result<Forward, DispatchError> {
        let ctx = Context {
            head,
            request_id: "rid",
            config,
        };
        match super::plan(ctx, world).plan {
            Plan::Forward(forward) => Ok(forward),
            Plan::Refuse(error) => Err(error),
            Plan::Endpoint { endpoint, .. } => panic!("an endpoint: {endpoint:?}"),
        }
    }

    fn forward(head: &RequestHead, config: &Config) -> Result<Forward, DispatchError> {
        plan_in(head, config, &mut MemoryWorld::default())
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
    fn cors_is_the_apis_on_the_dispatchers_host_and_nothing_of_the_tenants() {
        let allowed = Config::from_lookup(|name| match name {
            "workers" => Some("hello,echo".into()),
            "cors_origins" => Some("https://console.example.com".into()),
            _ => None,
        })
        .unwrap();
        let origin = ("origin", "https://console.example.com");
        let planned = |request: &RequestHead, config: &Config| {
            super::plan(
                Context {
                    head: request,
                    request_id: "rid",
                    config,
                },
                &mut MemoryWorld::default(),
            )
        };
        let allows = |headers: &Headers| {
            headers
                .iter()
                .any(|(n, v)| n == "access-control-allow-origin" && v == b"https://console.example.com")
        };
        for path in ["/health", "/dispatch", "/health/detailed", "/dispatch/explain?url=x"] {
            let request = head("GET", path, &[("host", "localhost"), origin]);
            assert!(allows(&planned(&request, &allowed).headers), "{path}");
        }
        // The API's description is served by the docs component: the forward carries them.
        let openapi = planned(
            &head("GET", "/openapi.json", &[("host", "localhost"), origin]),
            &allowed,
        );
        let Plan::Forward(forward) = openapi.plan else {
            panic!("a forward")
        };
        assert!(allows(&forward.response_headers));
        // A preflight is answered by the dispatcher.
        let preflight = head(
            "OPTIONS",
            "/health/detailed",
            &[("host", "localhost"), origin, ("access-control-request-method", "GET")],
        );
        let answered = planned(&preflight, &allowed);
        assert!(matches!(
            answered.plan,
            Plan::Endpoint {
                endpoint: route::Endpoint::Preflight,
                ..
            }
        ));
        assert!(
            answered
                .headers
                .iter()
                .any(|(n, _)| n == "access-control-allow-methods")
        );
        for path in ["/openapi.json", "/dispatch", "/api/dispatch", "/dispatch/explain?url=x"] {
            let request = head(
                "OPTIONS",
                path,
                &[("host", "localhost"), origin, ("access-control-request-method", "GET")],
            );
            let answered = planned(&request, &allowed);
            assert!(
                matches!(
                    answered.plan,
                    Plan::Endpoint {
                        endpoint: route::Endpoint::Preflight,
                        ..
                    }
                ),
                "{path}"
            );
        }
        // An `OPTIONS` that is no preflight is routed as before: the API serves GET and HEAD.
        let plain = planned(&head("OPTIONS", "/health", &[("host", "localhost")]), &allowed);
        assert!(matches!(
            plain.plan,
            Plan::Refuse(DispatchError::MethodNotAllowed { .. })
        ));
        // A preflight for a path the API does not serve is not answered by it.
        let docs = head(
            "OPTIONS",
            "/docs",
            &[("host", "localhost"), origin, ("access-control-request-method", "GET")],
        );
        assert!(matches!(
            planned(&docs, &allowed).plan,
            Plan::Refuse(DispatchError::MethodNotAllowed { .. })
        ));
        // Tenants own their CORS: their hosts and paths get nothing from the dispatcher, not
        // even `Vary`, and their preflights reach them.
        for (host, path) in [
            ("echo.localhost", "/health"),
            ("localhost", "/dispatch/echo/health"),
            ("localhost", "/dispatch?worker=echo"),
        ] {
            for method in ["GET", "OPTIONS"] {
                let request = head(
                    method,
                    path,
                    &[("host", host), origin, ("access-control-request-method", "GET")],
                );
                let planned = planned(&request, &allowed);
                assert!(planned.headers.is_empty(), "{method} {host}{path}");
                let Plan::Forward(forward) = planned.plan else {
                    panic!("{method} {host}{path} is forwarded")
                };
                assert!(forward.response_headers.is_empty(), "{method} {host}{path}");
            }
        }
        // Without the setting, nothing; with a bad one, the API's paths fail closed and nothing else.
        assert!(
            planned(&head("GET", "/health", &[("host", "localhost"), origin]), &config())
                .headers
                .is_empty()
        );
        let bad = Config::from_lookup(|name| match name {
            "workers" => Some("echo".into()),
            "cors_origins" => Some("console.example.com".into()),
            _ => None,
        })
        .unwrap();
        let refused = planned(&head("GET", "/health", &[("host", "localhost"), origin]), &bad);
        assert!(
            matches!(refused.plan, Plan::Refuse(DispatchError::Configuration(ref e)) if e.variable == "cors_origins")
        );
        let tenant = planned(&head("GET", "/", &[("host", "echo.localhost"), origin]), &bad);
        assert!(matches!(tenant.plan, Plan::Forward(_)));
    }

    #[test]
    fn admin_endpoints_are_closed_in_production_until_a_digest_is_set() {
        use crate::pipeline::route::Endpoint;
        let token = "s3cret-token";
        let digest: String = {
            use sha2::{Digest, Sha256};
            Sha256::digest(token.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let settings = |environment: &str, digest: &str| {
            let (environment, digest) = (environment.to_string(), digest.to_string());
            Config::from_lookup(move |name| match name {
                "environment" => Some(environment.clone()),
                "admin_token_sha256" => Some(digest.clone()),
                _ => None,
            })
            .unwrap()
        };
        let bearer = format!("Bearer {token}");
        let with_token = head("GET", "/health/detailed", &[("authorization", &bearer)]);
        let without = head("GET", "/health/detailed", &[]);
        let ask = |head: &RequestHead, config: &Config, endpoint| {
            authorize(
                Context {
                    head,
                    request_id: "rid",
                    config,
                },
                endpoint,
            )
        };
        for endpoint in [Endpoint::HealthDetailed, Endpoint::NamespaceInfo] {
            // Development without a digest: open, as a first `spin up` expects.
            assert_eq!(ask(&without, &settings("development", ""), endpoint), Ok(false));
            // Production without a digest (an upgrade that still sets the old variable): closed.
            let production = settings("production", "");
            assert_eq!(ask(&without, &production, endpoint), Err(DispatchError::Unauthorized));
            assert_eq!(
                ask(&with_token, &production, endpoint),
                Err(DispatchError::Unauthorized)
            );
            // With the digest: the token opens it, in either environment.
            for environment in ["production", "development"] {
                let config = settings(environment, &digest);
                assert_eq!(ask(&with_token, &config, endpoint), Ok(true));
                assert_eq!(ask(&without, &config, endpoint), Err(DispatchError::Unauthorized));
            }
        }
        // Other endpoints need nothing.
        assert_eq!(ask(&without, &settings("production", ""), Endpoint::Health), Ok(false));
    }

    #[test]
    fn unknown_worker_is_404_without_calling_out() {
        let request = head("GET", "/", &[("host", "ghost.localhost")]);
        let mut world = MemoryWorld::default();
        assert_eq!(
            plan_in(&request, &config(), &mut world).unwrap_err(),
            DispatchError::WorkerNotFound("ghost".into())
        );
        assert_eq!(world.calls(), 0, "no cache, database or store was asked");
        // A listed set of remote members needs no database either; only a namespace whose
        // members are in the database asks it (once; then the answer is cached).
        let listed = Config::from_lookup(|name| match name {
            "workers" => Some("hello".into()),
            "worker_url_template" => Some("http://{worker}.workers.test".into()),
            "remote_workers" => Some("shop".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            plan_in(&request, &listed, &mut world).unwrap_err(),
            DispatchError::WorkerNotFound("ghost".into())
        );
        assert_eq!(world.calls(), 0);
        let from_database = Config::from_lookup(|name| match name {
            "workers" => Some("hello".into()),
            "worker_url_template" => Some("http://{worker}.workers.test".into()),
            _ => None,
        })
        .unwrap();
        for _ in 0..2 {
            assert_eq!(
                plan_in(&request, &from_database, &mut world).unwrap_err(),
                DispatchError::WorkerNotFound("ghost".into())
            );
        }
        assert_eq!(world.database.queries, 1, "the second answer came from the cache");
        world.database.deployed.push("https://ghost.localhost".into());
        world.now_ms += 11_000;
        let found = plan_in(&request, &from_database, &mut world).unwrap();
        assert_eq!(
            found.location,
            Location::Remote(crate::remote::Origin {
                scheme: crate::remote::Scheme::Http,
                authority: "ghost.workers.test".into(),
            })
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
        let token = admit::CDN_LOOP_TOKEN;
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
        // A custom domain needs the database: a refused method, size or loop must not get that
        // far, in the order `plan` runs the phases.
        let mut world = MemoryWorld::default();
        world
            .database
            .domains
            .insert("shop.example.com".into(), "https://hello.localhost".into());
        let small = Config::from_lookup(|name| match name {
            "workers" => Some("hello,echo".into()),
            "max_body_bytes" => Some("100".into()),
            _ => None,
        })
        .unwrap();
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
            assert_eq!(plan_in(&request, &small, &mut world).unwrap_err().status(), status);
            assert_eq!(world.calls(), 0, "refused with {status} before any lookup");
        }
        // The control: the same host with an acceptable request is looked up.
        let fine = head("GET", "/", &[("host", "shop.example.com")]);
        assert_eq!(plan_in(&fine, &small, &mut world).unwrap().worker.as_str(), "hello");
        assert_eq!(world.database.queries, 1);
    }

    #[test]
    fn a_limited_tenant_is_refused_after_it_is_located_and_without_a_forward() {
        let limited = Config::from_lookup(|name| match name {
            "workers" => Some("hello,echo".into()),
            "rate_limits" => Some("hello:1/h".into()),
            _ => None,
        })
        .unwrap();
        let mut world = MemoryWorld::default();
        let request = head("GET", "/", &[("host", "hello.localhost")]);
        let first = plan_in(&request, &limited, &mut world).unwrap();
        assert!(first.response_headers.iter().any(|(name, _)| name == "ratelimit"));
        let refused = plan_in(&request, &limited, &mut world).unwrap_err();
        assert_eq!(refused.code(), "rate_limited");
        // A name that does not exist is never counted: no key is made for it.
        let before = world.store.values.len();
        let ghost = head("GET", "/", &[("host", "ghost.localhost")]);
        assert_eq!(plan_in(&ghost, &limited, &mut world).unwrap_err().status(), 404);
        assert_eq!(world.store.values.len(), before);
    }
}
