//! The benchmark on a real Spin: `spin up` pinned to one core, `wrk` pinned to the other, every
//! mode interleaved in rounds (alternately forwards and backwards), ratios paired per round.
//! Performance targets are judged on these numbers; `bench` (the test host) is the fast loop.
//!
//! Modes, each a request for the same `hello` page:
//!   (a) `hello` routed directly (a public route added for the benchmark),
//!   (b) a wit-bindgen forwarder chaining to it, Rust's default 1 MiB stack,
//!   (l) the same forwarder linked with a 64 KiB stack, as the dispatcher is (the lean one),
//!   (s) a spin-sdk forwarder (`#[http_component]`, `spin_sdk::http::send`), as tenants write,
//!   (c) the dispatcher, by subdomain,
//!   (n) the same dispatcher `.wasm` added again with no component variables, so it reads none
//!       and every setting is its default: c/n is what Spin charges for its variable reads, n/l
//!       the dispatcher's own work,
//!   (v) only with `BENCH_V_WASM=<file>`: that build of the dispatcher, added beside the shipped
//!       one and configured as it is (variables, allowed hosts, stores),
//!   (d) the dispatcher, by custom domain from SQLite, the cache warm,
//!   (e) the same with the cache off (a second app, idle while the others run),
//!   (h) the dispatcher's own `/health`,
//!   (r) the dispatcher to a remote `hello` (an app of its own on a loopback address) over HTTP,
//!       membership from PostgreSQL with the cache warm,
//!   (f) a logic-free forwarder (64 KiB stack) making the same outbound HTTP call.
//!
//! Usage: libra-bench spin [seconds-per-round] [rounds] [concurrency]   (defaults: 4 6 16)
//! `BENCH_ONLY=a,l,c` picks modes; `BENCH_N_WASM=<file>` runs (n) with another build of the
//! dispatcher (to time a variant against the lean forwarder); `BENCH_V_WASM=<file>` adds mode
//! (v), another build of the dispatcher configured as the shipped one is, in the same app, so
//! v/c times a change side by side; `BENCH_CORES=0,1` the cores for Spin and wrk;
//! `BENCH_VAR_<NAME>=value` sets a Spin variable of the apps with a dispatcher (as for the
//! test-host bench), a key of `settings` included; `BENCH_STATIC_PROVIDER=1` answers every variable
//! from Spin's in-memory `static` provider; `BENCH_RUNTIME_CONFIG=<file>` adds a runtime
//! configuration to the main and uncached apps (for example the key-value store on Redis: the
//! two apps then share it, so (e) reads what (d) cached: time (e) without it);
//! `BENCH_SPIN_ENV_<NAME>=value` puts `NAME=value` in their Spin process's environment (for
//! example `BENCH_SPIN_ENV_SPIN_DISABLE_LOG_TO_TRACING=1`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use libra_test_host::postgres_server::TestPostgres;
use libra_test_host::spin_cli::{self, ExtraWorker, SpinApp, SpinOptions, bench_cores, write_small_app};
use libra_test_host::stats::{median, paired_ratio};
use libra_test_host::{project_root, set_variable, wasm_path};

/// Which of the benchmark's apps serves a mode.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serving {
    Main,
    /// The same app with the domain cache off.
    Uncached,

    /// The app whose dispatcher has remote workers (and the HTTP forwarder).
    RemoteFront,
}

#[derive(Clone, Copy)]
struct Mode {
    key: char,
    label: &'static str,
    /// `{port}` is the remote worker's port.
    host: &'static str,
    path: &'static str,
    serving: Serving,
}

