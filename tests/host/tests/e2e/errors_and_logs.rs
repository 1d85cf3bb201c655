//! Error documents and the access log.

use crate::support::*;

on_both_hosts!(one_json_access_log_line_per_request_without_the_query);
async fn one_json_access_log_line_per_request_without_the_query(host: HostKind) {
    let app = app(host).await;
    let requests = [
        ("log-1", "echo.localhost", "/a?token=secret"),
        ("log-2", "localhost", "/dispatch/hello/b?token=secret"),
        ("log-3", "ghost.localhost", "/c"),
        ("log-4", "localhost", "/health"),
    ];
    for (id, host, target) in requests {
        get(host, target).header("x-request-id", id).send(&app).await;
    }
    let mut log = Vec::new();
    for (id, _, _) in requests {
        log.push(app.access_line(id).await);
    }
    assert!(!app.stdout("dispatcher").await.contains("secret"));
    for line in &log {
        for field in [
            "time",
            "level",
            "requestId",
            "method",
            "host",
            "path",
            "route",
            "status",
            "durationMs",
        ] {
            assert!(!line[field].is_null(), "{field} in {line}");
        }
    }
    let first = &log[0];
    assert_eq!(
        (
            first["path"].as_str(),
            first["route"].as_str(),
            first["worker"].as_str(),
            first["status"].as_u64()
        ),
        (Some("/a"), Some("subdomain"), Some("echo"), Some(200))
    );
    assert_eq!(first["host"], "echo.localhost");
    assert!(first.get("error").is_none());
    let second = &log[1];
    assert_eq!(
        (second["route"].as_str(), second["worker"].as_str()),
        (Some("path"), Some("hello"))
    );
    assert_eq!(second["path"], "/dispatch/hello/b");
    let third = &log[2];
    assert_eq!(
        (third["status"].as_u64(), third["error"].as_str()),
        (Some(404), Some("worker_not_found"))
    );
    assert_eq!(log[3]["route"], "api");
}

on_both_hosts!(log_level_filters_the_access_log);
async fn log_level_filters_the_access_log(host: HostKind) {
    let app = start(host, spec().variable("log_level", "error")).await;
    let fine = get("echo.localhost", "/").send(&app).await;
    let failed = get("faulty.localhost", "/trap").send(&app).await;
    let line = log_of(&app, &failed).await;
    assert_eq!(
        (line["level"].as_str(), line["status"].as_u64()),
        (Some("error"), Some(502))
    );
    // The 200 was answered first; its line would have been written by now had it not been
    // filtered out.
    let lines = app.log_lines().await;
    assert!(!lines.iter().any(|l| l["requestId"] == fine.request_id()), "{lines:?}");
}

on_both_hosts!(bad_hosts_are_400);
async fn bad_hosts_are_400(host: HostKind) {
    let app = app(host).await;
    for host in ["a..b", "-a.localhost", "a_b.example.com", "localhost:99999", "[zz]"] {
        let reply = get(host, "/").send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (400, "invalid_host"),
            "{host}"
        );
    }
}

on_both_hosts!(a_bad_workers_entry_is_reported_where_the_namespace_is_described);
/// Routing only asks whether one valid name is listed, so a bad entry cannot route anything and
/// need not take the platform down; the endpoints that describe the namespace report it.
async fn a_bad_workers_entry_is_reported_where_the_namespace_is_described(host: HostKind) {
    let app = start(host, spec().variable("workers", "echo,hello,Bad_Name")).await;
    assert_eq!(get("echo.localhost", "/").send(&app).await.status, 200);
    assert_eq!(
        get("localhost", "/dispatch/bad_name/").send(&app).await.problem(),
        "invalid_worker_name"
    );
    for path in ["/dispatch", "/health/detailed"] {
        let reply = get("localhost", path).send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (500, "configuration_error"),
            "{path}"
        );
        assert!(!reply.text().contains("Bad_Name"), "{}", reply.text());
        let line = log_of(&app, &reply).await;
        assert_eq!(
            (line["error"].as_str(), line["status"].as_u64()),
            (Some("configuration_error"), Some(500)),
            "{path}"
        );
    }
}

on_both_hosts!(invalid_configuration_is_a_500_that_leaks_nothing);
async fn invalid_configuration_is_a_500_that_leaks_nothing(host: HostKind) {
    let app = start(host, spec().variable("upstream_timeout_ms", "soon")).await;
    let reply = get("echo.localhost", "/").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (500, "configuration_error"));
    assert!(
        !reply.text().contains("upstream_timeout_ms"),
        "variable names stay in the log: {}",
        reply.text()
    );
    assert_eq!(log_of(&app, &reply).await["error"], "configuration_error");
    let logged = app
        .wait_for_log(|l| {
            l["requestId"] == reply.request_id() && l["variable"] == "settings" && l["setting"] == "upstream_timeout_ms"
        })
        .await;
    assert_eq!(logged.len(), 1);
}

