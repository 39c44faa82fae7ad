//! DATA-5, end-to-end delivery and integrity: each way a receiving provider
//! can get application datagrams wrong is caught, with the message that
//! names what happened, and the loss check excuses what it should.

mod common;
use common::*;
use cpsim_sim::rules::id;
use cpsim_sim::*;

fn send(from: &str, to: &str, bytes: u32) -> Action {
    Action::Send {
        from: from.into(),
        to: to.into(),
        family: Family::V4,
        bytes,
        newest: false,
    }
}

/// A and B run a toy that mishandles what it receives as `mangle` says; B
/// listens; `script` runs on top.
fn run(mangle: Mangle, with_routine: bool, script: &[(u64, Action)]) -> Outcome {
    let sim = Sim::new(
        Config::with_seed(5),
        &["A", "B"],
        ToyFactory::new(ToyOptions {
            instances: 1,
            indicate_with_routine: with_routine,
            mangle,
            ..ToyOptions::default()
        }),
    );
    start(&sim, &["A", "B"], "B", 10);
    for (ms, a) in script {
        sim.schedule(at(*ms), a.clone());
    }
    sim.run_until(at(5_000));
    sim.finish()
}

/// The DATA-5 messages of an outcome.
fn data5(out: &Outcome) -> Vec<String> {
    out.violations
        .iter()
        .filter(|v| v.rule == id::DATA_5)
        .map(|v| v.message.clone())
        .collect()
}

/// Every other rule an outcome broke (there should be none).
fn others(out: &Outcome) -> Vec<String> {
    out.violations
        .iter()
        .filter(|v| v.rule != id::DATA_5)
        .map(|v| v.headline())
        .collect()
}

fn three_sends() -> Vec<(u64, Action)> {
    vec![
        (100, send("A", "B", 64)),
        (101, send("A", "B", 300)),
        (102, send("A", "B", 1400)),
    ]
}

#[test]
fn a_correct_receiver_raises_nothing() {
    for with_routine in [false, true] {
        let out = run(Mangle::None, with_routine, &three_sends());
        assert_eq!((out.sent, out.delivered), (3, 3));
        assert!(out.violations.is_empty(), "{:#?}", out.violations);
    }
}

#[test]
fn a_datagram_indicated_twice_is_named() {
    for with_routine in [false, true] {
        let out = run(Mangle::Twice, with_routine, &three_sends());
        assert_eq!(out.delivered, 3);
        let msgs = data5(&out);
        assert_eq!(msgs.len(), 3, "{msgs:#?}");
        for (d, bytes) in [(0, 64), (1, 300), (2, 1400)] {
            let want = format!(
                "datagram {d} ({bytes} bytes, 25.1.1.1 -> 25.2.1.1) was indicated a second time"
            );
            assert!(msgs.contains(&want), "{want} not in {msgs:#?}");
        }
        assert!(others(&out).is_empty(), "{:#?}", others(&out));
    }
}

#[test]
fn a_datagram_indicated_on_the_wrong_pair_is_named() {
    let out = run(Mangle::Misroute, false, &three_sends());
    assert_eq!(out.delivered, 0);
    let msgs = data5(&out);
    for d in 0..3 {
        let want =
            format!("datagram {d} (25.1.1.1 -> 25.2.1.1) was indicated as 25.2.1.1 -> 25.2.1.1");
        assert!(msgs.contains(&want), "{want} not in {msgs:#?}");
    }
    // Nothing arrived as sent, on a network that dropped nothing.
    let lost = msgs.iter().filter(|m| m.contains("never arrived")).count();
    assert_eq!((msgs.len(), lost), (6, 3), "{msgs:#?}");
}

#[test]
fn corrupted_bytes_match_nothing() {
    let out = run(Mangle::Corrupt, true, &three_sends());
    let msgs = data5(&out);
    for bytes in [64, 300, 1400] {
        let want = format!("{bytes} bytes from 25.1.1.1 to 25.2.1.1 match nothing any application sent (corrupted or made up)");
        assert!(msgs.contains(&want), "{want} not in {msgs:#?}");
    }
    assert!(others(&out).is_empty(), "{:#?}", others(&out));
}

