//! The SpinKube manifests of `deploy/spinkube` pass `scripts/check-spinapp.py`, and each mistake
//! that would open tenants to each other or leave the app unreachable is refused, with a message
//! that names the field. Each case copies the directory, makes one edit, and runs the checker
//! (with the dispatcher's own parsers, `libra-check`) on the copy.

use std::path::Path;
use std::process::Output;

use libra_test_host::project_root;

use crate::support::{python_script, unexpected_verdict};

fn check(directory: &Path) -> Output {
    python_script("check-spinapp.py")
        .arg(directory)
        .env("LIBRA_CHECK", env!("CARGO_BIN_EXE_libra-check"))
        .output()
        .expect("the checker runs")
}

/// A copy of `deploy/spinkube` with `from` replaced by `to` (once) in `file`.
fn edited(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(project_root().join("deploy/spinkube")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    let path = copy.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(from),
        "{file} no longer contains {from:?}: update this case"
    );
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    copy
}

#[test]
fn the_shipped_manifests_pass() {
    let output = check(&project_root().join("deploy/spinkube"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = String::from_utf8_lossy(&output.stdout);
    // Every file was read: one line per document.
    for file in [
        "spinapp.yaml",
        "namespaces.yaml",
        "secret.example.yaml",
        "redis.yaml",
        "hpa.yaml",
        "tenant-spinapp.yaml",
        "tls.yaml",
        "gateway.yaml",
        "ingress.yaml",
    ] {
        assert!(
            report.contains(&format!("{file}: ")),
            "{file} was not checked:\n{report}"
        );
    }
}

/// (what the edit does, file, from, to, what the refusal must say)
const MISTAKES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "the tenants' policy admits kube-system instead of the dispatcher's namespace",
        "namespaces.yaml",
        "kubernetes.io/metadata.name: libra\n",
        "kubernetes.io/metadata.name: kube-system\n",
        "spec.ingress[0].from[0].namespaceSelector: selects 'kube-system'",
    ),
    (
        "the policy's peer split in two: namespace OR label, which admits every pod of `libra` \
         and any pod labelled libra-dispatcher, tenants' included",
        "namespaces.yaml",
        "kubernetes.io/metadata.name: libra\n          podSelector:",
        "kubernetes.io/metadata.name: libra\n        - podSelector:",
        "spec.ingress[0].from[1].namespaceSelector: missing",
    ),
    (
        "the dispatcher's Secret in another namespace, where its secretKeyRef cannot read it",
        "secret.example.yaml",
        "  namespace: libra\n",
        "  namespace: default\n",
        "metadata.namespace is 'default'",
    ),
    (
        "loadFromSecret misspelt: the operator would ignore it and each pod keep its own store",
        "spinapp.yaml",
        "loadFromSecret:",
        "loadFromSecrets:",
        "spec.runtimeConfig: Additional properties are not allowed ('loadFromSecrets'",
    ),
    (
        "runtimeClassName misspelt",
        "namespaces.yaml",
        "runtimeClassName: wasmtime-spin-v2",
        "runtimeClasName: wasmtime-spin-v2",
        "spec.deploymentConfig: Additional properties are not allowed ('runtimeClasName'",
    ),
    (
        "a RuntimeClass the shim does not install",
        "namespaces.yaml",
        "runtimeClassName: wasmtime-spin-v2",
        "runtimeClassName: wasmtime-spin",
        "spec.deploymentConfig.runtimeClassName is 'wasmtime-spin'",
    ),
    (
        "a Certificate whose issuerRef names no issuer",
        "tls.yaml",
        "name: letsencrypt-dns01\n    kind: ClusterIssuer",
        "name: letsencrypt-prod\n    kind: ClusterIssuer",
        "spec.issuerRef names ClusterIssuer 'letsencrypt-prod'",
    ),
    (
        "an ingressClassName the cluster does not have",
        "ingress.yaml",
        "ingressClassName: nginx",
        "ingressClassName: ngnix",
        "spec.ingressClassName is 'ngnix'",
    ),
    (
        "a gatewayClassName the cluster does not have",
        "gateway.yaml",
        "gatewayClassName: eg",
        "gatewayClassName: envoy",
        "spec.gatewayClassName is 'envoy'",
    ),
    (
        "a malformed image reference (uppercase repository)",
        "spinapp.yaml",
        "image: \"registry.example.com/libra/libra-dispatcher:0.1.0\"",
        "image: \"registry.example.com/Libra/libra-dispatcher:0.1.0\"",
        "spec.image 'registry.example.com/Libra/libra-dispatcher:0.1.0'",
    ),
    (
        "a malformed image reference (empty tag)",
        "tenant-spinapp.yaml",
        "my-app:1.0.0\"",
        "my-app:\"",
        "spec.image 'registry.example.com/libra/workers/my-app:'",
    ),
    (
        "a tenant's autoscaler in the dispatcher's file, applied before its Deployment exists",
        "hpa.yaml",
        "  name: libra-dispatcher\n  namespace: libra\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: libra-dispatcher",
        "  name: my-app\n  namespace: libra-workers\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: my-app",
        "keep it in the tenant's file",
    ),
    (
        "a misspelt field of a kind without an offline schema",
        "gateway.yaml",
        "  listeners:",
        "  listener:",
        "spec.listener: not a field of Gateway",
    ),
    (
        "the Redis policy admits every pod of the namespace",
        "redis.yaml",
        "        - podSelector:\n            matchLabels:\n              core.spinkube.dev/app-name: libra-dispatcher",
        "        - podSelector: {}",
        "spec.ingress[0].from[0].podSelector: must select the dispatcher's pods",
    ),
];

#[test]
fn each_mistake_is_refused_with_the_field_named() {
    let mut failures = Vec::new();
    for (what, file, from, to, says) in MISTAKES {
        let copy = edited(file, from, to);
        failures.extend(unexpected_verdict(what, says, &check(copy.path())));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
