//! The bodies of the dispatcher's own endpoints.

use serde::Serialize;

use crate::config::Config;
use crate::pipeline::worker_name::WorkerName;
use crate::{SERVICE, VERSION};

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Health<'a> {
    pub status: &'static str,
    pub timestamp: &'a str,
    pub service: &'static str,
    pub version: &'static str,
    pub environment: &'a str,
}

pub fn health<'a>(timestamp: &'a str, environment: &'a str) -> Health<'a> {
    Health {
        status: "ok",
        timestamp,
        service: SERVICE,
        version: VERSION,
        environment,
    }
}

/// What the namespace holds and how to address a worker in it. The worker names are not listed:
/// they would tell anyone which tenants exist.
#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NamespaceInfo<'a> {
    pub service: &'static str,
    pub version: &'static str,
    pub namespace: Namespace<'a>,
    pub routing: Routing,
    pub timestamp: &'a str,
    pub request_id: &'a str,
}

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Namespace<'a> {
    pub name: &'a str,
    pub worker_count: usize,
}

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Routing {
    pub subdomain: String,
    pub path: String,
    pub query: String,
}

/// `GET /` for clients that are not browsers: where the API's parts are.
#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Index {
    pub service: &'static str,
    pub version: &'static str,
    /// Relative links: the API's description, its reference, liveness and the namespace.
    pub links: IndexLinks,
}

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct IndexLinks {
    pub openapi: &'static str,
    pub docs: &'static str,
    pub health: &'static str,
    pub dispatch: &'static str,
}

pub fn index() -> Index {
    Index {
        service: SERVICE,
        version: VERSION,
        links: IndexLinks {
            openapi: "/openapi.json",
            docs: "/docs",
            health: "/health",
            dispatch: "/dispatch",
        },
    }
}

/// Whether a client asking for `/` is a browser (it accepts HTML), which is then sent to the
/// API reference instead of a JSON index.
pub fn wants_html(headers: &crate::pipeline::request::Headers) -> bool {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("accept"))
        .any(|(_, value)| {
            value
                .split(|b| *b == b',')
                .any(|item| item.trim_ascii().to_ascii_lowercase().starts_with(b"text/html"))
        })
}

/// The worker name used in examples (the OpenAPI document's too).
pub const EXAMPLE_WORKER: &str = "my-app";

/// `scheme` and `port` come from the request, so the examples have the right shape (locally,
/// `http://my-app.localhost:3000/`). The worker in them is a placeholder, never a real tenant's
/// name: the endpoint must not tell anyone which tenants exist.
pub fn namespace_info<'a>(
    config: &'a Config,
    workers: &[WorkerName],
    namespace: &'a str,
    scheme: &str,
    port: Option<&str>,
    timestamp: &'a str,
    request_id: &'a str,
) -> NamespaceInfo<'a> {
    let example = EXAMPLE_WORKER;
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    NamespaceInfo {
        service: SERVICE,
        version: VERSION,
        namespace: Namespace {
            name: namespace,
            worker_count: workers.len(),
        },
        routing: Routing {
            subdomain: format!("{scheme}://{example}.{}{port}/", config.base_domain),
            path: format!("/dispatch/{example}/"),
            query: format!("/dispatch?worker={example}"),
        },
        timestamp,
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_told_apart_by_their_accept_header() {
        let accept = |value: &str| vec![("Accept".to_string(), value.as_bytes().to_vec())];
        assert!(wants_html(&accept("text/html,application/xhtml+xml,*/*;q=0.8")));
        assert!(wants_html(&accept("application/json, TEXT/HTML;q=0.5")));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&accept("application/json")));
        assert!(!wants_html(&Vec::new()));
    }

    #[test]
    fn a_shared_database_check_round_trips_and_expires() {
        let check = DatabaseCheck {
            status: "ok",
            backend: "sqlite",
            latency_ms: 0.42,
        };
        assert_eq!(DatabaseCheck::decode(&check.encode(10), 9), Some(check.clone()));
        assert_eq!(DatabaseCheck::decode(&check.encode(10), 10), None);
        assert_eq!(DatabaseCheck::decode(b"10 fine sqlite 1", 0), None);
    }

    #[test]
    fn namespace_info_builds_examples_from_the_base_domain() {
        let config = Config::from_lookup(|name| match name {
            "workers" => Some("hello,echo".into()),
            "base_domain" => Some("libra.sh".into()),
            _ => None,
        })
        .unwrap();
        let workers = config.workers().unwrap();
        let info = serde_json::to_value(namespace_info(&config, &workers, "prod", "https", None, "t", "rid")).unwrap();
        assert_eq!(info["namespace"]["name"], "prod");
        assert_eq!(info["namespace"]["workerCount"], 2);
        assert_eq!(info["routing"]["subdomain"], "https://my-app.libra.sh/");
        assert_eq!(info["routing"]["path"], "/dispatch/my-app/");
        assert_eq!(info["routing"]["query"], "/dispatch?worker=my-app");
        assert!(!info.to_string().contains("echo") && !info.to_string().contains("hello"));
        assert_eq!(info["requestId"], "rid");
    }
}

