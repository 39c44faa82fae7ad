//! `Sim::schedule_repeated` is the same as scheduling each repetition on
//! its own, in order, at the moment it is called: the same trace, byte for
//! byte, whatever else is scheduled at the instants they share.

mod common;
use common::*;
use cpsim_sim::*;
use proptest::prelude::*;

fn other() -> impl Strategy<Value = (u64, Action)> {
    let h = prop::sample::select(vec![cpsim_sim::HostName::from("A"), "B".into()]);
    (
        0u64..120,
        prop_oneof![
            (h.clone(), any::<bool>()).prop_map(|(host, on)| Action::Listen { host, on }),
            h.clone().prop_map(|host| Action::Dormant { host }),
            (h.clone(), h.clone(), 0u32..200).prop_map(|(from, to, bytes)| Action::Send {
                from,
                to,
                family: Family::V4,
                bytes,
                newest: false,
            }),
            Just(Action::Advance),
        ],
    )
}

fn world(asynchronous: bool) -> Sim {
    let sim = Sim::new(
        Config::with_seed(4),
        &["A", "B"],
        ToyFactory::new(ToyOptions {
            asynchronous,
            ..ToyOptions::default()
        }),
    );
    for h in ["A", "B"] {
        sim.schedule(Nanos::ZERO, Action::StartProvider { host: h.into() });
    }
    sim
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn a_repeated_action_is_its_repetitions_scheduled_in_turn(
        asynchronous in any::<bool>(),
        others in prop::collection::vec(other(), 0..12),
        position in 0usize..12,
        at in 0u64..40,
        every in 0u64..6,
        count in 1u64..40,
        bytes in 0u32..100,
    ) {
        let send = Action::Send { from: "A".into(), to: "B".into(), family: Family::V4, bytes, newest: false };
        let position = position.min(others.len());
        let ms = Nanos::from_millis;
        let one_by_one = world(asynchronous);
        let repeated = world(asynchronous);
        for (k, (t, a)) in others.iter().enumerate() {
            if k == position {
                for i in 0..count {
                    one_by_one.schedule(ms(at + i * every), send.clone());
                }
                repeated.schedule_repeated(ms(at), ms(every), count, send.clone());
            }
            one_by_one.schedule(ms(*t), a.clone());
            repeated.schedule(ms(*t), a.clone());
        }
        if position == others.len() {
            for i in 0..count {
                one_by_one.schedule(ms(at + i * every), send.clone());
            }
            repeated.schedule_repeated(ms(at), ms(every), count, send.clone());
        }
        for sim in [&one_by_one, &repeated] {
            sim.run_until(ms(400));
        }
        let (a, b) = (one_by_one.finish(), repeated.finish());
        prop_assert_eq!(a.sent, b.sent);
        prop_assert_eq!(&a.violations, &b.violations);
        prop_assert!(a.trace == b.trace, "the traces differ");
    }
}
