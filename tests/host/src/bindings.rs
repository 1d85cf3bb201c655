//! Host bindings for the Spin interfaces in `wit/`, and their registration in a linker.

use anyhow::Result;
use wasmtime::component::{HasSelf, Linker};

use crate::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "libra:test-host/host",
    imports: { default: async },
    with: {
        "fermyon:spin/key-value.store": crate::key_value::KvStore,
        "wasi:keyvalue/store.bucket": crate::key_value::Bucket,
        "wasi:keyvalue/atomics.cas": crate::key_value::Cas,
        "spin:postgres/postgres.connection": crate::postgres::PgConnection,
        "spin:sqlite/sqlite.connection": crate::sqlite::SqliteConnection,
    },
});

pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    fermyon::spin::variables::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    wasi::config::store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    fermyon::spin::key_value::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    wasi::keyvalue::store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    wasi::keyvalue::atomics::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    spin::postgres::postgres::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    spin::sqlite::sqlite::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    Ok(())
}
