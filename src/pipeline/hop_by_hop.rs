//! Hop-by-hop headers (RFC 9110 7.6.1) describe one connection and must not be forwarded, in
//! either direction, together with any header the `Connection` header names. `Trailer` is not
//! one (RFC 2616's list had it; RFC 9110 6.6.2 makes it end-to-end): it announces the trailer
//! fields of this message, and HTTP/1.1 servers send only the fields it announces, so it must
//! travel with the trailers.

use crate::pipeline::request::Headers;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// The hop-by-hop headers of one message: the fixed list, plus whatever its `Connection` headers
/// name. Nothing is allocated unless a `Connection` header names something.
pub struct HopByHop {
    named_by_connection: Vec<String>,
}

impl HopByHop {
    pub fn of(headers: &Headers) -> HopByHop {
        let mut named_by_connection = Vec::new();
        for (_, value) in headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        {
            named_by_connection.extend(
                String::from_utf8_lossy(value)
                    .split(',')
                    .map(str::trim)
                    .filter(|token| !token.is_empty())
                    .map(str::to_string),
            );
        }
        HopByHop { named_by_connection }
    }

    pub fn contains(&self, name: &str) -> bool {
        HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || self.named_by_connection.iter().any(|h| name.eq_ignore_ascii_case(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_headers_named_by_connection() {
        let headers: Headers = vec![("Connection".into(), b"keep-alive, X-Secret , ".to_vec())];
        let hop_by_hop = HopByHop::of(&headers);
        assert!(hop_by_hop.contains("x-secret"));
        assert!(hop_by_hop.contains("X-SECRET"));
        assert!(hop_by_hop.contains("Transfer-Encoding"));
        assert!(!hop_by_hop.contains("content-type"));
        assert!(!HopByHop::of(&Vec::new()).contains("x-secret"));
    }
}
