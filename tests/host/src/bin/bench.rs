//! Requests per second through the test host, side by side in one run:
//!   (a) the `hello` worker invoked directly,
//!   (b) a logic-free forwarding component chaining to it,
//!   (c) the dispatcher routing `hello.localhost` to it.
//! The rounds interleave the modes so machine noise hits them alike; medians are reported.
//!
//! Usage: bench [seconds-per-sample] [rounds] [concurrency]   (defaults: 1 5 16)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use libra_test_host::{App, AppOptions, wasm_path};

#[derive(Clone, Copy)]
enum Mode {
    Direct,
    Forwarder,
    Dispatcher,
    Health,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Direct => "(a) hello, direct",
            Mode::Forwarder => "(b) forwarder -> hello",
            Mode::Dispatcher => "(c) dispatcher -> hello (subdomain)",
            Mode::Health => "(h) dispatcher /health (no chaining)",
        }
    }
}

async fn one_request(app: &App, mode: Mode) {
    let client: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let request = http::Request::builder()
        .uri("/")
        .header("host", "hello.localhost:3000")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = match mode {
        Mode::Direct => app.handle_with("hello", request, client).await,
        Mode::Forwarder => app.handle_with("forwarder", request, client).await,
        Mode::Dispatcher => app.handle(request, client).await,
        Mode::Health => {
            let request = http::Request::builder()
                .uri("/health")
                .header("host", "localhost:3000")
                .body(Empty::<Bytes>::new())
                .unwrap();
            app.handle(request, client).await
        }
    };
    assert_eq!(response.status(), 200, "{} failed", mode.label());
    let body = response.into_body().collect().await.expect("body").to_bytes();
    assert!(!body.is_empty());
}

async fn sample(app: &App, mode: Mode, duration: Duration, concurrency: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while started.elapsed() < duration {
                one_request(&app, mode).await;
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);

    // One worker thread: the components run on one core, as in the spin-facts measurements.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut options = AppOptions {
            capture_stdout: false,
            ..AppOptions::default()
        };
        for (name, value) in
            std::env::vars().filter_map(|(k, v)| k.strip_prefix("BENCH_VAR_").map(|n| (n.to_ascii_lowercase(), v)))
        {
            options.variables.insert(name, value);
        }
        let options =
            options.worker_with_outbound("forwarder", wasm_path("forwarder"), &["http://hello.spin.internal"]);
        let app = App::new(options).expect("app starts");
        let all = [Mode::Direct, Mode::Forwarder, Mode::Dispatcher, Mode::Health];
        let only: Option<usize> = std::env::var("BENCH_ONLY").ok().and_then(|v| v.parse().ok());
        let modes: Vec<Mode> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o == *i))
            .map(|(_, m)| *m)
            .collect();
        for &mode in &modes {
            one_request(&app, mode).await; // warm-up, and a check that each mode works
        }
        let mut results: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
        for _ in 0..rounds {
            for (i, mode) in modes.iter().enumerate() {
                results[i].push(sample(&app, *mode, Duration::from_secs_f64(seconds), concurrency).await);
            }
        }
        for component in ["hello", "forwarder", "dispatcher"] {
            let cost = app.instantiation_cost(component, 2000).await;
            println!("instantiation {component:<12} {:>6.1} us", cost.as_secs_f64() * 1e6);
        }
        let medians: Vec<f64> = results.into_iter().map(median).collect();
        println!("requests/s (median of {rounds} x {seconds}s samples, concurrency {concurrency}, one core):");
        for (mode, rps) in modes.iter().zip(&medians) {
            println!("  {:<38} {:>9.0}", mode.label(), rps);
        }
        if medians.len() == all.len() {
            println!("b/a (chaining cost)          {:.3}", medians[1] / medians[0]);
            println!(
                "c/b (dispatcher vs forwarder) {:.3}   target >= 0.95",
                medians[2] / medians[1]
            );
        }
        for package in ["libra-dispatcher", "hello", "echo", "forwarder"] {
            let size = std::fs::metadata(wasm_path(package)).map(|m| m.len()).unwrap_or(0);
            println!("wasm size {:<18} {:>8} bytes", package, size);
        }
    });
}
