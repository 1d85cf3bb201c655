//! The one table of the dispatcher's settings: every key of the `settings` variable with its
//! kind of value, its bounds, its default and its documentation, and every application variable.
//! The parsers (`crate::config`) take the keys, defaults and bounds from here; the comments of
//! `spin.toml`, the table of `docs/configuration.md` and the manifest checker
//! (`scripts/check-spinapp.py`, through `libra-check`) are generated from it or checked against
//! it by a test (`tests/host/tests/e2e/manifest.rs`).

/// The application variable that holds every setting below.
pub const SETTINGS_VARIABLE: &str = "settings";

/// What a setting's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A host name, normalised (lowercase, no port, no trailing dot).
    Host,
    /// A comma-separated list of host names.
    Hosts,
    /// A comma-separated list of worker names.
    Names,
    /// A comma-separated list of worker names, or `-` for none.
    Workers,
    /// 1 to 63 of `[A-Za-z0-9._-]`: the prefix of every key in the store.
    Namespace,
    /// Free text (shown, never interpreted).
    Text,
    /// A whole number from `min`, in `unit`.
    Number { min: u64, unit: &'static str },
    /// One of these words.
    Choice(&'static [&'static str]),
    /// `http(s)://` and a host with `{worker}` in it, optionally a port.
    UrlTemplate,
    /// `worker:limit` entries (`crate::limits`).
    RateLimits,
    /// `worker:failures/duration` entries (`crate::limits`).
    Breakers,
    /// A SHA-256 digest in hexadecimal (64 characters).
    Sha256,
    /// `*`, or comma-separated origins (`crate::pipeline::cors`).
    Origins,
}

impl Kind {
    /// For the documentation's "value" column.
    pub fn describe(&self) -> String {
        match self {
            Kind::Host => "a host name".into(),
            Kind::Hosts => "host names, comma-separated".into(),
            Kind::Names => "worker names, comma-separated".into(),
            Kind::Workers => "worker names, comma-separated, or `-`".into(),
            Kind::Namespace => "1 to 63 of `A-Z a-z 0-9 . _ -`".into(),
            Kind::Text => "text".into(),
            Kind::Number { min, unit } => format!("a whole number of {unit}, at least {min}"),
            Kind::Choice(words) => words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "),
            Kind::UrlTemplate => "`http(s)://` and a host with `{worker}`, optionally `:port`".into(),
            Kind::RateLimits => {
                "`worker:N/s`, `N/min` or `N/h`, optionally `burst B`, or `worker:off`, comma-separated; `*` for all"
                    .into()
            }
            Kind::Breakers => "`worker:failures/duration` or `worker:off`, comma-separated; `*` for all".into(),
            Kind::Sha256 => "64 hexadecimal digits".into(),
            Kind::Origins => "`*`, or origins (`https://host[:port]`), comma-separated".into(),
        }
    }
}

/// One key of `settings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub kind: Kind,
    /// What a key not given means, in the syntax of its value.
    pub default: &'static str,
    /// One sentence for `spin.toml` and the docs.
    pub doc: &'static str,
}

const fn setting(name: &'static str, kind: Kind, default: &'static str, doc: &'static str) -> Setting {
    Setting {
        doc: doc_text(doc),
        name,
        kind,
        default,
    }
}

