//! Reading a scenario file and checking it before anything runs.
//!
//! Whatever is wrong with a file is reported as one [`LoadError`] that names
//! the file, the line and column, the JSON path of the offending value and
//! what was expected there. Checks happen in three passes:
//!
//! 1. a probe that only looks at `version`, so that a file written for another
//!    format version fails with a message about versions rather than with
//!    whatever field it has that this build does not know;
//! 2. the typed parse (serde, with `serde_path_to_error` keeping the path);
//! 3. checks serde cannot express: ranges, host names used by steps, the
//!    provider's name, an empty step list.
//!
//! Positions of errors found after parsing, and of values inside steps
//! (which serde buffers, losing their place), come from [`locate`]:
//! serde_json itself reads the text along the JSON path as borrowed raw
//! values, and a value's place is where its slice of the text starts.

use super::{Expect, PlatformSettings, Scenario, Step, VERSION};
use cpsim_sim::{Family, NetFaults, TaskTiming, TimeLimits, INFRA};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, Visitor};
use serde_json::value::RawValue;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// The largest scenario file accepted (4 MiB): anything bigger is refused
/// before it is parsed.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// At most this many hosts in a scenario.
pub const MAX_HOSTS: usize = 16;
/// No step, and no duration in the settings, goes beyond one day of virtual time.
pub const MAX_STEP_MS: u64 = 24 * 60 * 60 * 1000;
/// The largest application datagram (the largest UDP payload over IPv4).
pub const MAX_DATAGRAM_BYTES: u32 = 65_507;
/// The most datagrams one `send_many` step sends.
pub const MAX_SEND_COUNT: u64 = 10_000_000;
/// The longest host name.
const MAX_HOST_NAME: usize = 32;

/// What kind of problem a [`LoadError`] reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The file could not be read (missing, a directory, not UTF-8…).
    Io,
    /// The file is bigger than [`MAX_FILE_BYTES`].
    TooLarge,
    /// Not JSON (or JSON cut short).
    Syntax,
    /// A value of the wrong type.
    Type,
    /// A field this format does not have.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A string that names no rule of the catalogue.
    UnknownRule,
    /// An unknown step kind or enumeration value.
    UnknownVariant,
    /// The file's format version is not [`VERSION`].
    Version,
    /// A number outside its allowed range.
    OutOfRange,
    /// A step names a host the scenario does not declare.
    UnknownHost,
    /// The provider is not one this build knows.
    UnknownProvider,
    /// The scenario has no steps.
    Empty,
    /// Anything else that makes the scenario meaningless (duplicate host,
    /// contradictory expectations…).
    Invalid,
}

/// Why a scenario file was refused. Displays as
/// `FILE:LINE:COL: at PATH: MESSAGE` (position and path when known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file name (or whatever origin the caller gave).
    pub origin: String,
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending text, when known.
    pub column: Option<usize>,
    /// JSON path of the offending value, e.g. `steps[3].at_ms` (empty: the
    /// file as a whole).
    pub path: String,
    pub kind: LoadErrorKind,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "at {}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

/// Reads and checks a scenario file. The provider's name is not checked
/// (see [`load_with`] and [`load_checked`]).
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let (text, origin) = read(path)?;
    parse(&text, &origin).map(|s| resolve_library(s, path))
}

/// A relative `provider.library` path is relative to the scenario file.
fn resolve_library(mut s: Scenario, file: &Path) -> Scenario {
    if let super::ProviderRef::Library(lib) = &mut s.provider {
        if lib.is_relative() {
            let dir = file.parent().unwrap_or_else(|| Path::new(""));
            *lib = dir.join(&*lib);
        }
    }
    s
}

/// Like [`load`], and the provider's name must satisfy `known_providers`.
pub fn load_with(
    path: &Path,
    known_providers: &dyn Fn(&str) -> bool,
) -> Result<Scenario, LoadError> {
    let (text, origin) = read(path)?;
    parse_with(&text, &origin, known_providers).map(|s| resolve_library(s, path))
}

