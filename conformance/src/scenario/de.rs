//! How the scenario types read themselves: every value is checked by its
//! type as serde reads it, so that whatever is wrong fails inside serde,
//! where `serde_path_to_error` knows its path and serde_json its place.
//!
//! - ranges: [`Millis`], [`cpsim_sim::Probability`] (in `cpsim_sim`'s
//!   config types), [`Bytes`], [`Count`], whole numbers, trace steps;
//! - names: non-blank strings, host names (unique, not `infra`);
//! - shapes: a struct is read from a JSON object only (serde would also
//!   take an array as the fields in order); a step is read as it streams
//!   by (serde buffers a tagged enum, which loses places and paths).
//!
//! Every error is made with serde's own `de::Error` constructors
//! (`invalid_value`, `invalid_length`, `unknown_field`…), whose wording
//! the loader reads to tell the kind of error.

use super::load::{MAX_DATAGRAM_BYTES, MAX_HOSTS, MAX_SEND_COUNT};
use super::{ProviderRef, Step};
use cpsim_sim::{Family, HostName, Millis, NetFaults, TaskTiming, INFRA};
use serde::de::value::MapAccessDeserializer;
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Unexpected,
    Visitor,
};
use std::fmt;
use std::marker::PhantomData;

/// The longest host name.
const MAX_HOST_NAME: usize = 32;

// ---------------------------------------------------------------------------
// Objects.

/// Reads a struct from a JSON object, and only from one.
pub(super) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(V(PhantomData))
}

/// [`object`], or `null` for none.
pub(super) fn object_opt<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|o| o.0))
}

/// A struct read by [`object`].
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(Object)
    }
}

/// Task timing: an object whose shares add up to at most 1.
pub(super) fn task_timing<'de, D: Deserializer<'de>>(d: D) -> Result<TaskTiming, D::Error> {
    let t: TaskTiming = object(d)?;
    let sum = t.before_return + t.late + t.after_timeout + t.never;
    if sum > 1.0 + 1e-9 {
        return Err(de::Error::invalid_value(
            Unexpected::Float(sum),
            &"before_return + late + after_timeout + never to add up to at most 1 (they are shares of one whole; this is their sum)",
        ));
    }
    Ok(t)
}

/// A [`task_timing`] as a type.
struct Timing(TaskTiming);

impl<'de> Deserialize<'de> for Timing {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        task_timing(d).map(Timing)
    }
}

// ---------------------------------------------------------------------------
// Numbers.

/// A whole number in `min..=max`; `what` says so in errors.
#[derive(Copy, Clone)]
struct Whole {
    min: u64,
    max: u64,
    what: &'static str,
}

impl Visitor<'_> for Whole {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        if (self.min..=self.max).contains(&v) {
            Ok(v)
        } else {
            Err(E::invalid_value(Unexpected::Unsigned(v), &self))
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Whole {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_u64(self)
    }
}

const WHOLE: Whole = Whole {
    min: 0,
    max: u64::MAX,
    what: "a whole number >= 0",
};

/// Any whole number >= 0 (a seed).
pub(super) fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    WHOLE.deserialize(d)
}

/// A whole number that fits 32 bits, or `null`.
pub(super) fn whole_u32_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct U32(u32);
    impl<'de> Deserialize<'de> for U32 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let v = Whole {
                max: u32::MAX.into(),
                what: "a whole number from 0 to 4294967295",
                ..WHOLE
            }
            .deserialize(d)?;
            Ok(U32(v as u32))
        }
    }
    Option::<U32>::deserialize(d).map(|o| o.map(|v| v.0))
}

/// A step of a trace: they count from 1.
pub(super) fn trace_step<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Whole {
        min: 1,
        what: "a trace step (they count from 1)",
        ..WHOLE
    }
    .deserialize(d)
}

/// The size of a datagram: at most [`MAX_DATAGRAM_BYTES`].
struct Bytes(u32);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Whole {
            max: MAX_DATAGRAM_BYTES.into(),
            what: "a datagram's size, 0 to 65507 bytes",
            ..WHOLE
        }
        .deserialize(d)?;
        Ok(Bytes(v as u32))
    }
}

/// How many datagrams a `send_many` step sends: 1 to [`MAX_SEND_COUNT`].
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Whole {
            min: 1,
            max: MAX_SEND_COUNT,
            what: "the number of datagrams, 1 to 10000000",
        }
        .deserialize(d)
        .map(Count)
    }
}

