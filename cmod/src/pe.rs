//! Reading a Windows DLL (a PE image) from its bytes, without loading it
//! (loading runs its `DllMain` and TLS callbacks: module code): the
//! `elf.rs` counterpart.
//!
//! Only what the harness needs: that it is a DLL, its machine, the names it
//! exports, and what it imports from each DLL (the import directory and the
//! delay-load directory). [`rebind`] renames one imported DLL in a copy of
//! the bytes (how each simulated host's copy is bound to cpsim's router
//! instead of `iphlpapi.dll`). Every offset is bounds-checked: the bytes may
//! be anything, and every failure says what was wrong and where.

use std::fmt;

/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_X86_64: u16 = 0x8664;
/// `IMAGE_FILE_MACHINE_ARM64`.
pub const MACHINE_ARM64: u16 = 0xAA64;
/// `IMAGE_FILE_MACHINE_I386`.
pub const MACHINE_I386: u16 = 0x014C;

/// `IMAGE_FILE_DLL` in the file header's characteristics.
const FILE_DLL: u16 = 0x2000;
/// Data directories: exports, imports, bound imports, delay-load imports.
const DIR_EXPORT: usize = 0;
const DIR_IMPORT: usize = 1;
const DIR_BOUND_IMPORT: usize = 11;
const DIR_DELAY_IMPORT: usize = 13;
/// Bounds on hostile counts (far above any real DLL).
const MAX_NAMES: usize = 1 << 16;
const MAX_DESCRIPTORS: usize = 4096;
const MAX_SECTIONS: usize = 96;

/// The PE machine of the system cpsim runs on, where known.
pub fn this_machine() -> Option<u16> {
    if cfg!(target_arch = "x86_64") {
        Some(MACHINE_X86_64)
    } else if cfg!(target_arch = "aarch64") {
        Some(MACHINE_ARM64)
    } else if cfg!(target_arch = "x86") {
        Some(MACHINE_I386)
    } else {
        None
    }
}

/// A machine's name, for messages.
pub fn machine_name(m: u16) -> String {
    match m {
        MACHINE_X86_64 => "x86-64".into(),
        MACHINE_ARM64 => "ARM64".into(),
        MACHINE_I386 => "32-bit x86".into(),
        0x01C4 => "ARM (32-bit)".into(),
        _ => format!("machine 0x{m:04X}"),
    }
}

/// Why bytes are not a DLL cpsim can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeError {
    /// No `MZ` header, or no `PE` signature where it points.
    NotPe,
    /// The bytes end before a structure they promise: what, and where.
    Truncated(String),
    /// A value that cannot be right: what, and where.
    Malformed(String),
    /// A PE image, but an executable (or other image), not a DLL.
    NotDll,
    /// A DLL for another machine.
    OtherMachine(u16),
}

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeError::NotPe => f.write_str("not a Windows DLL (no MZ/PE header)"),
            PeError::Truncated(what) => write!(f, "a truncated PE file: {what}"),
            PeError::Malformed(what) => write!(f, "a malformed PE file: {what}"),
            PeError::NotDll => f.write_str(
                "a Windows executable, not a DLL (build the provider module as a DLL: -shared, or /LD)",
            ),
            PeError::OtherMachine(m) => {
                write!(f, "a DLL for another machine ({})", machine_name(*m))
            }
        }
    }
}

/// What one DLL is imported for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The DLL's name as written in the file (`IPHLPAPI.DLL`).
    pub dll: String,
    /// Functions imported by name.
    pub names: Vec<String>,
    /// Functions imported by ordinal only.
    pub ordinals: Vec<u16>,
    /// From the delay-load directory (bound at the first call).
    pub delayed: bool,
    /// Where the DLL's name is in the file (for [`rebind`]).
    name_at: usize,
}

