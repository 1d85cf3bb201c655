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

use super::io::{self, Failure};
use super::log;
use crate::config::Limit;
use crate::error::DispatchError;
use crate::pipeline::namespace::Location;
use crate::pipeline::request::Context;
use crate::pipeline::trailers::TrailerPolicy;
use crate::pipeline::{Forward, Limits, downstream, upstream};

/// The most one `splice` moves. Bytes never enter the guest, so this only sets how many rounds
/// of the pump a body takes: at 64 KiB the dispatcher uploaded at 0.80 of the forwarder's rate,
/// at 256 KiB at 1.07 (`scripts/bench stream`, real Spin, paired rounds).
const CHUNK: u64 = 256 * 1024;

/// Sends the request to the worker and streams its response back. Before the response starts, a
/// failure is handed back for the caller to answer; after, it can only cut the body short.
pub fn run(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    forward: &Forward,
    ctx: Context,
    limits: &impl Limits,
) -> Result<(u16, Streamed), Failure> {
    let (method, request_id) = (&ctx.head.method, ctx.request_id);
    let outgoing = OutgoingRequest::new(io::fields(&forward.headers));
    let _ = outgoing.set_method(&io::method_from_name(method));
    let options = match &forward.location {
        Location::Local => {
            let _ = outgoing.set_scheme(Some(&Scheme::Http));
            let _ = outgoing.set_authority(Some(&[forward.worker.as_str(), ".spin.internal"].concat()));
            // Spin applies neither a connect nor a first-byte timeout to a chained request (the
            // timer below bounds the answer), but it does wrap the response body in the
            // between-bytes timer (`factor-outbound-http/src/wasi.rs` l.478-484).
            Some(between_bytes_options(ctx))
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
            Some(remote_options(ctx))
        }
    };
    let _ = outgoing.set_path_with_query(Some(&forward.path_and_query));
    let (Ok(body_out), Ok(body_in)) = (outgoing.body(), request.consume()) else {
        return Err((response_out, DispatchError::WorkerFailed));
    };
    super::phases::mark("request_built");
    let future = match outgoing_handler::handle(outgoing, options) {
        Ok(future) => future,
        Err(code) => return Err((response_out, failure(&code, forward, request_id))),
    };
    super::phases::mark("sent");
    let response = match send_body_and_await_response(body_in, body_out, &future, forward, ctx, limits) {
        Ok(response) => response,
        Err(error) => return Err((response_out, error)),
    };
    super::phases::mark("answered");
    drop(future);
    let status = response.status();
    let headers = response.headers().entries();
    if downstream::is_worker_failure(status, &headers) {
        return Err((response_out, DispatchError::WorkerFailed));
    }
    Ok(stream_response(response, status, headers, response_out, forward, ctx))
}

/// Spin's own bounds for a real network send (it applies none to a chained request): the
/// connection and the response's first byte each within `upstream_timeout_ms`, and no pause in
/// the response body longer than `idle_timeout_ms`. The dispatcher's timers stay too.
fn remote_options(ctx: Context) -> RequestOptions {
    let config = ctx.config;
    let options = RequestOptions::new();
    let timeout_ns = milliseconds(config.upstream_timeout_ms);
    let _ = options.set_connect_timeout(Some(timeout_ns));
    // Spin's first-byte timer runs from the send, so it would charge a slow upload to the worker:
    // it is set only for a request without a body (the dispatcher's own timer starts once the
    // body is in, and bounds the others).
    if is_bodyless(ctx) {
        let _ = options.set_first_byte_timeout(Some(timeout_ns));
    }
    let _ = options.set_between_bytes_timeout(Some(milliseconds(config.idle_timeout_ms)));
    options
}

