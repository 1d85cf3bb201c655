//! The dispatcher's configuration, from Spin variables. Spin keeps nothing between requests, so
//! it is read on every request. On Spin 4.0.2 every application variable costs a thread hand-off
//! in the environment provider each time it is resolved, and every component that sends a
//! request resolves *all* of the app's variables once per instance (see
//! docs/performance.md). So the settings live in one application variable, `settings`: `key=value`
//! entries separated by `;` or line breaks ([`Settings`]). A request reads it once, in one host
//! call, and takes what it needs from it:
//!
//! - the routing keys ([`Config`]) every request needs (classify, route, admit, log);
//! - `max_body_bytes` and `max_loop_count` ([`Limit`]), parsed only by a request they can
//!   refuse, so an unusable limit fails only those;
//! - `namespace`, the remote keys and the cache-miss keys ([`LookupConfig`]), parsed only by a
//!   request that looks in the cache, needs a remote worker, or misses the cache;
//! - the per-tenant limits ([`Config::limits`]), parsed only by a request about to be forwarded.
//!
//! Application variables of their own: the one secret (`postgres_url`), read where it is used,
//! and `postgres_host` and `remote_hosts`, which fill `allowed_outbound_hosts` (Spin expands
//! them there; the dispatcher never reads them).

include!(concat!(env!("OUT_DIR"), "/manifest_workers.rs"));

use std::borrow::Cow;

/// The `workers` value that means "no local workers" (an empty value means the manifest's).
pub const NO_LOCAL_WORKERS: &str = "-";

use crate::hostname;
use crate::pipeline::worker_name::WorkerName;
use crate::remote::WorkerUrlTemplate;

use crate::settings_table::{self, SETTINGS, VARIABLES};
pub use crate::settings_table::{SETTINGS_VARIABLE, default_of, is_setting};

/// The `settings` variable, split into its keys. Entries are `key=value`, separated by `;` or
/// line breaks; blanks around keys and values and empty entries are ignored, and a value may
/// contain `=` but neither separator. A key not given takes its default. An unknown key, a key
/// given twice or an entry without `=` makes the whole variable unusable: a typo must not
/// quietly leave a setting at its default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    given: Vec<(&'static str, String)>,
}

impl Settings {
    pub fn parse(value: &str) -> Result<Settings, ConfigError> {
        let fail = |problem: String| ConfigError {
            variable: SETTINGS_VARIABLE,
            problem,
        };
        let mut given: Vec<(&'static str, String)> = Vec::new();
        for (index, entry) in value
            .split([';', '\n', '\r'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .enumerate()
        {
            // Never echo an entry: a misplaced secret must not reach the log.
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| fail(format!("entry {} is not key=value", index + 1)))?;
            let key = key.trim();
            let Some(known) = settings_table::setting_named(key).map(|setting| setting.name) else {
                return Err(fail(unknown_key(key, index + 1)));
            };
            if given.iter().any(|(name, _)| *name == known) {
                return Err(fail(format!("sets '{known}' twice")));
            }
            given.push((known, value.trim().to_string()));
        }
        Ok(Settings { given })
    }

    /// The keys `lookup` answers, as a `settings` value that gives them would.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Settings {
        Settings {
            given: SETTINGS
                .iter()
                .filter_map(|setting| lookup(setting.name).map(|value| (setting.name, value)))
                .collect(),
        }
    }

    /// `key`'s value, `None` when it is not given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.as_str())
    }

    fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |key| self.get(key).map(str::to_string)
    }
}

