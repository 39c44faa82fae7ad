//! Every file under `scenarios/` loads, runs with its built-in provider and
//! meets its expectations; together the files cover the whole rule
//! catalogue (see the conventions in `scenarios/README.md`).

use cpsim_certify::scenario::{
    covered_rules, kept_rules, parse, to_pretty_json, ProviderRef, Scenario,
};
use cpsim_sim::rules::Binds;
use cpsim_sim::trace::What;
use cpsim_sim::{Callback, RuleId};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Every scenario file, sorted (`*.schema.json` is not one).
fn files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".schema.json")
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&scenarios_dir(), &mut out);
    out.sort();
    out
}

fn all() -> Vec<(PathBuf, Scenario)> {
    files()
        .into_iter()
        .map(|p| match cpsim_providers::registry().load(&p) {
            Ok(s) => (p, s),
            Err(e) => panic!("{e}"),
        })
        .collect()
}

fn provider(s: &Scenario) -> &str {
    match &s.provider {
        ProviderRef::Name(name) | ProviderRef::Builtin(name) => name,
        ProviderRef::Library(_) => panic!("{}: bundled scenarios name built-in providers", s.name),
    }
}

/// Every bundled file passes, and none has a step that does nothing when
/// it runs (`scenario::idle_notes`): each step of an example shows
/// something.
#[test]
fn every_scenario_file_passes() {
    let scenarios = all();
    assert!(
        scenarios.len() >= 60,
        "only {} scenario files",
        scenarios.len()
    );
    let mut failed = Vec::new();
    for (path, s) in &scenarios {
        let r = cpsim_providers::registry()
            .run(s)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for f in &r.failures {
            failed.push(format!("{}: {f}", path.display()));
        }
        for n in cpsim_certify::scenario::idle_notes(s, &r.outcome) {
            failed.push(format!("{}: {n}", path.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} failure(s):\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn every_rule_is_covered_by_some_scenario() {
    let scenarios = all();
    let mut covered: BTreeMap<RuleId, Vec<String>> = BTreeMap::new();
    for (path, s) in &scenarios {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for r in covered_rules(s) {
            covered.entry(r).or_default().push(name.clone());
        }
    }
    let mut missing = Vec::new();
    for r in RuleId::all() {
        // A provider rule counts only where a scenario expects it broken.
        let expected_broken = scenarios.iter().any(|(_, s)| {
            let e = &s.expect;
            e.violations.iter().flatten().any(|x| *x == r)
                || e.includes.iter().flatten().any(|x| *x == r)
                || e.first_violation.as_ref().is_some_and(|f| f.rule == r)
        });
        let ok = match r.rule().binds {
            Binds::Provider => expected_broken,
            Binds::Platform => covered.contains_key(&r),
        };
        if !ok {
            missing.push(r.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "rules no scenario covers: {}",
        missing.join(", ")
    );
}

#[test]
fn conventions_hold() {
    let mut names = BTreeSet::new();
    for (path, s) in all() {
        let where_ = path.display();
        assert!(
            names.insert(s.name.clone()),
            "{where_}: name `{}` is used twice",
            s.name
        );
        // "keeps ID" names a platform guarantee the run shows holding: the
        // scenario must say which violations it expects, and not that one.
        for r in kept_rules(&s) {
            assert_eq!(
                r.rule().binds,
                Binds::Platform,
                "{where_}: `keeps {r}` names a provider rule; provider rules are shown broken"
            );
            let exact = s.expect.violations.as_ref().unwrap_or_else(|| {
                panic!("{where_}: says `keeps {r}` but has no exact `violations` expectation")
            });
            assert!(
                !exact.contains(&r),
                "{where_}: keeps {r} but expects it violated"
            );
        }
        // A broken provider's scenario expects its rule.
        if let Some(id) = provider(&s).strip_prefix("broken-") {
            let wanted = RuleId::parse(id).unwrap_or_else(|| panic!("{where_}: no rule `{id}`"));
            let e = &s.expect;
            let named = e.violations.iter().flatten().any(|x| *x == wanted)
                || e.includes.iter().flatten().any(|x| *x == wanted);
            assert!(
                named,
                "{where_}: runs {} but does not expect {wanted}",
                provider(&s)
            );
        }
        // What the harness would save reads back the same.
        assert_eq!(parse(&to_pretty_json(&s), "saved").unwrap(), s, "{where_}");
    }
}

/// Some guarantees leave no mark an expectation can name; these checks make
/// sure the files that claim them still produce the situation.
#[test]
fn rule_scenarios_reach_their_situation() {
    let trace_of = |file: &str| {
        let s = cpsim_providers::registry()
            .load(&scenarios_dir().join("rules").join(file))
            .unwrap();
        cpsim_providers::registry().run(&s).unwrap().outcome.trace
    };
    let t = trace_of("comp-10.json");
    assert!(
        t.events
            .iter()
            .any(|e| matches!(e.what, What::Complete { early: true, .. })),
        "comp-10.json: no completion arrived before its callback returned"
    );
    let t = trace_of("comp-11.json");
    assert!(
        t.events
            .iter()
            .any(|e| matches!(e.what, What::Complete { ignored: true, .. })),
        "comp-11.json: no completion arrived after TERMINATE"
    );
    let t = trace_of("reg-6.json");
    assert!(
        t.events.iter().any(|e| matches!(
            e.what,
            What::Registered { luid, requested_luid, .. } if requested_luid != 0 && luid == requested_luid
        )),
        "reg-6.json: no registration asked for an earlier LUID"
    );
    let t = trace_of("reg-1.json");
    let defaults: BTreeSet<&str> = t
        .events
        .iter()
        .filter_map(|e| match &e.what {
            What::Registered {
                name,
                name_was_null: true,
                ..
            } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(defaults.len(), 3, "reg-1.json: {defaults:?}");
    for (file, cb) in [
        ("comp-8.json", Callback::ReachTransportId),
        ("data-6.json", Callback::SendBuffers),
    ] {
        let t = trace_of(file);
        // Pended: completed through the routine, not early, some time after the call.
        let pended = t
            .events
            .iter()
            .any(|e| matches!(e.what, What::Complete { cb: c, early: false, .. } if c == cb));
        assert!(pended, "{file}: no {cb} was pended");
    }
    let t = trace_of("state-3.json");
    let refused = t.events.iter().any(|e| {
        matches!(
            e.what,
            What::Function { f: cpsim_sim::trace::PlatformFn::CPNatfwtIndicateReceivedBuffers, hr, .. }
                if hr == cpsim_sim::abi::E_INVALID_STATE
        )
    });
    assert!(refused, "state-3.json: no indication was refused");
}
