//! A tenant's circuit breaker: after `failures` consecutive failures of its worker (a trap, a
//! timeout, an unreachable remote member), the worker is not called for `open` seconds; then one
//! request goes through as a probe (half-open), and its outcome closes the breaker or opens it
//! again.
//!
//! A worker's own 5xx answer is not a failure: it is the tenant's answer to its client (an API
//! that says "503, try later" works as designed), and a breaker that opened on it would let one
//! client who can make a worker answer 500 at will cut that tenant off for everyone.
//!
//! State lives in the shared store without compare-and-swap (broken on Redis in Spin 4.0.2):
//! - `<prefix>:fails`, a counter of consecutive failures (incremented; deleted by a success);
//! - `<prefix>:opened`, a marker `<until_ms> open|probe`, set when the count reaches the
//!   threshold and when a probe is sent or fails; deleted when the breaker closes;
//! - `<prefix>:probe:<since_ms>:<round>`, the election of the half-open period that began at
//!   `since_ms`, one per grace period (`round`): the request whose increment returns 1 is the
//!   probe and marks the breaker `probe` for the grace period; everyone else gets a higher count
//!   and waits. The probe deletes its election key when it reports. A probe that never reports
//!   (its instance died, or the store failed under it) is replaced in the next round, one grace
//!   period later, and that probe deletes the round before its own. So the breaker can never stay
//!   open for more than its duration and a grace period without a call to the worker.
//!
//! What a race between replicas costs: at most one extra probe. A request that read the
//! breaker as open just before a probe's marker moved to the next round can be elected in that
//! round while the first probe is out.

use super::store::{SharedStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures: u64,
    /// How long it stays open.
    pub open_s: u64,
}

impl BreakerPolicy {
    /// `5/30s`: open after 5 consecutive failures, for 30 seconds (`s`, `min` or `h`).
    pub fn parse(text: &str) -> Result<BreakerPolicy, String> {
        let text = text.trim();
        let (failures, open) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not failures/duration (as 5/30s)"))?;
        let failures = failures
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| format!("'{text}': the failure count is not a whole number from 1 to 1000000"))?;
        let open = open.trim();
        let split = open.find(|c: char| !c.is_ascii_digit()).unwrap_or(open.len());
        let (amount, unit) = open.split_at(split);
        let scale: u64 = match unit {
            "s" => 1,
            "min" => 60,
            "h" => 3600,
            _ => return Err(format!("'{text}': the duration is not N followed by s, min or h")),
        };
        let open_s = amount
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .filter(|seconds| (1..=24 * 3600).contains(seconds))
            .ok_or_else(|| format!("'{text}': the duration is not from 1 second to 24 hours"))?;
        Ok(BreakerPolicy { failures, open_s })
    }

    pub fn describe(&self) -> String {
        format!("{}/{}s", self.failures, self.open_s)
    }
}

/// What the breaker says before a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Send it. `failures`: the count just read, so a success knows whether to reset it.
    Closed { failures: u64 },
    /// Do not call the worker; try again in `retry_after_s` (at least 1).
    Open { retry_after_s: u64 },
    /// The open period that ended at `since_ms` is over: a probe may go ([`elect_probe`]).
    /// `abandoned`: the election of a probe that never reported, for the next probe to delete.
    HalfOpen {
        since_ms: u64,
        abandoned: Option<(u64, u64)>,
    },
}

impl BreakerState {
    pub fn label(&self) -> &'static str {
        match self {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }
}

/// A request the breaker let through, for [`record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    Closed {
        failures: u64,
    },
    /// The probe, with its election key.
    Probe {
        election: String,
    },
}

/// How the worker did, as far as the breaker is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The worker answered (whatever its status) and its body arrived.
    Success,
    /// It trapped, timed out, or could not be reached.
    Failure,
    /// Nothing is known of the worker: the client failed first (a body cut short or too large).
    Unknown,
}

