//! What a failed certification says: the text `assert_pass` panics with.

use crate::model::{Certification, Verdict};
use cpsim_sim::rules::Binds;

impl Certification {
    /// Panics unless the verdict is `pass` (or `non-strict` when not strict),
    /// with the rule, its text and source, a sequence diagram of the minimal
    /// failing trace, and the replay command.
    pub fn assert_pass(&self) {
        let passed =
            self.verdict == Verdict::Pass || (self.verdict == Verdict::NonStrict && !self.strict);
        // An interrupted run proves nothing about the cases that did not run.
        if passed && self.incomplete.is_none() {
            return;
        }
        panic!("{}", self.failure_message());
    }

    /// The text `assert_pass` panics with.
    pub fn failure_message(&self) -> String {
        let mut m = format!(
            "cpsim: provider `{}` {} certification (seed {}, {} cases)\n",
            self.provider,
            match self.verdict {
                Verdict::Fail => "FAILS",
                _ if self.incomplete.is_some() => "did not finish its",
                _ => "does not pass strict",
            },
            self.seed,
            self.cases
        );
        if let Some(why) = &self.incomplete {
            m.push_str(&format!("\nINCOMPLETE run: {why}\n"));
        }
        for r in &self.unexercised {
            m.push_str(&format!(
                "\n{r} was never exercised: no case met its precondition (raise --cases?)\n"
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
                if !mc.recurred {
                    m.push_str("  note: it did not recur when rerun (timing-dependent); this is the case as first found\n");
                }
                if mc.deterministic == Some(false) {
                    m.push_str("  note: a rerun of the same case gave a different trace (flaky)\n");
                }
            }
        }
        m
    }
}
