//! DMARC (RFC 9989) at queue time: the RFC5322.From domain's policy over our DKIM and SPF
//! results. [`evaluate`] is the method, pure but for its DNS questions; [`task`] reads the
//! message and the earlier results and decides the refusal.
//!
//! RFC 9989 as we apply it:
//! - Policy discovery (§4.10.1): `_dmarc.<From domain>`; when that holds no DMARC record, the
//!   DNS Tree Walk ([`walk`]) up from the From domain: the Organizational Domain's record,
//!   else the Public Suffix Domain's (`psd=y`). No record: DMARC does not apply (`none`).
//!   A temporary DNS failure before the policy is known is `temperror`, never a pass or fail.
//! - The policy (§4.10.1): `p=` of the From domain's own record; under a parent's record,
//!   `sp=` for an existing subdomain and `np=` for one that does not exist (an A question:
//!   only NXDOMAIN says so, RFC 8020), asked only when `np=` and `sp=` differ. `t=y` applies
//!   one step weaker (§4.7). `pct=`, `rf=`, `ri=` are ignored.
//! - Alignment (§4.10.2): strict, the same name; relaxed, the same Organizational Domain,
//!   each found by a walk of its own. An identifier can only share the From domain's
//!   Organizational Domain if it is at or below it, so only those are walked, at most
//!   [`MAX_IDENTIFIER_WALKS`] a message; the walks share their questions ([`walk::Walker`]).
//! - The result: `pass` when a passing DKIM signature's `d=` or the passing SPF domain is
//!   aligned; else `temperror` when an aligned DKIM or SPF check failed temporarily, or when
//!   a walk or the existence question that could change the verdict failed; else `fail`.
//!   `permerror` for an improperly formatted record or a From domain that is not a DNS name.
//!
//! Where mail-auth 0.13.3 and the Node `mailauth` package, the oracles of the tests, differ:
//! - mail-auth makes a record with an invalid tag value a `permerror` (§4.8: defaults apply)
//!   and of several DMARC records at one name uses the first that parses (§4.10: discarded);
//! - both take the last of a tag given twice (RFC 6376 §3.2, which §4.7 refers to: an invalid
//!   tag list; we give `permerror`);
//! - both turn U-labels into A-labels; we take ASCII domains only (a From in U-labels is
//!   `permerror`, see [`task`]); a From without a single domain is "no DMARC" there.

pub mod record;
pub(crate) mod report_entry;
pub(crate) mod task;
pub mod verify;
pub mod walk;

pub use verify::evaluate;

use record::{DmarcPolicy, Record};

/// Identifiers whose Organizational Domain a message may make us walk for (DKIM allows 8
/// signatures, SPF gives one domain); beyond, alignment is unknown, as after a failed walk.
pub const MAX_IDENTIFIER_WALKS: usize = 10;

use crate::auth_results::SpfResult;
pub use crate::auth_results::{DmarcOutput, DmarcResult};

/// An authenticated identifier (§3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    /// A DKIM signature's `d=`.
    Dkim(String),
    /// The domain SPF checked (MAIL FROM, or HELO for `<>`).
    Spf(String),
}

impl Identifier {
    pub(crate) fn domain(&self) -> &str {
        match self {
            Identifier::Dkim(d) | Identifier::Spf(d) => d,
        }
    }
}

/// How the applied record was found (§4.10.1); RFC 9990's `discovery_method` is `treewalk`
/// for all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// At the From domain itself.
    AuthorDomain,
    /// At the From domain's Organizational Domain.
    OrganizationalDomain,
    /// At the Public Suffix Domain above it (`psd=y`).
    PublicSuffixDomain,
}

/// The record applied to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// The DMARC Policy Domain (§3.2.5): where the record was found, without `_dmarc.`.
    pub domain: String,
    pub discovery: Discovery,
    pub record: Record,
}

/// One identifier's alignment with the From domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierAlignment {
    pub identifier: Identifier,
    /// Its check passed (else it failed temporarily).
    pub passed: bool,
    /// `None`: unknown, a walk it needed failed or was not made.
    pub aligned: Option<bool>,
}

/// What the earlier methods found, as DMARC needs it.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// `d=` of every DKIM signature that passed.
    pub dkim_pass: &'a [String],
    /// `d=` of every DKIM signature whose check failed temporarily.
    pub dkim_temperror: &'a [String],
    /// SPF's result (`none` when SPF did not run).
    pub spf_result: SpfResult,
    /// The domain SPF checked.
    pub spf_domain: Option<&'a str>,
}

impl Default for Evidence<'_> {
    fn default() -> Self {
        Evidence { dkim_pass: &[], dkim_temperror: &[], spf_result: SpfResult::None, spf_domain: None }
    }
}

/// What [`evaluate`] found: everything a report needs (RFC 9990 `policy_published`,
/// `policy_evaluated`) as plain fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub result: DmarcResult,
    /// The From domain, lowercased.
    pub domain: String,
    /// The record applied and where it was found.
    pub policy: Option<PolicyRecord>,
    /// The From domain's Organizational Domain, when its walk was made and finished.
    pub org_domain: Option<String>,
    /// What the record asks for the From domain (`p=`, `sp=` or `np=`); `None` when unknown.
    pub requested: Option<DmarcPolicy>,
    /// The policy that applies: `requested`, one step weaker under `t=y`.
    pub applied: Option<DmarcPolicy>,
    /// The identifier that passed aligned.
    pub aligned: Option<Identifier>,
    /// Each identifier looked at.
    pub alignment: Vec<IdentifierAlignment>,
    /// Why, when no record decided (no record, DNS failure, invalid record).
    pub detail: String,
}

impl Evaluation {
    pub(crate) fn new(result: DmarcResult, domain: String, detail: String) -> Evaluation {
        Evaluation {
            result,
            domain,
            policy: None,
            org_domain: None,
            requested: None,
            applied: None,
            aligned: None,
            alignment: Vec::new(),
            detail,
        }
    }

    /// Whether a DKIM signature (`dkim`), else the SPF identity, passed in line with the From
    /// domain.
    pub(crate) fn aligned_pass(&self, dkim: bool) -> bool {
        self.alignment
            .iter()
            .any(|a| a.passed && a.aligned == Some(true) && matches!(a.identifier, Identifier::Dkim(_)) == dkim)
    }
}

#[cfg(test)]
mod tests;