on_both_hosts!(an_unusable_limit_fails_only_the_requests_it_can_refuse);
/// `max_body_bytes` and `max_loop_count` are parsed only by the requests they can refuse. So an
/// unusable limit fails exactly those requests: never a bodyless one, and never by falling back
/// to the default.
async fn an_unusable_limit_fails_only_the_requests_it_can_refuse(host: HostKind) {
    let app = start(
        host,
        spec()
            .variable("max_body_bytes", "ten megabytes")
            .variable("max_loop_count", "once"),
    )
    .await;
    assert_eq!(get("echo.localhost", "/").send(&app).await.status, 200);
    let elsewhere = get("echo.localhost", "/")
        .header("cdn-loop", "cloudflare")
        .send(&app)
        .await;
    assert_eq!(elsewhere.status, 200, "another CDN's token is not a loop");
    let empty = request("POST", "echo.localhost", "/")
        .header("content-length", "0")
        .send_body(&app, Vec::new())
        .await;
    assert_eq!(empty.status, 200, "no cap can refuse an empty declared body");
    let declared = request("POST", "echo.localhost", "/")
        .send_body(&app, vec![1u8; 10])
        .await;
    let streamed = request("POST", "echo.localhost", "/")
        .send_stream(&app, vec![bytes::Bytes::from_static(b"x")])
        .await;
    let looped = get("echo.localhost", "/")
        .header("cdn-loop", "libra-dispatcher")
        .send(&app)
        .await;
    for (reply, variable) in [
        (declared, "max_body_bytes"),
        (streamed, "max_body_bytes"),
        (looped, "max_loop_count"),
    ] {
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (500, "configuration_error"),
            "{variable}"
        );
        let logged = app
            .wait_for_log(|l| {
                l["requestId"] == reply.request_id() && l["variable"] == "settings" && l["setting"] == variable
            })
            .await;
        assert_eq!(logged.len(), 1, "{variable}");
    }
}

on_both_hosts!(a_settings_typo_fails_every_request_and_never_leaks_a_value);
/// One variable holds every setting, so a mistake in it must be loud: an unknown key is never
/// ignored (its setting would quietly stay at the default), and the log names the key but never
/// echoes a value (a secret pasted into the wrong variable stays out of the log).
async fn a_settings_typo_fails_every_request_and_never_leaks_a_value(host: HostKind) {
    for (settings, problem) in [
        (
            "workers=echo; base_domian=libra.sh",
            "has an unknown key 'base_domian' (did you mean 'base_domain'?)",
        ),
        (
            "workers=echo; s3cret_token_value_0123=x",
            "has an unknown key (entry 2)",
        ),
        (
            "workers=echo\nadmin_token=s3cret-token",
            "names 'admin_token', which is no setting: give the token's SHA-256 as admin_token_sha256",
        ),
        (
            "workers=echo\npostgres_url=postgres://u:s3cret-token@db/x",
            "names 'postgres_url', which is an application variable of its own, not a setting",
        ),
        ("workers=echo; s3cret-token", "entry 2 is not key=value"),
        ("workers=echo; workers=hello", "sets 'workers' twice"),
    ] {
        let app = start(host, spec().variable("settings", settings)).await;
        for (host_name, path) in [("echo.localhost", "/"), ("localhost", "/health")] {
            let reply = get(host_name, path).send(&app).await;
            assert_eq!(
                (reply.status, reply.problem().as_str()),
                (500, "configuration_error"),
                "{settings:?} {host_name}"
            );
            assert!(!reply.text().contains("settings"), "{}", reply.text());
            let logged = app
                .wait_for_log(|l| {
                    l["requestId"] == reply.request_id() && l["variable"] == "settings" && l["problem"] == problem
                })
                .await;
            assert_eq!(logged.len(), 1, "{settings:?}");
        }
        let everything = app.stdout("dispatcher").await;
        assert!(!everything.contains("s3cret"), "{everything}");
    }
}

on_both_hosts!(settings_whose_provider_fails_fail_closed);
/// Every request reads `settings` first: while its provider is down, nothing is routed with
/// defaults in its place. The request is refused as unavailable (retry later), not misrouted.
async fn settings_whose_provider_fails_fail_closed(host: HostKind) {
    // A failing variable must not be given a value too (on Spin the value would answer first).
    let spec = AppSpec::default()
        .sqlite_file("db/sqlite/schema.sql")
        .failing("settings");
    let app = start(host, spec).await;
    for (host_name, path) in [
        ("echo.localhost", "/"),
        ("localhost", "/health"),
        ("localhost", "/dispatch/echo/"),
    ] {
        let reply = get(host_name, path).send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (503, "configuration_unavailable"),
            "{host_name}{path}"
        );
        assert!(reply.header("retry-after").is_some());
        let logged = app
            .wait_for_log(|l| l["requestId"] == reply.request_id() && l["variable"] == "settings")
            .await;
        assert_eq!(logged.len(), 1);
    }
}

