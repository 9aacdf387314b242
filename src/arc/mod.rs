//! ARC (RFC 8617): validate the chain a message arrives with ([`verify`], `ARCVERIFY`); seal
//! it when we forward ([`seal`], `ARCSIGN`).
//!
//! **Decision:** ARC is our own code on our DKIM core (`crate::dkim`: the streaming
//! `BodyHasher` and the header canonicalization of `canon`, `TagList` and `h_names`, the key
//! lookup `fetch_key` and `verify_sig`, `SigningKey::sign`, the signature folding of `sign`),
//! not mail-auth's `verify_arc`/`ArcSealer`, because mail-auth 0.13.3 holds the whole message
//! in memory (we stream bodies of any size with bounded memory), its relaxed body
//! canonicalization keeps whitespace-only trailing lines (a wrong body hash; fixed in 0.15.0,
//! which needs a newer rustc), and its ARC is behind a feature (`arc`) that only our
//! dev-dependency enables. In tests, dkimpy's `arc_sign`/`arc_verify` and mail-auth's
//! `verify_arc` are the oracles: they check what we seal and seal what we check
//! (tests/e2e/arc.rs).
//!
//! Results (`arc=` of our Authentication-Results): `none` (no ARC header field), `pass`,
//! `fail` (with a reason), and `temperror` when a key could not be fetched for now and nothing
//! else failed. `temperror` is not an RFC 8617 word (its `cv` has only none/pass/fail), but
//! RFC 8601 defines it for every method and mail-auth reports ARC the same way: a DNS hiccup
//! must be neither a pass nor a permanent refusal (`ARCVERIFY` letter `T`, always temporary).
//!
//! Bounds (docs/security.md): at most [`MAX_INSTANCES`] ARC sets (RFC 8617 §4.2.1: i=1..50),
//! so at most [`MAX_ARC_FIELDS`] ARC header fields are examined, of at most [`MAX_ARC_BYTES`]
//! together; a chain beyond either fails without more work. Validation then costs one body hash,
//! one AMS and at most 50 seals, each over at most [`MAX_ARC_BYTES`] of header data, and at
//! most 51 key lookups (a key name asked once).

pub(crate) mod parse;
pub mod seal;
pub mod task;
pub mod verify;

pub use crate::auth_results::{ArcOutput, ArcResult};
pub use parse::collect;

use crate::dkim::tags::TagList;

/// ARC sets in a chain (RFC 8617 §4.2.1); a longer chain fails, and is never sealed again.
pub const MAX_INSTANCES: u32 = 50;
/// ARC header fields examined: three per set. One more makes the chain fail, found while
/// counting, before any is parsed.
pub(crate) const MAX_ARC_FIELDS: usize = 3 * MAX_INSTANCES as usize;
/// The ARC header fields of a message together (50 real sets take about 150 KiB). More makes the
/// chain fail: each of the 50 seals hashes all sets below it, so this bounds that work.
pub(crate) const MAX_ARC_BYTES: usize = 1 << 20;

/// The three ARC header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ARC-Authentication-Results` (AAR).
    Aar,
    /// `ARC-Message-Signature` (AMS).
    Ams,
    /// `ARC-Seal` (AS).
    Seal,
}

impl Kind {
    pub fn of(name: &[u8]) -> Option<Kind> {
        if name.eq_ignore_ascii_case(b"ARC-Authentication-Results") {
            Some(Kind::Aar)
        } else if name.eq_ignore_ascii_case(b"ARC-Message-Signature") {
            Some(Kind::Ams)
        } else if name.eq_ignore_ascii_case(b"ARC-Seal") {
            Some(Kind::Seal)
        } else {
            None
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Aar => "ARC-Authentication-Results",
            Kind::Ams => "ARC-Message-Signature",
            Kind::Seal => "ARC-Seal",
        }
    }
}

/// One complete ARC set: indices into `headers.fields`, and the parsed AMS and AS tags.
#[derive(Debug, Clone)]
pub struct Set {
    pub instance: u32,
    pub aar: usize,
    pub ams: usize,
    pub seal: usize,
    pub ams_tags: TagList,
    pub seal_tags: TagList,
}

/// The ARC chain of a message, as far as its structure goes (RFC 8617 §5.2 steps 1 to 4).
#[derive(Debug, Clone)]
pub enum Chain {
    /// No ARC header field.
    None,
    /// Sets 1..N, complete, each cv= as it must be; in instance order.
    Sets(Vec<Set>),
    /// Structurally invalid: the chain fails.
    Broken(Broken),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Why, for the `reason=` of `arc=fail`.
    pub why: String,
    /// The instance a sealer may add with `cv=fail` (covering only its own set, RFC 8617
    /// §5.1.2); `None` when it must not seal: the newest seal already says `cv=fail` (§5.1), the
    /// chain is at 50 sets, or an instance is unreadable or out of range (no next number).
    pub next: Option<u32>,
}

#[cfg(test)]
mod tests;
