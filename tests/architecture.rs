//! The module graph of `src/` has no cycle: a module that uses another cannot be used by it,
//! directly or through others, so each can be read, tested and changed from the bottom up
//! (hostname primitives, names, settings; then the pipeline's phases; then the glue).
//!
//! Each file under `src/` is a node. An edge is a path the file's code names: `crate::a::b::...`
//! or `super::...` (in `use` items and inline), resolved to the deepest file it reaches; `mod`
//! declarations are not uses. A file's `#[cfg(test)]` module is left out: tests may reach
//! anywhere. The test fails with the cycle it found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `crate::a::b` → the module path `["a", "b"]` of each file, and back.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut modules = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut segments: Vec<String> = relative.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if segments.last().is_some_and(|s| s == "mod" || s == "lib") {
                segments.pop();
            }
            modules.insert(segments, path);
        }
    }
    modules
}

/// The code of a file without its `#[cfg(test)] mod ... { }` block and its comments.
fn production_code(text: &str) -> String {
    let without_tests = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => text,
    };
    without_tests
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file names, resolved against `module` (the file's own path).
fn uses(code: &str, module: &[String], known: &BTreeMap<Vec<String>, PathBuf>) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    for (start, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        if start > 0 && (is_ident(bytes[start - 1]) || bytes[start - 1] == b':') {
            continue;
        }
        let rest = &code[start..];
        let path_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let mut segments: Vec<&str> = rest[..path_end].split("::").filter(|s| !s.is_empty()).collect();
        let mut base: Vec<String> = Vec::new();
        if segments.first() == Some(&"crate") {
            segments.remove(0);
        } else {
            // `super` is the parent of this file's module (for `a/mod.rs`, the crate root).
            base = module.to_vec();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
        }
        // A group (`crate::a::{b, c}`) names each of its members.
        let group = rest[path_end..]
            .strip_prefix('{')
            .and_then(|g| g.split('}').next())
            .map(|g| {
                g.split(',')
                    .map(|item| item.trim().split("::").next().unwrap_or("").trim().to_string())
                    .filter(|item| !item.is_empty())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let mut candidates: Vec<Vec<String>> = Vec::new();
        let mut full = base.clone();
        full.extend(segments.iter().map(|s| s.to_string()));
        if group.is_empty() {
            candidates.push(full);
        } else {
            for item in group {
                let mut path = full.clone();
                path.push(item);
                candidates.push(path);
            }
        }
        for mut path in candidates {
            while !known.contains_key(&path) {
                path.pop();
            }
            if path != module && !path.is_empty() {
                found.insert(path);
            }
        }
    }
    // A parent names its children by their bare names (`mod forward;` ... `forward::run`).
    for line in code.lines() {
        let line = line.trim();
        let declaration = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "));
        let Some(child) = declaration.and_then(|rest| rest.strip_suffix(';')) else {
            continue;
        };
        let mut path = module.to_vec();
        path.push(child.to_string());
        let named = code
            .match_indices(&format!("{child}::"))
            .any(|(at, _)| at == 0 || !(is_ident(bytes[at - 1]) || bytes[at - 1] == b':'));
        if named && known.contains_key(&path) {
            found.insert(path);
        }
    }
    found
}

#[test]
fn the_module_graph_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = modules
        .iter()
        .map(|(module, path)| {
            let code = production_code(&std::fs::read_to_string(path).unwrap());
            (module.clone(), uses(&code, module, &modules))
        })
        .collect();
    // Depth-first search; a node met again on the current path closes a cycle.
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            let names: Vec<String> = cycle.iter().map(|m| format!("crate::{}", m.join("::"))).collect();
            panic!("a module cycle: {}", names.join(" -> "));
        }
    }
    assert!(graph.len() > 20, "the graph was read: {} modules", graph.len());
}

#[test]
fn the_checker_finds_a_cycle_and_resolves_paths() {
    let known: BTreeMap<Vec<String>, PathBuf> = [
        vec!["a".to_string()],
        vec!["a".to_string(), "b".to_string()],
        vec!["c".to_string()],
    ]
    .into_iter()
    .map(|m| (m, PathBuf::new()))
    .collect();
    let found = uses(
        "use crate::a::b::Thing;\nuse crate::{c, a};\nfn f() { super::b::g(); }",
        &["a".to_string(), "x".to_string()],
        &known,
    );
    let parent = uses("mod b;\nfn f() { b::g(); }", &["a".to_string()], &known);
    assert_eq!(parent, [vec!["a".to_string(), "b".to_string()]].into_iter().collect());
    let expected: BTreeSet<Vec<String>> = [
        vec!["a".to_string(), "b".to_string()],
        vec!["c".to_string()],
        vec!["a".to_string()],
    ]
    .into_iter()
    .collect();
    assert_eq!(found, expected);
    assert_eq!(
        production_code("use crate::a; // crate::c\n#[cfg(test)]\nmod tests { use crate::c; }"),
        "use crate::a; "
    );
}
