//! Property tests of the pure request pipeline, on inputs nobody planned for. Each property runs
//! `PROPTEST_CASES` cases (4,000 in the suite; `scripts/fuzz` runs a million or more).
//!
//! Invariants: nothing panics; a forwarded request never carries a spoofable header or a
//! provenance value the client chose; a worker chosen is always a valid, non-reserved member of
//! the namespace; a shared-origin response carries only allowed headers plus the sandbox CSP;
//! every access-log line and problem document parses as JSON with the same fields.

use libra_dispatcher::arena::Bump;
use libra_dispatcher::config::Config;
use libra_dispatcher::error::DispatchError;
use libra_dispatcher::pipeline::downstream::{self, Exposure, SHARED_ORIGIN_ALLOWED, SHARED_ORIGIN_CSP};
use libra_dispatcher::pipeline::namespace;
use libra_dispatcher::pipeline::worker_name::{BUILT_IN_RESERVED, WorkerName};
use libra_dispatcher::pipeline::{self, Context, Headers, RequestHead, Step, host, upstream};
use proptest::prelude::*;

fn cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn config() -> Config {
    Config::from_lookup(|name| match name {
        "base_domain" => Some("libra.sh".into()),
        "dispatcher_hosts" => Some("dispatcher.libra.dev,localhost".into()),
        "workers" => Some("echo,hello,my-app".into()),
        "reserved_names" => Some("billing".into()),
        _ => None,
    })
    .unwrap()
}

/// Bytes that look like a host: mostly host characters, with the odd hostile one.
fn host_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9.-]{0,70}",
        "[a-z0-9-]{1,20}\\.libra\\.sh\\.?(:[0-9]{0,6})?",
        "(echo|hello|my-app|admin|billing|docs|ghost)\\.libra\\.sh",
        "\\[[0-9a-fA-F:.%]{0,45}\\](:[0-9]{1,5})?",
        "[ -~]{0,40}",
        ".{0,30}",
    ]
}

/// Request targets: dispatch paths and queries with escapes, dots and noise.
fn target_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "/(api/)?dispatch(/[a-zA-Z0-9%._-]{0,12}){0,4}(\\?[a-zA-Z0-9%=&+._-]{0,30})?",
        "/(api/)?dispatch\\?([a-z%0-9]{0,8}=[a-zA-Z0-9%+._-]{0,12}&?){0,4}",
        "/[ -~]{0,60}",
        "\\*",
        "(/health|/health/detailed|/openapi.json|/docs|/docs/scalar.js|/favicon.ico)(\\?.{0,8})?",
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("x-forwarded-for".to_string()),
        Just("X_Forwarded_Host".to_string()),
        Just("forwarded".to_string()),
        Just("x-real-ip".to_string()),
        Just("x-request-id".to_string()),
        Just("spin-client-addr".to_string()),
        Just("spin-full-url".to_string()),
        Just("cf-connecting-ip".to_string()),
        Just("true-client-ip".to_string()),
        Just("x-original-host".to_string()),
        Just("content-length".to_string()),
        Just("connection".to_string()),
        Just("cookie".to_string()),
        Just("host".to_string()),
        "[a-zA-Z_-]{1,24}",
    ]
}

fn headers_like() -> impl Strategy<Value = Headers> {
    prop::collection::vec((header_name(), prop::collection::vec(any::<u8>(), 0..40)), 0..12)
}

fn method_like() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("TRACE".to_string()),
        Just("CONNECT".to_string()),
        Just("OPTIONS".to_string()),
        "[A-Z]{1,10}",
    ]
}