/// A worker's response body may pause for at most `idle_timeout_ms`; Spin ends it with
/// `connection-read-timeout` after that, so the response stream can wait on the worker alone.
fn between_bytes_options(ctx: Context) -> RequestOptions {
    let options = RequestOptions::new();
    let _ = options.set_between_bytes_timeout(Some(milliseconds(ctx.config.idle_timeout_ms)));
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
    // What the host said, for the operator: the request's line only has the client's code.
    log::warn(
        request_id,
        &crate::pipeline::world::Warning::RemoteWorkerFailed {
            worker: forward.worker.to_string(),
            cause: format!("{code:?}"),
        },
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

/// Streams the request body to the worker while waiting for its response. Two bounds apply,
/// both the dispatcher's own (Spin bounds no chained request):
/// - while the body is on its way, no pause in it may last `idle_timeout_ms`: a client that
///   stops sending gets `408`, a worker that stops reading `504`;
/// - once the body is in, the worker has `upstream_timeout_ms` to answer (`504`). A slow client's
///   upload is never charged to the worker.
fn send_body_and_await_response(
    body_in: IncomingBody,
    body_out: OutgoingBody,
    future: &FutureIncomingResponse,
    forward: &Forward,
    ctx: Context,
    limits: &impl Limits,
) -> Result<IncomingResponse, DispatchError> {
    let config = ctx.config;
    let response_ready = future.subscribe();
    let mut pump = Some(BodyPump::new(body_in, body_out, limits, forward)?);
    let mut idle = IdleTimer::new(milliseconds(config.idle_timeout_ms));
    let mut answer_deadline: Option<Pollable> = None;
    loop {
        if let Some(active) = pump.as_mut() {
            match active.advance()? {
                Pumped::Finished => {
                    pump = None;
                    answer_deadline = Some(monotonic_clock::subscribe_duration(milliseconds(
                        config.upstream_timeout_ms,
                    )));
                }
                Pumped::Moved => idle.moved(),
                Pumped::Nothing => {}
            }
        }
        let ready = match (&answer_deadline, pump.as_mut()) {
            (Some(deadline), _) => poll(&[deadline, &response_ready]),
            (None, Some(active)) => poll(&[idle.pollable(), &response_ready, active.pollable()]),
            (None, None) => unreachable!("the answer deadline is set when the pump finishes"),
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
            match &pump {
                Some(active) if idle.expired() => {
                    return Err(if active.waits_for_client() {
                        DispatchError::RequestTimeout
                    } else {
                        DispatchError::WorkerTimeout
                    });
                }
                Some(_) => {}
                None => return Err(DispatchError::WorkerTimeout),
            }
        }
    }
}

/// The bound on a pause in a body stream. Its timer is armed at the first wait (a body that
/// never waits, such as an empty one, costs none) and re-armed only when it fires after bytes
/// moved, for what is left of the pause since then: a body that keeps moving costs a clock read
/// per chunk, not a timer.
struct IdleTimer {
    idle_ns: u64,
    /// Once armed: the timer, and when bytes last moved (the timer's start until then).
    armed: Option<(Pollable, u64)>,
}

impl IdleTimer {
    fn new(idle_ns: u64) -> IdleTimer {
        IdleTimer { idle_ns, armed: None }
    }

    fn moved(&mut self) {
        if let Some((_, last_moved)) = &mut self.armed {
            *last_moved = monotonic_clock::now();
        }
    }

    fn pollable(&mut self) -> &Pollable {
        let idle_ns = self.idle_ns;
        &self
            .armed
            .get_or_insert_with(|| (monotonic_clock::subscribe_duration(idle_ns), monotonic_clock::now()))
            .0
    }

    /// Called when the timer fired: whether the pause has lasted the whole bound. If not, the
    /// timer is re-armed for the rest of it.
    fn expired(&mut self) -> bool {
        let Some((timer, last_moved)) = &mut self.armed else {
            return false;
        };
        let paused = monotonic_clock::now().saturating_sub(*last_moved);
        if paused >= self.idle_ns {
            return true;
        }
        *timer = monotonic_clock::subscribe_duration(self.idle_ns - paused);
        false
    }
}

/// `Content-Length: 0`, or a `GET`/`HEAD` without one (WASI hides `Transfer-Encoding`).
fn is_bodyless(ctx: Context) -> bool {
    let mut lengths = ctx
        .head
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"));
    match lengths.next() {
        Some((_, value)) => value.trim_ascii() == b"0",
        None => matches!(ctx.head.method.as_str(), "GET" | "HEAD"),
    }
}

fn milliseconds(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

/// What one round of the body pump did.
enum Pumped {
    /// The body has been sent in full (or the worker stopped reading it).
    Finished,
    /// Some bytes moved; more are to come.
    Moved,
    /// Nothing could move: the client has sent nothing new, or the worker is not reading.
    Nothing,
}

enum Waiting {
    Input,
    Output,
}

/// Copies the client's body to the worker, counting bytes against the cap. The bytes move
/// host-side (`splice`), so the guest never holds or even allocates a chunk. Field order matters:
/// a pollable must be dropped before its stream, and a stream before the body it belongs to.
///
/// A body without a declared length asks for the cap when its first byte arrives, so an
/// unusable cap never fails a bodyless request. Until then the pump moves one byte at a time: as
/// with a cap known from the start, at most one byte past it reaches the worker, in a body then
/// cut off. A declared length above 0 has the cap already (admission), so the pump starts with
/// it.
struct BodyPump<'a, L: Limits> {
    /// The streams' pollables, made once and reused for every wait.
    input_ready: Option<Pollable>,
    output_ready: Option<Pollable>,
    input: Option<InputStream>,
    output: Option<OutputStream>,
    body_in: Option<IncomingBody>,
    body_out: Option<OutgoingBody>,
    received: u64,
    /// `None` until the first byte of a body without a declared length arrives.
    max: Option<u64>,
    limits: &'a L,
    waiting: Waiting,
    trailers: TrailerPolicy,
    /// The request came through path or query dispatch (its trailers lose the cookies too).
    shared_origin: bool,
}

impl<'a, L: Limits> BodyPump<'a, L> {
    fn new(
        body_in: IncomingBody,
        body_out: OutgoingBody,
        limits: &'a L,
        forward: &Forward,
    ) -> Result<BodyPump<'a, L>, DispatchError> {
        // Admission checked this length against the same cap.
        let max = match forward.declared_length {
            Some(length) if length > 0 => Some(limits.get(Limit::MaxBodyBytes)?),
            _ => None,
        };
        let input = body_in.stream().map_err(|_| DispatchError::RequestBodyFailed)?;
        let output = body_out.write().map_err(|_| DispatchError::WorkerFailed)?;
        Ok(BodyPump {
            input_ready: None,
            output_ready: None,
            input: Some(input),
            output: Some(output),
            body_in: Some(body_in),
            body_out: Some(body_out),
            received: 0,
            max,
            limits,
            waiting: Waiting::Input,
            trailers: forward.trailers,
            shared_origin: forward.kind.shares_dispatcher_origin(),
        })
    }

    /// What the pump waits for, made at its first wait and reused.
    fn pollable(&mut self) -> &Pollable {
        match self.waiting {
            Waiting::Output => {
                let output = self.output.as_ref().expect("present until finished");
                self.output_ready.get_or_insert_with(|| output.subscribe())
            }
            Waiting::Input => {
                let input = self.input.as_ref().expect("present until finished");
                self.input_ready.get_or_insert_with(|| input.subscribe())
            }
        }
    }

    /// Whether the pump is waiting for the client (rather than for the worker to read).
    fn waits_for_client(&self) -> bool {
        matches!(self.waiting, Waiting::Input)
    }

    /// Moves as many bytes as are ready.
    fn advance(&mut self) -> Result<Pumped, DispatchError> {
        let mut moved_any = false;
        loop {
            let output = self.output.as_ref().expect("present until finished");
            let input = self.input.as_ref().expect("present until finished");
            // One byte past the cap is enough to know the body is too large.
            let budget = match self.max {
                Some(max) => (max - self.received).saturating_add(1).min(CHUNK),
                None => 1,
            };
            match output.splice(input, budget) {
                Ok(0) if moved_any => {
                    // The client has sent nothing new since the bytes just moved: wait for it
                    // without asking the worker's side (as the response stream does). Were the
                    // worker's side full, the next round moves nothing and asks.
                    self.waiting = Waiting::Input;
                    return Ok(Pumped::Moved);
                }
                Ok(0) => {
                    // Nothing moved: either no input is ready or the worker is not reading yet.
                    self.waiting = match output.check_write() {
                        Ok(0) => Waiting::Output,
                        Ok(_) => Waiting::Input,
                        Err(_) => return Ok(self.stop_sending()),
                    };
                    return Ok(Pumped::Nothing);
                }
                Ok(moved) => {
                    moved_any = true;
                    self.received += moved;
                    let max = match self.max {
                        Some(max) => max,
                        None => *self.max.insert(self.limits.get(Limit::MaxBodyBytes)?),
                    };
                    if self.received > max {
                        return Err(DispatchError::PayloadTooLarge { limit: max });
                    }
                }
                // `Closed` is the client's end of body, or the worker no longer reading.
                Err(StreamError::Closed) => {
                    // An empty body without announced trailers ends here, whichever side
                    // closed: finishing a body the worker stopped reading fails harmlessly.
                    let reads_trailers = self.trailers.reads_request_trailers(self.received);
                    if reads_trailers && output.check_write().is_err() {
                        return Ok(self.stop_sending());
                    }
                    self.drop_streams();
                    // The client's trailers go on to the worker.
                    let trailers = match self.body_in.take() {
                        Some(body_in) if reads_trailers => trailers_after_end(body_in)
                            .map(|trailers| upstream::trailers(trailers, self.shared_origin))
                            .filter(|kept| !kept.is_empty())
                            .map(|kept| io::fields(&kept)),
                        _ => None,
                    };
                    if let Some(body_out) = self.body_out.take() {
                        let _ = OutgoingBody::finish(body_out, trailers);
                    }
                    return Ok(Pumped::Finished);
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

    fn stop_sending(&mut self) -> Pumped {
        self.drop_streams();
        drop(self.body_out.take());
        Pumped::Finished
    }

    /// Pollables first, then their streams.
    fn drop_streams(&mut self) {
        drop(self.input_ready.take());
        drop(self.output_ready.take());
        drop(self.output.take());
        drop(self.input.take());
    }
}

/// How a streamed response ended, for the access log.
pub enum Streamed {
    Complete,
    /// The worker failed mid-body: the body was cut short.
    WorkerFailed,
    /// The worker's body paused for longer than `idle_timeout_ms` (the host's between-bytes
    /// timeout ended it): the body was cut short (a complete-looking body would be a lie).
    WorkerStalled,
    /// The client's side stayed full for `idle_timeout_ms`: it stopped reading.
    ClientStalled,
}

impl Streamed {
    /// What the ending says of the worker, for its breaker: it failed or stalled mid-body, or it
    /// answered (a client that stopped reading is no fault of the worker's).
    pub fn outcome(&self) -> crate::limits::breaker::Outcome {
        use crate::limits::breaker::Outcome;
        match self {
            Streamed::Complete | Streamed::ClientStalled => Outcome::Success,
            Streamed::WorkerFailed | Streamed::WorkerStalled => Outcome::Failure,
        }
    }

    pub fn error(&self) -> Option<&'static str> {
        match self {
            Streamed::Complete => None,
            Streamed::WorkerFailed => Some("worker_failed_mid_body"),
            Streamed::WorkerStalled => Some("worker_stalled"),
            Streamed::ClientStalled => Some("client_stalled"),
        }
    }
}

fn stream_response(
    response: IncomingResponse,
    status: u16,
    headers: crate::pipeline::Headers,
    response_out: ResponseOutparam,
    forward: &Forward,
    ctx: Context,
) -> (u16, Streamed) {
    let method = ctx.head.method.as_str();
    let mut headers = downstream::headers(headers, ctx.request_id, forward.exposure(), method == "HEAD");
    headers.extend(forward.response_headers.iter().cloned());
    let outgoing = OutgoingResponse::new(io::fields(&headers));
    let _ = outgoing.set_status_code(status);
    let (Ok(body_out), Ok(body_in)) = (outgoing.body(), response.consume()) else {
        ResponseOutparam::set(response_out, Ok(outgoing));
        return (status, Streamed::Complete);
    };
    if method == "HEAD" {
        ResponseOutparam::set(response_out, Ok(outgoing));
        // A response to HEAD has no content, whatever the worker wrote (RFC 9110, 9.3.2).
        let _ = OutgoingBody::finish(body_out, None);
        return (status, Streamed::Complete);
    }
    let (Ok(input), Ok(output)) = (body_in.stream(), body_out.write()) else {
        ResponseOutparam::set(response_out, Ok(outgoing));
        return (status, Streamed::WorkerFailed);
    };
    // The head goes out after the first splice, which never waits: what the worker has already
    // written is then in the body, and Spin's HTTP server sends head and body in one write. Sent
    // apart, a small body can wait for the client's delayed ACK (Spin does not set TCP_NODELAY):
    // 40 ms on Linux, seen as a p99 of 40 ms at concurrency 1 (`scripts/bench spin`).
    let mut head = Some((response_out, outgoing));
    let idle_ns = milliseconds(ctx.config.idle_timeout_ms);
    // Made at the first wait and reused for every other; dropped before their streams.
    let (mut input_ready, mut output_ready): (Option<Pollable>, Option<Pollable>) = (None, None);
    // Bounds the client's side only: a worker that pauses too long is ended by Spin's
    // between-bytes timer (set on the request), which turns its body into an error.
    let mut client_idle = IdleTimer::new(idle_ns);
    let mut client_gone = false;
    let ended = loop {
        let spliced = output.splice(&input, CHUNK);
        let first_round = head.is_some();
        if let Some((response_out, outgoing)) = head.take() {
            ResponseOutparam::set(response_out, Ok(outgoing));
            super::phases::mark("head_out");
        }
        match spliced {
            // A worker that wrote a small body has usually ended it too by the time it answered:
            // a second splice at once sees the end, with no pollable to make, wait on and drop
            // (three host calls fewer per request; one splice and one check more, once, for a
            // worker still writing). The idle timer is not armed yet, so there is nothing to note.
            Ok(moved) if moved > 0 && first_round => {}
            Ok(moved) => {
                if moved == 0 && matches!(output.check_write(), Ok(0)) {
                    // The client's side is full: wait for room, but not for ever.
                    let ready = output_ready.get_or_insert_with(|| output.subscribe());
                    if poll(&[ready, client_idle.pollable()]) == [1] && client_idle.expired() {
                        break Streamed::ClientStalled;
                    }
                } else {
                    // Moved a chunk, or the worker has nothing new: wait for the worker alone.
                    // One host call per chunk besides the splice, with no timer to arm
                    // (`scripts/bench stream`). If the client's side was full instead, the next
                    // splice moves nothing and asks.
                    if moved > 0 {
                        client_idle.moved();
                    }
                    input_ready.get_or_insert_with(|| input.subscribe()).block();
                }
            }
            // The worker's body ended, or the client went away (its side is closed too). Only a
            // client that takes trailers needs to be told apart from one that left.
            Err(StreamError::Closed) => {
                client_gone = forward.trailers.client_accepts && output.check_write().is_err();
                break Streamed::Complete;
            }
            // The worker failed or paused too long mid-body: the client must see a cut-off
            // response, not a complete-looking one, so the body is dropped unfinished.
            Err(StreamError::LastOperationFailed(error)) => {
                break match wasi::http::types::http_error_code(&error) {
                    Some(ErrorCode::ConnectionReadTimeout) => Streamed::WorkerStalled,
                    _ => Streamed::WorkerFailed,
                };
            }
        }
    };
    super::phases::mark("streamed");
    drop((input_ready, output_ready));
    drop(input);
    drop(output);
    if let Streamed::Complete = ended {
        // The worker's trailers go on to a client that takes them (gRPC's status travels in
        // them); for any other, Spin's HTTP/1.1 server would drop them.
        let trailers = if client_gone || !forward.trailers.client_accepts {
            None
        } else {
            trailers_after_end(body_in)
                .map(|trailers| downstream::trailers(trailers, forward.exposure()))
                .filter(|kept| !kept.is_empty())
                .map(|kept| io::fields(&kept))
        };
        let _ = OutgoingBody::finish(body_out, trailers);
    }
    super::phases::mark("finished");
    (status, ended)
}

/// The trailers of a body whose stream has reached its end, for the pipeline to filter. They
/// are known by then (the stream's last frame was the trailers, or there were none), so the
/// wait returns at once and needs no timer: two host calls fewer than racing one.
fn trailers_after_end(body: IncomingBody) -> Option<crate::pipeline::Headers> {
    let future = IncomingBody::finish(body);
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(trailers))) => trailers.map(|fields| fields.entries()).filter(|list| !list.is_empty()),
        _ => None,
    }
}
