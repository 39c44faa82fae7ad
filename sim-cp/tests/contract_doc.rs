//! `docs/CONTRACT.md` holds the rule catalogue (§3) and the decisions (§5)
//! as the code defines them: this test fails when the document is out of
//! date. To rewrite its generated parts:
//!
//! ```sh
//! CPSIM_UPDATE_DOCS=1 cargo test -p cpsim-sim --test contract_doc
//! ```

use cpsim_sim::rules::{catalogue_markdown, decisions_markdown, DECISIONS};
use cpsim_sim::CATALOGUE;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `doc` with the text between the markers of `part` replaced by `body`;
/// an error names a missing marker.
fn with_part(doc: &str, part: &str, body: &str) -> Result<String, String> {
    let begin = format!("<!-- BEGIN GENERATED: {part} ");
    let end = format!("<!-- END GENERATED: {part} -->");
    let b = doc
        .find(&begin)
        .ok_or_else(|| format!("no `{begin}…-->` marker"))?;
    let b = b + doc[b..].find("-->\n").ok_or("an unclosed BEGIN marker")? + 4;
    let e = doc[b..]
        .find(&end)
        .map(|e| b + e)
        .ok_or_else(|| format!("no `{end}` marker"))?;
    Ok(format!("{}\n{}\n{}", &doc[..b], body.trim_end(), &doc[e..]))
}

#[test]
fn contract_document_holds_the_catalogue_and_decisions_of_the_code() {
    let path = root().join("docs/CONTRACT.md");
    let doc = std::fs::read_to_string(&path).expect("docs/CONTRACT.md");
    let fresh = with_part(&doc, "rules", &catalogue_markdown())
        .and_then(|d| with_part(&d, "decisions", &decisions_markdown()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if std::env::var_os("CPSIM_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert!(
        doc == fresh,
        "{} is out of date with sim-cp/src/rules.rs; rewrite it with\n\n    \
         CPSIM_UPDATE_DOCS=1 cargo test -p cpsim-sim --test contract_doc\n",
        path.display()
    );
}

#[test]
fn every_rule_and_decision_is_in_the_document_with_its_words() {
    let doc = std::fs::read_to_string(root().join("docs/CONTRACT.md")).unwrap();
    for r in CATALOGUE {
        assert!(
            doc.contains(&format!("\n#### {}\n", r.id)),
            "{} has no section",
            r.id
        );
        for text in [r.text, r.breaks, r.fix, r.source] {
            assert!(doc.contains(text), "{}: `{text}` is missing", r.id);
        }
    }
    for d in DECISIONS {
        assert!(doc.contains(&format!("| `{}` |", d.name)), "{}", d.name);
    }
}

#[test]
fn every_decision_names_a_file_that_exists() {
    for d in DECISIONS {
        let file = d.place.split(" (").next().unwrap();
        assert!(
            root().join(file).is_file(),
            "decision `{}` lives in {file}, which does not exist",
            d.name
        );
    }
}

/// The contract is in the repository, and nothing points at one outside it
/// (the needles are spelled in pieces so this file does not match itself).
#[test]
fn no_file_refers_to_a_contract_or_notes_outside_the_repository() {
    let needles = [
        format!("{}/{}/", "..", "shared"),
        format!("{}{}", "CONTRACT ", "§"),
        format!("{}{}", "CONTRACT.md ", "§"),
    ];
    let mut stack = vec![root()];
    let mut bad = Vec::new();
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(p);
                }
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue; // not text
            };
            seen += 1;
            for (n, line) in text.lines().enumerate() {
                // In-repository references spell the path: docs/CONTRACT.md §N.
                let line = line.replace(&format!("docs/{}", needles[2]), "");
                if needles.iter().any(|needle| line.contains(needle.as_str())) {
                    bad.push(format!("{}:{}: {line}", p.display(), n + 1));
                }
            }
        }
    }
    assert!(seen > 100, "only {seen} files looked at");
    assert!(
        bad.is_empty(),
        "references outside the repository:\n{}",
        bad.join("\n")
    );
}