/// On Spin 4.0.2 every application variable a request resolves is a provider lookup, and the
/// second one in a request costs far more than the first (see docs/performance.md). So a
/// request resolves exactly one, `settings`, on every route, an admin endpoint included (the
/// admin token is checked against its digest in `settings`). Counted by the test host: Spin
/// cannot count them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_resolves_one_application_variable() {
    let app = start(
        HostKind::TestHost,
        spec()
            .variable("admin_token_sha256", &sha256_hex(b"t0ken"))
            .variable("worker_url_template", "http://{worker}.workers.test")
            .variable("remote_workers", "shop"),
    )
    .await;
    app.sqlite_execute_batch(
        "INSERT INTO project (id, custom_domain, custom_domain_status, production_deploy_url) \
         VALUES ('p1', 'shop.example.com', 'active', 'https://echo.localhost')",
    )
    .unwrap();
    let counter = app.test_host().expect("the test host");
    let warm = get("shop.example.com", "/").send(&app).await;
    assert_eq!(warm.status, 200, "the cache is warm after this");
    for (what, sent, body, lookups) in [
        ("subdomain", get("echo.localhost", "/x"), "", 1),
        ("path", get("localhost", "/dispatch/echo/x"), "", 1),
        ("query", get("localhost", "/dispatch?worker=echo"), "", 1),
        ("custom domain, cache warm", get("shop.example.com", "/"), "", 1),
        ("a body", request("POST", "echo.localhost", "/"), "a body", 1),
        (
            "looped once",
            get("echo.localhost", "/").header("cdn-loop", "libra-dispatcher"),
            "",
            1,
        ),
        ("health", get("localhost", "/health"), "", 1),
        ("an unknown worker", get("ghost.localhost", "/"), "", 1),
        (
            "admin endpoint",
            get("localhost", "/dispatch").header("authorization", "Bearer t0ken"),
            "",
            1,
        ),
    ] {
        let before = counter.variable_lookups();
        let reply = sent.send_body(&app, body).await;
        assert!(reply.status < 500, "{what}: {}", reply.status);
        // The dispatcher reads its variables before it answers.
        assert_eq!(counter.variable_lookups() - before, lookups, "{what}");
    }
}

on_both_hosts!(an_unusable_lookup_setting_fails_only_the_requests_that_look_up);
/// The cache's key prefix (`namespace`) is parsed only by a request that looks in the cache,
/// the query timeout only by one that misses it: a bad value fails those requests and leaves
/// subdomain routing alone.
async fn an_unusable_lookup_setting_fails_only_the_requests_that_look_up(host: HostKind) {
    for (setting, value) in [("namespace", "not:a:prefix"), ("db_timeout_ms", "never")] {
        let app = start(host, spec().variable(setting, value)).await;
        assert_eq!(get("echo.localhost", "/").send(&app).await.status, 200, "{setting}");
        assert_eq!(get("localhost", "/dispatch/echo/").send(&app).await.status, 200);
        let reply = get("shop.example.com", "/").send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (500, "configuration_error"),
            "{setting}"
        );
        assert!(!reply.text().contains(value), "{}", reply.text());
        let logged = app
            .wait_for_log(|l| {
                l["requestId"] == reply.request_id() && l["variable"] == "settings" && l["setting"] == setting
            })
            .await;
        assert_eq!(logged.len(), 1, "{setting}");
    }
}

/// The schema every log line is checked against can refuse a line: a request's line without its
/// fields, and a line that is neither a request's nor has a message.
#[test]
fn the_log_line_schema_refuses_other_shapes() {
    use libra_test_host::harness::check_log_line;
    let time = "2026-12-06T00:00:00.000Z";
    check_log_line(&serde_json::json!({
        "time": time, "level": "warn", "requestId": "r", "message": "a warning", "worker": "shop"
    }));
    for bad in [
        serde_json::json!({ "time": time, "level": "info", "requestId": "r", "status": 200 }),
        serde_json::json!({ "time": time, "level": "info", "requestId": "r" }),
        serde_json::json!({ "time": time, "level": "loud", "requestId": "r", "message": "m" }),
        serde_json::json!({ "time": time, "level": "warn", "requestId": "r", "message": "m", "secret": "x" }),
    ] {
        let refused = std::panic::catch_unwind(|| check_log_line(&bad));
        assert!(refused.is_err(), "accepted {bad}");
    }
}