/// A header name a worker must never receive from a client: provenance, routing and Spin's own.
/// Written out here on purpose, not taken from `pipeline::upstream`: the property checks the
/// filter against the rule as docs/forwarding.md states it, so a name dropped from the filter's list fails.
fn is_spoofable(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('_', "-");
    ["x-forwarded-", "spin-", "cf-"].iter().any(|p| name.starts_with(p))
        || [
            "host",
            "forwarded",
            "x-real-ip",
            "x-request-id",
            "true-client-ip",
            "x-client-ip",
            "x-cluster-client-ip",
            "x-original-host",
            "x-original-url",
            "x-rewrite-url",
            "x-custom-domain",
            "x-target-worker",
            "x-routing-strategy",
        ]
        .contains(&name.as_str())
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn host_normalisation_never_panics_and_gives_a_canonical_name(raw in host_like()) {
        if let Ok(host) = host::normalise(raw.as_bytes()) {
            prop_assert!(!host.name.is_empty());
            prop_assert!(!host.name.ends_with('.'));
            prop_assert_eq!(host.name.to_ascii_lowercase(), host.name.clone());
            prop_assert!(host.name.is_ascii());
            prop_assert!(host.name.starts_with('[') || !host.name.contains(':'));
        }
    }

    #[test]
    fn every_worker_chosen_is_a_valid_unreserved_member(
        raw_host in host_like(),
        target in target_like(),
        method in method_like(),
        headers in headers_like(),
    ) {
        let config = config();
        let head = RequestHead { method, authority: Some(raw_host), path_and_query: target, headers };
        let decision = pipeline::decide(Context { head: &head, request_id: "rid", config: &config });
        if let Ok(Step::Forward(pending)) = &decision.outcome {
            if let Some(worker) = &pending.worker {
                let reparsed = WorkerName::parse(worker.as_str(), &config.reserved_names);
                prop_assert_eq!(reparsed.as_ref(), Ok(worker));
                prop_assert!(!BUILT_IN_RESERVED.contains(&worker.as_str()) || worker.as_str() == "docs");
                prop_assert!(worker.as_str() != "billing");
                // It is forwarded only if it is local; other names go to the remote resolver,
                // which has none here, so they are 404 without any outbound call.
                let local = namespace::is_local(worker, pending.kind, &config);
                prop_assert!(local || !["echo", "hello", "my-app"].contains(&worker.as_str()));
            }
        }
    }

    #[test]
    fn a_forwarded_request_carries_only_the_dispatchers_provenance(
        headers in headers_like(),
        client_ip in proptest::option::of("[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"),
        shared_origin in any::<bool>(),
        traced in any::<bool>(),
    ) {
        let provenance = upstream::Provenance {
            host: "echo.libra.sh",
            proto: "https",
            client_ip: client_ip.as_deref(),
            request_id: "rid-1",
            traced,
        };
        let out = upstream::headers(&headers, &provenance, shared_origin);
        let ours = ["x-forwarded-host", "x-forwarded-proto", "x-forwarded-for", "x-request-id"];
        for (name, _) in &out {
            if ours.contains(&name.as_str()) {
                continue;
            }
            prop_assert!(!is_spoofable(name), "{name} reached the worker");
            prop_assert!(!(shared_origin && name.eq_ignore_ascii_case("cookie")));
            // An unsound trace context never reaches the worker.
            prop_assert!(traced || !["traceparent", "tracestate"].contains(&name.to_ascii_lowercase().as_str()));
        }
        let set = |name: &str| out.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect::<Vec<_>>();
        prop_assert_eq!(set("x-forwarded-host"), vec![b"echo.libra.sh".to_vec()]);
        prop_assert_eq!(set("x-forwarded-proto"), vec![b"https".to_vec()]);
        prop_assert_eq!(set("x-request-id"), vec![b"rid-1".to_vec()]);
        let forwarded_for: Vec<Vec<u8>> = client_ip.iter().map(|ip| ip.as_bytes().to_vec()).collect();
        prop_assert_eq!(set("x-forwarded-for"), forwarded_for);
    }

    #[test]
    fn a_shared_origin_response_carries_only_allowed_headers_and_the_sandbox(
        headers in prop::collection::vec(
            (prop_oneof![
                "[a-zA-Z-]{1,30}",
                Just("Strict-Transport-Security".to_string()),
                Just("NEL".to_string()),
                Just("Set-Cookie".to_string()),
                Just("Clear-Site-Data".to_string()),
                Just("Content-Type".to_string()),
                Just("X-Request-Id".to_string()),
                Just("Connection".to_string()),
            ], prop::collection::vec(any::<u8>(), 0..30)),
            0..16,
        ),
        head_request in any::<bool>(),
    ) {
        let out = downstream::headers(headers, "rid", Exposure::SharedOrigin, head_request);
        let (csp_name, csp) = out.last().unwrap();
        prop_assert_eq!(csp_name.as_str(), "content-security-policy");
        prop_assert_eq!(csp.as_slice(), SHARED_ORIGIN_CSP.as_bytes());
        for (name, _) in &out[..out.len() - 1] {
            let lower = name.to_ascii_lowercase();
            let allowed = SHARED_ORIGIN_ALLOWED.contains(&lower.as_str())
                || lower == "x-request-id"
                || (lower.starts_with("x-") && lower != "x-dns-prefetch-control" && lower != "x-permitted-cross-domain-policies");
            prop_assert!(allowed, "{name} on the shared origin");
        }
        prop_assert_eq!(out.iter().filter(|(n, _)| n.eq_ignore_ascii_case("x-request-id")).count(), 1);
    }

    #[test]
    fn a_tenant_subdomains_cookies_never_name_another_host(
        cookie in "[ -~]{0,80}",
    ) {
        let out = downstream::host_only_cookie(cookie.as_bytes(), "shop.libra.sh");
        let text = String::from_utf8(out).unwrap();
        for attribute in text.split(';').skip(1) {
            if let Some((key, value)) = attribute.split_once('=') {
                if key.trim().eq_ignore_ascii_case("domain") {
                    let domain = value.trim().trim_start_matches('.');
                    prop_assert!(domain.eq_ignore_ascii_case("shop.libra.sh"), "{text}");
                }
            }
        }
    }

    #[test]
    fn every_log_line_is_json_with_the_same_fields(
        strings in prop::collection::vec(".{0,40}", 6),
        status in 100u16..600,
        duration_ns in any::<u64>(),
        has_host in any::<bool>(),
    ) {
        let line = libra_dispatcher::log::LogLine {
            time: &strings[0],
            level: "info",
            request_id: &strings[1],
                method: Some(&strings[2]),
            host: Some(has_host.then_some(strings[3].as_str())),
            path: Some(&strings[4]),
            route: Some(Some("path")),
            worker: Some(Some(&strings[5])),
            location: Some(None),
            status: Some(status),
            duration_ns: Some(duration_ns),
            ..Default::default()
        }
        .to_line();
        prop_assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        prop_assert_eq!(keys, vec!["durationMs", "host", "level", "location", "method", "path", "requestId", "route", "status", "time", "worker"]);
        prop_assert_eq!(&value["path"], &serde_json::Value::String(strings[4].clone()));
        prop_assert_eq!(value["status"].as_u64(), Some(u64::from(status)));
    }

    #[test]
    fn every_problem_document_is_json_with_the_same_fields(
        kind in 0usize..64,
        request_id in "[A-Za-z0-9._:-]{1,128}",
    ) {
        let kinds = DispatchError::every_kind();
        let error = &kinds[kind % kinds.len()];
        let value: serde_json::Value = serde_json::from_str(&error.problem_json(&request_id)).unwrap();
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        prop_assert_eq!(keys, vec!["code", "detail", "requestId", "status", "title", "type"]);
        prop_assert_eq!(value["status"].as_u64(), Some(u64::from(error.status())));
        prop_assert_eq!(value["requestId"].as_str(), Some(request_id.as_str()));
    }

    #[test]
    fn arena_blocks_are_aligned_and_live_blocks_never_overlap(
        steps in proptest::collection::vec((0u8..3, 1usize..300, 0u32..5, any::<prop::sample::Index>()), 1..200),
    ) {
        // Mirrors what the global allocator does with the bump pointer: alloc, free and realloc
        // (in place, else a fresh block and a free), with a model of the live blocks. Sizes are
        // at least 1: Rust never asks a global allocator for 0 bytes.
        const BASE: usize = 0x10000;
        const SIZE: usize = 2048;
        let bump = Bump::new();
        let mut live: Vec<(usize, std::alloc::Layout)> = Vec::new();
        let alloc = |bump: &Bump, live: &mut Vec<(usize, std::alloc::Layout)>, layout: std::alloc::Layout| {
            if let Some(ptr) = bump.alloc(BASE, SIZE, layout) {
                prop_assert_eq!(ptr % layout.align(), 0);
                prop_assert!(ptr + layout.size() <= BASE + SIZE);
                for (other, other_layout) in live.iter() {
                    prop_assert!(ptr + layout.size() <= *other || other + other_layout.size() <= ptr,
                        "{:?} at {} overlaps {:?} at {}", layout, ptr, other_layout, other);
                }
                live.push((ptr, layout));
            }
            Ok(())
        };
        for (op, size, align_log, pick) in steps {
            let layout = std::alloc::Layout::from_size_align(size, 1 << align_log).unwrap();
            match op {
                0 => alloc(&bump, &mut live, layout)?,
                1 if !live.is_empty() => {
                    let (ptr, old) = live.remove(pick.index(live.len()));
                    bump.free(BASE, ptr, old);
                }
                2 if !live.is_empty() => {
                    let i = pick.index(live.len());
                    let (ptr, old) = live[i];
                    if bump.resize_in_place(BASE, SIZE, ptr, old, size) {
                        live[i].1 = std::alloc::Layout::from_size_align(size, old.align()).unwrap();
                        for (j, (other, other_layout)) in live.iter().enumerate() {
                            prop_assert!(j == i || ptr + size <= *other || other + other_layout.size() <= ptr);
                        }
                    } else {
                        // The new block is checked against the old one too, which is still live
                        // while its bytes are copied.
                        alloc(&bump, &mut live, std::alloc::Layout::from_size_align(size, old.align()).unwrap())?;
                        let (ptr, old) = live.remove(i);
                        bump.free(BASE, ptr, old);
                    }
                }
                _ => {}
            }
        }
    }
}

