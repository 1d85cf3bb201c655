//! Error documents and the access log.

use crate::support::*;
use libra_test_host::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_json_access_log_line_per_request_without_the_query() {
    let app = app();
    get("echo.localhost", "/a?token=secret")
        .header("x-request-id", "log-1")
        .send(&app)
        .await;
    get("localhost", "/dispatch/hello/b?token=secret")
        .header("x-request-id", "log-2")
        .send(&app)
        .await;
    get("ghost.localhost", "/c")
        .header("x-request-id", "log-3")
        .send(&app)
        .await;
    get("localhost", "/health")
        .header("x-request-id", "log-4")
        .send(&app)
        .await;
    let log = access_log(&app).await;
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(!app.stdout("dispatcher").contains("secret"));
    let by_id = |id: &str| {
        log.iter()
            .find(|line| line["requestId"] == id)
            .unwrap_or_else(|| panic!("{id} missing"))
            .clone()
    };
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
    let first = by_id("log-1");
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
    let second = by_id("log-2");
    assert_eq!(
        (second["route"].as_str(), second["worker"].as_str()),
        (Some("path"), Some("hello"))
    );
    assert_eq!(second["path"], "/dispatch/hello/b");
    let third = by_id("log-3");
    assert_eq!(
        (third["status"].as_u64(), third["error"].as_str()),
        (Some(404), Some("worker_not_found"))
    );
    assert_eq!(by_id("log-4")["route"], "api");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_level_filters_the_access_log() {
    let app = App::new(options().variable("log_level", "error")).unwrap();
    get("echo.localhost", "/").send(&app).await;
    get("faulty.localhost", "/trap").send(&app).await;
    let log = access_log(&app).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["level"], "error");
    assert_eq!(log[0]["status"], 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hosts_are_400() {
    let app = app();
    for host in ["a..b", "-a.localhost", "a_b.example.com", "localhost:99999", "[zz]"] {
        let reply = get(host, "/").send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (400, "invalid_host"),
            "{host}"
        );
    }
}

/// Routing only asks whether one valid name is listed, so a bad entry cannot route anything and
/// need not take the platform down; the endpoints that describe the namespace report it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_workers_entry_is_reported_where_the_namespace_is_described() {
    let app = App::new(options().variable("workers", "echo,hello,Bad_Name")).unwrap();
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
    }
    let log = access_log(&app).await;
    assert_eq!(log.len(), 4);
    assert_eq!(log[3]["error"], "configuration_error");
    assert_eq!(log[3]["status"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_is_a_500_that_leaks_nothing() {
    let app = App::new(options().variable("max_body_bytes", "ten megabytes")).unwrap();
    let reply = get("echo.localhost", "/").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (500, "configuration_error"));
    assert!(
        !reply.text().contains("max_body_bytes"),
        "variable names stay in the log: {}",
        reply.text()
    );
    assert_eq!(access_log(&app).await.len(), 1);
}
