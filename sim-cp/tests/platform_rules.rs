//! C-rules: random schedules show the simulator keeps every platform
//! guarantee (the platform checker finds nothing), and each deliberate
//! platform fault shows the checker is not vacuous (it finds exactly the
//! rule the fault breaks).

mod common;
use common::*;
use cpsim_sim::rules::{id, Binds};
use cpsim_sim::*;
use proptest::prelude::*;
use std::sync::Arc;

fn hosts() -> Vec<cpsim_sim::HostName> {
    vec!["A".into(), "B".into(), "C".into()]
}

fn action() -> impl Strategy<Value = Action> {
    let h = prop::sample::select(hosts());
    prop_oneof![
        3 => (h.clone(), h.clone(), any::<bool>(), 0u32..1500, prop::bool::weighted(0.25)).prop_map(|(from, to, v6, bytes, newest)| Action::Send {
            from, to, family: if v6 { Family::V6 } else { Family::V4 }, bytes, newest,
        }),
        2 => (h.clone(), any::<bool>()).prop_map(|(host, on)| Action::Listen { host, on }),
        1 => h.clone().prop_map(|host| Action::Dormant { host }),
        1 => (h.clone(), any::<bool>()).prop_map(|(host, v6)| Action::AddressAdd {
            host, family: if v6 { Family::V6 } else { Family::V4 }
        }),
        1 => h.clone().prop_map(|host| Action::AddressRemove { host }),
        1 => h.clone().prop_map(|host| Action::AddressReturn { host }),
        1 => h.clone().prop_map(|host| Action::InterfaceDown { host }),
        1 => h.clone().prop_map(|host| Action::InterfaceUp { host }),
        1 => (h.clone(), h.clone(), any::<bool>()).prop_map(|(host, of, v6)| Action::DuplicateAddress {
            host, of, family: if v6 { Family::V6 } else { Family::V4 }
        }),
        1 => h.clone().prop_map(|host| Action::Shutdown { host }),
        1 => h.clone().prop_map(|host| Action::StopProvider { host }),
        1 => h.clone().prop_map(|host| Action::StartProvider { host }),
        1 => (h.clone(), h.clone()).prop_map(|(a, b)| Action::Partition { a, b }),
        1 => Just(Action::Heal),
    ]
}

fn timing() -> impl Strategy<Value = TaskTiming> {
    (
        0.0..0.5f64,
        0.0..0.5f64,
        prop_oneof![Just(0.0), 0.0..0.1f64],
        prop_oneof![Just(0.0), 0.0..0.05f64],
    )
        .prop_map(|(before_return, late, after_timeout, never)| TaskTiming {
            before_return,
            late,
            late_max_ms: 300,
            after_timeout,
            never,
        })
}

fn run(
    seed: u64,
    asynchronous: bool,
    instances: usize,
    tasks: TaskTiming,
    steps: &[(u64, Action)],
    faults: Vec<PlatformFault>,
) -> Outcome {
    run_limited(seed, asynchronous, instances, tasks, steps, faults, 0)
}

fn run_limited(
    seed: u64,
    asynchronous: bool,
    instances: usize,
    tasks: TaskTiming,
    steps: &[(u64, Action)],
    faults: Vec<PlatformFault>,
    trace_limit: u64,
) -> Outcome {
    let cfg = Config {
        seed,
        tasks,
        faults,
        drain_ms: 40_000,
        trace_limit,
        ..Config::default()
    };
    let sim = Sim::new(
        cfg,
        &["A", "B", "C"],
        ToyFactory::new(ToyOptions {
            asynchronous,
            instances,
            ..ToyOptions::default()
        }),
    );
    for h in ["A", "B", "C"] {
        sim.schedule(Nanos::ZERO, Action::StartProvider { host: h.into() });
    }
    for (at, a) in steps {
        sim.schedule(Nanos::from_millis(*at), a.clone());
    }
    sim.run_until(Nanos::from_secs(60));
    sim.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, .. ProptestConfig::default() })]

    /// Every C-rule, on random schedules: the checker finds no platform
    /// violation and the engine reports none either.
    #[test]
    fn the_simulator_keeps_every_platform_guarantee(
        seed in any::<u64>(),
        asynchronous in any::<bool>(),
        instances in 1usize..3,
        tasks in timing(),
        steps in prop::collection::vec((0u64..50_000, action()), 1..40),
    ) {
        let out = run(seed, asynchronous, instances, tasks, &steps, vec![]);
        let platform = oracle::check(&out.trace);
        prop_assert!(platform.is_empty(), "platform violations: {:#?}", platform);
        let c: Vec<_> = out.violations.iter().filter(|v| v.rule.rule().binds == Binds::Platform).collect();
        prop_assert!(c.is_empty(), "{:#?}", c);
    }
}

