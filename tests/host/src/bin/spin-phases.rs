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
//! Usage: spin-phases <dispatcher.wasm> [seconds] [rounds]   (defaults 5 3)

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use libra_test_host::project_root;
use libra_test_host::spin_cli::{SpinApp, SpinOptions, bench_cores};
use libra_test_host::stats::median;

/// The shipped manifest with every source made absolute and the dispatcher's replaced (edited
/// as text: Spin reads the file, so it stays as written).
fn manifest(dir: &std::path::Path, dispatcher: &std::path::Path) -> Result<PathBuf> {
    let root = project_root();
    let shipped = std::fs::read_to_string(root.join("spin.toml"))?;
    let dispatcher_source = "source = \"target/wasm32-wasip2/release/libra_dispatcher.wasm\"";
    if !shipped.contains(dispatcher_source) {
        bail!("spin.toml no longer has `{dispatcher_source}`");
    }
    let text = shipped
        .replace(
            dispatcher_source,
            &format!("source = {:?}", dispatcher.display().to_string()),
        )
        .replace("source = \"target/", &format!("source = \"{}/target/", root.display()));
    let path = dir.join("spin.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wasm = PathBuf::from(
        args.first()
            .context("usage: spin-phases <dispatcher.wasm> [seconds] [rounds]")?,
    );
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let (spin_core, wrk_core) = bench_cores()?;
    let dir = tempfile::tempdir()?;
    let options = SpinOptions {
        manifest: manifest(dir.path(), &wasm)?,
        as_is: true,
        ..SpinOptions::pinned(&spin_core)
    };
    let app = SpinApp::start(&options)?;
    let wrk = |seconds: u64| -> Result<()> {
        let status = Command::new("taskset")
            .args(["-c", &wrk_core, "wrk", "-t1", "-c1", &format!("-d{seconds}s")])
            .args(["-H", "Host: hello.localhost"])
            .arg(format!("http://{}/", app.addr))
            .stdout(std::process::Stdio::null())
            .status()
            .context("running wrk (apt-get install wrk)")?;
        if !status.success() {
            bail!("wrk failed");
        }
        Ok(())
    };
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
