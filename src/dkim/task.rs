//! The DKIM signing task: one key, the signatures to make with it, and the body hashers they
//! share. [`Signer`] needs only plain data (a key, [`SignParams`], the header block and the
//! body), so any program can sign with it; qmail-dkim makes it in `crate::plan`.
//!
//! The DKIM verification task of a run: verify ([`super::verify`]), apply the practice step
//! and the letters ([`super::policy`]), and write the headers.
//!
//! Results: the `dkim=` part of the one `Authentication-Results` field run() writes, and,
//! prepended, `DKIM-Status`, then `X-DKIM-ADSP` or `X-DKIM-SSP` when the practice step
//! consulted such a record. Incoming `DKIM-Status`,
//! `X-DKIM-ADSP`, `X-DKIM-SSP` fields and `Authentication-Results` fields with our authserv-id
//! are removed by run() ([`crate::headers::forged`], whenever it writes an
//! `Authentication-Results`). With `VERBOSE`, one line per signature goes to fd 2.
//!
//! The bytes of the headers (LF-ended, folded with LF TAB):
//! - `DKIM-Status:` (the texts of qmail-dkim-letters(5)), with a second line
//!   `(old=NAME:number)` when the practice step changed the result;
//! - the DKIM part of `Authentication-Results:` (RFC 8601, written by crate::auth_results):
//!   `dkim=<result> [reason="…"] header.d=… header.i=… header.s=… header.a=… header.b=<first 8
//!   of b=>`, one result per signature, `dkim=none` without signatures;
//! - `X-DKIM-ADSP:` / `X-DKIM-SSP:` when the practice step consulted such a record.

use super::canon::BodyHasher;
use super::key::{KeyType, SigningKey};
use super::policy::{self, PracticeRules};
use super::sign::{self, SignParams};
use super::verify::{Options, Outcome, Verification, Verifier};
use super::Algorithm;
use crate::auth_results::{DkimOutput, MethodOutput};
use crate::error::{Error, Result};
use crate::log;
use crate::message::{author_domain, Headers};
use crate::task::{Context, Finished, Task};

/// A loaded key with the signatures to make with it.
pub struct Signer {
    key: SigningKey,
    params: Vec<SignParams>,
    /// Per params entry: its body hasher (shared when canonicalization and hash agree).
    hasher: Vec<usize>,
    hashers: Vec<BodyHasher>,
}

/// A key that cannot make a requested signature (an Ed25519 key for rsa-sha256, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {} key cannot make {} signatures (check DKIMSIGNOPTIONS -z)", key.as_str(), algorithm.as_str())]
pub(crate) struct Unfit {
    pub key: KeyType,
    pub algorithm: Algorithm,
}

impl Signer {
    /// A signer for `params` (one per signature, `selector` filled in) with `key`.
    pub(crate) fn new(key: SigningKey, params: Vec<SignParams>) -> Result<Signer, Unfit> {
        let mut idx = Vec::new();
        let mut hashers: Vec<BodyHasher> = Vec::new();
        for p in &params {
            if !key.fits(p.algorithm) {
                return Err(Unfit { key: key.key_type(), algorithm: p.algorithm });
            }
            let want = (p.canon.body, p.algorithm.hash());
            let i = match hashers.iter().position(|h| (h.canon(), h.hash_alg()) == want && h.limit().is_none()) {
                Some(i) => i,
                None => {
                    hashers.push(BodyHasher::new(want.0, want.1, None));
                    hashers.len() - 1
                }
            };
            idx.push(i);
        }
        Ok(Signer { key, params, hasher: idx, hashers })
    }

    /// The selector the signatures are made with (one key, one selector).
    pub(crate) fn selector(&self) -> Option<&str> {
        self.params.first().map(|p| p.selector.as_str())
    }

    /// The DKIM key record of this key, as DNS publishes it: a program can check a signature
    /// of its own with it, without asking DNS.
    pub(crate) fn key_record(&self) -> Vec<u8> {
        use base64::Engine;
        let p = base64::engine::general_purpose::STANDARD.encode(self.key.public_key_dns());
        format!("v=DKIM1; k={}; p={p}", self.key.key_type().as_str()).into_bytes()
    }

    /// Body bytes, in order, in pieces of any size.
    pub(crate) fn update(&mut self, data: &[u8]) {
        for h in &mut self.hashers {
            h.update(data);
        }
    }

