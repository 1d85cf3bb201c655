//! The dispatcher's own parsers for tools that are not Rust, so nothing re-implements them:
//!
//!   libra-check settings [HOST...] < value
//!       reads a `settings` value on stdin and prints, as JSON, what the dispatcher makes of it:
//!       `ok`, the `problem` it would refuse it for (500 configuration_error on every request
//!       that needs the key), and every key's effective value, the normalised hosts, the local
//!       workers, every reserved name and the parsed `worker_url_template`; and each HOST as the
//!       dispatcher normalises a `Host` header (`probe_hosts`).
//!       `scripts/check-spinapp.py` calls it for the `settings` of a SpinApp.
//!   libra-check generate [--check]
//!       writes what is generated from the settings table (`src/settings_table.rs`): the list in
//!       `spin.toml`'s comment and the table in `docs/configuration.md`. With `--check`, writes
//!       nothing and fails if either is out of date.

use std::io::Read;

use anyhow::{Result, bail};
use libra_dispatcher::config::{Config, ConfigError, Settings};
use libra_dispatcher::pipeline::worker_name::BUILT_IN_RESERVED;
use libra_dispatcher::settings_table::{self, SETTINGS};
use libra_test_host::project_root;
use serde_json::{Value, json};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("settings") => {
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let mut report = settings(&value);
            let hosts: serde_json::Map<String, Value> = args[1..]
                .iter()
                .map(|host| {
                    let name = libra_dispatcher::hostname::normalise_name(host.trim()).ok();
                    (host.clone(), json!(name))
                })
                .collect();
            report["probe_hosts"] = Value::Object(hosts);
            println!("{report}");
            Ok(())
        }
        Some("generate") => generate(args.get(1).map(String::as_str) == Some("--check")),
        _ => bail!("usage: libra-check settings [HOST...] < value | libra-check generate [--check]"),
    }
}

fn problem(error: &ConfigError) -> Value {
    if settings_table::is_setting(error.variable) {
        json!({ "variable": "settings", "setting": error.variable, "problem": error.problem })
    } else {
        json!({ "variable": error.variable, "problem": error.problem })
    }
}

/// What the dispatcher makes of a `settings` value.
fn settings(value: &str) -> Value {
    let parsed = Settings::parse(value);
    let given = parsed.clone().unwrap_or_default();
    let effective: serde_json::Map<String, Value> = SETTINGS
        .iter()
        .map(|setting| {
            let value = given.get(setting.name).unwrap_or(setting.default);
            (setting.name.to_string(), Value::String(value.to_string()))
        })
        .collect();
    let config = parsed.and_then(Config::from_settings);
    let checked = config
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|config| config.check_all());
    let mut report = json!({
        "ok": checked.is_ok(),
        "problem": checked.as_ref().err().map(problem),
        "effective": effective,
    });
    if let Ok(config) = &config {
        let mut reserved: Vec<String> = BUILT_IN_RESERVED.iter().map(|name| name.to_string()).collect();
        reserved.extend(config.reserved_names.iter().cloned());
        report["base_domain"] = json!(config.base_domain);
        report["dispatcher_hosts"] = json!(config.dispatcher_hosts);
        report["reserved_names"] = json!(reserved);
        report["local_workers"] = match config.workers() {
            Ok(workers) => json!(workers.iter().map(|w| w.as_str()).collect::<Vec<_>>()),
            Err(_) => Value::Null,
        };
        if let Ok(Some(remote)) = config.remote() {
            report["worker_url_template"] = json!({
                "scheme": remote.template.scheme.as_str(),
                "host": remote.template.host_pattern(),
                "port": remote.template.port(),
            });
        }
    }
    report
}

/// The generated parts of `spin.toml` and `docs/configuration.md`.
fn generate(check: bool) -> Result<()> {
    let stale = libra_test_host::generated::stale()?;
    if check && !stale.is_empty() {
        let files: Vec<&str> = stale.iter().map(|(file, _)| *file).collect();
        bail!(
            "out of date with src/settings_table.rs: {}; run `cargo run -p libra-test-host --bin libra-check -- generate`",
            files.join(", ")
        );
    }
    if !check {
        for (file, text) in stale {
            std::fs::write(project_root().join(file), text)?;
            println!("libra-check: wrote {file}");
        }
    }
    Ok(())
}
