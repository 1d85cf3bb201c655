//! A worker that misbehaves on request, for the dispatcher's failure tests. Never deployed: the
//! test host adds it to the namespace.
//!
//! - `/trap`: traps before answering.
//! - `/hang`: never answers (waits on a clock far in the future, without burning CPU).
//! - `/stream?bytes=N`: answers 200 with N bytes, written in chunks as the client reads them.
//! - `/sink`: reads the request body to its end and answers 200 with its size in bytes, so an
//!   upload costs the worker as little as a download does (the streaming benchmark).
//! - `/trap-mid-body`: sends headers and a first chunk, then traps.
//! - `/cookie`: answers 200 with `Set-Cookie` and HTML, to see what path dispatch lets through.
//! - `/status/N`: answers status N with a small body.
//! - `/redirect`: answers 302 to `http://elsewhere.test/`, which a proxy must pass on, not follow.
//! - `/stall-mid-body`: sends headers and a first chunk, then stops sending (without trapping).
//! - `/trailers`: answers 200 with a body and the trailers `x-checksum: 42`, and a `set-cookie`
//!   and an `x-request-id` that no client may get.
//! - `/headers`: answers 200 with the response headers named in the query (`?name=value&...`).
//! - `/burn?ms=N`: keeps the CPU busy for N ms, then answers 200 (a CPU-heavy tenant, for the
//!   noisy-neighbour benchmark).
//!
//! Every request first writes `faulty <path>` to stdout, so a test can count the calls that
//! reached it (on Spin, in `<state>/logs/faulty_stdout.txt`).

wit_bindgen::generate!({ world: "worker", path: "../../../wit", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Faulty;

export!(Faulty);

impl Guest for Faulty {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let _ = wasi::cli::stdout::get_stdout().blocking_write_and_flush(format!("faulty {path}\n").as_bytes());
        match path {
            "/burn" => {
                let ms: u64 = query.strip_prefix("ms=").and_then(|n| n.parse().ok()).unwrap_or(0);
                let until = wasi::clocks::monotonic_clock::now() + ms * 1_000_000;
                let mut spins = 0u64;
                while wasi::clocks::monotonic_clock::now() < until {
                    // Work between clock reads, so the time goes to the guest's own code.
                    for i in 0..10_000u64 {
                        spins = std::hint::black_box(spins.wrapping_mul(31).wrapping_add(i));
                    }
                }
                let body = respond(response_out, 200, &[("content-type", "text/plain")]);
                write_all(body, format!("burnt {ms} ms ({})", spins % 10).as_bytes());
            }
            "/trap" => panic!("the faulty worker traps on purpose"),
            "/hang" => {
                wasi::clocks::monotonic_clock::subscribe_duration(24 * 3600 * 1_000_000_000).block();
                unreachable!("a day passed");
            }
            "/stream" => {
                let bytes: u64 = query.strip_prefix("bytes=").and_then(|n| n.parse().ok()).unwrap_or(0);
                let stream_body = respond(
                    response_out,
                    200,
                    &[
                        ("content-type", "application/octet-stream"),
                        ("content-length", &bytes.to_string()),
                    ],
                );
                write_pattern(stream_body, bytes, false);
            }
            "/sink" => {
                let body = request.consume().expect("body is consumed once");
                let stream = body.stream().expect("stream is taken once");
                let mut bytes = 0u64;
                // Ends when the body does (closed) or fails; a short count tells the client.
                while let Ok(chunk) = stream.blocking_read(256 * 1024) {
                    bytes += chunk.len() as u64;
                }
                drop(stream);
                drop(body);
                let body = respond(response_out, 200, &[("content-type", "text/plain")]);
                write_all(body, bytes.to_string().as_bytes());
            }
            "/trap-mid-body" => {
                let body = respond(
                    response_out,
                    200,
                    &[
                        ("content-type", "application/octet-stream"),
                        ("content-length", "1000000"),
                    ],
                );
                write_pattern(body, 65_536, true);
            }
            "/stall-mid-body" => {
                let body = respond(
                    response_out,
                    200,
                    &[
                        ("content-type", "application/octet-stream"),
                        ("content-length", "1000000"),
                    ],
                );
                let stream = body.write().expect("stream is taken once");
                stream.blocking_write_and_flush(&[7u8; 1000]).expect("client reads");
                wasi::clocks::monotonic_clock::subscribe_duration(24 * 3600 * 1_000_000_000).block();
                unreachable!("a day passed");
            }
            "/trailers" => {
                // HTTP/1.1 servers (hyper) send only the trailer fields announced in `Trailer`.
                let body = respond(
                    response_out,
                    200,
                    &[
                        ("content-type", "text/plain"),
                        ("trailer", "x-checksum, set-cookie, x-request-id"),
                    ],
                );
                let stream = body.write().expect("stream is taken once");
                stream.blocking_write_and_flush(b"with trailers").expect("client reads");
                drop(stream);
                let trailers = Fields::from_list(&[
                    ("x-checksum".to_string(), b"42".to_vec()),
                    ("set-cookie".to_string(), b"session=stolen; Domain=localhost".to_vec()),
                    ("x-request-id".to_string(), b"worker-made".to_vec()),
                ])
                .expect("valid");
                OutgoingBody::finish(body, Some(trailers)).expect("body completes");
            }
            "/headers" => {
                let pairs: Vec<(String, String)> = query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(n, v)| (n.to_string(), percent_decode(v)))
                    .collect();
                let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                let body = respond(response_out, 200, &pairs);
                write_all(body, b"headers as asked");
            }
            "/redirect" => {
                let body = respond(response_out, 302, &[("location", "http://elsewhere.test/")]);
                write_all(body, b"");
            }
            "/cookie" => {
                let body = respond(
                    response_out,
                    200,
                    &[("content-type", "text/html"), ("set-cookie", "tenant=faulty; Path=/")],
                );
                write_all(body, b"<script>document.title='ran'</script>");
            }
            _ => {
                let status = path
                    .strip_prefix("/status/")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(404);
                let body = respond(response_out, status, &[("content-type", "text/plain")]);
                write_all(body, format!("faulty worker answered {status}").as_bytes());
            }
        }
    }
}