// Per-tenant limits (`src/limits`), with the clock given and the store in memory.

use libra_dispatcher::limits::breaker::{self, BreakerPolicy, BreakerState, Outcome, Pass};
use libra_dispatcher::limits::rate::{self, RatePolicy};
use libra_dispatcher::limits::store::{Encoding, MemoryStore, SharedStore, StoreError};

const EPOCH_MS: u64 = 1_800_000_000_000;

proptest! {
    #![proptest_config(cases())]

    /// Never more than the quota in any fixed window, never more than twice it in any interval
    /// of a window's length; every refusal says when to come back, and coming back then works;
    /// the tenant's keys stay bounded.
    #[test]
    fn a_rate_limit_never_admits_more_than_its_bound(
        rate_per_s in 1u64..8,
        burst in 1u64..20,
        start in 0u64..10_000,
        gaps in proptest::collection::vec(0u64..1_500, 1..250),
        redis in any::<bool>(),
    ) {
        let policy = RatePolicy::parse(&format!("{rate_per_s}/s burst {burst}")).unwrap();
        let (quota, window_ms) = (policy.quota, policy.window_ms);
        let prefix = "ns:rate:v1:shop";
        let mut store = MemoryStore::new(if redis { Encoding::Redis } else { Encoding::Sqlite });
        let mut now = EPOCH_MS + start;
        let mut admitted: Vec<u64> = Vec::new();
        for gap in gaps {
            now += gap;
            let state = rate::check(&mut store, prefix, &policy, now).unwrap();
            if state.admitted {
                admitted.push(now);
            } else {
                prop_assert!(state.reset_s >= 1);
                let mut later = store.clone();
                let retry = rate::check(&mut later, prefix, &policy, now + state.reset_s * 1000).unwrap();
                prop_assert!(retry.admitted, "refused at {} with Retry-After {}, refused again then", now, state.reset_s);
            }
            prop_assert!(store.keys_under(prefix).len() <= 3, "{:?}", store.keys_under(prefix));
        }
        for (i, &at) in admitted.iter().enumerate() {
            let same_window = admitted.iter().filter(|&&t| t / window_ms == at / window_ms).count() as u64;
            prop_assert!(same_window <= quota, "{} in the window of {}", same_window, at);
            let within = admitted[i..].iter().take_while(|&&t| t < at + window_ms).count() as u64;
            prop_assert!(within <= 2 * quota, "{} in the {} ms from {}", within, window_ms, at);
        }
    }

    /// Two replicas whose clocks disagree by up to a window: each window's counter still admits
    /// at most the quota (a late opener never deletes a window that still counts), and the keys
    /// stay bounded.
    #[test]
    fn replicas_with_skewed_clocks_never_admit_more_than_the_quota_per_window(
        rate_per_s in 1u64..6,
        burst in 1u64..8,
        skew_fraction in 0u64..100,
        steps in proptest::collection::vec((0u64..1_200, any::<bool>()), 1..200),
    ) {
        let policy = RatePolicy::parse(&format!("{rate_per_s}/s burst {burst}")).unwrap();
        let skew = policy.window_ms * skew_fraction / 100;
        let prefix = "ns:rate:v1:shop";
        let mut store = MemoryStore::new(Encoding::Redis);
        let mut now = EPOCH_MS + 10_000;
        let mut per_window: std::collections::BTreeMap<u64, u64> = Default::default();
        for (gap, behind) in steps {
            now += gap;
            let clock = if behind { now - skew } else { now };
            if rate::check(&mut store, prefix, &policy, clock).unwrap().admitted {
                *per_window.entry(clock / policy.window_ms).or_default() += 1;
            }
            prop_assert!(store.keys_under(prefix).len() <= 2 + rate::MARKER_ENTRIES, "{:?}", store.keys_under(prefix));
        }
        for (window, admitted) in per_window {
            prop_assert!(admitted <= policy.quota, "window {}: {} admitted", window, admitted);
        }
    }

    /// The breaker calls the worker exactly when a plain model of it says so: closed, open
    /// after `failures` consecutive failures for `open_s`, then one probe at a time.
    #[test]
    fn a_breaker_never_calls_a_worker_while_open(
        failures in 1u64..5,
        open_s in 1u64..5,
        steps in proptest::collection::vec((0u64..2_500, 0u8..3), 1..200),
    ) {
        let policy = BreakerPolicy { failures, open_s };
        let grace_ms = 1_500;
        let prefix = "ns:breaker:v1:shop";
        let mut store = MemoryStore::new(Encoding::Sqlite);
        // The model: consecutive failures, and until when the worker is not called (and whether
        // that is a probe's grace period).
        let (mut consecutive, mut until, mut probing) = (0u64, None::<u64>, false);
        let mut now = EPOCH_MS;
        for (gap, outcome) in steps {
            now += gap;
            let outcome = [Outcome::Success, Outcome::Failure, Outcome::Unknown][outcome as usize];
            let state = breaker::check(&mut store, prefix, &policy, now).unwrap();
            let pass = match state {
                BreakerState::Closed { failures } => Some(Pass::Closed { failures }),
                BreakerState::Open { retry_after_s } => {
                    prop_assert!(retry_after_s >= 1);
                    None
                }
                BreakerState::HalfOpen { .. } => breaker::elect_probe(&mut store, prefix, &state, now, grace_ms).unwrap(),
            };
            let model_calls = until.is_none_or(|until| now >= until);
            prop_assert_eq!(pass.is_some(), model_calls, "at {} ms: {:?}", now - EPOCH_MS, state);
            if let BreakerState::Open { retry_after_s } = state {
                let expected = if probing { 1 } else { (until.unwrap() - now).div_ceil(1000) };
                prop_assert_eq!(retry_after_s, expected);
            }
            let Some(pass) = pass else { continue };
            breaker::record(&mut store, prefix, &policy, &pass, outcome, now).unwrap();
            let was_probe = until.is_some();
            match (outcome, was_probe) {
                (Outcome::Success, _) => (consecutive, until, probing) = (0, None, false),
                (Outcome::Failure, true) => (until, probing) = (Some(now + open_s * 1000), false),
                (Outcome::Failure, false) => {
                    consecutive += 1;
                    if consecutive == failures {
                        (until, probing) = (Some(now + open_s * 1000), false);
                    }
                }
                (Outcome::Unknown, true) => (until, probing) = (Some(now + grace_ms), true),
                (Outcome::Unknown, false) => {}
            }
        }
        if until.is_none() && consecutive == 0 {
            prop_assert!(store.keys_under(prefix).is_empty(), "{:?}", store.values);
        }
    }
}