/// Platform faults that a toy run can show (WrongUserContext needs a
/// provider that never reads its context).
const TOY_FAULTS: [PlatformFault; 23] = [
    PlatformFault::EstablishOnFailedRegister,
    PlatformFault::CallBeforeEstablish,
    PlatformFault::DoubleTerminate,
    PlatformFault::WrongTerminationReason,
    PlatformFault::DormantFirst,
    PlatformFault::IgnoreFailedActivation,
    PlatformFault::AcceptIndicateWhenDormant,
    PlatformFault::RepeatTransition,
    PlatformFault::SFalseIsSuccess,
    PlatformFault::ClobberPendedArgs,
    PlatformFault::ClobberPendedPayload,
    PlatformFault::IgnoreTimeout,
    PlatformFault::SendWithoutReach,
    PlatformFault::DoubleProviderCompletion,
    PlatformFault::PoisonAfterFailedRegister,
    PlatformFault::BadDefaultName,
    PlatformFault::ForeignTransportId,
    PlatformFault::DuplicateNameKept,
    PlatformFault::LongNameUncut,
    PlatformFault::ZeroLuid,
    PlatformFault::FreshLuidOnReuse,
    PlatformFault::NoCompletionRoutine,
    PlatformFault::ApplyLateCompletion,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, .. ProptestConfig::default() })]

    /// A trace limit changes only what the trace keeps: the run is the
    /// same, the trace keeps the full trace's first and latest events, and
    /// the platform checker, run as events are recorded, finds the same.
    #[test]
    fn a_bounded_trace_keeps_the_run_and_the_verdict(
        seed in any::<u64>(),
        asynchronous in any::<bool>(),
        tasks in timing(),
        steps in prop::collection::vec((0u64..50_000, action()), 1..30),
        faults in prop::collection::vec(prop::sample::select(TOY_FAULTS.to_vec()), 0..3),
        limit in 1u64..120,
    ) {
        let full = run(seed, asynchronous, 1, tasks.clone(), &steps, faults.clone());
        let cut = run_limited(seed, asynchronous, 1, tasks, &steps, faults, limit);
        prop_assert_eq!(&cut.violations, &full.violations);
        let verdict = oracle::check(&full.trace);
        prop_assert_eq!(oracle::check(&cut.trace), verdict.clone());
        let events = &full.trace.events;
        let limit = limit as usize;
        match &cut.trace.omitted {
            None => prop_assert_eq!(&cut.trace, &full.trace),
            Some(o) => {
                let head = limit / 2;
                prop_assert!(events.len() > limit);
                prop_assert_eq!(o.at, head);
                prop_assert_eq!(o.events as usize, events.len() - limit);
                prop_assert_eq!(&o.platform_violations, &verdict);
                prop_assert_eq!(&cut.trace.events[..head], &events[..head]);
                prop_assert_eq!(&cut.trace.events[head..], &events[events.len() - (limit - head)..]);
                // The JSON says so, and reads back (verdict included).
                let json = cut.trace.to_json();
                prop_assert!(json.contains("\"omitted\""));
                prop_assert_eq!(&Trace::from_json(&json).expect("reads back"), &cut.trace);
            }
        }
    }
}

