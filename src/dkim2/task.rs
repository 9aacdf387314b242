//! The `DKIM2VERIFY` task: the DKIM2 chain of a message checked against the envelope it arrived
//! with, one `dkim2=` result, and the refusal the letters ask for.

use super::hash::body_digest;
use super::parse::Instance;
use super::recipe::BodyRecipe;
use super::sign::{sign, BodyHashes, Hop};
use super::verify::{verify, Body, Envelope};
use super::{Dkim2Output, Dkim2Result};
use super::{INSTANCE_FIELD, SIGNATURE_FIELD};
use crate::auth_results::MethodOutput;
use crate::dkim::canon::BodyHasher;
use crate::dkim::key::SigningKey;
use crate::dkim::{Canon, HashAlg};
use crate::error::Result;
use crate::message::Headers;
use crate::task::{letter_refuses, Context, Finished, Refusal, Task};

/// The body is kept in memory only when a recipe must recreate an older one, up to this size;
/// beyond, the chain is a PERMERROR (it cannot be verified here).
pub(crate) const MAX_KEPT_BODY: usize = 32 << 20;

/// The body as DKIM2 needs it, fed as it streams: its simple-canonical hashes (sha512 only when
/// a Message-Instance names it), and its bytes only when a body recipe must recreate an older
/// body.
pub(crate) struct BodyState {
    /// No DKIM2 field: nothing is hashed (a first hop's signer hashes anyway).
    present: bool,
    sha256: BodyHasher,
    sha512: Option<BodyHasher>,
    /// `None` after the body outgrew [`MAX_KEPT_BODY`].
    kept: Option<Vec<u8>>,
    keep: bool,
}

impl BodyState {
    fn new(headers: &Headers, always: bool) -> BodyState {
        let is = |f: &crate::message::Field, n: &str| headers.name(f).trim_ascii().eq_ignore_ascii_case(n.as_bytes());
        let present = always || headers.fields.iter().any(|f| is(f, SIGNATURE_FIELD) || is(f, INSTANCE_FIELD));
        let instances = || headers.fields.iter().filter(|f| is(f, INSTANCE_FIELD)).take(super::MAX_CHAIN);
        let keep = instances().any(|f| {
            Instance::parse(headers.value(f))
                .is_ok_and(|mi| mi.recipe.is_some_and(|r| matches!(r.body, BodyRecipe::Steps(_))))
        });
        let wants_512 = instances().any(|f| memchr::memmem::find(headers.value(f), b"sha512").is_some());
        BodyState {
            present,
            sha256: BodyHasher::new(Canon::Simple, HashAlg::Sha256, None),
            sha512: (present && wants_512).then(|| BodyHasher::new(Canon::Simple, HashAlg::Sha512, None)),
            kept: (present && keep).then(Vec::new),
            keep: present && keep,
        }
    }

    fn update(&mut self, data: &[u8]) {
        if !self.present {
            return;
        }
        self.sha256.update(data);
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
        if let Some(k) = &mut self.kept {
            if k.len() + data.len() > MAX_KEPT_BODY {
                self.kept = None;
            } else {
                k.extend_from_slice(data);
            }
        }
    }

    /// The hashes (sha512 of the empty body when no Message-Instance asked for it).
    fn hashes(sha256: BodyHasher, sha512: Option<BodyHasher>) -> BodyHashes {
        BodyHashes {
            sha256: sha256.finish().0,
            sha512: sha512.map_or_else(|| body_digest(b"", HashAlg::Sha512), |h| h.finish().0),
        }
    }
}

/// The envelope of this hop as paths with angle brackets.
fn paths(ctx: &Context<'_>) -> (String, Vec<String>) {
    let path = |a: &[u8]| format!("<{}>", String::from_utf8_lossy(a));
    (path(&ctx.envelope.sender), ctx.envelope.recipients.iter().map(|r| path(r)).collect())
}

/// Verifies the DKIM2 chain at queue entry.
pub(crate) struct Dkim2VerifyTask {
    letters: String,
    body: BodyState,
}

impl Dkim2VerifyTask {
    /// Prepares the check of a message whose header block is `headers` (before its body).
    pub(crate) fn new(headers: &Headers, letters: String) -> Dkim2VerifyTask {
        Dkim2VerifyTask { letters, body: BodyState::new(headers, false) }
    }
}

