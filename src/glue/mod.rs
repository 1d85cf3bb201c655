//! The thin layer between Spin and the pipeline: read the request, ask the pipeline what to do,
//! move the bytes, write one log line. No routing or validation decisions are made here.

mod forward;
mod io;
mod lookups;
mod phases;
mod settings;
mod shared_store;
mod tenant;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

use crate::access_log::{self, AccessLog};
use crate::api;
use crate::config::LookupConfig;
use crate::error::DispatchError;
use crate::pipeline::namespace::{self, Located, Location};
use crate::pipeline::route::Endpoint;
use crate::pipeline::worker_name::WorkerName;
use crate::pipeline::{self, Context, Decision, Pending, Step};
use crate::request_id;

/// A response not yet sent and the error to answer it with: what a step hands back when it
/// fails before its response has started.
type Failure = (ResponseOutparam, DispatchError);

/// What the access log says about how a request ended.
struct Served {
    status: u16,
    error: Option<&'static str>,
    location: Option<&'static str>,
    /// The tenant's rate limit and breaker, where it has them.
    limit: Option<&'static str>,
    breaker: Option<&'static str>,
}

impl Served {
    fn answered(status: u16) -> Served {
        Served {
            status,
            error: None,
            location: None,
            limit: None,
            breaker: None,
        }
    }
}

struct Dispatcher;

wasi::http::proxy::export!(Dispatcher);

impl Guest for Dispatcher {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let started = wasi::clocks::monotonic_clock::now();
        phases::mark("start");
        let head = io::request_head(&request);
        phases::mark("head");
        let request_id = request_id::from_client(&head.headers).unwrap_or_else(|| {
            let bytes: [u8; 16] = wasi::random::random::get_random_bytes(16).try_into().unwrap_or([0; 16]);
            request_id::generate(bytes)
        });

        phases::mark("request_id");
        let config = settings::routing(&request_id);
        phases::mark("settings");
        let (served, decision) = match &config {
            Ok(config) => {
                let ctx = Context {
                    head: &head,
                    request_id: &request_id,
                    config,
                };
                let mut decision = pipeline::decide(ctx);
                phases::mark("decide");
                (serve(request, response_out, ctx, &mut decision), Some(decision))
            }
            Err(error) => {
                let status = io::send_problem(response_out, error, &request_id, &head.method);
                (
                    Served {
                        error: Some(error.code()),
                        ..Served::answered(status)
                    },
                    None,
                )
            }
        };

        phases::mark("served");
        let level = access_log::level_for(served.status, served.limit, served.breaker);
        let threshold = config.as_ref().map_or(crate::config::LogLevel::Info, |c| c.log_level);
        if level >= threshold {
            let elapsed_ns = wasi::clocks::monotonic_clock::now().saturating_sub(started);
            let decision = decision.as_ref();
            let line = AccessLog {
                time: &io::now_rfc3339(),
                level: level.as_str(),
                request_id: &request_id,
                method: &head.method,
                host: decision.and_then(|d| d.host.as_ref()).map(|h| h.name.as_str()),
                path: access_log::path_only(&head.path_and_query),
                route: decision.and_then(|d| d.route).map(|r| r.as_str()),
                worker: decision.and_then(|d| d.worker.as_ref()).map(|w| w.as_str()),
                location: served.location,
                status: served.status,
                duration_ns: elapsed_ns,
                error: served.error,
                limit: served.limit,
                breaker: served.breaker,
            };
            write_log_line(line.to_line());
            phases::mark("logged");
        }
        if let Some(line) = phases::take_line() {
            write_log_line(line);
        }
    }
}

/// A warning for the operator about `request_id`: `message`, and `fields` beside it.
fn log_warning(request_id: &str, message: &str, fields: serde_json::Value) {
    let mut line = serde_json::json!({
        "time": io::now_rfc3339(),
        "level": "warn",
        "requestId": request_id,
        "message": message,
    });
    if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), fields) {
        line.extend(fields);
    }
    write_log_line(line.to_string());
}

