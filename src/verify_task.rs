//! The DKIM verification task of a run: verify (crate::dkim::verify), apply the practice step
//! and the letters (crate::policy), and produce the headers (crate::headers).
//!
//! Results: the `dkim=` part of the one `Authentication-Results` field run() writes, and,
//! prepended, `DKIM-Status`, then `X-DKIM-ADSP` or `X-DKIM-SSP` when the practice step
//! consulted such a record. Incoming `DKIM-Status`,
//! `X-DKIM-ADSP`, `X-DKIM-SSP` fields and `Authentication-Results` fields with our authserv-id
//! are removed. With `VERBOSE`, one line per signature goes to fd 2.

use crate::config::Env;
use crate::dkim::verify::{Options, Verifier};
use crate::error::Result;
use crate::message::{address_domain, Headers};
use crate::policy::{self, Decision};
use crate::run::{Finish, Task, TaskResult};
use crate::{dns, headers};

pub struct VerifyTask {
    letters: String,
    verifier: Verifier,
}

impl VerifyTask {
    /// Plans the verification of a message whose header block is `headers` (before its body).
    pub fn new(letters: &str, env: &Env, headers: &Headers, now: u64) -> VerifyTask {
        VerifyTask { letters: letters.to_string(), verifier: Verifier::new(headers, &Options::from_env(env), now) }
    }
}

impl Task for VerifyTask {
    fn body(&mut self, data: &[u8]) {
        self.verifier.body(data);
    }

    fn finish(self: Box<Self>, ctx: &Finish<'_>) -> Result<TaskResult> {
        let VerifyTask { letters, verifier } = *self;
        let lookup = dns::from_env(ctx.env);
        let report = verifier.finish(ctx.headers, &*lookup);
        let verbose = ctx.env.is_set("VERBOSE");
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
                eprintln!("qmail-dkim: {} DKIM-Signature fields beyond the first {} not evaluated", report.ignored, report.results.len());
            }
        }
        for r in &report.results {
            crate::log::note(crate::log::Note::Sig {
                method: crate::log::Method::Dkim,
                d: r.domain.clone(),
                s: r.selector.clone(),
                a: r.algorithm.clone(),
                result: r.outcome.ar_result(),
                letter: Some(r.outcome.letter()),
            });
        }
        let overall = report.overall();
        let mut outcome = overall;
        let mut old = None;
        let mut practice_hdr = None;
        if let Some(plan) = policy::practice_plan(ctx.env, ctx.control, overall)? {
            let author = ctx.headers.first_value("From").and_then(|v| address_domain(&v));
            let p = policy::apply_practice(&plan, overall, author.as_deref(), &*lookup);
            outcome = p.outcome;
            old = p.old;
            practice_hdr = p.header;
        }
        if verbose {
            eprintln!("qmail-dkim: DKIM result {} ({}){}", outcome.letter(), outcome.name(), match old {
                Some(o) => format!(", was {} before the practice step", o.letter()),
                None => String::new(),
            });
        }
        crate::log::note(crate::log::Note::Result { method: crate::log::Method::Dkim, result: outcome.ar_result(), letter: outcome.letter() });
        let id = headers::authserv_id(ctx.env, ctx.control);
        let mut prepend = headers::dkim_status(outcome, old);
        if let Some((name, value)) = practice_hdr {
            prepend.extend_from_slice(&headers::practice_header(name, value));
        }
        let refuse = match policy::decide(outcome, &letters) {
            Decision::Accept => None,
            Decision::Temporary(t) => Some((false, t)),
            Decision::Permanent(t) => Some((true, t)),
        };
        Ok(TaskResult { prepend, auth: headers::dkim_results(&report.results), remove: headers::forged(ctx.headers, &id), refuse })
    }
}

/// A value from the message, fit for one log line: control characters replaced, cut short.
fn log_safe(v: Option<&str>) -> String {
    match v {
        None => "-".into(),
        Some(v) => v.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect(),
    }
}
