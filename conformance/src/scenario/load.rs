//! Reading a scenario file and checking it before anything runs.
//!
//! Whatever is wrong with a file is reported as one [`LoadError`] that names
//! the file, the line and column, the JSON path of the offending value and
//! what was expected there. Checks happen in three passes:
//!
//! 1. a probe that only looks at `version`, so that a file written for another
//!    format version fails with a message about versions rather than with
//!    whatever field it has that this build does not know;
//! 2. the typed parse (serde, with `serde_path_to_error` keeping the path):
//!    every range, name and shape is checked by the types as they are read
//!    (see `de.rs`), so serde's error carries the path;
//! 3. checks that need more than one value: hosts named by steps, the last
//!    datagram of `send_many`, expectations that contradict each other, an
//!    empty step list, the provider's name.
//!
//! An error points at the start of the offending value, found by [`locate`]
//! from its path: serde_json itself reads the text along the JSON path as
//! borrowed raw values, and a value's place is where its slice of the text
//! starts (serde's own place is where its reader stopped, past the value).

use super::{Expect, Scenario, Step, VERSION};
use cpsim_sim::INFRA;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, Visitor};
use serde_json::value::RawValue;
use std::fmt::{self, Write as _};
use std::io::Read;
use std::path::Path;

/// The largest scenario file accepted (4 MiB): anything bigger is refused
/// before it is parsed.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// At most this many hosts in a scenario.
pub const MAX_HOSTS: usize = 16;
/// No step, and no duration in the settings, goes beyond one day of virtual time.
pub const MAX_STEP_MS: u64 = cpsim_sim::Millis::MAX.get();
/// The largest application datagram (the largest UDP payload over IPv4).
pub const MAX_DATAGRAM_BYTES: u32 = 65_507;
/// The most datagrams one `send_many` step sends.
pub const MAX_SEND_COUNT: u64 = 10_000_000;

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
        visible(f, &self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            f.write_str("at ")?;
            visible(f, &self.path)?;
            f.write_str(": ")?;
        }
        visible(f, &self.message)
    }
}

/// Writes `s` with its control characters escaped (`\u{1b}`): an error
/// quotes names from the file (an unknown field, a JSON path), which must
/// reach a terminal or a log as text, not as escape sequences, and stay on
/// one line.
fn visible(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_unicode())?;
        } else {
            f.write_char(c)?;
        }
    }
    Ok(())
}

impl std::error::Error for LoadError {}

/// Reads and checks a scenario file. The provider's name is not checked
/// (see [`load_with`] and [`load_checked`]).
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let (text, origin) = read(path)?;
    parse(&text, &origin).map(|s| resolve_library(s, path))
}

/// Reads and checks a scenario file like [`load`], leaving a relative
/// `provider.library` as written (a saved case compares it as written).
pub(crate) fn load_as_written(path: &Path) -> Result<Scenario, LoadError> {
    let (text, origin) = read(path)?;
    parse(&text, &origin)
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
    let file = open_regular_file(path, "a scenario file").map_err(io)?;
    let meta = file
        .metadata()
        .map_err(|e| io(format!("cannot read the file's size: {e}")))?;
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

/// What `meta` is, when it is not a regular file.
fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if t.is_socket() {
            return Some("a socket");
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
    }
    Some("not a regular file")
}

/// Why `path`, which could not be found, is not there: "no such file or
/// directory", or, when a folder on the way is a file (`ok.json/x.json`),
/// which one.
pub fn missing(path: &Path) -> String {
    let file_on_the_way = path
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()));
    match file_on_the_way {
        Some(a) => format!("no such file: {} is a file, not a folder", a.display()),
        None => "no such file or directory".to_string(),
    }
}

/// Opens `path` for reading if it is a regular file. Anything else is
/// refused before it is opened, saying what it is and that it is not
/// `what` (e.g. "a scenario file"): opening a named pipe would wait for a
/// writer for ever, and a device such as `/dev/zero` never ends. The error
/// does not name the path (the caller does).
pub fn open_regular_file(path: &Path, what: &str) -> Result<std::fs::File, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        // A dangling symbolic link is "not found" too (or "not a
        // directory", when its target goes through a file): say which it is.
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
            match std::fs::symlink_metadata(path) {
                Ok(_) => match std::fs::read_link(path) {
                    Ok(to) => {
                        format!("a symbolic link to {}, which does not exist", to.display())
                    }
                    Err(_) => missing(path),
                },
                Err(_) => missing(path),
            }
        }
        _ => format!("cannot open the file: {e}"),
    })?;
    if let Some(kind) = not_regular(&meta) {
        return Err(format!("this is {kind}, not {what}"));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    // Checked again on what was opened, in case the path changed meanwhile.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the file's size: {e}"))?;
    if let Some(kind) = not_regular(&meta) {
        return Err(format!("this is {kind}, not {what}"));
    }
    Ok(file)
}

