//! Every provider of this crate by name: the correct ones first, then one
//! broken provider per provider-bound rule, in catalogue order.

use crate::reference::{Bug, ReferenceFactory};
use crate::sync_raw::SyncRawFactory;
use crate::threaded::ThreadedFactory;
use sim_cp::{ClockMode, ProviderFactory, RuleId};
use std::sync::Arc;

/// Whether a provider is meant to pass, or to break one rule.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Kind {
    Correct,
    Broken(RuleId),
}

/// One provider of the registry.
#[derive(Clone)]
pub struct Entry {
    pub name: &'static str,
    pub description: &'static str,
    pub kind: Kind,
    /// The clock it must run with (black-box providers need real time).
    pub clock: ClockMode,
    factory: fn() -> Arc<dyn ProviderFactory>,
}

impl Entry {
    /// A fresh factory. One factory serves one simulated world at a time;
    /// take a new one for each concurrent run.
    pub fn factory(&self) -> Arc<dyn ProviderFactory> {
        (self.factory)()
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("clock", &self.clock)
            .finish()
    }
}

macro_rules! broken {
    ($name:literal, $bug:ident) => {
        Entry {
            name: $name,
            description: Bug::$bug.describe(),
            kind: Kind::Broken(match Bug::$bug.rule() {
                Some(r) => r,
                None => unreachable!(),
            }),
            clock: ClockMode::Virtual,
            factory: || ReferenceFactory::with_bug(Bug::$bug),
        }
    };
}

/// Every provider, correct ones first, then broken ones in catalogue order.
pub fn registry() -> Vec<Entry> {
    vec![
        Entry {
            name: "reference",
            description: "overlay on the safe API: rendezvous on the infrastructure node, \
                          peer-to-peer data with acknowledgements, retries and timeouts",
            kind: Kind::Correct,
            clock: ClockMode::Virtual,
            factory: || ReferenceFactory::new(),
        },
        Entry {
            name: "sync-raw",
            description:
                "raw ABI, every call synchronous, in-process directory instead of a rendezvous",
            kind: Kind::Correct,
            clock: ClockMode::Virtual,
            factory: || SyncRawFactory::new(),
        },
        Entry {
            name: "threaded",
            description: "black box: completes every call from its own worker thread \
                          (real-time clock only), in-process directory",
            kind: Kind::Correct,
            clock: ClockMode::RealTime,
            factory: || ThreadedFactory::new(),
        },
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
}

/// The provider with this name.
pub fn find(name: &str) -> Option<Entry> {
    registry().into_iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_bugs_and_factories() {
        for e in registry() {
            assert_eq!(e.factory().name(), e.name);
            if let Kind::Broken(r) = e.kind {
                assert_eq!(e.name, format!("broken-{}", r.as_str().to_lowercase()));
            }
        }
        assert!(find("reference").is_some());
        assert!(find("nope").is_none());
    }

    #[test]
    fn one_broken_provider_per_bug_in_catalogue_order() {
        let broken: Vec<_> = registry()
            .into_iter()
            .filter_map(|e| match e.kind {
                Kind::Broken(r) => Some(r),
                Kind::Correct => None,
            })
            .collect();
        let bugs: Vec<_> = Bug::ALL.iter().filter_map(|b| b.rule()).collect();
        assert_eq!(broken, bugs);
        assert!(broken.windows(2).all(|w| w[0] < w[1]), "catalogue order");
        let first_broken = registry()
            .iter()
            .position(|e| e.kind != Kind::Correct)
            .expect("broken providers");
        assert!(registry()[first_broken..]
            .iter()
            .all(|e| e.kind != Kind::Correct));
    }
}
