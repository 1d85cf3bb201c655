//! The adversarial corpus (`tests/corpus`): raw HTTP/1.1 requests kept as files, replayed byte
//! for byte over real TCP against the app on both hosts, each compared with its expectations in
//! `tests/corpus/expectations.toml`. Every mismatch is reported, not just the first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use libra_test_host::harness::{RawExchange, RawRead, exchange_raw_responses};
use libra_test_host::project_root;
use serde::Deserialize;
use serde_json::Value;

use crate::support::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    /// Variable sets the cases run under, by name; `default` is the plain test app.
    #[serde(default)]
    app: BTreeMap<String, BTreeMap<String, String>>,
    /// By file name, without `.http`.
    case: BTreeMap<String, Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Why the case is here and why this is the right answer.
    why: String,
    /// The one response's status; 0: the connection closes without a response.
    status: Option<u16>,
    /// The statuses of every response on the connection, in order (pipelined requests).
    responses: Option<Vec<u16>>,
    /// The problem document's `code` (of the first response).
    code: Option<String>,
    /// The `[app.<name>]` variables the case runs with.
    #[serde(default = "default_app")]
    app: String,
    /// The request stops sending its body on purpose: its answer comes after the app's
    /// `idle_timeout_ms`, which the case's app must set.
    #[serde(default)]
    stall: bool,
    /// The last response starts but its body is cut short.
    #[serde(default)]
    truncated: bool,
    /// With `truncated`: the failure may also come before hyper has written the head, and the
    /// connection then closes without a response. Either way no complete-looking body arrives.
    #[serde(default)]
    may_close_first: bool,
    /// hyper or Spin answers before the dispatcher runs: the response is not the dispatcher's
    /// (it has no `X-Request-Id`, which every answer of the dispatcher has).
    #[serde(default)]
    before_dispatcher: bool,
    /// Hosts that are known to get this case wrong (`spin`, `test_host`), each with what it does
    /// instead and why. The expectations stay what is right; such a host's mismatch is reported
    /// but does not fail the run, and the run fails once the host gets it right, so the entry is
    /// removed then.
    #[serde(default)]
    known_wrong: BTreeMap<String, String>,
    /// The requests are `HEAD`: responses carry no content.
    #[serde(default)]
    head: bool,
    /// Interim (1xx) statuses before the first response.
    interim: Option<Vec<u16>>,
    /// Header names the `echo` worker must report receiving, or must not.
    #[serde(default)]
    worker_sees: Vec<String>,
    #[serde(default)]
    worker_must_not_see: Vec<String>,
    /// Header values the `echo` worker must report (repeated headers joined by ", ").
    #[serde(default)]
    worker_header: BTreeMap<String, String>,
    /// Text that must appear nowhere in the headers the `echo` worker received.
    #[serde(default)]
    worker_must_not_see_text: Vec<String>,
    worker_method: Option<String>,
    worker_path: Option<String>,
    /// The query `echo` saw; `""` for none.
    worker_query: Option<String>,
    worker_body_bytes: Option<u64>,
    /// Response header names the client must get, or must not (first response).
    #[serde(default)]
    client_sees: Vec<String>,
    #[serde(default)]
    client_must_not_see: Vec<String>,
    /// Response header values (repeated headers joined by ", ").
    #[serde(default)]
    client_header: BTreeMap<String, String>,
}

fn default_app() -> String {
    "default".into()
}

fn corpus_dir() -> PathBuf {
    project_root().join("tests/corpus")
}

fn load() -> (Corpus, BTreeMap<String, Vec<u8>>) {
    let text = std::fs::read_to_string(corpus_dir().join("expectations.toml")).expect("expectations.toml");
    let corpus: Corpus = toml::from_str(&text).unwrap_or_else(|e| panic!("expectations.toml: {e}"));
    let mut requests = BTreeMap::new();
    for entry in std::fs::read_dir(corpus_dir().join("requests")).expect("tests/corpus/requests") {
        let path = entry.expect("readable").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let stem = name
            .strip_suffix(".http")
            .unwrap_or_else(|| panic!("tests/corpus/requests/{name}: only .http files belong here"));
        requests.insert(stem.to_string(), std::fs::read(&path).expect("readable"));
    }
    let files: Vec<&String> = requests.keys().collect();
    let cases: Vec<&String> = corpus.case.keys().collect();
    assert_eq!(
        files, cases,
        "every request file needs exactly one [case.<name>], and the reverse"
    );
    for (name, case) in &corpus.case {
        assert!(
            case.status.is_some() != case.responses.is_some(),
            "{name}: give `status` or `responses`"
        );
        assert!(
            case.app == "default" || corpus.app.contains_key(&case.app),
            "{name}: no [app.{}]",
            case.app
        );
        if case.stall {
            assert!(
                corpus
                    .app
                    .get(&case.app)
                    .is_some_and(|v| v.contains_key("idle_timeout_ms")),
                "{name}: a stalling case needs an app with a short idle_timeout_ms"
            );
        }
        assert!(!case.why.trim().is_empty(), "{name}: say why");
        assert!(
            !case.may_close_first || case.truncated,
            "{name}: may_close_first goes with truncated"
        );
        for (host, reason) in &case.known_wrong {
            assert!(
                matches!(host.as_str(), "spin" | "test_host") && !reason.trim().is_empty(),
                "{name}: known_wrong is `spin` or `test_host`, each with what it does instead"
            );
        }
    }
    (corpus, requests)
}

