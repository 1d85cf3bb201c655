//! `GET /dispatch/explain?url=<absolute URL>`: how the dispatcher would route a URL, for an
//! operator asking why a request went where it went.
//!
//! It runs [`plan`](crate::pipeline::plan) itself on a `GET` of that URL, so the answer cannot
//! drift from what a request gets, in a world that only reads ([`ReadOnly`]): no worker is
//! called, no cache entry, counter or breaker is written. The database is asked only where a
//! request would ask it (the cache has no answer), and its answer is not cached. The rate limit
//! says what a request sent now would get (admitted with what remains, or refused), without
//! counting it.

use serde::Serialize;

use crate::cache::{self, AbsentEntry, CacheEntry};
use crate::config::Config;
use crate::error::DispatchError;
use crate::limits::store::{SharedStore, StoreError};
use crate::pipeline::host::{self, HostClass};
use crate::pipeline::namespace::Location;
use crate::pipeline::request::{Context, RequestHead};
use crate::pipeline::route::{self, Endpoint, RouteKind};
use crate::pipeline::world::{CacheStore, Warning, World};
use crate::pipeline::{Plan, plan};

/// The longest `url` explained: the longest request target the dispatcher admits, plus a
/// scheme and a host.
pub const MAX_URL_BYTES: usize = 8192 + 300;

/// The answer of `/dispatch/explain`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The URL explained, as given.
    pub url: String,
    /// The host, normalised (lowercase, no port, no trailing dot); absent when it is invalid.
    pub host: Option<String>,
    /// `dispatcher`, `tenant_subdomain` or `custom_domain`.
    pub host_class: Option<&'static str>,
    /// How the worker is named: `subdomain`, `path`, `query`, `custom_domain`, or `api` and
    /// `docs` for the dispatcher's own paths.
    pub route: Option<&'static str>,
    /// The dispatcher's endpoint that would answer, for `api` routes.
    pub endpoint: Option<&'static str>,
    pub worker: Option<String>,
    pub location: Option<ExplainedLocation>,
    /// The path and query the worker would receive.
    pub upstream_path: Option<String>,
    /// The cached answer for a custom domain, before any lookup.
    pub custom_domain_cache: Option<CacheState>,
    /// The cached answer for a remote member found in Libra's database.
    pub remote_member_cache: Option<CacheState>,
    /// The worker's rate limit and breaker, where it has any.
    pub limits: Option<ExplainedLimits>,
    /// What the dispatcher would do.
    pub outcome: Outcome,
    /// The settings that decided it: their values (for `workers` and `remote_workers`, only
    /// whether they include the worker), and whether each is the default.
    pub settings: Vec<SettingUsed>,
    pub request_id: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct ExplainedLocation {
    /// `local` (a component of this app, over service chaining) or `remote`.
    pub kind: &'static str,
    /// Where the request would be sent.
    pub url: String,
}

/// A cache entry as it stands, read without changing it.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CacheState {
    /// `hit` (a worker is cached), `negative` (a "not found" is cached), `expired` or `miss`.
    pub state: &'static str,
    /// Seconds since the answer was cached, where the TTL it was cached with is known.
    pub age_s: Option<u64>,
    /// Seconds until it expires.
    pub expires_in_s: Option<u64>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExplainedLimits {
    /// The rate limit, e.g. `100/min burst 20`; absent when none applies.
    pub rate_limit: Option<String>,
    /// `admitted` or `refused` for a request sent now (not counted), `store_error`.
    pub rate_decision: Option<&'static str>,
    /// The `RateLimit` field a request sent now would get.
    pub rate_state: Option<String>,
    /// The breaker, e.g. `5/30s`; absent when none applies.
    pub breaker: Option<String>,
    /// `closed`, `open`, `probe` (half-open, a request now would be its probe) or `store_error`.
    pub breaker_state: Option<&'static str>,
    /// `settings`, or `database` when the worker's `worker_limits` row overrides them.
    pub source: &'static str,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Outcome {
    /// `forward` (to the worker), `endpoint` (answered by the dispatcher) or `refuse`.
    pub action: &'static str,
    /// The status a refusal would have.
    pub status: Option<u16>,
    /// The refusal's stable code.
    pub code: Option<&'static str>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct SettingUsed {
    pub key: &'static str,
    pub value: String,
    /// Not set: the default applies.
    pub default: bool,
}

