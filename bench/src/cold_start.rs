//! Cold start on a real Spin (issue 12): for the dispatcher app (the shipped `spin.toml`) and
//! for a forwarder app (`forwarder-lean` on every path, chaining to `hello`), the time from
//! starting `spin up` to its first answered request, split into "ready" (Spin printed its
//! address) and the first request's latency, with the second request's for comparison. Both
//! request `hello`'s page. Spin runs pinned to one core, this client on the other; the two apps
//! alternate, one `spin up` at a time, each stopped before the next starts.
//!
//! Spin compiles each component when it loads it, and keeps the result in wasmtime's cache
//! (`~/.cache/spin`); the first start of a new build pays the compilation, later starts read the
//! cache. Both are printed: the first run of each app is "cache cold" only if the cache has no
//! entry for this build yet.
//!
//! Usage: libra-bench cold-start [runs]   (default 7). `BENCH_CORES=0,1` as for libra-bench spin.

use std::time::Instant;

use anyhow::{Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use libra_test_host::spin_cli::{SpinApp, SpinOptions, bench_cores, pin_this_process, write_small_app};
use libra_test_host::stats::median;
use libra_test_host::wasm_path;

/// One GET for `hello`'s page on a new connection; its latency in ms.
async fn get_hello(app: &SpinApp, host: &str) -> Result<f64> {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(app.addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get("/")
        .header("host", host)
        .body(Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if status != 200 || !String::from_utf8_lossy(&body).contains("hello") {
        bail!("{host}: status {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(ms)
}

/// Start to ready, then the first and second requests, in ms.
fn one_start(runtime: &tokio::runtime::Runtime, options: &SpinOptions, host: &str) -> Result<[f64; 3]> {
    let started = Instant::now();
    let app = SpinApp::start(options)?;
    let ready = started.elapsed().as_secs_f64() * 1e3;
    let first = runtime.block_on(get_hello(&app, host))?;
    let second = runtime.block_on(get_hello(&app, host))?;
    drop(app);
    Ok([ready, first, second])
}

pub fn run(args: &[String]) -> Result<()> {
    let runs: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(7);
    let (spin_core, client_core) = bench_cores()?;
    let (spin_core, client_core) = (spin_core.as_str(), client_core.as_str());
    pin_this_process(client_core)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let dispatcher = SpinOptions::pinned(spin_core);
    let forwarder = SpinOptions {
        manifest: write_small_app(
            dir.path(),
            "forwarder",
            (
                "forwarder",
                &wasm_path("forwarder-lean"),
                &["http://hello.spin.internal"],
            ),
            &[("hello", &wasm_path("hello"))],
        )?,
        as_is: true,
        ..SpinOptions::pinned(spin_core)
    };
    let apps = [
        ("dispatcher app", &dispatcher, "hello.localhost"),
        ("forwarder app", &forwarder, "localhost"),
    ];
    // results[app]: [ready, first, second] per run.
    let mut results: Vec<Vec<[f64; 3]>> = vec![Vec::new(), Vec::new()];
    for run in 0..runs {
        let mut order = [0, 1];
        if run % 2 == 1 {
            order.reverse();
        }
        for a in order {
            results[a].push(one_start(&runtime, apps[a].1, apps[a].2)?);
        }
    }
    println!(
        "real Spin, Spin on core {spin_core}, client on core {client_core}: {runs} starts of each app, alternating"
    );
    println!(
        "  {:<16} {:>22} {:>18} {:>18} {:>20}",
        "app", "start -> first answer", "start -> ready", "first request", "second request"
    );
    for (a, (name, _, _)) in apps.iter().enumerate() {
        let column = |i: usize| median(results[a][1..].iter().map(|r| r[i]).collect());
        let total = median(results[a][1..].iter().map(|r| r[0] + r[1]).collect());
        println!(
            "  {name:<16} {total:>19.1} ms {:>15.1} ms {:>15.2} ms {:>17.2} ms",
            column(0),
            column(1),
            column(2)
        );
        let [ready, first, second] = results[a][0];
        println!(
            "  {:<16} {:>19.1} ms {ready:>15.1} ms {first:>15.2} ms {second:>17.2} ms   (first run: the compilation cache may be cold)",
            "",
            ready + first
        );
    }
    println!("(medians over runs 2..{runs}; the line under each is run 1)");
    Ok(())
}
