//! Which trailers are worth waiting for. On Spin, reading a body's trailers is six host calls
//! after its end (finish, subscribe, block, get and two drops), paid on every request even
//! though almost none has any: a request or a response whose trailers no one will receive
//! skips them.
//!
//! - **The client's trailers** go on to the worker unless the body was empty and the request
//!   announced none with `Trailer` (RFC 9110 6.6.2: a sender should announce them). An upload
//!   always has its trailers read; a bodyless `GET` does not wait for trailers it cannot have.
//!   What is given up: trailers after an empty body that no `Trailer` header announced (a
//!   chunked `0` chunk followed by fields, or their HTTP/2 equivalent).
//! - **The worker's trailers** go on to a client that accepts them, `TE: trailers` (RFC 9110
//!   10.1.4). Over HTTP/1.1 Spin's server (hyper) sends response trailers only to such a client
//!   and drops them otherwise, so nothing it would have sent is lost; gRPC clients always send
//!   it, over HTTP/2 too. What is given up: an HTTP/2 client that takes trailers without saying
//!   so (hyper's HTTP/2 server would send them to any client).
//!
//! Trailers that are read are filtered as headers are (`upstream::trailers`,
//! `downstream::trailers`), so neither direction can carry in a trailer what a header may not.

use crate::pipeline::request::Headers;

/// What a request says about trailers, read from its headers once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrailerPolicy {
    /// The request has a `Trailer` header: its body ends with trailers, even an empty body.
    pub request_announced: bool,
    /// The client sent `TE: trailers`: it receives the response's trailers.
    pub client_accepts: bool,
}

impl TrailerPolicy {
    pub fn of(headers: &Headers) -> TrailerPolicy {
        let mut policy = TrailerPolicy::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("trailer") {
                policy.request_announced |= !value.trim_ascii().is_empty();
            } else if name.eq_ignore_ascii_case("te") {
                policy.client_accepts |= value
                    .split(|b| *b == b',')
                    .any(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"trailers"));
            }
        }
        policy
    }

    /// Whether the client's trailers are read once its body has ended, `bytes` long.
    pub fn reads_request_trailers(self, bytes: u64) -> bool {
        bytes > 0 || self.request_announced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(&str, &str)]) -> TrailerPolicy {
        TrailerPolicy::of(
            &pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn a_client_accepts_trailers_only_by_saying_so() {
        assert!(!of(&[]).client_accepts);
        assert!(of(&[("TE", "trailers")]).client_accepts);
        assert!(of(&[("te", "gzip;q=0.5, Trailers")]).client_accepts);
        assert!(of(&[("te", "gzip"), ("te", " trailers ")]).client_accepts);
        assert!(!of(&[("te", "gzip, trailersx")]).client_accepts);
        assert!(!of(&[("x-te", "trailers")]).client_accepts);
    }

    #[test]
    fn request_trailers_are_read_after_any_body_or_when_announced() {
        let plain = of(&[]);
        assert!(!plain.reads_request_trailers(0));
        assert!(plain.reads_request_trailers(1));
        let announced = of(&[("Trailer", "x-checksum")]);
        assert!(announced.request_announced);
        assert!(announced.reads_request_trailers(0));
        assert!(!of(&[("trailer", "  ")]).request_announced);
    }
}
