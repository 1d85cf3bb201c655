//! Reading the dispatcher's Spin variables, failing closed: a variable whose provider fails (a
//! Vault that is down, say) is never replaced by its default. The request that needs it gets
//! `503 configuration_unavailable` and its log line names the variable, never a value; requests
//! that do not need it keep working. A variable (or a key of `settings`) that is read but
//! unusable is `500 configuration_error`, its log line naming it and the reason.

use spin_sdk::wit::wasi::config::store;

use crate::config::{self, Config, SETTINGS_VARIABLE, Settings};
use crate::error::DispatchError;

/// One component variable of the dispatcher: `Ok(None)` when the host does not define it,
/// `Err` when its provider failed.
fn read(name: &'static str) -> Result<Option<String>, DispatchError> {
    store::get(name).map_err(|_| DispatchError::ConfigurationUnavailable { variable: name })
}

/// What every request reads first, in one host call: the `settings` variable, with the routing
/// keys parsed (the others are parsed when the request needs them).
pub fn routing() -> Result<Config, DispatchError> {
    let value = read(SETTINGS_VARIABLE)?.unwrap_or_default();
    let settings = Settings::parse(&value).map_err(DispatchError::Configuration)?;
    Config::from_settings(settings).map_err(DispatchError::Configuration)
}

/// A variable read on its own (a secret), trimmed; its default when the host does not define it.
pub fn single(name: &'static str) -> Result<String, DispatchError> {
    Ok(read(name)?
        .unwrap_or_else(|| config::default_of(name).to_string())
        .trim()
        .to_string())
}
