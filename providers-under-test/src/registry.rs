//! Every provider of this crate by name: the correct ones first, then one
//! broken provider per provider-bound rule, in catalogue order, then the
//! real-time ones that leave threads running after their stop (LIFE-8,
//! caught only by counting the process's threads).

use crate::reference::{Bug, ReferenceFactory, Subtle};
use crate::sync_raw::{RawSubtle, SyncRawFactory};
use crate::threaded::{ThreadBug, ThreadedFactory};
pub use cpsim_certify::registry::{Entry, Kind, Registry};

fn broken(name: &str, bug: Bug) -> Entry {
    let rule = bug.rule().expect("a broken provider's bug names its rule");
    Entry::new(name, move || ReferenceFactory::with_bug(bug))
        .describe(bug.describe())
        .broken(rule)
}

macro_rules! broken {
    ($name:literal, $bug:ident) => {
        broken($name, Bug::$bug)
    };
}

/// Every provider: correct ones first, then broken ones in catalogue
/// order, then the subtle ones (each breaks its rule only under a rare
/// condition: `cpsim kill-matrix --subtle`).
pub fn registry() -> Registry {
    entries()
        .into_iter()
        .chain(subtle_entries())
        .fold(Registry::new(), |r, e| r.with(e))
}

/// The subtle single-bug providers: reference variants on the safe API and
/// sync-raw variants on the raw ABI.
pub fn subtle_entries() -> Vec<Entry> {
    let mut v: Vec<Entry> = Subtle::ALL
        .iter()
        .map(|&b| {
            let rule = b.rule().expect("a subtle variant names its rule");
            Entry::new(b.name(), move || ReferenceFactory::with_subtle(b))
                .describe(b.describe())
                .subtle(rule)
        })
        .collect();
    v.extend(RawSubtle::ALL.iter().map(|&b| {
        let rule = b.rule().expect("a subtle variant names its rule");
        Entry::new(b.name(), move || SyncRawFactory::with_subtle(b))
            .describe(b.describe())
            .subtle(rule)
    }));
    v
}

fn entries() -> Vec<Entry> {
    vec![
        Entry::new("reference", || ReferenceFactory::new()).describe(
            "overlay on the safe API: rendezvous on the infrastructure node, \
             peer-to-peer data with acknowledgements, retries and timeouts",
        ),
        Entry::new("sync-raw", || SyncRawFactory::new()).describe(
            "raw ABI, every call synchronous, in-process directory instead of a rendezvous",
        ),
        Entry::new("threaded", || ThreadedFactory::new())
            .describe(
                "black box: completes every call from its own worker thread \
                 (real-time clock only), in-process directory",
            )
            .real_time(),
        broken!("broken-life-1", Life1),
        broken!("broken-life-2", Life2),
        broken!("broken-life-4", Life4),
        broken!("broken-life-5", Life5),
        broken!("broken-life-6", Life6),
        broken!("broken-life-7", Life7),
        broken!("broken-life-8", Life8),
        broken!("broken-life-9", Life9),
        broken!("broken-reg-5", Reg5),
        broken!("broken-reg-7", Reg7),
        broken!("broken-reg-8", Reg8),
        broken!("broken-sess-7", Sess7),
        broken!("broken-state-6", State6),
        broken!("broken-comp-2", Comp2),
        broken!("broken-comp-3", Comp3),
        broken!("broken-comp-4", Comp4),
        broken!("broken-comp-5", Comp5),
        broken!("broken-comp-6", Comp6),
        broken!("broken-comp-7", Comp7),
        broken!("broken-time-1", Time1),
        broken!("broken-tid-2", Tid2),
        broken!("broken-tid-3", Tid3),
        broken!("broken-tid-4", Tid4),
        broken!("broken-tid-6", Tid6),
        broken!("broken-data-1", Data1),
        broken!("broken-data-2", Data2),
        broken!("broken-data-3", Data3),
        broken!("broken-data-5", Data5),
        broken!("broken-crash-1", Crash1),
    ]
    .into_iter()
    .chain(ThreadBug::ALL.iter().map(|&b| {
        Entry::new(b.name(), move || ThreadedFactory::with_bug(b))
            .describe(b.describe())
            .real_time()
            .broken(cpsim_sim::rules::id::LIFE_8)
    }))
    .collect()
}

/// The provider with this name.
pub fn find(name: &str) -> Option<Entry> {
    registry().find(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpsim_sim::ClockMode;

    #[test]
    fn names_match_bugs_and_factories() {
        for e in registry().entries() {
            assert_eq!(e.factory().name(), e.name());
            if let Kind::Subtle(r) = e.kind() {
                let prefix = format!("subtle-{}-", r.as_str().to_lowercase());
                assert!(e.name().starts_with(&prefix), "{}", e.name());
            }
            if let Kind::Broken(r) = e.kind() {
                let name = format!("broken-{}", r.as_str().to_lowercase());
                match e.clock() {
                    ClockMode::Virtual => assert_eq!(e.name(), name),
                    ClockMode::RealTime => assert!(e.name().starts_with(&name), "{}", e.name()),
                }
            }
        }
        assert!(find("reference").is_some());
        assert!(find("nope").is_none());
    }

    #[test]
    fn one_broken_provider_per_bug_in_catalogue_order() {
        // The reference's bugs, on the virtual clock; the real-time thread
        // leaks come after them.
        let broken: Vec<_> = registry()
            .entries()
            .iter()
            .filter(|e| e.clock() == ClockMode::Virtual)
            .filter_map(|e| match e.kind() {
                Kind::Broken(r) => Some(r),
                Kind::Correct | Kind::Subtle(_) => None,
            })
            .collect();
        let bugs: Vec<_> = Bug::ALL.iter().filter_map(|b| b.rule()).collect();
        assert_eq!(broken, bugs);
        assert!(broken.windows(2).all(|w| w[0] < w[1]), "catalogue order");
        let all = registry();
        let first_broken = all
            .entries()
            .iter()
            .position(|e| e.kind() != Kind::Correct)
            .expect("broken providers");
        assert!(all.entries()[first_broken..]
            .iter()
            .all(|e| e.kind() != Kind::Correct));
    }
}
