//! Build settings for the dispatcher's `.wasm`.
//!
//! 1. A 64 KiB stack. Spin (and the test host, which copies its engine settings) recycles a
//!    component's linear memory after every request by writing back up to
//!    `linear_memory_keep_resident` (2 MiB) of it, so each byte of memory the dispatcher has
//!    costs time on every request. Rust's default 1 MiB stack was most of that memory (see
//!    docs/performance.md). The dispatcher needs less than 16 KiB of stack (the whole test
//!    suite passes with that); 64 KiB leaves four times that. Rust places the stack first in
//!    linear memory, so an overflow traps instead of overwriting data.
//! 2. The namespace of local workers, derived from `spin.toml`: every component with a private
//!    route but `docs`. So `spin add` of a worker is all it takes for it to join (the next
//!    `spin build` rebuilds the dispatcher, as `spin.toml` changed); the `workers` variable
//!    stays as an operator's override.

use std::path::Path;

#[path = "src/docs_component.rs"]
mod docs_component;

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size=65536");
    }
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/docs_component.rs");

    let manifest = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("spin.toml");
    println!("cargo::rerun-if-changed={}", manifest.display());
    let workers = private_components(&manifest).join(",");
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("manifest_workers.rs");
    std::fs::write(
        out,
        format!("/// The private components of `spin.toml` but `docs`, when this was built.\npub const MANIFEST_WORKERS: &str = {workers:?};\n"),
    )
    .expect("OUT_DIR is writable");
}

fn private_components(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let manifest: toml::Table = text.parse().unwrap_or_else(|e| panic!("parsing spin.toml: {e}"));
    let mut workers: Vec<String> = manifest
        .get("trigger")
        .and_then(|t| t.get("http"))
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter(|trigger| {
            trigger
                .get("route")
                .and_then(|r| r.get("private"))
                .and_then(toml::Value::as_bool)
                == Some(true)
        })
        .filter_map(|trigger| trigger.get("component").and_then(toml::Value::as_str))
        .filter(|id| *id != docs_component::DOCS_COMPONENT)
        .map(str::to_string)
        .collect();
    workers.sort();
    workers.dedup();
    workers
}
