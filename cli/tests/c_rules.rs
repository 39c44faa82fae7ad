//! The C modules with one bug each, one named test per module and rule, so
//! that `cargo test comp_4` runs COMP-4's C modules with the rule's other
//! tests: every broken module of `MODULES` is caught with its rule (the
//! crashing and hanging ones have isolation tests of their own in
//! `c_providers.rs`), and every subtle module breaks its rule first in its
//! directed scenario (which `sample_vt` passes) and is found within the
//! default budget on seed 1.

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
}

#[cfg(target_os = "linux")]
mod linux {
    use cpsim::isolate::{self, Library};
    use cpsim_c_providers::{module, subtle_scenario, Expect, MODULES, SUBTLE};
    use cpsim_certify::certify::{certify_subject, CaseSource, Config, LaneSpec, PlainSource};
    use cpsim_certify::scenario::{self, ProviderRef};
    use cpsim_certify::Verdict;
    use cpsim_sim::rules::id;
    use cpsim_sim::{ClockMode, RuleId};
    use libtest_mimic::{Arguments, Failed, Trial};
    use std::path::PathBuf;
    use std::sync::Arc;

    pub fn main() {
        isolate::set_runner(Some(PathBuf::from(env!("CARGO_BIN_EXE_cpsim"))));
        cpsim_sim::runtime::quiet_provider_panics();
        let mut trials = Vec::new();
        for &(name, expect) in MODULES {
            let Expect::Breaks(rule) = expect else {
                continue;
            };
            if rule == id::CRASH_1 || rule == id::TIME_1 {
                continue;
            }
            trials.push(Trial::test(
                format!("{}_c_module_{name}_is_caught", snake(rule)),
                move || caught(name, rule),
            ));
        }
        for &(name, rule) in SUBTLE {
            trials.push(Trial::test(
                format!(
                    "{}_c_module_{name}_breaks_its_directed_scenario_and_sample_vt_does_not",
                    snake(rule)
                ),
                move || directed(name, rule),
            ));
            trials.push(Trial::test(
                format!(
                    "{}_c_module_{name}_is_found_within_the_default_budget",
                    snake(rule)
                ),
                move || found_within_budget(name, rule),
            ));
        }
        libtest_mimic::run(&Arguments::from_args(), trials).exit();
    }

    /// `COMP-4` → `comp_4`.
    fn snake(rule: RuleId) -> String {
        rule.as_str().to_lowercase().replace('-', "_")
    }

    fn open(name: &str) -> Result<Arc<Library>, Failed> {
        let path = module(name).ok_or_else(|| format!("module {name} is not built"))?;
        Library::open(&path, serde_json::Value::Null).map_err(|e| format!("{name}: {e}").into())
    }

    /// Six plain cases at seed 2 catch the module with its rule.
    fn caught(name: &str, rule: RuleId) -> Result<(), Failed> {
        let l = open(name)?;
        let c = certify_subject(
            &l.subject(),
            Config {
                cases: 6,
                seed: Some(2),
                regressions: None,
                shape: l.shape(),
                threads: l.workers(6),
                shrink_steps: 0,
                source: Some(Arc::new(|spec: &LaneSpec| {
                    Box::new(PlainSource::new(spec)) as Box<dyn CaseSource>
                })),
                ..Config::default()
            },
        );
        let found: Vec<RuleId> = c.findings.iter().map(|f| f.violation.rule).collect();
        if c.verdict != Verdict::Fail || !found.contains(&rule) {
            return Err(format!("{name}: {rule} not caught; found {found:?}").into());
        }
        Ok(())
    }

    /// The module's rule is the first (root-cause) violation of its directed
    /// scenario, and every violation is of that rule or, for the COMP-4
    /// module, a consequence of the REACH it never completes (TIME-1 at its
    /// limit, LIFE-8 when the provider stops with it open); `sample_vt`
    /// passes the same steps.
    fn directed(name: &str, rule: RuleId) -> Result<(), Failed> {
        let path = subtle_scenario(name);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{e}"))?;
        let mut s = scenario::parse(&text, &path.to_string_lossy()).map_err(|e| format!("{e}"))?;
        s.provider = ProviderRef::Library(module(name).ok_or("not built")?);
        let run = isolate::run_library(&s)?;
        let v = &run.outcome.violations;
        if v.first().map(|v| v.rule) != Some(rule) {
            return Err(format!("{name}: first violation is not {rule}: {v:?}").into());
        }
        let allowed: &[RuleId] = if rule == id::COMP_4 {
            &[id::COMP_4, id::TIME_1, id::LIFE_8]
        } else {
            &[rule]
        };
        if let Some(x) = v.iter().find(|x| !allowed.contains(&x.rule)) {
            return Err(format!("{name}: unexpected {}: {v:?}", x.rule).into());
        }
        s.provider = ProviderRef::Library(module("sample_vt").ok_or("not built")?);
        let run = isolate::run_library(&s)?;
        if !run.outcome.violations.is_empty() {
            return Err(
                format!("sample_vt on {name}'s steps: {:?}", run.outcome.violations).into(),
            );
        }
        Ok(())
    }

    /// The default certification of a virtual-time module (the built-in
    /// providers' 8,192 guided cases, decision `vt-module-budget`) finds the
    /// bug on seed 1.
    fn found_within_budget(name: &str, rule: RuleId) -> Result<(), Failed> {
        let l = open(name)?;
        if l.clock() != ClockMode::Virtual {
            return Err(format!("{name} does not run on virtual time").into());
        }
        let maker = cpsim_certify::certify::guided::GuidedSource::maker();
        let first = cpsim_certify::certify::first_detection(
            &l.subject(),
            rule,
            1,
            cpsim_certify::certify::DEFAULT_CASES,
            &maker,
        );
        match first {
            Some(_) => Ok(()),
            None => Err(format!("{name}: {rule} not found in the default budget").into()),
        }
    }
}