/// Both hosts start at 0 ms, B listens at 10 ms, and A sends B three
/// datagrams of `bytes` bytes at 100, 101 and 102 ms.
fn three_sends(sim: &Sim, bytes: u32) {
    let at = Nanos::from_millis;
    start(sim, &["A", "B"], "B", 10);
    for k in 0..3 {
        sim.schedule(
            at(100 + k),
            Action::Send {
                from: "A".into(),
                to: "B".into(),
                family: Family::V4,
                bytes,
                newest: false,
            },
        );
    }
}

fn standard(faults: Vec<PlatformFault>, opts: ToyOptions, tasks: TaskTiming) -> Outcome {
    standard_limited(faults, opts, tasks, 0)
}

fn standard_limited(
    faults: Vec<PlatformFault>,
    opts: ToyOptions,
    tasks: TaskTiming,
    trace_limit: u64,
) -> Outcome {
    let cfg = Config {
        seed: 7,
        tasks,
        faults,
        trace_limit,
        ..Config::default()
    };
    let sim = Sim::new(cfg, &["A", "B"], ToyFactory::new(opts));
    let at = Nanos::from_millis;
    three_sends(&sim, 100);
    sim.schedule(at(2_000), Action::Dormant { host: "A".into() });
    sim.run_until(at(5_000));
    sim.finish()
}

fn rules_of(v: &[Violation]) -> Vec<RuleId> {
    let mut r: Vec<RuleId> = v.iter().map(|v| v.rule).collect();
    r.sort();
    r.dedup();
    r
}

#[test]
fn a_correct_run_has_no_platform_violation() {
    let out = standard(
        vec![],
        ToyOptions {
            asynchronous: true,
            ..ToyOptions::default()
        },
        TaskTiming::default(),
    );
    assert_eq!(oracle::check(&out.trace), vec![]);
    assert_eq!(out.violations, vec![]);
}

fn sync() -> ToyOptions {
    ToyOptions::default()
}

fn asyn() -> ToyOptions {
    ToyOptions {
        asynchronous: true,
        ..ToyOptions::default()
    }
}

fn stall() -> TaskTiming {
    TaskTiming {
        after_timeout: 1.0,
        ..TaskTiming::default()
    }
}

/// The platform checker finds `rule` in the run with `fault`; and with a
/// trace too short to hold the run, judging the events as they are
/// recorded, it finds the same.
fn fault_is_caught(fault: PlatformFault, rule: RuleId, opts: ToyOptions, tasks: TaskTiming) {
    if std::env::var("CPSIM_DUMP").is_ok_and(|v| v == format!("{fault:?}")) {
        eprintln!("{}", out_dump(&[fault], opts, tasks.clone()));
    }
    let out = standard(vec![fault], opts, tasks.clone());
    let verdict = oracle::check(&out.trace);
    let found = rules_of(&verdict);
    assert!(
        found.contains(&rule),
        "{fault:?}: expected {rule}, checker found {found:?}"
    );
    let limited = standard_limited(vec![fault], opts, tasks, 12);
    let omitted = limited.trace.omitted.as_ref().expect("events omitted");
    assert!(omitted.events > 0 && limited.trace.events.len() == 12);
    assert_eq!(oracle::check(&limited.trace), verdict, "{fault:?}");
}

/// One test per (platform fault, rule), named after the rule first so that
/// `cargo test comp_8` runs it with the rule's other tests.
macro_rules! platform_fault_tests {
    ($($test:ident: $fault:ident => $rule:ident, $opts:expr, $tasks:expr;)*) => {
        $(
            #[test]
            fn $test() {
                fault_is_caught(PlatformFault::$fault, id::$rule, $opts, $tasks);
            }
        )*
    };
}