/// The URL to explain, from the request's query: the `url` parameter, percent-decoded, an
/// absolute `http` or `https` URL, as the request it describes.
pub fn target(path_and_query: &str) -> Result<(String, RequestHead), DispatchError> {
    let query = path_and_query.split_once('?').map_or("", |(_, query)| query);
    let mut urls = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(key, _)| *key == "url");
    let raw = match (urls.next(), urls.next()) {
        (Some((_, value)), None) => value,
        (None, _) => {
            return Err(DispatchError::InvalidUrl(
                "Give the URL to explain as ?url=<absolute URL>.",
            ));
        }
        (Some(_), Some(_)) => return Err(DispatchError::InvalidUrl("Give one url parameter.")),
    };
    let url = route::percent_decode(raw).ok_or(DispatchError::InvalidUrl("The URL is not UTF-8."))?;
    if url.len() > MAX_URL_BYTES {
        return Err(DispatchError::InvalidUrl("The URL is too long."));
    }
    // By hand rather than with the `http` crate: its tables would cost the component a page of
    // initial memory (`tests/host/tests/e2e/footprint.rs`), and the phases validate the host
    // and the target as they validate a request's.
    let (scheme, rest) = url.split_once("://").ok_or(DispatchError::InvalidUrl(
        "Not a URL: give an absolute http or https URL.",
    ))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(DispatchError::InvalidUrl("Give an absolute http or https URL."));
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    if authority.is_empty() {
        return Err(DispatchError::InvalidUrl("The URL has no host."));
    }
    if authority.contains('@') {
        return Err(DispatchError::InvalidUrl("The URL may not contain user information."));
    }
    if authority.bytes().any(|b| b <= b' ' || b >= 0x7f) || target.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(DispatchError::InvalidUrl(
            "Not a URL: spaces and other characters must be percent-encoded.",
        ));
    }
    let path_and_query = match target {
        "" => "/".to_string(),
        query if query.starts_with('?') => format!("/{query}"),
        path => path.to_string(),
    };
    let head = RequestHead {
        method: "GET".into(),
        authority: Some(authority.to_string()),
        path_and_query,
        headers: Vec::new(),
    };
    Ok((url, head))
}

