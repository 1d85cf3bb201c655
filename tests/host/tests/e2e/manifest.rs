//! The shipped `spin.toml` agrees with the dispatcher's code.

use libra_dispatcher::pipeline::worker_name::DOCS_COMPONENT;
use libra_dispatcher::settings_table::VARIABLES;
use libra_test_host::{Manifest, project_root};

fn manifest() -> Manifest {
    Manifest::load(&project_root().join("spin.toml")).unwrap()
}

#[test]
fn the_namespace_is_derived_from_the_manifests_private_components() {
    let manifest = manifest();
    // `settings` gives no `workers` by default: the namespace is the manifest's.
    assert_eq!(manifest.variables["settings"].default.as_deref(), Some(""));
    let workers: Vec<String> = manifest
        .private_components()
        .into_iter()
        .filter(|id| id != DOCS_COMPONENT)
        .collect();
    assert_eq!(
        libra_dispatcher::config::MANIFEST_WORKERS,
        workers.join(","),
        "the build derives the namespace from spin.toml"
    );
    assert!(
        manifest.private_components().contains(&DOCS_COMPONENT.to_string()),
        "the docs component has a private route"
    );
}

#[test]
fn the_dispatcher_owns_the_only_public_route_and_can_reach_workers() {
    let manifest = manifest();
    assert_eq!(
        manifest.public_routes(),
        vec![("/...".to_string(), "dispatcher".to_string())]
    );
    let dispatcher = &manifest.component["dispatcher"];
    assert_eq!(
        dispatcher.allowed_outbound_hosts,
        vec![
            "http://*.spin.internal",
            "postgres://{{ postgres_host }}",
            "{{ remote_hosts }}"
        ]
    );
    for worker in manifest.private_components() {
        assert!(
            manifest.component[&worker].allowed_outbound_hosts.is_empty(),
            "{worker} needs no outbound access"
        );
    }
}

#[test]
fn every_variable_the_code_reads_is_declared_with_the_same_default() {
    for path in ["spin.toml", "deploy/fermyon-cloud/spin.toml"] {
        let manifest = Manifest::load(&project_root().join(path)).unwrap();
        let mut declared: Vec<&str> = manifest.variables.keys().map(String::as_str).collect();
        declared.sort();
        let mut known: Vec<&str> = VARIABLES.iter().map(|variable| variable.name).collect();
        known.sort();
        // Spin resolves every application variable for each instance that sends a request:
        // one more is a cost on every request, so none is declared that the code does not know.
        assert_eq!(declared, known, "{path}: [variables]");
        // The dispatcher reads each variable it needs through a component variable of the same
        // name, and nothing else.
        let expected: std::collections::BTreeMap<String, String> = VARIABLES
            .iter()
            .filter(|variable| variable.read)
            .map(|variable| (variable.name.to_string(), format!("{{{{ {} }}}}", variable.name)))
            .collect();
        assert_eq!(
            manifest.component["dispatcher"].variables, expected,
            "{path}: [component.dispatcher.variables]"
        );
    }
    let manifest = manifest();
    for variable in VARIABLES {
        assert_eq!(
            manifest.variables[variable.name].default.as_deref(),
            Some(variable.default),
            "spin.toml: default of {}",
            variable.name
        );
        assert_eq!(
            manifest.variables[variable.name].secret, variable.secret,
            "spin.toml: secret of {}",
            variable.name
        );
    }
}

/// Spin's store and database labels are app-wide: a component granted a label reads and writes
/// whatever every other component granted it does. The dispatcher's cache (which routes custom
/// domains) must be its own, and no two tenants may share one.
#[test]
fn every_store_and_database_label_is_granted_to_one_component_at_most() {
    for path in [
        "spin.toml",
        "deploy/fermyon-cloud/spin.toml",
        "deploy/fermyon-cloud/hello/spin.toml",
    ] {
        let manifest = Manifest::load(&project_root().join(path)).unwrap();
        for (what, labels_of) in [
            (
                "key_value_stores",
                (|c: &libra_test_host::manifest::Component| c.key_value_stores.clone()) as fn(&_) -> Vec<String>,
            ),
            ("sqlite_databases", |c| c.sqlite_databases.clone()),
        ] {
            let mut granted: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (id, component) in &manifest.component {
                for label in labels_of(component) {
                    granted.entry(label).or_default().push(id.clone());
                }
            }
            if path == "spin.toml" && what == "key_value_stores" {
                // The rate limits' counters and the breakers live in the dispatcher's `default`
                // store: no tenant may write them (docs/limits.md).
                assert_eq!(
                    granted.get("default").map(Vec::as_slice),
                    Some(&["dispatcher".to_string()][..]),
                    "{path}: {what}"
                );
            }
            for (label, components) in granted {
                assert_eq!(
                    components.len(),
                    1,
                    "{path}: {what} label '{label}' is granted to {components:?}"
                );
            }
        }
    }
}

/// `spin.toml`'s list of settings and `docs/configuration.md`'s tables are generated from the one
/// settings table (`src/settings_table.rs`).
#[test]
fn the_generated_lists_and_tables_are_up_to_date() {
    let stale = libra_test_host::generated::stale().unwrap();
    let files: Vec<&str> = stale.iter().map(|(file, _)| *file).collect();
    assert!(
        files.is_empty(),
        "out of date with src/settings_table.rs: {files:?}; run `cargo run -p libra-test-host --bin libra-check -- generate`"
    );
}
