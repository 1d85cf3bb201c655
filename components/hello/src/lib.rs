//! A tenant worker that serves one HTML page. Built with wit-bindgen straight from the
//! `wasi:http/proxy` world in `wit/`: a worker needs nothing Spin-specific, so this same `.wasm`
//! also runs under `wasmtime serve`.

wit_bindgen::generate!({ world: "worker", path: "../../wit", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Hello;

export!(Hello);

impl Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = request.headers();
        let first = |name: &str| {
            headers
                .get(name)
                .into_iter()
                .next()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let host = first("x-forwarded-host").unwrap_or_else(|| "this host".into());
        let request_id = first("x-request-id").unwrap_or_default();
        let page = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Hello from libra</title></head>\n\
             <body>\n<h1>Hello from the <code>hello</code> worker</h1>\n\
             <p>You reached it at <code>{}</code>; request id <code>{}</code>.</p>\n</body>\n</html>\n",
            escape(&host),
            escape(&request_id)
        );
        let head = matches!(request.method(), wasi::http::types::Method::Head);
        let mut fields = vec![("content-type".to_string(), b"text/html; charset=utf-8".to_vec())];
        // Not for HEAD: the host checks the body it gets (none) against Content-Length.
        if !head {
            fields.push(("content-length".to_string(), page.len().to_string().into_bytes()));
        }
        let fields = Fields::from_list(&fields).expect("static headers are valid");
        let response = OutgoingResponse::new(fields);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));
        if !head {
            let stream = body.write().expect("stream is taken once");
            for chunk in page.as_bytes().chunks(4096) {
                stream.blocking_write_and_flush(chunk).expect("client reads the page");
            }
        }
        OutgoingBody::finish(body, None).expect("body completes");
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
