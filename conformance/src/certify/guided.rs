//! Coverage-guided exploration: a lane's cases come partly fresh from the
//! state-aware generator (`strategy::generate`) and partly as mutations of
//! earlier cases of the same lane that reached a situation of the contract
//! no case before them had reached (the contract-state coverage map,
//! `statemap.rs`).
//!
//! A case kept in the corpus also keeps *marks* read off its trace: when a
//! call of each kind was pended on each host, and when an activation, a
//! dormancy, a session's end, a TERMINATE, an ESTABLISH, a provider start
//! or stop, a completion or a timeout happened. The simulator is
//! deterministic, so a child case that shares its parent's steps up to some
//! time replays the parent's run exactly up to then: a step inserted at a
//! mark lands *while* that call is still pended, or within a few
//! milliseconds *after* that activation, termination or restart. The
//! mutations: insert a step (or a whole move) at a mark, shift a step's
//! time (onto another step's instant, or by a few milliseconds), splice two
//! cases, repeat a run of steps later, drop a step, resize a datagram to an
//! edge size, reseed the run, change its task timing. Every child is a
//! plain scenario: seeded, replayable and shrinkable like any other case.
//!
//! Everything a source decides comes from its own dice (seeded from the
//! run's seed and its lane) and from what its own cases showed, so a lane's
//! stream of cases is a pure function of (seed, lane, provider, shape).

use super::statemap;
use super::strategy::{self, Dice, Move, Shape};
use crate::scenario::{Scenario, Step};
use cpsim_sim::abi::E_PENDING_IO;
use cpsim_sim::trace::{Activity, What};
use cpsim_sim::{Callback, Family, HostName, NetFaults, Trace};
use std::sync::Arc;

/// A moment of a kept case that later steps can be placed relative to.
#[derive(Clone, Debug)]
pub struct Mark {
    /// Earliest and latest step time (ms) that lands in the window.
    pub from_ms: u64,
    pub to_ms: u64,
    /// The host it happened on (shared by the marks of that host).
    pub host: Arc<str>,
}

/// A case that reached something new, and its marks.
#[derive(Clone, Debug)]
struct Kept {
    case: Scenario,
    marks: Vec<Mark>,
    /// How many times it was picked as a parent.
    picked: u32,
}

impl Kept {
    /// About how many bytes the entry holds: its steps (each with its
    /// strings' blocks) and marks. An estimate, the same for the same case.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Kept>()
            + self.case.steps.len() * (std::mem::size_of::<Step>() + 64)
            + self.marks.len() * std::mem::size_of::<Mark>()
    }
}

/// How a guided lane mixes fresh cases and mutations.
#[derive(Clone, Debug)]
pub struct GuidedConfig {
    /// The first cases of a lane are all fresh (they seed the corpus).
    pub warm_up: u64,
    /// After that, the share of fresh cases.
    pub fresh: f64,
    /// At most this many kept cases per lane.
    pub corpus_max: usize,
    /// And at most about this many bytes of them per lane (see
    /// `Kept::bytes`): a long run's 16 lanes keep at most 16 times this,
    /// whatever the size of its cases.
    pub corpus_bytes_max: usize,
}

impl Default for GuidedConfig {
    fn default() -> Self {
        GuidedConfig {
            warm_up: 16,
            fresh: 0.35,
            corpus_max: 1024,
            corpus_bytes_max: 2 << 20,
        }
    }
}

/// The coverage-guided source of one lane.
pub struct GuidedSource {
    dice: Dice,
    provider: String,
    shape: Shape,
    cfg: GuidedConfig,
    seen: statemap::KeySet,
    corpus: Vec<Kept>,
    /// The sum of the corpus's `Kept::bytes`.
    corpus_bytes: usize,
    made: u64,
}

/// Window after a cue (ms) in which a step counts as "just after" it.
const AFTER_MS: u64 = 5;