impl Task for Dkim2VerifyTask {
    fn body(&mut self, data: &[u8]) {
        self.body.update(data);
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let Dkim2VerifyTask { letters, body } = *self;
        let report = if !body.present {
            Dkim2Output { result: Dkim2Result::None, reason: "no DKIM2 signature".into(), chain: Vec::new() }
        } else if body.keep && body.kept.is_none() {
            Dkim2Output {
                result: Dkim2Result::PermError,
                reason: format!("a recipe must recreate a body of more than {} MiB", MAX_KEPT_BODY >> 20),
                chain: Vec::new(),
            }
        } else {
            let (from, rcpt) = paths(ctx);
            let env = Envelope { mail_from: &from, rcpt_to: &rcpt };
            let dns = (ctx.dns)();
            let b = match &body.kept {
                Some(b) => Body::Bytes(b),
                None => {
                    let h = BodyState::hashes(body.sha256, body.sha512);
                    Body::Digests { sha256: h.sha256, sha512: h.sha512 }
                }
            };
            verify(ctx.headers, b, &env, &*dns, ctx.now)
        };
        if ctx.verbose {
            let why: String = report.reason.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect();
            eprintln!("qmail-dkim: DKIM2 {} signatures: {} {why}", report.chain.len(), report.result.as_str());
        }
        let refuse = refusal(&report, &letters);
        Ok(Finished { outputs: vec![MethodOutput::Dkim2(report)], refuse, ..Default::default() })
    }
}

/// Signs the next hop at queue exit (qmail-dkim-remote's `DKIM2SIGN`).
pub struct Dkim2SignTask {
    key: SigningKey,
    domain: String,
    selector: String,
    now: u64,
    body: BodyState,
}

impl Dkim2SignTask {
    pub(crate) fn new(headers: &Headers, key: SigningKey, domain: String, selector: String, now: u64) -> Dkim2SignTask {
        Dkim2SignTask { key, domain, selector, now, body: BodyState::new(headers, true) }
    }
}

impl Task for Dkim2SignTask {
    fn body(&mut self, data: &[u8]) {
        self.body.update(data);
    }

    /// Our fields, or none (with the reason on descriptor 2): a message DKIM2 cannot continue
    /// still leaves, as it would without DKIM2.
    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let t = *self;
        let (from, rcpt) = paths(ctx);
        let hop =
            Hop { key: &t.key, domain: &t.domain, selector: &t.selector, mail_from: &from, rcpt_to: &rcpt, now: t.now };
        let dns = (ctx.dns)();
        match sign(ctx.headers, &BodyState::hashes(t.body.sha256, t.body.sha512), &hop, &*dns) {
            Ok(prepend) => Ok(Finished { prepend, ..Default::default() }),
            Err(why) => {
                eprintln!("qmail-dkim: DKIM2: not signed: {why}");
                Ok(Finished::default())
            }
        }
    }
}

/// The refusal the `DKIM2VERIFY` letters ask for: `F` fail, `P` permerror, `N` no DKIM2
/// signature (uppercase permanent, lowercase temporary), `T` temperror (always temporary).
pub(crate) fn refusal(r: &Dkim2Output, letters: &str) -> Option<Refusal> {
    let (letter, what) = match r.result {
        Dkim2Result::Pass => return None,
        Dkim2Result::Fail => ('F', "DKIM2 chain does not verify"),
        Dkim2Result::PermError => ('P', "DKIM2 chain cannot be verified"),
        Dkim2Result::None => ('N', "no DKIM2 signature"),
        Dkim2Result::TempError => {
            return letter_refuses(letters, 'T')
                .map(|_| Refusal::temporary("qmail-dkim: temporary failure verifying the DKIM2 chain (#4.7.20)"));
        }
    };
    // X.7.20 "no passing DKIM signature found" (RFC 7372).
    letter_refuses(letters, letter).map(|permanent| Refusal {
        permanent,
        text: format!("qmail-dkim: {what} (#{}.7.20)", if permanent { 5 } else { 4 }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(result: Dkim2Result) -> Dkim2Output {
        Dkim2Output { result, reason: "why".into(), chain: vec![(1, "a.example".into())] }
    }

    #[test]
    fn letters_refuse_like_the_other_checks() {
        let r = |v, letters: &str| refusal(&report(v), letters).map(|r| r.permanent);
        for (v, l) in [(Dkim2Result::Fail, 'F'), (Dkim2Result::PermError, 'P'), (Dkim2Result::None, 'N')] {
            assert_eq!(r(v, &l.to_string()), Some(true), "{l}");
            assert_eq!(r(v, &l.to_ascii_lowercase().to_string()), Some(false), "{l}");
            assert_eq!(r(v, ""), None, "{l}");
            assert_eq!(r(v, "T"), None, "{l}");
        }
        // A temporary failure is never permanent.
        assert_eq!(r(Dkim2Result::TempError, "T"), Some(false));
        assert_eq!(r(Dkim2Result::TempError, "t"), Some(false));
        assert_eq!(r(Dkim2Result::TempError, "FPN"), None);
        assert_eq!(r(Dkim2Result::Pass, "FPNT"), None);
    }

    #[test]
    fn method_result_names_the_first_signer_on_a_pass() {
        let pass = Dkim2Output {
            result: Dkim2Result::Pass,
            reason: String::new(),
            chain: vec![(1, "a.example".into()), (2, "b.example".into())],
        };
        let m = pass.method_result();
        assert_eq!(
            (m.method(), m.result(), m.property("header.d"), m.property("header.i")),
            ("dkim2", "pass", Some("a.example"), Some("1"))
        );
        let f = report(Dkim2Result::Fail).method_result();
        assert_eq!((f.result(), f.property("header.d")), ("fail", None));
    }
}
