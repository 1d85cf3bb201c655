//! Spin's key-value stores, as the pipeline uses them: the `default` store through
//! `fermyon:spin/key-value` as the cache of database answers, and through `wasi:keyvalue` (draft
//! 2) as the shared store of rate limits and breakers (its `increment` is atomic; the keys of
//! the two uses never overlap). The store is granted to the dispatcher alone, and each handle is
//! opened at its first use, so a request that needs neither opens neither.

use spin_sdk::key_value::Store;
use spin_sdk::wit::wasi::keyvalue::{atomics, store};

use crate::limits::store::{SharedStore, StoreError};
use crate::pipeline::world::CacheStore;

/// The store's label. Spin 4.0.2 gives an app `default` without a runtime configuration, and on
/// Redis every replica shares it.
const LABEL: &str = "default";

/// The cache. A store that cannot be opened is an empty cache: it only costs queries.
#[derive(Default)]
pub struct Cache {
    store: Option<Option<Store>>,
}

impl Cache {
    fn store(&mut self) -> Option<&Store> {
        self.store.get_or_insert_with(|| Store::open_default().ok()).as_ref()
    }
}

impl CacheStore for Cache {
    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.store()?.get(key).ok().flatten()
    }

    fn set(&mut self, key: &str, value: &[u8]) {
        if let Some(store) = self.store() {
            let _ = store.set(key, value);
        }
    }

    fn delete(&mut self, key: &str) {
        if let Some(store) = self.store() {
            let _ = store.delete(key);
        }
    }
}

/// The shared store of limits and breakers.
#[derive(Default)]
pub struct Shared {
    bucket: Option<Result<store::Bucket, StoreError>>,
}

impl Shared {
    fn bucket(&mut self) -> Result<&store::Bucket, StoreError> {
        self.bucket
            .get_or_insert_with(|| store::open(LABEL).map_err(|_| StoreError))
            .as_ref()
            .map_err(|error| *error)
    }
}

impl SharedStore for Shared {
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
