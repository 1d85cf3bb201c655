//! The shared state limits and breakers keep between requests. Spin starts a fresh instance for
//! every request, so whatever must outlive one lives in a key-value store, and with several
//! replicas that store is shared (Redis). What the store may be asked is narrow on purpose: on
//! Spin 4.0.2, compare-and-swap is broken on Redis and `get_many` too, nothing expires, and the
//! SQLite store panics (and stays broken until restart) when `increment` meets a value that is
//! not the 8 bytes it writes itself. So counters are only ever incremented and deleted, markers
//! only ever set and deleted, and the two never share a key.
//!
//! The trait is the seam: the glue implements it over `wasi:keyvalue`, the tests in memory.

use std::collections::BTreeMap;

/// The store failed (unreachable, refused, broken). Why is the host's business: the request
/// only needs to know it has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreError;

pub trait SharedStore {
    /// Adds `delta` to the counter at `key` (a missing key counts from 0) and gives the new
    /// value, atomically: on Redis across every replica (`INCRBY`).
    fn increment(&mut self, key: &str, delta: i64) -> Result<i64, StoreError>;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Never called on a counter's key.
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;

    /// A counter's value, `None` when it does not exist. A value no increment wrote reads as
    /// absent: it can only lower what the counter says for a moment, never break the store.
    fn count(&mut self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.get(key)?.and_then(|bytes| decode_counter(&bytes)))
    }
}

/// A counter as `increment` left it: Spin's SQLite store writes 8 bytes, little-endian; Redis
/// keeps the decimal text `INCRBY` works on. The two cannot be confused for any count a limiter
/// reaches: 8 little-endian bytes of a count below 2^56 end in a zero byte, which no decimal
/// text contains.
pub fn decode_counter(bytes: &[u8]) -> Option<i64> {
    if let Ok(le) = <[u8; 8]>::try_from(bytes) {
        if le[7] == 0 || le[7] == 0xff {
            return Some(i64::from_le_bytes(le));
        }
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// How a [`MemoryStore`] writes counters, as the two stores Spin offers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 8 bytes, little-endian (Spin's SQLite store).
    Sqlite,
    /// Decimal text (Redis).
    Redis,
}

/// The store in memory, for tests: it counts its calls and can be made to fail.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    pub values: BTreeMap<String, Vec<u8>>,
    pub encoding: Encoding,
    /// Every call fails while this is set, as a store that is down does.
    pub failing: bool,
    /// Calls made, failed ones included.
    pub calls: usize,
}

impl MemoryStore {
    pub fn new(encoding: Encoding) -> MemoryStore {
        MemoryStore {
            values: BTreeMap::new(),
            encoding,
            failing: false,
            calls: 0,
        }
    }

    /// The keys that start with `prefix`.
    pub fn keys_under(&self, prefix: &str) -> Vec<&str> {
        self.values
            .keys()
            .filter(|key| key.starts_with(prefix))
            .map(String::as_str)
            .collect()
    }

    fn call(&mut self) -> Result<(), StoreError> {
        self.calls += 1;
        if self.failing { Err(StoreError) } else { Ok(()) }
    }
}

impl SharedStore for MemoryStore {
    fn increment(&mut self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.call()?;
        let current = match self.values.get(key) {
            None => 0,
            // Spin's SQLite store panics here; a test that gets this far has a bug.
            Some(bytes) => decode_counter(bytes).expect("increment on a value no increment wrote"),
        };
        let value = current.wrapping_add(delta);
        let bytes = match self.encoding {
            Encoding::Sqlite => value.to_le_bytes().to_vec(),
            Encoding::Redis => value.to_string().into_bytes(),
        };
        self.values.insert(key.to_string(), bytes);
        Ok(value)
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.call()?;
        Ok(self.values.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.call()?;
        self.values.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.call()?;
        self.values.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_read_back_in_either_encoding() {
        for encoding in [Encoding::Sqlite, Encoding::Redis] {
            let mut store = MemoryStore::new(encoding);
            assert_eq!(store.count("c"), Ok(None));
            assert_eq!(store.increment("c", 5), Ok(5));
            assert_eq!(store.increment("c", -6), Ok(-1));
            assert_eq!(store.count("c"), Ok(Some(-1)), "{encoding:?}");
        }
        assert_eq!(decode_counter(&12_345_678i64.to_le_bytes()), Some(12_345_678));
        assert_eq!(decode_counter(b"12345678"), Some(12_345_678), "8 digits are text");
        assert_eq!(decode_counter(b"42"), Some(42));
        for junk in [&b""[..], b"-", b"4x", b" 4", b"\xff\xfe"] {
            assert_eq!(decode_counter(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_failing_store_fails_every_call() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        store.failing = true;
        assert_eq!(store.increment("c", 1), Err(StoreError));
        assert_eq!(store.get("c"), Err(StoreError));
        assert_eq!(store.calls, 2);
    }
}
