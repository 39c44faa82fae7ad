//! The Windows side of case runners, every Win32 call in one place (the
//! `windows-sys` crate). The runner keeps its protocol pipes to itself
//! and gives the module's C runtime `NUL` for input and the captured error
//! stream for output; an unhandled exception anywhere in the runner (a
//! module's thread too) writes a fixed-size frame naming the exception code
//! and ends the process at once, so no debugger (Wine's `winedbg`) or
//! error box ever starts; the harness puts each runner in a job object
//! that kills the runner and every process it started when the job is
//! ended or its handle closed. Windows has no network namespaces: cases of
//! a real-time module share the machine's network and run one at a time
//! (decision `windows-runner`).

use std::fs::File;
use std::os::windows::io::{AsRawHandle, FromRawHandle, RawHandle};
use std::sync::atomic::{AtomicPtr, Ordering};
use windows_sys::core::PWSTR;
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Foundation::{
    CloseHandle, DuplicateHandle, DUPLICATE_SAME_ACCESS, FALSE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::WriteFile;
use windows_sys::Win32::System::Console::{
    GetStdHandle, SetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Diagnostics::Debug::{
    SetErrorMode, SetUnhandledExceptionFilter, EXCEPTION_POINTERS, SEM_FAILCRITICALERRORS,
    SEM_NOGPFAULTERRORBOX, SEM_NOOPENFILEERRORBOX,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentProcessId, GetCurrentThreadId, GetThreadDescription, OpenThread,
    TerminateProcess, THREAD_QUERY_LIMITED_INFORMATION,
};

/// `EXCEPTION_EXECUTE_HANDLER`: what the filter answers (it never returns
/// anyway).
const EXECUTE_HANDLER: i32 = 1;

/// The protocol's write end, for the exception filter (which must not
/// lock or allocate).
static FATAL_OUT: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(std::ptr::null_mut());

/// The names of the exception codes a module is likely to raise.
pub fn exception_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0xC000_0005 => "EXCEPTION_ACCESS_VIOLATION",
        0xC000_0006 => "EXCEPTION_IN_PAGE_ERROR",
        0xC000_0008 => "EXCEPTION_INVALID_HANDLE",
        0xC000_001D => "EXCEPTION_ILLEGAL_INSTRUCTION",
        0xC000_0025 => "EXCEPTION_NONCONTINUABLE_EXCEPTION",
        0xC000_0026 => "EXCEPTION_INVALID_DISPOSITION",
        0xC000_008C => "EXCEPTION_ARRAY_BOUNDS_EXCEEDED",
        0xC000_008D => "EXCEPTION_FLT_DENORMAL_OPERAND",
        0xC000_008E => "EXCEPTION_FLT_DIVIDE_BY_ZERO",
        0xC000_008F => "EXCEPTION_FLT_INEXACT_RESULT",
        0xC000_0090 => "EXCEPTION_FLT_INVALID_OPERATION",
        0xC000_0091 => "EXCEPTION_FLT_OVERFLOW",
        0xC000_0092 => "EXCEPTION_FLT_STACK_CHECK",
        0xC000_0093 => "EXCEPTION_FLT_UNDERFLOW",
        0xC000_0094 => "EXCEPTION_INT_DIVIDE_BY_ZERO",
        0xC000_0095 => "EXCEPTION_INT_OVERFLOW",
        0xC000_0096 => "EXCEPTION_PRIV_INSTRUCTION",
        0xC000_00FD => "EXCEPTION_STACK_OVERFLOW",
        0xC000_0409 => "STATUS_STACK_BUFFER_OVERRUN (a fail-fast)",
        0xC000_0374 => "STATUS_HEAP_CORRUPTION",
        0x8000_0003 => "EXCEPTION_BREAKPOINT",
        0x8000_0002 => "EXCEPTION_DATATYPE_MISALIGNMENT",
        0x4000_0015 => "STATUS_FATAL_APP_EXIT (abort)",
        _ => return None,
    })
}

