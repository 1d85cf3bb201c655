//! Forwarding to a worker: over Spin's service chaining (`http://<worker>.spin.internal`, served
//! in-process) for a local one, over real HTTP for a remote one. Bodies stream both ways and are
//! never held whole.

use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, FutureIncomingResponse, IncomingBody, IncomingRequest, IncomingResponse, OutgoingBody, OutgoingRequest,
    OutgoingResponse, RequestOptions, ResponseOutparam, Scheme,
};
use wasi::io::poll::{Pollable, poll};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use super::{Failure, io};
use crate::config::Config;
use crate::error::DispatchError;
use crate::pipeline::namespace::Location;
use crate::pipeline::{Context, Forward, downstream};

const CHUNK: u64 = 64 * 1024;

/// Sends the request to the worker and streams its response back. Before the response starts, a
/// failure is handed back for the caller to answer; after, it can only cut the body short.
pub fn run(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    forward: &Forward,
    ctx: Context,
) -> Result<u16, Failure> {
    let (method, request_id, config) = (&ctx.head.method, ctx.request_id, ctx.config);
    let outgoing = OutgoingRequest::new(io::fields(&forward.headers));
    let _ = outgoing.set_method(&io::method_from_name(method));
    let options = match &forward.location {
        Location::Local => {
            let _ = outgoing.set_scheme(Some(&Scheme::Http));
            let _ = outgoing.set_authority(Some(&[forward.worker.as_str(), ".spin.internal"].concat()));
            // Spin applies no request options to a chained request; the timer below bounds it.
            None
        }
        Location::Remote(origin) => {
            let scheme = match origin.scheme {
                crate::remote::Scheme::Http => Scheme::Http,
                crate::remote::Scheme::Https => Scheme::Https,
            };
            let _ = outgoing.set_scheme(Some(&scheme));
            // The authority is also the `Host` the worker receives (the client's stays in
            // X-Forwarded-Host).
            let _ = outgoing.set_authority(Some(&origin.authority));
            Some(remote_options(config))
        }
    };
    let _ = outgoing.set_path_with_query(Some(&forward.path_and_query));
    let (Ok(body_out), Ok(body_in)) = (outgoing.body(), request.consume()) else {
        return Err((response_out, DispatchError::WorkerFailed));
    };
    let future = match outgoing_handler::handle(outgoing, options) {
        Ok(future) => future,
        Err(code) => return Err((response_out, failure(&code, forward, request_id))),
    };
    let response = match send_body_and_await_response(body_in, body_out, &future, forward, ctx) {
        Ok(response) => response,
        Err(error) => return Err((response_out, error)),
    };
    drop(future);
    let status = response.status();
    let headers = response.headers().entries();
    if downstream::is_worker_failure(status, &headers) {
        return Err((response_out, DispatchError::WorkerFailed));
    }
    Ok(stream_response(
        response,
        status,
        headers,
        response_out,
        forward,
        method,
        request_id,
    ))
}

/// Spin's own bounds for a real network send (it applies none to a chained request): the
/// connection and the response's first byte each within `upstream_timeout_ms`. The dispatcher's
/// timer stays too, and covers the request body's upload.
fn remote_options(config: &Config) -> RequestOptions {
    let options = RequestOptions::new();
    let timeout_ns = config.upstream_timeout_ms.saturating_mul(1_000_000);
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    options
}

/// What a failure to get a response means to the client. For a remote worker: a host that
/// cannot be resolved, refuses the connection or fails TLS is unreachable (502); one that does
/// not answer in time is a timeout (504). For a local one Spin refuses only names the manifest
/// lacks, which means `workers` and `spin.toml` disagree: the worker failed (502).
fn failure(code: &ErrorCode, forward: &Forward, request_id: &str) -> DispatchError {
    if matches!(forward.location, Location::Local) {
        return DispatchError::WorkerFailed;
    }
    // What the host said, for the operator: the access log only has the client's code.
    super::write_log_line(
        serde_json::json!({
            "time": io::now_rfc3339(),
            "level": "warn",
            "requestId": request_id,
            "message": "the remote worker could not be reached or failed",
            "worker": forward.worker.as_str(),
            "cause": format!("{code:?}"),
        })
        .to_string(),
    );
    match code {
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            DispatchError::WorkerTimeout
        }
        ErrorCode::DnsTimeout
        | ErrorCode::DnsError(_)
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::ConnectionRefused
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_)
        | ErrorCode::HttpRequestDenied => DispatchError::WorkerUnreachable,
        _ => DispatchError::WorkerFailed,
    }
}

