//! The noisy-neighbour benchmark on a real Spin (`scripts/bench noisy`): `spin up` pinned to one
//! core; on the other, `wrk` (closed loop, concurrency 4) for a quiet tenant (`hello`) and, at
//! the same time, an open-loop client sending a CPU-heavy neighbour (`/burn?ms=20`, the faulty
//! worker) at a fixed rate, as real users send: a request goes out on time whether or not the
//! earlier ones were answered. Scenarios, interleaved in rounds (alternately forwards and
//! backwards) and compared per round:
//!
//!   (q) the quiet tenant alone;
//!   (f) under a flood of the neighbour (`--rate` req/s), with no limit;
//!   (k) under the neighbour keeping to its limit itself (`--limit` req/s, no limit configured):
//!       the best any limiter can leave the quiet tenant;
//!   (L) under the same flood, the neighbour limited to `limit`/s by `rate_limits` (its default
//!       burst: the whole limit at once);
//!   (S) the same with `burst 1`: one request per `1/limit` s, spread out as (k) sends them.
//!
//! Goal: S/k (and L/k) >= 0.85 for the quiet tenant's req/s and <= 2 for its p99.
//!
//! Then, side by side in rounds with wrk at concurrency 16: refusals per second (a tenant over its
//! limit, every request refused) against forwarded requests per second (`hello`) and against the
//! dispatcher's own `/health` (Spin's floor for an answer that calls no worker), and c/l with a
//! limited tenant against an unlimited one (the same `hello` under another name, with a limit it
//! never reaches) against the lean forwarder.
//!
//! Usage: libra-bench noisy [seconds-per-run] [rounds] [flood-rate] [limit] [burn-ms]  (defaults 8 3 300 10 20)
//! `NOISY_STORE=file` (the default: Spin's key-value store in a SQLite file, as a plain
//! `spin up` has it), `memory` (Spin's SQLite store in memory, a runtime configuration without a
//! path) or `redis` (a `redis-server` started for the run, on the clients' core).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use libra_test_host::spin_cli::{self, ExtraWorker, SpinApp, SpinOptions, WrkReport, bench_cores, pin_this_process};
use libra_test_host::stats::{median, paired_ratio};
use libra_test_host::{set_variable, wasm_path};

/// Runs wrk (pinned to `core`); answers that are not 2xx are counted, not refused (a refusal
/// benchmark is all 429s). A starved tenant's requests take seconds: they must count in its
/// latency, not time out. A request still unanswered when the run ends is not in wrk's figures:
/// under a flood, req/s says what the tenant got.
fn wrk(core: &str, url: &str, host: &str, seconds: f64, concurrency: usize) -> Result<WrkReport> {
    let text = spin_cli::wrk_text(core, url, host, seconds, concurrency, &["--timeout", "30s"])?;
    WrkReport::parse(&text).with_context(|| format!("{host}: {text}"))
}

/// What the open-loop client saw of the neighbour.
#[derive(Debug, Default)]
struct Neighbour {
    sent: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
    /// Not sent: the client already had `MAX_IN_FLIGHT` requests waiting.
    skipped: AtomicU64,
    in_flight: AtomicU64,
}

/// One run of the neighbour: sent, answered 200, answered 429, failed or skipped, and how long
/// its backlog took to drain after the quiet tenant's run, in ms.
type NeighbourRun = (u64, u64, u64, u64, u64);

/// Bounds the neighbour's backlog, so a flood ends when its run does (Spin still works through
/// what was sent; the run waits for that before the next one starts).
const MAX_IN_FLIGHT: u64 = 512;