const MODES: &[Mode] = &[
    Mode {
        key: 'a',
        label: "(a) hello, direct",
        host: "localhost",
        path: "/bench/direct",
        serving: Serving::Main,
    },
    Mode {
        key: 'b',
        label: "(b) forwarder -> hello",
        host: "localhost",
        path: "/bench/forwarder",
        serving: Serving::Main,
    },
    Mode {
        key: 'l',
        label: "(l) forwarder, 64 KiB stack -> hello",
        host: "localhost",
        path: "/bench/forwarder-lean",
        serving: Serving::Main,
    },
    Mode {
        key: 's',
        label: "(s) spin-sdk forwarder -> hello",
        host: "localhost",
        path: "/bench/forwarder-sdk",
        serving: Serving::Main,
    },
    Mode {
        key: 'c',
        label: "(c) dispatcher, subdomain",
        host: "hello.localhost",
        path: "/",
        serving: Serving::Main,
    },
    Mode {
        key: 'n',
        label: "(n) dispatcher, no variables defined",
        host: "hello.localhost",
        path: "/bench/dispatcher-unset",
        serving: Serving::Main,
    },
    Mode {
        key: 'v',
        label: "(v) BENCH_V_WASM's dispatcher, subdomain",
        host: "hello.localhost",
        path: "/bench/dispatcher-variant",
        serving: Serving::Main,
    },
    Mode {
        key: 'd',
        label: "(d) custom domain, cache warm",
        host: "shop.example.com",
        path: "/",
        serving: Serving::Main,
    },
    Mode {
        key: 'e',
        label: "(e) custom domain, cache off",
        host: "shop.example.com",
        path: "/",
        serving: Serving::Uncached,
    },
    Mode {
        key: 'h',
        label: "(h) dispatcher /health",
        host: "localhost",
        path: "/health",
        serving: Serving::Main,
    },
    Mode {
        key: 'r',
        label: "(r) dispatcher -> remote hello (HTTP)",
        host: "remote-hello.localhost",
        path: "/",
        serving: Serving::RemoteFront,
    },
    Mode {
        key: 'f',
        label: "(f) forwarder -> remote hello (HTTP)",
        host: "remote-hello.workers.test:{port}",
        path: "/bench/forwarder-http",
        serving: Serving::RemoteFront,
    },
];

/// What `wrk` measured in one run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    requests: u64,
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn seed_file() -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("libra-bench-seed-{}.sql", std::process::id()));
    std::fs::write(
        &path,
        "INSERT INTO project (id, custom_domain, custom_domain_status, is_active, production_deploy_url) \
         VALUES ('bench', 'shop.example.com', 'active', 1, 'http://hello.localhost:3000');",
    )?;
    Ok(path)
}

/// A remote worker as a tenant deploys one: `hello` alone, on every path, at `listen`.
fn remote_hello(spin_core: &str, listen: &str) -> Result<(SpinApp, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let manifest = write_small_app(dir.path(), "remote-hello", ("hello", &wasm_path("hello"), &[]), &[])?;
    let options = SpinOptions {
        manifest,
        listen: listen.parse()?,
        ..SpinOptions::pinned(spin_core)
    };
    Ok((SpinApp::start(&options)?, dir))
}

/// The dispatcher with `remote-hello` as a remote worker, deployed according to `postgres`, and
/// the HTTP forwarder beside it: both reach `remote-hello.workers.test:<port>`.
fn remote_front(spin_core: &str, remote_port: u16, postgres: &TestPostgres) -> Result<SpinApp> {
    let mut options = SpinOptions::pinned(spin_core);
    let remote_hosts = format!("http://*.workers.test:{remote_port}");
    for (name, value) in [
        (
            "worker_url_template",
            format!("http://{{worker}}.workers.test:{remote_port}"),
        ),
        ("remote_hosts", remote_hosts.clone()),
        ("postgres_url", postgres.url("postgres")),
        ("postgres_host", postgres.address()),
        // Longer than the run, so "the cache warm" holds for every request measured.
        ("domain_cache_ttl_s", "3600".into()),
    ] {
        set_variable(&mut options.variables, name, &value);
    }
    from_bench_environment(&mut options);
    options.extra_workers.push(ExtraWorker {
        id: "forwarder-http".into(),
        wasm: wasm_path("forwarder-http"),
        allowed_outbound_hosts: vec![remote_hosts],
        variables: Vec::new(),
    });
    options
        .public_routes
        .push(("/bench/forwarder-http/...".into(), "forwarder-http".into()));
    options
        .hosts
        .push(("remote-hello.workers.test".into(), "127.0.0.3".parse()?));
    SpinApp::start(&options)
}