/// `%XX` escapes (enough for header values in a test's query).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                out.push(u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(response_out: ResponseOutparam, status: u16, headers: &[(&str, &str)]) -> OutgoingBody {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    let response = OutgoingResponse::new(Fields::from_list(&list).expect("valid headers"));
    response.set_status_code(status).expect("valid status");
    let body = response.body().expect("body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    body
}

fn write_all(body: OutgoingBody, bytes: &[u8]) {
    let stream = body.write().expect("stream is taken once");
    for chunk in bytes.chunks(4096) {
        stream.blocking_write_and_flush(chunk).expect("client reads");
    }
    drop(stream);
    OutgoingBody::finish(body, None).expect("body completes");
}

/// Writes `total` bytes of a repeating pattern (byte i is i % 251), 64 KiB at a time.
fn write_pattern(body: OutgoingBody, total: u64, then_trap: bool) {
    let stream = body.write().expect("stream is taken once");
    let chunk: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(chunk.len() as u64) as usize;
        let mut offset = 0;
        while offset < n {
            let permit = stream.blocking_check_write(&chunk[offset..n]);
            offset += permit;
        }
        sent += n as u64;
    }
    if then_trap {
        panic!("the faulty worker traps mid-body on purpose");
    }
    stream.blocking_flush().expect("client reads");
    drop(stream);
    OutgoingBody::finish(body, None).expect("body completes");
}

trait BlockingWrite {
    /// Waits until the stream takes some of `bytes`, writes that much and returns how much.
    fn blocking_check_write(&self, bytes: &[u8]) -> usize;
}

impl BlockingWrite for wasi::io::streams::OutputStream {
    fn blocking_check_write(&self, bytes: &[u8]) -> usize {
        loop {
            let permit = self.check_write().expect("client reads") as usize;
            if permit == 0 {
                self.subscribe().block();
                continue;
            }
            let n = permit.min(bytes.len());
            self.write(&bytes[..n]).expect("client reads");
            return n;
        }
    }
}
