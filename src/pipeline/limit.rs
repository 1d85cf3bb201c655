//! Phase 5, limit: once the worker is known and before anything is sent to it, its breaker and
//! its rate limit decide whether it is called at all (`src/limits`); once its answer is in, the
//! outcome goes back to the breaker. A refusal costs a few reads of the shared store and no call
//! to the worker.
//!
//! Order: an open breaker refuses first (a tenant that is down uses none of its quota); then the
//! rate limit (a refused request never becomes the breaker's probe, which would leave it
//! half-open without an answer); then, in a half-open breaker, the probe's election.

use crate::error::DispatchError;
use crate::limits::breaker::{self, BreakerPolicy, BreakerState, Outcome, Pass};
use crate::limits::rate;
use crate::limits::store::SharedStore;
use crate::limits::{OnStoreError, TenantPolicy};
use crate::pipeline::directory::Directory;
use crate::pipeline::request::{Context, Headers};
use crate::pipeline::route::RouteKind;
use crate::pipeline::worker_name::WorkerName;
use crate::pipeline::world::World;

/// Where one worker's counters and breaker live in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    namespace: String,
    worker: String,
}

impl Keys {
    pub fn new(namespace: &str, worker: &WorkerName) -> Keys {
        Keys {
            namespace: namespace.to_string(),
            worker: worker.to_string(),
        }
    }

    fn rate(&self) -> String {
        format!("{}:rate:v1:{}", self.namespace, self.worker)
    }

    fn breaker(&self) -> String {
        breaker_prefix(&self.namespace, &self.worker)
    }
}

fn breaker_prefix(namespace: &str, worker: &str) -> String {
    format!("{namespace}:breaker:v1:{worker}")
}

/// What phase 5 decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// `Some`: answer with this and do not call the worker.
    pub refusal: Option<DispatchError>,
    /// For the access log: `admitted`, `refused` or `store_error`, or `not_counted` (admitted,
    /// then refused by the breaker and given back); `None` without a rate limit.
    pub limit: Option<&'static str>,
    /// For the access log: `closed`, `open`, `probe` or `store_error`; `None` without a breaker.
    pub breaker: Option<&'static str>,
    /// The `RateLimit-Policy` and `RateLimit` headers of an admitted request's response.
    pub headers: Headers,
    /// How the request passed the breaker, for [`finish`].
    pass: Option<(BreakerPolicy, Pass)>,
}

impl Admission {
    /// Whether [`finish`] has anything to tell a breaker.
    pub fn has_breaker_pass(&self) -> bool {
        self.pass.is_some()
    }

    /// A request with no limits: nothing to do, nothing to log.
    pub fn unlimited() -> Admission {
        Admission {
            refusal: None,
            limit: None,
            breaker: None,
            headers: Vec::new(),
            pass: None,
        }
    }
}

/// Phase 5 for `worker`: `None` when it has no limits (nothing is opened or written then),
/// else the decision and where its state lives. Fails only when the limit settings are unusable.
/// The dispatcher's own docs component is no tenant: nothing limits it.
pub fn admit_tenant(
    ctx: Context,
    directory: &mut Directory,
    world: &mut impl World,
    worker: &WorkerName,
    kind: RouteKind,
) -> Result<Option<(Admission, Keys)>, DispatchError> {
    if kind == RouteKind::Docs {
        return Ok(None);
    }
    let Some(settings) = ctx.config.limits().map_err(DispatchError::Configuration)? else {
        return Ok(None);
    };
    let row = if settings.overrides {
        directory.limit_override(world, worker)?
    } else {
        None
    };
    let policy = settings.policy_for(worker, row.as_ref());
    if policy.is_unlimited() {
        return Ok(None);
    }
    let keys = Keys::new(directory.namespace()?, worker);
    // A probe that never reports is replaced once an answer would have timed out.
    let grace_ms = ctx.config.upstream_timeout_ms.saturating_add(1000);
    let now_ms = world.now_ms();
    let admission = admit(world.store(), &policy, &keys, now_ms, grace_ms, settings.on_store_error);
    Ok(Some((admission, keys)))
}

