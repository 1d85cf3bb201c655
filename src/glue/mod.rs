//! The thin layer between Spin and the pipeline: read the request, ask the pipeline what to do,
//! move the bytes, write one log line. No routing or validation decisions are made here.

mod domains;
mod forward;
mod io;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

use crate::access_log::{self, AccessLog};
use crate::api;
use crate::config::{Config, ConfigError, DomainConfig};
use crate::error::DispatchError;
use crate::pipeline::route::{Endpoint, RouteKind};
use crate::pipeline::{self, RequestHead, Step};
use crate::request_id;

/// A response not yet sent and the error to answer it with: what a step hands back when it
/// fails before its response has started.
type Failure = (ResponseOutparam, DispatchError);

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
        let (status, decision, error) = match &config {
            Ok(config) => {
                let mut decision = pipeline::decide(&head, &request_id, config);
                let mut worker = None;
                let (status, error) = serve(
                    request,
                    response_out,
                    &head,
                    &decision.outcome,
                    decision.host.as_ref(),
                    &mut worker,
                    &request_id,
                    config,
                );
                if worker.is_some() {
                    decision.worker = worker;
                }
                (status, Some(decision), error)
            }
            Err(problem) => {
                let error = configuration_error(problem);
                (
                    io::send_problem(response_out, &error, &request_id, &head.method),
                    None,
                    Some(error.code()),
                )
            }
        };

        let level = access_log::level_for(status);
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
                status,
                duration_ns: elapsed_ns,
                error,
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

/// Carries out the pipeline's decision. Returns the status sent and the error code, if any.
#[allow(clippy::too_many_arguments)]
fn serve(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    head: &RequestHead,
    outcome: &Result<Step, DispatchError>,
    decision_host: Option<&pipeline::host::Host>,
    worker_out: &mut Option<pipeline::worker_name::WorkerName>,
    request_id: &str,
    config: &Config,
) -> (u16, Option<&'static str>) {
    let result = match outcome {
        Ok(Step::Endpoint(endpoint)) => {
            if endpoint.needs_admin() && !crate::auth::is_authorized(&head.headers, &variable("admin_token")) {
                let error = DispatchError::Unauthorized;
                return (
                    io::send_problem(response_out, &error, request_id, &head.method),
                    Some(error.code()),
                );
            }
            respond_endpoint(*endpoint, response_out, head, request_id, config)
        }
        Ok(Step::Forward(forward)) => forward::run(request, response_out, forward, &head.method, request_id, config),
        Ok(Step::CustomDomain) => match custom_domain_forward(head, decision_host, request_id, config) {
            Ok(forward) => {
                *worker_out = Some(forward.worker.clone());
                forward::run(request, response_out, &forward, &head.method, request_id, config)
            }
            Err(error) => Err((response_out, error)),
        },
        Err(error) => Err((response_out, error.clone())),
    };
    match result {
        Ok(status) => (status, None),
        Err((response_out, error)) => (
            io::send_problem(response_out, &error, request_id, &head.method),
            Some(error.code()),
        ),
    }
}

/// Resolves a custom domain to its worker, then prepares the forward exactly as for a subdomain.
fn custom_domain_forward(
    head: &RequestHead,
    host: Option<&pipeline::host::Host>,
    request_id: &str,
    config: &Config,
) -> Result<pipeline::Forward, DispatchError> {
    let host = host.expect("a custom domain has a host");
    let domains = DomainConfig::from_lookup(spin_variable).map_err(|problem| configuration_error(&problem))?;
    let worker =
        domains::resolve(&host.name, config, &domains, request_id)?.ok_or(DispatchError::CustomDomainNotFound)?;
    pipeline::prepare_forward(
        worker,
        RouteKind::CustomDomain,
        head.path_and_query.clone(),
        head,
        host,
        request_id,
        config,
    )
}

/// Logs which variable is unusable and why (for the operator, never the client) and gives the
/// error the client gets.
fn configuration_error(problem: &ConfigError) -> DispatchError {
    eprintln!(
        "libra-dispatcher: variable {} is invalid: {}",
        problem.variable, problem.problem
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
fn request_port(head: &RequestHead) -> Option<&str> {
    let authority = head.authority.as_deref()?;
    let (_, port) = authority.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

fn respond_endpoint(
    endpoint: Endpoint,
    response_out: ResponseOutparam,
    head: &RequestHead,
    request_id: &str,
    config: &Config,
) -> Result<u16, Failure> {
    let timestamp = io::now_rfc3339();
    // Only the endpoints that describe the namespace validate all of it (routing never needs to).
    let workers = match endpoint {
        Endpoint::Health => Vec::new(),
        Endpoint::HealthDetailed | Endpoint::NamespaceInfo => match config.workers() {
            Ok(workers) => workers,
            Err(problem) => return Err((response_out, configuration_error(&problem))),
        },
    };
    let body = match endpoint {
        Endpoint::Health => serde_json::to_vec(&api::health(&timestamp, &variable("environment"))),
        Endpoint::HealthDetailed => {
            let environment = variable("environment");
            let domains = DomainConfig::from_lookup(spin_variable);
            let started = wasi::clocks::monotonic_clock::now();
            let (backend, reachable) = match &domains {
                Ok(domains) => (
                    domains::database::backend(domains),
                    domains::database::ping(domains).is_ok(),
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
            let namespace = variable("namespace");
            serde_json::to_vec(&api::namespace_info(
                config, &workers, &namespace, scheme, port, &timestamp, request_id,
            ))
        }
    }
    .expect("endpoint bodies always serialise");
    Ok(io::send_json(response_out, 200, &body, request_id, &head.method))
}
