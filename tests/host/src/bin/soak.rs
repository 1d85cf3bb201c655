//! The soak: a real `spin up` of the shipped app serves a long mixed load, and nothing may leak.
//!
//! 64 clients on keep-alive connections send `SOAK_REQUESTS` (default 20,000) requests between
//! them, a fixed mix of every kind of answer (worker pages by subdomain, path and query, the
//! dispatcher's own endpoints, unknown workers and custom domains, bad hosts, bad paths, bodies
//! over the cap) and, among them, uploads to `echo` that add up to `SOAK_UPLOAD_MIB` (default
//! 100) MiB, each checked by its SHA-256. Before the measured run, the same run once warms every
//! instance slot the concurrency touches.
//!
//! It fails (exit 1) when any answer is not the one its kind must get, when a request id repeats
//! or is missing, or when the serving process's resident memory grew by more than
//! `SOAK_RSS_LIMIT_MIB` (default 20) MiB over the measured run. It prints the latency
//! percentiles of each kind and the memory before and after.
//!
//! Usage: scripts/soak   (builds the components, then runs this)

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use libra_test_host::harness::{AppSpec, HostKind, Running};
use sha2::{Digest, Sha256};

const CONCURRENCY: usize = 64;

/// A kind of request and the answer it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Subdomain,
    PathDispatch,
    QueryDispatch,
    Health,
    Namespace,
    UnknownWorker,
    UnknownCustomDomain,
    InvalidHost,
    InvalidPath,
    OverCap,
    Upload,
}

/// Out of every 20 requests (the uploads come on top, spread evenly).
const MIX: [(Kind, usize); 10] = [
    (Kind::Subdomain, 6),
    (Kind::PathDispatch, 3),
    (Kind::QueryDispatch, 2),
    (Kind::Health, 2),
    (Kind::Namespace, 1),
    (Kind::UnknownWorker, 2),
    (Kind::UnknownCustomDomain, 1),
    (Kind::InvalidHost, 1),
    (Kind::InvalidPath, 1),
    (Kind::OverCap, 1),
];

/// The app's body cap for the soak: uploads stay under it, `OverCap` goes over.
const MAX_BODY_BYTES: usize = 1 << 20;

struct Plan {
    kinds: Vec<Kind>,
    upload: Bytes,
    upload_sha256: String,
}

