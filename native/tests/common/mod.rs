//! What the native backend's tests share: the stand-in library's path and
//! a handle on a stand-in world (the `Cpsim*` functions of `cpsim.h`).
#![allow(dead_code)]

use cpsim_native::standin::StandIn;
use cpsim_sim::Action;
use std::path::PathBuf;
use std::sync::Arc;

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

/// A stand-in world for a test: `StandIn` with panics for errors and
/// times relative to now.
pub struct World(pub Arc<StandIn>);

impl World {
    pub fn new(config: &str) -> World {
        World(Arc::new(
            StandIn::open(&standin(), config).expect("the stand-in makes the world"),
        ))
    }
    pub fn at(&self, after_ms: u64, action: &str) {
        let a: Action = serde_json::from_str(action).expect("an action");
        self.0
            .schedule(self.0.now_ms() + after_ms, &a)
            .expect("action accepted");
    }
    pub fn use_host(&self, host: &str) {
        self.0.use_host(host).expect("the world has the host");
    }
    pub fn finish(self) -> serde_json::Value {
        self.0.finish().expect("the stand-in finishes")
    }
}
