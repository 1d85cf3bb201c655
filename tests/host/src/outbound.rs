//! Real outbound HTTP for components (remote workers), as Spin 4.0.2 sends it
//! (`crates/factor-outbound-http/src/wasi.rs`): `allowed_outbound_hosts` checked on the URL;
//! the host resolved (first through the app's own host table, the test host's `/etc/hosts`, so
//! tests can point names at loopback); connect, first-byte and between-bytes timeouts from the
//! request options (600 s each when unset); `Host` rewritten from the authority without a
//! default port; redirects never followed; and Spin's error codes for each failure. Plain HTTP
//! only: the tests' remote workers do not speak TLS.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether `allowed` (entries of `allowed_outbound_hosts`, templates already expanded) lets a
/// component send to `uri`. Mirrors `outbound-networking-config/src/allowed_hosts.rs`: scheme
/// `*` or exact; host `*`, `*.suffix` (not the bare suffix) or literal; port `*`, a number, or
/// the scheme's well-known port when left out.
pub fn is_allowed(allowed: &[String], uri: &http::Uri) -> bool {
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return false;
    };
    let port = uri.port_u16().or_else(|| well_known_port(scheme));
    allowed.iter().any(|entry| {
        let Some((entry_scheme, rest)) = entry.trim().split_once("://") else {
            return false;
        };
        let (entry_host, entry_port) = rest.trim_end_matches('/').rsplit_once(':').unwrap_or((rest, ""));
        let scheme_ok = entry_scheme == "*" || entry_scheme == scheme;
        let host_ok = match entry_host.strip_prefix("*.") {
            _ if entry_host == "*" => true,
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => entry_host.eq_ignore_ascii_case(host),
        };
        let port_ok = match entry_port {
            "*" => true,
            "" => well_known_port(entry_scheme).is_some() && port == well_known_port(entry_scheme),
            number => number.parse::<u16>().ok() == port,
        };
        scheme_ok && host_ok && port_ok
    })
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" => Some(5432),
        _ => None,
    }
}

/// Sends `request` over a new connection and gives the response as a component receives it.
pub async fn send(
    hosts: &BTreeMap<String, IpAddr>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, Error> {
    let uri = request.uri().clone();
    if uri.scheme_str() != Some("http") {
        return Err(Error::InternalError(Some("the test host sends plain HTTP only".into())));
    }
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(80);
    let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(DEFAULT_TIMEOUT);

    // Spin's first-byte timer wraps everything up to the response head, connecting included.
    let exchange = async move {
        // A host table, like the one the tests give a real Spin, is all there is: other names
        // fail at once, as they do there with no name server answering.
        let addresses: Vec<SocketAddr> = match hosts.get(&host) {
            Some(ip) => vec![SocketAddr::new(*ip, port)],
            None if !hosts.is_empty() => return Err(dns_error()),
            None => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| dns_error())?
                .collect(),
        };
        let stream = match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&*addresses)).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Err(_)) => return Err(Error::ConnectionRefused),
            Ok(Ok(stream)) => stream,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Error::HttpProtocolError)?;
        tokio::spawn(connection);
        // What hyper-util's client does in Spin: `Host` from the authority, default port dropped.
        let authority = match uri.port_u16() {
            Some(80) | None => host.clone(),
            Some(port) => format!("{host}:{port}"),
        };
        request.headers_mut().remove(http::header::HOST);
        request.headers_mut().insert(
            http::header::HOST,
            authority.parse().map_err(|_| Error::HttpRequestUriInvalid)?,
        );
        *request.uri_mut() = uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .parse()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        sender.send_request(request).await.map_err(|_| Error::HttpProtocolError)
    };
    let response = tokio::time::timeout(first_byte_timeout, exchange)
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    Ok(response.map(|body| {
        let body = body.map_err(|_| Error::HttpProtocolError).boxed_unsync();
        between_bytes(body, options)
    }))
}