platform_fault_tests! {
    sess_1_platform_fault_establish_on_failed_register_is_caught: EstablishOnFailedRegister => SESS_1,
        ToyOptions { bad_first_register: true, ..sync() }, TaskTiming::default();
    sess_2_platform_fault_call_before_establish_is_caught: CallBeforeEstablish => SESS_2, sync(), TaskTiming::default();
    sess_4_platform_fault_double_terminate_is_caught: DoubleTerminate => SESS_4, sync(), TaskTiming::default();
    sess_5_platform_fault_wrong_termination_reason_is_caught: WrongTerminationReason => SESS_5, asyn(), stall();
    state_1_platform_fault_dormant_first_is_caught: DormantFirst => STATE_1, sync(), TaskTiming::default();
    state_2_platform_fault_ignore_failed_activation_is_caught: IgnoreFailedActivation => STATE_2,
        ToyOptions { fail_activation: true, ..sync() }, TaskTiming::default();
    state_4_platform_fault_repeat_transition_is_caught: RepeatTransition => STATE_4, sync(), TaskTiming::default();
    comp_8_platform_fault_clobber_pended_args_is_caught: ClobberPendedArgs => COMP_8, asyn(), TaskTiming::default();
    data_6_platform_fault_clobber_pended_args_is_caught: ClobberPendedArgs => DATA_6, asyn(), TaskTiming::default();
    time_2_platform_fault_ignore_timeout_is_caught: IgnoreTimeout => TIME_2, asyn(), stall();
    tid_7_platform_fault_send_without_reach_is_caught: SendWithoutReach => TID_7, sync(), TaskTiming::default();
    data_4_platform_fault_double_provider_completion_is_caught: DoubleProviderCompletion => DATA_4,
        ToyOptions { indicate_with_routine: true, ..sync() }, TaskTiming::default();
    life_3_platform_fault_poison_after_failed_register_is_caught: PoisonAfterFailedRegister => LIFE_3,
        ToyOptions { bad_first_register: true, ..sync() }, TaskTiming::default();
    reg_1_platform_fault_bad_default_name_is_caught: BadDefaultName => REG_1, sync(), TaskTiming::default();
    tid_1_platform_fault_foreign_transport_id_is_caught: ForeignTransportId => TID_1, sync(), TaskTiming::default();
    reg_2_platform_fault_duplicate_name_kept_is_caught: DuplicateNameKept => REG_2,
        ToyOptions { instances: 2, name: Some("vpn"), ..sync() }, TaskTiming::default();
    reg_3_platform_fault_long_name_uncut_is_caught: LongNameUncut => REG_3,
        ToyOptions { name: Some(LONG), ..sync() }, TaskTiming::default();
    reg_4_platform_fault_zero_luid_is_caught: ZeroLuid => REG_4, sync(), TaskTiming::default();
    comp_9_platform_fault_no_completion_routine_is_caught: NoCompletionRoutine => COMP_9, sync(), TaskTiming::default();
    comp_11_platform_fault_apply_late_completion_is_caught: ApplyLateCompletion => COMP_11, asyn(), stall();
    comp_10_platform_fault_lose_early_completion_is_caught: LoseEarlyCompletion => COMP_10,
        asyn(), TaskTiming { before_return: 1.0, ..TaskTiming::default() };
    sess_3_platform_fault_refuse_calls_in_establish_is_caught: RefuseCallsInEstablish => SESS_3,
        ToyOptions { deregister_in_establish: true, ..sync() }, TaskTiming::default();
    reg_9_platform_fault_write_caller_strings_is_caught: WriteCallerStrings => REG_9,
        ToyOptions { name: Some("vpn"), ..sync() }, TaskTiming::default();
}

/// The options and task timing each new platform fault's case needs run
/// without the fault: the checker finds nothing (no false alarm).
#[test]
fn comp_10_sess_3_reg_9_cases_without_their_fault_have_no_platform_violation() {
    let sync = ToyOptions::default();
    let early = TaskTiming {
        before_return: 1.0,
        ..TaskTiming::default()
    };
    let cases = [
        (
            ToyOptions {
                asynchronous: true,
                ..sync
            },
            early,
        ),
        (
            ToyOptions {
                deregister_in_establish: true,
                ..sync
            },
            TaskTiming::default(),
        ),
        (
            ToyOptions {
                name: Some("vpn"),
                ..sync
            },
            TaskTiming::default(),
        ),
    ];
    for (k, (opts, tasks)) in cases.into_iter().enumerate() {
        let out = standard(vec![], opts, tasks);
        assert_eq!(oracle::check(&out.trace), vec![], "case {k}");
    }
}

