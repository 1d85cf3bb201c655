//! Reading the dispatcher's Spin variables, failing closed: a variable whose provider fails (a
//! Vault that is down, say) is never replaced by its default. The request that needs it gets
//! `503 configuration_unavailable` and the log names the variable, never a value; requests that
//! do not need it keep working. A variable (or a key of `settings`) that is read but unusable is
//! `500 configuration_error`, logged with the reason.

use spin_sdk::wit::wasi::config::store;

use super::{io, write_log_line};
use crate::config::{self, Config, ConfigError, Limit, SETTINGS_VARIABLE, Settings};
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

/// What every request reads first, in one host call: the `settings` variable, with the routing
/// keys parsed (the others are parsed when the request needs them).
pub fn routing(request_id: &str) -> Result<Config, DispatchError> {
    let value = read(request_id, SETTINGS_VARIABLE)?.unwrap_or_default();
    let settings = Settings::parse(&value).map_err(|problem| invalid(request_id, &problem))?;
    Config::from_settings(settings).map_err(|problem| invalid(request_id, &problem))
}

/// The limits of one request, from the settings it has read: each parsed only when the request
/// can be refused by it, so an unusable limit fails only those requests.
pub struct Limits<'a> {
    pub request_id: &'a str,
    pub config: &'a Config,
}

impl crate::pipeline::Limits for Limits<'_> {
    fn get(&self, limit: Limit) -> Result<u64, DispatchError> {
        self.config
            .limit(limit)
            .map_err(|problem| invalid(self.request_id, &problem))
    }
}

/// A variable read on its own (a secret), trimmed; its default when the host does not define it.
pub fn single(request_id: &str, name: &'static str) -> Result<String, DispatchError> {
    Ok(read(request_id, name)?
        .unwrap_or_else(|| config::default_of(name).to_string())
        .trim()
        .to_string())
}

/// Logs which variable or setting is unusable and why (for the operator, never the client) and
/// gives the error the client gets.
pub fn invalid(request_id: &str, problem: &ConfigError) -> DispatchError {
    let mut line = serde_json::json!({
        "time": io::now_rfc3339(),
        "level": "error",
        "requestId": request_id,
        "message": "a variable is invalid",
        "variable": problem.variable,
        "problem": problem.problem,
    });
    if config::is_setting(problem.variable) {
        line["variable"] = SETTINGS_VARIABLE.into();
        line["setting"] = problem.variable.into();
    }
    write_log_line(line.to_string());
    DispatchError::Configuration
}
