//! Requests per second through the test host, side by side in one run:
//!   (a) the `hello` worker invoked directly,
//!   (b) a logic-free forwarding component chaining to it, built with Rust's defaults,
//!   (b') the same forwarder linked with the dispatcher's 64 KiB stack: Spin resets an
//!        instance's linear memory after each request, so memory size is part of a component's
//!        cost, and c/b' isolates the dispatcher's own work from that,
//!   (c) the dispatcher routing `hello.localhost` to it,
//!   (d) the dispatcher routing a custom domain to it, the domain warm in the cache,
//!   (e) the same with the cache off: every request queries the (embedded SQLite) database,
//!   (h) the dispatcher answering `/health` itself, for scale.
//! The rounds interleave the modes so machine noise hits them alike; medians are reported.
//!
//! Usage: libra-bench test-host [seconds-per-sample] [rounds] [concurrency]   (defaults: 0.5 24 16)
//! `BENCH_VAR_<NAME>=value` overrides a Spin variable; `BENCH_ONLY=1,2` runs only those modes
//! (0-based indexes into the list above).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use libra_test_host::stats::{median, paired_ratio};
use libra_test_host::{App, AppOptions, project_root, set_variable, wasm_path};

#[derive(Clone, Copy)]
enum Mode {
    Direct,
    Forwarder,
    ForwarderLean,
    Dispatcher,
    CustomDomainCached,
    CustomDomainUncached,
    Health,
}

const MODES: [Mode; 7] = [
    Mode::Direct,
    Mode::Forwarder,
    Mode::ForwarderLean,
    Mode::Dispatcher,
    Mode::CustomDomainCached,
    Mode::CustomDomainUncached,
    Mode::Health,
];

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Direct => "(a) hello, direct",
            Mode::Forwarder => "(b) forwarder -> hello",
            Mode::ForwarderLean => "(b') forwarder, 64 KiB stack -> hello",
            Mode::Dispatcher => "(c) dispatcher -> hello (subdomain)",
            Mode::CustomDomainCached => "(d) custom domain, cache warm",
            Mode::CustomDomainUncached => "(e) custom domain, cache off",
            Mode::Health => "(h) dispatcher /health (no chaining)",
        }
    }
}

#[derive(Clone)]
struct Apps {
    main: App,
    /// Custom-domain lookups never cached (both TTLs 0).
    uncached: App,
}

const SEED: &str = "INSERT INTO project (id, custom_domain, custom_domain_status, is_active, production_deploy_url) \
                    VALUES ('bench', 'shop.example.com', 'active', 1, 'http://hello.localhost:3000')";

/// What an app counts besides serving.
#[derive(Clone, Copy, PartialEq)]
enum Counting {
    Nothing,
    HostCalls,
    GuestInstructions,
}

fn app_with(variables: &[(&str, &str)]) -> App {
    counting_app_with(variables, Counting::Nothing)
}

fn counting_app_with(variables: &[(&str, &str)], counting: Counting) -> App {
    let mut options = AppOptions {
        capture_stdout: false,
        count_host_calls: counting == Counting::HostCalls,
        count_guest_instructions: counting == Counting::GuestInstructions,
        ..AppOptions::default()
    };
    let overrides =
        std::env::vars().filter_map(|(k, v)| k.strip_prefix("BENCH_VAR_").map(|n| (n.to_ascii_lowercase(), v)));
    for (name, value) in overrides {
        set_variable(&mut options.variables, &name, &value);
    }
    for (name, value) in variables {
        set_variable(&mut options.variables, name, value);
    }
    for forwarder in ["forwarder", "forwarder-lean"] {
        options = options.worker_with_outbound(forwarder, wasm_path(forwarder), &["http://hello.spin.internal"]);
    }
    let app = App::new(options).expect("app starts");
    let schema = std::fs::read_to_string(project_root().join("db/sqlite/schema.sql")).expect("schema file");
    app.sqlite_execute_batch(&schema).expect("schema applies");
    app.sqlite_execute_batch(SEED).expect("seed applies");
    app
}

fn get(host: &str, path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::builder()
        .uri(path)
        .header("host", host)
        .body(Empty::new())
        .expect("valid request")
}

async fn one_request(apps: &Apps, mode: Mode) {
    let client: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let response = match mode {
        Mode::Direct | Mode::Forwarder | Mode::ForwarderLean => {
            let component = match mode {
                Mode::Direct => "hello",
                Mode::Forwarder => "forwarder",
                _ => "forwarder-lean",
            };
            apps.main
                .handle_with(component, get("hello.localhost:3000", "/"), client)
                .await
        }
        Mode::Dispatcher | Mode::CustomDomainCached | Mode::CustomDomainUncached | Mode::Health => {
            let (app, host, path) = match mode {
                Mode::Dispatcher => (&apps.main, "hello.localhost:3000", "/"),
                Mode::CustomDomainCached => (&apps.main, "shop.example.com", "/"),
                Mode::CustomDomainUncached => (&apps.uncached, "shop.example.com", "/"),
                _ => (&apps.main, "localhost:3000", "/health"),
            };
            app.handle(get(host, path), client).await.expect("has a Host")
        }
    };
    assert_eq!(response.status(), 200, "{} failed", mode.label());
    let body = response.into_body().collect().await.expect("body").to_bytes();
    assert!(!body.is_empty());
}

