//! The ARC tasks: [`ArcVerifyTask`] (`ARCVERIFY`) validates the chain with [`super::verify`];
//! [`ArcSealTask`] (`ARCSIGN`, made in [`super::seal`]) adds the next set with the verdicts of
//! the same run.

use super::seal::ArcSealTask;
use super::verify::Verifier;
use super::{ArcOutput, ArcResult, Chain};
use crate::auth_results::MethodOutput;
use crate::error::{Error, Result};
use crate::message::Headers;
use crate::task::{letter_refuses, Context, Finished, Refusal, Task};

/// The `ARCVERIFY` task: one `arc=` result, and the refusal its letters ask for: `F` for a
/// failing chain (uppercase permanent, lowercase temporary), `T` for a temporary DNS failure
/// (always temporary).
pub struct ArcVerifyTask {
    letters: String,
    verifier: Verifier,
}

impl ArcVerifyTask {
    /// Prepares the validation of a message whose header block is `headers` (before its body).
    /// `now` is for the newest AMS's `x=` (an expired AMS fails, as dkimpy fails the chain);
    /// seals carry no expiry (RFC 8617 defines no `x=` on the AS).
    pub fn new(headers: &Headers, letters: String, now: u64) -> ArcVerifyTask {
        ArcVerifyTask { letters, verifier: Verifier::new(headers).at(now) }
    }
}

impl Task for ArcVerifyTask {
    fn body(&mut self, data: &[u8]) {
        self.verifier.body(data);
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let ArcVerifyTask { letters, verifier } = *self;
        // Always DNS: SELECTOR_DATA stands in for DKIM key records only.
        let lookup = (ctx.resolver)();
        let v = verifier.finish(ctx.headers, &*lookup);
        if ctx.verbose {
            let why: String = v.reason.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect();
            eprintln!("qmail-dkim: ARC {} sets: {} {why}", v.instances, v.result.as_str());
        }
        let refuse = refusal(&v, &letters);
        Ok(Finished { outputs: vec![MethodOutput::Arc(v)], refuse, ..Default::default() })
    }
}

/// The refusal the `ARCVERIFY` letters ask for.
pub(crate) fn refusal(v: &ArcOutput, letters: &str) -> Option<Refusal> {
    match v.result {
        ArcResult::Fail => letter_refuses(letters, 'F').map(|permanent| Refusal {
            permanent,
            // X.7.29 "ARC validation failure", the enhanced status code RFC 8617 registers.
            text: format!("qmail-dkim: ARC chain does not validate (#{}.7.29)", if permanent { 5 } else { 4 }),
        }),
        ArcResult::TempError => letter_refuses(letters, 'T')
            .map(|_| Refusal::temporary("qmail-dkim: temporary DNS failure validating the ARC chain (#4.7.29)")),
        ArcResult::None | ArcResult::Pass => None,
    }
}

impl Task for ArcSealTask {
    fn body(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let arc = ctx.earlier.iter().rev().find_map(|o| match o {
            MethodOutput::Arc(a) => Some(a.result),
            _ => None,
        });
        let mut task = *self;
        let chain = std::mem::replace(&mut task.chain, Chain::None);
        let next = match ArcSealTask::next_set(chain, arc) {
            Ok(p) => p,
            Err(why) => {
                if ctx.verbose {
                    eprintln!("qmail-dkim: ARC not sealed: {why}");
                }
                return Ok(Finished::default());
            }
        };
        let (d, s) = (task.domain.clone(), task.selector.clone());
        let prepend =
            task.seal(ctx, &next).map_err(|e| Error::Internal(format!("ARC sealing for d={d} s={s}: {e}")))?;
        if ctx.verbose {
            eprintln!("qmail-dkim: ARC sealed i={} cv={} d={d} s={s}", next.instance, next.cv);
        }
        Ok(Finished { prepend, ..Default::default() })
    }
}