/// The docs are for the generators, which run on the host. The component leaves them out: its
/// initial memory is budgeted (`tests/host/tests/e2e/footprint.rs`), and these few kilobytes
/// of text would cost it a page.
const fn doc_text(doc: &'static str) -> &'static str {
    if cfg!(target_family = "wasm") { "" } else { doc }
}

/// Every key of `settings`.
pub const SETTINGS: &[Setting] = &[
    setting(
        "base_domain",
        Kind::Host,
        "localhost",
        "`<worker>.<base_domain>` goes to a worker; the base domain itself serves the dispatcher's API",
    ),
    setting(
        "dispatcher_hosts",
        Kind::Hosts,
        "localhost,127.0.0.1",
        "further hosts that serve the dispatcher's API",
    ),
    setting(
        "reserved_names",
        Kind::Names,
        "",
        "worker names no tenant may have, on top of the built-in ones",
    ),
    setting(
        "workers",
        Kind::Workers,
        "",
        "the local workers; empty: every private component of `spin.toml` but `docs` (read when built); `-`: none",
    ),
    setting(
        "namespace",
        Kind::Namespace,
        "default",
        "the namespace's name, shown by `GET /dispatch` and the prefix of every key in the store",
    ),
    setting("environment", Kind::Text, "development", "shown by `/health`"),
    setting(
        "max_body_bytes",
        Kind::Number { min: 0, unit: "bytes" },
        "10485760",
        "larger request bodies get `413 payload_too_large`",
    ),
    setting(
        "upstream_timeout_ms",
        Kind::Number { min: 1, unit: "ms" },
        "30000",
        "once the request body is in, the time a worker has to answer (then `504 worker_timeout`)",
    ),
    setting(
        "idle_timeout_ms",
        Kind::Number { min: 1, unit: "ms" },
        "30000",
        "the longest pause in either body stream",
    ),
    setting(
        "log_level",
        Kind::Choice(&["debug", "info", "warn", "warning", "error"]),
        "info",
        "the least level written; a request's line is `info` (`warn` when its limits' store failed, `error` for 5xx)",
    ),
    setting(
        "domain_cache_ttl_s",
        Kind::Number {
            min: 0,
            unit: "seconds",
        },
        "60",
        "how long a database answer (a custom domain, a remote member, a limit override) stays cached; 0: not cached",
    ),
    setting(
        "domain_negative_ttl_s",
        Kind::Number {
            min: 0,
            unit: "seconds",
        },
        "10",
        "how long a \"not found\" from the database stays cached; 0: not cached",
    ),
    setting(
        "db_timeout_ms",
        Kind::Number { min: 1, unit: "ms" },
        "2000",
        "connecting to the database, and each query",
    ),
    setting(
        "worker_url_template",
        Kind::UrlTemplate,
        "",
        "where a remote worker is reached, e.g. `https://{worker}.workers.example.com`; empty: no remote workers",
    ),
    setting(
        "remote_workers",
        Kind::Names,
        "",
        "the remote workers; empty: those Libra's database says are deployed",
    ),
    setting(
        "max_loop_count",
        Kind::Number { min: 0, unit: "passes" },
        "1",
        "how many times a request may already carry this dispatcher's `CDN-Loop` token (then `508 loop_detected`)",
    ),
    setting(
        "admin_token_sha256",
        Kind::Sha256,
        "",
        "the SHA-256 of the admin token (`printf %s \"$token\" | sha256sum`): `/health/detailed` and `GET /dispatch` need `Authorization: Bearer <token>`; unset, they are open in development and closed in production. A digest is no secret, so no secret provider is involved",
    ),
    setting(
        "cors_origins",
        Kind::Origins,
        "",
        "pages on these origins may read `/dispatch`, `/health`, `/health/detailed`, `/openapi.json` and `/dispatch/explain` (CORS, never with credentials); empty: none. Tenant hosts and paths keep their own CORS",
    ),
    setting(
        "rate_limits",
        Kind::RateLimits,
        "",
        "per-worker rate limits, e.g. `*:100/min, shop:10/s burst 20` (then `429 rate_limited`); empty: none",
    ),
    setting(
        "breakers",
        Kind::Breakers,
        "",
        "per-worker circuit breakers, e.g. `*:5/30s`: open after 5 failures in a row, for 30 s (then `503 worker_unavailable`)",
    ),
    setting(
        "limit_overrides",
        Kind::Choice(&["off", "database"]),
        "off",
        "`database`: a worker's row of the `worker_limits` table overrides its rate limit and breaker",
    ),
    setting(
        "limits_on_store_error",
        Kind::Choice(&["open", "closed"]),
        "open",
        "when the store of rate limits fails: serve unlimited, or refuse (`503 rate_limiter_unavailable`)",
    ),
];

/// One application variable of `spin.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub secret: bool,
    /// Whether the dispatcher reads it (through a component variable of the same name); the
    /// others only fill `allowed_outbound_hosts`.
    pub read: bool,
    pub doc: &'static str,
}

