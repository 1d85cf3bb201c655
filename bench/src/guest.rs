//! Guest time per request on a real Spin: how long each component instance spent running its own
//! WebAssembly, as Spin measures it (the `cpu-time-metrics` call hook of Spin's default build,
//! emitted as the trace event `histogram.spin.component_cpu_time` when
//! `RUST_LOG=spin_factors_executor=trace`). Host calls are outside it; the guest's instructions,
//! the epoch checks Spin compiles in, and the host's resource destructors run from the guest are
//! inside. The modes run at the same time, each from its own `wrk -c2`, so a drift in machine
//! speed hits them alike; Spin is pinned to one core, the clients to the other.
//!
//! Modes: the lean forwarder (l), the dispatcher by subdomain (c), and with `BENCH_V_WASM=<file>`
//! that build of the dispatcher beside the shipped one, configured as it is (v).
//!
//! Usage: libra-bench guest [seconds]   (default 10)

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use libra_test_host::spin_cli::{SpinApp, SpinOptions, bench_cores};
use libra_test_host::stats::median;

pub fn run(args: &[String]) -> Result<()> {
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let (spin_core, wrk_core) = bench_cores()?;
    let mut options = SpinOptions::pinned(&spin_core);
    options
        .env
        .push(("RUST_LOG".into(), "spin_factors_executor=trace".into()));
    crate::apps::add_lean_forwarder(&mut options);
    let mut modes = vec![
        ("(l) lean forwarder", "localhost", "/bench/forwarder-lean/"),
        ("(c) dispatcher, subdomain", "hello.localhost", "/"),
    ];
    if options.add_bench_variant() {
        modes.push((
            "(v) BENCH_V_WASM's dispatcher",
            "hello.localhost",
            "/bench/dispatcher-variant/",
        ));
    }
    let app = SpinApp::start(&options)?;
    let wrk = |host: &str, path: &str, seconds: u64| {
        Command::new("taskset")
            .args(["-c", &wrk_core, "wrk", "-t1", "-c2", &format!("-d{seconds}s"), "-H"])
            .arg(format!("Host: {host}"))
            .arg(format!("{}{path}", app.url()))
            .stdout(Stdio::null())
            .spawn()
            .context("wrk (apt-get install wrk)")
    };
    for (_, host, path) in &modes {
        wrk(host, path, 1)?.wait()?;
    }
    let skip = app.spin_stderr().lines().count();
    let mut clients = Vec::new();
    for (_, host, path) in &modes {
        clients.push(wrk(host, path, seconds)?);
    }
    for mut client in clients {
        client.wait()?;
    }
    // `... histogram.spin.component_cpu_time=4.1401e-5 component_id="hello" unit="s"`
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in app.spin_stderr().lines().skip(skip) {
        let Some((_, rest)) = line.split_once("component_cpu_time=") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let seconds: f64 = fields.next().context("a value")?.parse()?;
        let Some(component) = fields.find_map(|f| f.strip_prefix("component_id=")) else {
            continue;
        };
        times
            .entry(component.trim_matches('"').to_string())
            .or_default()
            .push(seconds * 1e6);
    }
    if times.is_empty() {
        bail!("Spin logged no guest times: is this Spin built with cpu-time-metrics (its default)?");
    }
    println!(
        "real Spin, Spin on core {spin_core}, {} wrk -c2 at once on core {wrk_core} for {seconds} s: guest µs per instance",
        modes.len()
    );
    println!(
        "  {:<22} {:>8} {:>8} {:>8} {:>8}",
        "component", "instances", "p25", "median", "p75"
    );
    for (component, mut values) in times {
        values.sort_by(f64::total_cmp);
        let quartile = |q: usize| values[(values.len() - 1) * q / 4];
        println!(
            "  {:<22} {:>8} {:>8.1} {:>8.1} {:>8.1}",
            component,
            values.len(),
            quartile(1),
            median(values.clone()),
            quartile(3)
        );
    }
    let labels: Vec<&str> = modes.iter().map(|(label, _, _)| *label).collect();
    println!("  (modes at once: {}; every one chains to hello)", labels.join(", "));
    Ok(())
}
