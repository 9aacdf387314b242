//! DMARC evaluation (§5.3): [`evaluate`] finds the policy record, checks the alignment of the
//! passing identifiers and decides the result.

use super::record::{self, Alignment};
use super::walk::{self, AtName, Walker};
use super::{
    Discovery, DmarcResult, Evaluation, Evidence, Identifier, IdentifierAlignment, PolicyRecord, MAX_IDENTIFIER_WALKS,
};
use crate::auth_results::SpfResult;
use crate::dns::Resolver;

/// Evaluates DMARC for `from_domain` (§5.3): finds the policy record, checks the alignment
/// of the passing identifiers and decides the result.
pub fn evaluate(resolver: &dyn Resolver, from_domain: &str, ev: &Evidence<'_>) -> Evaluation {
    let domain = from_domain.strip_suffix('.').unwrap_or(from_domain).to_ascii_lowercase();
    if !crate::domain::is_dns_name(&domain) {
        return Evaluation::new(DmarcResult::PermError, domain, "the From domain is not a DNS name".into());
    }
    let mut out = Evaluation::new(DmarcResult::None, domain.clone(), String::new());
    let walker = Walker::new(resolver);

    // Policy discovery: the From domain's own record, else the walk's.
    let own = match walker.at(&domain) {
        Ok(a) => a,
        Err(e) => return temperror(out, e),
    };
    let mut author_walk = None;
    let (at, found, discovery) = match own {
        AtName::Record(_) | AtName::Invalid(_) => (domain.clone(), own, Discovery::AuthorDomain),
        AtName::Nothing | AtName::Several => {
            let w = walker.walk(&domain);
            if let Some(e) = w.error {
                return temperror(out, e);
            }
            let org = walk::organizational_domain(&domain, &w.found).to_string();
            let pick = w
                .found
                .iter()
                .find(|(n, _)| *n == org)
                .map(|(n, a)| (n.clone(), a.clone(), Discovery::OrganizationalDomain))
                .or_else(|| match w.found.last() {
                    Some((n, a @ AtName::Record(r))) if r.psd == record::Psd::Yes => {
                        Some((n.clone(), a.clone(), Discovery::PublicSuffixDomain))
                    }
                    _ => None,
                });
            author_walk = Some(org);
            match pick {
                Some(p) => p,
                None => {
                    out.org_domain = author_walk;
                    out.detail = if matches!(own, AtName::Several) {
                        format!("several DMARC records at _dmarc.{domain}, none above")
                    } else {
                        "no DMARC record".into()
                    };
                    return out;
                }
            }
        }
    };
    out.org_domain = author_walk.clone();
    let rec = match found {
        AtName::Record(r) => r,
        AtName::Invalid(e) => {
            out.result = DmarcResult::PermError;
            out.detail = format!("{e} at _dmarc.{at}");
            return out;
        }
        AtName::Nothing | AtName::Several => return out,
    };
    out.policy = Some(PolicyRecord { domain: at.clone(), discovery, record: (*rec).clone() });
    let Some(pol) = rec.policies() else {
        out.detail = format!("DMARC record without a valid policy and without a valid rua= at _dmarc.{at}");
        return out;
    };

    // The policy for the From domain; `Err` when its existence could not be learnt.
    let requested = if discovery == Discovery::AuthorDomain || pol.np == pol.sp {
        Ok(if discovery == Discovery::AuthorDomain { pol.p } else { pol.sp })
    } else {
        resolver.exists(&domain).map(|e| if e { pol.sp } else { pol.np })
    };
    if let Ok(p) = requested {
        out.requested = Some(p);
        out.applied = Some(if rec.t { p.weaker() } else { p });
    }

    // Alignment of every identifier that passed or failed temporarily.
    let mut ids: Vec<(Identifier, bool)> = Vec::new();
    ids.extend(ev.dkim_pass.iter().map(|d| (Identifier::Dkim(d.to_ascii_lowercase()), true)));
    if let Some(s) = ev.spf_domain.filter(|_| matches!(ev.spf_result, SpfResult::Pass | SpfResult::TempError)) {
        ids.push((Identifier::Spf(s.to_ascii_lowercase()), ev.spf_result == SpfResult::Pass));
    }
    ids.extend(ev.dkim_temperror.iter().map(|d| (Identifier::Dkim(d.to_ascii_lowercase()), false)));
    let mut org = Org { walker: &walker, domain: &domain, known: author_walk, walks: 0 };
    for (id, passed) in ids {
        let mode = match id {
            Identifier::Dkim(_) => rec.adkim,
            Identifier::Spf(_) => rec.aspf,
        };
        let aligned = org.aligned(id.domain(), mode);
        out.alignment.push(IdentifierAlignment { identifier: id, passed, aligned });
    }
    out.org_domain = org.known.clone();

    // DKIM's d= first (listed first): the identifier that survives forwarding.
    if let Some(a) = out.alignment.iter().find(|a| a.passed && a.aligned == Some(true)) {
        out.result = DmarcResult::Pass;
        out.aligned = Some(a.identifier.clone());
    } else if let Some(a) = out.alignment.iter().find(|a| a.aligned != Some(false)) {
        out.result = DmarcResult::TempError;
        out.detail = if a.passed {
            format!("the alignment of {} is not known: a DNS lookup failed", a.identifier.domain())
        } else {
            "an aligned DKIM or SPF check failed temporarily".into()
        };
    } else if let Err(e) = requested {
        out.result = DmarcResult::TempError;
        out.detail = format!("whether {domain} exists is not known: {e}");
    } else {
        out.result = DmarcResult::Fail;
    }
    out
}

/// Organizational Domains for alignment: the From domain's (walked when first needed) and
/// each identifier's.
struct Org<'w, 'd> {
    walker: &'w Walker<'w>,
    domain: &'d str,
    /// The From domain's Organizational Domain once known.
    known: Option<String>,
    walks: usize,
}

impl Org<'_, '_> {
    /// Whether identifier `id` is aligned with the From domain; `None` when a walk it needs
    /// failed or would pass the limit.
    fn aligned(&mut self, id: &str, mode: Alignment) -> Option<bool> {
        let id = id.strip_suffix('.').unwrap_or(id);
        if id == self.domain {
            return Some(true);
        }
        if mode == Alignment::Strict {
            return Some(false);
        }
        // Names without a common top-level label never share an Organizational Domain.
        if id.rsplit('.').next() != self.domain.rsplit('.').next() {
            return Some(false);
        }
        let from_org = match &self.known {
            Some(o) => o.clone(),
            None => {
                let w = self.walker.walk(self.domain);
                if w.error.is_some() {
                    return None;
                }
                let o = walk::organizational_domain(self.domain, &w.found).to_string();
                self.known = Some(o.clone());
                o
            }
        };
        if id != from_org && !id.ends_with(&format!(".{from_org}")) {
            return Some(false);
        }
        if self.walks >= MAX_IDENTIFIER_WALKS {
            return None;
        }
        self.walks += 1;
        let w = self.walker.walk(id);
        if w.error.is_some() {
            return None;
        }
        Some(walk::organizational_domain(id, &w.found) == from_org)
    }
}

fn temperror(mut out: Evaluation, e: String) -> Evaluation {
    out.result = DmarcResult::TempError;
    out.detail = e;
    out
}