/// Parses and checks a scenario given as text; `origin` names it in errors
/// (usually the file name). The provider's name is not checked.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, LoadError> {
    parse_inner(text, origin, None)
}

/// Like [`parse`], and the provider's name must satisfy `known_providers`.
pub fn parse_with(
    text: &str,
    origin: &str,
    known_providers: &dyn Fn(&str) -> bool,
) -> Result<Scenario, LoadError> {
    parse_inner(text, origin, Some(known_providers))
}

fn read(path: &Path) -> Result<(String, String), LoadError> {
    let origin = path.display().to_string();
    let io = |message: String| LoadError {
        origin: origin.clone(),
        line: None,
        column: None,
        path: String::new(),
        kind: LoadErrorKind::Io,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| io(format!("cannot open the file: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| io(format!("cannot read the file's size: {e}")))?;
    if meta.is_dir() {
        return Err(io("this is a directory, not a scenario file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(&origin, meta.len()));
    }
    // Read at most one byte past the limit, in case the file grows meanwhile.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(&origin, bytes.len() as u64));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, origin)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let (line, column) = line_col(&bytes, at);
            Err(LoadError {
                origin,
                line: Some(line),
                column: Some(column),
                path: String::new(),
                kind: LoadErrorKind::Io,
                message: "the file is not UTF-8 text".into(),
            })
        }
    }
}

fn too_large(origin: &str, size: u64) -> LoadError {
    LoadError {
        origin: origin.to_string(),
        line: None,
        column: None,
        path: String::new(),
        kind: LoadErrorKind::TooLarge,
        message: format!(
            "the file is {size} bytes ({:.1} MiB); scenario files are at most {MAX_FILE_BYTES} bytes (4 MiB)",
            size as f64 / (1024.0 * 1024.0)
        ),
    }
}

fn parse_inner(
    text: &str,
    origin: &str,
    known_providers: Option<&dyn Fn(&str) -> bool>,
) -> Result<Scenario, LoadError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(origin, text.len() as u64));
    }
    // Editors on Windows like to start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    // Pass 1: the version, before anything else can complain.
    let probe: Probe = deserialize_located(text, origin)?;
    if probe.version.is_none() {
        return Err(LoadError {
            origin: origin.to_string(),
            line: Some(1),
            column: Some(1),
            path: String::new(),
            kind: LoadErrorKind::Version,
            message: format!(
                "missing field `version`: a scenario file says which format it is written in, \"version\": {VERSION}"
            ),
        });
    }

    // serde would read an array where a struct belongs as the struct's
    // fields in order; a scenario file spells every struct as an object.
    if let Some(path) = array_for_object(text) {
        let (line, column) = locate(text, &path)
            .map(|at| line_col(text.as_bytes(), at))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        return Err(LoadError {
            origin: origin.to_string(),
            line,
            column,
            path: path_string(&path),
            kind: LoadErrorKind::Type,
            message: "invalid type: sequence, expected a JSON object".into(),
        });
    }

    // Pass 2: the typed parse.
    let scenario: Scenario = deserialize_located(text, origin)?;

    // Pass 3: what the types cannot say.
    let fail = |p: Problem| {
        let (line, column) = locate(text, &p.path)
            .map(|at| line_col(text.as_bytes(), at))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        LoadError {
            origin: origin.to_string(),
            line,
            column,
            path: path_string(&p.path),
            kind: p.kind,
            message: p.message,
        }
    };
    validate(&scenario).map_err(fail)?;
    if let (Some(known), Some(name)) = (known_providers, scenario.provider.registry_name()) {
        if !known(name) {
            return Err(fail(Problem {
                path: vec![Seg::key("provider"), Seg::key(scenario.provider.key())],
                kind: LoadErrorKind::UnknownProvider,
                message: format!(
                    "unknown provider `{name}` (`cpsim providers` lists the known ones)"
                ),
            }));
        }
    }
    Ok(scenario)
}

