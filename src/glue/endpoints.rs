//! The dispatcher's own endpoints: `/`, `OPTIONS *`, `/health`, `/health/detailed` and
//! `/dispatch` (namespace info). Their bodies come from `crate::api`; this module gathers what
//! they report (a real database round trip, the open breakers) and sends them.

use wasi::http::types::ResponseOutparam;

use super::io::{self, Failure};
use super::sqlite::Schema;
use super::world::{Backend, SpinWorld, now_ms};
use crate::api;
use crate::cache;
use crate::config::LookupConfig;
use crate::error::DispatchError;
use crate::pipeline::explain;
use crate::pipeline::request::Headers;
use crate::pipeline::route::Endpoint;
use crate::pipeline::worker_name::WorkerName;
use crate::pipeline::world::{CacheStore, World};
use crate::pipeline::{self, Context};

/// Answers `endpoint`, adding `extra` headers (CORS) to what it sends.
pub fn respond(
    endpoint: Endpoint,
    response_out: ResponseOutparam,
    ctx: Context,
    authenticated: bool,
    world: &mut SpinWorld,
    extra: &Headers,
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
            Ok(io::send_json(response_out, 200, &body, request_id, &head.method, extra))
        }
        Endpoint::ServerOptions => {
            let headers = vec![
                (
                    "allow".to_string(),
                    pipeline::admit::FORWARDED_METHODS.as_bytes().to_vec(),
                ),
                ("x-request-id".to_string(), request_id.as_bytes().to_vec()),
            ];
            Ok(io::send(response_out, 204, headers, b"", &head.method))
        }
        Endpoint::Preflight => {
            let mut headers = vec![("x-request-id".to_string(), request_id.as_bytes().to_vec())];
            headers.extend(extra.iter().cloned());
            Ok(io::send(response_out, 204, headers, b"", &head.method))
        }
        Endpoint::Explain => {
            let (url, explained) = match explain::target(&head.path_and_query) {
                Ok(target) => target,
                Err(error) => return Err((response_out, error)),
            };
            let explanation = explain::explain(ctx, url, &explained, world);
            let body = serde_json::to_vec(&explanation).expect("endpoint bodies always serialise");
            Ok(io::send_json(response_out, 200, &body, request_id, &head.method, extra))
        }
        Endpoint::Health => {
            let timestamp = io::now_rfc3339();
            let body = serde_json::to_vec(&api::health(&timestamp, ctx.config.environment()))
                .expect("endpoint bodies always serialise");
            Ok(io::send_json(response_out, 200, &body, request_id, &head.method, extra))
        }
        Endpoint::HealthDetailed => {
            let (workers, lookups) = match described_namespace(ctx) {
                Ok(described) => described,
                Err(error) => return Err((response_out, error)),
            };
            // Anyone may ask when no admin token is set: then the round trip is shared, for a few
            // seconds, so this endpoint is no free database ping.
            let database = if authenticated {
                check_database(&lookups)
            } else {
                check_database_cached(world, &lookups)
            };
            let timestamp = io::now_rfc3339();
            let remote = api::remote_members(&lookups.remote);
            let mut report =
                api::health_detailed(&timestamp, ctx.config.environment(), database, workers.len(), remote);
            // Listing them reads a few hundred keys: only for the holder of the admin token.
            if authenticated {
                report.breakers = open_breakers(ctx, world, &lookups.namespace);
            }
            let status = if report.healthy() { 200 } else { 503 };
            let body = serde_json::to_vec(&report).expect("endpoint bodies always serialise");
            Ok(io::send_json(
                response_out,
                status,
                &body,
                request_id,
                &head.method,
                extra,
            ))
        }
        Endpoint::NamespaceInfo => {
            let (workers, lookups) = match described_namespace(ctx) {
                Ok(described) => described,
                Err(error) => return Err((response_out, error)),
            };
            let timestamp = io::now_rfc3339();
            let info = api::namespace_info(
                ctx.config,
                &workers,
                &lookups.namespace,
                pipeline::upstream::proto(&head.headers),
                request_port(head),
                &timestamp,
                request_id,
            );
            let body = serde_json::to_vec(&info).expect("endpoint bodies always serialise");
            Ok(io::send_json(response_out, 200, &body, request_id, &head.method, extra))
        }
    }
}

/// The local workers, validated (routing never needs the whole list; the endpoints that
/// describe the namespace report a bad entry), and the lookup settings.
fn described_namespace(ctx: Context) -> Result<(Vec<WorkerName>, LookupConfig), DispatchError> {
    let workers = ctx.config.workers().map_err(DispatchError::Configuration)?;
    let lookups = ctx.config.lookups().map_err(DispatchError::Configuration)?;
    Ok((workers, lookups))
}

/// The port the client used, so example URLs work as printed.
fn request_port(head: &pipeline::RequestHead) -> Option<&str> {
    let authority = head.authority.as_deref()?;
    let (_, port) = authority.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

/// One real round trip to the database.
fn check_database(lookups: &LookupConfig) -> api::DatabaseCheck {
    let started = wasi::clocks::monotonic_clock::now();
    let (backend, status) = match Backend::open(lookups.misses.db_timeout_ms) {
        Ok(database) => (
            database.name(),
            match database.ping() {
                Ok(Schema::Present) => "ok",
                Ok(Schema::NoTable) => "no_table",
                Err(_) => "error",
            },
        ),
        Err(_) => ("unknown", "error"),
    };
    let latency_ms = (wasi::clocks::monotonic_clock::now().saturating_sub(started) as f64 / 1e4).round() / 100.0;
    api::DatabaseCheck {
        status,
        backend,
        latency_ms,
    }
}

/// [`check_database`], shared for [`api::HEALTH_CHECK_TTL_S`] through the cache.
fn check_database_cached(world: &mut SpinWorld, lookups: &LookupConfig) -> api::DatabaseCheck {
    let key = cache::key(&lookups.namespace, cache::Kind::HealthCheck, "database");
    let now = now_ms() / 1000;
    if let Some(check) = world
        .cache()
        .get(&key)
        .and_then(|bytes| api::DatabaseCheck::decode(&bytes, now))
    {
        return check;
    }
    let check = check_database(lookups);
    world.cache().set(&key, &check.encode(now + api::HEALTH_CHECK_TTL_S));
    check
}

/// The namespace's breakers that are not closed, when breakers are configured.
fn open_breakers(ctx: Context, world: &mut SpinWorld, namespace: &str) -> Option<Vec<pipeline::limit::OpenBreaker>> {
    let settings = ctx.config.limits().ok().flatten()?;
    if !settings.has_breakers() {
        return None;
    }
    let now = now_ms();
    Some(pipeline::limit::open_breakers(world.store(), namespace, now))
}
