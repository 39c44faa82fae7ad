//! The stand-in platform: the simulator's own C library (`cpsim-capi`),
//! which exports the five `CPNatfwt*` functions like `iphlpapi.dll` plus a
//! small API (`sim-cp/include/cpsim.h`) to make a simulated world and
//! script what its platform and applications do.
//!
//! A real platform's applications cannot be scripted; the stand-in's can.
//! [`StandIn`] is that script handle. A multi-host stand-in needs one thing
//! more from the bridge: [`NativePlatform::route_creates_to`] sends each
//! Create to the stand-in host named like the simulated host that makes it.

#[cfg(doc)]
use crate::NativePlatform;
use libloading::Library;
use parking_lot::RwLock;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;

type WorldCreate = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type WorldSchedule = unsafe extern "C" fn(*mut c_void, u64, *const c_char) -> i32;
type WorldUseHost = unsafe extern "C" fn(*mut c_void, *const c_char) -> i32;
type WorldNow = unsafe extern "C" fn(*mut c_void) -> u64;
type WorldLastError = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type WorldFinish = unsafe extern "C" fn(*mut c_void) -> *mut c_char;
type Free = unsafe extern "C" fn(*mut c_char);

/// The stand-in's world functions, resolved from the library.
#[derive(Copy, Clone)]
struct Api {
    create: WorldCreate,
    schedule: WorldSchedule,
    use_host: WorldUseHost,
    now: WorldNow,
    last_error: WorldLastError,
    finish: WorldFinish,
    free: Free,
}

/// A world of the stand-in library, driven in real time by the library.
pub struct StandIn {
    /// The world's address; 0 once finished. Calls hold the read lock, so
    /// that `finish` (the write lock) never frees a world in use.
    world: RwLock<usize>,
    api: Api,
    /// Keeps the library loaded (a second load shares the bridge's copy).
    _lib: Library,
}

impl StandIn {
    /// Whether the library at `path` is a stand-in (exports `CpsimWorldCreate`).
    pub fn is_standin(path: &Path) -> bool {
        // SAFETY: loading runs the library's initialisers; the caller chose it.
        let Ok(lib) = (unsafe { Library::new(path) }) else {
            return false;
        };
        // SAFETY: only the symbol's presence is checked.
        unsafe { lib.get::<*mut c_void>(b"CpsimWorldCreate\0") }.is_ok()
    }

    /// Makes a world in the stand-in at `path` from a JSON configuration
    /// (`cpsim.h`: hosts, seed, limits, faults, drain_ms, ...).
    pub fn open(path: &Path, config_json: &str) -> Result<StandIn, String> {
        let fail = |e: String| format!("{}: {e}", path.display());
        // SAFETY: loading runs the library's initialisers; the caller chose it.
        let lib = unsafe { Library::new(path) }.map_err(|e| fail(e.to_string()))?;
        // SAFETY: each export of cpsim.h has the type given here.
        let api = unsafe {
            let sym = |name: &[u8]| {
                lib.get::<*mut c_void>(name)
                    .map(|s| *s)
                    .map_err(|_| fail("not a cpsim stand-in (no CpsimWorld* functions)".into()))
            };
            Api {
                create: std::mem::transmute::<*mut c_void, WorldCreate>(sym(
                    b"CpsimWorldCreate\0",
                )?),
                schedule: std::mem::transmute::<*mut c_void, WorldSchedule>(sym(
                    b"CpsimWorldSchedule\0",
                )?),
                use_host: std::mem::transmute::<*mut c_void, WorldUseHost>(sym(
                    b"CpsimWorldUseHost\0",
                )?),
                now: std::mem::transmute::<*mut c_void, WorldNow>(sym(b"CpsimWorldNowMs\0")?),
                last_error: std::mem::transmute::<*mut c_void, WorldLastError>(sym(
                    b"CpsimWorldLastError\0",
                )?),
                finish: std::mem::transmute::<*mut c_void, WorldFinish>(sym(
                    b"CpsimWorldFinish\0",
                )?),
                free: std::mem::transmute::<*mut c_void, Free>(sym(b"CpsimFree\0")?),
            }
        };
        let c = CString::new(config_json).map_err(|_| fail("NUL in the configuration".into()))?;
        // SAFETY: a NUL-terminated string; NULL comes back on a bad configuration.
        let world = unsafe { (api.create)(c.as_ptr()) };
        if world.is_null() {
            return Err(fail(format!(
                "the stand-in refused the world configuration {config_json}"
            )));
        }
        Ok(StandIn {
            world: RwLock::new(world as usize),
            api,
            _lib: lib,
        })
    }

    /// Runs `f` with the live world (read-locked), or fails.
    fn with_world<R>(&self, f: impl FnOnce(*mut c_void) -> Result<R, String>) -> Result<R, String> {
        let w = self.world.read();
        if *w == 0 {
            return Err("the stand-in world is finished".into());
        }
        f(*w as *mut c_void)
    }

    /// Milliseconds since the world started (0 once finished).
    pub fn now_ms(&self) -> u64 {
        // SAFETY: a live world (read-locked).
        self.with_world(|w| Ok(unsafe { (self.api.now)(w) }))
            .unwrap_or(0)
    }

    /// Schedules a platform action (`cpsim_sim::Action`) `at_ms` after the
    /// world's start (the past means now).
    pub fn schedule(&self, at_ms: u64, action: &cpsim_sim::Action) -> Result<(), String> {
        let json = serde_json::to_string(action).expect("actions serialise");
        let c = CString::new(json).expect("JSON has no NUL");
        self.with_world(|w| {
            // SAFETY: a live world (read-locked) and a NUL-terminated string.
            if unsafe { (self.api.schedule)(w, at_ms, c.as_ptr()) } == 0 {
                Ok(())
            } else {
                Err(self.last_error(w))
            }
        })
    }

    fn last_error(&self, w: *mut c_void) -> String {
        // SAFETY: a live world; the string is valid until the next call.
        unsafe {
            let p = (self.api.last_error)(w);
            if p.is_null() {
                "the stand-in refused the call".into()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }

    /// Makes the calling thread's Create calls go to `host`.
    pub fn use_host(&self, host: &str) -> Result<(), String> {
        let h = CString::new(host).map_err(|_| "NUL in a host name".to_string())?;
        self.with_world(|w| {
            // SAFETY: a live world (read-locked) and a NUL-terminated string.
            if unsafe { (self.api.use_host)(w, h.as_ptr()) } == 0 {
                Ok(())
            } else {
                Err(self.last_error(w))
            }
        })
    }

    /// Drains, stops the stand-in's hosts, runs its final checks, and
    /// returns its outcome (`cpsim_sim::Outcome` as JSON: the provider's
    /// violations as the stand-in judged them, delivery counts, its trace).
    /// The world is finished once; later calls fail.
    pub fn finish(&self) -> Result<serde_json::Value, String> {
        let mut guard = self.world.write();
        let w = std::mem::take(&mut *guard) as *mut c_void;
        if w.is_null() {
            return Err("the stand-in world is finished".into());
        }
        // SAFETY: a live world, finished once (taken out under the write
        // lock, so no other call is using it); the string is freed once.
        let text = unsafe {
            let s = (self.api.finish)(w);
            if s.is_null() {
                return Err("the stand-in could not finish its world".into());
            }
            let text = CStr::from_ptr(s).to_string_lossy().into_owned();
            (self.api.free)(s);
            text
        };
        serde_json::from_str(&text).map_err(|e| format!("the stand-in's outcome: {e}"))
    }
}
