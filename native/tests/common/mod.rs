//! What the native backend's tests share: the stand-in library's path and
//! a handle on a stand-in world (the `Cpsim*` functions of `cpsim.h`).
#![allow(dead_code)]

use libloading::Library;
use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;

/// The stand-in library: `CPSIM_STANDIN`, or next to this test binary.
pub fn standin() -> PathBuf {
    if let Some(p) = std::env::var_os("CPSIM_STANDIN") {
        return p.into();
    }
    let name = if cfg!(windows) {
        "cpsim_capi.dll"
    } else if cfg!(target_os = "macos") {
        "libcpsim_capi.dylib"
    } else {
        "libcpsim_capi.so"
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("deps directory");
    for c in [
        deps.join(name),
        deps.parent().expect("profile dir").join(name),
    ] {
        if c.exists() {
            return c;
        }
    }
    panic!(
        "the stand-in {name} is not built next to {}: run `cargo build -p cpsim-capi` (with the same --target) first",
        deps.display()
    );
}

// ---------------------------------------------------------------------------
// The stand-in's world API (cpsim.h)

type WorldCreate = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type WorldSchedule = unsafe extern "C" fn(*mut c_void, u64, *const c_char) -> i32;
type WorldUseHost = unsafe extern "C" fn(*mut c_void, *const c_char) -> i32;
type WorldNow = unsafe extern "C" fn(*mut c_void) -> u64;
type WorldFinish = unsafe extern "C" fn(*mut c_void) -> *mut c_char;
type Free = unsafe extern "C" fn(*mut c_char);

pub struct World {
    w: *mut c_void,
    schedule: WorldSchedule,
    use_host: WorldUseHost,
    now: WorldNow,
    finish: WorldFinish,
    free: Free,
    _lib: Library,
}

impl World {
    pub fn new(config: &str) -> World {
        // SAFETY: the stand-in library; same module as the bridge's (a
        // second load of a loaded library shares its state).
        let lib = unsafe { Library::new(standin()) }.expect("the stand-in loads");
        // SAFETY: these exports have these types (cpsim.h).
        unsafe {
            let create = *lib.get::<WorldCreate>(b"CpsimWorldCreate\0").unwrap();
            let c = CString::new(config).unwrap();
            let w = create(c.as_ptr());
            assert!(!w.is_null(), "the world configuration is accepted");
            World {
                w,
                schedule: *lib.get(b"CpsimWorldSchedule\0").unwrap(),
                use_host: *lib.get(b"CpsimWorldUseHost\0").unwrap(),
                now: *lib.get(b"CpsimWorldNowMs\0").unwrap(),
                finish: *lib.get(b"CpsimWorldFinish\0").unwrap(),
                free: *lib.get(b"CpsimFree\0").unwrap(),
                _lib: lib,
            }
        }
    }
    pub fn at(&self, after_ms: u64, action: &str) {
        let a = CString::new(action).unwrap();
        // SAFETY: a live world and a NUL-terminated string.
        let rc = unsafe { (self.schedule)(self.w, (self.now)(self.w) + after_ms, a.as_ptr()) };
        assert_eq!(rc, 0, "action accepted: {action}");
    }
    pub fn use_host(&self, host: &str) {
        let h = CString::new(host).unwrap();
        // SAFETY: a live world and a NUL-terminated string.
        assert_eq!(unsafe { (self.use_host)(self.w, h.as_ptr()) }, 0);
    }
    pub fn finish(self) -> serde_json::Value {
        // SAFETY: a live world, finished once; the string is freed once.
        unsafe {
            let s = (self.finish)(self.w);
            assert!(!s.is_null());
            let text = std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned();
            (self.free)(s);
            serde_json::from_str(&text).expect("the outcome is JSON")
        }
    }
}

/// What `World::use_host` needs, as plain values: callable from any thread
/// for as long as the world is not finished.
#[derive(Copy, Clone)]
pub struct HostRouter {
    world: usize,
    use_host: WorldUseHost,
}

impl HostRouter {
    /// Makes the calling thread's Create calls go to `host`.
    pub fn use_host(&self, host: &str) {
        let h = CString::new(host).unwrap();
        // SAFETY: a live world (the caller's promise) and a NUL-terminated string.
        let rc = unsafe { (self.use_host)(self.world as *mut c_void, h.as_ptr()) };
        assert_eq!(rc, 0, "the stand-in world has host {host}");
    }
}

impl World {
    /// A router for Create calls, to use while the world is alive.
    pub fn router(&self) -> HostRouter {
        HostRouter {
            world: self.w as usize,
            use_host: self.use_host,
        }
    }
}
