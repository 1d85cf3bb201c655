//! Per-tenant rate limits and circuit breakers (docs/limits.md), through the real dispatcher on
//! both hosts. Limits here are per hour, so a test's requests all fall in one window whatever
//! the clock says (at a window's edge the sliding estimate carries the count over).

use libra_test_host::postgres_server::TestPostgres;
use libra_test_host::project_root;

use crate::support::*;

/// The calls that reached the `faulty` worker so far: it writes a line for each.
async fn faulty_calls(app: &Running) -> usize {
    app.stdout("faulty").await.lines().count()
}

/// Waits until `faulty` has been called `count` times (Spin may write a line to its log file a
/// moment after the answer went out), and fails if it was called more.
async fn expect_faulty_calls(app: &Running, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while faulty_calls(app).await < count && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(faulty_calls(app).await, count);
}

/// `"tenant";r=<remaining>;t=<seconds>`, split.
fn rate_limit(reply: &Reply) -> (u64, u64) {
    let value = reply.header("ratelimit").expect("a RateLimit header");
    let rest = value.strip_prefix("\"tenant\";r=").unwrap_or_else(|| panic!("{value}"));
    let (remaining, reset) = rest.split_once(";t=").unwrap_or_else(|| panic!("{value}"));
    (remaining.parse().unwrap(), reset.parse().unwrap())
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds")
}

on_both_hosts!(a_rate_limit_counts_a_worker_whichever_way_it_is_reached);
async fn a_rate_limit_counts_a_worker_whichever_way_it_is_reached(host: HostKind) {
    let app = start(
        host,
        spec()
            .variable("rate_limits", "hello:4/h, faulty:off")
            .sqlite_file("db/sqlite/seed.sql"),
    )
    .await;
    // Subdomain, path, query and custom domain (seed.sql gives shop.example.com to hello).
    let ways = [
        get("hello.localhost", "/"),
        get("localhost", "/dispatch/hello/"),
        get("localhost", "/dispatch?worker=hello"),
        get("shop.example.com", "/"),
    ];
    for (i, way) in ways.into_iter().enumerate() {
        let reply = way.send(&app).await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
        assert_eq!(reply.header("ratelimit-policy"), Some("\"tenant\";q=4;w=3600"));
        let (remaining, reset) = rate_limit(&reply);
        assert_eq!(remaining, 3 - i as u64, "request {i}");
        assert!((1..=3600).contains(&reset), "{reset}");
        let line = log_of(&app, &reply).await;
        assert_eq!(
            (line["limit"].as_str(), line["worker"].as_str()),
            (Some("admitted"), Some("hello"))
        );
        assert!(line.get("breaker").is_none(), "{line}");
    }
    let refused = get("hello.localhost", "/").send(&app).await;
    assert_eq!((refused.status, refused.problem().as_str()), (429, "rate_limited"));
    let wait = retry_after(&refused);
    assert!((1..=3601).contains(&wait), "{wait}");
    assert_eq!(refused.header("ratelimit-policy"), Some("\"tenant\";q=4;w=3600"));
    assert_eq!(rate_limit(&refused), (0, wait));
    let line = log_of(&app, &refused).await;
    assert_eq!(
        (line["status"].as_u64(), line["limit"].as_str(), line["error"].as_str()),
        (Some(429), Some("refused"), Some("rate_limited"))
    );
    // Refused by path too: one count per worker.
    let by_path = get("localhost", "/dispatch/hello/x").send(&app).await;
    assert_eq!(by_path.status, 429);
    if let Some(test_host) = app.test_host() {
        let calls = test_host
            .outbound_requests()
            .iter()
            .filter(|to| *to == "http://hello.spin.internal")
            .count();
        assert_eq!(calls, 4, "a refusal never calls the worker");
    }
    // The tenant's keys in the store: this window's counter and the marker, nothing else.
    let keys: Vec<String> = app
        .key_value_keys()
        .unwrap()
        .into_iter()
        .filter(|key| key.starts_with("default:rate:v1:hello:"))
        .collect();
    assert!(
        keys.len() <= 3 && keys.iter().any(|key| key.ends_with(":last")),
        "{keys:?}"
    );
    // A worker without a limit is untouched, and carries no headers of it.
    let echo = get("echo.localhost", "/").send(&app).await;
    assert_eq!(echo.status, 200);
    assert_eq!(
        (echo.header("ratelimit"), echo.header("ratelimit-policy")),
        (None, None)
    );
    assert!(log_of(&app, &echo).await.get("limit").is_none());
    let faulty = get("faulty.localhost", "/status/200").send(&app).await;
    assert_eq!((faulty.status, faulty.header("ratelimit")), (200, None), "faulty:off");
}

