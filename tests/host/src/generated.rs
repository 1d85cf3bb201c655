//! The parts of the repository generated from the settings table (`src/settings_table.rs`):
//! what `libra-check generate` writes and `manifest.rs` checks.

use anyhow::{Context, Result};
use libra_dispatcher::settings_table;

use crate::project_root;

/// Each generated part: the file, the marker lines around the part, and what belongs there.
pub fn parts() -> Vec<(&'static str, &'static str, &'static str, String)> {
    vec![
        (
            "spin.toml",
            "# >>> the keys of `settings`",
            "# <<< the keys of `settings`",
            settings_table::spin_toml_comment(),
        ),
        (
            "docs/configuration.md",
            "<!-- >>> the keys of `settings`",
            "<!-- <<< the keys of `settings`",
            settings_table::markdown_table(),
        ),
        (
            "docs/configuration.md",
            "<!-- >>> the application variables",
            "<!-- <<< the application variables",
            settings_table::variables_markdown_table(),
        ),
    ]
}

/// `text` with the lines between the marker lines `start` and `end` replaced by `generated`.
pub fn between(text: &str, start: &str, end: &str, generated: &str, file: &str) -> Result<String> {
    let from = text
        .find(start)
        .with_context(|| format!("{file}: no marker {start:?}"))?;
    let from = text[from..].find('\n').map(|n| from + n + 1).context("marker line")?;
    let to = text[from..]
        .find(end)
        .map(|n| from + n)
        .with_context(|| format!("{file}: no marker {end:?}"))?;
    Ok([&text[..from], generated, &text[to..]].concat())
}

/// The files whose generated parts differ from the table, each with its up-to-date text.
pub fn stale() -> Result<Vec<(&'static str, String)>> {
    let mut files: Vec<(&'static str, String, String)> = Vec::new();
    for (file, start, end, generated) in parts() {
        let position = files.iter().position(|(name, _, _)| *name == file);
        let index = match position {
            Some(index) => index,
            None => {
                let text =
                    std::fs::read_to_string(project_root().join(file)).with_context(|| format!("reading {file}"))?;
                files.push((file, text.clone(), text));
                files.len() - 1
            }
        };
        files[index].2 = between(&files[index].2, start, end, &generated, file)?;
    }
    Ok(files
        .into_iter()
        .filter(|(_, original, updated)| original != updated)
        .map(|(file, _, updated)| (file, updated))
        .collect())
}
