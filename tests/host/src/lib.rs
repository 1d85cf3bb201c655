//! A test host that runs the project's compiled components the way Spin 4 does, on wasmtime and
//! `wasmtime-wasi-http` from crates.io (CI cannot install the Spin CLI). Test infrastructure
//! only, not a product.
//!
//! What it mirrors (see `shared/reference/spin-facts.md` and Spin's `crates/trigger-http`):
//! - routing by path only; private routes are unreachable from outside;
//! - the `spin-*` headers, appended after the client's own, and `Connection` removed;
//! - a fresh instance for every request;
//! - service chaining: `http://<id>.spin.internal` served in-process, `Host` removed, the callee
//!   seeing `spin-full-url = http://localhost/<path>` and `spin-client-addr = 0.0.0.0:0`;
//!   `allowed_outbound_hosts` enforced; unknown ids denied;
//! - a component that traps or gives no response becomes an empty 500, as Spin answers;
//! - variables: manifest defaults plus overrides, expanded into component variable templates.

mod bindings;
mod chaining;
pub mod generated;
pub mod harness;
mod http_server;
mod key_value;
pub mod manifest;
pub mod otlp;
mod outbound;
pub mod ports;
mod postgres;
pub mod postgres_server;
pub mod profile;
pub mod redis_server;
pub mod spin_cli;
mod spin_headers;
mod sqlite;
pub mod stats;
mod variables;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use http_server::{HttpServer, serve_http};
pub use manifest::Manifest;

/// Sets `name` in `variables`, an app's variable values: a key of the dispatcher's `settings`
/// goes into that variable's `key=value` entries (replacing the key's earlier value), any other
/// name is an application variable of its own. A setting's value cannot hold an entry
/// separator (the dispatcher would read extra entries), so one that does is a test's mistake.
pub fn set_variable(variables: &mut BTreeMap<String, String>, name: &str, value: &str) {
    if !libra_dispatcher::config::is_setting(name) {
        variables.insert(name.to_string(), value.to_string());
        return;
    }
    assert!(
        !value.contains([';', '\n', '\r']),
        "the value of setting {name} holds an entry separator: {value:?}"
    );
    let settings = variables
        .entry(libra_dispatcher::config::SETTINGS_VARIABLE.to_string())
        .or_default();
    let mut entries: Vec<String> = settings
        .split([';', '\n', '\r'])
        .map(str::trim)
        .filter(|entry| !entry.is_empty() && entry.split_once('=').map(|(key, _)| key.trim()) != Some(name))
        .map(str::to_string)
        .collect();
    entries.push(format!("{name}={value}"));
    *settings = entries.join("; ");
}

/// The repository root, where `spin.toml` and `target/` are.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("project root exists")
}

/// Where `cargo build --target wasm32-wasip2 --release` puts a package's component.
pub fn wasm_path(package: &str) -> PathBuf {
    project_root()
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// How to run an app: which manifest, which variable values, and any test-only workers.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub manifest: PathBuf,
    /// Application variable values, as `spin up --variable name=value` would give them.
    pub variables: BTreeMap<String, String>,
    /// Test-only workers added with private routes: component id, `.wasm` path and
    /// `allowed_outbound_hosts`.
    pub extra_workers: Vec<(String, PathBuf, Vec<String>)>,
    /// Linear-memory cap per instance: a component that buffers a body larger than this fails.
    pub memory_limit_bytes: usize,
    /// Keep each component's stdout for [`App::stdout`]; off for benchmarks.
    pub capture_stdout: bool,
    /// Count every call a component makes into the host, resource drops included, for
    /// [`App::host_calls`]. The benchmark uses it to explain where time goes.
    pub count_host_calls: bool,
    /// Count the WebAssembly instructions each component runs (wasmtime's fuel: about one unit
    /// per instruction), for [`App::guest_instructions`]. Deterministic, unlike a clock: the
    /// footprint tests keep budgets of it. The components are compiled with fuel checks for
    /// this, so timings of such an app mean nothing.
    pub count_guest_instructions: bool,
    /// Also attribute those instructions to the guest's call stacks, for
    /// [`App::guest_profile`] (`scripts/bench profile`). Implies `count_guest_instructions`.
    pub profile_guest_instructions: bool,
    /// Names the app's outbound requests resolve to before DNS is asked (its `/etc/hosts`).
    pub hosts: BTreeMap<String, std::net::IpAddr>,
    /// Variables whose provider fails when asked.
    pub failing_variables: std::collections::BTreeSet<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            manifest: project_root().join("spin.toml"),
            variables: BTreeMap::new(),
            extra_workers: Vec::new(),
            memory_limit_bytes: 64 << 20,
            capture_stdout: true,
            count_host_calls: false,
            count_guest_instructions: false,
            profile_guest_instructions: false,
            hosts: BTreeMap::new(),
            failing_variables: Default::default(),
        }
    }
}

