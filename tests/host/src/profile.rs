//! Where a guest's instructions go, by call stack: a deterministic profiler for the footprint
//! budgets (`scripts/bench profile`), which count instructions rather than time.
//!
//! Fuel counts the instructions; an epoch deadline that is always due hands control to the host
//! at every function entry and loop header of the guest, where the profiler reads the fuel left
//! and the WebAssembly stack. The fuel spent since the previous stop is charged to the stack seen
//! there. Wasmtime writes its fuel counter back to the store only around calls, so the work of a
//! loop is charged at the next call or return: inclusive figures hold to the function, and a
//! function's self figure may take in the tail of a callee that returned to it, or give its
//! own tail to the next callee. Two builds profiled alike compare well, which is what it is for.

use std::collections::BTreeMap;

use wasmtime::{Store, UpdateDeadline, WasmBacktrace};

use crate::HostState;

/// One invocation's stops.
pub(crate) struct Profiler {
    fuel_left: u64,
    stack: String,
    charged: BTreeMap<String, u64>,
}

impl Profiler {
    pub(crate) fn new(fuel: u64) -> Profiler {
        Profiler {
            fuel_left: fuel,
            stack: "(entry)".to_string(),
            charged: BTreeMap::new(),
        }
    }

    fn stop(&mut self, fuel_left: u64, backtrace: &WasmBacktrace) {
        self.charge(fuel_left);
        self.stack = folded(backtrace);
    }

    fn charge(&mut self, fuel_left: u64) {
        let spent = self.fuel_left.saturating_sub(fuel_left);
        if spent > 0 {
            *self.charged.entry(self.stack.clone()).or_default() += spent;
        }
        self.fuel_left = fuel_left;
    }

    /// The invocation has ended with `fuel_left`: its stacks and what each spent.
    pub(crate) fn finish(mut self, fuel_left: u64) -> BTreeMap<String, u64> {
        self.charge(fuel_left);
        self.charged
    }
}

/// The stack, outermost frame first, as `a;b;c` (the "folded" format flame-graph tools read).
fn folded(backtrace: &WasmBacktrace) -> String {
    let names: Vec<String> = backtrace
        .frames()
        .iter()
        .rev()
        .map(|frame| match frame.func_name() {
            Some(name) => format!("{:#}", rustc_demangle::demangle(name)).replace(';', ":"),
            None => format!("{}#{}", frame.module().name().unwrap_or("?"), frame.func_index()),
        })
        .collect();
    if names.is_empty() {
        "(host)".to_string()
    } else {
        names.join(";")
    }
}

/// Makes the store stop at every function entry and loop header for its profiler. The engine
/// must be compiled with epoch interruption and fuel.
pub(crate) fn attach(store: &mut Store<HostState>) {
    store.set_epoch_deadline(0);
    store.epoch_deadline_callback(|mut context| {
        let fuel_left = context.get_fuel()?;
        let backtrace = WasmBacktrace::capture(&context);
        if let Some(profiler) = context.data_mut().profiler.as_mut() {
            profiler.stop(fuel_left, &backtrace);
        }
        // Due again at once: the next check stops too.
        Ok(UpdateDeadline::Continue(0))
    });
}

/// Instructions by call stack, summed over invocations: `component;outer;...;inner -> count`.
#[derive(Debug, Clone, Default)]
pub struct Folded(pub BTreeMap<String, u64>);

impl Folded {
    pub(crate) fn add(&mut self, component: &str, stacks: BTreeMap<String, u64>) {
        for (stack, count) in stacks {
            *self.0.entry(format!("{component};{stack}")).or_default() += count;
        }
    }

    /// Every instruction counted.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Per function: instructions charged to it while it was the innermost frame.
    pub fn self_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for (stack, count) in &self.0 {
            let inner = stack.rsplit(';').next().unwrap_or(stack);
            *counts.entry(inner.to_string()).or_default() += count;
        }
        counts
    }

    /// Per function: instructions charged while it was anywhere on the stack (once per stack,
    /// however deep it recurses).
    pub fn inclusive_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for (stack, count) in &self.0 {
            let mut seen = std::collections::BTreeSet::new();
            for frame in stack.split(';') {
                if seen.insert(frame) {
                    *counts.entry(frame.to_string()).or_default() += count;
                }
            }
        }
        counts
    }

    /// One `stack count` line per stack, for flame-graph tools or a diff of two builds.
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(stack, count)| format!("{stack} {count}\n"))
            .collect()
    }
}
