//! Custom domains, resolved from a real PostgreSQL server (started by the test) and from the
//! embedded SQLite default, through the real dispatcher component.

use libra_dispatcher::cache::{self, CacheEntry};
use libra_test_host::postgres_server::TestPostgres;
use libra_test_host::project_root;

use crate::support::*;

enum Database {
    Postgres(TestPostgres),
    Sqlite,
}

struct Fixture {
    app: Running,
    database: Database,
}

const DB: &str = "postgres";

impl Fixture {
    async fn postgres(host: HostKind, variables: &[(&str, &str)]) -> Fixture {
        let server = TestPostgres::start().expect("postgres starts");
        let schema = std::fs::read_to_string(project_root().join("db/postgres/schema.sql")).unwrap();
        server
            .execute(DB, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .unwrap();
        server.execute(DB, &schema).await.unwrap();
        let mut spec = spec()
            .variable("postgres_url", &server.url(DB))
            .variable("postgres_host", &server.address());
        for (name, value) in variables {
            spec = spec.variable(name, value);
        }
        Fixture {
            app: start(host, spec).await,
            database: Database::Postgres(server),
        }
    }

    async fn sqlite(host: HostKind, variables: &[(&str, &str)]) -> Fixture {
        let mut spec = spec();
        for (name, value) in variables {
            spec = spec.variable(name, value);
        }
        Fixture {
            app: start(host, spec).await,
            database: Database::Sqlite,
        }
    }

    async fn both(host: HostKind, variables: &[(&str, &str)]) -> Vec<Fixture> {
        vec![
            Fixture::postgres(host, variables).await,
            Fixture::sqlite(host, variables).await,
        ]
    }

    fn name(&self) -> &'static str {
        match self.database {
            Database::Postgres(_) => "postgres",
            Database::Sqlite => "sqlite",
        }
    }

    /// Adds a project as Libra's API would store it.
    async fn project(&self, id: &str, domain: &str, status: &str, active: bool, url: &str, verified_at: Option<&str>) {
        match &self.database {
            Database::Postgres(server) => {
                let client = server.client(DB).await.unwrap();
                client
                    .execute(
                        "INSERT INTO project (id, custom_domain, custom_domain_status, is_active, production_deploy_url, custom_domain_verified_at) \
                         VALUES ($1, $2, $3, $4, $5, $6::text::timestamptz)",
                        &[&id, &domain, &status, &active, &url, &verified_at],
                    )
                    .await
                    .unwrap();
            }
            Database::Sqlite => {
                let verified = verified_at.map_or("NULL".to_string(), |v| format!("'{v}'"));
                self.app
                    .sqlite_execute_batch(&format!(
                        "INSERT INTO project (id, custom_domain, custom_domain_status, is_active, production_deploy_url, custom_domain_verified_at) \
                         VALUES ('{id}', '{domain}', '{status}', {}, '{url}', {verified})",
                        i32::from(active)
                    ))
                    .unwrap();
            }
        }
    }

    /// Custom-domain lookups the database has run, counted on the database side; `None` where
    /// nothing can count them (the embedded SQLite database of a real Spin).
    async fn lookups(&self) -> Option<u64> {
        match &self.database {
            Database::Postgres(server) => {
                let client = server.client(DB).await.unwrap();
                let row = client
                    .query_one(
                        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE '%production_deploy_url FROM project%'",
                        &[],
                    )
                    .await
                    .unwrap();
                Some(row.get::<_, i64>(0) as u64)
            }
            Database::Sqlite => self.app.test_host().map(|app| app.sqlite_statements()),
        }
    }

    /// Checks that `expected` lookups ran since `before`, where they can be counted.
    async fn expect_lookups(&self, before: Option<u64>, expected: u64, why: &str) {
        if let (Some(before), Some(now)) = (before, self.lookups().await) {
            assert_eq!(now - before, expected, "{}: {why}", self.name());
        }
    }

    fn server(&mut self) -> &mut TestPostgres {
        match &mut self.database {
            Database::Postgres(server) => server,
            Database::Sqlite => panic!("not a postgres fixture"),
        }
    }
}

