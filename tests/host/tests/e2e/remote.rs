//! Remote members of the namespace: workers deployed as apps of their own, reached over real
//! HTTP at `worker_url_template`. Each remote worker here is a one-component app on its own
//! loopback address (127.0.0.3, .4, ...) and one shared port, as SpinKube gives each tenant's
//! SpinApp a Service of its own; the front dispatcher resolves `<name>.workers.test` to them
//! through a host table of its own (on Spin: a mount namespace with its own /etc/hosts).

use std::net::SocketAddr;

use bytes::Bytes;
use libra_dispatcher::cache::{self, AbsentEntry, CacheEntry};
use libra_test_host::ports::free_port;
use libra_test_host::postgres_server::TestPostgres;
use libra_test_host::project_root;

use crate::support::*;

const DOMAIN: &str = "workers.test";

/// The remote workers: `shop` (the echo component), `blog` (hello) and `slow` (faulty), each an
/// app of its own, all on `port`.
struct Workers {
    port: u16,
    apps: Vec<Running>,
}

impl Workers {
    async fn start(host: HostKind) -> Workers {
        let port = free_port().unwrap();
        let mut apps = Vec::new();
        for (ip, package) in [("127.0.0.3", "echo"), ("127.0.0.4", "hello"), ("127.0.0.5", "faulty")] {
            let listen: SocketAddr = format!("{ip}:{port}").parse().unwrap();
            apps.push(
                Running::start_single(host, package, listen)
                    .await
                    .expect("a worker app starts"),
            );
        }
        Workers { port, apps }
    }

    /// The front dispatcher's settings for reaching them. `refused` resolves to an address
    /// nothing listens on; `nowhere` does not resolve at all.
    fn front(&self) -> AppSpec {
        spec()
            .variable(
                "worker_url_template",
                &format!("http://{{worker}}.{DOMAIN}:{}", self.port),
            )
            .variable("remote_hosts", &format!("http://*.{DOMAIN}:{}", self.port))
            .host(&format!("shop.{DOMAIN}"), "127.0.0.3")
            .host(&format!("blog.{DOMAIN}"), "127.0.0.4")
            .host(&format!("slow.{DOMAIN}"), "127.0.0.5")
            .host(&format!("refused.{DOMAIN}"), "127.0.0.6")
    }
}

fn outbound(app: &Running) -> Option<Vec<String>> {
    app.test_host().map(|host| host.outbound_requests())
}