    /// The `DKIM-Signature` fields for the message with this header block, LF-ended, top
    /// first; calls `each` with the parameters of every signature made.
    pub(crate) fn sign(self, headers: &Headers, mut each: impl FnMut(&SignParams)) -> Result<Vec<u8>> {
        let Signer { key, params, hasher, hashers } = self;
        let finished: Vec<(Vec<u8>, u64)> = hashers.into_iter().map(BodyHasher::finish).collect();
        let mut out = Vec::new();
        for (p, &h) in params.iter().zip(&hasher) {
            let (hash, len) = &finished[h];
            let field = sign::sign(headers, p, hash, *len, &key)
                .map_err(|e| Error::Internal(format!("signing for d={} s={}: {e}", p.domain, p.selector)))?;
            each(p);
            out.extend_from_slice(&field);
        }
        Ok(out)
    }
}

impl Task for Signer {
    fn body(&mut self, data: &[u8]) {
        self.update(data);
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let prepend = self.sign(ctx.queued, |p| {
            if ctx.verbose {
                eprintln!("qmail-dkim: signed d={} s={} a={}", p.domain, p.selector, p.algorithm.as_str());
            }
            log::note(log::Note::Sig {
                method: log::Method::Dkim,
                d: Some(p.domain.clone()),
                s: Some(p.selector.clone()),
                a: Some(p.algorithm.as_str().into()),
                result: "signed",
                letter: None,
            });
        })?;
        Ok(Finished { prepend, ..Default::default() })
    }
}

/// Reads the practice step's settings for an outcome (`DKIMPRACTICE`, `SIGN_PRACTICE`, the
/// domain lists): `None` when the step is off for it. Called only when the outcome is known, so
/// the control files are read only then.
pub(crate) type PracticeSource = Box<dyn FnOnce(Outcome) -> Result<Option<PracticeRules>> + Send>;

pub(crate) struct VerifyTask {
    letters: String,
    verifier: Verifier,
    practice: PracticeSource,
}

impl VerifyTask {
    /// Prepares the verification of a message whose header block is `headers` (before its body);
    /// `letters` are the `DKIMVERIFY` letters that refuse.
    pub(crate) fn new(
        letters: &str,
        options: &Options,
        headers: &Headers,
        now: u64,
        practice: PracticeSource,
    ) -> VerifyTask {
        VerifyTask { letters: letters.to_string(), verifier: Verifier::new(headers, options, now), practice }
    }
}

impl Task for VerifyTask {
    fn body(&mut self, data: &[u8]) {
        self.verifier.body(data);
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let VerifyTask { letters, verifier, practice } = *self;
        let lookup = (ctx.dns)();
        // The keys of signatures in line with the From domain have time of their own: other
        // signatures, which the sender may add at will, cannot use it up (crate::dns::unchosen).
        let unchosen = crate::dns::unchosen_txt((ctx.dns)());
        let author = author_domain(ctx.headers).ok();
        let report = verifier.finish_keys(ctx.headers, &|d: &str| {
            if author.as_deref().is_some_and(|a| crate::domain::in_line(d, a)) {
                &*unchosen
            } else {
                &*lookup
            }
        });
        let verbose = ctx.verbose;
        if verbose {
            for r in &report.results {
                eprintln!(
                    "qmail-dkim: DKIM d={} s={} a={}: {} ({}) {}",
                    log_safe(r.domain.as_deref()),
                    log_safe(r.selector.as_deref()),
                    log_safe(r.algorithm.as_deref()),
                    r.outcome.letter(),
                    r.outcome.name(),
                    log_safe(Some(&r.detail))
                );
            }
            if report.ignored > 0 {
                eprintln!(
                    "qmail-dkim: {} DKIM-Signature fields beyond the first {} not evaluated",
                    report.ignored,
                    report.results.len()
                );
            }
        }
        let overall = report.overall();
        let mut outcome = overall;
        let mut old = None;
        let mut practice_hdr = None;
        if let Some(rules) = practice(overall)? {
            let author = author_domain(ctx.headers).ok();
            let p = policy::apply_practice(&rules, overall, author.as_deref(), &*lookup);
            outcome = p.outcome;
            old = p.old;
            practice_hdr = p.header;
        }
        if verbose {
            eprintln!(
                "qmail-dkim: DKIM result {} ({}){}",
                outcome.letter(),
                outcome.name(),
                match old {
                    Some(o) => format!(", was {} before the practice step", o.letter()),
                    None => String::new(),
                }
            );
        }
        let mut prepend = dkim_status(outcome, old);
        if let Some((name, value)) = practice_hdr {
            prepend.extend_from_slice(&practice_header(name, value));
        }
        let refuse = policy::decide(outcome, &letters);
        let output = MethodOutput::Dkim {
            signatures: dkim_outputs(report.results),
            result: outcome.result(),
            letter: outcome.letter(),
        };
        Ok(Finished { prepend, outputs: vec![output], refuse })
    }
}