on_both_hosts!(a_malformed_limit_setting_fails_forwarding_and_names_itself);
async fn a_malformed_limit_setting_fails_forwarding_and_names_itself(host: HostKind) {
    let app = start(host, spec().variable("rate_limits", "hello:1/h, echo:3/fortnight")).await;
    for worker in ["hello", "echo"] {
        let reply = get(&format!("{worker}.localhost"), "/").send(&app).await;
        // Nothing is half-applied: hello's valid entry does not limit it either.
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (500, "configuration_error"),
            "{worker}"
        );
        let problem = app
            .wait_for_log(|line| line["requestId"] == reply.request_id() && line.get("setting").is_some())
            .await;
        assert_eq!(problem[0]["setting"], "rate_limits");
        let said = problem[0]["problem"].as_str().unwrap();
        assert!(said.contains("entry 'echo'") && said.contains("fortnight"), "{said}");
    }
    // The dispatcher's own endpoints do not need the limits, its docs component included.
    assert_eq!(get("localhost", "/health").send(&app).await.status, 200);
    assert_eq!(get("localhost", "/openapi.json").send(&app).await.status, 200);
}

on_both_hosts!(the_dispatchers_own_docs_are_no_tenant);
async fn the_dispatchers_own_docs_are_no_tenant(host: HostKind) {
    let app = start(
        host,
        spec().variable("rate_limits", "*:1/h").variable("breakers", "*:1/1h"),
    )
    .await;
    for _ in 0..3 {
        let reply = get("localhost", "/openapi.json").send(&app).await;
        assert_eq!((reply.status, reply.header("ratelimit")), (200, None));
        assert!(log_of(&app, &reply).await.get("limit").is_none());
    }
}

/// The database that holds `worker_limits`, with the migration applied.
enum Overrides {
    Sqlite,
    Postgres(TestPostgres),
}

