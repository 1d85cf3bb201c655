//! Spin's key-value store (`fermyon:spin/key-value`): the `default` store, in memory and shared
//! by every instance of the app, as Spin's per-app store is. A component may open only the stores
//! its manifest lists in `key_value_stores`.

use wasmtime::component::Resource;

use crate::HostState;
use crate::bindings::fermyon::spin::key_value::{Error, Host, HostStore};

pub struct KvStore {
    label: String,
}

impl Host for HostState {}

impl HostState {
    fn store_label(&self, store: &Resource<KvStore>) -> Result<String, Error> {
        self.table
            .get(store)
            .map(|s| s.label.clone())
            .map_err(|e| Error::Other(e.to_string()))
    }
}

impl HostStore for HostState {
    async fn open(&mut self, label: String) -> Result<Resource<KvStore>, Error> {
        let allowed = &self.app.components[&self.component_id].key_value_stores;
        if !allowed.contains(&label) {
            return Err(Error::AccessDenied);
        }
        if label != "default" {
            return Err(Error::NoSuchStore);
        }
        self.table
            .push(KvStore { label })
            .map_err(|e| Error::Other(e.to_string()))
    }

    async fn get(&mut self, store: Resource<KvStore>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let label = self.store_label(&store)?;
        Ok(self.app.key_value.lock().unwrap().get(&(label, key)).cloned())
    }

    async fn set(&mut self, store: Resource<KvStore>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let label = self.store_label(&store)?;
        self.app.key_value.lock().unwrap().insert((label, key), value);
        Ok(())
    }

    async fn delete(&mut self, store: Resource<KvStore>, key: String) -> Result<(), Error> {
        let label = self.store_label(&store)?;
        self.app.key_value.lock().unwrap().remove(&(label, key));
        Ok(())
    }

    async fn exists(&mut self, store: Resource<KvStore>, key: String) -> Result<bool, Error> {
        let label = self.store_label(&store)?;
        Ok(self.app.key_value.lock().unwrap().contains_key(&(label, key)))
    }

    async fn get_keys(&mut self, store: Resource<KvStore>) -> Result<Vec<String>, Error> {
        let label = self.store_label(&store)?;
        Ok(self
            .app
            .key_value
            .lock()
            .unwrap()
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
