//! An address that goes away and comes back (`Action::AddressReturn`, in
//! decision `address-families`): the same transport ID is added again, and
//! every check that knows the ID was removed must take it as the
//! instance's again once its new ADD is made. Each test here fails if the
//! engine kept treating the returned ID as removed (or as still held by
//! the instance that had it before).

mod common;
use common::*;
use cpsim_sim::rules::id;
use cpsim_sim::trace::{PlatformFn, What};
use cpsim_sim::transport_id::Tid;
use cpsim_sim::*;

/// B's first extra address (host 2, interface 1, the second IPv4 ID).
fn x() -> Tid {
    Tid::v4(2, 1, 2)
}

/// A and B run the toy with `opts`, B listening, and B is given an extra
/// IPv4 address (X) at 100 ms.
fn toy_with_x(seed: u64, opts: ToyOptions) -> Sim {
    let sim = Sim::new(Config::with_seed(seed), &["A", "B"], ToyFactory::new(opts));
    start(&sim, &["A", "B"], "B", 0);
    sim.schedule(
        at(100),
        b(|host| Action::AddressAdd {
            host,
            family: Family::V4,
        }),
    );
    sim
}

/// A and B run the toy; B listens and gets an extra address X at 100 ms,
/// which A sends to at 1 s; X is removed at 2 s, A is sent dormant (so it
/// must REACH again), X comes back at 3 s and A sends to it at 5 s.
fn away_and_back(opts: ToyOptions) -> Outcome {
    let sim = toy_with_x(11, opts);
    sim.schedule(at(1_000), a_sends_b(true));
    sim.schedule(at(2_000), b(|host| Action::AddressRemove { host }));
    sim.schedule(at(2_500), Action::Dormant { host: "A".into() });
    sim.schedule(at(3_000), b(|host| Action::AddressReturn { host }));
    sim.schedule(at(5_000), a_sends_b(true));
    sim.run_until(at(8_000));
    sim.finish()
}

/// Where in the trace X came back (the second notification adding it).
fn returned_at(out: &Outcome) -> usize {
    out.trace
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.what, What::Address { tid, added: true } if tid == x()))
        .map(|(k, _)| k)
        .nth(1)
        .expect("X is added twice")
}

/// Indications with local ID X accepted after X came back.
fn indicated_to_x_after_return(out: &Outcome) -> usize {
    let to_x = format!("-> {}", x());
    out.trace.events[returned_at(out)..]
        .iter()
        .filter(|e| match &e.what {
            What::Function {
                f: PlatformFn::CPNatfwtIndicateReceivedBuffers,
                hr: 0,
                detail: Some(d),
            } => d.ends_with(&to_x),
            _ => false,
        })
        .count()
}

#[test]
fn tid_2_indications_with_a_returned_id_are_accepted_again() {
    for asynchronous in [false, true] {
        let out = away_and_back(ToyOptions {
            asynchronous,
            ..ToyOptions::default()
        });
        assert_eq!(
            rules(&out),
            vec![],
            "async {asynchronous}: {:#?}",
            out.violations
        );
        assert_eq!((out.sent, out.delivered), (2, 2), "async {asynchronous}");
        assert_eq!(indicated_to_x_after_return(&out), 1, "async {asynchronous}");
    }
}

#[test]
fn tid_6_a_reach_that_succeeds_towards_a_returned_id_is_not_unowned() {
    let out = away_and_back(ToyOptions::default());
    let reached: Vec<u32> = out.trace.events[returned_at(&out)..]
        .iter()
        .filter_map(|e| match e.what {
            What::Call {
                cb: Callback::ReachTransportId,
                call,
                tid: Some(t),
                ..
            } if t == x() => Some(call),
            _ => None,
        })
        .collect();
    assert!(!reached.is_empty(), "A reaches X again after it came back");
    let ok = out.trace.events.iter().any(|e| {
        matches!(e.what, What::Outcome { cb: Callback::ReachTransportId, call, ok: true } if reached.contains(&call))
    });
    assert!(ok, "the REACH of X succeeded");
    assert!(!rules(&out).contains(&id::TID_6), "{:#?}", out.violations);
}