// ---------------------------------------------------------------------------
// Pass 1: the version probe.

/// The version of a scenario; everything else is skipped (but still checked
/// for syntax). Only a JSON object is accepted, so that an array or a
/// number at the top level is reported as what it is.
struct Probe {
    version: Option<VersionField>,
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Probe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a scenario: a JSON object with version, name, hosts, provider and steps",
                )
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
                let mut version = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "version" && version.is_none() {
                        version = Some(map.next_value::<VersionField>()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(Probe { version })
            }
        }
        d.deserialize_map(V)
    }
}

struct VersionField;

impl<'de> Deserialize<'de> for VersionField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = VersionField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "the format version, a whole number ({VERSION} for this cpsim)"
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<VersionField, E> {
                if v == u64::from(VERSION) {
                    return Ok(VersionField);
                }
                let hint = if v > u64::from(VERSION) {
                    " (a newer cpsim wrote it: use that one, or rewrite the file in version 1)"
                } else {
                    " (there never was a version 0)"
                };
                Err(E::custom(format!(
                    "this file is version {v}; this cpsim reads version {VERSION}{hint}"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<VersionField, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "this file is version {v}; this cpsim reads version {VERSION}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The first place where the file has an array and the format an object.
fn array_for_object(text: &str) -> Option<Vec<Seg>> {
    let root: serde_json::Value = serde_json::from_str(text).ok()?;
    let is_array = |v: Option<&serde_json::Value>| v.is_some_and(|v| v.is_array());
    let k = Seg::key;
    let mut candidates: Vec<Vec<Seg>> = vec![
        vec![k("provider")],
        vec![k("platform")],
        vec![k("platform"), k("limits")],
        vec![k("platform"), k("net")],
        vec![k("platform"), k("tasks")],
    ];
    if let Some(steps) = root.get("steps").and_then(|v| v.as_array()) {
        for i in 0..steps.len() {
            candidates.push(vec![k("steps"), Seg::Index(i)]);
            candidates.push(vec![k("steps"), Seg::Index(i), k("faults")]);
            candidates.push(vec![k("steps"), Seg::Index(i), k("timing")]);
        }
    }
    candidates.push(vec![k("expect")]);
    candidates.push(vec![k("expect"), k("first_violation")]);
    candidates.into_iter().find(|path| {
        let mut v = Some(&root);
        for seg in path {
            v = match seg {
                Seg::Key(key) => v.and_then(|v| v.get(key.as_str())),
                Seg::Index(i) => v.and_then(|v| v.get(*i)),
            };
        }
        is_array(v)
    })
}

// ---------------------------------------------------------------------------
// Pass 2: typed parse with located, explained errors.

/// A segment of a JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn key(k: &str) -> Seg {
        Seg::Key(k.to_string())
    }
}

fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => {
                s.push_str(&format!("[{i}]"));
            }
        }
    }
    s
}

fn segments(path: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// The message of a serde_json error without its " at line L column C" tail.
fn bare_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&tail).unwrap_or(&full).to_string()
}

fn deserialize_located<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, LoadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| explain(text, origin, segments(e.path()), e.inner()))?;
    de.end()
        .map_err(|e| explain(text, origin, Vec::new(), &e))?;
    Ok(value)
}

