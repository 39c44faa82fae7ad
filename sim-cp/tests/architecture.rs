//! ARCHITECTURE.md stays true: its code map mentions every source file of
//! every crate, and the files it lists as holding `unsafe` are exactly the
//! source files that do.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository's root (this crate is `sim-cp/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

/// The workspace's crates (the members of the root `Cargo.toml`).
fn members() -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("members = [...]");
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every `.rs` file below `dir`, as paths from the repository's root.
fn rust_files(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(root()).unwrap_or(&p);
            out.push(rel.to_string_lossy().replace('\\', "/").replace("../", ""));
        }
    }
}

/// Every source file of every crate (its `src/` and build script).
fn source_files() -> Vec<String> {
    let mut files = Vec::new();
    for m in members() {
        rust_files(&root().join(&m).join("src"), &mut files);
        if root().join(&m).join("build.rs").exists() {
            files.push(format!("{m}/build.rs"));
        }
    }
    files.sort();
    files
}

/// Whether the code (comments aside) uses the keyword `unsafe`.
fn holds_unsafe(text: &str) -> bool {
    text.lines().any(|line| {
        let code = line.split("//").next().unwrap_or("");
        code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == "unsafe")
    })
}

/// The backticked file paths (`dir/file.rs`) between `<!-- begin: NAME -->` and `<!-- end: NAME -->`.
fn listed(doc: &str, name: &str) -> BTreeSet<String> {
    let begin = format!("<!-- begin: {name} -->");
    let end = format!("<!-- end: {name} -->");
    let start = doc.find(&begin).unwrap_or_else(|| panic!("{begin}")) + begin.len();
    let stop = start + doc[start..].find(&end).unwrap_or_else(|| panic!("{end}"));
    doc[start..stop]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|p| p.contains('/') && p.ends_with(".rs"))
        .map(str::to_string)
        .collect()
}

#[test]
fn unsafe_lives_exactly_in_the_files_architecture_lists() {
    let actual: BTreeSet<String> = source_files()
        .into_iter()
        .filter(|f| holds_unsafe(&std::fs::read_to_string(root().join(f)).unwrap()))
        .collect();
    let documented = listed(&architecture(), "unsafe files");
    let missing: Vec<_> = actual.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&actual).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "ARCHITECTURE.md's list of files holding `unsafe` is wrong:\n  \
         hold `unsafe` but are not listed: {missing:?}\n  \
         listed but hold none: {stale:?}"
    );
}

#[test]
fn the_unsafe_scanner_sees_code_and_skips_comments() {
    assert!(holds_unsafe("let x = unsafe { f() };"));
    assert!(holds_unsafe("pub unsafe fn f() {}"));
    assert!(!holds_unsafe(
        "// SAFETY: unsafe things\n#![deny(unsafe_code)]"
    ));
}

/// The part of `doc` from the line `heading` to the next heading of the
/// same level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc.find(&format!("\n{heading}\n")).expect(heading) + 1;
    let level = heading.split(' ').next().unwrap();
    let rest = &doc[start + heading.len()..];
    let end = rest
        .find(&format!("\n{level} "))
        .map_or(doc.len(), |e| start + heading.len() + e);
    &doc[start..end]
}

fn backticked(text: &str) -> BTreeSet<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_source_file_is_in_the_code_map() {
    let doc = architecture();
    let map = section(&doc, "## Code map");
    // The map's subsections, each under a heading naming its crates' folders.
    let subsections: Vec<&str> = map.split("\n### ").skip(1).collect();
    let mut members = members();
    // The longest folder first: `providers-under-test/c` before `providers-under-test`.
    members.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let mut missing = Vec::new();
    for file in source_files() {
        let member = members
            .iter()
            .find(|m| file.starts_with(&format!("{m}/")))
            .unwrap();
        let in_crate = &file[member.len() + 1..];
        let rel = in_crate.strip_prefix("src/").unwrap_or(in_crate);
        let heading = format!("`{member}/`");
        let text: String = subsections
            .iter()
            .filter(|s| s.lines().next().unwrap_or("").contains(&heading))
            .copied()
            .collect();
        let ticks = backticked(&text);
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let named = ticks.contains(rel)
            || (ticks.contains(name)
                && (dir.is_empty() || ticks.iter().any(|t| t.starts_with(&format!("{dir}/")))));
        if !named {
            missing.push(file);
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not mention these source files \
         (by name, in the part about their crate): {missing:?}"
    );
}