impl Overrides {
    async fn start(host: HostKind, postgres: bool, settings: &[(&str, &str)]) -> (Running, Overrides) {
        let mut spec = spec();
        let overrides = if postgres {
            let server = TestPostgres::start().expect("postgres starts");
            let migration =
                std::fs::read_to_string(project_root().join("db/postgres/migrations/0003_worker_limits.sql")).unwrap();
            server.execute("postgres", &migration).await.unwrap();
            server
                .execute("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .await
                .unwrap();
            spec = spec
                .variable("postgres_url", &server.url("postgres"))
                .variable("postgres_host", &server.address());
            Overrides::Postgres(server)
        } else {
            Overrides::Sqlite
        };
        for (name, value) in settings {
            spec = spec.variable(name, value);
        }
        (start(host, spec).await, overrides)
    }

    /// Sets `worker`'s row, as an operator would.
    async fn set(&self, app: &Running, worker: &str, rate_limit: &str) {
        match self {
            Overrides::Postgres(server) => server
                .execute(
                    "postgres",
                    &format!(
                        "INSERT INTO worker_limits (worker, rate_limit) VALUES ('{worker}', '{rate_limit}') \
                         ON CONFLICT (worker) DO UPDATE SET rate_limit = excluded.rate_limit"
                    ),
                )
                .await
                .unwrap(),
            Overrides::Sqlite => app
                .sqlite_execute_batch(&format!(
                    "INSERT INTO worker_limits (worker, rate_limit) VALUES ('{worker}', '{rate_limit}') \
                     ON CONFLICT (worker) DO UPDATE SET rate_limit = excluded.rate_limit"
                ))
                .unwrap(),
        }
    }

    /// Lookups of `worker_limits` the database has run, where they can be counted.
    async fn lookups(&self, app: &Running) -> Option<u64> {
        match self {
            Overrides::Postgres(server) => {
                let client = server.client("postgres").await.unwrap();
                let row = client
                    .query_one(
                        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE '%LEFT JOIN worker_limits%'",
                        &[],
                    )
                    .await
                    .unwrap();
                Some(row.get::<_, i64>(0) as u64)
            }
            Overrides::Sqlite => app.test_host().map(|test_host| test_host.sqlite_statements()),
        }
    }
}

on_both_hosts!(a_worker_limits_row_overrides_the_settings_and_is_cached);
async fn a_worker_limits_row_overrides_the_settings_and_is_cached(host: HostKind) {
    for postgres in [false, true] {
        let settings = [
            ("rate_limits", "*:100/h"),
            ("limit_overrides", "database"),
            ("domain_cache_ttl_s", "2"),
            ("domain_negative_ttl_s", "2"),
        ];
        let (app, overrides) = Overrides::start(host, postgres, &settings).await;
        overrides.set(&app, "hello", "2/h").await;
        // A row that does not parse: ignored, with one warning.
        overrides.set(&app, "echo", "banana").await;
        let which = if postgres { "postgres" } else { "sqlite" };

        let first = get("hello.localhost", "/").send(&app).await;
        assert_eq!(first.status, 200, "{which}");
        assert_eq!(
            first.header("ratelimit-policy"),
            Some("\"tenant\";q=2;w=3600"),
            "{which}"
        );
        let warm = overrides.lookups(&app).await;
        assert_eq!(get("hello.localhost", "/").send(&app).await.status, 200);
        let refused = get("hello.localhost", "/").send(&app).await;
        assert_eq!(
            (refused.status, refused.problem().as_str()),
            (429, "rate_limited"),
            "{which}"
        );
        if let (Some(before), Some(after)) = (warm, overrides.lookups(&app).await) {
            assert_eq!(after, before, "{which}: a cached row costs no query");
        }

        let mut echo_ids = Vec::new();
        for _ in 0..3 {
            let echo = get("echo.localhost", "/").send(&app).await;
            assert_eq!(echo.status, 200);
            assert_eq!(
                echo.header("ratelimit-policy"),
                Some("\"tenant\";q=100;w=3600"),
                "{which}: the default"
            );
            echo_ids.push(echo.request_id().to_string());
        }
        let warnings = app
            .wait_for_log(|line| {
                line["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("worker_limits row is invalid"))
            })
            .await;
        assert_eq!(warnings.len(), 1, "{which}: one warning per TTL: {warnings:?}");
        assert_eq!(warnings[0]["worker"], "echo");
        assert!(warnings[0]["problem"].as_str().unwrap().contains("banana"));

        // The operator raises hello's quota: it applies once the cached row expires.
        overrides.set(&app, "hello", "5/h").await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let reply = get("hello.localhost", "/").send(&app).await;
            if reply.header("ratelimit-policy") == Some("\"tenant\";q=5;w=3600") {
                assert_eq!(reply.status, 200, "{which}: room for 3 more");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{which}: the new row never applied"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

on_both_hosts!(a_database_without_the_table_has_no_overrides);
async fn a_database_without_the_table_has_no_overrides(host: HostKind) {
    // PostgreSQL without migration 0003: the settings' limit applies, and nothing fails.
    let server = TestPostgres::start().expect("postgres starts");
    let app = start(
        host,
        spec()
            .variable("postgres_url", &server.url("postgres"))
            .variable("postgres_host", &server.address())
            .variable("rate_limits", "hello:1/h")
            .variable("limit_overrides", "database"),
    )
    .await;
    assert_eq!(get("hello.localhost", "/").send(&app).await.status, 200);
    let refused = get("hello.localhost", "/").send(&app).await;
    assert_eq!(
        (refused.status, refused.header("ratelimit-policy")),
        (429, Some("\"tenant\";q=1;w=3600"))
    );
    // A warning would come before the request's access line, in the same instance.
    log_of(&app, &refused).await;
    let warnings: Vec<_> = app
        .log_lines()
        .await
        .into_iter()
        .filter(|line| line["level"] == "warn")
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

on_both_hosts!(a_breaker_opens_after_worker_failures_probes_and_closes);
async fn a_breaker_opens_after_worker_failures_probes_and_closes(host: HostKind) {
    let app = start(
        host,
        spec()
            .variable("breakers", "faulty:2/2s")
            .variable("admin_token_sha256", &sha256_hex(b"s3cret-token")),
    )
    .await;
    // A worker's own 5xx is its answer: it never opens the breaker.
    for _ in 0..4 {
        let reply = get("faulty.localhost", "/status/503").send(&app).await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.text(), "faulty worker answered 503");
        assert_eq!(log_of(&app, &reply).await["breaker"], "closed");
    }
    for _ in 0..2 {
        let reply = get("faulty.localhost", "/trap").send(&app).await;
        assert_eq!((reply.status, reply.problem().as_str()), (502, "worker_failed"));
    }
    expect_faulty_calls(&app, 6).await;
    let open = get("faulty.localhost", "/status/200").send(&app).await;
    assert_eq!((open.status, open.problem().as_str()), (503, "worker_unavailable"));
    assert!(
        (1..=2).contains(&retry_after(&open)),
        "{:?}",
        open.header("retry-after")
    );
    assert_eq!(log_of(&app, &open).await["breaker"], "open");
    // By path too: the breaker is the worker's.
    assert_eq!(
        get("localhost", "/dispatch/faulty/status/200").send(&app).await.status,
        503
    );
    let health = get("localhost", "/health/detailed")
        .header("authorization", "Bearer s3cret-token")
        .send(&app)
        .await;
    let breakers = &health.json()["breakers"];
    assert_eq!(breakers[0]["worker"], "faulty", "{breakers}");
    assert_eq!(breakers[0]["state"], "open");
    let anonymous = get("localhost", "/health/detailed").send(&app).await;
    assert_eq!(anonymous.status, 401);
    expect_faulty_calls(&app, 6).await;

    // Once the open period is over, one request probes; its success closes the breaker.
    let probe = retry_until_called(&app, "/status/200").await;
    assert_eq!(probe.status, 200);
    assert_eq!(log_of(&app, &probe).await["breaker"], "probe");
    let closed = get("faulty.localhost", "/status/200").send(&app).await;
    assert_eq!(
        (closed.status, log_of(&app, &closed).await["breaker"].as_str()),
        (200, Some("closed"))
    );
    let health = get("localhost", "/health/detailed")
        .header("authorization", "Bearer s3cret-token")
        .send(&app)
        .await;
    assert_eq!(health.json()["breakers"], serde_json::json!([]));

    // Open it again; a failed probe opens it for another period at once.
    for _ in 0..2 {
        assert_eq!(get("faulty.localhost", "/trap").send(&app).await.status, 502);
    }
    let probe = retry_until_called(&app, "/trap").await;
    assert_eq!(
        (probe.status, log_of(&app, &probe).await["breaker"].as_str()),
        (502, Some("probe"))
    );
    let reopened = get("faulty.localhost", "/status/200").send(&app).await;
    assert_eq!(
        (reopened.status, reopened.problem().as_str()),
        (503, "worker_unavailable")
    );
}

/// Sends `GET faulty.localhost<path>` until the breaker lets one through (the open period takes
/// a couple of seconds); each refusal is checked on the way.
async fn retry_until_called(app: &Running, path: &str) -> Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reply = get("faulty.localhost", path).send(app).await;
        if reply.status != 503 || reply.header("content-type") != Some("application/problem+json") {
            return reply;
        }
        assert_eq!(reply.problem(), "worker_unavailable");
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker never let a probe through"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