impl GuidedSource {
    /// The source of lane `lane` of the run seeded `seed`.
    pub fn new(seed: u64, lane: u32, provider: &str, shape: Shape) -> GuidedSource {
        let mut dice = Dice::new(seed ^ (u64::from(lane) + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        // Decorrelate neighbouring seeds and lanes.
        dice.next_u64();
        GuidedSource {
            dice,
            provider: provider.to_string(),
            shape,
            cfg: GuidedConfig::default(),
            seen: statemap::KeySet::default(),
            corpus: Vec::new(),
            corpus_bytes: 0,
            made: 0,
        }
    }

    /// With another mix of fresh cases and mutations.
    pub fn with_config(mut self, cfg: GuidedConfig) -> GuidedSource {
        self.cfg = cfg;
        self
    }

    /// The coverage keys this lane has reached so far.
    pub fn coverage(&self) -> &statemap::KeySet {
        &self.seen
    }

    /// How many cases the corpus holds.
    pub fn corpus_len(&self) -> usize {
        self.corpus.len()
    }

    /// About how many bytes the corpus holds (its entries' estimates,
    /// bounded by `GuidedConfig::corpus_bytes_max`).
    pub fn corpus_bytes(&self) -> usize {
        self.corpus_bytes
    }

    /// The lane's next case.
    pub fn next_case(&mut self) -> Scenario {
        self.made += 1;
        let fresh = self.corpus.is_empty()
            || self.made <= self.cfg.warm_up
            || self.dice.chance(self.cfg.fresh);
        if fresh {
            let seed = self.dice.next_u64();
            return strategy::generate(&self.provider, &self.shape, seed);
        }
        let parent = self.pick();
        let mut child = self.corpus[parent].case.clone();
        // Lent out while the child is mutated (mutations read other
        // entries' cases, never their marks), rather than copied.
        let marks = std::mem::take(&mut self.corpus[parent].marks);
        let rounds = 1 + usize::from(self.dice.chance(0.5)) + usize::from(self.dice.chance(0.25));
        for _ in 0..rounds {
            self.mutate(&mut child, &marks);
        }
        self.corpus[parent].marks = marks;
        self.tidy(&mut child);
        child
    }

    /// What the last case showed: keep it if it reached a new situation.
    /// `keys` are the trace's ([`statemap::keys`]).
    pub fn observe(&mut self, case: &Scenario, trace: &Trace, keys: &[statemap::Key]) {
        if self.reached_new(keys) {
            self.keep(case.clone(), trace);
        }
    }

    /// [`observe`](Self::observe), keeping the case itself (no copy).
    pub fn observe_owned(&mut self, case: Scenario, trace: &Trace, keys: &[statemap::Key]) {
        if self.reached_new(keys) {
            self.keep(case, trace);
        }
    }

    /// Adds `keys` to the lane's; whether any was new.
    fn reached_new(&mut self, keys: &[statemap::Key]) -> bool {
        let mut new = false;
        for &k in keys {
            new |= self.seen.insert(k);
        }
        new
    }

    /// Keeps a case that reached something new, with its marks.
    fn keep(&mut self, case: Scenario, trace: &Trace) {
        let kept = Kept {
            case,
            marks: marks(trace),
            picked: 0,
        };
        self.corpus_bytes += kept.bytes();
        let mut new = if self.corpus.len() >= self.cfg.corpus_max {
            // Replace the most picked entry (it has had its chances).
            let worst = self.most_picked(usize::MAX);
            self.corpus_bytes -= self.corpus[worst].bytes();
            self.corpus[worst] = kept;
            worst
        } else {
            self.corpus.push(kept);
            self.corpus.len() - 1
        };
        // Over the byte budget: the most picked others go too.
        while self.corpus_bytes > self.cfg.corpus_bytes_max && self.corpus.len() > 1 {
            let worst = self.most_picked(new);
            self.corpus_bytes -= self.corpus.remove(worst).bytes();
            if worst < new {
                new -= 1;
            }
        }
    }

    /// The most picked entry but `except`, the earliest on a tie.
    fn most_picked(&self, except: usize) -> usize {
        (0..self.corpus.len())
            .filter(|&i| i != except)
            .max_by_key(|&i| (self.corpus[i].picked, std::cmp::Reverse(i)))
            .unwrap_or(0)
    }

    /// A parent: recent entries and rarely picked ones are favoured.
    fn pick(&mut self) -> usize {
        let n = self.corpus.len();
        let i = if self.dice.chance(0.4) {
            n - 1 - self.dice.below(n.min(16))
        } else {
            // The least picked of two random entries.
            let (a, b) = (self.dice.below(n), self.dice.below(n));
            if self.corpus[a].picked <= self.corpus[b].picked {
                a
            } else {
                b
            }
        };
        self.corpus[i].picked += 1;
        i
    }

    fn mutate(&mut self, s: &mut Scenario, marks: &[Mark]) {
        let d = &mut self.dice;
        match d.weighted(&[8, 3, 3, 2, 2, 1, 2, 1, 1, 2]) {
            0 if !marks.is_empty() => {
                // A step while a call is pended, or just after a cue.
                let m = d.pick(marks).clone();
                let at = d.range(m.from_ms, m.to_ms);
                let steps = step_on(d, &s.hosts, &m.host, at, &s.platform.net);
                s.steps.extend(steps);
            }
            0 | 1 => {
                // A whole move at a mark, or anywhere.
                let at = if !marks.is_empty() && d.chance(0.7) {
                    let m = d.pick(marks);
                    d.range(m.from_ms, m.to_ms)
                } else {
                    d.range(1, self.shape.horizon_ms.max(2))
                };
                let m = strategy::any_move(d);
                let steps = strategy::move_steps(d, &s.hosts, m, at, &s.platform.net);
                s.steps.extend(steps);
            }
            2 => {
                // Shift a step: onto another step's instant, a few ms, or far.
                if let Some(i) = movable(d, s) {
                    let t = s.steps[i].at_ms();
                    let new = match d.weighted(&[3, 3, 2]) {
                        0 => s.steps[d.below(s.steps.len())].at_ms(),
                        1 => shift(t, d.range(0, 5), d.chance(0.5)),
                        _ => shift(t, d.range(5, 2_000), d.chance(0.5)),
                    };
                    set_at(&mut s.steps[i], new);
                }
            }
            3 if self.corpus.len() > 1 => {
                // Splice: this case up to T, another from T on.
                let other = &self.corpus[d.below(self.corpus.len())].case;
                if other.hosts == s.hosts {
                    let cut = d.range(1, self.shape.horizon_ms.max(2));
                    s.steps.retain(|st| st.at_ms() < cut);
                    s.steps
                        .extend(other.steps.iter().filter(|st| st.at_ms() >= cut).cloned());
                }
            }
            3 | 4 => {
                // Repeat a run of steps later (another cycle of the same).
                let n = s.steps.len();
                if n > 0 {
                    let i = d.below(n);
                    let j = (i + d.range(1, 4) as usize).min(n);
                    let seg: Vec<Step> = s.steps[i..j]
                        .iter()
                        .filter(|st| !matches!(st, Step::StartProvider { at_ms: 0, .. }))
                        .cloned()
                        .collect();
                    let span = seg.iter().map(Step::at_ms).max().unwrap_or(0)
                        - seg.iter().map(Step::at_ms).min().unwrap_or(0);
                    let delta = span + d.range(0, 300);
                    for _ in 0..d.range(1, 3) {
                        for st in &seg {
                            let mut c = st.clone();
                            set_at(&mut c, st.at_ms() + delta);
                            s.steps.push(c);
                        }
                    }
                }
            }
            5 => {
                if let Some(i) = movable(d, s) {
                    s.steps.remove(i);
                }
            }
            6 => {
                // A datagram of an edge size.
                let sends: Vec<usize> = (0..s.steps.len())
                    .filter(|&i| matches!(s.steps[i], Step::Send { .. }))
                    .collect();
                if !sends.is_empty() {
                    let i = *d.pick(&sends);
                    if let Step::Send { bytes, .. } = &mut s.steps[i] {
                        *bytes = strategy::edge_size(d);
                    }
                }
            }
            7 => s.platform.seed = d.next_u64(),
            8 => s.platform.tasks = strategy::timing_of(d),
            _ => {
                // Duplicate a step at the same instant (a burst).
                if let Some(i) = movable(d, s) {
                    let c = s.steps[i].clone();
                    s.steps.insert(i + 1, c);
                }
            }
        }
    }

    /// Keeps a child within the shape: steps in time order, not too many.
    fn tidy(&mut self, s: &mut Scenario) {
        s.steps.sort_by_key(Step::at_ms);
        let starts = s
            .steps
            .iter()
            .filter(|st| matches!(st, Step::StartProvider { at_ms: 0, .. }))
            .count();
        let max = starts + self.shape.max_steps.max(1) * 2;
        if s.steps.len() > max {
            // Drop random non-start steps.
            while s.steps.len() > max {
                match movable(&mut self.dice, s) {
                    Some(i) => {
                        s.steps.remove(i);
                    }
                    None => break,
                }
            }
        }
        s.name = format!("generated case (seed {:#x}, mutated)", s.platform.seed);
    }
}

/// A step that may be moved or removed (not one of the providers' starts
/// at time 0).
fn movable(d: &mut Dice, s: &Scenario) -> Option<usize> {
    let v: Vec<usize> = (0..s.steps.len())
        .filter(|&i| !matches!(s.steps[i], Step::StartProvider { at_ms: 0, .. }))
        .collect();
    (!v.is_empty()).then(|| *d.pick(&v))
}

fn shift(t: u64, by: u64, later: bool) -> u64 {
    if later {
        t.saturating_add(by)
    } else {
        t.saturating_sub(by).max(1)
    }
}

fn set_at(s: &mut Step, t: u64) {
    *s.at_ms_mut() = t.min(crate::scenario::MAX_STEP_MS);
}

/// One platform-side step on (or towards) host `h` at `at`: what a real
/// platform, its applications or its network could do at any moment.
fn step_on(d: &mut Dice, hosts: &[HostName], h: &str, at: u64, net: &NetFaults) -> Vec<Step> {
    let host = HostName::from(h);
    let others: Vec<&HostName> = hosts.iter().filter(|x| *x != h).collect();
    let other = if others.is_empty() {
        host.clone()
    } else {
        (*d.pick(&others)).clone()
    };
    let family = if d.chance(0.7) {
        Family::V4
    } else {
        Family::V6
    };
    let bytes = strategy::edge_size(d);
    match d.weighted(&[4, 3, 3, 2, 2, 2, 2, 2, 1, 1, 2, 3]) {
        0 => vec![Step::Send {
            at_ms: at,
            from: host,
            to: other,
            family,
            bytes,
            newest: false,
        }],
        1 => vec![Step::Send {
            at_ms: at,
            from: other,
            to: host,
            family,
            bytes,
            newest: false,
        }],
        2 => vec![Step::Dormant { at_ms: at, host }],
        3 => {
            let back = at + d.range(0, 30);
            vec![
                Step::StopProvider {
                    at_ms: at,
                    host: host.clone(),
                },
                Step::StartProvider {
                    at_ms: back,
                    host: host.clone(),
                },
                Step::Send {
                    at_ms: back + d.range(0, 5),
                    from: host,
                    to: other,
                    family,
                    bytes,
                    newest: false,
                },
            ]
        }
        4 => vec![Step::StopProvider { at_ms: at, host }],
        5 => vec![Step::CommunicationError { at_ms: at, host }],
        6 => vec![Step::Shutdown { at_ms: at, host }],
        7 => vec![Step::Listen {
            at_ms: at,
            host,
            on: d.chance(0.6),
        }],
        8 => vec![if d.chance(0.5) {
            Step::AddressAdd {
                at_ms: at,
                host,
                family: if d.chance(0.5) {
                    Family::V4
                } else {
                    Family::V6
                },
            }
        } else {
            Step::AddressRemove { at_ms: at, host }
        }],
        9 => vec![Step::TaskTiming {
            at_ms: at,
            timing: strategy::timing_of(d),
        }],
        10 => {
            // The host loses its infrastructure, or the network loses
            // packets, for about a retry or longer than any retry budget.
            let until = at + *d.pick(&[50, 600, 2_500, 5_000, 9_000]) + d.range(0, 500);
            if d.chance(0.5) {
                vec![
                    Step::Partition {
                        at_ms: at,
                        a: host,
                        b: cpsim_sim::INFRA.into(),
                    },
                    Step::Heal { at_ms: until },
                ]
            } else {
                strategy::move_steps(d, hosts, Move::LossBurst, at, net)
            }
        }
        _ => {
            // The other end changes state meanwhile: the peer of a pended
            // SEND or REACH, or the sender of data on its way here.
            strategy::transition_steps(d, hosts, &other, &host, at, net)
        }
    }
}

fn ms_floor(t: cpsim_sim::Nanos) -> u64 {
    t.0 / 1_000_000
}

/// The marks of a trace: pended windows and the moments just after cues.
pub fn marks(trace: &Trace) -> Vec<Mark> {
    let mut out = Vec::new();
    let names: Vec<Arc<str>> = trace.hosts.iter().map(|h| Arc::from(h.as_str())).collect();
    let name = |h: u8| {
        names
            .get(h as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    };
    // Pended calls: ((host, call), when it returned ERROR_IO_PENDING), one
    // entry per call; a few at a time.
    let mut pended: Vec<((u8, u32), u64)> = Vec::new();
    for e in &trace.events {
        let ms = ms_floor(e.at);
        let after = |out: &mut Vec<Mark>| {
            // From the cue's own millisecond (the same instant, when the
            // cue came from a step) to a few after it.
            out.push(Mark {
                from_ms: ms,
                to_ms: ms + AFTER_MS,
                host: name(e.host),
            })
        };
        match &e.what {
            What::Return {
                call, hr: Some(hr), ..
            } if *hr == E_PENDING_IO => {
                match pended.iter_mut().find(|(k, _)| *k == (e.host, *call)) {
                    Some(p) => p.1 = e.at.0,
                    None => pended.push(((e.host, *call), e.at.0)),
                }
            }
            What::Complete { call, .. }
            | What::Timeout { call, .. }
            | What::Outcome { call, .. } => {
                let at = pended.iter().position(|(k, _)| *k == (e.host, *call));
                if let Some((_, t0)) = at.map(|k| pended.swap_remove(k)) {
                    // Whole milliseconds strictly inside the window.
                    let from = t0 / 1_000_000 + 1;
                    let to = e.at.0.saturating_sub(1) / 1_000_000;
                    if from <= to {
                        out.push(Mark {
                            from_ms: from,
                            to_ms: to,
                            host: name(e.host),
                        });
                    }
                }
                if matches!(e.what, What::Complete { .. } | What::Timeout { .. }) {
                    after(&mut out);
                }
            }
            What::Return {
                cb: Callback::EstablishSessionIndication | Callback::TerminateSessionIndication,
                ..
            } => after(&mut out),
            What::State {
                to: Activity::Active,
            }
            | What::State {
                to: Activity::Dormant,
            } => after(&mut out),
            What::SessionEnded { .. }
            | What::ProviderStart
            | What::ProviderStop
            | What::CommunicationError
            | What::Shutdown => after(&mut out),
            _ => {}
        }
    }
    // Calls still pended at the end of the run: pended until the stop (by
    // host, then call).
    pended.sort_unstable_by_key(|(k, _)| *k);
    for ((h, _), t0) in pended {
        let from = t0 / 1_000_000 + 1;
        out.push(Mark {
            from_ms: from,
            to_ms: from + 50,
            host: name(h),
        });
    }
    out
}

impl GuidedSource {
    /// The guided source as a [`super::SourceMaker`]: what certification
    /// uses unless told otherwise.
    pub fn maker() -> super::SourceMaker {
        std::sync::Arc::new(|spec: &super::LaneSpec| {
            Box::new(GuidedSource::new(
                spec.seed,
                spec.lane,
                &spec.provider,
                spec.shape.clone(),
            )) as Box<dyn super::CaseSource>
        })
    }
}

impl super::CaseSource for GuidedSource {
    fn next_case(&mut self) -> Option<Scenario> {
        Some(GuidedSource::next_case(self))
    }
    fn observe(&mut self, case: &Scenario, summary: &super::CaseSummary<'_>) {
        GuidedSource::observe(self, case, summary.trace, summary.keys)
    }
    fn observe_owned(&mut self, case: Scenario, summary: &super::CaseSummary<'_>) {
        GuidedSource::observe_owned(self, case, summary.trace, summary.keys)
    }
}
