//! The shipped `spin.toml` agrees with the dispatcher's code.

use libra_dispatcher::config::{DATABASE, REMOTE, ROUTING, VARIABLES, bundle_template};
use libra_dispatcher::pipeline::worker_name::DOCS_COMPONENT;
use libra_test_host::{Manifest, project_root};

fn manifest() -> Manifest {
    Manifest::load(&project_root().join("spin.toml")).unwrap()
}

#[test]
fn the_namespace_is_derived_from_the_manifests_private_components() {
    let manifest = manifest();
    assert_eq!(manifest.variables["workers"].default.as_deref(), Some(""));
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

/// The variables the dispatcher reads on their own.
const SINGLES: [&str; 6] = [
    "namespace",
    "environment",
    "postgres_url",
    "admin_token",
    "max_body_bytes",
    "max_loop_count",
];

#[test]
fn every_variable_the_code_reads_is_declared_with_the_same_default() {
    let manifest = manifest();
    let dispatcher = &manifest.component["dispatcher"];
    for (name, default) in VARIABLES {
        let declared = manifest
            .variables
            .get(*name)
            .unwrap_or_else(|| panic!("spin.toml lacks variable {name}"));
        if *name != "workers" {
            assert_eq!(declared.default.as_deref(), Some(*default), "default of {name}");
        }
    }
    // The dispatcher reads them through three bundles (in the code's order) and six singles;
    // every variable reaches it exactly once.
    let mut expected = std::collections::BTreeMap::new();
    expected.insert("routing".to_string(), bundle_template(ROUTING));
    expected.insert("remote".to_string(), bundle_template(REMOTE));
    expected.insert("database".to_string(), bundle_template(DATABASE));
    for single in SINGLES {
        expected.insert(single.to_string(), format!("{{{{ {single} }}}}"));
    }
    assert_eq!(dispatcher.variables, expected, "[component.dispatcher.variables]");
    let mut read: Vec<&str> = ROUTING
        .iter()
        .chain(REMOTE)
        .chain(DATABASE)
        .copied()
        .chain(SINGLES)
        .collect();
    read.sort();
    let mut all: Vec<&str> = VARIABLES.iter().map(|(name, _)| *name).collect();
    all.sort();
    assert_eq!(read, all, "every variable the code knows is read, once");
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
