//! Transport IDs as values: the 4- or 16-byte addresses the platform hands out.
//!
//! The simulator allocates one IPv4-sized and one IPv6-sized ID per interface
//! (a decision, docs/CONTRACT.md §1.1) from documentation-style ranges, so they read
//! like addresses in traces: `25.h.i.n` and `2001:db8:h:i::n`.

use serde::{Deserialize, Serialize};

/// An owned transport ID (deep copy): length 4 or 16.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    len: u8,
    bytes: [u8; 16],
}

impl Tid {
    /// A transport ID from its bytes; `None` unless 4 or 16 bytes long.
    pub fn from_bytes(b: &[u8]) -> Option<Tid> {
        // The 16 bytes made as one value (one store), not zeroed and then
        // partly overwritten by a copy of `b.len()` bytes: an ID is read
        // whole right after it is made (the platform reads two per
        // indication), and a read wider than the writes just before it
        // stalls on store forwarding.
        let padded = match b.len() {
            4 => u128::from(u32::from_le_bytes(b.try_into().ok()?)),
            16 => u128::from_le_bytes(b.try_into().ok()?),
            _ => return None,
        };
        Some(Tid {
            len: b.len() as u8,
            bytes: padded.to_le_bytes(),
        })
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    /// The ID's bytes in 16, zeros past its length.
    pub fn padded(&self) -> [u8; 16] {
        self.bytes
    }
    pub fn is_v4(&self) -> bool {
        self.len == 4
    }
    /// The IPv4-style ID of interface `iface` on host `host`, variant `n`.
    pub fn v4(host: u8, iface: u8, n: u8) -> Tid {
        Tid::from_bytes(&[25, host, iface, n]).unwrap()
    }
    /// The IPv6-style ID of interface `iface` on host `host`, variant `n`.
    pub fn v6(host: u8, iface: u8, n: u8) -> Tid {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        b[5] = host;
        b[7] = iface;
        b[15] = n;
        Tid::from_bytes(&b).unwrap()
    }
}

impl std::fmt::Display for Tid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.as_bytes();
        if self.is_v4() {
            // Dotted decimal, written directly (traces format many of these).
            let mut out = [0u8; 15];
            let mut n = 0;
            for (k, &v) in b.iter().enumerate() {
                if k > 0 {
                    out[n] = b'.';
                    n += 1;
                }
                if v >= 100 {
                    out[n] = b'0' + v / 100;
                    n += 1;
                }
                if v >= 10 {
                    out[n] = b'0' + v / 10 % 10;
                    n += 1;
                }
                out[n] = b'0' + v % 10;
                n += 1;
            }
            f.write_str(std::str::from_utf8(&out[..n]).expect("ASCII digits and dots"))
        } else {
            let words: Vec<u16> = b
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let addr = std::net::Ipv6Addr::new(
                words[0], words[1], words[2], words[3], words[4], words[5], words[6], words[7],
            );
            write!(f, "{addr}")
        }
    }
}
impl std::fmt::Debug for Tid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Tid {
    type Err = String;
    fn from_str(s: &str) -> Result<Tid, String> {
        if let Ok(a) = s.parse::<std::net::Ipv4Addr>() {
            return Ok(Tid::from_bytes(&a.octets()).unwrap());
        }
        if let Ok(a) = s.parse::<std::net::Ipv6Addr>() {
            return Ok(Tid::from_bytes(&a.octets()).unwrap());
        }
        Err(format!("`{s}` is not an IPv4 or IPv6 address"))
    }
}

impl Serialize for Tid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Tid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Tid, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn formats_and_parses() {
        let a = Tid::v4(1, 2, 3);
        assert_eq!(a.to_string(), "25.1.2.3");
        assert_eq!("25.1.2.3".parse::<Tid>().unwrap(), a);
        let b = Tid::v6(1, 2, 3);
        assert_eq!(b.to_string(), "2001:db8:1:2::3");
        assert_eq!(b.to_string().parse::<Tid>().unwrap(), b);
        assert!(Tid::from_bytes(&[1, 2, 3]).is_none());
    }
}

#[cfg(test)]
mod display_tests {
    use super::Tid;

    #[test]
    fn v4_is_dotted_decimal() {
        for v in [0u8, 1, 9, 10, 42, 99, 100, 199, 200, 255] {
            let t = Tid::from_bytes(&[v, 25, 0, v]).unwrap();
            assert_eq!(t.to_string(), format!("{v}.25.0.{v}"));
        }
    }
}
