//! The shared store of limits and breakers (`crate::limits::store`) over Spin's
//! `wasi:keyvalue` (draft 2): the `default` store, granted to the dispatcher alone. Opened at the
//! first call a request makes, so a request without limits never opens it.

use spin_sdk::wit::wasi::keyvalue::{atomics, store};

use crate::limits::store::{SharedStore, StoreError};

/// The store's label: the custom-domain cache's too (keys do not overlap: each kind has its own
/// prefix). Spin 4.0.2 gives an app `default` without a runtime configuration, and on Redis
/// every replica shares it.
const LABEL: &str = "default";

#[derive(Default)]
pub struct KvStore {
    bucket: Option<Result<store::Bucket, StoreError>>,
}

impl KvStore {
    fn bucket(&mut self) -> Result<&store::Bucket, StoreError> {
        self.bucket
            .get_or_insert_with(|| store::open(LABEL).map_err(|_| StoreError))
            .as_ref()
            .map_err(|error| *error)
    }
}

impl SharedStore for KvStore {
    fn increment(&mut self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(self.bucket()?, key, delta).map_err(|_| StoreError)
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bucket()?.get(key).map_err(|_| StoreError)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.bucket()?.set(key, value).map_err(|_| StoreError)
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.bucket()?.delete(key).map_err(|_| StoreError)
    }
}
