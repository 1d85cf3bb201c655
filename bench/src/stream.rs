//! Streaming on a real Spin (issue 12): 100 MiB up and 100 MiB down through the dispatcher, and
//! through a logic-free forwarder in an app of its own, both chaining to the same `faulty` worker
//! (`/sink` counts an upload, `/stream` writes a download; neither hashes, so the worker is as
//! cheap as it can be and the forwarding path is what is timed). Spin runs pinned to one core,
//! this client on the other; the two apps alternate in rounds and the ratios are paired per
//! round. For every transfer Spin's peak resident memory is reset first (`clear_refs`), so the
//! growth printed is what that one body cost.
//!
//! One sample is `bodies` bodies in a row on one connection: a 100 MiB body takes only tens of
//! milliseconds here, too short to time alone on a noisy machine.
//!
//! Usage: libra-bench stream [MiB] [rounds] [bodies]   (defaults: 100 10 4). `BENCH_CORES=0,1` as for
//! libra-bench spin.

use std::time::Instant;

use anyhow::{Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::rt::TokioIo;
use libra_test_host::spin_cli::{ExtraWorker, SpinApp, SpinOptions, bench_cores, pin_this_process, write_small_app};
use libra_test_host::stats::{median, paired_ratio};
use libra_test_host::{set_variable, wasm_path};

const CHUNK: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Upload,
    Download,
}

/// Bodies through one app: throughput, and the most one body cost Spin's resident memory.
struct Transfer {
    mib_per_s: f64,
    peak_growth_mib: f64,
}

/// The shipped app, with `faulty` in its namespace and a body cap above the bodies sent.
fn dispatcher_app(core: &str, cap: u64) -> Result<SpinApp> {
    let mut options = SpinOptions::pinned(core);
    options.extra_workers.push(ExtraWorker {
        id: "faulty".into(),
        wasm: wasm_path("faulty"),
        allowed_outbound_hosts: Vec::new(),
        variables: Vec::new(),
    });
    set_variable(&mut options.variables, "workers", "echo,faulty,hello");
    set_variable(&mut options.variables, "max_body_bytes", &cap.to_string());
    SpinApp::start(&options)
}

/// An app of its own: `forwarder-stream` on every path, chaining to `<first label>.spin.internal`,
/// and `faulty` behind it.
fn forwarder_app(core: &str) -> Result<(SpinApp, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let manifest = write_small_app(
        dir.path(),
        "forwarder",
        (
            "forwarder",
            &wasm_path("forwarder-stream"),
            &["http://faulty.spin.internal"],
        ),
        &[("faulty", &wasm_path("faulty"))],
    )?;
    let options = SpinOptions {
        manifest,
        as_is: true,
        ..SpinOptions::pinned(core)
    };
    Ok((SpinApp::start(&options)?, dir))
}

async fn transfer(app: &SpinApp, direction: Direction, mib: usize, bodies: usize) -> Result<Transfer> {
    let size = (mib * CHUNK) as u64;
    let stream = tokio::net::TcpStream::connect(app.addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let chunk = Bytes::from(vec![0x5a_u8; CHUNK]);
    let mut seconds = 0.0;
    let mut peak_growth_kib = 0;
    for _ in 0..bodies {
        let frames = std::iter::repeat_n(chunk.clone(), if direction == Direction::Upload { mib } else { 0 })
            .map(|c| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(c)));
        let request = match direction {
            Direction::Upload => http::Request::put("/sink").header("content-length", size),
            Direction::Download => http::Request::get(format!("/stream?bytes={size}")),
        }
        .header("host", "faulty.localhost")
        .body(StreamBody::new(futures::stream::iter(frames)))?;

        app.reset_peak_memory()?;
        let (rss_before, _) = app.memory_kib()?;
        let started = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let mut body = response.into_body();
        let mut received = 0u64;
        let mut text = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                received += data.len() as u64;
                if direction == Direction::Upload {
                    text.extend_from_slice(&data);
                }
            }
        }
        seconds += started.elapsed().as_secs_f64();
        let (_, peak) = app.memory_kib()?;
        peak_growth_kib = peak_growth_kib.max(peak.saturating_sub(rss_before));
        let complete = match direction {
            Direction::Upload => String::from_utf8_lossy(&text) == size.to_string(),
            Direction::Download => received == size,
        };
        if status != 200 || !complete {
            bail!(
                "status {status}: {}",
                if direction == Direction::Upload {
                    format!("the worker counted {}", String::from_utf8_lossy(&text))
                } else {
                    format!("{received} of {size} bytes arrived")
                }
            );
        }
    }
    Ok(Transfer {
        mib_per_s: (mib * bodies) as f64 / seconds,
        peak_growth_mib: peak_growth_kib as f64 / 1024.0,
    })
}

pub fn run(args: &[String]) -> Result<()> {
    let mib: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(100);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let bodies: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let (spin_core, client_core) = bench_cores()?;
    let (spin_core, client_core) = (spin_core.as_str(), client_core.as_str());

    let dispatcher = dispatcher_app(spin_core, (mib as u64 + 1) << 20)?;
    let (forwarder, _dir) = forwarder_app(spin_core)?;
    pin_this_process(client_core)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let apps = [("dispatcher", &dispatcher), ("forwarder", &forwarder)];
    let directions = [("upload", Direction::Upload), ("download", Direction::Download)];

    // Warm-up: the first instances and buffers are not charged to the measured bodies.
    for (_, app) in apps {
        for (_, direction) in directions {
            runtime.block_on(transfer(app, direction, mib.min(16), 2))?;
        }
    }
    // results[app][direction]: one transfer per round.
    let mut results: Vec<Vec<Vec<Transfer>>> = vec![vec![Vec::new(), Vec::new()], vec![Vec::new(), Vec::new()]];
    for round in 0..rounds {
        let mut order = [0, 1];
        if round % 2 == 1 {
            order.reverse();
        }
        for (d, (_, direction)) in directions.iter().enumerate() {
            for a in order {
                results[a][d].push(runtime.block_on(transfer(apps[a].1, *direction, mib, bodies))?);
            }
        }
    }

    println!(
        "real Spin, Spin on core {spin_core}, client on core {client_core}: {rounds} rounds of {bodies} bodies of {mib} MiB each way per app"
    );
    println!(
        "  {:<12} {:<10} {:>10} {:>16} {:>22}",
        "app", "direction", "MiB/s", "(range)", "peak RSS growth per body, MiB"
    );
    for (a, (app, _)) in apps.iter().enumerate() {
        for (d, (direction, _)) in directions.iter().enumerate() {
            let rates: Vec<f64> = results[a][d].iter().map(|t| t.mib_per_s).collect();
            let growth: Vec<f64> = results[a][d].iter().map(|t| t.peak_growth_mib).collect();
            let low = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let high = rates.iter().copied().fold(0.0, f64::max);
            println!(
                "  {app:<12} {direction:<10} {:>10.0} {:>16} {:>10.1} (max {:.1})",
                median(rates.clone()),
                format!("({low:.0}-{high:.0})"),
                median(growth.clone()),
                growth.iter().copied().fold(0.0, f64::max),
            );
        }
    }
    println!("ratios, dispatcher/forwarder (median over rounds, and the per-round range):");
    for (d, (direction, _)) in directions.iter().enumerate() {
        let rate = |a: usize| results[a][d].iter().map(|t| t.mib_per_s).collect::<Vec<f64>>();
        if let Some((value, low, high)) = paired_ratio(&rate(0), &rate(1)) {
            println!("  {direction:<10} {value:.3}  ({low:.3}-{high:.3})   target >= 0.90");
        }
    }
    Ok(())
}