#[test]
fn a_swallowed_datagram_is_a_loss() {
    let out = run(Mangle::Swallow, false, &three_sends());
    let msgs = data5(&out);
    assert_eq!(
        msgs,
        (0..3)
            .zip([64, 300, 1400])
            .map(|(d, bytes)| format!("datagram {d} ({bytes} bytes, 25.1.1.1 -> 25.2.1.1) was sent with S_OK but never arrived, on a network that dropped nothing"))
            .collect::<Vec<_>>()
    );
    assert!(others(&out).is_empty(), "{:#?}", others(&out));
}

#[test]
fn a_loss_is_excused_by_a_later_disruption() {
    // A's session goes dormant after the sends: A was disrupted.
    let mut script = three_sends();
    script.push((200, Action::Dormant { host: "A".into() }));
    let out = run(Mangle::Swallow, false, &script);
    assert!(data5(&out).is_empty(), "{:#?}", data5(&out));
    // The same for a network that drops a packet after they were sent.
    let mut script = three_sends();
    script.push((
        200,
        Action::NetFaults {
            faults: NetFaults {
                loss: 1.0,
                ..NetFaults::default()
            },
        },
    ));
    script.push((300, send("A", "B", 10)));
    let out = run(Mangle::Swallow, false, &script);
    assert!(data5(&out).is_empty(), "{:#?}", data5(&out));
}

#[test]
fn identical_datagrams_are_judged_from_the_earliest() {
    // Empty datagrams cannot be told apart: the second one's loss is judged
    // from the first one's sending time, before A's disruption, so neither
    // is reported. A datagram with its own bytes sent after the disruption
    // is reported.
    let script = vec![
        (100, send("A", "B", 0)),
        (200, Action::Dormant { host: "A".into() }),
        (300, send("A", "B", 0)),
        (301, send("A", "B", 64)),
    ];
    let out = run(Mangle::Swallow, false, &script);
    assert_eq!(
        data5(&out),
        vec!["datagram 2 (64 bytes, 25.1.1.1 -> 25.2.1.1) was sent with S_OK but never arrived, on a network that dropped nothing".to_string()],
    );
}

/// An arrival credited to an identical datagram whose SEND then failed
/// accounts for one lost identical datagram (decision `data-5-content`);
/// with no SEND failed, identical empty datagrams swallowed are each still
/// a loss.
#[test]
fn data_5_identical_datagrams_swallowed_with_no_send_failed_are_each_a_loss() {
    let script = vec![
        (100, send("A", "B", 0)),
        (101, send("A", "B", 0)),
        (102, send("A", "B", 0)),
    ];
    let out = run(Mangle::Swallow, false, &script);
    assert_eq!(
        data5(&out),
        (0..3)
            .map(|d| format!("datagram {d} (0 bytes, 25.1.1.1 -> 25.2.1.1) was sent with S_OK but never arrived, on a network that dropped nothing"))
            .collect::<Vec<_>>()
    );
}

/// A and B run a toy that indicates every copy it receives (no
/// de-duplication) and, with `reuse`, gets its interface back by LUID after
/// a restart. The network duplicates every packet, the second copy 400 ms
/// late; A sends B one datagram at 1,000 ms; with `restart` B's provider
/// is stopped and started again at 1,100 ms, between the two copies.
fn late_copy_around(restart: bool) -> Outcome {
    let sim = Sim::new(
        Config::with_seed(5),
        &["A", "B"],
        ToyFactory::new(ToyOptions {
            instances: 1,
            reuse_interface: true,
            ..ToyOptions::default()
        }),
    );
    start(&sim, &["A", "B"], "B", 10);
    sim.schedule(
        at(500),
        Action::NetFaults {
            faults: NetFaults {
                duplicate: 1.0,
                duplicate_lag_ms: 400,
                ..NetFaults::default()
            },
        },
    );
    sim.schedule(at(1_000), send("A", "B", 64));
    if restart {
        sim.schedule(at(1_100), Action::StopProvider { host: "B".into() });
        sim.schedule(at(1_100), Action::StartProvider { host: "B".into() });
        sim.schedule(
            at(1_100),
            Action::Listen {
                host: "B".into(),
                on: true,
            },
        );
    }
    sim.run_until(at(5_000));
    sim.finish()
}

