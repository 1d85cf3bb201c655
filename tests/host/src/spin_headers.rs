//! What Spin's HTTP trigger does to a request before a component sees it
//! (`crates/trigger-http/src/headers.rs`, `server.rs` `set_req_uri`, `wasi.rs` `prepare_request`).

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use http::header::{CONNECTION, HOST};
use http::{HeaderValue, Uri};
use http_body_util::{BodyExt, Empty};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

pub fn is_service_chaining_host(host: &str) -> bool {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host.ends_with(".spin.internal")
}

pub fn prepare(request: &mut http::Request<WasiBody>, route: &str, client_addr: SocketAddr) -> Result<()> {
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

    // The authority comes from `Host`, or else from the URI; Spin refuses a request with neither.
    let header_authority = match request.headers().get(HOST) {
        Some(host) => Some(
            host.to_str()
                .context("'Host' is not valid")?
                .parse::<http::uri::Authority>()
                .context("'Host' is not an authority")?,
        ),
        None => None,
    };
    let authority = match (header_authority, request.uri().authority().cloned()) {
        (Some(header), _) => header,
        (None, Some(uri)) => uri,
        (None, None) => bail!("no 'Host' header present in request"),
    };
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
