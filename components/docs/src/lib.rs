//! The dispatcher's documentation: `/openapi.json`, the interactive reference at `/docs` (Scalar,
//! served from this component so it works offline) and `/favicon.ico`. It has a private route:
//! the dispatcher forwards these paths to it on dispatcher hosts only, so no tenant host ever
//! shows them. Everything it serves is made at build time (see `build.rs`).

wit_bindgen::generate!({ world: "worker", path: "../../wit", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));
const DOCS_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/docs.html"));
const SCALAR_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scalar.js"));
const SCALAR_JS_GZIP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scalar.js.gz"));
const INIT_SCRIPT_HASH: &str = include_str!(concat!(env!("OUT_DIR"), "/init-script-hash.txt"));
const FAVICON: &[u8] = include_bytes!("../assets/favicon.ico");

/// The reference page may run only its own script and the one inline call that starts it, and
/// may fetch only from this origin: Scalar's default fonts and proxy stay off.
fn docs_policy() -> String {
    format!(
        "default-src 'none'; script-src 'self' {INIT_SCRIPT_HASH}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    /// The same body gzipped, for clients that accept it.
    gzip: Option<&'static [u8]>,
    cache_control: &'static str,
}

fn asset(path: &str) -> Option<Asset> {
    let (content_type, body, gzip, cache_control) = match path {
        "/openapi.json" => ("application/json", OPENAPI_JSON.as_bytes(), None, "no-cache"),
        "/docs" => ("text/html; charset=utf-8", DOCS_HTML.as_bytes(), None, "no-cache"),
        "/docs/scalar.js" => (
            "text/javascript; charset=utf-8",
            SCALAR_JS,
            Some(SCALAR_JS_GZIP),
            "public, max-age=3600",
        ),
        "/favicon.ico" => ("image/x-icon", FAVICON, None, "public, max-age=86400"),
        _ => return None,
    };
    Some(Asset {
        content_type,
        body,
        gzip,
        cache_control,
    })
}

/// Whether an `Accept-Encoding` value lists gzip without refusing it (`q=0`).
fn accepts_gzip(accept_encoding: &[u8]) -> bool {
    let value = String::from_utf8_lossy(accept_encoding).to_ascii_lowercase();
    value.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let refused = |parameter: &str| {
            parameter
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        };
        parts.next() == Some("gzip") && !parts.any(refused)
    })
}

struct Docs;

export!(Docs);

impl Guest for Docs {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_and_query = request.path_with_query().unwrap_or_default();
        let path = path_and_query.split('?').next().unwrap_or_default();
        let method = request.method();
        let head = matches!(method, Method::Head);
        let plain = "text/plain; charset=utf-8";
        let Some(asset) = asset(path) else {
            return respond(response_out, 404, plain, b"not found\n", "no-store", &[], head);
        };
        if !matches!(method, Method::Get | Method::Head) {
            return respond(response_out, 405, plain, b"GET or HEAD\n", "no-store", &[], head);
        }
        let mut extra: Vec<(&str, String)> = Vec::new();
        if path == "/docs" {
            extra.push(("content-security-policy", docs_policy()));
            extra.push(("referrer-policy", "no-referrer".into()));
        }
        let mut body = asset.body;
        if let Some(gzip) = asset.gzip {
            extra.push(("vary", "accept-encoding".into()));
            if request.headers().get("accept-encoding").iter().any(|v| accepts_gzip(v)) {
                extra.push(("content-encoding", "gzip".into()));
                body = gzip;
            }
        }
        respond(
            response_out,
            200,
            asset.content_type,
            body,
            asset.cache_control,
            &extra,
            head,
        );
    }
}

fn respond(
    response_out: ResponseOutparam,
    status: u16,
    content_type: &str,
    body: &[u8],
    cache_control: &str,
    extra: &[(&str, String)],
    head: bool,
) {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("content-type".into(), content_type.as_bytes().to_vec()),
        ("cache-control".into(), cache_control.as_bytes().to_vec()),
        ("x-content-type-options".into(), b"nosniff".to_vec()),
    ];
    // Not for HEAD: a WASI HTTP host checks the body it gets against Content-Length.
    if !head {
        headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    for (name, value) in extra {
        headers.push((name.to_string(), value.as_bytes().to_vec()));
    }
    let response = OutgoingResponse::new(Fields::from_list(&headers).expect("static headers are valid"));
    response.set_status_code(status).expect("valid status");
    let out = response.body().expect("body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    if !head {
        let stream = out.write().expect("stream is taken once");
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(out, None);
}
