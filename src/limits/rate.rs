//! A tenant's rate limit: a sliding-window estimate over two fixed windows, as Cloudflare counts
//! ("How we built rate limiting capable of scaling to millions of domains", 2017).
//!
//! A limit of `quota` requests per `window` keeps one counter per fixed window, in the shared
//! store. A request at `elapsed` into window `k` is admitted when
//!
//! ```text
//! previous * (window - elapsed) / window + current < quota
//! ```
//!
//! where `current` counts the requests admitted in window `k` before it and `previous` those of
//! window `k - 1` (at most `quota`): the previous window's requests are assumed spread evenly,
//! and the part of it that still lies within one window of now is counted. Under a steady flood
//! this admits the quota one request every `window / quota`, evenly, rather than all of it at
//! the start of each window as a fixed window does.
//!
//! Accuracy (see docs/limits.md):
//! - every fixed window admits at most `quota`, exactly, on one instance and across replicas:
//!   the increment that admits a request is atomic (Redis `INCRBY`, the SQLite store under its
//!   lock), and only a request whose increment returns a count within the bound is admitted;
//! - any interval of one window's length admits at most `2 * quota`, and gets near that only
//!   when the previous window's requests all came at its very end;
//! - a refused request's increment is taken back, so a flood of refused requests does not eat
//!   the quota of the requests after it; until it is, others may be refused a moment early
//!   (never admitted beyond the bound).
//!
//! Keys (a bounded number per tenant, none ever found by listing the store):
//! `<prefix>:<window_ms>ms:<k>` for the counters, `<prefix>:last` for the marker that lists the
//! windows opened and not yet deleted (at most [`MARKER_ENTRIES`]). The request that opens a
//! window (its increment returns 1) deletes every listed window that can no longer count (a
//! window counts as "previous" until the window after it ends, whatever the limit's size), and
//! the same-size window before the previous one, and lists its own. A window that still counts
//! is never deleted, so a replica whose clock is behind, or a request that read the clock just
//! before a window ended, cannot reset a live counter. Only two openers racing on the marker
//! can drop an entry from it (no compare-and-swap): that window's counter then stays behind.

use super::store::{SharedStore, StoreError};

/// The unit of a rate: `s`, `min`, `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
}

impl Unit {
    fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Unit::Second => "s",
            Unit::Minute => "min",
            Unit::Hour => "h",
        }
    }
}

/// `N/unit`, optionally `burst B`: `N` requests per unit on average, at most `B` of them at once
/// (by default `N`). It is counted as `B` requests per window of `B / N` units, rounded to the
/// millisecond: `10/s burst 1` is one request per 100 ms, which spreads a tenant's requests out
/// evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub rate: u64,
    pub unit: Unit,
    /// The requests one window admits (the burst).
    pub quota: u64,
    pub window_ms: u64,
}

/// Larger quotas than this would overflow nothing, but mean nothing either.
const MAX_QUOTA: u64 = 1_000_000_000;

/// Shorter windows would make the store's keys churn faster than they count.
const MIN_WINDOW_MS: u64 = 10;

/// Longer windows than a day would start before the Unix epoch's first windows end (and no one
/// means them): `1/h burst 100000` is refused.
const MAX_WINDOW_MS: u64 = 24 * 3600 * 1000;