/// A store shared by threads, each call atomic on its own: what Redis gives replicas.
struct Shared<'a>(&'a std::sync::Mutex<MemoryStore>);

impl SharedStore for Shared<'_> {
    fn increment(&mut self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.0.lock().unwrap().increment(key, delta)
    }
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.lock().unwrap().get(key)
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.lock().unwrap().set(key, value)
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().delete(key)
    }
}

/// Replicas racing on one store admit exactly the quota: the increment decides, not the read.
#[test]
fn replicas_sharing_a_store_admit_exactly_the_quota() {
    let policy = RatePolicy::parse("50/h").unwrap();
    for encoding in [Encoding::Redis, Encoding::Sqlite] {
        let store = std::sync::Mutex::new(MemoryStore::new(encoding));
        let admitted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            for replica in 0..8u64 {
                let (store, admitted) = (&store, &admitted);
                scope.spawn(move || {
                    for i in 0..40 {
                        let now = EPOCH_MS + replica + i;
                        if rate::check(&mut Shared(store), "ns:rate:v1:shop", &policy, now)
                            .unwrap()
                            .admitted
                        {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 50, "{encoding:?}");
        let store = store.into_inner().unwrap();
        let counter = store
            .values
            .iter()
            .find(|(key, _)| key.contains(":3600000ms:"))
            .unwrap()
            .1;
        assert_eq!(
            libra_dispatcher::limits::store::decode_counter(counter),
            Some(50),
            "refused requests gave back what they took"
        );
    }
}
