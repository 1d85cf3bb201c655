//! Service chaining: a component's outbound request to `http://<id>.spin.internal` is served
//! in-process by component `<id>` (Spin's `crates/trigger-http/src/outbound_http.rs`), subject to
//! the caller's `allowed_outbound_hosts` (`crates/outbound-networking-config`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::AppInner;

const CHAINED_CLIENT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

pub struct Hooks {
    app: Arc<AppInner>,
    caller: String,
}

impl Hooks {
    pub fn new(app: Arc<AppInner>, caller: &str) -> Hooks {
        Hooks {
            app,
            caller: caller.to_string(),
        }
    }
}

/// `Some(id)` for `<id>.spin.internal` (port ignored).
fn chaining_target(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?;
    let id = host.strip_suffix(".spin.internal")?;
    (!id.is_empty() && !id.contains('.')).then(|| id.to_string())
}

enum Permission {
    /// Allowed by a wildcard only: an unknown id is simply not allowed.
    Wildcard,
    /// Named explicitly: Spin routes it even when no such component exists, and fails.
    Explicit,
    Denied,
}

fn permission(allowed: &[String], scheme: &str, id: &str) -> Permission {
    let mut result = Permission::Denied;
    for entry in allowed {
        let Some((entry_scheme, rest)) = entry.split_once("://") else {
            continue;
        };
        if entry_scheme != "*" && entry_scheme != scheme {
            continue;
        }
        let host = rest.split(['/', ':']).next().unwrap_or("");
        if host == format!("{id}.spin.internal") {
            return Permission::Explicit;
        }
        if host == "*.spin.internal" || host == "*" {
            result = Permission::Wildcard;
        }
    }
    result
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                )>,
            > + Send,
    > {
        let app = self.app.clone();
        let caller = self.caller.clone();
        Box::new(async move {
            if app.variables.prepare_fails() {
                eprintln!("test host: Error resolving variables when checking request against allowed outbound hosts");
                return Err(Error::HttpRequestDenied);
            }
            let Some(id) = chaining_target(request.uri()) else {
                // A real network send (a remote worker).
                let uri = request.uri().clone();
                app.outbound_log.lock().unwrap().push(format!(
                    "{}://{}",
                    uri.scheme_str().unwrap_or("http"),
                    uri.authority().map_or("", |a| a.as_str())
                ));
                if !crate::outbound::is_allowed(&app.components[&caller].allowed_outbound_hosts, &uri) {
                    eprintln!("test host: Outbound network destination not allowed: {uri}");
                    return Err(Error::HttpRequestDenied);
                }
                let response = crate::outbound::send(&app.hosts, request, options).await?;
                return Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = Result<(), Error>> + Send>,
                ));
            };
            let scheme = request.uri().scheme_str().unwrap_or("http").to_string();
            app.outbound_log
                .lock()
                .unwrap()
                .push(format!("{scheme}://{id}.spin.internal"));
            let allowed = &app.components[&caller].allowed_outbound_hosts;
            let known = app.components.contains_key(&id);
            match (permission(allowed, &scheme, &id), known) {
                (Permission::Denied, _) | (Permission::Wildcard, false) => {
                    eprintln!("test host: Outbound network destination not allowed: {scheme}://{id}.spin.internal");
                    return Err(Error::HttpRequestDenied);
                }
                // Spin traps the caller here ("unknown routing destination"); wasmtime 48's
                // hooks cannot trap, so the guest gets an error instead.
                (Permission::Explicit, false) => {
                    return Err(Error::InternalError(Some(format!(
                        "unknown routing destination '{id}'"
                    ))));
                }
                _ => {}
            }
            let response = app.clone().serve(&id, "/...", request, CHAINED_CLIENT_ADDR).await;
            Ok((
                response.map(|body| crate::outbound::between_bytes(body, options)),
                Box::new(async { Ok(()) }) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
