//! What DMARC leaves in the report spool (`DMARCREPORTS`): the evidence of one evaluation as a
//! [`crate::dmarc_spool::Entry`], written by run() once every task has finished, so its
//! disposition is what became of the message. No DNS question and no database here; a spool
//! that cannot be written costs one line on descriptor 2, never the message.
//!
//! A record is written when the evaluation used a policy record with a `rua=` URI, the message
//! came from a client address, and the message is queued (DMARC's own disposition) or refused
//! permanently, by DMARC or any other check (the disposition is then `reject`). A temporary
//! refusal writes nothing: the client sends the same message again, and it is counted when it
//! is decided. A message that is itself an aggregate report (its Subject starts `Report
//! Domain:`) writes nothing, so two reporters never report on each other's reports.

use super::record::Alignment;
use super::{DmarcResult, Evaluation};
use crate::auth_results::{DkimOutput, MethodOutput};
use crate::dmarc_spool::{self, DkimAuth, Entry, Policy, Row};
use crate::message::{unfold, Headers};
use crate::task::{Context, Refusal};
use std::net::IpAddr;
use std::path::Path;

/// Writes the record of the message's DMARC evaluation into the spool `dir`, when there is one
/// to write. `ctx.earlier` holds every task's result, `refuse` the message's final refusal.
pub(crate) fn spool(dir: &Path, client: Option<IpAddr>, ctx: &Context<'_>, refuse: Option<&Refusal>) {
    let Some(entry) = entry(client, ctx, refuse) else { return };
    if let Err(e) = dmarc_spool::write(dir, &entry) {
        eprintln!("qmail-dkim: warning: DMARCREPORTS {}: {e}; no report record for this message", dir.display());
    }
}

/// The record as published (RFC 9990 `policy_published`), when a record decided.
pub fn published(out: &Evaluation) -> Option<Policy> {
    let policy = out.policy.as_ref()?;
    let rec = &policy.record;
    let published = rec.policies()?;
    Some(Policy {
        domain: policy.domain.clone(),
        // RFC 9990: every way RFC 9989 finds the record is the tree walk.
        discovery: "treewalk".into(),
        p: published.p.name().into(),
        sp: rec.sp.map(|p| p.name().into()),
        np: rec.np.map(|p| p.name().into()),
        adkim: alignment(rec.adkim).into(),
        aspf: alignment(rec.aspf).into(),
        fo: Some(rec.fo.clone()),
        testing: Some(if rec.t { "y" } else { "n" }.into()),
        rua: rec.rua.clone(),
    })
}

fn is_report(headers: &Headers) -> bool {
    headers.named("Subject").any(|f| {
        let v = unfold(headers.value(f));
        let start = v.iter().take_while(|c| matches!(c, b' ' | b'\t')).count();
        v.get(start..start + 14).is_some_and(|p| p.eq_ignore_ascii_case(b"Report Domain:"))
    })
}

/// The record, or `None` when this message leaves none (see the module).
pub(crate) fn entry(client: Option<IpAddr>, ctx: &Context<'_>, refuse: Option<&Refusal>) -> Option<Entry> {
    let out = ctx.earlier.iter().find_map(|o| match o {
        MethodOutput::Dmarc(d) => Some(d),
        _ => None,
    })?;
    let policy = out.published.as_ref()?;
    if policy.rua.is_empty() || refuse.is_some_and(|r| !r.permanent) || is_report(ctx.headers) {
        return None;
    }
    let client = client?;
    let sender = std::str::from_utf8(&ctx.envelope.sender).ok().filter(|s| !s.is_empty() && *s != "<>" && *s != "#@[]");
    let envelope_from =
        sender.and_then(|s| s.rsplit_once('@')).map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase());
    let envelope_from = envelope_from.filter(|d| crate::domain::is_dns_name(d));
    let mut dkim: Vec<DkimAuth> = Vec::new();
    let mut spf_word = None;
    for o in ctx.earlier {
        match o {
            MethodOutput::Dkim { signatures, .. } => dkim.extend(signatures.iter().filter_map(dkim_auth)),
            MethodOutput::Spf(o) if spf_word.is_none() => spf_word = Some(o.result.as_str()),
            _ => {}
        }
    }
    let spf = envelope_from.clone().zip(spf_word).map(|(d, r)| (d, r.to_string()));
    // Known for every pass and fail but a pass whose domain's existence could not be learnt.
    let applied = out.applied.map_or(policy.p.as_str(), |p| p.name());
    let own = if out.refused {
        "reject"
    } else if out.result == DmarcResult::Pass && applied != "none" {
        "pass"
    } else {
        "none"
    };
    let disposition = if refuse.is_some() { "reject" } else { own };
    let mut reasons = Vec::new();
    if out.result == DmarcResult::Fail {
        if out.applied != out.requested {
            reasons.push(("policy_test_mode".to_string(), String::new()));
        }
        if applied != disposition {
            reasons.push(("local_policy".to_string(), String::new()));
        }
    } else if disposition != own {
        reasons.push(("local_policy".to_string(), "refused by another check".to_string()));
    }
    Some(Entry {
        time: ctx.now,
        policy: policy.clone(),
        row: Row {
            source_ip: client.to_string(),
            header_from: out.domain.clone(),
            envelope_from,
            dkim,
            spf,
            dkim_aligned: out.dkim_aligned,
            spf_aligned: out.spf_aligned,
            disposition: disposition.into(),
            reasons,
        },
    })
}

fn alignment(a: Alignment) -> &'static str {
    match a {
        Alignment::Relaxed => "r",
        Alignment::Strict => "s",
    }
}

/// A DKIM result as the report shows it; `None` without a `d=` that is a DNS name.
fn dkim_auth(o: &DkimOutput) -> Option<DkimAuth> {
    let d = o.domain.as_deref().filter(|d| crate::domain::is_dns_name(d))?.to_ascii_lowercase();
    let selector = o
        .selector
        .as_deref()
        .filter(|s| s.len() <= crate::auth_results::MAX_VALUE && s.bytes().all(|c| c.is_ascii_graphic()));
    Some(DkimAuth { domain: d, selector: selector.unwrap_or("").to_string(), result: o.result.as_str().to_string() })
}
