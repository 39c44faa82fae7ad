//! `cpsim rules` and `cpsim explain`: the catalogue, read from `cpsim_sim::rules`.

use crate::{BAD_INPUT, PASS};
use cpsim_sim::rules::{Binds, Level, CATALOGUE, DECISIONS};
use cpsim_sim::RuleId;

fn binds(b: Binds) -> &'static str {
    match b {
        Binds::Provider => "P",
        Binds::Platform => "C",
    }
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
        Level::Guarantee => "-",
    }
}

pub fn list(json: bool) -> i32 {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(CATALOGUE).expect("the catalogue serialises")
        );
        return PASS;
    }
    println!(
        "{:<8} {:<2} {:<6} {:<28} TEXT",
        "ID", "B", "LEVEL", "SOURCE"
    );
    for r in CATALOGUE {
        println!(
            "{:<8} {:<2} {:<6} {:<28} {}",
            r.id,
            binds(r.binds),
            level(r.level),
            r.source,
            r.text
        );
    }
    println!("\nDecisions (where the lost documentation would have settled it):");
    for d in DECISIONS {
        println!("  {:<28} {}  [{}]", d.name, d.text, d.place);
    }
    PASS
}

pub fn explain(registry: &cpsim_certify::Registry, id: &str) -> i32 {
    let Some(r) = RuleId::parse(id) else {
        eprintln!("cpsim: unknown rule ID `{id}` (see `cpsim rules`)");
        return BAD_INPUT;
    };
    let rule = r.rule();
    println!(
        "{} ({}, {})",
        rule.id,
        if rule.binds == Binds::Provider {
            "binds the provider"
        } else {
            "a platform guarantee"
        },
        level(rule.level)
    );
    println!("\n  {}\n", rule.text);
    println!("Source: {}", rule.source);
    if rule.binds == Binds::Provider {
        println!("What breaks it: {}", rule.breaks);
        println!("How to fix a provider: {}", rule.fix);
        let demo = format!("broken-{}", rule.id.to_lowercase());
        if registry.contains(&demo) {
            println!("See it caught: cpsim certify --provider {demo}");
        }
    } else {
        println!("Platform bug it catches: {}", rule.breaks);
        println!("What the simulator does: {}", rule.fix);
    }
    PASS
}
