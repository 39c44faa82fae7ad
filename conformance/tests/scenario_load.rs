//! The scenario loader: one precise error for every kind of bad input, and
//! no panic whatever the input.

use cpsim_certify::scenario::{
    load, parse, parse_with, to_pretty_json, LoadError, LoadErrorKind, MAX_FILE_BYTES,
};
use proptest::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const BASE: &str = r#"{
  "version": 1,
  "name": "base",
  "hosts": ["A", "B"],
  "provider": {"builtin": "reference"},
  "steps": [
    {"do": "start_provider", "at_ms": 0, "host": "A"},
    {"do": "send", "at_ms": 100, "from": "A", "to": "B", "bytes": 64}
  ],
  "expect": {"violations": []}
}"#;

/// `BASE` with one replacement, which must apply.
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[track_caller]
fn refused(text: &str) -> LoadError {
    match parse(text, "t.json") {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e,
    }
}

/// Checks kind, position, path and that the display says all of it.
#[track_caller]
fn expect_error(
    text: &str,
    kind: LoadErrorKind,
    pos: Option<(usize, usize)>,
    path: &str,
    says: &str,
) {
    let e = refused(text);
    let shown = e.to_string();
    assert_eq!(e.kind, kind, "{shown}");
    assert_eq!(e.line.zip(e.column), pos, "{shown}");
    assert_eq!(e.path, path, "{shown}");
    assert!(shown.contains(says), "`{shown}` does not say `{says}`");
    let mut prefix = "t.json".to_string();
    if let Some((l, c)) = pos {
        prefix.push_str(&format!(":{l}:{c}"));
    }
    prefix.push_str(": ");
    if !path.is_empty() {
        prefix.push_str(&format!("at {path}: "));
    }
    assert!(
        shown.starts_with(&prefix),
        "`{shown}` does not start with `{prefix}`"
    );
}

#[test]
fn the_base_scenario_loads() {
    let s = parse(BASE, "t.json").unwrap();
    assert_eq!(s.hosts, ["A", "B"]);
    assert_eq!(s.steps.len(), 2);
}

#[test]
fn bad_json_is_located() {
    expect_error(
        &edit("\"hosts\": [", "\"hosts\" ["),
        LoadErrorKind::Syntax,
        Some((4, 11)),
        "",
        "expected `:` (this is not valid JSON)",
    );
    expect_error(
        &BASE[..BASE.len() - 20],
        LoadErrorKind::Syntax,
        Some((10, 12)),
        "expect",
        "the file ends too early",
    );
    expect_error("", LoadErrorKind::Syntax, Some((1, 1)), "", "EOF");
    expect_error(
        &format!("{BASE} x"),
        LoadErrorKind::Syntax,
        Some((11, 3)),
        "",
        "trailing characters",
    );
}

#[test]
fn wrong_types_name_the_field() {
    expect_error(
        &edit("\"bytes\": 64", "\"bytes\": \"64\""),
        LoadErrorKind::Type,
        Some((8, 67)),
        "steps[1].bytes",
        "invalid type: string \"64\", expected a datagram's size, 0 to 65507 bytes",
    );
    expect_error(
        &edit("\"from\": \"A\"", "\"from\": 3"),
        LoadErrorKind::Type,
        Some((8, 42)),
        "steps[1].from",
        "expected a string",
    );
    expect_error(
        "[1, 2]",
        LoadErrorKind::Type,
        Some((1, 1)),
        "",
        "expected a scenario: a JSON object",
    );
    // serde would take an array as a struct's fields in order: refused.
    expect_error(
        &edit("\"expect\"", "\"platform\": [3], \"expect\""),
        LoadErrorKind::Type,
        Some((10, 15)),
        "platform",
        "expected a JSON object",
    );
    expect_error(
        &edit(
            "{\"do\": \"start_provider\", \"at_ms\": 0, \"host\": \"A\"}",
            "[\"start_provider\", 0, \"A\"]",
        ),
        LoadErrorKind::Type,
        Some((7, 5)),
        "steps[0]",
        "expected a JSON object",
    );
}

#[test]
fn unknown_fields_are_refused_where_they_are() {
    expect_error(
        &edit("\"name\": \"base\"", "\"name\": \"base\", \"nmae\": 3"),
        LoadErrorKind::UnknownField,
        Some((3, 27)),
        "nmae",
        "unknown field `nmae`, expected one of `version`",
    );
    expect_error(
        &edit("\"host\": \"A\"}", "\"host\": \"A\", \"hots\": 1}"),
        LoadErrorKind::UnknownField,
        Some((7, 63)),
        "steps[0].hots",
        "unknown field `hots`, expected `at_ms` or `host`",
    );
    expect_error(
        &edit(
            "{\"do\": \"start_provider\"",
            "{\"do\": \"net_faults\", \"at_ms\": 1, \"faults\": {\"los\": 0.1}}, {\"do\": \"start_provider\"",
        ),
        LoadErrorKind::UnknownField,
        Some((7, 56)),
        "steps[0].faults.los",
        "unknown field `los`",
    );
    expect_error(
        &edit("\"violations\": []", "\"violation\": []"),
        LoadErrorKind::UnknownField,
        Some((10, 27)),
        "expect.violation",
        "unknown field `violation`",
    );
}

/// A name quoted from the file reaches the terminal as text: control
/// characters (an escape sequence, a newline) are shown escaped, so the
/// error stays one line and cannot recolour or rewrite the terminal.
#[test]
fn an_error_quoting_the_file_shows_its_control_characters_escaped() {
    let e = refused(&edit(
        "\"name\": \"base\"",
        "\"name\": \"base\", \"a\\u001b[2J\\nb\": 3",
    ));
    assert_eq!(e.kind, LoadErrorKind::UnknownField);
    assert_eq!(e.path, "a\u{1b}[2J\nb", "the error keeps the name as it is");
    let shown = e.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    assert!(
        shown.contains("at a\\u{1b}[2J\\u{a}b: unknown field `a\\u{1b}[2J\\u{a}b`"),
        "{shown}"
    );
}

#[test]
fn unknown_names_are_refused() {
    expect_error(
        &edit(
            "\"violations\": []",
            "\"violations\": [\"COMP-3\", \"NOPE-9\"]",
        ),
        LoadErrorKind::UnknownRule,
        Some((10, 39)),
        "expect.violations[1]",
        "unknown rule ID `NOPE-9`",
    );
    expect_error(
        &edit("\"to\": \"B\"", "\"to\": \"C\""),
        LoadErrorKind::UnknownHost,
        Some((8, 53)),
        "steps[1].to",
        "unknown host `C`: this scenario's hosts are A, B",
    );
    expect_error(
        &edit("\"do\": \"send\"", "\"do\": \"sned\""),
        LoadErrorKind::UnknownVariant,
        Some((8, 12)),
        "steps[1].do",
        "unknown variant `sned`, expected one of `start_provider`",
    );
    expect_error(
        &edit("\"bytes\": 64", "\"bytes\": 64, \"family\": \"v5\""),
        LoadErrorKind::UnknownVariant,
        Some((8, 81)),
        "steps[1].family",
        "expected `v4` or `v6`",
    );
    expect_error(
        &edit("\"violations\": []", "\"termination\": \"NOPE\""),
        LoadErrorKind::UnknownVariant,
        Some((10, 29)),
        "expect.termination",
        "`PROVIDER_TIMEOUT`",
    );
    // The provider is checked only against a list the caller provides.
    let known = |n: &str| n == "reference";
    assert!(parse_with(BASE, "t.json", &known).is_ok());
    let e = parse_with(&edit("\"reference\"", "\"referense\""), "t.json", &known).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::UnknownProvider);
    assert_eq!(
        e.to_string(),
        "t.json:5:27: at provider.builtin: unknown provider `referense` (`cpsim providers` lists the known ones)"
    );
}