/// Explains `url`'s request `head` under the configuration of `ctx` (the explain request's).
pub fn explain<W: World>(ctx: Context, url: String, head: &RequestHead, world: &mut W) -> Explanation {
    let config = ctx.config;
    let explained = Context {
        head,
        request_id: ctx.request_id,
        config,
    };
    let host = head
        .authority
        .as_deref()
        .and_then(|a| host::normalise(a.as_bytes()).ok());
    let class = host.as_ref().and_then(|h| host::classify(h, config).ok());
    let mut reads = ReadOnly { inner: world };
    // The caches as they stand, before the plan reads them.
    let custom_domain_cache = match (&class, &host) {
        (Some(HostClass::CustomDomain), Some(host)) => {
            cache_state(config, &mut reads, cache::Kind::CustomDomain, &host.name)
        }
        _ => None,
    };
    let planned = plan(explained, &mut reads);
    let report = &planned.report;
    let mut explanation = Explanation {
        url,
        host: report.host.as_ref().map(|h| h.name.clone()),
        host_class: class.as_ref().map(|class| match class {
            HostClass::Dispatcher => "dispatcher",
            HostClass::Tenant(_) => "tenant_subdomain",
            HostClass::CustomDomain => "custom_domain",
        }),
        route: report.route.map(RouteKind::as_str),
        endpoint: None,
        worker: report.worker.as_ref().map(|w| w.to_string()),
        location: None,
        upstream_path: None,
        custom_domain_cache,
        remote_member_cache: None,
        limits: None,
        outcome: Outcome {
            action: "refuse",
            status: None,
            code: None,
        },
        settings: Vec::new(),
        request_id: ctx.request_id.to_string(),
    };
    match &planned.plan {
        Plan::Endpoint { endpoint, .. } => {
            explanation.endpoint = Some(endpoint_name(*endpoint));
            explanation.outcome.action = "endpoint";
        }
        Plan::Refuse(error) => {
            explanation.outcome.status = Some(error.status());
            explanation.outcome.code = Some(error.code());
        }
        Plan::Forward(forward) => {
            explanation.outcome.action = "forward";
            explanation.upstream_path = Some(forward.path_and_query.clone());
            explanation.location = Some(match &forward.location {
                Location::Local => ExplainedLocation {
                    kind: "local",
                    url: format!("http://{}.spin.internal", forward.worker),
                },
                Location::Remote(origin) => ExplainedLocation {
                    kind: "remote",
                    url: format!("{}://{}", origin.scheme.as_str(), origin.authority),
                },
            });
        }
    }
    if report.location == Some("remote") && remote_from_database(config) {
        if let Some(worker) = &report.worker {
            explanation.remote_member_cache =
                cache_state(config, &mut reads, cache::Kind::RemoteWorker, worker.as_str());
        }
    }
    if report.limit.is_some() || report.breaker.is_some() {
        explanation.limits = Some(limits_of(explained, &planned, &mut reads));
    }
    explanation.settings = settings_used(config, &explanation);
    explanation
}

fn endpoint_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Health => "health",
        Endpoint::HealthDetailed => "health_detailed",
        Endpoint::NamespaceInfo => "namespace_info",
        Endpoint::Index => "index",
        Endpoint::ServerOptions => "server_options",
        Endpoint::Preflight => "preflight",
        Endpoint::Explain => "explain",
    }
}

fn remote_from_database(config: &Config) -> bool {
    matches!(
        config.remote(),
        Ok(Some(crate::config::Remote {
            members: crate::config::RemoteMembers::Database,
            ..
        }))
    )
}

/// The cache entry for `name`, read as the directory reads it.
fn cache_state(config: &Config, world: &mut impl World, kind: cache::Kind, name: &str) -> Option<CacheState> {
    let lookups = config.lookups().ok()?;
    let now = world.now_ms() / 1000;
    let ttl = lookups.misses.cache_ttl_s;
    if let Some(bytes) = world.cache().get(&cache::key(&lookups.namespace, kind, name)) {
        let entry = CacheEntry::decode(&bytes, &config.reserved_names);
        return Some(match entry {
            Some(entry) if entry.is_fresh(now) => {
                let expires_in_s = entry.expires_at.saturating_sub(now);
                CacheState {
                    state: "hit",
                    age_s: ttl.checked_sub(expires_in_s),
                    expires_in_s: Some(expires_in_s),
                }
            }
            _ => CacheState {
                state: "expired",
                age_s: None,
                expires_in_s: None,
            },
        });
    }
    let absent = world
        .cache()
        .get(&cache::absent_key(&lookups.namespace, kind, name))
        .and_then(|bytes| AbsentEntry::decode(&bytes))
        .filter(|entry| entry.answers(name, now));
    Some(match absent {
        Some(entry) => {
            let expires_in_s = entry.expires_at.saturating_sub(now);
            CacheState {
                state: "negative",
                age_s: lookups.misses.negative_ttl_s.checked_sub(expires_in_s),
                expires_in_s: Some(expires_in_s),
            }
        }
        None => CacheState {
            state: "miss",
            age_s: None,
            expires_in_s: None,
        },
    })
}

