//! Snapshots of the traces of fixed seeded runs: any change to what the
//! simulator does, or in which order, shows up here for review.

mod common;
use common::*;
use cpsim_sim::*;

/// Two toy hosts A and B, their providers started and B listening at 5 ms.
fn toy_world(seed: u64, opts: ToyOptions, tasks: TaskTiming) -> Sim {
    // The drain outlasts a stalled worker (the largest limit plus a second).
    let cfg = Config {
        seed,
        tasks,
        drain_ms: 40_000,
        ..Config::default()
    };
    let sim = Sim::new(cfg, &["A", "B"], ToyFactory::new(opts));
    start(&sim, &["A", "B"], "B", 5);
    sim
}

/// The toy's asynchronous mode: every callback pends.
fn asynchronous() -> ToyOptions {
    ToyOptions {
        asynchronous: true,
        ..ToyOptions::default()
    }
}

/// Completions that race the callback's return: half before it, some late.
fn racing() -> TaskTiming {
    TaskTiming {
        before_return: 0.5,
        late: 0.3,
        late_max_ms: 20,
        ..TaskTiming::default()
    }
}

/// An application on `from` sends `bytes` bytes to `to` at `ms`.
fn send(sim: &Sim, ms: u64, from: &str, to: &str, family: Family, bytes: u32) {
    sim.schedule(
        Nanos::from_millis(ms),
        Action::Send {
            from: from.into(),
            to: to.into(),
            family,
            bytes,
            newest: false,
        },
    );
}

fn story(seed: u64, opts: ToyOptions, tasks: TaskTiming) -> Trace {
    let sim = toy_world(seed, opts, tasks);
    let at = Nanos::from_millis;
    send(&sim, 20, "A", "B", Family::V4, 16);
    send(&sim, 30, "A", "B", Family::V6, 8);
    sim.schedule(at(100), Action::Dormant { host: "A".into() });
    sim.schedule(at(200), Action::Shutdown { host: "B".into() });
    sim.run_until(at(300));
    sim.finish().trace
}

#[test]
fn synchronous_toy_two_hosts() {
    insta::assert_json_snapshot!(story(1, ToyOptions::default(), TaskTiming::default()));
}

#[test]
fn asynchronous_toy_with_racing_completions() {
    insta::assert_json_snapshot!(story(2, asynchronous(), racing()));
}

#[test]
fn stalled_worker_times_out() {
    let tasks = TaskTiming {
        after_timeout: 1.0,
        ..TaskTiming::default()
    };
    insta::assert_json_snapshot!(story(3, asynchronous(), tasks));
}

#[test]
fn a_trace_round_trips_through_json() {
    let t = story(4, asynchronous(), TaskTiming::default());
    assert_eq!(Trace::from_json(&t.to_json()).unwrap(), t);
}

/// Both hosts listen and send to each other, several datagrams at one
/// instant on a route already reached: a listening sender's datagram goes
/// to SEND_BUFFERS from `app_send` itself, without the pump's waiting
/// list, and its trace is the one the pump gave (this snapshot was made
/// before that shortcut existed).
fn listening_story(seed: u64, opts: ToyOptions, tasks: TaskTiming) -> Trace {
    let sim = toy_world(seed, opts, tasks);
    let at = Nanos::from_millis;
    sim.schedule(
        at(5),
        Action::Listen {
            host: "A".into(),
            on: true,
        },
    );
    send(&sim, 20, "A", "B", Family::V4, 16);
    send(&sim, 25, "B", "A", Family::V4, 64);
    for bytes in [3, 40, 40] {
        send(&sim, 40, "A", "B", Family::V4, bytes);
    }
    send(&sim, 45, "A", "B", Family::V6, 8);
    send(&sim, 50, "B", "A", Family::V4, 64);
    send(&sim, 50, "A", "B", Family::V4, 64);
    sim.schedule(at(100), Action::Dormant { host: "A".into() });
    send(&sim, 150, "A", "B", Family::V4, 32);
    sim.run_until(at(300));
    sim.finish().trace
}

#[test]
fn listening_senders_datagrams_keep_the_pumps_trace() {
    insta::assert_json_snapshot!(listening_story(
        4,
        ToyOptions::default(),
        TaskTiming::default()
    ));
}

#[test]
fn listening_senders_datagrams_keep_the_pumps_trace_asynchronous() {
    insta::assert_json_snapshot!(listening_story(5, asynchronous(), racing()));
}