/// Membership lookups PostgreSQL has run.
async fn membership_queries(postgres: &TestPostgres) -> Result<u64> {
    let client = postgres.client("postgres").await?;
    let row = client
        .query_one(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
             WHERE query LIKE '%rtrim(production_deploy_url%'",
            &[],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// `BENCH_VAR_<NAME>` and `BENCH_SPIN_ENV_<NAME>`, for the apps whose dispatcher is measured.
fn from_bench_environment(options: &mut SpinOptions) {
    for (name, value) in std::env::vars() {
        if let Some(name) = name.strip_prefix("BENCH_VAR_") {
            set_variable(&mut options.variables, &name.to_ascii_lowercase(), &value);
        } else if let Some(name) = name.strip_prefix("BENCH_SPIN_ENV_") {
            options.env.push((name.to_string(), value));
        }
    }
}

fn app(spin_core: &str, variables: &[(&str, &str)]) -> Result<SpinApp> {
    let mut options = SpinOptions::pinned(spin_core);
    if std::env::var_os("BENCH_STATIC_PROVIDER").is_some() {
        let manifest: toml::Table = std::fs::read_to_string(project_root().join("spin.toml"))?.parse()?;
        let mut values = toml::Table::new();
        for (name, variable) in manifest["variables"].as_table().unwrap() {
            if let Some(default) = variable.get("default") {
                values.insert(name.clone(), default.clone());
            }
        }
        let mut provider = toml::Table::new();
        provider.insert("type".into(), "static".into());
        provider.insert("values".into(), values.into());
        let mut config = toml::Table::new();
        config.insert("variables_provider".into(), toml::Value::Array(vec![provider.into()]));
        options.runtime_config = Some(toml::to_string(&config)?);
    }
    if let Some(path) = std::env::var_os("BENCH_RUNTIME_CONFIG") {
        let extra = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.to_string_lossy()))?;
        options.runtime_config = Some(options.runtime_config.unwrap_or_default() + "\n" + &extra);
    }
    for (name, value) in variables {
        set_variable(&mut options.variables, name, value);
    }
    from_bench_environment(&mut options);
    for forwarder in ["forwarder", "forwarder-lean", "forwarder-sdk"] {
        options.extra_workers.push(ExtraWorker {
            id: forwarder.into(),
            wasm: wasm_path(forwarder),
            allowed_outbound_hosts: vec!["http://hello.spin.internal".into()],
            variables: Vec::new(),
        });
        options
            .public_routes
            .push((format!("/bench/{forwarder}/..."), forwarder.into()));
    }
    // Mode (n): the dispatcher without component variables. Its outbound requests still make
    // Spin resolve every app variable (the allowed-hosts check), as (c) and (l) do.
    options.extra_workers.push(ExtraWorker {
        id: "dispatcher-unset".into(),
        wasm: std::env::var_os("BENCH_N_WASM").map_or_else(|| wasm_path("libra_dispatcher"), PathBuf::from),
        allowed_outbound_hosts: vec!["http://*.spin.internal".into()],
        variables: Vec::new(),
    });
    options
        .public_routes
        .push(("/bench/dispatcher-unset/...".into(), "dispatcher-unset".into()));
    // Mode (v): v/c times a change side by side.
    options.add_bench_variant();
    options.public_routes.push(("/bench/direct/...".into(), "hello".into()));
    options.sqlite_files = vec![project_root().join("db/sqlite/schema.sql"), seed_file()?];
    SpinApp::start(&options)
}

fn wrk(core: &str, app: &SpinApp, mode: &Mode, remote_port: u16, seconds: f64, concurrency: usize) -> Result<Sample> {
    let host = mode.host.replace("{port}", &remote_port.to_string());
    let url = format!("{}{}", app.url(), mode.path);
    let text = spin_cli::wrk(core, &url, &host, seconds, concurrency).with_context(|| mode.label)?;
    let report = spin_cli::WrkReport::parse(&text)?;
    Ok(Sample {
        requests: report.requests,
        requests_per_s: report.requests_per_s,
        p50_ms: report.p50_ms,
        p99_ms: report.p99_ms,
    })
}

