//! Which worker a request reaches, and what path it sees, in every routing mode.

use crate::support::*;

on_both_hosts!(subdomain_reaches_the_worker_with_method_path_query_and_body_unchanged);
async fn subdomain_reaches_the_worker_with_method_path_query_and_body_unchanged(host: HostKind) {
    let app = app(host).await;
    let reply = request("PATCH", "echo.localhost:3000", "/a/b%20c?x=1&y=%2F")
        .send_body(&app, "payload")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echoed = reply.json();
    assert_eq!(echoed["method"], "PATCH");
    assert_eq!(echoed["path"], "/a/b%20c");
    assert_eq!(echoed["query"], "x=1&y=%2F");
    assert_eq!(echoed["body"]["bytes"], 7);
    assert_eq!(echoed["body"]["sha256"], sha256_hex(b"payload"));

    let hello = get("hello.localhost:3000", "/").send(&app).await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        hello.text().contains("Hello from the <code>hello</code> worker"),
        "{}",
        hello.text()
    );
    assert!(hello.text().contains("hello.localhost:3000"));
}

on_both_hosts!(subdomain_host_is_case_insensitive_and_may_end_in_a_dot);
async fn subdomain_host_is_case_insensitive_and_may_end_in_a_dot(host: HostKind) {
    let app = app(host).await;
    for host in ["ECHO.LOCALHOST", "echo.localhost.", "Echo.Localhost.:8080"] {
        let reply = get(host, "/").send(&app).await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.text());
        assert_eq!(reply.json()["path"], "/");
    }
}

on_both_hosts!(path_dispatch_strips_the_prefix_and_keeps_the_query);
async fn path_dispatch_strips_the_prefix_and_keeps_the_query(host: HostKind) {
    let app = app(host).await;
    for (target, path, query) in [
        ("/dispatch/echo/a/b?x=1", "/a/b", Some("x=1")),
        ("/api/dispatch/echo/deep/er", "/deep/er", None),
        ("/dispatch/echo", "/", None),
        ("/dispatch/echo/", "/", None),
        ("/dispatch/ECHO/upper", "/upper", None),
    ] {
        let reply = request("POST", "localhost:3000", target).send_body(&app, "x").await;
        assert_eq!(reply.status, 200, "{target}: {}", reply.text());
        let echoed = reply.json();
        assert_eq!(echoed["path"], path, "{target}");
        assert_eq!(echoed["query"].as_str(), query, "{target}");
        assert_eq!(echoed["method"], "POST");
    }
}

on_both_hosts!(query_dispatch_sends_root_and_the_other_parameters_for_any_method);
async fn query_dispatch_sends_root_and_the_other_parameters_for_any_method(host: HostKind) {
    let app = app(host).await;
    let reply = request("PUT", "127.0.0.1:3000", "/dispatch?a=1&worker=echo&b=2")
        .send_body(&app, "x")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["path"], "/");
    assert_eq!(reply.json()["query"], "a=1&b=2");

    // GET dispatches too (the original silently answered with namespace info instead).
    let reply = get("localhost", "/api/dispatch?worker=echo").send(&app).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["method"], "GET");
    assert_eq!(reply.json()["query"], serde_json::Value::Null);
}

on_both_hosts!(dispatcher_paths_on_a_tenant_host_belong_to_the_tenant);
async fn dispatcher_paths_on_a_tenant_host_belong_to_the_tenant(host: HostKind) {
    let app = app(host).await;
    for target in [
        "/health",
        "/dispatch",
        "/dispatch?worker=hello",
        "/dispatch/hello/x",
        "/api/dispatch?worker=hello",
        "/openapi.json",
    ] {
        let reply = request("POST", "echo.localhost", target).send(&app).await;
        assert_eq!(reply.status, 200, "{target}");
        let echoed = reply.json();
        let (path, query) = target.split_once('?').map_or((target, None), |(p, q)| (p, Some(q)));
        assert_eq!(echoed["path"], path, "echo itself answered {target}");
        assert_eq!(echoed["query"].as_str(), query);
        let line = log_of(&app, &reply).await;
        assert_eq!(
            (line["worker"].as_str(), line["route"].as_str()),
            (Some("echo"), Some("subdomain")),
            "{target}"
        );
    }
}