/// What a DLL exports and imports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dll {
    /// Its machine (`IMAGE_FILE_MACHINE_*`).
    pub machine: u16,
    /// Names it exports.
    pub exports: Vec<String>,
    /// What it imports, per DLL, in file order.
    pub imports: Vec<Import>,
}

impl Dll {
    /// Whether it exports `name`.
    pub fn exports(&self, name: &str) -> bool {
        self.exports.iter().any(|e| e == name)
    }
    /// Whether it imports `name` (from any DLL).
    pub fn imports(&self, name: &str) -> bool {
        self.imports
            .iter()
            .any(|i| i.names.iter().any(|n| n == name))
    }
    /// What it imports from `dll` (names compared without case, as the
    /// Windows loader does; `.dll` optional).
    pub fn imports_from<'a>(&'a self, dll: &'a str) -> impl Iterator<Item = &'a Import> + 'a {
        self.imports.iter().filter(move |i| same_dll(&i.dll, dll))
    }
}

/// Whether two DLL names name the same DLL for the loader (case-insensitive,
/// a missing `.dll` extension implied).
pub fn same_dll(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        let s = s.to_ascii_lowercase();
        if s.contains('.') {
            s
        } else {
            format!("{s}.dll")
        }
    }
    norm(a) == norm(b)
}

struct Section {
    va: u32,
    vsize: u32,
    raw_size: u32,
    raw_at: u32,
}

struct Image<'a> {
    b: &'a [u8],
    machine: u16,
    wide: bool,
    size_of_headers: u32,
    sections: Vec<Section>,
    /// (rva, size) of each data directory present.
    dirs: Vec<(u32, u32)>,
    /// File offset of the data directories.
    dirs_at: usize,
}

fn le<const N: usize>(b: &[u8], at: usize, what: &str) -> Result<[u8; N], PeError> {
    at.checked_add(N)
        .and_then(|end| b.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            PeError::Truncated(format!(
                "{what} at byte {at} is past the end ({} bytes)",
                b.len()
            ))
        })
}
fn u16_at(b: &[u8], at: usize, what: &str) -> Result<u16, PeError> {
    le::<2>(b, at, what).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: usize, what: &str) -> Result<u32, PeError> {
    le::<4>(b, at, what).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: usize, what: &str) -> Result<u64, PeError> {
    le::<8>(b, at, what).map(u64::from_le_bytes)
}

