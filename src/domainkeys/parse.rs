//! The one header field DomainKeys parses itself: the signing address of a From: or Sender:
//! value (the `DomainKey-Signature` is a tag list, `crate::dkim::tags`).

/// A mailbox from a From:/Sender: value: the first address, inside `<>` when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub local: String,
    pub domain: String,
}

impl Mailbox {
    pub(crate) fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// Parses the first mailbox of an address header value (folded or not). `None` when there is
/// no `local@domain` address (libdomainkeys: SYNTAX).
pub fn parse_mailbox(value: &[u8]) -> Option<Mailbox> {
    let m = crate::rfc5322::mask(value);
    if !m.balanced {
        return None;
    }
    let v = m.masked;
    let addr: Vec<u8> = match (memchr::memchr(b'<', &v), memchr::memchr(b'>', &v)) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_vec(),
        (None, None) => {
            // A bare address list: the first element, after any group name ("grp: a@b;").
            let start = memchr::memchr(b':', &v).map_or(0, |c| c + 1);
            let rest = &v[start..];
            let end = memchr::memchr2(b',', b';', rest).unwrap_or(rest.len());
            rest[..end].to_vec()
        }
        _ => return None,
    };
    let addr: Vec<u8> = addr.into_iter().filter(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n')).collect();
    // A route (<@a,@b:x@y>) ends at the colon.
    let addr = match memchr::memrchr(b':', &addr) {
        Some(c) => addr[c + 1..].to_vec(),
        None => addr,
    };
    let at = memchr::memrchr(b'@', &addr)?;
    let local = &addr[..at];
    let dom = &addr[at + 1..];
    let dom = dom.strip_suffix(b".").unwrap_or(dom);
    if local.is_empty() || dom.is_empty() {
        return None;
    }
    if !dom.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_') {
        return None;
    }
    let local = std::str::from_utf8(local).ok()?.to_string();
    Some(Mailbox { local, domain: String::from_utf8_lossy(dom).to_ascii_lowercase() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes() {
        let m = parse_mailbox(b" Joe <joe@Example.COM>").unwrap();
        assert_eq!((m.local.as_str(), m.domain.as_str()), ("joe", "example.com"));
        let m = parse_mailbox(b" joe@example.com (Joe (the) man)\n").unwrap();
        assert_eq!(m.address(), "joe@example.com");
        let m = parse_mailbox(b" \"a@b, <c>\" <x@y.org.>").unwrap();
        assert_eq!(m.address(), "x@y.org");
        assert_eq!(parse_mailbox(b" <>"), None);
        assert_eq!(parse_mailbox(b" undisclosed"), None);
        assert_eq!(parse_mailbox(b" (unbalanced a@b.c"), None);
        assert_eq!(parse_mailbox(b" joe@example.com (Joe"), None);
        assert_eq!(parse_mailbox(b" Joe) <joe@example.com>"), None);
        assert_eq!(parse_mailbox(b" \"Joe <joe@example.com>"), None);
        assert_eq!(parse_mailbox(b" a@b.c, d@e.f").unwrap().domain, "b.c");
        assert_eq!(parse_mailbox(b" <@route.org:a@b.c>").unwrap().address(), "a@b.c");
    }
}