/// One write to stdout per line, which Spin collects as the component's log.
fn write_log_line(mut line: String) {
    line.push('\n');
    let stdout = wasi::cli::stdout::get_stdout();
    for chunk in line.as_bytes().chunks(4096) {
        if stdout.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
}

/// Carries out the pipeline's decision; records the worker a lookup found in `decision`.
fn serve(request: IncomingRequest, response_out: ResponseOutparam, ctx: Context, decision: &mut Decision) -> Served {
    let result = match &decision.outcome {
        Ok(Step::Endpoint(endpoint)) => match authorize(ctx, *endpoint) {
            Ok(authenticated) => respond_endpoint(*endpoint, response_out, ctx, authenticated),
            Err(error) => Err((response_out, error)),
        },
        Ok(Step::Forward(pending)) => {
            let host = decision.host.as_ref().expect("a forwarded request has a host");
            let limits = settings::Limits {
                request_id: ctx.request_id,
                config: ctx.config,
            };
            let mut lookups = lookups::Lookups::new(ctx);
            let located =
                pipeline::admit_limits(pending, &limits).and_then(|()| locate(&mut lookups, &host.name, pending));
            match located {
                Ok((worker, location)) => {
                    decision.worker = Some(worker.clone());
                    let label = match location {
                        Location::Local => "local",
                        Location::Remote(_) => "remote",
                    };
                    let tenant = match tenant::Tenant::admit(ctx, &mut lookups, &worker, pending.kind) {
                        Ok(tenant) => tenant,
                        Err(error) => return refused(response_out, ctx, error, None),
                    };
                    if let Some(refusal) = tenant.admission.refusal.clone() {
                        return refused(response_out, ctx, refusal, Some(&tenant));
                    }
                    let (limit, breaker) = (tenant.admission.limit, tenant.admission.breaker);
                    let mut forward = pipeline::prepare_forward(ctx, host, worker, location, pending.clone());
                    forward.response_headers = tenant.admission.headers.clone();
                    match forward::run(request, response_out, &forward, ctx, &limits) {
                        // A body cut short after the status went out: logged, nothing else to do.
                        Ok((status, streamed)) => {
                            tenant.finish(streamed.outcome());
                            return Served {
                                status,
                                error: streamed.error(),
                                location: Some(label),
                                limit,
                                breaker,
                            };
                        }
                        Err((response_out, error)) => {
                            tenant.finish(pipeline::limit::outcome_of(Some(&error)));
                            let status = io::send_problem(response_out, &error, ctx.request_id, &ctx.head.method);
                            return Served {
                                status,
                                error: Some(error.code()),
                                location: Some(label),
                                limit,
                                breaker,
                            };
                        }
                    }
                }
                Err(error) => Err((response_out, error)),
            }
        }
        Err(error) => Err((response_out, error.clone())),
    };
    match result {
        Ok(status) => Served::answered(status),
        Err((response_out, error)) => refused(response_out, ctx, error, None),
    }
}

/// Answers a request with a problem document, before any call to a worker: with the tenant's
/// limit and breaker decisions when they refused it.
fn refused(
    response_out: ResponseOutparam,
    ctx: Context,
    error: DispatchError,
    tenant: Option<&tenant::Tenant>,
) -> Served {
    let status = io::send_problem(response_out, &error, ctx.request_id, &ctx.head.method);
    Served {
        status,
        error: Some(error.code()),
        location: None,
        limit: tenant.and_then(|t| t.admission.limit),
        breaker: tenant.and_then(|t| t.admission.breaker),
    }
}

/// An admin endpoint needs the bearer token when `admin_token` is set. A token that cannot be
/// read fails closed: the endpoint is unavailable, not public. `Ok(true)`: the request proved it
/// holds the token; `Ok(false)`: no token is needed (none is set, or not an admin endpoint).
fn authorize(ctx: Context, endpoint: Endpoint) -> Result<bool, DispatchError> {
    if !endpoint.needs_admin() {
        return Ok(false);
    }
    let token = settings::single(ctx.request_id, "admin_token")?;
    if token.is_empty() {
        Ok(false)
    } else if crate::auth::is_authorized(&ctx.head.headers, &token) {
        Ok(true)
    } else {
        Err(DispatchError::Unauthorized)
    }
}

/// Names the worker (a custom domain's comes from the database) and finds where it lives.
fn locate(
    lookups: &mut lookups::Lookups,
    host: &str,
    pending: &Pending,
) -> Result<(WorkerName, Location), DispatchError> {
    let ctx = lookups.ctx();
    let worker = match &pending.worker {
        Some(worker) => worker.clone(),
        None => lookups::custom_domain(lookups, host)?.ok_or(DispatchError::CustomDomainNotFound)?,
    };
    if namespace::is_local(&worker, pending.kind, ctx.config) {
        return Ok((worker, Location::Local));
    }
    let location = match namespace::locate_remote(&worker, lookups.remote()) {
        Ok(Located::Here(location)) => location,
        Ok(Located::AskDatabase(origin)) => {
            if !lookups::is_deployed(lookups, &worker)? {
                return Err(DispatchError::WorkerNotFound(worker.to_string()));
            }
            Location::Remote(origin)
        }
        Err(DispatchError::Configuration) => {
            if let Err(problem) = lookups.remote() {
                settings::invalid(ctx.request_id, problem);
            }
            return Err(DispatchError::Configuration);
        }
        Err(error) => return Err(error),
    };
    Ok((worker, location))
}

/// The port the client used, so example URLs work as printed.
fn request_port(head: &pipeline::RequestHead) -> Option<&str> {
    let authority = head.authority.as_deref()?;
    let (_, port) = authority.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

fn respond_endpoint(
    endpoint: Endpoint,
    response_out: ResponseOutparam,
    ctx: Context,
    authenticated: bool,
) -> Result<u16, Failure> {
    let (head, request_id) = (ctx.head, ctx.request_id);
    match endpoint {
        Endpoint::Index => {
            if api::wants_html(&head.headers) {
                let headers = vec![
                    ("location".to_string(), b"/docs".to_vec()),
                    ("cache-control".to_string(), b"no-store".to_vec()),
                    ("x-request-id".to_string(), request_id.as_bytes().to_vec()),
                ];
                return Ok(io::send(response_out, 302, headers, b"", &head.method));
            }
            let body = serde_json::to_vec(&api::index()).expect("endpoint bodies always serialise");
            Ok(io::send_json(response_out, 200, &body, request_id, &head.method))
        }
        Endpoint::ServerOptions => {
            let headers = vec![
                (
                    "allow".to_string(),
                    crate::pipeline::admit::FORWARDED_METHODS.as_bytes().to_vec(),
                ),
                ("x-request-id".to_string(), request_id.as_bytes().to_vec()),
            ];
            Ok(io::send(response_out, 204, headers, b"", &head.method))
        }
        Endpoint::Health => {
            let (timestamp, environment) = (io::now_rfc3339(), environment(ctx));
            let body =
                serde_json::to_vec(&api::health(&timestamp, &environment)).expect("endpoint bodies always serialise");
            Ok(io::send_json(response_out, 200, &body, request_id, &head.method))
        }
        Endpoint::HealthDetailed => {
            let (workers, lookup_config) = match described_namespace(ctx) {
                Ok(described) => described,
                Err(error) => return Err((response_out, error)),
            };
            // Anyone may ask when no admin token is set: then the round trip is shared, for a few
            // seconds, so this endpoint is no free database ping.
            let database = if authenticated {
                lookups::check_database(ctx, &lookup_config)
            } else {
                lookups::check_database_cached(ctx, &lookup_config)
            };
            let (timestamp, environment) = (io::now_rfc3339(), environment(ctx));
            let remote = api::remote_members(&lookup_config.remote);
            let mut report = api::health_detailed(&timestamp, &environment, database, workers.len(), remote);
            // Listing them reads a few hundred keys: only for the holder of the admin token.
            if authenticated {
                report.breakers = tenant::open_breakers(ctx, &lookup_config.namespace);
            }
            let status = if report.healthy() { 200 } else { 503 };
            let body = serde_json::to_vec(&report).expect("endpoint bodies always serialise");
            Ok(io::send_json(response_out, status, &body, request_id, &head.method))
        }
        Endpoint::NamespaceInfo => {
            let (workers, lookup_config) = match described_namespace(ctx) {
                Ok(described) => described,
                Err(error) => return Err((response_out, error)),
            };
            let timestamp = io::now_rfc3339();
            let info = api::namespace_info(
                ctx.config,
                &workers,
                &lookup_config.namespace,
                pipeline::upstream::proto(&head.headers),
                request_port(head),
                &timestamp,
                request_id,
            );
            let body = serde_json::to_vec(&info).expect("endpoint bodies always serialise");
            Ok(io::send_json(response_out, 200, &body, request_id, &head.method))
        }
    }
}

/// The local workers, validated (routing never needs the whole list; the endpoints that
/// describe the namespace report a bad entry), and the lookup settings.
fn described_namespace(ctx: Context) -> Result<(Vec<WorkerName>, LookupConfig), DispatchError> {
    let workers = ctx
        .config
        .workers()
        .map_err(|problem| settings::invalid(ctx.request_id, &problem))?;
    let lookups = ctx
        .config
        .lookups()
        .map_err(|problem| settings::invalid(ctx.request_id, &problem))?;
    Ok((workers, lookups))
}

/// Informational only.
fn environment(ctx: Context) -> String {
    ctx.config.environment().to_string()
}
