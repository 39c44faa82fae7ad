//! Scenario files: a situation described as JSON (hosts, provider, platform
//! settings, timed steps, expectations), run with `cpsim run` and written by
//! the harness for every shrunk failure. See `scenarios/README.md`.
//!
//! - [`load`](load()) / [`parse`] read a file and check it, with one precise
//!   error for whatever is wrong ([`LoadError`]);
//! - [`json_schema`] describes the format, generated from these types;
//! - [`run`](run()) plays a scenario against a provider and checks its
//!   expectations ([`ScenarioRun`]).

mod de;
mod load;
mod run;
mod schema;

pub(crate) use load::load_as_written;
pub use load::{
    load, load_with, missing, open_regular_file, parse, parse_with, read_regular_file, LoadError,
    LoadErrorKind, MAX_DATAGRAM_BYTES, MAX_FILE_BYTES, MAX_HOSTS, MAX_SEND_COUNT, MAX_STEP_MS,
};
pub use run::{
    check_expectations, covered_rules, idle_notes, kept_rules, run, schedule_steps, sim_config,
    to_pretty_json, ScenarioRun,
};
pub use schema::json_schema;

use cpsim_sim::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
pub use cpsim_sim::Millis;
use cpsim_sim::{Callback, Family, HostName, NetFaults, RuleId, TaskTiming, TimeLimits};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The format version this build reads and writes.
pub const VERSION: u32 = 1;

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The format version: 1 for this build ([`VERSION`]).
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// A short name, unique among the scenarios of a directory.
    #[serde(deserialize_with = "de::non_blank")]
    #[schemars(length(min = 1))]
    pub name: String,
    /// What the scenario shows. For a platform guarantee, the phrase
    /// `keeps RULE-ID` marks the rule it demonstrates (see the README).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Simulated hosts with a platform (the infrastructure node is implicit).
    #[serde(deserialize_with = "de::hosts")]
    #[schemars(
        length(min = 1, max = 16),
        inner(length(min = 1, max = 32), regex(pattern = r"^[A-Za-z0-9_.\-]+$"))
    )]
    pub hosts: Vec<HostName>,
    /// Which provider runs on every host.
    #[serde(deserialize_with = "de::provider")]
    pub provider: ProviderRef,
    /// Free-form configuration handed to the provider.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub provider_config: serde_json::Value,
    #[serde(default, deserialize_with = "de::object")]
    pub platform: PlatformSettings,
    /// Timed steps, in any order (they run by time, then file order).
    #[schemars(length(min = 1))]
    pub steps: Vec<Step>,
    #[serde(default, deserialize_with = "de::object")]
    pub expect: Expect,
    /// Set when what the scenario shows can only be seen on the simulator:
    /// why (for example, its provider hands the platform freed memory,
    /// which only the simulator refuses before reading). `cpsim run
    /// --platform` skips such a file and prints the reason; the simulator
    /// runs it as any other.
    #[serde(
        default,
        deserialize_with = "de::non_blank_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(min = 1))]
    pub simulator_only: Option<String>,
}

/// A provider: one of the registry of the `cpsim` binary (or test) that
/// runs the file, or a C module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ProviderRef {
    /// A provider of the registry running the file, by name: `cpsim
    /// providers` lists the stock binary's; a provider crate's own `cpsim`
    /// (or its `cargo test`) knows its own. This is the spelling cpsim writes.
    Name(#[serde(deserialize_with = "de::non_blank")] String),
    /// The same as `name` (the spelling of earlier files; still read).
    Builtin(#[serde(deserialize_with = "de::non_blank")] String),
    /// A C provider module: a shared library exporting `CpsimProviderStart`
    /// and `CpsimProviderStop` (see `docs/c-providers.md`). A relative path
    /// is resolved against the scenario file's directory. Every host runs
    /// its own copy, in real time, and each run happens in a child process.
    Library(#[serde(deserialize_with = "de::non_empty_path")] std::path::PathBuf),
}

impl ProviderRef {
    /// The registry name of a provider given by name (`name` or `builtin`);
    /// `None` for a C module.
    pub fn registry_name(&self) -> Option<&str> {
        match self {
            ProviderRef::Name(n) | ProviderRef::Builtin(n) => Some(n),
            ProviderRef::Library(_) => None,
        }
    }
    /// Whether both name the same provider (`name` and `builtin` alike).
    pub fn same_provider(&self, other: &ProviderRef) -> bool {
        match (self.registry_name(), other.registry_name()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self == other,
            _ => false,
        }
    }
    /// The key the file spells it with (`name`, `builtin` or `library`),
    /// for error messages.
    pub fn key(&self) -> &'static str {
        match self {
            ProviderRef::Name(_) => "name",
            ProviderRef::Builtin(_) => "builtin",
            ProviderRef::Library(_) => "library",
        }
    }
}

/// Platform settings of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformSettings {
    #[serde(deserialize_with = "de::whole")]
    pub seed: u64,
    #[serde(deserialize_with = "de::object")]
    pub limits: TimeLimits,
    #[serde(deserialize_with = "de::object")]
    pub net: NetFaults,
    #[serde(deserialize_with = "de::task_timing")]
    pub tasks: TaskTiming,
    /// Virtual time after the last step before the final checks (ms).
    pub drain_ms: Millis,
    /// Idle time before the platform sends an instance dormant (0: never).
    pub idle_dormancy_ms: Millis,
}

