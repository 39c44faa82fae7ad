//! The simulator as a C library.
//!
//! Built as a `cdylib`, this crate exports the five `CPNatfwt*` functions
//! with the exact ABI of `sim-cp/include/cpnatfwt.h`, so a program written
//! against the header can link to it (or load it at run time) as it would
//! to Windows 7's `iphlpapi.dll`. Built for `x86_64-pc-windows-gnu` it *is*
//! the stand-in `iphlpapi.dll` the Windows backend's tests run against
//! under Wine.
//!
//! A simulated platform needs a world to live in, which the real one does
//! not: the `Cpsim*` functions (declared in `sim-cp/include/cpsim.h`) make
//! one, drive it in real time on a thread of its own, script what the
//! platform and its applications do, and return the outcome (violations
//! and trace, as JSON) when it is finished.
//!
//! Routing: `CPNatfwtCreateProviderInstance` creates on the host the calling
//! thread chose with `CpsimWorldUseHost`, else on the first host of the only
//! live world. Every other call names its instance by handle.
//!
//! No panic crosses the C boundary: every export catches them.
#![allow(non_snake_case)]

use cpsim_sim::abi::*;
use cpsim_sim::edge::guard;
use cpsim_sim::{
    ffi, Action, ClockMode, Config, Cx, Nanos, PlatformFault, Provider, ProviderFactory, Sim,
    TimeLimits,
};
use parking_lot::Mutex;
use serde::Deserialize;
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

thread_local! {
    /// The host this thread's Create calls go to (`CpsimWorldUseHost`).
    static HOST: RefCell<Option<Cx>> = const { RefCell::new(None) };
}

// ---------------------------------------------------------------------------
// The five exports

/// `CPNatfwtCreateProviderInstance` (cpnatfwt.h).
///
/// # Safety
/// As the C API: `dispatchTable` points at a table of the size it declares,
/// `providerInstance` is writable; NULL pointers are reported, not followed.
#[no_mangle]
pub unsafe extern "system" fn CPNatfwtCreateProviderInstance(
    dispatch_table: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
    user_context: *mut c_void,
    provider_instance: *mut CPNATFWT_PROVIDER_INSTANCE,
) -> HRESULT {
    guard(E_FAIL, || {
        let cx = HOST.with(|h| h.borrow().clone());
        // SAFETY: forwarded under this function's contract.
        let call = || unsafe {
            ffi::CPNatfwtCreateProviderInstance(dispatch_table, user_context, provider_instance)
        };
        match cx {
            Some(cx) => cx.enter(call),
            None => call(),
        }
    })
}

/// `CPNatfwtRegisterProviderInstance` (cpnatfwt.h).
///
/// # Safety
/// As the C API: strings are NULL or NUL-terminated, `interfaceLuid` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "system" fn CPNatfwtRegisterProviderInstance(
    provider_instance: CPNATFWT_PROVIDER_INSTANCE,
    interface_friendly_name: *mut WCHAR,
    interface_luid: *mut IF_LUID,
    flags: u32,
    sddl: *mut WCHAR,
) -> HRESULT {
    guard(E_FAIL, || {
        // SAFETY: forwarded under this function's contract.
        unsafe {
            ffi::CPNatfwtRegisterProviderInstance(
                provider_instance,
                interface_friendly_name,
                interface_luid,
                flags,
                sddl,
            )
        }
    })
}

/// `CPNatfwtDeregisterProviderInstance` (cpnatfwt.h).
///
/// # Safety
/// None beyond the C API: any handle value is accepted and checked.
#[no_mangle]
pub unsafe extern "system" fn CPNatfwtDeregisterProviderInstance(
    provider_instance: CPNATFWT_PROVIDER_INSTANCE,
) -> HRESULT {
    // SAFETY: any handle value is accepted and checked.
    guard(E_FAIL, || unsafe {
        ffi::CPNatfwtDeregisterProviderInstance(provider_instance)
    })
}

/// `CPNatfwtDestroyProviderInstance` (cpnatfwt.h).
///
/// # Safety
/// None beyond the C API: any handle value is accepted and checked.
#[no_mangle]
pub unsafe extern "system" fn CPNatfwtDestroyProviderInstance(
    provider_instance: CPNATFWT_PROVIDER_INSTANCE,
) {
    // SAFETY: any handle value is accepted and checked.
    guard((), || unsafe {
        ffi::CPNatfwtDestroyProviderInstance(provider_instance)
    })
}

/// `CPNatfwtIndicateReceivedBuffers` (cpnatfwt.h).
///
/// # Safety
/// As the C API; the simulator checks every pointer before reading it.
#[no_mangle]
pub unsafe extern "system" fn CPNatfwtIndicateReceivedBuffers(
    provider_instance: CPNATFWT_PROVIDER_INSTANCE,
    local_transport_id: *mut CPNATFWT_TRANSPORT_ID,
    remote_transport_id: *mut CPNATFWT_TRANSPORT_ID,
    buffer_chain: *mut CPNATFWT_BUFFER,
    completion_context: *mut c_void,
    completion_routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
) -> HRESULT {
    guard(E_FAIL, || {
        // SAFETY: forwarded under this function's contract.
        unsafe {
            ffi::CPNatfwtIndicateReceivedBuffers(
                provider_instance,
                local_transport_id,
                remote_transport_id,
                buffer_chain,
                completion_context,
                completion_routine,
            )
        }
    })
}

