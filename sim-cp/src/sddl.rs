//! Well-formedness check for SDDL (Security Descriptor Definition Language)
//! strings, as passed in the `sddl` argument of
//! `CPNatfwtRegisterProviderInstance` (rule REG-8).
//!
//! This is a syntactic validator modelled on what Windows'
//! `ConvertStringSecurityDescriptorToSecurityDescriptor` accepts. It does not
//! build a security descriptor; it only answers "is this well formed?" and, if
//! not, where and why.
//!
//! Grammar (no whitespace is allowed anywhere):
//!
//! ```text
//! sddl       := component+            (each of O, G, D, S at most once, any order)
//! component  := "O:" sid | "G:" sid | "D:" acl | "S:" acl
//! acl        := acl_flag* ace*        ("D:" alone is an empty DACL)
//! acl_flag   := "P" | "AI" | "AR" | "NO_ACCESS_CONTROL"
//! ace        := "(" type ";" flags ";" rights ";" guid ";" guid ";" sid [";" group] ")"
//!               (the 7th field only for RA, XA, XD, XU, ZA)
//! type       := A D OA OD AU AL OU OL ML SP XA XD ZA XU RA
//! flags      := (CI OI NP IO ID SA FA TP CR)*   (each at most once)
//! rights     := "" | "0x" hex+ | decimal | (two-letter right code)*
//! guid       := "" | 8-4-4-4-12 hex digits
//! sid        := two-letter alias | "S-1-" authority ("-" subauth){0,15}
//! group      := "(" ... ")"    (balanced parentheses; `"..."` strings are opaque)
//! ```

use std::fmt;

/// Why an SDDL string is not well formed: the byte offset and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SddlError {
    /// Byte offset into the input at which the problem was detected.
    pub offset: usize,
    /// Human-readable description of what was expected.
    pub message: String,
}

impl fmt::Display for SddlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for SddlError {}

/// Checks that `sddl` is a well-formed SDDL string.
pub fn validate(sddl: &str) -> Result<(), SddlError> {
    Parser::new(sddl).parse()
}

/// The documented two-letter SID aliases.
const SID_ALIASES: &[&str] = &[
    "AA", "AC", "AN", "AO", "AP", "AS", "AU", "BA", "BG", "BO", "BU", "CA", "CD", "CG", "CN", "CO",
    "CY", "DA", "DC", "DD", "DG", "DU", "EA", "ED", "EK", "ER", "ES", "HA", "HI", "IS", "IU", "KA",
    "LA", "LG", "LS", "LU", "LW", "ME", "MP", "MU", "NO", "NS", "NU", "OW", "PA", "PO", "PS", "PU",
    "RA", "RC", "RD", "RE", "RM", "RO", "RS", "RU", "SA", "SI", "SO", "SS", "SU", "SY", "UD", "WD",
    "WR",
];

/// ACE type strings.
const ACE_TYPES: &[&str] = &[
    "A", "D", "OA", "OD", "AU", "AL", "OU", "OL", "ML", "SP", "XA", "XD", "ZA", "XU", "RA",
];

/// ACE types that may carry a 7th, parenthesised field (resource attribute or
/// condition).
const ACE_TYPES_WITH_EXTRA: &[&str] = &["RA", "XA", "XD", "XU", "ZA"];

/// ACE flag codes.
const ACE_FLAGS: &[&str] = &["CI", "OI", "NP", "IO", "ID", "SA", "FA", "TP", "CR"];

/// Access-right codes.
const RIGHTS: &[&str] = &[
    "GA", "GR", "GW", "GX", "RC", "SD", "WD", "WO", "RP", "WP", "CC", "DC", "LC", "SW", "LO", "DT",
    "CR", "FA", "FR", "FW", "FX", "KA", "KR", "KW", "KX", "NR", "NW", "NX",
];

/// ACL flags, longest first so that matching is unambiguous.
const ACL_FLAGS: &[&str] = &["NO_ACCESS_CONTROL", "AI", "AR", "P"];

/// Largest SID identifier authority (48 bits).
const MAX_AUTHORITY: u64 = (1 << 48) - 1;

