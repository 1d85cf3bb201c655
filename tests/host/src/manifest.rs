//! The parts of a Spin manifest (`spin_manifest_version = 2`) the test host acts on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    pub trigger: Triggers,
    pub component: BTreeMap<String, Component>,
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Variable {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Triggers {
    pub http: Vec<HttpTrigger>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpTrigger {
    pub route: Route,
    pub component: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Route {
    Path(String),
    Private { private: bool },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Component {
    pub source: String,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut manifest: Manifest = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if manifest.spin_manifest_version != 2 {
            bail!("only spin_manifest_version = 2 is supported");
        }
        manifest.dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        for trigger in &manifest.trigger.http {
            if !manifest.component.contains_key(&trigger.component) {
                bail!("trigger names unknown component '{}'", trigger.component);
            }
        }
        Ok(manifest)
    }

    pub fn source_path(&self, component: &str) -> Option<PathBuf> {
        self.component.get(component).map(|c| self.dir.join(&c.source))
    }

    /// Components whose only route is private: the namespace's workers.
    pub fn private_components(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .trigger
            .http
            .iter()
            .filter(|t| matches!(t.route, Route::Private { private: true }))
            .map(|t| t.component.clone())
            .collect();
        ids.sort();
        ids
    }

    /// `(route, component)` for every public route.
    pub fn public_routes(&self) -> Vec<(String, String)> {
        self.trigger
            .http
            .iter()
            .filter_map(|t| match &t.route {
                Route::Path(path) => Some((path.clone(), t.component.clone())),
                Route::Private { .. } => None,
            })
            .collect()
    }
}
