//! Bearer-token check for the dispatcher's admin endpoints.

use crate::pipeline::request::Headers;

/// Whether `headers` carry `Authorization: Bearer <token>`. An empty token means no auth is
/// configured. Both sides are hashed to fixed-size SHA-256 digests first, and the digests are
/// compared in constant time: the time taken tells neither where the first difference is nor
/// how long the token is.
pub fn is_authorized(headers: &Headers, token: &str) -> bool {
    if token.is_empty() {
        return true;
    }
    let mut values = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    let (Some((_, value)), None) = (values.next(), values.next()) else {
        return false;
    };
    let Some(presented) = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|_| &value[7..])
    else {
        return false;
    };
    constant_time_eq(presented, token.as_bytes())
}

fn constant_time_eq(presented: &[u8], token: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(presented), Sha256::digest(token));
    let difference = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Kept opaque so the compiler cannot turn the fold into an early exit.
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> Headers {
        vec![("Authorization".into(), value.as_bytes().to_vec())]
    }

    #[test]
    fn accepts_only_the_exact_bearer_token() {
        assert!(is_authorized(&Vec::new(), ""));
        assert!(is_authorized(&with("Bearer s3cret"), "s3cret"));
        assert!(is_authorized(&with("bearer s3cret"), "s3cret"));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Bearer ",
            "Basic s3cret",
            "s3cret",
            "Bearer S3CRET",
        ] {
            assert!(!is_authorized(&with(wrong), "s3cret"), "{wrong}");
        }
        assert!(!is_authorized(&Vec::new(), "s3cret"));
        let twice = vec![
            ("authorization".into(), b"Bearer s3cret".to_vec()),
            ("authorization".into(), b"Bearer x".to_vec()),
        ];
        assert!(!is_authorized(&twice, "s3cret"));
    }
}