#[test]
fn a_provider_is_named_with_name_or_the_older_builtin() {
    use cpsim_certify::scenario::ProviderRef;
    let by_name = edit("{\"builtin\": \"reference\"}", "{\"name\": \"reference\"}");
    let new = parse(&by_name, "t.json").unwrap();
    let old = parse(BASE, "t.json").unwrap();
    assert_eq!(new.provider, ProviderRef::Name("reference".into()));
    assert_eq!(old.provider, ProviderRef::Builtin("reference".into()));
    assert!(new.provider.same_provider(&old.provider));
    assert_eq!(new.provider.registry_name(), Some("reference"));
    // Each is written back as read.
    assert!(to_pretty_json(&new).contains("\"provider\": {\n    \"name\": \"reference\""));
    assert!(to_pretty_json(&old).contains("\"provider\": {\n    \"builtin\": \"reference\""));
    // Errors point at the key the file uses.
    let known = |n: &str| n == "reference";
    let e = parse_with(
        &by_name.replace("\"reference\"", "\"referense\""),
        "t.json",
        &known,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.json:5:24: at provider.name: unknown provider `referense` (`cpsim providers` lists the known ones)"
    );
    let e = refused(&by_name.replace("\"reference\"", "\" \""));
    assert_eq!(e.path, "provider.name");
    // An empty object names none.
    let text = edit("{\"builtin\": \"reference\"}", "{}");
    refused_at(
        &text,
        "{}",
        LoadErrorKind::Invalid,
        "provider",
        "a provider is given as one of `name`, `builtin` or `library` (this object is empty)",
    );
    // Both at once is neither.
    let e = refused(&edit(
        "{\"builtin\": \"reference\"}",
        "{\"builtin\": \"reference\", \"name\": \"reference\"}",
    ));
    assert_eq!(e.path, "provider");
}

#[test]
fn numbers_out_of_range_are_refused() {
    expect_error(
        &edit("\"at_ms\": 100", "\"at_ms\": -5"),
        LoadErrorKind::OutOfRange,
        Some((8, 29)),
        "steps[1].at_ms",
        "invalid value: integer `-5`, expected a whole number of milliseconds, at most one day (86400000 ms)",
    );
    expect_error(
        &edit("\"at_ms\": 100", "\"at_ms\": 1.5"),
        LoadErrorKind::Type,
        Some((8, 29)),
        "steps[1].at_ms",
        "invalid type: floating point `1.5`, expected a whole number of milliseconds",
    );
    expect_error(
        &edit("\"at_ms\": 100", "\"at_ms\": 86400001"),
        LoadErrorKind::OutOfRange,
        Some((8, 29)),
        "steps[1].at_ms",
        "at most one day (86400000 ms)",
    );
    assert!(parse(&edit("\"at_ms\": 100", "\"at_ms\": 86400000"), "t.json").is_ok());
    expect_error(
        &edit("\"bytes\": 64", "\"bytes\": 65508"),
        LoadErrorKind::OutOfRange,
        Some((8, 67)),
        "steps[1].bytes",
        "invalid value: integer `65508`, expected a datagram's size, 0 to 65507 bytes",
    );
    assert!(parse(&edit("\"bytes\": 64", "\"bytes\": 65507"), "t.json").is_ok());
    expect_error(
        &edit(
            "\"expect\"",
            "\"platform\": {\"net\": {\"loss\": 1.5}}, \"expect\"",
        ),
        LoadErrorKind::OutOfRange,
        Some((10, 32)),
        "platform.net.loss",
        "invalid value: floating point `1.5`, expected a probability, a number from 0 to 1",
    );
    expect_error(
        &edit(
            "\"expect\"",
            "\"platform\": {\"tasks\": {\"never\": -0.1}}, \"expect\"",
        ),
        LoadErrorKind::OutOfRange,
        Some((10, 35)),
        "platform.tasks.never",
        "invalid value: floating point `-0.1`, expected a probability, a number from 0 to 1",
    );
    expect_error(
        &edit(
            "\"expect\"",
            "\"platform\": {\"tasks\": {\"late\": 0.6, \"never\": 0.6}}, \"expect\"",
        ),
        LoadErrorKind::OutOfRange,
        Some((10, 25)),
        "platform.tasks",
        "add up to at most 1",
    );
    expect_error(
        &edit("\"expect\"", "\"platform\": {\"seed\": -1}, \"expect\""),
        LoadErrorKind::OutOfRange,
        Some((10, 24)),
        "platform.seed",
        "invalid value: integer `-1`, expected a whole number >= 0",
    );
    expect_error(
        &edit("[\"A\", \"B\"]", "[]"),
        LoadErrorKind::OutOfRange,
        Some((4, 12)),
        "hosts",
        "invalid length 0, expected a list of 1 to 16 host names",
    );
    let many: Vec<String> = (0..17).map(|i| format!("\"H{i}\"")).collect();
    let e = refused(&edit(
        "[\"A\", \"B\"]",
        &format!("[\"A\", \"B\", {}]", many.join(", ")),
    ));
    assert_eq!(e.kind, LoadErrorKind::OutOfRange);
    assert!(
        e.to_string()
            .contains("invalid length 19, expected a list of 1 to 16 host names"),
        "{e}"
    );
}

#[test]
fn a_settings_duration_is_checked_as_it_is_read() {
    // `Millis`: serde reports the path, the place and the range.
    expect_error(
        &edit(
            "\"expect\"",
            "\"platform\": {\"drain_ms\": 86400001}, \"expect\"",
        ),
        LoadErrorKind::OutOfRange,
        Some((10, 28)),
        "platform.drain_ms",
        "invalid value: integer `86400001`, expected a whole number of milliseconds, at most one day (86400000 ms)",
    );
    expect_error(
        &edit(
            "\"expect\"",
            "\"platform\": {\"idle_dormancy_ms\": -1}, \"expect\"",
        ),
        LoadErrorKind::OutOfRange,
        Some((10, 36)),
        "platform.idle_dormancy_ms",
        "invalid value: integer `-1`, expected a whole number of milliseconds",
    );
    let ok = edit(
        "\"expect\"",
        "\"platform\": {\"drain_ms\": 86400000}, \"expect\"",
    );
    assert_eq!(
        parse(&ok, "t.json").unwrap().platform.drain_ms.get(),
        86_400_000
    );
}

