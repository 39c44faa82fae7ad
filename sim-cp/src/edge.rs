//! The C edge, written once: reading what a pointer from the other side
//! points at, and keeping a Rust panic from crossing into C.
//!
//! Every place where C calls Rust or Rust reads C memory — the simulator's
//! exports ([`crate::ffi`]), its reads of what providers pass
//! (`engine/traffic.rs`), the safe API's adapter ([`crate::safe`]), the
//! raw-ABI demo providers, the native bridge (`cpsim-native`) and the C
//! library (`cpsim-capi`) — uses these helpers instead of its own copy, so a
//! malformed transport ID, a looping buffer chain or an unterminated string
//! is handled the same way everywhere:
//!
//! - a transport ID is read only if its pointer is non-NULL and its size is
//!   4 or 16 (an IPv4 or IPv6 address); anything else is `None`, and no byte
//!   past a declared size is read;
//! - a buffer chain is walked at most a given number of elements (a chain
//!   that loops or never ends stops there);
//! - a wide string is read up to its NUL or a given number of units.

use crate::abi::{CPNATFWT_BUFFER, CPNATFWT_TRANSPORT_ID};
use crate::transport_id::Tid;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic inside it is caught and `on_panic` returned instead,
/// so that no panic unwinds into C (which is undefined behaviour).
pub fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// A copy of the transport ID at `p`: `None` if `p` or its address pointer
/// is NULL, or its size is neither 4 nor 16.
///
/// # Safety
/// `p` is NULL or points at a `CPNATFWT_TRANSPORT_ID` (any alignment) whose
/// `transportId` points at `size` readable bytes when `size` is 4 or 16.
pub unsafe fn transport_id(p: *const CPNATFWT_TRANSPORT_ID) -> Option<Tid> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and a transport ID per the function's contract.
    let t = unsafe { p.read_unaligned() };
    if t.transportId.is_null() || (t.size != 4 && t.size != 16) {
        return None;
    }
    // SAFETY: the ID declares `size` bytes there, and size is 4 or 16.
    Tid::from_bytes(unsafe { std::slice::from_raw_parts(t.transportId, t.size as usize) })
}

/// The bytes of the buffer chain at `chain`, in order, reading at most
/// `max_elements` elements (elements with a NULL buffer or size 0 add
/// nothing).
///
/// # Safety
/// `chain` is NULL or points at a chain of `CPNATFWT_BUFFER`s (any
/// alignment), each element's `buffer` pointing at `size` readable bytes,
/// for at least the first `max_elements` elements.
pub unsafe fn chain_bytes(chain: *const CPNATFWT_BUFFER, max_elements: usize) -> Vec<u8> {
    // One allocation of the right size (the sizes first, then the bytes),
    // not a reallocation and copy per element.
    // SAFETY: per the function's contract.
    let total = unsafe { elements(chain, max_elements) }
        .filter(|b| !b.buffer.is_null())
        .map(|b| b.size as usize)
        .sum();
    let mut out = Vec::with_capacity(total);
    // SAFETY: as above.
    for b in unsafe { elements(chain, max_elements) } {
        if b.size > 0 && !b.buffer.is_null() {
            // SAFETY: the element declares `size` bytes at `buffer`.
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(b.buffer, b.size as usize) });
        }
    }
    out
}

/// The elements of the chain at `chain` (copies), at most `max_elements`.
///
/// # Safety
/// `chain` is NULL or points at a chain of `CPNATFWT_BUFFER`s (any
/// alignment) for at least its first `max_elements` elements; the
/// elements' bytes are not read.
unsafe fn elements(
    chain: *const CPNATFWT_BUFFER,
    max_elements: usize,
) -> impl Iterator<Item = CPNATFWT_BUFFER> {
    let mut c = chain;
    std::iter::from_fn(move || {
        if c.is_null() {
            return None;
        }
        // SAFETY: an element of the chain, per the function's contract
        // (the walk stops after `max_elements` below).
        let b = unsafe { c.read_unaligned() };
        c = b.next;
        Some(b)
    })
    .take(max_elements)
}

