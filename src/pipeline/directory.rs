//! The directory of the namespace: which worker a custom domain goes to, whether a name is a
//! deployed remote worker, and a worker's limit overrides. Each answer comes from the database
//! through the key-value cache (`crate::cache`): found and not-found answers are kept for their
//! TTLs, failures never (but for overrides, below), so a warm request runs no query.

use crate::cache::{self, AbsentEntry, CacheEntry};
use crate::config::{ConfigError, MissSettings};
use crate::custom_domain;
use crate::error::{DispatchError, RETRY_AFTER_S};
use crate::limits::overrides::{CachedOverride, Override};
use crate::membership;
use crate::pipeline::request::Context;
use crate::pipeline::worker_name::WorkerName;
use crate::pipeline::world::{CacheStore, Database, Unavailable, Warning, World};

/// One request's use of the directory: the settings it needs, each parsed at its first use (a
/// cache hit needs only the namespace; the TTLs and the query timeout wait for a miss, so an
/// unusable TTL fails only requests that miss).
pub struct Directory<'a> {
    ctx: Context<'a>,
    namespace: Option<String>,
    misses: Option<MissSettings>,
}

fn configuration(problem: ConfigError) -> DispatchError {
    DispatchError::Configuration(problem)
}

impl<'a> Directory<'a> {
    pub fn new(ctx: Context<'a>) -> Directory<'a> {
        Directory {
            ctx,
            namespace: None,
            misses: None,
        }
    }

    /// The namespace: the prefix of every key.
    pub fn namespace(&mut self) -> Result<&str, DispatchError> {
        if self.namespace.is_none() {
            self.namespace = Some(self.ctx.config.namespace().map_err(configuration)?);
        }
        Ok(self.namespace.as_deref().expect("just read"))
    }

    fn misses(&mut self) -> Result<MissSettings, DispatchError> {
        if self.misses.is_none() {
            self.misses = Some(self.ctx.config.misses().map_err(configuration)?);
        }
        Ok(self.misses.expect("just read"))
    }

    /// The worker serving custom domain `host`, `None` if no verified, active project claims it
    /// (or its deploy URL is not a worker's origin, which is also the operator's business).
    pub fn custom_domain(&mut self, world: &mut impl World, host: &str) -> Result<Option<WorkerName>, DispatchError> {
        let config = self.ctx.config;
        let mut warning = None;
        let worker = self.cached(world, cache::Kind::CustomDomain, host, |database| {
            let Some(url) = database.custom_domain(host)? else {
                return Ok(None);
            };
            match custom_domain::worker_from_deploy_url(&url, &config.base_domain, &config.reserved_names) {
                Ok(worker) => Ok(Some(worker)),
                Err(problem) => {
                    warning = Some(Warning::DeployUrlNotAWorker {
                        host: host.to_string(),
                        reason: format!("{problem:?}"),
                    });
                    Ok(None)
                }
            }
        });
        if let Some(warning) = warning {
            world.warn(warning);
        }
        worker
    }

    /// Whether `worker` is deployed as a remote worker: an active project's
    /// `production_deploy_url` is its origin under the base domain.
    pub fn is_deployed(&mut self, world: &mut impl World, worker: &WorkerName) -> Result<bool, DispatchError> {
        let base_domain = &self.ctx.config.base_domain;
        let found = self.cached(world, cache::Kind::RemoteWorker, worker.as_str(), |database| {
            let urls = membership::deploy_urls(worker, base_domain);
            Ok(database.is_deployed(&urls)?.then(|| worker.clone()))
        })?;
        Ok(found.is_some())
    }

    /// The cached answer for `name`, else `lookup`'s, which is then cached for its TTL (found
    /// and not-found answers alike; failures never).
    fn cached<W: World>(
        &mut self,
        world: &mut W,
        kind: cache::Kind,
        name: &str,
        lookup: impl FnOnce(&mut W::Database) -> Result<Option<WorkerName>, Unavailable>,
    ) -> Result<Option<WorkerName>, DispatchError> {
        let reserved = &self.ctx.config.reserved_names;
        let namespace = self.namespace()?.to_string();
        let found_key = cache::key(&namespace, kind, name);
        let absent_key = cache::absent_key(&namespace, kind, name);
        let now = world.now_ms() / 1000;
        let mut stale_found = false;
        match world.cache().get(&found_key) {
            Some(bytes) => match CacheEntry::decode(&bytes, reserved) {
                Some(entry) if entry.is_fresh(now) => return Ok(entry.worker),
                _ => stale_found = true,
            },
            None => {
                let absent = world.cache().get(&absent_key);
                if absent
                    .and_then(|bytes| AbsentEntry::decode(&bytes))
                    .is_some_and(|entry| entry.answers(name, now))
                {
                    return Ok(None);
                }
            }
        }
        let misses = self.misses()?;
        let database = world.database(misses.db_timeout_ms)?;
        let worker = match lookup(database) {
            Ok(worker) => worker,
            Err(Unavailable(cause)) => {
                world.warn(Warning::DatabaseFailed { cause });
                return Err(DispatchError::DatabaseUnavailable);
            }
        };
        let cache = world.cache();
        match &worker {
            Some(worker) if misses.cache_ttl_s > 0 => {
                let entry = CacheEntry {
                    worker: Some(worker.clone()),
                    expires_at: now + misses.cache_ttl_s,
                };
                cache.set(&found_key, &entry.encode());
            }
            _ => {
                // An expired or unreadable entry under the name is deleted, not left to grow.
                if stale_found {
                    cache.delete(&found_key);
                }
                if worker.is_none() && misses.negative_ttl_s > 0 {
                    let entry = AbsentEntry {
                        name: name.to_string(),
                        expires_at: now + misses.negative_ttl_s,
                    };
                    cache.set(&absent_key, &entry.encode());
                }
            }
        }
        Ok(worker)
    }

    /// `worker`'s row of `worker_limits`, through the cache. A row that does not parse is
    /// ignored and cached as no row, so its one warning comes once per TTL. A database that
    /// cannot answer leaves the worker with its last known row (or the settings' limits when
    /// there is none), cached for [`RETRY_AFTER_S`] seconds, so an outage costs a query per
    /// worker every few seconds rather than one per request: overrides never take down tenants
    /// that need no database.
    pub fn limit_override(
        &mut self,
        world: &mut impl World,
        worker: &WorkerName,
    ) -> Result<Option<Override>, DispatchError> {
        let key = cache::key(self.namespace()?, cache::Kind::WorkerLimits, worker.as_str());
        let now = world.now_ms() / 1000;
        let cached = world.cache().get(&key).and_then(|bytes| CachedOverride::decode(&bytes));
        if let Some(entry) = cached.as_ref().filter(|entry| entry.is_fresh(now)) {
            return Ok(Some(entry.row).filter(|row| *row != Override::default()));
        }
        let misses = self.misses()?;
        let looked_up = world
            .database(misses.db_timeout_ms)
            .map_err(|error| format!("{error:?}"))
            .and_then(|database| {
                database
                    .worker_limits(worker.as_str())
                    .map_err(|Unavailable(cause)| cause)
            });
        let (row, ttl) = match looked_up {
            Ok(row) => match row.parse() {
                Ok(parsed) if parsed == Override::default() => (parsed, misses.negative_ttl_s),
                Ok(parsed) => (parsed, misses.cache_ttl_s),
                Err(problem) => {
                    world.warn(Warning::InvalidLimitRow {
                        worker: worker.to_string(),
                        problem,
                    });
                    (Override::default(), misses.cache_ttl_s)
                }
            },
            Err(cause) => {
                world.warn(Warning::LimitRowsUnreadable {
                    worker: worker.to_string(),
                    cause,
                });
                (
                    cached.as_ref().map_or(Override::default(), |entry| entry.row),
                    RETRY_AFTER_S,
                )
            }
        };
        if ttl > 0 {
            let entry = CachedOverride {
                row,
                expires_at: now + ttl,
            };
            world.cache().set(&key, &entry.encode());
        } else if cached.is_some() {
            world.cache().delete(&key);
        }
        Ok(Some(row).filter(|row| *row != Override::default()))
    }
}