on_both_hosts!(verified_and_active_domains_are_served_others_are_not);
async fn verified_and_active_domains_are_served_others_are_not(host: HostKind) {
    for fixture in Fixture::both(host, &[]).await {
        let name = fixture.name();
        fixture
            .project(
                "p1",
                "shop.example.com",
                "active",
                true,
                "https://echo.localhost",
                Some("2026-01-01T00:00:00Z"),
            )
            .await;
        fixture
            .project(
                "p2",
                "Blog.Example.COM",
                "verified",
                true,
                "https://hello.localhost/",
                None,
            )
            .await;
        fixture
            .project(
                "p3",
                "pending.example.com",
                "pending",
                true,
                "https://echo.localhost",
                None,
            )
            .await;
        fixture
            .project(
                "p4",
                "failed.example.com",
                "failed",
                true,
                "https://echo.localhost",
                None,
            )
            .await;
        fixture
            .project(
                "p5",
                "inactive.example.com",
                "active",
                false,
                "https://echo.localhost",
                None,
            )
            .await;
        fixture
            .project("p6", "dot.example.com.", "active", true, "https://echo.localhost", None)
            .await;
        let app = &fixture.app;

        let reply = request("POST", "shop.example.com", "/cart?item=1")
            .header("x-forwarded-for", "6.6.6.6")
            .send_body(app, "x")
            .await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        let echoed = reply.json();
        assert_eq!(
            (echoed["path"].as_str(), echoed["query"].as_str()),
            (Some("/cart"), Some("item=1")),
            "{name}"
        );
        assert_eq!(
            reply.echoed_header("x-forwarded-host").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(reply.echoed_header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
        assert!(
            reply.header("content-security-policy").is_none(),
            "a custom domain is the tenant's own origin"
        );

        for host in [
            "SHOP.Example.com",
            "shop.example.com:8443",
            "shop.example.com.",
            "blog.example.com",
            "dot.example.com",
        ] {
            assert_eq!(get(host, "/").send(app).await.status, 200, "{name}: {host}");
        }
        assert!(get("blog.example.com", "/").send(app).await.text().contains("hello"));
        for host in [
            "pending.example.com",
            "failed.example.com",
            "inactive.example.com",
            "unknown.example.com",
        ] {
            let refused = get(host, "/").send(app).await;
            assert_eq!(
                (refused.status, refused.problem().as_str()),
                (404, "custom_domain_not_found"),
                "{name}: {host}"
            );
        }
        let line = log_of(app, &reply).await;
        assert_eq!(line["host"], "shop.example.com", "{name}");
        assert_eq!(
            (line["route"].as_str(), line["worker"].as_str()),
            (Some("custom_domain"), Some("echo")),
            "{name}"
        );
    }
}

on_both_hosts!(a_deploy_url_that_is_not_a_worker_origin_is_never_followed);
async fn a_deploy_url_that_is_not_a_worker_origin_is_never_followed(host: HostKind) {
    for fixture in Fixture::both(host, &[]).await {
        let name = fixture.name();
        let cases = [
            ("p1", "a.example.com", "https://evil.example.net"),
            ("p2", "b.example.com", "https://echo.localhost/../admin"),
            ("p3", "c.example.com", "https://user@echo.localhost"),
            ("p4", "d.example.com", "https://ghost.localhost"),
            ("p5", "e.example.com", "http://169.254.169.254/latest"),
            ("p6", "f.example.com", ""),
        ];
        for (id, domain, url) in cases {
            fixture.project(id, domain, "active", true, url, None).await;
        }
        for (_, domain, url) in cases {
            let reply = get(domain, "/").send(&fixture.app).await;
            let expected = if url.contains("ghost") {
                "worker_not_found"
            } else {
                "custom_domain_not_found"
            };
            assert_eq!(reply.problem(), expected, "{name}: {url}");
        }
        if let Some(test_host) = fixture.app.test_host() {
            let outbound = test_host.outbound_requests();
            assert!(outbound.is_empty(), "{name}: nothing was fetched: {outbound:?}");
        }
        let stdout = fixture.app.stdout("dispatcher").await;
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("\"level\":\"warn\"") && l.contains("a.example.com")),
            "{name}: {stdout}"
        );
    }
}