#[test]
fn empty_steps_and_bad_hosts_are_refused() {
    let text = BASE.replace(
        "[\n    {\"do\": \"start_provider\", \"at_ms\": 0, \"host\": \"A\"},\n    {\"do\": \"send\", \"at_ms\": 100, \"from\": \"A\", \"to\": \"B\", \"bytes\": 64}\n  ]",
        "[]",
    );
    expect_error(
        &text,
        LoadErrorKind::Empty,
        Some((6, 12)),
        "steps",
        "at least one step",
    );
    expect_error(
        &edit("[\"A\", \"B\"]", "[\"A\", \"A\"]"),
        LoadErrorKind::Invalid,
        Some((4, 18)),
        "hosts[1]",
        "invalid value: string \"A\", expected a host name not declared before",
    );
    expect_error(
        &edit("[\"A\", \"B\"]", "[\"A\", \"infra\"]"),
        LoadErrorKind::Invalid,
        Some((4, 18)),
        "hosts[1]",
        "infrastructure node",
    );
    expect_error(
        &edit("[\"A\", \"B\"]", "[\"A\", \"B#2\"]"),
        LoadErrorKind::Invalid,
        Some((4, 18)),
        "hosts[1]",
        "invalid value: string \"B#2\", expected a host name: 1 to 32 ASCII letters",
    );
    expect_error(
        &edit("\"name\": \"base\"", "\"name\": \"\""),
        LoadErrorKind::Invalid,
        Some((3, 11)),
        "name",
        "invalid value: string \"\", expected a name (a non-empty string)",
    );
}

#[test]
fn versions_fail_clearly() {
    expect_error(
        &edit("\"version\": 1", "\"version\": 2"),
        LoadErrorKind::Version,
        Some((2, 14)),
        "version",
        "this file is version 2; this cpsim reads version 1",
    );
    expect_error(
        &edit("\"version\": 1", "\"version\": 0"),
        LoadErrorKind::Version,
        Some((2, 14)),
        "version",
        "this file is version 0; this cpsim reads version 1",
    );
    // The version is checked first: a newer file's new fields do not hide it.
    let newer = edit("\"version\": 1", "\"version\": 3, \"new_thing\": {}");
    expect_error(
        &newer,
        LoadErrorKind::Version,
        Some((2, 14)),
        "version",
        "this file is version 3",
    );
    expect_error(
        &edit("  \"version\": 1,\n", ""),
        LoadErrorKind::Version,
        Some((1, 1)),
        "",
        "missing field `version`",
    );
    expect_error(
        &edit("\"version\": 1", "\"version\": \"1\""),
        LoadErrorKind::Type,
        Some((2, 14)),
        "version",
        "expected the format version",
    );
}

#[test]
fn contradictory_expectations_are_refused() {
    expect_error(
        &edit(
            "\"violations\": []",
            "\"violations\": [], \"includes\": [\"COMP-3\"]",
        ),
        LoadErrorKind::Invalid,
        Some((10, 45)),
        "expect.includes[0]",
        "`includes` names COMP-3",
    );
    expect_error(
        &edit(
            "\"violations\": []",
            "\"violations\": [], \"first_violation\": {\"rule\": \"COMP-3\", \"step\": 4}",
        ),
        LoadErrorKind::Invalid,
        Some((10, 60)),
        "expect.first_violation.rule",
        "`first_violation` is COMP-3",
    );
}

#[test]
fn files_too_large_unreadable_or_not_utf8_are_refused() {
    let dir = std::env::temp_dir().join(format!("cpsim-scenario-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let big = dir.join("big.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(MAX_FILE_BYTES + 1).unwrap();
    let e = load(&big).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::TooLarge);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: the file is 4194305 bytes", big.display())),
        "{e}"
    );
    // The same limit holds for text handed over directly.
    let huge = " ".repeat(MAX_FILE_BYTES as usize + 1);
    assert_eq!(refused(&huge).kind, LoadErrorKind::TooLarge);

    let e = load(&dir.join("missing.json")).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::Io);
    assert!(
        e.to_string()
            .contains("missing.json: no such file or directory"),
        "{e}"
    );

    let e = load(&dir).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::Io);

    let latin1 = dir.join("latin1.json");
    std::fs::write(&latin1, b"{\n  \"name\": \"caf\xe9\"\n}").unwrap();
    let e = load(&latin1).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::Io);
    assert_eq!((e.line, e.column), (Some(2), Some(15)), "{e}");

    let good = dir.join("good.json");
    std::fs::write(&good, format!("\u{feff}{BASE}")).unwrap();
    assert_eq!(load(&good).unwrap().name, "base");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A scenario path that is not a regular file is refused before it is
/// opened, saying what it is: a named pipe would block the loader until a
/// writer came (for ever), `/dev/zero` never ends. A dangling link and a
/// link loop say what they are, not "no such file".
#[cfg(unix)]
#[test]
fn scenario_paths_that_are_pipes_devices_or_broken_links_are_refused_at_once() {
    let dir = std::env::temp_dir().join(format!("cpsim-scenario-kinds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || tx.send(load(&f).map(|_| ()).unwrap_err().to_string()));
    let e = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("loading a named pipe with no writer returns at once");
    assert_eq!(
        e,
        format!(
            "{}: this is a named pipe (FIFO), not a scenario file",
            fifo.display()
        )
    );
    let e = load(std::path::Path::new("/dev/zero")).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::Io);
    assert_eq!(
        e.to_string(),
        "/dev/zero: this is a device, not a scenario file"
    );
    let e = load(&dir).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("this is a directory, not a scenario file"),
        "{e}"
    );
    let dangling = dir.join("dangling.json");
    std::os::unix::fs::symlink("nowhere.json", &dangling).unwrap();
    assert_eq!(
        load(&dangling).unwrap_err().to_string(),
        format!(
            "{}: a symbolic link to nowhere.json, which does not exist",
            dangling.display()
        )
    );
    // A link whose target goes through a file is dangling too.
    let f = dir.join("f.json");
    std::fs::write(&f, "{}").unwrap();
    let via_file = dir.join("via-file.json");
    std::os::unix::fs::symlink("f.json/x.json", &via_file).unwrap();
    assert_eq!(
        load(&via_file).unwrap_err().to_string(),
        format!(
            "{}: a symbolic link to f.json/x.json, which does not exist",
            via_file.display()
        )
    );
    let (a, b) = (dir.join("loop-a.json"), dir.join("loop-b.json"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let e = load(&a).unwrap_err().to_string();
    assert!(e.contains("symbolic links"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_checked_knows_the_built_in_providers() {
    let dir = std::env::temp_dir().join(format!("cpsim-scenario-providers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, BASE).unwrap();
    assert!(cpsim_providers::registry().load(&good).is_ok());
    let bad = dir.join("bad.json");
    std::fs::write(&bad, edit("\"reference\"", "\"no-such-provider\"")).unwrap();
    let e = cpsim_providers::registry().load(&bad).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::UnknownProvider);
    assert!(
        e.to_string().starts_with(&format!(
            "{}:5:27: at provider.builtin: unknown provider `no-such-provider`",
            bad.display()
        )),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [200, 100_000] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let e = refused(&deep);
        assert!(e.to_string().starts_with("t.json"), "{e}");
        let nested = edit(
            "\"expect\": {\"violations\": []}",
            &format!(
                "\"provider_config\": {}{}",
                "[".repeat(depth),
                "]".repeat(depth)
            ),
        );
        let e = refused(&nested);
        assert!(e.to_string().starts_with("t.json:"), "{e}");
        // Deep JSON is still JSON: the error says what the limit is.
        assert_eq!(e.kind, LoadErrorKind::Syntax);
        assert!(!e.message.contains("not valid JSON"), "{e}");
        assert!(e.message.contains("nested more than 128 deep"), "{e}");
    }
}

#[test]
fn saved_scenarios_read_back_equal() {
    let s = parse(BASE, "t.json").unwrap();
    let text = to_pretty_json(&s);
    assert!(text.ends_with("}\n"));
    assert!(
        text.starts_with("{\n  \"version\": 1,\n  \"name\": \"base\",\n"),
        "{text}"
    );
    assert_eq!(parse(&text, "saved.json").unwrap(), s);
}

// ---------------------------------------------------------------------------
// No panic, whatever the input.

fn scenario_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".schema.json")
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios"),
        &mut out,
    );
    out.sort();
    out
}

/// The texts mutations start from: every scenario file, and `BASE`.
fn seeds() -> Vec<String> {
    let mut v: Vec<String> = scenario_files()
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    v.push(BASE.to_string());
    v
}

/// Every JSON pointer in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Values of every JSON type, including awkward numbers.
fn swaps() -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(
        r#"[null, true, false, 0, -1, -5, 1.5, 1e300, 18446744073709551615, 86400001, 65508, 2,
            "", "A", "COMP-3", "NOPE-1", "send", "v6", "PROVIDER_TIMEOUT", [], [1], ["A"], {}, {"x": 1},
            {"do": "heal", "at_ms": 1}]"#,
    )
    .unwrap()
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { at: usize, to: u8 },
    Truncate { at: usize },
    Delete { which: usize },
    Swap { which: usize, with: usize },
    Duplicate { which: usize },
    Insert { at: usize, text: String },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, to)| Mutation::FlipByte { at, to }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        any::<usize>().prop_map(|which| Mutation::Delete { which }),
        (any::<usize>(), any::<usize>()).prop_map(|(which, with)| Mutation::Swap { which, with }),
        any::<usize>().prop_map(|which| Mutation::Duplicate { which }),
        (
            any::<usize>(),
            prop_oneof![
                Just(",".to_string()),
                Just("{".to_string()),
                Just("]".to_string()),
                Just("\"".to_string()),
                Just("-".to_string()),
                Just("\\u".to_string()),
                "[ -~]{0,8}",
            ]
        )
            .prop_map(|(at, text)| Mutation::Insert { at, text }),
    ]
}

