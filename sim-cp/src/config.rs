//! Run configuration: seed, time limits, network faults, platform choices.
//! Every default here is a documented [decision] (see `rules::DECISIONS`).

use crate::time::Nanos;
use serde::{Deserialize, Serialize};

/// Which kind of callback (or provider completion) a limit applies to.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Callback {
    EstablishSessionIndication,
    TerminateSessionIndication,
    TransitionActive,
    TransitionDormant,
    AddTransportId,
    RemoveTransportId,
    ReachTransportId,
    SendBuffers,
}

impl Callback {
    pub const ALL: [Callback; 8] = [
        Callback::EstablishSessionIndication,
        Callback::TerminateSessionIndication,
        Callback::TransitionActive,
        Callback::TransitionDormant,
        Callback::AddTransportId,
        Callback::RemoveTransportId,
        Callback::ReachTransportId,
        Callback::SendBuffers,
    ];
    /// The short name used in traces and reports.
    pub fn name(self) -> &'static str {
        match self {
            Callback::EstablishSessionIndication => "ESTABLISH_SESSION_INDICATION",
            Callback::TerminateSessionIndication => "TERMINATE_SESSION_INDICATION",
            Callback::TransitionActive => "TRANSITION_ACTIVE",
            Callback::TransitionDormant => "TRANSITION_DORMANT",
            Callback::AddTransportId => "ADD_TRANSPORT_ID",
            Callback::RemoveTransportId => "REMOVE_TRANSPORT_ID",
            Callback::ReachTransportId => "REACH_TRANSPORT_ID",
            Callback::SendBuffers => "SEND_BUFFERS",
        }
    }
    /// Whether the callback takes a completion routine.
    pub fn is_async(self) -> bool {
        !matches!(
            self,
            Callback::EstablishSessionIndication | Callback::TerminateSessionIndication
        )
    }
}

impl std::fmt::Display for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-callback-kind time limits (TIME-1), in virtual time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TimeLimits {
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub establish_ms: u64,
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub terminate_ms: u64,
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub transition_active_ms: u64,
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub transition_dormant_ms: u64,
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub add_transport_id_ms: u64,
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub remove_transport_id_ms: u64,
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub reach_transport_id_ms: u64,
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub send_buffers_ms: u64,
}

impl Default for TimeLimits {
    fn default() -> Self {
        TimeLimits {
            establish_ms: 1_000,
            terminate_ms: 1_000,
            transition_active_ms: 30_000,
            transition_dormant_ms: 30_000,
            add_transport_id_ms: 10_000,
            remove_transport_id_ms: 10_000,
            reach_transport_id_ms: 10_000,
            send_buffers_ms: 5_000,
        }
    }
}

impl TimeLimits {
    pub fn limit(&self, cb: Callback) -> Nanos {
        Nanos::from_millis(match cb {
            Callback::EstablishSessionIndication => self.establish_ms,
            Callback::TerminateSessionIndication => self.terminate_ms,
            Callback::TransitionActive => self.transition_active_ms,
            Callback::TransitionDormant => self.transition_dormant_ms,
            Callback::AddTransportId => self.add_transport_id_ms,
            Callback::RemoveTransportId => self.remove_transport_id_ms,
            Callback::ReachTransportId => self.reach_transport_id_ms,
            Callback::SendBuffers => self.send_buffers_ms,
        })
    }
}

/// Faults of the simulated datagram network (applied to provider traffic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct NetFaults {
    /// Probability that a packet is dropped.
    #[serde(deserialize_with = "Probability::read")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    #[serde(deserialize_with = "Probability::read")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub duplicate: f64,
    /// Probability that a packet gets an extra delay (and so may overtake others).
    #[serde(deserialize_with = "Probability::read")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub reorder: f64,
    /// Base one-way delay, milliseconds.
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub delay_ms: u64,
    /// Extra random delay up to this many milliseconds.
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub jitter_ms: u64,
    /// The second copy of a duplicated packet arrives up to this many
    /// milliseconds later than the first would (0: both copies are delayed
    /// alike). A network may hand a stale copy over long after the
    /// original, across whatever the receiver went through in between.
    #[serde(deserialize_with = "Millis::read", skip_serializing_if = "is_zero_ms")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub duplicate_lag_ms: u64,
}

