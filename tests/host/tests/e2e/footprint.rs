//! The dispatcher's linear memory stays small. Spin's pooling allocator writes back up to 2 MiB
//! (`linear_memory_keep_resident`) of every instance's memory after each request, so memory the
//! dispatcher does not need is time spent on every request (see the README's "Performance").

use libra_test_host::wasm_path;
use wasmparser::{ConstExpr, DataKind, Encoding, Operator, Parser, Payload};

const PAGE: u64 = 64 * 1024;

/// Per core module: (initial memory pages, initial `__stack_pointer`, lowest data offset). A
/// module without its own memory (an adapter importing it) gets an entry of its own, so its
/// globals are never taken for another module's.
#[derive(Default, Clone, Copy)]
struct Layout {
    pages: Option<u64>,
    stack_pointer: Option<i32>,
    lowest_data: Option<u64>,
}

fn layouts(package: &str) -> Vec<Layout> {
    let bytes = std::fs::read(wasm_path(package)).expect("build the components first (scripts/test)");
    layouts_of(&bytes)
}

fn layouts_of(bytes: &[u8]) -> Vec<Layout> {
    let mut modules: Vec<Layout> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("a valid component") {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => modules.push(Layout::default()),
            Payload::MemorySection(memories) => {
                let module = modules.last_mut().expect("inside a module");
                module.pages = memories.into_iter().next().map(|m| m.unwrap().initial);
            }
            // The first mutable i32 global of a Rust module is its stack pointer.
            Payload::GlobalSection(globals) => {
                let module = modules.last_mut().expect("inside a module");
                module.stack_pointer = globals
                    .into_iter()
                    .map(Result::unwrap)
                    .find(|g| g.ty.mutable)
                    .and_then(|g| i32_const(&g.init_expr));
            }
            Payload::DataSection(data) => {
                let module = modules.last_mut().expect("inside a module");
                module.lowest_data = data
                    .into_iter()
                    .filter_map(|d| match d.unwrap().kind {
                        DataKind::Active { offset_expr, .. } => i32_const(&offset_expr),
                        DataKind::Passive => None,
                    })
                    .min()
                    .map(|offset| offset as u64);
            }
            _ => {}
        }
    }
    modules
}

/// The initial stack pointer of the program module in a component's bytes (its stack size, as
/// Rust puts the stack first).
pub fn stack_pointer_of(component: &[u8]) -> u64 {
    let with_memory: Vec<Layout> = layouts_of(component)
        .into_iter()
        .filter(|m| m.pages.is_some())
        .collect();
    assert_eq!(with_memory.len(), 1, "one module defines a memory");
    with_memory[0].stack_pointer.expect("a stack pointer") as u64
}

/// The one module that defines a memory: the program's own.
fn program(package: &str) -> Layout {
    let with_memory: Vec<Layout> = layouts(package).into_iter().filter(|m| m.pages.is_some()).collect();
    assert_eq!(with_memory.len(), 1, "{package}: one module defines a memory");
    with_memory[0]
}

fn i32_const(expr: &ConstExpr) -> Option<i32> {
    match expr.get_operators_reader().read().ok()? {
        Operator::I32Const { value } => Some(value),
        _ => None,
    }
}

#[test]
fn the_dispatcher_links_a_small_stack_first_in_memory() {
    let dispatcher = program("libra-dispatcher");
    // Stack first: an overflow runs below address 0 and traps instead of overwriting data.
    let stack_pointer = dispatcher.stack_pointer.expect("a stack pointer") as u64;
    assert_eq!(stack_pointer, 64 * 1024, "build.rs sets a 64 KiB stack");
    assert!(
        dispatcher.lowest_data.expect("data") >= stack_pointer,
        "data lies above the stack"
    );
    let pages = dispatcher.pages.unwrap();
    assert!(pages * PAGE <= 128 * 1024, "initial memory {pages} pages");

    // The control: a component linked with Rust's defaults starts at over a megabyte.
    let default_pages = program("forwarder").pages.unwrap();
    assert!(default_pages * PAGE > 1024 * 1024, "{default_pages} pages");
}
