#[test]
fn imports() {
    let engine = wasmtime::Engine::default();
    for p in ["libra_dispatcher", "hello"] {
        let c = wasmtime::component::Component::from_file(&engine, libra_test_host::wasm_path(p)).unwrap();
        let ty = c.component_type();
        for (name, _) in ty.imports(&engine) { println!("{p} import {name}"); }
        for (name, _) in ty.exports(&engine) { println!("{p} export {name}"); }
    }
}