/// Whether a millisecond setting is left at zero (and so left out when
/// written, which keeps files from before the setting byte-identical).
fn is_zero_ms(ms: &u64) -> bool {
    *ms == 0
}

impl Default for NetFaults {
    fn default() -> Self {
        NetFaults {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay_ms: 1,
            jitter_ms: 0,
            duplicate_lag_ms: 0,
        }
    }
}

/// How the simulator runs time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockMode {
    /// Virtual time, one driver thread, reproducible from the seed.
    Virtual,
    /// Wall-clock time with a real-time watchdog: for black-box providers
    /// that run their own threads.
    RealTime,
}

/// Deliberate platform bugs, for proving that the platform checker catches
/// each C-rule broken (the simulator's own mutants). Off in every normal run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlatformFault {
    /// Deliver ESTABLISH even when Register fails (SESS-1).
    EstablishOnFailedRegister,
    /// Start TRANSITION_ACTIVE before ESTABLISH was delivered (SESS-2).
    CallBeforeEstablish,
    /// Deliver TERMINATE twice (SESS-4).
    DoubleTerminate,
    /// Report PLATFORM_SHUTDOWN for a timeout (SESS-5).
    WrongTerminationReason,
    /// Pass a different user context (SESS-6).
    WrongUserContext,
    /// Start with TRANSITION_DORMANT after ESTABLISH (STATE-1).
    DormantFirst,
    /// Ignore a failed TRANSITION_ACTIVE (STATE-2).
    IgnoreFailedActivation,
    /// Accept IndicateReceivedBuffers on a dormant instance (STATE-3).
    AcceptIndicateWhenDormant,
    /// Send TRANSITION_ACTIVE twice in a row (STATE-4).
    RepeatTransition,
    /// Read S_FALSE as success (COMP-1).
    SFalseIsSuccess,
    /// Overwrite a pended call's transport ID before it completes (COMP-8).
    ClobberPendedArgs,
    /// Ignore a timeout instead of terminating (TIME-2).
    IgnoreTimeout,
    /// Send to a remote ID that was never reached (TID-7).
    SendWithoutReach,
    /// Call the provider's completion routine twice (DATA-4).
    DoubleProviderCompletion,
    /// Fail a Register retried after a failed one (LIFE-3).
    PoisonAfterFailedRegister,
    /// Give a NULL friendly name a non-default name (REG-1).
    BadDefaultName,
    /// Hand the provider a transport ID no platform issued (TID-1).
    ForeignTransportId,
    /// Keep a duplicate friendly name as is (REG-2).
    DuplicateNameKept,
    /// Do not cut long friendly names (REG-3).
    LongNameUncut,
    /// Report LUID 0 for a successful Register (REG-4).
    ZeroLuid,
    /// Give a fresh interface when an old LUID was asked for (REG-6).
    FreshLuidOnReuse,
    /// Pass no completion routine (COMP-9).
    NoCompletionRoutine,
    /// Apply a completion that arrives after TERMINATE (COMP-11).
    ApplyLateCompletion,
    /// Lose a completion that arrives before its callback returned
    /// ERROR_IO_PENDING: the call then waits for its time limit (COMP-10).
    LoseEarlyCompletion,
    /// Keep using a removed transport ID: REMOVE leaves it the instance's
    /// first local ID of its family (TID-5).
    KeepRemovedId,
    /// Refuse Deregister called from inside ESTABLISH instead of deferring
    /// it (SESS-3).
    RefuseCallsInEstablish,
    /// Normalise the caller's friendly-name string in place (REG-9).
    WriteCallerStrings,
    /// Change the middle byte of a SEND_BUFFERS' payload once the callback
    /// has returned ERROR_IO_PENDING, before the call completes (COMP-8,
    /// found as DATA-6 for SEND_BUFFERS).
    ClobberPendedPayload,
}

