//! The one worker-name validator, used by every routing mode (subdomain, path, query, custom
//! domain), so a name accepted in one mode is accepted in all and means the same worker.

use std::fmt;

/// Names that would let a tenant shadow the platform's own hosts: the original dispatcher's list,
/// plus `customers` (the custom-domain fallback origin), `docs`, `auth`, `dispatch` and `explain` (`/dispatch/explain`).
pub const BUILT_IN_RESERVED: &[&str] = &[
    "dispatcher",
    "api",
    "health",
    "admin",
    "system",
    "www",
    "mail",
    "ftp",
    "cdn",
    "assets",
    "static",
    "customers",
    "docs",
    "auth",
    "dispatch",
    "explain",
];

pub const MAX_LEN: usize = 63;

/// A lowercase RFC 1123 label that is not reserved. Holding one proves it was validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    Characters,
    Hyphen,
    Reserved,
}

impl NameError {
    pub fn explain(self) -> &'static str {
        match self {
            NameError::Empty => "The worker name is empty.",
            NameError::TooLong => "A worker name has at most 63 characters.",
            NameError::Characters => "A worker name may contain only ASCII letters, digits and hyphens.",
            NameError::Hyphen => "A worker name cannot start or end with a hyphen.",
            NameError::Reserved => "This worker name is reserved for the platform.",
        }
    }
}

impl WorkerName {
    /// Validates `raw` as a worker name. ASCII letters are lowercased first, as host labels are,
    /// so `My-App` and `my-app` name the same worker. `extra_reserved` must already be lowercase.
    pub fn parse(raw: &str, extra_reserved: &[String]) -> Result<WorkerName, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(NameError::TooLong);
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(NameError::Characters);
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(NameError::Hyphen);
        }
        let name = raw.to_ascii_lowercase();
        if BUILT_IN_RESERVED.contains(&name.as_str()) || extra_reserved.contains(&name) {
            return Err(NameError::Reserved);
        }
        Ok(WorkerName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a comma-separated list of names (`workers`, `remote_workers`) holds this one. A
    /// scan of the text, without parsing it: an invalid entry can never equal a valid name.
    pub fn is_listed_in(&self, list: &str) -> bool {
        list.split(',')
            .map(str::trim)
            .any(|entry| entry.eq_ignore_ascii_case(&self.0))
    }

    /// The component that serves the API's documentation. `docs` is a built-in reserved name, so
    /// no tenant can be called that, and it is never part of the namespace.
    pub fn docs_component() -> WorkerName {
        WorkerName(DOCS_COMPONENT.to_string())
    }
}

pub use crate::docs_component::DOCS_COMPONENT;

impl fmt::Display for WorkerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<WorkerName, NameError> {
        WorkerName::parse(raw, &["internal".to_string()])
    }

    #[test]
    fn a_list_holds_whole_names_only() {
        let shop = parse("shop").unwrap();
        assert!(shop.is_listed_in(" a, Shop ,b"));
        assert!(!shop.is_listed_in("shopping,sho"));
        assert!(!shop.is_listed_in(""));
    }

    #[test]
    fn accepts_rfc1123_labels() {
        for ok in ["a", "hello", "my-app", "a1", "9", "xn--bcher-kva", &"a".repeat(63)] {
            assert_eq!(parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn lowercases_like_a_host_label() {
        assert_eq!(parse("My-App").unwrap().as_str(), "my-app");
    }

    #[test]
    fn rejects_bad_names_with_the_reason() {
        assert_eq!(parse(""), Err(NameError::Empty));
        assert_eq!(parse(&"a".repeat(64)), Err(NameError::TooLong));
        for bad in ["a_b", "..", "%2e%2e", "a.b", "a b", "café", "a/b", "ä"] {
            assert_eq!(parse(bad), Err(NameError::Characters), "{bad}");
        }
        assert_eq!(parse("-a"), Err(NameError::Hyphen));
        assert_eq!(parse("a-"), Err(NameError::Hyphen));
    }

    #[test]
    fn reserves_built_in_and_configured_names_in_any_case() {
        for name in BUILT_IN_RESERVED {
            assert_eq!(parse(name), Err(NameError::Reserved), "{name}");
        }
        assert_eq!(parse("CUSTOMERS"), Err(NameError::Reserved));
        assert_eq!(parse("internal"), Err(NameError::Reserved));
    }
}
