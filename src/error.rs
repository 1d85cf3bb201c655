//! Every way a request can fail, mapped to its HTTP status and stable code in one place.
//!
//! Responses are RFC 9457 problem documents. `detail` is written here from the variant, never from
//! an internal error's text, so nothing from a database, a worker trap or the host leaks out.

use serde::Serialize;

use crate::config::ConfigError;
use crate::pipeline::worker_name::NameError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchError {
    /// The `Host` header is missing, repeated, empty, non-ASCII or not a host name.
    InvalidHost,
    /// `a.b.<base_domain>`: only one label below the base domain names a worker.
    HostNotRouted,
    /// Path or query dispatch without a worker name.
    MissingWorkerName,
    InvalidWorkerName(NameError),
    /// A valid name that is not deployed in the namespace.
    WorkerNotFound(String),
    /// A host that is neither the dispatcher's, nor a worker subdomain, nor a known custom domain.
    CustomDomainNotFound,
    /// An unknown path on a dispatcher host.
    NotFound,
    /// A dispatch path with a dot segment (`.`, `..`, escaped or not).
    InvalidPath,
    /// `/dispatch/explain` without one absolute `http(s)` URL to explain: why.
    InvalidUrl(&'static str),
    MethodNotAllowed {
        allow: &'static str,
    },
    InvalidContentLength,
    PayloadTooLarge {
        limit: u64,
    },
    UriTooLong {
        limit: usize,
    },
    HeadersTooLarge {
        limit: usize,
    },
    /// The client's request body broke off while it was being forwarded.
    RequestBodyFailed,
    /// The client's request body paused for longer than `idle_timeout_ms`.
    RequestTimeout,
    /// The worker trapped, refused the request or failed before answering.
    WorkerFailed,
    /// The worker did not start answering within `upstream_timeout_ms`.
    WorkerTimeout,
    /// A remote worker's host could not be resolved or refused the connection.
    WorkerUnreachable,
    /// The request already passed through this dispatcher more than `max_loop_count` times.
    LoopDetected,
    /// A Spin variable (or a key of `settings`) holds a value the dispatcher cannot use: which,
    /// and why, for the operator's log (the client gets only the code).
    Configuration(ConfigError),
    /// A Spin variable the request needs cannot be read (its provider failed). Never replaced by
    /// a default: a secret or database setting that silently fell back would fail open.
    ConfigurationUnavailable {
        variable: &'static str,
    },
    /// The custom-domain database failed, was unreachable, or was too slow.
    DatabaseUnavailable,
    /// An admin endpoint without the right bearer token.
    Unauthorized,
    /// The worker's rate limit is reached (`rate_limits`); the worker was not called.
    RateLimited {
        retry_after_s: u64,
        /// The `RateLimit-Policy` field's value.
        policy: String,
    },
    /// The worker's circuit breaker is open (`breakers`): it failed too often in a row and is
    /// not called until it has had time to recover.
    WorkerUnavailable {
        retry_after_s: u64,
    },
    /// The store that keeps the rate limits failed and `limits_on_store_error=closed`.
    LimiterUnavailable,
}

impl DispatchError {
    pub fn status(&self) -> u16 {
        use DispatchError::*;
        match self {
            InvalidHost | MissingWorkerName | InvalidWorkerName(_) | InvalidContentLength | RequestBodyFailed
            | InvalidPath | InvalidUrl(_) => 400,
            Unauthorized => 401,
            RequestTimeout => 408,
            HostNotRouted | WorkerNotFound(_) | CustomDomainNotFound | NotFound => 404,
            MethodNotAllowed { .. } => 405,
            PayloadTooLarge { .. } => 413,
            UriTooLong { .. } => 414,
            HeadersTooLarge { .. } => 431,
            RateLimited { .. } => 429,
            Configuration(_) => 500,
            WorkerFailed | WorkerUnreachable => 502,
            DatabaseUnavailable | ConfigurationUnavailable { .. } | WorkerUnavailable { .. } | LimiterUnavailable => {
                503
            }
            WorkerTimeout => 504,
            LoopDetected => 508,
        }
    }

    /// Stable, snake_case, documented: clients may switch on it.
    pub fn code(&self) -> &'static str {
        use DispatchError::*;
        match self {
            InvalidHost => "invalid_host",
            HostNotRouted => "host_not_routed",
            MissingWorkerName => "missing_worker_name",
            InvalidWorkerName(NameError::Reserved) => "reserved_worker_name",
            InvalidWorkerName(_) => "invalid_worker_name",
            WorkerNotFound(_) => "worker_not_found",
            CustomDomainNotFound => "custom_domain_not_found",
            NotFound => "not_found",
            InvalidPath => "invalid_path",
            InvalidUrl(_) => "invalid_url",
            MethodNotAllowed { .. } => "method_not_allowed",
            InvalidContentLength => "invalid_content_length",
            PayloadTooLarge { .. } => "payload_too_large",
            UriTooLong { .. } => "uri_too_long",
            HeadersTooLarge { .. } => "headers_too_large",
            RequestBodyFailed => "request_body_failed",
            RequestTimeout => "request_timeout",
            WorkerFailed => "worker_failed",
            WorkerTimeout => "worker_timeout",
            WorkerUnreachable => "worker_unreachable",
            LoopDetected => "loop_detected",
            Configuration(_) => "configuration_error",
            ConfigurationUnavailable { .. } => "configuration_unavailable",
            DatabaseUnavailable => "database_unavailable",
            Unauthorized => "unauthorized",
            RateLimited { .. } => "rate_limited",
            WorkerUnavailable { .. } => "worker_unavailable",
            LimiterUnavailable => "rate_limiter_unavailable",
        }
    }

    pub fn title(&self) -> &'static str {
        use DispatchError::*;
        match self {
            InvalidHost => "Invalid host",
            HostNotRouted => "Host not routed",
            MissingWorkerName => "Missing worker name",
            InvalidWorkerName(NameError::Reserved) => "Reserved worker name",
            InvalidWorkerName(_) => "Invalid worker name",
            WorkerNotFound(_) => "Worker not found",
            CustomDomainNotFound => "Custom domain not found",
            NotFound => "Not found",
            InvalidPath => "Invalid path",
            InvalidUrl(_) => "Invalid URL",
            MethodNotAllowed { .. } => "Method not allowed",
            InvalidContentLength => "Invalid Content-Length",
            PayloadTooLarge { .. } => "Payload too large",
            UriTooLong { .. } => "URI too long",
            HeadersTooLarge { .. } => "Request headers too large",
            RequestBodyFailed => "Request body failed",
            RequestTimeout => "Request timeout",
            WorkerFailed => "Worker failed",
            WorkerTimeout => "Worker timed out",
            WorkerUnreachable => "Worker unreachable",
            LoopDetected => "Loop detected",
            Configuration(_) => "Dispatcher misconfigured",
            ConfigurationUnavailable { .. } => "Configuration unavailable",
            DatabaseUnavailable => "Database unavailable",
            Unauthorized => "Unauthorized",
            RateLimited { .. } => "Rate limited",
            WorkerUnavailable { .. } => "Worker unavailable",
            LimiterUnavailable => "Rate limiter unavailable",
        }
    }

    pub fn detail(&self) -> String {
        use DispatchError::*;
        match self {
            InvalidHost => "The Host header must be one valid ASCII host name, optionally with a port.".into(),
            HostNotRouted => {
                "Only one label below the base domain names a worker, as in <worker>.<base-domain>.".into()
            }
            MissingWorkerName => {
                "Name the worker in the path (/dispatch/<worker>/...) or the query (/dispatch?worker=<worker>).".into()
            }
            InvalidWorkerName(problem) => problem.explain().into(),
            WorkerNotFound(name) => format!("No worker named '{name}' is deployed in this namespace."),
            CustomDomainNotFound => "This domain is not configured for any worker, or is not verified yet.".into(),
            NotFound => "No such endpoint on the dispatcher.".into(),
            InvalidPath => "A dispatch path may not contain '.' or '..' segments.".into(),
            InvalidUrl(why) => (*why).into(),
            MethodNotAllowed { allow } => format!("Allowed methods: {allow}."),
            InvalidContentLength => "Content-Length must be one non-negative integer.".into(),
            PayloadTooLarge { limit } => format!("The request body exceeds the limit of {limit} bytes."),
            UriTooLong { limit } => format!("The request target exceeds the limit of {limit} bytes."),
            HeadersTooLarge { limit } => format!("The request headers exceed the limit of {limit} bytes."),
            RequestBodyFailed => "The request body could not be read to the end.".into(),
            RequestTimeout => "The request body stopped arriving.".into(),
            WorkerFailed => "The worker failed before it could answer.".into(),
            WorkerTimeout => "The worker did not answer in time.".into(),
            WorkerUnreachable => "The worker's host could not be reached.".into(),
            LoopDetected => "This request has already passed through the dispatcher; it would loop.".into(),
            Configuration(_) => "The dispatcher's configuration is invalid; see its log.".into(),
            ConfigurationUnavailable { .. } => {
                "The dispatcher cannot read its configuration right now; retry shortly.".into()
            }
            DatabaseUnavailable => "The namespace's database cannot be reached right now; retry shortly.".into(),
            Unauthorized => "This endpoint needs an Authorization: Bearer token.".into(),
            RateLimited { retry_after_s, .. } => {
                format!("This worker's rate limit is reached; retry after {retry_after_s} seconds.")
            }
            WorkerUnavailable { retry_after_s } => {
                format!("This worker failed repeatedly and is not called for now; retry after {retry_after_s} seconds.")
            }
            LimiterUnavailable => {
                "The dispatcher cannot check this worker's rate limit right now; retry shortly.".into()
            }
        }
    }

    /// Headers the status itself calls for.
    pub fn extra_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            DispatchError::MethodNotAllowed { allow } => vec![("allow", (*allow).to_string())],
            DispatchError::DatabaseUnavailable
            | DispatchError::ConfigurationUnavailable { .. }
            | DispatchError::LimiterUnavailable => {
                vec![("retry-after", RETRY_AFTER_S.to_string())]
            }
            DispatchError::RateLimited { retry_after_s, policy } => vec![
                ("retry-after", retry_after_s.to_string()),
                ("ratelimit-policy", policy.clone()),
                (
                    "ratelimit",
                    format!("\"{}\";r=0;t={retry_after_s}", crate::limits::rate::POLICY_NAME),
                ),
            ],
            DispatchError::WorkerUnavailable { retry_after_s } => vec![("retry-after", retry_after_s.to_string())],
            DispatchError::Unauthorized => vec![("www-authenticate", "Bearer".to_string())],
            _ => Vec::new(),
        }
    }

    /// What the operator's log says about the cause, beside the stable code: the variable (or
    /// key of `settings`) that is unusable or unreadable, and why.
    pub fn cause(&self) -> Option<(&'static str, Option<&str>)> {
        match self {
            DispatchError::Configuration(problem) => Some((problem.variable, Some(problem.problem.as_str()))),
            DispatchError::ConfigurationUnavailable { variable } => Some((variable, None)),
            _ => None,
        }
    }

    /// The RFC 9457 body, serialised.
    pub fn problem_json(&self, request_id: &str) -> String {
        let problem = Problem {
            kind: format!("urn:libra-dispatcher:error:{}", self.code()),
            title: self.title(),
            status: self.status(),
            detail: self.detail(),
            code: self.code(),
            request_id,
        };
        serde_json::to_string(&problem).expect("a problem document always serialises")
    }
}