impl Plan {
    fn new(requests: usize, upload_mib: usize) -> Plan {
        // 256 KiB uploads: 400 of them make 100 MiB.
        let upload_size = 256 * 1024;
        let uploads = upload_mib * 1024 * 1024 / upload_size;
        let cycle: Vec<Kind> = MIX
            .iter()
            .flat_map(|(kind, n)| std::iter::repeat_n(*kind, *n))
            .collect();
        let others = requests.saturating_sub(uploads);
        let mut kinds: Vec<Kind> = (0..others).map(|i| cycle[i % cycle.len()]).collect();
        // Spread the uploads evenly through the run.
        let step = (kinds.len() / uploads.max(1)).max(1);
        for i in 0..uploads {
            kinds.insert((i * (step + 1)).min(kinds.len()), Kind::Upload);
        }
        // Deterministic, incompressible-looking content.
        let upload: Vec<u8> = (0..upload_size as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let upload_sha256 = hex(&Sha256::digest(&upload));
        Plan {
            kinds,
            upload: Bytes::from(upload),
            upload_sha256,
        }
    }

    fn request(&self, kind: Kind, n: usize) -> http::Request<Full<Bytes>> {
        let get = |host: &str, target: &str| {
            http::Request::get(target)
                .header("host", host)
                .body(Full::new(Bytes::new()))
                .expect("valid request")
        };
        match kind {
            Kind::Subdomain => get("hello.localhost", &format!("/page/{n}?n={n}")),
            Kind::PathDispatch => get("localhost", &format!("/dispatch/echo/p/{n}?n={n}")),
            Kind::QueryDispatch => get("localhost", &format!("/dispatch?worker=hello&n={n}")),
            Kind::Health => get("localhost", "/health"),
            Kind::Namespace => get("localhost", "/dispatch"),
            Kind::UnknownWorker => get(&format!("nobody-{}.localhost", n % 50), "/"),
            Kind::UnknownCustomDomain => get(&format!("shop-{}.example.com", n % 50), "/"),
            Kind::InvalidHost => get("bad_host!.localhost", "/"),
            Kind::InvalidPath => get("localhost", "/dispatch/echo/a/../../health"),
            Kind::OverCap => http::Request::post("/dispatch/echo/big")
                .header("host", "localhost")
                .body(Full::new(Bytes::from(vec![b'x'; MAX_BODY_BYTES + 1])))
                .expect("valid request"),
            Kind::Upload => http::Request::put(format!("/upload/{n}"))
                .header("host", "echo.localhost")
                .body(Full::new(self.upload.clone()))
                .expect("valid request"),
        }
    }
}

/// What one answer must be.
fn check(plan: &Plan, kind: Kind, status: u16, body: &[u8]) -> Result<()> {
    let expected = match kind {
        Kind::Subdomain | Kind::PathDispatch | Kind::QueryDispatch | Kind::Health | Kind::Namespace | Kind::Upload => {
            200
        }
        Kind::UnknownWorker | Kind::UnknownCustomDomain => 404,
        Kind::InvalidHost | Kind::InvalidPath => 400,
        Kind::OverCap => 413,
    };
    if status != expected {
        bail!(
            "{kind:?}: status {status}, expected {expected}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    if kind == Kind::Upload {
        let echo: serde_json::Value = serde_json::from_slice(body).context("echo's JSON")?;
        let (bytes, sha256) = (&echo["body"]["bytes"], &echo["body"]["sha256"]);
        if bytes.as_u64() != Some(plan.upload.len() as u64) || sha256.as_str() != Some(plan.upload_sha256.as_str()) {
            bail!("Upload: echo saw {bytes} bytes with SHA-256 {sha256}");
        }
    }
    Ok(())
}

#[derive(Default)]
struct Outcome {
    /// Latencies in microseconds, by kind.
    latencies: BTreeMap<Kind, Vec<u64>>,
    request_ids: Vec<String>,
    failures: Vec<String>,
    connections: usize,
}

/// Runs the plan with `CONCURRENCY` clients, each on its own keep-alive connection (a new one
/// when the server closes it).
async fn run(addr: SocketAddr, plan: Arc<Plan>, range: std::ops::Range<usize>) -> Outcome {
    let next = Arc::new(AtomicUsize::new(range.start));
    let clients = (0..CONCURRENCY).map(|_| {
        let (plan, next, range) = (plan.clone(), next.clone(), range.clone());
        tokio::spawn(async move {
            let mut outcome = Outcome::default();
            let mut sender = None;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&kind) = plan.kinds.get(n).filter(|_| n < range.end) else {
                    break;
                };
                if sender
                    .as_ref()
                    .is_none_or(|s: &hyper::client::conn::http1::SendRequest<Full<Bytes>>| s.is_closed())
                {
                    match connect(addr).await {
                        Ok(s) => sender = Some(s),
                        Err(error) => {
                            outcome.failures.push(format!("request {n}: cannot connect: {error:#}"));
                            continue;
                        }
                    }
                    outcome.connections += 1;
                }
                let s = sender.as_mut().expect("connected");
                let started = Instant::now();
                let result = async {
                    s.ready().await?;
                    let response = s.send_request(plan.request(kind, n)).await?;
                    let (parts, body) = response.into_parts();
                    let body = body.collect().await?.to_bytes();
                    anyhow::Ok((parts, body))
                }
                .await;
                let elapsed = started.elapsed().as_micros() as u64;
                match result {
                    Ok((parts, body)) => {
                        match parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
                            Some(id) => outcome.request_ids.push(id.to_string()),
                            None => outcome
                                .failures
                                .push(format!("request {n} ({kind:?}): no X-Request-Id")),
                        }
                        if let Err(error) = check(&plan, kind, parts.status.as_u16(), &body) {
                            outcome.failures.push(format!("request {n}: {error:#}"));
                        }
                        outcome.latencies.entry(kind).or_default().push(elapsed);
                        // A 413 leaves the body unread, so the server closes the connection after it
                        // (as it may after any answer that says `Connection: close`); a request sent
                        // on it meanwhile would be lost in the race.
                        let closes = kind == Kind::OverCap
                            || parts
                                .headers
                                .get("connection")
                                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                        if closes {
                            sender = None;
                        }
                    }
                    Err(error) => {
                        outcome.failures.push(format!("request {n} ({kind:?}): {error:#}"));
                        sender = None;
                    }
                }
            }
            outcome
        })
    });
    let mut total = Outcome::default();
    for client in futures::future::join_all(clients).await {
        total.add(client.expect("a client task does not panic"));
    }
    total
}

impl Outcome {
    fn add(&mut self, other: Outcome) {
        for (kind, latencies) in other.latencies {
            self.latencies.entry(kind).or_default().extend(latencies);
        }
        self.request_ids.extend(other.request_ids);
        self.failures.extend(other.failures);
        self.connections += other.connections;
    }
}