/// `v` as JSON text, with the first key of the object at `dup` written twice.
fn with_duplicate(v: &Value, at: &str, dup: &str, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            let mut first = true;
            for (i, (k, x)) in m.iter().enumerate() {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                let times = if at == dup && i == 0 { 2 } else { 1 };
                for _ in 0..times {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    with_duplicate(x, &here, dup, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                with_duplicate(x, &format!("{at}/{i}"), dup, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn apply(text: &str, m: &Mutation) -> String {
    let bytes = text.as_bytes();
    match m {
        Mutation::FlipByte { at, to } => {
            let mut b = bytes.to_vec();
            if !b.is_empty() {
                let i = at % b.len();
                b[i] = *to;
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        Mutation::Truncate { at } => {
            let cut = at % (bytes.len() + 1);
            String::from_utf8_lossy(&bytes[..cut]).into_owned()
        }
        Mutation::Insert { at, text: ins } => {
            let mut b = bytes.to_vec();
            let i = at % (b.len() + 1);
            b.splice(i..i, ins.bytes());
            String::from_utf8_lossy(&b).into_owned()
        }
        Mutation::Delete { which }
        | Mutation::Swap { which, .. }
        | Mutation::Duplicate { which } => {
            let Ok(mut v) = serde_json::from_str::<Value>(text) else {
                return text.to_string();
            };
            let mut ptrs = Vec::new();
            pointers(&v, String::new(), &mut ptrs);
            let ptr = ptrs[which % ptrs.len()].clone();
            match m {
                Mutation::Delete { .. } => {
                    if let Some((parent, last)) = ptr.rsplit_once('/') {
                        match v.pointer_mut(parent) {
                            Some(Value::Object(o)) => {
                                o.remove(&last.replace("~1", "/").replace("~0", "~"));
                            }
                            Some(Value::Array(a)) => {
                                if let Ok(i) = last.parse::<usize>() {
                                    if i < a.len() {
                                        a.remove(i);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    v.to_string()
                }
                Mutation::Swap { with, .. } => {
                    let all = swaps();
                    if let Some(slot) = v.pointer_mut(&ptr) {
                        *slot = all[with % all.len()].clone();
                    }
                    serde_json::to_string_pretty(&v).unwrap()
                }
                _ => {
                    let mut out = String::new();
                    with_duplicate(&v, "", &ptr, &mut out);
                    out
                }
            }
        }
    }
}

/// The property: `parse` answers, never panics; an error names the origin;
/// what it accepts it also reads back, equal, from its saved form.
fn check(text: &str) -> Result<(), TestCaseError> {
    match parse(text, "mutant.json") {
        Ok(s) => {
            let saved = to_pretty_json(&s);
            let again = parse(&saved, "saved.json");
            prop_assert_eq!(again.as_ref().ok(), Some(&s), "{:?}", again.as_ref().err());
        }
        Err(e) => {
            let shown = e.to_string();
            prop_assert!(shown.starts_with("mutant.json"), "{}", shown);
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check(&text)?;
    }

    #[test]
    fn json_shaped_text_never_panics(text in "[\\[\\]{}\":,0-9a-z_ -]{0,120}") {
        check(&text)?;
    }

    #[test]
    fn mutated_scenarios_never_panic(seed in any::<prop::sample::Index>(), ms in prop::collection::vec(mutation(), 1..4)) {
        let seeds = seeds();
        let mut text = seeds[seed.index(seeds.len())].clone();
        for m in &ms {
            text = apply(&text, m);
        }
        check(&text)?;
    }
}

#[test]
fn every_single_mutation_of_the_base_is_handled() {
    // Deterministic sweep: delete, swap and duplicate at every position.
    let v: Value = serde_json::from_str(BASE).unwrap();
    let mut ptrs = Vec::new();
    pointers(&v, String::new(), &mut ptrs);
    for which in 0..ptrs.len() {
        for m in [Mutation::Delete { which }, Mutation::Duplicate { which }]
            .into_iter()
            .chain((0..swaps().len()).map(|with| Mutation::Swap { which, with }))
        {
            check(&apply(BASE, &m)).unwrap();
        }
    }
    for at in 0..BASE.len() {
        check(&apply(BASE, &Mutation::Truncate { at })).unwrap();
    }
}

/// `BASE` with its `send` step made a `send_many` step with these extra fields.
fn many(fields: &str) -> String {
    edit(
        "{\"do\": \"send\", \"at_ms\": 100, \"from\": \"A\", \"to\": \"B\", \"bytes\": 64}",
        &format!("{{\"do\": \"send_many\", \"at_ms\": 100, \"from\": \"A\", \"to\": \"B\", \"bytes\": 64{fields}}}"),
    )
}

#[test]
fn send_many_is_checked_like_every_step() {
    let s = parse(&many(", \"count\": 1000000, \"every_ms\": 1"), "t.json").expect("loads");
    assert_eq!(s.steps[1].last_ms(), 100 + 999_999);
    assert_eq!(s.steps[1].repeat(), (1_000_000, 1));
    // The count: 1 to 10,000,000.
    expect_error(
        &many(", \"count\": 0, \"every_ms\": 1"),
        LoadErrorKind::OutOfRange,
        Some((8, 85)),
        "steps[1].count",
        "invalid value: integer `0`, expected the number of datagrams, 1 to 10000000",
    );
    expect_error(
        &many(", \"count\": 10000001, \"every_ms\": 0"),
        LoadErrorKind::OutOfRange,
        Some((8, 85)),
        "steps[1].count",
        "invalid value: integer `10000001`, expected the number of datagrams, 1 to 10000000",
    );
    assert!(parse(&many(", \"count\": 10000000, \"every_ms\": 0"), "t.json").is_ok());
    // The last datagram within one day.
    expect_error(
        &many(", \"count\": 1001, \"every_ms\": 86400"),
        LoadErrorKind::OutOfRange,
        Some((8, 85)),
        "steps[1].count",
        "the last of 1001 datagrams, 86400 ms apart from 100 ms, would go at 86400100 ms, after one day (86400000 ms)",
    );
    assert!(parse(&many(", \"count\": 1000, \"every_ms\": 86400"), "t.json").is_ok());
    expect_error(
        &many(", \"count\": 10000000, \"every_ms\": 86400000"),
        LoadErrorKind::OutOfRange,
        Some((8, 85)),
        "steps[1].count",
        "after one day",
    );
    expect_error(
        &many(", \"count\": 2, \"every_ms\": 86400001"),
        LoadErrorKind::OutOfRange,
        Some((8, 100)),
        "steps[1].every_ms",
        "invalid value: integer `86400001`, expected a whole number of milliseconds, at most one day",
    );
    // Wrong types, missing fields, unknown hosts and sizes: as for `send`.
    expect_error(
        &many(", \"count\": -3, \"every_ms\": 1"),
        LoadErrorKind::OutOfRange,
        Some((8, 85)),
        "steps[1].count",
        "invalid value: integer `-3`, expected the number of datagrams, 1 to 10000000",
    );
    expect_error(
        &many(", \"count\": \"10\", \"every_ms\": 1"),
        LoadErrorKind::Type,
        Some((8, 85)),
        "steps[1].count",
        "invalid type: string \"10\"",
    );
    expect_error(
        &many(", \"count\": 10"),
        LoadErrorKind::MissingField,
        Some((8, 5)),
        "steps[1]",
        "missing field `every_ms`",
    );
    expect_error(
        &many(", \"count\": 10, \"every_ms\": 1, \"burst\": 2"),
        LoadErrorKind::UnknownField,
        Some((8, 113)),
        "steps[1].burst",
        "unknown field `burst`",
    );
    expect_error(
        &many(", \"count\": 10, \"every_ms\": 1").replacen("\"to\": \"B\"", "\"to\": \"C\"", 1),
        LoadErrorKind::UnknownHost,
        Some((8, 58)),
        "steps[1].to",
        "unknown host `C`: this scenario's hosts are A, B",
    );
    expect_error(
        &many(", \"count\": 10, \"every_ms\": 1").replacen("\"bytes\": 64", "\"bytes\": 70000", 1),
        LoadErrorKind::OutOfRange,
        Some((8, 72)),
        "steps[1].bytes",
        "invalid value: integer `70000`, expected a datagram's size, 0 to 65507 bytes",
    );
}

// ---------------------------------------------------------------------------
// Range-checked types: each bound, in and out, refused at its own place.

/// 1-based line and column where `needle` first occurs in `text`.
fn place(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle}"));
    let before = &text[..at];
    let line = 1 + before.matches('\n').count();
    let column = 1 + before.len() - before.rfind('\n').map_or(0, |i| i + 1);
    (line, column)
}

/// `BASE` with these platform settings.
fn platform(settings: &str) -> String {
    edit(
        "\"expect\"",
        &format!("\"platform\": {settings}, \"expect\""),
    )
}

/// `BASE` with one more step (first in the file).
fn with_step(step: &str) -> String {
    edit(
        "{\"do\": \"start_provider\"",
        &format!("{step}, {{\"do\": \"start_provider\""),
    )
}

/// Refused with `kind` at the start of `value` (its first occurrence),
/// with `path`, saying `says`.
#[track_caller]
fn refused_at(text: &str, value: &str, kind: LoadErrorKind, path: &str, says: &str) {
    expect_error(text, kind, Some(place(text, value)), path, says);
}

#[test]
fn probability_takes_0_to_1_and_refuses_above_negative_and_non_numbers() {
    use LoadErrorKind::{OutOfRange, Syntax, Type};
    for ok in ["0", "1", "0.0", "1.0", "0.25", "1e-300"] {
        let s = parse(
            &platform(&format!("{{\"net\": {{\"loss\": {ok}}}}}")),
            "t.json",
        )
        .unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(s.platform.net.loss, ok.parse::<f64>().unwrap());
    }
    let expected = "expected a probability, a number from 0 to 1";
    for (bad, kind, says) in [
        (
            "1.0000001",
            OutOfRange,
            "invalid value: floating point `1.0000001`",
        ),
        ("-0.5", OutOfRange, "invalid value: floating point `-0.5`"),
        ("2", OutOfRange, "invalid value: integer `2`"),
        ("-1", OutOfRange, "invalid value: integer `-1`"),
        ("\"0.5\"", Type, "invalid type: string \"0.5\""),
    ] {
        let text = platform(&format!("{{\"net\": {{\"duplicate\": {bad}}}}}"));
        refused_at(&text, bad, kind, "platform.net.duplicate", says);
        assert!(refused(&text).to_string().contains(expected));
    }
    // Inside a step too, with the step's path.
    let text = with_step("{\"do\": \"task_timing\", \"at_ms\": 1, \"timing\": {\"late\": 1.5}}");
    refused_at(&text, "1.5", OutOfRange, "steps[0].timing.late", expected);
    // NaN and infinities are not JSON; a number too large for a double is
    // not either (serde_json stops at it).
    for bad in ["NaN", "Infinity", "-Infinity"] {
        let text = platform(&format!("{{\"tasks\": {{\"never\": {bad}}}}}"));
        let (line, column) = place(&text, bad);
        let e = refused(&text);
        assert_eq!(e.kind, Syntax, "{e}");
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.column.unwrap() >= column, "{e}");
        assert!(e.to_string().contains("(this is not valid JSON)"), "{e}");
    }
    let text = platform("{\"tasks\": {\"never\": 1e400}}");
    let e = refused(&text);
    assert_eq!(e.kind, Syntax, "{e}");
    assert_eq!(e.line, Some(place(&text, "1e400").0), "{e}");
    assert!(e.to_string().contains("number out of range"), "{e}");
}

#[test]
fn task_shares_add_up_to_at_most_1_in_the_settings_and_in_a_step() {
    assert!(parse(
        &platform("{\"tasks\": {\"before_return\": 0.5, \"late\": 0.25, \"after_timeout\": 0.125, \"never\": 0.125}}"),
        "t.json"
    )
    .is_ok());
    let says = "invalid value: floating point `1.2000000000000002`, expected before_return + late + after_timeout + never to add up to at most 1";
    let text = platform("{\"tasks\": {\"late\": 0.6, \"never\": 0.6000000000000001}}");
    refused_at(
        &text,
        "{\"late\"",
        LoadErrorKind::OutOfRange,
        "platform.tasks",
        says,
    );
    let text = with_step(
        "{\"do\": \"task_timing\", \"at_ms\": 1, \"timing\": {\"late\": 0.6, \"never\": 0.6000000000000001}}",
    );
    refused_at(
        &text,
        "{\"late\"",
        LoadErrorKind::OutOfRange,
        "steps[0].timing",
        says,
    );
}

#[test]
fn millis_take_0_to_one_day_and_refuse_more_negative_fractions_and_overflow() {
    use LoadErrorKind::{OutOfRange, Type};
    let expected = "expected a whole number of milliseconds, at most one day (86400000 ms)";
    // Every kind of place a duration is read: time limits, network and task
    // settings, the platform's own, a step's time and send_many's spacing.
    type TextWith = fn(&str) -> String;
    let places: [(&str, TextWith); 8] = [
        ("platform.limits.establish_ms", |v| {
            platform(&format!("{{\"limits\": {{\"establish_ms\": {v}}}}}"))
        }),
        ("platform.net.delay_ms", |v| {
            platform(&format!("{{\"net\": {{\"delay_ms\": {v}}}}}"))
        }),
        ("platform.tasks.late_max_ms", |v| {
            platform(&format!("{{\"tasks\": {{\"late_max_ms\": {v}}}}}"))
        }),
        ("platform.drain_ms", |v| {
            platform(&format!("{{\"drain_ms\": {v}}}"))
        }),
        ("steps[1].at_ms", |v| {
            edit("\"at_ms\": 100", &format!("\"at_ms\": {v}"))
        }),
        ("steps[0].faults.jitter_ms", |v| {
            with_step(&format!(
                "{{\"do\": \"net_faults\", \"at_ms\": 1, \"faults\": {{\"jitter_ms\": {v}}}}}"
            ))
        }),
        ("steps[0].faults.duplicate_lag_ms", |v| {
            with_step(&format!(
                "{{\"do\": \"net_faults\", \"at_ms\": 1, \"faults\": {{\"duplicate_lag_ms\": {v}}}}}"
            ))
        }),
        ("steps[1].every_ms", |v| {
            many(&format!(", \"count\": 1, \"every_ms\": {v}"))
        }),
    ];
    for (path, text_with) in places {
        for ok in ["0", "86400000"] {
            let text = text_with(ok);
            assert!(parse(&text, "t.json").is_ok(), "{path} = {ok}");
        }
        for (bad, kind, says) in [
            ("86400001", OutOfRange, "invalid value: integer `86400001`"),
            ("-1", OutOfRange, "invalid value: integer `-1`"),
            ("2.5", Type, "invalid type: floating point `2.5`"),
            (
                "18446744073709551616",
                Type,
                "invalid type: floating point `1.8446744073709552e+19`",
            ),
        ] {
            let text = text_with(bad);
            refused_at(&text, bad, kind, path, says);
            assert!(refused(&text).to_string().contains(expected), "{path}");
        }
    }
}

#[test]
fn datagram_bytes_take_0_to_65507() {
    for ok in ["0", "65507"] {
        assert!(parse(
            &edit("\"bytes\": 64", &format!("\"bytes\": {ok}")),
            "t.json"
        )
        .is_ok());
    }
    for bad in ["65508", "4294967296", "-1"] {
        let text = edit("\"bytes\": 64", &format!("\"bytes\": {bad}"));
        refused_at(
            &text,
            bad,
            LoadErrorKind::OutOfRange,
            "steps[1].bytes",
            &format!(
                "invalid value: integer `{bad}`, expected a datagram's size, 0 to 65507 bytes"
            ),
        );
    }
}

#[test]
fn send_count_takes_1_to_10_million() {
    for ok in ["1", "10000000"] {
        assert!(parse(
            &many(&format!(", \"count\": {ok}, \"every_ms\": 0")),
            "t.json"
        )
        .is_ok());
    }
    for bad in ["0", "10000001", "-1", "18446744073709551615"] {
        let text = many(&format!(", \"count\": {bad}, \"every_ms\": 0"));
        refused_at(
            &text,
            &format!("{bad}, \"every_ms\""),
            LoadErrorKind::OutOfRange,
            "steps[1].count",
            &format!(
                "invalid value: integer `{bad}`, expected the number of datagrams, 1 to 10000000"
            ),
        );
    }
}

#[test]
fn whole_numbers_seed_delivered_and_trace_steps_are_checked_where_they_are() {
    use LoadErrorKind::{OutOfRange, Type};
    assert_eq!(
        parse(&platform("{\"seed\": 18446744073709551615}"), "t.json")
            .unwrap()
            .platform
            .seed,
        u64::MAX
    );
    let text = platform("{\"seed\": 18446744073709551616}");
    refused_at(
        &text,
        "1844",
        Type,
        "platform.seed",
        "expected a whole number >= 0",
    );
    let text = platform("{\"seed\": -3}");
    refused_at(
        &text,
        "-3",
        OutOfRange,
        "platform.seed",
        "invalid value: integer `-3`, expected a whole number >= 0",
    );

    let delivered = |v: &str| edit("\"violations\": []", &format!("\"delivered\": {v}"));
    assert_eq!(
        parse(&delivered("4294967295"), "t.json")
            .unwrap()
            .expect
            .delivered,
        Some(u32::MAX)
    );
    for bad in ["4294967296", "-1"] {
        refused_at(
            &delivered(bad),
            bad,
            OutOfRange,
            "expect.delivered",
            &format!(
                "invalid value: integer `{bad}`, expected a whole number from 0 to 4294967295"
            ),
        );
    }

    let first = |v: &str| {
        edit(
            "\"violations\": []",
            &format!("\"first_violation\": {{\"rule\": \"COMP-3\", \"step\": {v}}}"),
        )
    };
    assert!(parse(&first("1"), "t.json").is_ok());
    for bad in ["0", "-2"] {
        refused_at(
            &first(bad),
            &format!("{bad}}}"),
            OutOfRange,
            "expect.first_violation.step",
            &format!("invalid value: integer `{bad}`, expected a trace step (they count from 1)"),
        );
    }
}

#[test]
fn host_names_are_1_to_32_plain_characters_unique_and_not_infra() {
    let hosts = |list: &str| edit("[\"A\", \"B\"]", list);
    let name32 = "x".repeat(32);
    assert!(parse(
        &hosts(&format!("[\"A\", \"B\", \"a-b_c.9\", \"{name32}\"]")),
        "t.json"
    )
    .is_ok());
    let sixteen: Vec<String> = (0..14).map(|i| format!("\"H{i}\"")).collect();
    assert!(parse(
        &hosts(&format!("[\"A\", \"B\", {}]", sixteen.join(", "))),
        "t.json"
    )
    .is_ok());
    let seventeen = hosts(&format!("[\"A\", \"B\", {}, \"H14\"]", sixteen.join(", ")));
    refused_at(
        &seventeen,
        "[\"A\"",
        LoadErrorKind::OutOfRange,
        "hosts",
        "invalid length 17, expected a list of 1 to 16 host names",
    );
    let name33 = "x".repeat(33);
    for (bad, says) in [
        (
            name33.as_str(),
            "expected a host name: 1 to 32 ASCII letters",
        ),
        ("", "expected a host name: 1 to 32 ASCII letters"),
        ("é", "expected a host name: 1 to 32 ASCII letters"),
        ("infra", "expected a host name other than `infra`"),
        ("A", "expected a host name not declared before"),
    ] {
        let text = hosts(&format!("[\"A\", \"B\", \"{bad}\"]"));
        let (line, _) = place(&text, "\"B\", ");
        let column = place(&text, "\"B\", ").1 + 5;
        expect_error(
            &text,
            LoadErrorKind::Invalid,
            Some((line, column)),
            "hosts[2]",
            &format!("invalid value: string \"{bad}\", {says}"),
        );
    }
    refused_at(
        &hosts("\"A\""),
        "\"A\"",
        LoadErrorKind::Type,
        "hosts",
        "invalid type: string \"A\", expected a list of 1 to 16 host names",
    );
}

#[test]
fn names_and_reasons_are_not_blank() {
    use LoadErrorKind::Invalid;
    let text = edit("\"name\": \"base\"", "\"name\": \"  \"");
    refused_at(
        &text,
        "\"  \"",
        Invalid,
        "name",
        "invalid value: string \"  \", expected a name (a non-empty string)",
    );
    let text = edit("\"reference\"", "\"\"");
    refused_at(
        &text,
        "\"\"",
        Invalid,
        "provider.builtin",
        "expected a name (a non-empty string)",
    );
    let text = edit("{\"builtin\": \"reference\"}", "{\"library\": \"\"}");
    refused_at(
        &text,
        "\"\"",
        Invalid,
        "provider.library",
        "expected the path of a provider module (a non-empty string)",
    );
    let text = edit("\"expect\"", "\"simulator_only\": \"\", \"expect\"");
    refused_at(
        &text,
        "\"\", \"expect",
        Invalid,
        "simulator_only",
        "expected the reason the scenario runs on the simulator only",
    );
    let text = edit("\"expect\"", "\"simulator_only\": null, \"expect\"");
    assert_eq!(parse(&text, "t.json").unwrap().simulator_only, None);
}

#[test]
fn structs_are_objects_never_arrays_wherever_they_are() {
    for (text, at, path) in [
        (
            platform("{\"limits\": [1000]}"),
            "[1000]",
            "platform.limits",
        ),
        (platform("{\"net\": [0.5]}"), "[0.5]", "platform.net"),
        (platform("{\"tasks\": []}"), "[]", "platform.tasks"),
        (
            edit("{\"builtin\": \"reference\"}", "[\"reference\"]"),
            "[\"reference\"]",
            "provider",
        ),
        (edit("{\"violations\": []}", "[[]]"), "[[]]", "expect"),
        (
            edit("\"violations\": []", "\"first_violation\": [\"COMP-3\", 4]"),
            "[\"COMP-3\"",
            "expect.first_violation",
        ),
        (
            with_step("{\"do\": \"net_faults\", \"at_ms\": 1, \"faults\": [0.1]}"),
            "[0.1]",
            "steps[0].faults",
        ),
        (
            with_step("{\"do\": \"task_timing\", \"at_ms\": 1, \"timing\": [0.1]}"),
            "[0.1]",
            "steps[0].timing",
        ),
    ] {
        refused_at(
            &text,
            at,
            LoadErrorKind::Type,
            path,
            "invalid type: sequence, expected a JSON object",
        );
    }
}

#[test]
fn a_step_is_read_in_any_key_order_and_its_errors_keep_their_place() {
    // `do` last: read the same.
    let last = edit(
        "{\"do\": \"send\", \"at_ms\": 100, \"from\": \"A\", \"to\": \"B\", \"bytes\": 64}",
        "{\"at_ms\": 100, \"from\": \"A\", \"to\": \"B\", \"bytes\": 64, \"do\": \"send\"}",
    );
    assert_eq!(
        parse(&last, "t.json").unwrap(),
        parse(BASE, "t.json").unwrap()
    );
    // A field the kind, given later, does not have: refused at `do`.
    let text = edit(
        "{\"do\": \"start_provider\", \"at_ms\": 0,",
        "{\"count\": 3, \"at_ms\": 0, \"do\": \"start_provider\",",
    );
    refused_at(
        &text,
        "\"start_provider\"",
        LoadErrorKind::Invalid,
        "steps[0].do",
        "expected a kind of step with the field `count` given before `do` (a `start_provider` step has `at_ms`, `host`)",
    );
    // Before `do`, any step's field is taken; others are unknown.
    let text = edit(
        "{\"do\": \"start_provider\",",
        "{\"hots\": 1, \"do\": \"start_provider\",",
    );
    refused_at(
        &text,
        "1, \"do\"",
        LoadErrorKind::UnknownField,
        "steps[0].hots",
        "unknown field `hots`, expected one of `do`, `at_ms`, `host`",
    );
    // Each field once: the second is where it is refused.
    let text = edit("\"host\": \"A\"}", "\"host\": \"A\", \"host\": \"B\"}");
    let e = refused(&text);
    assert_eq!(e.kind, LoadErrorKind::Invalid, "{e}");
    assert_eq!(e.path, "steps[0].host", "{e}");
    assert_eq!(e.line, Some(7), "{e}");
    assert!(e.column.unwrap() > place(&text, "\"host\": \"B\"").1, "{e}");
    assert!(e.message.contains("duplicate field `host`"), "{e}");
    // No kind, or a kind's field missing: refused at the step.
    let text = edit("\"do\": \"start_provider\", ", "");
    refused_at(
        &text,
        "{\"at_ms\": 0",
        LoadErrorKind::MissingField,
        "steps[0]",
        "missing field `do`",
    );
    let text = edit(", \"host\": \"A\"}", "}");
    refused_at(
        &text,
        "{\"do\": \"start_provider\"",
        LoadErrorKind::MissingField,
        "steps[0]",
        "missing field `host`",
    );
}

/// Address steps written before they had a family read as IPv4 and are
/// written back without one; a send goes to the first address unless it
/// says `newest`.
#[test]
fn address_steps_default_to_ipv4_and_sends_to_the_first_address() {
    use cpsim_certify::scenario::Step;
    use cpsim_sim::Family;
    for (step, family) in [
        ("{\"do\": \"address_add\", \"at_ms\": 1, \"host\": \"A\"}", Family::V4),
        ("{\"do\": \"address_add\", \"at_ms\": 1, \"host\": \"A\", \"family\": \"v6\"}", Family::V6),
        ("{\"do\": \"duplicate_address\", \"at_ms\": 1, \"host\": \"A\", \"of\": \"B\"}", Family::V4),
        ("{\"do\": \"duplicate_address\", \"at_ms\": 1, \"host\": \"A\", \"of\": \"B\", \"family\": \"v6\"}", Family::V6),
    ] {
        let s = parse(&with_step(step), "t.json").unwrap_or_else(|e| panic!("{step}: {e}"));
        let read = match &s.steps[0] {
            Step::AddressAdd { family, .. } | Step::DuplicateAddress { family, .. } => *family,
            other => panic!("{other:?}"),
        };
        assert_eq!(read, family, "{step}");
        let written = serde_json::to_value(&s.steps[0]).unwrap();
        assert_eq!(written.get("family").is_some(), family == Family::V6, "{step}");
    }
    let s = parse(
        &with_step(
            "{\"do\": \"send\", \"at_ms\": 1, \"from\": \"A\", \"to\": \"B\", \"bytes\": 3}",
        ),
        "t.json",
    )
    .unwrap();
    assert!(matches!(s.steps[0], Step::Send { newest: false, .. }));
    assert!(serde_json::to_value(&s.steps[0])
        .unwrap()
        .get("newest")
        .is_none());
    // A field of another kind is refused.
    let e = parse(
        &with_step(
            "{\"do\": \"address_remove\", \"at_ms\": 1, \"host\": \"A\", \"family\": \"v6\"}",
        ),
        "t.json",
    )
    .unwrap_err();
    assert!(e.to_string().contains("family"), "{e}");
}

/// `address_return` has a host and nothing else: each mistake is refused
/// where it is, as for the other address steps.
#[test]
fn address_return_is_checked_like_the_other_address_steps() {
    use cpsim_certify::scenario::Step;
    let ok = "{\"do\": \"address_return\", \"at_ms\": 7, \"host\": \"B\"}";
    let s = parse(&with_step(ok), "t.json").unwrap();
    assert_eq!(
        s.steps[0],
        Step::AddressReturn {
            at_ms: 7,
            host: "B".into()
        }
    );
    let text = with_step("{\"do\": \"address_return\", \"at_ms\": 7, \"host\": \"C\"}");
    refused_at(
        &text,
        "\"C\"",
        LoadErrorKind::UnknownHost,
        "steps[0].host",
        "unknown host `C`: this scenario's hosts are A, B",
    );
    // No family: the ID that comes back is the one that went, of whatever family.
    let text = with_step(
        "{\"do\": \"address_return\", \"at_ms\": 7, \"host\": \"B\", \"family\": \"v6\"}",
    );
    refused_at(
        &text,
        "\"v6\"",
        LoadErrorKind::UnknownField,
        "steps[0].family",
        "unknown field `family`, expected `at_ms` or `host`",
    );
    let text = with_step("{\"do\": \"address_return\", \"at_ms\": 7}");
    refused_at(
        &text,
        "{\"do\": \"address_return\"",
        LoadErrorKind::MissingField,
        "steps[0]",
        "missing field `host`",
    );
    let text = with_step("{\"do\": \"address_return\", \"at_ms\": 86400001, \"host\": \"B\"}");
    refused_at(
        &text,
        "86400001",
        LoadErrorKind::OutOfRange,
        "steps[0].at_ms",
        "at most one day",
    );
}

/// `interface_down` and `interface_up` have a host and nothing else: each
/// mistake is refused where it is, as for the address steps.
#[test]
fn interface_steps_are_checked_like_the_address_steps() {
    use cpsim_certify::scenario::Step;
    for kind in ["interface_down", "interface_up"] {
        let ok = format!("{{\"do\": \"{kind}\", \"at_ms\": 7, \"host\": \"B\"}}");
        let s = parse(&with_step(&ok), "t.json").unwrap();
        let (at_ms, host) = (7, cpsim_sim::HostName::from("B"));
        let want = if kind == "interface_down" {
            Step::InterfaceDown { at_ms, host }
        } else {
            Step::InterfaceUp { at_ms, host }
        };
        assert_eq!(s.steps[0], want);
        let text = with_step(&format!(
            "{{\"do\": \"{kind}\", \"at_ms\": 7, \"host\": \"C\"}}"
        ));
        refused_at(
            &text,
            "\"C\"",
            LoadErrorKind::UnknownHost,
            "steps[0].host",
            "unknown host `C`: this scenario's hosts are A, B",
        );
        // No family: the whole interface goes down and comes back.
        let text = with_step(&format!(
            "{{\"do\": \"{kind}\", \"at_ms\": 7, \"host\": \"B\", \"family\": \"v6\"}}"
        ));
        refused_at(
            &text,
            "\"v6\"",
            LoadErrorKind::UnknownField,
            "steps[0].family",
            "unknown field `family`, expected `at_ms` or `host`",
        );
        let text = with_step(&format!("{{\"do\": \"{kind}\", \"at_ms\": 7}}"));
        refused_at(
            &text,
            &format!("{{\"do\": \"{kind}\""),
            LoadErrorKind::MissingField,
            "steps[0]",
            "missing field `host`",
        );
        let text = with_step(&format!(
            "{{\"do\": \"{kind}\", \"at_ms\": 86400001, \"host\": \"B\"}}"
        ));
        refused_at(
            &text,
            "86400001",
            LoadErrorKind::OutOfRange,
            "steps[0].at_ms",
            "at most one day",
        );
    }
}

#[test]
fn every_kind_of_step_reads_back_as_itself() {
    for step in [
        "{\"do\": \"start_provider\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"stop_provider\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"listen\", \"at_ms\": 1, \"host\": \"A\", \"on\": true}",
        "{\"do\": \"send\", \"at_ms\": 1, \"from\": \"A\", \"to\": \"B\", \"family\": \"v6\", \"bytes\": 3}",
        "{\"do\": \"send_many\", \"at_ms\": 1, \"from\": \"A\", \"to\": \"B\", \"bytes\": 3, \"count\": 2, \"every_ms\": 5}",
        "{\"do\": \"address_add\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"address_remove\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"address_return\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"interface_down\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"interface_up\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"duplicate_address\", \"at_ms\": 1, \"host\": \"A\", \"of\": \"B\"}",
        "{\"do\": \"address_add\", \"at_ms\": 1, \"host\": \"A\", \"family\": \"v6\"}",
        "{\"do\": \"duplicate_address\", \"at_ms\": 1, \"host\": \"A\", \"of\": \"B\", \"family\": \"v6\"}",
        "{\"do\": \"send\", \"at_ms\": 1, \"from\": \"A\", \"to\": \"B\", \"bytes\": 3, \"newest\": true}",
        "{\"do\": \"dormant\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"shutdown\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"communication_error\", \"at_ms\": 1, \"host\": \"A\"}",
        "{\"do\": \"partition\", \"at_ms\": 1, \"a\": \"A\", \"b\": \"infra\"}",
        "{\"do\": \"heal\", \"at_ms\": 1}",
        "{\"do\": \"net_faults\", \"at_ms\": 1, \"faults\": {\"loss\": 0.5, \"delay_ms\": 2}}",
        "{\"do\": \"task_timing\", \"at_ms\": 1, \"timing\": {\"late\": 0.5, \"late_max_ms\": 9}}",
        "{\"do\": \"advance\", \"at_ms\": 1}",
    ] {
        let s = parse(&with_step(step), "t.json").unwrap_or_else(|e| panic!("{step}: {e}"));
        let written = serde_json::to_value(&s.steps[0]).unwrap();
        let read: Value = serde_json::from_str(step).unwrap();
        for (k, v) in read.as_object().unwrap() {
            if k != "faults" && k != "timing" {
                assert_eq!(&written[k], v, "{step}: {k}");
            }
        }
        assert_eq!(parse(&to_pretty_json(&s), "saved.json").unwrap(), s, "{step}");
    }
}

/// A value that is not JSON inside a step (`NaN`, a bare word, a lone
/// minus) is located, and its path names the step and the field, not just
/// `steps`: the version probe, which skips what it does not read, finds it
/// first and knows only the top-level key.
#[test]
fn a_syntax_error_inside_a_step_names_the_step_and_the_field() {
    for bad in ["NaN", "Infinity", "tru", "-"] {
        let text = with_step(&format!(
            "{{\"do\": \"listen\", \"at_ms\": {bad}, \"host\": \"A\", \"on\": true}}"
        ));
        let e = refused(&text);
        assert_eq!(e.kind, LoadErrorKind::Syntax, "{e}");
        assert_eq!(e.line, Some(place(&text, bad).0), "{e}");
        assert_eq!(e.path, "steps[0].at_ms", "{e}");
        assert!(e.to_string().contains("(this is not valid JSON)"), "{e}");
    }
    // Outside the steps, as before.
    let text = platform("{\"tasks\": {\"never\": NaN}}");
    let e = refused(&text);
    assert_eq!(e.kind, LoadErrorKind::Syntax, "{e}");
    assert_eq!(e.path, "platform.tasks.never", "{e}");
}
