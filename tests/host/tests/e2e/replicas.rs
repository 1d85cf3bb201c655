//! Two dispatcher processes sharing one Redis, as replicas behind one address do: real
//! `redis-server`, real `spin up`s with Spin's Redis key-value provider, the load split over
//! both. Spin only: the key-value store's providers are Spin's.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;

use libra_test_host::redis_server::TestRedis;

use crate::support::*;

/// Two replicas of the same app on one Redis.
async fn replicas(redis: &TestRedis, settings: &[(&str, &str)]) -> [Running; 2] {
    let mut spec = spec().runtime_config(&redis.runtime_config());
    for (name, value) in settings {
        spec = spec.variable(name, value);
    }
    [
        start(HostKind::Spin, spec.clone()).await,
        start(HostKind::Spin, spec).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_rate_limit_exactly() {
    let redis = TestRedis::start().expect("redis-server starts");
    let apps = replicas(&redis, &[("rate_limits", "hello:50/h")]).await;
    let (admitted, refused) = (AtomicU64::new(0), AtomicU64::new(0));
    // 200 requests, 16 at a time, alternately to each replica.
    let requests = futures::stream::iter(0..200usize).for_each_concurrent(16, |i| {
        let (apps, admitted, refused) = (&apps, &admitted, &refused);
        async move {
            let reply = get("hello.localhost", "/").send(&apps[i % 2]).await;
            match reply.status {
                200 => admitted.fetch_add(1, Ordering::SeqCst),
                429 => {
                    assert_eq!(reply.problem(), "rate_limited");
                    refused.fetch_add(1, Ordering::SeqCst)
                }
                other => panic!("status {other}: {}", reply.text()),
            };
        }
    });
    requests.await;
    // Each replica alone would admit 50: together they admit 50, exactly (docs/limits.md).
    assert_eq!((admitted.into_inner(), refused.into_inner()), (50, 150));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_on_one_replica_is_open_on_the_other() {
    let redis = TestRedis::start().expect("redis-server starts");
    let [a, b] = replicas(&redis, &[("breakers", "faulty:2/60s")]).await;
    for _ in 0..2 {
        assert_eq!(get("faulty.localhost", "/trap").send(&a).await.status, 502);
    }
    let reply = get("faulty.localhost", "/status/200").send(&b).await;
    assert_eq!((reply.status, reply.problem().as_str()), (503, "worker_unavailable"));
    assert!(
        b.stdout("faulty").await.is_empty(),
        "the second replica never called the worker"
    );
}

/// The store fails: Redis, failed over into a replica of a master it cannot reach, refuses every
/// read and write at once. (A stopped Redis makes Spin 4.0.2's key-value calls wait for minutes
/// instead of failing, which no guest can cut short: see docs/limits.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_fails_open_by_default_and_closed_when_told() {
    let redis = TestRedis::start().expect("redis-server starts");
    let [open, _] = replicas(&redis, &[("rate_limits", "hello:100/h")]).await;
    let closed = start(
        HostKind::Spin,
        spec()
            .runtime_config(&redis.runtime_config())
            .variable("rate_limits", "hello:100/h")
            .variable("limits_on_store_error", "closed"),
    )
    .await;
    for app in [&open, &closed] {
        let reply = get("hello.localhost", "/").send(app).await;
        assert_eq!(reply.status, 200, "with the store up");
        assert_eq!(log_of(app, &reply).await["limit"], "admitted");
    }

    redis.fail().unwrap();
    for _ in 0..3 {
        let reply = get("hello.localhost", "/").send(&open).await;
        assert_eq!(reply.status, 200, "fail open: {}", reply.text());
        assert_eq!(reply.header("ratelimit"), None);
        let line = log_of(&open, &reply).await;
        assert_eq!(
            (line["limit"].as_str(), line["level"].as_str()),
            (Some("store_error"), Some("warn"))
        );
        // The access line is the warning: no other line for the request.
        let lines = open.wait_for_log(|l| l["requestId"] == reply.request_id()).await;
        assert_eq!(lines.len(), 1, "{lines:?}");

        let reply = get("hello.localhost", "/").send(&closed).await;
        assert_eq!(
            (reply.status, reply.problem().as_str()),
            (503, "rate_limiter_unavailable")
        );
        assert!(reply.header("retry-after").is_some());
        assert_eq!(log_of(&closed, &reply).await["limit"], "store_error");
    }
    // Workers without a limit never needed the store.
    assert_eq!(get("echo.localhost", "/").send(&closed).await.status, 200);
    // The store comes back: limits apply again.
    redis.recover().unwrap();
    let reply = get("hello.localhost", "/").send(&closed).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(log_of(&closed, &reply).await["limit"], "admitted");
}