// ---------------------------------------------------------------------------
// Names.

fn non_blank_as<'de, D: Deserializer<'de>>(d: D, what: &'static str) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(de::Error::invalid_value(Unexpected::Str(&s), &what));
    }
    Ok(s)
}

/// A string with something in it (a scenario's or a provider's name).
pub(super) fn non_blank<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    non_blank_as(d, "a name (a non-empty string)")
}

/// Why a scenario runs on the simulator only, or `null`.
pub(super) fn non_blank_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Reason(String);
    impl<'de> Deserialize<'de> for Reason {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            non_blank_as(
                d,
                "the reason the scenario runs on the simulator only (a non-empty string)",
            )
            .map(Reason)
        }
    }
    Option::<Reason>::deserialize(d).map(|o| o.map(|r| r.0))
}

/// A provider module's path: not empty.
pub(super) fn non_empty_path<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::path::PathBuf, D::Error> {
    non_blank_as(d, "the path of a provider module (a non-empty string)").map(Into::into)
}

/// The hosts: 1 to [`MAX_HOSTS`] names, each of 1 to 32 ASCII letters,
/// digits, `-`, `_` or `.`, none twice, none `infra`.
pub(super) fn hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HostName>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<HostName>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of 1 to {MAX_HOSTS} host names")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<HostName>, A::Error> {
            let mut hosts = Vec::new();
            while let Some(h) = seq.next_element_seed(Host(&hosts))? {
                hosts.push(h);
            }
            if hosts.is_empty() || hosts.len() > MAX_HOSTS {
                return Err(de::Error::invalid_length(hosts.len(), &self));
            }
            Ok(hosts)
        }
    }
    d.deserialize_seq(V)
}

/// One host name; the ones before it in the list.
struct Host<'a>(&'a [HostName]);

impl<'de> DeserializeSeed<'de> for Host<'_> {
    type Value = HostName;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<HostName, D::Error> {
        let h = HostName::deserialize(d)?;
        let good = !h.is_empty()
            && h.len() <= MAX_HOST_NAME
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let wrong = |what: &'static str| Err(de::Error::invalid_value(Unexpected::Str(&h), &what));
        if !good {
            wrong("a host name: 1 to 32 ASCII letters, digits, `-`, `_` or `.`")
        } else if h == INFRA {
            wrong("a host name other than `infra` (the simulator's infrastructure node, always there)")
        } else if self.0.contains(&h) {
            wrong("a host name not declared before (each host is declared once)")
        } else {
            Ok(h)
        }
    }
}

// ---------------------------------------------------------------------------
// The provider.

/// One of `{"name": …}`, `{"builtin": …}` or `{"library": …}`.
pub(super) fn provider<'de, D: Deserializer<'de>>(d: D) -> Result<ProviderRef, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = ProviderRef;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object with one of `name`, `builtin` or `library`")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProviderRef, A::Error> {
            let entries = NotEmpty {
                map: &mut map,
                first: true,
            };
            let p = ProviderRef::deserialize(MapAccessDeserializer::new(entries))?;
            if map.next_key::<IgnoredAny>()?.is_some() {
                return Err(de::Error::custom(
                    "a provider is given one way: one of `name`, `builtin` or `library`, not two",
                ));
            }
            Ok(p)
        }
    }
    d.deserialize_map(V)
}

/// The provider's entries: an empty object is refused in words (serde's
/// reader of enums would say "invalid type: map, expected enum").
struct NotEmpty<A> {
    map: A,
    first: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for NotEmpty<A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let key = self.map.next_key_seed(seed)?;
        if key.is_none() && self.first {
            return Err(de::Error::custom(
                "a provider is given as one of `name`, `builtin` or `library` (this object is empty)",
            ));
        }
        self.first = false;
        Ok(key)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

// ---------------------------------------------------------------------------
// Steps, read as they stream by.

/// Every field any step has, `do` first.
const FIELDS: [&str; 16] = [
    "do", "at_ms", "host", "on", "from", "to", "family", "bytes", "count", "every_ms", "of", "a",
    "b", "faults", "timing", "newest",
];

/// An index into [`FIELDS`].
#[derive(Copy, Clone, PartialEq, Eq)]
struct Field(usize);

impl Field {
    const DO: Field = Field(0);
    fn name(self) -> &'static str {
        FIELDS[self.0]
    }
    fn bit(self) -> u32 {
        1 << self.0
    }
}

