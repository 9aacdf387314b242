//! DomainKeys (RFC 4870, historic): signing with `DKSIGN` and verifying with `DKVERIFY`, the way
//! Russell Nelson's qmail-dk and libdomainkeys did, checked against Mail::DKIM's implementation.
//!
//! One SHA-1 runs over the canonicalized headers below the `DomainKey-Signature` (or the `h=`
//! ones), the separator line and the body; there is no body hash. The result letters A–M and the
//! `DomainKey-Status:` values are qmail-dk's
//! (qmail-dkim-letters(5)).

pub use crate::auth_results::{DkimResult, DomainKeysOutput};

pub mod canon;
pub(crate) mod parse;
pub mod sign;
pub(crate) mod task;
pub mod verify;

pub use parse::{parse_mailbox, Mailbox};

/// `c=`: the two DomainKeys canonicalizations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Canon {
    Simple,
    Nofws,
}

impl Canon {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Canon::Simple => "simple",
            Canon::Nofws => "nofws",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Canon> {
        match s.trim().to_ascii_lowercase().as_str() {
            "simple" => Some(Canon::Simple),
            "nofws" => Some(Canon::Nofws),
            _ => None,
        }
    }
}

/// A verification outcome: the `DKVERIFY` letters of qmail-dk (libdomainkeys' `DK_STAT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
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

pub const ALL_OUTCOMES: [Outcome; 13] = [
    Outcome::Ok,
    Outcome::BadSig,
    Outcome::NoSig,
    Outcome::NoKey,
    Outcome::BadKey,
    Outcome::CantVerify,
    Outcome::Syntax,
    Outcome::NoResource,
    Outcome::Args,
    Outcome::Revoked,
    Outcome::Internal,
    Outcome::Granularity,
    Outcome::Duplicate,
];

impl Outcome {
    /// The `DKVERIFY` letter (uppercase).
    pub fn letter(self) -> char {
        match self {
            Outcome::Ok => 'A',
            Outcome::BadSig => 'B',
            Outcome::NoSig => 'C',
            Outcome::NoKey => 'D',
            Outcome::BadKey => 'E',
            Outcome::CantVerify => 'F',
            Outcome::Syntax => 'G',
            Outcome::NoResource => 'H',
            Outcome::Args => 'I',
            Outcome::Revoked => 'J',
            Outcome::Internal => 'K',
            Outcome::Granularity => 'L',
            Outcome::Duplicate => 'M',
        }
    }

    /// libdomainkeys' name for it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::BadSig => "BADSIG",
            Outcome::NoSig => "NOSIG",
            Outcome::NoKey => "NOKEY",
            Outcome::BadKey => "BADKEY",
            Outcome::CantVerify => "CANTVRFY",
            Outcome::Syntax => "SYNTAX",
            Outcome::NoResource => "NORESOURCE",
            Outcome::Args => "ARGS",
            Outcome::Revoked => "REVOKED",
            Outcome::Internal => "INTERNAL",
            Outcome::Granularity => "GRANULARITY",
            Outcome::Duplicate => "DUPLICATE",
        }
    }

    /// The `DomainKey-Status:` value (unpadded).
    pub fn header_value(self) -> &'static str {
        match self {
            Outcome::Ok => "good",
            Outcome::BadSig => "bad",
            Outcome::NoSig => "no signature",
            Outcome::NoKey | Outcome::CantVerify => "no key",
            Outcome::BadKey => "bad key",
            Outcome::Syntax | Outcome::Args | Outcome::Internal => "bad format",
            Outcome::NoResource => "no resources",
            Outcome::Revoked => "revoked",
            Outcome::Granularity => "bad sender",
            Outcome::Duplicate => "dup sig",
        }
    }

    /// What it means, for refusal texts and the log.
    pub fn meaning(self) -> &'static str {
        match self {
            Outcome::Ok => "the signature verifies",
            Outcome::BadSig => "the signature does not verify with the domain's key",
            Outcome::NoSig => "no usable DomainKey-Signature covering the sender",
            Outcome::NoKey => "no public key published for the signature",
            Outcome::BadKey => "the published public key is unusable",
            Outcome::CantVerify => "cannot get the public key to verify the signature (DNS failure)",
            Outcome::Syntax => "the message or its signature is not valid syntax",
            Outcome::NoResource => "the signature is too large to process",
            Outcome::Args => "the signature asks for an unsupported algorithm or query method",
            Outcome::Revoked => "the key has been revoked",
            Outcome::Internal => "internal error",
            Outcome::Granularity => "the sender does not match the key's g= granularity",
            Outcome::Duplicate => "duplicate DomainKey-Signature in message",
        }
    }

    /// The enhanced status code after the class digit (qmail-dk's table).
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Ok | Outcome::NoKey | Outcome::CantVerify => "7.0",
            Outcome::BadSig | Outcome::NoSig | Outcome::BadKey | Outcome::Revoked | Outcome::Granularity => "7.5",
            Outcome::Syntax | Outcome::Duplicate => "6.0",
            Outcome::NoResource | Outcome::Internal => "3.0",
            Outcome::Args => "3.5",
        }
    }

    /// The RFC 8601 result word of the `domainkeys` method.
    pub fn ar_result(self) -> &'static str {
        self.result().as_str()
    }

    /// The RFC 8601 result, typed.
    pub(crate) fn result(self) -> DkimResult {
        match self {
            Outcome::Ok => DkimResult::Pass,
            Outcome::BadSig => DkimResult::Fail,
            Outcome::NoSig => DkimResult::None,
            Outcome::Granularity => DkimResult::Policy,
            Outcome::Syntax | Outcome::Args => DkimResult::Neutral,
            Outcome::CantVerify | Outcome::NoResource | Outcome::Internal => DkimResult::TempError,
            Outcome::NoKey | Outcome::BadKey | Outcome::Revoked | Outcome::Duplicate => DkimResult::PermError,
        }
    }
}

/// Whether `child` is `parent` or a subdomain of it (case-insensitive).
pub(crate) fn is_same_or_subdomain(child: &str, parent: &str) -> bool {
    let c = child.trim_end_matches('.').to_ascii_lowercase();
    let p = parent.trim_end_matches('.').to_ascii_lowercase();
    !p.is_empty() && (c == p || c.ends_with(&format!(".{p}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        assert!(is_same_or_subdomain("mail.example.com", "example.com"));
        assert!(is_same_or_subdomain("Example.com", "example.COM"));
        assert!(!is_same_or_subdomain("badexample.com", "example.com"));
        assert!(!is_same_or_subdomain("example.com", "mail.example.com"));
    }

    #[test]
    fn every_letter_has_texts() {
        let letters: String = ALL_OUTCOMES.iter().map(|s| s.letter()).collect();
        assert_eq!(letters, "ABCDEFGHIJKLM");
        for s in ALL_OUTCOMES {
            assert!(!s.header_value().is_empty() && !s.meaning().is_empty() && !s.name().is_empty());
            assert!(["pass", "fail", "none", "policy", "neutral", "temperror", "permerror"].contains(&s.ar_result()));
        }
    }
}
