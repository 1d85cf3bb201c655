//! Every line the dispatcher logs, built in one place: one JSON object per line on stdout, which
//! Spin collects as the component's log. The fields are documented (and checked by the tests
//! against every line they read) in `docs/log-line.schema.json`:
//!
//! - every line: `time`, `level`, `requestId`;
//! - the line each request ends with: `method`, `host`, `path`, `route`, `worker`, `location`
//!   (each `null` when not known), `status`, `durationMs`, and where they apply `error` (the
//!   problem's code), `limit` and `breaker` (the tenant's decisions), `traceId` (the client's
//!   trace, when its context is valid: `crate::pipeline::trace`) and the cause of a
//!   configuration error (`variable`, `setting`, `problem`). It is the one line with `status`;
//! - any other line, a warning or an error about something the request met: a `message`, and
//!   the fields that say what (`host`, `worker`, `reason`, `problem`, `cause`).
//!
//! The request's line has no `message`: every byte of it is written on every request, and the
//! field alone cost 700 of the dispatcher's ~46,000 instructions per request (the test host's
//! count).

use serde::{Serialize, Serializer};

use crate::config::{self, LogLevel, SETTINGS_VARIABLE};
use crate::pipeline::world::Warning;

/// One log line. Fields that are `None` are left out; the request fields that may be unknown
/// are `Some(None)` and print `null`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine<'a> {
    pub time: &'a str,
    pub level: &'static str,
    pub request_id: &'a str,
    /// What a line other than the request's is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Option<&'a str>>,
    /// Without the query string, which may carry tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Option<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<Option<&'a str>>,
    /// `local` (a component of this app) or `remote`, for a request that reached a worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Option<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Printed as `durationMs`, in milliseconds to two decimals.
    #[serde(
        rename = "durationMs",
        serialize_with = "milliseconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_ns: Option<u64>,
    /// The problem's stable code, when the request ended in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The tenant's rate limit: `admitted`, `refused`, `not_counted` or `store_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<&'static str>,
    /// The tenant's circuit breaker: `closed`, `open`, `probe` or `store_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<&'static str>,
    /// The client's trace (its valid `traceparent`), which Spin's exported spans continue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
    /// The application variable that is unusable or cannot be read...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<&'a str>,
    /// ...and, when it is `settings`, which of its keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting: Option<&'a str>,
    /// What is wrong with a value (never the value itself when it could be a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<&'a str>,
    /// What a host or database said when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'a str>,
    /// Why something was not followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> LogLine<'a> {
    /// The JSON line. (serde_json rather than hand-written formatting: `scripts/bench micro`
    /// measured the hand-written line 0.3 µs faster, under the 2 µs a hand-written
    /// optimisation must save to stay.)
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a log line always serialises")
    }

    /// Names the variable and the setting a configuration error is about: a key of `settings`
    /// is reported as `"variable": "settings", "setting": <key>`.
    pub fn with_cause(mut self, variable: &'a str, problem: Option<&'a str>) -> LogLine<'a> {
        if config::is_setting(variable) {
            self.variable = Some(SETTINGS_VARIABLE);
            self.setting = Some(variable);
        } else {
            self.variable = Some(variable);
        }
        self.problem = problem;
        self
    }
}

/// The level of a request's line: the dispatcher's own failures and the worker's are errors; a
/// request whose limits could not be checked (the store failed) is a warning. That warning is
/// this line, not one more: each request runs in a fresh instance, and the one place that could
/// remember having warned already is the store that failed.
pub fn level_for(status: u16, limit: Option<&str>, breaker: Option<&str>) -> LogLevel {
    if status >= 500 {
        LogLevel::Error
    } else if limit == Some("store_error") || breaker == Some("store_error") {
        LogLevel::Warn
    } else {
        LogLevel::Info
    }
}

pub fn path_only(path_and_query: &str) -> &str {
    path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path)
}