/// Reads the breaker's state at `now_ms`: one read when it is closed, two when it is not.
pub fn check(
    store: &mut impl SharedStore,
    prefix: &str,
    policy: &BreakerPolicy,
    now_ms: u64,
) -> Result<BreakerState, StoreError> {
    let failures = store.count(&fails_key(prefix))?.unwrap_or(0).max(0) as u64;
    if failures < policy.failures {
        return Ok(BreakerState::Closed { failures });
    }
    match store.get(&opened_key(prefix))?.and_then(|bytes| Marker::decode(&bytes)) {
        Some(marker) if now_ms < marker.until_ms => {
            let retry_after_s = if marker.probing {
                1
            } else {
                (marker.until_ms - now_ms).div_ceil(1000).max(1)
            };
            Ok(BreakerState::Open { retry_after_s })
        }
        // Over, or the marker is missing (its write failed): a probe decides.
        marker => Ok(BreakerState::HalfOpen {
            since_ms: marker.as_ref().map_or(0, |m| m.until_ms),
            abandoned: marker.and_then(|m| m.election),
        }),
    }
}

/// Elects the probe of the half-open period that began at `since_ms`: `Some(pass)` for the one
/// request that gets it. The probe marks the breaker as probing for `grace_ms` (how long a
/// request may take), so the others keep refusing meanwhile.
pub fn elect_probe(
    store: &mut impl SharedStore,
    prefix: &str,
    state: &BreakerState,
    now_ms: u64,
    grace_ms: u64,
) -> Result<Option<Pass>, StoreError> {
    let BreakerState::HalfOpen { since_ms, abandoned } = *state else {
        return Ok(None);
    };
    let round = now_ms.saturating_sub(since_ms) / grace_ms.max(1);
    let election = probe_key(prefix, since_ms, round);
    if store.increment(&election, 1)? != 1 {
        return Ok(None);
    }
    let marker = Marker {
        until_ms: now_ms + grace_ms,
        probing: true,
        election: Some((since_ms, round)),
    };
    let _ = store.set(&opened_key(prefix), &marker.encode());
    // Elections whose probe never reported: the round before this one (its marker was never
    // written) and the one the marker names.
    if round > 0 {
        let _ = store.delete(&probe_key(prefix, since_ms, round - 1));
    }
    if let Some((since, round)) = abandoned {
        let _ = store.delete(&probe_key(prefix, since, round));
    }
    Ok(Some(Pass::Probe { election }))
}

/// What happened to a request the breaker let through. `Ok(Some(until_ms))` when this outcome
/// opened the breaker (or opened it again).
pub fn record(
    store: &mut impl SharedStore,
    prefix: &str,
    policy: &BreakerPolicy,
    pass: &Pass,
    outcome: Outcome,
    now_ms: u64,
) -> Result<Option<u64>, StoreError> {
    if let Pass::Probe { election } = pass {
        // Reporting ends the election, whatever the outcome.
        let _ = store.delete(election);
    }
    match (outcome, pass) {
        (Outcome::Unknown, _) | (Outcome::Success, Pass::Closed { failures: 0 }) => Ok(None),
        // A success ends a run of failures, and a breaker that opened meanwhile with it.
        (Outcome::Success, _) => {
            store.delete(&fails_key(prefix))?;
            store.delete(&opened_key(prefix)).map(|()| None)
        }
        (Outcome::Failure, pass) => {
            let failures = store.increment(&fails_key(prefix), 1)?;
            // Only the failure that reaches the threshold opens it, so concurrent failures
            // (or replicas) do not each start the open period again.
            if matches!(pass, Pass::Probe { .. }) || failures == policy.failures as i64 {
                let until_ms = now_ms + policy.open_s * 1000;
                let marker = Marker {
                    until_ms,
                    probing: false,
                    election: None,
                };
                store.set(&opened_key(prefix), &marker.encode())?;
                return Ok(Some(until_ms));
            }
            Ok(None)
        }
    }
}

/// Whether the breaker under `prefix` is anything but closed, from its marker alone (which a
/// closing probe deletes): `(until_ms, probing)`.
pub fn peek(store: &mut impl SharedStore, prefix: &str) -> Result<Option<(u64, bool)>, StoreError> {
    Ok(store
        .get(&opened_key(prefix))?
        .and_then(|bytes| Marker::decode(&bytes))
        .map(|marker| (marker.until_ms, marker.probing)))
}

fn fails_key(prefix: &str) -> String {
    format!("{prefix}:fails")
}

fn opened_key(prefix: &str) -> String {
    format!("{prefix}:opened")
}