/// The asynchronous toy: B listens and A sends it three datagrams of
/// `bytes` bytes, each SEND_BUFFERS pended and completed by a task.
fn async_sends(bytes: u32, faults: Vec<PlatformFault>, trace_limit: u64) -> Outcome {
    let cfg = Config {
        seed: 5,
        faults,
        trace_limit,
        ..Config::default()
    };
    let sim = Sim::new(cfg, &["A", "B"], ToyFactory::new(asyn()));
    three_sends(&sim, bytes);
    sim.run_until(Nanos::from_millis(2_000));
    sim.finish()
}

/// A SEND_BUFFERS' payload is sealed by its content, not by a copy
/// (decision `args-seal-content`): a platform that changes one byte in the
/// middle of a payload of more than 4 KiB while its SEND_BUFFERS is pended
/// is caught with exactly that rule (DATA-6, COMP-8 for SEND_BUFFERS'
/// buffers), in a whole run, and judged as events are recorded too; the
/// correct platform raises nothing for the same run. The provider copied the
/// payload before it pended, so its datagrams still arrive intact: nothing
/// else is found.
#[test]
fn comp_8_data_6_platform_fault_clobber_pended_payload_over_4_kib_is_caught() {
    let completed = |out: &Outcome| {
        out.trace
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.what,
                    trace::What::Complete {
                        cb: Callback::SendBuffers,
                        early: false,
                        ..
                    }
                )
            })
            .count()
    };
    for bytes in [4_097, 10_000, 65_507] {
        let good = async_sends(bytes, vec![], 0);
        let sent = good
            .trace
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.what,
                    trace::What::Call {
                        cb: Callback::SendBuffers,
                        bytes: Some(b),
                        ..
                    } if b == bytes
                )
            })
            .count();
        assert_eq!(
            (sent, completed(&good)),
            (3, 3),
            "three pended sends of {bytes} bytes"
        );
        assert_eq!(oracle::check(&good.trace), vec![], "{bytes} bytes");
        assert_eq!(good.violations, vec![], "{bytes} bytes");
        let bad = async_sends(bytes, vec![PlatformFault::ClobberPendedPayload], 0);
        assert_eq!(completed(&bad), 3);
        let verdict = oracle::check(&bad.trace);
        assert_eq!(
            rules_of(&verdict),
            vec![id::DATA_6],
            "{bytes} bytes: {verdict:#?}"
        );
        assert_eq!(verdict.len(), 3, "one per send: {verdict:#?}");
        assert_eq!(bad.violations, vec![], "{bytes} bytes");
        let limited = async_sends(bytes, vec![PlatformFault::ClobberPendedPayload], 12);
        assert!(limited.trace.omitted.is_some());
        assert_eq!(oracle::check(&limited.trace), verdict, "{bytes} bytes");
    }
}

/// A and B exchange data; A gets an extra address and loses it again
/// (REMOVE_TRANSPORT_ID), then sends more.
fn remove_then_send(faults: Vec<PlatformFault>) -> Outcome {
    let cfg = Config {
        seed: 11,
        faults,
        ..Config::default()
    };
    let sim = Sim::new(cfg, &["A", "B"], ToyFactory::new(ToyOptions::default()));
    let at = Nanos::from_millis;
    for h in ["A", "B"] {
        sim.schedule(at(0), Action::StartProvider { host: h.into() });
        sim.schedule(
            at(10),
            Action::Listen {
                host: h.into(),
                on: true,
            },
        );
    }
    sim.schedule(
        at(500),
        Action::AddressAdd {
            host: "A".into(),
            family: Family::V4,
        },
    );
    sim.schedule(at(1_000), Action::AddressRemove { host: "A".into() });
    for k in 0..2 {
        sim.schedule(
            at(1_500 + k),
            Action::Send {
                from: "A".into(),
                to: "B".into(),
                family: Family::V4,
                bytes: 64,
                newest: false,
            },
        );
    }
    sim.run_until(at(3_000));
    sim.finish()
}