on_both_hosts!(remote_workers_are_reached_in_every_routing_mode_with_their_own_host);
async fn remote_workers_are_reached_in_every_routing_mode_with_their_own_host(host: HostKind) {
    let workers = Workers::start(host).await;
    let front = start(host, workers.front().variable("remote_workers", "shop,blog,slow")).await;
    let port = workers.port;

    let reply = request("POST", "shop.localhost:3000", "/cart?item=1")
        .header("x-forwarded-for", "6.6.6.6")
        .header("cdn-loop", "some-cdn")
        .send_body(&front, "payload")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echoed = reply.json();
    assert_eq!(
        (
            echoed["path"].as_str(),
            echoed["query"].as_str(),
            echoed["method"].as_str()
        ),
        (Some("/cart"), Some("item=1"), Some("POST"))
    );
    assert_eq!(echoed["body"]["sha256"], sha256_hex(b"payload"));
    // The worker's own host, as the request line and Host carried it; the client's host in
    // X-Forwarded-Host; the platform's provenance only.
    assert_eq!(
        reply.echoed_header("spin-full-url"),
        Some(format!("http://shop.{DOMAIN}:{port}/cart?item=1"))
    );
    assert_eq!(
        reply.echoed_header("x-forwarded-host").as_deref(),
        Some("shop.localhost:3000")
    );
    assert_eq!(reply.echoed_header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(reply.echoed_header("x-request-id").as_deref(), Some(reply.request_id()));
    assert_eq!(
        reply.echoed_header("cdn-loop").as_deref(),
        Some("some-cdn, libra-dispatcher"),
        "RFC 8586: the client's entries stay, the dispatcher's is added"
    );
    let line = log_of(&front, &reply).await;
    assert_eq!(
        (
            line["route"].as_str(),
            line["worker"].as_str(),
            line["location"].as_str()
        ),
        (Some("subdomain"), Some("shop"), Some("remote"))
    );

    // Path and query dispatch put the remote worker on the dispatcher's origin: same rules.
    let reply = get("localhost", "/dispatch/shop/a/b?x=1").send(&front).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["path"], "/a/b");
    assert_eq!(reply.header_all("content-security-policy"), vec!["sandbox"]);
    let reply = request("PUT", "localhost", "/dispatch?worker=blog&a=1")
        .send(&front)
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains("Hello from the"), "{}", reply.text());
    assert_eq!(reply.header_all("content-security-policy"), vec!["sandbox"]);
    assert_eq!(log_of(&front, &reply).await["route"], "query");

    // Redirects and the remote's own statuses are passed on, never followed or rewritten.
    let redirect = get("slow.localhost", "/redirect").send(&front).await;
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("location"), Some("http://elsewhere.test/"));
    let teapot = get("slow.localhost", "/status/418").send(&front).await;
    assert_eq!(
        (teapot.status, teapot.text().as_str()),
        (418, "faulty worker answered 418")
    );

    // Local first: the app's own workers never leave it.
    let local = get("echo.localhost", "/").send(&front).await;
    assert_eq!(log_of(&front, &local).await["location"], "local");
    // A name in neither is unknown, and nothing is sent anywhere for it.
    let before = outbound(&front).map(|o| o.len());
    let reply = get("ghost.localhost", "/").send(&front).await;
    assert_eq!((reply.status, reply.problem().as_str()), (404, "worker_not_found"));
    assert_eq!(outbound(&front).map(|o| o.len()), before);
}

on_both_hosts!(unreachable_and_slow_remote_workers_are_502_and_504);
async fn unreachable_and_slow_remote_workers_are_502_and_504(host: HostKind) {
    let workers = Workers::start(host).await;
    let front = start(
        host,
        workers
            .front()
            .variable("remote_workers", "shop,slow,refused,nowhere")
            .variable("upstream_timeout_ms", "500"),
    )
    .await;
    for name in ["refused", "nowhere"] {
        let reply = get(&format!("{name}.localhost"), "/").send(&front).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (502, "worker_unreachable"),
            "{name}"
        );
        let text = reply.text();
        assert!(!text.contains("127.0.0") && !text.contains(DOMAIN), "{text}");
    }
    let reply = get("slow.localhost", "/hang").send(&front).await;
    assert_eq!((reply.status, reply.problem().as_str()), (504, "worker_timeout"));
    assert!(log_of(&front, &reply).await["durationMs"].as_f64().unwrap() >= 500.0);
    // A tenant that goes away is unreachable too; the others are not affected.
    let Workers { apps, .. } = workers;
    let [shop, blog, slow] = <[Running; 3]>::try_from(apps).ok().unwrap();
    assert_eq!(get("shop.localhost", "/").send(&front).await.status, 200);
    drop(shop);
    // Spin keeps the idle connection to `shop` in its pool: the first request after the app
    // went away may still be sent on it and break (502 worker_failed); the next connects anew
    // and is refused.
    let first = get("shop.localhost", "/").send(&front).await;
    assert_eq!(first.status, 502, "{}", first.text());
    assert_eq!(
        get("shop.localhost", "/").send(&front).await.problem(),
        "worker_unreachable"
    );
    assert_eq!(get("slow.localhost", "/status/200").send(&front).await.status, 200);
    drop((blog, slow));
}