/// When provider tasks run, relative to the callback that spawned them:
/// the harness's lever on completion timing. Each is a probability; what is
/// left over runs right after the spawner returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TaskTiming {
    /// Run when the spawning callback returns, before the platform sees its
    /// return value (a worker racing the return: COMP-10).
    #[serde(deserialize_with = "Probability::read")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub before_return: f64,
    /// Run after an extra random delay of up to `late_max_ms`.
    #[serde(deserialize_with = "Probability::read")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub late: f64,
    #[serde(deserialize_with = "Millis::read")]
    #[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))]
    pub late_max_ms: u64,
    /// Run only after the largest time limit has passed (a stalled worker:
    /// the resulting timeouts are excused, the provider's reaction is not).
    #[serde(deserialize_with = "Probability::read")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub after_timeout: f64,
    /// Never run (a lost worker; the provider's stop must still clean up).
    #[serde(deserialize_with = "Probability::read")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub never: f64,
}

impl Default for TaskTiming {
    fn default() -> Self {
        TaskTiming {
            before_return: 0.0,
            late: 0.0,
            late_max_ms: 200,
            after_timeout: 0.0,
            never: 0.0,
        }
    }
}

/// Everything a run needs besides its provider and schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub seed: u64,
    pub clock: ClockMode,
    pub limits: TimeLimits,
    pub net: NetFaults,
    /// Virtual time a provider has to Deregister after a platform-ended session (LIFE-7).
    pub deregister_grace_ms: u64,
    /// Window before a REACH in which an ID still counts as owned (TID-6, STATE-6).
    pub reach_grace_ms: u64,
    /// Idle time after which an active instance is sent dormant (0 = never by itself).
    pub idle_dormancy_ms: u64,
    /// Virtual time `finish` lets pass for in-flight work before the final checks.
    pub drain_ms: u64,
    /// Real-time limit for one synchronous callback before the watchdog reports it (ms).
    pub watchdog_ms: u64,
    /// When provider tasks run (see [`TaskTiming`]).
    pub tasks: TaskTiming,
    /// Deliberate platform bugs (testing the checker only).
    pub faults: Vec<PlatformFault>,
    /// Record every event in the trace (off only for benchmarks of the bare path).
    pub trace: bool,
    /// The most events a run's trace keeps (0: no limit). A run that
    /// records more keeps its first half and its latest half, and its
    /// platform checker judges every event as it is recorded (see
    /// `trace::Omitted`).
    pub trace_limit: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 0,
            clock: ClockMode::Virtual,
            limits: TimeLimits::default(),
            net: NetFaults::default(),
            deregister_grace_ms: 5_000,
            reach_grace_ms: 1_000,
            idle_dormancy_ms: 0,
            drain_ms: 60_000,
            watchdog_ms: 2_000,
            tasks: TaskTiming::default(),
            faults: Vec::new(),
            trace: true,
            trace_limit: 1_000_000,
        }
    }
}

impl Config {
    pub fn with_seed(seed: u64) -> Config {
        Config {
            seed,
            ..Config::default()
        }
    }
    pub fn has_fault(&self, f: PlatformFault) -> bool {
        self.faults.contains(&f)
    }
}

/// The longest duration a setting or a scenario step may give: one day of
/// virtual time, in milliseconds.
pub const MAX_MS: u64 = 24 * 60 * 60 * 1000;

/// A duration in milliseconds of virtual time: at most one day (86400000
/// ms). Read from a file, the range is checked as the value is read, so
/// serde's error names the field's path and the value.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Millis(#[cfg_attr(feature = "schema", schemars(range(max = 86_400_000)))] u64);

impl Millis {
    /// Nothing.
    pub const ZERO: Millis = Millis(0);
    /// The longest: one day.
    pub const MAX: Millis = Millis(MAX_MS);

    /// What a file may say, as a reader's error says it.
    pub const EXPECTED: &'static str =
        "a whole number of milliseconds, at most one day (86400000 ms)";

    /// `ms` if it is at most one day.
    pub const fn new(ms: u64) -> Option<Millis> {
        if ms <= MAX_MS {
            Some(Millis(ms))
        } else {
            None
        }
    }

    /// The number of milliseconds.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Reads a `u64` field that holds milliseconds, checked as a [`Millis`]
    /// (for `#[serde(deserialize_with = "Millis::read")]`).
    pub fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Millis::deserialize(d).map(Millis::get)
    }
}

impl TryFrom<u64> for Millis {
    type Error = OutOfRange;
    fn try_from(ms: u64) -> Result<Millis, OutOfRange> {
        Millis::new(ms).ok_or(OutOfRange {
            got: ms.to_string(),
            expected: Millis::EXPECTED,
        })
    }
}