impl RatePolicy {
    /// `10/s`, `600/min`, `100/h`, `100/min burst 10`.
    pub fn parse(text: &str) -> Result<RatePolicy, String> {
        let text = text.trim();
        let mut words = text.split_whitespace();
        let rate_text = words.next().ok_or("is empty")?;
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => None,
            (Some("burst"), Some(burst), None) => Some(
                count(burst)
                    .ok_or_else(|| format!("'{text}': the burst is not a whole number from 1 to {MAX_QUOTA}"))?,
            ),
            _ => return Err(format!("'{text}' is not N/unit or N/unit burst B")),
        };
        let (rate, unit) = rate_text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not N/unit (as 10/s, 600/min or 100/h)"))?;
        let rate =
            count(rate).ok_or_else(|| format!("'{text}': the rate is not a whole number from 1 to {MAX_QUOTA}"))?;
        let unit = match unit {
            "s" => Unit::Second,
            "min" => Unit::Minute,
            "h" => Unit::Hour,
            other => return Err(format!("'{text}': unit '{other}' is not s, min or h")),
        };
        let quota = burst.unwrap_or(rate);
        let window_ms = (quota as u128 * unit.seconds() as u128 * 1000 + rate as u128 / 2) / rate as u128;
        if window_ms < MIN_WINDOW_MS as u128 {
            return Err(format!(
                "'{text}': {quota} request(s) at {rate}/{} is a window of under {MIN_WINDOW_MS} ms; give a larger burst",
                unit.as_str()
            ));
        }
        if window_ms > MAX_WINDOW_MS as u128 {
            return Err(format!(
                "'{text}': {quota} request(s) at {rate}/{} is a window of over a day; give a smaller burst",
                unit.as_str()
            ));
        }
        Ok(RatePolicy {
            rate,
            unit,
            quota,
            window_ms: window_ms as u64,
        })
    }

    /// The policy as written (`rate_limits` syntax), for logs and the API.
    pub fn describe(&self) -> String {
        if self.quota == self.rate {
            format!("{}/{}", self.rate, self.unit.as_str())
        } else {
            format!("{}/{} burst {}", self.rate, self.unit.as_str(), self.quota)
        }
    }

    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-11): the quota and its window,
    /// which the draft counts in whole seconds. A window of whole seconds is stated as it is
    /// counted; a shorter or uneven one (a small burst) by the rate it keeps, per unit.
    pub fn policy_header(&self) -> String {
        let (quota, window_s) = if self.window_ms % 1000 == 0 {
            (self.quota, self.window_ms / 1000)
        } else {
            (self.rate, self.unit.seconds())
        };
        format!("\"{POLICY_NAME}\";q={quota};w={window_s}")
    }
}

/// The name of the dispatcher's policy in the `RateLimit` headers.
pub const POLICY_NAME: &str = "tenant";

fn count(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| (1..=MAX_QUOTA).contains(n))
}

/// What the limiter said about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateState {
    pub admitted: bool,
    /// Requests the tenant may still send now (0 when refused).
    pub remaining: u64,
    /// Admitted: seconds until the current window ends. Refused: seconds until a request would
    /// be admitted if nothing else came in between (`Retry-After`), at least 1.
    pub reset_s: u64,
    /// The counter an admitted request was counted in ([`give_back`]).
    pub counted_in: Option<String>,
}

impl RateState {
    /// `RateLimit`: what is left, and when it is renewed.
    pub fn header(&self) -> String {
        format!("\"{POLICY_NAME}\";r={};t={}", self.remaining, self.reset_s)
    }
}

/// One window's arithmetic, in milliseconds. The comparisons multiply instead of dividing, so
/// nothing is rounded.
#[derive(Debug, Clone, Copy)]
struct Window {
    window_ms: u64,
    elapsed_ms: u64,
    /// Requests counted in the previous window, at most the quota.
    previous: u64,
    quota: u64,
}

impl Window {
    /// The weight of the previous window still within one window of now, times the window.
    fn carried(&self) -> u128 {
        self.previous as u128 * (self.window_ms - self.elapsed_ms) as u128
    }

    /// Whether the `count`th request of the current window fits: the estimate of what came
    /// before it is under the quota. As `count` is at least 1, no window admits more than the
    /// quota; and a steady flood gets the whole quota, one request every `window / quota`.
    fn admits(&self, count: u64) -> bool {
        let w = self.window_ms as u128;
        self.carried() + (count as u128 - 1) * w < self.quota as u128 * w
    }

    /// How many more requests fit now, after `count`.
    fn remaining(&self, count: u64) -> u64 {
        let w = self.window_ms as u128;
        let room = (self.quota as u128 * w).saturating_sub(self.carried());
        (room.div_ceil(w) as u64).saturating_sub(count)
    }