impl AppOptions {
    /// An application variable, or a key of the dispatcher's `settings` ([`set_variable`]).
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        set_variable(&mut self.variables, name, value);
        self
    }

    pub fn worker(mut self, id: &str, wasm: PathBuf) -> Self {
        self.extra_workers.push((id.to_string(), wasm, Vec::new()));
        self
    }

    pub fn worker_with_outbound(mut self, id: &str, wasm: PathBuf, allowed_outbound_hosts: &[&str]) -> Self {
        self.extra_workers.push((
            id.to_string(),
            wasm,
            allowed_outbound_hosts.iter().map(|h| h.to_string()).collect(),
        ));
        self
    }
}

#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub(crate) struct AppInner {
    engine: Engine,
    components: HashMap<String, Loaded>,
    /// Public routes, most specific first.
    routes: Vec<(String, String)>,
    variables: variables::Resolver,
    memory_limit_bytes: usize,
    in_flight: InFlight,
    outbound_log: Mutex<Vec<String>>,
    /// The `default` key-value store.
    key_value: Mutex<KeyValues>,
    /// The `default` SQLite database, in a file of its own that lives as long as the app.
    sqlite: Mutex<rusqlite::Connection>,
    sqlite_statements: std::sync::atomic::AtomicU64,
    /// Per component id, when [`AppOptions::count_host_calls`] is set.
    host_calls: Option<Mutex<HashMap<String, u64>>>,
    /// Per component id, when [`AppOptions::count_guest_instructions`] is set.
    guest_instructions: Option<Mutex<HashMap<String, u64>>>,
    /// When [`AppOptions::profile_guest_instructions`] is set.
    guest_profile: Option<Mutex<profile::Folded>>,
    hosts: BTreeMap<String, std::net::IpAddr>,
    _sqlite_dir: tempfile::TempDir,
}

/// The app's key-value stores: `(store label, key) -> value`.
#[derive(Default)]
pub(crate) struct KeyValues {
    pub(crate) map: HashMap<(String, String), Vec<u8>>,
    /// An `increment` met a value that is not 8 bytes: as on Spin, every later call fails.
    pub(crate) poisoned: bool,
}

/// Counts each component's invocations still running, so a test can wait until they have
/// finished (and written their log lines) instead of sleeping.
#[derive(Default)]
struct InFlight {
    counts: Mutex<HashMap<String, usize>>,
    changed: tokio::sync::Notify,
}

impl InFlight {
    fn start(&self, component: &str) {
        *self.counts.lock().unwrap().entry(component.to_string()).or_default() += 1;
    }

    fn finish(&self, component: &str) {
        *self.counts.lock().unwrap().get_mut(component).expect("started") -= 1;
        self.changed.notify_waiters();
    }

