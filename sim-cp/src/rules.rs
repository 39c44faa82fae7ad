//! The rule catalogue: every rule of the contract (`docs/CONTRACT.md` §3),
//! defined once, as data.
//!
//! The engine's detectors, the platform checker, reports, `cpsim rules`,
//! `cpsim explain` and the docs all read [`CATALOGUE`]. A rule is named by its
//! [`RuleId`]; nothing else in the code spells a rule's text.

use serde::Serialize;

/// Who a rule binds.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize)]
pub enum Binds {
    /// The provider must keep it; the simulator detects it.
    #[serde(rename = "P")]
    Provider,
    /// The platform guarantees it; the platform checker holds the platform to it.
    #[serde(rename = "C")]
    Platform,
}

/// How much a broken rule weighs.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, PartialOrd, Ord)]
pub enum Level {
    /// A violation fails certification.
    #[serde(rename = "MUST")]
    Must,
    /// A violation makes the verdict non-strict (fail with `--strict`).
    #[serde(rename = "SHOULD")]
    Should,
    /// A platform guarantee: no level of its own.
    #[serde(rename = "-")]
    Guarantee,
}

/// One rule of the contract.
#[derive(Debug, Serialize)]
pub struct Rule {
    pub id: &'static str,
    #[serde(rename = "binds")]
    pub binds: Binds,
    pub level: Level,
    /// Where it comes from: `doc dd4417NN`, `seed`, `implied …` or `decision`.
    pub source: &'static str,
    pub text: &'static str,
    /// What kind of code breaks it (P) or what platform bug it catches (C).
    pub breaks: &'static str,
    /// How to fix a provider that breaks it (P), or what the platform does (C).
    pub fix: &'static str,
}

/// A rule's identity: an index into [`CATALOGUE`].
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(u8);

impl RuleId {
    /// The rule this ID names.
    pub fn rule(self) -> &'static Rule {
        &CATALOGUE[self.0 as usize]
    }
    /// The stable text ID, e.g. `COMP-3`.
    pub fn as_str(self) -> &'static str {
        self.rule().id
    }
    /// Looks a rule up by its text ID, case-insensitively.
    pub fn parse(s: &str) -> Option<RuleId> {
        CATALOGUE
            .iter()
            .position(|r| r.id.eq_ignore_ascii_case(s.trim()))
            .map(|i| RuleId(i as u8))
    }
    /// Every rule, in catalogue order.
    pub fn all() -> impl Iterator<Item = RuleId> {
        (0..CATALOGUE.len()).map(|i| RuleId(i as u8))
    }
    /// Position in the catalogue (stable ordering for reports).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Debug for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> serde::Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RuleId::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown rule ID `{s}` (see `cpsim rules`)"))
        })
    }
}

/// In a JSON Schema a rule ID is a string naming one rule of the catalogue
/// (written in its canonical case; the parser also takes other cases).
#[cfg(feature = "schema")]
impl schemars::JsonSchema for RuleId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RuleId".into()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        "cpsim_sim::rules::RuleId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let ids: Vec<&str> = CATALOGUE.iter().map(|r| r.id).collect();
        schemars::json_schema!({
            "description": "A rule ID of the contract's catalogue (see `cpsim rules`).",
            "type": "string",
            "enum": ids,
        })
    }
}

macro_rules! catalogue {
    ($( $konst:ident = $id:literal, $binds:ident, $level:ident, $source:literal, $text:literal, $breaks:literal, $fix:literal; )*) => {
        /// Every rule, in the contract's order (`docs/CONTRACT.md` §3).
        pub static CATALOGUE: &[Rule] = &[
            $( Rule { id: $id, binds: Binds::$binds, level: Level::$level, source: $source,
                      text: $text, breaks: $breaks, fix: $fix }, )*
        ];
        /// A constant per rule, named after its ID (`rules::id::COMP_3`).
        #[allow(missing_docs)]
        pub mod id {
            use super::RuleId;
            catalogue!(@consts 0u8; $($konst)*);
        }
    };
    (@consts $n:expr; $first:ident $($rest:ident)*) => {
        pub const $first: RuleId = RuleId($n);
        catalogue!(@consts $n + 1u8; $($rest)*);
    };
    (@consts $n:expr;) => {};
}

