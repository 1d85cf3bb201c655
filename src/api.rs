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

/// `scheme` and `port` come from the request, so the examples work as printed (locally,
/// `http://my-app.localhost:3000/`).
pub fn namespace_info<'a>(
    config: &'a Config,
    workers: &[WorkerName],
    namespace: &'a str,
    scheme: &str,
    port: Option<&str>,
    timestamp: &'a str,
    request_id: &'a str,
) -> NamespaceInfo<'a> {
    let example = workers.first().map_or("my-app", WorkerName::as_str);
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
        assert_eq!(info["routing"]["subdomain"], "https://echo.libra.sh/");
        assert_eq!(info["routing"]["path"], "/dispatch/echo/");
        assert_eq!(info["routing"]["query"], "/dispatch?worker=echo");
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
}

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Checks {
    pub database: DatabaseCheck,
    pub namespace: NamespaceCheck,
}

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct DatabaseCheck {
    /// `ok` or `error`.
    pub status: &'static str,
    /// `postgres`, `sqlite` or `none`.
    pub backend: &'static str,
    pub latency_ms: f64,
}

#[derive(Debug, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct NamespaceCheck {
    /// `ok`, or `empty` when no worker is deployed.
    pub status: &'static str,
    pub workers: usize,
}

impl HealthDetailed<'_> {
    pub fn healthy(&self) -> bool {
        self.checks.database.status == "ok" && self.checks.namespace.status == "ok"
    }
}

pub fn health_detailed<'a>(
    timestamp: &'a str,
    environment: &'a str,
    database: DatabaseCheck,
    workers: usize,
) -> HealthDetailed<'a> {
    let namespace = NamespaceCheck {
        status: if workers > 0 { "ok" } else { "empty" },
        workers,
    };
    let healthy = database.status == "ok" && workers > 0;
    HealthDetailed {
        status: if healthy { "ok" } else { "degraded" },
        timestamp,
        service: SERVICE,
        version: VERSION,
        environment,
        checks: Checks { database, namespace },
    }
}
