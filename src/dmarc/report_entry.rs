//! What the DMARC task leaves in the report spool (`DMARCREPORTS`): the evidence of one
//! evaluation as a [`crate::dmarc_spool::Entry`]. No DNS question and no database here; a spool
//! that cannot be written costs one line on descriptor 2, never the message.
//!
//! A record is written when the evaluation used a policy record with a `rua=` URI, the message
//! came from a client address, and the message is queued or refused permanently (its
//! disposition is then `reject`). A temporary refusal writes nothing: the client sends the same
//! message again, and it is counted when it is decided. A message that is itself an aggregate
//! report (its Subject starts `Report Domain:`) writes nothing, so two reporters never report
//! on each other's reports.

use super::record::{Alignment, DmarcPolicy as Requested};
use super::{DmarcResult, Evaluation};
use crate::auth_results::{DkimOutput, MethodOutput};
use crate::dmarc_spool::{self, DkimAuth, Entry, Policy, Row};
use crate::message::{unfold, Headers};
use crate::task::{Context, Refusal};
use std::net::IpAddr;
use std::path::Path;

/// Writes the record of this evaluation into the spool `dir`, when there is one to write.
pub(crate) fn spool(dir: &Path, client: Option<IpAddr>, out: &Evaluation, ctx: &Context<'_>, refuse: Option<&Refusal>) {
    let Some(entry) = entry(client, out, ctx, refuse) else { return };
    if let Err(e) = dmarc_spool::write(dir, &entry) {
        eprintln!("qmail-dkim: warning: DMARCREPORTS {}: {e}; no report record for this message", dir.display());
    }
}

fn is_report(headers: &Headers) -> bool {
    headers.named("Subject").any(|f| {
        let v = unfold(headers.value(f));
        let start = v.iter().take_while(|c| matches!(c, b' ' | b'\t')).count();
        v.get(start..start + 14).is_some_and(|p| p.eq_ignore_ascii_case(b"Report Domain:"))
    })
}

/// The record, or `None` when this message leaves none (see the module).
pub(crate) fn entry(
    client: Option<IpAddr>,
    out: &Evaluation,
    ctx: &Context<'_>,
    refuse: Option<&Refusal>,
) -> Option<Entry> {
    let policy = out.policy.as_ref()?;
    let rec = &policy.record;
    if rec.rua.is_empty() || refuse.is_some_and(|r| !r.permanent) || is_report(ctx.headers) {
        return None;
    }
    let published = rec.policies()?;
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
    let requested = out.requested.unwrap_or(published.p);
    let applied = out.applied.unwrap_or(requested);
    let disposition = if refuse.is_some() {
        "reject"
    } else if out.result == DmarcResult::Pass && applied != Requested::None {
        "pass"
    } else {
        "none"
    };
    let mut reasons = Vec::new();
    if out.result == DmarcResult::Fail {
        if applied != requested {
            reasons.push(("policy_test_mode".to_string(), String::new()));
        }
        if applied.name() != disposition {
            reasons.push(("local_policy".to_string(), String::new()));
        }
    }
    Some(Entry {
        time: ctx.now,
        policy: Policy {
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
        },
        row: Row {
            source_ip: client.to_string(),
            header_from: out.domain.clone(),
            envelope_from,
            dkim,
            spf,
            dkim_aligned: out.aligned_pass(true),
            spf_aligned: out.aligned_pass(false),
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
