//! A 64 KiB stack: Spin resets an instance's linear memory after every request, so memory a
//! worker does not need is time on every request (libra-dispatcher's docs/performance.md).
//! Raise it if the worker recurses deeply; a stack overflow traps, it never corrupts data.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size=65536");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
