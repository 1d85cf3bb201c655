//! The benchmark's baseline: a component with no logic that chains every request to the `hello`
//! worker, streaming both ways. Whatever the dispatcher costs on top of this is its own work.
//! With the `outbound-http` feature (the `forwarder-http` package) it sends each request over
//! real HTTP to the authority the request came with instead: the baseline for remote workers.
//! With `chain-by-host` (the `forwarder-stream` package) it chains to the worker named by the
//! first label of the request's host: the streaming benchmark's baseline.

wit_bindgen::generate!({ world: "worker", path: "../../../wit", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};

struct Forwarder;

export!(Forwarder);

impl Guest for Forwarder {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let headers: Vec<(String, Vec<u8>)> = request
            .headers()
            .entries()
            .into_iter()
            .filter(|(name, _)| name != "host")
            .collect();
        let outgoing = OutgoingRequest::new(Fields::from_list(&headers).expect("client headers are valid"));
        outgoing.set_method(&request.method()).expect("valid method");
        outgoing.set_scheme(Some(&Scheme::Http)).expect("valid scheme");
        #[cfg(not(any(feature = "outbound-http", feature = "chain-by-host")))]
        let authority = Some("hello.spin.internal".to_string());
        #[cfg(feature = "chain-by-host")]
        let authority = request
            .authority()
            .and_then(|host| host.split('.').next().map(|worker| format!("{worker}.spin.internal")));
        #[cfg(feature = "outbound-http")]
        let authority = request.authority();
        outgoing.set_authority(authority.as_deref()).expect("valid authority");
        outgoing
            .set_path_with_query(request.path_with_query().as_deref())
            .expect("valid path");
        let request_body = outgoing.body().expect("body is taken once");
        let future = outgoing_handler::handle(outgoing, None).expect("chaining is allowed");
        splice(request.consume().expect("body is consumed once"), request_body);

        future.subscribe().block();
        let response = future.get().expect("ready").expect("once").expect("hello answers");
        let reply = OutgoingResponse::new(response.headers().clone());
        reply.set_status_code(response.status()).expect("valid status");
        let reply_body = reply.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(reply));
        splice(response.consume().expect("body is consumed once"), reply_body);
    }
}

fn splice(from: wasi::http::types::IncomingBody, to: OutgoingBody) {
    let input = from.stream().expect("stream is taken once");
    let output = to.write().expect("stream is taken once");
    while output.blocking_splice(&input, 64 * 1024).is_ok() {}
    drop(input);
    drop(output);
    OutgoingBody::finish(to, None).expect("body completes");
}
