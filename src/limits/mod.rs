//! Per-tenant limits: a rate limit ([`rate`]) and a circuit breaker ([`breaker`]) for each worker,
//! from the `rate_limits` and `breakers` settings, optionally overridden per worker by a row of
//! the dispatcher's own `worker_limits` table ([`overrides`]). All off by default: with none of
//! the settings given, a request does nothing more than see that they are absent.
//!
//! `rate_limits` is a comma-separated list of `worker:limit` entries, `*` for every worker not
//! named, where a limit is `N/s`, `N/min` or `N/h`, optionally followed by `burst B`
//! ([`rate::RatePolicy`]), or `off`. `breakers` is the same with `failures/duration` (as
//! `5/30s`) or `off`. A worker is counted by its name, whichever way its requests come in.

pub mod breaker;
pub mod overrides;
pub mod rate;
pub mod store;

use breaker::BreakerPolicy;
use rate::RatePolicy;

use crate::pipeline::worker_name::WorkerName;

/// A setting's entries: the default (`*`) and the named workers. `None` as a value is `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<T> {
    default: Option<T>,
    named: Vec<(String, Option<T>)>,
}

impl<T: Copy> Table<T> {
    fn empty() -> Table<T> {
        Table {
            default: None,
            named: Vec::new(),
        }
    }

    /// Parses `worker:value, *:value, ...`. The whole value or nothing: an error names the
    /// entry, so nothing is half-applied.
    fn parse(text: &str, reserved: &[String], value: impl Fn(&str) -> Result<T, String>) -> Result<Table<T>, String> {
        let mut table = Table::empty();
        let mut default_given = false;
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (name, spec) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry '{entry}' is not worker:limit"))?;
            let (name, spec) = (name.trim(), spec.trim());
            let parsed = if spec == "off" {
                None
            } else {
                Some(value(spec).map_err(|problem| format!("entry '{name}': {problem}"))?)
            };
            if name == "*" {
                if default_given {
                    return Err("names '*' twice".into());
                }
                default_given = true;
                table.default = parsed;
                continue;
            }
            let worker = WorkerName::parse(name, reserved)
                .map_err(|problem| format!("entry '{name}': {}", problem.explain()))?;
            if table.named.iter().any(|(named, _)| named == worker.as_str()) {
                return Err(format!("names '{worker}' twice"));
            }
            table.named.push((worker.to_string(), parsed));
        }
        Ok(table)
    }

    fn get(&self, worker: &str) -> Option<T> {
        match self.named.iter().find(|(named, _)| named == worker) {
            Some((_, value)) => *value,
            None => self.default,
        }
    }

    fn is_empty(&self) -> bool {
        self.default.is_none() && self.named.iter().all(|(_, value)| value.is_none())
    }
}

/// What the dispatcher does when the store that keeps the counters fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// Serve the request unlimited (the default): a limiter must not take every tenant down
    /// with it.
    Open,
    /// Refuse it (`503 rate_limiter_unavailable`).
    Closed,
}

/// The limit settings, parsed: given only when at least one of them is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    pub rates: Table<RatePolicy>,
    pub breakers: Table<BreakerPolicy>,
    /// Whether the `worker_limits` table is read (`limit_overrides=database`).
    pub overrides: bool,
    pub on_store_error: OnStoreError,
}

/// Why a limit setting is unusable: the setting and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    pub setting: &'static str,
    pub problem: String,
}

impl LimitSettings {
    /// `None` when no limit is configured at all: the request path then does nothing. `get`
    /// gives a setting's value if it was given.
    pub fn from_settings<'a>(
        get: impl Fn(&'static str) -> Option<&'a str>,
        reserved: &[String],
    ) -> Result<Option<LimitSettings>, SettingProblem> {
        let given = |name: &'static str| get(name).map(str::trim).filter(|value| !value.is_empty());
        let (rates, breakers, overrides) = (given("rate_limits"), given("breakers"), given("limit_overrides"));
        let fail = |setting: &'static str| move |problem: String| SettingProblem { setting, problem };
        let on_store_error = match given("limits_on_store_error").unwrap_or("open") {
            "open" => OnStoreError::Open,
            "closed" => OnStoreError::Closed,
            _ => return Err(fail("limits_on_store_error")("not 'open' or 'closed'".into())),
        };
        if rates.is_none() && breakers.is_none() && overrides.is_none_or(|value| value == "off") {
            return Ok(None);
        }
        let rates = match rates {
            Some(text) => Table::parse(text, reserved, RatePolicy::parse).map_err(fail("rate_limits"))?,
            None => Table::empty(),
        };
        let breakers = match breakers {
            Some(text) => Table::parse(text, reserved, BreakerPolicy::parse).map_err(fail("breakers"))?,
            None => Table::empty(),
        };
        let overrides = match overrides.unwrap_or("off") {
            "off" => false,
            "database" => true,
            _ => return Err(fail("limit_overrides")("not 'off' or 'database'".into())),
        };
        Ok(Some(LimitSettings {
            rates,
            breakers,
            overrides,
            on_store_error,
        }))
    }