/// Turns a serde error into a [`LoadError`]: refines the path where serde
/// could not see it (inside steps), rewords the few messages that would
/// puzzle a person, and finds the position.
fn explain(text: &str, origin: &str, path: Vec<Seg>, e: &serde_json::Error) -> LoadError {
    use serde_json::error::Category;
    let serde_pos = (e.line() > 0).then(|| (e.line(), e.column().max(1)));
    let message = bare_message(e);
    match e.classify() {
        Category::Syntax | Category::Eof => {
            let message = if e.classify() == Category::Eof {
                format!("{message} (the file ends too early)")
            } else {
                format!("{message} (this is not valid JSON)")
            };
            LoadError {
                origin: origin.to_string(),
                line: serde_pos.map(|p| p.0),
                column: serde_pos.map(|p| p.1),
                path: path_string(&path),
                kind: LoadErrorKind::Syntax,
                message,
            }
        }
        Category::Io | Category::Data => {
            let (path, message) = refine(text, path, message);
            let (kind, message) = classify(&path, message);
            // A duplicate is where serde stopped, not where the path first leads.
            let pos = if message.starts_with("duplicate field") {
                serde_pos
            } else {
                locate(text, &path)
                    .map(|at| line_col(text.as_bytes(), at))
                    .or(serde_pos)
            };
            LoadError {
                origin: origin.to_string(),
                line: pos.map(|p| p.0),
                column: pos.map(|p| p.1),
                path: path_string(&path),
                kind,
                message,
            }
        }
    }
}

/// Steps are an internally tagged enum, which serde buffers: its errors stop
/// at `steps[i]`. Parsing that one step again as a loose record of every
/// step field finds which field was wrong.
fn refine(text: &str, mut path: Vec<Seg>, mut message: String) -> (Vec<Seg>, String) {
    let step_level = is_step_path(&path);
    if step_level && !message.starts_with("missing field") {
        if let Some((sub, sub_message)) = step_field_error(text, &path) {
            path.extend(sub);
            message = sub_message;
        }
    }
    let named = backticked(&message, "unknown field `")
        .or_else(|| backticked(&message, "duplicate field `"));
    if let Some(field) = named {
        if path.last() != Some(&Seg::Key(field.clone())) {
            path.push(Seg::Key(field));
        }
    } else if message.starts_with("unknown variant `") && is_step_path(&path) {
        // Still at the step itself: the step kind is what is unknown.
        path.push(Seg::key("do"));
    }
    (path, message)
}

/// Parses the step at `path` again, as a loose record, to find the field
/// that is wrong: its path below the step and its message.
fn step_field_error(text: &str, path: &[Seg]) -> Option<(Vec<Seg>, String)> {
    let raw = locate_raw(text, path)?;
    let mut de = serde_json::Deserializer::from_str(raw);
    let r: Result<StepFields, _> = serde_path_to_error::deserialize(&mut de);
    let inner = r.err()?;
    let sub = segments(inner.path());
    (!sub.is_empty()).then(|| (sub, bare_message(inner.inner())))
}

fn is_step_path(path: &[Seg]) -> bool {
    matches!(path, [Seg::Key(k), Seg::Index(_)] if k == "steps")
}

/// Every field any step kind has, each optional, unknown ones ignored.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct StepFields {
    at_ms: Option<u64>,
    host: Option<String>,
    on: Option<bool>,
    from: Option<String>,
    to: Option<String>,
    family: Option<Family>,
    bytes: Option<u32>,
    count: Option<u64>,
    every_ms: Option<u64>,
    of: Option<String>,
    a: Option<String>,
    b: Option<String>,
    faults: Option<NetFaults>,
    timing: Option<TaskTiming>,
}

/// The text between `prefix` and the next backtick.
fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

