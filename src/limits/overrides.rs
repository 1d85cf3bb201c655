//! One worker's limits from the dispatcher's own `worker_limits` table (PostgreSQL, or the
//! embedded SQLite database), read when `limit_overrides=database`: an operator changes a
//! tenant's quota with one `UPDATE`, and the dispatcher sees it within the cache's TTL.
//!
//! A row holds `rate_limit` and `breaker`, each in the syntax of an entry of `rate_limits` and
//! `breakers` (`10/s`, `100/min burst 10`, `off`; `5/30s`, `off`), or NULL to keep the
//! settings'. A row that does not parse is ignored whole (the worker keeps the settings'
//! limits) and the lookup that read it logs one warning; it never fails a request.
//!
//! Answers are cached in the key-value store under the worker's name, found and not found
//! alike: only located workers are ever looked up, so there are no more entries than workers.

use super::breaker::BreakerPolicy;
use super::rate::RatePolicy;

/// Always exactly one row (Spin 4.0.0-4.0.2 never return from a Postgres query that yields
/// none): a join of a one-row table with the worker's row, NULLs when it has none. `$1` is the
/// worker's (lowercase) name; the migration indexes `lower(worker)`.
pub const POSTGRES_LOOKUP: &str = "SELECT w.rate_limit, w.breaker FROM (SELECT 1) AS one \
     LEFT JOIN worker_limits w ON lower(w.worker) = $1";

/// The same for the embedded SQLite database.
pub const SQLITE_LOOKUP: &str = "SELECT w.rate_limit, w.breaker FROM (SELECT 1) AS one \
     LEFT JOIN worker_limits w ON lower(w.worker) = ?1";

/// A row's columns as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub rate_limit: Option<String>,
    pub breaker: Option<String>,
}

/// A row, parsed. `None`: the column is NULL (the settings decide); `Some(None)`: `off`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Override {
    pub rate: Option<Option<RatePolicy>>,
    pub breaker: Option<Option<BreakerPolicy>>,
}

impl Row {
    /// The override this row makes, or why it makes none (for the warning).
    pub fn parse(&self) -> Result<Override, String> {
        Ok(Override {
            rate: column(&self.rate_limit, "rate_limit", RatePolicy::parse)?,
            breaker: column(&self.breaker, "breaker", BreakerPolicy::parse)?,
        })
    }
}

fn column<T>(
    value: &Option<String>,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<Option<T>>, String> {
    match value.as_deref().map(str::trim) {
        None => Ok(None),
        Some("off") => Ok(Some(None)),
        Some(text) => parse(text)
            .map(|policy| Some(Some(policy)))
            .map_err(|problem| format!("{name}: {problem}")),
    }
}

/// A cached answer: the override (none, when the worker has no usable row) until
/// `expires_at` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedOverride {
    pub row: Override,
    pub expires_at: u64,
}

impl CachedOverride {
    /// `<expires_at>\t<rate_limit>\t<breaker>`, each column as the setting writes it (`-` for
    /// NULL), so whatever spacing the row had, the entry reads back.
    pub fn encode(&self) -> Vec<u8> {
        fn column<T>(value: &Option<Option<T>>, describe: impl Fn(&T) -> String) -> String {
            match value {
                None => "-".into(),
                Some(None) => "off".into(),
                Some(Some(policy)) => describe(policy),
            }
        }
        format!(
            "{}\t{}\t{}",
            self.expires_at,
            column(&self.row.rate, RatePolicy::describe),
            column(&self.row.breaker, BreakerPolicy::describe)
        )
        .into_bytes()
    }

    /// The entry, if it is one the dispatcher wrote and its values still parse; anything else is
    /// a miss.
    pub fn decode(bytes: &[u8]) -> Option<CachedOverride> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split('\t');
        let expires_at = parts.next()?.parse().ok()?;
        let column = |value: &str| (value != "-").then(|| value.to_string());
        let row = Row {
            rate_limit: column(parts.next()?),
            breaker: column(parts.next()?),
        };
        if parts.next().is_some() {
            return None;
        }
        Some(CachedOverride {
            row: row.parse().ok()?,
            expires_at,
        })
    }

    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rate_limit: Option<&str>, breaker: Option<&str>) -> Row {
        Row {
            rate_limit: rate_limit.map(str::to_string),
            breaker: breaker.map(str::to_string),
        }
    }

    #[test]
    fn a_row_overrides_what_it_gives() {
        let parsed = row(Some(" 10/s "), None).parse().unwrap();
        assert_eq!(parsed.rate.unwrap().unwrap().describe(), "10/s");
        assert_eq!(parsed.breaker, None);
        let off = row(Some("off"), Some("off")).parse().unwrap();
        assert_eq!((off.rate, off.breaker), (Some(None), Some(None)));
        assert_eq!(row(None, None).parse().unwrap(), Override::default());
    }

    #[test]
    fn a_bad_row_says_which_column() {
        assert!(
            row(Some("banana"), None)
                .parse()
                .unwrap_err()
                .starts_with("rate_limit: ")
        );
        assert!(
            row(Some("1/s"), Some("5/never"))
                .parse()
                .unwrap_err()
                .starts_with("breaker: ")
        );
    }

    #[test]
    fn cache_entries_round_trip_and_refuse_junk() {
        for (rate, breaker) in [
            (Some("100/min burst 10"), Some("5/30s")),
            (None, Some("off")),
            (Some("10/s\tburst\t5"), None),
            (Some(" 7/h  burst 1"), Some("2/1min")),
        ] {
            let entry = CachedOverride {
                row: row(rate, breaker).parse().unwrap(),
                expires_at: 42,
            };
            assert_eq!(CachedOverride::decode(&entry.encode()), Some(entry.clone()), "{rate:?}");
        }
        for junk in [&b""[..], b"42", b"42\t1/s", b"42\tbanana\t-", b"x\t-\t-", b"1\t-\t-\t-"] {
            assert_eq!(CachedOverride::decode(junk), None, "{junk:?}");
        }
        assert!(CachedOverride::decode(b"10\t-\t-").unwrap().is_fresh(9));
        assert!(!CachedOverride::decode(b"10\t-\t-").unwrap().is_fresh(10));
    }
}