on_both_hosts!(the_cache_saves_every_query_until_it_expires);
async fn the_cache_saves_every_query_until_it_expires(host: HostKind) {
    for fixture in Fixture::both(host, &[]).await {
        fixture
            .project("p1", "shop.example.com", "active", true, "https://echo.localhost", None)
            .await;
        let app = &fixture.app;
        let before = fixture.lookups().await;
        for _ in 0..5 {
            assert_eq!(get("shop.example.com", "/").send(app).await.status, 200);
        }
        fixture.expect_lookups(before, 1, "a warm domain costs no query").await;
        for _ in 0..5 {
            assert_eq!(get("nobody.example.com", "/").send(app).await.status, 404);
        }
        fixture
            .expect_lookups(before, 2, "unknown domains are cached too")
            .await;

        // Expiry: age the entry as time would (the cache stores its own deadline).
        let key = cache::key("default", cache::Kind::CustomDomain, "shop.example.com");
        let entry = CacheEntry::decode(&app.key_value_get(&key).unwrap(), &[]).unwrap();
        assert_eq!(entry.worker.as_ref().map(|w| w.as_str()), Some("echo"));
        app.key_value_set(&key, &CacheEntry { expires_at: 1, ..entry }.encode())
            .unwrap();
        assert_eq!(get("shop.example.com", "/").send(app).await.status, 200);
        fixture
            .expect_lookups(before, 3, "an expired entry is looked up again")
            .await;
    }
}

on_both_hosts!(ttls_come_from_variables_and_zero_turns_the_cache_off);
async fn ttls_come_from_variables_and_zero_turns_the_cache_off(host: HostKind) {
    for fixture in Fixture::both(host, &[("domain_cache_ttl_s", "0"), ("domain_negative_ttl_s", "0")]).await {
        fixture
            .project("p1", "shop.example.com", "active", true, "https://echo.localhost", None)
            .await;
        let before = fixture.lookups().await;
        for _ in 0..3 {
            get("shop.example.com", "/").send(&fixture.app).await;
            get("nobody.example.com", "/").send(&fixture.app).await;
        }
        fixture.expect_lookups(before, 6, "every request queries").await;
        assert!(
            fixture
                .app
                .key_value_get(&cache::key("default", cache::Kind::CustomDomain, "shop.example.com"))
                .is_none()
        );
    }
}

on_both_hosts!(a_database_outage_is_503_for_custom_domains_only_and_heals_by_itself);
async fn a_database_outage_is_503_for_custom_domains_only_and_heals_by_itself(host: HostKind) {
    let mut fixture = Fixture::postgres(host, &[("domain_cache_ttl_s", "0"), ("db_timeout_ms", "1000")]).await;
    fixture
        .project("p1", "shop.example.com", "active", true, "https://echo.localhost", None)
        .await;
    assert_eq!(get("shop.example.com", "/").send(&fixture.app).await.status, 200);

    fixture.server().stop().unwrap();
    let reply = get("shop.example.com", "/").send(&fixture.app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (503, "database_unavailable"));
    assert_eq!(reply.header("retry-after"), Some("5"));
    let text = reply.text();
    assert!(
        !text.contains("connect") && !text.contains("postgres") && !text.contains("SELECT"),
        "{text}"
    );
    assert_eq!(
        get("echo.localhost", "/").send(&fixture.app).await.status,
        200,
        "subdomains are unaffected"
    );
    assert_eq!(get("localhost", "/dispatch/echo/").send(&fixture.app).await.status, 200);
    assert_eq!(get("localhost", "/health").send(&fixture.app).await.status, 200);
    let detailed = get("localhost", "/health/detailed").send(&fixture.app).await;
    assert_eq!(detailed.status, 503);
    assert_eq!(detailed.json()["checks"]["database"]["status"], "error");

    fixture.server().restart().unwrap();
    assert_eq!(
        get("shop.example.com", "/").send(&fixture.app).await.status,
        200,
        "recovered without a restart"
    );
    // Without an admin token the check is shared for a few seconds; age it as time would.
    let key = cache::key("default", cache::Kind::HealthCheck, "database");
    assert!(fixture.app.key_value_get(&key).is_some(), "the failed check is shared");
    fixture.app.key_value_set(&key, b"0 error postgres 0").unwrap();
    assert_eq!(
        get("localhost", "/health/detailed").send(&fixture.app).await.status,
        200
    );
}

