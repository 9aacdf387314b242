//! The DMARC task (`DMARCVERIFY=letters`): after SPF and DKIM, evaluate the From domain's
//! policy from their results and refuse as the letters say.
//!
//! Letters (uppercase refuses permanently `#5.7.1`, lowercase temporarily `#4.7.1`, the one
//! rule of [`crate::task::letter_refuses`]; empty: report only):
//! - `R`, `Q`, `N`: a message that fails, whose policy that applies (`p=`, `sp=` or `np=`,
//!   one step weaker under `t=y`) is `reject`, `quarantine`, `none`;
//! - `T`: `temperror` (a DNS failure, or an aligned DKIM or SPF check that failed
//!   temporarily). Always a temporary refusal, `T` or `t`: a passing DNS outage must never
//!   bounce mail;
//! - `P`: `permerror` (ours): an improperly formatted DMARC record, or a From without a
//!   single domain: none, several different ones, an address without a domain, a domain
//!   that is not an ASCII DNS name. Give `P` with `R`: a sender who breaks the From field
//!   on purpose gets `permerror`, not `fail`.
//!
//! The `Authentication-Results` part (RFC 8601, RFC 9989 §9.1): `dmarc=<result>
//! (p=<policy>[ t=y] dis=<none|reject>) header.from=<domain> policy.dmarc=<policy>`; `p=` is
//! what the record asks for the From domain (`p=`, `sp=` or `np=`), `t=y` when it is testing,
//! `dis=none` when the message is queued; `policy.dmarc` is the policy that applies (one step
//! weaker under `t=y`), on `pass` and `fail`. Without a deciding record a `reason=` says why.

use super::record::DmarcPolicy;
use super::{evaluate, DmarcOutput, DmarcResult, Evaluation, Evidence};
use crate::auth_results::{Dkim2Result, DkimResult, MethodOutput, SpfResult};
use crate::error::Result;
use crate::message::author_domain;
use crate::task::{letter_refuses, Context, Finished, Refusal, Task};

/// What `plan` hands the task.
#[derive(Debug, Clone, Default)]
pub(crate) struct DmarcSettings {
    /// `DMARCVERIFY`: the letters that refuse.
    pub letters: String,
}

pub(crate) struct DmarcTask {
    letters: String,
}

impl DmarcTask {
    pub(crate) fn new(settings: DmarcSettings) -> DmarcTask {
        DmarcTask { letters: settings.letters }
    }
}

impl Task for DmarcTask {
    fn body(&mut self, _data: &[u8]) {}

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let out = match author_domain(ctx.headers) {
            Ok(domain) => {
                let (dkim_pass, dkim_temperror) = dkim_domains(ctx.earlier);
                let (spf_result, spf_domain) = spf(ctx.earlier, &ctx.envelope.sender);
                let ev = Evidence {
                    dkim_pass: &dkim_pass,
                    dkim_temperror: &dkim_temperror,
                    spf_result,
                    spf_domain: spf_domain.as_deref(),
                };
                let resolver = crate::dns::unchosen((ctx.resolver)());
                evaluate(&*resolver, &domain, &ev)
            }
            Err(why) => Evaluation::new(DmarcResult::PermError, String::new(), why.into()),
        };
        if ctx.verbose {
            eprintln!(
                "qmail-dkim: DMARC {}: {}{}",
                if out.domain.is_empty() { "-" } else { &out.domain },
                out.result.as_str(),
                if out.detail.is_empty() { String::new() } else { format!(" ({})", out.detail) }
            );
        }
        let refuse = refusal(&out, &self.letters);
        let output = MethodOutput::Dmarc(output(&out, refuse.is_some()));
        Ok(Finished { outputs: vec![output], refuse, ..Finished::default() })
    }
}

/// A domain as DMARC compares it: lowercased; `None` unless it is a DNS name.
fn dns_name(d: &str) -> Option<String> {
    crate::domain::is_dns_name(d).then(|| d.to_ascii_lowercase())
}

/// The domain of an address (after the last `@`) or of a name, as [`dns_name`].
fn domain_of(v: &str) -> Option<String> {
    dns_name(v.rsplit_once('@').map_or(v, |(_, d)| d))
}

