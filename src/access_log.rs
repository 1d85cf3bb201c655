//! One JSON line per request on stdout, written when the response is finished.

use serde::Serialize;

use crate::config::LogLevel;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLog<'a> {
    pub time: &'a str,
    pub level: &'static str,
    pub request_id: &'a str,
    pub method: &'a str,
    pub host: Option<&'a str>,
    /// Without the query string, which may carry tokens.
    pub path: &'a str,
    pub route: Option<&'static str>,
    pub worker: Option<&'a str>,
    pub status: u16,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// The level of a request's line: the dispatcher's own failures and the worker's are errors.
pub fn level_for(status: u16) -> LogLevel {
    if status >= 500 { LogLevel::Error } else { LogLevel::Info }
}

pub fn path_only(path_and_query: &str) -> &str {
    path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path)
}

impl AccessLog<'_> {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an access log line always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_every_field_and_no_query() {
        let line = AccessLog {
            time: "t",
            level: "info",
            request_id: "rid",
            method: "GET",
            host: Some("hello.localhost"),
            path: path_only("/x?token=secret"),
            route: Some("subdomain"),
            worker: Some("hello"),
            status: 200,
            duration_ms: 1.5,
            error: None,
        }
        .to_line();
        assert!(!line.contains("secret"));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        for key in [
            "time",
            "level",
            "requestId",
            "method",
            "host",
            "path",
            "route",
            "worker",
            "status",
            "durationMs",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert_eq!(value["path"], "/x");
        assert_eq!(level_for(502), LogLevel::Error);
        assert_eq!(level_for(404), LogLevel::Info);
    }
}
