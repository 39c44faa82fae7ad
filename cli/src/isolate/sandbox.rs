//! Network isolation of cases: on Linux each case runs on a thread with a
//! network namespace of its own that has only a loopback interface, so a
//! module that binds fixed ports, or talks to fixed addresses, sees its own
//! case's traffic and nothing else, however many cases run at once.
//!
//! A namespace belongs to a thread, and the threads a thread creates start
//! in it: the case thread makes a fresh one before it loads the module, so
//! every thread of the module, and every socket it opens, belongs to that
//! case. A runner that may not create namespaces (not root) first enters a
//! user namespace of its own, where it may; where even that is refused,
//! cases share the machine's network and the harness runs them one at a
//! time, saying so once.

use serde::{Deserialize, Serialize};

/// How cases of a runner are isolated from each other's network.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// A network namespace per case.
    Netns,
    /// A network namespace per case, inside a user namespace (a runner
    /// without the privilege to create network namespaces directly).
    UserNetns,
    /// None: cases share the machine's network.
    None,
}

impl Isolation {
    /// Whether cases get a network of their own.
    pub fn isolated(self) -> bool {
        self != Isolation::None
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isolation::Netns => "a network namespace per case",
            Isolation::UserNetns => "a network namespace per case, in a user namespace",
            Isolation::None => "none (cases share the machine's network)",
        })
    }
}

/// The environment variable that chooses the isolation of case runners:
/// `auto` (the default: a network namespace, else one inside a user
/// namespace, else none), `netns`, `userns` (the unprivileged way, even
/// for root) or `off`.
pub const ENV: &str = "CPSIM_NET_ISOLATION";

/// Sets up the runner (at its start, while it has a single thread: a user
/// namespace requires it). Returns what it got and, when that is less than
/// asked, why.
pub fn setup() -> (Isolation, Option<String>) {
    let asked = std::env::var(ENV).unwrap_or_default();
    match asked.as_str() {
        "off" => (
            Isolation::None,
            Some(format!("network isolation is off ({ENV}=off)")),
        ),
        "" | "auto" => imp::auto(),
        "netns" => match imp::netns() {
            Ok(()) => (Isolation::Netns, None),
            Err(e) => (Isolation::None, Some(e)),
        },
        "userns" => match imp::userns() {
            Ok(()) => (Isolation::UserNetns, None),
            Err(e) => (Isolation::None, Some(e)),
        },
        other => (
            Isolation::None,
            Some(format!(
                "{ENV}={other} is not one of auto, netns, userns, off"
            )),
        ),
    }
}

/// Gives the calling thread (a case thread) a fresh network namespace with
/// its loopback interface up.
pub fn fresh_case_network() -> Result<(), String> {
    imp::netns()
}

#[cfg(target_os = "linux")]
mod imp {
    fn errno() -> String {
        std::io::Error::last_os_error().to_string()
    }

    /// Brings `lo` up in the calling thread's network namespace.
    fn loopback_up() -> Result<(), String> {
        // SAFETY: a plain socket call; the descriptor is closed below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(format!("socket: {}", errno()));
        }
        // struct ifreq: the name, then (at offset 16) a short of flags.
        let mut req = [0u8; 40];
        req[..2].copy_from_slice(b"lo");
        // SAFETY: `req` is a zeroed struct ifreq naming "lo", large enough
        // for the kernel to read and write.
        let got = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as _, req.as_mut_ptr()) };
        let result = if got < 0 {
            Err(format!("reading the flags of lo: {}", errno()))
        } else {
            let flags =
                i16::from_ne_bytes([req[16], req[17]]) | (libc::IFF_UP | libc::IFF_RUNNING) as i16;
            req[16..18].copy_from_slice(&flags.to_ne_bytes());
            // SAFETY: as above, with the new flags.
            let set = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS as _, req.as_mut_ptr()) };
            if set < 0 {
                Err(format!("bringing lo up: {}", errno()))
            } else {
                Ok(())
            }
        };
        // SAFETY: our descriptor, closed once.
        unsafe { libc::close(fd) };
        result
    }

    pub fn netns() -> Result<(), String> {
        // SAFETY: unshare only changes the calling thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("unshare(CLONE_NEWNET): {}", errno()));
        }
        loopback_up()
    }

    fn write(path: &str, text: &str) -> Result<(), String> {
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))
    }

    pub fn userns() -> Result<(), String> {
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        // SAFETY: unshare changes only this (single-threaded) process.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return Err(format!("unshare(CLONE_NEWUSER): {}", errno()));
        }
        // The same user inside; groups cannot be mapped without privilege.
        write("/proc/self/setgroups", "deny")?;
        write("/proc/self/uid_map", &format!("{uid} {uid} 1"))?;
        write("/proc/self/gid_map", &format!("{gid} {gid} 1"))?;
        netns()
    }

    pub fn auto() -> (super::Isolation, Option<String>) {
        let direct = match netns() {
            Ok(()) => return (super::Isolation::Netns, None),
            Err(e) => e,
        };
        match userns() {
            Ok(()) => (super::Isolation::UserNetns, None),
            Err(e) => (super::Isolation::None, Some(format!("{direct}; {e}"))),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    #[cfg(windows)]
    const NO: &str = "Windows has no network namespaces";
    #[cfg(not(windows))]
    const NO: &str = "network namespaces are a Linux feature";
    pub fn netns() -> Result<(), String> {
        Err(NO.into())
    }
    pub fn userns() -> Result<(), String> {
        Err(NO.into())
    }
    pub fn auto() -> (super::Isolation, Option<String>) {
        (super::Isolation::None, Some(NO.into()))
    }
}
