//! {{project-description}}
//!
//! A plain `wasi:http/proxy` component, built with wit-bindgen against the dispatcher's `wit/`
//! world. It receives requests from the dispatcher only: `X-Forwarded-Host`,
//! `X-Forwarded-Proto`, `X-Forwarded-For` and `X-Request-Id` are the platform's word.

wit_bindgen::generate!({ world: "worker", path: "../wit", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Worker;

export!(Worker);

impl Guest for Worker {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        let body = format!("Hello from {{project-name | kebab_case}}: {path}\n");
        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("valid headers");
        let response = OutgoingResponse::new(headers);
        let outgoing = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = outgoing.write().expect("stream is taken once");
        stream.blocking_write_and_flush(body.as_bytes()).expect("client reads");
        drop(stream);
        OutgoingBody::finish(outgoing, None).expect("body completes");
    }
}