fn dns_error() -> Error {
    Error::DnsError {
        rcode: Some("address not available".into()),
        info_code: Some(0),
    }
}

/// A response body that fails with `ConnectionReadTimeout` when no frame comes for `limit`, as
/// Spin 4.0.2 wraps every response a component receives, chained ones included
/// (`wasmtime-wasi-http` 44 `p2/body.rs` `BodyWithTimeout`; `factor-outbound-http/src/wasi.rs`
/// l.478-484 gives a chained response the request's `between-bytes-timeout`).
pub fn between_bytes(body: WasiBody, options: Option<RequestOptions>) -> WasiBody {
    BetweenBytes {
        body,
        limit: options.and_then(|o| o.between_bytes_timeout).unwrap_or(DEFAULT_TIMEOUT),
        restart: true,
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
    }
    .boxed_unsync()
}

struct BetweenBytes {
    body: WasiBody,
    limit: Duration,
    /// Set when a frame came: the pause is timed from the next poll, as in Spin, so a reader
    /// that waits elsewhere (for a slow client) is not charged for its own pause.
    restart: bool,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for BetweenBytes {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        if self.restart {
            let deadline = tokio::time::Instant::now() + self.limit;
            self.timer.as_mut().reset(deadline);
            self.restart = false;
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
        }
        let result = Pin::new(&mut self.body).poll_frame(cx);
        self.restart = result.is_ready();
        result
    }
}

/// `wasi:http/types.http-error-code` as Spin 4.0.2 answers it. There (wasmtime-wasi-http 44) a
/// body that fails mid-stream leaves its `error-code` in the stream error, so a component can
/// tell a between-bytes timeout from other failures. wasmtime 48 leaves its own `Error` type
/// there instead, and its `http-error-code` finds no code; this shadows it to find either.
pub fn add_http_error_code<T: wasmtime_wasi_http::WasiHttpView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> anyhow::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
    linker.allow_shadowing(true);
    linker.instance("wasi:http/types@0.2.12")?.func_wrap(
        "http-error-code",
        |mut store: wasmtime::StoreContextMut<'_, T>, (error,): (Resource<wasmtime::Error>,)| {
            let error = store.data_mut().http().table.get(&error)?;
            let code = match error.downcast_ref::<Error>() {
                Some(error) => Some(p2_error_code(error)),
                None => error.downcast_ref::<ErrorCode>().cloned(),
            };
            Ok((code,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The codes a failing body can carry in this host (`BetweenBytes`, hyper, a callee's trap).
fn p2_error_code(error: &Error) -> wasmtime_wasi_http::p2::bindings::http::types::ErrorCode {
    use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
    match error {
        Error::ConnectionReadTimeout => ErrorCode::ConnectionReadTimeout,
        Error::ConnectionTerminated => ErrorCode::ConnectionTerminated,
        Error::HttpProtocolError => ErrorCode::HttpProtocolError,
        Error::HttpResponseIncomplete => ErrorCode::HttpResponseIncomplete,
        other => ErrorCode::InternalError(Some(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str], url: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        is_allowed(&entries, &url.parse().unwrap())
    }

    #[test]
    fn allowed_hosts_match_as_spin_matches_them() {
        assert!(allowed(&["http://*.workers.test:8081"], "http://a.workers.test:8081/x"));
        assert!(!allowed(&["http://*.workers.test:8081"], "http://workers.test:8081/"));
        assert!(!allowed(&["http://*.workers.test:8081"], "http://a.workers.test:8082/"));
        assert!(allowed(&["https://*.fermyon.app"], "https://libra-a.fermyon.app/"));
        assert!(!allowed(&["https://*.fermyon.app"], "http://libra-a.fermyon.app/"));
        assert!(allowed(&["http://x.test"], "http://x.test:80/"));
        assert!(!allowed(&["http://x.test"], "http://x.test:8080/"));
        assert!(allowed(&["*://*:*"], "http://anything:1/"));
        assert!(!allowed(&["https://remote-workers.invalid"], "http://a.workers.test/"));
    }
}