catalogue! {
    LIFE_1 = "LIFE-1", Provider, Must, "implied dd441734",
        "Every call into the platform names a handle that Create returned and that has not been destroyed.",
        "Using a handle after Destroy, an uninitialised handle, or a handle from another process.",
        "Keep the handle with the instance's state and clear it when you destroy the instance; never call the platform afterwards.";
    LIFE_2 = "LIFE-2", Provider, Must, "doc dd441736, decision for the error",
        "Register is called only on a created instance that is not currently registered.",
        "Registering the same instance twice without Deregister in between.",
        "Track registration in the instance; Deregister (or create a new instance) before registering again. The platform answers ERROR_INVALID_STATE.";
    LIFE_3 = "LIFE-3", Platform, Guarantee, "doc dd441734",
        "A failed Register leaves the instance usable: it may be registered again or destroyed.",
        "A platform that poisons an instance after a failed Register.",
        "The simulator keeps a created instance in the Created state after any failed Register.";
    LIFE_4 = "LIFE-4", Provider, Must, "doc dd441734",
        "After a successful Register, Deregister comes before Destroy.",
        "Destroying a registered instance without deregistering it first.",
        "Call Deregister, then Destroy. The simulator ends the session silently and destroys the instance.";
    LIFE_5 = "LIFE-5", Provider, Must, "doc dd441734",
        "Destroy is called at most once per instance.",
        "Two code paths (stop and termination handling, say) each destroying the instance.",
        "Make destruction idempotent on your side: take the handle out of your state before you call Destroy.";
    LIFE_6 = "LIFE-6", Provider, Must, "implied dd441734",
        "Deregister is called at most once per successful registration.",
        "Deregistering twice, or deregistering an instance that was never registered.",
        "Track registration; deregister only a registered instance. The platform answers ERROR_INVALID_STATE.";
    LIFE_7 = "LIFE-7", Provider, Must, "doc dd441734",
        "After the platform ends a session by itself (TERMINATE with any reason but PROVIDER_REQUEST), the provider calls Deregister for that instance.",
        "Ignoring TERMINATE_SESSION_INDICATION, or only cleaning up on PROVIDER_REQUEST.",
        "On TERMINATE with a platform reason, schedule Deregister (outside the callback if you like) and then Destroy or re-register.";
    LIFE_8 = "LIFE-8", Provider, Must, "decision",
        "When the provider is stopped, every instance it created has been deregistered and destroyed, and none of its pended calls is still open.",
        "A stop routine that returns while instances are still registered or pended calls are still waiting.",
        "In stop: complete every pended call, deregister and destroy every instance, join your workers, then return.";
    LIFE_9 = "LIFE-9", Provider, Must, "decision",
        "Create is given a dispatch table of the right size with every callback non-NULL.",
        "A table with a stale size field, a NULL entry for a callback the provider thought optional, or NULL pointers.",
        "Set size = sizeof(CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE) and implement every callback. The platform answers E_INVALIDARG or E_POINTER.";
    REG_1 = "REG-1", Platform, Guarantee, "doc dd441736",
        "A NULL friendly name gives \"Microsoft Connectivity Platform Adapter #N\", unique on the host.",
        "A platform that leaves the interface unnamed or reuses a default name.",
        "The simulator numbers default names from 1 per host.";
    REG_2 = "REG-2", Platform, Guarantee, "doc dd441736",
        "A friendly name already used on the host does not fail Register: the platform appends a numeric suffix.",
        "A platform that fails Register on a duplicate name.",
        "The simulator appends \" #2\", \" #3\", … to a name in use.";
    REG_3 = "REG-3", Platform, Guarantee, "doc dd441736, decision for the suffix",
        "A name longer than CPNATFWT_MAX_INTERFACE_NAME_LENGTH is cut silently; the final name, suffix included, fits.",
        "A platform that fails Register on a long name or overflows the limit with its suffix.",
        "The simulator cuts the name so that name plus suffix fit in 256 WCHARs.";
    REG_4 = "REG-4", Platform, Guarantee, "implied dd441736",
        "On success a non-NULL interfaceLuid receives the LUID of the instance's interface.",
        "A platform that leaves the out-LUID untouched.",
        "The simulator writes the interface LUID on every successful Register.";
    REG_5 = "REG-5", Provider, Must, "doc dd441736, decision for the error",
        "A non-zero input LUID is one this provider received from an earlier registration; otherwise Register fails.",
        "Passing an uninitialised LUID, a LUID saved by another provider, or one still in use by another registered instance.",
        "Zero the LUID for a new interface; pass back only a LUID Register gave you. The platform answers ERROR_NOT_FOUND.";
    REG_6 = "REG-6", Platform, Guarantee, "implied dd441736",
        "Such a LUID is reused: the instance gets that same interface back.",
        "A platform that hands out a fresh LUID when an old one was asked for.",
        "The simulator gives the instance the interface (name and LUID) it asked for.";
    REG_7 = "REG-7", Provider, Must, "decision",
        "flags is 0 (no flag is documented).",
        "Passing made-up flags.",
        "Pass 0. The platform answers E_INVALIDARG.";
    REG_8 = "REG-8", Provider, Must, "decision",
        "sddl, when given, is a well-formed SDDL string.",
        "A hand-written security descriptor with a typo, an unknown ACE type or an unbalanced parenthesis.",
        "Pass NULL or a descriptor that ConvertStringSecurityDescriptorToSecurityDescriptor accepts. The platform answers E_INVALIDARG.";
    REG_9 = "REG-9", Platform, Guarantee, "implied dd441736",
        "The platform never writes to the friendly-name or SDDL strings.",
        "A platform that normalises the caller's strings in place.",
        "The simulator only reads them.";
    SESS_1 = "SESS-1", Platform, Guarantee, "seed",
        "ESTABLISH is delivered only when Register succeeds; it may arrive before Register has returned.",
        "A platform that establishes a session for a failed registration.",
        "The simulator delivers ESTABLISH inside Register or right after it, by seeded choice, and only on success.";
    SESS_2 = "SESS-2", Platform, Guarantee, "seed",
        "No other callback for the instance starts until ESTABLISH has returned.",
        "A platform that overlaps ESTABLISH with other callbacks.",
        "The simulator holds every other callback of the instance until ESTABLISH has returned.";
    SESS_3 = "SESS-3", Platform, Guarantee, "seed",
        "The provider may call the platform from inside ESTABLISH; such calls may be deferred until ESTABLISH returns, and never deadlock.",
        "A platform that holds a lock across the callback.",
        "The simulator holds no lock while a callback runs, and defers Deregister/Destroy made inside ESTABLISH.";
    SESS_4 = "SESS-4", Platform, Guarantee, "doc dd441744, implied",
        "TERMINATE comes only after ESTABLISH, at most once per session, and no callback for that session starts after it.",
        "A platform that terminates twice or keeps calling a terminated session.",
        "The simulator delivers TERMINATE once per session and starts nothing for the session afterwards.";
    SESS_5 = "SESS-5", Platform, Guarantee, "doc dd441747, seed, decision for the mapping",
        "TERMINATE's reason matches its cause: PROVIDER_REQUEST for the provider's own Deregister of an established session, PLATFORM_SHUTDOWN on shutdown, PROVIDER_TIMEOUT after a timeout, PROVIDER_OTHER_FAILURE after a failed TRANSITION_ACTIVE or a provider crash, OTHER_COMMUNICATION_ERROR on an infrastructure fault.",
        "A platform that reports the wrong reason.",
        "The simulator derives the reason from the cause it recorded.";
    SESS_6 = "SESS-6", Platform, Guarantee, "doc dd4417xx",
        "Every callback carries the instance's handle and, bit for bit, the user context given to Create.",
        "A platform that mixes up instances or contexts.",
        "The simulator passes the stored handle and context unchanged.";
    SESS_7 = "SESS-7", Provider, Must, "seed",
        "ESTABLISH and TERMINATE return promptly (within the time limit of TIME-1).",
        "Blocking network I/O or waiting on a lock held by a worker inside ESTABLISH or TERMINATE.",
        "Do only bookkeeping inside these two callbacks; start slow work on a worker or a timer.";
    STATE_1 = "STATE-1", Platform, Guarantee, "seed",
        "After ESTABLISH the instance is dormant.",
        "A platform that sends traffic before any TRANSITION_ACTIVE.",
        "The first transition after ESTABLISH is always TRANSITION_ACTIVE.";
    STATE_2 = "STATE-2", Platform, Guarantee, "seed",
        "A failed TRANSITION_ACTIVE (failure returned, or failure status completed) makes the platform terminate the session.",
        "A platform that ignores a failed activation.",
        "The simulator terminates with PROVIDER_OTHER_FAILURE.";
    STATE_3 = "STATE-3", Platform, Guarantee, "seed",
        "The instance is active only once TRANSITION_ACTIVE has succeeded; IndicateReceivedBuffers returns an error otherwise.",
        "A platform that accepts data on a dormant instance.",
        "The simulator answers ERROR_INVALID_STATE.";
    STATE_4 = "STATE-4", Platform, Guarantee, "decision",
        "Transitions alternate (no ACTIVE while active, no DORMANT while dormant) and at most one is outstanding.",
        "A platform that repeats a transition or overlaps two.",
        "The simulator serialises transitions per instance.";
    STATE_5 = "STATE-5", Platform, Guarantee, "decision",
        "SEND_BUFFERS, and ADD/REMOVE/REACH of transport IDs, come only while the instance is active.",
        "A platform that sends on a dormant instance.",
        "The simulator queues such work and triggers TRANSITION_ACTIVE first.";
    STATE_6 = "STATE-6", Provider, Should, "seed",
        "Once TRANSITION_ACTIVE has succeeded the provider can carry traffic: data sent to a reachable peer arrives.",
        "Succeeding TRANSITION_ACTIVE before the infrastructure channel works, then failing REACH or SEND to a live peer.",
        "Complete TRANSITION_ACTIVE only when you can reach peers (pend it until then).";
    COMP_1 = "COMP-1", Platform, Guarantee, "seed",
        "The platform reads S_OK as success, HRESULT_FROM_WIN32(ERROR_IO_PENDING) as pended, and every other value as failure (S_FALSE and other positive values included).",
        "A platform that treats S_FALSE as success.",
        "The simulator classifies every return value exactly so.";
    COMP_2 = "COMP-2", Provider, Should, "seed",
        "The provider returns no success code but S_OK: any other one is read as failure, so it is almost surely a bug.",
        "Returning S_FALSE or another positive HRESULT meaning \"done, nothing to do\".",
        "Return S_OK for success.";
    COMP_3 = "COMP-3", Provider, Must, "seed",
        "After a synchronous return (anything but ERROR_IO_PENDING) the provider never calls that call's completion routine.",
        "Calling the completion routine and then also returning S_OK, or completing from a worker after an error return.",
        "Decide once: either return a final status and forget the routine, or return ERROR_IO_PENDING and complete later.";
    COMP_4 = "COMP-4", Provider, Must, "seed",
        "After returning ERROR_IO_PENDING the provider calls the completion routine exactly once.",
        "Completing twice (a retry path and a success path both complete), or never.",
        "Keep one owner of each pending completion; take it out of your table before you call it.";
    COMP_5 = "COMP-5", Provider, Must, "seed",
        "The completion routine gets that call's completionContext, unchanged.",
        "Passing your own context, or the context of another call.",
        "Store the completionContext with the pending work and pass it back as is.";
    COMP_6 = "COMP-6", Provider, Must, "seed",
        "The completion status is S_OK or a failure HRESULT, never ERROR_IO_PENDING.",
        "Forwarding an inner ERROR_IO_PENDING status to the platform.",
        "Complete with S_OK or a real error.";
    COMP_7 = "COMP-7", Provider, Must, "seed",
        "The provider does not touch a call's pointer parameters (transport IDs, buffer chains) after the call has completed.",
        "Keeping the CPNATFWT_TRANSPORT_ID pointer or the buffer chain for later use.",
        "Copy what you need before you return or complete.";
    COMP_8 = "COMP-8", Platform, Guarantee, "seed",
        "The platform keeps a pended call's pointer parameters valid until its completion routine is called.",
        "A platform that frees or reuses arguments of a pended call.",
        "The simulator keeps them and checks their bytes are unchanged at completion.";
    COMP_9 = "COMP-9", Platform, Guarantee, "implied",
        "completionRoutine is never NULL.",
        "A platform passing no completion routine.",
        "The simulator always passes its routine.";
    COMP_10 = "COMP-10", Platform, Guarantee, "decision",
        "A completion is accepted from any thread at any moment after the call began, even before the callback has returned ERROR_IO_PENDING.",
        "A platform that loses a completion racing the return.",
        "The simulator records early completions and applies them when the callback returns.";
    COMP_11 = "COMP-11", Platform, Guarantee, "decision",
        "A completion that arrives after the session was terminated is accepted and ignored.",
        "A platform that crashes on a late completion.",
        "The simulator records it and does nothing else.";
    TIME_1 = "TIME-1", Provider, Must, "seed",
        "Every call finishes in time, synchronous or pended; otherwise the platform terminates the session. Limits are per callback kind and configurable.",
        "A pended call whose completion is lost, or slow work done inline.",
        "Complete every pended call within its limit (fail it if the work cannot finish).";
    TIME_2 = "TIME-2", Platform, Guarantee, "seed, doc dd441747",
        "A timeout ends the session with PROVIDER_TIMEOUT, once.",
        "A platform that never reacts to timeouts, or reacts twice.",
        "The simulator terminates once with PROVIDER_TIMEOUT.";
    TID_1 = "TID-1", Platform, Guarantee, "doc dd441748",
        "Transport IDs come only from the platform.",
        "A platform handing the provider malformed IDs.",
        "The simulator hands out 4- or 16-byte IDs it allocated.";
    TID_2 = "TID-2", Provider, Must, "doc dd441748",
        "The provider never makes up a transport ID: the local ID it indicates was added to this instance and not removed; the remote one was made by a platform.",
        "Indicating with a hard-coded address, a removed local ID, or the peer's IDs swapped.",
        "Indicate with the local ID the platform added and the remote ID your peer sent with.";
    TID_3 = "TID-3", Provider, Must, "doc dd441748",
        "A transport ID kept past its call is deep-copied (keeping the pointer is COMP-7).",
        "Copying the CPNATFWT_TRANSPORT_ID struct but keeping its transportId byte pointer.",
        "Copy size bytes from transportId into memory you own.";
    TID_4 = "TID-4", Provider, Should, "doc dd441738",
        "ADD of an ID already in use (a duplicate address) fails.",
        "Accepting any ADD without checking the overlay for a duplicate.",
        "Check with your rendezvous and fail a duplicate ADD.";
    TID_5 = "TID-5", Platform, Guarantee, "decision",
        "REMOVE undoes ADD: the ID is no longer the instance's.",
        "A platform that keeps using a removed ID.",
        "The simulator forgets the ID when REMOVE is called.";
    TID_6 = "TID-6", Provider, Should, "doc dd441741",
        "REACH succeeds only for IDs really reachable, unambiguously, through this instance.",
        "Answering every REACH with success.",
        "Ask your rendezvous; fail REACH for unknown or ambiguous IDs.";
    TID_7 = "TID-7", Platform, Guarantee, "doc dd441737, dd441743",
        "SEND_BUFFERS goes only to a remote ID whose REACH succeeded in this session, from a local ID added to this instance.",
        "A platform that sends to unreached IDs.",
        "The simulator reaches before it sends.";
    DATA_1 = "DATA-1", Provider, Should, "seed",
        "The provider indicates received buffers only while active (otherwise the platform refuses them: STATE-3).",
        "Indicating data while dormant or after the session ended.",
        "Keep data that arrives while dormant and indicate it once TRANSITION_ACTIVE has succeeded, or have the sender's SEND fail: dropping data whose SEND succeeded is a loss (DATA-5).";
    DATA_2 = "DATA-2", Provider, Must, "doc dd441737, decision",
        "A buffer chain is well formed: it ends in NULL, has no cycle, and no element with size > 0 has a NULL buffer.",
        "A chain whose last next pointer is left uninitialised, or a reused element that makes a cycle.",
        "Build chains from zeroed elements and set next = NULL at the end. The platform answers E_INVALIDARG.";
    DATA_3 = "DATA-3", Provider, Must, "decision",
        "When IndicateReceivedBuffers returns ERROR_IO_PENDING (only possible with a provider completion routine), the provider leaves those buffers untouched until its routine is called.",
        "Reusing a receive buffer as soon as IndicateReceivedBuffers returns.",
        "Keep the buffers until your completion routine runs.";
    DATA_4 = "DATA-4", Platform, Guarantee, "decision",
        "With a provider completion routine, the platform calls it exactly once, after it is done with the buffers; without one, it is done with them before returning.",
        "A platform that forgets or repeats the provider's completion.",
        "With a routine, the simulator pends and completes once; without, it copies before returning.";
    DATA_5 = "DATA-5", Provider, Must, "implied",
        "End to end, the bytes a remote application receives are exactly those the local application sent: nothing corrupted or duplicated, nothing lost but what the simulated network dropped.",
        "Framing bugs, retransmission without de-duplication, truncation, or dropping data on a healthy network.",
        "Carry the buffer chain byte for byte; de-duplicate retransmissions; do not complete SEND with S_OK for data you dropped.";
    DATA_6 = "DATA-6", Platform, Guarantee, "seed",
        "SEND_BUFFERS' buffers stay valid until that call completes.",
        "A platform that reuses send buffers early.",
        "The simulator keeps them and checks them at completion.";
    CRASH_1 = "CRASH-1", Provider, Must, "decision",
        "A callback returns normally: it does not panic, abort or crash the process. (Not in the contract's tables: a project rule so a crash has an ID.)",
        "A panic, an abort or a segfault inside a callback.",
        "Catch errors inside callbacks and fail the call instead. The platform terminates the session with PROVIDER_OTHER_FAILURE.";
}

