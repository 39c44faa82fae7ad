//! The unix side of module loading: the embedded router loaded with
//! `RTLD_GLOBAL`, each host's copy loaded from a file of its own with
//! `RTLD_LOCAL`, and `dladdr` to find which copy holds an address.

use crate::image::{ModuleImage, START, STOP};
use crate::loader::{in_phase, Copy, Phase, RouterTable, StartFn, StopFn, TABLE};
use crate::ModuleError;
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LOCAL, RTLD_NOW};
use std::ffi::{c_void, CString};
use std::path::PathBuf;
#[cfg(not(target_os = "linux"))]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The router, built from `c/router.c` by build.rs.
static ROUTER_SO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libcpsim_router.so"));

/// The load address of the object holding `addr`.
pub(crate) fn base_of(addr: *const c_void) -> Option<usize> {
    // SAFETY: an all-zero Dl_info is a valid value to be overwritten.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address; `info` is writable.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fbase.is_null() {
        return None;
    }
    Some(info.dli_fbase as usize)
}

/// A file holding `bytes` that `dlopen` can load, and that no other copy
/// shares (the dynamic linker hands back an already loaded object for a
/// path or file it has seen). On Linux an anonymous memory file: nothing
/// is written to disk, so nothing is left behind whatever happens.
struct Backing {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    _fd: std::os::fd::OwnedFd,
    #[cfg(not(target_os = "linux"))]
    dir: PathBuf,
}

impl Backing {
    #[cfg(target_os = "linux")]
    fn new(what: &str, bytes: &[u8]) -> Result<Backing, ModuleError> {
        use std::io::Write;
        use std::os::fd::{AsRawFd, FromRawFd};
        let name = CString::new(format!("cpsim-{what}")).expect("no NUL in the name");
        // SAFETY: a valid NUL-terminated name; the flags are valid.
        let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(ModuleError(format!(
                "cannot make a memory file for a module copy: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: a descriptor memfd_create just returned, owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let mut file = std::fs::File::from(fd.try_clone().map_err(|e| ModuleError(e.to_string()))?);
        file.write_all(bytes)
            .map_err(|e| ModuleError(format!("cannot write a module copy: {e}")))?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        Ok(Backing { path, _fd: fd })
    }

    #[cfg(not(target_os = "linux"))]
    fn new(what: &str, bytes: &[u8]) -> Result<Backing, ModuleError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cpsim-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| ModuleError(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(format!("{what}.so"));
        if let Err(e) = std::fs::write(&path, bytes) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ModuleError(format!("cannot write {}: {e}", path.display())));
        }
        Ok(Backing { path, dir })
    }

    /// Once loaded: the file may go (the mapping stays). On Linux the
    /// memory file is kept open while the copy is loaded, so that its
    /// `/proc/self/fd` name stays unique.
    fn loaded(&self) {
        #[cfg(not(target_os = "linux"))]
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        #[cfg(not(target_os = "linux"))]
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Loads the router once per process (RTLD_GLOBAL, so that modules loaded
/// later bind their CPNatfwt* references to it) and installs the table.
fn router(table: &'static RouterTable) -> Result<(), ModuleError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let backing = Backing::new("router", ROUTER_SO).map_err(|e| e.0)?;
        // SAFETY: our own library; its only initialiser is the C runtime's.
        let lib = unsafe { Library::open(Some(&backing.path), RTLD_NOW | RTLD_GLOBAL) }
            .map_err(|e| format!("cannot load the C module router: {e}"))?;
        backing.loaded();
        // SAFETY: the symbol has this signature in c/router.c.
        let install = unsafe {
            lib.get::<unsafe extern "C" fn(*const RouterTable) -> i32>(b"cpsim_router_install\0")
        }
        .map_err(|e| format!("the router lacks cpsim_router_install: {e}"))?;
        // SAFETY: a 'static table of the layout the router expects.
        let rc = unsafe { install(table) };
        if rc != 0 {
            return Err("the router rejected the routing table".to_string());
        }
        // Kept for the life of the process: modules bind to it.
        std::mem::forget(lib);
        std::mem::forget(backing);
        Ok(())
    })
    .clone()
    .map_err(ModuleError)
}

/// Loads a private copy of `image` (RTLD_LOCAL, so its symbols stay its own).
pub(crate) fn load_copy(image: &ModuleImage) -> Result<Copy, ModuleError> {
    router(&TABLE)?;
    let shown = image.path().display();
    let backing = Backing::new(image.name(), image.bytes())?;
    // SAFETY: loading runs the module's initialisers: module code, which
    // the harness only ever loads in a child process of its own.
    let lib = in_phase(Phase::Loading, || unsafe {
        Library::open(Some(&backing.path), RTLD_NOW | RTLD_LOCAL)
    })
    .map_err(|e| ModuleError(format!("cannot load {shown}: {e}")))?;
    backing.loaded();
    // SAFETY: the module interface of cpnatfwt.h declares these types.
    let (start, stop) = unsafe {
        let start = *lib
            .get::<StartFn>(b"CpsimProviderStart\0")
            .map_err(|_| ModuleError(format!("{shown} does not export {START}")))?;
        let stop = *lib
            .get::<StopFn>(b"CpsimProviderStop\0")
            .map_err(|_| ModuleError(format!("{shown} does not export {STOP}")))?;
        (start, stop)
    };
    // SAFETY: an all-zero Dl_info is a valid value to be overwritten.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address; `info` is writable.
    let found = unsafe { libc::dladdr(start as *const c_void, &mut info) };
    if found == 0 || info.dli_fbase.is_null() {
        return Err(ModuleError(format!("cannot find where {shown} was loaded")));
    }
    Ok(Copy {
        start,
        stop,
        base: info.dli_fbase as usize,
        held: Some(Held { lib, backing }),
    })
}

/// A loaded copy's library handle and file.
pub(crate) struct Held {
    lib: Library,
    backing: Backing,
}

impl Held {
    /// Unloads the copy; false if the dynamic linker keeps it loaded anyway
    /// (its file is then kept open so that no later copy can be mistaken
    /// for it).
    pub(crate) fn unload(self) -> bool {
        let Held { lib, backing } = self;
        let closed = lib.close().is_ok();
        // SAFETY: RTLD_NOLOAD only looks the name up; a handle it
        // returns is closed again at once.
        let still = unsafe { Library::open(Some(&backing.path), RTLD_NOW | libc::RTLD_NOLOAD) };
        match (closed, still) {
            (true, Err(_)) => true,
            (_, Ok(h)) => {
                drop(h);
                std::mem::forget(backing);
                false
            }
            (false, Err(_)) => {
                std::mem::forget(backing);
                false
            }
        }
    }

    /// Leaves the copy loaded for good.
    pub(crate) fn keep(self) {
        std::mem::forget(self.lib);
        std::mem::forget(self.backing);
    }
}
