//! Link settings for the dispatcher's `.wasm`.
//!
//! Spin (and the test host, which copies its engine settings) recycles a component's linear
//! memory after every request by writing back up to `linear_memory_keep_resident` (2 MiB) of
//! it, so each byte of memory the dispatcher has costs time on every request. Rust's default
//! 1 MiB stack was most of that memory, and made the dispatcher's instance cost several times
//! what its own work did (see the README's "Performance"). The dispatcher needs less than
//! 16 KiB of stack (the whole test suite passes with that); 64 KiB leaves four times that.
//! Rust places the stack first in linear memory, so an overflow traps instead of overwriting data.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size=65536");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