/// `d=` of the DKIM signatures that passed, and of those that failed temporarily; a DKIM2
/// chain that passed counts with its first signer's domain.
fn dkim_domains(earlier: &[MethodOutput]) -> (Vec<String>, Vec<String>) {
    let (mut pass, mut temp) = (Vec::new(), Vec::new());
    for o in earlier {
        match o {
            MethodOutput::Dkim { signatures, .. } => {
                for s in signatures {
                    let Some(d) = s.domain.as_deref().and_then(dns_name) else { continue };
                    match s.result {
                        DkimResult::Pass => pass.push(d),
                        DkimResult::TempError => temp.push(d),
                        _ => {}
                    }
                }
            }
            MethodOutput::Dkim2(c) if c.result == Dkim2Result::Pass => pass.extend(c.signer().and_then(dns_name)),
            _ => {}
        }
    }
    (pass, temp)
}

/// SPF's result and the domain it checked: the MAIL FROM domain, or the HELO name when the
/// sender is `<>` (or qmail's double-bounce `#@[]`), RFC 7208 §2.4. The MAIL FROM domain
/// comes from the envelope, as the SPF task took it, whatever Authentication-Results can show
/// of it (a UTF-8 local part, more than 255 octets): that must not lose a pass (§4.4.2).
fn spf(earlier: &[MethodOutput], sender: &[u8]) -> (SpfResult, Option<String>) {
    let Some(o) = earlier.iter().find_map(|o| match o {
        MethodOutput::Spf(o) => Some(o),
        _ => None,
    }) else {
        return (SpfResult::None, None);
    };
    let null = sender.is_empty() || sender == b"<>" || sender == b"#@[]";
    let domain = if null {
        o.identity.as_deref().and_then(domain_of)
    } else {
        std::str::from_utf8(sender).ok().and_then(|s| s.rsplit_once('@')).and_then(|(_, d)| domain_of(d))
    };
    (o.result, domain)
}

/// The refusal the letters ask for. Texts name the domain only when it is a DNS name, and
/// nothing else from the message or the DNS.
fn refusal(out: &Evaluation, letters: &str) -> Option<Refusal> {
    let domain = if crate::domain::is_dns_name(&out.domain) { out.domain.as_str() } else { "the From domain" };
    let make = |permanent: bool, what: String| {
        if permanent {
            Refusal::permanent(format!("qmail-dkim: {what} (#5.7.1)"))
        } else {
            Refusal::temporary(format!("qmail-dkim: {what} (#4.7.1)"))
        }
    };
    match out.result {
        DmarcResult::Fail => {
            let applied = out.applied?;
            let letter = match applied {
                DmarcPolicy::Reject => 'R',
                DmarcPolicy::Quarantine => 'Q',
                DmarcPolicy::None => 'N',
            };
            let permanent = letter_refuses(letters, letter)?;
            Some(make(permanent, format!("DMARC policy of {domain} is {} and the message failed", applied.name())))
        }
        DmarcResult::TempError => {
            letter_refuses(letters, 'T')?;
            Some(make(false, format!("DMARC check of {domain} failed temporarily")))
        }
        DmarcResult::PermError => {
            let permanent = letter_refuses(letters, 'P')?;
            let what = if out.domain.is_empty() {
                format!("DMARC permanent error: {}", out.detail)
            } else {
                format!("DMARC permanent error for {domain}")
            };
            Some(make(permanent, what))
        }
        DmarcResult::Pass | DmarcResult::None => None,
    }
}

/// The typed result, as `dmarc=…` of Authentication-Results shows it; `refused`: the message
/// is refused.
fn output(out: &Evaluation, refused: bool) -> DmarcOutput {
    let shown = out.requested.filter(|_| out.policy.is_some());
    DmarcOutput {
        result: out.result,
        domain: out.domain.clone(),
        requested: shown,
        testing: out.policy.as_ref().is_some_and(|p| p.record.t),
        applied: out.applied,
        refused,
        dkim_aligned: out.aligned_pass(true),
        spf_aligned: out.aligned_pass(false),
        reason: out.detail.clone(),
        published: super::report_entry::published(out),
    }
}
