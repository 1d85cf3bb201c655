//! Spin's key-value stores, through both interfaces Spin offers: `fermyon:spin/key-value` and
//! `wasi:keyvalue` (draft 2: `store` and `atomics`). One `default` store, in memory and shared
//! by every instance of the app, as Spin's per-app store is; a component may open only the
//! stores its manifest lists in `key_value_stores`.
//!
//! As Spin's SQLite store does (`crates/key-value-spin/src/store.rs`), `increment` keeps an
//! 8-byte little-endian value, starts a missing key at 0, and meets a value of any other length
//! by panicking with the store's lock held: every later call of the app fails, through either
//! interface, until it restarts. Here that is an error for the call and every later one.

use wasmtime::component::Resource;

use crate::HostState;
use crate::bindings::fermyon::spin::key_value::{self as spin_kv, Host, HostStore};
use crate::bindings::wasi::keyvalue::{atomics, store};

pub struct KvStore {
    label: String,
}

/// A `wasi:keyvalue` bucket: an open store.
pub struct Bucket {
    label: String,
}

/// Compare-and-swap, which the project never uses (it is broken on Redis in Spin 4.0.2).
pub struct Cas;

impl Host for HostState {}

/// Why a store cannot be opened.
enum Refusal {
    AccessDenied,
    NoSuchStore,
}

impl HostState {
    /// A store `label` this component may open.
    fn may_open(&self, label: &str) -> Result<(), Refusal> {
        let allowed = &self.app.components[&self.component_id].key_value_stores;
        if !allowed.iter().any(|l| l == label) {
            return Err(Refusal::AccessDenied);
        }
        if label != "default" {
            return Err(Refusal::NoSuchStore);
        }
        Ok(())
    }

    fn store_label(&self, store: &Resource<KvStore>) -> Result<String, spin_kv::Error> {
        self.table
            .get(store)
            .map(|s| s.label.clone())
            .map_err(|e| spin_kv::Error::Other(e.to_string()))
    }

    fn bucket_label(&self, bucket: &Resource<Bucket>) -> Result<String, store::Error> {
        self.table
            .get(bucket)
            .map(|b| b.label.clone())
            .map_err(|e| store::Error::Other(e.to_string()))
    }

    /// The store's values, unless an earlier `increment` broke it.
    fn values(&self) -> Result<std::sync::MutexGuard<'_, crate::KeyValues>, String> {
        let values = self.app.key_value.lock().unwrap();
        if values.poisoned {
            return Err("the key-value store is broken until the app restarts".into());
        }
        Ok(values)
    }
}

impl HostStore for HostState {
    async fn open(&mut self, label: String) -> Result<Resource<KvStore>, spin_kv::Error> {
        match self.may_open(&label) {
            Ok(()) => {}
            Err(Refusal::AccessDenied) => return Err(spin_kv::Error::AccessDenied),
            Err(Refusal::NoSuchStore) => return Err(spin_kv::Error::NoSuchStore),
        }
        self.table
            .push(KvStore { label })
            .map_err(|e| spin_kv::Error::Other(e.to_string()))
    }

    async fn get(&mut self, store: Resource<KvStore>, key: String) -> Result<Option<Vec<u8>>, spin_kv::Error> {
        let label = self.store_label(&store)?;
        Ok(self
            .values()
            .map_err(spin_kv::Error::Other)?
            .map
            .get(&(label, key))
            .cloned())
    }

    async fn set(&mut self, store: Resource<KvStore>, key: String, value: Vec<u8>) -> Result<(), spin_kv::Error> {
        let label = self.store_label(&store)?;
        self.values()
            .map_err(spin_kv::Error::Other)?
            .map
            .insert((label, key), value);
        Ok(())
    }

    async fn delete(&mut self, store: Resource<KvStore>, key: String) -> Result<(), spin_kv::Error> {
        let label = self.store_label(&store)?;
        self.values().map_err(spin_kv::Error::Other)?.map.remove(&(label, key));
        Ok(())
    }