on_both_hosts!(large_bodies_stream_both_ways_through_a_remote_worker);
async fn large_bodies_stream_both_ways_through_a_remote_worker(host: HostKind) {
    const SIZE: usize = 48 << 20;
    let workers = Workers::start(host).await;
    let front = start(
        host,
        workers
            .front()
            .variable("remote_workers", "shop,slow")
            .variable("max_body_bytes", &(64u64 << 20).to_string()),
    )
    .await;
    let chunks = vec![Bytes::from(vec![7u8; 1 << 20]); SIZE >> 20];
    let reply = request("PUT", "shop.localhost", "/upload")
        .send_stream(&front, chunks)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["body"]["bytes"], SIZE as u64);
    assert_eq!(reply.json()["body"]["sha256"], sha256_hex(&vec![7u8; SIZE]));
    let reply = get("slow.localhost", &format!("/stream?bytes={SIZE}"))
        .send(&front)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.bytes().len(), SIZE);
    // The cap holds for remote workers too.
    let reply = request("PUT", "shop.localhost", "/")
        .header("content-length", "67108865")
        .send(&front)
        .await;
    assert_eq!(reply.status, 413);
}

on_both_hosts!(a_request_that_loops_between_dispatchers_is_508);
async fn a_request_that_loops_between_dispatchers_is_508(host: HostKind) {
    // Two dispatchers, each sending `loopy` to the other as a remote worker: a misconfiguration
    // that would otherwise circle until something times out.
    let port = free_port().unwrap();
    let front = start(
        host,
        spec()
            .variable("base_domain", "front.test")
            .variable("worker_url_template", &format!("http://{{worker}}.{DOMAIN}:{port}"))
            .variable("remote_hosts", &format!("http://*.{DOMAIN}:{port}"))
            .variable("remote_workers", "loopy")
            .host(&format!("loopy.{DOMAIN}"), "127.0.0.7"),
    )
    .await;
    let mut other = spec()
        .variable("base_domain", DOMAIN)
        .variable(
            "worker_url_template",
            &format!("http://{{worker}}.front.test:{}", front.addr.port()),
        )
        .variable("remote_hosts", &format!("http://*.front.test:{}", front.addr.port()))
        .variable("remote_workers", "loopy")
        .host("loopy.front.test", "127.0.0.1");
    other.listen = Some(format!("127.0.0.7:{port}").parse().unwrap());
    let other = start(host, other).await;

    let reply = get("loopy.front.test", "/").send(&front).await;
    assert_eq!((reply.status, reply.problem().as_str()), (508, "loop_detected"));
    // It went round once: front → other → front, which refused it.
    let refusals = front
        .wait_for_log(|l| l["error"] == "loop_detected" && l["status"] == 508)
        .await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(other.access_line(reply.request_id()).await["location"], "remote");
    // A client that claims to have looped already is refused at once.
    let claimed = get("echo.front.test", "/")
        .header("cdn-loop", "libra-dispatcher, libra-dispatcher")
        .send(&front)
        .await;
    assert_eq!(claimed.problem(), "loop_detected");
    let tolerated = get("echo.front.test", "/")
        .header("cdn-loop", "libra-dispatcher")
        .send(&front)
        .await;
    assert_eq!(tolerated.status, 200, "one earlier pass is within max_loop_count");
}

on_both_hosts!(a_bad_template_fails_remote_names_only_and_names_the_variable);
async fn a_bad_template_fails_remote_names_only_and_names_the_variable(host: HostKind) {
    for template in [
        "http://{worker}.localhost:3000",
        "ftp://{worker}.workers.test",
        "http://workers.test/{worker}",
        "http://user@{worker}.workers.test",
    ] {
        let app = start(
            host,
            spec()
                .variable("worker_url_template", template)
                .variable("remote_workers", "shop"),
        )
        .await;
        let reply = get("shop.localhost", "/").send(&app).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (500, "configuration_error"),
            "{template}"
        );
        assert!(!reply.text().contains("worker_url_template"), "{}", reply.text());
        let logged = app
            .wait_for_log(|l| {
                l["requestId"] == reply.request_id()
                    && l["variable"] == "settings"
                    && l["setting"] == "worker_url_template"
            })
            .await;
        assert_eq!(logged.len(), 1, "{template}");
        assert_eq!(get("echo.localhost", "/").send(&app).await.status, 200, "{template}");
    }
}

