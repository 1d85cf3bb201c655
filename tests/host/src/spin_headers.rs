//! What Spin's HTTP trigger does to a request before a component sees it
//! (`crates/trigger-http/src/headers.rs`, `server.rs` `set_req_uri`, `wasi.rs` `prepare_request`).

use std::net::SocketAddr;

use anyhow::{Context, Result};
use http::header::{CONNECTION, HOST};
use http::{HeaderValue, Uri};
use http_body_util::{BodyExt, Empty};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

pub fn is_service_chaining_host(host: &str) -> bool {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host.ends_with(".spin.internal")
}

/// A request whose authority Spin cannot determine (`set_req_uri` in `trigger-http/src/server.rs`):
/// Spin's service fails, and hyper closes the connection without any response.
#[derive(Debug)]
pub struct NoAuthority(pub String);

impl std::fmt::Display for NoAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoAuthority {}

/// The request's authority as Spin determines it: from `Host` (a client's `*.spin.internal` Host
/// is stripped first), else from an absolute-form URI; both present must agree.
pub fn authority(request: &http::Request<WasiBody>) -> Result<http::uri::Authority, NoAuthority> {
    let refuse = |why: &str| NoAuthority(why.to_string());
    let header = request
        .headers()
        .get(HOST)
        .filter(|h| !h.to_str().is_ok_and(is_service_chaining_host));
    let header_authority = match header {
        Some(host) => Some(
            host.to_str()
                .map_err(|_| refuse("'Host' header is not valid UTF-8"))?
                .parse::<http::uri::Authority>()
                .map_err(|_| refuse("'Host' header contains an invalid authority"))?,
        ),
        None => None,
    };
    match (header_authority, request.uri().authority().cloned()) {
        (None, None) => Err(refuse("no 'Host' header present in request")),
        (Some(header), Some(uri)) if header != uri => {
            Err(refuse("authority in 'Host' header does not match authority in URI"))
        }
        (Some(authority), _) | (None, Some(authority)) => Ok(authority),
    }
}

pub fn prepare(request: &mut http::Request<WasiBody>, route: &str, client_addr: SocketAddr) -> Result<()> {
    let authority = authority(request)?;
    let chained_host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(is_service_chaining_host);
    if chained_host {
        request.headers_mut().remove(HOST);
    }
    request.headers_mut().remove(CONNECTION);

    // Spin copies header values as UTF-8 strings and fails the request on any other value.
    for value in request.headers().values() {
        std::str::from_utf8(value.as_bytes()).context("header value is not UTF-8")?;
    }

    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |pq| pq.as_str().to_string());
    let host_for_url = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    *request.uri_mut() = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path_and_query.as_str())
        .build()?;

    let prefix = route.strip_suffix("/...").unwrap_or(route);
    let path = request.uri().path();
    let path_info = path.strip_prefix(prefix).unwrap_or("").to_string();
    let spin_headers = [
        ("spin-path-info", path_info),
        ("spin-full-url", format!("http://{host_for_url}{path_and_query}")),
        ("spin-matched-route", route.to_string()),
        ("spin-base-path", "/".to_string()),
        ("spin-raw-component-route", route.to_string()),
        ("spin-component-route", prefix.to_string()),
        ("spin-client-addr", client_addr.to_string()),
    ];
    // Appended after the client's headers of the same name, exactly as Spin does.
    for (name, value) in spin_headers {
        request.headers_mut().append(name, HeaderValue::from_str(&value)?);
    }
    Ok(())
}

/// Spin's `internal_error` and `not_found`: a bare status with no headers and no body.
pub fn empty_response(status: u16) -> http::Response<HyperOutgoingBody> {
    let mut response = http::Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = http::StatusCode::from_u16(status).expect("valid status");
    response
}
