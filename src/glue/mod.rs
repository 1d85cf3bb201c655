//! The thin layer between Spin and the pipeline: read the request, ask the pipeline what to do
//! ([`pipeline::plan`]), carry the plan out (answer from an endpoint, refuse, or forward and
//! stream), tell the pipeline how it went ([`pipeline::finish`]), and write the request's log
//! line. No routing or validation decision is made here; the storage and the clock the pipeline
//! asks for are in [`world`].

mod endpoints;
mod forward;
mod io;
mod kv;
mod log;
mod phases;
mod postgres;
mod settings;
mod sqlite;
mod world;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

use crate::config::LogLevel;
use crate::error::DispatchError;
use crate::log::{LogLine, level_for, path_only};
use crate::pipeline::{self, Context, Plan};
use crate::request_id;

/// How a request ended, for its log line.
struct Served {
    status: u16,
    /// The problem it was answered with, if any.
    error: Option<DispatchError>,
    /// The code of a response cut short after its status went out.
    cut_short: Option<&'static str>,
}

impl Served {
    fn answered(status: u16) -> Served {
        Served {
            status,
            error: None,
            cut_short: None,
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
        let config = settings::routing();
        phases::mark("settings");
        let (served, report) = match &config {
            Ok(config) => {
                let ctx = Context {
                    head: &head,
                    request_id: &request_id,
                    config,
                };
                let mut world = world::SpinWorld::new(&request_id);
                let planned = pipeline::plan(ctx, &mut world);
                phases::mark("decide");
                let served = carry_out(request, response_out, ctx, &mut world, &planned);
                (served, Some(planned.report))
            }
            Err(error) => {
                let status = io::send_problem(response_out, error, &request_id, &head.method, &Vec::new());
                (
                    Served {
                        error: Some(error.clone()),
                        ..Served::answered(status)
                    },
                    None,
                )
            }
        };

        phases::mark("served");
        let report = report.unwrap_or_else(|| pipeline::Report {
            trace: pipeline::trace::client_trace(&head.headers),
            ..pipeline::Report::default()
        });
        let level = level_for(served.status, report.limit, report.breaker);
        let threshold = config.as_ref().map_or(LogLevel::Info, |c| c.log_level);
        if level >= threshold {
            let time = io::now_rfc3339();
            let line = LogLine {
                time: &time,
                level: level.as_str(),
                request_id: &request_id,
                method: Some(&head.method),
                host: Some(report.host.as_ref().map(|h| h.name.as_str())),
                path: Some(path_only(&head.path_and_query)),
                route: Some(report.route.map(|r| r.as_str())),
                worker: Some(report.worker.as_ref().map(|w| w.as_str())),
                location: Some(report.location),
                status: Some(served.status),
                duration_ns: Some(wasi::clocks::monotonic_clock::now().saturating_sub(started)),
                error: served.cut_short.or(served.error.as_ref().map(DispatchError::code)),
                limit: report.limit,
                breaker: report.breaker,
                trace_id: report.trace.as_ref().map(|trace| trace.as_str()),
                ..LogLine::default()
            };
            match served.error.as_ref().and_then(DispatchError::cause) {
                Some((variable, problem)) => log::line(&line.with_cause(variable, problem)),
                None => log::line(&line),
            }
            phases::mark("logged");
        }
        if let Some(line) = phases::take_line() {
            log::write(line);
        }
    }
}

/// Carries out the pipeline's plan.
fn carry_out(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    ctx: Context,
    world: &mut world::SpinWorld,
    planned: &pipeline::Planned,
) -> Served {
    let result = match &planned.plan {
        Plan::Endpoint {
            endpoint,
            authenticated,
        } => endpoints::respond(*endpoint, response_out, ctx, *authenticated, world, &planned.headers),
        Plan::Refuse(error) => Err((response_out, error.clone())),
        Plan::Forward(forward) => {
            let limits = pipeline::ConfigLimits(ctx.config);
            return match forward::run(request, response_out, forward, ctx, &limits) {
                // A body cut short after the status went out: logged, nothing else to do.
                Ok((status, streamed)) => {
                    pipeline::finish(planned, world, streamed.outcome());
                    Served {
                        cut_short: streamed.error(),
                        ..Served::answered(status)
                    }
                }
                Err((response_out, error)) => {
                    pipeline::finish(planned, world, pipeline::limit::outcome_of(Some(&error)));
                    refused(response_out, ctx, error, &planned.headers)
                }
            };
        }
    };
    match result {
        Ok(status) => Served::answered(status),
        Err((response_out, error)) => refused(response_out, ctx, error, &planned.headers),
    }
}

/// Answers with a problem document, with the plan's `extra` headers (CORS).
fn refused(response_out: ResponseOutparam, ctx: Context, error: DispatchError, extra: &pipeline::Headers) -> Served {
    let status = io::send_problem(response_out, &error, ctx.request_id, &ctx.head.method, extra);
    Served {
        error: Some(error),
        ..Served::answered(status)
    }
}