on_both_hosts!(hosts_shaped_like_sql_injection_are_harmless);
async fn hosts_shaped_like_sql_injection_are_harmless(host: HostKind) {
    for fixture in Fixture::both(host, &[]).await {
        fixture
            .project("p1", "shop.example.com", "active", true, "https://echo.localhost", None)
            .await;
        // Spin closes the connection, answering nothing, when `Host` is not even an authority
        // (status 0 here); the others reach the dispatcher, which refuses them as hosts.
        for (host, status) in [
            ("x' OR '1'='1", 0),
            ("shop.example.com';DROP TABLE project;--", 0),
            ("a\\\\b", 0),
            ("%27.example.com", 0),
            ("x=1.example.com", 400),
            ("union_select.example.com", 400),
            ("a(b)!*.example.com", 400),
        ] {
            let reply = get(host, "/").send(&fixture.app).await;
            assert_eq!(reply.status, status, "{}: {host}", fixture.name());
            if status == 400 {
                assert_eq!(reply.problem(), "invalid_host");
            }
        }
        for host in [
            "or-1-1.example.com",
            "union-select-1.example.com",
            "drop-table-project.example.com",
        ] {
            assert_eq!(
                get(host, "/").send(&fixture.app).await.problem(),
                "custom_domain_not_found"
            );
        }
        assert_eq!(
            get("shop.example.com", "/").send(&fixture.app).await.status,
            200,
            "the table is intact"
        );
    }
}

on_both_hosts!(several_claims_resolve_to_the_most_recently_verified);
async fn several_claims_resolve_to_the_most_recently_verified(host: HostKind) {
    // Without the unique index (Libra's schema as it is), two projects can claim one domain.
    let fixture = Fixture::postgres(host, &[]).await;
    fixture
        .project(
            "old",
            "shop.example.com",
            "active",
            true,
            "https://hello.localhost",
            Some("2025-01-01T00:00:00Z"),
        )
        .await;
    fixture
        .project(
            "new",
            "SHOP.example.com",
            "active",
            true,
            "https://echo.localhost",
            Some("2026-01-01T00:00:00Z"),
        )
        .await;
    fixture
        .project(
            "never",
            "shop.example.com",
            "verified",
            true,
            "https://hello.localhost",
            None,
        )
        .await;
    let reply = get("shop.example.com", "/").send(&fixture.app).await;
    assert_eq!(
        reply.json()["method"],
        "GET",
        "echo (the newest) answered: {}",
        reply.text()
    );
}