/// The worker's limits as the plan found them, with their policies.
fn limits_of(ctx: Context, planned: &crate::pipeline::Planned, world: &mut impl World) -> ExplainedLimits {
    let report = &planned.report;
    let mut limits = ExplainedLimits {
        rate_limit: None,
        rate_decision: report.limit,
        rate_state: None,
        breaker: None,
        breaker_state: report.breaker,
        source: "settings",
    };
    if let Plan::Forward(forward) = &planned.plan {
        limits.rate_state = forward
            .response_headers
            .iter()
            .find(|(name, _)| name == "ratelimit")
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned());
    }
    let (Some(worker), Ok(Some(settings))) = (report.worker.as_ref(), ctx.config.limits()) else {
        return limits;
    };
    let row = if settings.overrides {
        crate::pipeline::directory::Directory::new(ctx)
            .limit_override(world, worker)
            .ok()
            .flatten()
    } else {
        None
    };
    if row.is_some_and(|row| row.rate.is_some() || row.breaker.is_some()) {
        limits.source = "database";
    }
    let policy = settings.policy_for(worker, row.as_ref());
    limits.rate_limit = policy.rate.map(|rate| rate.describe());
    limits.breaker = policy.breaker.map(|breaker| breaker.describe());
    limits
}

/// The settings that decided the explanation, in the order the phases read them.
fn settings_used(config: &Config, explanation: &Explanation) -> Vec<SettingUsed> {
    let mut keys = vec!["base_domain", "dispatcher_hosts", "reserved_names"];
    if explanation.route == Some("custom_domain") {
        keys.extend(["domain_cache_ttl_s", "domain_negative_ttl_s"]);
    }
    if explanation.worker.is_some() {
        keys.push("workers");
    }
    if explanation.location.as_ref().is_some_and(|l| l.kind == "remote") || explanation.remote_member_cache.is_some() {
        keys.extend(["worker_url_template", "remote_workers"]);
    }
    if explanation.limits.is_some() {
        keys.extend(["rate_limits", "breakers", "limit_overrides", "limits_on_store_error"]);
    }
    keys.into_iter()
        .map(|key| {
            let (value, default) = config.setting_text(key);
            let value = match (key, &explanation.worker) {
                // The lists of tenants are not shown whole, as `GET /dispatch` does not list
                // them: only whether they hold this worker.
                ("workers" | "remote_workers", Some(worker)) => {
                    let listed = crate::pipeline::worker_name::WorkerName::parse(worker, &[])
                        .is_ok_and(|name| name.is_listed_in(value));
                    format!("{} {worker}", if listed { "includes" } else { "does not include" })
                }
                _ => value.to_string(),
            };
            SettingUsed { key, value, default }
        })
        .collect()
}

/// A world that reads and never writes: cache writes and deletions are dropped, and the store's
/// counters answer what an increment would give without making it.
pub struct ReadOnly<'w, W> {
    inner: &'w mut W,
}

impl<W: World> CacheStore for ReadOnly<'_, W> {
    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.inner.cache().get(key)
    }
    fn set(&mut self, _key: &str, _value: &[u8]) {}
    fn delete(&mut self, _key: &str) {}
}

