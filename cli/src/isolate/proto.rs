//! What the harness and a case runner (a child process) say to each other.
//!
//! Frames on a pipe: a kind byte, a 32-bit little-endian length, then the
//! payload. The harness sends the module once (`L`: a JSON header and the
//! library's bytes), then cases (`C`) or a load check (`K`) one at a time;
//! the runner answers each with one JSON message ([`FromChild`], kind `J`).
//! A runner that is dying writes a fixed-size `F` frame from its signal
//! handler (no allocation there) before the signal ends it; on Windows
//! from its unhandled-exception filter, with the exception code.

use super::sandbox::Isolation;
use cpsim_certify::scenario::Scenario;
use cpsim_sim::{Callback, ClockMode, Outcome};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::PathBuf;

/// Kind bytes.
pub const LOAD: u8 = b'L';
pub const CASE: u8 = b'C';
pub const CHECK: u8 = b'K';
pub const JSON: u8 = b'J';
pub const FATAL: u8 = b'F';

/// The largest frame either side accepts (a library, or an outcome).
pub const MAX_FRAME: usize = 512 << 20;

/// The module a runner is to load (with its bytes, after the header).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadMsg {
    pub path: PathBuf,
}

/// One case to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseMsg {
    pub scenario: Scenario,
    pub clock: ClockMode,
    /// The runner gives up on the case after this long (ms of wall-clock
    /// time) and reports what it has.
    pub deadline_ms: u64,
}

/// A load check: load one copy (running the module's initialisers) and say
/// whether that worked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckMsg {
    pub deadline_ms: u64,
}

/// Where module code was when something happened.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Where {
    /// `cpsim_cmod::Phase` as a number.
    pub phase: u8,
    /// The callback running (index into `Callback::ALL`), if any.
    pub callback: Option<u8>,
}

impl Where {
    /// "in TRANSITION_ACTIVE", "while loading the module (its
    /// initialisers)", …
    pub fn describe(&self) -> String {
        if let Some(cb) = self.callback.and_then(|i| Callback::ALL.get(i as usize)) {
            return format!("in {}", cb.name());
        }
        match self.phase {
            1 => "while loading the module (its initialisers)".into(),
            2 => "in CpsimProviderStart".into(),
            3 => "in CpsimProviderStop".into(),
            4 => "while unloading the module (its finalisers)".into(),
            _ => "outside any callback (in a thread or task of the module)".into(),
        }
    }
}

/// A runner's messages.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum FromChild {
    /// First message: how the runner is isolated.
    Hello {
        isolation: Isolation,
        /// Why isolation is weaker than asked, if it is.
        note: Option<String>,
    },
    /// A case ran to its end.
    Done {
        outcome: Outcome,
        /// Threads of the module still running after it was stopped.
        leftover_threads: usize,
        /// Calls from threads the simulator does not run (counted for
        /// virtual-time modules only), since the runner started.
        foreign_calls: u64,
        /// Module copies the runner keeps loaded for good.
        #[serde(default)]
        resident_copies: usize,
        /// The first `CpsimProviderStart` that failed in the runner, if
        /// any (host and result).
        #[serde(default)]
        start_failure: Option<String>,
    },
    /// A load check's result.
    Checked { error: Option<String> },
    /// The case did not finish by its deadline: what it recorded so far.
    /// The runner ends itself right after.
    Hung {
        partial: Option<Box<Outcome>>,
        at: Where,
    },
    /// Module code is ending the process (`exit`): what the case recorded.
    Exiting {
        partial: Option<Box<Outcome>>,
        at: Where,
    },
    /// A fatal signal, or on Windows an unhandled exception's code
    /// (decoded from an `F` frame).
    Fatal { signal: i32, at: Where },
    /// The runner could not run what it was sent.
    Failed { message: String },
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&len.to_le_bytes());
    w.write_all(&head)?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame; `None` at end of file.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(head[1..].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// The payload of an `L` frame.
pub fn load_payload(msg: &LoadMsg, bytes: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(msg).expect("a load header serialises");
    let mut out = Vec::with_capacity(4 + header.len() + bytes.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(bytes);
    out
}

/// Splits an `L` payload into its header and the library's bytes.
pub fn parse_load(payload: &[u8]) -> Result<(LoadMsg, Vec<u8>), String> {
    let n = payload
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("a short load frame")?;
    let header = payload.get(4..4 + n).ok_or("a short load frame")?;
    let msg: LoadMsg = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    Ok((msg, payload[4 + n..].to_vec()))
}

/// The fixed-size body of an `F` frame: signal, phase, callback (255: none).
pub fn fatal_body(signal: i32, phase: u8, callback: Option<u8>) -> [u8; 6] {
    let s = signal.to_le_bytes();
    [s[0], s[1], s[2], s[3], phase, callback.unwrap_or(255)]
}

/// Decodes a runner's frame.
pub fn decode(kind: u8, payload: &[u8]) -> Result<FromChild, String> {
    match kind {
        JSON => serde_json::from_slice(payload).map_err(|e| format!("an unreadable message: {e}")),
        FATAL if payload.len() == 6 => Ok(FromChild::Fatal {
            signal: i32::from_le_bytes(payload[..4].try_into().expect("4 bytes")),
            at: Where {
                phase: payload[4],
                callback: (payload[5] != 255).then_some(payload[5]),
            },
        }),
        k => Err(format!("an unknown frame kind {k}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_fatal_frame_decodes() {
        let mut buf = Vec::new();
        write_frame(&mut buf, FATAL, &fatal_body(11, 2, Some(2))).unwrap();
        write_frame(
            &mut buf,
            LOAD,
            &load_payload(
                &LoadMsg {
                    path: "x.so".into(),
                },
                b"\x7fELF",
            ),
        )
        .unwrap();
        let mut r = &buf[..];
        let (k, p) = read_frame(&mut r).unwrap().unwrap();
        match decode(k, &p).unwrap() {
            FromChild::Fatal { signal, at } => {
                assert_eq!(signal, 11);
                assert_eq!(at.describe(), "in TRANSITION_ACTIVE");
            }
            other => panic!("{other:?}"),
        }
        let (k, p) = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(k, LOAD);
        let (m, bytes) = parse_load(&p).unwrap();
        assert_eq!(m.path, PathBuf::from("x.so"));
        assert_eq!(bytes, b"\x7fELF");
        assert!(read_frame(&mut r).unwrap().is_none());
    }
}
