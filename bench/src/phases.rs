//! Where a request's time goes inside the dispatcher, on a real Spin: the shipped app with the
//! dispatcher built with `phase-marks` (`scripts/bench phases` builds it), Spin pinned to one
//! core, `wrk -c1` on the other asking for `hello` by subdomain. The dispatcher notes the
//! monotonic clock at each phase; this prints, per phase, the median time it took (µs) and the
//! median time from the request's start. Instantiation and Spin's work before and after the
//! handler are outside the marks. The times are wall time on Spin's one core: a phase that waits
//! (a variable lookup's thread hand-off, the send) can include work Spin does meanwhile for the
//! chained request, such as resolving the app's variables for its allowed-hosts check and
//! running `hello`.
//!
//! Usage: libra-bench phases <dispatcher.wasm> [seconds] [rounds]   (defaults 5 3)

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use libra_test_host::spin_cli::{self, SpinApp, SpinOptions, bench_cores};
use libra_test_host::stats::median;

pub fn run(args: &[String]) -> Result<()> {
    let wasm = std::path::absolute(PathBuf::from(
        args.first()
            .context("usage: libra-bench phases <dispatcher.wasm> [seconds] [rounds]")?,
    ))?;
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let (spin_core, wrk_core) = bench_cores()?;
    let options = SpinOptions {
        sources: vec![("dispatcher".into(), wasm)],
        ..SpinOptions::pinned(&spin_core)
    };
    let app = SpinApp::start(&options)?;
    let url = format!("http://{}/", app.addr);
    let wrk = |seconds: u64| spin_cli::wrk(&wrk_core, &url, "hello.localhost", seconds as f64, 1);
    wrk(1)?;
    let warm = app.stdout("dispatcher").lines().count();
    for _ in 0..rounds {
        wrk(seconds)?;
    }
    // Each `PH` line: `phase=µs` from the start, in order.
    let lines: Vec<Vec<(String, f64)>> = app
        .stdout("dispatcher")
        .lines()
        .skip(warm)
        .filter_map(|line| line.strip_prefix("PH "))
        .map(|line| {
            line.split(' ')
                .filter_map(|pair| pair.split_once('='))
                .filter_map(|(phase, us)| Some((phase.to_string(), us.parse().ok()?)))
                .collect()
        })
        .collect();
    let Some(first) = lines.first() else {
        bail!("no phase lines: was the dispatcher built with --features phase-marks?");
    };
    let phases: Vec<String> = first.iter().map(|(phase, _)| phase.clone()).collect();
    println!(
        "real Spin, Spin on core {spin_core}, wrk -c1 on core {wrk_core}: {} requests, phase medians in µs",
        lines.len()
    );
    println!("  {:<16} {:>8} {:>12}", "phase", "took", "from start");
    for pair in phases.windows(2) {
        let at = |line: &Vec<(String, f64)>, phase: &str| line.iter().find(|(p, _)| p == phase).map(|(_, us)| *us);
        let took: Vec<f64> = lines
            .iter()
            .filter_map(|line| Some(at(line, &pair[1])? - at(line, &pair[0])?))
            .collect();
        let from_start: Vec<f64> = lines.iter().filter_map(|line| at(line, &pair[1])).collect();
        println!("  {:<16} {:>8.0} {:>12.0}", pair[1], median(took), median(from_start));
    }
    Ok(())
}
