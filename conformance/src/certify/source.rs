//! Where a lane's cases come from: the [`CaseSource`] trait, and the plain
//! source (cases drawn from the proptest strategy of `strategy.rs`).
//!
//! A certification runs [`LANES`](super::LANES) lanes; each lane owns one
//! source, made from a [`LaneSpec`] by a [`SourceMaker`]. A source is a
//! deterministic stream: its next case may depend only on its seed and on
//! what it was told about its own earlier cases (through
//! [`CaseSource::observe`]), never on other lanes or on thread timing, so
//! that a seed names a run whatever the thread count or the sharding.

use super::strategy::{self, Shape};
use crate::scenario::Scenario;
use cpsim_sim::{RuleId, Trace};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};
use std::sync::Arc;

/// What a lane's source is made from.
#[derive(Clone, Debug)]
pub struct LaneSpec {
    /// The run's seed.
    pub seed: u64,
    /// This lane's number, `0..LANES`.
    pub lane: u32,
    /// How many cases this lane will be asked for (its share of the budget).
    pub cases: u64,
    /// The provider's name (generated scenarios name it).
    pub provider: String,
    /// The shape of generated cases (already suited to the subject's clock).
    pub shape: Shape,
}

impl LaneSpec {
    /// A random number generator for this lane, a pure function of the
    /// run's seed and the lane number.
    pub fn rng(&self) -> TestRng {
        lane_rng(self.seed, self.lane)
    }
}

/// What a case showed when it ran: what a source may learn from it.
pub struct CaseSummary<'a> {
    /// The case's global index (`round * LANES + lane`).
    pub index: u64,
    /// The rules whose precondition the case met.
    pub exercised: &'a [RuleId],
    /// The fingerprints of its violations (see [`super::fingerprint`]), in
    /// trace order, one entry per violation.
    pub fingerprints: &'a [String],
    /// Its whole trace (dropped as soon as every observer has seen it).
    pub trace: &'a Trace,
    /// The contract-state coverage keys the trace reached
    /// ([`statemap::keys`](super::statemap::keys) of `trace`: sorted, no
    /// repeats), computed once for every observer.
    pub keys: &'a [super::statemap::Key],
}

/// A deterministic stream of cases for one lane.
pub trait CaseSource: Send {
    /// The next case, or `None` when the source has nothing more to offer
    /// (the lane then ends early; the budget is an upper bound).
    fn next_case(&mut self) -> Option<Scenario>;
    /// What the case last returned by [`CaseSource::next_case`] showed.
    /// Called once per case, in order, before the next `next_case`,
    /// through [`observe_owned`](Self::observe_owned) (so a source that
    /// overrides that one is not called here by certification).
    fn observe(&mut self, case: &Scenario, summary: &CaseSummary<'_>);
    /// [`observe`](Self::observe), handed the case itself (certification
    /// has no more use for it): a source that keeps cases keeps this one
    /// without copying it. By default, `observe`.
    fn observe_owned(&mut self, case: Scenario, summary: &CaseSummary<'_>) {
        self.observe(&case, summary)
    }
}

/// Makes each lane's source.
pub type SourceMaker = Arc<dyn Fn(&LaneSpec) -> Box<dyn CaseSource> + Send + Sync>;

/// The plain source: independent cases drawn from the proptest strategy
/// ([`strategy::case`]) with the lane's generator. It learns nothing.
pub struct PlainSource {
    runner: TestRunner,
    provider: String,
    shape: Shape,
}

impl PlainSource {
    pub fn new(spec: &LaneSpec) -> PlainSource {
        PlainSource {
            runner: TestRunner::new_with_rng(
                PtConfig {
                    failure_persistence: None,
                    ..PtConfig::default()
                },
                spec.rng(),
            ),
            provider: spec.provider.clone(),
            shape: spec.shape.clone(),
        }
    }

    /// The plain source as a [`SourceMaker`].
    pub fn maker() -> SourceMaker {
        Arc::new(|spec: &LaneSpec| Box::new(PlainSource::new(spec)) as Box<dyn CaseSource>)
    }
}

impl CaseSource for PlainSource {
    fn next_case(&mut self) -> Option<Scenario> {
        // The strategy is not `Send` (proptest boxes large unions), so it
        // is made for each case; the value tree is dropped at once, since
        // shrinking works on scenarios.
        let tree = strategy::case(self.provider.clone(), self.shape.clone())
            .new_tree(&mut self.runner)
            .expect("the case strategy never rejects");
        Some(tree.current())
    }

    fn observe(&mut self, _case: &Scenario, _summary: &CaseSummary<'_>) {}
}

/// The generator of lane `lane` of the run seeded `seed`.
pub fn lane_rng(seed: u64, lane: u32) -> TestRng {
    // splitmix64 of (seed, lane): neighbouring seeds and lanes get unrelated keys.
    let mut x = seed ^ (u64::from(lane) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&next().to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_cases_are_scenarios_the_loader_accepts() {
        for seed in 0..8 {
            for lane in 0..super::super::LANES {
                let spec = LaneSpec {
                    seed,
                    lane,
                    cases: 40,
                    provider: "p".into(),
                    shape: Shape::default(),
                };
                let mut src = PlainSource::new(&spec);
                for _ in 0..40 {
                    let s = src.next_case().unwrap();
                    assert!(
                        super::super::shrink::loads_back(&s),
                        "seed {seed} lane {lane}: {}",
                        crate::scenario::to_pretty_json(&s)
                    );
                }
            }
        }
    }

    #[test]
    fn lanes_are_different_streams_and_each_is_a_function_of_seed_and_lane() {
        let first = |seed, lane| {
            let spec = LaneSpec {
                seed,
                lane,
                cases: 1,
                provider: "p".into(),
                shape: Shape::default(),
            };
            PlainSource::new(&spec).next_case().unwrap()
        };
        assert_eq!(first(5, 3), first(5, 3));
        assert_ne!(first(5, 3), first(5, 4));
        assert_ne!(first(5, 3), first(6, 3));
    }
}