on_both_hosts!(replay);
async fn replay(host: HostKind) {
    let (corpus, requests) = load();
    assert!(requests.len() >= 80, "the corpus has {} requests", requests.len());
    let mut apps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, case) in &corpus.case {
        apps.entry(case.app.as_str()).or_default().push(name.as_str());
    }
    // The apps run side by side; each replays its cases one after the other.
    let runs = apps.into_iter().map(|(app_name, names)| {
        let variables = corpus.app.get(app_name).cloned().unwrap_or_default();
        let (corpus, requests) = (&corpus, &requests);
        async move {
            let mut spec = spec();
            for (name, value) in &variables {
                spec = spec.variable(name, value);
            }
            let app = start(host, spec).await;
            let mut mismatches = Vec::new();
            let mut known = Vec::new();
            for name in names {
                let case = &corpus.case[name];
                let read = RawRead {
                    bound: Duration::from_secs(15),
                    stop_after: None,
                    head: case.head,
                };
                let exchange = exchange_raw_responses(app.addr, &requests[name], read)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: cannot connect: {e:#}"));
                let problems = check(case, &exchange);
                if std::env::var("LIBRA_CORPUS_SHOW").is_ok_and(|filter| name.contains(filter.as_str())) {
                    eprintln!("{host:?} {name}: {}\n{}", summary(&exchange), dump(&exchange));
                }
                let report = format!(
                    "{name}.http [app {app_name}]: {}\n    got: {}",
                    problems.join("; "),
                    summary(&exchange)
                );
                match (case.known_wrong.get(host_key(host)), problems.is_empty()) {
                    (None, true) => {}
                    (None, false) => mismatches.push(report),
                    (Some(reason), false) => known.push(format!("{report}\n    known: {reason}")),
                    (Some(_), true) => mismatches.push(format!(
                        "{name}.http [app {app_name}]: now right on this host: remove its known_wrong.{}",
                        host_key(host)
                    )),
                }
            }
            (mismatches, known)
        }
    });
    let (mismatches, known): (Vec<Vec<String>>, Vec<Vec<String>>) =
        futures::future::join_all(runs).await.into_iter().unzip();
    let (mismatches, known): (Vec<String>, Vec<String>) = (
        mismatches.into_iter().flatten().collect(),
        known.into_iter().flatten().collect(),
    );
    if !known.is_empty() {
        eprintln!(
            "{} corpus requests are known to be answered wrongly on {host:?} (known_wrong in expectations.toml):\n  {}",
            known.len(),
            known.join("\n  ")
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} corpus requests did not get what tests/corpus/expectations.toml says ({host:?}):\n  {}",
        mismatches.len(),
        requests.len(),
        mismatches.join("\n  ")
    );
}

fn host_key(host: HostKind) -> &'static str {
    match host {
        HostKind::Spin => "spin",
        HostKind::TestHost => "test_host",
    }
}

/// The statuses, the first response's line and problem code, and how the connection ended.
fn summary(exchange: &RawExchange) -> String {
    let statuses: Vec<u16> = exchange.responses.iter().map(|r| r.status).collect();
    let first = match exchange.responses.first() {
        Some(response) => {
            let code = problem_code(response).map(|c| format!(" code={c}")).unwrap_or_default();
            let cut = if response.complete { "" } else { " (body cut short)" };
            format!("{:?}{code}{cut}", response.status_line)
        }
        None if exchange.unparsed.is_empty() => "closed without a response".to_string(),
        None => format!(
            "unparsable: {:?}",
            String::from_utf8_lossy(&exchange.unparsed[..exchange.unparsed.len().min(80)])
        ),
    };
    let end = match (&exchange.closed, &exchange.error) {
        (true, None) => "closed".to_string(),
        (true, Some(error)) | (false, Some(error)) => format!("ended: {error}"),
        (false, None) => "still open at the bound".to_string(),
    };
    format!("statuses {statuses:?}, first {first}, {end}")
}

/// Every response in full (bodies cut at 2 KiB), for `LIBRA_CORPUS_SHOW`.
fn dump(exchange: &RawExchange) -> String {
    let mut out = String::new();
    for response in &exchange.responses {
        out.push_str(&format!(
            "  {} (interim {:?})\n",
            response.status_line, response.interim
        ));
        for (name, value) in &response.headers {
            out.push_str(&format!("  {name}: {value}\n"));
        }
        let body = String::from_utf8_lossy(&response.body[..response.body.len().min(2048)]).into_owned();
        out.push_str(&format!(
            "  [{} bytes{}] {body}\n",
            response.body.len(),
            if response.complete { "" } else { ", cut short" }
        ));
    }
    out
}