impl From<Millis> for u64 {
    fn from(ms: Millis) -> u64 {
        ms.0
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(Millis::EXPECTED)
            }
            fn visit_u64<E: serde::de::Error>(self, ms: u64) -> Result<Millis, E> {
                Millis::new(ms)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Unsigned(ms), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, ms: i64) -> Result<Millis, E> {
                match u64::try_from(ms) {
                    Ok(ms) => self.visit_u64(ms),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(ms), &self)),
                }
            }
        }
        d.deserialize_u64(V)
    }
}

/// A probability: a finite number from 0 to 1. Read from a file, the range
/// is checked as the value is read, so serde's error names the field's path
/// and the value.
#[derive(Copy, Clone, Debug, Default, PartialEq, PartialOrd, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Probability(#[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))] f64);

impl Probability {
    /// Never.
    pub const ZERO: Probability = Probability(0.0);
    /// Always.
    pub const ONE: Probability = Probability(1.0);

    /// What a file may say, as a reader's error says it.
    pub const EXPECTED: &'static str = "a probability, a number from 0 to 1";

    /// `p` if it is a number from 0 to 1 (not NaN).
    pub fn new(p: f64) -> Option<Probability> {
        (0.0..=1.0).contains(&p).then_some(Probability(p))
    }

    /// The probability as a number from 0 to 1.
    pub const fn get(self) -> f64 {
        self.0
    }

    /// Reads an `f64` field that holds a probability, checked as a
    /// [`Probability`] (for `#[serde(deserialize_with = "Probability::read")]`).
    pub fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Probability::deserialize(d).map(Probability::get)
    }
}

impl TryFrom<f64> for Probability {
    type Error = OutOfRange;
    fn try_from(p: f64) -> Result<Probability, OutOfRange> {
        Probability::new(p).ok_or(OutOfRange {
            got: p.to_string(),
            expected: Probability::EXPECTED,
        })
    }
}

impl From<Probability> for f64 {
    fn from(p: Probability) -> f64 {
        p.0
    }
}

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Probability, D::Error> {
        use serde::de::Unexpected;
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Probability;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(Probability::EXPECTED)
            }
            fn visit_f64<E: serde::de::Error>(self, p: f64) -> Result<Probability, E> {
                Probability::new(p).ok_or_else(|| E::invalid_value(Unexpected::Float(p), &self))
            }
            fn visit_u64<E: serde::de::Error>(self, p: u64) -> Result<Probability, E> {
                match p {
                    0 => Ok(Probability::ZERO),
                    1 => Ok(Probability::ONE),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(p), &self)),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, p: i64) -> Result<Probability, E> {
                match u64::try_from(p) {
                    Ok(p) => self.visit_u64(p),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(p), &self)),
                }
            }
        }
        d.deserialize_f64(V)
    }
}

/// A number outside the range its type allows (see [`Millis`],
/// [`Probability`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// The number, as written.
    pub got: String,
    /// What the type takes.
    pub expected: &'static str,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: expected {}", self.got, self.expected)
    }
}

impl std::error::Error for OutOfRange {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_takes_zero_to_one_and_refuses_nan_and_the_rest() {
        assert_eq!(Probability::new(0.0), Some(Probability::ZERO));
        assert_eq!(Probability::new(1.0), Some(Probability::ONE));
        assert_eq!(Probability::new(0.25).map(f64::from), Some(0.25));
        for bad in [f64::NAN, -0.1, 1.000_001, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Probability::new(bad), None, "{bad}");
            assert!(Probability::try_from(bad).is_err(), "{bad}");
        }
        let e = Probability::try_from(1.5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1.5: expected a probability, a number from 0 to 1"
        );
    }

    #[test]
    fn millis_takes_up_to_one_day() {
        assert_eq!(Millis::new(MAX_MS), Some(Millis::MAX));
        assert_eq!(Millis::new(MAX_MS + 1), None);
        assert_eq!(u64::from(Millis::try_from(7).unwrap()), 7);
        assert_eq!(
            Millis::try_from(u64::MAX).unwrap_err().to_string(),
            "18446744073709551615: expected a whole number of milliseconds, at most one day (86400000 ms)"
        );
    }
}