/// The total size the elements of the chain at `chain` declare (saturating),
/// reading at most `max_elements` elements and none of their bytes.
///
/// # Safety
/// As [`chain_bytes`], except that no element's bytes need be readable.
pub unsafe fn chain_len(chain: *const CPNATFWT_BUFFER, max_elements: usize) -> u32 {
    // SAFETY: per the function's contract.
    unsafe { elements(chain, max_elements) }.fold(0u32, |total, b| total.saturating_add(b.size))
}

/// Copies the `out.len()` bytes at address `at` of this process into
/// `out`; `false`, with nothing read by a plain load, when any of them is
/// not readable memory — a provider freed it and the allocator gave it back
/// to the operating system. Used where the platform reads again, later,
/// memory a provider promised to keep (a held indication, DATA-3): a broken
/// promise must be reported, not fault the process.
///
/// On Linux this is `process_vm_readv` on this process, and on Windows
/// `ReadProcessMemory` of the current process: both report an unreadable
/// page as an error instead of a fault. Where the call itself is refused
/// (e.g. a sandbox that forbids the system call) and elsewhere, the bytes
/// are read directly, so an unmapped address still faults there.
///
/// # Safety
/// The bytes at `at` are either readable or not mapped at all: no other
/// thread is writing them while they are read (what is read is compared,
/// not trusted).
pub unsafe fn copy_if_mapped(at: usize, out: &mut [u8]) -> bool {
    if out.is_empty() {
        return true;
    }
    match os_copy(at, out) {
        Some(ok) => ok,
        None => {
            // SAFETY: per the function's contract; the checked copy was
            // refused by the system, so this is the plain read it replaces.
            unsafe {
                std::ptr::copy_nonoverlapping(at as *const u8, out.as_mut_ptr(), out.len());
            }
            true
        }
    }
}

/// Pages of this process found mapped, so that memory spread over many
/// small pieces (a buffer chain of one byte per element) is checked with
/// one system call per page, not one per piece (see [`copy_if_mapped`]).
#[derive(Default)]
pub struct MappedPages {
    known: Vec<usize>,
}

impl MappedPages {
    /// Granularity of the check: the smallest page size of the systems
    /// cpsim runs on (a larger real page is checked in several steps).
    const PAGE: usize = 4096;

    /// Whether the `len` bytes at `at` are all mapped (each page not seen
    /// before is probed with [`copy_if_mapped`]), so that reading them
    /// cannot fault while the memory stays as it is.
    ///
    /// # Safety
    /// As [`copy_if_mapped`], for each page probed.
    pub unsafe fn cover(&mut self, at: usize, len: usize) -> bool {
        if len == 0 {
            return true;
        }
        let Some(end) = at.checked_add(len - 1) else {
            return false;
        };
        let mut page = at / Self::PAGE;
        while page <= end / Self::PAGE {
            if let Err(k) = self.known.binary_search(&page) {
                let mut probe = [0u8; 1];
                // SAFETY: per this function's contract.
                if !unsafe { copy_if_mapped(page * Self::PAGE, &mut probe) } {
                    return false;
                }
                self.known.insert(k, page);
            }
            page += 1;
        }
        true
    }
}

/// The system's checked copy out of this process's own memory: whether
/// every byte was copied, or `None` where there is none (or it is refused).
#[cfg(target_os = "linux")]
fn os_copy(at: usize, out: &mut [u8]) -> Option<bool> {
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: at as *mut libc::c_void,
        iov_len: out.len(),
    };
    // SAFETY: `local` is `out`, writable for its length; the kernel checks
    // `remote` and fails with EFAULT instead of faulting.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == out.len() as isize {
        return Some(true);
    }
    if n >= 0 {
        return Some(false); // a partial copy: the rest is not mapped
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EFAULT) => Some(false),
        _ => None, // ENOSYS, EPERM: not available here
    }
}

#[cfg(windows)]
fn os_copy(at: usize, out: &mut [u8]) -> Option<bool> {
    #[link(name = "kernel32")]
    extern "system" {
        fn ReadProcessMemory(
            process: isize,
            base: *const core::ffi::c_void,
            buffer: *mut core::ffi::c_void,
            size: usize,
            read: *mut usize,
        ) -> i32;
    }
    // GetCurrentProcess() is this constant pseudo-handle.
    const CURRENT_PROCESS: isize = -1;
    let mut read = 0usize;
    // SAFETY: `out` is writable for its length; the system checks `at` and
    // fails (ERROR_PARTIAL_COPY, ERROR_NOACCESS) instead of faulting.
    let ok = unsafe {
        ReadProcessMemory(
            CURRENT_PROCESS,
            at as *const core::ffi::c_void,
            out.as_mut_ptr().cast(),
            out.len(),
            &mut read,
        )
    };
    Some(ok != 0 && read == out.len())
}

