//! The thin layer between Spin and the pipeline: read the request, ask the pipeline what to do,
//! move the bytes, write one log line. No routing or validation decisions are made here.

mod forward;
mod io;
mod lookups;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

use crate::access_log::{self, AccessLog};
use crate::api;
use crate::config::{Config, ConfigError, DatabaseConfig};
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
}

impl Served {
    fn answered(status: u16) -> Served {
        Served {
            status,
            error: None,
            location: None,
        }
    }
}

struct Dispatcher;

wasi::http::proxy::export!(Dispatcher);

impl Guest for Dispatcher {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let started = wasi::clocks::monotonic_clock::now();
        let head = io::request_head(&request);
        let request_id = request_id::from_client(&head.headers).unwrap_or_else(|| {
            let bytes: [u8; 16] = wasi::random::random::get_random_bytes(16).try_into().unwrap_or([0; 16]);
            request_id::generate(bytes)
        });

        let config = Config::from_lookup(spin_variable);
        let (served, decision) = match &config {
            Ok(config) => {
                let ctx = Context {
                    head: &head,
                    request_id: &request_id,
                    config,
                };
                let mut decision = pipeline::decide(ctx);
                (serve(request, response_out, ctx, &mut decision), Some(decision))
            }
            Err(problem) => {
                let error = configuration_error(&request_id, problem);
                let status = io::send_problem(response_out, &error, &request_id, &head.method);
                (
                    Served {
                        error: Some(error.code()),
                        ..Served::answered(status)
                    },
                    None,
                )
            }
        };

        let level = access_log::level_for(served.status);
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
            };
            write_log_line(line.to_line());
        }
    }
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
    let (result, location) = match &decision.outcome {
        Ok(Step::Endpoint(endpoint)) => {
            if endpoint.needs_admin() && !crate::auth::is_authorized(&ctx.head.headers, &variable("admin_token")) {
                (Err((response_out, DispatchError::Unauthorized)), None)
            } else {
                (respond_endpoint(*endpoint, response_out, ctx), None)
            }
        }
        Ok(Step::Forward(pending)) => {
            let host = decision.host.as_ref().expect("a forwarded request has a host");
            match locate(ctx, &host.name, pending) {
                Ok((worker, location)) => {
                    decision.worker = Some(worker.clone());
                    let label = match location {
                        Location::Local => "local",
                        Location::Remote(_) => "remote",
                    };
                    let forward = pipeline::prepare_forward(ctx, host, worker, location, pending.clone());
                    (forward::run(request, response_out, &forward, ctx), Some(label))
                }
                Err(error) => (Err((response_out, error)), None),
            }
        }
        Err(error) => (Err((response_out, error.clone())), None),
    };
    match result {
        Ok(status) => Served {
            location,
            ..Served::answered(status)
        },
        Err((response_out, error)) => Served {
            status: io::send_problem(response_out, &error, ctx.request_id, &ctx.head.method),
            error: Some(error.code()),
            location,
        },
    }
}

/// Names the worker (a custom domain's comes from the database) and finds where it lives.
fn locate(ctx: Context, host: &str, pending: &Pending) -> Result<(WorkerName, Location), DispatchError> {
    let database =
        || DatabaseConfig::from_lookup(spin_variable).map_err(|problem| configuration_error(ctx.request_id, &problem));
    let worker = match &pending.worker {
        Some(worker) => worker.clone(),
        None => lookups::custom_domain(ctx, &database()?, host)?.ok_or(DispatchError::CustomDomainNotFound)?,
    };
    let location = match namespace::locate(&worker, pending.kind, ctx.config) {
        Ok(Located::Here(location)) => location,
        Ok(Located::AskDatabase(origin)) => {
            if !lookups::is_deployed(ctx, &database()?, &worker)? {
                return Err(DispatchError::WorkerNotFound(worker.to_string()));
            }
            Location::Remote(origin)
        }
        Err(DispatchError::Configuration) => {
            if let Err(problem) = &ctx.config.remote {
                configuration_error(ctx.request_id, problem);
            }
            return Err(DispatchError::Configuration);
        }
        Err(error) => return Err(error),
    };
    Ok((worker, location))
}