impl<'a> Image<'a> {
    fn parse(b: &'a [u8]) -> Result<Image<'a>, PeError> {
        if b.len() < 2 || &b[..2] != b"MZ" {
            return Err(PeError::NotPe);
        }
        let pe = u32_at(b, 0x3C, "the PE header's offset (e_lfanew)")? as usize;
        if b.len() < pe.saturating_add(4) {
            return Err(PeError::Truncated(format!(
                "the PE signature at byte {pe} is past the end ({} bytes)",
                b.len()
            )));
        }
        if &b[pe..pe + 4] != b"PE\0\0" {
            return Err(PeError::NotPe);
        }
        let coff = pe + 4;
        let machine = u16_at(b, coff, "the machine")?;
        let nsections = usize::from(u16_at(b, coff + 2, "the number of sections")?);
        let opt_size = usize::from(u16_at(b, coff + 16, "the optional header's size")?);
        let characteristics = u16_at(b, coff + 18, "the characteristics")?;
        let opt = coff + 20;
        let magic = u16_at(b, opt, "the optional header")?;
        let wide = match magic {
            0x20B => true,
            0x10B => false,
            m => {
                return Err(PeError::Malformed(format!(
                    "optional header magic 0x{m:X} at byte {opt} (neither PE32 nor PE32+)"
                )))
            }
        };
        if characteristics & FILE_DLL == 0 {
            return Err(PeError::NotDll);
        }
        if this_machine().is_some_and(|m| m != machine) {
            return Err(PeError::OtherMachine(machine));
        }
        let size_of_headers = u32_at(b, opt + 60, "SizeOfHeaders")?;
        let (count_at, dirs_at) = if wide {
            (opt + 108, opt + 112)
        } else {
            (opt + 92, opt + 96)
        };
        let ndirs = (u32_at(b, count_at, "NumberOfRvaAndSizes")? as usize).min(16);
        if dirs_at + ndirs * 8 > opt + opt_size {
            return Err(PeError::Malformed(format!(
                "{ndirs} data directories do not fit the optional header of {opt_size} bytes at byte {opt}"
            )));
        }
        let mut dirs = Vec::with_capacity(ndirs);
        for i in 0..ndirs {
            dirs.push((
                u32_at(b, dirs_at + i * 8, "a data directory")?,
                u32_at(b, dirs_at + i * 8 + 4, "a data directory")?,
            ));
        }
        if nsections > MAX_SECTIONS {
            return Err(PeError::Malformed(format!(
                "{nsections} sections (at most {MAX_SECTIONS})"
            )));
        }
        let table = opt + opt_size;
        let mut sections = Vec::with_capacity(nsections);
        for i in 0..nsections {
            let at = table + i * 40;
            let s = Section {
                vsize: u32_at(b, at + 8, "a section header")?,
                va: u32_at(b, at + 12, "a section header")?,
                raw_size: u32_at(b, at + 16, "a section header")?,
                raw_at: u32_at(b, at + 20, "a section header")?,
            };
            let end = u64::from(s.raw_at) + u64::from(s.raw_size);
            if end > b.len() as u64 {
                return Err(PeError::Truncated(format!(
                    "section {i}'s {} bytes at byte {} end past the end ({} bytes)",
                    s.raw_size,
                    s.raw_at,
                    b.len()
                )));
            }
            sections.push(s);
        }
        Ok(Image {
            b,
            machine,
            wide,
            size_of_headers,
            sections,
            dirs,
            dirs_at,
        })
    }

    fn dir(&self, i: usize) -> Option<(u32, u32)> {
        self.dirs.get(i).copied().filter(|(rva, _)| *rva != 0)
    }

    /// The file offset of `rva`, if the file holds bytes there.
    fn offset(&self, rva: u32, what: &str) -> Result<usize, PeError> {
        if rva < self.size_of_headers {
            return Ok(rva as usize);
        }
        for s in &self.sections {
            let span = s.vsize.max(s.raw_size);
            if rva >= s.va && rva - s.va < span {
                let into = rva - s.va;
                if into >= s.raw_size {
                    return Err(PeError::Malformed(format!(
                        "{what} (RVA 0x{rva:X}) lies in a section's uninitialised part"
                    )));
                }
                return Ok(s.raw_at as usize + into as usize);
            }
        }
        Err(PeError::Malformed(format!(
            "{what} (RVA 0x{rva:X}) is in no section"
        )))
    }

    fn u32(&self, rva: u32, what: &str) -> Result<u32, PeError> {
        u32_at(self.b, self.offset(rva, what)?, what)
    }

    /// A NUL-terminated name at `rva` (at most 4 KiB).
    fn name(&self, rva: u32, what: &str) -> Result<(String, usize), PeError> {
        let at = self.offset(rva, what)?;
        let rest = self.b.get(at..).unwrap_or(&[]);
        let rest = &rest[..rest.len().min(4096)];
        let end = rest.iter().position(|&c| c == 0).ok_or_else(|| {
            PeError::Truncated(format!("{what} at byte {at} has no terminating NUL"))
        })?;
        Ok((String::from_utf8_lossy(&rest[..end]).into_owned(), at))
    }

    fn exports(&self) -> Result<Vec<String>, PeError> {
        let Some((rva, _)) = self.dir(DIR_EXPORT) else {
            return Ok(Vec::new());
        };
        let count = self.u32(rva.wrapping_add(24), "the export directory")? as usize;
        if count > MAX_NAMES {
            return Err(PeError::Malformed(format!(
                "{count} exported names (at most {MAX_NAMES})"
            )));
        }
        let names = self.u32(rva.wrapping_add(32), "the export directory")?;
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let at = names.wrapping_add((i * 4) as u32);
            let name = self.u32(at, "an exported name's address")?;
            out.push(self.name(name, "an exported name")?.0);
        }
        Ok(out)
    }

