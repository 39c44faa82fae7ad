//! `reference`: an overlay provider on the safe API, meant as the starting
//! point of a real product.
//!
//! ## Design
//!
//! - **Rendezvous** ([`rendezvous`]): a service on the infrastructure node
//!   (started by [`ReferenceFactory`]'s `infrastructure`) that knows which
//!   peer holds which transport ID. ADD registers the ID and REMOVE
//!   unregisters it; both are pended until the rendezvous answers. An ID
//!   held by someone else is refused (TID-4).
//! - **Peers** ([`node`]): each host's provider binds one port ([`node::PORT`])
//!   for rendezvous answers and peer traffic, and runs one instance.
//! - **REACH** asks the rendezvous which node holds the ID, then asks that
//!   node whether it holds it on an active instance, and answers with what
//!   the node said, provided the answer is fresh (TID-6). Unknown IDs fail.
//! - **SEND** goes peer to peer, directly over the simulated network (no
//!   relay): the bytes go to the node found by REACH, which indicates them
//!   with its own ID as local and ours as remote, and acknowledges. SEND
//!   completes with S_OK only once the receiver has handed the bytes to its
//!   platform, and fails when the receiver refuses them (it is dormant, or
//!   no longer holds the ID) or never answers. Receivers de-duplicate by
//!   datagram number, so retransmissions and network duplicates are
//!   indicated once (DATA-5).
//! - **Retries**: every request is sent again every 500 ms, a few times
//!   (3 to 8, by kind: [`node::attempts`]), then the call fails, so every
//!   pended call ends within 4 s of its first send, well inside the
//!   platform's limits, whatever the network does.
//! - **Activation** is pended until the rendezvous answers a ping; dormancy
//!   is synchronous (the provider just stops indicating: data arriving while
//!   not active is refused, DATA-1). Registrations survive dormancy because
//!   the IDs stay added.
//! - **TERMINATE** fails everything still pended for the instance, gives up
//!   its IDs in the background, and, when the platform ended the session,
//!   deregisters and destroys the instance from a timer (LIFE-7) and opens a
//!   fresh one on the same interface (unless the platform shut down).
//! - **Stop** deregisters every instance, completes every pended call,
//!   destroys every instance, says goodbye to the rendezvous and closes the
//!   port (LIFE-8).
//!
//! Robust to task timing: a worker task only carries a request number.
//! Pending completions live in the provider's table, and whoever takes one
//! out completes it, so a worker that runs early, late, after a timeout or
//! never can neither complete twice nor leak a completion.
//!
//! The broken variants are this provider with exactly one [`Bug`].

mod bug;
mod net;
pub mod node;
pub mod rendezvous;
mod session;
mod subtle;
pub mod wire;

pub use bug::Bug;
pub use subtle::Subtle;

use cpsim_sim::{Cx, Provider, ProviderFactory};
use node::Node;
use std::sync::Arc;

/// Makes reference providers (or one of its broken variants).
pub struct ReferenceFactory {
    bug: Bug,
    subtle: Subtle,
}

impl ReferenceFactory {
    /// The correct reference provider.
    pub fn new() -> Arc<ReferenceFactory> {
        Self::with_bug(Bug::None)
    }
    /// The reference provider with one deliberate bug.
    pub fn with_bug(bug: Bug) -> Arc<ReferenceFactory> {
        Arc::new(ReferenceFactory {
            bug,
            subtle: Subtle::None,
        })
    }
    /// The reference provider with one subtle bug.
    pub fn with_subtle(subtle: Subtle) -> Arc<ReferenceFactory> {
        Arc::new(ReferenceFactory {
            bug: Bug::None,
            subtle,
        })
    }
    /// The bug it carries.
    pub fn bug(&self) -> Bug {
        self.bug
    }
}

impl ProviderFactory for ReferenceFactory {
    fn name(&self) -> String {
        if self.subtle != Subtle::None {
            return self.subtle.name();
        }
        match self.bug.rule() {
            None => "reference".into(),
            Some(r) => format!("broken-{}", r.as_str().to_lowercase()),
        }
    }
    fn infrastructure(&self, cx: &Cx) {
        rendezvous::start(cx, self.bug);
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(ReferenceProvider {
            bug: self.bug,
            subtle: self.subtle,
            node: None,
        })
    }
}

/// The provider on one host.
struct ReferenceProvider {
    bug: Bug,
    subtle: Subtle,
    node: Option<Arc<Node>>,
}

impl Provider for ReferenceProvider {
    fn start(&mut self, cx: &Cx) {
        let node = Node::new(cx, self.bug, self.subtle);
        node.start(cx);
        self.node = Some(node);
    }
    fn stop(&mut self, cx: &Cx) {
        if let Some(node) = self.node.take() {
            node.stop(cx);
        }
    }
}
