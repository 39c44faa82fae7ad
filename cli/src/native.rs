//! Playing a scenario on a *native* platform (`cpsim run --platform`):
//! the scenario's provider runs in a world made with
//! [`Sim::with_platform`], so every platform call goes through the native
//! backend's bridge to the library, in real time.
//!
//! The steps split in two. Provider and network steps (start, stop,
//! partitions, network faults, task timing) act on the providers' own
//! world. Platform steps (listening, sending, address changes, dormancy,
//! shutdown, infrastructure faults) are what the platform and its
//! applications do: the stand-in library (`cpsim-capi`) can be scripted to
//! do them; a real `iphlpapi.dll` cannot, and a scenario that needs them is
//! refused with the step named.
//!
//! The outcome's violations are those the stand-in found in the provider
//! (its own P-rule checks, when the library is the stand-in), those the
//! platform checker finds in the bridge's record (C-rules), those the
//! bridge saw the provider break, and any of the providers' world. Its
//! trace is the bridge's record. Trace steps differ from a simulated run,
//! so a `first_violation` expectation is not checked here.
//!
//! Network steps go to both worlds (the stand-in's ground truth for SHOULD
//! rules must know about partitions). A timeout the stand-in reports while
//! the scenario stalls provider tasks past their limits is excused, as the
//! simulator excuses it.

use cpsim_certify::scenario::{check_expectations, sim_config, ProviderRef, Scenario, ScenarioRun};
use cpsim_certify::Registry;
use cpsim_native::standin::StandIn;
use cpsim_native::NativePlatform;
use cpsim_sim::trace::{PlatformFn, What};
use cpsim_sim::{Action, ClockMode, Nanos, Outcome, Platform, Sim, Violation};
use std::path::Path;
use std::sync::Arc;

/// The longest real-time drain of a native run.
const MAX_DRAIN_MS: u64 = 1_000;

/// Whether an action changes the providers' network, which the stand-in
/// must know too: its judgement of SHOULD rules (STATE-6, DATA-5) excuses
/// what a disturbed network explains.
fn is_network_step(a: &Action) -> bool {
    matches!(
        a,
        Action::Partition { .. } | Action::Heal | Action::NetFaults { .. }
    )
}

/// Whether an action is the platform's (or its applications') doing.
fn is_platform_step(a: &Action) -> bool {
    matches!(
        a,
        Action::Listen { .. }
            | Action::Send { .. }
            | Action::AddressAdd { .. }
            | Action::AddressRemove { .. }
            | Action::AddressReturn { .. }
            | Action::InterfaceDown { .. }
            | Action::InterfaceUp { .. }
            | Action::DuplicateAddress { .. }
            | Action::Dormant { .. }
            | Action::Shutdown { .. }
            | Action::CommunicationError { .. }
    )
}

/// The stand-in world a scenario asks for.
fn world_config(s: &Scenario) -> String {
    serde_json::json!({
        "hosts": s.hosts,
        "seed": s.platform.seed,
        "limits": s.platform.limits,
        "drain_ms": s.platform.drain_ms.get().min(MAX_DRAIN_MS),
        "idle_dormancy_ms": s.platform.idle_dormancy_ms,
    })
    .to_string()
}

