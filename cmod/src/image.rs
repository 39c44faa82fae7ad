//! A provider module's file, read once and checked without running any of
//! its code: a regular file, an ELF shared object for this machine, with
//! both entry points, and whether it says it runs on virtual time.
//!
//! The harness works from these bytes from then on (it hands them to the
//! child processes that load them), so a module file that is replaced or
//! deleted during a certification does not change what is certified.

use crate::elf::{self, Symbols};
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

/// A module file, read and checked.
#[derive(Debug)]
pub struct ModuleImage {
    path: PathBuf,
    name: String,
    bytes: Arc<[u8]>,
    symbols: Option<Symbols>,
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
        let symbols = match elf::inspect(&bytes) {
            elf::Kind::NotElf => {
                return Err(ModuleError(format!(
                    "{shown}: not a shared library (not an ELF file)"
                )))
            }
            elf::Kind::NotShared => {
                return Err(ModuleError(format!(
                    "{shown}: an ELF file but not a shared library (build it with -shared -fPIC)"
                )))
            }
            elf::Kind::OtherMachine(m) => {
                return Err(ModuleError(format!(
                    "{shown}: a shared library for another machine (ELF machine {m})"
                )))
            }
            elf::Kind::Shared(s) => s,
        };
        if let Some(s) = &symbols {
            let missing: Vec<&str> = [START, STOP]
                .into_iter()
                .filter(|n| !s.defines(n))
                .collect();
            if !missing.is_empty() {
                return Err(ModuleError(format!(
                    "{shown}: does not export {} (see cpnatfwt.h, CPSIM_PROVIDER_MODULE)",
                    missing.join(" and ")
                )));
            }
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
            symbols,
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
    /// Whether the module carries the virtual-time marker.
    pub fn virtual_time(&self) -> bool {
        self.symbols
            .as_ref()
            .is_some_and(|s| s.defines(VIRTUAL_TIME_MARKER))
    }
    /// The functions it imports that a virtual-time module must not use,
    /// each with why (empty when its symbols cannot be read).
    pub fn outside_virtual_time(&self) -> Vec<(&'static str, &'static str)> {
        let Some(s) = &self.symbols else {
            return Vec::new();
        };
        OUTSIDE_VIRTUAL_TIME
            .iter()
            .copied()
            .filter(|(name, _)| s.imports(name))
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

#[cfg(unix)]
fn libc_nonblock() -> i32 {
    libc::O_NONBLOCK
}
