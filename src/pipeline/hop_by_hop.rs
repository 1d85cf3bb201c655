//! Hop-by-hop headers (RFC 9110 7.6.1) describe one connection and must not be forwarded, in
//! either direction, together with any header the `Connection` header names.

use crate::pipeline::Headers;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The lowercase header names that are hop-by-hop for this message.
pub fn names(headers: &Headers) -> Vec<String> {
    let mut names: Vec<String> = HOP_BY_HOP.iter().map(|n| (*n).to_string()).collect();
    for (_, value) in headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
    {
        let tokens = String::from_utf8_lossy(value);
        names.extend(
            tokens
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty()),
        );
    }
    names
}

pub fn is_listed(name: &str, hop_by_hop: &[String]) -> bool {
    hop_by_hop.iter().any(|h| name.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_headers_named_by_connection() {
        let headers: Headers = vec![("Connection".into(), b"keep-alive, X-Secret , ".to_vec())];
        let names = names(&headers);
        assert!(is_listed("x-secret", &names));
        assert!(is_listed("Transfer-Encoding", &names));
        assert!(!is_listed("content-type", &names));
    }
}
