//! A provider module's file, read once and checked without running any of
//! its code: a regular file, a shared library of this system's format for
//! this machine (an ELF shared object on unix, a PE DLL on Windows: the
//! format is told by the file's first bytes), with both entry points, and
//! whether it says it runs on virtual time.
//!
//! The harness works from these bytes from then on (it hands them to the
//! child processes that load them), so a module file that is replaced or
//! deleted during a certification does not change what is certified.

use crate::elf::{self, Symbols};
use crate::pe;
use crate::ModuleError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The module's start entry point.
pub const START: &str = "CpsimProviderStart";
/// The module's stop entry point.
pub const STOP: &str = "CpsimProviderStop";
/// The marker of `cpsim_module.h` (`CPSIM_VIRTUAL_TIME_MODULE`).
pub const VIRTUAL_TIME_MARKER: &str = "CpsimModuleVirtualTime";
/// The largest module file cpsim reads.
pub const MAX_MODULE_BYTES: u64 = 256 << 20;

/// Functions a virtual-time module must not import, and why: each makes
/// the run depend on something the simulator's clock and seed do not
/// govern. Their facilities in `cpsim_module.h` replace them.
pub const OUTSIDE_VIRTUAL_TIME: &[(&str, &str)] = &[
    ("pthread_create", "starts a thread"),
    ("thrd_create", "starts a thread"),
    ("fork", "starts a process"),
    ("vfork", "starts a process"),
    ("clone", "starts a thread or process"),
    ("posix_spawn", "starts a process"),
    ("posix_spawnp", "starts a process"),
    ("system", "starts a process"),
    ("popen", "starts a process"),
    ("sleep", "sleeps"),
    ("usleep", "sleeps"),
    ("nanosleep", "sleeps"),
    ("clock_nanosleep", "sleeps"),
    ("thrd_sleep", "sleeps"),
    ("pause", "waits for a signal"),
    ("sigsuspend", "waits for a signal"),
    ("sigwait", "waits for a signal"),
    ("select", "waits on file descriptors"),
    ("pselect", "waits on file descriptors"),
    ("poll", "waits on file descriptors"),
    ("ppoll", "waits on file descriptors"),
    ("epoll_wait", "waits on file descriptors"),
    ("epoll_pwait", "waits on file descriptors"),
    ("pthread_cond_wait", "waits for another thread"),
    ("pthread_cond_timedwait", "waits for another thread"),
    ("pthread_cond_clockwait", "waits for another thread"),
    ("sem_wait", "waits for another thread"),
    ("sem_timedwait", "waits for another thread"),
    ("time", "reads the wall clock"),
    ("gettimeofday", "reads the wall clock"),
    ("clock_gettime", "reads the wall clock"),
    ("clock", "reads the processor clock"),
    ("ftime", "reads the wall clock"),
    ("timespec_get", "reads the wall clock"),
    ("getrandom", "draws the system's randomness"),
    ("getentropy", "draws the system's randomness"),
    ("socket", "opens a real socket"),
    ("socketpair", "opens real sockets"),
];

/// The same for a Windows DLL: what it imports from any DLL. Not listed,
/// because the C runtimes' own start-up code imports them into every DLL
/// (so their presence says nothing about the module): `Sleep` (mingw-w64),
/// `GetSystemTimeAsFileTime`, `QueryPerformanceCounter`, `GetTickCount`
/// (the MSVC and mingw-w64 stack-cookie set-up).
pub const OUTSIDE_VIRTUAL_TIME_WINDOWS: &[(&str, &str)] = &[
    ("CreateThread", "starts a thread"),
    ("CreateRemoteThread", "starts a thread"),
    ("CreateRemoteThreadEx", "starts a thread"),
    ("_beginthread", "starts a thread"),
    ("_beginthreadex", "starts a thread"),
    ("pthread_create", "starts a thread"),
    ("thrd_create", "starts a thread"),
    ("QueueUserWorkItem", "runs work on the system's thread pool"),
    (
        "CreateThreadpoolWork",
        "runs work on the system's thread pool",
    ),
    (
        "CreateThreadpoolTimer",
        "runs work on the system's thread pool",
    ),
    ("CreateTimerQueueTimer", "starts a wall-clock timer"),
    ("SetWaitableTimer", "starts a wall-clock timer"),
    ("CreateProcessA", "starts a process"),
    ("CreateProcessW", "starts a process"),
    ("WinExec", "starts a process"),
    ("ShellExecuteA", "starts a process"),
    ("ShellExecuteW", "starts a process"),
    ("ShellExecuteExW", "starts a process"),
    ("system", "starts a process"),
    ("_popen", "starts a process"),
    ("SleepEx", "sleeps"),
    ("WaitForSingleObject", "waits for another thread"),
    ("WaitForSingleObjectEx", "waits for another thread"),
    ("WaitForMultipleObjects", "waits for another thread"),
    ("WaitForMultipleObjectsEx", "waits for another thread"),
    ("SleepConditionVariableCS", "waits for another thread"),
    ("SleepConditionVariableSRW", "waits for another thread"),
    ("pthread_cond_wait", "waits for another thread"),
    ("pthread_cond_timedwait", "waits for another thread"),
    ("GetSystemTime", "reads the wall clock"),
    ("GetLocalTime", "reads the wall clock"),
    ("GetSystemTimePreciseAsFileTime", "reads the wall clock"),
    ("GetTickCount64", "reads the wall clock"),
    ("timeGetTime", "reads the wall clock"),
    ("time", "reads the wall clock"),
    ("_time32", "reads the wall clock"),
    ("_time64", "reads the wall clock"),
    ("clock", "reads the processor clock"),
    ("_ftime", "reads the wall clock"),
    ("_ftime64", "reads the wall clock"),
    ("timespec_get", "reads the wall clock"),
    ("_timespec64_get", "reads the wall clock"),
    ("BCryptGenRandom", "draws the system's randomness"),
    ("SystemFunction036", "draws the system's randomness"),
    ("CryptGenRandom", "draws the system's randomness"),
    ("ProcessPrng", "draws the system's randomness"),
    ("rand_s", "draws the system's randomness"),
    ("socket", "opens a real socket"),
    ("WSASocketA", "opens a real socket"),
    ("WSASocketW", "opens a real socket"),
    ("select", "waits on sockets"),
    ("WSAPoll", "waits on sockets"),
];