/// Why the `entry`th entry's key is refused. The key is named only when it is known to be a
/// name: an application variable's, or within two edits of a setting's (then with the setting
/// it probably means). Anything else may be a value pasted in the wrong place, a secret even,
/// so it is never echoed: the entry's position finds it.
fn unknown_key(key: &str, entry: usize) -> String {
    if key == "admin_token" {
        return "names 'admin_token', which is no setting: give the token's SHA-256 as admin_token_sha256".into();
    }
    if VARIABLES.iter().any(|variable| variable.name == key) {
        return format!("names '{key}', which is an application variable of its own, not a setting");
    }
    let closest = SETTINGS
        .iter()
        .map(|setting| (strsim::levenshtein(key, setting.name), setting.name))
        .min();
    match closest {
        Some((distance, name)) if distance <= 2 => {
            format!("has an unknown key '{key}' (did you mean '{name}'?)")
        }
        _ => format!("has an unknown key (entry {entry})"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `<worker>.<base_domain>` routes to a worker; the apex serves the dispatcher's API.
    pub base_domain: String,
    /// Further hosts that serve the dispatcher's API.
    pub dispatcher_hosts: Vec<String>,
    /// Reserved names on top of the built-in list, lowercase.
    pub reserved_names: Vec<String>,
    /// The namespace (`workers`) as configured. Routing only asks whether one already-validated
    /// name is in it, which is a scan of this text: a namespace of thousands of workers costs
    /// no parsing or allocation per request. [`Config::workers`] validates the whole list.
    workers: Cow<'static, str>,
    /// How long a worker has to answer once the request body is in.
    pub upstream_timeout_ms: u64,
    /// The longest pause in either body stream: the client's upload, the worker's download.
    pub idle_timeout_ms: u64,
    pub log_level: LogLevel,
    /// Everything else the request may need, parsed only when it does.
    settings: Settings,
}

/// Where remote workers are reached, and who says which ones are deployed.
#[derive(Debug, Clone)]
pub struct Remote {
    pub template: WorkerUrlTemplate,
    pub members: RemoteMembers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteMembers {
    /// `remote_workers`: a fixed list, for hosts without a database.
    Listed(String),
    /// Libra's `project` table (PostgreSQL or the embedded SQLite database), cached.
    Database,
}

/// Names the variable (or the key of `settings`) whose value is unusable, and why; logged, never
/// sent to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// An application variable, or a key of `settings` ([`is_setting`]).
    pub variable: &'static str,
    pub problem: String,
}

impl Config {
    /// The configuration from the `settings` variable's keys. Only what routing needs is
    /// parsed here; the rest when a request needs it.
    ///
    /// Every request runs this, and on Spin the guest's instructions are time (see
    /// docs/performance.md), so nothing is allocated that the configuration does not keep: the keys
    /// are read in place, and the defaults are used as they are.
    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        let get = |name: &'static str| -> &str { settings.get(name).unwrap_or_else(|| default_of(name)) };
        let fail = |variable: &'static str, problem: String| ConfigError { variable, problem };

        let base_domain = normalise_configured_host(get("base_domain"))
            .ok_or_else(|| fail("base_domain", "not a host name".into()))?;
        let dispatcher_hosts = list(get("dispatcher_hosts"))
            .map(|h| {
                normalise_configured_host(h)
                    .ok_or_else(|| fail("dispatcher_hosts", format!("'{h}' is not a host name")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reserved_names: Vec<String> = list(get("reserved_names")).map(str::to_ascii_lowercase).collect();
        // Empty: the private components of the manifest this was built with. An operator's list
        // overrides it; `-` means none (an app with remote workers only).
        let workers = match get("workers").trim() {
            "" => Cow::Borrowed(MANIFEST_WORKERS),
            NO_LOCAL_WORKERS => Cow::Borrowed(""),
            listed => Cow::Owned(listed.to_string()),
        };
        let number =
            |name: &'static str| settings_table::number(name, get(name)).map_err(|problem| fail(name, problem));
        let upstream_timeout_ms = number("upstream_timeout_ms")?;
        let log_level = get("log_level").trim();
        let log_level = [
            ("debug", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("warning", LogLevel::Warn),
            ("error", LogLevel::Error),
        ]
        .into_iter()
        .find_map(|(name, level)| log_level.eq_ignore_ascii_case(name).then_some(level))
        .ok_or_else(|| fail("log_level", "not one of debug, info, warn, error".into()))?;
        let idle_timeout_ms = number("idle_timeout_ms")?;
        Ok(Config {
            base_domain,
            dispatcher_hosts,
            reserved_names,
            workers,
            upstream_timeout_ms,
            idle_timeout_ms,
            log_level,
            settings,
        })
    }

    /// The configuration from a lookup of `settings`' keys (`None`: not given, its default).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::from_settings(Settings::from_lookup(lookup))
    }

    /// The namespace: the prefix of every cache key.
    pub fn namespace(&self) -> Result<String, ConfigError> {
        namespace_from(self.settings.get("namespace").map(str::to_string))
    }

    /// The remote members, if any.
    pub fn remote(&self) -> Result<Option<Remote>, ConfigError> {
        remote_from(self.settings.lookup(), self)
    }

    /// What a cache miss needs.
    pub fn misses(&self) -> Result<MissSettings, ConfigError> {
        MissSettings::from_lookup(self.settings.lookup())
    }

    /// One of the limits, parsed only by a request it can refuse.
    pub fn limit(&self, limit: Limit) -> Result<u64, ConfigError> {
        limit.parse(self.settings.get(limit.variable()).map(str::to_string))
    }

    /// The per-tenant limits (`src/limits`), parsed when a request is about to be forwarded;
    /// `Ok(None)` when none is configured, which is all an unlimited request pays for.
    pub fn limits(&self) -> Result<Option<crate::limits::LimitSettings>, ConfigError> {
        crate::limits::LimitSettings::from_settings(|name| self.settings.get(name), &self.reserved_names).map_err(
            |problem| ConfigError {
                variable: problem.setting,
                problem: problem.problem,
            },
        )
    }

    /// The SHA-256 of the admin token, when one is set (`admin_token_sha256`): read only by the
    /// admin endpoints.
    pub fn admin_token_digest(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let hex = self.settings.get("admin_token_sha256").unwrap_or("").trim();
        if hex.is_empty() {
            return Ok(None);
        }
        let fail = || ConfigError {
            variable: "admin_token_sha256",
            problem: "not a SHA-256 digest: 64 hexadecimal digits".into(),
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail());
        }
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).map_err(|_| fail())?, 16).map_err(|_| fail())?;
        }
        Ok(Some(digest))
    }

    /// The origins whose pages may read the API (`cors_origins`), parsed only by requests to
    /// the API's paths; `Ok(None)` when none may.
    pub fn cors(&self) -> Result<Option<crate::pipeline::cors::Origins>, ConfigError> {
        crate::pipeline::cors::Origins::parse(self.settings.get("cors_origins").unwrap_or("")).map_err(|problem| {
            ConfigError {
                variable: "cors_origins",
                problem,
            }
        })
    }

    /// A key of `settings` as given, else its default (`true`: the default), for explanations.
    pub fn setting_text(&self, key: &'static str) -> (&str, bool) {
        if key == "workers" {
            return (&self.workers, self.settings.get(key).is_none());
        }
        match self.settings.get(key) {
            Some(value) => (value, false),
            None => (default_of(key), true),
        }
    }

    /// Parses every setting now, rather than when a request needs it: for `libra-check` and the
    /// tests, so a value is refused before any request meets it.
    pub fn check_all(&self) -> Result<(), ConfigError> {
        self.namespace()?;
        self.remote()?;
        self.misses()?;
        self.limit(Limit::MaxBodyBytes)?;
        self.limit(Limit::MaxLoopCount)?;
        self.limits()?;
        self.workers()?;
        self.admin_token_digest()?;
        self.cors()?;
        Ok(())
    }

    /// Informational only (`/health`).
    pub fn environment(&self) -> &str {
        self.settings
            .get("environment")
            .unwrap_or_else(|| default_of("environment"))
    }

    /// Everything custom domains and remote workers need, for the endpoints that describe it.
    pub fn lookups(&self) -> Result<LookupConfig, ConfigError> {
        Ok(LookupConfig {
            namespace: self.namespace()?,
            remote: self.remote(),
            misses: self.misses()?,
        })
    }

    pub fn is_dispatcher_host(&self, host: &str) -> bool {
        host == self.base_domain || self.dispatcher_hosts.iter().any(|h| h == host)
    }

    /// Whether `name` is deployed. Decided locally: asking Spin for an unknown
    /// `*.spin.internal` name is denied with an error log, or traps the caller. An invalid entry
    /// in `workers` can never equal a valid name, so it cannot route anything.
    pub fn has_worker(&self, name: &WorkerName) -> bool {
        name.is_listed_in(&self.workers)
    }

    /// The namespace, validated, sorted and without repeats, for the endpoints that describe it.
    pub fn workers(&self) -> Result<Vec<WorkerName>, ConfigError> {
        let mut workers = list(&self.workers)
            .map(|w| {
                WorkerName::parse(w, &self.reserved_names).map_err(|e| ConfigError {
                    variable: "workers",
                    problem: format!("'{w}': {}", e.explain()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        workers.sort();
        workers.dedup();
        Ok(workers)
    }
}

/// What custom domains and remote workers need: the namespace, the remote members and what a
/// cache miss needs. The request path parses each part only when it needs it
/// (`glue::lookups::Lookups`); the endpoints that describe the namespace read all three.
#[derive(Debug, Clone)]
pub struct LookupConfig {
    /// The namespace's name: shown by `GET /dispatch`, and the prefix of every cache key, so two
    /// deployments can share one key-value store.
    pub namespace: String,
    /// Remote members, if any. A bad template fails only the requests that need it: local
    /// workers keep working.
    pub remote: Result<Option<Remote>, ConfigError>,
    pub misses: MissSettings,
}

/// What a cache miss needs: how long to cache the answer, and how long the query may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissSettings {
    pub cache_ttl_s: u64,
    pub negative_ttl_s: u64,
    pub db_timeout_ms: u64,
}

/// The `namespace` setting, checked (`None`: not defined, its default).
pub fn namespace_from(value: Option<String>) -> Result<String, ConfigError> {
    let namespace = value
        .unwrap_or_else(|| default_of("namespace").to_string())
        .trim()
        .to_string();
    if namespace.is_empty()
        || namespace.len() > 63
        || !namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ConfigError {
            variable: "namespace",
            problem: "not 1-63 of [A-Za-z0-9._-]".into(),
        });
    }
    Ok(namespace)
}

/// The remote members from `worker_url_template` and `remote_workers`; `Ok(None)` when there are
/// none. `config` is the routing configuration: a template must not point back at its hosts.
pub fn remote_from(lookup: impl Fn(&str) -> Option<String>, config: &Config) -> Result<Option<Remote>, ConfigError> {
    let get = |name: &'static str| -> String { lookup(name).unwrap_or_else(|| default_of(name).to_string()) };
    let template = get("worker_url_template");
    if template.trim().is_empty() {
        return Ok(None);
    }
    let template =
        WorkerUrlTemplate::parse(&template, &config.base_domain, &config.dispatcher_hosts).map_err(|problem| {
            ConfigError {
                variable: "worker_url_template",
                problem,
            }
        })?;
    let listed = get("remote_workers");
    Ok(Some(Remote {
        template,
        members: if listed.trim().is_empty() {
            RemoteMembers::Database
        } else {
            RemoteMembers::Listed(listed)
        },
    }))
}

impl MissSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<MissSettings, ConfigError> {
        let number = |name: &'static str| -> Result<u64, ConfigError> {
            let value = lookup(name).unwrap_or_else(|| default_of(name).to_string());
            settings_table::number(name, &value).map_err(|problem| ConfigError {
                variable: name,
                problem,
            })
        };
        Ok(MissSettings {
            cache_ttl_s: number("domain_cache_ttl_s")?,
            negative_ttl_s: number("domain_negative_ttl_s")?,
            db_timeout_ms: number("db_timeout_ms")?,
        })
    }
}

/// A limit read on its own, only by the requests it can refuse (see the module's note).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_body_bytes`: the largest request body a worker receives.
    MaxBodyBytes,
    /// `max_loop_count`: how many times a request may already carry this dispatcher's
    /// `CDN-Loop` token.
    MaxLoopCount,
}