/// `/health/detailed`: what the dispatcher depends on, checked for real.
#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct HealthDetailed<'a> {
    pub status: &'static str,
    pub timestamp: &'a str,
    pub service: &'static str,
    pub version: &'static str,
    pub environment: &'a str,
    pub checks: Checks,
    /// The tenants' circuit breakers that are not closed, when breakers are configured and the
    /// request holds the admin token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakers: Option<Vec<crate::pipeline::limit::OpenBreaker>>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Checks {
    pub database: DatabaseCheck,
    pub namespace: NamespaceCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct DatabaseCheck {
    /// `ok`; `no_table` for the embedded SQLite database before Libra's `project` table exists
    /// (no custom domains yet, which is healthy); or `error`.
    pub status: &'static str,
    /// `postgres`, `sqlite`, `none`, or `unknown` when its settings cannot be read.
    pub backend: &'static str,
    pub latency_ms: f64,
}

/// How long a database check made for an unauthenticated `/health/detailed` is shared.
pub const HEALTH_CHECK_TTL_S: u64 = 5;

impl DatabaseCheck {
    /// `<expires_at> <status> <backend> <latency_ms>`.
    pub fn encode(&self, expires_at: u64) -> Vec<u8> {
        format!("{expires_at} {} {} {}", self.status, self.backend, self.latency_ms).into_bytes()
    }

    /// A check stored by [`DatabaseCheck::encode`] that has not expired at `now`.
    pub fn decode(bytes: &[u8], now: u64) -> Option<DatabaseCheck> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let expires_at: u64 = parts.next()?.parse().ok()?;
        let status = parts.next()?;
        let status = ["ok", "no_table", "error"].into_iter().find(|s| *s == status)?;
        let backend = parts.next()?;
        let backend = ["postgres", "sqlite", "none", "unknown"]
            .into_iter()
            .find(|b| *b == backend)?;
        let latency_ms = parts.next()?.parse().ok()?;
        (now < expires_at).then_some(DatabaseCheck {
            status,
            backend,
            latency_ms,
        })
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct NamespaceCheck {
    /// `ok`; `empty` when the namespace can hold no worker (no local one, no remote source);
    /// `error` when the remote settings are invalid.
    pub status: &'static str,
    /// Local workers: components of this app.
    pub workers: usize,
    /// Where remote workers come from: `none`, `listed` (`remote_workers`), `database`, or
    /// `invalid` (see the log).
    pub remote: &'static str,
}

/// How the namespace finds its remote members, for `/health/detailed`.
pub fn remote_members(remote: &Result<Option<crate::config::Remote>, crate::config::ConfigError>) -> &'static str {
    match remote {
        Ok(None) => "none",
        Ok(Some(remote)) => match remote.members {
            crate::config::RemoteMembers::Listed(_) => "listed",
            crate::config::RemoteMembers::Database => "database",
        },
        Err(_) => "invalid",
    }
}

impl HealthDetailed<'_> {
    pub fn healthy(&self) -> bool {
        self.status == "ok"
    }
}

pub fn health_detailed<'a>(
    timestamp: &'a str,
    environment: &'a str,
    database: DatabaseCheck,
    workers: usize,
    remote: &'static str,
) -> HealthDetailed<'a> {
    let status = match remote {
        "invalid" => "error",
        "none" if workers == 0 => "empty",
        _ => "ok",
    };
    let namespace = NamespaceCheck {
        status,
        workers,
        remote,
    };
    let healthy = database.status != "error" && status == "ok";
    HealthDetailed {
        status: if healthy { "ok" } else { "degraded" },
        timestamp,
        service: SERVICE,
        version: VERSION,
        environment,
        checks: Checks { database, namespace },
        breakers: None,
    }
}