pub fn run(args: &[String]) -> Result<()> {
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(6);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let (spin_core, wrk_core) = bench_cores()?;
    let (spin_core, wrk_core) = (spin_core.as_str(), wrk_core.as_str());
    let only = std::env::var("BENCH_ONLY").ok();
    let modes: Vec<Mode> = MODES
        .iter()
        .copied()
        .filter(|m| m.key != 'v' || std::env::var_os("BENCH_V_WASM").is_some())
        .filter(|m| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|k| k.trim() == m.key.to_string()))
        })
        .collect();

    let main_app = app(spin_core, &[])?;
    let uncached = app(
        spin_core,
        &[("domain_cache_ttl_s", "0"), ("domain_negative_ttl_s", "0")],
    )?;
    // The remote worker, and a database that says it is deployed.
    let remote_port = libra_test_host::ports::free_port()?;
    let (_remote, _remote_dir) = remote_hello(spin_core, &format!("127.0.0.3:{remote_port}"))?;
    let postgres = TestPostgres::start()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        postgres
            .execute("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await?;
        let schema = std::fs::read_to_string(project_root().join("db/postgres/schema.sql"))?;
        postgres.execute("postgres", &schema).await?;
        postgres
            .execute(
                "postgres",
                "INSERT INTO project (id, production_deploy_url) VALUES ('bench', 'https://remote-hello.localhost')",
            )
            .await
    })?;
    let remote_front = remote_front(spin_core, remote_port, &postgres)?;
    let app_for = |mode: &Mode| match mode.serving {
        Serving::Main => &main_app,
        Serving::Uncached => &uncached,
        Serving::RemoteFront => &remote_front,
    };
    for mode in &modes {
        // Warm-up, and a check that every mode answers 200 under load.
        wrk(wrk_core, app_for(mode), mode, remote_port, 1.0, concurrency)?;
    }
    let queries_before = runtime.block_on(membership_queries(&postgres))?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..modes.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            samples[i].push(wrk(
                wrk_core,
                app_for(&modes[i]),
                &modes[i],
                remote_port,
                seconds,
                concurrency,
            )?);
        }
    }
    let queries = runtime.block_on(membership_queries(&postgres))? - queries_before;

    println!(
        "real Spin ({}), Spin on core {spin_core}, wrk on core {wrk_core}: {rounds} rounds x {seconds} s, concurrency {concurrency}",
        String::from_utf8_lossy(
            &Command::new(libra_test_host::spin_cli::spin_binary()?)
                .arg("--version")
                .output()?
                .stdout
        )
        .trim()
    );
    println!(
        "  {:<40} {:>9} {:>9} {:>9} {:>9}",
        "mode", "req/s", "us/req", "p50 ms", "p99 ms"
    );
    let requests: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| s.iter().map(|s| s.requests_per_s).collect())
        .collect();
    for (i, mode) in modes.iter().enumerate() {
        let rate = median(requests[i].clone());
        println!(
            "  {:<40} {:>9.0} {:>9.0} {:>9.2} {:>9.2}",
            mode.label,
            rate,
            1e6 / rate,
            median(samples[i].iter().map(|s| s.p50_ms).collect()),
            median(samples[i].iter().map(|s| s.p99_ms).collect()),
        );
    }
    println!("ratios (median over pairs of rounds, and the per-round range):");
    let index = |key: char| modes.iter().position(|m| m.key == key);
    for (top, bottom, label, target) in [
        ('b', 'a', "b/a (chaining cost)", ""),
        ('c', 'b', "c/b (dispatcher vs forwarder)", ""),
        ('c', 'l', "c/l (dispatcher vs lean forwarder)", "   target >= 0.90"),
        ('n', 'l', "n/l (no variables vs lean forwarder)", ""),
        ('c', 'n', "c/n (variables read vs none)", ""),
        ('v', 'c', "v/c (BENCH_V_WASM's build vs shipped)", ""),
        ('v', 'l', "v/l (BENCH_V_WASM's build vs lean)", ""),
        ('c', 's', "c/s (dispatcher vs spin-sdk forwarder)", ""),
        ('l', 's', "l/s (lean vs spin-sdk forwarder)", ""),
        ('d', 'c', "d/c (custom domain, cached)", "   target >= 0.95"),
        ('e', 'c', "e/c (custom domain, uncached)", ""),
        ('r', 'f', "r/f (remote: dispatcher vs forwarder)", "   target >= 0.95"),
    ] {
        if let (Some(t), Some(b)) = (index(top), index(bottom))
            && let Some((value, low, high)) = paired_ratio(&requests[t], &requests[b])
        {
            println!("  {label:<40} {value:.3}  ({low:.3}-{high:.3}){target}");
        }
    }
    if let Some(r) = index('r') {
        let requests: u64 = samples[r].iter().map(|s| s.requests).sum();
        println!(
            "membership queries during the (r) rounds: {queries} for {requests} requests ({:.4} per request, the cache warm)",
            queries as f64 / requests.max(1) as f64
        );
    }
    Ok(())
}
