//! The SPF task of a run (`SPFVERIFY`): check_host() for the envelope sender (or, for the
//! null sender, the HELO name, §2.4), its typed result (`spf=` of Authentication-Results), and a refusal when the letters
//! say so. The body is not needed.

use super::{check_host, SpfOutput, SpfResult, SpfScope};
use crate::auth_results::MethodOutput;
use crate::error::Result;
use crate::task::{letter_refuses, Context, Finished, Refusal, Task};
use std::net::IpAddr;

/// What the plan knows before the message: plain data from the environment and control files.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpfSettings {
    /// `SPFVERIFY`: `F S N T P` refuse fail, softfail, neutral, temperror, permerror
    /// (uppercase permanently, lowercase temporarily; `T` always temporarily); empty: evaluate
    /// and report only.
    pub letters: String,
    /// `TCPREMOTEIP`; `None` for local injection (SPF `none`, never a refusal).
    pub client_ip: Option<IpAddr>,
    /// `HELOHOST`.
    pub helo: Option<String>,
    /// Our host name (`r` in explanations).
    pub host_domain: String,
}

pub(crate) struct SpfTask {
    settings: SpfSettings,
}

impl SpfTask {
    pub(crate) fn new(settings: SpfSettings) -> SpfTask {
        SpfTask { settings }
    }
}

/// The letter of a result in `SPFVERIFY`; pass and none never refuse.
fn letter(r: SpfResult) -> Option<char> {
    match r {
        SpfResult::Fail => Some('F'),
        SpfResult::SoftFail => Some('S'),
        SpfResult::Neutral => Some('N'),
        SpfResult::TempError => Some('T'),
        SpfResult::PermError => Some('P'),
        SpfResult::Pass | SpfResult::None => None,
    }
}

/// Which identity is checked (§2.4, §2.3): the envelope sender's domain, or for the null
/// sender `postmaster@<helo>`. `None` with why, when there is nothing to check.
struct Identity {
    domain: String,
    sender: String,
    scope: SpfScope,
    value: String,
}

fn identity(sender: &[u8], helo: Option<&str>) -> std::result::Result<Identity, &'static str> {
    let sender = std::str::from_utf8(sender).map_err(|_| "the envelope sender is not UTF-8")?;
    if sender.is_empty() || sender == "<>" {
        let helo = helo.filter(|h| !h.is_empty()).ok_or("null sender and no HELO name")?;
        return Ok(Identity {
            domain: helo.to_string(),
            sender: format!("postmaster@{helo}"),
            scope: SpfScope::Helo,
            value: helo.to_string(),
        });
    }
    // §4.3: a sender without a domain has nothing to check (check_host() says `none` for a
    // malformed domain itself).
    let (_, domain) = sender.rsplit_once('@').ok_or("the envelope sender has no domain")?;
    Ok(Identity {
        domain: domain.to_string(),
        sender: sender.to_string(),
        scope: SpfScope::MailFrom,
        value: sender.to_string(),
    })
}

impl Task for SpfTask {
    fn body(&mut self, _data: &[u8]) {}

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let s = self.settings;
        let helo = s.helo.as_deref();
        let id = identity(&ctx.envelope.sender, helo);
        let output = match (s.client_ip, id) {
            (None, _) => {
                none("no client address (local injection)").with_identity(SpfScope::MailFrom, sender_text(ctx))
            }
            (Some(_), Err(why)) => none(why).with_identity(SpfScope::MailFrom, sender_text(ctx)),
            (Some(ip), Ok(id)) => {
                // In line with the From domain, DMARC needs this check: it has time of its own.
                let resolver = match crate::message::author_domain(ctx.headers) {
                    Ok(a) if crate::domain::in_line(&id.domain, &a) => crate::dns::unchosen((ctx.resolver)()),
                    _ => (ctx.resolver)(),
                };
                check_host(&*resolver, ip, &id.domain, &id.sender, helo.unwrap_or(""), &s.host_domain)
                    .with_identity(id.scope, Some(id.value))
            }
        };
        if ctx.verbose {
            eprintln!("qmail-dkim: SPF {}: {}", output.result.as_str(), log_safe(&output.reason));
        }
        // A temporary DNS failure never refuses permanently, whatever the case of `T`.
        let refuse = letter(output.result).and_then(|l| {
            let permanent = letter_refuses(&s.letters, l)? && output.result != SpfResult::TempError;
            Some(refusal(&output, permanent))
        });
        Ok(Finished { outputs: vec![MethodOutput::Spf(output)], refuse, ..Finished::default() })
    }
}

fn none(why: &str) -> SpfOutput {
    SpfOutput {
        result: SpfResult::None,
        domain: String::new(),
        reason: why.to_string(),
        explanation: None,
        scope: SpfScope::MailFrom,
        identity: None,
    }
}

fn sender_text(ctx: &Context<'_>) -> Option<String> {
    std::str::from_utf8(&ctx.envelope.sender).ok().filter(|s| !s.is_empty()).map(str::to_string)
}

/// `qmail-dkim: SPF fail: <reason> (#5.7.23)`: RFC 7372 x.7.23 for a failed validation,
/// x.7.24 for temperror and permerror; 4 instead of 5 when temporary.
fn refusal(o: &SpfOutput, permanent: bool) -> Refusal {
    let detail = match o.result {
        SpfResult::TempError | SpfResult::PermError => 24,
        _ => 23,
    };
    let class = if permanent { 5 } else { 4 };
    // RFC 7208 §8.4: a fail may carry the domain's own explanation (`exp=`), marked as its.
    let says = match (&o.result, &o.explanation) {
        (SpfResult::Fail, Some(e)) => format!("; {} says: {}", o.domain, log_safe(e)),
        _ => String::new(),
    };
    let text = format!("qmail-dkim: SPF {}: {}{says} (#{class}.7.{detail})", o.result.as_str(), log_safe(&o.reason));
    if permanent {
        Refusal::permanent(text)
    } else {
        Refusal::temporary(text)
    }
}

/// A reason for a log line or an SMTP reply: printable ASCII, at most 300 characters.
fn log_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(300).collect()
}
