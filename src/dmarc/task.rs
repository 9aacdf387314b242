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

use super::record::Policy;
use super::{evaluate, DmarcOutput, Evidence, Verdict};
use crate::auth_results::MethodResult;
use crate::error::Result;
use crate::message::{address_domains, unfold, Headers};
use crate::task::{letter_refuses, Context, Refusal, Task, TaskResult};

/// What `plan` hands the task.
#[derive(Debug, Clone, Default)]
pub struct DmarcSettings {
    /// `DMARCVERIFY`: the letters that refuse.
    pub letters: String,
    /// `DMARCREPORTS`: the report spool, and the client address its records name.
    pub reports: Option<std::path::PathBuf>,
    pub client_ip: Option<std::net::IpAddr>,
}

pub struct DmarcTask {
    letters: String,
    reports: Option<std::path::PathBuf>,
    client_ip: Option<std::net::IpAddr>,
}

impl DmarcTask {
    pub fn new(settings: DmarcSettings) -> DmarcTask {
        DmarcTask { letters: settings.letters, reports: settings.reports, client_ip: settings.client_ip }
    }
}

impl Task for DmarcTask {
    fn body(&mut self, _data: &[u8]) {}

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<TaskResult> {
        let out = match from_domain(ctx.headers) {
            Ok(domain) => {
                let (dkim_pass, dkim_temperror) = dkim_domains(ctx.earlier);
                let (spf_result, spf_domain) = spf(ctx.earlier, &ctx.envelope.sender);
                let ev = Evidence {
                    dkim_pass: &dkim_pass,
                    dkim_temperror: &dkim_temperror,
                    spf_result,
                    spf_domain: spf_domain.as_deref(),
                };
                let resolver = (ctx.resolver)();
                evaluate(&*resolver, &domain, &ev)
            }
            Err(why) => DmarcOutput::new(Verdict::PermError, String::new(), why.into()),
        };
        if ctx.verbose {
            eprintln!(
                "qmail-dkim: DMARC {}: {}{}",
                if out.domain.is_empty() { "-" } else { &out.domain },
                out.result.word(),
                if out.detail.is_empty() { String::new() } else { format!(" ({})", out.detail) }
            );
        }
        let refuse = refusal(&out, &self.letters);
        if let Some(dir) = &self.reports {
            super::report_entry::spool(dir, self.client_ip, &out, ctx, refuse.as_ref());
        }
        Ok(TaskResult { auth: vec![method_result(&out, refuse.is_some())], refuse, ..TaskResult::default() })
    }
}

/// The one author domain of the message: every mailbox of every `From:` field must have the
/// same domain (RFC 9989 §5.3.1 leaves several to the receiver; we do not guess which counts).
fn from_domain(headers: &Headers) -> std::result::Result<String, &'static str> {
    let mut domain: Option<String> = None;
    for f in headers.named("From") {
        for d in address_domains(&unfold(headers.value(f))) {
            let Some(d) = d else {
                return Err("a From address without a domain");
            };
            match &domain {
                None => domain = Some(d),
                Some(first) if *first == d => {}
                Some(_) => return Err("From names several domains"),
            }
        }
    }
    domain.ok_or("no From address")
}

/// A domain from a method's property value: after the last `@` when there is one, without the
/// quote of a quoted-string value, lowercased; `None` unless it is a DNS name.
fn domain_of(v: &str) -> Option<String> {
    let d = v.rsplit_once('@').map_or(v, |(_, d)| d).trim_matches('"');
    let d = d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase();
    crate::domain::is_dns_name(&d).then_some(d)
}

/// `header.d` of the DKIM results that passed, and of those that failed temporarily; a DKIM2
/// chain that passed counts with its first signer's domain (`dkim2=pass header.d=`).
fn dkim_domains(earlier: &[MethodResult]) -> (Vec<String>, Vec<String>) {
    let (mut pass, mut temp) = (Vec::new(), Vec::new());
    for m in earlier.iter().filter(|m| m.method() == "dkim" || m.method() == "dkim2") {
        let Some(d) = m.property("header.d").and_then(domain_of) else { continue };
        match m.result() {
            "pass" => pass.push(d),
            "temperror" => temp.push(d),
            _ => {}
        }
    }
    (pass, temp)
}

/// The SPF result word and the domain it checked: the MAIL FROM domain, or the HELO name when
/// the sender is `<>` (or qmail's double-bounce `#@[]`), RFC 7208 §2.4. The MAIL FROM domain
/// comes from the envelope, as the SPF task took it: `smtp.mailfrom` is left out when it cannot
/// be shown (a UTF-8 local part, more than 255 octets), and that must not lose a pass (§4.4.2).
fn spf(earlier: &[MethodResult], sender: &[u8]) -> (&'static str, Option<String>) {
    let Some(m) = earlier.iter().find(|m| m.method() == "spf") else {
        return ("none", None);
    };
    let null = sender.is_empty() || sender == b"<>" || sender == b"#@[]";
    let domain = if null {
        m.property("smtp.helo").or_else(|| m.property("smtp.mailfrom")).and_then(domain_of)
    } else {
        std::str::from_utf8(sender).ok().and_then(|s| s.rsplit_once('@')).and_then(|(_, d)| domain_of(d))
    };
    (m.result(), domain)
}

/// The refusal the letters ask for. Texts name the domain only when it is a DNS name, and
/// nothing else from the message or the DNS.
fn refusal(out: &DmarcOutput, letters: &str) -> Option<Refusal> {
    let domain = if crate::domain::is_dns_name(&out.domain) { out.domain.as_str() } else { "the From domain" };
    let make = |permanent: bool, what: String| {
        if permanent {
            Refusal::permanent(format!("qmail-dkim: {what} (#5.7.1)"))
        } else {
            Refusal::temporary(format!("qmail-dkim: {what} (#4.7.1)"))
        }
    };
    match out.result {
        Verdict::Fail => {
            let applied = out.applied?;
            let letter = match applied {
                Policy::Reject => 'R',
                Policy::Quarantine => 'Q',
                Policy::None => 'N',
            };
            let permanent = letter_refuses(letters, letter)?;
            Some(make(permanent, format!("DMARC policy of {domain} is {} and the message failed", applied.name())))
        }
        Verdict::TempError => {
            letter_refuses(letters, 'T')?;
            Some(make(false, format!("DMARC check of {domain} failed temporarily")))
        }
        Verdict::PermError => {
            let permanent = letter_refuses(letters, 'P')?;
            let what = if out.domain.is_empty() {
                format!("DMARC permanent error: {}", out.detail)
            } else {
                format!("DMARC permanent error for {domain}")
            };
            Some(make(permanent, what))
        }
        Verdict::Pass | Verdict::None => None,
    }
}

/// `dmarc=…` for the `Authentication-Results` field.
fn method_result(out: &DmarcOutput, refused: bool) -> MethodResult {
    let mut m = MethodResult::new("dmarc", out.result.word());
    if let (Some(requested), Some(pr)) = (out.requested, &out.policy) {
        let t = if pr.record.t { " t=y" } else { "" };
        m = m.comment(&format!("p={}{t} dis={}", requested.name(), if refused { "reject" } else { "none" }));
    }
    if !out.detail.is_empty() {
        m = m.reason(&out.detail);
    }
    let decided = matches!(out.result, Verdict::Pass | Verdict::Fail);
    m.prop("header.from", (!out.domain.is_empty()).then_some(out.domain.as_str()))
        .prop("policy.dmarc", out.applied.filter(|_| decided).map(Policy::name))
}
