//! The benchmarks, one binary with a mode per measurement. `scripts/bench` builds what a mode
//! needs, runs it, and then `record`s its output into `docs/performance.md`.
//!
//!   libra-bench <mode> [arguments of the mode]
//!   libra-bench record <mode> <command line> < output
//!
//! Performance is judged on real Spin (`spin`, `stream`, `cold-start`, `guest`, `phases`,
//! `noisy`): Spin pinned to one core, the load on the other, paired rounds. `test-host` is the
//! fast inner loop in-process, and `soak` the long mixed run with a memory verdict. Each mode's
//! own module says what it measures and how to read it.

mod apps;
mod cold_start;
mod guest;
mod noisy;
mod phases;
mod profile;
mod record;
mod soak;
mod spin;
mod stream;
mod test_host;
mod traced;

use anyhow::{Result, bail};

/// (name, what it measures, entry point)
type Mode = (&'static str, &'static str, fn(&[String]) -> Result<()>);

const MODES: &[Mode] = &[
    (
        "spin",
        "every forwarding mode on a real `spin up`, paired per round",
        spin::run,
    ),
    (
        "test-host",
        "the same modes through the wasmtime test host, in-process",
        test_host::run,
    ),
    (
        "stream",
        "100 MiB up and down through the dispatcher and a forwarder",
        stream::run,
    ),
    (
        "cold-start",
        "`spin up` to the first answer, and the first requests",
        cold_start::run,
    ),
    (
        "guest",
        "guest time per instance, as Spin's cpu-time metric measures it",
        guest::run,
    ),
    (
        "phases",
        "where a request's time goes inside the dispatcher, phase by phase",
        phases::run,
    ),
    (
        "profile",
        "the dispatcher's instructions for one request, by function (test host)",
        profile::run,
    ),
    (
        "traced",
        "c/l with Spin exporting OpenTelemetry to a receiver, against without",
        traced::run,
    ),
    (
        "noisy",
        "a quiet tenant beside a flooding neighbour, with and without limits",
        noisy::run,
    ),
    (
        "soak",
        "20,000 mixed requests, then a 100 MiB body: answers, ids and memory",
        soak::run,
    ),
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else {
        bail!("usage: libra-bench <mode> [arguments]\n{}", usage());
    };
    if mode == "record" {
        return record::run(&args[1..]);
    }
    match MODES.iter().find(|(name, _, _)| name == mode) {
        Some((_, _, run)) => run(&args[1..]),
        None => bail!("no mode {mode:?}\n{}", usage()),
    }
}

fn usage() -> String {
    MODES
        .iter()
        .map(|(name, what, _)| format!("  {name:<11} {what}"))
        .collect::<Vec<_>>()
        .join("\n")
}
