//! What the module tests share: the two-host script both samples (real
//! time and virtual time) must carry without a violation.

use cpsim_sim::{Action, Family};

/// A 300-byte datagram from `from` to `to`.
pub fn send(from: &str, to: &str, family: Family) -> Action {
    Action::Send {
        from: from.into(),
        to: to.into(),
        family,
        bytes: 300,
        newest: false,
    }
}

/// Two hosts start, listen and exchange datagrams of both families, with a
/// dormancy, a communication error and a shutdown on the way; sorted by
/// time (ms).
pub fn two_host_script() -> Vec<(u64, Action)> {
    let mut script = vec![
        (0, Action::StartProvider { host: "A".into() }),
        (0, Action::StartProvider { host: "B".into() }),
        (
            20,
            Action::Listen {
                host: "B".into(),
                on: true,
            },
        ),
        (
            30,
            Action::Listen {
                host: "A".into(),
                on: true,
            },
        ),
        (60, send("A", "B", Family::V4)),
        (70, send("A", "B", Family::V6)),
        (300, Action::Dormant { host: "A".into() }),
        (400, send("A", "B", Family::V4)),
        (500, Action::CommunicationError { host: "B".into() }),
        (700, send("B", "A", Family::V4)),
        (800, Action::Shutdown { host: "A".into() }),
    ];
    for k in 0..10 {
        script.push((100 + k * 10, send("B", "A", Family::V4)));
    }
    script.sort_by_key(|(t, _)| *t);
    script
}
