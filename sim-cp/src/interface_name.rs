//! Friendly names of CP interfaces (REG-1, REG-2, REG-3).
//!
//! Names are counted in UTF-16 code units, as WCHARs are.

use crate::abi::CPNATFWT_MAX_INTERFACE_NAME_LENGTH as MAX;

/// The name a NULL friendly name gets: unique on the host because `n` is.
pub fn default_name(n: u32) -> Vec<u16> {
    format!("Microsoft Connectivity Platform Adapter #{n}")
        .encode_utf16()
        .collect()
}

/// The final name for `wanted` given the names already used on the host:
/// cut to the limit, and if taken, cut further and suffixed with ` #2`, ` #3`, …
pub fn assign(wanted: &[u16], in_use: &dyn Fn(&[u16]) -> bool) -> Vec<u16> {
    let base = &wanted[..wanted.len().min(MAX)];
    assign_cut(base, in_use)
}

fn assign_cut(base: &[u16], in_use: &dyn Fn(&[u16]) -> bool) -> Vec<u16> {
    if !in_use(base) {
        return base.to_vec();
    }
    for k in 2u32.. {
        let suffix: Vec<u16> = format!(" #{k}").encode_utf16().collect();
        let keep = base.len().min(MAX - suffix.len());
        let mut name = base[..keep].to_vec();
        name.extend_from_slice(&suffix);
        if !in_use(&name) {
            return name;
        }
    }
    unreachable!("the suffix counter is unbounded")
}

#[cfg(test)]
mod tests {
    use super::*;
    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }
    #[test]
    fn duplicates_get_suffixes_and_long_names_fit() {
        let taken = [w("vpn"), w("vpn #2")];
        let used = |n: &[u16]| taken.iter().any(|t| t == n);
        assert_eq!(assign(&w("vpn"), &used), w("vpn #3"));
        assert_eq!(assign(&w("other"), &used), w("other"));
        let long = vec![b'x' as u16; 300];
        let cut = assign(&long, &|_| false);
        assert_eq!(cut.len(), MAX);
        let cut2 = assign(&long, &|n| n.len() == MAX && !n.contains(&(b'#' as u16)));
        assert_eq!(cut2.len(), MAX);
        assert!(String::from_utf16_lossy(&cut2).ends_with(" #2"));
    }
}