fn problem_code(response: &libra_test_host::harness::RawResponse) -> Option<String> {
    let json: Value = serde_json::from_slice(&response.body).ok()?;
    json["code"].as_str().map(str::to_string)
}

fn check(case: &Case, exchange: &RawExchange) -> Vec<String> {
    let mut problems = Vec::new();
    let expected: Vec<u16> = match (&case.responses, case.status) {
        (Some(list), _) => list.clone(),
        (None, Some(0)) => Vec::new(),
        (None, Some(status)) => vec![status],
        (None, None) => unreachable!("checked on load"),
    };
    let got: Vec<u16> = exchange.responses.iter().map(|r| r.status).collect();
    let closed_first = case.may_close_first && got.is_empty() && expected.len() == 1;
    if got != expected && !closed_first {
        problems.push(format!("statuses {got:?}, expected {expected:?}"));
    }
    if !exchange.closed {
        problems.push("the server did not close the connection".into());
    }
    if !exchange.unparsed.is_empty() {
        problems.push(format!("{} bytes that are no response", exchange.unparsed.len()));
    }
    for (i, response) in exchange.responses.iter().enumerate() {
        let last = i + 1 == exchange.responses.len();
        match (response.complete, case.truncated && last) {
            (false, false) => problems.push(format!("response {} was cut short", i + 1)),
            (true, true) => problems.push("the body arrived whole, expected it cut short".into()),
            _ => {}
        }
    }
    let Some(first) = exchange.responses.first() else {
        return problems;
    };
    let from_dispatcher = !first.header_all("x-request-id").is_empty();
    if case.before_dispatcher && from_dispatcher {
        problems.push("the dispatcher answered, expected hyper or Spin to answer before it runs".into());
    }
    if let Some(interim) = &case.interim
        && &first.interim != interim
    {
        problems.push(format!("interim {:?}, expected {interim:?}", first.interim));
    }
    if let Some(code) = &case.code {
        let content_type = first.header_all("content-type");
        if content_type != ["application/problem+json"] {
            problems.push(format!("content-type {content_type:?}, expected a problem document"));
        }
        let got = problem_code(first);
        if got.as_deref() != Some(code.as_str()) {
            problems.push(format!("code {got:?}, expected {code:?}"));
        }
    }
    for name in &case.client_sees {
        if first.header_all(name).is_empty() {
            problems.push(format!("the client did not get {name}"));
        }
    }
    for name in &case.client_must_not_see {
        if !first.header_all(name).is_empty() {
            problems.push(format!("the client got {name}: {:?}", first.header_all(name)));
        }
    }
    for (name, value) in &case.client_header {
        let got = first.header_all(name).join(", ");
        if &got != value {
            problems.push(format!("the client got {name}: {got:?}, expected {value:?}"));
        }
    }
    let needs_echo = !case.worker_sees.is_empty()
        || !case.worker_must_not_see.is_empty()
        || !case.worker_header.is_empty()
        || !case.worker_must_not_see_text.is_empty()
        || case.worker_method.is_some()
        || case.worker_path.is_some()
        || case.worker_query.is_some()
        || case.worker_body_bytes.is_some();
    if !needs_echo {
        return problems;
    }
    let Ok(echo) = serde_json::from_slice::<Value>(&first.body) else {
        problems.push("the body is not echo's JSON".into());
        return problems;
    };
    let headers = &echo["headers"];
    for name in &case.worker_sees {
        if headers.get(name.to_ascii_lowercase()).is_none() {
            problems.push(format!("the worker did not get {name}"));
        }
    }
    for name in &case.worker_must_not_see {
        if let Some(value) = headers.get(name.to_ascii_lowercase()) {
            problems.push(format!("the worker got {name}: {value}"));
        }
    }
    for (name, value) in &case.worker_header {
        let got = headers.get(name.to_ascii_lowercase()).and_then(Value::as_str);
        if got != Some(value.as_str()) {
            problems.push(format!("the worker got {name}: {got:?}, expected {value:?}"));
        }
    }
    let text = headers.to_string();
    for needle in &case.worker_must_not_see_text {
        if text.contains(needle.as_str()) {
            problems.push(format!("the worker's headers contain {needle:?}"));
        }
    }
    let mut field = |key: &str, expected: Option<Value>| {
        if let Some(expected) = expected {
            let got = match key {
                "body" => echo["body"]["bytes"].clone(),
                "query" if echo["query"].is_null() => Value::String(String::new()),
                _ => echo[key].clone(),
            };
            if got != expected {
                problems.push(format!("the worker saw {key} {got}, expected {expected}"));
            }
        }
    };
    field("method", case.worker_method.clone().map(Value::String));
    field("path", case.worker_path.clone().map(Value::String));
    field("query", case.worker_query.clone().map(Value::String));
    field("body", case.worker_body_bytes.map(Value::from));
    problems
}
