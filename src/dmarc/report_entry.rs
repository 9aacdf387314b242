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

use super::record::Policy as Requested;
use super::{aligned, DmarcOutput, Verdict};
use crate::auth_results::MethodResult;
use crate::dmarc_spool::{self, DkimAuth, Entry, Policy, Row};
use crate::message::{unfold, Headers};
use crate::task::{Context, Refusal};
use std::net::IpAddr;
use std::path::Path;

/// Writes the record of this evaluation into the spool `dir`, when there is one to write.
pub fn spool(dir: &Path, client: Option<IpAddr>, out: &DmarcOutput, ctx: &Context<'_>, refuse: Option<&Refusal>) {
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
pub fn entry(client: Option<IpAddr>, out: &DmarcOutput, ctx: &Context<'_>, refuse: Option<&Refusal>) -> Option<Entry> {
    let (at, rec) = out.record.as_ref()?;
    if rec.rua.is_empty() || refuse.is_some_and(|r| !r.permanent) || is_report(ctx.headers) {
        return None;
    }
    let client = client?;
    let from = out.domain.as_str();
    let sender = std::str::from_utf8(&ctx.envelope.sender).ok().filter(|s| !s.is_empty() && *s != "<>" && *s != "#@[]");
    let envelope_from =
        sender.and_then(|s| s.rsplit_once('@')).map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase());
    let envelope_from = envelope_from.filter(|d| crate::domain::is_dns_name(d));
    let dkim: Vec<DkimAuth> = ctx.earlier.iter().filter(|m| m.method() == "dkim").filter_map(dkim_auth).collect();
    let spf_word = ctx.earlier.iter().find(|m| m.method() == "spf").map(MethodResult::result);
    let spf = envelope_from.clone().zip(spf_word).map(|(d, r)| (d, r.to_string()));
    let dkim_aligned = dkim.iter().any(|d| d.result == "pass" && aligned(&d.domain, from, rec.adkim));
    let spf_aligned = spf.as_ref().is_some_and(|(d, r)| r == "pass" && aligned(d, from, rec.aspf));
    let requested = out.requested.unwrap_or(rec.p);
    let mut reasons = Vec::new();
    let disposition = if refuse.is_some() {
        "reject"
    } else if out.result == Verdict::Pass {
        if requested == Requested::None {
            "none"
        } else {
            "pass"
        }
    } else {
        "none"
    };
    if out.result == Verdict::Fail {
        let applied = out.applied.unwrap_or(requested);
        if applied != requested {
            reasons.push(("other".to_string(), format!("pct={}", rec.pct)));
        }
        if applied.name() != disposition {
            reasons.push(("local_policy".to_string(), String::new()));
        }
    }
    Some(Entry {
        time: ctx.now,
        policy: Policy {
            domain: at.clone(),
            discovery: "psl".into(),
            p: rec.p.name().into(),
            sp: rec.sp.map(|p| p.name().into()),
            np: None,
            adkim: alignment(rec.adkim).into(),
            aspf: alignment(rec.aspf).into(),
            fo: None,
            testing: None,
            rua: rec.rua.clone(),
        },
        row: Row {
            source_ip: client.to_string(),
            header_from: from.to_string(),
            envelope_from,
            dkim,
            spf,
            dkim_aligned,
            spf_aligned,
            disposition: disposition.into(),
            reasons,
        },
    })
}

fn alignment(a: super::record::Alignment) -> &'static str {
    match a {
        super::record::Alignment::Relaxed => "r",
        super::record::Alignment::Strict => "s",
    }
}

/// A DKIM result as the report shows it; `None` without a `d=` that is a DNS name.
fn dkim_auth(m: &MethodResult) -> Option<DkimAuth> {
    let d = m.property("header.d")?.trim_matches('"').trim_end_matches('.').to_ascii_lowercase();
    if !crate::domain::is_dns_name(&d) {
        return None;
    }
    let selector =
        m.property("header.s").map(|s| s.trim_matches('"')).filter(|s| s.bytes().all(|c| c.is_ascii_graphic()));
    Some(DkimAuth { domain: d, selector: selector.unwrap_or("").to_string(), result: m.result().to_string() })
}
