//! Providers that show cpsim at work.
//!
//! - [`reference`]: an overlay provider on the safe API (rendezvous on the
//!   infrastructure node, peer-to-peer data, retries and timeouts), correct
//!   under every schedule the simulator can produce.
//! - [`sync_raw`]: a provider written on the raw ABI that completes every
//!   call synchronously, with an in-process directory instead of a rendezvous.
//! - [`threaded`]: a black-box provider completing from its own OS thread
//!   (real-time runs only).
//! - The broken providers: the reference with exactly one bug each (see
//!   [`reference::Bug`]); bugs the safe API cannot express are injected at
//!   the ABI edge by [`mutant_abi`].
//! - [`quiescing`]: pends every call and goes quiet the moment it is asked
//!   to (dormancy, REMOVE), which certification must not mistake for a bug.
//! - [`registry`]: every provider by name, for the CLI and the tests.
// `unsafe` only where a provider is written on the raw ABI
// (`mutant_abi`, `sync_raw`), allowed there alone.
#![deny(unsafe_code)]

#[allow(unsafe_code)] // the raw ABI edge: bugs injected in C-shaped tables
pub mod mutant_abi;
pub mod quiescing;
pub mod reference;
pub mod registry;
#[allow(unsafe_code)] // a provider written on the raw ABI
pub mod sync_raw;
pub mod threaded;

pub use registry::{find, registry, Entry, Kind, Registry};
