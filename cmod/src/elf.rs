//! Reading what a shared library exports and imports from its bytes, without
//! loading it (loading runs its initialisers: module code).
//!
//! Only what the harness needs: the file type (a shared object), the
//! machine, and the names in the dynamic symbol table, defined or not.
//! Every offset is bounds-checked: the bytes may be anything.

/// What the dynamic symbol table of a shared object says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Symbols {
    /// Names the object defines (its exports).
    pub defined: Vec<String>,
    /// Names it needs from elsewhere (its imports).
    pub undefined: Vec<String>,
}

impl Symbols {
    /// Whether the object defines `name`.
    pub fn defines(&self, name: &str) -> bool {
        self.defined.iter().any(|d| d == name)
    }
    /// Whether the object imports `name` (versioned names count too).
    pub fn imports(&self, name: &str) -> bool {
        self.undefined.iter().any(|d| d == name)
    }
}

/// What kind of file the bytes are, as far as loading them goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Not an ELF file at all.
    NotElf,
    /// An ELF file, but not a shared object (an executable, an object file…).
    NotShared,
    /// A shared object for another machine (`e_machine`).
    OtherMachine(u16),
    /// A shared object for this machine; its symbols, if the section
    /// headers could be read (`None`: stripped of them).
    Shared(Option<Symbols>),
}

const ET_DYN: u16 = 3;
const SHT_DYNSYM: u32 = 11;
const PT_INTERP: u32 = 3;

/// This machine's `e_machine`, where known.
fn this_machine() -> Option<u16> {
    if cfg!(target_arch = "x86_64") {
        Some(62)
    } else if cfg!(target_arch = "aarch64") {
        Some(183)
    } else if cfg!(target_arch = "x86") {
        Some(3)
    } else if cfg!(target_arch = "arm") {
        Some(40)
    } else if cfg!(target_arch = "riscv64") {
        Some(243)
    } else {
        None
    }
}

struct Reader<'a> {
    b: &'a [u8],
    little: bool,
    wide: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: u64) -> Option<[u8; N]> {
        let at = usize::try_from(at).ok()?;
        self.b.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, at: u64) -> Option<u16> {
        let v = self.bytes::<2>(at)?;
        Some(if self.little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        })
    }
    fn u32(&self, at: u64) -> Option<u32> {
        let v = self.bytes::<4>(at)?;
        Some(if self.little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        })
    }
    fn u64(&self, at: u64) -> Option<u64> {
        let v = self.bytes::<8>(at)?;
        Some(if self.little {
            u64::from_le_bytes(v)
        } else {
            u64::from_be_bytes(v)
        })
    }
    fn cstr(&self, at: u64) -> Option<String> {
        let at = usize::try_from(at).ok()?;
        let rest = self.b.get(at..)?;
        let end = rest.iter().position(|&c| c == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// What `bytes` are (see [`Kind`]).
pub fn inspect(bytes: &[u8]) -> Kind {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return Kind::NotElf;
    }
    let wide = match bytes[4] {
        1 => false,
        2 => true,
        _ => return Kind::NotElf,
    };
    let little = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Kind::NotElf,
    };
    let r = Reader {
        b: bytes,
        little,
        wide,
    };
    let (Some(e_type), Some(machine)) = (r.u16(16), r.u16(18)) else {
        return Kind::NotElf;
    };
    if e_type != ET_DYN {
        return Kind::NotShared;
    }
    if this_machine().is_some_and(|m| m != machine) {
        return Kind::OtherMachine(machine);
    }
    Kind::Shared(symbols(&r))
}

/// Whether an ELF file asks for a program interpreter (`PT_INTERP`): an
/// executable (a PIE is `ET_DYN` like a shared library) built without
/// `-shared`. False for anything unreadable.
pub fn has_interpreter(bytes: &[u8]) -> bool {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" || !matches!(bytes[4], 1 | 2) {
        return false;
    }
    let r = Reader {
        b: bytes,
        little: bytes[5] == 1,
        wide: bytes[4] == 2,
    };
    // Header fields: e_phoff, e_phentsize, e_phnum.
    let Some((phoff, phentsize, phnum)) = (if r.wide {
        r.u64(0x20)
            .zip(r.u16(0x36))
            .zip(r.u16(0x38))
            .map(|((a, b), c)| (a, b, c))
    } else {
        r.u32(0x1C)
            .map(u64::from)
            .zip(r.u16(0x2A))
            .zip(r.u16(0x2C))
            .map(|((a, b), c)| (a, b, c))
    }) else {
        return false;
    };
    (0..u64::from(phnum)).any(|i| {
        i.checked_mul(u64::from(phentsize))
            .and_then(|o| phoff.checked_add(o))
            .and_then(|at| r.u32(at))
            == Some(PT_INTERP)
    })
}