on_both_hosts!(the_migration_makes_domains_unique_whatever_their_case);
async fn the_migration_makes_domains_unique_whatever_their_case(host: HostKind) {
    let fixture = Fixture::postgres(host, &[]).await;
    let Database::Postgres(server) = &fixture.database else {
        unreachable!()
    };
    let migration =
        std::fs::read_to_string(project_root().join("db/postgres/migrations/0001_unique_lower_custom_domain.sql"))
            .unwrap();
    server.execute(DB, &migration).await.expect("migration applies");
    fixture
        .project("a", "shop.example.com", "active", true, "https://echo.localhost", None)
        .await;
    let client = server.client(DB).await.unwrap();
    let duplicate = client
        .execute(
            "INSERT INTO project (id, custom_domain) VALUES ('b', 'SHOP.EXAMPLE.COM')",
            &[],
        )
        .await;
    assert!(duplicate.is_err(), "a second claim in another case is refused");
    // The lookup can use the index (the planner prefers a scan on a table this small, so ask).
    client.batch_execute("SET enable_seqscan = off").await.unwrap();
    let lookup = libra_dispatcher::custom_domain::POSTGRES_LOOKUP.replace("$1", "'shop.example.com'");
    let plan: Vec<String> = client
        .query(&format!("EXPLAIN {lookup}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        plan.iter().any(|line| line.contains("project_custom_domain_lower_key")),
        "{plan:#?}"
    );
    assert_eq!(get("shop.example.com", "/").send(&fixture.app).await.status, 200);
}

on_both_hosts!(detailed_health_checks_the_database_for_real);
async fn detailed_health_checks_the_database_for_real(host: HostKind) {
    for fixture in Fixture::both(host, &[]).await {
        let reply = get("localhost", "/health/detailed").send(&fixture.app).await;
        assert_eq!(reply.status, 200, "{}: {}", fixture.name(), reply.text());
        let report = reply.json();
        assert_eq!(report["checks"]["database"]["status"], "ok");
        assert_eq!(report["checks"]["database"]["backend"], fixture.name());
        assert!(report["checks"]["database"]["latency_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(report["checks"]["namespace"]["workers"], 3);
        // On a tenant host the path is the tenant's.
        assert_eq!(
            get("echo.localhost", "/health/detailed")
                .send(&fixture.app)
                .await
                .json()["path"],
            "/health/detailed"
        );
    }
}

on_both_hosts!(the_admin_token_guards_detailed_health_and_namespace_info);
async fn the_admin_token_guards_detailed_health_and_namespace_info(host: HostKind) {
    let digest = sha256_hex(b"s3cret-token");
    let fixture = Fixture::sqlite(host, &[("admin_token_sha256", &digest)]).await;
    let app = &fixture.app;
    for target in ["/health/detailed", "/dispatch"] {
        let reply = get("localhost", target).send(app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (401, "unauthorized"),
            "{target}"
        );
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        let wrong = get("localhost", target)
            .header("authorization", "Bearer s3cret-tokem")
            .send(app)
            .await;
        assert_eq!(wrong.status, 401);
        let right = get("localhost", target)
            .header("authorization", "Bearer s3cret-token")
            .send(app)
            .await;
        assert_eq!(right.status, 200, "{target}");
    }
    assert_eq!(
        get("localhost", "/health").send(app).await.status,
        200,
        "liveness stays public"
    );
    assert_eq!(
        get("localhost", "/dispatch/echo/").send(app).await.status,
        200,
        "dispatch is not an admin endpoint"
    );
}

on_both_hosts!(a_fresh_embedded_database_without_the_table_means_no_custom_domains);
/// A plain `spin up` starts with an empty embedded database: no `project` table yet. That is "no
/// custom domains" (404), and `/health/detailed` says so by name; the dispatcher never creates
/// the table itself.
async fn a_fresh_embedded_database_without_the_table_means_no_custom_domains(host: HostKind) {
    let app = start(
        host,
        AppSpec::default()
            .worker("faulty", "faulty")
            .variable("workers", "echo,faulty,hello"),
    )
    .await;
    let reply = get("shop.example.com", "/").send(&app).await;
    assert_eq!(
        (reply.status, reply.problem().as_str()),
        (404, "custom_domain_not_found")
    );
    let health = get("localhost", "/health/detailed").send(&app).await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["checks"]["database"]["status"], "no_table");
    assert_eq!(health.json()["checks"]["database"]["backend"], "sqlite");
    // One documented statement later, custom domains work, with no restart.
    app.sqlite_execute_batch(&std::fs::read_to_string(project_root().join("db/sqlite/schema.sql")).unwrap())
        .unwrap();
    app.sqlite_execute_batch(
        "INSERT INTO project (id, custom_domain, custom_domain_status, production_deploy_url) \
         VALUES ('p1', 'shop2.example.com', 'active', 'https://echo.localhost')",
    )
    .unwrap();
    assert_eq!(get("shop2.example.com", "/").send(&app).await.status, 200);
}

on_both_hosts!(a_lookup_slower_than_db_timeout_ms_is_503);
async fn a_lookup_slower_than_db_timeout_ms_is_503(host: HostKind) {
    let fixture = Fixture::postgres(host, &[("db_timeout_ms", "300"), ("domain_cache_ttl_s", "0")]).await;
    fixture
        .project("p1", "shop.example.com", "active", true, "https://echo.localhost", None)
        .await;
    let Database::Postgres(server) = &fixture.database else {
        unreachable!()
    };
    // Another session holds the table: the lookup waits until its statement_timeout ends it.
    let locker = server.client(DB).await.unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE project IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let reply = get("shop.example.com", "/").send(&fixture.app).await;
    assert_eq!((reply.status, reply.problem().as_str()), (503, "database_unavailable"));
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "it waited for the database first"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(get("shop.example.com", "/").send(&fixture.app).await.status, 200);
}