/// One reconstruction the project made where the lost docs would have
/// settled it. Each is one named constant or one place in the code.
#[derive(Debug, Serialize)]
pub struct Decision {
    pub name: &'static str,
    pub text: &'static str,
    /// Where in the code it lives.
    pub place: &'static str,
}

/// Every [decision] the simulator takes, as listed by `cpsim rules`.
pub static DECISIONS: &[Decision] = &[
    Decision { name: "handle", text: "An instance handle is an opaque integer encoding world, host and slot; handles are never reused.", place: "sim-cp/src/handle.rs" },
    Decision { name: "completion-context", text: "completionContext is an opaque integer encoding world, host and call serial; an unknown one is COMP-5, a second completion COMP-4, a completion of a synchronously returned call COMP-3.", place: "sim-cp/src/handle.rs" },
    Decision { name: "native-old-calls", text: "The native bridge keeps its latest 65,536 to 131,072 calls in full and each older ended call in one byte (how it ended, and which bridge made it), so that a process may run for ever: a completion of such an old call is still COMP-3 after a synchronous return, COMP-4 after a completion, ignored after the platform gave up, and a context never issued COMP-5, but its violation names the rule and the call's serial, not its instance or callback, and goes to the bridge its byte names (the 63rd and later bridges of one process share a number: to each of them). Serials are 64-bit.", place: "sim-cp/src/window_ledger.rs" },
    Decision { name: "transport-id-size", text: "Transport IDs are 4 (IPv4) or 16 (IPv6) bytes; each interface gets one of each when it registers.", place: "sim-cp/src/transport_id.rs" },
    Decision { name: "time-limits", text: "Default limits: ESTABLISH and TERMINATE 1 s, TRANSITION_ACTIVE/DORMANT 30 s, ADD/REMOVE/REACH 10 s, SEND_BUFFERS 5 s.", place: "sim-cp/src/config.rs (TimeLimits::default)" },
    Decision { name: "deregister-grace", text: "After a platform-ended session the provider has 5 s of virtual time to call Deregister before LIFE-7 is reported.", place: "sim-cp/src/config.rs (Config::deregister_grace)" },
    Decision { name: "indicate-with-routine", text: "With a provider completion routine, an accepted IndicateReceivedBuffers always returns ERROR_IO_PENDING and the routine is called once, later; a refused one returns the error and the routine is never called.", place: "sim-cp/src/engine/traffic.rs (indicate)" },
    Decision { name: "chain-length", text: "DATA-2 accepts a NULL-terminated, acyclic chain of any shape up to 1,048,576 elements (eight times the 131,013 of a 65,507-byte datagram cut into one-byte elements with an empty one between each); a longer chain is DATA-2, taken for an unterminated list. Cycles are found wherever they close. A chain holding more than 16 MiB is DATA-2 too.", place: "sim-cp/src/engine/traffic.rs (MAX_CHAIN, chain_content)" },
    Decision { name: "add-when-asked", text: "An ID is the instance's from the call of ADD_TRANSPORT_ID, not only from its completion: the platform has told the provider the address is the instance's. So data indicated on an ID whose ADD is in flight is accepted (no TID-2), and a REACH that succeeds towards an ID with an ADD in flight at another instance is not TID-6; nor is one during whose window (reach-grace) such an ADD was in flight, even if that ADD then failed (a provider may publish its address when ADD is called and withdraw it when the ADD fails, at its stop say); one failed after its session ended counts at its call. An ADD the provider completes with S_OK after its session ended (perhaps before TERMINATE told it so) counts as held at that instant for TID-6 too, and only then: like a removed ID, it excuses a REACH that succeeds within reach-grace after it, not a later one; and it never becomes the ID of a later session of the instance, so data indicated on it there is TID-2. TID-4, STATE-6 and the source of outgoing datagrams still count an ID only once its ADD succeeded in a live session. The counterpart of quiet-when-asked.", place: "sim-cp/src/engine/traffic.rs (IndicateReceivedBuffers, adding_elsewhere, add_failed), sim-cp/src/engine/instance.rs (Session::adding), sim-cp/src/engine/completion.rs (finish_call)" },
    Decision { name: "early-success", text: "A TRANSITION_ACTIVE completed with S_OK before its callback returned (COMP-10) has told the platform it succeeded: from that completion the instance may indicate data (no DATA-1), although the platform applies the transition itself when the callback returns. A task that indicates after a synchronous S_OK but before the platform has seen the return still races it (DATA-1): the platform does not know yet.", place: "sim-cp/src/engine/completion.rs (World::reported_active), traffic.rs (IndicateReceivedBuffers), sim-cp/src/oracle.rs (Inst::reported_active)" },
    Decision { name: "held-chain", text: "DATA-3 covers a held indication's chain elements as well as their bytes: the platform holds the chain, not a copy, so a rewritten link, size or buffer pointer before the routine is called is DATA-3 even if the bytes it now names are equal. The platform reads the elements again only where they lay when indicated, never following a changed link.", place: "sim-cp/src/engine/traffic.rs (held_intact)" },
    Decision { name: "destroy-while-registered", text: "Destroy of a registered instance (LIFE-4) ends the session without TERMINATE and destroys the instance.", place: "sim-cp/src/engine/lifecycle.rs" },
    Decision { name: "deregister-inside-establish", text: "Deregister and Destroy called while ESTABLISH runs return at once and take effect after ESTABLISH returns (SESS-3).", place: "sim-cp/src/engine/machine.rs (step), sim-cp/src/engine/lifecycle.rs" },
    Decision { name: "deregister-inside-a-callback", text: "The contract promises deferral only inside ESTABLISH (SESS-3). Deregister called from inside any other callback of the instance (TRANSITION_ACTIVE, say) takes effect at once: the session ends, TERMINATE(PROVIDER_REQUEST) is delivered on the calling thread, nested in that callback, and no other callback of the session starts after it (SESS-4). The callback's own answer, and a later completion of it, are for an ended session: accepted and ignored (COMP-11). No rule is broken; Destroy after it is Destroy of a deregistered instance.", place: "sim-cp/src/engine/lifecycle.rs (deregister), sim-cp/tests/deregister_inside.rs" },
    Decision { name: "refused-inside-establish", text: "A platform that fails Deregister called from inside ESTABLISH of a registered instance breaks SESS-3: such a call may be deferred, never refused.", place: "sim-cp/src/oracle.rs" },
    Decision { name: "lost-early-completion", text: "A call completed before its callback returned ERROR_IO_PENDING that then times out was lost by the platform: COMP-10.", place: "sim-cp/src/oracle.rs" },
    Decision { name: "strings-compared", text: "REG-9 is judged at the ABI edge: the caller's friendly name and SDDL string are compared before and after Register (by the simulator's C functions and by the native bridge), and a change is recorded in the trace.", place: "sim-cp/src/ffi.rs (and the native bridge, native/src/platform.rs)" },
    Decision { name: "terminate-on-deregister", text: "Deregister of an established session delivers TERMINATE(PROVIDER_REQUEST) before Deregister returns, on the caller's thread.", place: "sim-cp/src/engine/lifecycle.rs" },
    Decision { name: "luid-in-use", text: "A non-zero input LUID still used by another registered instance fails with ERROR_NOT_FOUND, like a LUID never issued (REG-5).", place: "sim-cp/src/engine/lifecycle.rs" },
    Decision { name: "name-suffix", text: "A duplicate friendly name gets \" #N\" (N = 2, 3, …); the base is cut so that name and suffix fit in 256 WCHARs.", place: "sim-cp/src/interface_name.rs" },
    Decision { name: "quiesce-before-dormant", text: "TRANSITION_DORMANT starts only when no other call of the instance is open; work requested meanwhile waits and then re-activates.", place: "sim-cp/src/engine/session.rs" },
    Decision { name: "routing", text: "An application's datagram goes through the host's established instances in registration order: the first whose REACH succeeds carries it.", place: "sim-cp/src/engine/traffic.rs" },
    Decision { name: "panic-is-crash", text: "A panic in a safe-API callback is CRASH-1 and ends the session with PROVIDER_OTHER_FAILURE; the call is failed with E_FAIL. The violation gives the panic's message and, where cpsim keeps provider panics off stderr (its command line and certification do), where it happened (file:line:column, as the compiler names the file).", place: "sim-cp/src/safe/adapter.rs (guarded), sim-cp/src/runtime.rs (quiet_provider_panics, panic_message)" },
    Decision { name: "establish-delivery", text: "ESTABLISH is delivered on Register's thread before it returns, or by the platform right after, by seeded choice (docs/CONTRACT.md §4).", place: "sim-cp/src/engine/lifecycle.rs" },
    Decision { name: "loss-excuse", text: "DATA-5 excuses a lost datagram only if its SEND failed, its session ended, or the simulated network dropped a packet after it was sent. The destination's session counts for every instance that held the destination ID (a duplicate address has several holders): the datagram may have gone to any of them.", place: "sim-cp/src/engine/traffic.rs" },
    Decision { name: "shutdown-before-establish", text: "A platform shutdown on a host whose instance has registered but not yet been delivered ESTABLISH ends that session right after ESTABLISH returns, with PLATFORM_SHUTDOWN; the shutdown is the session's cause (SESS-5). A provider start clears the host's shutdown.", place: "sim-cp/src/engine/machine.rs (step), sim-cp/src/engine/session.rs (establish_returned), sim-cp/src/oracle.rs" },
    Decision { name: "first-cause", text: "When several causes would end one session (a shutdown pending while ESTABLISH overruns its limit, a timeout after an infrastructure fault), the first one ends it and gives TERMINATE its reason (SESS-5); TIME-2 asks for PROVIDER_TIMEOUT only when the timeout is that first cause.", place: "sim-cp/src/engine/machine.rs (step), sim-cp/src/oracle.rs (Timeout)" },
    Decision { name: "state-aware-schedules", text: "Generated cases are made of moves placed relative to each other (often at the same instant or within 5 ms): bursts, dormancy cycles, stop/start/send, a platform-ended session followed by a stop, a datagram whose destination changes state (dormancy cycle, ended session, restart) while it or its retransmission is in flight, infrastructure outages up to 15 s, loss bursts up to 100%; datagram sizes are biased to the edges (0, 1, powers of two and their neighbours, 1400-1600, 60000-65507). Each case enables a random half of the move kinds (swarm testing). Every such step is something a real platform, its applications or its network can do; the ground truth excuses what they make a correct provider lose (DATA-5 and STATE-6 are excused by partitions and drops).", place: "conformance/src/certify/strategy.rs (generate)" },
    Decision { name: "coverage-map", text: "Contract-state coverage: a situation is a callback by the instance's phase, its pended calls and the host event of the previous 5 ms; a return or completion mode; a platform-side event by the phase and pended calls of the host it hits; a platform function by phase and whether it is called inside a callback; a datagram size class; a timeout; a session end by reason, phase and pended calls; a pair of host events within 5 ms.", place: "conformance/src/certify/statemap.rs" },
    Decision { name: "guided-default", text: "Certification's default source is coverage-guided: each lane keeps the cases that reached a situation its earlier cases had not, and after 16 fresh cases draws 35% fresh cases and 65% mutations of kept ones (steps inserted while a call was pended, possibly a state change of the call's other end, or 0-5 ms after a cue of the parent's trace, shifted, spliced, repeated, dropped, resized, reseeded). A lane's stream depends only on (seed, lane, provider, shape), never on the budget.", place: "conformance/src/certify/guided.rs" },
    Decision { name: "default-budget", text: "The default budget is 8,192 cases (a few seconds on two cores for the reference provider); 64 for a C module that runs in real time. A budget is a case count, not a time, so that --seed and --cases repeat a run exactly.", place: "conformance/src/certify/mod.rs (DEFAULT_CASES), cli/src/certify.rs" },
    Decision { name: "data-5-content", text: "DATA-5 knows an application datagram by its length and a 64-bit value once its SEND_BUFFERS is made (the payload is not kept): an indicated payload is taken to be a datagram when both are equal. Every payload the platform generates is a stream: word i is a fixed invertible mix of key + i times a constant, the key drawn from the run's seeded payload stream, so the value of a generated payload of more than 8 bytes is its key and identifies its bytes exactly (the key is read back from the first word and every other word checked against it); a payload of at most 8 bytes is known by its bytes. Bytes that are not a generated stream (a provider changed or made them) are known by a 64-bit digest and never equal a generated payload; two such differ in digest when they differ in one aligned 8-byte word, and otherwise with a probability of about 1 - 2^-64. Identical datagrams on one pair (empty ones, say) cannot be told apart: an arrival is credited to the first of them whose SEND is under way or succeeded, and if that SEND then fails, the arrival accounts for one identical datagram sent with S_OK that never arrived (the application got as many copies as SENDs succeeded).", place: "sim-cp/src/engine/traffic.rs (Content, deliver, check_losses)" },
    Decision { name: "args-seal-content", text: "A SEND_BUFFERS' payload is handed to the provider in the datagram's own buffer and sealed by its content (data-5-content), not by a copy: at completion the bytes are read back once, checked against their stream, and poisoned (COMP-8, DATA-6). Since a generated payload's content is exact, any change of its bytes during the call is found. An indication held for its completion routine is sealed by its content too, plus a hash of its element sizes (DATA-3): exact for a generated payload's bytes, by digest for others. Transport IDs and the chain's sizes and links are compared exactly, and quarantined blocks are checked byte by byte (COMP-7).", place: "sim-cp/src/engine/args.rs (Seal)" },
    Decision { name: "trace-limit", text: "A run's trace keeps at most 1,000,000 events by default (Config::trace_limit; 0: no limit). A run that records more keeps its first half and its latest half and says how many events it left out and where (Trace::omitted); the platform checker then judges every event as it is recorded, and oracle::check of such a trace returns that verdict. Shorter runs are unaffected.", place: "sim-cp/src/trace.rs (Recorder), sim-cp/src/config.rs (Config::trace_limit)" },
    Decision { name: "reach-grace", text: "TID-6 counts an ID as owned if some instance held it at any time from 1 s of virtual time before REACH started until REACH completed. STATE-6 counts a peer as surely reachable only if it held the ID, active and undisturbed, for that whole second before the call started; a call in the first second of a run is never judged, since no peer can have held anything for a second yet.", place: "sim-cp/src/config.rs (Config::reach_grace_ms), sim-cp/src/engine/traffic.rs (reachability)" },
    Decision { name: "late-duplicates", text: "The simulated network may hand over the second copy of a duplicated packet late (NetFaults::duplicate_lag_ms), past whatever the receiver went through meanwhile; generated cases do so across a dormancy cycle of the receiver. A dormancy keeps the session, so a copy of a datagram already indicated must not be indicated again after it (DATA-5). Across a provider restart or an ended session the generator adds no lag: the copies keep within the delay and jitter, as before.", place: "sim-cp/src/net.rs (route_each), conformance/src/certify/strategy.rs (late_copy_across_dormancy)" },
    Decision { name: "duplicate-across-restart", text: "DATA-5 does not judge a datagram indicated again after the receiving host's provider was stopped and started since its first indication: the provider that indicated it is gone with all it knew (LIFE-8 had it release everything), and one that gets the same interface back by its LUID (REG-5) cannot tell a late network copy or a retransmission from new data. The trace notes it. A further indication within the same start is judged again, as is a second indication by a provider that was not restarted (a dormancy, an ended session: the provider kept its state).", place: "sim-cp/src/engine/traffic.rs (World::deliver), sim-cp/src/engine/mod.rs (Host::starts)" },
    Decision { name: "native-provider-faults", text: "On a native platform a panic in a safe-API callback (CRASH-1) and a dropped Pending (COMP-4) are recorded by the bridge, which cannot end the session; a completion after a synchronous return (COMP-3) or a second one (COMP-4) is recorded and not passed on to the platform.", place: "native/src/calls.rs" },
    Decision { name: "native-unseen-causes", text: "On a native platform a TERMINATE(PROVIDER_TIMEOUT) is put down to the oldest call still pended on the instance (none: SESS-5); PLATFORM_SHUTDOWN and OTHER_COMMUNICATION_ERROR are taken as given, their causes being invisible to a provider.", place: "native/src/bridge.rs (unseen_cause)" },
    Decision { name: "lanes", text: "A certification of one seed is 16 lanes, each a deterministic stream of cases seeded from (seed, lane); the budget is split over the lanes (the first budget % 16 lanes take one case more) and case r of lane l has the global index 16r + l. A finding keeps the case with the smallest global index. --partition K/N runs the lanes with l % N = K - 1 (N at most 16), and merging the N shards gives the unsharded result.", place: "conformance/src/certify/mod.rs" },
    Decision { name: "root-cause-first", text: "A finding is a root cause if it was the earliest violation (lowest trace step) of some case; reports list root causes first, then by rule, then by first case.", place: "conformance/src/model.rs (sort_findings)" },
    Decision { name: "saved-expectations", text: "A saved minimal scenario expects exactly the rules its replay breaks and pins the earliest violation, which is another rule's when the finding is a consequence of it.", place: "conformance/src/certify/shrink.rs" },
    Decision { name: "expect-less-scenario", text: "A scenario whose expect names no violation (no violations, includes or first_violation) fails when a MUST rule or a platform guarantee is broken, a crash (CRASH-1) included; a SHOULD rule broken does not fail it.", place: "conformance/src/scenario/run.rs (check_expectations)" },
    Decision { name: "module-process-end", text: "A C module that crashes the process or calls exit (whatever the code, 0 included) during a case is CRASH-1, naming the signal or exit code and where its code was (loading, CpsimProviderStart, a callback, CpsimProviderStop); the trace up to an exit is kept. One whose callback has not returned for 2.3 s of real time, or that is still running 2.5 s past its case's schedule, is TIME-1, with the trace so far.", place: "cli/src/isolate/mod.rs (lost)" },
    Decision { name: "module-stopped-timers", text: "Tasks and timers of a C module (cpsim_module.h) still queued when its host stops it are dropped without being called, and its ports close: nothing of a module runs after CpsimProviderStop.", place: "cmod/src/facility.rs" },
    Decision { name: "virtual-time-promise", text: "A C module with the virtual-time marker that imports thread, sleep, wall-clock, socket or OS-randomness functions is refused before any case; one seen starting threads while it runs stops certification with exit 2 instead of a verdict. Neither is a rule violation: the harness will not judge runs it cannot reproduce.", place: "cmod/src/image.rs (OUTSIDE_VIRTUAL_TIME), cli/src/isolate/mod.rs" },
    Decision { name: "vt-module-budget", text: "A C module on virtual time (CPSIM_VIRTUAL_TIME_MODULE) gets the built-in providers' default budget, 8,192 cases (about 7 s at its ~1,200 cases/s on two cores), not the 64 of a real-time module: its cases are as cheap and as reproducible, and 64 cases miss bugs that need a rare moment (a stop before a deferred ESTABLISH was first found after 72 to 2,892 cases over ten seeds).", place: "cli/src/certify.rs (MODULE_CASES)" },
    Decision { name: "watchdog-stall", text: "In a virtual-time run (a built-in provider or a virtual-time C module) the only thing a seed does not fix is the real-time watchdog (TIME-1/SESS-7 for a callback that has not returned after 2 s of wall clock). A watchdog report whose case, rerun, does not show it again was the machine stalling the run's thread (swapping, an overloaded host), not the provider: it is not a finding and does not count against the verdict; the summary and report.json (`stalls`) say how many cases it happened to.", place: "conformance/src/certify/mod.rs (certify_subject)" },
    Decision { name: "send-source", text: "An application datagram leaves from the first transport ID of its family added to the instance whose ADD or REMOVE is not under way; with none, it waits. An ID being removed is never a source: its REMOVE may finish before SEND_BUFFERS is delivered (TID-5).", place: "sim-cp/src/engine/traffic.rs (pump_datagrams)" },
    Decision { name: "windows-dll-copies", text: "A provider DLL is simulated without changing the author's file: each host loads a private copy whose IPHLPAPI.DLL import is renamed to cpsim's router (cpsimrt.dll), which routes each call by its return address to the copy's host and forwards every other iphlpapi.dll export to the system's. An iphlpapi import by ordinal, or of a name the router does not forward, is refused before loading, naming it. A copy's file is deleted when the copy is unloaded; files Windows keeps loaded are swept by the next process.", place: "cmod/src/windows.rs" },
    Decision { name: "windows-vt-imports", text: "A virtual-time DLL is refused if it imports threads, processes, SleepEx, waits, wall clocks, the system's randomness or sockets; Sleep, GetSystemTimeAsFileTime, QueryPerformanceCounter and GetTickCount are allowed, because the mingw and MSVC runtimes' own start-up code imports them into every DLL. A thread started anyway is reported when it calls cpsim.", place: "cmod/src/image.rs (OUTSIDE_VIRTUAL_TIME_WINDOWS)" },
    Decision { name: "windows-runner", text: "On Windows a case runner gets no network of its own (Windows has no network namespaces): cases of a real-time module share the machine's network and run one at a time, one runner per case, as on Linux where namespaces are refused. Each runner and every process it starts is in a job object (kill on close), ended at TIME-1 or whenever the runner is given up; an unhandled exception in module code is CRASH-1 naming the exception code (0xC0000005 EXCEPTION_ACCESS_VIOLATION, ...) and where the module was, reported by the runner's unhandled-exception filter, which ends the process before any debugger or error box; a module's exit is CRASH-1 naming its exit code.", place: "cli/src/isolate/win.rs" },
    Decision { name: "threads-after-stop", text: "A real-time C module that leaves a thread of its own running after every host has stopped it (CpsimProviderStop returned) breaks LIFE-8: nothing of a module may run after its stop, and a real platform would unload the module under the thread. It is judged at the end of each case on Linux, where the runner tells the module's threads from its own (on Windows the system starts threads of its own in a process, so a count says nothing there). A thread still ending is given 10 ms.", place: "cli/src/isolate/mod.rs (threads_left)" },
    Decision { name: "threads-left-in-process", text: "A provider run in cpsim's own process on the virtual clock (its factory says deterministic() is true) may start no OS thread of its own; one that starts threads and leaves them running after its stop would, thousands of cases later, leave the process unable to start a thread and abort it with no verdict. On Linux the run reads the process's thread count every 64 cases; past the count it began with plus 256 plus 16 per core (the harness's own workers, and under cargo test other tests' certifications, stay well below that; a process runs out near 16,000 threads), it starts no more cases, reruns the first cases of one lane alone to name the first that leaves threads (LIFE-8, not shrunk nor saved: a replay of a scenario does not count threads), and fails, marked incomplete. While that rerun counts threads, no other certification of the process runs a case (they wait), so that another test's provider cannot start threads in its count; and when no case of the provider, rerun alone, leaves a thread while other certifications share the process (certify() from code, unlike cpsim certify), the threads are taken for theirs and the run goes on from where it stopped, counting from the new thread count, up to 3 times before it fails as above. Other systems are not watched.", place: "conformance/src/certify/threads.rs" },
    Decision { name: "threads-left-in-real-time", text: "A provider run in cpsim's own process in real time (its factory says deterministic() is false) may start threads of its own, but its stop must join them: nothing of a provider may run after its stop (LIFE-8). No trace shows a thread, and under cargo test other tests start and end threads in the same process, so this is judged only where the certification is alone in its process: cpsim certify and cpsim kill-matrix say so (Config::alone_in_process; off by default, so certify() from code does not judge it). On Linux the run reads the process's thread count before its first case and after its last, when every provider has stopped, giving threads up to 2 s to end. More than 8 threads over the count it began with fails LIFE-8, a normal failing certification, not cut short: the harness itself keeps at most its watchdog thread, and a provider leaving one thread per start leaves well over a hundred in the default 64 cases. Up to 32 cases, the first ones of every lane in turn, are then rerun alone, each given 2 s, to name one that leaves threads, and only such a case is a finding: if none does, the extra threads are taken for a pool the provider keeps for the whole process (a runtime made once, not once per start), which is allowed. So a provider keeping a pool of any size for the whole process passes, and one leaving threads in fewer than about one case in thirty may pass. An interrupted run is not judged, nor other systems.", place: "conformance/src/certify/threads.rs" },
    Decision { name: "input-files", text: "Files cpsim reads (scenario files, --provider-config, a shard's report.json, provider modules) must be regular files: a named pipe, a socket or a device is refused before it is opened, naming what it is, since opening a pipe would wait for a writer for ever and a device such as /dev/zero never ends. `cpsim run <(...)` is therefore refused.", place: "conformance/src/scenario/load.rs (open_regular_file)" },
    Decision { name: "quiet-when-asked", text: "A provider may go quiet the moment it is asked to: from the call of TRANSITION_DORMANT (or of REMOVE_TRANSPORT_ID for that ID), not only from its completion, it may drop what arrives and fail REACH and SEND towards that instance. So a peer with a TRANSITION_DORMANT or a REMOVE of the ID in flight is not surely reachable (STATE-6), the start of either call excuses a loss like its completion does (DATA-5), and an instance with a REMOVE of an ID in flight no longer holds it for TID-4 (an ADD elsewhere is no duplicate) or for TID-6's ambiguity. Likewise, once its `stop` is called a provider may fail every call it still has open (LIFE-8 asks that they be completed, not how): a REACH or SEND failed then is not STATE-6. The excuse at DATA-5 is that instance's and that ID's, not its host's: a datagram sent with S_OK that never arrived is excused only if, at or after its sending, the instance asked to SEND it or one that held its destination ID went quiet (its session ended, it went dormant, or a TRANSITION_DORMANT of it was called: it may drop whatever it holds), or a REMOVE of its own source ID at the sending instance, or of its destination ID at the holder, was called or finished. A REMOVE of another ID, or a disruption of another instance of the same host, excuses nothing: a provider that drops what it holds for every address whenever any one of them goes away (\"reset all sockets on address change\") is DATA-5.", place: "sim-cp/src/engine/traffic.rs (reachability, check_losses, Traffic::disrupt), session.rs (issue, ADD's TID-4, STATE-6), mod.rs (World::stopping)" },
    Decision { name: "real-time-recurrence", text: "A saved failure of a real-time module recurs on replay if the rule of its first violation fires again (steps differ on the wall clock); replay tries 5 times before saying it did not recur. A finding that does not recur while shrinking keeps its case and trace as first found.", place: "cli/src/scenarios.rs (recurs), conformance/src/certify/shrink.rs" },
    Decision { name: "address-families", text: "Address notifications have a family. An added address is a new IPv4 or IPv6 ID of the interface (numbered after its extra addresses of both families); a duplicate copies the other host's first address of the family named; a removal takes the interface's most recently added extra address, whatever its family; the base pair (one IPv4 and one IPv6 ID) is never removed. A scenario step without a family means IPv4. A removed address can come back: each interface keeps a stack of the addresses removed from it, and a return (`address_return`) gives the one removed last back to it with the same transport ID (again, the one removed before, and so on). The stack belongs to the host's interface, not to a registration or a run of the provider: it is kept when the interface's instance deregisters and when the provider restarts, since it is the host's address that comes back, to whichever instance holds the interface then. A returned ID is judged as any added one: from the success (or the call) of its new ADD it is the instance's again (TID-2 accepts indications with it, the ownership behind TID-4, TID-6 and STATE-6 counts it from then), and DATA-5 excuses only losses of data sent before the REMOVE finished. An interface can also go down and come back (`interface_down`, `interface_up`): the down removes every address it has, its first IPv4 and IPv6 IDs too, the newest first (one removal notification each, each pushed on the stack of removed addresses, so a return while it is down gives back its first IPv4 ID), and the up gives back, in the interface's order, every address the downs since it was last up took that no return gave back yet. An instance may thus hold no ID at all: an application sending to such a host sends nothing (the trace notes that its interface has no address of the family), and a duplicate of its address is not made. A provider must expect its first IDs to be removed and to come back like any other.", place: "sim-cp/src/engine/platform_actions.rs (address_change, interface_down, interface_up)" },
    Decision { name: "send-newest", text: "An application sends to the destination's first address of the family, or, when the step says `newest`, to its address of the family added last (an extra address if it has one): the one way data can be on its way to an ID that is then removed.", place: "sim-cp/src/engine/traffic.rs (World::app_send)" },
    Decision { name: "removed-id-indication", text: "TID-2 and a removed local ID: once REMOVE_TRANSPORT_ID of an ID has finished (returned synchronously or completed, whatever its status), an indication with that local ID is refused and blamed (TID-2), even for data that was on its way before the REMOVE: the provider knows the ID is gone and drops such data (its loss is excused, DATA-5). While the REMOVE is still in flight the ID is still the instance's and an indication with it is taken, not blamed: the provider may not have acted on the REMOVE yet.", place: "sim-cp/src/engine/traffic.rs (indicate), instance.rs (Session::remove_done)" },
    Decision { name: "duplicates-unheard", text: "A duplicate address is judged only where the provider could have heard of it: TID-4 does not judge an ADD that succeeded, and TID-6 does not judge a REACH that succeeded towards an ID more than one instance holds, when the simulated network was disturbed (loss or a partition, or a packet dropped) since the call started. A provider that asks its peers or a rendezvous whether an address is taken, or who holds it, cannot hear a holder it cannot reach, as STATE-6 asks only for what a healthy network allows. A REACH that succeeded towards an ID no instance holds is still TID-6.", place: "sim-cp/src/engine/session.rs (op_done: ADD, REACH)" },
    Decision { name: "ambiguous-not-reachable", text: "STATE-6 does not judge a failed REACH or SEND towards an ID that another instance besides the peer holds when the call ends (a duplicate address): a REACH that succeeded would break TID-6 (held by more than one instance), so failing it is the right answer, not a provider that cannot carry traffic. Nor one towards an ID the calling instance itself holds when the call ends (a duplicate of a peer's address whose ADD was granted while the peer could not be heard, decision duplicates-unheard): the ID names the caller as well as the peer.", place: "sim-cp/src/engine/traffic.rs (reachability)" },
];

