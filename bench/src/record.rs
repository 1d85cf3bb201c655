//! `libra-bench record <mode> <command line> < output`: puts a run's output into
//! `docs/performance.md`, between that page's `bench:begin` and `bench:end` markers, one section
//! per mode (the latest run replaces the one before), headed by when, on what commit and on
//! what machine it ran. So the page's numbers come from a run, never from an edit by hand.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;

use anyhow::{Context, Result, bail};
use libra_test_host::project_root;

use crate::MODES;

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";
const INTRO: &str = "The sections below are written by `scripts/bench`, one per mode, each from its latest run.";

pub fn run(args: &[String]) -> Result<()> {
    let [mode, command] = args else {
        bail!("usage: libra-bench record <mode> <command line> < output");
    };
    if !MODES.iter().any(|(name, _, _)| name == mode) {
        bail!("no mode {mode:?}");
    }
    let mut output = String::new();
    std::io::stdin().read_to_string(&mut output)?;
    let path = project_root().join("docs/performance.md");
    let page = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let section = section(mode, command, &Run::now(), &output);
    std::fs::write(&path, with_section(&page, mode, &section)?)?;
    println!("bench: recorded `{mode}` in docs/performance.md");
    Ok(())
}

/// Where and when a run happened.
pub struct Run {
    pub date: String,
    pub commit: String,
    pub machine: String,
}

impl Run {
    fn now() -> Run {
        let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let commit = command_line("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let dirty =
            command_line("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        let commit = if dirty {
            format!("{commit} with uncommitted changes")
        } else {
            commit
        };
        let cpu = read("/proc/cpuinfo")
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        let memory = read("/proc/meminfo")
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("MemTotal"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown memory".into());
        let kernel = read("/proc/sys/kernel/osrelease")
            .map(|k| format!("Linux {}", k.trim()))
            .unwrap_or_default();
        let spin = command_line("spin", &["--version"]).unwrap_or_else(|| "no spin".into());
        let rustc = command_line("rustc", &["--version"]).unwrap_or_default();
        Run {
            date,
            commit,
            machine: [format!("{cores} × {cpu}"), memory, kernel, spin, rustc]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// One mode's section: a heading, the run's facts, and its output as printed.
pub fn section(mode: &str, command: &str, run: &Run, output: &str) -> String {
    format!(
        "<!-- bench:{mode} -->\n### `{mode}`\n\n`{command}`, {date}, commit {commit}, on {machine}.\n\n```text\n{output}\n```\n<!-- /bench:{mode} -->",
        date = run.date,
        commit = run.commit,
        machine = run.machine,
        output = output.trim_end(),
    )
}

/// `page` with `section` as the section of `mode`, the sections in the order of [`MODES`].
pub fn with_section(page: &str, mode: &str, section: &str) -> Result<String> {
    let (Some(begin), Some(end)) = (page.find(BEGIN), page.find(END)) else {
        bail!("docs/performance.md lacks the {BEGIN} and {END} markers");
    };
    if end < begin {
        bail!("docs/performance.md has {END} before {BEGIN}");
    }
    let inside = &page[begin + BEGIN.len()..end];
    let mut sections = BTreeMap::new();
    for (name, _, _) in MODES {
        let open = format!("<!-- bench:{name} -->");
        let close = format!("<!-- /bench:{name} -->");
        if let (Some(from), Some(to)) = (inside.find(&open), inside.find(&close)) {
            sections.insert(*name, inside[from..to + close.len()].to_string());
        }
    }
    let mode = MODES
        .iter()
        .find(|(name, _, _)| *name == mode)
        .context("no such mode")?
        .0;
    sections.insert(mode, section.to_string());
    let ordered: Vec<&str> = MODES
        .iter()
        .filter_map(|(name, _, _)| sections.get(name).map(String::as_str))
        .collect();
    Ok(format!(
        "{}{BEGIN}\n{INTRO}\n\n{}\n{}",
        &page[..begin],
        ordered.join("\n\n"),
        &page[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        Run {
            date: "2026-12-07T01:00:00Z".into(),
            commit: "abc1234".into(),
            machine: "2 × Test CPU".into(),
        }
    }

    #[test]
    fn a_run_replaces_its_modes_section_and_keeps_the_others_in_order() {
        let page = format!("# Performance\n\nprose\n\n{BEGIN}\nnone has been recorded yet.\n{END}\n\nafter\n");
        let noisy = section("noisy", "scripts/bench noisy", &run(), "quiet 100 req/s\n");
        let page = with_section(&page, "noisy", &noisy).unwrap();
        assert!(!page.contains("none has been recorded"), "{page}");
        assert!(page.contains("quiet 100 req/s"));
        let spin = section("spin", "scripts/bench spin", &run(), "c/l 0.9");
        let page = with_section(&page, "spin", &spin).unwrap();
        // MODES order: spin before noisy, whatever the order of the runs.
        assert!(page.find("### `spin`").unwrap() < page.find("### `noisy`").unwrap());
        let again = section("noisy", "scripts/bench noisy 4", &run(), "quiet 120 req/s");
        let page = with_section(&page, "noisy", &again).unwrap();
        assert!(
            page.contains("quiet 120 req/s") && !page.contains("quiet 100 req/s"),
            "{page}"
        );
        assert_eq!(page.matches("### `noisy`").count(), 1);
        assert!(page.starts_with("# Performance\n\nprose\n\n") && page.ends_with(&format!("{END}\n\nafter\n")));
        assert!(page.contains("`scripts/bench noisy 4`, 2026-12-07T01:00:00Z, commit abc1234, on 2 × Test CPU."));
    }

    #[test]
    fn a_page_without_markers_is_refused() {
        assert!(with_section("# Performance\n", "spin", "x").is_err());
    }
}
