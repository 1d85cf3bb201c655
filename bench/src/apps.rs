//! Parts of the Spin apps that several modes run.

use libra_test_host::spin_cli::{ExtraWorker, SpinOptions};
use libra_test_host::wasm_path;

/// The lean forwarder (64 KiB stack, no logic) chaining to `hello`, public at
/// `/bench/forwarder-lean/...`: the baseline the dispatcher's own work is measured against.
pub fn add_lean_forwarder(options: &mut SpinOptions) {
    options.extra_workers.push(ExtraWorker {
        id: "forwarder-lean".into(),
        wasm: wasm_path("forwarder-lean"),
        allowed_outbound_hosts: vec!["http://hello.spin.internal".into()],
        variables: Vec::new(),
    });
    options
        .public_routes
        .push(("/bench/forwarder-lean/...".into(), "forwarder-lean".into()));
}
