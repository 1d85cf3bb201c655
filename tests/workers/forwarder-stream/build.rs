//! The dispatcher's stack size (see the root `build.rs`), nothing else.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size=65536");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
