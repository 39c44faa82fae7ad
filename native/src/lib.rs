//! The backend for a *native* Connectivity Platform: Windows 7's
//! `iphlpapi.dll`, or any library exporting the five `CPNatfwt*` functions
//! (the simulator's own C library, `cpsim-capi`, is the stand-in the tests
//! use, on Linux and under Wine).
//!
//! [`NativePlatform::load`] loads the library from a path the caller picks
//! ([`NativePlatform::system`]: `iphlpapi.dll`, Windows only) and resolves
//! the five exports at run time, never at link time. Where they are missing
//! (every Windows after 7, and Wine) loading fails with
//! [`NativeError::NotAvailable`]: "the Connectivity Platform API is not
//! available on this system".
//!
//! **The bridge.** A raw-ABI provider calls the platform through the
//! methods of [`NativePlatform`] (same arguments as the C functions). The
//! bridge hands the platform its own dispatch table, whose entries record
//! each callback (arguments, return value) in a [`Trace`] and forward it to
//! the provider's; and its own completion routine, which records each
//! completion and forwards it to the platform's. Each exported function's
//! result is recorded too. [`NativePlatform::check`] then runs the very
//! checker that holds the simulator to the C-rules, [`cpsim_sim::oracle`], over
//! that trace: what the real platform did is judged by the same rules.
//!
//! **Safe providers.** [`NativePlatform`] implements
//! [`cpsim_sim::Platform`]: leak it ([`NativePlatform::into_static`]) and give
//! it to [`cpsim_sim::Sim::with_platform`], and every provider of that world,
//! safe [`SessionHandler`](cpsim_sim::safe::SessionHandler)s included, calls
//! this platform through the bridge. The world then runs in real time and
//! supplies only the providers' tasks, timers and (simulated) network. What
//! the type system cannot stop a safe provider doing (a panic in a callback,
//! CRASH-1; a `Pending` token dropped, COMP-4) is recorded as a provider
//! violation: [`NativePlatform::provider_violations`].
//!
//! What a provider cannot observe, the bridge cannot record, so some
//! C-rules are only partly checked on a native platform (see
//! `docs/c-providers.md`): how the platform *read* a call (COMP-1) is
//! assumed to follow the contract; interface names (REG-1..3) are not read;
//! every transport ID the platform passes counts as issued by it (TID-1).
//!
//! Every callback entry point catches panics (a panic must not unwind into
//! the platform). The library is never unloaded: the platform may still run
//! threads of its own.

mod bridge;
mod calls;
mod platform;
mod record;
pub mod standin;

pub use platform::NativePlatform;

use std::path::PathBuf;

/// The five exports, in CONTRACT order.
pub const EXPORTS: [&str; 5] = [
    "CPNatfwtCreateProviderInstance",
    "CPNatfwtRegisterProviderInstance",
    "CPNatfwtDeregisterProviderInstance",
    "CPNatfwtDestroyProviderInstance",
    "CPNatfwtIndicateReceivedBuffers",
];

/// Why a native platform cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeError {
    /// The library itself could not be loaded.
    Load { path: PathBuf, error: String },
    /// The library (or this operating system) lacks the API.
    NotAvailable { path: PathBuf, missing: Vec<String> },
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NativeError::Load { path, error } => {
                write!(f, "cannot load {}: {error}", path.display())
            }
            NativeError::NotAvailable { path, missing } => write!(
                f,
                "the Connectivity Platform API is not available on this system: {} does not export {} (only Windows 7's iphlpapi.dll has it)",
                path.display(),
                if missing.len() == EXPORTS.len() {
                    "any of the CPNatfwt* functions".to_string()
                } else {
                    missing.join(", ")
                }
            ),
        }
    }
}

impl std::error::Error for NativeError {}
