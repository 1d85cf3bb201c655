//! One JSON line per request on stdout, written when the response is finished.

use crate::config::LogLevel;
use crate::time::push_digits;

#[derive(Debug)]
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
    /// `local` (a component of this app) or `remote`, for a request that reached a worker.
    pub location: Option<&'static str>,
    pub status: u16,
    /// Printed as `durationMs`, in milliseconds to two decimals.
    pub duration_ns: u64,
    /// Left out of the line when `None`.
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
    /// The JSON line, written by hand rather than through serde_json: it is built on every
    /// request, in an instance that lives for one request, and serde_json's float and string
    /// formatting was a measurable share of the dispatcher's time (`scripts/bench`). The tests
    /// parse it back with serde_json.
    pub fn to_line(&self) -> String {
        let mut line = String::with_capacity(256);
        line.push_str("{\"time\":");
        push_json_string(&mut line, self.time);
        for (key, value) in [
            ("level", Some(self.level)),
            ("requestId", Some(self.request_id)),
            ("method", Some(self.method)),
            ("host", self.host),
            ("path", Some(self.path)),
            ("route", self.route),
            ("worker", self.worker),
            ("location", self.location),
        ] {
            push_key(&mut line, key);
            match value {
                Some(value) => push_json_string(&mut line, value),
                None => line.push_str("null"),
            }
        }
        push_key(&mut line, "status");
        push_digits(&mut line, self.status.into(), digit_count(self.status.into()));
        push_key(&mut line, "durationMs");
        let hundredths = (self.duration_ns + 5_000) / 10_000;
        push_digits(&mut line, hundredths / 100, digit_count(hundredths / 100));
        line.push('.');
        push_digits(&mut line, hundredths % 100, 2);
        if let Some(error) = self.error {
            push_key(&mut line, "error");
            push_json_string(&mut line, error);
        }
        line.push('}');
        line
    }
}

fn push_key(line: &mut String, key: &str) {
    line.push_str(",\"");
    line.push_str(key);
    line.push_str("\":");
}

/// A JSON string (RFC 8259): quotes, backslashes and control characters escaped.
fn push_json_string(line: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                line.push_str("\\u00");
                line.push(HEX[(u32::from(c) >> 4) as usize] as char);
                line.push(HEX[(u32::from(c) & 0xf) as usize] as char);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

fn digit_count(value: u64) -> u32 {
    value.checked_ilog10().map_or(1, |log| log + 1)
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
            location: Some("local"),
            status: 200,
            duration_ns: 1_504_999,
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
            "location",
            "status",
            "durationMs",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert_eq!(value["path"], "/x");
        assert_eq!(value["durationMs"], 1.5);
        assert_eq!(value["status"], 200);
        assert!(value.get("error").is_none());
        assert_eq!(level_for(502), LogLevel::Error);
        assert_eq!(level_for(404), LogLevel::Info);
    }

    #[test]
    fn escapes_what_json_requires_and_keeps_the_rest() {
        let awkward = "/a\"b\\c\u{1}\n\tdé€😀";
        let line = AccessLog {
            time: "2026-11-27T00:00:00.000Z",
            level: "error",
            request_id: "rid",
            method: "GET",
            host: None,
            path: awkward,
            route: None,
            worker: None,
            location: None,
            status: 502,
            duration_ns: 12_345_678_901,
            error: Some("worker_failed"),
        }
        .to_line();
        assert!(!line.contains('\n'), "one line: {line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["path"], awkward);
        assert_eq!(value["host"], serde_json::Value::Null);
        assert_eq!(value["durationMs"], 12345.68);
        assert_eq!(value["error"], "worker_failed");
        assert_eq!(value["status"], 502);
    }
}
