//! The black-box `threaded` provider, in real time: its worker thread
//! completes every call and indicates every datagram, and no rule breaks.

mod common;
use common::*;
use cpsim_sim::{Action, ClockMode, Config, Family};

fn realtime(seed: u64) -> Config {
    Config {
        clock: ClockMode::RealTime,
        drain_ms: 400,
        ..Config::with_seed(seed)
    }
}

fn story() -> Script {
    let mut s: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (20, listen("B", true)),
        (60, v4("A", "B")),
        (61, v6("A", "B")),
        (300, dormant("A")),
        (400, v4("A", "B")),
        (
            500,
            Action::AddressAdd {
                host: "B".into(),
                family: Family::V4,
            },
        ),
        (600, listen("B", false)),
        (610, dormant("B")),
        (700, v4("A", "B")),
        (800, listen("B", true)),
        (
            900,
            Action::DuplicateAddress {
                host: "B".into(),
                of: "A".into(),
                family: Family::V4,
            },
        ),
        (1_000, v6("A", "B")),
        (1_100, v4("B", "A")),
        (1_300, shutdown("A")),
    ];
    for k in 0..10 {
        s.push((120 + k * 15, v4("B", "A")));
    }
    s.sort_by_key(|(t, _)| *t);
    s
}

#[test]
fn threaded_provider_in_real_time() {
    let e = cpsim_providers::find("threaded").expect("registered");
    assert_eq!(e.clock(), ClockMode::RealTime);
    assert!(!e.factory().deterministic());
    for seed in 0..2 {
        let out = run(e.factory(), realtime(seed), &["A", "B"], &story(), 1_600);
        assert_clean(&format!("threaded seed {seed}"), &out);
        // Every datagram but the one sent while B was dormant, and the
        // one B sends to A before A has an active instance, arrives.
        assert!(
            out.delivered + 3 >= out.sent,
            "threaded seed {seed}: {} of {} delivered",
            out.delivered,
            out.sent
        );
    }
}

#[test]
fn threaded_provider_restarts() {
    let e = cpsim_providers::find("threaded").expect("registered");
    let s: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (10, listen("B", true)),
        (50, v4("A", "B")),
        (200, stop("B")),
        (250, start("B")),
        (260, listen("B", true)),
        (400, v6("A", "B")),
        (500, stop("A")),
        (600, start("A")),
        (700, v4("A", "B")),
    ];
    let out = run(e.factory(), realtime(3), &["A", "B"], &s, 1_000);
    assert_clean("threaded restarts", &out);
    assert_eq!(out.delivered, 3, "of {}", out.sent);
}

/// `certify` from code runs a provider that is not deterministic (threads of
/// its own) on the real-time clock. On the virtual clock the world moved on
/// without its worker: calls it completed were TIME-1, instances it was
/// still closing LIFE-8, false alarms for a correct provider.
#[test]
fn time_1_life_8_certify_runs_a_threaded_provider_in_real_time() {
    let cfg = cpsim_certify::Config {
        cases: 16,
        seed: Some(1),
        regressions: None,
        ..cpsim_certify::Config::default()
    };
    let make = || -> std::sync::Arc<dyn cpsim_sim::ProviderFactory> {
        cpsim_providers::threaded::ThreadedFactory::new()
    };
    let c = cpsim_certify::certify(make, cfg);
    assert!(c.passed(), "{}", c.failure_message());
    assert_eq!(c.cases, 16);
    let e = cpsim_certify::Entry::of(make);
    assert_eq!(e.clock(), ClockMode::RealTime);
}

/// The threaded provider plus a pool of twelve threads made once for the
/// whole process (as a runtime kept in a static would be): more threads
/// than the slack after the run, none of them left by a start.
struct WithProcessPool(std::sync::Arc<cpsim_providers::threaded::ThreadedFactory>);

impl cpsim_sim::ProviderFactory for WithProcessPool {
    fn name(&self) -> String {
        "threaded-with-a-process-pool".into()
    }
    fn infrastructure(&self, cx: &cpsim_sim::Cx) {
        self.0.infrastructure(cx)
    }
    fn create(&self, host: &str) -> Box<dyn cpsim_sim::Provider> {
        static POOL: std::sync::OnceLock<Vec<std::thread::JoinHandle<()>>> =
            std::sync::OnceLock::new();
        POOL.get_or_init(|| {
            (0..12)
                .map(|_| {
                    std::thread::spawn(|| loop {
                        std::thread::park()
                    })
                })
                .collect()
        });
        self.0.create(host)
    }
    fn deterministic(&self) -> bool {
        false
    }
}

const POOL_CHILD: &str = "CPSIM_TEST_PROCESS_POOL_CHILD";

/// A process-wide pool is not a thread left by a stop: `cpsim certify`
/// (alone in its process) passes the provider with no LIFE-8, though the
/// run ends with twelve threads more than it began with. Run in a child
/// process, alone, where the thread count means something.
#[test]
fn life_8_a_pool_kept_for_the_whole_process_is_not_threads_left_by_a_stop() {
    if std::env::var_os(POOL_CHILD).is_none() {
        if !std::path::Path::new("/proc/self/status").exists() {
            return; // threads are not counted on this system
        }
        let name = "life_8_a_pool_kept_for_the_whole_process_is_not_threads_left_by_a_stop";
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", name, "--test-threads=1", "--nocapture"])
            .env(POOL_CHILD, "1")
            .output()
            .expect("child runs");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("pool passes"), "{text}");
        return;
    }
    let cfg = cpsim_certify::Config {
        cases: 8,
        seed: Some(1),
        regressions: None,
        alone_in_process: true,
        ..cpsim_certify::Config::default()
    };
    let make = || -> std::sync::Arc<dyn cpsim_sim::ProviderFactory> {
        std::sync::Arc::new(WithProcessPool(
            cpsim_providers::threaded::ThreadedFactory::new(),
        ))
    };
    let c = cpsim_certify::certify(make, cfg);
    assert!(c.passed(), "{}", c.failure_message());
    println!("pool passes");
}
