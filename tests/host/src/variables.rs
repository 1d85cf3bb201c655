//! Spin's variables: application variables (manifest defaults, overridden like
//! `spin up --variable`), expanded into each component's `{{ name }}` templates.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};

use crate::HostState;
use crate::bindings::fermyon::spin::variables::{self, Error};
use crate::bindings::wasi::config::store;
use crate::manifest::Variable;

pub struct Resolver {
    values: BTreeMap<String, Option<String>>,
    /// Application variables resolved for guests' reads: each is a provider lookup on Spin.
    guest_lookups: std::sync::atomic::AtomicU64,
    /// Variables whose provider fails (as a Vault that is down does): reading one is an error.
    failing: std::collections::BTreeSet<String>,
}

impl Resolver {
    pub fn new(
        declared: &BTreeMap<String, Variable>,
        overrides: &BTreeMap<String, String>,
        failing: &std::collections::BTreeSet<String>,
    ) -> Result<Resolver> {
        let mut values = BTreeMap::new();
        for (name, variable) in declared {
            let value = overrides.get(name).cloned().or_else(|| variable.default.clone());
            if variable.required && value.is_none() {
                bail!("required variable '{name}' has no value");
            }
            values.insert(name.clone(), value);
        }
        if let Some(unknown) = overrides.keys().find(|name| !declared.contains_key(*name)) {
            bail!("variable '{unknown}' is not declared in the manifest");
        }
        Ok(Resolver {
            values,
            guest_lookups: Default::default(),
            failing: failing.clone(),
        })
    }

    /// Whether Spin's per-instance resolution of every application variable fails, which it does
    /// before a component's first outbound request of any kind (`OutboundNetworkingFactor`'s
    /// `resolver.prepare()`): then every outbound request is denied. Only the app's own
    /// variables are resolved: a provider that fails for a name the app does not declare is
    /// never asked.
    pub fn prepare_fails(&self) -> bool {
        self.failing.iter().any(|name| self.values.contains_key(name))
    }

    /// Expands a manifest entry such as `allowed_outbound_hosts`, ignoring failing providers (the
    /// requests it allows are refused anyway while they fail: see [`Resolver::prepare_fails`]).
    pub fn expand_lenient(&self, template: &str) -> Result<String> {
        Resolver {
            values: self.values.clone(),
            guest_lookups: Default::default(),
            failing: Default::default(),
        }
        .expand(template)
    }

    /// How many application variables guests' reads have resolved so far.
    pub fn guest_lookups(&self) -> u64 {
        self.guest_lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Expands `{{ name }}` references to application variables.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| anyhow!("unclosed template in '{template}'"))?
                + start;
            let name = rest[start + 2..end].trim();
            if self.failing.contains(name) {
                bail!("Failed to check Vault for config");
            }
            let value = self
                .values
                .get(name)
                .ok_or_else(|| anyhow!("template names unknown variable '{name}'"))?;
            out.push_str(
                value
                    .as_deref()
                    .ok_or_else(|| anyhow!("variable '{name}' has no value"))?,
            );
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> Result<String, Error> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::InvalidName(name));
        }
        let component = &self.app.components[&self.component_id];
        let Some(template) = component.variables.get(&name) else {
            return Err(Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                self.component_id
            )));
        };
        let variables = &self.app.variables;
        variables.guest_lookups.fetch_add(
            template.matches("{{").count() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        variables.expand(template).map_err(|e| Error::Provider(e.to_string()))
    }
}

/// `wasi:config/store`, as Spin maps it onto the same variables: an undefined or invalid name is
/// `none`, and `get-all` resolves every variable the component declares in one call.
impl store::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<String>, store::Error> {
        match <HostState as variables::Host>::get(self, key).await {
            Ok(value) => Ok(Some(value)),
            Err(Error::Undefined(_) | Error::InvalidName(_)) => Ok(None),
            Err(Error::Provider(message)) => Err(store::Error::Upstream(message)),
            Err(Error::Other(message)) => Err(store::Error::Io(message)),
        }
    }

    async fn get_all(&mut self) -> Result<Vec<(String, String)>, store::Error> {
        let component = &self.app.components[&self.component_id];
        component
            .variables
            .iter()
            .map(|(name, template)| {
                let value = self
                    .app
                    .variables
                    .expand(template)
                    .map_err(|e| store::Error::Upstream(e.to_string()))?;
                Ok((name.clone(), value))
            })
            .collect()
    }
}