/// A readable name for an ELF machine number, with the number.
pub fn machine_name(m: u16) -> String {
    let name = match m {
        3 => "x86",
        40 => "ARM",
        62 => "x86-64",
        183 => "AArch64",
        243 => "RISC-V",
        _ => return format!("ELF machine {m}"),
    };
    format!("{name}, ELF machine {m}")
}

fn symbols(r: &Reader) -> Option<Symbols> {
    // Header fields: e_shoff, e_shentsize, e_shnum.
    let (shoff, shentsize, shnum) = if r.wide {
        (r.u64(0x28)?, r.u16(0x3A)?, r.u16(0x3C)?)
    } else {
        (u64::from(r.u32(0x20)?), r.u16(0x2E)?, r.u16(0x30)?)
    };
    if shoff == 0 || shnum == 0 || shentsize < if r.wide { 64 } else { 40 } {
        return None;
    }
    // A section header: (type, offset, size, link, entsize).
    let section = |i: u64| -> Option<(u32, u64, u64, u32, u64)> {
        let at = shoff.checked_add(i.checked_mul(u64::from(shentsize))?)?;
        if r.wide {
            Some((
                r.u32(at + 4)?,
                r.u64(at + 0x18)?,
                r.u64(at + 0x20)?,
                r.u32(at + 0x28)?,
                r.u64(at + 0x38)?,
            ))
        } else {
            Some((
                r.u32(at + 4)?,
                u64::from(r.u32(at + 0x10)?),
                u64::from(r.u32(at + 0x14)?),
                r.u32(at + 0x18)?,
                u64::from(r.u32(at + 0x24)?),
            ))
        }
    };
    let mut out = Symbols::default();
    let mut found = false;
    for i in 0..u64::from(shnum) {
        let (kind, off, size, link, entsize) = section(i)?;
        if kind != SHT_DYNSYM {
            continue;
        }
        found = true;
        let min = if r.wide { 24 } else { 16 };
        if entsize < min {
            return None;
        }
        let (_, stroff, strsize, _, _) = section(u64::from(link))?;
        // At most a million symbols: a bound on hostile sizes.
        let count = (size / entsize).min(1 << 20);
        for k in 1..count {
            let at = off.checked_add(k.checked_mul(entsize)?)?;
            let name_off = u64::from(r.u32(at)?);
            let shndx = if r.wide {
                r.u16(at + 6)?
            } else {
                r.u16(at + 14)?
            };
            if name_off >= strsize {
                continue;
            }
            let name = r.cstr(stroff.checked_add(name_off)?)?;
            if name.is_empty() {
                continue;
            }
            if shndx == 0 {
                out.undefined.push(name);
            } else {
                out.defined.push(name);
            }
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_short_files_are_not_elf() {
        assert_eq!(inspect(b"hello, this is text, not a library"), Kind::NotElf);
        assert_eq!(inspect(b"\x7fELF"), Kind::NotElf);
        assert_eq!(inspect(&[]), Kind::NotElf);
    }

    #[test]
    fn a_truncated_header_never_panics() {
        let mut b = b"\x7fELF\x02\x01\x01".to_vec();
        b.resize(64, 0);
        b[16] = 3; // ET_DYN
        b[18] = this_machine().unwrap_or(62) as u8;
        b[0x28] = 0xFF; // section headers far past the end
        b[0x3A] = 64;
        b[0x3C] = 3;
        assert_eq!(inspect(&b), Kind::Shared(None));
        for cut in 0..b.len() {
            let _ = inspect(&b[..cut]);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_executable_has_an_interpreter_and_a_bare_header_has_none() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(has_interpreter(&me));
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        assert!(!has_interpreter(&b));
        for cut in 0..b.len() {
            let _ = has_interpreter(&me[..cut]);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_test_binary_is_an_executable_not_a_shared_object_or_is_pie() {
        // A PIE executable is ET_DYN too; an ordinary one is ET_EXEC. Either
        // way, reading it must not panic and must see ELF.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_ne!(inspect(&me), Kind::NotElf);
    }
}