fn probe_key(prefix: &str, since_ms: u64, round: u64) -> String {
    format!("{prefix}:probe:{since_ms}:{round}")
}

/// `<until_ms> open`, or `<until_ms> probe <since_ms>:<round>` (the probe's election).
struct Marker {
    until_ms: u64,
    probing: bool,
    election: Option<(u64, u64)>,
}

impl Marker {
    fn encode(&self) -> Vec<u8> {
        match (self.probing, self.election) {
            (true, Some((since, round))) => format!("{} probe {since}:{round}", self.until_ms),
            (true, None) => format!("{} probe", self.until_ms),
            (false, _) => format!("{} open", self.until_ms),
        }
        .into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Marker> {
        let mut parts = std::str::from_utf8(bytes).ok()?.split(' ');
        let until_ms = parts.next()?.parse().ok()?;
        let probing = match parts.next()? {
            "probe" => true,
            "open" => false,
            _ => return None,
        };
        let election = parts.next().and_then(|election| {
            let (since, round) = election.split_once(':')?;
            Some((since.parse().ok()?, round.parse().ok()?))
        });
        Some(Marker {
            until_ms,
            probing,
            election,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::store::{Encoding, MemoryStore};

    const PREFIX: &str = "ns:breaker:v1:shop";

    fn policy() -> BreakerPolicy {
        BreakerPolicy::parse("3/30s").unwrap()
    }

    #[test]
    fn parses_a_count_and_a_duration() {
        assert_eq!(
            BreakerPolicy::parse(" 5/30s "),
            Ok(BreakerPolicy {
                failures: 5,
                open_s: 30
            })
        );
        assert_eq!(BreakerPolicy::parse("1/2min").unwrap().open_s, 120);
        assert_eq!(BreakerPolicy::parse("1/1h").unwrap().open_s, 3600);
        for bad in [
            "5",
            "0/30s",
            "5/30",
            "5/30d",
            "5/0s",
            "5/25h",
            "x/30s",
            "5/s",
            "5/999198637325934046h",
        ] {
            assert!(BreakerPolicy::parse(bad).is_err(), "{bad}");
        }
    }

    /// One request through the breaker: whether it reached the worker.
    fn attempt(store: &mut MemoryStore, now: u64, outcome: Outcome) -> (bool, BreakerState) {
        let state = check(store, PREFIX, &policy(), now).unwrap();
        let pass = match state {
            BreakerState::Closed { failures } => Pass::Closed { failures },
            BreakerState::Open { .. } => return (false, state),
            BreakerState::HalfOpen { .. } => match elect_probe(store, PREFIX, &state, now, 5_000).unwrap() {
                Some(pass) => pass,
                None => return (false, state),
            },
        };
        record(store, PREFIX, &policy(), &pass, outcome, now).unwrap();
        (true, state)
    }

    #[test]
    fn opens_after_consecutive_failures_probes_and_closes() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let t = 1_800_000_000_000;
        for i in 0..3 {
            assert!(attempt(&mut store, t + i, Outcome::Failure).0);
        }
        let (called, state) = attempt(&mut store, t + 10, Outcome::Success);
        assert!(!called);
        assert_eq!(state, BreakerState::Open { retry_after_s: 30 });
        // The open period ends: one probe, and its success closes the breaker.
        let (called, state) = attempt(&mut store, t + 2 + 30_000, Outcome::Success);
        assert!(called);
        assert!(matches!(state, BreakerState::HalfOpen { .. }));
        assert_eq!(
            attempt(&mut store, t + 30_010, Outcome::Success).1,
            BreakerState::Closed { failures: 0 }
        );
        assert!(store.keys_under(PREFIX).is_empty(), "{:?}", store.values);
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_a_success_resets_the_count() {
        let mut store = MemoryStore::new(Encoding::Redis);
        let t = 1_800_000_000_000;
        for outcome in [
            Outcome::Failure,
            Outcome::Failure,
            Outcome::Success,
            Outcome::Failure,
            Outcome::Failure,
        ] {
            assert!(attempt(&mut store, t, outcome).0);
        }
        assert_eq!(
            check(&mut store, PREFIX, &policy(), t).unwrap(),
            BreakerState::Closed { failures: 2 }
        );
        attempt(&mut store, t, Outcome::Failure);
        let probe_at = t + 30_000;
        assert!(attempt(&mut store, probe_at, Outcome::Failure).0);
        assert_eq!(
            check(&mut store, PREFIX, &policy(), probe_at + 1).unwrap(),
            BreakerState::Open { retry_after_s: 30 }
        );
    }

    #[test]
    fn while_a_probe_is_out_the_others_wait_and_a_lost_probe_is_replaced() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let t = 1_800_000_000_000;
        for _ in 0..3 {
            attempt(&mut store, t, Outcome::Failure);
        }
        let half = t + 30_000;
        let state = check(&mut store, PREFIX, &policy(), half).unwrap();
        assert!(matches!(state, BreakerState::HalfOpen { .. }));
        assert!(elect_probe(&mut store, PREFIX, &state, half, 5_000).unwrap().is_some());
        // The probe never reports. Meanwhile everyone else waits a second at a time...
        assert_eq!(
            check(&mut store, PREFIX, &policy(), half + 100).unwrap(),
            BreakerState::Open { retry_after_s: 1 }
        );
        // ...until its grace period is over, and another probe goes.
        assert!(attempt(&mut store, half + 5_001, Outcome::Success).0);
        assert!(
            store.keys_under(PREFIX).is_empty(),
            "the lost probe's election went with it: {:?}",
            store.values
        );
        assert_eq!(
            check(&mut store, PREFIX, &policy(), half + 5_002).unwrap(),
            BreakerState::Closed { failures: 0 }
        );
    }

    #[test]
    fn a_probe_whose_store_failed_mid_election_is_replaced_in_the_next_round() {
        let mut store = MemoryStore::new(Encoding::Redis);
        let t = 1_800_000_000_000;
        for _ in 0..3 {
            attempt(&mut store, t, Outcome::Failure);
        }
        let half = t + 30_000;
        // Elected, but the store failed before the marker was written: the breaker still reads
        // "open until `half`", and every request of this round loses the election.
        store.increment(&format!("{PREFIX}:probe:{half}:0"), 1).unwrap();
        for at in [half + 1, half + 4_999] {
            assert!(!attempt(&mut store, at, Outcome::Success).0, "{at}");
        }
        assert!(
            attempt(&mut store, half + 5_000, Outcome::Success).0,
            "the next round's probe"
        );
        assert!(store.keys_under(PREFIX).is_empty(), "{:?}", store.values);
    }

    #[test]
    fn requests_racing_for_the_probe_elect_one() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let t = 1_800_000_000_000;
        for _ in 0..3 {
            attempt(&mut store, t, Outcome::Failure);
        }
        let half = t + 30_000;
        // Five requests read the breaker as half-open before any of them is elected.
        let states: Vec<BreakerState> = (0..5)
            .map(|i| check(&mut store, PREFIX, &policy(), half + i).unwrap())
            .collect();
        let elected = states
            .iter()
            .enumerate()
            .filter_map(|(i, state)| elect_probe(&mut store, PREFIX, state, half + i as u64, 5_000).unwrap())
            .count();
        assert_eq!(elected, 1);
    }

    #[test]
    fn a_success_while_it_opened_closes_it_for_the_listing_too() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let t = 1_800_000_000_000;
        attempt(&mut store, t, Outcome::Failure);
        // A request is let through with one failure counted; meanwhile two more open it.
        let pass = Pass::Closed { failures: 1 };
        attempt(&mut store, t, Outcome::Failure);
        attempt(&mut store, t, Outcome::Failure);
        assert!(peek(&mut store, PREFIX).unwrap().is_some());
        record(&mut store, PREFIX, &policy(), &pass, Outcome::Success, t + 5).unwrap();
        assert_eq!(peek(&mut store, PREFIX).unwrap(), None);
        assert_eq!(
            check(&mut store, PREFIX, &policy(), t + 6).unwrap(),
            BreakerState::Closed { failures: 0 }
        );
    }

    #[test]
    fn a_worker_answer_or_a_client_failure_never_counts() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        for _ in 0..10 {
            assert!(attempt(&mut store, 1_800_000_000_000, Outcome::Unknown).0);
        }
        assert!(store.values.is_empty());
    }
}