/// A duplicate of `h` that child processes do not inherit.
fn private_copy(h: HANDLE) -> Result<HANDLE, String> {
    let mut out: HANDLE = std::ptr::null_mut();
    // SAFETY: duplicating a handle of this process into this process; `out`
    // is a valid place for the new handle.
    let ok = unsafe {
        let me = GetCurrentProcess();
        DuplicateHandle(me, h, me, &mut out, 0, FALSE, DUPLICATE_SAME_ACCESS)
    };
    if ok == 0 {
        return Err(format!(
            "cannot keep the protocol pipes: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(out)
}

extern "C" {
    fn _dup2(from: i32, to: i32) -> i32;
    fn _open(path: *const std::ffi::c_char, flags: i32, ...) -> i32;
    fn _close(fd: i32) -> i32;
    fn _get_osfhandle(fd: i32) -> isize;
    fn atexit(f: extern "C" fn()) -> i32;
}

/// Moves the protocol off the standard handles: returns (requests,
/// replies). The process's standard output becomes its standard error and
/// its input `NUL`, for Win32 (`GetStdHandle`) and for the C runtime
/// (descriptors 0 and 1), which a module's `printf` uses.
pub fn take_stdio() -> Result<(File, File), String> {
    // SAFETY: reading this process's standard handles.
    let (inp, out, err) = unsafe {
        (
            GetStdHandle(STD_INPUT_HANDLE),
            GetStdHandle(STD_OUTPUT_HANDLE),
            GetStdHandle(STD_ERROR_HANDLE),
        )
    };
    if inp.is_null() || inp == INVALID_HANDLE_VALUE || out.is_null() || out == INVALID_HANDLE_VALUE
    {
        return Err("the runner has no protocol pipes (standard input and output)".into());
    }
    let requests = private_copy(inp)?;
    let replies = private_copy(out)?;
    // SAFETY: pointing the standard output at the standard error (a handle
    // of this process), and the C runtime's descriptors 0 and 1 at NUL and
    // at descriptor 2; the originals stay open through the copies above.
    unsafe {
        SetStdHandle(STD_OUTPUT_HANDLE, err);
        let null = _open(c"NUL".as_ptr(), 0 /* _O_RDONLY */);
        if null >= 0 {
            _dup2(null, 0);
            _close(null);
            SetStdHandle(STD_INPUT_HANDLE, _get_osfhandle(0) as HANDLE);
        }
        _dup2(2, 1);
    }
    // SAFETY: two fresh handles owned by nothing else.
    let files = unsafe {
        (
            File::from_raw_handle(requests as RawHandle),
            File::from_raw_handle(replies as RawHandle),
        )
    };
    FATAL_OUT.store(files.1.as_raw_handle() as HANDLE, Ordering::Relaxed);
    Ok(files)
}

/// The top-level filter: every exception no one handled, on any thread.
unsafe extern "system" fn on_unhandled(info: *const EXCEPTION_POINTERS) -> i32 {
    // SAFETY: the system passes valid exception pointers to the filter.
    let code = unsafe {
        info.as_ref()
            .and_then(|i| i.ExceptionRecord.as_ref())
            .map(|r| r.ExceptionCode as u32)
            .unwrap_or(0)
    };
    let at = super::child::where_now();
    let body = super::proto::fatal_body(code as i32, at.phase, at.callback);
    let mut frame = [0u8; 11];
    frame[0] = super::proto::FATAL;
    frame[1..5].copy_from_slice(&(body.len() as u32).to_le_bytes());
    frame[5..].copy_from_slice(&body);
    let out = FATAL_OUT.load(Ordering::Relaxed);
    if !out.is_null() {
        let mut written = 0u32;
        // SAFETY: a synchronous write of a stack buffer to our pipe.
        unsafe {
            WriteFile(
                out,
                frame.as_ptr(),
                frame.len() as u32,
                &mut written,
                std::ptr::null_mut(),
            )
        };
    }
    // SAFETY: ends this process at once, with the exception code as its
    // exit code (as the system would), before any debugger is asked.
    unsafe { TerminateProcess(GetCurrentProcess(), code) };
    EXECUTE_HANDLER
}

extern "C" fn on_exit() {
    super::child::report_exit();
}

/// No error boxes, no debugger: the filter reports unhandled exceptions;
/// `exit` in module code is reported by an exit handler of the C runtime.
pub fn install_handlers() {
    // SAFETY: process-wide settings with valid arguments.
    unsafe {
        SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
        SetUnhandledExceptionFilter(Some(on_unhandled));
        atexit(on_exit);
    }
}

/// Ends this process at once, running neither the module's exit handlers
/// nor its `DllMain`.
pub fn exit_now(code: u32) -> ! {
    // SAFETY: terminating this very process.
    unsafe { TerminateProcess(GetCurrentProcess(), code) };
    // TerminateProcess of the current process does not return.
    std::process::abort()
}

/// The IDs of this process's threads.
pub fn thread_ids() -> Vec<u32> {
    let mut ids = Vec::new();
    // SAFETY: a snapshot of all threads, walked with a correctly sized
    // entry and closed after.
    unsafe {
        let snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
        if snap == INVALID_HANDLE_VALUE {
            return ids;
        }
        let me = GetCurrentProcessId();
        let mut e: THREADENTRY32 = std::mem::zeroed();
        e.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
        let mut more = Thread32First(snap, &mut e) != 0;
        while more {
            if e.th32OwnerProcessID == me {
                ids.push(e.th32ThreadID);
            }
            more = Thread32Next(snap, &mut e) != 0;
        }
        CloseHandle(snap);
    }
    ids
}

/// Whether thread `id` was named by cpsim (`cpsim-…`: the watchdog, case
/// threads).
fn ours(id: u32) -> bool {
    let mut name: PWSTR = std::ptr::null_mut();
    // SAFETY: a handle to a thread of this process, closed after; the
    // description is read up to its terminating zero and freed with
    // LocalFree, as GetThreadDescription requires.
    unsafe {
        let t = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, id);
        if t.is_null() {
            return false;
        }
        let got = GetThreadDescription(t, &mut name);
        CloseHandle(t);
        if got < 0 || name.is_null() {
            return false;
        }
        let mut len = 0;
        while *name.add(len) != 0 {
            len += 1;
        }
        let text = String::from_utf16_lossy(std::slice::from_raw_parts(name, len));
        LocalFree(name.cast());
        text.starts_with("cpsim-")
    }
}

/// Threads of this process that were not there at `baseline`, are not the
/// caller and were not started by cpsim: threads a module left running.
pub fn new_threads(baseline: &[u32]) -> usize {
    // SAFETY: cannot fail.
    let me = unsafe { GetCurrentThreadId() };
    thread_ids()
        .into_iter()
        .filter(|t| *t != me && !baseline.contains(t) && !ours(*t))
        .count()
}

/// A job object holding one runner and everything it starts: ended with
/// [`Job::kill`], or when dropped (`KILL_ON_JOB_CLOSE`).
#[derive(Debug)]
pub struct Job(HANDLE);

// SAFETY: a job handle may be used from any thread.
unsafe impl Send for Job {}
// SAFETY: as above; the calls made through it are thread-safe.
unsafe impl Sync for Job {}

impl Job {
    /// Puts `child` (just started; it starts nothing before it is sent a
    /// module) in a fresh job.
    pub fn adopt(child: &std::process::Child) -> Result<Job, String> {
        let err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
        // SAFETY: an anonymous job with default security.
        let h = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if h.is_null() {
            return Err(err("CreateJobObject"));
        }
        let job = Job(h);
        // SAFETY: a zeroed limit structure with the two flags, passed with
        // its size; then our job and the child's process handle.
        unsafe {
            let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
            limits.BasicLimitInformation.LimitFlags =
                JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
            if SetInformationJobObject(
                job.0,
                JobObjectExtendedLimitInformation,
                std::ptr::from_ref(&limits).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            ) == 0
            {
                return Err(err("SetInformationJobObject"));
            }
            if AssignProcessToJobObject(job.0, child.as_raw_handle() as HANDLE) == 0 {
                return Err(err("AssignProcessToJobObject"));
            }
        }
        Ok(job)
    }

    /// Ends every process of the job.
    pub fn kill(&self) {
        // SAFETY: our job handle, open until drop.
        unsafe { TerminateJobObject(self.0, 1) };
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once (which kills what is left).
        unsafe { CloseHandle(self.0) };
    }
}