/// Streams the request body to the worker while waiting for its response, racing both against
/// the upstream timeout: Spin bounds no chained request, so the dispatcher must.
fn send_body_and_await_response(
    body_in: IncomingBody,
    body_out: OutgoingBody,
    future: &FutureIncomingResponse,
    forward: &Forward,
    ctx: Context,
) -> Result<IncomingResponse, DispatchError> {
    let config = ctx.config;
    let deadline = monotonic_clock::subscribe_duration(config.upstream_timeout_ms.saturating_mul(1_000_000));
    let response_ready = future.subscribe();
    let mut pump = Some(BodyPump::new(body_in, body_out, config.max_body_bytes)?);
    loop {
        if let Some(active) = pump.as_mut() {
            if active.advance()? {
                pump = None;
            }
        }
        // The body's pollable is a child of its stream: it must be gone before the pump is.
        let ready = {
            let body_ready = pump.as_ref().map(BodyPump::pollable);
            let mut waiting: Vec<&Pollable> = vec![&deadline, &response_ready];
            waiting.extend(body_ready.as_ref());
            poll(&waiting)
        };
        if ready.contains(&1) {
            // A worker may answer before reading the whole body; the rest is not sent.
            drop(pump);
            return match future.get() {
                Some(Ok(Ok(response))) => Ok(response),
                Some(Ok(Err(code))) => Err(failure(&code, forward, ctx.request_id)),
                _ => Err(DispatchError::WorkerFailed),
            };
        }
        if ready.contains(&0) {
            return Err(DispatchError::WorkerTimeout);
        }
    }
}

enum Waiting {
    Input,
    Output,
}

/// Copies the client's body to the worker, counting bytes against the cap. The bytes move
/// host-side (`splice`), so the guest never holds or even allocates a chunk. Field order matters:
/// a stream must be dropped before the body it belongs to.
struct BodyPump {
    input: InputStream,
    output: Option<OutputStream>,
    _body_in: IncomingBody,
    body_out: Option<OutgoingBody>,
    received: u64,
    max: u64,
    waiting: Waiting,
}

impl BodyPump {
    fn new(body_in: IncomingBody, body_out: OutgoingBody, max: u64) -> Result<BodyPump, DispatchError> {
        let input = body_in.stream().map_err(|_| DispatchError::RequestBodyFailed)?;
        let output = body_out.write().map_err(|_| DispatchError::WorkerFailed)?;
        Ok(BodyPump {
            input,
            output: Some(output),
            _body_in: body_in,
            body_out: Some(body_out),
            received: 0,
            max,
            waiting: Waiting::Input,
        })
    }

    fn pollable(&self) -> Pollable {
        match (&self.waiting, &self.output) {
            (Waiting::Output, Some(output)) => output.subscribe(),
            _ => self.input.subscribe(),
        }
    }

    /// Moves as many bytes as are ready. `Ok(true)` when the body has been sent in full (or the
    /// worker stopped reading it).
    fn advance(&mut self) -> Result<bool, DispatchError> {
        loop {
            let output = self.output.as_ref().expect("present until finished");
            // One byte past the cap is enough to know the body is too large.
            let budget = (self.max - self.received).saturating_add(1).min(CHUNK);
            match output.splice(&self.input, budget) {
                Ok(0) => {
                    // Nothing moved: either no input is ready or the worker is not reading yet.
                    self.waiting = match output.check_write() {
                        Ok(0) => Waiting::Output,
                        Ok(_) => Waiting::Input,
                        Err(_) => return Ok(self.stop_sending()),
                    };
                    return Ok(false);
                }
                Ok(moved) => {
                    self.received += moved;
                    if self.received > self.max {
                        return Err(DispatchError::PayloadTooLarge { limit: self.max });
                    }
                }
                // `Closed` is the client's end of body, or the worker no longer reading.
                Err(StreamError::Closed) => {
                    if output.check_write().is_err() {
                        return Ok(self.stop_sending());
                    }
                    drop(self.output.take());
                    if let Some(body_out) = self.body_out.take() {
                        let _ = OutgoingBody::finish(body_out, None);
                    }
                    return Ok(true);
                }
                Err(StreamError::LastOperationFailed(_)) => {
                    if output.check_write().is_err() {
                        return Ok(self.stop_sending());
                    }
                    return Err(DispatchError::RequestBodyFailed);
                }
            }
        }
    }

    fn stop_sending(&mut self) -> bool {
        drop(self.output.take());
        drop(self.body_out.take());
        true
    }
}

fn stream_response(
    response: IncomingResponse,
    status: u16,
    headers: crate::pipeline::Headers,
    response_out: ResponseOutparam,
    forward: &Forward,
    method: &str,
    request_id: &str,
) -> u16 {
    let shared_origin = forward.kind.shares_dispatcher_origin();
    let headers = downstream::headers(headers, request_id, shared_origin, method == "HEAD");
    let outgoing = OutgoingResponse::new(io::fields(&headers));
    let _ = outgoing.set_status_code(status);
    let (Ok(body_out), Ok(body_in)) = (outgoing.body(), response.consume()) else {
        ResponseOutparam::set(response_out, Ok(outgoing));
        return status;
    };
    ResponseOutparam::set(response_out, Ok(outgoing));
    if method == "HEAD" {
        // A response to HEAD has no content, whatever the worker wrote (RFC 9110, 9.3.2).
        let _ = OutgoingBody::finish(body_out, None);
        return status;
    }
    let (Ok(input), Ok(output)) = (body_in.stream(), body_out.write()) else {
        return status;
    };
    let complete = loop {
        match output.blocking_splice(&input, CHUNK) {
            Ok(_) => continue,
            Err(StreamError::Closed) => break true,
            // The worker failed mid-body: the client must see a cut-off response, not a
            // complete-looking one, so the body is dropped unfinished.
            Err(StreamError::LastOperationFailed(_)) => break false,
        }
    };
    drop(input);
    drop(output);
    if complete {
        let _ = OutgoingBody::finish(body_out, None);
    }
    drop(body_in);
    status
}
