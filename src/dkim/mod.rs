//! DKIM (RFC 6376, RFC 8463): our own streaming canonicalization, signing and verification core
//! (docs/decisions.md: DKIM's canonicalization, signing and verifying are ours).

pub use crate::auth_results::{DkimOutput, DkimResult};

pub mod canon;
pub mod key;
pub mod options;
pub(crate) mod parse;
pub(crate) mod policy;
pub(crate) mod record;
pub mod sign;
pub mod tags;
pub(crate) mod task;
pub mod verify;

/// The signature algorithms we sign and verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RsaSha1,
    RsaSha256,
    Ed25519Sha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha1 => "rsa-sha1",
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_lowercase().as_str() {
            "rsa-sha1" => Some(Algorithm::RsaSha1),
            "rsa-sha256" => Some(Algorithm::RsaSha256),
            "ed25519-sha256" => Some(Algorithm::Ed25519Sha256),
            _ => None,
        }
    }

    pub fn hash(self) -> HashAlg {
        match self {
            Algorithm::RsaSha1 => HashAlg::Sha1,
            _ => HashAlg::Sha256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha256,
    /// DKIM2 Message-Instance hashes only (never a DKIM signature's).
    Sha512,
}

impl HashAlg {
    pub(crate) fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            HashAlg::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &ring::digest::SHA256,
            HashAlg::Sha512 => &ring::digest::SHA512,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha512 => "sha512",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Canon {
    Simple,
    Relaxed,
}

impl Canon {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Canon::Simple => "simple",
            Canon::Relaxed => "relaxed",
        }
    }
}

/// Header and body canonicalization, as in `c=header/body`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Canonicalization {
    pub header: Canon,
    pub body: Canon,
}

impl Canonicalization {
    pub const RELAXED: Canonicalization = Canonicalization { header: Canon::Relaxed, body: Canon::Relaxed };

    /// Parses a `c=` value; `relaxed` alone means relaxed/simple (RFC 6376 §3.5).
    pub(crate) fn parse(s: &str) -> Option<Canonicalization> {
        let one = |x: &str| match x.trim().to_ascii_lowercase().as_str() {
            "simple" => Some(Canon::Simple),
            "relaxed" => Some(Canon::Relaxed),
            _ => None,
        };
        match s.split_once('/') {
            Some((h, b)) => Some(Canonicalization { header: one(h)?, body: one(b)? }),
            None => Some(Canonicalization { header: one(s)?, body: Canon::Simple }),
        }
    }

    pub(crate) fn to_tag(self) -> String {
        format!("{}/{}", self.header.as_str(), self.body.as_str())
    }
}