impl Default for PlatformSettings {
    fn default() -> Self {
        let c = cpsim_sim::Config::default();
        PlatformSettings {
            seed: 0,
            limits: c.limits,
            net: c.net,
            tasks: c.tasks,
            drain_ms: Millis::new(c.drain_ms).expect("the default is within a day"),
            idle_dormancy_ms: Millis::new(c.idle_dormancy_ms).expect("the default is within a day"),
        }
    }
}

/// One timed step. `at_ms` is virtual time from the start of the run.
// Read by a streaming reader of its own (`de.rs`), not serde's buffered one
// for tagged enums, so that an error inside a step keeps its place and path.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start the provider on `host` (it creates and registers its instances).
    StartProvider {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// Stop the provider on `host`; everything it created must be cleaned up (LIFE-8).
    StopProvider {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// An application on `host` starts (`on: true`) or stops listening with edge traversal.
    Listen {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
        on: bool,
    },
    /// An application on `from` sends one datagram of `bytes` random bytes to
    /// `to`'s first interface address of `family` (`v4` unless given); with
    /// `newest: true`, to `to`'s address of `family` added last (an extra
    /// address, if it has one).
    Send {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        from: HostName,
        to: HostName,
        #[serde(default)]
        family: Family,
        #[schemars(range(max = 65_507))]
        bytes: u32,
        #[serde(default, skip_serializing_if = "is_false")]
        newest: bool,
    },
    /// An application on `from` sends `count` datagrams of `bytes` random
    /// bytes each to `to`'s first interface address of `family`: the first
    /// at `at_ms`, then one every `every_ms`. The same as `count` `send`
    /// steps written at this place in the file, in one step.
    SendMany {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        from: HostName,
        to: HostName,
        #[serde(default)]
        family: Family,
        #[schemars(range(max = 65_507))]
        bytes: u32,
        /// How many datagrams (the last one goes at `at_ms + (count - 1) ×
        /// every_ms`, within one day).
        #[schemars(range(min = 1, max = 10_000_000))]
        count: u64,
        /// Milliseconds between two datagrams (0: all at `at_ms`).
        #[schemars(range(max = 86_400_000))]
        every_ms: u64,
    },
    /// A stable-unicast-address notification: `host`'s first interface gets
    /// another address, of `family` (`v4` unless given).
    AddressAdd {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
        #[serde(default, skip_serializing_if = "is_v4")]
        family: Family,
    },
    /// `host`'s first interface loses its most recently added extra address
    /// (of either family).
    AddressRemove {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// `host`'s first interface gets back the extra address removed from
    /// it last, with the same transport ID (an address that went away and
    /// came back); again, the one removed before that, and so on.
    AddressReturn {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// `host`'s first interface goes down (Wi-Fi lost, cable out, sleep):
    /// every address it has is removed, its first IPv4 and IPv6 addresses
    /// too, the newest first.
    InterfaceDown {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// `host`'s first interface comes up again: the addresses taken down
    /// since it was last up come back with the same transport IDs, in the
    /// order it had them.
    InterfaceUp {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// `host`'s first interface is given the first address of `family`
    /// (`v4` unless given) that host `of` already holds (TID-4).
    DuplicateAddress {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
        of: HostName,
        #[serde(default, skip_serializing_if = "is_v4")]
        family: Family,
    },
    /// The platform asks `host`'s active instances to go dormant.
    Dormant {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// The platform shuts down on `host` (sessions end with PLATFORM_SHUTDOWN).
    Shutdown {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// An infrastructure fault on `host`: its sessions end with OTHER_COMMUNICATION_ERROR.
    CommunicationError {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        host: HostName,
    },
    /// The network drops everything between nodes `a` and `b` (`infra` is
    /// the infrastructure node).
    Partition {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        a: HostName,
        b: HostName,
    },
    /// Every partition ends.
    Heal {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
    },
    /// New network fault settings from now on.
    NetFaults {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        faults: NetFaults,
    },
    /// Force when the provider's tasks run from now on (and so when its
    /// pended completions are delivered).
    TaskTiming {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
        timing: TaskTiming,
    },
    /// Nothing happens: lets time pass to here (the run lasts at least until
    /// the last step).
    Advance {
        #[schemars(range(max = 86_400_000))]
        at_ms: u64,
    },
}

/// Whether an address step's family is the default one (left out when
/// written, so files that predate the field read and write the same).
fn is_v4(f: &Family) -> bool {
    *f == Family::V4
}

/// Whether a send goes to the first address (the default, left out when
/// written).
fn is_false(b: &bool) -> bool {
    !*b
}

/// What a scenario expects. Every field is optional; all given must hold.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Exactly these rule IDs are violated (`[]`: no violation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<RuleId>>,
    /// At least these rule IDs are violated (others may be too): for a
    /// broken provider whose one bug trips several rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub includes: Option<Vec<RuleId>>,
    /// The first violation is of this rule at this trace step (exact replay).
    #[serde(
        deserialize_with = "de::object_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_violation: Option<FirstViolation>,
    /// These callbacks appear in this order in the trace (other calls may come between).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callbacks_in_order: Option<Vec<Callback>>,
    /// Some session ends with this termination reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination: Option<Reason>,
    /// Exactly this many application datagrams are delivered.
    #[serde(
        deserialize_with = "de::whole_u32_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub delivered: Option<u32>,
}

/// A violation pinned to its place in the trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstViolation {
    pub rule: RuleId,
    /// Trace steps count from 1.
    #[serde(deserialize_with = "de::trace_step")]
    #[schemars(range(min = 1))]
    pub step: u64,
}

impl Step {
    /// When the step happens.
    pub fn at_ms(&self) -> u64 {
        match self {
            Step::StartProvider { at_ms, .. }
            | Step::StopProvider { at_ms, .. }
            | Step::Listen { at_ms, .. }
            | Step::Send { at_ms, .. }
            | Step::SendMany { at_ms, .. }
            | Step::AddressAdd { at_ms, .. }
            | Step::AddressRemove { at_ms, .. }
            | Step::AddressReturn { at_ms, .. }
            | Step::InterfaceDown { at_ms, .. }
            | Step::InterfaceUp { at_ms, .. }
            | Step::DuplicateAddress { at_ms, .. }
            | Step::Dormant { at_ms, .. }
            | Step::Shutdown { at_ms, .. }
            | Step::CommunicationError { at_ms, .. }
            | Step::Partition { at_ms, .. }
            | Step::Heal { at_ms }
            | Step::NetFaults { at_ms, .. }
            | Step::TaskTiming { at_ms, .. }
            | Step::Advance { at_ms } => *at_ms,
        }
    }

    /// The step's `do`, as the file spells it (`stop_provider`).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::StartProvider { .. } => "start_provider",
            Step::StopProvider { .. } => "stop_provider",
            Step::Listen { .. } => "listen",
            Step::Send { .. } => "send",
            Step::SendMany { .. } => "send_many",
            Step::AddressAdd { .. } => "address_add",
            Step::AddressRemove { .. } => "address_remove",
            Step::AddressReturn { .. } => "address_return",
            Step::InterfaceDown { .. } => "interface_down",
            Step::InterfaceUp { .. } => "interface_up",
            Step::DuplicateAddress { .. } => "duplicate_address",
            Step::Dormant { .. } => "dormant",
            Step::Shutdown { .. } => "shutdown",
            Step::CommunicationError { .. } => "communication_error",
            Step::Partition { .. } => "partition",
            Step::Heal { .. } => "heal",
            Step::NetFaults { .. } => "net_faults",
            Step::TaskTiming { .. } => "task_timing",
            Step::Advance { .. } => "advance",
        }
    }

    /// Where the step acts, to name it in a sentence: ` on host b`,
    /// ` from a to b`, ` between a and b`, or nothing.
    pub fn place(&self) -> String {
        match self {
            Step::StartProvider { host, .. }
            | Step::StopProvider { host, .. }
            | Step::Listen { host, .. }
            | Step::AddressAdd { host, .. }
            | Step::AddressRemove { host, .. }
            | Step::AddressReturn { host, .. }
            | Step::InterfaceDown { host, .. }
            | Step::InterfaceUp { host, .. }
            | Step::DuplicateAddress { host, .. }
            | Step::Dormant { host, .. }
            | Step::Shutdown { host, .. }
            | Step::CommunicationError { host, .. } => format!(" on host {host}"),
            Step::Send { from, to, .. } | Step::SendMany { from, to, .. } => {
                format!(" from {from} to {to}")
            }
            Step::Partition { a, b, .. } => format!(" between {a} and {b}"),
            Step::Heal { .. }
            | Step::NetFaults { .. }
            | Step::TaskTiming { .. }
            | Step::Advance { .. } => String::new(),
        }
    }

    /// When the step happens, to move it (shrinking, mutations).
    pub fn at_ms_mut(&mut self) -> &mut u64 {
        match self {
            Step::StartProvider { at_ms, .. }
            | Step::StopProvider { at_ms, .. }
            | Step::Listen { at_ms, .. }
            | Step::Send { at_ms, .. }
            | Step::SendMany { at_ms, .. }
            | Step::AddressAdd { at_ms, .. }
            | Step::AddressRemove { at_ms, .. }
            | Step::AddressReturn { at_ms, .. }
            | Step::InterfaceDown { at_ms, .. }
            | Step::InterfaceUp { at_ms, .. }
            | Step::DuplicateAddress { at_ms, .. }
            | Step::Dormant { at_ms, .. }
            | Step::Shutdown { at_ms, .. }
            | Step::CommunicationError { at_ms, .. }
            | Step::Partition { at_ms, .. }
            | Step::Heal { at_ms }
            | Step::NetFaults { at_ms, .. }
            | Step::TaskTiming { at_ms, .. }
            | Step::Advance { at_ms } => at_ms,
        }
    }

    /// When its last action happens (the one action of most steps; the
    /// last datagram of `send_many`).
    pub fn last_ms(&self) -> u64 {
        match self {
            Step::SendMany {
                at_ms,
                count,
                every_ms,
                ..
            } => at_ms.saturating_add(count.saturating_sub(1).saturating_mul(*every_ms)),
            other => other.at_ms(),
        }
    }

    /// How many times, how many ms apart, its action happens: `(1, 0)`
    /// for every step but `send_many`.
    pub fn repeat(&self) -> (u64, u64) {
        match self {
            Step::SendMany {
                count, every_ms, ..
            } => (*count, *every_ms),
            _ => (1, 0),
        }
    }

    /// Every action it schedules, with its time, in order (for runners
    /// that cannot schedule a repetition as one).
    pub fn occurrences(&self) -> impl Iterator<Item = (u64, cpsim_sim::Action)> + '_ {
        let (count, every) = self.repeat();
        let action = self.action();
        (0..count).map(move |k| (self.at_ms() + k * every, action.clone()))
    }

    /// The simulator action it schedules (`send_many`: each datagram's;
    /// see [`Step::repeat`]).
    pub fn action(&self) -> cpsim_sim::Action {
        use cpsim_sim::Action as A;
        match self.clone() {
            Step::StartProvider { host, .. } => A::StartProvider { host },
            Step::StopProvider { host, .. } => A::StopProvider { host },
            Step::Listen { host, on, .. } => A::Listen { host, on },
            Step::Send {
                from,
                to,
                family,
                bytes,
                newest,
                ..
            } => A::Send {
                from,
                to,
                family,
                bytes,
                newest,
            },
            Step::SendMany {
                from,
                to,
                family,
                bytes,
                ..
            } => A::Send {
                from,
                to,
                family,
                bytes,
                newest: false,
            },
            Step::AddressAdd { host, family, .. } => A::AddressAdd { host, family },
            Step::AddressRemove { host, .. } => A::AddressRemove { host },
            Step::AddressReturn { host, .. } => A::AddressReturn { host },
            Step::InterfaceDown { host, .. } => A::InterfaceDown { host },
            Step::InterfaceUp { host, .. } => A::InterfaceUp { host },
            Step::DuplicateAddress {
                host, of, family, ..
            } => A::DuplicateAddress { host, of, family },
            Step::Dormant { host, .. } => A::Dormant { host },
            Step::Shutdown { host, .. } => A::Shutdown { host },
            Step::CommunicationError { host, .. } => A::CommunicationError { host },
            Step::Partition { a, b, .. } => A::Partition { a, b },
            Step::Heal { .. } => A::Heal,
            Step::NetFaults { faults, .. } => A::NetFaults { faults },
            Step::TaskTiming { timing, .. } => A::TaskTiming { timing },
            Step::Advance { .. } => A::Advance,
        }
    }
}
