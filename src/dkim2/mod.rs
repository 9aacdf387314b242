//! DKIM2 (draft-ietf-dkim-dkim2-spec-08, with draft-ietf-dkim-dkim2-dns), experimental: every
//! hop adds a `DKIM2-Signature` bound to its SMTP envelope (`mf=`, `rt=`) and chained to the
//! ones before it (`i=`); a hop that changes the message adds a `Message-Instance` with the
//! hashes of the new content and a recipe that recreates the old (docs/dkim2.md).
//!
//! Built on the DKIM core: the tag-list parser (`dkim::tags`), header canonicalization and the
//! simple body canonicalizer (`dkim::canon`), key records, key lookup and signature checks
//! (`dkim::verify`), private keys (`dkim::key`). Section numbers (§) are the -08 draft's.

pub mod hash;
pub mod parse;
pub mod recipe;
pub(crate) mod sign;
pub(crate) mod task;
pub mod verify;

pub use crate::auth_results::{Dkim2Output, Dkim2Result};

use crate::dkim::{Algorithm, HashAlg};

/// Signatures and Message-Instances per message: a longer chain is a PERMERROR, found before
/// any key is asked for or any recipe applied.
pub const MAX_CHAIN: usize = 50;

/// Bytes of all DKIM2 fields of a message together (recipes carry the old lines of what a hop
/// changed): beyond, a PERMERROR before any field is parsed.
pub(crate) const MAX_FIELD_BYTES: usize = 4 << 20;

/// An `s=` algorithm: one we verify, or another name (a PERMERROR for that entry, §14.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigAlgorithm {
    Known(Algorithm),
    Unknown(String),
}

impl SigAlgorithm {
    /// Names are case-sensitive; rsa-sha1 is not a DKIM2 algorithm.
    pub(crate) fn parse(s: &str) -> SigAlgorithm {
        match s {
            "rsa-sha256" => SigAlgorithm::Known(Algorithm::RsaSha256),
            "ed25519-sha256" => SigAlgorithm::Known(Algorithm::Ed25519Sha256),
            other => SigAlgorithm::Unknown(other.to_string()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            SigAlgorithm::Known(a) => a.as_str(),
            SigAlgorithm::Unknown(s) => s,
        }
    }
}

/// A Message-Instance hash algorithm (§9.3): sha256, sha512, or another name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashName {
    Known(HashAlg),
    Unknown(String),
}

impl HashName {
    pub(crate) fn parse(s: &str) -> HashName {
        match s {
            "sha256" => HashName::Known(HashAlg::Sha256),
            "sha512" => HashName::Known(HashAlg::Sha512),
            other => HashName::Unknown(other.to_string()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            HashName::Known(h) => h.name(),
            HashName::Unknown(s) => s,
        }
    }
}

/// The field names DKIM2 reads (compared without regard to case).
pub(crate) const SIGNATURE_FIELD: &str = "DKIM2-Signature";
pub(crate) const INSTANCE_FIELD: &str = "Message-Instance";