/// The families of rules, by ID prefix, with their titles (`docs/CONTRACT.md` §3).
pub const FAMILIES: &[(&str, &str)] = &[
    ("LIFE", "Create, register, deregister, destroy"),
    ("REG", "Registration parameters"),
    ("SESS", "Establish and terminate"),
    ("STATE", "Dormant and active"),
    (
        "COMP",
        "The completion protocol (TRANSITION_ACTIVE, TRANSITION_DORMANT, ADD/REMOVE/REACH_TRANSPORT_ID, SEND_BUFFERS)",
    ),
    ("TIME", "Timeouts"),
    ("TID", "Transport IDs"),
    ("DATA", "Sending and receiving"),
    ("CRASH", "Crashes (the project's own rule)"),
];

fn level_name(r: &Rule) -> &'static str {
    match r.level {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
        Level::Guarantee => "-",
    }
}

/// The catalogue as Markdown: a summary table, then every rule with its
/// binds, level, source, text, what breaks it and how to fix it, family by
/// family. `docs/CONTRACT.md` §3 is this text (a test keeps it so).
pub fn catalogue_markdown() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut m = String::from("| ID | binds | level | rule |\n|---|---|---|---|\n");
    for r in CATALOGUE {
        let binds = match r.binds {
            Binds::Provider => "P",
            Binds::Platform => "C",
        };
        m.push_str(&format!(
            "| [{}](#{}) | {binds} | {} | {} |\n",
            r.id,
            r.id.to_lowercase(),
            level_name(r),
            cell(r.text)
        ));
    }
    for (prefix, title) in FAMILIES {
        m.push_str(&format!("\n### {prefix}: {title}\n"));
        for r in CATALOGUE
            .iter()
            .filter(|r| r.id.split('-').next() == Some(prefix))
        {
            let (who, breaks, fix) = match r.binds {
                Binds::Provider => (
                    format!("Binds the provider · {}", level_name(r)),
                    "What breaks it",
                    "How to fix it",
                ),
                Binds::Platform => (
                    "A platform guarantee".to_string(),
                    "What a platform that breaks it does",
                    "What the simulator does",
                ),
            };
            m.push_str(&format!(
                "\n#### {}\n\n*{who} · source: {}*\n\n> {}\n\n- **{breaks}:** {}\n- **{fix}:** {}\n",
                r.id, r.source, r.text, r.breaks, r.fix
            ));
        }
    }
    m
}