async fn sample(apps: &Apps, mode: Mode, duration: Duration, concurrency: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let apps = apps.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while started.elapsed() < duration {
                one_request(&apps, mode).await;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(0.5);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(24);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let only: Option<Vec<usize>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').filter_map(|i| i.trim().parse().ok()).collect());

    // One worker thread: the components run on one core, as in the spin-facts measurements.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let apps = Apps {
            main: app_with(&[]),
            uncached: app_with(&[("domain_cache_ttl_s", "0"), ("domain_negative_ttl_s", "0")]),
        };
        let modes: Vec<(usize, Mode)> = MODES
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, _)| only.as_ref().is_none_or(|o| o.contains(i)))
            .collect();
        for (_, mode) in &modes {
            one_request(&apps, *mode).await; // warm-up, and a check that each mode works
        }
        let mut results = vec![Vec::new(); MODES.len()];
        for round in 0..rounds {
            // Every other round runs the modes backwards, so a drift in machine speed during a
            // round does not favour the modes that come first.
            let mut order = modes.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for (i, mode) in &order {
                results[*i].push(sample(&apps, *mode, Duration::from_secs_f64(seconds), concurrency).await);
            }
        }
        println!("requests/s (median of {rounds} x {seconds}s samples, concurrency {concurrency}, one core):");
        let medians: Vec<f64> = results.iter().map(|r| median(r.clone())).collect();
        for (i, mode) in &modes {
            println!("  {:<38} {:>9.0}", mode.label(), medians[*i]);
        }
        // Ratios pair the two modes' samples of the same round, so slow drifts cancel. A forward
        // round and the reversed one after it are combined (geometric mean), so a drift within
        // rounds cancels too; the median over those pairs is printed, with the range of the
        // per-round ratios.
        println!("ratios (median over pairs of rounds, and the per-round range):");
        let ratio = |label: &str, top: usize, bottom: usize, target: &str| {
            if let Some((value, low, high)) = paired_ratio(&results[top], &results[bottom]) {
                println!("  {label:<34}{value:.3}  ({low:.3}-{high:.3}){target}");
            }
        };
        ratio("b/a (chaining cost)", 1, 0, "");
        ratio("c/b (dispatcher vs forwarder)", 3, 1, "   target >= 0.95");
        ratio("c/b' (vs forwarder, same stack)", 3, 2, "   the dispatcher's own work");
        ratio("d/c (custom domain, cached)", 4, 3, "   target >= 0.9");
        ratio("e/c (custom domain, uncached)", 5, 3, "");
        // Host calls and guest instructions are what a component costs on Spin (see
        // docs/performance.md), so their counts explain the ratios. Both are exact, not timed.
        for (counting, title) in [
            (Counting::HostCalls, "host calls per request (front component + hello):"),
            (
                Counting::GuestInstructions,
                "guest instructions per request (wasmtime fuel; front component + hello):",
            ),
        ] {
            let apps = Apps {
                main: counting_app_with(&[], counting),
                uncached: counting_app_with(&[("domain_cache_ttl_s", "0"), ("domain_negative_ttl_s", "0")], counting),
            };
            println!("{title}");
            for (_, mode) in &modes {
                let app = match mode {
                    Mode::CustomDomainUncached => &apps.uncached,
                    _ => &apps.main,
                };
                // A component may still be running (writing its log line) after its response ends.
                let settled = || async {
                    for component in ["dispatcher", "forwarder", "forwarder-lean", "hello"] {
                        app.wait_idle(component).await;
                    }
                    match counting {
                        Counting::GuestInstructions => app.guest_instructions(),
                        _ => app.host_calls(),
                    }
                };
                let before = settled().await;
                one_request(&apps, *mode).await;
                let after = settled().await;
                let mut counts: Vec<(String, u64)> = after
                    .iter()
                    .map(|(id, n)| (id.clone(), n - before.get(id).copied().unwrap_or(0)))
                    .filter(|(_, delta)| *delta > 0)
                    .collect();
                counts.sort_by_key(|(id, _)| id == "hello");
                let listed: Vec<String> = counts.iter().map(|(id, n)| format!("{id} {n}")).collect();
                println!("  {:<38} {}", mode.label(), listed.join(" + "));
            }
        }
        for component in ["hello", "forwarder", "forwarder-lean", "dispatcher"] {
            let cost = apps.main.instantiation_cost(component, 1000).await;
            println!("instantiation {component:<14} {:>6.1} us", cost.as_secs_f64() * 1e6);
        }
        for package in [
            "libra-dispatcher",
            "docs",
            "hello",
            "echo",
            "forwarder",
            "forwarder-lean",
        ] {
            let size = std::fs::metadata(wasm_path(package)).map(|m| m.len()).unwrap_or(0);
            println!("wasm size {:<18} {:>8} bytes", package, size);
        }
    });
    Ok(())
}