/// Reads the regular file at `path` (see [`open_regular_file`]), refusing
/// one larger than `max` bytes. The error does not name the path.
pub fn read_regular_file(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, String> {
    let file = open_regular_file(path, what)?;
    let too_big = |n: u64| {
        format!(
            "the file is {n} bytes ({:.1} MiB); {what} is read only up to {max} bytes",
            n as f64 / (1024.0 * 1024.0)
        )
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
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
    let probe: Probe =
        deserialize_located(text, origin).map_err(|e| with_typed_path(text, origin, e))?;
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

    // Pass 2: the typed parse.
    let scenario: Scenario = deserialize_located(text, origin)?;

    // Pass 3: what needs more than one value.
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

/// A syntax error found by pass 1, which skips what it does not read and
/// so knows only the top-level key it was in (`steps`), with the path the
/// typed parse gives the same error (`steps[4].at_ms`), if it reaches it
/// at the same place.
fn with_typed_path(text: &str, origin: &str, e: LoadError) -> LoadError {
    if e.kind != LoadErrorKind::Syntax {
        return e;
    }
    match deserialize_located::<Scenario>(text, origin) {
        Err(typed)
            if typed.kind == LoadErrorKind::Syntax
                && (typed.line, typed.column) == (e.line, e.column)
                && typed.path.len() > e.path.len() =>
        {
            LoadError {
                path: typed.path,
                ..e
            }
        }
        _ => e,
    }
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

/// Turns a serde error into a [`LoadError`]: its kind and the place of the
/// value at its path.
fn explain(text: &str, origin: &str, path: Vec<Seg>, e: &serde_json::Error) -> LoadError {
    use serde_json::error::Category;
    let serde_pos = (e.line() > 0).then(|| (e.line(), e.column().max(1)));
    let message = bare_message(e);
    match e.classify() {
        Category::Syntax | Category::Eof => {
            let message = if e.classify() == Category::Eof {
                format!("{message} (the file ends too early)")
            } else if message == "recursion limit exceeded" {
                // Valid JSON, but nested deeper than the reader goes.
                "arrays and objects nested more than 128 deep: cpsim reads scenario files nested at most 128 deep".to_string()
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
            let kind = kind_of(&message);
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

/// The kind of a serde error, told by the wording of serde's `de::Error`
/// constructors (which every check of the types uses) or of the two
/// messages of cpsim's own (rule IDs, versions).
fn kind_of(message: &str) -> LoadErrorKind {
    use LoadErrorKind as K;
    const KINDS: [(&str, LoadErrorKind); 9] = [
        ("unknown field", K::UnknownField),
        ("missing field", K::MissingField),
        ("unknown variant", K::UnknownVariant),
        ("unknown rule ID", K::UnknownRule),
        ("this file is version", K::Version),
        ("invalid type", K::Type),
        ("invalid length", K::OutOfRange),
        // A string that is not one the field takes (a name).
        ("invalid value: string", K::Invalid),
        // A number out of its range.
        ("invalid value", K::OutOfRange),
    ];
    KINDS
        .iter()
        .find(|(start, _)| message.starts_with(start))
        // Duplicate fields and anything else serde says.
        .map_or(K::Invalid, |&(_, kind)| kind)
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
    if s.steps.is_empty() {
        problem(
            vec![Seg::key("steps")],
            LoadErrorKind::Empty,
            "a scenario needs at least one step (`steps` is empty)".into(),
        )?;
    }
    for (i, step) in s.steps.iter().enumerate() {
        check_step(&s.hosts, i, step)?;
    }
    check_expect(&s.expect)
}

fn check_step(hosts: &[cpsim_sim::HostName], i: usize, step: &Step) -> Result<(), Problem> {
    use LoadErrorKind as K;
    let base = [Seg::key("steps"), Seg::Index(i)];
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
        | Step::AddressReturn { host: h, .. }
        | Step::InterfaceDown { host: h, .. }
        | Step::InterfaceUp { host: h, .. }
        | Step::Dormant { host: h, .. }
        | Step::Shutdown { host: h, .. }
        | Step::CommunicationError { host: h, .. } => host("host", h, false)?,
        Step::Send { from, to, .. } | Step::SendMany { from, to, .. } => {
            host("from", from, false)?;
            host("to", to, false)?;
            if let Step::SendMany {
                at_ms,
                count,
                every_ms,
                ..
            } = step
            {
                check_send_many(&base, *at_ms, *count, *every_ms)?;
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
        Step::NetFaults { .. }
        | Step::TaskTiming { .. }
        | Step::Heal { .. }
        | Step::Advance { .. } => {}
    }
    Ok(())
}

/// The last datagram of a `send_many` step goes within one day (`count`
/// and `every_ms` are each in range: their types say so).
fn check_send_many(base: &[Seg], at_ms: u64, count: u64, every_ms: u64) -> Result<(), Problem> {
    let last = count
        .saturating_sub(1)
        .checked_mul(every_ms)
        .and_then(|d| d.checked_add(at_ms));
    if last.is_none_or(|t| t > MAX_STEP_MS) {
        let when = last.map_or_else(|| "beyond".to_string(), |t| format!("at {t} ms, after"));
        problem(
            at(base, &["count"]),
            LoadErrorKind::OutOfRange,
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