impl Limit {
    /// The setting's name.
    pub fn variable(self) -> &'static str {
        match self {
            Limit::MaxBodyBytes => "max_body_bytes",
            Limit::MaxLoopCount => "max_loop_count",
        }
    }

    /// The limit from its setting (`None`: not given, its default).
    pub fn parse(self, value: Option<String>) -> Result<u64, ConfigError> {
        let name = self.variable();
        let value = value.unwrap_or_else(|| default_of(name).to_string());
        settings_table::number(name, &value).map_err(|problem| ConfigError {
            variable: name,
            problem,
        })
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty())
}

fn normalise_configured_host(value: &str) -> Option<String> {
    hostname::normalise_name(value.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(pairs: &[(&str, &str)]) -> Config {
        config(pairs).unwrap()
    }

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_namespace_is_the_manifests_unless_an_operator_says_otherwise() {
        assert_eq!(config_of(&[]).workers, MANIFEST_WORKERS);
        assert!(config_of(&[]).has_worker(&WorkerName::parse("hello", &[]).unwrap()));
        assert_eq!(config_of(&[("workers", " a,b ")]).workers, "a,b");
        assert_eq!(config_of(&[("workers", "-")]).workers().unwrap(), Vec::new());
    }

    #[test]
    fn defaults_make_a_local_spin_up_work() {
        let config = config(&[]).unwrap();
        assert_eq!(config.base_domain, "localhost");
        assert!(config.is_dispatcher_host("localhost"));
        assert!(config.is_dispatcher_host("127.0.0.1"));
        assert!(!config.is_dispatcher_host("hello.localhost"));
        assert_eq!(Limit::MaxBodyBytes.parse(None), Ok(10_485_760));
        assert_eq!(Limit::MaxLoopCount.parse(None), Ok(1));
        assert_eq!(config.upstream_timeout_ms, 30_000);
        assert_eq!(config.log_level, LogLevel::Info);
    }

    #[test]
    fn parses_lists_and_normalises_hosts() {
        let config = config(&[
            ("base_domain", "Libra.SH."),
            ("dispatcher_hosts", " dispatcher.libra.dev , API.example.com:8443 "),
            ("workers", "hello, echo,hello"),
            ("reserved_names", "Billing"),
        ])
        .unwrap();
        assert_eq!(config.base_domain, "libra.sh");
        assert_eq!(config.dispatcher_hosts, vec!["dispatcher.libra.dev", "api.example.com"]);
        let workers = config.workers().unwrap();
        let names: Vec<&str> = workers.iter().map(WorkerName::as_str).collect();
        assert_eq!(names, vec!["echo", "hello"]);
        assert_eq!(config.reserved_names, vec!["billing"]);
        assert!(config.has_worker(&WorkerName::parse("echo", &[]).unwrap()));
        assert!(!config.has_worker(&WorkerName::parse("ghost", &[]).unwrap()));
        assert!(!config.has_worker(&WorkerName::parse("hell", &[]).unwrap()));
        let upper = config_of(&[("workers", " My-App ,x")]);
        assert!(upper.has_worker(&WorkerName::parse("my-app", &[]).unwrap()));
    }

    fn lookups(pairs: &[(&str, &str)]) -> Result<LookupConfig, ConfigError> {
        config(pairs)?.lookups()
    }

    #[test]
    fn lookup_settings_have_defaults_and_are_checked() {
        let lookups = lookups(&[]).unwrap();
        assert_eq!(
            lookups.misses,
            MissSettings {
                cache_ttl_s: 60,
                negative_ttl_s: 10,
                db_timeout_ms: 2000
            }
        );
        assert_eq!(lookups.namespace, "default");
        assert_eq!(
            super::tests::lookups(&[("db_timeout_ms", "0")]).unwrap_err().variable,
            "db_timeout_ms"
        );
    }

    #[test]
    fn settings_are_key_value_entries_separated_by_semicolons_or_lines() {
        let settings = Settings::parse(
            " base_domain = libra.sh ;workers=a,b\n\n upstream_timeout_ms=20\r\nlog_level=warn;;\
             worker_url_template=https://{worker}.x.test/?a=b",
        )
        .unwrap();
        assert_eq!(settings.get("base_domain"), Some("libra.sh"));
        assert_eq!(settings.get("workers"), Some("a,b"));
        assert_eq!(
            settings.get("worker_url_template"),
            Some("https://{worker}.x.test/?a=b")
        );
        assert_eq!(settings.get("namespace"), None);
        let config = Config::from_settings(settings).unwrap();
        assert_eq!(config.base_domain, "libra.sh");
        assert_eq!((config.upstream_timeout_ms, config.log_level), (20, LogLevel::Warn));
        assert_eq!(
            config.namespace().unwrap(),
            "default",
            "a key not given takes its default"
        );
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
        assert_eq!(Settings::parse(" ;\n ").unwrap(), Settings::default());
        // An empty value is given, not absent: `workers=` means the manifest's, as before.
        assert_eq!(
            Settings::parse("reserved_names=").unwrap().get("reserved_names"),
            Some("")
        );
    }

    #[test]
    fn a_settings_typo_fails_closed_and_never_echoes_a_value() {
        for (value, problem) in [
            (
                "base_domian=libra.sh",
                "has an unknown key 'base_domian' (did you mean 'base_domain'?)",
            ),
            ("base_domain=a;base_domain=b", "sets 'base_domain' twice"),
            ("hunter2", "entry 1 is not key=value"),
            ("workers=a; Secret Value=x", "has an unknown key (entry 2)"),
            // Shaped like a key, but far from every one: it may be a secret, so never echoed.
            ("0123456789abcdef0123hunter2=", "has an unknown key (entry 1)"),
            (
                "admin_token=s3cret",
                "names 'admin_token', which is no setting: give the token's SHA-256 as admin_token_sha256",
            ),
            (
                "postgres_url=postgres://u:s3cret@db/x",
                "names 'postgres_url', which is an application variable of its own, not a setting",
            ),
        ] {
            let error = Settings::parse(value).unwrap_err();
            assert_eq!(
                (error.variable, error.problem.as_str()),
                ("settings", problem),
                "{value}"
            );
            assert!(!error.problem.contains("s3cret") && !error.problem.contains("hunter2"));
        }
    }

    /// The table's defaults, bounds and choices are what the parsers accept: every default
    /// parses, every bound holds on both sides, every choice is taken and nothing else is.
    #[test]
    fn the_parsers_accept_what_the_settings_table_says() {
        use crate::settings_table::Kind;
        config(&[]).unwrap().check_all().unwrap();
        let refused = |name: &str, value: &str| {
            let problem = config(&[(name, value)]).and_then(|config| config.check_all());
            assert_eq!(
                problem.map_err(|e| e.variable),
                Err(setting_name(name)),
                "{name}={value}"
            );
        };
        let accepted = |name: &str, value: &str| {
            config(&[(name, value)])
                .and_then(|c| c.check_all())
                .unwrap_or_else(|e| panic!("{name}={value}: {e:?}"));
        };
        for setting in SETTINGS {
            match setting.kind {
                Kind::Number { min, .. } => {
                    accepted(setting.name, &min.to_string());
                    if min > 0 {
                        refused(setting.name, &(min - 1).to_string());
                    }
                    refused(setting.name, "a lot");
                }
                Kind::Choice(words) => {
                    for word in words {
                        accepted(setting.name, word);
                    }
                    refused(setting.name, "something else");
                }
                Kind::Host => refused(setting.name, "not a host"),
                Kind::Hosts => refused(setting.name, "ok.example, not a host"),
                Kind::Namespace => refused(setting.name, "a:b"),
                Kind::UrlTemplate => refused(setting.name, "ftp://{worker}.x.test"),
                Kind::RateLimits => refused(setting.name, "*:3/fortnight"),
                Kind::Breakers => refused(setting.name, "*:5"),
                Kind::Workers => refused(setting.name, "ok,bad_name"),
                Kind::Sha256 => {
                    accepted(setting.name, &"aB".repeat(32));
                    refused(setting.name, "s3cret");
                    refused(setting.name, &"g".repeat(64));
                }
                Kind::Origins => {
                    accepted(setting.name, "*");
                    accepted(setting.name, "https://console.example.com, http://localhost:5173");
                    refused(setting.name, "console.example.com");
                    refused(setting.name, "*, https://console.example.com");
                }
                Kind::Names | Kind::Text => {}
            }
        }
    }

    fn setting_name(name: &str) -> &'static str {
        crate::settings_table::setting_named(name).unwrap().name
    }

    #[test]
    fn names_the_variable_that_is_wrong() {
        assert_eq!(
            Limit::MaxBodyBytes.parse(Some("10MB".into())).unwrap_err().variable,
            "max_body_bytes"
        );
        assert_eq!(
            Limit::MaxLoopCount.parse(Some("-1".into())).unwrap_err().variable,
            "max_loop_count"
        );
        assert_eq!(Limit::MaxLoopCount.parse(Some(" 0 ".into())), Ok(0));
        assert_eq!(
            config(&[("upstream_timeout_ms", "0")]).unwrap_err().variable,
            "upstream_timeout_ms"
        );
        assert_eq!(config(&[("log_level", "loud")]).unwrap_err().variable, "log_level");
        assert_eq!(config(&[("base_domain", "")]).unwrap_err().variable, "base_domain");
    }

    #[test]
    fn remote_members_come_from_the_template_and_the_list() {
        assert!(matches!(lookups(&[]).unwrap().remote, Ok(None)));
        let from_database = lookups(&[("worker_url_template", "http://{worker}.workers.test")]).unwrap();
        assert_eq!(from_database.remote.unwrap().unwrap().members, RemoteMembers::Database);
        let listed = lookups(&[
            ("worker_url_template", "https://libra-{worker}.fermyon.app"),
            ("remote_workers", "a,b"),
        ])
        .unwrap();
        assert_eq!(
            listed.remote.unwrap().unwrap().members,
            RemoteMembers::Listed("a,b".into())
        );
        // A template that loops back is refused, but only remote requests need it.
        let looping = lookups(&[("worker_url_template", "http://{worker}.localhost:3000")]).unwrap();
        assert_eq!(looping.remote.unwrap_err().variable, "worker_url_template");
    }

    #[test]
    fn the_namespace_is_a_safe_key_prefix() {
        assert_eq!(lookups(&[("namespace", " prod.eu-1 ")]).unwrap().namespace, "prod.eu-1");
        for bad in ["", "a:b", "a b", &"n".repeat(64)] {
            assert_eq!(
                lookups(&[("namespace", bad)]).unwrap_err().variable,
                "namespace",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_bad_worker_entry_routes_nothing_and_is_reported_by_the_namespace_endpoints() {
        let config = config_of(&[("workers", "ok,bad_name,api")]);
        assert!(config.has_worker(&WorkerName::parse("ok", &[]).unwrap()));
        assert_eq!(config.workers().unwrap_err().variable, "workers");
        assert_eq!(
            config_of(&[("workers", "api")]).workers().unwrap_err().variable,
            "workers"
        );
    }
}