fn classify(path: &[Seg], message: String) -> (LoadErrorKind, String) {
    use LoadErrorKind as K;
    let last_key = match path.last() {
        Some(Seg::Key(k)) => k.as_str(),
        _ => "",
    };
    if let Some(n) = backticked(&message, "invalid value: integer `") {
        if n.starts_with('-') {
            let what = if last_key == "at_ms" {
                format!("a step's time must be >= 0 (got {n} ms)")
            } else {
                format!("`{last_key}` must be >= 0 (got {n})")
            };
            return (K::OutOfRange, what);
        }
        // A plain integer type overflowed; a range-checked one (`Millis`)
        // has said what it takes.
        let plain = ["u8", "u16", "u32", "u64"]
            .iter()
            .any(|t| message.ends_with(&format!(", expected {t}")));
        if plain {
            return (
                K::OutOfRange,
                format!("{message} (the number is too large)"),
            );
        }
        return (K::OutOfRange, message);
    }
    if last_key == "at_ms" && message.starts_with("invalid type: floating point") {
        let n = backticked(&message, "invalid type: floating point `").unwrap_or_default();
        return (
            K::Type,
            format!("a step's time is a whole number of milliseconds >= 0 (got {n})"),
        );
    }
    let kind = if message.starts_with("unknown field") {
        K::UnknownField
    } else if message.starts_with("missing field") {
        K::MissingField
    } else if message.starts_with("unknown rule ID") {
        K::UnknownRule
    } else if message.starts_with("unknown variant") {
        K::UnknownVariant
    } else if message.starts_with("this file is version") {
        K::Version
    } else if message.starts_with("invalid type") || message.starts_with("invalid length") {
        K::Type
    } else {
        // Duplicate fields, and anything serde says that is not listed above.
        K::Invalid
    };
    (kind, message)
}

// ---------------------------------------------------------------------------
// Pass 3: checks on the parsed scenario.

struct Problem {
    path: Vec<Seg>,
    kind: LoadErrorKind,
    message: String,
}

fn problem(path: Vec<Seg>, kind: LoadErrorKind, message: String) -> Result<(), Problem> {
    Err(Problem {
        path,
        kind,
        message,
    })
}

fn at(base: &[Seg], more: &[&str]) -> Vec<Seg> {
    let mut p = base.to_vec();
    p.extend(more.iter().map(|k| Seg::key(k)));
    p
}

fn validate(s: &Scenario) -> Result<(), Problem> {
    use LoadErrorKind as K;
    if s.name.trim().is_empty() {
        problem(
            vec![Seg::key("name")],
            K::Invalid,
            "a scenario needs a name (a non-empty string)".into(),
        )?;
    }
    check_hosts(&s.hosts)?;
    match &s.provider {
        super::ProviderRef::Name(provider) | super::ProviderRef::Builtin(provider)
            if provider.trim().is_empty() =>
        {
            problem(
                vec![Seg::key("provider"), Seg::key(s.provider.key())],
                K::Invalid,
                "the provider's name is empty".into(),
            )?
        }
        super::ProviderRef::Library(path) if path.as_os_str().is_empty() => problem(
            vec![Seg::key("provider"), Seg::key("library")],
            K::Invalid,
            "the provider module's path is empty".into(),
        )?,
        _ => {}
    }
    if s.simulator_only
        .as_deref()
        .is_some_and(|r| r.trim().is_empty())
    {
        problem(
            vec![Seg::key("simulator_only")],
            K::Invalid,
            "`simulator_only` gives the reason the scenario runs on the simulator only (a non-empty string)".into(),
        )?;
    }
    check_platform(&s.platform)?;
    if s.steps.is_empty() {
        problem(
            vec![Seg::key("steps")],
            K::Empty,
            "a scenario needs at least one step (`steps` is empty)".into(),
        )?;
    }
    for (i, step) in s.steps.iter().enumerate() {
        check_step(&s.hosts, i, step)?;
    }
    check_expect(&s.expect)
}

fn check_hosts(hosts: &[String]) -> Result<(), Problem> {
    use LoadErrorKind as K;
    if hosts.is_empty() || hosts.len() > MAX_HOSTS {
        problem(
            vec![Seg::key("hosts")],
            K::OutOfRange,
            format!(
                "there are {} hosts; a scenario has 1 to {MAX_HOSTS}",
                hosts.len()
            ),
        )?;
    }
    for (i, h) in hosts.iter().enumerate() {
        let path = vec![Seg::key("hosts"), Seg::Index(i)];
        let good_chars = h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if h.is_empty() || h.len() > MAX_HOST_NAME || !good_chars {
            problem(
                path.clone(),
                K::Invalid,
                format!("host name `{h}`: use 1 to {MAX_HOST_NAME} ASCII letters, digits, `-`, `_` or `.`"),
            )?;
        }
        if h == INFRA {
            problem(
                path.clone(),
                K::Invalid,
                format!("`{INFRA}` is the simulator's infrastructure node and cannot be declared as a host"),
            )?;
        }
        if hosts[..i].contains(h) {
            problem(path, K::Invalid, format!("host `{h}` is declared twice"))?;
        }
    }
    Ok(())
}

