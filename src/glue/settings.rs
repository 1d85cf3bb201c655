//! Reading the dispatcher's Spin variables, failing closed: a variable whose provider fails (a
//! Vault that is down, say) is never replaced by its default. The request that needs it gets
//! `503 configuration_unavailable` and the log names the variable, never a value; requests that
//! do not need it keep working. A variable that is read but unusable is `500
//! configuration_error`, logged with the reason.

use spin_sdk::wit::wasi::config::store;

use super::{io, write_log_line};
use crate::config::{self, Config, ConfigError, Limit, LookupConfig, MissSettings, Remote};
use crate::error::DispatchError;

/// One component variable of the dispatcher: `Ok(None)` when the host does not define it,
/// `Err` when its provider failed.
fn read(request_id: &str, name: &'static str) -> Result<Option<String>, DispatchError> {
    store::get(name).map_err(|_| {
        write_log_line(
            serde_json::json!({
                "time": io::now_rfc3339(),
                "level": "error",
                "requestId": request_id,
                "message": "a variable cannot be read: its provider failed",
                "variable": name,
            })
            .to_string(),
        );
        DispatchError::ConfigurationUnavailable
    })
}

/// A bundle's values by name (`None`: the bundle is not defined, so every value is its default).
fn bundle(
    request_id: &str,
    name: &'static str,
    names: &'static [&'static str],
) -> Result<Option<Vec<(&'static str, String)>>, DispatchError> {
    let Some(value) = read(request_id, name)? else {
        return Ok(None);
    };
    let get = config::unbundle(name, &value, names).map_err(|problem| invalid(request_id, &problem))?;
    Ok(Some(names.iter().map(|n| (*n, get(n).unwrap_or_default())).collect()))
}

fn lookup_in<'a>(values: &'a Option<Vec<(&'static str, String)>>) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        values
            .as_ref()?
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.clone())
    }
}

/// What every request needs: the `routing` bundle.
pub fn routing(request_id: &str) -> Result<Config, DispatchError> {
    let values = bundle(request_id, "routing", config::ROUTING)?;
    Config::from_lookup(lookup_in(&values)).map_err(|problem| invalid(request_id, &problem))
}

/// The namespace: the prefix of every cache key.
pub fn namespace(request_id: &str) -> Result<String, DispatchError> {
    config::namespace_from(read(request_id, "namespace")?).map_err(|problem| invalid(request_id, &problem))
}

/// The remote members (the `remote` bundle). A template that is read but unusable stays inside,
/// so it fails only the requests that need a remote worker.
pub fn remote(request_id: &str, config: &Config) -> Result<Result<Option<Remote>, ConfigError>, DispatchError> {
    let values = bundle(request_id, "remote", config::REMOTE)?;
    Ok(config::remote_from(lookup_in(&values), config))
}

/// What a cache miss needs (the `database` bundle).
pub fn misses(request_id: &str) -> Result<MissSettings, DispatchError> {
    let values = bundle(request_id, "database", config::DATABASE)?;
    MissSettings::from_lookup(lookup_in(&values)).map_err(|problem| invalid(request_id, &problem))
}

/// The limits of one request, each read from its variable the first time the request needs it
/// and kept for the rest of the request.
pub struct Limits<'a> {
    request_id: &'a str,
    max_body_bytes: std::cell::Cell<Option<u64>>,
    max_loop_count: std::cell::Cell<Option<u64>>,
}

impl<'a> Limits<'a> {
    pub fn new(request_id: &'a str) -> Limits<'a> {
        Limits {
            request_id,
            max_body_bytes: Default::default(),
            max_loop_count: Default::default(),
        }
    }
}

impl crate::pipeline::Limits for Limits<'_> {
    fn get(&self, limit: Limit) -> Result<u64, DispatchError> {
        let kept = match limit {
            Limit::MaxBodyBytes => &self.max_body_bytes,
            Limit::MaxLoopCount => &self.max_loop_count,
        };
        if let Some(value) = kept.get() {
            return Ok(value);
        }
        let value = limit
            .parse(read(self.request_id, limit.variable())?)
            .map_err(|problem| invalid(self.request_id, &problem))?;
        kept.set(Some(value));
        Ok(value)
    }
}

/// Everything custom domains and remote workers need, for the endpoints that describe it.
pub fn lookups(request_id: &str, config: &Config) -> Result<LookupConfig, DispatchError> {
    Ok(LookupConfig {
        namespace: namespace(request_id)?,
        remote: remote(request_id, config)?,
        misses: misses(request_id)?,
    })
}

/// A variable read on its own (a secret, or a setting one endpoint uses), trimmed; its default
/// when the host does not define it.
pub fn single(request_id: &str, name: &'static str) -> Result<String, DispatchError> {
    Ok(read(request_id, name)?
        .unwrap_or_else(|| config::default_of(name).to_string())
        .trim()
        .to_string())
}

/// Logs which variable is unusable and why (for the operator, never the client) and gives the
/// error the client gets.
pub fn invalid(request_id: &str, problem: &ConfigError) -> DispatchError {
    write_log_line(
        serde_json::json!({
            "time": io::now_rfc3339(),
            "level": "error",
            "requestId": request_id,
            "message": "a variable is invalid",
            "variable": problem.variable,
            "problem": problem.problem,
        })
        .to_string(),
    );
    DispatchError::Configuration
}
