//! The one check that a signing domain is a DNS name, made before the domain becomes part of
//! a key path (`%`) or a `d=`: `..`, `.`, `a/b` or a 300-octet name must never reach the file
//! system, where they would name a parent directory or fail with ENAMETOOLONG.

/// Longest name (RFC 1035 §2.3.4: 255 octets on the wire, 253 as text without the final dot).
pub const MAX_NAME: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;

/// Labels of 1 to 63 letters, digits, `-` or `_`, separated by single dots, 253 octets in all,
/// without a final dot. Wider than host names (RFC 1123) because `_` appears in real
/// subdomains and A-labels (`xn--`) are letters, digits and hyphens; below every file-name limit.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('.').all(|l| {
            !l.is_empty() && l.len() <= MAX_LABEL && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_and_overlong_domains_are_not_dns_names() {
        for ok in ["example.com", "a", "xn--bcher-kva.example", "_dmarc.example.org", "mail-1.EXAMPLE.com"] {
            assert!(is_dns_name(ok), "{ok}");
        }
        let label63 = "a".repeat(63);
        assert!(is_dns_name(&format!("{label63}.org")));
        assert!(!is_dns_name(&format!("a{label63}.org")));
        let name253 = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(name253.len(), 253);
        assert!(is_dns_name(&name253));
        assert!(!is_dns_name(&format!("{name253}b")));
        for bad in ["", ".", "..", "a..b", ".a.org", "a.org.", "a/b.org", "a b.org", "é.org", "a\0.org", "*.org"] {
            assert!(!is_dns_name(bad), "{bad:?}");
        }
    }
}