    /// `worker`'s limits: its override row's where it has one, else its entry's in the
    /// settings, else the `*` entry's.
    pub fn policy_for(&self, worker: &WorkerName, row: Option<&overrides::Override>) -> TenantPolicy {
        let worker = worker.as_str();
        TenantPolicy {
            rate: match row.and_then(|row| row.rate) {
                Some(overridden) => overridden,
                None => self.rates.get(worker),
            },
            breaker: match row.and_then(|row| row.breaker) {
                Some(overridden) => overridden,
                None => self.breakers.get(worker),
            },
        }
    }

    /// Whether any worker can have a breaker (so `/health/detailed` has some to list).
    pub fn has_breakers(&self) -> bool {
        self.overrides || !self.breakers.is_empty()
    }
}

/// The limits that apply to one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenantPolicy {
    pub rate: Option<RatePolicy>,
    pub breaker: Option<BreakerPolicy>,
}

impl TenantPolicy {
    pub fn is_unlimited(&self) -> bool {
        self.rate.is_none() && self.breaker.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&'static str, &'static str)]) -> Result<Option<LimitSettings>, SettingProblem> {
        LimitSettings::from_settings(
            |name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| *value),
            &["billing".to_string()],
        )
    }

    fn worker(name: &str) -> WorkerName {
        WorkerName::parse(name, &[]).unwrap()
    }

    #[test]
    fn nothing_given_is_nothing_to_do() {
        assert_eq!(settings(&[]), Ok(None));
        assert_eq!(settings(&[("rate_limits", " "), ("limit_overrides", "off")]), Ok(None));
        assert_eq!(settings(&[("limits_on_store_error", "closed")]), Ok(None));
        assert_eq!(settings(&[("limits_on_store_error", " open ")]), Ok(None));
    }

    #[test]
    fn a_named_entry_beats_the_default_and_off_turns_it_off() {
        let limits = settings(&[
            ("rate_limits", "*:100/min, shop:10/s burst 20 ,Free:off"),
            ("breakers", "*:5/30s"),
        ])
        .unwrap()
        .unwrap();
        let shop = limits.policy_for(&worker("shop"), None);
        assert_eq!(shop.rate.unwrap().describe(), "10/s burst 20");
        assert_eq!(shop.breaker.unwrap().describe(), "5/30s");
        assert_eq!(limits.policy_for(&worker("free"), None).rate, None);
        assert_eq!(
            limits.policy_for(&worker("other"), None).rate.unwrap().describe(),
            "100/min"
        );
        assert_eq!(limits.on_store_error, OnStoreError::Open);
        let only_named = settings(&[("rate_limits", "shop:1/s")]).unwrap().unwrap();
        assert!(only_named.policy_for(&worker("other"), None).is_unlimited());
    }

    #[test]
    fn an_override_row_beats_the_settings() {
        let limits = settings(&[("rate_limits", "*:100/min"), ("limit_overrides", "database")])
            .unwrap()
            .unwrap();
        let row = overrides::Override {
            rate: Some(Some(RatePolicy::parse("5/s").unwrap())),
            breaker: None,
        };
        assert_eq!(
            limits.policy_for(&worker("shop"), Some(&row)).rate.unwrap().describe(),
            "5/s"
        );
        let off = overrides::Override {
            rate: Some(None),
            breaker: Some(Some(BreakerPolicy::parse("2/10s").unwrap())),
        };
        let policy = limits.policy_for(&worker("shop"), Some(&off));
        assert_eq!((policy.rate, policy.breaker.unwrap().failures), (None, 2));
    }

    #[test]
    fn a_malformed_setting_names_itself_and_the_bad_part() {
        for (pairs, setting, says) in [
            (
                &[("rate_limits", "shop:10/s, echo:3/fortnight")][..],
                "rate_limits",
                "entry 'echo': '3/fortnight': unit",
            ),
            (
                &[("rate_limits", "shop")],
                "rate_limits",
                "entry 'shop' is not worker:limit",
            ),
            (&[("rate_limits", "a_b:1/s")], "rate_limits", "entry 'a_b'"),
            (&[("rate_limits", "billing:1/s")], "rate_limits", "reserved"),
            (
                &[("rate_limits", "shop:1/s,Shop:2/s")],
                "rate_limits",
                "names 'shop' twice",
            ),
            (&[("rate_limits", "*:1/s,*:off")], "rate_limits", "names '*' twice"),
            (
                &[("breakers", "*:5")],
                "breakers",
                "entry '*': '5' is not failures/duration",
            ),
            (
                &[("limit_overrides", "yes")],
                "limit_overrides",
                "not 'off' or 'database'",
            ),
            (
                &[("rate_limits", "*:1/s"), ("limits_on_store_error", "maybe")],
                "limits_on_store_error",
                "not 'open' or 'closed'",
            ),
            // Checked even with no limit given: a typo must not wait for the day limits are on.
            (
                &[("limits_on_store_error", "clsoed")],
                "limits_on_store_error",
                "not 'open' or 'closed'",
            ),
        ] {
            let problem = settings(pairs).unwrap_err();
            assert_eq!(problem.setting, setting, "{pairs:?}");
            assert!(problem.problem.contains(says), "{pairs:?}: {}", problem.problem);
        }
    }
}