fn check_ms(path: Vec<Seg>, what: &str, v: u64) -> Result<(), Problem> {
    if v > MAX_STEP_MS {
        problem(
            path,
            LoadErrorKind::OutOfRange,
            format!("{what} is {v} ms; at most one day ({MAX_STEP_MS} ms) is allowed"),
        )?;
    }
    Ok(())
}

fn check_probability(path: Vec<Seg>, v: f64) -> Result<(), Problem> {
    if !(0.0..=1.0).contains(&v) {
        problem(
            path,
            LoadErrorKind::OutOfRange,
            format!("a probability is between 0 and 1 (got {v})"),
        )?;
    }
    Ok(())
}

fn check_limits(base: &[Seg], l: &TimeLimits) -> Result<(), Problem> {
    let fields = [
        ("establish_ms", l.establish_ms),
        ("terminate_ms", l.terminate_ms),
        ("transition_active_ms", l.transition_active_ms),
        ("transition_dormant_ms", l.transition_dormant_ms),
        ("add_transport_id_ms", l.add_transport_id_ms),
        ("remove_transport_id_ms", l.remove_transport_id_ms),
        ("reach_transport_id_ms", l.reach_transport_id_ms),
        ("send_buffers_ms", l.send_buffers_ms),
    ];
    for (name, v) in fields {
        check_ms(at(base, &[name]), "a time limit", v)?;
    }
    Ok(())
}

fn check_net(base: &[Seg], n: &NetFaults) -> Result<(), Problem> {
    check_probability(at(base, &["loss"]), n.loss)?;
    check_probability(at(base, &["duplicate"]), n.duplicate)?;
    check_probability(at(base, &["reorder"]), n.reorder)?;
    check_ms(at(base, &["delay_ms"]), "the network delay", n.delay_ms)?;
    check_ms(at(base, &["jitter_ms"]), "the network jitter", n.jitter_ms)
}

fn check_tasks(base: &[Seg], t: &TaskTiming) -> Result<(), Problem> {
    check_probability(at(base, &["before_return"]), t.before_return)?;
    check_probability(at(base, &["late"]), t.late)?;
    check_probability(at(base, &["after_timeout"]), t.after_timeout)?;
    check_probability(at(base, &["never"]), t.never)?;
    check_ms(at(base, &["late_max_ms"]), "late_max_ms", t.late_max_ms)?;
    let sum = t.before_return + t.late + t.after_timeout + t.never;
    if sum > 1.0 + 1e-9 {
        problem(
            base.to_vec(),
            LoadErrorKind::OutOfRange,
            format!(
                "before_return + late + after_timeout + never is {sum}; they are shares of one whole and add up to at most 1"
            ),
        )?;
    }
    Ok(())
}

fn check_platform(p: &PlatformSettings) -> Result<(), Problem> {
    let base = [Seg::key("platform")];
    check_limits(&at(&base, &["limits"]), &p.limits)?;
    check_net(&at(&base, &["net"]), &p.net)?;
    // drain_ms and idle_dormancy_ms are `Millis`: checked as they are read.
    check_tasks(&at(&base, &["tasks"]), &p.tasks)
}