/// Sends `GET <path>` with `Host: host` to `addr` at `rate` per second for `duration`, each on
/// time whatever happened to the earlier ones, over keep-alive connections; then waits until
/// every answer is in.
async fn open_loop(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
    rate: f64,
    duration: Duration,
) -> Arc<Neighbour> {
    let stats = Arc::new(Neighbour::default());
    let idle: Arc<std::sync::Mutex<Vec<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>>> = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    let mut next = started;
    while next < started + duration {
        tokio::time::sleep_until(next).await;
        next += interval;
        if stats.in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            stats.skipped.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        stats.sent.fetch_add(1, Ordering::SeqCst);
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        let (stats, idle, host, path) = (stats.clone(), idle.clone(), host.to_string(), path.to_string());
        tasks.push(tokio::spawn(async move {
            let status = send(addr, &host, &path, &idle).await;
            match status {
                Some(200) => stats.ok.fetch_add(1, Ordering::SeqCst),
                Some(429) => stats.refused.fetch_add(1, Ordering::SeqCst),
                _ => stats.other.fetch_add(1, Ordering::SeqCst),
            };
            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    stats
}

async fn send(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
    idle: &std::sync::Mutex<Vec<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>>,
) -> Option<u16> {
    let reused = idle.lock().unwrap().pop();
    let mut sender = match reused {
        Some(sender) if sender.is_ready() => sender,
        _ => {
            let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(connection);
            sender
        }
    };
    let request = http::Request::builder()
        .uri(path)
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    idle.lock().unwrap().push(sender);
    Some(status)
}

/// The shipped app with the benchmark's tenants: `burn`, `burn-limited` and `burn-smooth` (the
/// faulty worker, CPU-heavy on `/burn`), `hello-refused` and `hello-limited` (hello under other
/// names), and the lean forwarder to `hello` for c/l.
fn app(core: &str, limit: u64, runtime_config: Option<String>) -> Result<SpinApp> {
    let mut options = SpinOptions::pinned(core);
    options.runtime_config = runtime_config;
    for (id, package) in [
        ("burn", "faulty"),
        ("burn-limited", "faulty"),
        ("burn-smooth", "faulty"),
        ("hello-refused", "hello"),
        ("hello-limited", "hello"),
    ] {
        options.extra_workers.push(ExtraWorker {
            id: id.into(),
            wasm: wasm_path(package),
            allowed_outbound_hosts: Vec::new(),
            variables: Vec::new(),
        });
    }
    crate::apps::add_lean_forwarder(&mut options);
    set_variable(
        &mut options.variables,
        "workers",
        "echo,hello,burn,burn-limited,burn-smooth,hello-refused,hello-limited",
    );
    set_variable(
        &mut options.variables,
        "rate_limits",
        &format!(
            "burn-limited:{limit}/s, burn-smooth:{limit}/s burst 1, hello-refused:1/h, hello-limited:1000000000/s"
        ),
    );
    SpinApp::start(&options)
}

pub fn run(args: &[String]) -> Result<()> {
    let arg = |i: usize, default: f64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (seconds, rounds, rate, limit, burn_ms) = (
        arg(0, 8.0),
        arg(1, 3.0) as usize,
        arg(2, 300.0),
        arg(3, 10.0),
        arg(4, 20.0),
    );
    let (spin_core, client_core) = bench_cores()?;
    pin_this_process(&client_core)?;
    let store = std::env::var("NOISY_STORE").unwrap_or_else(|_| "file".into());
    // Redis on the clients' core: in production it runs elsewhere, not on Spin's.
    let redis = (store == "redis")
        .then(|| libra_test_host::redis_server::TestRedis::start_on(Some(&client_core)))
        .transpose()?;
    let runtime_config = match store.as_str() {
        "file" => None,
        "memory" => Some("[key_value_store.default]\ntype = \"spin\"\n".to_string()),
        "redis" => redis.as_ref().map(|redis| redis.runtime_config()),
        other => bail!("NOISY_STORE={other}: file, memory or redis"),
    };
    let app = app(&spin_core, limit as u64, runtime_config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let burn_path = format!("/burn?ms={burn_ms}");
    let url = app.url();
    // Warm-up, and the checks that the tenants are what they should be.
    let quiet = wrk(&client_core, &url, "hello.localhost", 1.0, 4)?;
    if quiet.non_2xx > 0 {
        bail!("the quiet tenant answers errors");
    }
    let refused = wrk(&client_core, &url, "hello-refused.localhost", 1.0, 16)?;
    if refused.non_2xx + 1 < refused.requests {
        bail!("hello-refused is not refused: {refused:?}");
    }

    // (q), (f), (k), (L): the quiet tenant's samples and what the neighbour got.
    let scenarios: [(&str, Option<(&str, f64)>); 5] = [
        ("(q) quiet tenant alone", None),
        ("(f) neighbour flooding, no limit", Some(("burn.localhost", rate))),
        ("(k) neighbour keeping to the limit", Some(("burn.localhost", limit))),
        (
            "(L) neighbour flooding, limited",
            Some(("burn-limited.localhost", rate)),
        ),
        (
            "(S) flooding, limited with burst 1",
            Some(("burn-smooth.localhost", rate)),
        ),
    ];
    let mut samples: Vec<Vec<WrkReport>> = vec![Vec::new(); scenarios.len()];
    let mut neighbours: Vec<Vec<NeighbourRun>> = vec![Vec::new(); scenarios.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..scenarios.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (_, neighbour) = scenarios[i];
            let flood = neighbour.map(|(host, rate)| {
                let (addr, host, path) = (app.addr, host.to_string(), burn_path.clone());
                runtime
                    .spawn(async move { open_loop(addr, &host, &path, rate, Duration::from_secs_f64(seconds)).await })
            });
            let sample = wrk(&client_core, &url, "hello.localhost", seconds, 4)?;
            samples[i].push(sample);
            if let Some(flood) = flood {
                let started = Instant::now();
                let stats = runtime.block_on(flood)?;
                neighbours[i].push((
                    stats.sent.load(Ordering::SeqCst),
                    stats.ok.load(Ordering::SeqCst),
                    stats.refused.load(Ordering::SeqCst),
                    stats.other.load(Ordering::SeqCst) + stats.skipped.load(Ordering::SeqCst),
                    started.elapsed().as_millis() as u64,
                ));
            }
        }
    }
    println!(
        "real Spin ({}), Spin on core {spin_core}, clients on core {client_core}: {rounds} rounds x {seconds} s; \
         quiet tenant: wrk -c4 on hello; neighbour: {rate} req/s of /burn?ms={burn_ms}, open loop; limit {limit}/s; \
         store: {store}",
        spin_version()?
    );
    println!(
        "  {:<40} {:>9} {:>9}   neighbour: sent, 200, 429, failed or skipped (per run, median), drain ms",
        "scenario", "req/s", "p99 ms"
    );
    for (i, (label, _)) in scenarios.iter().enumerate() {
        let neighbour = if neighbours[i].is_empty() {
            String::new()
        } else {
            let column =
                |f: fn(&(u64, u64, u64, u64, u64)) -> u64| median(neighbours[i].iter().map(|n| f(n) as f64).collect());
            format!(
                "{:.0}, {:.0}, {:.0}, {:.0}, {:.0}",
                column(|n| n.0),
                column(|n| n.1),
                column(|n| n.2),
                column(|n| n.3),
                column(|n| n.4)
            )
        };
        println!(
            "  {:<40} {:>9.0} {:>9.1}   {neighbour}",
            label,
            median(samples[i].iter().map(|s| s.requests_per_s).collect()),
            median(samples[i].iter().map(|s| s.p99_ms).collect()),
        );
    }
    let rates: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| s.iter().map(|s| s.requests_per_s).collect())
        .collect();
    let p99s: Vec<Vec<f64>> = samples.iter().map(|s| s.iter().map(|s| s.p99_ms).collect()).collect();
    println!("the quiet tenant, limited flood against the best case (median over rounds, and range):");
    for (i, label) in [(3, "L/k"), (4, "S/k")] {
        if let Some((value, low, high)) = paired_ratio(&rates[i], &rates[2]) {
            println!(
                "  {:<40} {value:.3}  ({low:.3}-{high:.3})   target >= 0.85",
                format!("{label} req/s")
            );
        }
        if let Some((value, low, high)) = paired_ratio(&p99s[i], &p99s[2]) {
            println!(
                "  {:<40} {value:.3}  ({low:.3}-{high:.3})   target <= 2",
                format!("{label} p99")
            );
        }
    }
    if let Some((value, low, high)) = paired_ratio(&rates[1], &rates[0]) {
        println!("  {:<40} {value:.3}  ({low:.3}-{high:.3})", "f/q req/s (no limit)");
    }

    // Refusals against forwards, and c/l limited against unlimited, wrk -c16, side by side.
    let modes = [
        ("(r) refused (429), hello-refused", "hello-refused.localhost", "/"),
        ("(h) the dispatcher's /health", "localhost", "/health"),
        ("(c) forwarded, hello", "hello.localhost", "/"),
        (
            "(m) forwarded, hello-limited (admitted)",
            "hello-limited.localhost",
            "/",
        ),
        ("(l) lean forwarder -> hello", "localhost", "/bench/forwarder-lean"),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds * 2 {
        let mut order: Vec<usize> = (0..modes.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (_, host, path) = modes[i];
            let sample = wrk(&client_core, &format!("{url}{path}"), host, seconds / 2.0, 16)?;
            let refusals_expected = modes[i].0.starts_with("(r)");
            if refusals_expected != (sample.non_2xx > 0) {
                bail!(
                    "{}: {} of {} answers were not 2xx",
                    modes[i].0,
                    sample.non_2xx,
                    sample.requests
                );
            }
            rates[i].push(sample.requests_per_s);
            p99s[i].push(sample.p99_ms);
        }
    }
    println!("wrk -c16, {} rounds x {} s:", rounds * 2, seconds / 2.0);
    for (i, (label, _, _)) in modes.iter().enumerate() {
        let rate = median(rates[i].clone());
        println!(
            "  {:<40} {:>9.0} req/s {:>7.0} us/req {:>7.2} p99 ms",
            label,
            rate,
            1e6 / rate,
            median(p99s[i].clone())
        );
    }
    for (top, bottom, label) in [
        (0, 2, "r/c (refusals per forward)"),
        (0, 1, "r/h (refusals per /health)"),
        (2, 4, "c/l (unlimited tenant)"),
        (3, 4, "m/l (limited tenant)"),
        (3, 2, "m/c (limited against unlimited)"),
    ] {
        if let Some((value, low, high)) = paired_ratio(&rates[top], &rates[bottom]) {
            println!("  {label:<40} {value:.3}  ({low:.3}-{high:.3})");
        }
    }
    Ok(())
}

fn spin_version() -> Result<String> {
    Ok(String::from_utf8_lossy(
        &std::process::Command::new(spin_cli::spin_binary()?)
            .arg("--version")
            .output()?
            .stdout,
    )
    .trim()
    .to_string())
}