/// Where remote membership comes from: Libra's database, as PostgreSQL or the embedded SQLite.
enum Directory {
    Postgres(TestPostgres),
    Sqlite,
}

struct Fixture {
    workers: Workers,
    front: Running,
    directory: Directory,
}

const DB: &str = "postgres";

impl Fixture {
    async fn start(host: HostKind, postgres: bool, variables: &[(&str, &str)]) -> Fixture {
        let workers = Workers::start(host).await;
        let mut spec = workers.front();
        for (name, value) in variables {
            spec = spec.variable(name, value);
        }
        let directory = if postgres {
            let server = TestPostgres::start().expect("postgres starts");
            server
                .execute(DB, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .await
                .unwrap();
            for file in [
                "db/postgres/schema.sql",
                "db/postgres/migrations/0002_deployed_worker_lookup.sql",
            ] {
                let sql = std::fs::read_to_string(project_root().join(file)).unwrap();
                server.execute(DB, &sql).await.unwrap();
            }
            spec = spec
                .variable("postgres_url", &server.url(DB))
                .variable("postgres_host", &server.address());
            Directory::Postgres(server)
        } else {
            Directory::Sqlite
        };
        Fixture {
            workers,
            front: start(host, spec).await,
            directory,
        }
    }

    fn name(&self) -> &'static str {
        match self.directory {
            Directory::Postgres(_) => "postgres",
            Directory::Sqlite => "sqlite",
        }
    }

    async fn sql(&self, postgres: &str, sqlite: &str) {
        match &self.directory {
            Directory::Postgres(server) => server.execute(DB, postgres).await.unwrap(),
            Directory::Sqlite => self.front.sqlite_execute_batch(sqlite).unwrap(),
        }
    }

    /// A project as Libra's deploy step records it.
    async fn deploy(&self, id: &str, url: &str) {
        self.sql(
            &format!("INSERT INTO project (id, production_deploy_url) VALUES ('{id}', '{url}')"),
            &format!("INSERT INTO project (id, production_deploy_url) VALUES ('{id}', '{url}')"),
        )
        .await;
    }

    /// Membership queries the database has run, where they can be counted.
    async fn queries(&self) -> Option<u64> {
        match &self.directory {
            Directory::Postgres(server) => {
                let client = server.client(DB).await.unwrap();
                let row = client
                    .query_one(
                        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
                         WHERE query LIKE '%rtrim(production_deploy_url%'",
                        &[],
                    )
                    .await
                    .unwrap();
                Some(row.get::<_, i64>(0) as u64)
            }
            Directory::Sqlite => self.front.test_host().map(|app| app.sqlite_statements()),
        }
    }

    /// Ages the cached answer about `worker` (found, or not), as the passing of its TTL would.
    fn expire(&self, worker: &str) {
        let found = cache::key("default", cache::Kind::RemoteWorker, worker);
        if let Some(bytes) = self.front.key_value_get(&found) {
            let entry = CacheEntry::decode(&bytes, &[]).unwrap();
            self.front
                .key_value_set(&found, &CacheEntry { expires_at: 1, ..entry }.encode())
                .unwrap();
            return;
        }
        let absent = cache::absent_key("default", cache::Kind::RemoteWorker, worker);
        let bytes = self.front.key_value_get(&absent).expect("an answer is cached");
        let entry = AbsentEntry::decode(&bytes).unwrap();
        assert_eq!(entry.name, worker);
        self.front
            .key_value_set(&absent, &AbsentEntry { expires_at: 1, ..entry }.encode())
            .unwrap();
    }

