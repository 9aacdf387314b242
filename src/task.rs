//! What a task is: one piece of work on a message (signing, verifying or sealing by one method).
//! `run` plans the tasks from the header block, feeds every task the body as it streams, then
//! finishes each, in order, with a [`Context`] that holds the typed results of the tasks before
//! it, and collects what each [`Finished`] with.
//!
//! The tasks live with their method (`dkim::task`, `arc::task`,
//! `domainkeys::task`, `spf::task`, ...); this module only says how `run` talks to them, so it
//! imports nothing above `message` and `dns`.

use crate::auth_results::{MethodOutput, MethodResult};
use crate::dns::{Resolver, TxtLookup};
use crate::envelope::Envelope;
pub(crate) use crate::error::Refusal;
use crate::error::Result;
use crate::message::Headers;

/// One piece of work on a message. Tasks are planned before the body is read, so their keys and
/// options are known.
pub trait Task: Send {
    /// Body bytes, in order, in arbitrary pieces (everything after the header block's blank line).
    fn body(&mut self, data: &[u8]);
    /// After the body and the envelope: what to add and what to refuse.
    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished>;
}

/// What a task sees when it finishes: the message, and the settings every task shares, as plain
/// data (the environment and the control files stay with `config`).
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub headers: &'a Headers,
    /// The header block as the queue program will get it: `headers` without the forged status
    /// fields run() removes. What a signature or seal made now must cover.
    pub queued: &'a Headers,
    pub envelope: &'a Envelope,
    /// Seconds since the epoch when the header block was read.
    pub now: u64,
    /// `VERBOSE`: one line per signature on descriptor 2.
    pub verbose: bool,
    /// Our authserv-id (`AUTHSERV_ID`, control/me or the host name), read when asked.
    pub authserv_id: &'a dyn Fn() -> String,
    /// A resolver for key and policy records; each verifying task makes its own.
    pub dns: &'a dyn Fn() -> Box<dyn TxtLookup>,
    /// A resolver for SPF, DMARC and ARC questions (always DNS, never `SELECTOR_DATA`).
    pub resolver: &'a dyn Fn() -> Box<dyn Resolver>,
    /// The typed results of the tasks that finished before this one, in task order: DMARC
    /// reads SPF's, DKIM's and DKIM2's, an ARC seal ARC's, and carries all of them in its AAR.
    pub earlier: &'a [MethodOutput],
}

/// What one task adds to the message, what it found, and whether it refuses the message.
#[derive(Debug, Default)]
pub struct Finished {
    /// Header fields to prepend, LF-ended and LF-folded, top first.
    pub prepend: Vec<u8>,
    /// What the task found, typed: for later tasks, the log, and the one
    /// `Authentication-Results` field run() renders from them at the end.
    pub outputs: Vec<MethodOutput>,
    pub refuse: Option<Refusal>,
}

impl Finished {
    /// What its outputs add to Authentication-Results.
    pub fn method_results(&self) -> Vec<MethodResult> {
        crate::auth_results::render(&self.outputs)
    }
}

/// How a method's letter in a `...VERIFY=letters` setting refuses: the uppercase letter given,
/// permanently (`Some(true)`, it wins when both cases are given); only the lowercase one,
/// temporarily (`Some(false)`); neither, not at all. `letter` is uppercase. The one rule of
/// DKIMVERIFY, DKVERIFY, SPFVERIFY, DMARCVERIFY and ARCVERIFY.
pub(crate) fn letter_refuses(letters: &str, letter: char) -> Option<bool> {
    if letters.contains(letter) {
        Some(true)
    } else if letters.contains(letter.to_ascii_lowercase()) {
        Some(false)
    } else {
        None
    }
}

/// Of two refusals the stricter wins: permanent over temporary, else the first.
pub(crate) fn stricter(a: Option<Refusal>, b: Option<Refusal>) -> Option<Refusal> {
    match (a, b) {
        (Some(a), Some(b)) if b.permanent && !a.permanent => Some(b),
        (Some(a), _) => Some(a),
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uppercase_letter_wins_over_lowercase() {
        assert_eq!(letter_refuses("Ff", 'F'), Some(true));
        assert_eq!(letter_refuses("f", 'F'), Some(false));
        assert_eq!(letter_refuses("Sx", 'F'), None);
        assert_eq!(letter_refuses("", 'F'), None);
    }

    #[test]
    fn permanent_refusal_wins_else_the_first() {
        let (t1, t2, p1, p2) =
            (Refusal::temporary("t1"), Refusal::temporary("t2"), Refusal::permanent("p1"), Refusal::permanent("p2"));
        assert_eq!(stricter(Some(t1.clone()), Some(t2.clone())), Some(t1.clone()));
        assert_eq!(stricter(Some(t1.clone()), Some(p1.clone())), Some(p1.clone()));
        assert_eq!(stricter(Some(p1.clone()), Some(p2)), Some(p1.clone()));
        assert_eq!(stricter(None, Some(t2.clone())), Some(t2));
        assert_eq!(stricter(Some(p1.clone()), None), Some(p1));
    }
}