on_both_hosts!(health_on_a_dispatcher_host);
async fn health_on_a_dispatcher_host(host: HostKind) {
    let app = start(host, spec().variable("environment", "staging")).await;
    let reply = get("localhost:3000", "/health").send(&app).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let health = reply.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "libra-dispatcher");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["environment"], "staging");
    assert!(health["timestamp"].as_str().unwrap().ends_with('Z'));

    let head = request("HEAD", "127.0.0.1", "/health").send(&app).await;
    assert_eq!(head.status, 200);
    assert!(head.bytes().is_empty());
}

on_both_hosts!(namespace_info_counts_workers_and_shows_working_examples);
async fn namespace_info_counts_workers_and_shows_working_examples(host: HostKind) {
    let app = start(host, spec().variable("namespace", "libra-prod")).await;
    let reply = get("localhost:3000", "/dispatch").send(&app).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let info = reply.json();
    assert_eq!(info["namespace"]["name"], "libra-prod");
    assert_eq!(info["namespace"]["workerCount"], 3);
    // Examples with the request's own scheme and port, and a placeholder for the worker: the
    // endpoint does not name any tenant.
    assert_eq!(info["routing"]["subdomain"], "http://my-app.localhost:3000/");
    assert_eq!(info["routing"]["path"], "/dispatch/my-app/");
    assert_eq!(info["routing"]["query"], "/dispatch?worker=my-app");
    assert_eq!(info["requestId"].as_str(), reply.header("x-request-id"));
    for tenant in ["echo", "faulty", "hello"] {
        assert!(!reply.text().contains(tenant), "{}", reply.text());
    }
}

on_both_hosts!(base_domain_and_dispatcher_hosts_come_from_variables);
async fn base_domain_and_dispatcher_hosts_come_from_variables(host: HostKind) {
    let app = start(
        host,
        spec()
            .variable("base_domain", "libra.sh")
            .variable("dispatcher_hosts", "dispatcher.libra.dev"),
    )
    .await;
    assert_eq!(get("echo.libra.sh", "/x").send(&app).await.json()["path"], "/x");
    assert_eq!(get("libra.sh", "/health").send(&app).await.status, 200);
    assert_eq!(get("dispatcher.libra.dev", "/health").send(&app).await.status, 200);
    // `localhost` is no longer the dispatcher's: it is somebody's (unknown) custom domain.
    assert_eq!(
        get("localhost", "/health").send(&app).await.problem(),
        "custom_domain_not_found"
    );
    assert_eq!(
        get("echo.localhost", "/").send(&app).await.problem(),
        "custom_domain_not_found"
    );
}

on_both_hosts!(other_hosts_are_custom_domains_and_deeper_names_are_not_routed);
async fn other_hosts_are_custom_domains_and_deeper_names_are_not_routed(host: HostKind) {
    let app = app(host).await;
    let reply = get("shop.example.com", "/").send(&app).await;
    assert_eq!(
        (reply.status, reply.problem().as_str()),
        (404, "custom_domain_not_found")
    );
    let reply = get("a.echo.localhost", "/").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (404, "host_not_routed"));
    let reply = get("localhost", "/nothing-here").send(&app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (404, "not_found"));
    if let Some(test_host) = app.test_host() {
        assert!(test_host.outbound_requests().is_empty());
    }
}

on_both_hosts!(unknown_workers_are_404_in_every_mode_without_calling_spin);
async fn unknown_workers_are_404_in_every_mode_without_calling_spin(host: HostKind) {
    let app = app(host).await;
    for request in [
        get("ghost.localhost", "/"),
        get("localhost", "/dispatch/ghost/"),
        request("POST", "localhost", "/dispatch?worker=ghost"),
    ] {
        let reply = request.send(&app).await;
        assert_eq!((reply.status, reply.problem().as_str()), (404, "worker_not_found"));
        assert!(reply.json()["detail"].as_str().unwrap().contains("'ghost'"));
    }
    if let Some(test_host) = app.test_host() {
        let outbound = test_host.outbound_requests();
        assert!(outbound.is_empty(), "{outbound:?}");
    }
}