/// What the file says about itself, by format.
#[derive(Debug)]
enum Format {
    /// An ELF shared object: its dynamic symbols, if readable.
    Elf(Option<Symbols>),
    /// A Windows DLL: its exports and imports.
    Pe(pe::Dll),
}

/// A module file, read and checked.
#[derive(Debug)]
pub struct ModuleImage {
    path: PathBuf,
    name: String,
    bytes: Arc<[u8]>,
    format: Format,
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    "not a regular file"
}

impl ModuleImage {
    /// Reads and checks the module at `path`. Errors name the file and say
    /// what is wrong with it (missing, not a regular file, not a shared
    /// library, built for another machine, an entry point missing).
    pub fn read(path: &Path) -> Result<ModuleImage, ModuleError> {
        let shown = path.display();
        let err = |what: String| ModuleError(format!("{shown}: {what}"));
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => err("no such file".into()),
            _ => err(e.to_string()),
        })?;
        if !meta.is_file() {
            return Err(err(format!(
                "is {}, not a provider module (a shared library)",
                kind_of(&meta)
            )));
        }
        let mut open = std::fs::OpenOptions::new();
        open.read(true);
        // Never block on opening (a file swapped for a FIFO since the check).
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.custom_flags(libc_nonblock());
        }
        let file = open.open(path).map_err(|e| err(e.to_string()))?;
        let meta = file.metadata().map_err(|e| err(e.to_string()))?;
        if !meta.is_file() {
            return Err(err(format!(
                "is {}, not a provider module (a shared library)",
                kind_of(&meta)
            )));
        }
        if meta.len() > MAX_MODULE_BYTES {
            return Err(err(format!(
                "is {} bytes; cpsim reads modules of at most {} MiB",
                meta.len(),
                MAX_MODULE_BYTES >> 20
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        use std::io::Read;
        file.take(MAX_MODULE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| err(e.to_string()))?;
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        ModuleImage::from_bytes(path, bytes)
    }

    /// A module from bytes already read (`path` names it in messages).
    pub fn from_bytes(path: PathBuf, bytes: Vec<u8>) -> Result<ModuleImage, ModuleError> {
        let shown = path.display().to_string();
        let format = if pe::looks_like_pe(&bytes) {
            Format::Pe(read_pe(&shown, &bytes)?)
        } else {
            Format::Elf(read_elf(&shown, &bytes)?)
        };
        let missing: Vec<&str> = [START, STOP]
            .into_iter()
            .filter(|n| match &format {
                Format::Elf(Some(s)) => !s.defines(n),
                Format::Elf(None) => false,
                Format::Pe(d) => !d.exports(n),
            })
            .collect();
        if !missing.is_empty() {
            // A PIE executable is ET_DYN like a library: say what it is.
            let what = if matches!(format, Format::Elf(_)) && elf::has_interpreter(&bytes) {
                "an executable, not a shared library (build it with -shared -fPIC); it "
            } else {
                ""
            };
            return Err(ModuleError(format!(
                "{shown}: {what}does not export {} (see cpnatfwt.h, CPSIM_PROVIDER_MODULE)",
                missing.join(" and ")
            )));
        }
        let name = path
            .file_stem()
            .map(|s| {
                let s = s.to_string_lossy();
                let s = s.split('.').next().unwrap_or(&s).to_string();
                s.strip_prefix("lib").unwrap_or(&s).to_string()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "module".into());
        Ok(ModuleImage {
            path,
            name,
            bytes: bytes.into(),
            format,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The provider's name in reports: the file name without `lib` and
    /// extension.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The library's bytes.
    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.bytes
    }
    /// The DLL's exports and imports, if the module is a Windows DLL.
    pub fn pe(&self) -> Option<&pe::Dll> {
        match &self.format {
            Format::Pe(d) => Some(d),
            Format::Elf(_) => None,
        }
    }
    /// Whether the module carries the virtual-time marker.
    pub fn virtual_time(&self) -> bool {
        match &self.format {
            Format::Elf(s) => s.as_ref().is_some_and(|s| s.defines(VIRTUAL_TIME_MARKER)),
            Format::Pe(d) => d.exports(VIRTUAL_TIME_MARKER),
        }
    }
    /// The functions it imports that a virtual-time module must not use,
    /// each with why (empty when its symbols cannot be read).
    pub fn outside_virtual_time(&self) -> Vec<(&'static str, &'static str)> {
        let (list, imports): (_, &dyn Fn(&str) -> bool) = match &self.format {
            Format::Elf(None) => return Vec::new(),
            Format::Elf(Some(s)) => (OUTSIDE_VIRTUAL_TIME, &|n| s.imports(n)),
            Format::Pe(d) => (OUTSIDE_VIRTUAL_TIME_WINDOWS, &|n| d.imports(n)),
        };
        list.iter()
            .copied()
            .filter(|(name, _)| imports(name))
            .collect()
    }
    /// Refuses a module that carries the virtual-time marker but imports
    /// what virtual time cannot govern; the error lists them.
    pub fn check_virtual_time(&self) -> Result<(), ModuleError> {
        if !self.virtual_time() {
            return Ok(());
        }
        let bad = self.outside_virtual_time();
        if bad.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = bad.iter().map(|(n, why)| format!("{n} ({why})")).collect();
        Err(ModuleError(format!(
            "{}: says it runs on virtual time ({VIRTUAL_TIME_MARKER}) but imports {}; \
             a virtual-time module uses the facilities of cpsim_module.h instead \
             (or drop the marker to be certified in real time)",
            self.path.display(),
            list.join(", ")
        )))
    }
}

/// A Windows DLL's exports and imports; an error on systems that load
/// ELF shared objects.
fn read_pe(shown: &str, bytes: &[u8]) -> Result<pe::Dll, ModuleError> {
    if !cfg!(windows) {
        return Err(ModuleError(format!(
            "{shown}: a Windows DLL; cpsim on this system loads ELF shared libraries \
             (build the module for it, or certify the DLL with cpsim.exe on Windows)"
        )));
    }
    pe::read(bytes).map_err(|e| ModuleError(format!("{shown}: {e}")))
}

/// An ELF shared object's symbols; an error on Windows.
fn read_elf(shown: &str, bytes: &[u8]) -> Result<Option<Symbols>, ModuleError> {
    let kind = elf::inspect(bytes);
    if cfg!(windows) {
        return Err(ModuleError(match kind {
            elf::Kind::NotElf => format!("{shown}: {}", pe::PeError::NotPe),
            _ => format!(
                "{shown}: an ELF shared library; cpsim on Windows loads DLLs \
                 (build the module as a DLL, with mingw-w64 or MSVC)"
            ),
        }));
    }
    match kind {
        elf::Kind::NotElf => Err(ModuleError(format!(
            "{shown}: not a shared library (not an ELF file)"
        ))),
        elf::Kind::NotShared => Err(ModuleError(format!(
            "{shown}: an ELF file but not a shared library (build it with -shared -fPIC)"
        ))),
        elf::Kind::OtherMachine(m) => Err(ModuleError(format!(
            "{shown}: a shared library for another machine ({})",
            elf::machine_name(m)
        ))),
        elf::Kind::Shared(s) => Ok(s),
    }
}

#[cfg(unix)]
fn libc_nonblock() -> i32 {
    libc::O_NONBLOCK
}

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn a_pie_executable_is_refused_as_an_executable_and_another_machine_by_name() {
        // This test binary is a PIE: ET_DYN like a library, with an
        // interpreter, and without the module's entry points.
        let path = std::env::current_exe().unwrap();
        let me = std::fs::read(&path).unwrap();
        let Err(ModuleError(err)) = ModuleImage::from_bytes(path.clone(), me.clone()) else {
            panic!("a test binary accepted as a module");
        };
        assert!(err.contains("an executable, not a shared library"), "{err}");
        // The same file marked for AArch64 (e_machine at byte 18).
        let mut arm = me;
        arm[18..20].copy_from_slice(&183u16.to_le_bytes());
        let Err(ModuleError(err)) = ModuleImage::from_bytes(path, arm) else {
            panic!("an AArch64 file accepted");
        };
        assert!(
            err.contains("another machine (AArch64, ELF machine 183)"),
            "{err}"
        );
    }
}
