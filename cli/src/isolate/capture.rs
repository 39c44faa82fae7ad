//! Bounded capture of what a child process writes on its standard error
//! (and, redirected there, its standard output): the first and the last
//! [`KEEP`] bytes and the total count, whatever the module writes.

use parking_lot::Mutex;
use std::io::Read;
use std::sync::Arc;

/// Bytes kept at each end.
pub const KEEP: usize = 4096;

#[derive(Default)]
struct Buf {
    head: Vec<u8>,
    /// A ring of the last bytes past the head.
    tail: Vec<u8>,
    tail_start: usize,
    total: u64,
}

impl Buf {
    fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.head.len() < KEEP {
            let n = (KEEP - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if data.len() >= KEEP {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - KEEP..]);
            self.tail_start = 0;
            return;
        }
        for &b in data {
            if self.tail.len() < KEEP {
                self.tail.push(b);
            } else {
                self.tail[self.tail_start] = b;
                self.tail_start = (self.tail_start + 1) % KEEP;
            }
        }
    }

    fn text(&self) -> Captured {
        let mut tail = self.tail[self.tail_start..].to_vec();
        tail.extend_from_slice(&self.tail[..self.tail_start]);
        let skipped = self.total - self.head.len() as u64 - tail.len() as u64;
        Captured {
            head: String::from_utf8_lossy(&self.head).into_owned(),
            tail: String::from_utf8_lossy(&tail).into_owned(),
            skipped,
            total: self.total,
        }
    }
}

/// What was captured: at most [`KEEP`] bytes at each end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Captured {
    pub head: String,
    pub tail: String,
    /// Bytes between head and tail that were not kept.
    pub skipped: u64,
    pub total: u64,
}

impl Captured {
    /// The last `lines` lines, each cut to 200 characters, joined with
    /// " | ", with the total size when some was dropped; empty if nothing
    /// was written.
    pub fn excerpt(&self, lines: usize) -> String {
        let whole = if self.skipped > 0 {
            format!("{}\n…\n{}", self.head, self.tail)
        } else {
            format!("{}{}", self.head, self.tail)
        };
        let v: Vec<String> = whole
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let l = l.trim_end();
                if l.chars().count() > 200 {
                    let cut: String = l.chars().take(200).collect();
                    format!("{cut}…")
                } else {
                    l.to_string()
                }
            })
            .collect();
        let mut text = v[v.len().saturating_sub(lines)..].join(" | ");
        if self.skipped > 0 || self.total > (2 * KEEP) as u64 {
            text.push_str(&format!(" (output: {} bytes in all)", self.total));
        }
        text
    }
}

/// A capture fed by a reader thread.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Buf>>);

impl Capture {
    /// Reads `from` on a thread of its own until end of file. The thread is
    /// never waited for: a pipe some escaped process keeps open costs a
    /// sleeping thread, not a stuck harness.
    pub fn spawn(from: impl Read + Send + 'static) -> Capture {
        let c = Capture::default();
        let inner = c.0.clone();
        let _ = std::thread::Builder::new()
            .name("cpsim-capture".into())
            .spawn(move || {
                let mut from = from;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => inner.lock().push(&buf[..n]),
                    }
                }
            });
        c
    }

    /// What was written since the last `take`, and starts afresh.
    pub fn take(&self) -> Captured {
        let mut b = self.0.lock();
        let out = b.text();
        *b = Buf::default();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_output_keeps_only_both_ends() {
        let mut b = Buf::default();
        b.push(b"first line\n");
        for _ in 0..1000 {
            b.push(&[b'x'; 10_000]);
        }
        b.push(b"\nlast line\n");
        let c = b.text();
        assert!(c.head.starts_with("first line"));
        assert!(c.tail.ends_with("last line\n"));
        assert_eq!(c.head.len(), KEEP);
        assert_eq!(c.tail.len(), KEEP);
        assert_eq!(c.total, 11 + 10_000_000 + 11);
        let e = c.excerpt(3);
        assert!(e.len() < 1000, "{e}");
        assert!(e.contains("last line") && e.contains("bytes in all"), "{e}");
    }

    #[test]
    fn a_small_output_is_kept_whole() {
        let mut b = Buf::default();
        b.push(b"one\ntwo\n");
        b.push(b"three\n");
        let c = b.text();
        assert_eq!(format!("{}{}", c.head, c.tail), "one\ntwo\nthree\n");
        assert_eq!(c.excerpt(2), "two | three");
    }
}