/// Every decision as a Markdown table (`docs/CONTRACT.md` §5).
pub fn decisions_markdown() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut m = String::from("| decision | what cpsim does | where |\n|---|---|---|\n");
    for d in DECISIONS {
        m.push_str(&format!(
            "| `{}` | {} | `{}` |\n",
            d.name,
            cell(d.text),
            cell(d.place)
        ));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for r in RuleId::all() {
            assert!(seen.insert(r.as_str()), "duplicate {}", r);
            assert_eq!(RuleId::parse(r.as_str()), Some(r));
            assert_eq!(RuleId::parse(&r.as_str().to_lowercase()), Some(r));
        }
        assert_eq!(RuleId::parse("NOPE-1"), None);
    }

    #[test]
    fn constants_match_their_ids() {
        assert_eq!(id::LIFE_1.as_str(), "LIFE-1");
        assert_eq!(id::COMP_3.as_str(), "COMP-3");
        assert_eq!(id::DATA_6.as_str(), "DATA-6");
        assert_eq!(id::CRASH_1.as_str(), "CRASH-1");
    }

    #[test]
    fn levels_follow_binds() {
        for r in CATALOGUE {
            match r.binds {
                Binds::Platform => assert_eq!(r.level, Level::Guarantee, "{}", r.id),
                Binds::Provider => assert_ne!(r.level, Level::Guarantee, "{}", r.id),
            }
        }
    }

    #[test]
    fn catalogue_counts() {
        let p = CATALOGUE
            .iter()
            .filter(|r| r.binds == Binds::Provider)
            .count();
        let c = CATALOGUE.len() - p;
        // The contract has 28 P-rules and 29 C-rules; CRASH-1 is the project's own.
        assert_eq!((p, c), (29, 29));
    }
}
