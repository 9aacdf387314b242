//! DMARC (RFC 7489) at queue time: the RFC5322.From domain's policy over our DKIM and SPF
//! results. [`evaluate`] is the method, pure but for its DNS questions; [`task`] reads the
//! message and the earlier results and decides the refusal.
//!
//! RFC 7489 as we apply it:
//! - Policy discovery (§6.6.3): `_dmarc.<From domain>`; when it holds no DMARC record,
//!   `_dmarc.<organizational domain>` (if different): at most [`MAX_LOOKUPS`] TXT questions a
//!   message. Records not starting with `v=DMARC1` are discarded; when none is left, or more
//!   than one, DMARC does not apply (`dmarc=none`). A temporary DNS failure of either question
//!   is `temperror`, never a pass and never a fail.
//! - The record ([`record`]): a missing or invalid `p=` is `p=none` with a valid `rua=`, else
//!   no DMARC (step 6); another invalid tag is `permerror`; unknown tags are ignored.
//! - The organizational domain (§3.2) comes from the Public Suffix List compiled into the
//!   program by the `psl` crate (its version follows the list): no file, no download, nothing
//!   parsed or allocated at start-up; a lookup is a `match` over the labels. The whole list is
//!   used, its private section (`github.io`, …) included, as §3.2 names the list without a
//!   section. A name that is itself a public suffix is its own organizational domain.
//! - Alignment (§3.1): strict, the same name; relaxed, the same organizational domain. So
//!   `sub.example.co.uk` is aligned with `example.co.uk` in relaxed mode, and `other.co.uk` is
//!   aligned with neither.
//! - `sp=` applies when the record came from the organizational domain (§6.3 "subdomains");
//!   the From domain's own record always applies its `p=`.
//! - `pct=` (§6.3, §6.6.4): the requested policy applies to that share of failing messages
//!   (a roll of 0..=99 below `pct`); the others get the next weaker one (reject → quarantine
//!   → none). `pct=0` never applies `reject`; `pct=100` (the default) always applies it.
//! - The result: `pass` when a passing DKIM signature's `d=` or the passing SPF domain is
//!   aligned; else `temperror` when an aligned DKIM or SPF check failed temporarily; else
//!   `fail`. `permerror` for an invalid record or a From domain that is not a DNS name.
//!
//! mail-auth 0.13.3, the oracle of the tests, implements DMARCbis instead, and differs in:
//! - a DNS tree walk (up to 8 questions, `psd=`) instead of the list, for both the policy
//!   record and the organizational domains; the two agree when the organizational domain
//!   publishes the record, as in the `co.uk` cases above;
//! - `np=` for nonexistent subdomains (an A question more) and `t=y` (one step weaker); it
//!   ignores `pct=`;
//! - of several DMARC records at a name it uses the first that parses (RFC 7489: none);
//! - an invalid `p=` value makes its record a `permerror` (RFC 7489 §6.6.3: `p=none` when
//!   `rua=` is valid, else no DMARC);
//! - it turns U-labels into A-labels; we take ASCII domains only (a From in U-labels is
//!   `permerror`, see [`task`]);
//! - a From without a single domain is "no DMARC" there, `permerror` here ([`task`]).

pub mod record;
pub mod report_entry;
pub mod task;

use crate::dns::{Resolver, TxtAnswer};
use record::{Alignment, Policy, Record, RecordError};

/// TXT questions a message may cost: the From domain's record and the organizational domain's.
pub const MAX_LOOKUPS: usize = 2;

/// The `dmarc=` result (RFC 7489 §11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    None,
    TempError,
    PermError,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::None => "none",
            Verdict::TempError => "temperror",
            Verdict::PermError => "permerror",
        }
    }
}

/// The identifier that passed aligned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    /// A DKIM signature's `d=`.
    Dkim(String),
    /// The domain SPF checked (MAIL FROM, or HELO for `<>`).
    Spf(String),
}

/// What the earlier methods found, as DMARC needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// `d=` of every DKIM signature that passed.
    pub dkim_pass: &'a [String],
    /// `d=` of every DKIM signature whose check failed temporarily.
    pub dkim_temperror: &'a [String],
    /// The `spf=` result word (`none` when SPF did not run).
    pub spf_result: &'a str,
    /// The domain SPF checked.
    pub spf_domain: Option<&'a str>,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcOutput {
    pub result: Verdict,
    /// The From domain, lowercased.
    pub domain: String,
    /// The policy record used, and the domain it was found at (without `_dmarc.`).
    pub record: Option<(String, Record)>,
    /// What the record asks for this domain: `p=`, or `sp=` for a subdomain.
    pub requested: Option<Policy>,
    /// On `fail`: the policy that applies after `pct=`.
    pub applied: Option<Policy>,
    pub aligned: Option<Identifier>,
    /// Why, when no record decided (no record, several, DNS failure, invalid record).
    pub detail: String,
}

