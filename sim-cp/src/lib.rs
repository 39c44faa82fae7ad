//! `sim-cp`: a simulated Windows 7 Connectivity Platform (the `CPNatfwt*`
//! NAT/firewall-traversal provider API of `iphlpapi.dll`) that upholds every
//! platform guarantee of the contract and catches every provider rule the
//! moment it is broken.
//!
//! - [`abi`]: the C ABI as `#[repr(C)]` Rust (and `include/cpnatfwt.h`).
//! - [`rules`]: the rule catalogue, as data.
//! - [`Sim`]: a world of simulated hosts, each with its own platform.
//! - [`ffi`]: the five exported functions, for raw-ABI providers.
//! - [`ledger`]: where one call stands in the completion protocol, as a
//!   pure state machine shared by the simulator and the native bridge.
//! - [`edge`]: reading C memory and guarding against panics at the C edge,
//!   written once for every crate.
//! - [`safe`]: the safe Rust provider API.
//! - [`platform`]: which platform a provider's calls go to (the simulator,
//!   or a native one through `cpsim-native`).
//! - [`oracle`]: the platform checker (C-rules), over a trace.
//!
//! See ARCHITECTURE.md at the repository root for the map.

pub mod abi;
pub mod config;
pub mod edge;
mod engine;
mod event_queue;
pub mod ffi;
mod fxhash;
mod handle;
mod interface_name;
pub mod ledger;
pub mod net;
pub mod observe;
pub mod oracle;
pub mod platform;
pub mod rng;
pub mod rules;
pub mod runtime;
pub mod safe;
pub mod sddl;
pub mod time;
pub mod trace;
pub mod transport_id;
pub mod violation;
pub mod watchdog;
pub mod window_ledger;

pub use config::{
    Callback, ClockMode, Config, Millis, NetFaults, PlatformFault, Probability, TaskTiming,
    TimeLimits,
};
pub use engine::{
    Action, Family, HostName, IdleAction, Outcome, Provider, ProviderFactory, Sim, INFRA,
};
pub use net::NetAddr;
pub use platform::{Platform, SIMULATED};
pub use rules::{RuleId, CATALOGUE};
pub use runtime::{Cx, WeakCx};
pub use time::Nanos;
pub use trace::Trace;
pub use transport_id::Tid;
pub use violation::Violation;