    /// How long until one more request fits, with `count` admitted in this window and nothing
    /// else arriving.
    fn wait_ms(&self, count: u64) -> u64 {
        let (w, e) = (self.window_ms, self.elapsed_ms);
        if count >= self.quota {
            // Full: in the next window the previous count is the whole quota, and one request
            // fits as soon as any of it has passed.
            return w - e + 1;
        }
        if self.previous == 0 {
            return 0;
        }
        // previous * (w - at) < (quota - count) * w, at the latest at the window's end (the
        // next window's previous is then `count`, which leaves room).
        let room = (self.quota - count) as u128 * w as u128;
        let longest = (room.div_ceil(self.previous as u128) - 1).min(w as u128) as u64;
        (w - longest).saturating_sub(e)
    }
}

/// Counts one request against `policy` at `now_ms` (Unix milliseconds, the wall clock every
/// replica shares): admitted or refused. `prefix` names the tenant's keys. Reads the counters
/// first, so a refusal under a flood writes nothing (and reads one counter only, once the
/// current window is full); an admission increments the current counter and stands only if the
/// count it gets back still fits.
pub fn check(
    store: &mut impl SharedStore,
    prefix: &str,
    policy: &RatePolicy,
    now_ms: u64,
) -> Result<RateState, StoreError> {
    let window_ms = policy.window_ms;
    let index = now_ms / window_ms;
    let current_key = counter_key(prefix, window_ms, index);
    let mut window = Window {
        window_ms,
        elapsed_ms: now_ms % window_ms,
        previous: 0,
        quota: policy.quota,
    };
    let before = store.count(&current_key)?.unwrap_or(0).max(0) as u64;
    if before >= policy.quota {
        // Full whatever the previous window holds.
        return Ok(refused(&window, before));
    }
    window.previous = store
        .count(&counter_key(prefix, window_ms, index.saturating_sub(1)))?
        .unwrap_or(0)
        .clamp(0, policy.quota as i64) as u64;
    if !window.admits(before + 1) {
        return Ok(refused(&window, before));
    }
    let counted = store.increment(&current_key, 1)?;
    if counted == 1 {
        open_window(store, prefix, window_ms, index, now_ms);
    }
    // Below 1 only if the counter was deleted and given back to meanwhile: count it as full.
    let counted = if counted < 1 { u64::MAX } else { counted as u64 };
    if !window.admits(counted) {
        // Another request took the room between the read and the increment: give it back.
        // If that fails the counter stays one high, which can only refuse, never admit.
        let _ = store.increment(&current_key, -1);
        return Ok(refused(&window, counted.saturating_sub(1).min(policy.quota)));
    }
    Ok(RateState {
        admitted: true,
        remaining: window.remaining(counted),
        reset_s: (window_ms - window.elapsed_ms).div_ceil(1000),
        counted_in: Some(current_key),
    })
}

/// Takes back an admitted request's count, when something after the limit refused it (a
/// breaker's probe taken by another request): what the worker never saw uses no quota.
pub fn give_back(store: &mut impl SharedStore, state: &RateState) {
    if let Some(key) = &state.counted_in {
        let _ = store.increment(key, -1);
    }
}

fn refused(window: &Window, admitted: u64) -> RateState {
    RateState {
        admitted: false,
        remaining: 0,
        reset_s: window.wait_ms(admitted).div_ceil(1000).max(1),
        counted_in: None,
    }
}

fn counter_key(prefix: &str, window_ms: u64, index: u64) -> String {
    format!("{prefix}:{window_ms}ms:{index}")
}

fn marker_key(prefix: &str) -> String {
    format!("{prefix}:last")
}

/// How many windows the marker lists at most: one size of limit needs two (the current and the
/// previous window); a changed limit a few more for a window's length.
pub const MARKER_ENTRIES: usize = 4;