async fn connect(addr: SocketAddr) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn env_number(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name}={value:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn memory_mib(app: &Running) -> Result<(f64, f64)> {
    let (rss, peak) = app.spin().context("a Spin app")?.memory_kib()?;
    Ok((rss as f64 / 1024.0, peak as f64 / 1024.0))
}

#[tokio::main]
async fn main() -> Result<()> {
    let requests = env_number("SOAK_REQUESTS", 20_000)?;
    let upload_mib = env_number("SOAK_UPLOAD_MIB", 100)?;
    let rss_limit_mib = env_number("SOAK_RSS_LIMIT_MIB", 20)? as f64;

    let spec = AppSpec::default()
        .variable("workers", "echo,hello")
        .variable("max_body_bytes", &MAX_BODY_BYTES.to_string())
        .sqlite_file("db/sqlite/schema.sql");
    let app = Running::start(HostKind::Spin, &spec).await?;
    println!("soak: spin up at {}, {CONCURRENCY} clients", app.addr);

    // The warm-up is the run itself, once: it touches the instance slots, allocator arenas and
    // caches that the concurrency and the mix touch, so what grows after it is what a leak is.
    let plan = Arc::new(Plan::new(requests, upload_mib));
    let started = Instant::now();
    let outcome = run(app.addr, plan.clone(), 0..requests).await;
    if !outcome.failures.is_empty() {
        bail!(
            "warm-up: {} failures, first: {}",
            outcome.failures.len(),
            outcome.failures[0]
        );
    }
    println!(
        "warm-up: {} requests in {:.1} s",
        plan.kinds.len(),
        started.elapsed().as_secs_f64()
    );

    // The measured run, in quarters, with the resident memory after each.
    let (rss_before, _) = memory_mib(&app)?;
    let mut resident = vec![format!("{rss_before:.1}")];
    let started = Instant::now();
    let mut outcome = Outcome::default();
    for quarter in 0..4 {
        let range = requests * quarter / 4..requests * (quarter + 1) / 4;
        outcome.add(run(app.addr, plan.clone(), range).await);
        resident.push(format!("{:.1}", memory_mib(&app)?.0));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (rss_after, peak) = memory_mib(&app)?;

    println!(
        "run: {} requests ({} uploads, {:.0} MiB up) in {seconds:.1} s, {:.0} req/s, over {} connections",
        plan.kinds.len(),
        plan.kinds.iter().filter(|k| **k == Kind::Upload).count(),
        (plan.kinds.iter().filter(|k| **k == Kind::Upload).count() * plan.upload.len()) as f64 / (1024.0 * 1024.0),
        plan.kinds.len() as f64 / seconds,
        outcome.connections
    );
    println!(
        "{:<22} {:>7} {:>9} {:>9} {:>9}",
        "kind", "count", "p50 ms", "p99 ms", "max ms"
    );
    let mut all = Vec::new();
    for (kind, latencies) in &outcome.latencies {
        let mut sorted = latencies.clone();
        sorted.sort_unstable();
        all.extend_from_slice(&sorted);
        let ms = |us: u64| us as f64 / 1000.0;
        println!(
            "{:<22} {:>7} {:>9.2} {:>9.2} {:>9.2}",
            format!("{kind:?}"),
            sorted.len(),
            ms(percentile(&sorted, 0.5)),
            ms(percentile(&sorted, 0.99)),
            ms(*sorted.last().unwrap_or(&0))
        );
    }
    all.sort_unstable();
    println!(
        "{:<22} {:>7} {:>9.2} {:>9.2} {:>9.2}",
        "all",
        all.len(),
        percentile(&all, 0.5) as f64 / 1000.0,
        percentile(&all, 0.99) as f64 / 1000.0,
        *all.last().unwrap_or(&0) as f64 / 1000.0
    );

    let unique: HashSet<&String> = outcome.request_ids.iter().collect();
    let growth = rss_after - rss_before;
    println!(
        "memory: resident {rss_before:.1} MiB before, {rss_after:.1} MiB after (growth {growth:+.1} MiB, limit {rss_limit_mib} MiB), peak {peak:.1} MiB"
    );
    println!("memory: resident MiB at each quarter: {}", resident.join(" → "));
    println!(
        "request ids: {} answers, {} unique",
        outcome.request_ids.len(),
        unique.len()
    );

    let mut problems = outcome.failures;
    if unique.len() != outcome.request_ids.len() {
        problems.push(format!(
            "{} request ids repeat",
            outcome.request_ids.len() - unique.len()
        ));
    }
    if outcome.request_ids.len() != plan.kinds.len() {
        problems.push(format!(
            "{} answers for {} requests",
            outcome.request_ids.len(),
            plan.kinds.len()
        ));
    }
    if growth > rss_limit_mib {
        problems.push(format!("resident memory grew by {growth:.1} MiB"));
    }
    if !problems.is_empty() {
        for problem in problems.iter().take(20) {
            eprintln!("  {problem}");
        }
        bail!("soak failed: {} problems", problems.len());
    }
    println!("soak: passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_the_requests_and_uploads_asked_for() {
        let plan = Plan::new(20_000, 100);
        assert_eq!(plan.kinds.len(), 20_000);
        let uploads = plan.kinds.iter().filter(|k| **k == Kind::Upload).count();
        assert_eq!(uploads * plan.upload.len(), 100 * 1024 * 1024);
        for (kind, _) in MIX {
            assert!(plan.kinds.contains(&kind), "{kind:?}");
        }
    }
}
