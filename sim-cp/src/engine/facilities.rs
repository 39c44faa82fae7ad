//! The world's side of the provider facilities (`runtime.rs`, [`Cx`]): host
//! names, the clock, where a spawned task goes, timers, randomness, network
//! endpoints and datagrams between nodes. Each is one operation on the
//! world, named by what the provider asks for; `Cx` takes the lock, calls
//! it, and wakes the driver when something was queued.
//!
//! [`Cx`]: crate::runtime::Cx

use super::{Ev, World};
use crate::config::{Callback, ClockMode};
use crate::net::{NetAddr, Packet};
use crate::runtime::{Handler, Task};
use crate::time::Nanos;
use crate::trace::What;

/// Where the harness put a spawned task (`Config::tasks`).
pub(crate) enum Placed {
    /// To run before the spawning callback's return is seen: the caller
    /// keeps it.
    BeforeReturn(Task),
    /// Queued: now, late, or after a timeout.
    Queued,
    /// Never to run (kept in limbo until the world ends).
    Never,
}

impl World {
    /// The current time, without reading the wall clock.
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        self.now
    }

    /// The current time (real-time runs read the wall clock first).
    #[inline]
    pub(crate) fn clock_now(&mut self) -> Nanos {
        self.sync_clock();
        self.now
    }

    /// Virtual or real time.
    #[inline]
    pub(crate) fn clock_mode(&self) -> ClockMode {
        self.cfg.clock
    }

    /// The watchdog's limit for a callback that does not return (ms).
    #[inline]
    pub(crate) fn watchdog_ms(&self) -> u64 {
        self.cfg.watchdog_ms
    }

    /// What was recorded so far (read-only: only the engine records).
    #[inline]
    pub(crate) fn recorder(&self) -> &crate::trace::Recorder {
        &self.rec
    }

    /// Application datagrams sent and delivered so far.
    #[inline]
    pub(crate) fn datagram_counts(&self) -> (u32, u32) {
        (self.traffic.sent(), self.traffic.delivered())
    }

    /// Host `host`'s name.
    #[inline]
    pub(crate) fn host_name(&self, host: u8) -> &str {
        &self.hosts[host as usize].name
    }

    /// The names of every host with a platform.
    #[inline]
    pub(crate) fn platform_host_names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| h.has_platform)
            .map(|h| h.name.clone())
            .collect()
    }

    /// A task spawned on `host` (`in_callback`: from inside a callback):
    /// the harness decides when it runs, from the task randomness.
    #[inline]
    pub(crate) fn place_task(&mut self, host: u8, task: Task, in_callback: bool) -> Placed {
        let t = self.cfg.tasks.clone();
        let roll = (self.task_rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (mut delay, mut stalled) = (Nanos::ZERO, false);
        let mut edge = t.before_return;
        if roll < edge && in_callback {
            return Placed::BeforeReturn(task);
        }
        edge += t.late;
        if roll >= t.before_return && roll < edge {
            delay = Nanos::from_millis(self.task_rng.range(1, t.late_max_ms.max(1)));
        } else if roll >= edge && roll < edge + t.after_timeout {
            let max = Callback::ALL
                .iter()
                .map(|c| self.cfg.limits.limit(*c))
                .max()
                .unwrap_or_default();
            delay = max.saturating_add(Nanos::from_secs(1));
            stalled = true;
        } else if roll >= edge + t.after_timeout && roll < edge + t.after_timeout + t.never {
            self.hosts[host as usize].stalls += 1;
            self.record(
                host,
                0,
                What::Note {
                    text: "harness: a provider task will never run".into(),
                },
            );
            // Kept, not dropped: dropping provider state under the lock could
            // re-enter the platform (a Pending token reports itself).
            self.limbo.push(task);
            return Placed::Never;
        }
        if stalled {
            self.hosts[host as usize].stalls += 1;
        }
        let at = self.now.saturating_add(delay);
        let task = self.tasks.keep(Some(task));
        self.schedule(
            at,
            Ev::Task {
                host,
                stalled,
                task,
            },
        );
        Placed::Queued
    }

    /// Queues `task` on `host` after `d`.
    #[inline]
    pub(crate) fn timer(&mut self, host: u8, d: Nanos, task: Task) {
        let at = self.now.saturating_add(d);
        let task = self.tasks.keep(Some(task));
        self.schedule(
            at,
            Ev::Task {
                host,
                stalled: false,
                task,
            },
        );
    }

    /// A random number from the run's task randomness.
    #[inline]
    pub(crate) fn random(&mut self) -> u64 {
        self.task_rng.next_u64()
    }

    /// Blocking work of duration `d`: in virtual time the clock moves on
    /// (true); in real time the caller sleeps itself (false).
    #[inline]
    pub(crate) fn block_for(&mut self, d: Nanos) -> bool {
        match self.cfg.clock {
            ClockMode::Virtual => {
                self.now = self.now.saturating_add(d);
                true
            }
            ClockMode::RealTime => false,
        }
    }

    /// Binds `port` on `host`'s node.
    #[inline]
    pub(crate) fn bind(
        &mut self,
        host: u8,
        port: u16,
        handler: Handler,
    ) -> Result<NetAddr, String> {
        let h = &mut self.hosts[host as usize];
        if h.endpoints.contains_key(&port) {
            return Err(format!("port {port} is already bound on {}", h.name));
        }
        h.endpoints.insert(port, handler);
        Ok(NetAddr { node: host, port })
    }

    /// Closes `port` on `host`.
    #[inline]
    pub(crate) fn unbind(&mut self, host: u8, port: u16) {
        self.hosts[host as usize].endpoints.remove(&port);
    }

    /// A datagram from `host`'s `from_port` to `to` over the simulated
    /// network (loss, delay, duplication, partitions apply). An owned
    /// payload becomes the last copy's packet as it is; the others (and a
    /// borrowed one) are copied into spare buffers.
    #[inline]
    pub(crate) fn send_datagram(
        &mut self,
        host: u8,
        from_port: u16,
        to: NetAddr,
        mut data: Payload,
    ) {
        let now = self.now;
        let mut delays = [Nanos::ZERO; 2];
        let mut n = 0;
        self.net.route_each(host, to.node, now, |d| {
            delays[n] = d;
            n += 1;
        });
        let from = NetAddr {
            node: host,
            port: from_port,
        };
        for (k, &d) in delays[..n].iter().enumerate() {
            let bytes = if k + 1 < n {
                data.copy()
            } else {
                std::mem::replace(&mut data, Payload::Borrowed(&[])).into_vec()
            };
            let p = Packet {
                from,
                to,
                data: bytes,
            };
            let p = self.packets.keep(Some(p));
            self.schedule(now.saturating_add(d), Ev::Net(p));
        }
        // A packet lost: an owned buffer goes back to the spare ones.
        if let Payload::Owned(v) = data {
            crate::net::give_back(v);
        }
    }
}

/// A datagram's bytes as a provider hands them to the network.
pub(crate) enum Payload<'a> {
    /// Still the provider's: copied.
    Borrowed(&'a [u8]),
    /// Given up by the provider: kept as it is.
    Owned(Vec<u8>),
}

impl Payload<'_> {
    /// A copy of the bytes, in a spare buffer.
    fn copy(&self) -> Vec<u8> {
        let b: &[u8] = match self {
            Payload::Borrowed(b) => b,
            Payload::Owned(v) => v,
        };
        let mut v = crate::net::spare_buffer(b.len());
        v.extend_from_slice(b);
        v
    }
    /// The bytes as a buffer: an owned one as it is, else a copy.
    fn into_vec(self) -> Vec<u8> {
        match self {
            Payload::Owned(v) => v,
            borrowed => borrowed.copy(),
        }
    }
}