    async fn wait_idle(&self, component: &str) {
        loop {
            let notified = self.changed.notified();
            if self.counts.lock().unwrap().get(component).copied().unwrap_or(0) == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct Loaded {
    pre: ProxyPre<HostState>,
    allowed_outbound_hosts: Vec<String>,
    key_value_stores: Vec<String>,
    sqlite_databases: Vec<String>,
    variables: BTreeMap<String, String>,
    stdout: Option<MemoryOutputPipe>,
}

pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: chaining::Hooks,
    limits: StoreLimits,
    app: Arc<AppInner>,
    component_id: String,
    profiler: Option<profile::Profiler>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// How an engine's compiled code lets the host watch the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Metering {
    Off,
    /// Fuel, to count instructions.
    Fuel,
    /// Fuel and an epoch check that always fires, to see the stack at every function entry and
    /// loop header ([`profile`]).
    Profile,
}

/// The engine components run on, compiled for `metering`.
fn engine(metering: Metering) -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    static METERED: OnceLock<Engine> = OnceLock::new();
    static PROFILED: OnceLock<Engine> = OnceLock::new();
    let engine = match metering {
        Metering::Off => &ENGINE,
        Metering::Fuel => &METERED,
        Metering::Profile => &PROFILED,
    };
    engine.get_or_init(|| {
        // Spin's engine settings (`crates/core/src/lib.rs`): the pooling instance allocator, which
        // makes per-request instantiation cheap, with memories kept resident between uses.
        const MB: usize = 1 << 20;
        let instances = 200;
        let mut pooling = wasmtime::PoolingAllocationConfig::default();
        pooling
            .total_component_instances(instances)
            .total_memories(instances)
            .total_tables(2 * instances)
            .total_stacks(instances)
            .total_core_instances(4 * instances)
            .table_elements(100_000)
            .max_component_instance_size(10 * MB)
            .max_core_instance_size(10 * MB)
            .max_core_instances_per_component(200)
            .max_tables_per_component(64)
            .max_memories_per_component(32)
            .max_tables_per_module(2)
            .max_memories_per_module(2)
            .max_memory_size(4 << 30)
            .linear_memory_keep_resident(2 * MB)
            .table_keep_resident(MB / 2);
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
        if std::env::var_os("TEST_HOST_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        config.consume_fuel(metering != Metering::Off);
        config.epoch_interruption(metering == Metering::Profile);
        if metering == Metering::Profile {
            // The profiler's stacks whole (wasmtime keeps the innermost 20 frames by default).
            config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(1024));
        }
        Engine::new(&config).expect("engine configuration is valid")
    })
}

/// Compiles each `.wasm` once per test binary and engine: Cranelift is the slow part of
/// starting an app.
fn compile(path: &Path, metering: Metering) -> Result<Component> {
    static COMPILED: OnceLock<Mutex<HashMap<(PathBuf, Metering), Component>>> = OnceLock::new();
    let cache = COMPILED.get_or_init(Default::default);
    let key = (path.to_path_buf(), metering);
    if let Some(component) = cache.lock().unwrap().get(&key) {
        return Ok(component.clone());
    }
    if !path.exists() {
        return Err(anyhow!(
            "{} is missing: build the components first (`cargo build --target wasm32-wasip2 --release --workspace --exclude libra-test-host`, or run scripts/test)",
            path.display()
        ));
    }
    let component = Component::from_file(engine(metering), path)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling {}", path.display()))?;
    cache.lock().unwrap().insert(key, component.clone());
    Ok(component)
}

impl App {
    pub fn new(options: AppOptions) -> Result<App> {
        let manifest = Manifest::load(&options.manifest)?;
        let metered = options.count_guest_instructions || options.profile_guest_instructions;
        let metering = match (options.profile_guest_instructions, metered) {
            (true, _) => Metering::Profile,
            (false, true) => Metering::Fuel,
            (false, false) => Metering::Off,
        };
        let engine = engine(metering).clone();
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        outbound::add_http_error_code(&mut linker)?;
        bindings::add_to_linker(&mut linker)?;

        let mut sources: Vec<(String, PathBuf, manifest::Component)> = manifest
            .component
            .iter()
            .map(|(id, c)| (id.clone(), manifest.source_path(id).expect("listed"), c.clone()))
            .collect();
        for (id, wasm, allowed_outbound_hosts) in &options.extra_workers {
            let component = manifest::Component {
                source: wasm.display().to_string(),
                allowed_outbound_hosts: allowed_outbound_hosts.clone(),
                variables: BTreeMap::new(),
                key_value_stores: Vec::new(),
                sqlite_databases: Vec::new(),
            };
            sources.push((id.clone(), wasm.clone(), component));
        }

        let resolver = variables::Resolver::new(&manifest.variables, &options.variables, &options.failing_variables)?;
        let mut components = HashMap::new();
        for (id, path, spec) in sources {
            let component = compile(&path, metering)?;
            // An import this host lacks fails here, loudly, naming the interface.
            let pre = ProxyPre::new(linker.instantiate_pre(&component)?)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("component '{id}' is not a wasi:http/proxy component"))?;
            let allowed_outbound_hosts = spec
                .allowed_outbound_hosts
                .iter()
                .map(|entry| resolver.expand_lenient(entry))
                .collect::<Result<Vec<_>>>()?;
            let stdout = options.capture_stdout.then(|| MemoryOutputPipe::new(256 << 20));
            components.insert(
                id,
                Loaded {
                    pre,
                    allowed_outbound_hosts,
                    key_value_stores: spec.key_value_stores,
                    sqlite_databases: spec.sqlite_databases,
                    variables: spec.variables,
                    stdout,
                },
            );
        }
        let sqlite_dir = tempfile::tempdir()?;
        let sqlite = rusqlite::Connection::open(sqlite_dir.path().join("sqlite_db.db"))?;
        let mut routes = manifest.public_routes();
        routes.sort_by_key(|(route, _)| std::cmp::Reverse(route.trim_end_matches("...").len()));
        Ok(App(Arc::new(AppInner {
            engine,
            components,
            routes,
            variables: resolver,
            memory_limit_bytes: options.memory_limit_bytes,
            in_flight: InFlight::default(),
            outbound_log: Mutex::default(),
            key_value: Mutex::default(),
            sqlite: Mutex::new(sqlite),
            sqlite_statements: Default::default(),
            host_calls: options.count_host_calls.then(Mutex::default),
            guest_instructions: metered.then(Mutex::default),
            guest_profile: options.profile_guest_instructions.then(Mutex::default),
            hosts: options.hosts.clone(),
            _sqlite_dir: sqlite_dir,
        })))
    }