/// The first request of window `index` deletes the counters that can no longer count and lists
/// its window in the marker. A window `i` of `w` ms counts until the window after it ends, at
/// `(i + 2) * w`. Failures are ignored: a counter the marker still lists is deleted by a later
/// window's first request.
fn open_window(store: &mut impl SharedStore, prefix: &str, window_ms: u64, index: u64, now_ms: u64) {
    let marker = marker_key(prefix);
    let listed = store
        .get(&marker)
        .ok()
        .flatten()
        .map(|bytes| parse_marker(&bytes))
        .unwrap_or_default();
    let expired = |(w, i): (u64, u64)| i.saturating_add(2).saturating_mul(w) <= now_ms;
    let mut kept: Vec<(u64, u64)> = vec![(window_ms, index)];
    for window in listed {
        if kept.contains(&window) {
            continue;
        }
        if expired(window) {
            let _ = store.delete(&counter_key(prefix, window.0, window.1));
        } else {
            kept.push(window);
        }
    }
    // What a lost marker write would have listed: the same-size window before the previous one.
    if index >= 2 && !kept.contains(&(window_ms, index - 2)) {
        let _ = store.delete(&counter_key(prefix, window_ms, index - 2));
    }
    // The latest windows first; what does not fit is the oldest.
    kept.sort_by_key(|&(w, i)| std::cmp::Reverse(i.saturating_mul(w)));
    kept.truncate(MARKER_ENTRIES);
    let text: Vec<String> = kept.iter().map(|(w, i)| format!("{w}:{i}")).collect();
    let _ = store.set(&marker, text.join(",").as_bytes());
}

