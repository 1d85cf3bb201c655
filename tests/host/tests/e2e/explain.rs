//! `GET /dispatch/explain?url=`: how a URL would be routed, over real HTTP on both hosts,
//! checked against what the same URL then does, and that explaining calls no worker and writes
//! nothing.

use serde_json::Value;

use crate::support::*;

fn explain(url: &str) -> String {
    let encoded: String = url
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/dispatch/explain?url={encoded}")
}

async fn explained(app: &Running, url: &str) -> Value {
    let reply = get("localhost:3000", &explain(url)).send(app).await;
    assert_eq!(reply.status, 200, "{url}: {}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["requestId"].as_str(), Some(reply.request_id()));
    body
}

on_both_hosts!(explain_says_where_a_url_goes_without_calling_it);
async fn explain_says_where_a_url_goes_without_calling_it(host: HostKind) {
    let app = start(
        host,
        spec()
            .variable("rate_limits", "faulty:1/h")
            .variable("breakers", "*:5/30s"),
    )
    .await;
    let keys_before = app.key_value_keys().unwrap();
    let body = explained(&app, "http://faulty.localhost:3000/trap?x=1").await;
    assert_eq!(body["hostClass"], "tenant_subdomain");
    assert_eq!(body["route"], "subdomain");
    assert_eq!(body["worker"], "faulty");
    assert_eq!(body["location"]["kind"], "local");
    assert_eq!(body["location"]["url"], "http://faulty.spin.internal");
    assert_eq!(body["upstreamPath"], "/trap?x=1");
    assert_eq!(body["outcome"]["action"], "forward");
    assert_eq!(body["limits"]["rateLimit"], "1/h");
    assert_eq!(body["limits"]["rateDecision"], "admitted");
    assert_eq!(body["limits"]["breaker"], "5/30s");
    assert_eq!(body["limits"]["breakerState"], "closed");
    let rate = body["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "rate_limits")
        .unwrap();
    assert_eq!(
        (rate["value"].as_str(), rate["default"].as_bool()),
        (Some("faulty:1/h"), Some(false))
    );
    // Nothing was called and nothing was counted.
    assert!(
        !app.stdout("faulty").await.contains("faulty /trap"),
        "the worker was not called"
    );
    assert_eq!(
        app.key_value_keys().unwrap(),
        keys_before,
        "nothing written to the store"
    );

    // The same URL for real: it uses the quota, and the explanation now says a request would be
    // refused, as the next one is.
    let real = get("faulty.localhost:3000", "/status/200").send(&app).await;
    assert_eq!(real.status, 200);
    let body = explained(&app, "http://faulty.localhost/status/200").await;
    assert_eq!(body["limits"]["rateDecision"], "refused");
    assert_eq!(
        (body["outcome"]["status"].as_u64(), body["outcome"]["code"].as_str()),
        (Some(429), Some("rate_limited"))
    );
    assert_eq!(
        get("faulty.localhost:3000", "/status/200").send(&app).await.problem(),
        "rate_limited"
    );

    // Path, query, the dispatcher's own paths and refusals, each as a request would get them.
    let path = explained(&app, "http://localhost:3000/dispatch/echo/a/b").await;
    assert_eq!(
        (path["route"].as_str(), path["upstreamPath"].as_str()),
        (Some("path"), Some("/a/b"))
    );
    let query = explained(&app, "http://localhost/dispatch?worker=hello&a=1").await;
    assert_eq!(
        (query["route"].as_str(), query["worker"].as_str()),
        (Some("query"), Some("hello"))
    );
    let health = explained(&app, "http://localhost/health").await;
    assert_eq!(
        (health["outcome"]["action"].as_str(), health["endpoint"].as_str()),
        (Some("endpoint"), Some("health"))
    );
    let ghost = explained(&app, "https://ghost.localhost/").await;
    assert_eq!(ghost["outcome"]["code"], "worker_not_found");
    let unknown = explained(&app, "https://unknown.example.com/").await;
    assert_eq!(unknown["hostClass"], "custom_domain");
    assert_eq!(unknown["customDomainCache"]["state"], "miss");
    assert_eq!(unknown["outcome"]["code"], "custom_domain_not_found");

    // `explain` is reserved: no tenant can take the name, or the path.
    let reserved = get("localhost:3000", "/dispatch/explain/x").send(&app).await;
    assert_eq!(reserved.problem(), "reserved_worker_name");
    assert_eq!(
        get("explain.localhost:3000", "/").send(&app).await.problem(),
        "reserved_worker_name"
    );
}

on_both_hosts!(explain_reports_the_custom_domain_cache_as_it_stands);
async fn explain_reports_the_custom_domain_cache_as_it_stands(host: HostKind) {
    let app = app(host).await;
    app.sqlite_execute_batch(
        "INSERT INTO project (id, custom_domain, custom_domain_status, is_active, production_deploy_url, custom_domain_verified_at) \
         VALUES ('p1', 'shop.example.com', 'active', 1, 'https://echo.localhost', '2026-01-01T00:00:00Z')",
    )
    .unwrap();
    let cold = explained(&app, "https://shop.example.com/cart").await;
    assert_eq!(cold["customDomainCache"]["state"], "miss", "{cold}");
    assert_eq!(cold["worker"], "echo", "{cold}");
    assert_eq!(cold["route"], "custom_domain");
    assert!(
        cold["settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["key"] == "domain_cache_ttl_s")
    );
    // Explaining cached nothing: still a miss.
    assert_eq!(
        explained(&app, "https://shop.example.com/").await["customDomainCache"]["state"],
        "miss"
    );
    // A real request caches the answer; the explanation sees it.
    assert_eq!(get("shop.example.com", "/cart").send(&app).await.status, 200);
    let warm = explained(&app, "https://shop.example.com/cart").await;
    assert_eq!(warm["customDomainCache"]["state"], "hit", "{warm}");
    assert!(
        warm["customDomainCache"]["expiresInS"].as_u64().unwrap() <= 60,
        "{warm}"
    );
    assert!(warm["customDomainCache"]["ageS"].as_u64().unwrap() <= 60, "{warm}");
}

on_both_hosts!(explain_refuses_bad_input_and_keeps_to_the_admin_token);
async fn explain_refuses_bad_input_and_keeps_to_the_admin_token(host: HostKind) {
    let app = start(host, spec().variable("admin_token_sha256", &sha256_hex(b"t0ken"))).await;
    let url = explain("http://echo.localhost/");
    assert_eq!(get("localhost:3000", &url).send(&app).await.problem(), "unauthorized");
    let allowed = get("localhost:3000", &url)
        .header("authorization", "Bearer t0ken")
        .send(&app)
        .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.json()["worker"], "echo");
    for target in [
        "/dispatch/explain".to_string(),
        "/dispatch/explain?url=".to_string(),
        "/dispatch/explain?url=%2Frelative".to_string(),
        explain("ftp://echo.localhost/"),
        format!("{}&url=x", explain("http://echo.localhost/")),
    ] {
        let reply = get("localhost:3000", &target)
            .header("authorization", "Bearer t0ken")
            .send(&app)
            .await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (400, "invalid_url"),
            "{target}"
        );
    }
    let post = request("POST", "localhost:3000", &url)
        .header("authorization", "Bearer t0ken")
        .send(&app)
        .await;
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));
}