#[test]
fn data_5_a_copy_indicated_again_after_the_receivers_restart_is_not_judged() {
    // Without a restart, the toy indicates the late copy: a duplicate.
    let kept = late_copy_around(false);
    let msgs = data5(&kept);
    assert!(
        msgs.iter().any(|m| m.contains("indicated a second time")),
        "{msgs:#?}"
    );
    // With a restart between the copies, the provider that indicated the
    // first is gone; the new one, on the same interface, cannot tell the
    // late copy from new data (decision `duplicate-across-restart`).
    let restarted = late_copy_around(true);
    assert_eq!(data5(&restarted), Vec::<String>::new());
    assert_eq!(others(&restarted), Vec::<String>::new());
    assert!(
        restarted.trace.events.iter().any(|e| matches!(
            &e.what,
            cpsim_sim::trace::What::Note { text } if text.contains("indicated again after B's provider restarted")
        )),
        "the second copy reached the new provider: {}",
        restarted.trace.events.len()
    );
}

fn address_add(host: &str) -> Action {
    Action::AddressAdd {
        host: host.into(),
        family: Family::V4,
    }
}

fn address_remove(host: &str) -> Action {
    Action::AddressRemove { host: host.into() }
}

fn lost(ds: &[(u32, u32)], from: &str, to: &str) -> Vec<String> {
    ds.iter()
        .map(|(d, bytes)| format!("datagram {d} ({bytes} bytes, {from} -> {to}) was sent with S_OK but never arrived, on a network that dropped nothing"))
        .collect()
}

#[test]
fn data_5_a_loss_after_the_remove_of_another_id_is_not_excused() {
    // Each host gets an extra address before the sends, and loses it after
    // them. Neither the datagrams' source (A's first address) nor their
    // destination (B's first address) was removed, and no instance went
    // quiet: a provider that drops what it holds whenever any address of
    // its host goes away is not excused (decision `quiet-when-asked`).
    for host in ["A", "B"] {
        let mut script = vec![(50, address_add(host))];
        script.extend(three_sends());
        script.push((200, address_remove(host)));
        let out = run(Mangle::Swallow, false, &script);
        assert_eq!(
            data5(&out),
            lost(&[(0, 64), (1, 300), (2, 1400)], "25.1.1.1", "25.2.1.1"),
            "an extra address of {host} removed"
        );
        assert!(others(&out).is_empty(), "{:#?}", others(&out));
    }
}

#[test]
fn data_5_a_loss_after_the_remove_of_its_own_id_or_its_instances_dormancy_is_excused() {
    // To B's extra address, which B is then asked to remove: the
    // destination ID itself went away, so its loss is excused.
    let newest = |bytes| Action::Send {
        from: "A".into(),
        to: "B".into(),
        family: Family::V4,
        bytes,
        newest: true,
    };
    let script = vec![
        (50, address_add("B")),
        (100, newest(64)),
        (101, newest(300)),
        (200, address_remove("B")),
    ];
    let out = run(Mangle::Swallow, false, &script);
    assert_eq!(out.sent, 2);
    assert!(data5(&out).is_empty(), "{:#?}", data5(&out));
    // The sending instance goes dormant after the sends: that excuses the
    // loss (B, where an application listens, is not sent dormant).
    let mut script = three_sends();
    script.push((200, Action::Dormant { host: "A".into() }));
    let out = run(Mangle::Swallow, false, &script);
    assert!(data5(&out).is_empty(), "{:#?}", data5(&out));
}
