//! The one check that a signing domain is a DNS name, made before the domain becomes part of
//! a key path (`%`) or a `d=`: `..`, `.`, `a/b` or a 300-octet name must never reach the file
//! system, where they would name a parent directory or fail with ENAMETOOLONG.

/// Longest name (RFC 1035 §2.3.4: 255 octets on the wire, 253 as text without the final dot).
pub const MAX_NAME: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub(crate) const MAX_LABEL: usize = 63;

/// Labels of 1 to 63 letters, digits, `-` or `_`, separated by single dots, 253 octets in all,
/// without a final dot. Wider than host names (RFC 1123) because `_` appears in real
/// subdomains and A-labels (`xn--`) are letters, digits and hyphens; below every file-name limit.
pub fn is_dns_name(name: &str) -> bool {
    fits_dns(name) && is_label_list(name)
}

/// 1 to 253 octets, labels of 1 to 63 (no final dot): what the DNS can carry, whatever the octets.
pub(crate) fn fits_dns(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.split('.').all(|l| !l.is_empty() && l.len() <= MAX_LABEL)
}

/// Non-empty labels of letters, digits, `-` or `_`, separated by single dots, of any length: the
/// syntax of a DKIM `d=` and `s=`. Lengths are left to [`fits_dns`]: for the verifier a name
/// too long for the DNS is a failed lookup, not a syntax error (a different letter).
pub(crate) fn is_label_list(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
}

/// Whether two domains are the same, or one is a subdomain of the other (case-insensitive, a
/// final dot ignored): `mail.example.com` and `example.com` are; `a.example.com` and
/// `b.example.com` are not. No list of public suffixes is needed: the names in line with a
/// domain are its own and those of its parents, which its owner or a registry answer for.
pub(crate) fn in_line(a: &str, b: &str) -> bool {
    let (a, b) = (a.strip_suffix('.').unwrap_or(a).as_bytes(), b.strip_suffix('.').unwrap_or(b).as_bytes());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let cut = long.len() - short.len();
    !short.is_empty() && long[cut..].eq_ignore_ascii_case(short) && (cut == 0 || long[cut - 1] == b'.')
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

    #[test]
    fn domains_in_line() {
        assert!(in_line("example.com", "example.com"));
        assert!(in_line("Mail.Example.com", "example.com."));
        assert!(in_line("example.com", "a.b.example.com"));
        for (a, b) in [("a.example.com", "b.example.com"), ("badexample.com", "example.com"), ("", "x"), ("x", "")] {
            assert!(!in_line(a, b), "{a} {b}");
        }
        assert!(!in_line("é.com", "\u{301}.com"));
    }

    /// The verifier's d=/s= syntax leaves lengths to the DNS; the DNS query check leaves octets.
    #[test]
    fn syntax_and_size_are_separate() {
        let long = "a".repeat(64);
        assert!(is_label_list(&format!("{long}.org")) && !fits_dns(&format!("{long}.org")));
        assert!(fits_dns("a b.org") && !is_label_list("a b.org"));
        assert!(!is_label_list("a..b") && !fits_dns("a..b") && !is_label_list("") && !fits_dns(""));
    }
}