/// The kinds of step, in the order of [`Step`]'s variants.
const KINDS: [&str; 19] = [
    "start_provider",
    "stop_provider",
    "listen",
    "send",
    "send_many",
    "address_add",
    "address_remove",
    "address_return",
    "interface_down",
    "interface_up",
    "duplicate_address",
    "dormant",
    "shutdown",
    "communication_error",
    "partition",
    "heal",
    "net_faults",
    "task_timing",
    "advance",
];

/// An index into [`KINDS`].
#[derive(Copy, Clone, PartialEq, Eq)]
struct Kind(usize);

impl Kind {
    fn name(self) -> &'static str {
        KINDS[self.0]
    }
    /// Its fields besides `do`, in declaration order (as serde lists them).
    fn fields(self) -> &'static [&'static str] {
        match self.name() {
            "listen" => &["at_ms", "host", "on"],
            "send" => &["at_ms", "from", "to", "family", "bytes", "newest"],
            "send_many" => &[
                "at_ms", "from", "to", "family", "bytes", "count", "every_ms",
            ],
            "address_add" => &["at_ms", "host", "family"],
            "duplicate_address" => &["at_ms", "host", "of", "family"],
            "partition" => &["at_ms", "a", "b"],
            "heal" | "advance" => &["at_ms"],
            "net_faults" => &["at_ms", "faults"],
            "task_timing" => &["at_ms", "timing"],
            _ => &["at_ms", "host"],
        }
    }
    fn has(self, f: Field) -> bool {
        f == Field::DO || self.fields().contains(&f.name())
    }
}

/// Reads a step's key: one of the kind's fields (any step's while `do` is
/// still to come), each once.
struct Key {
    kind: Option<Kind>,
    seen: u32,
}

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the name of a step's field")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
        let field = FIELDS.iter().position(|&n| n == s).map(Field);
        let field = match (field, self.kind) {
            (Some(f), Some(k)) if k.has(f) => f,
            (Some(f), None) => f,
            (_, Some(k)) => return Err(E::unknown_field(s, k.fields())),
            (None, None) => return Err(E::unknown_field(s, &FIELDS)),
        };
        if self.seen & field.bit() != 0 {
            return Err(E::duplicate_field(field.name()));
        }
        Ok(field)
    }
}

/// Reads `do`: a kind of step that has every field read before it.
struct Do {
    seen: u32,
}

