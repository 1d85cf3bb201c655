//! Where the dispatcher's instructions go, by function: the footprint budgets
//! (tests/host/tests/e2e/footprint.rs) count instructions, and this says which code runs them.
//! Not timing, so not judged on Spin: the test host's fuel, deterministic from run to run
//! (`libra_test_host::profile` explains how stacks are charged).
//!
//! Usage: libra-bench profile <components-dir> [subdomain|refusal] [top]   (defaults subdomain 30)
//!
//! `components-dir` holds the components built with their names (`scripts/bench profile` builds
//! them, with symbols, into target/profile). The request is the footprint test's: a subdomain
//! `GET` of the hello page with `workers=hello`, or the same refused by `rate_limits=hello:1/h`.
//! Of three requests the one with the fewest instructions is reported (as the budgets take the
//! fast path). Prints the total and the top functions by self and by inclusive count, and writes
//! every stack with its count to `<components-dir>/<case>.folded`: diff two of them to see what a
//! change costs where.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use libra_test_host::profile::Folded;
use libra_test_host::{App, AppOptions, project_root, set_variable};

pub fn run(args: &[String]) -> Result<()> {
    let usage = "usage: libra-bench profile <components-dir> [subdomain|refusal] [top]";
    let dir = std::path::absolute(PathBuf::from(args.first().context(usage)?))?;
    let case = args.get(1).map(String::as_str).unwrap_or("subdomain");
    let top: usize = args.get(2).map(|t| t.parse()).transpose()?.unwrap_or(30);
    let refused = match case {
        "subdomain" => false,
        "refusal" => true,
        _ => bail!("{usage}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let profile = runtime.block_on(fewest(&dir, refused))?;
    let folded_path = dir.join(format!("{case}.folded"));
    std::fs::write(&folded_path, profile.to_text())?;

    println!("# guest instructions of one {case} request, by function (test host's fuel)");
    println!("total {}", profile.total());
    for (title, counts) in [
        ("self", profile.self_counts()),
        ("inclusive", profile.inclusive_counts()),
    ] {
        println!("\n{title:>12}  function");
        let mut sorted: Vec<(String, u64)> = counts.into_iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (function, count) in sorted.into_iter().take(top) {
            println!("{count:>12}  {function}");
        }
    }
    println!("\nevery stack: {}", folded_path.display());
    Ok(())
}

/// The profile of the cheapest of three requests.
async fn fewest(dir: &Path, refused: bool) -> Result<Folded> {
    let mut options = AppOptions {
        manifest: manifest_for(dir)?,
        capture_stdout: false,
        profile_guest_instructions: true,
        ..AppOptions::default()
    };
    set_variable(&mut options.variables, "workers", "hello");
    if refused {
        set_variable(&mut options.variables, "rate_limits", "hello:1/h");
    }
    let app = App::new(options)?;
    let client = "127.0.0.1:50000".parse().unwrap();
    let expected = if refused { 429 } else { 200 };
    if refused {
        // Spends the hour's one request.
        request(&app, client, 200).await?;
    }
    let mut best: Option<Folded> = None;
    for _ in 0..3 {
        app.reset_guest_profile();
        request(&app, client, expected).await?;
        let mut profile = app.guest_profile();
        profile.0.retain(|stack, _| stack.starts_with("dispatcher;"));
        if profile.total() == 0 {
            bail!("nothing profiled: were the components built with epoch interruption off?");
        }
        if best.as_ref().is_none_or(|b| profile.total() < b.total()) {
            best = Some(profile);
        }
    }
    Ok(best.expect("three requests"))
}

async fn request(app: &App, client: std::net::SocketAddr, expected: u16) -> Result<()> {
    let request = http::Request::builder()
        .uri("/")
        .header("host", "hello.localhost")
        .body(Empty::<Bytes>::new())?;
    let response = app.handle(request, client).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    // The dispatcher writes its log line after the response has ended.
    app.wait_idle("dispatcher").await;
    if status != expected {
        bail!("the request got {status}, not {expected}");
    }
    Ok(())
}

/// spin.toml with every component's source taken from `dir` (absolute, so the copy can live
/// there too).
fn manifest_for(dir: &Path) -> Result<PathBuf> {
    let original = std::fs::read_to_string(project_root().join("spin.toml"))?;
    let release = format!("source = \"{}/", dir.display());
    let manifest = original.replace("source = \"target/wasm32-wasip2/release/", &release);
    if manifest == original {
        bail!("spin.toml's sources are no longer under target/wasm32-wasip2/release/");
    }
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest)?;
    Ok(path)
}