impl<W: World> SharedStore for ReadOnly<'_, W> {
    fn increment(&mut self, key: &str, delta: i64) -> Result<i64, StoreError> {
        Ok(self.inner.store().count(key)?.unwrap_or(0).saturating_add(delta))
    }
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.store().get(key)
    }
    fn set(&mut self, _key: &str, _value: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    fn delete(&mut self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

impl<W: World> World for ReadOnly<'_, W> {
    type Cache = Self;
    type Database = W::Database;
    type Store = Self;

    fn cache(&mut self) -> &mut Self {
        self
    }
    fn database(&mut self, timeout_ms: u64) -> Result<&mut W::Database, DispatchError> {
        self.inner.database(timeout_ms)
    }
    fn store(&mut self) -> &mut Self {
        self
    }
    fn now_ms(&mut self) -> u64 {
        self.inner.now_ms()
    }
    fn warn(&mut self, warning: Warning) {
        self.inner.warn(warning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::world::memory::MemoryWorld;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())).unwrap()
    }

    fn explain_url(url: &str, config: &Config, world: &mut MemoryWorld) -> Explanation {
        let query = format!(
            "/dispatch/explain?url={}",
            percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC)
        );
        let (url, head) = target(&query).unwrap();
        let own = RequestHead {
            method: "GET".into(),
            authority: Some("localhost".into()),
            path_and_query: query,
            headers: Vec::new(),
        };
        let ctx = Context {
            head: &own,
            request_id: "rid",
            config,
        };
        explain(ctx, url, &head, world)
    }

    #[test]
    fn the_url_must_be_one_absolute_http_url() {
        for (query, fragment) in [
            ("/dispatch/explain", "?url="),
            ("/dispatch/explain?other=1", "?url="),
            ("/dispatch/explain?url=a&url=b", "one url"),
            ("/dispatch/explain?url=%2Fpath", "absolute"),
            ("/dispatch/explain?url=ftp%3A%2F%2Fx.test%2F", "http or https"),
            ("/dispatch/explain?url=http%3A%2F%2Fuser%40x.test%2F", "user"),
            ("/dispatch/explain?url=%ff", "UTF-8"),
            ("/dispatch/explain?url=http%3A%2F%2Fa%20b.test%2F", "percent-encoded"),
            ("/dispatch/explain?url=http%3A%2F%2F%2Fpath", "no host"),
        ] {
            let error = target(query).unwrap_err();
            assert_eq!(error.code(), "invalid_url", "{query}");
            assert!(error.detail().contains(fragment), "{query}: {}", error.detail());
        }
        let (url, head) = target("/dispatch/explain?url=https%3A%2F%2FShop.Example.com%3A8443%2Fa%3Fb%3D1").unwrap();
        assert_eq!(url, "https://Shop.Example.com:8443/a?b=1");
        assert_eq!(head.authority.as_deref(), Some("Shop.Example.com:8443"));
        assert_eq!(head.path_and_query, "/a?b=1");
        assert_eq!(
            target("/dispatch/explain?url=http%3A%2F%2Fx.test")
                .unwrap()
                .1
                .path_and_query,
            "/"
        );
    }

    #[test]
    fn a_subdomain_is_explained_as_the_request_would_be_routed() {
        let config = config(&[("workers", "shop,blog")]);
        let mut world = MemoryWorld::default();
        let explanation = explain_url("http://shop.localhost:3000/cart?x=1", &config, &mut world);
        assert_eq!(explanation.host.as_deref(), Some("shop.localhost"));
        assert_eq!(explanation.host_class, Some("tenant_subdomain"));
        assert_eq!(explanation.route, Some("subdomain"));
        assert_eq!(explanation.worker.as_deref(), Some("shop"));
        assert_eq!(
            explanation.location,
            Some(ExplainedLocation {
                kind: "local",
                url: "http://shop.spin.internal".into()
            })
        );
        assert_eq!(explanation.upstream_path.as_deref(), Some("/cart?x=1"));
        assert_eq!(explanation.outcome.action, "forward");
        assert!(
            explanation
                .settings
                .iter()
                .any(|s| s.key == "workers" && s.value == "includes shop" && !s.default),
            "the list of tenants is not shown, only whether it holds this one"
        );
        assert!(!explanation.settings.iter().any(|s| s.value.contains("blog")));
        assert!(explanation.settings.iter().any(|s| s.key == "base_domain" && s.default));
        assert_eq!(world.calls(), 0, "a local subdomain needs no lookup");
    }

    #[test]
    fn refusals_and_endpoints_are_explained_too() {
        let config = config(&[("workers", "shop")]);
        let mut world = MemoryWorld::default();
        let ghost = explain_url("http://localhost/dispatch/ghost/", &config, &mut world);
        assert_eq!(
            (ghost.outcome.action, ghost.outcome.status, ghost.outcome.code),
            ("refuse", Some(404), Some("worker_not_found"))
        );
        assert_eq!(ghost.route, Some("path"));
        let reserved = explain_url("http://localhost/dispatch/explain/x", &config, &mut world);
        assert_eq!(
            reserved.outcome.code,
            Some("reserved_worker_name"),
            "no tenant can be called explain"
        );
        let health = explain_url("http://localhost/health", &config, &mut world);
        assert_eq!((health.outcome.action, health.endpoint), ("endpoint", Some("health")));
        let bad_host = explain_url("http://a.b.localhost/", &config, &mut world);
        assert_eq!(bad_host.outcome.code, Some("host_not_routed"));
    }

    #[test]
    fn a_custom_domain_reports_its_cache_and_writes_nothing() {
        let config = config(&[("workers", "shop")]);
        let mut world = MemoryWorld::default();
        world
            .database
            .domains
            .insert("shop.example.com".into(), "https://shop.localhost".into());
        let cold = explain_url("https://shop.example.com/", &config, &mut world);
        assert_eq!(cold.custom_domain_cache.as_ref().unwrap().state, "miss");
        assert_eq!(cold.worker.as_deref(), Some("shop"));
        assert_eq!(
            world.database.queries, 1,
            "the database answers a miss, as for a request"
        );
        assert!(world.cache.values.is_empty(), "explaining caches nothing");
        // A real request caches the answer; the explanation then sees it, and its age.
        let request = RequestHead {
            method: "GET".into(),
            authority: Some("shop.example.com".into()),
            path_and_query: "/".into(),
            headers: Vec::new(),
        };
        plan(
            Context {
                head: &request,
                request_id: "rid",
                config: &config,
            },
            &mut world,
        );
        world.now_ms += 5_000;
        let warm = explain_url("https://shop.example.com/", &config, &mut world);
        assert_eq!(
            warm.custom_domain_cache,
            Some(CacheState {
                state: "hit",
                age_s: Some(5),
                expires_in_s: Some(55)
            })
        );
        assert_eq!(world.database.queries, 2, "the hit needed no query");
        let unknown = explain_url("https://nobody.example.com/", &config, &mut world);
        assert_eq!(unknown.outcome.code, Some("custom_domain_not_found"));
    }

    #[test]
    fn limits_say_what_a_request_now_would_get_without_counting_it() {
        let config = config(&[
            ("workers", "shop"),
            ("rate_limits", "shop:2/min"),
            ("breakers", "*:5/30s"),
        ]);
        let mut world = MemoryWorld::default();
        for _ in 0..3 {
            let explanation = explain_url("http://shop.localhost/", &config, &mut world);
            let limits = explanation.limits.unwrap();
            assert_eq!(limits.rate_limit.as_deref(), Some("2/min"));
            assert_eq!(limits.rate_decision, Some("admitted"), "explaining counts nothing");
            assert_eq!(limits.breaker.as_deref(), Some("5/30s"));
            assert_eq!(limits.breaker_state, Some("closed"));
            assert_eq!(limits.source, "settings");
        }
        assert!(world.store.values.is_empty(), "nothing written to the store");
        // Two real requests use the quota: the next one would be refused, and the explanation says so.
        let request = RequestHead {
            method: "GET".into(),
            authority: Some("shop.localhost".into()),
            path_and_query: "/".into(),
            headers: Vec::new(),
        };
        for _ in 0..2 {
            let planned = plan(
                Context {
                    head: &request,
                    request_id: "rid",
                    config: &config,
                },
                &mut world,
            );
            assert!(matches!(planned.plan, Plan::Forward(_)));
        }
        let explanation = explain_url("http://shop.localhost/", &config, &mut world);
        assert_eq!(explanation.limits.unwrap().rate_decision, Some("refused"));
        assert_eq!(explanation.outcome.code, Some("rate_limited"));
    }
}
