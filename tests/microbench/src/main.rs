//! The hot path's small formatting jobs (request id, timestamp, access-log line): the libraries
//! the dispatcher uses, each timed against the hand-written version it once had
//! (`hand_written.rs`). The rule of issue 12: a hand-written optimisation stays only if it saves
//! at least 2 µs per request. `scripts/bench micro` runs this natively and as wasm32-wasip2 under
//! wasmtime; the wasm figure is the one that counts, because that is how the dispatcher runs.
//!
//! Each pair's outputs are checked equal before they are timed, so a faster candidate that
//! produces something else fails instead of winning.

mod hand_written;

use std::hint::black_box;
use std::time::Instant;

use libra_dispatcher::log::LogLine;
use libra_dispatcher::{request_id, time};

const ROUNDS: usize = 7;
const ITERATIONS: u32 = 20_000;

/// Median ns per call over `ROUNDS` rounds of `ITERATIONS` calls.
fn time_ns(mut f: impl FnMut()) -> f64 {
    for _ in 0..ITERATIONS / 10 {
        f();
    }
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn report(what: &str, library: f64, hand: f64) {
    let gain_us = (library - hand) / 1000.0;
    let verdict = if gain_us >= 2.0 {
        "hand-write it"
    } else {
        "keep the library"
    };
    println!("{what:<12} library {library:>6.0} ns  hand-written {hand:>6.0} ns  gain {gain_us:>5.2} µs  {verdict}");
}

fn main() {
    println!(
        "target {}, {ROUNDS} rounds of {ITERATIONS} calls, median ns per call",
        std::env::consts::ARCH
    );

    let bytes = [0x5a_u8; 16];
    assert_eq!(request_id::generate(bytes), hand_written::request_id(bytes));
    report(
        "request id",
        time_ns(|| drop(black_box(request_id::generate(black_box(bytes))))),
        time_ns(|| drop(black_box(hand_written::request_id(black_box(bytes))))),
    );

    let (seconds, nanos) = (1_795_739_473_u64, 42_999_999_u32);
    assert_eq!(
        time::rfc3339_millis(seconds, nanos),
        hand_written::timestamp(seconds, nanos)
    );
    report(
        "timestamp",
        time_ns(|| drop(black_box(time::rfc3339_millis(black_box(seconds), black_box(nanos))))),
        time_ns(|| drop(black_box(hand_written::timestamp(black_box(seconds), black_box(nanos))))),
    );

    // The line of a routed request, as the dispatcher logs one.
    let line = LogLine {
        time: "2026-11-27T00:31:13.042Z",
        level: "info",
        request_id: "5a5a5a5a-5a5a-4a5a-9a5a-5a5a5a5a5a5a",
        method: Some("GET"),
        host: Some(Some("hello.localhost")),
        path: Some("/some/page"),
        route: Some(Some("subdomain")),
        worker: Some(Some("hello")),
        location: Some(Some("local")),
        status: Some(200),
        duration_ns: Some(1_234_567),
        ..LogLine::default()
    };
    assert_eq!(line.to_line(), hand_written::log_line(&line));
    report(
        "log line",
        time_ns(|| drop(black_box(black_box(&line).to_line()))),
        time_ns(|| drop(black_box(hand_written::log_line(black_box(&line))))),
    );
}