/// Logs which variable is unusable and why (for the operator, never the client) and gives the
/// error the client gets.
fn configuration_error(request_id: &str, problem: &ConfigError) -> DispatchError {
    write_log_line(
        serde_json::json!({
            "time": io::now_rfc3339(),
            "level": "error",
            "requestId": request_id,
            "message": "a variable is invalid",
            "variable": problem.variable,
            "problem": problem.problem,
        })
        .to_string(),
    );
    DispatchError::Configuration
}

/// A Spin variable's value; `None` when the host does not define it. The one place the
/// dispatcher reads variables.
fn spin_variable(name: &str) -> Option<String> {
    match all_variables() {
        Some(all) => all.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()),
        None => spin_sdk::variables::get(name).ok(),
    }
}

/// Every variable in one host call (`wasi:config/store.get-all`, Spin 3.0+): a request reads
/// about seven, and host calls are most of what the dispatcher costs over a bare forwarder. An
/// instance serves one request, so this is read once per request. `None` when some variable
/// cannot be resolved; the caller then asks for each name, so one failing provider only affects
/// the variables it backs.
fn all_variables() -> Option<&'static [(String, String)]> {
    static ALL: std::sync::OnceLock<Option<Vec<(String, String)>>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| spin_sdk::wit::wasi::config::store::get_all().ok())
        .as_deref()
}

/// A Spin variable that routing does not need, read only when an endpoint asks for it.
fn variable(name: &str) -> String {
    spin_variable(name)
        .unwrap_or_else(|| crate::config::default_of(name).to_string())
        .trim()
        .to_string()
}

/// The port the client used, so example URLs work as printed.
fn request_port(head: &pipeline::RequestHead) -> Option<&str> {
    let authority = head.authority.as_deref()?;
    let (_, port) = authority.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

fn respond_endpoint(endpoint: Endpoint, response_out: ResponseOutparam, ctx: Context) -> Result<u16, Failure> {
    let (head, request_id, config) = (ctx.head, ctx.request_id, ctx.config);
    let timestamp = io::now_rfc3339();
    // Only the endpoints that describe the namespace validate all of it (routing never needs to).
    let workers = match endpoint {
        Endpoint::Health => Vec::new(),
        Endpoint::HealthDetailed | Endpoint::NamespaceInfo => match config.workers() {
            Ok(workers) => workers,
            Err(problem) => return Err((response_out, configuration_error(request_id, &problem))),
        },
    };
    let body = match endpoint {
        Endpoint::Health => serde_json::to_vec(&api::health(&timestamp, &variable("environment"))),
        Endpoint::HealthDetailed => {
            let environment = variable("environment");
            let database = DatabaseConfig::from_lookup(spin_variable);
            let started = wasi::clocks::monotonic_clock::now();
            let (backend, reachable) = match &database {
                Ok(database) => (
                    lookups::database::backend(database),
                    lookups::database::ping(database).is_ok(),
                ),
                Err(_) => ("none", false),
            };
            let latency_ms =
                (wasi::clocks::monotonic_clock::now().saturating_sub(started) as f64 / 1e4).round() / 100.0;
            let database = api::DatabaseCheck {
                status: if reachable { "ok" } else { "error" },
                backend,
                latency_ms,
            };
            let report = api::health_detailed(&timestamp, &environment, database, workers.len());
            let status = if report.healthy() { 200 } else { 503 };
            let body = serde_json::to_vec(&report).expect("endpoint bodies always serialise");
            return Ok(io::send_json(response_out, status, &body, request_id, &head.method));
        }
        Endpoint::NamespaceInfo => {
            let scheme = pipeline::upstream::proto(&head.headers);
            let port = request_port(head);
            serde_json::to_vec(&api::namespace_info(
                config,
                &workers,
                &config.namespace,
                scheme,
                port,
                &timestamp,
                request_id,
            ))
        }
    }
    .expect("endpoint bodies always serialise");
    Ok(io::send_json(response_out, 200, &body, request_id, &head.method))
}
