//! Bearer-token check for the dispatcher's admin endpoints.

use crate::pipeline::Headers;

/// Whether `headers` carry `Authorization: Bearer <token>`. An empty token means no auth is
/// configured. The comparison takes the same time wherever the first difference is, so the
/// token cannot be guessed byte by byte from response times.
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        difference |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    difference == 0
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