/// The decision for one request at `now_ms` (Unix milliseconds). `grace_ms` is how long a
/// request may take, so a half-open breaker's probe is replaced if it never reports.
pub fn admit(
    store: &mut impl SharedStore,
    policy: &TenantPolicy,
    keys: &Keys,
    now_ms: u64,
    grace_ms: u64,
    on_store_error: OnStoreError,
) -> Admission {
    let mut admission = Admission::unlimited();
    let mut half_open = None;
    if let Some(breaker_policy) = policy.breaker {
        match breaker::check(store, &keys.breaker(), &breaker_policy, now_ms) {
            Ok(BreakerState::Open { retry_after_s }) => {
                admission.breaker = Some("open");
                admission.refusal = Some(DispatchError::WorkerUnavailable { retry_after_s });
                return admission;
            }
            Ok(BreakerState::Closed { failures }) => {
                admission.breaker = Some("closed");
                admission.pass = Some((breaker_policy, Pass::Closed { failures }));
            }
            Ok(state @ BreakerState::HalfOpen { .. }) => half_open = Some((breaker_policy, state)),
            // A breaker that cannot be read lets the request through: it protects the worker,
            // and the worker being down is not what failed.
            Err(_) => admission.breaker = Some("store_error"),
        }
    }
    let mut counted = None;
    if let Some(rate_policy) = policy.rate {
        match rate::check(store, &keys.rate(), &rate_policy, now_ms) {
            Ok(state) if state.admitted => {
                admission.limit = Some("admitted");
                admission.headers = rate_headers(&rate_policy, &state);
                counted = Some(state);
            }
            Ok(state) => {
                admission.limit = Some("refused");
                admission.refusal = Some(DispatchError::RateLimited {
                    retry_after_s: state.reset_s,
                    policy: rate_policy.policy_header(),
                });
                return admission;
            }
            Err(_) => {
                admission.limit = Some("store_error");
                if on_store_error == OnStoreError::Closed {
                    admission.refusal = Some(DispatchError::LimiterUnavailable);
                    return admission;
                }
            }
        }
    }
    if let Some((breaker_policy, state)) = half_open {
        match breaker::elect_probe(store, &keys.breaker(), &state, now_ms, grace_ms) {
            Ok(Some(pass)) => {
                admission.breaker = Some("probe");
                admission.pass = Some((breaker_policy, pass));
            }
            Ok(None) => {
                // Another request is the probe: this one never reaches the worker, so it uses
                // none of the tenant's quota.
                if let Some(state) = &counted {
                    rate::give_back(store, state);
                    admission.limit = Some("not_counted");
                    admission.headers.clear();
                }
                admission.breaker = Some("open");
                admission.refusal = Some(DispatchError::WorkerUnavailable { retry_after_s: 1 });
            }
            Err(_) => admission.breaker = Some("store_error"),
        }
    }
    admission
}

/// The `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers-11).
pub fn rate_headers(policy: &rate::RatePolicy, state: &rate::RateState) -> Headers {
    vec![
        ("ratelimit-policy".into(), policy.policy_header().into_bytes()),
        ("ratelimit".into(), state.header().into_bytes()),
    ]
}

/// Tells the breaker how the request that `admission` let through went. When this outcome
/// opened the breaker, notes it where `/health/detailed` looks ([`open_breakers`]).
pub fn finish(store: &mut impl SharedStore, admission: &Admission, keys: &Keys, outcome: Outcome, now_ms: u64) {
    let Some((policy, pass)) = &admission.pass else {
        return;
    };
    if let Ok(Some(until_ms)) = breaker::record(store, &keys.breaker(), policy, pass, outcome, now_ms) {
        let entry = format!("{} {until_ms}", keys.worker);
        let _ = store.set(&registry_key(&keys.namespace, &keys.worker), entry.as_bytes());
    }
}

/// What the worker's answer means to its breaker, from the error the request ended with (if
/// any): the worker trapped, timed out or could not be reached.
pub fn outcome_of(error: Option<&DispatchError>) -> Outcome {
    match error {
        None => Outcome::Success,
        Some(DispatchError::WorkerFailed | DispatchError::WorkerTimeout | DispatchError::WorkerUnreachable) => {
            Outcome::Failure
        }
        Some(_) => Outcome::Unknown,
    }
}

/// How many places note open breakers. Listing them costs a read each, so it is bounded; two
/// breakers open at once in one slot show only the later (the breakers themselves work).
pub const REGISTRY_SLOTS: u64 = 256;