/// The line for a warning the pipeline met.
pub fn warning<'a>(time: &'a str, request_id: &'a str, warning: &'a Warning) -> LogLine<'a> {
    let line = LogLine {
        time,
        level: LogLevel::Warn.as_str(),
        request_id,
        ..LogLine::default()
    };
    match warning {
        Warning::DeployUrlNotAWorker { host, reason } => LogLine {
            message: Some("custom domain not served: its production_deploy_url is not <worker>.<base_domain>"),
            host: Some(Some(host)),
            reason: Some(reason),
            ..line
        },
        Warning::InvalidLimitRow { worker, problem } => LogLine {
            message: Some("a worker_limits row is invalid and ignored: the settings' limits apply"),
            worker: Some(Some(worker)),
            problem: Some(problem),
            ..line
        },
        Warning::LimitRowsUnreadable { worker, cause } => LogLine {
            message: Some("worker_limits cannot be read: the last known row (or the settings) applies"),
            worker: Some(Some(worker)),
            cause: Some(cause),
            ..line
        },
        Warning::RemoteWorkerFailed { worker, cause } => LogLine {
            message: Some("the remote worker could not be reached or failed"),
            worker: Some(Some(worker)),
            cause: Some(cause),
            ..line
        },
        Warning::DatabaseFailed { cause } => LogLine {
            message: Some("the database failed a lookup"),
            level: LogLevel::Error.as_str(),
            cause: Some(cause),
            ..line
        },
    }
}

fn milliseconds<S: Serializer>(duration_ns: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    let hundredths = (duration_ns.unwrap_or(0) + 5_000) / 10_000;
    serializer.serialize_f64(hundredths as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_line<'a>(path: &'a str, error: Option<&'static str>) -> LogLine<'a> {
        LogLine {
            time: "t",
            level: "info",
            request_id: "rid",
            method: Some("GET"),
            host: Some(Some("hello.localhost")),
            path: Some(path_only(path)),
            route: Some(Some("subdomain")),
            worker: Some(Some("hello")),
            location: Some(None),
            status: Some(200),
            duration_ns: Some(1_504_999),
            error,
            ..LogLine::default()
        }
    }

    #[test]
    fn a_request_line_has_every_field_and_no_query() {
        let line = request_line("/x?token=secret", None).to_line();
        assert!(!line.contains("secret"));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "durationMs",
                "host",
                "level",
                "location",
                "method",
                "path",
                "requestId",
                "route",
                "status",
                "time",
                "worker"
            ]
        );
        assert_eq!(value["path"], "/x");
        assert_eq!(value["durationMs"], 1.5);
        assert_eq!(value["location"], serde_json::Value::Null);
        assert_eq!(level_for(502, None, None), LogLevel::Error);
        assert_eq!(level_for(404, None, None), LogLevel::Info);
        assert_eq!(level_for(200, Some("store_error"), None), LogLevel::Warn);
        assert_eq!(level_for(429, Some("refused"), Some("closed")), LogLevel::Info);
    }

    #[test]
    fn escapes_what_json_requires_and_keeps_the_rest() {
        let awkward = "/a\"b\\c\u{1}\n\tdé€😀";
        let line = request_line(awkward, Some("worker_failed")).to_line();
        assert!(!line.contains('\n'), "one line: {line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["path"], awkward);
        assert_eq!(value["error"], "worker_failed");
    }

    #[test]
    fn a_configuration_error_names_the_setting_or_the_variable() {
        let line = request_line("/", Some("configuration_error")).with_cause("rate_limits", Some("bad"));
        let value: serde_json::Value = serde_json::from_str(&line.to_line()).unwrap();
        assert_eq!(
            (&value["variable"], &value["setting"], &value["problem"]),
            (&"settings".into(), &"rate_limits".into(), &"bad".into())
        );
        let line = request_line("/", None).with_cause("postgres_url", None);
        let value: serde_json::Value = serde_json::from_str(&line.to_line()).unwrap();
        assert_eq!(value["variable"], "postgres_url");
        assert!(value.get("setting").is_none() && value.get("problem").is_none());
    }

    #[test]
    fn warnings_say_what_and_about_whom() {
        let warning = Warning::InvalidLimitRow {
            worker: "shop".into(),
            problem: "rate_limit: bad".into(),
        };
        let value: serde_json::Value = serde_json::from_str(&super::warning("t", "rid", &warning).to_line()).unwrap();
        assert_eq!(value["level"], "warn");
        assert_eq!(value["worker"], "shop");
        assert!(value.get("status").is_none() && value.get("method").is_none());
    }
}