/// A value from the message, fit for one log line: control characters replaced, cut short.
fn log_safe(v: Option<&str>) -> String {
    match v {
        None => "-".into(),
        Some(v) => v.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect(),
    }
}

/// `DKIM-Status: <text>` and, when the practice step changed the result, `\t(old=NAME:n)`.
pub(crate) fn dkim_status(o: Outcome, old: Option<Outcome>) -> Vec<u8> {
    let mut s = format!("DKIM-Status: {}\n", o.status_text());
    if let Some(old) = old {
        s.push_str(&format!("\t(old={}:{})\n", old.name(), old.number()));
    }
    s.into_bytes()
}

/// `X-DKIM-ADSP: discardable;` and the like.
pub(crate) fn practice_header(name: &str, value: &str) -> Vec<u8> {
    format!("{name}: {value}\n").into_bytes()
}

/// The typed result of each signature, as the `dkim=` parts of Authentication-Results show it.
pub(crate) fn dkim_outputs(results: Vec<Verification>) -> Vec<DkimOutput> {
    results
        .into_iter()
        .map(|r| DkimOutput {
            result: r.outcome.result(),
            letter: r.outcome.letter(),
            reason: (!r.outcome.is_pass()).then(|| r.outcome.status_text()),
            domain: r.domain,
            identity: r.identity,
            selector: r.selector,
            algorithm: r.algorithm,
            b_prefix: r.b_prefix,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth_results::DkimResult;

    fn sr(o: Outcome) -> Verification {
        Verification {
            outcome: o,
            domain: Some("example.com".into()),
            selector: Some("sel".into()),
            identity: Some("@example.com".into()),
            algorithm: Some("rsa-sha256".into()),
            b_prefix: Some("ab/cd+ef".into()),
            detail: String::new(),
        }
    }

    #[test]
    fn status() {
        assert_eq!(dkim_status(Outcome::Success, None), b"DKIM-Status: good\n");
        assert_eq!(
            String::from_utf8(dkim_status(Outcome::Neutral, Some(Outcome::NoSignatures))).unwrap(),
            "DKIM-Status: verify result: no signatures verified but message is not suspicious\n\t(old=NO_SIGNATURES:-13)\n"
        );
        assert_eq!(practice_header("X-DKIM-ADSP", "unknown;"), b"X-DKIM-ADSP: unknown;\n");
    }

    #[test]
    fn ar() {
        let f = |r: &[Verification]| {
            let o = MethodOutput::Dkim { signatures: dkim_outputs(r.to_vec()), result: DkimResult::None, letter: 'S' };
            String::from_utf8(crate::auth_results::field("mx.example.org", &crate::auth_results::render(&[o]))).unwrap()
        };
        assert_eq!(f(&[]), "Authentication-Results: mx.example.org; dkim=none\n");
        let a = f(&[sr(Outcome::Success), sr(Outcome::SignatureBad)]);
        assert_eq!(
            a,
            "Authentication-Results: mx.example.org;\n\tdkim=pass header.d=example.com header.i=@example.com header.s=sel\n\theader.a=rsa-sha256 header.b=\"ab/cd+ef\";\n\tdkim=fail reason=\"signature error: RSA/ED25519 verify failed\"\n\theader.d=example.com header.i=@example.com header.s=sel\n\theader.a=rsa-sha256 header.b=\"ab/cd+ef\"\n"
        );
        // Hostile values are left out, never break the field nor read as another method.
        let mut bad = sr(Outcome::BadSyntax);
        bad.domain = Some("evil; dkim=pass".into());
        bad.identity = Some("a\"b@x\ny".into());
        bad.selector = Some("sé".into());
        let a = f(&[bad]);
        assert!(!a.contains("header.d=") && !a.contains("header.i=") && !a.contains("header.s="), "{a}");
        assert_eq!(a.matches('\n').count(), a.matches("\n\t").count() + 1);
    }
}