/// Runs `s` against the platform in the library at `library` and checks
/// its expectations. Errors: the library cannot be used (the message says
/// why, e.g. that the CP API is not available on this system), the
/// provider is not a built-in one, or a step cannot be played there.
pub fn run_native(
    registry: &Registry,
    s: &Scenario,
    library: &Path,
) -> Result<ScenarioRun, String> {
    let name = match &s.provider {
        ProviderRef::Name(name) | ProviderRef::Builtin(name) => name,
        ProviderRef::Library(_) => {
            return Err(
                "C provider modules run on the simulator only (`cpsim run` without --platform)"
                    .into(),
            )
        }
    };
    let entry = registry.find(name).ok_or_else(|| registry.unknown(name))?;
    let factory = entry.factory();
    factory
        .configure(&s.provider_config)
        .map_err(|e| format!("provider_config rejected: {e}"))?;
    let native = NativePlatform::load(library)
        .map_err(|e| e.to_string())?
        .into_static();
    let standin = if StandIn::is_standin(library) {
        Some(Arc::new(StandIn::open(library, &world_config(s))?))
    } else {
        None
    };
    // Every action of every step (each datagram of a `send_many`), by time,
    // in file order at an instant.
    let mut steps: Vec<(usize, u64, Action)> = s
        .steps
        .iter()
        .enumerate()
        .flat_map(|(i, st)| st.occurrences().map(move |(at, a)| (i, at, a)))
        .collect();
    steps.sort_by_key(|(_, at, _)| *at);
    let mut hosted = Vec::new();
    let mut last = 0;
    // Whether the harness stalls provider tasks past a time limit.
    let mut stalls = s.platform.tasks.after_timeout > 0.0 || s.platform.tasks.never > 0.0;
    for (i, at, a) in steps {
        last = last.max(at);
        if !is_platform_step(&a) {
            if let (Some(w), true) = (&standin, is_network_step(&a)) {
                w.schedule(at, &a)?;
            }
            if let Action::TaskTiming { timing } = &a {
                stalls |= timing.after_timeout > 0.0 || timing.never > 0.0;
            }
            hosted.push((at, a));
            continue;
        }
        match &standin {
            Some(w) => w.schedule(at, &a)?,
            None => {
                return Err(format!(
                    "steps[{i}] ({:?} at {} ms) needs the platform's applications to be scripted, which only the stand-in allows; {} is a real platform (run it with provider and network steps only)",
                    a,
                    at,
                    library.display()
                ))
            }
        }
    }
    if let Some(w) = &standin {
        native.route_creates_to(w.clone());
    }
    let platform: &'static dyn Platform = native;
    let mut cfg = sim_config(s, ClockMode::RealTime);
    cfg.drain_ms = cfg.drain_ms.min(MAX_DRAIN_MS);
    let hosts: Vec<&str> = s.hosts.iter().map(|h| h.as_str()).collect();
    let sim = Sim::with_platform(cfg, &hosts, factory, platform);
    for (at, a) in hosted {
        sim.schedule(Nanos::from_millis(at), a);
    }
    sim.run_until(Nanos::from_millis(last));
    let own = sim.finish();
    let judged = match &standin {
        Some(w) => Some(
            serde_json::from_value::<Outcome>(w.finish()?)
                .map_err(|e| format!("the stand-in's outcome does not parse: {e}"))?,
        ),
        None => None,
    };
    let trace = native.trace();
    let mut violations: Vec<Violation> = Vec::new();
    if let Some(j) = &judged {
        // The simulator excuses a timeout the harness caused by stalling
        // the provider's tasks; the stand-in cannot see those stalls (they
        // happen in the providers' world), so they are excused here.
        violations.extend(
            j.violations
                .iter()
                .filter(|v| !(stalls && v.rule == cpsim_sim::rules::id::TIME_1))
                .cloned(),
        );
    }
    violations.extend(native.check());
    violations.extend(native.provider_violations());
    violations.extend(own.violations);
    let indicated = trace
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.what,
                What::Function {
                    f: PlatformFn::CPNatfwtIndicateReceivedBuffers,
                    hr: 0,
                    ..
                }
            )
        })
        .count() as u32;
    let outcome = Outcome {
        violations,
        end: trace.events.last().map_or(Nanos::ZERO, |e| e.at),
        trace,
        sent: judged.as_ref().map_or(0, |j| j.sent),
        delivered: judged.as_ref().map_or(indicated, |j| j.delivered),
        idle: Vec::new(),
    };
    let mut expect = s.expect.clone();
    expect.first_violation = None;
    let failures = check_expectations(&expect, &outcome);
    Ok(ScenarioRun { outcome, failures })
}