on_both_hosts!(one_name_validator_for_every_mode);
async fn one_name_validator_for_every_mode(host: HostKind) {
    let app = app(host).await;
    let long = "a".repeat(64);
    let cases: Vec<(&str, &str)> = vec![
        ("", "missing_worker_name"),
        (&long, "invalid_worker_name"),
        ("-echo", "invalid_worker_name"),
        ("echo-", "invalid_worker_name"),
        ("admin", "reserved_worker_name"),
        ("customers", "reserved_worker_name"),
        ("dispatch", "reserved_worker_name"),
        ("%C3%A9cho", "invalid_worker_name"),
        ("..", "invalid_path"),
        ("%2e%2e", "invalid_path"),
        ("a_b", "invalid_worker_name"),
    ];
    for (name, code) in &cases {
        let path = format!("/dispatch/{name}/x");
        let reply = get("localhost", &path).send(&app).await;
        assert_eq!(
            (reply.status, reply.problem()),
            (400, code.to_string()),
            "path {name:?}"
        );
        // In a query a dot name is just an invalid name; in a path it is a dot segment first.
        let code = if *code == "invalid_path" {
            "invalid_worker_name"
        } else {
            code
        };
        let query = format!("/dispatch?worker={name}");
        let reply = request("POST", "localhost", &query).send(&app).await;
        assert_eq!(
            (reply.status, reply.problem()),
            (400, code.to_string()),
            "query {name:?}"
        );
    }
    for (host, code) in [
        (format!("{long}.localhost"), "invalid_host"),
        ("-echo.localhost".to_string(), "invalid_host"),
        ("admin.localhost".to_string(), "reserved_worker_name"),
        ("a_b.localhost".to_string(), "invalid_host"),
        ("www.localhost".to_string(), "reserved_worker_name"),
    ] {
        let reply = get(&host, "/").send(&app).await;
        assert_eq!((reply.status, reply.problem()), (400, code.to_string()), "host {host}");
    }
    // Upper case is not a different tenant: it is the same name, lowercased like a host label.
    assert_eq!(get("localhost", "/dispatch/EcHo/").send(&app).await.json()["path"], "/");
    assert_eq!(
        request("POST", "localhost", "/dispatch?worker=ECHO")
            .send(&app)
            .await
            .status,
        200
    );
    if let Some(test_host) = app.test_host() {
        assert!(
            test_host
                .outbound_requests()
                .iter()
                .all(|target| target == "http://echo.spin.internal")
        );
    }
}

on_both_hosts!(extra_reserved_names_come_from_a_variable);
async fn extra_reserved_names_come_from_a_variable(host: HostKind) {
    let app = start(host, spec().variable("reserved_names", "billing, Status")).await;
    assert_eq!(
        get("billing.localhost", "/").send(&app).await.problem(),
        "reserved_worker_name"
    );
    assert_eq!(
        get("localhost", "/dispatch/status/").send(&app).await.problem(),
        "reserved_worker_name"
    );
}

on_both_hosts!(the_dispatchers_root_sends_browsers_to_the_docs_and_others_to_links);
async fn the_dispatchers_root_sends_browsers_to_the_docs_and_others_to_links(host: HostKind) {
    let app = app(host).await;
    let browser = get("localhost:3000", "/")
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send(&app)
        .await;
    assert_eq!((browser.status, browser.header("location")), (302, Some("/docs")));
    let tool = get("localhost:3000", "/").header("accept", "*/*").send(&app).await;
    assert_eq!(tool.status, 200);
    let links = tool.json();
    for (name, link) in [("openapi", "/openapi.json"), ("docs", "/docs"), ("health", "/health")] {
        assert_eq!(links["links"][name], link);
        assert_eq!(get("localhost", link).send(&app).await.status, 200, "{link}");
    }
    // A tenant's root is the tenant's.
    assert_eq!(get("echo.localhost", "/").send(&app).await.json()["path"], "/");
}