/// The organizational domain of a lowercase ASCII name (§3.2): the public suffix plus one
/// label; the name itself when it is a public suffix (or has no label more).
pub fn organizational_domain(domain: &str) -> &str {
    use psl::Psl;
    let d = domain.strip_suffix('.').unwrap_or(domain);
    match psl::List.domain(d.as_bytes()) {
        Some(o) => &d[d.len() - o.as_bytes().len()..],
        None => d,
    }
}

/// Whether identifier `id` is aligned with the From domain `from` (§3.1), both lowercase.
pub fn aligned(id: &str, from: &str, mode: Alignment) -> bool {
    let (id, from) = (id.strip_suffix('.').unwrap_or(id), from.strip_suffix('.').unwrap_or(from));
    match mode {
        Alignment::Strict => id == from,
        Alignment::Relaxed => organizational_domain(id) == organizational_domain(from),
    }
}

/// The DMARC records at `_dmarc.<domain>`: `Err` on a temporary failure.
fn dmarc_records(resolver: &dyn Resolver, domain: &str) -> Result<Vec<Vec<u8>>, String> {
    match resolver.txt(&format!("_dmarc.{domain}")) {
        TxtAnswer::Records(rs) => Ok(rs.into_iter().filter(|r| record::is_dmarc1(r)).collect()),
        TxtAnswer::NotFound | TxtAnswer::BadName => Ok(Vec::new()),
        TxtAnswer::TempFail(e) => Err(e),
    }
}

/// Evaluates DMARC for `from_domain` (§6.6): finds the policy record, checks alignment of
/// the passing identifiers, and on failure applies `pct=` with `roll` (called only when
/// 0 < pct < 100, and then must give 0..=99).
pub fn evaluate(
    resolver: &dyn Resolver,
    from_domain: &str,
    ev: &Evidence<'_>,
    roll: &mut dyn FnMut() -> u8,
) -> DmarcOutput {
    let domain = from_domain.strip_suffix('.').unwrap_or(from_domain).to_ascii_lowercase();
    let mut out = DmarcOutput {
        result: Verdict::None,
        domain,
        record: None,
        requested: None,
        applied: None,
        aligned: None,
        detail: String::new(),
    };
    let domain = out.domain.clone();
    if !crate::domain::is_dns_name(&domain) {
        out.result = Verdict::PermError;
        out.detail = "the From domain is not a DNS name".into();
        return out;
    }
    let org = organizational_domain(&domain).to_string();
    let mut at = domain.clone();
    let mut found = match dmarc_records(resolver, &domain) {
        Ok(f) => f,
        Err(e) => return temperror(out, &at, &e),
    };
    if found.is_empty() && org != domain {
        at = org.clone();
        found = match dmarc_records(resolver, &org) {
            Ok(f) => f,
            Err(e) => return temperror(out, &at, &e),
        };
    }
    let text = match found.as_slice() {
        [] => {
            out.detail = "no DMARC record".into();
            return out;
        }
        [one] => one,
        _ => {
            out.detail = format!("several DMARC records at _dmarc.{at}");
            return out;
        }
    };
    let rec = match record::parse(text) {
        Ok(r) => r,
        Err(e @ RecordError::NoPolicy) => {
            out.detail = format!("{e} at _dmarc.{at}");
            return out;
        }
        Err(e) => {
            out.result = Verdict::PermError;
            out.detail = format!("{e} at _dmarc.{at}");
            return out;
        }
    };
    let requested = if at == domain { rec.p } else { rec.sp.unwrap_or(rec.p) };
    out.requested = Some(requested);
    let dkim = ev.dkim_pass.iter().find(|d| aligned(&d.to_ascii_lowercase(), &domain, rec.adkim));
    let spf_aligned = ev.spf_domain.is_some_and(|s| aligned(&s.to_ascii_lowercase(), &domain, rec.aspf));
    if let Some(d) = dkim {
        out.result = Verdict::Pass;
        out.aligned = Some(Identifier::Dkim(d.to_ascii_lowercase()));
    } else if spf_aligned && ev.spf_result == "pass" {
        out.result = Verdict::Pass;
        out.aligned = ev.spf_domain.map(|s| Identifier::Spf(s.to_ascii_lowercase()));
    } else if (spf_aligned && ev.spf_result == "temperror")
        || ev.dkim_temperror.iter().any(|d| aligned(&d.to_ascii_lowercase(), &domain, rec.adkim))
    {
        out.result = Verdict::TempError;
        out.detail = "an aligned DKIM or SPF check failed temporarily".into();
    } else {
        out.result = Verdict::Fail;
        out.applied = Some(match rec.pct {
            100 => requested,
            0 => requested.weaker(),
            pct if roll() < pct => requested,
            _ => requested.weaker(),
        });
    }
    out.record = Some((at, rec));
    out
}

fn temperror(mut out: DmarcOutput, at: &str, e: &str) -> DmarcOutput {
    out.result = Verdict::TempError;
    out.detail = format!("DNS lookup of _dmarc.{at} failed: {e}");
    out
}

#[cfg(test)]
mod tests;