/// An RFC 9457 problem document, with the dispatcher's stable `code` and the request's id.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Problem<'a> {
    /// `urn:libra-dispatcher:error:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    /// Written by the dispatcher for people; never internal error text.
    pub detail: String,
    /// Stable and snake_case: clients may switch on it.
    pub code: &'static str,
    /// Also in the `X-Request-Id` response header and the access log.
    #[serde(rename = "requestId")]
    pub request_id: &'a str,
}

impl DispatchError {
    /// One of each kind of error, for the API description. Adding a variant breaks the match in
    /// the test below until it is listed here too.
    pub fn every_kind() -> Vec<DispatchError> {
        use DispatchError::*;
        vec![
            InvalidHost,
            HostNotRouted,
            MissingWorkerName,
            InvalidWorkerName(NameError::Characters),
            InvalidWorkerName(NameError::Reserved),
            WorkerNotFound(String::new()),
            CustomDomainNotFound,
            NotFound,
            InvalidPath,
            InvalidUrl(""),
            MethodNotAllowed { allow: "" },
            InvalidContentLength,
            PayloadTooLarge { limit: 0 },
            UriTooLong { limit: 0 },
            HeadersTooLarge { limit: 0 },
            RequestBodyFailed,
            RequestTimeout,
            WorkerFailed,
            WorkerTimeout,
            WorkerUnreachable,
            LoopDetected,
            Configuration(ConfigError {
                variable: "settings",
                problem: String::new(),
            }),
            ConfigurationUnavailable { variable: "settings" },
            DatabaseUnavailable,
            Unauthorized,
            RateLimited {
                retry_after_s: 1,
                policy: String::new(),
            },
            WorkerUnavailable { retry_after_s: 1 },
            LimiterUnavailable,
        ]
    }
}