/// `<window_ms>:<index>,...`; entries that do not parse are skipped.
fn parse_marker(bytes: &[u8]) -> Vec<(u64, u64)> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    text.split(',')
        .filter_map(|entry| {
            let (window_ms, index) = entry.split_once(':')?;
            Some((window_ms.parse().ok()?, index.parse().ok()?))
        })
        .take(MARKER_ENTRIES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::store::{Encoding, MemoryStore};

    fn policy(text: &str) -> RatePolicy {
        RatePolicy::parse(text).unwrap()
    }

    #[test]
    fn parses_rates_units_and_bursts() {
        assert_eq!(
            policy("10/s"),
            RatePolicy {
                rate: 10,
                unit: Unit::Second,
                quota: 10,
                window_ms: 1000
            }
        );
        assert_eq!((policy("600/min").quota, policy("600/min").window_ms), (600, 60_000));
        assert_eq!((policy(" 100/h ").quota, policy("100/h").window_ms), (100, 3_600_000));
        let burst = policy("100/min burst 10");
        assert_eq!((burst.quota, burst.window_ms), (10, 6000));
        assert_eq!(burst.describe(), "100/min burst 10");
        assert_eq!(policy("10/s burst 30").window_ms, 3000);
        assert_eq!(burst.policy_header(), "\"tenant\";q=10;w=6");
        // A small burst spreads requests out; the header then states the rate per unit.
        let smooth = policy("10/s burst 1");
        assert_eq!((smooth.quota, smooth.window_ms), (1, 100));
        assert_eq!(smooth.policy_header(), "\"tenant\";q=10;w=1");
        assert_eq!(policy("3/s burst 1").window_ms, 333, "rounded to the millisecond");
    }

    #[test]
    fn refuses_what_it_cannot_count() {
        for (text, says) in [
            ("", "is empty"),
            ("10", "not N/unit"),
            ("10/fortnight", "unit 'fortnight'"),
            ("0/s", "rate is not a whole number"),
            ("-1/s", "rate is not a whole number"),
            ("1.5/s", "rate is not a whole number"),
            ("10/s burst", "not N/unit or N/unit burst B"),
            ("10/s burst 0", "burst is not"),
            ("1000/s burst 1", "under 10 ms"),
            ("10/s bust 20", "not N/unit or N/unit burst B"),
            ("99999999999/s", "rate is not"),
        ] {
            let problem = RatePolicy::parse(text).unwrap_err();
            assert!(problem.contains(says), "{text}: {problem}");
        }
    }

    #[test]
    fn admits_the_quota_then_refuses_with_a_retry_after() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let limit = policy("3/min");
        // The start of a minute.
        let start = 1_800_000_000_000;
        let states: Vec<RateState> = (0..4)
            .map(|i| check(&mut store, "ns:rate:v1:shop", &limit, start + i).unwrap())
            .collect();
        assert_eq!(
            states.iter().map(|s| (s.admitted, s.remaining)).collect::<Vec<_>>(),
            vec![(true, 2), (true, 1), (true, 0), (false, 0)]
        );
        assert_eq!(states[0].reset_s, 60);
        // Full: the next request fits as soon as the next window has begun, and the one after
        // it a third of a window later (the previous window's three count for the part still
        // within a minute).
        assert_eq!(states[3].reset_s, 60);
        assert!(!state_at(&mut store, &limit, start + 60_000).admitted);
        assert!(state_at(&mut store, &limit, start + 60_001).admitted);
        assert!(!state_at(&mut store, &limit, start + 60_000 + 20_000).admitted);
        assert!(state_at(&mut store, &limit, start + 60_000 + 20_001).admitted);
    }

    fn state_at(store: &mut MemoryStore, limit: &RatePolicy, now: u64) -> RateState {
        check(store, "ns:rate:v1:shop", limit, now).unwrap()
    }

    #[test]
    fn a_steady_flood_is_admitted_evenly() {
        let mut store = MemoryStore::new(Encoding::Redis);
        let limit = policy("10/s");
        let start = 1_800_000_000_000;
        // 300 a second for three seconds.
        let admitted: Vec<u64> = (0..900u64)
            .map(|i| start + i * 1000 / 300)
            .filter(|&now| state_at(&mut store, &limit, now).admitted)
            .collect();
        // The first second admits its ten at once; after that one every 100 ms.
        let later: Vec<u64> = admitted.iter().copied().filter(|&t| t >= start + 1000).collect();
        assert!((19..=21).contains(&later.len()), "{later:?}");
        for pair in later.windows(2) {
            assert!(pair[1] - pair[0] >= 90, "{later:?}");
        }
    }

    #[test]
    fn a_refusal_under_a_flood_writes_nothing() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let limit = policy("1/h");
        let now = 1_800_000_000_000;
        assert!(state_at(&mut store, &limit, now).admitted);
        let before = store.values.clone();
        store.calls = 0;
        assert!(!state_at(&mut store, &limit, now + 1).admitted);
        assert_eq!(store.values, before);
        assert_eq!(store.calls, 1, "one read: the current window is full");
    }

    #[test]
    fn the_window_opener_deletes_what_can_no_longer_count() {
        let mut store = MemoryStore::new(Encoding::Sqlite);
        let prefix = "ns:rate:v1:shop";
        let second = policy("5/s");
        let base = 1_800_000_000_000u64;
        for offset in [0, 1_000, 2_000, 30_000] {
            state_at(&mut store, &second, base + offset);
        }
        let index = (base + 30_000) / 1000;
        assert_eq!(
            store.keys_under(prefix),
            vec![format!("{prefix}:1000ms:{index}").as_str(), "ns:rate:v1:shop:last"]
        );
        // A changed limit: the old size's window still counts until the window after it ends,
        // and is deleted by the first window opened after that.
        state_at(&mut store, &policy("5/min"), base + 31_000);
        let minute = (base + 31_000) / 60_000;
        assert_eq!(
            store.keys_under(prefix),
            vec![
                format!("{prefix}:1000ms:{index}").as_str(),
                format!("{prefix}:60000ms:{minute}").as_str(),
                "ns:rate:v1:shop:last"
            ]
        );
        state_at(&mut store, &policy("5/min"), (minute + 1) * 60_000);
        assert_eq!(
            store.keys_under(prefix),
            vec![
                format!("{prefix}:60000ms:{minute}").as_str(),
                format!("{prefix}:60000ms:{}", minute + 1).as_str(),
                "ns:rate:v1:shop:last"
            ]
        );
    }

    #[test]
    fn a_late_opener_never_deletes_a_window_that_still_counts() {
        // Replica B's clock is 300 ms behind A's. After a quiet spell A opens window k; then B
        // takes the first request of window k - 1 (by its clock) and opens it.
        let mut store = MemoryStore::new(Encoding::Redis);
        let limit = policy("2/s");
        let k = 1_800_000_000_000u64 / 1000 + 100;
        for _ in 0..2 {
            assert!(state_at(&mut store, &limit, k * 1000 + 100).admitted);
        }
        assert!(state_at(&mut store, &limit, k * 1000 - 200).admitted, "B, in k - 1");
        // A's window k still holds its two: a third is refused.
        assert!(!state_at(&mut store, &limit, k * 1000 + 150).admitted);
    }
}
