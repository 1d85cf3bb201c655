//! One request id per request: the client's when it is safe to reuse, else a fresh UUID v4. It
//! goes to the worker, into every response and into the access log.

use crate::pipeline::request::Headers;

pub const MAX_LEN: usize = 128;

/// The client's `X-Request-Id`, if there is exactly one and it is 1-128 of `[A-Za-z0-9._:-]`
/// (safe in headers, logs and JSON without escaping).
pub fn from_client(headers: &Headers) -> Option<String> {
    let mut ids = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-request-id"));
    let (_, value) = ids.next()?;
    if ids.next().is_some() || !is_valid(value) {
        return None;
    }
    String::from_utf8(value.clone()).ok()
}

pub fn is_valid(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A UUID v4 from 16 random bytes (the host's, from `wasi:random`).
pub fn generate(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> Headers {
        values
            .iter()
            .map(|v| ("X-Request-Id".to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn reuses_a_safe_client_id() {
        assert_eq!(
            from_client(&headers(&["abc-123_x.y:z"])).as_deref(),
            Some("abc-123_x.y:z")
        );
        assert_eq!(from_client(&headers(&[&"a".repeat(128)])).map(|id| id.len()), Some(128));
    }

    #[test]
    fn refuses_unsafe_or_ambiguous_ids() {
        for bad in ["", "has space", "quote\"", "new\nline", "é", &"a".repeat(129)] {
            assert_eq!(from_client(&headers(&[bad])), None, "{bad:?}");
        }
        assert_eq!(from_client(&headers(&["a", "b"])), None);
        assert_eq!(from_client(&Vec::new()), None);
    }

    #[test]
    fn generates_uuid_v4() {
        let id = generate([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert!(is_valid(id.as_bytes()));
        assert_ne!(generate([1; 16]), generate([2; 16]));
        let id = generate([
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        ]);
        assert_eq!(id, "01234567-89ab-4def-8123-456789abcdef");
    }
}