    /// The names and ordinals of a thunk table (import lookup table).
    fn thunks(&self, rva: u32) -> Result<(Vec<String>, Vec<u16>), PeError> {
        let (mut names, mut ordinals) = (Vec::new(), Vec::new());
        let step = if self.wide { 8 } else { 4 };
        for i in 0..MAX_NAMES {
            let at = self.offset(rva.wrapping_add((i * step) as u32), "an import thunk")?;
            let (value, by_ordinal) = if self.wide {
                let v = u64_at(self.b, at, "an import thunk")?;
                (v, v & (1 << 63) != 0)
            } else {
                let v = u32_at(self.b, at, "an import thunk")?;
                (u64::from(v), v & (1 << 31) != 0)
            };
            if value == 0 {
                return Ok((names, ordinals));
            }
            if by_ordinal {
                ordinals.push(value as u16);
            } else {
                let hint_name = u32::try_from(value & 0x7FFF_FFFF).unwrap_or(0);
                names.push(self.name(hint_name.wrapping_add(2), "an imported name")?.0);
            }
        }
        Err(PeError::Malformed(format!(
            "an import table at RVA 0x{rva:X} with more than {MAX_NAMES} entries"
        )))
    }

    fn imports(&self) -> Result<Vec<Import>, PeError> {
        let mut out = Vec::new();
        if let Some((rva, _)) = self.dir(DIR_IMPORT) {
            for i in 0..MAX_DESCRIPTORS {
                let d = rva.wrapping_add((i * 20) as u32);
                let lookup = self.u32(d, "an import descriptor")?;
                let name = self.u32(d.wrapping_add(12), "an import descriptor")?;
                let iat = self.u32(d.wrapping_add(16), "an import descriptor")?;
                if lookup == 0 && name == 0 && iat == 0 {
                    break;
                }
                let (dll, name_at) = self.name(name, "an imported DLL's name")?;
                let table = if lookup != 0 { lookup } else { iat };
                let (names, ordinals) = self.thunks(table)?;
                out.push(Import {
                    dll,
                    names,
                    ordinals,
                    delayed: false,
                    name_at,
                });
            }
        }
        if let Some((rva, _)) = self.dir(DIR_DELAY_IMPORT) {
            for i in 0..MAX_DESCRIPTORS {
                let d = rva.wrapping_add((i * 32) as u32);
                let attributes = self.u32(d, "a delay-load descriptor")?;
                let name = self.u32(d.wrapping_add(4), "a delay-load descriptor")?;
                let lookup = self.u32(d.wrapping_add(16), "a delay-load descriptor")?;
                if name == 0 {
                    break;
                }
                if attributes & 1 == 0 {
                    // Old (Visual C++ 6) delay-load tables hold addresses,
                    // not RVAs: not read.
                    return Err(PeError::Malformed(
                        "a delay-load descriptor of the old, address-based kind".into(),
                    ));
                }
                let (dll, name_at) = self.name(name, "a delay-loaded DLL's name")?;
                let (names, ordinals) = self.thunks(lookup)?;
                out.push(Import {
                    dll,
                    names,
                    ordinals,
                    delayed: true,
                    name_at,
                });
            }
        }
        Ok(out)
    }
}

/// Reads a DLL's machine, exports and imports from its bytes.
pub fn read(bytes: &[u8]) -> Result<Dll, PeError> {
    let image = Image::parse(bytes)?;
    Ok(Dll {
        machine: image.machine,
        exports: image.exports()?,
        imports: image.imports()?,
    })
}