    fn server(&mut self) -> &mut TestPostgres {
        match &mut self.directory {
            Directory::Postgres(server) => server,
            Directory::Sqlite => panic!("not a postgres fixture"),
        }
    }
}

on_both_hosts!(membership_comes_from_libras_database_and_a_warm_cache_asks_nothing);
async fn membership_comes_from_libras_database_and_a_warm_cache_asks_nothing(host: HostKind) {
    for postgres in [true, false] {
        let fixture = Fixture::start(host, postgres, &[]).await;
        let name = fixture.name();
        // As Libra's deploy step writes it, and in the spellings it may take.
        fixture.deploy("p1", "https://shop.localhost").await;
        fixture.deploy("p2", "HTTP://Blog.Localhost/").await;
        fixture.deploy("p3", "https://slow.elsewhere.example").await;
        fixture
            .sql(
                "INSERT INTO project (id, production_deploy_url, is_active) VALUES ('p4', 'https://slow.localhost', false)",
                "INSERT INTO project (id, production_deploy_url, is_active) VALUES ('p4', 'https://slow.localhost', 0)",
            )
            .await;
        let front = &fixture.front;
        let before = fixture.queries().await;
        for _ in 0..3 {
            let reply = get("shop.localhost", "/x").send(front).await;
            assert_eq!(reply.status, 200, "{name}: {}", reply.text());
            assert_eq!(log_of(front, &reply).await["location"], "remote");
        }
        assert_eq!(get("blog.localhost", "/").send(front).await.status, 200, "{name}");
        for unknown in ["slow", "ghost"] {
            let reply = get(&format!("{unknown}.localhost"), "/").send(front).await;
            assert_eq!(reply.problem(), "worker_not_found", "{name}: {unknown}");
            assert_eq!(get(&format!("{unknown}.localhost"), "/").send(front).await.status, 404);
        }
        if let (Some(before), Some(after)) = (before, fixture.queries().await) {
            // shop, blog, slow and ghost once each: warm answers, found or not, cost nothing.
            assert_eq!(after - before, 4, "{name}");
        }
        // The app's own workers never touch the database.
        let before = fixture.queries().await;
        get("echo.localhost", "/").send(front).await;
        assert_eq!(fixture.queries().await, before, "{name}");
    }
}

on_both_hosts!(a_tenant_added_or_removed_in_the_database_joins_or_leaves_without_a_restart);
async fn a_tenant_added_or_removed_in_the_database_joins_or_leaves_without_a_restart(host: HostKind) {
    for postgres in [true, false] {
        let fixture = Fixture::start(host, postgres, &[]).await;
        let name = fixture.name();
        let front = &fixture.front;
        assert_eq!(get("shop.localhost", "/").send(front).await.status, 404, "{name}");
        fixture.deploy("p1", "https://shop.localhost").await;
        // Still cached as absent until the negative TTL passes...
        assert_eq!(get("shop.localhost", "/").send(front).await.status, 404, "{name}");
        fixture.expire("shop");
        assert_eq!(get("shop.localhost", "/").send(front).await.status, 200, "{name}");
        fixture
            .sql(
                "UPDATE project SET is_active = false WHERE id = 'p1'",
                "UPDATE project SET is_active = 0 WHERE id = 'p1'",
            )
            .await;
        // ... and cached as present until the positive TTL passes.
        assert_eq!(get("shop.localhost", "/").send(front).await.status, 200, "{name}");
        fixture.expire("shop");
        assert_eq!(get("shop.localhost", "/").send(front).await.status, 404, "{name}");
    }
}