/// Maximum number of sub-authorities in a SID.
const MAX_SUB_AUTHORITIES: usize = 15;

/// Longest token quoted verbatim in an error message.
const MAX_SNIPPET: usize = 40;

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Offset of the `(` of the ACE being parsed, if any.
    ace_start: Option<usize>,
}

type PResult<T> = Result<T, SddlError>;

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            ace_start: None,
        }
    }

    // ----- helpers -------------------------------------------------------

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> PResult<T> {
        Err(SddlError {
            offset,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.bytes[self.pos..].starts_with(s.as_bytes())
    }

    /// Describes what is at `offset`, for "found ..." parts of messages.
    fn found_at(&self, offset: usize) -> String {
        match self.src.get(offset..).and_then(|s| s.chars().next()) {
            Some(c) if c.is_control() || c.is_whitespace() => format!("{:?}", c),
            Some(c) => format!("`{}`", c),
            None => match self.bytes.get(offset) {
                Some(b) => format!("byte 0x{:02x}", b),
                None => "end of string".to_string(),
            },
        }
    }

    /// Error for running off the end of the input while `expected` was wanted.
    /// Inside an ACE this is reported as an unbalanced `(`.
    fn eof_err<T>(&self, expected: &str) -> PResult<T> {
        match self.ace_start {
            Some(start) => self.err(
                self.bytes.len(),
                format!(
                    "unbalanced `(`: ACE opened at offset {} is not closed (expected {})",
                    start, expected
                ),
            ),
            None => self.err(
                self.bytes.len(),
                format!("unexpected end of string, expected {}", expected),
            ),
        }
    }

    /// Consumes `want` or fails with "expected `want` <context>".
    fn expect(&mut self, want: u8, context: &str) -> PResult<()> {
        match self.peek() {
            Some(b) if b == want => {
                self.pos += 1;
                Ok(())
            }
            None => self.eof_err(&format!("`{}` {}", want as char, context)),
            Some(_) => self.err(
                self.pos,
                format!(
                    "expected `{}` {}, found {}",
                    want as char,
                    context,
                    self.found_at(self.pos)
                ),
            ),
        }
    }

    /// Reads an ACE field: everything up to (not including) `;`, `)` or the
    /// end of the input. Returns the field's start offset and bytes.
    fn field(&mut self) -> (usize, &'a [u8]) {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b';' || b == b')' {
                break;
            }
            self.pos += 1;
        }
        (start, &self.bytes[start..self.pos])
    }

    // ----- top level -----------------------------------------------------

    fn parse(mut self) -> PResult<()> {
        if self.bytes.is_empty() {
            return self.err(
                0,
                "empty SDDL string: expected at least one component (`O:`, `G:`, `D:` or `S:`)",
            );
        }
        // Offsets of components already seen, indexed O, G, D, S.
        let mut seen: [Option<usize>; 4] = [None; 4];
        while let Some(c) = self.peek() {
            let start = self.pos;
            let index = match c {
                b'O' => 0,
                b'G' => 1,
                b'D' => 2,
                b'S' => 3,
                b')' => return self.err(start, "unbalanced `)`"),
                _ => {
                    return self.err(
                        start,
                        format!(
                            "expected component `O:`, `G:`, `D:` or `S:`, found {}",
                            self.found_at(start)
                        ),
                    )
                }
            };
            self.pos += 1;
            self.expect(b':', &format!("after `{}`", c as char))?;
            if let Some(first) = seen[index] {
                return self.err(
                    start,
                    format!(
                        "duplicate `{}:` component (first at offset {})",
                        c as char, first
                    ),
                );
            }
            seen[index] = Some(start);
            match c {
                b'O' => self.sid("owner SID after `O:`")?,
                b'G' => self.sid("group SID after `G:`")?,
                _ => self.acl(c)?,
            }
        }
        Ok(())
    }

    // ----- SIDs ----------------------------------------------------------

    /// Parses a SID (alias or `S-1-...` literal). `what` names the expected
    /// SID in error messages.
    fn sid(&mut self, what: &str) -> PResult<()> {
        let start = self.pos;
        let (a, b) = match (self.peek(), self.peek_at(1)) {
            (None, _) => return self.eof_err(what),
            (Some(a), b) => (a, b),
        };
        if a == b'S' && b == Some(b'-') {
            return self.literal_sid();
        }
        match b {
            Some(b) if a.is_ascii_uppercase() && b.is_ascii_uppercase() => {
                let alias = &self.src[start..start + 2];
                if SID_ALIASES.contains(&alias) {
                    self.pos += 2;
                    Ok(())
                } else {
                    self.err(start, format!("unknown SID alias `{}`", alias))
                }
            }
            _ => self.err(
                start,
                format!(
                    "expected {} (two-letter alias or `S-1-...`), found {}",
                    what,
                    self.found_at(start)
                ),
            ),
        }
    }

    /// Parses `S-1-<authority>(-<subauth>){0,15}`; the caller has checked
    /// that the input starts with `S-`.
    fn literal_sid(&mut self) -> PResult<()> {
        self.pos += 2; // "S-"
        let rev_at = self.pos;
        let revision = self.decimal(u64::from(u8::MAX), "SID revision")?;
        if revision != 1 {
            return self.err(
                rev_at,
                format!("unsupported SID revision {}, expected `1`", revision),
            );
        }
        self.expect(b'-', "after SID revision")?;
        self.decimal(MAX_AUTHORITY, "SID identifier authority")?;
        let mut count = 0;
        while self.peek() == Some(b'-') {
            let dash = self.pos;
            self.pos += 1;
            if count == MAX_SUB_AUTHORITIES {
                return self.err(
                    dash,
                    format!(
                        "too many SID sub-authorities (at most {})",
                        MAX_SUB_AUTHORITIES
                    ),
                );
            }
            self.decimal(u64::from(u32::MAX), "SID sub-authority")?;
            count += 1;
        }
        Ok(())
    }

    /// Parses a non-empty decimal number no larger than `max`.
    fn decimal(&mut self, max: u64, what: &str) -> PResult<u64> {
        let start = self.pos;
        let mut value: u64 = 0;
        let mut overflow = false;
        while let Some(b) = self.peek() {
            if !b.is_ascii_digit() {
                break;
            }
            value = match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
            {
                Some(v) if v <= max => v,
                _ => {
                    overflow = true;
                    0
                }
            };
            self.pos += 1;
        }
        if self.pos == start {
            if self.at_end() {
                return self.eof_err(&format!("decimal {}", what));
            }
            return self.err(
                start,
                format!("expected decimal {}, found {}", what, self.found_at(start)),
            );
        }
        if overflow {
            return self.err(start, format!("{} out of range (at most {})", what, max));
        }
        Ok(value)
    }

    // ----- ACLs ----------------------------------------------------------

    /// Parses ACL flags and ACEs after `D:` or `S:`.
    fn acl(&mut self, kind: u8) -> PResult<()> {
        // Flags.
        'flags: while !self.at_end() {
            for flag in ACL_FLAGS {
                if self.starts_with(flag) {
                    self.pos += flag.len();
                    continue 'flags;
                }
            }
            break;
        }
        // ACEs.
        let mut aces = 0usize;
        while self.peek() == Some(b'(') {
            self.ace()?;
            aces += 1;
        }
        // What follows must be the end or the next component.
        match self.peek() {
            None | Some(b'O' | b'G' | b'D' | b'S') => Ok(()),
            Some(b')') => self.err(self.pos, "unbalanced `)`"),
            Some(_) if aces == 0 => self.err(
                self.pos,
                format!(
                    "expected ACL flag (`P`, `AI`, `AR`, `NO_ACCESS_CONTROL`), `(` to start an \
                     ACE, or a new component after `{}:`, found {}",
                    kind as char,
                    self.found_at(self.pos)
                ),
            ),
            Some(_) => self.err(
                self.pos,
                format!(
                    "expected `(` to start an ACE or a new component, found {}",
                    self.found_at(self.pos)
                ),
            ),
        }
    }

    /// Parses one `(...)` ACE.
    fn ace(&mut self) -> PResult<()> {
        let open = self.pos;
        self.pos += 1; // '('
        self.ace_start = Some(open);

        // 1. ACE type.
        let (at, ty) = self.field();
        let ty = std::str::from_utf8(ty).unwrap_or("");
        if ty.is_empty() {
            if self.at_end() {
                return self.eof_err("ACE type");
            }
            return self.err(at, "missing ACE type");
        }
        if !ACE_TYPES.contains(&ty) {
            return self.err(
                at,
                format!("unknown ACE type `{}`", snippet(&self.bytes[at..self.pos])),
            );
        }
        self.expect(b';', "after ACE type")?;

        // 2. ACE flags.
        let (at, flags) = self.field();
        codes(flags, at, ACE_FLAGS, true, "ACE flag")?;
        self.expect(b';', "after ACE flags")?;

        // 3. Access rights.
        let (at, rights) = self.field();
        access_rights(rights, at)?;
        self.expect(b';', "after access rights")?;

        // 4, 5. Object type GUID and inherited object type GUID.
        let (at, guid) = self.field();
        check_guid(guid, at, "object type GUID")?;
        self.expect(b';', "after object type GUID")?;
        let (at, guid) = self.field();
        check_guid(guid, at, "inherited object type GUID")?;
        self.expect(b';', "after inherited object type GUID")?;

        // 6. Account SID.
        match self.peek() {
            Some(b';' | b')') => return self.err(self.pos, "missing account SID in ACE"),
            _ => self.sid("account SID")?,
        }

        // 7. Optional resource attribute / condition.
        if self.peek() == Some(b';') {
            if !ACE_TYPES_WITH_EXTRA.contains(&ty) {
                return self.err(
                    self.pos,
                    format!(
                        "expected `)` after account SID: ACE type `{}` takes 6 fields \
                         (only RA, XA, XD, XU and ZA take a 7th)",
                        ty
                    ),
                );
            }
            self.pos += 1;
            let what = if ty == "RA" {
                "resource attribute"
            } else {
                "condition"
            };
            self.balanced_group(what)?;
        }

        match self.peek() {
            Some(b')') => {
                self.pos += 1;
                self.ace_start = None;
                Ok(())
            }
            None => self.eof_err("`)` to close the ACE"),
            Some(_) => self.err(
                self.pos,
                format!(
                    "expected `)` to close the ACE, found {}",
                    self.found_at(self.pos)
                ),
            ),
        }
    }

    /// Skips a parenthesised group with balanced parentheses; double-quoted
    /// strings inside it are opaque.
    fn balanced_group(&mut self, what: &str) -> PResult<()> {
        match self.peek() {
            Some(b'(') => {}
            None => return self.eof_err(&format!("`(` to start the {}", what)),
            Some(_) => {
                return self.err(
                    self.pos,
                    format!(
                        "expected `(` to start the {}, found {}",
                        what,
                        self.found_at(self.pos)
                    ),
                )
            }
        }
        let open = self.pos;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                b'"' => {
                    let quote = self.pos;
                    self.pos += 1;
                    while self.peek().is_some_and(|b| b != b'"') {
                        self.pos += 1;
                    }
                    if self.at_end() {
                        return self.err(quote, format!("unterminated string literal in {}", what));
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.err(open, format!("unbalanced `(`: {} is not closed", what))
    }
}

/// Quotes at most `MAX_SNIPPET` bytes of `bytes` for an error message.
fn snippet(bytes: &[u8]) -> String {
    if bytes.len() <= MAX_SNIPPET {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        format!("{}...", String::from_utf8_lossy(&bytes[..MAX_SNIPPET]))
    }
}

/// Checks that `field` (starting at offset `at`) is a concatenation of
/// two-letter codes from `allowed`, each at most once if `unique`.
fn codes(field: &[u8], at: usize, allowed: &[&str], unique: bool, what: &str) -> PResult<()> {
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < field.len() {
        let end = (i + 2).min(field.len());
        let code = &field[i..end];
        if code.len() < 2 || !allowed.iter().any(|a| a.as_bytes() == code) {
            let shown = if code.len() < 2 {
                snippet(&field[i..])
            } else {
                snippet(code)
            };
            return Err(SddlError {
                offset: at + i,
                message: format!("unknown {} `{}`", what, shown),
            });
        }
        if unique {
            if seen.contains(&code) {
                return Err(SddlError {
                    offset: at + i,
                    message: format!("duplicate {} `{}`", what, snippet(code)),
                });
            }
            seen.push(code);
        }
        i += 2;
    }
    Ok(())
}

/// Checks the access-rights field: empty, `0x` hex, decimal, or right codes.
fn access_rights(field: &[u8], at: usize) -> PResult<()> {
    let bad = |offset: usize, message: String| Err(SddlError { offset, message });
    if field.is_empty() {
        return Ok(());
    }
    if field.len() >= 2 && field[0] == b'0' && (field[1] == b'x' || field[1] == b'X') {
        let digits = &field[2..];
        if digits.is_empty() {
            return bad(
                at + 2,
                "expected hexadecimal digits after `0x` in access mask".to_string(),
            );
        }
        if let Some(i) = digits.iter().position(|b| !b.is_ascii_hexdigit()) {
            return bad(
                at + 2 + i,
                format!(
                    "expected hexadecimal digit in access mask, found `{}`",
                    snippet(&digits[i..i + 1])
                ),
            );
        }
        let significant = digits.iter().skip_while(|&&b| b == b'0').count();
        if significant > 8 {
            return bad(
                at,
                "access mask out of range (at most 0xffffffff)".to_string(),
            );
        }
        return Ok(());
    }
    if field[0].is_ascii_digit() {
        if let Some(i) = field.iter().position(|b| !b.is_ascii_digit()) {
            return bad(
                at + i,
                format!(
                    "expected decimal digit in access mask, found `{}`",
                    snippet(&field[i..i + 1])
                ),
            );
        }
        let mut value: u64 = 0;
        for &b in field {
            value = value * 10 + u64::from(b - b'0');
            if value > u64::from(u32::MAX) {
                return bad(
                    at,
                    "access mask out of range (at most 4294967295)".to_string(),
                );
            }
        }
        return Ok(());
    }
    codes(field, at, RIGHTS, false, "access right")
}

/// Checks a GUID field: empty or `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn check_guid(field: &[u8], at: usize, what: &str) -> PResult<()> {
    const DASHES: [usize; 4] = [8, 13, 18, 23];
    const LEN: usize = 36;
    if field.is_empty() {
        return Ok(());
    }
    let expected = "8-4-4-4-12 hexadecimal digits";
    for i in 0..LEN {
        let Some(&b) = field.get(i) else {
            return Err(SddlError {
                offset: at + i,
                message: format!(
                    "{} `{}` is too short, expected {}",
                    what,
                    snippet(field),
                    expected
                ),
            });
        };
        let ok = if DASHES.contains(&i) {
            b == b'-'
        } else {
            b.is_ascii_hexdigit()
        };
        if !ok {
            return Err(SddlError {
                offset: at + i,
                message: format!(
                    "invalid {} `{}`: expected {} at position {}",
                    what,
                    snippet(field),
                    if DASHES.contains(&i) {
                        "`-`"
                    } else {
                        "a hexadecimal digit"
                    },
                    i
                ),
            });
        }
    }
    if field.len() > LEN {
        return Err(SddlError {
            offset: at + LEN,
            message: format!(
                "{} `{}` is too long, expected {}",
                what,
                snippet(field),
                expected
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WELL_FORMED: &[&str] = &[
        "D:P(A;;GA;;;SY)(A;;GA;;;BA)",
        "O:BAG:SYD:(A;CIOI;GRGX;;;WD)",
        "D:(A;;0x1f01ff;;;S-1-5-32-544)",
        "S:(ML;;NW;;;LW)",
        "D:",
        "O:S-1-5-21-1-2-3-500",
        "G:SY",
        "S:",
        "D:PAI",
        "D:NO_ACCESS_CONTROL",
        "D:PAIAR(A;OICI;FA;;;BA)",
        "O:SYG:SYD:(D;;GA;;;AN)S:(AU;SAFA;GA;;;WD)",
        "D:(A;;2032127;;;S-1-5-18)",
        "D:(A;;0X1F;;;BU)",
        "D:(OA;;RP;bf967aba-0de6-11d0-a285-00aa003049e2;;AU)",
        "D:(OA;CIIO;RPWP;bf967aba-0de6-11d0-a285-00aa003049e2;4828CC14-1437-45BC-9B07-AD6F015E5F28;S-1-5-10)",
        "S:D:G:BAO:BA",
        "D:(A;;;;;WD)",
        "D:(A;ID;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)",
        "O:S-1-5",
        "O:S-1-0-0",
        "O:S-1-281474976710655-4294967295",
        "O:S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15",
        "D:(XA;;FX;;;S-1-1-0;(@User.Title == \"PM\" && (@User.Division == \"Finance\")))",
        "D:(XD;;FR;;;WD;(Member_of {SID(BA)}))",
        "S:(RA;CI;;;;S-1-1-0;(\"Secrecy\",TU,0,3))",
        "S:(RA;CI;;;;WD)",
        "D:(XA;;FX;;;WD)",
        "S:(SP;;;;;S-1-17-1)",
        "D:(A;;;;;S-1-5-21-1-2-3-500)",
        "D:(A;CIOINPIOIDSAFATPCR;GA;;;SY)",
        "D:(ZA;;GA;;;SY;(x == \")(\"))",
        "S:PAI(ML;;NRNWNX;;;HI)",
    ];

    #[test]
    fn well_formed_examples_are_accepted() {
        for s in WELL_FORMED {
            assert_eq!(validate(s), Ok(()), "{:?} should be well formed", s);
        }
    }

    /// (input, expected error offset, substring of the message)
    const MALFORMED: &[(&str, usize, &str)] = &[
        ("", 0, "empty"),
        ("O", 1, "expected `:` after `O`"),
        ("OBA", 1, "expected `:` after `O`"),
        ("O:", 2, "owner SID"),
        ("O:ZZ", 2, "unknown SID alias `ZZ`"),
        ("O:BAO:SY", 4, "duplicate `O:` component"),
        ("D:(A;;GA;;;SY)D:", 14, "duplicate `D:` component"),
        ("X:BA", 0, "expected component"),
        (" D:", 0, "expected component"),
        ("D: ", 2, "expected ACL flag"),
        ("D:(AX;;GA;;;SY)", 3, "unknown ACE type `AX`"),
        ("D:(A;;GA;;;SY", 13, "unbalanced `(`"),
        ("D:(A;;GA", 8, "unbalanced `(`"),
        ("D:(A;;GA;;;SY))", 14, "unbalanced `)`"),
        ("D:(A;;GA;;SY)", 10, "inherited object type GUID"),
        ("D:(A;;GA)", 8, "expected `;` after access rights"),
        ("D:(A;;GA;;;)", 11, "missing account SID"),
        ("D:(A;XX;GA;;;SY)", 5, "unknown ACE flag `XX`"),
        ("D:(A;CICI;GA;;;SY)", 7, "duplicate ACE flag `CI`"),
        ("D:(A;;GAZZ;;;SY)", 8, "unknown access right `ZZ`"),
        ("D:(A;;G;;;SY)", 6, "unknown access right `G`"),
        ("D:(A;;0x;;;SY)", 8, "hexadecimal digits"),
        ("D:(A;;0x1g;;;SY)", 9, "hexadecimal digit"),
        ("D:(A;;0x100000000;;;SY)", 6, "out of range"),
        ("D:(A;;4294967296;;;SY)", 6, "out of range"),
        ("D:(A;;12a;;;SY)", 8, "decimal digit"),
        ("D:(OA;;RP;bf967aba-0de6-11d0-a285;;;SY)", 33, "too short"),
        (
            "D:(OA;;RP;bf967aba_0de6-11d0-a285-00aa003049e2;;;SY)",
            18,
            "`-`",
        ),
        (
            "D:(OA;;RP;bf967aba-0de6-11d0-a285-00aa003049e2f;;;SY)",
            46,
            "too long",
        ),
        ("D:(A;;GA;;;SY;(x))", 13, "takes 6 fields"),
        ("D:(XA;;GA;;;SY;(x == 1)", 23, "unbalanced `(`"),
        ("D:(XA;;GA;;;SY;((x == 1)", 15, "unbalanced `(`"),
        ("D:(XA;;GA;;;SY;(x == (1))", 25, "unbalanced `(`"),
        (
            "D:(XA;;GA;;;SY;x)",
            15,
            "expected `(` to start the condition",
        ),
        ("D:(XA;;GA;;;SY;(x == \"a))", 21, "unterminated string"),
        ("O:S-2-5", 4, "unsupported SID revision"),
        ("O:S-1", 5, "`-` after SID revision"),
        ("O:S-1-", 6, "SID identifier authority"),
        ("O:S-1-281474976710656", 6, "out of range"),
        ("O:S-1-5-4294967296", 8, "out of range"),
        ("O:S-1-5-", 8, "SID sub-authority"),
        ("O:S-1-5-x", 8, "SID sub-authority"),
        (
            "O:S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
            43,
            "too many SID sub-authorities",
        ),
        ("O:ba", 2, "owner SID"),
        ("O:BAX", 4, "expected component"),
        ("D:PX", 3, "expected ACL flag"),
        ("D:(A;;GA;;;SY)X", 14, "expected `(` to start an ACE"),
        ("D:(A;;GA;;;SYS)", 13, "expected `)` to close the ACE"),
        ("D:(;;GA;;;SY)", 3, "missing ACE type"),
        ("G:S-1-5-é", 8, "SID sub-authority"),
        ("D:(A;;GA;;;é)", 11, "account SID"),
    ];

    #[test]
    fn malformed_examples_are_rejected_at_plausible_offsets() {
        for &(s, offset, needle) in MALFORMED {
            let err = validate(s).expect_err(&format!("{:?} should be rejected", s));
            assert_eq!(
                err.offset, offset,
                "{:?}: wrong offset in error `{}`",
                s, err
            );
            assert!(
                err.message.contains(needle),
                "{:?}: message `{}` does not mention `{}`",
                s,
                err.message,
                needle
            );
            assert!(err.offset <= s.len());
            assert!(s.is_char_boundary(err.offset));
        }
    }

    #[test]
    fn display_format() {
        let err = validate("O:ZZ").unwrap_err();
        assert_eq!(err.to_string(), "at offset 2: unknown SID alias `ZZ`");
        let err = validate("D:(AX;;GA;;;SY)").unwrap_err();
        assert_eq!(err.to_string(), "at offset 3: unknown ACE type `AX`");
    }

    /// Tiny xorshift64 generator so the test needs no dependencies.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn check_no_panic(s: &str) {
        let result = std::panic::catch_unwind(|| validate(s));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                assert!(e.offset <= s.len(), "{:?}: offset out of range: {}", s, e);
                assert!(
                    s.is_char_boundary(e.offset),
                    "{:?}: offset not on char boundary",
                    s
                );
                assert!(!e.message.is_empty());
            }
            Err(_) => panic!("validate panicked on {:?}", s),
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        const ALPHABET: &[u8] = b"OGDS:;()-0123456789abcdefxXAPIRNO_CGWLKMYUTFE \"@=&";
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for i in 0..6000 {
            let len = rng.below(48);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match i % 3 {
                    // Fully random bytes (lossily made into a &str).
                    0 => rng.next() as u8,
                    // SDDL-ish alphabet.
                    _ => ALPHABET[rng.below(ALPHABET.len())],
                })
                .collect();
            check_no_panic(&String::from_utf8_lossy(&bytes));
        }
        // Mutations of well-formed strings hit deeper parser states.
        for _ in 0..6000 {
            let base = WELL_FORMED[rng.below(WELL_FORMED.len())].as_bytes();
            let mut bytes = base.to_vec();
            for _ in 0..1 + rng.below(3) {
                let at = if bytes.is_empty() {
                    0
                } else {
                    rng.below(bytes.len() + 1)
                };
                let c = ALPHABET[rng.below(ALPHABET.len())];
                match rng.below(3) {
                    0 => bytes.insert(at, c),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = c,
                    _ => bytes.push(c),
                }
            }
            check_no_panic(&String::from_utf8_lossy(&bytes));
        }
    }
}