/// How long a client should wait before retrying after a database failure (the negative cache
/// does not apply to failures, so the next request tries the database again).
pub const RETRY_AFTER_S: u64 = 5;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_document_has_rfc9457_fields_and_code() {
        let body = DispatchError::WorkerNotFound("ghost".into()).problem_json("req-1");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["type"], "urn:libra-dispatcher:error:worker_not_found");
        assert_eq!(value["title"], "Worker not found");
        assert_eq!(value["status"], 404);
        assert_eq!(value["code"], "worker_not_found");
        assert_eq!(value["requestId"], "req-1");
        assert!(value["detail"].as_str().unwrap().contains("'ghost'"));
    }

    #[test]
    fn reserved_names_have_their_own_code() {
        assert_eq!(
            DispatchError::InvalidWorkerName(NameError::Reserved).code(),
            "reserved_worker_name"
        );
        assert_eq!(DispatchError::InvalidWorkerName(NameError::Reserved).status(), 400);
        assert_eq!(
            DispatchError::InvalidWorkerName(NameError::Characters).code(),
            "invalid_worker_name"
        );
    }

    #[test]
    fn every_kind_lists_each_code_once() {
        let kinds = DispatchError::every_kind();
        for kind in &kinds {
            // Exhaustive on purpose: a new variant fails to compile here until it is listed.
            match kind {
                DispatchError::InvalidHost
                | DispatchError::HostNotRouted
                | DispatchError::MissingWorkerName
                | DispatchError::InvalidUrl(_)
                | DispatchError::InvalidWorkerName(_)
                | DispatchError::WorkerNotFound(_)
                | DispatchError::CustomDomainNotFound
                | DispatchError::NotFound
                | DispatchError::InvalidPath
                | DispatchError::MethodNotAllowed { .. }
                | DispatchError::InvalidContentLength
                | DispatchError::PayloadTooLarge { .. }
                | DispatchError::UriTooLong { .. }
                | DispatchError::HeadersTooLarge { .. }
                | DispatchError::RequestBodyFailed
                | DispatchError::RequestTimeout
                | DispatchError::WorkerFailed
                | DispatchError::WorkerTimeout
                | DispatchError::WorkerUnreachable
                | DispatchError::LoopDetected
                | DispatchError::Configuration(_)
                | DispatchError::ConfigurationUnavailable { .. }
                | DispatchError::DatabaseUnavailable
                | DispatchError::Unauthorized
                | DispatchError::RateLimited { .. }
                | DispatchError::WorkerUnavailable { .. }
                | DispatchError::LimiterUnavailable => {}
            }
        }
        let mut codes: Vec<&str> = kinds.iter().map(DispatchError::code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len(), "each listed kind has its own code");
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let error = DispatchError::MethodNotAllowed { allow: "GET, HEAD" };
        assert_eq!(error.status(), 405);
        assert_eq!(error.extra_headers(), vec![("allow", "GET, HEAD".to_string())]);
    }
}
