//! The request path, as a proxy pipeline with named phases:
//!
//! 1. [`host`] classify the host (dispatcher, tenant subdomain, custom domain);
//! 2. [`route`] resolve the worker or the dispatcher endpoint;
//! 3. [`admit`] check methods and limits;
//! 4. [`upstream`] build the request the worker receives;
//! 5. [`downstream`] filter the worker's response; the glue then logs one line.
//!
//! Phases 1 to 4 run in [`decide`] and [`prepare_forward`] without I/O. Custom domains need a
//! database lookup between phases 2 and 3, which is why they are two functions.

pub mod admit;
pub mod downstream;
pub mod hop_by_hop;
pub mod host;
pub mod route;
pub mod upstream;
pub mod worker_name;

use crate::config::Config;
use crate::error::DispatchError;
use host::Host;
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
    Forward(Forward),
    /// Look the host up as a custom domain, then call [`prepare_forward`].
    CustomDomain,
}

/// A request ready to send to `http://<worker>.spin.internal`.
#[derive(Debug, Clone)]
pub struct Forward {
    pub worker: WorkerName,
    pub kind: RouteKind,
    pub path_and_query: String,
    pub headers: Headers,
}

/// Phases 1 and 2, and for subdomain, path and query dispatch also 3 and 4.
pub fn decide(head: &RequestHead, request_id: &str, config: &Config) -> Decision {
    let mut decision = Decision {
        host: None,
        route: None,
        worker: None,
        outcome: Err(DispatchError::InvalidHost),
    };
    decision.outcome = decide_into(&mut decision, head, request_id, config);
    decision
}

fn decide_into(
    decision: &mut Decision,
    head: &RequestHead,
    request_id: &str,
    config: &Config,
) -> Result<Step, DispatchError> {
    admit::check_target(&head.path_and_query)?;
    admit::check_header_size(&head.headers)?;
    let host = host::normalise(host_of(head)?)?;
    let class = host::classify(&host, config);
    decision.host = Some(host);
    let resolution = route::resolve(&class?, &head.method, &head.path_and_query, config)?;
    match resolution {
        Resolution::Endpoint(endpoint) => {
            decision.route = Some(RouteKind::Api);
            Ok(Step::Endpoint(endpoint))
        }
        Resolution::CustomDomain => {
            decision.route = Some(RouteKind::CustomDomain);
            Ok(Step::CustomDomain)
        }
        Resolution::Worker {
            worker,
            kind,
            path_and_query,
        } => {
            decision.route = Some(kind);
            decision.worker = Some(worker.clone());
            let host = decision.host.as_ref().expect("set above");
            prepare_forward(worker, kind, path_and_query, head, host, request_id, config).map(Step::Forward)
        }
    }
}

/// Phases 3 and 4 for a resolved worker: namespace membership, method, size, then headers.
pub fn prepare_forward(
    worker: WorkerName,
    kind: RouteKind,
    path_and_query: String,
    head: &RequestHead,
    host: &Host,
    request_id: &str,
    config: &Config,
) -> Result<Forward, DispatchError> {
    // The docs component is part of the app, not of the tenants' namespace.
    if kind != RouteKind::Docs && !config.has_worker(&worker) {
        return Err(DispatchError::WorkerNotFound(worker.to_string()));
    }
    admit::check_forwardable_method(&head.method)?;
    admit::check_declared_length(&head.headers, config.max_body_bytes)?;
    let client_ip = upstream::client_ip(&head.headers);
    let provenance = upstream::Provenance {
        host: &host.authority,
        proto: upstream::proto(&head.headers),
        client_ip: client_ip.as_deref(),
        request_id,
    };
    let headers = upstream::headers(&head.headers, &provenance);
    Ok(Forward {
        worker,
        kind,
        path_and_query,
        headers,
    })
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
            "max_body_bytes" => Some("100".into()),
            _ => None,
        })
        .unwrap()
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
        let decision = decide(
            &head(
                "POST",
                "/a?b=1",
                &[
                    ("host", "echo.localhost:3000"),
                    ("x-forwarded-for", "6.6.6.6"),
                    ("spin-client-addr", "127.0.0.1:9"),
                ],
            ),
            "rid",
            &config(),
        );
        assert_eq!(decision.route, Some(RouteKind::Subdomain));
        let Ok(Step::Forward(forward)) = decision.outcome else {
            panic!("{:?}", decision.outcome)
        };
        assert_eq!(forward.worker.as_str(), "echo");
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
        let decision = decide(&head("GET", "/", &[("host", "ghost.localhost")]), "rid", &config());
        assert_eq!(
            decision.outcome.unwrap_err(),
            DispatchError::WorkerNotFound("ghost".into())
        );
        assert_eq!(decision.worker.unwrap().as_str(), "ghost");
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
        let decision = decide(&request, "rid", &config());
        let Ok(Step::Forward(forward)) = decision.outcome else {
            panic!("{:?}", decision.outcome)
        };
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
        let too_big = decide(
            &head("PUT", "/", &[("host", "echo.localhost"), ("content-length", "101")]),
            "rid",
            &config(),
        );
        assert_eq!(
            too_big.outcome.unwrap_err(),
            DispatchError::PayloadTooLarge { limit: 100 }
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
    fn other_hosts_are_custom_domains() {
        let decision = decide(&head("GET", "/", &[("host", "shop.example.com")]), "rid", &config());
        assert!(matches!(decision.outcome, Ok(Step::CustomDomain)));
        assert_eq!(decision.route, Some(RouteKind::CustomDomain));
    }
}
