//! DomainKeys (RFC 4870, historic): signing with `DKSIGN` and verifying with `DKVERIFY`, the way
//! Russell Nelson's qmail-dk and libdomainkeys did, checked against Mail::DKIM's implementation.
//!
//! One SHA-1 runs over the canonicalized headers below the `DomainKey-Signature` (or the `h=`
//! ones), the separator line and the body; there is no body hash. The result letters A–M and the
//! `DomainKey-Status:` values are qmail-dk's
//! (qmail-dkim-letters(5)).

use crate::auth_results::DkimResult;

pub mod canon;
pub mod sign;
pub mod task;
pub mod verify;

/// `c=`: the two DomainKeys canonicalizations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Canon {
    Simple,
    Nofws,
}

impl Canon {
    pub fn as_str(self) -> &'static str {
        match self {
            Canon::Simple => "simple",
            Canon::Nofws => "nofws",
        }
    }

    pub fn parse(s: &str) -> Option<Canon> {
        match s.trim().to_ascii_lowercase().as_str() {
            "simple" => Some(Canon::Simple),
            "nofws" => Some(Canon::Nofws),
            _ => None,
        }
    }
}

/// A verification outcome: the `DKVERIFY` letters of qmail-dk (libdomainkeys' `DK_STAT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A: the signature verifies.
    Ok,
    /// B: the signature does not verify with the published key.
    BadSig,
    /// C: no DomainKey-Signature, one without d=, s= or b=, or no signed From:/Sender:.
    NoSig,
    /// D: no key record (NXDOMAIN, no TXT, or a record without p=).
    NoKey,
    /// E: the key record or the key in it is unusable.
    BadKey,
    /// F: the key could not be fetched for now (DNS temporary failure).
    CantVerify,
    /// G: the message or the signature is not valid syntax.
    Syntax,
    /// H: a resource limit was hit (a signature too large to process).
    NoResource,
    /// I: the signature asks for an algorithm or query method we do not support.
    Args,
    /// J: the key has been revoked (empty p=).
    Revoked,
    /// K: internal error.
    Internal,
    /// L: the key's g= does not match the sender's local part.
    Granularity,
    /// M: more than one DomainKey-Signature by the same domain.
    Duplicate,
}

pub const ALL_STATUSES: [Status; 13] = [
    Status::Ok,
    Status::BadSig,
    Status::NoSig,
    Status::NoKey,
    Status::BadKey,
    Status::CantVerify,
    Status::Syntax,
    Status::NoResource,
    Status::Args,
    Status::Revoked,
    Status::Internal,
    Status::Granularity,
    Status::Duplicate,
];

impl Status {
    /// The `DKVERIFY` letter (uppercase).
    pub fn letter(self) -> char {
        match self {
            Status::Ok => 'A',
            Status::BadSig => 'B',
            Status::NoSig => 'C',
            Status::NoKey => 'D',
            Status::BadKey => 'E',
            Status::CantVerify => 'F',
            Status::Syntax => 'G',
            Status::NoResource => 'H',
            Status::Args => 'I',
            Status::Revoked => 'J',
            Status::Internal => 'K',
            Status::Granularity => 'L',
            Status::Duplicate => 'M',
        }
    }

