//! A tenant worker that answers with JSON describing exactly what it received: method, path,
//! query, headers (lowercase names, repeated values joined by ", "), the body's size and
//! SHA-256, and the body's trailers. Tests use it to see the request a worker gets through the
//! dispatcher. The body is hashed as it streams, so any size can be echoed.

wit_bindgen::generate!({ world: "worker", path: "../../wit", generate_all });

use std::collections::BTreeMap;

use exports::wasi::http::incoming_handler::Guest;
use sha2::{Digest, Sha256};
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::StreamError;

struct Echo;

export!(Echo);

impl Guest for Echo {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_string(), Some(query.to_string())),
            None => (target.clone(), None),
        };
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in request.headers().entries() {
            let value = String::from_utf8_lossy(&value).into_owned();
            headers
                .entry(name.to_ascii_lowercase())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert(value);
        }
        let (bytes, sha256, trailers) = digest_body(&request);
        let report = serde_json::json!({
            "method": method_name(request.method()),
            "path": path,
            "query": query,
            "headers": headers,
            "body": { "bytes": bytes, "sha256": sha256 },
            "trailers": trailers,
        });
        let body = serde_json::to_vec(&report).expect("JSON values serialise");
        let fields = Fields::from_list(&[
            ("content-type".to_string(), b"application/json".to_vec()),
            ("content-length".to_string(), body.len().to_string().into_bytes()),
        ])
        .expect("static headers are valid");
        let response = OutgoingResponse::new(fields);
        let outgoing = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = outgoing.write().expect("stream is taken once");
        for chunk in body.chunks(4096) {
            stream.blocking_write_and_flush(chunk).expect("client reads the report");
        }
        drop(stream);
        OutgoingBody::finish(outgoing, None).expect("body completes");
    }
}

fn digest_body(request: &IncomingRequest) -> (u64, String, BTreeMap<String, String>) {
    let body = request.consume().expect("body is consumed once");
    let stream = body.stream().expect("stream is taken once");
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                bytes += chunk.len() as u64;
                hasher.update(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => panic!("request body broke off"),
        }
    }
    drop(stream);
    let digest: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let future = wasi::http::types::IncomingBody::finish(body);
    future.subscribe().block();
    let trailers = match future.get() {
        Some(Ok(Ok(Some(trailers)))) => trailers
            .entries()
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
            .collect(),
        _ => BTreeMap::new(),
    };
    (bytes, digest, trailers)
}

fn method_name(method: Method) -> String {
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
        Method::Other(other) => other,
    }
}