// ---------------------------------------------------------------------------
// Worlds

/// What `CpsimWorldCreate` accepts (JSON; every field optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct WorldConfig {
    /// Hosts with a platform (default: one, "local").
    hosts: Vec<String>,
    seed: u64,
    limits: Option<TimeLimits>,
    /// Deliberate platform bugs (to test a checker of platform behaviour).
    faults: Vec<PlatformFault>,
    /// Real time after the last scripted step before the final checks (default 200 ms).
    drain_ms: Option<u64>,
    idle_dormancy_ms: u64,
    watchdog_ms: Option<u64>,
}

/// The providers of a C-library world live outside the simulator (in the
/// program that calls the exports), so each host runs an empty one: the
/// host counts as running, and LIFE-8 is checked when the world finishes.
struct External;

impl Provider for External {
    fn start(&mut self, _cx: &Cx) {}
    fn stop(&mut self, _cx: &Cx) {}
}

struct ExternalFactory;

impl ProviderFactory for ExternalFactory {
    fn name(&self) -> String {
        "external".into()
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(External)
    }
    fn deterministic(&self) -> bool {
        false
    }
}

/// A simulated world driven in real time by a thread of its own.
pub struct CpsimWorld {
    sim: Option<Arc<Sim>>,
    stop: Arc<AtomicBool>,
    driver: Option<JoinHandle<()>>,
    hosts: Vec<String>,
    last_error: Mutex<Option<CString>>,
}

