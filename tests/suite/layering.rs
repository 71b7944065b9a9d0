//! The code's layers run one way: each top-level module may import only modules of its own layer
//! or below, modules of one layer never import each other in a circle, and nothing below the HTTP
//! surface names actix-web. `docs/architecture.md` explains the layers; this is their check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A module not listed fails the check, so a new one must be placed.
const LAYERS: &[&[&str]] = &[
    &["error", "clock", "files", "input"],
    &["config", "telemetry"],
    &["db"],
    &["audit"],
    &[
        "auth",
        "records",
        "events",
        "jurisdiction",
        "outbox",
        "checklists",
    ],
    &["clinics"],
    &[
        "clients",
        "credentials",
        "lots",
        "sterilisation",
        "incidents",
        "inspectors",
    ],
    &["compliance"],
    &["sessions", "exports"],
    &["reactions", "mail"],
    &["demo"],
    &["api"],
    // The pages: over the same use cases as the API, with its admission and extractors.
    &["web"],
];

/// Files that build the application and may name everything.
const TOP: &[&str] = &["lib.rs", "main.rs"];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/sterilisation/model.rs` → `sterilisation`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every top-level module a file names through `crate::`, outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for piece in code.split("crate::").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
        // `use crate::{a, b}` names several at once.
        if let Some(group) = code.split("crate::{").nth(1) {
            for name in group.split(['}', ',']).map(|n| n.trim()) {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

#[test]
fn imports_run_one_way_and_only_the_http_surface_names_actix() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap().display().to_string();
        if TOP.contains(&rel.as_str()) {
            continue;
        }
        let module = module_of(&src, file);
        let Some(own) = rank(&module) else {
            problems.push(format!(
                "{rel}: module `{module}` has no layer in tests/suite/layering.rs"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        if module != "api"
            && module != "web"
            && (text.contains("actix_web") || text.contains("actix_http"))
        {
            problems.push(format!("{rel}: names actix-web below the HTTP surface"));
        }
        for target in imports(&text) {
            if target == module {
                continue;
            }
            match rank(&target) {
                None => {}
                Some(theirs) if theirs > own => problems.push(format!(
                    "{rel}: `{module}` (layer {own}) imports `{target}` (layer {theirs}), a higher layer"
                )),
                Some(_) => {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    // Modules of one layer must not import each other in a circle.
    for (from, targets) in &edges {
        for to in targets {
            if rank(from) == rank(to) && edges.get(to).is_some_and(|t| t.contains(from)) {
                problems.push(format!("`{from}` and `{to}` import each other"));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} layering problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
