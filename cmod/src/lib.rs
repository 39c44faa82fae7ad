//! C provider modules for the simulator.
//!
//! A *provider module* is a shared library compiled against
//! `sim-cp/include/cpnatfwt.h` that exports `CpsimProviderStart` and
//! `CpsimProviderStop` (see the header and `docs/c-providers.md`).
//! [`ModuleFactory`] makes it a [`cpsim_sim::ProviderFactory`]: every simulated
//! host that starts the provider gets a **private copy** of the library, so
//! each host has its own copy of the module's global state, and two hosts can
//! run the same module side by side.
//!
//! [`ModuleImage`] reads and checks a module file *without running any of
//! its code* (its type, machine, exports and imports come from the ELF
//! dynamic symbol table, [`elf`], or a DLL's export and import directories,
//! [`pe`]): the harness does that in its own process, and loads modules
//! only in child processes.
//!
//! How a module's calls reach the right host: the module's `CPNatfwt*`
//! references are undefined symbols, resolved by the dynamic linker in the
//! process's global scope, where a tiny C *router* (`c/router.c`, embedded in
//! this crate and loaded once with `RTLD_GLOBAL`) defines them. The router
//! looks up which loaded object made the call (its return address, through
//! `dladdr`) and hands the call with that object's load address to the
//! simulator; each host's copy is mapped at its own address, so the address
//! names the host, whatever thread the call comes from (the module's own
//! threads included). A call from anywhere else (a tail call from a thread's
//! entry function, a helper library) falls back to the simulator's own
//! routing: the host whose code runs on this thread, then the handle.
//! The facilities of `sim-cp/include/cpsim_module.h` (clock, randomness,
//! timers and tasks, simulated datagrams) are routed the same way; a module
//! that exports its marker runs on virtual time.
//!
//! Why not one copy of a shim per host, each bound to its host: the dynamic
//! linker binds a module's undefined symbols to the *first* definition in
//! the global scope, so every copy of a module would bind to the first
//! shim loaded. Separate link namespaces (`dlmopen`) avoid that but load a
//! second C library per host. Routing by caller address needs neither.
//!
//! On Windows (`windows.rs`) a module is a DLL importing the five functions
//! from `iphlpapi.dll`: each host's copy is the DLL's bytes with that import
//! renamed to the router, `cpsimrt.dll` (built from the same `c/router.c`,
//! forwarding every other `iphlpapi.dll` export to the system's), written
//! to a private directory under a name of its own and loaded there; the
//! router finds the calling copy with `GetModuleHandleExW(FROM_ADDRESS)`.
//! The routing itself (`loader.rs`, `facility.rs`) is the same code on both
//! systems. Elsewhere [`ModuleFactory::new`] returns an error.

pub mod elf;
#[cfg(any(unix, windows))]
mod facility;
pub mod image;
#[cfg(any(unix, windows))]
mod loader;
#[cfg(unix)]
#[path = "unix.rs"]
mod os;
#[cfg(windows)]
#[path = "windows.rs"]
mod os;
pub mod pe;

pub use image::ModuleImage;
#[cfg(any(unix, windows))]
pub use loader::{
    first_start_failure, foreign_thread_calls, loaded_copies, phase, resident_copies,
    ModuleFactory, Phase,
};

/// Why a module cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError(pub String);

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModuleError {}

/// C modules are not supported on this target.
#[cfg(not(any(unix, windows)))]
pub struct ModuleFactory;

#[cfg(not(any(unix, windows)))]
impl ModuleFactory {
    /// Always an error on this target.
    pub fn new(path: &std::path::Path) -> Result<std::sync::Arc<ModuleFactory>, ModuleError> {
        Err(ModuleError(format!(
            "{}: C provider modules are only supported on unix and Windows targets",
            path.display()
        )))
    }
}