/// The application variables of `spin.toml`: it declares exactly these (a test keeps the two in
/// step). On Spin 4.0.2 every one is resolved for every component instance that sends a
/// request, so there are few.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: SETTINGS_VARIABLE,
        default: "",
        secret: false,
        read: true,
        doc: doc_text("every key of `settings` above, as `key=value` entries separated by `;` or line breaks"),
    },
    Variable {
        name: "postgres_url",
        default: "",
        secret: true,
        read: true,
        doc: doc_text("custom domains and remote members from PostgreSQL; empty: from Spin's built-in SQLite database"),
    },
    Variable {
        name: "postgres_host",
        default: "localhost:5432",
        secret: false,
        read: false,
        doc: doc_text("`host:port` of `postgres_url`: the only database address the dispatcher may connect to"),
    },
    Variable {
        name: "remote_hosts",
        default: "https://remote-workers.invalid",
        secret: false,
        read: false,
        doc: doc_text(
            "an `allowed_outbound_hosts` entry covering `worker_url_template`'s hosts; the default never resolves",
        ),
    },
];

/// The key of `settings` named `name`.
pub fn setting_named(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|setting| setting.name == name)
}

/// Whether `name` is a key of `settings` (rather than an application variable).
pub fn is_setting(name: &str) -> bool {
    setting_named(name).is_some()
}

/// The default of a key of [`SETTINGS`] or a variable of [`VARIABLES`] (empty for an unknown
/// name).
pub fn default_of(name: &str) -> &'static str {
    match setting_named(name) {
        Some(setting) => setting.default,
        None => VARIABLES
            .iter()
            .find(|variable| variable.name == name)
            .map_or("", |variable| variable.default),
    }
}

/// A numeric setting's value, within its bounds.
pub fn number(name: &'static str, value: &str) -> Result<u64, String> {
    let Some(Setting {
        kind: Kind::Number { min, unit },
        ..
    }) = setting_named(name)
    else {
        return Err(format!("{name} is not a number setting"));
    };
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| n >= min)
        .ok_or_else(|| format!("not a whole number of {unit} of at least {min}"))
}

/// The table of `docs/configuration.md`, in Markdown.
pub fn markdown_table() -> String {
    let mut table = String::from("| key | default | value | meaning |\n|---|---|---|---|\n");
    for setting in SETTINGS {
        let default = if setting.default.is_empty() {
            "empty".to_string()
        } else {
            format!("`{}`", setting.default)
        };
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            setting.name,
            default,
            setting.kind.describe(),
            setting.doc
        ));
    }
    table
}

/// The table of application variables of `docs/configuration.md`, in Markdown.
pub fn variables_markdown_table() -> String {
    let mut table = String::from("| variable | default | secret | meaning |\n|---|---|---|---|\n");
    for variable in VARIABLES {
        let default = if variable.default.is_empty() {
            "empty".to_string()
        } else {
            format!("`{}`", variable.default)
        };
        let secret = if variable.secret { "yes" } else { "no" };
        table.push_str(&format!(
            "| `{}` | {default} | {secret} | {} |\n",
            variable.name, variable.doc
        ));
    }
    table
}

/// The comment of `spin.toml` that lists the keys of `settings` with their defaults.
pub fn spin_toml_comment() -> String {
    let mut comment = String::new();
    for setting in SETTINGS {
        comment.push_str(&format!("#   {}={}\n", setting.name, setting.default));
    }
    comment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_no_setting_is_a_variable() {
        let mut names: Vec<&str> = SETTINGS
            .iter()
            .map(|s| s.name)
            .chain(VARIABLES.iter().map(|v| v.name))
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn numbers_are_held_to_their_bounds() {
        assert_eq!(number("db_timeout_ms", " 5 "), Ok(5));
        assert!(number("db_timeout_ms", "0").unwrap_err().contains("at least 1"));
        assert_eq!(number("domain_cache_ttl_s", "0"), Ok(0));
        assert!(number("max_body_bytes", "10MB").is_err());
        assert!(number("base_domain", "1").is_err(), "not a number setting");
        for setting in SETTINGS {
            if let Kind::Number { .. } = setting.kind {
                number(setting.name, setting.default).unwrap_or_else(|e| panic!("{}: {e}", setting.name));
            }
        }
    }

    #[test]
    fn the_docs_table_has_a_row_per_setting() {
        let table = markdown_table();
        assert_eq!(table.lines().count(), SETTINGS.len() + 2);
        assert!(table.contains("| `db_timeout_ms` | `2000` | a whole number of ms, at least 1 |"));
    }
}