fn check_step(hosts: &[String], i: usize, step: &Step) -> Result<(), Problem> {
    use LoadErrorKind as K;
    let base = [Seg::key("steps"), Seg::Index(i)];
    let t = step.at_ms();
    if t > MAX_STEP_MS {
        problem(
            at(&base, &["at_ms"]),
            K::OutOfRange,
            format!("a step's time is at most one day ({MAX_STEP_MS} ms); got {t} ms"),
        )?;
    }
    let host = |field: &str, name: &str, infra_ok: bool| -> Result<(), Problem> {
        if hosts.iter().any(|h| h == name) || (infra_ok && name == INFRA) {
            return Ok(());
        }
        let extra = if infra_ok {
            format!(" (or `{INFRA}`, the infrastructure node)")
        } else {
            String::new()
        };
        problem(
            at(&base, &[field]),
            K::UnknownHost,
            format!(
                "unknown host `{name}`: this scenario's hosts are {}{extra}",
                hosts.join(", ")
            ),
        )
    };
    match step {
        Step::StartProvider { host: h, .. }
        | Step::StopProvider { host: h, .. }
        | Step::Listen { host: h, .. }
        | Step::AddressAdd { host: h, .. }
        | Step::AddressRemove { host: h, .. }
        | Step::Dormant { host: h, .. }
        | Step::Shutdown { host: h, .. }
        | Step::CommunicationError { host: h, .. } => host("host", h, false)?,
        Step::Send {
            from, to, bytes, ..
        }
        | Step::SendMany {
            from, to, bytes, ..
        } => {
            host("from", from, false)?;
            host("to", to, false)?;
            if *bytes > MAX_DATAGRAM_BYTES {
                problem(
                    at(&base, &["bytes"]),
                    K::OutOfRange,
                    format!("a datagram has at most {MAX_DATAGRAM_BYTES} bytes (got {bytes})"),
                )?;
            }
            if let Step::SendMany {
                count, every_ms, ..
            } = step
            {
                check_send_many(&base, t, *count, *every_ms)?;
            }
        }
        Step::DuplicateAddress { host: h, of, .. } => {
            host("host", h, false)?;
            host("of", of, false)?;
            if h == of {
                problem(
                    at(&base, &["of"]),
                    K::Invalid,
                    format!(
                        "`of` names the host whose address `{h}` copies: it must be another host"
                    ),
                )?;
            }
        }
        Step::Partition { a, b, .. } => {
            host("a", a, true)?;
            host("b", b, true)?;
            if a == b {
                problem(
                    at(&base, &["b"]),
                    K::Invalid,
                    format!("a partition separates two different nodes (both are `{a}`)"),
                )?;
            }
        }
        Step::NetFaults { faults, .. } => check_net(&at(&base, &["faults"]), faults)?,
        Step::TaskTiming { timing, .. } => check_tasks(&at(&base, &["timing"]), timing)?,
        Step::Heal { .. } | Step::Advance { .. } => {}
    }
    Ok(())
}

fn check_send_many(base: &[Seg], at_ms: u64, count: u64, every_ms: u64) -> Result<(), Problem> {
    use LoadErrorKind as K;
    if count == 0 || count > MAX_SEND_COUNT {
        problem(
            at(base, &["count"]),
            K::OutOfRange,
            format!("`count` is the number of datagrams, 1 to {MAX_SEND_COUNT} (got {count})"),
        )?;
    }
    check_ms(at(base, &["every_ms"]), "`every_ms`", every_ms)?;
    let last = (count - 1)
        .checked_mul(every_ms)
        .and_then(|d| d.checked_add(at_ms));
    if last.is_none_or(|t| t > MAX_STEP_MS) {
        let when = last.map_or_else(|| "beyond".to_string(), |t| format!("at {t} ms, after"));
        problem(
            at(base, &["count"]),
            K::OutOfRange,
            format!(
                "the last of {count} datagrams, {every_ms} ms apart from {at_ms} ms, would go {when} one day ({MAX_STEP_MS} ms); steps happen within one day"
            ),
        )?;
    }
    Ok(())
}