    /// Serves one request from a client at `client_addr`, as `spin up` would. `Err` where Spin
    /// closes the connection without answering (it cannot tell the request's authority).
    pub async fn handle<B>(
        &self,
        request: http::Request<B>,
        client_addr: SocketAddr,
    ) -> Result<http::Response<HyperOutgoingBody>, spin_headers::NoAuthority>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
        spin_headers::authority(&request)?;
        let path = request.uri().path().to_string();
        let Some((route, component)) = self.0.routes.iter().find(|(route, _)| route_matches(route, &path)) else {
            return Ok(spin_headers::empty_response(404));
        };
        let (route, component) = (route.clone(), component.clone());
        Ok(self.0.clone().serve(&component, &route, request, client_addr).await)
    }

    /// Serves a request with `component` directly, as if a public route matched it (the
    /// benchmark's baseline for workers that have only private routes).
    pub async fn handle_with<B>(
        &self,
        component: &str,
        request: http::Request<B>,
        client_addr: SocketAddr,
    ) -> http::Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
        self.0.clone().serve(component, "/...", request, client_addr).await
    }

    /// Instantiates `component` `count` times without calling it; returns the mean time per
    /// instantiation (for the benchmark's breakdown).
    pub async fn instantiation_cost(&self, component: &str, count: u32) -> std::time::Duration {
        let loaded = &self.0.components[component];
        let started = std::time::Instant::now();
        for _ in 0..count {
            let mut store = self.0.new_store(component, loaded);
            loaded.pre.instantiate_async(&mut store).await.expect("instantiates");
        }
        started.elapsed() / count
    }

    /// Calls into the host so far, per component id (empty unless
    /// [`AppOptions::count_host_calls`] is set).
    pub fn host_calls(&self) -> HashMap<String, u64> {
        self.0
            .host_calls
            .as_ref()
            .map(|c| c.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// WebAssembly instructions run so far, per component id (empty unless
    /// [`AppOptions::count_guest_instructions`] is set). An invocation's count is added when it
    /// has finished, so wait for the component to be idle first.
    pub fn guest_instructions(&self) -> HashMap<String, u64> {
        self.0
            .guest_instructions
            .as_ref()
            .map(|c| c.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Where the guest instructions run so far went, by call stack (empty unless
    /// [`AppOptions::profile_guest_instructions`] is set); added when an invocation finishes.
    pub fn guest_profile(&self) -> profile::Folded {
        self.0
            .guest_profile
            .as_ref()
            .map(|p| p.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Forgets the profile so far ([`App::guest_profile`]).
    pub fn reset_guest_profile(&self) {
        if let Some(profile) = &self.0.guest_profile {
            *profile.lock().unwrap() = Default::default();
        }
    }

    /// How many application variables components' variable reads have resolved so far (on Spin,
    /// each one is a provider lookup: see docs/performance.md).
    pub fn variable_lookups(&self) -> u64 {
        self.0.variables.guest_lookups()
    }

    /// The destinations components asked for (`*.spin.internal` and real hosts), in order, denied
    /// ones included.
    pub fn outbound_requests(&self) -> Vec<String> {
        self.0.outbound_log.lock().unwrap().clone()
    }

    /// Runs SQL against the app's `default` SQLite database, as `spin up --sqlite @file.sql` does.
    pub fn sqlite_execute_batch(&self, sql: &str) -> Result<()> {
        self.0.sqlite.lock().unwrap().execute_batch(sql)?;
        Ok(())
    }

    /// How many statements components have run against the `default` SQLite database.
    pub fn sqlite_statements(&self) -> u64 {
        self.0.sqlite_statements.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Reads and writes the `default` key-value store from outside, as an operator could.
    pub fn key_value_get(&self, key: &str) -> Option<Vec<u8>> {
        self.0
            .key_value
            .lock()
            .unwrap()
            .map
            .get(&("default".to_string(), key.to_string()))
            .cloned()
    }

    pub fn key_value_set(&self, key: &str, value: &[u8]) {
        self.0
            .key_value
            .lock()
            .unwrap()
            .map
            .insert(("default".to_string(), key.to_string()), value.to_vec());
    }

    /// The keys of the `default` key-value store.
    pub fn key_value_keys(&self) -> Vec<String> {
        self.0
            .key_value
            .lock()
            .unwrap()
            .map
            .keys()
            .filter(|(label, _)| label == "default")
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Empties the `default` key-value store.
    pub fn clear_key_value(&self) {
        *self.0.key_value.lock().unwrap() = KeyValues::default();
    }

    /// Waits until every invocation of `component` has returned.
    pub async fn wait_idle(&self, component: &str) {
        self.0.in_flight.wait_idle(component).await;
    }

    /// Everything `component` printed to stdout so far.
    pub fn stdout(&self, component: &str) -> String {
        let loaded = &self.0.components[component];
        let bytes = loaded
            .stdout
            .as_ref()
            .map(MemoryOutputPipe::contents)
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn route_matches(route: &str, path: &str) -> bool {
    match route.strip_suffix("/...") {
        Some(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")) || prefix.is_empty(),
        None => route == path,
    }
}

impl AppInner {
    /// Runs `component_id` on `request`; a trap or a missing response is an empty 500.
    pub(crate) async fn serve(
        self: Arc<Self>,
        component_id: &str,
        route: &str,
        request: http::Request<WasiBody>,
        client_addr: SocketAddr,
    ) -> http::Response<HyperOutgoingBody> {
        match self.clone().try_serve(component_id, route, request, client_addr).await {
            Ok(response) => response,
            Err(error) => {
                eprintln!("test host: component '{component_id}' failed: {error:#}");
                spin_headers::empty_response(500)
            }
        }
    }

    /// A fresh store for one invocation of `component_id`: Spin keeps nothing between requests.
    fn new_store(self: &Arc<Self>, component_id: &str, loaded: &Loaded) -> Store<HostState> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        if let Some(stdout) = &loaded.stdout {
            wasi.stdout(stdout.clone());
        }
        let state = HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: chaining::Hooks::new(self.clone(), component_id),
            limits: StoreLimitsBuilder::new().memory_size(self.memory_limit_bytes).build(),
            app: self.clone(),
            component_id: component_id.to_string(),
            profiler: self.guest_profile.as_ref().map(|_| profile::Profiler::new(u64::MAX)),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        if self.guest_instructions.is_some() {
            store.set_fuel(u64::MAX).expect("the engine consumes fuel");
        }
        if self.guest_profile.is_some() {
            profile::attach(&mut store);
        }
        if self.host_calls.is_some() {
            store.call_hook(|store, hook| {
                if matches!(hook, wasmtime::CallHook::CallingHost) {
                    let state = store.data();
                    if let Some(counts) = &state.app.host_calls {
                        *counts.lock().unwrap().entry(state.component_id.clone()).or_default() += 1;
                    }
                }
                Ok(())
            });
        }
        store
    }

    async fn try_serve(
        self: Arc<Self>,
        component_id: &str,
        route: &str,
        mut request: http::Request<WasiBody>,
        client_addr: SocketAddr,
    ) -> Result<http::Response<HyperOutgoingBody>> {
        let loaded = self
            .components
            .get(component_id)
            .ok_or_else(|| anyhow!("unknown routing destination '{component_id}'"))?;
        spin_headers::prepare(&mut request, route, client_addr)?;

        let mut store = self.new_store(component_id, loaded);
        let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, request)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let pre = loaded.pre.clone();
        self.in_flight.start(component_id);
        let app = self.clone();
        let id = component_id.to_string();
        let task = tokio::spawn(async move {
            let result = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            }
            .await;
            if let (Some(counts), Ok(left)) = (&app.guest_instructions, store.get_fuel()) {
                *counts.lock().unwrap().entry(id.clone()).or_default() += u64::MAX - left;
            }
            if let (Some(profile), Ok(left)) = (&app.guest_profile, store.get_fuel())
                && let Some(profiler) = store.data_mut().profiler.take()
            {
                profile.lock().unwrap().add(&id, profiler.finish(left));
            }
            drop(store);
            app.in_flight.finish(&id);
            result
        });
        match receiver.await {
            Ok(Ok(response)) => {
                let id = component_id.to_string();
                // The guest may keep running to stream the body; report a late failure.
                tokio::spawn(async move {
                    if let Ok(Err(error)) = task.await {
                        eprintln!("test host: component '{id}' failed after its response started: {error:#}");
                    }
                });
                Ok(response)
            }
            Ok(Err(code)) => Err(anyhow!("component answered with error {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow!("component returned without a response")),
                Ok(Err(error)) => Err(anyhow::Error::from(error).context("component trapped")),
                Err(join) => Err(anyhow!("component task failed: {join}")),
            },
        }
    }
}