#[test]
fn state_6_a_returned_id_its_holder_does_not_publish_again_is_caught() {
    let out = away_and_back(ToyOptions {
        tombstone: Tombstone::Unpublished,
        ..ToyOptions::default()
    });
    let state_6: Vec<&Violation> = out
        .violations
        .iter()
        .filter(|v| v.rule == id::STATE_6)
        .collect();
    assert!(
        state_6
            .iter()
            .any(|v| v.headline().contains(&x().to_string())),
        "{:#?}",
        out.violations
    );
    // The first send, before X went away, was carried.
    assert_eq!((out.sent, out.delivered), (2, 1));
}

#[test]
fn data_5_data_dropped_for_a_returned_id_is_not_excused_by_its_removal() {
    let out = away_and_back(ToyOptions {
        tombstone: Tombstone::Swallow,
        ..ToyOptions::default()
    });
    assert_eq!(rules(&out), vec![id::DATA_5], "{:#?}", out.violations);
    let to_x = format!("-> {})", x());
    assert!(
        out.violations[0].headline().contains(&to_x),
        "{:#?}",
        out.violations
    );
    assert_eq!((out.sent, out.delivered), (2, 1));
}

#[test]
fn tid_2_an_id_returned_before_its_remove_is_called_is_added_again_after_it() {
    // The return comes at the very instant of the removal: the REMOVE is
    // issued but not yet called. X is added again once it has finished.
    for asynchronous in [false, true] {
        let sim = toy_with_x(
            12,
            ToyOptions {
                asynchronous,
                ..ToyOptions::default()
            },
        );
        sim.schedule(at(2_000), b(|host| Action::AddressRemove { host }));
        sim.schedule(at(2_000), b(|host| Action::AddressReturn { host }));
        sim.schedule(at(4_000), a_sends_b(true));
        sim.run_until(at(7_000));
        let out = sim.finish();
        let calls: Vec<Callback> = out
            .trace
            .events
            .iter()
            .filter_map(|e| match e.what {
                What::Call {
                    cb: cb @ (Callback::AddTransportId | Callback::RemoveTransportId),
                    tid: Some(t),
                    ..
                } if t == x() => Some(cb),
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            vec![
                Callback::AddTransportId,
                Callback::RemoveTransportId,
                Callback::AddTransportId
            ],
            "async {asynchronous}"
        );
        assert_eq!(
            rules(&out),
            vec![],
            "async {asynchronous}: {:#?}",
            out.violations
        );
        assert_eq!((out.sent, out.delivered), (1, 1), "async {asynchronous}");
        assert_eq!(indicated_to_x_after_return(&out), 1, "async {asynchronous}");
    }
}

#[test]
fn tid_4_an_id_returned_to_a_restarted_provider_is_no_duplicate_of_its_old_instance() {
    // The interface keeps what was removed from it across a restart of the
    // provider (decision `address-families`): the new instance gets X back.
    let sim = toy_with_x(
        13,
        ToyOptions {
            reuse_interface: true,
            ..ToyOptions::default()
        },
    );
    sim.schedule(at(1_000), b(|host| Action::AddressRemove { host }));
    sim.schedule(at(1_500), b(|host| Action::StopProvider { host }));
    sim.schedule(at(1_600), b(|host| Action::StartProvider { host }));
    sim.schedule(at(1_700), b(|host| Action::Listen { host, on: true }));
    sim.schedule(at(2_000), b(|host| Action::AddressReturn { host }));
    sim.schedule(at(4_000), a_sends_b(true));
    sim.run_until(at(7_000));
    let out = sim.finish();
    assert_eq!(rules(&out), vec![], "{:#?}", out.violations);
    assert_eq!((out.sent, out.delivered), (1, 1));
    assert_eq!(indicated_to_x_after_return(&out), 1);
}

#[test]
fn address_returns_give_back_the_removed_addresses_last_removed_first() {
    let sim = Sim::new(
        Config::with_seed(14),
        &["A", "B"],
        ToyFactory::new(ToyOptions::default()),
    );
    start(&sim, &["A", "B"], "B", 0);
    for (ms, family) in [(100, Family::V4), (110, Family::V6)] {
        sim.schedule(
            at(ms),
            Action::AddressAdd {
                host: "B".into(),
                family,
            },
        );
    }
    for ms in [200, 210] {
        sim.schedule(at(ms), b(|host| Action::AddressRemove { host }));
    }
    for ms in [300, 310, 320] {
        sim.schedule(at(ms), b(|host| Action::AddressReturn { host }));
    }
    sim.run_until(at(1_000));
    let out = sim.finish();
    let changes: Vec<(Tid, bool)> = out
        .trace
        .events
        .iter()
        .filter_map(|e| match e.what {
            What::Address { tid, added } => Some((tid, added)),
            _ => None,
        })
        .collect();
    let (v4, v6) = (Tid::v4(2, 1, 2), Tid::v6(2, 1, 3));
    assert_eq!(
        changes,
        vec![
            (v4, true),
            (v6, true),
            (v6, false),
            (v4, false),
            (v4, true),
            (v6, true)
        ]
    );
    // The third return finds nothing left to give back.
    assert_eq!(out.idle.len(), 1, "{:?}", out.idle);
    assert_eq!(
        out.idle[0].why,
        "B's interface has no removed address to give back"
    );
    assert_eq!(rules(&out), vec![], "{:#?}", out.violations);
}

/// B gets X, loses it and gets it back; both hosts listen, and B sends A
/// one datagram after X came back. The trace.
fn b_sends_after_return() -> Trace {
    let sim = toy_with_x(15, ToyOptions::default());
    sim.schedule(
        at(0),
        Action::Listen {
            host: "A".into(),
            on: true,
        },
    );
    sim.schedule(at(1_000), b(|host| Action::AddressRemove { host }));
    sim.schedule(at(2_000), b(|host| Action::AddressReturn { host }));
    sim.schedule(
        at(4_000),
        Action::Send {
            from: "B".into(),
            to: "A".into(),
            family: Family::V4,
            bytes: 64,
            newest: false,
        },
    );
    sim.run_until(at(6_000));
    let out = sim.finish();
    assert_eq!(rules(&out), vec![], "{:#?}", out.violations);
    out.trace
}

/// `trace` with its SEND_BUFFERS made from `local` instead.
fn sent_from(mut trace: Trace, local: Tid) -> Trace {
    let mut sends = 0;
    for e in &mut trace.events {
        if let What::Call {
            cb: Callback::SendBuffers,
            tid,
            ..
        } = &mut e.what
        {
            *tid = Some(local);
            sends += 1;
        }
    }
    assert_eq!(sends, 1);
    trace
}

#[test]
fn tid_5_the_checker_takes_a_send_from_a_returned_id() {
    // The platform sends from the first ID it holds, so the trace is
    // edited: the same SEND made from X, which B holds again. The
    // platform checker must not take X for removed (TID-5).
    let trace = b_sends_after_return();
    assert_eq!(oracle::check(&trace), vec![]);
    assert_eq!(oracle::check(&sent_from(trace.clone(), x())), vec![]);
    // The edit is seen: from an ID B never had (A's), it is TID-7.
    let found = oracle::check(&sent_from(trace, Tid::v4(1, 1, 1)));
    let rules: Vec<RuleId> = found.iter().map(|v| v.rule).collect();
    assert_eq!(rules, vec![id::TID_7], "{found:#?}");
}