impl CpsimWorld {
    /// A world from a JSON configuration (see `cpsim.h`).
    pub fn new(config_json: &str) -> Result<CpsimWorld, String> {
        let wc: WorldConfig = if config_json.trim().is_empty() {
            WorldConfig::default()
        } else {
            serde_json::from_str(config_json)
                .map_err(|e| format!("bad world configuration: {e}"))?
        };
        let hosts = if wc.hosts.is_empty() {
            vec!["local".to_string()]
        } else {
            wc.hosts.clone()
        };
        if hosts.len() >= 200 || hosts.iter().any(|h| h.is_empty() || h == cpsim_sim::INFRA) {
            return Err("hosts: 1 to 199 non-empty names, not `infra`".into());
        }
        let mut cfg = Config {
            clock: ClockMode::RealTime,
            drain_ms: wc.drain_ms.unwrap_or(200),
            idle_dormancy_ms: wc.idle_dormancy_ms,
            faults: wc.faults,
            ..Config::with_seed(wc.seed)
        };
        if let Some(l) = wc.limits {
            cfg.limits = l;
        }
        if let Some(w) = wc.watchdog_ms {
            cfg.watchdog_ms = w;
        }
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let sim = Arc::new(Sim::new(cfg, &names, Arc::new(ExternalFactory)));
        for h in &hosts {
            sim.schedule(Nanos::ZERO, Action::StartProvider { host: h.into() });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (sim.clone(), stop.clone());
        let driver = std::thread::Builder::new()
            .name("cpsim-capi-driver".into())
            .spawn(move || {
                while !st.load(Ordering::Acquire) {
                    s.run_for(Nanos::from_millis(5));
                }
            })
            .map_err(|e| format!("cannot start the world's driver thread: {e}"))?;
        // The hosts' (empty) providers are started before anything else.
        while sim.now() == Nanos::ZERO {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(CpsimWorld {
            sim: Some(sim),
            stop,
            driver: Some(driver),
            hosts,
            last_error: Mutex::new(None),
        })
    }

    fn sim(&self) -> &Sim {
        self.sim.as_ref().expect("a world is finished only once")
    }

    /// Schedules a platform action (JSON of `cpsim_sim::Action`) `at_ms` after
    /// the world's start (the past means now).
    pub fn schedule(&self, at_ms: u64, action_json: &str) -> Result<(), String> {
        let a: Action =
            serde_json::from_str(action_json).map_err(|e| format!("bad action: {e}"))?;
        let at = Nanos::from_millis(at_ms).max(self.sim().now());
        self.sim().schedule(at, a);
        Ok(())
    }

    /// Makes the calling thread's Create calls go to `host`.
    pub fn use_host(&self, host: &str) -> Result<(), String> {
        if !self.hosts.iter().any(|h| h == host) {
            return Err(format!("no host `{host}` in this world"));
        }
        let cx = self.sim().cx(host);
        HOST.with(|h| *h.borrow_mut() = Some(cx));
        Ok(())
    }

    /// Milliseconds since the world started.
    pub fn now_ms(&self) -> u64 {
        self.sim().now().0 / 1_000_000
    }

    /// Stops the driver, drains, stops the hosts (LIFE-8), and returns the
    /// outcome with the platform checker's findings added, as JSON.
    pub fn finish(mut self) -> String {
        self.stop.store(true, Ordering::Release);
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
        HOST.with(|h| *h.borrow_mut() = None);
        let sim = self.sim.take().expect("finished once");
        let sim = match Arc::try_unwrap(sim) {
            Ok(s) => s,
            Err(_) => unreachable!("the driver thread has ended"),
        };
        let mut out = sim.finish();
        for v in cpsim_sim::oracle::check(&out.trace) {
            if !out
                .violations
                .iter()
                .any(|w| w.rule == v.rule && w.step == v.step)
            {
                out.violations.push(v);
            }
        }
        out.violations.sort_by_key(|v| v.step);
        serde_json::to_string(&out).expect("an outcome serialises")
    }
}

impl Drop for CpsimWorld {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
    }
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn str_arg<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per the function's contract.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

fn set_error(w: &CpsimWorld, e: String) {
    *w.last_error.lock() = CString::new(e.replace('\0', " ")).ok();
}

/// Makes a world (see `cpsim.h`); NULL on a bad configuration (the reason
/// goes to stderr).
///
/// # Safety
/// `config_json` is NULL (defaults) or a NUL-terminated UTF-8 string.
#[no_mangle]
pub unsafe extern "C" fn CpsimWorldCreate(config_json: *const c_char) -> *mut CpsimWorld {
    guard(std::ptr::null_mut(), || {
        // SAFETY: per this function's contract.
        let cfg = unsafe { str_arg(config_json) }.unwrap_or("");
        match CpsimWorld::new(cfg) {
            Ok(w) => Box::into_raw(Box::new(w)),
            Err(e) => {
                eprintln!("cpsim: {e}");
                std::ptr::null_mut()
            }
        }
    })
}

/// Schedules an action; 0 on success, -1 on error (`CpsimWorldLastError`).
///
/// # Safety
/// `world` came from `CpsimWorldCreate` and is not finished; `action_json`
/// is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn CpsimWorldSchedule(
    world: *mut CpsimWorld,
    at_ms: u64,
    action_json: *const c_char,
) -> i32 {
    guard(-1, || {
        // SAFETY: per this function's contract.
        let (Some(w), Some(a)) = (unsafe { world.as_ref() }, unsafe { str_arg(action_json) })
        else {
            return -1;
        };
        match w.schedule(at_ms, a) {
            Ok(()) => 0,
            Err(e) => {
                set_error(w, e);
                -1
            }
        }
    })
}

/// Makes the calling thread's Create calls go to `host`; 0 or -1.
///
/// # Safety
/// As `CpsimWorldSchedule`.
#[no_mangle]
pub unsafe extern "C" fn CpsimWorldUseHost(world: *mut CpsimWorld, host: *const c_char) -> i32 {
    guard(-1, || {
        // SAFETY: per this function's contract.
        let (Some(w), Some(h)) = (unsafe { world.as_ref() }, unsafe { str_arg(host) }) else {
            return -1;
        };
        match w.use_host(h) {
            Ok(()) => 0,
            Err(e) => {
                set_error(w, e);
                -1
            }
        }
    })
}

/// Milliseconds since the world started.
///
/// # Safety
/// As `CpsimWorldSchedule`.
#[no_mangle]
pub unsafe extern "C" fn CpsimWorldNowMs(world: *mut CpsimWorld) -> u64 {
    // SAFETY: per this function's contract.
    guard(0, || unsafe { world.as_ref() }.map_or(0, |w| w.now_ms()))
}

/// The last error of a world call, or NULL; valid until the next call.
///
/// # Safety
/// As `CpsimWorldSchedule`.
#[no_mangle]
pub unsafe extern "C" fn CpsimWorldLastError(world: *mut CpsimWorld) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: per this function's contract.
        match unsafe { world.as_ref() } {
            Some(w) => w
                .last_error
                .lock()
                .as_ref()
                .map_or(std::ptr::null(), |e| e.as_ptr()),
            None => std::ptr::null(),
        }
    })
}

/// Finishes a world (drain, stop every host, final checks) and frees it.
/// Returns the outcome as JSON (free it with `CpsimFree`), or NULL.
///
/// # Safety
/// `world` came from `CpsimWorldCreate` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn CpsimWorldFinish(world: *mut CpsimWorld) -> *mut c_char {
    if world.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: per this function's contract: ours, from Box::into_raw.
    let w = unsafe { Box::from_raw(world) };
    guard(std::ptr::null_mut(), move || {
        CString::new(w.finish()).map_or(std::ptr::null_mut(), CString::into_raw)
    })
}

/// Frees a string returned by `CpsimWorldFinish`.
///
/// # Safety
/// `s` is NULL or came from `CpsimWorldFinish`, and is freed once.
#[no_mangle]
pub unsafe extern "C" fn CpsimFree(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: per this function's contract.
        drop(unsafe { CString::from_raw(s) });
    }
}
