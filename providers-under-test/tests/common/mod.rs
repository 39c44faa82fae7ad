//! Stories for the provider tests: schedules of platform actions, run to
//! the end, with helpers to read the outcome.
#![allow(dead_code)]

use cpsim_sim::{Action, Config, Family, Nanos, NetFaults, Outcome, ProviderFactory, RuleId, Sim};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A schedule: (virtual milliseconds, action).
pub type Script = Vec<(u64, Action)>;

pub fn start(h: &str) -> Action {
    Action::StartProvider { host: h.into() }
}
pub fn stop(h: &str) -> Action {
    Action::StopProvider { host: h.into() }
}
pub fn listen(h: &str, on: bool) -> Action {
    Action::Listen { host: h.into(), on }
}

/// The opening of most scripts: every host's provider started at 0 ms and
/// listening from 10 ms.
pub fn all_listening(hosts: &[&str]) -> Script {
    let started = hosts.iter().map(|h| (0, start(h)));
    started
        .chain(hosts.iter().map(|h| (10, listen(h, true))))
        .collect()
}
pub fn send(from: &str, to: &str, family: Family, bytes: u32) -> Action {
    Action::Send {
        from: from.into(),
        to: to.into(),
        family,
        bytes,
        newest: false,
    }
}
pub fn v4(from: &str, to: &str) -> Action {
    send(from, to, Family::V4, 64)
}
pub fn v6(from: &str, to: &str) -> Action {
    send(from, to, Family::V6, 300)
}
pub fn dormant(h: &str) -> Action {
    Action::Dormant { host: h.into() }
}
pub fn shutdown(h: &str) -> Action {
    Action::Shutdown { host: h.into() }
}
/// Network faults with loss `p` (and some duplication and reordering).
pub fn lossy(p: f64) -> NetFaults {
    NetFaults {
        loss: p,
        duplicate: p / 2.0,
        reorder: p / 2.0,
        jitter_ms: 3,
        ..NetFaults::default()
    }
}
pub fn loss(p: f64) -> Action {
    Action::NetFaults { faults: lossy(p) }
}

/// Runs `script` on `hosts` until `until_ms`, then finishes the run.
pub fn run(
    factory: Arc<dyn ProviderFactory>,
    cfg: Config,
    hosts: &[&str],
    script: &Script,
    until_ms: u64,
) -> Outcome {
    let sim = Sim::new(cfg, hosts, factory);
    for (ms, a) in script {
        sim.schedule(Nanos::from_millis(*ms), a.clone());
    }
    sim.run_until(Nanos::from_millis(until_ms));
    sim.finish()
}

/// The rules an outcome broke, in catalogue order.
pub fn rules(out: &Outcome) -> BTreeSet<RuleId> {
    out.violations.iter().map(|v| v.rule).collect()
}

/// Every violation, one per line.
pub fn listing(out: &Outcome) -> String {
    out.violations
        .iter()
        .map(|v| format!("  {v}\n"))
        .collect::<String>()
}

/// Asserts that a run broke no rule, showing the violations otherwise.
#[track_caller]
pub fn assert_clean(what: &str, out: &Outcome) {
    assert!(
        out.violations.is_empty(),
        "{what}: {} violation(s):\n{}",
        out.violations.len(),
        listing(out)
    );
}

/// The ordinary story every broken provider is run on: two hosts, a send
/// before B listens, B listening, A sending both families, B going dormant
/// while A still has it reached, A going dormant, a duplicate address, and
/// finally a platform shutdown on A.
pub fn ordinary() -> Script {
    vec![
        (0, start("A")),
        (0, start("B")),
        (20, v4("A", "B")),
        (300, listen("B", true)),
        (400, v4("A", "B")),
        (401, v6("A", "B")),
        (402, send("A", "B", Family::V4, 1000)),
        (1500, v4("A", "B")),
        (1600, listen("B", false)),
        (1700, dormant("B")),
        (1800, v4("A", "B")),
        (2000, listen("B", true)),
        (2100, v6("A", "B")),
        (2500, dormant("A")),
        (2600, v4("A", "B")),
        (
            3000,
            Action::DuplicateAddress {
                host: "B".into(),
                of: "A".into(),
                family: Family::V4,
            },
        ),
        (3100, v4("A", "B")),
        // Late enough for a call pended at the start to time out first.
        (12_000, shutdown("A")),
    ]
}

/// How many datagrams of [`ordinary`] a correct provider delivers: all but
/// the one sent before B had an active instance and the one sent while B
/// was dormant.
pub const ORDINARY_DELIVERED: u32 = 7;
pub const ORDINARY_SENT: u32 = 9;
pub const ORDINARY_END_MS: u64 = 15_000;

/// A small deterministic generator for random schedules.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// An address family from a time already drawn: IPv6 one time in three.
fn family_of(at: u64) -> Family {
    if at.is_multiple_of(3) {
        Family::V6
    } else {
        Family::V4
    }
}

/// A random schedule over `hosts`: every kind of platform action, spread
/// over `span_ms`, starting with every provider.
pub fn random_script(seed: u64, hosts: &[&str], span_ms: u64, steps: usize) -> Script {
    let mut r = Lcg::new(seed);
    let mut s: Script = hosts.iter().map(|h| (0, start(h))).collect();
    for _ in 0..steps {
        let at = r.below(span_ms);
        let h = r.pick(hosts);
        let o = r.pick(hosts);
        let a = match r.below(20) {
            0..=5 => send(
                h,
                o,
                if r.below(2) == 0 {
                    Family::V4
                } else {
                    Family::V6
                },
                1 + r.below(1500) as u32,
            ),
            6..=8 => listen(h, r.below(3) != 0),
            9 => dormant(h),
            // The family from the time already drawn (no extra draw: the
            // rest of a seed's schedule stays as it was).
            10 => Action::AddressAdd {
                host: h.into(),
                family: family_of(at),
            },
            11 => Action::AddressRemove { host: h.into() },
            12 => Action::DuplicateAddress {
                host: h.into(),
                of: o.into(),
                family: family_of(at),
            },
            13 => shutdown(h),
            14 => stop(h),
            15 => start(h),
            16 => Action::Partition {
                a: h.into(),
                b: if r.below(3) == 0 {
                    cpsim_sim::INFRA.into()
                } else {
                    o.into()
                },
            },
            17 => Action::Heal,
            18 => loss([0.0, 0.05, 0.3][r.below(3) as usize]),
            _ => Action::Advance,
        };
        s.push((at, a));
    }
    s.sort_by_key(|(t, _)| *t);
    s
}