#[test]
fn tid_5_a_platform_sending_from_a_removed_id_is_caught() {
    let good = remove_then_send(vec![]);
    assert!(
        good.trace.events.iter().any(|e| matches!(
            e.what,
            trace::What::Call {
                cb: Callback::RemoveTransportId,
                ..
            }
        )),
        "the run removes an ID"
    );
    assert_eq!(oracle::check(&good.trace), vec![]);
    let bad = remove_then_send(vec![PlatformFault::KeepRemovedId]);
    let found = oracle::check(&bad.trace);
    assert!(rules_of(&found).contains(&id::TID_5), "{found:#?}");
}

/// 300 WCHARs: over the 256 limit.
const LONG: &str = concat!(
    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789"
);

#[test]
fn sess_6_platform_fault_wrong_user_context_is_caught() {
    let cfg = Config {
        seed: 3,
        faults: vec![PlatformFault::WrongUserContext],
        ..Config::default()
    };
    let sim = Sim::new(cfg, &["A"], Arc::new(RawProbeFactory { ta_result: 0 }));
    sim.schedule(Nanos::ZERO, Action::StartProvider { host: "A".into() });
    sim.run_until(Nanos::from_secs(1));
    let out = sim.finish();
    assert!(rules_of(&oracle::check(&out.trace)).contains(&id::SESS_6));
}

#[test]
fn comp_1_platform_fault_s_false_read_as_success_is_caught() {
    for (faults, expect) in [
        (vec![], false),
        (vec![PlatformFault::SFalseIsSuccess], true),
    ] {
        let cfg = Config {
            seed: 3,
            faults,
            ..Config::default()
        };
        let sim = Sim::new(
            cfg,
            &["A"],
            Arc::new(RawProbeFactory {
                ta_result: abi::S_FALSE,
            }),
        );
        start(&sim, &["A"], "A", 5);
        sim.run_until(Nanos::from_secs(1));
        let out = sim.finish();
        // The provider's S_FALSE is COMP-2 either way; COMP-1 only when the platform misreads it.
        assert!(rules_of(&out.violations).contains(&id::COMP_2));
        assert_eq!(
            rules_of(&oracle::check(&out.trace)).contains(&id::COMP_1),
            expect
        );
    }
}

fn out_dump(faults: &[PlatformFault], opts: ToyOptions, tasks: TaskTiming) -> String {
    standard(faults.to_vec(), opts, tasks).trace.to_json()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, .. ProptestConfig::default() })]

    /// REG-9: Register only reads the friendly name and the SDDL string.
    #[test]
    fn register_never_writes_the_callers_strings(name in "\\PC{0,300}", sddl in prop_oneof![Just(String::new()), Just("D:(A;;GA;;;SY)".to_string()), "\\PC{1,40}"]) {
        let sim = Sim::new(Config::with_seed(1), &["A"], Arc::new(RawProbeFactory { ta_result: 0 }));
        let cx = sim.cx("A");
        let mut name_w: Vec<u16> = name.encode_utf16().chain([0]).collect();
        let mut sddl_w: Vec<u16> = sddl.encode_utf16().chain([0]).collect();
        let (before_n, before_s) = (name_w.clone(), sddl_w.clone());
        cx.enter(|| {
            let mut h = abi::CPNATFWT_PROVIDER_INSTANCE::NULL;
            // SAFETY: the probe's static table, a dummy context, NUL-terminated strings.
            unsafe {
                assert_eq!(ffi::CPNatfwtCreateProviderInstance(&common::RAW_TABLE, 0x1000 as *mut _, &mut h), abi::S_OK);
                let sp = if sddl.is_empty() { std::ptr::null_mut() } else { sddl_w.as_mut_ptr() };
                ffi::CPNatfwtRegisterProviderInstance(h, name_w.as_mut_ptr(), std::ptr::null_mut(), 0, sp);
            }
        });
        prop_assert_eq!(name_w, before_n);
        prop_assert_eq!(sddl_w, before_s);
    }
}
