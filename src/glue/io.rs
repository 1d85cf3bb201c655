//! Conversions between WASI HTTP resources and the pipeline's plain types, and small writers.

use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

use crate::error::{DispatchError, PROBLEM_CONTENT_TYPE};
use crate::pipeline::request::{Headers, RequestHead};

/// A response not yet sent and the error to answer it with: what a step hands back when it
/// fails before its response has started.
pub type Failure = (ResponseOutparam, DispatchError);

pub fn request_head(request: &IncomingRequest) -> RequestHead {
    RequestHead {
        method: method_name(&request.method()),
        authority: request.authority(),
        path_and_query: request.path_with_query().unwrap_or_else(|| "/".into()),
        headers: request.headers().entries(),
    }
}

pub fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.clone(),
    }
}

pub fn method_from_name(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// Builds a header set. One call in the common case; if the host refuses the list (a name or
/// value it forbids), the headers are added one by one and only the refused ones are left out.
pub fn fields(headers: &Headers) -> Fields {
    if let Ok(fields) = Fields::from_list(headers) {
        return fields;
    }
    let fields = Fields::new();
    for (name, value) in headers {
        let _ = fields.append(name, value);
    }
    fields
}

pub fn now_rfc3339() -> String {
    let now = wasi::clocks::wall_clock::now();
    crate::time::rfc3339_millis(now.seconds, now.nanoseconds)
}

/// Sends a complete response the dispatcher wrote itself. `HEAD` gets the headers only.
pub fn send(response_out: ResponseOutparam, status: u16, mut headers: Headers, body: &[u8], method: &str) -> u16 {
    let with_body = method != "HEAD";
    if with_body {
        headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let response = OutgoingResponse::new(fields(&headers));
    let _ = response.set_status_code(status);
    let Ok(outgoing_body) = response.body() else {
        return status;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if with_body {
        if let Ok(stream) = outgoing_body.write() {
            // blocking-write-and-flush takes at most 4096 bytes a call.
            for chunk in body.chunks(4096) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    return status;
                }
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing_body, None);
    status
}

/// A JSON body of the dispatcher's own, with `extra` headers (CORS).
pub fn send_json(
    response_out: ResponseOutparam,
    status: u16,
    body: &[u8],
    request_id: &str,
    method: &str,
    extra: &Headers,
) -> u16 {
    let mut headers = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        ("cache-control".to_string(), b"no-store".to_vec()),
        ("x-request-id".to_string(), request_id.as_bytes().to_vec()),
    ];
    headers.extend(extra.iter().cloned());
    send(response_out, status, headers, body, method)
}

/// A problem document, with `extra` headers (CORS).
pub fn send_problem(
    response_out: ResponseOutparam,
    error: &DispatchError,
    request_id: &str,
    method: &str,
    extra: &Headers,
) -> u16 {
    let mut headers = vec![
        ("content-type".to_string(), PROBLEM_CONTENT_TYPE.as_bytes().to_vec()),
        ("cache-control".to_string(), b"no-store".to_vec()),
        ("x-request-id".to_string(), request_id.as_bytes().to_vec()),
    ];
    headers.extend(extra.iter().cloned());
    headers.extend(
        error
            .extra_headers()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.into_bytes())),
    );
    send(
        response_out,
        error.status(),
        headers,
        error.problem_json(request_id).as_bytes(),
        method,
    )
}
