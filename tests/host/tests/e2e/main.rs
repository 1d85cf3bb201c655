//! End-to-end tests: the real compiled components (`target/wasm32-wasip2/release/*.wasm`) run in
//! the test host, which behaves as Spin does. Build them first: `scripts/test` does.

mod support;

mod api_contract;
mod collector_config;
mod corpus;
mod cors;
mod custom_domains;
mod deploy_manifests;
mod docs;
mod errors_and_logs;
mod explain;
mod footprint;
mod forwarding;
mod hardening;
mod limits_and_failures;
mod manifest;
mod newcomer;
mod remote;
mod replicas;
mod routing;
mod tenant_limits;
mod tracing;
