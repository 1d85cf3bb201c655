//! libra-dispatcher: one Spin component that receives all of a platform's traffic and sends each
//! request to the tenant worker it belongs to.
//!
//! The request path is a proxy pipeline with named phases, each in its own module under
//! [`pipeline`]: classify the host, resolve the worker, admit the request (limits, methods),
//! forward it (upstream headers), then filter the response and log one line. Everything here but
//! `glue` is plain Rust with no Spin or WASI types, so it is unit-tested on the host; `glue` is the
//! thin layer that talks to Spin and moves bytes.

pub mod api;
pub mod arena;
pub mod auth;
pub mod cache;
pub mod config;
pub mod custom_domain;
pub mod docs_component;
pub mod error;
pub mod hostname;
pub mod limits;
pub mod log;
pub mod membership;
#[cfg(not(target_arch = "wasm32"))]
pub mod openapi;
pub mod pipeline;
pub mod postgres_url;
pub mod remote;
pub mod request_id;
pub mod settings_table;
pub mod time;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod glue;

/// Reported by `/health` and `/dispatch`.
pub const SERVICE: &str = "libra-dispatcher";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