    /// libdomainkeys' name for it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadSig => "BADSIG",
            Status::NoSig => "NOSIG",
            Status::NoKey => "NOKEY",
            Status::BadKey => "BADKEY",
            Status::CantVerify => "CANTVRFY",
            Status::Syntax => "SYNTAX",
            Status::NoResource => "NORESOURCE",
            Status::Args => "ARGS",
            Status::Revoked => "REVOKED",
            Status::Internal => "INTERNAL",
            Status::Granularity => "GRANULARITY",
            Status::Duplicate => "DUPLICATE",
        }
    }

    /// The `DomainKey-Status:` value (unpadded).
    pub fn header_value(self) -> &'static str {
        match self {
            Status::Ok => "good",
            Status::BadSig => "bad",
            Status::NoSig => "no signature",
            Status::NoKey | Status::CantVerify => "no key",
            Status::BadKey => "bad key",
            Status::Syntax | Status::Args | Status::Internal => "bad format",
            Status::NoResource => "no resources",
            Status::Revoked => "revoked",
            Status::Granularity => "bad sender",
            Status::Duplicate => "dup sig",
        }
    }

    /// What it means, for refusal texts and the log.
    pub fn meaning(self) -> &'static str {
        match self {
            Status::Ok => "the signature verifies",
            Status::BadSig => "the signature does not verify with the domain's key",
            Status::NoSig => "no usable DomainKey-Signature covering the sender",
            Status::NoKey => "no public key published for the signature",
            Status::BadKey => "the published public key is unusable",
            Status::CantVerify => "cannot get the public key to verify the signature (DNS failure)",
            Status::Syntax => "the message or its signature is not valid syntax",
            Status::NoResource => "the signature is too large to process",
            Status::Args => "the signature asks for an unsupported algorithm or query method",
            Status::Revoked => "the key has been revoked",
            Status::Internal => "internal error",
            Status::Granularity => "the sender does not match the key's g= granularity",
            Status::Duplicate => "duplicate DomainKey-Signature in message",
        }
    }

    /// The enhanced status code after the class digit (qmail-dk's table).
    pub fn code(self) -> &'static str {
        match self {
            Status::Ok | Status::NoKey | Status::CantVerify => "7.0",
            Status::BadSig | Status::NoSig | Status::BadKey | Status::Revoked | Status::Granularity => "7.5",
            Status::Syntax | Status::Duplicate => "6.0",
            Status::NoResource | Status::Internal => "3.0",
            Status::Args => "3.5",
        }
    }

    /// The RFC 8601 result word of the `domainkeys` method.
    pub fn ar_result(self) -> &'static str {
        self.result().as_str()
    }

    /// The RFC 8601 result, typed.
    pub fn result(self) -> DkimResult {
        match self {
            Status::Ok => DkimResult::Pass,
            Status::BadSig => DkimResult::Fail,
            Status::NoSig => DkimResult::None,
            Status::Granularity => DkimResult::Policy,
            Status::Syntax | Status::Args => DkimResult::Neutral,
            Status::CantVerify | Status::NoResource | Status::Internal => DkimResult::TempError,
            Status::NoKey | Status::BadKey | Status::Revoked | Status::Duplicate => DkimResult::PermError,
        }
    }
}

/// A mailbox from a From:/Sender: value: the first address, inside `<>` when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub local: String,
    pub domain: String,
}

impl Mailbox {
    pub fn address(&self) -> String {
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

/// Whether `child` is `parent` or a subdomain of it (case-insensitive).
pub fn is_same_or_subdomain(child: &str, parent: &str) -> bool {
    let c = child.trim_end_matches('.').to_ascii_lowercase();
    let p = parent.trim_end_matches('.').to_ascii_lowercase();
    !p.is_empty() && (c == p || c.ends_with(&format!(".{p}")))
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

    #[test]
    fn subdomains() {
        assert!(is_same_or_subdomain("mail.example.com", "example.com"));
        assert!(is_same_or_subdomain("Example.com", "example.COM"));
        assert!(!is_same_or_subdomain("badexample.com", "example.com"));
        assert!(!is_same_or_subdomain("example.com", "mail.example.com"));
    }

    #[test]
    fn every_letter_has_texts() {
        let letters: String = ALL_STATUSES.iter().map(|s| s.letter()).collect();
        assert_eq!(letters, "ABCDEFGHIJKLM");
        for s in ALL_STATUSES {
            assert!(!s.header_value().is_empty() && !s.meaning().is_empty() && !s.name().is_empty());
            assert!(["pass", "fail", "none", "policy", "neutral", "temperror", "permerror"].contains(&s.ar_result()));
        }
    }
}
