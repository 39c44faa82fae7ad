//! What a failed certification says: the text `assert_pass` panics with.
//! Every command in it works from where the certification ran (see
//! `regressions.rs`): `cargo test` lines under cargo, `cpsim` lines from
//! the command line.

use crate::model::{Certification, Verdict};
use cpsim_sim::rules::Binds;

impl Certification {
    /// Whether this counts as passing: `pass`, or `non-strict` when not
    /// strict, of a run that finished (an interrupted run proves nothing
    /// about the cases that did not run).
    pub fn passed(&self) -> bool {
        let verdict =
            self.verdict == Verdict::Pass || (self.verdict == Verdict::NonStrict && !self.strict);
        verdict && self.incomplete.is_none()
    }

    /// Panics unless the verdict is `pass` (or `non-strict` when not strict),
    /// with the rule, its text and source, a sequence diagram of the minimal
    /// failing trace, and the commands that replay it and rerun the whole.
    ///
    /// A `non-strict` pass (only SHOULD rules broken) does not panic, but
    /// its findings are written to the process's standard error, past the
    /// test harness's output capture, so that `cargo test` shows them
    /// although the test passes.
    pub fn assert_pass(&self) {
        if !self.passed() {
            panic!("{}", self.failure_message());
        }
        if let Some(w) = self.warning_message() {
            use std::io::Write;
            // Not `eprint!`: libtest captures that for a passing test.
            let _ = std::io::stderr().lock().write_all(w.as_bytes());
        }
    }

    /// The text `assert_pass` panics with.
    pub fn failure_message(&self) -> String {
        let mut m = format!(
            "cpsim: provider `{}` {} certification ({})\n",
            self.provider,
            match self.verdict {
                Verdict::Fail => "FAILS",
                _ if self.incomplete.is_some() => "did not finish its",
                _ => "does not pass strict",
            },
            self.run_words(),
        );
        self.push_details(&mut m);
        m
    }

    /// For a run that passed only because it was not strict (SHOULD rules
    /// broken): the warnings `assert_pass` writes, with each finding as a
    /// failure would show it. `None` for any other result.
    pub fn warning_message(&self) -> Option<String> {
        if !self.passed() || self.verdict != Verdict::NonStrict {
            return None;
        }
        let rules: Vec<String> = self
            .findings
            .iter()
            .map(|f| f.violation.rule.as_str().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut m = format!(
            "cpsim: WARNING: provider `{}` passes certification ({}) with SHOULD rules broken: {}\n\
             A strict certification (`Config {{ strict: true, .. }}`, `cpsim certify --strict`) fails on them.\n",
            self.provider,
            self.run_words(),
            rules.join(", "),
        );
        self.push_details(&mut m);
        Some(m)
    }

    /// "seed S, N cases", "N saved cases replayed", or (every saved case
    /// unreadable) "no saved case could be replayed".
    fn run_words(&self) -> String {
        let plural = if self.cases == 1 { "" } else { "s" };
        if self.replay_only && self.cases == 0 {
            "no saved case could be replayed".to_string()
        } else if self.replay_only {
            format!("{} saved case{plural} replayed", self.cases)
        } else {
            format!("seed {}, {} case{plural}", self.seed, self.cases)
        }
    }

    /// Everything after the first line: why the run is incomplete, the
    /// saved failures replayed, stalls, rules never exercised, each finding
    /// with its diagram and replay command, and the rerun command.
    fn push_details(&self, m: &mut String) {
        if let Some(why) = &self.incomplete {
            m.push_str(&format!("\nINCOMPLETE run: {why}\n"));
        }
        if self.replay_only {
            m.push_str(
                "\nOnly saved failures were run: one of them still fails (or CPSIM_REPLAY named it), \
                 so no case was generated. Fix what they show; the next run replays them first again.\n",
            );
        }
        for r in &self.replayed {
            match (&r.error, r.violations.is_empty()) {
                (Some(e), _) => m.push_str(&format!(
                    "\nsaved failure {} cannot be replayed: {e}\n  (fix the file or delete it)\n",
                    r.file.display()
                )),
                (None, true) => m.push_str(&format!(
                    "\nsaved failure {}: fixed (no violation any more)\n",
                    r.file.display()
                )),
                (None, false) => {
                    let rules: Vec<&str> = r.violations.iter().map(|v| v.as_str()).collect();
                    m.push_str(&format!(
                        "\nsaved failure {}: still breaks {}\n",
                        r.file.display(),
                        rules.join(", ")
                    ));
                }
            }
        }
        if self.stalls > 0 {
            m.push_str(&format!(
                "\n{} case{} hit only the real-time watchdog and did not when rerun: a stall of this machine, not counted as findings (decision watchdog-stall)\n",
                self.stalls,
                if self.stalls == 1 { "" } else { "s" }
            ));
        }
        for r in &self.unexercised {
            m.push_str(&format!(
                "\n{r} was never exercised: no case met its precondition (give it more cases: CPSIM_CASES, or --cases)\n"
            ));
        }
        for f in &self.findings {
            let rule = f.violation.rule.rule();
            m.push_str(&format!(
                "\n{}\n  rule {} ({:?}, {}): {}\n  source: {}\n  fix: {}\n",
                f.violation.headline(),
                rule.id,
                rule.level,
                if rule.binds == Binds::Provider {
                    "provider"
                } else {
                    "platform"
                },
                rule.text,
                rule.source,
                rule.fix
            ));
            if let Some(mc) = &f.minimal {
                m.push_str(&crate::diagram::text_for(&mc.trace, &f.violation, 30));
                m.push_str(&format!("\n  replay: {}\n", mc.replay));
                if let Some(e) = &mc.save_error {
                    m.push_str(&format!("  note: the case was not saved: {e}\n"));
                }
                if !mc.recurred {
                    m.push_str("  note: it did not recur when rerun (timing-dependent); this is the case as first found\n");
                }
                if mc.deterministic == Some(false) {
                    m.push_str("  note: a rerun of the same case gave a different trace (flaky)\n");
                }
            }
        }
        if !self.rerun.is_empty() && !self.replay_only {
            m.push_str(&format!("\nrerun: {}\n", self.rerun));
        }
    }
}