#[cfg(not(any(target_os = "linux", windows)))]
fn os_copy(_at: usize, _out: &mut [u8]) -> Option<bool> {
    None
}

/// A copy of the NUL-terminated UTF-16 string at `p` (without the NUL), at
/// most `max_units` units; `None` for NULL.
///
/// # Safety
/// `p` is NULL or points at UTF-16 units (any alignment), readable up to
/// and including a NUL or for `max_units` units, whichever comes first.
pub unsafe fn wide_string(p: *const u16, max_units: usize) -> Option<Vec<u16>> {
    if p.is_null() {
        return None;
    }
    // The length first (up to the NUL), then the units into one
    // allocation of that size.
    let mut len = 0;
    // SAFETY: per the function's contract; reading stops at the NUL.
    while len < max_units && unsafe { p.add(len).read_unaligned() } != 0 {
        len += 1;
    }
    let mut v = Vec::with_capacity(len);
    for i in 0..len {
        // SAFETY: per the function's contract: the units before the NUL
        // were read just above.
        let u = unsafe { p.add(i).read_unaligned() };
        // (A provider thread may have changed the string since: the copy
        // still ends at its first NUL, as one pass would.)
        if u == 0 {
            break;
        }
        v.push(u);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(bytes: &mut [u8], size: u16) -> CPNATFWT_TRANSPORT_ID {
        CPNATFWT_TRANSPORT_ID {
            size,
            transportId: bytes.as_mut_ptr(),
        }
    }

    #[test]
    fn transport_ids_of_4_or_16_bytes_are_read_and_nothing_else() {
        let mut v4 = [10, 0, 0, 1];
        let mut v6 = [7u8; 16];
        // SAFETY: each ID points at `size` live bytes (or is rejected first).
        unsafe {
            assert_eq!(
                transport_id(&tid(&mut v4, 4)),
                Some(Tid::from_bytes(&[10, 0, 0, 1]).unwrap())
            );
            assert_eq!(
                transport_id(&tid(&mut v6, 16)).unwrap().as_bytes(),
                &[7u8; 16]
            );
            assert_eq!(transport_id(&tid(&mut v6, 5)), None);
            assert_eq!(transport_id(&tid(&mut v6, 0)), None);
            // A huge size is refused before anything is read.
            assert_eq!(transport_id(&tid(&mut v4, u16::MAX)), None);
            assert_eq!(transport_id(std::ptr::null()), None);
            let null_bytes = CPNATFWT_TRANSPORT_ID {
                size: 4,
                transportId: std::ptr::null_mut(),
            };
            assert_eq!(transport_id(&null_bytes), None);
        }
    }

    #[test]
    fn a_looping_chain_is_read_a_bounded_number_of_elements() {
        let mut data = *b"ab";
        let mut el = CPNATFWT_BUFFER {
            size: 2,
            buffer: data.as_mut_ptr(),
            next: std::ptr::null_mut(),
        };
        el.next = &mut el;
        // SAFETY: the element (looping to itself) and its bytes are live.
        unsafe {
            assert_eq!(chain_bytes(&el, 3), b"ababab");
            assert_eq!(chain_len(&el, 4), 8);
            assert_eq!(chain_bytes(std::ptr::null(), 3), b"");
        }
    }

    #[test]
    fn a_wide_string_stops_at_its_nul_or_the_bound() {
        let s = [104u16, 105, 0, 33];
        // SAFETY: the array is live and has a NUL within its length.
        unsafe {
            assert_eq!(wide_string(s.as_ptr(), 100), Some(vec![104, 105]));
            assert_eq!(wide_string(s.as_ptr(), 1), Some(vec![104]));
            assert_eq!(wide_string(std::ptr::null(), 10), None);
        }
    }

    #[test]
    fn a_panic_inside_the_guard_becomes_the_fallback() {
        assert_eq!(guard(-1, || -> i32 { panic!("boom") }), -1);
        assert_eq!(guard(-1, || 7), 7);
    }
}