/// `<namespace>:breakers-open:v1:<slot>`, the slot chosen by a fixed hash of the name (FNV-1a),
/// so every replica and every build agrees.
fn registry_key(namespace: &str, worker: &str) -> String {
    let hash = worker.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{namespace}:breakers-open:v1:{}", hash % REGISTRY_SLOTS)
}

/// A breaker that is not closed, for `/health/detailed`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OpenBreaker {
    pub worker: String,
    /// `open`: refusing until `retryAfterS` has passed; `probing`: one request is testing the
    /// worker; `half_open`: the next request will.
    pub state: &'static str,
    pub retry_after_s: u64,
}

/// Every breaker noted as opened that is still not closed, by worker name.
pub fn open_breakers(store: &mut impl SharedStore, namespace: &str, now_ms: u64) -> Vec<OpenBreaker> {
    let mut open: Vec<OpenBreaker> = Vec::new();
    for slot in 0..REGISTRY_SLOTS {
        let key = format!("{namespace}:breakers-open:v1:{slot}");
        let Some(worker) = store
            .get(&key)
            .ok()
            .flatten()
            .and_then(|bytes| Some(String::from_utf8(bytes).ok()?.split(' ').next()?.to_string()))
            .filter(|worker| WorkerName::parse(worker, &[]).is_ok_and(|name| name.as_str() == worker))
        else {
            continue;
        };
        if let Ok(Some((until_ms, probing))) = breaker::peek(store, &breaker_prefix(namespace, &worker)) {
            let state = match (probing, now_ms < until_ms) {
                (true, true) => "probing",
                (false, true) => "open",
                // Over: the next request is (or replaces) the probe.
                (_, false) => "half_open",
            };
            open.push(OpenBreaker {
                worker,
                state,
                retry_after_s: until_ms.saturating_sub(now_ms).div_ceil(1000),
            });
        }
    }
    open.sort_by(|a, b| a.worker.cmp(&b.worker));
    open.dedup_by(|a, b| a.worker == b.worker);
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::LimitSettings;
    use crate::limits::store::{Encoding, MemoryStore};

    fn policy(rates: &'static str, breakers: &'static str) -> TenantPolicy {
        let settings = LimitSettings::from_settings(
            |name| match name {
                "rate_limits" => Some(rates),
                "breakers" => Some(breakers),
                _ => None,
            },
            &[],
        )
        .unwrap()
        .unwrap();
        settings.policy_for(&WorkerName::parse("shop", &[]).unwrap(), None)
    }

    fn keys() -> Keys {
        Keys::new("ns", &WorkerName::parse("shop", &[]).unwrap())
    }

    const T: u64 = 1_800_000_000_000;

    #[test]
    fn an_unlimited_tenant_touches_nothing() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let admission = admit(
            &mut store,
            &TenantPolicy::default(),
            &keys(),
            T,
            1000,
            OnStoreError::Open,
        );
        assert_eq!(admission, Admission::unlimited());
        finish(&mut store, &admission, &keys(), Outcome::Failure, T);
        assert_eq!(store.calls, 0);
    }

    #[test]
    fn a_limited_tenant_gets_headers_then_a_429() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let policy = policy("*:2/min", "");
        let first = admit(&mut store, &policy, &keys(), T, 1000, OnStoreError::Open);
        assert_eq!((first.refusal.clone(), first.limit), (None, Some("admitted")));
        assert_eq!(
            first.headers,
            vec![
                ("ratelimit-policy".to_string(), b"\"tenant\";q=2;w=60".to_vec()),
                ("ratelimit".to_string(), b"\"tenant\";r=1;t=60".to_vec()),
            ]
        );
        admit(&mut store, &policy, &keys(), T, 1000, OnStoreError::Open);
        let refused = admit(&mut store, &policy, &keys(), T, 1000, OnStoreError::Open);
        assert_eq!(refused.limit, Some("refused"));
        assert_eq!(
            refused.refusal,
            Some(DispatchError::RateLimited {
                retry_after_s: 61,
                policy: "\"tenant\";q=2;w=60".into()
            })
        );
    }

    #[test]
    fn an_open_breaker_refuses_before_the_rate_limit_counts() {
        let mut store = MemoryStore::new(Encoding::Redis);
        let policy = policy("*:100/h", "*:2/10s");
        for _ in 0..2 {
            let admission = admit(&mut store, &policy, &keys(), T, 1000, OnStoreError::Open);
            assert_eq!(admission.breaker, Some("closed"));
            finish(&mut store, &admission, &keys(), Outcome::Failure, T);
        }
        let refused = admit(&mut store, &policy, &keys(), T + 1, 1000, OnStoreError::Open);
        assert_eq!(
            refused.refusal,
            Some(DispatchError::WorkerUnavailable { retry_after_s: 10 })
        );
        assert_eq!((refused.breaker, refused.limit), (Some("open"), None));
        assert_eq!(
            open_breakers(&mut store, "ns", T + 1),
            vec![OpenBreaker {
                worker: "shop".into(),
                state: "open",
                retry_after_s: 10
            }]
        );
        // The probe, then the others wait for it.
        let probe = admit(&mut store, &policy, &keys(), T + 10_000, 1000, OnStoreError::Open);
        assert_eq!((probe.refusal.clone(), probe.breaker), (None, Some("probe")));
        let waiting = admit(&mut store, &policy, &keys(), T + 10_001, 1000, OnStoreError::Open);
        assert_eq!(
            waiting.refusal,
            Some(DispatchError::WorkerUnavailable { retry_after_s: 1 })
        );
        finish(&mut store, &probe, &keys(), Outcome::Success, T + 10_002);
        assert!(open_breakers(&mut store, "ns", T + 10_003).is_empty());
        assert_eq!(
            admit(&mut store, &policy, &keys(), T + 10_003, 1000, OnStoreError::Open).breaker,
            Some("closed")
        );
    }

    #[test]
    fn a_request_that_loses_the_probe_uses_no_quota() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let policy = policy("*:100/h", "*:1/10s");
        let first = admit(&mut store, &policy, &keys(), T, 1000, OnStoreError::Open);
        finish(&mut store, &first, &keys(), Outcome::Failure, T);
        let probe = admit(&mut store, &policy, &keys(), T + 10_000, 1000, OnStoreError::Open);
        assert_eq!(probe.breaker, Some("probe"));
        let loser = admit(&mut store, &policy, &keys(), T + 10_001, 1000, OnStoreError::Open);
        // The probe's marker makes it open; a request that read the half-open state just before
        // would lose the election: simulate that one.
        assert_eq!(loser.breaker, Some("open"));
        let counter = |store: &mut MemoryStore| {
            store
                .values
                .iter()
                .find(|(key, _)| key.starts_with("ns:rate:v1:shop:3600000ms:"))
                .and_then(|(_, value)| crate::limits::store::decode_counter(value))
        };
        assert_eq!(counter(&mut store), Some(2), "the first request and the probe");
        let state = breaker::BreakerState::HalfOpen {
            since_ms: T + 10_000,
            abandoned: None,
        };
        assert_eq!(
            breaker::elect_probe(&mut store, &keys().breaker(), &state, T + 10_002, 1000).unwrap(),
            None
        );
        let late = rate::check(&mut store, &keys().rate(), &policy.rate.unwrap(), T + 10_002).unwrap();
        assert!(late.admitted);
        rate::give_back(&mut store, &late);
        assert_eq!(counter(&mut store), Some(2), "given back");
    }

    #[test]
    fn a_failing_store_fails_open_unless_told_otherwise() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        store.failing = true;
        let policy = policy("*:1/s", "*:1/1s");
        let open = admit(&mut store, &policy, &keys(), T, 1000, OnStoreError::Open);
        assert_eq!(
            (open.refusal, open.limit, open.breaker),
            (None, Some("store_error"), Some("store_error"))
        );
        let closed = admit(&mut store, &policy, &keys(), T, 1000, OnStoreError::Closed);
        assert_eq!(closed.refusal, Some(DispatchError::LimiterUnavailable));
    }

    #[test]
    fn only_worker_failures_count_against_the_breaker() {
        assert_eq!(outcome_of(None), Outcome::Success);
        for error in [
            DispatchError::WorkerFailed,
            DispatchError::WorkerTimeout,
            DispatchError::WorkerUnreachable,
        ] {
            assert_eq!(outcome_of(Some(&error)), Outcome::Failure);
        }
        for error in [
            DispatchError::RequestTimeout,
            DispatchError::PayloadTooLarge { limit: 1 },
            DispatchError::RequestBodyFailed,
        ] {
            assert_eq!(outcome_of(Some(&error)), Outcome::Unknown);
        }
    }
}