    async fn exists(&mut self, store: Resource<KvStore>, key: String) -> Result<bool, spin_kv::Error> {
        let label = self.store_label(&store)?;
        Ok(self
            .values()
            .map_err(spin_kv::Error::Other)?
            .map
            .contains_key(&(label, key)))
    }

    async fn get_keys(&mut self, store: Resource<KvStore>) -> Result<Vec<String>, spin_kv::Error> {
        let label = self.store_label(&store)?;
        Ok(self
            .values()
            .map_err(spin_kv::Error::Other)?
            .map
            .keys()
            .filter(|(l, _)| *l == label)
            .map(|(_, k)| k.clone())
            .collect())
    }

    async fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, store::Error> {
        match self.may_open(&identifier) {
            Ok(()) => {}
            Err(Refusal::AccessDenied) => return Err(store::Error::AccessDenied),
            Err(Refusal::NoSuchStore) => return Err(store::Error::NoSuchStore),
        }
        self.table
            .push(Bucket { label: identifier })
            .map_err(|e| store::Error::Other(e.to_string()))
    }
}

impl store::HostBucket for HostState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, store::Error> {
        let label = self.bucket_label(&bucket)?;
        Ok(self
            .values()
            .map_err(store::Error::Other)?
            .map
            .get(&(label, key))
            .cloned())
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), store::Error> {
        let label = self.bucket_label(&bucket)?;
        self.values()
            .map_err(store::Error::Other)?
            .map
            .insert((label, key), value);
        Ok(())
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), store::Error> {
        let label = self.bucket_label(&bucket)?;
        self.values().map_err(store::Error::Other)?.map.remove(&(label, key));
        Ok(())
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, store::Error> {
        let label = self.bucket_label(&bucket)?;
        Ok(self
            .values()
            .map_err(store::Error::Other)?
            .map
            .contains_key(&(label, key)))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, store::Error> {
        if cursor.is_some() {
            return Err(store::Error::Other("list_keys: cursor not supported".into()));
        }
        let label = self.bucket_label(&bucket)?;
        let keys = self
            .values()
            .map_err(store::Error::Other)?
            .map
            .keys()
            .filter(|(l, _)| *l == label)
            .map(|(_, k)| k.clone())
            .collect();
        Ok(store::KeyResponse { keys, cursor: None })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> Result<i64, store::Error> {
        let label = self.bucket_label(&bucket)?;
        let mut values = self.values().map_err(store::Error::Other)?;
        let current = match values.map.get(&(label.clone(), key.clone())) {
            None => 0,
            Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                Ok(le) => i64::from_le_bytes(le),
                Err(_) => {
                    // Spin's `expect("incorrect length")`, with its lock held.
                    values.poisoned = true;
                    return Err(store::Error::Other("increment of a value that is not 8 bytes".into()));
                }
            },
        };
        let value = current.wrapping_add(delta);
        values.map.insert((label, key), value.to_le_bytes().to_vec());
        Ok(value)
    }

    async fn swap(&mut self, cas: Resource<Cas>, _value: Vec<u8>) -> Result<(), atomics::CasError> {
        self.table
            .delete(cas)
            .map_err(|e| atomics::CasError::StoreError(store::Error::Other(e.to_string())))?;
        Err(atomics::CasError::StoreError(store::Error::Other(
            "compare-and-swap is not offered by the test host".into(),
        )))
    }
}

impl atomics::HostCas for HostState {
    async fn new(&mut self, _bucket: Resource<Bucket>, _key: String) -> Result<Resource<Cas>, store::Error> {
        Err(store::Error::Other(
            "compare-and-swap is not offered by the test host".into(),
        ))
    }

    async fn current(&mut self, _cas: Resource<Cas>) -> Result<Option<Vec<u8>>, store::Error> {
        Err(store::Error::Other(
            "compare-and-swap is not offered by the test host".into(),
        ))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}
