//! What Spin's OpenTelemetry export costs the dispatcher, on a real Spin: the same app twice,
//! one `spin up` without an OTLP endpoint and one exporting to a receiver (the test suite's
//! OTLP/HTTP receiver, decoding every export as a collector would, on the client's core) with
//! Spin's own batching. Both Spins are pinned to one core and measured in turn, alternately
//! forwards and backwards, `wrk` on the other core: (l) the lean forwarder and (c) the
//! dispatcher by subdomain, in each. It prints c/l untraced and traced, paired per round, and
//! traced against untraced for each mode. The client sends no `traceparent`, so Spin starts a
//! trace per request, as for most traffic.
//!
//! Usage: libra-bench traced [seconds-per-round] [rounds] [concurrency]   (defaults: 4 6 16)

use anyhow::{Context, Result, bail};
use libra_test_host::otlp::OtlpReceiver;
use libra_test_host::spin_cli::{self, SpinApp, SpinOptions, bench_cores, pin_this_process};
use libra_test_host::stats::{median, paired_ratio};

const MODES: [(&str, &str, &str); 2] = [
    (
        "(l) forwarder, 64 KiB stack -> hello",
        "localhost",
        "/bench/forwarder-lean/",
    ),
    ("(c) dispatcher, subdomain", "hello.localhost", "/"),
];

fn app(spin_core: &str, env: Vec<(String, String)>) -> Result<SpinApp> {
    let mut options = SpinOptions::pinned(spin_core);
    crate::apps::add_lean_forwarder(&mut options);
    options.env.extend(env);
    SpinApp::start(&options)
}

fn rate(
    core: &str,
    app: &SpinApp,
    (label, host, path): (&str, &str, &str),
    seconds: f64,
    concurrency: usize,
) -> Result<f64> {
    let text =
        spin_cli::wrk(core, &format!("{}{path}", app.url()), host, seconds, concurrency).context(label.to_string())?;
    Ok(spin_cli::WrkReport::parse(&text)?.requests_per_s)
}

pub fn run(args: &[String]) -> Result<()> {
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(6);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let (spin_core, wrk_core) = bench_cores()?;
    // The receiver's threads inherit this: they decode on the client's core, not Spin's.
    pin_this_process(&wrk_core)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let receiver = runtime.block_on(OtlpReceiver::start())?;
    let untraced = app(&spin_core, Vec::new())?;
    let traced = app(&spin_core, receiver.spin_env_default_batching("libra-dispatcher"))?;
    let apps = [("untraced", &untraced), ("traced", &traced)];
    for (_, app) in apps {
        for mode in MODES {
            rate(&wrk_core, app, mode, 1.0, concurrency)?;
        }
    }
    // samples[app][mode]: requests a second, one per round.
    let mut samples = vec![vec![Vec::new(); MODES.len()]; apps.len()];
    for round in 0..rounds {
        let mut order: Vec<(usize, usize)> = (0..apps.len())
            .flat_map(|a| (0..MODES.len()).map(move |m| (a, m)))
            .collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (a, m) in order {
            samples[a][m].push(rate(&wrk_core, apps[a].1, MODES[m], seconds, concurrency)?);
        }
    }
    let exports = receiver.exports();
    let spans = exports.get("/v1/traces").copied().unwrap_or(0);
    if spans == 0 {
        bail!("the traced Spin exported no spans: {exports:?}");
    }
    println!(
        "real Spin, Spin on core {spin_core}, wrk and the OTLP receiver on core {wrk_core}: {rounds} rounds x {seconds} s, concurrency {concurrency}"
    );
    println!("  {:<48} {:>9} {:>9}", "mode", "req/s", "us/req");
    for (a, (name, _)) in apps.iter().enumerate() {
        for (m, (label, _, _)) in MODES.iter().enumerate() {
            let rate = median(samples[a][m].clone());
            println!("  {:<48} {:>9.0} {:>9.0}", format!("{label}, {name}"), rate, 1e6 / rate);
        }
    }
    println!("ratios (median over pairs of rounds, and the per-round range):");
    let show = |label: &str, top: &[f64], bottom: &[f64]| {
        if let Some((value, low, high)) = paired_ratio(top, bottom) {
            println!("  {label:<48} {value:>6.3}   [{low:.3}, {high:.3}]");
        }
    };
    show("c/l untraced", &samples[0][1], &samples[0][0]);
    show("c/l traced", &samples[1][1], &samples[1][0]);
    show("c traced / c untraced", &samples[1][1], &samples[0][1]);
    show("l traced / l untraced", &samples[1][0], &samples[0][0]);
    println!("  exports received: {exports:?}");
    Ok(())
}
