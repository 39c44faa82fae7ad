//! A broken rule, located: which rule, where (host, instance, callback or
//! function), and when (step number and virtual time).

use crate::rules::{Binds, Level, RuleId};
use crate::time::Nanos;
use serde::{Deserialize, Serialize};

/// One detected violation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: RuleId,
    pub host: String,
    /// The instance, as `HOST#n` (n counts the host's Create calls from 1).
    pub instance: Option<String>,
    /// The callback or exported function the violation happened in.
    pub callback: Option<String>,
    /// The trace step at which it was detected.
    pub step: u64,
    pub at: Nanos,
    /// What exactly happened.
    pub message: String,
}

impl Violation {
    /// The one-line form used everywhere: `COMP-3 at step 41 (1.000001s) A#1 SEND_BUFFERS: …`.
    pub fn headline(&self) -> String {
        let mut s = format!("{} at step {} ({})", self.rule, self.step, self.at);
        match &self.instance {
            Some(i) => s.push_str(&format!(" {i}")),
            None => s.push_str(&format!(" host {}", self.host)),
        }
        if let Some(cb) = &self.callback {
            s.push_str(&format!(" {cb}"));
        }
        s.push_str(": ");
        s.push_str(&self.message);
        s
    }
    pub fn is_platform_bug(&self) -> bool {
        self.rule.rule().binds == Binds::Platform
    }
    pub fn level(&self) -> Level {
        self.rule.rule().level
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.headline())
    }
}
