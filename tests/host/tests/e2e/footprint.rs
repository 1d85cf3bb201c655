//! The dispatcher's linear memory stays small. Spin's pooling allocator writes back up to 2 MiB
//! (`linear_memory_keep_resident`) of every instance's memory after each request, so memory the
//! dispatcher does not need is time spent on every request (see the README's "Performance").

use libra_test_host::wasm_path;
use wasmparser::{ConstExpr, Operator, Parser, Payload};

const PAGE: u64 = 64 * 1024;

/// Per core module: (initial memory pages, initial `__stack_pointer`, lowest data offset).
fn layout(package: &str) -> Vec<(u64, Option<i32>, Option<u64>)> {
    let bytes = std::fs::read(wasm_path(package)).expect("build the components first (scripts/test)");
    let mut modules = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.expect("a valid component") {
            Payload::MemorySection(memories) => {
                for memory in memories {
                    modules.push((memory.unwrap().initial, None, None));
                }
            }
            // The first mutable i32 global of a Rust module is its stack pointer.
            Payload::GlobalSection(globals) => {
                let stack_pointer = globals
                    .into_iter()
                    .map(Result::unwrap)
                    .find(|g| g.ty.mutable)
                    .and_then(|g| i32_const(&g.init_expr));
                if let Some(module) = modules.last_mut() {
                    module.1 = stack_pointer;
                }
            }
            Payload::DataSection(data) => {
                let lowest = data
                    .into_iter()
                    .filter_map(|d| match d.unwrap().kind {
                        wasmparser::DataKind::Active { offset_expr, .. } => i32_const(&offset_expr),
                        wasmparser::DataKind::Passive => None,
                    })
                    .min();
                if let Some(module) = modules.last_mut() {
                    module.2 = lowest.map(|offset| offset as u64);
                }
            }
            _ => {}
        }
    }
    modules
}

fn i32_const(expr: &ConstExpr) -> Option<i32> {
    match expr.get_operators_reader().read().ok()? {
        Operator::I32Const { value } => Some(value),
        _ => None,
    }
}

#[test]
fn the_dispatcher_links_a_small_stack_first_in_memory() {
    let modules = layout("libra-dispatcher");
    let (pages, stack_pointer, lowest_data) = modules
        .iter()
        .copied()
        .find(|(pages, _, _)| *pages > 0)
        .expect("the dispatcher has a memory");
    // Stack first: an overflow runs below address 0 and traps instead of overwriting data.
    let stack_pointer = stack_pointer.expect("a stack pointer") as u64;
    assert_eq!(stack_pointer, 64 * 1024, "build.rs sets a 64 KiB stack");
    assert!(lowest_data.expect("data") >= stack_pointer, "data lies above the stack");
    assert!(pages * PAGE <= 128 * 1024, "initial memory {pages} pages");

    // The control: a component linked with Rust's defaults starts at over a megabyte.
    let (default_pages, _, _) = layout("forwarder")
        .into_iter()
        .find(|(pages, _, _)| *pages > 0)
        .unwrap();
    assert!(default_pages * PAGE > 1024 * 1024, "{default_pages} pages");
}