fn check_expect(e: &Expect) -> Result<(), Problem> {
    use LoadErrorKind as K;
    let base = [Seg::key("expect")];
    if let Some(fv) = &e.first_violation {
        if fv.step == 0 {
            problem(
                at(&base, &["first_violation", "step"]),
                K::OutOfRange,
                "trace steps count from 1".into(),
            )?;
        }
    }
    if let (Some(exact), Some(includes)) = (&e.violations, &e.includes) {
        if let Some((k, r)) = includes
            .iter()
            .enumerate()
            .find(|(_, r)| !exact.contains(r))
        {
            let mut path = at(&base, &["includes"]);
            path.push(Seg::Index(k));
            problem(
                path,
                K::Invalid,
                format!("`includes` names {r}, which `violations` (the exact list) does not"),
            )?;
        }
    }
    if let (Some(exact), Some(fv)) = (&e.violations, &e.first_violation) {
        if !exact.contains(&fv.rule) {
            problem(
                at(&base, &["first_violation", "rule"]),
                K::Invalid,
                format!(
                    "`first_violation` is {}, which `violations` (the exact list) does not name",
                    fv.rule
                ),
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Positions: where the value at a path starts, found by serde_json itself.

/// The byte offset where the value at `path` starts, if the text is JSON
/// enough to get there.
fn locate(text: &str, path: &[Seg]) -> Option<usize> {
    let raw = locate_raw(text, path)?;
    (raw.as_ptr() as usize).checked_sub(text.as_ptr() as usize)
}

/// The text of the value at `path`: a slice of `text`. Each level is read
/// by serde_json as borrowed raw values, so no scanner of ours walks the
/// text; `None` for anything that does not lead there (never a panic).
fn locate_raw<'a>(text: &'a str, path: &[Seg]) -> Option<&'a str> {
    let mut at: &'a RawValue = serde_json::from_str(text).ok()?;
    for seg in path {
        let here = at.get();
        at = match seg {
            Seg::Key(key) => {
                let mut de = serde_json::Deserializer::from_str(here);
                FirstValueOf(key).deserialize(&mut de).ok()??
            }
            Seg::Index(i) => {
                let items: Vec<&'a RawValue> = serde_json::from_str(here).ok()?;
                *items.get(*i)?
            }
        };
    }
    Some(at.get())
}

/// Reads an object and keeps the raw value of the first entry named `.0`
/// (the one a reader meets first, if the key is repeated).
struct FirstValueOf<'k>(&'k str);

impl<'de> de::DeserializeSeed<'de> for FirstValueOf<'_> {
    type Value = Option<&'de RawValue>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FirstValueOf<'_> {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if found.is_none() && key == self.0 {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(bytes: &[u8], at: usize) -> (usize, usize) {
    let at = at.min(bytes.len());
    let before = &bytes[..at];
    let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = 1 + before[line_start..]
        .iter()
        .filter(|&&c| c & 0xC0 != 0x80)
        .count();
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &[&str]) -> Vec<Seg> {
        p.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::key(s),
            })
            .collect()
    }

    #[test]
    fn locate_walks_objects_and_arrays() {
        let text = "{\n  \"a\": [1, {\"b\": \"x\"}],\n  \"c\": {\"d\\u0065\": 7}\n}";
        let at = locate(text, &segs(&["a", "1", "b"])).unwrap();
        assert_eq!(&text[at..at + 3], "\"x\"");
        assert_eq!(line_col(text.as_bytes(), at), (2, 18));
        let at = locate(text, &segs(&["c", "de"])).unwrap();
        assert_eq!(&text[at..at + 1], "7");
        assert_eq!(locate(text, &segs(&["a", "2"])), None);
        assert_eq!(locate(text, &segs(&["nope"])), None);
        assert_eq!(locate("{\"a\": [1, 2", &segs(&["a", "5"])), None);
        assert_eq!(
            path_string(&segs(&["steps", "3", "at_ms"])),
            "steps[3].at_ms"
        );
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\néé x".as_bytes(), "ab\néé ".len()), (2, 4));
        assert_eq!(line_col(b"", 5), (1, 1));
    }
}
