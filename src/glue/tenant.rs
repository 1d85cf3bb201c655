//! Phase 5 in the glue: the tenant's limits (`pipeline::limit`) with Spin's clock and key-value
//! store, and its override row through the lookups' cache.

use super::lookups::{self, Lookups};
use super::settings;
use super::shared_store::KvStore;
use crate::error::DispatchError;
use crate::limits::breaker::Outcome;
use crate::pipeline::Context;
use crate::pipeline::limit::{self, Admission, Keys, OpenBreaker};
use crate::pipeline::route::RouteKind;
use crate::pipeline::worker_name::WorkerName;

/// One request's limits, from its admission to its outcome.
pub struct Tenant {
    pub admission: Admission,
    /// `None` for an unlimited tenant: then nothing is opened or written.
    state: Option<(KvStore, Keys)>,
}

impl Tenant {
    /// Decides whether `worker` is called. Fails only when the limit settings are unusable. The
    /// dispatcher's own docs component is no tenant: nothing limits it.
    pub fn admit(
        ctx: Context,
        lookups: &mut Lookups,
        worker: &WorkerName,
        kind: RouteKind,
    ) -> Result<Tenant, DispatchError> {
        let unlimited = Tenant {
            admission: Admission::unlimited(),
            state: None,
        };
        if kind == RouteKind::Docs {
            return Ok(unlimited);
        }
        let Some(settings) = ctx
            .config
            .limits()
            .map_err(|problem| settings::invalid(ctx.request_id, &problem))?
        else {
            return Ok(unlimited);
        };
        let row = if settings.overrides {
            lookups::limit_override(lookups, worker)?
        } else {
            None
        };
        let policy = settings.policy_for(worker, row.as_ref());
        if policy.is_unlimited() {
            return Ok(unlimited);
        }
        let keys = Keys::new(lookups.namespace()?, worker);
        let mut store = KvStore::default();
        // A probe that never reports is replaced once an answer would have timed out.
        let grace_ms = ctx.config.upstream_timeout_ms.saturating_add(1000);
        let admission = limit::admit(&mut store, &policy, &keys, now_ms(), grace_ms, settings.on_store_error);
        Ok(Tenant {
            admission,
            state: Some((store, keys)),
        })
    }

    /// Tells the breaker how the worker did (a tenant without one has nothing to tell).
    pub fn finish(mut self, outcome: Outcome) {
        if let Some((store, keys)) = self.state.as_mut().filter(|_| self.admission.has_breaker_pass()) {
            limit::finish(store, &self.admission, keys, outcome, now_ms());
        }
    }
}

/// The open breakers of the namespace, when breakers are configured (`/health/detailed`).
pub fn open_breakers(ctx: Context, namespace: &str) -> Option<Vec<OpenBreaker>> {
    let settings = ctx.config.limits().ok().flatten()?;
    if !settings.has_breakers() {
        return None;
    }
    Some(limit::open_breakers(&mut KvStore::default(), namespace, now_ms()))
}

/// The wall clock in Unix milliseconds: windows and breakers must mean the same instant on
/// every replica, which a monotonic clock does not.
fn now_ms() -> u64 {
    let now = wasi::clocks::wall_clock::now();
    now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
}