on_both_hosts!(a_database_outage_is_503_for_remote_names_only);
async fn a_database_outage_is_503_for_remote_names_only(host: HostKind) {
    let mut fixture = Fixture::start(host, true, &[("domain_cache_ttl_s", "0"), ("db_timeout_ms", "1000")]).await;
    fixture.deploy("p1", "https://shop.localhost").await;
    assert_eq!(get("shop.localhost", "/").send(&fixture.front).await.status, 200);
    fixture.server().stop().unwrap();
    let reply = get("shop.localhost", "/").send(&fixture.front).await;
    assert_eq!((reply.status, reply.problem().as_str()), (503, "database_unavailable"));
    assert_eq!(get("echo.localhost", "/").send(&fixture.front).await.status, 200);
    assert_eq!(
        get("localhost", "/dispatch/hello/").send(&fixture.front).await.status,
        200
    );
    fixture.server().restart().unwrap();
    assert_eq!(get("shop.localhost", "/").send(&fixture.front).await.status, 200);
}

on_both_hosts!(a_custom_domain_whose_worker_is_remote_goes_there_in_one_hop);
async fn a_custom_domain_whose_worker_is_remote_goes_there_in_one_hop(host: HostKind) {
    for postgres in [true, false] {
        let fixture = Fixture::start(host, postgres, &[]).await;
        fixture
            .sql(
                "INSERT INTO project (id, production_deploy_url, custom_domain, custom_domain_status) \
                 VALUES ('p1', 'https://shop.localhost', 'shop.example.com', 'active')",
                "INSERT INTO project (id, production_deploy_url, custom_domain, custom_domain_status) \
                 VALUES ('p1', 'https://shop.localhost', 'shop.example.com', 'active')",
            )
            .await;
        let reply = get("shop.example.com", "/cart").send(&fixture.front).await;
        assert_eq!(reply.status, 200, "{}: {}", fixture.name(), reply.text());
        assert_eq!(
            reply.echoed_header("x-forwarded-host").as_deref(),
            Some("shop.example.com")
        );
        let line = log_of(&fixture.front, &reply).await;
        assert_eq!(
            (
                line["route"].as_str(),
                line["worker"].as_str(),
                line["location"].as_str()
            ),
            (Some("custom_domain"), Some("shop"), Some("remote"))
        );
        // One hop: the front sent it straight to the worker's own host.
        assert_eq!(
            reply.echoed_header("spin-full-url"),
            Some(format!("http://shop.{DOMAIN}:{}/cart", fixture.workers.port))
        );
    }
}

on_both_hosts!(a_remote_member_has_its_own_limit_and_an_unreachable_one_trips_its_breaker);
async fn a_remote_member_has_its_own_limit_and_an_unreachable_one_trips_its_breaker(host: HostKind) {
    let workers = Workers::start(host).await;
    let front = start(
        host,
        workers
            .front()
            .variable("remote_workers", "shop,blog,refused")
            .variable("rate_limits", "blog:1/h")
            .variable("breakers", "refused:2/60s"),
    )
    .await;
    let first = get("blog.localhost", "/").send(&front).await;
    assert_eq!(first.status, 200);
    assert!(first.header("ratelimit").unwrap().starts_with("\"tenant\";r=0;"));
    assert_eq!(log_of(&front, &first).await["location"], "remote");
    let by_path = get("localhost", "/dispatch/blog/").send(&front).await;
    assert_eq!((by_path.status, by_path.problem().as_str()), (429, "rate_limited"));
    assert_eq!(
        get("shop.localhost", "/").send(&front).await.status,
        200,
        "others are not limited"
    );

    for _ in 0..2 {
        let reply = get("refused.localhost", "/").send(&front).await;
        assert_eq!((reply.status, reply.problem().as_str()), (502, "worker_unreachable"));
    }
    let before = outbound(&front);
    let reply = get("refused.localhost", "/").send(&front).await;
    assert_eq!((reply.status, reply.problem().as_str()), (503, "worker_unavailable"));
    assert_eq!(
        outbound(&front),
        before,
        "no connection is tried while the breaker is open"
    );
    drop(workers);
}