impl<'de> DeserializeSeed<'de> for Do {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Do {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the kind of step")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Kind, E> {
        let kind = KINDS
            .iter()
            .position(|&k| k == s)
            .map(Kind)
            .ok_or_else(|| E::unknown_variant(s, &KINDS))?;
        let stray = (0..FIELDS.len())
            .map(Field)
            .find(|&f| self.seen & f.bit() != 0 && !kind.has(f));
        if let Some(f) = stray {
            let fields = kind.fields().join("`, `");
            let why = format!(
                "a kind of step with the field `{}` given before `do` (a `{}` step has `{fields}`)",
                f.name(),
                kind.name(),
            );
            return Err(E::invalid_value(Unexpected::Str(s), &why.as_str()));
        }
        Ok(kind)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Step, D::Error> {
        d.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = Step;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object: a step with `do` (its kind), `at_ms` and the kind's fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
        let mut kind = None;
        let mut seen = 0;
        let (mut at_ms, mut host, mut on, mut from, mut to, mut family) =
            (None, None, None, None, None, None);
        let (mut bytes, mut count, mut every_ms, mut of, mut a, mut b) =
            (None, None, None, None, None, None);
        let (mut faults, mut timing, mut newest) = (None, None, None);
        while let Some(field) = map.next_key_seed(Key { kind, seen })? {
            seen |= field.bit();
            match field.name() {
                "do" => kind = Some(map.next_value_seed(Do { seen })?),
                "at_ms" => at_ms = Some(map.next_value::<Millis>()?.get()),
                "host" => host = Some(map.next_value::<HostName>()?),
                "on" => on = Some(map.next_value::<bool>()?),
                "from" => from = Some(map.next_value::<HostName>()?),
                "to" => to = Some(map.next_value::<HostName>()?),
                "family" => family = Some(map.next_value::<Family>()?),
                "bytes" => bytes = Some(map.next_value::<Bytes>()?.0),
                "count" => count = Some(map.next_value::<Count>()?.0),
                "every_ms" => every_ms = Some(map.next_value::<Millis>()?.get()),
                "of" => of = Some(map.next_value::<HostName>()?),
                "a" => a = Some(map.next_value::<HostName>()?),
                "b" => b = Some(map.next_value::<HostName>()?),
                "faults" => faults = Some(map.next_value::<Object<NetFaults>>()?.0),
                "newest" => newest = Some(map.next_value::<bool>()?),
                _ => timing = Some(map.next_value::<Timing>()?.0),
            }
        }
        fn need<T, E: de::Error>(v: Option<T>, name: &'static str) -> Result<T, E> {
            v.ok_or_else(|| E::missing_field(name))
        }
        let kind = need(kind, "do")?;
        let at_ms = need(at_ms, "at_ms")?;
        let host = || need(host.clone(), "host");
        Ok(match kind.name() {
            "start_provider" => Step::StartProvider {
                at_ms,
                host: host()?,
            },
            "stop_provider" => Step::StopProvider {
                at_ms,
                host: host()?,
            },
            "listen" => Step::Listen {
                at_ms,
                host: host()?,
                on: need(on, "on")?,
            },
            "send" => Step::Send {
                at_ms,
                from: need(from, "from")?,
                to: need(to, "to")?,
                family: family.unwrap_or_default(),
                bytes: need(bytes, "bytes")?,
                newest: newest.unwrap_or(false),
            },
            "send_many" => Step::SendMany {
                at_ms,
                from: need(from, "from")?,
                to: need(to, "to")?,
                family: family.unwrap_or_default(),
                bytes: need(bytes, "bytes")?,
                count: need(count, "count")?,
                every_ms: need(every_ms, "every_ms")?,
            },
            "address_add" => Step::AddressAdd {
                at_ms,
                host: host()?,
                family: family.unwrap_or_default(),
            },
            "address_remove" => Step::AddressRemove {
                at_ms,
                host: host()?,
            },
            "address_return" => Step::AddressReturn {
                at_ms,
                host: host()?,
            },
            "interface_down" => Step::InterfaceDown {
                at_ms,
                host: host()?,
            },
            "interface_up" => Step::InterfaceUp {
                at_ms,
                host: host()?,
            },
            "duplicate_address" => Step::DuplicateAddress {
                at_ms,
                host: host()?,
                of: need(of, "of")?,
                family: family.unwrap_or_default(),
            },
            "dormant" => Step::Dormant {
                at_ms,
                host: host()?,
            },
            "shutdown" => Step::Shutdown {
                at_ms,
                host: host()?,
            },
            "communication_error" => Step::CommunicationError {
                at_ms,
                host: host()?,
            },
            "partition" => Step::Partition {
                at_ms,
                a: need(a, "a")?,
                b: need(b, "b")?,
            },
            "heal" => Step::Heal { at_ms },
            "net_faults" => Step::NetFaults {
                at_ms,
                faults: need(faults, "faults")?,
            },
            "task_timing" => Step::TaskTiming {
                at_ms,
                timing: need(timing, "timing")?,
            },
            _ => Step::Advance { at_ms },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step reader's lists of kinds and fields are the ones `Step`
    /// itself declares (as its schema, derived from it, says): a kind or
    /// field added to `Step` and not here fails this test.
    #[test]
    fn step_reader_knows_every_kind_and_field_step_declares() {
        let schema = super::super::json_schema();
        let variants = schema["definitions"]["Step"]["oneOf"].as_array().unwrap();
        let mut kinds = Vec::new();
        for v in variants {
            let props = v["properties"].as_object().unwrap();
            let kind = props["do"]["const"].as_str().unwrap();
            kinds.push(kind);
            let i = KINDS.iter().position(|&k| k == kind).unwrap();
            let mut declared: Vec<&str> = props
                .keys()
                .map(String::as_str)
                .filter(|&f| f != "do")
                .collect();
            let mut read: Vec<&str> = Kind(i).fields().to_vec();
            declared.sort_unstable();
            read.sort_unstable();
            assert_eq!(read, declared, "{kind}");
            for f in read {
                assert!(FIELDS.contains(&f), "{f}");
            }
        }
        assert_eq!(kinds, KINDS);
    }
}
