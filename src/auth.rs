//! Bearer-token check for the dispatcher's admin endpoints.

use crate::pipeline::request::Headers;

/// Whether `headers` carry `Authorization: Bearer <token>` for the token whose SHA-256 is
/// `digest`. The presented token is hashed to a fixed-size digest first, and the digests are
/// compared in constant time: the time taken tells neither where the first difference is nor
/// how long the token is.
pub fn is_authorized(headers: &Headers, digest: &[u8; 32]) -> bool {
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
    matches_digest(presented, digest)
}

fn matches_digest(presented: &[u8], digest: &[u8; 32]) -> bool {
    use sha2::{Digest, Sha256};
    let presented = Sha256::digest(presented);
    let difference = presented
        .iter()
        .zip(digest.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Kept opaque so the compiler cannot turn the fold into an early exit.
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> Headers {
        vec![("Authorization".into(), value.as_bytes().to_vec())]
    }

    fn digest(token: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(token.as_bytes()).into()
    }

    #[test]
    fn accepts_only_the_exact_bearer_token() {
        let s3cret = digest("s3cret");
        assert!(is_authorized(&with("Bearer s3cret"), &s3cret));
        assert!(is_authorized(&with("bearer s3cret"), &s3cret));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Bearer ",
            "Basic s3cret",
            "s3cret",
            "Bearer S3CRET",
        ] {
            assert!(!is_authorized(&with(wrong), &s3cret), "{wrong}");
        }
        assert!(!is_authorized(&Vec::new(), &s3cret));
        let twice = vec![
            ("authorization".into(), b"Bearer s3cret".to_vec()),
            ("authorization".into(), b"Bearer x".to_vec()),
        ];
        assert!(!is_authorized(&twice, &s3cret));
    }
}