/// Whether `bytes` start like a PE image (`MZ`).
pub fn looks_like_pe(bytes: &[u8]) -> bool {
    bytes.starts_with(b"MZ")
}

/// A copy of `bytes` whose imports from DLL `from` (any case) are imports
/// from `to` instead (its name written over the old one, so `to` must be no
/// longer). Returns the copy and how many import descriptors were renamed.
/// If any was, the bound-import directory (an optional cache of addresses
/// that names DLLs too) is cleared, so the loader binds every import afresh.
pub fn rebind(bytes: &[u8], from: &str, to: &str) -> Result<(Vec<u8>, usize), PeError> {
    let dll = read(bytes)?;
    let image = Image::parse(bytes)?;
    let mut out = bytes.to_vec();
    let mut renamed = 0;
    for i in dll.imports_from(from) {
        if to.len() > i.dll.len() {
            return Err(PeError::Malformed(format!(
                "cannot rename imported DLL {} to the longer {to}",
                i.dll
            )));
        }
        let at = i.name_at;
        out[at..at + i.dll.len()].fill(0);
        out[at..at + to.len()].copy_from_slice(to.as_bytes());
        renamed += 1;
    }
    if renamed > 0 && image.dir(DIR_BOUND_IMPORT).is_some() {
        let at = image.dirs_at + DIR_BOUND_IMPORT * 8;
        out[at..at + 8].fill(0);
    }
    Ok((out, renamed))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes `v` at `rva` of the test DLLs' one section (file offset 0x200
    /// holds RVA 0x1000).
    fn put32(b: &mut [u8], rva: u32, v: u32) {
        put(b, rva, &v.to_le_bytes());
    }

    /// Writes `s` at `rva` of the test DLLs' one section.
    fn put(b: &mut [u8], rva: u32, s: &[u8]) {
        let at = (rva - 0x1000 + 0x200) as usize;
        b[at..at + s.len()].copy_from_slice(s);
    }

    /// A minimal, valid PE32+ DLL: one section holding an export directory
    /// (CpsimProviderStart, CpsimProviderStop) and an import directory
    /// (IPHLPAPI.DLL: CPNatfwtCreateProviderInstance; by ordinal 7).
    pub(crate) fn tiny_dll() -> Vec<u8> {
        let mut b = vec![0u8; 0x400];
        b[..2].copy_from_slice(b"MZ");
        b[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        b[coff..coff + 2].copy_from_slice(&MACHINE_X86_64.to_le_bytes());
        b[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
        b[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
        b[coff + 18..coff + 20].copy_from_slice(&(FILE_DLL | 0x22).to_le_bytes());
        let opt = coff + 20;
        b[opt..opt + 2].copy_from_slice(&0x20Bu16.to_le_bytes());
        b[opt + 60..opt + 64].copy_from_slice(&0x200u32.to_le_bytes());
        b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        let dir = |b: &mut Vec<u8>, i: usize, rva: u32, size: u32| {
            let at = opt + 112 + i * 8;
            b[at..at + 4].copy_from_slice(&rva.to_le_bytes());
            b[at + 4..at + 8].copy_from_slice(&size.to_le_bytes());
        };
        dir(&mut b, DIR_EXPORT, 0x1000, 40);
        dir(&mut b, DIR_IMPORT, 0x1100, 40);
        // The section: RVA 0x1000, file 0x200, 0x200 bytes.
        let sec = opt + 240;
        b[sec..sec + 6].copy_from_slice(b".edata");
        b[sec + 8..sec + 12].copy_from_slice(&0x200u32.to_le_bytes());
        b[sec + 12..sec + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        b[sec + 16..sec + 20].copy_from_slice(&0x200u32.to_le_bytes());
        b[sec + 20..sec + 24].copy_from_slice(&0x200u32.to_le_bytes());
        // Exports: 2 names at 0x1040, name strings at 0x1060 and 0x1080.
        put32(&mut b, 0x1000 + 24, 2);
        put32(&mut b, 0x1000 + 32, 0x1040);
        put32(&mut b, 0x1040, 0x1060);
        put32(&mut b, 0x1044, 0x1080);
        put(&mut b, 0x1060, b"CpsimProviderStart\0");
        put(&mut b, 0x1080, b"CpsimProviderStop\0");
        // Imports: one descriptor, lookup table at 0x1140, name at 0x1180.
        put32(&mut b, 0x1100, 0x1140);
        put32(&mut b, 0x1100 + 12, 0x1180);
        put32(&mut b, 0x1100 + 16, 0x1160);
        put32(&mut b, 0x1140, 0x11A0); // by name (hint/name at 0x11A0)
        put32(&mut b, 0x1148, 7); // by ordinal 7
        put32(&mut b, 0x114C, 0x8000_0000);
        put(&mut b, 0x1180, b"IPHLPAPI.DLL\0");
        put(&mut b, 0x11A2, b"CPNatfwtCreateProviderInstance\0");
        b
    }

    #[test]
    fn a_small_dll_is_read_exports_imports_and_ordinals() {
        let d = read(&tiny_dll()).unwrap();
        assert_eq!(d.machine, MACHINE_X86_64);
        assert!(d.exports("CpsimProviderStart") && d.exports("CpsimProviderStop"));
        assert_eq!(d.imports.len(), 1);
        let i = &d.imports[0];
        assert_eq!(i.dll, "IPHLPAPI.DLL");
        assert_eq!(i.names, vec!["CPNatfwtCreateProviderInstance".to_string()]);
        assert_eq!(i.ordinals, vec![7]);
        assert!(d.imports("CPNatfwtCreateProviderInstance"));
        assert_eq!(d.imports_from("iphlpapi").count(), 1);
    }

    #[test]
    fn rebind_renames_the_dll_case_insensitively_and_keeps_the_rest() {
        let b = tiny_dll();
        let (out, n) = rebind(&b, "iphlpapi.dll", "cpsimrt.dll").unwrap();
        assert_eq!(n, 1);
        let d = read(&out).unwrap();
        assert_eq!(d.imports[0].dll, "cpsimrt.dll");
        assert_eq!(d.imports[0].names, read(&b).unwrap().imports[0].names);
        assert_eq!(out.len(), b.len());
        let (same, n) = rebind(&b, "kernel32.dll", "k.dll").unwrap();
        assert_eq!((same, n), (b.clone(), 0));
        assert!(rebind(&b, "iphlpapi.dll", "a-much-longer-name.dll").is_err());
    }

    /// `tiny_dll` with a second, delay-loaded import of `iphlpapi.dll`
    /// (CPNatfwtDestroyProviderInstance) and a bound-import directory.
    fn tiny_dll_with_delay_load() -> Vec<u8> {
        let mut b = tiny_dll();
        b.resize(0x600, 0);
        let sec = 0x84 + 20 + 240;
        b[sec + 8..sec + 12].copy_from_slice(&0x400u32.to_le_bytes());
        b[sec + 16..sec + 20].copy_from_slice(&0x400u32.to_le_bytes());
        put32(&mut b, 0x1200, 1); // RVA-based
        put32(&mut b, 0x1204, 0x1280); // the DLL's name
        put32(&mut b, 0x120C, 0x12C0); // its address table
        put32(&mut b, 0x1210, 0x12A0); // its name table
        put32(&mut b, 0x12A0, 0x12E0);
        put(&mut b, 0x1280, b"iphlpapi.dll\0");
        put(&mut b, 0x12E2, b"CPNatfwtDestroyProviderInstance\0");
        let dirs = 0x84 + 20 + 112;
        let dir = |b: &mut Vec<u8>, i: usize, rva: u32, size: u32| {
            b[dirs + i * 8..dirs + i * 8 + 4].copy_from_slice(&rva.to_le_bytes());
            b[dirs + i * 8 + 4..dirs + i * 8 + 8].copy_from_slice(&size.to_le_bytes());
        };
        dir(&mut b, DIR_DELAY_IMPORT, 0x1200, 64);
        dir(&mut b, DIR_BOUND_IMPORT, 0x1F0, 16);
        b
    }

    #[test]
    fn delay_loaded_imports_are_read_and_rebound_and_bound_imports_cleared() {
        let b = tiny_dll_with_delay_load();
        let d = read(&b).unwrap();
        assert_eq!(d.imports.len(), 2);
        let delayed = &d.imports[1];
        assert!(delayed.delayed && !d.imports[0].delayed);
        assert_eq!(delayed.dll, "iphlpapi.dll");
        assert_eq!(
            delayed.names,
            vec!["CPNatfwtDestroyProviderInstance".to_string()]
        );
        let (out, n) = rebind(&b, "IPHLPAPI.DLL", "cpsimrt.dll").unwrap();
        assert_eq!(n, 2);
        let r = read(&out).unwrap();
        assert!(r.imports.iter().all(|i| i.dll == "cpsimrt.dll"), "{r:?}");
        let bound = 0x84 + 20 + 112 + DIR_BOUND_IMPORT * 8;
        assert_eq!(&out[bound..bound + 8], &[0; 8]);
        assert_ne!(&b[bound..bound + 8], &[0; 8]);
        for cut in (0..b.len()).step_by(7) {
            let _ = read(&b[..cut]);
        }
    }

    #[test]
    fn text_and_short_files_are_not_pe() {
        assert_eq!(read(b"hello, this is text"), Err(PeError::NotPe));
        assert_eq!(read(b""), Err(PeError::NotPe));
        assert!(matches!(read(b"MZ"), Err(PeError::Truncated(_))));
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let b = tiny_dll();
        for cut in 0..b.len() {
            let r = read(&b[..cut]);
            assert!(r.is_err(), "cut at {cut} read as {r:?}");
            let _ = rebind(&b[..cut], "iphlpapi.dll", "cpsimrt.dll");
        }
    }

    #[test]
    fn corrupted_bytes_never_panic_and_bad_fields_are_named() {
        let b = tiny_dll();
        // Every byte of the headers and tables set to each of a few values.
        for at in 0..0x400 {
            for v in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                let mut c = b.clone();
                c[at] = v;
                let _ = read(&c);
                let _ = rebind(&c, "iphlpapi.dll", "cpsimrt.dll");
            }
        }
        let mut exe = b.clone();
        exe[0x84 + 18] = 0x22;
        exe[0x84 + 19] = 0;
        assert_eq!(read(&exe), Err(PeError::NotDll));
        let mut arm = b.clone();
        arm[0x84..0x86].copy_from_slice(&0x01C4u16.to_le_bytes());
        assert_eq!(read(&arm), Err(PeError::OtherMachine(0x01C4)));
        assert!(read(&arm).unwrap_err().to_string().contains("ARM"));
        let mut far = b.clone();
        far[0x3C..0x40].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
        assert!(matches!(read(&far), Err(PeError::Truncated(_))));
        let mut stray = b.clone();
        // The import descriptor's name points outside every section.
        let at = 0x200 + 0x100 + 12;
        stray[at..at + 4].copy_from_slice(&0x9000u32.to_le_bytes());
        let e = read(&stray).unwrap_err().to_string();
        assert!(
            e.contains("imported DLL's name") && e.contains("0x9000"),
            "{e}"
        );
        let mut endless = b.clone();
        // A name without its NUL up to the end of the file.
        for x in &mut endless[0x200 + 0x180..] {
            *x = b'A';
        }
        assert!(matches!(read(&endless), Err(PeError::Truncated(_))));
    }
}
