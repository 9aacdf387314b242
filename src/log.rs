//! `DKIMLOG`: one line per message on fd 2 (the smtpd log), in `key=value` form, e.g.
//!
//! `qmail-dkim: mode=verify dkim1.d=example.com dkim1.s=sel dkim1.a=rsa-sha256 dkim1.result=pass
//! dkim1.letter=A dkim.result=pass dkim.letter=A exit=0` (one line).
//!
//! What the verifying tasks found is noted from their typed results ([`note_output`]), what
//! the signers made by themselves ([`note`]); `run::main` writes the line at the end.
//! d= and s= come from the message, so every value is written bare only when it is made of
//! harmless characters, else quoted with `"`, `\`, `=` and every byte outside printable ASCII
//! escaped: no value can end the line or look like another `key=` pair.

use crate::auth_results::{shows, MethodOutput};
use crate::error::Refusal;
use std::cell::RefCell;
use std::fmt::Write as _;

/// Notes kept per message (8 verified DKIM signatures, 4 made, one DomainKeys, the results).
pub(crate) const MAX_NOTES: usize = 32;
/// Bytes of a written value (escapes included); longer values end in `..."`.
pub(crate) const MAX_VALUE: usize = 120;
/// Notes stop once the line is this long (then `more=N` says how many were left out), so the
/// whole line stays under PIPE_BUF (4096) and reaches a shared log pipe in one piece.
pub(crate) const NOTES_BUDGET: usize = 3072;

/// DKIM or DomainKeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Dkim,
    Dk,
}

impl Method {
    fn key(self) -> &'static str {
        match self {
            Method::Dkim => "dkim",
            Method::Dk => "dk",
        }
    }
}

/// What a task did, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// One signature made or checked. `result` is `signed` or the RFC 8601 word; `letter` the
    /// status letter of a checked one.
    Sig {
        method: Method,
        d: Option<String>,
        s: Option<String>,
        a: Option<String>,
        result: &'static str,
        letter: Option<char>,
    },
    /// The result that decides for the message (after the practice step).
    Result { method: Method, result: &'static str, letter: char },
    /// A queue-time check (`spf`, `dmarc`, `arc`, `dkim2chain`): its RFC 8601 word and the identity checked
    /// (the envelope sender or HELO name, the From domain).
    Check { method: &'static str, result: &'static str, id: Option<String> },
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The queue program's exit code was mirrored (or nothing went wrong).
    Done,
    Refused(Refusal),
    Failed(String),
}

thread_local! {
    // Per thread: tasks finish on run()'s thread, and tests running side by side stay apart.
    static NOTES: RefCell<Vec<Note>> = const { RefCell::new(Vec::new()) };
}

/// Records what a task did (the first [`MAX_NOTES`] notes of a run are kept).
pub(crate) fn note(n: Note) {
    NOTES.with_borrow_mut(|v| {
        if v.len() < MAX_NOTES {
            v.push(n);
        }
    });
}

/// Records what a verifying task found: each signature, the message's DKIM result, and the
/// identity a queue-time check names in Authentication-Results.
pub(crate) fn note_output(o: &MethodOutput) {
    let shown = |name: &str, v: Option<&str>| v.filter(|v| shows(name, v)).map(str::to_string);
    match o {
        MethodOutput::Dkim { signatures, result, letter } => {
            for s in signatures {
                note(Note::Sig {
                    method: Method::Dkim,
                    d: s.domain.clone(),
                    s: s.selector.clone(),
                    a: s.algorithm.clone(),
                    result: s.result.as_str(),
                    letter: Some(s.letter),
                });
            }
            note(Note::Result { method: Method::Dkim, result: result.as_str(), letter: *letter });
        }
        MethodOutput::DomainKeys(d) => note(Note::Sig {
            method: Method::Dk,
            d: d.domain.clone(),
            s: d.selector.clone(),
            a: None,
            result: d.result.as_str(),
            letter: Some(d.letter),
        }),
        MethodOutput::Spf(s) => note(Note::Check {
            method: "spf",
            result: s.result.as_str(),
            id: shown(s.scope.property(), s.identity.as_deref()),
        }),
        MethodOutput::Dmarc(d) => {
            note(Note::Check { method: "dmarc", result: d.result.as_str(), id: shown("header.from", Some(&d.domain)) })
        }
        // Not `dkim2.`: that is the second DKIM signature's prefix.
        MethodOutput::Dkim2(d) => {
            note(Note::Check { method: "dkim2chain", result: d.result.as_str(), id: shown("header.d", d.signer()) })
        }
        MethodOutput::Arc(a) => note(Note::Check { method: "arc", result: a.result.as_str(), id: None }),
    }
}

/// Takes the notes recorded so far on this thread.
pub(crate) fn take() -> Vec<Note> {
    NOTES.with_borrow_mut(std::mem::take)
}

/// `DKIMLOG` set to something other than empty or `0`.
pub(crate) fn enabled(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some(v) if !v.is_empty() && v != "0")
}

/// The log line, newline-terminated. `mode` is sign, verify or pass; `dk` the DomainKeys mode
/// when DomainKeys is on.
pub(crate) fn line(mode: &str, dk: Option<&str>, notes: &[Note], code: i32, end: &End) -> String {
    let mut l = String::from("qmail-dkim:");
    pair(&mut l, "mode", mode);
    if let Some(dk) = dk {
        pair(&mut l, "dkmode", dk);
    }
    let mut n = [0usize; 2];
    for (i, note) in notes.iter().enumerate() {
        if l.len() > NOTES_BUDGET {
            pair(&mut l, "more", &(notes.len() - i).to_string());
            break;
        }
        match note {
            Note::Sig { method, d, s, a, result, letter } => {
                let i = &mut n[*method as usize];
                *i += 1;
                let p = format!("{}{}.", method.key(), i);
                for (k, v) in [("d", d), ("s", s), ("a", a)] {
                    if let Some(v) = v {
                        pair(&mut l, &format!("{p}{k}"), v);
                    }
                }
                pair(&mut l, &format!("{p}result"), result);
                if let Some(c) = letter {
                    pair(&mut l, &format!("{p}letter"), c.encode_utf8(&mut [0; 4]));
                }
            }
            Note::Result { method, result, letter } => {
                pair(&mut l, &format!("{}.result", method.key()), result);
                pair(&mut l, &format!("{}.letter", method.key()), letter.encode_utf8(&mut [0; 4]));
            }
            Note::Check { method, result, id } => {
                if let Some(id) = id {
                    pair(&mut l, &format!("{method}.id"), id);
                }
                pair(&mut l, &format!("{method}.result"), result);
            }
        }
    }
    match end {
        End::Done => {}
        End::Refused(Refusal { permanent, text }) => {
            pair(&mut l, "refused", if *permanent { "permanent" } else { "temporary" });
            pair(&mut l, "reason", text.strip_prefix("qmail-dkim: ").unwrap_or(text));
        }
        End::Failed(e) => pair(&mut l, "error", e),
    }
    pair(&mut l, "exit", &code.to_string());
    l.push('\n');
    l
}

fn pair(l: &mut String, key: &str, value: &str) {
    l.push(' ');
    l.push_str(key);
    l.push('=');
    value_into(l, value);
}

/// Bare when every character is harmless; else quoted and escaped (module doc).
fn value_into(l: &mut String, v: &str) {
    let bare = |b: u8| b.is_ascii_alphanumeric() || b".-_+@/:,;#%<>()[]!?*~^'".contains(&b);
    if !v.is_empty() && v.len() <= MAX_VALUE && v.bytes().all(bare) {
        l.push_str(v);
        return;
    }
    let start = l.len();
    l.push('"');
    for b in v.bytes() {
        if l.len() - start > MAX_VALUE {
            l.push_str("...");
            break;
        }
        match b {
            b'"' | b'\\' => {
                l.push('\\');
                l.push(b as char);
            }
            b'=' => l.push_str("\\x3d"),
            b' '..=b'~' => l.push(b as char),
            _ => {
                let _ = write!(l, "\\x{b:02x}");
            }
        }
    }
    l.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(method: Method, d: &str, result: &'static str, letter: Option<char>) -> Note {
        Note::Sig { method, d: Some(d.into()), s: Some("sel".into()), a: Some("rsa-sha256".into()), result, letter }
    }

    #[test]
    fn queue_time_checks() {
        let notes = [
            Note::Check { method: "spf", result: "fail", id: Some("a@example.com".into()) },
            Note::Check { method: "dmarc", result: "fail", id: Some("exa=mple.com".into()) },
            Note::Check { method: "arc", result: "none", id: None },
        ];
        assert_eq!(
            line("verify", None, &notes, 31, &End::Done),
            "qmail-dkim: mode=verify spf.id=a@example.com spf.result=fail dmarc.id=\"exa\\x3dmple.com\" \
             dmarc.result=fail arc.result=none exit=31\n"
        );
    }

    /// One DKIM signature of example.com, selector sel, with this result.
    fn signature(result: crate::auth_results::DkimResult) -> crate::auth_results::DkimOutput {
        crate::auth_results::DkimOutput {
            result,
            letter: 'A',
            reason: None,
            domain: Some("example.com".into()),
            identity: None,
            selector: Some("sel".into()),
            algorithm: Some("rsa-sha256".into()),
            b_prefix: None,
        }
    }

    /// The notes of the verifying tasks come from their typed results: each DKIM signature and
    /// the message's result; a check's identity only as Authentication-Results shows it.
    #[test]
    fn typed_results_make_the_notes() {
        use crate::auth_results::*;
        let _ = take();
        let sig = signature(DkimResult::Pass);
        let spf = |identity: &str| SpfOutput {
            result: SpfResult::Fail,
            domain: "example.com".into(),
            reason: String::new(),
            explanation: None,
            scope: SpfScope::MailFrom,
            identity: Some(identity.into()),
        };
        let dkim2 = |result| Dkim2Output { result, reason: String::new(), chain: vec![(1, "a.example".into())] };
        for o in [
            MethodOutput::Spf(spf("a@example.com")),
            MethodOutput::Spf(spf("j\u{f6}e@example.com")),
            MethodOutput::Dkim { signatures: vec![sig], result: DkimResult::Pass, letter: 'A' },
            MethodOutput::Dkim2(dkim2(Dkim2Result::Pass)),
            MethodOutput::Dkim2(dkim2(Dkim2Result::Fail)),
            MethodOutput::Arc(ArcOutput { result: ArcResult::None, reason: String::new(), instances: 0 }),
        ] {
            note_output(&o);
        }
        assert_eq!(
            line("verify", None, &take(), 0, &End::Done),
            "qmail-dkim: mode=verify spf.id=a@example.com spf.result=fail spf.result=fail dkim1.d=example.com \
             dkim1.s=sel dkim1.a=rsa-sha256 dkim1.result=pass dkim1.letter=A dkim.result=pass dkim.letter=A \
             dkim2chain.id=a.example dkim2chain.result=pass dkim2chain.result=fail arc.result=none exit=0\n"
        );
    }

    /// Two DKIM signatures (`dkim1.*`, `dkim2.*`) and the DKIM2 check: each key once.
    #[test]
    fn second_dkim_signature_and_dkim2_check_keys_do_not_clash() {
        use crate::auth_results::*;
        let _ = take();
        let sig = signature;
        note_output(&MethodOutput::Dkim {
            signatures: vec![sig(DkimResult::Pass), sig(DkimResult::Fail)],
            result: DkimResult::Pass,
            letter: 'A',
        });
        note_output(&MethodOutput::Dkim2(Dkim2Output {
            result: Dkim2Result::Pass,
            reason: String::new(),
            chain: vec![(1, "a.example".into())],
        }));
        let l = line("verify", None, &take(), 0, &End::Done);
        let keys: Vec<&str> = l.trim_end().split(' ').skip(1).filter_map(|p| p.split_once('=')).map(|p| p.0).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "{l}");
        assert!(l.contains(" dkim2.result=fail ") && l.contains(" dkim2chain.result=pass "), "{l}");
    }

    #[test]
    fn verified_message() {
        let notes = [
            sig(Method::Dkim, "example.com", "pass", Some('A')),
            sig(Method::Dkim, "list.example", "fail", Some('U')),
            Note::Result { method: Method::Dkim, result: "pass", letter: 'A' },
        ];
        assert_eq!(
            line("verify", None, &notes, 0, &End::Done),
            "qmail-dkim: mode=verify dkim1.d=example.com dkim1.s=sel dkim1.a=rsa-sha256 dkim1.result=pass dkim1.letter=A \
             dkim2.d=list.example dkim2.s=sel dkim2.a=rsa-sha256 dkim2.result=fail dkim2.letter=U dkim.result=pass dkim.letter=A exit=0\n"
        );
    }

    #[test]
    fn signed_and_refused() {
        let dk = Note::Sig {
            method: Method::Dk,
            d: Some("example.com".into()),
            s: None,
            a: Some("rsa-sha1".into()),
            result: "signed",
            letter: None,
        };
        assert_eq!(
            line("sign", Some("sign"), &[sig(Method::Dkim, "example.com", "signed", None), dk], 0, &End::Done),
            "qmail-dkim: mode=sign dkmode=sign dkim1.d=example.com dkim1.s=sel dkim1.a=rsa-sha256 dkim1.result=signed \
             dk1.d=example.com dk1.a=rsa-sha1 dk1.result=signed exit=0\n"
        );
        let end = End::Refused(Refusal::permanent("qmail-dkim: no signatures (#5.7.5)"));
        assert_eq!(
            line("verify", None, &[Note::Result { method: Method::Dkim, result: "none", letter: 'S' }], 31, &end),
            "qmail-dkim: mode=verify dkim.result=none dkim.letter=S refused=permanent reason=\"no signatures (#5.7.5)\" exit=31\n"
        );
        assert_eq!(
            line("pass", None, &[], 55, &End::Failed("x y".into())),
            "qmail-dkim: mode=pass error=\"x y\" exit=55\n"
        );
    }

    #[test]
    fn hostile_values_stay_inside_their_quotes() {
        let d = "evil.example\r\nqmail-dkim: mode=verify dkim1.result=pass \"x\\ \u{2028}é\0";
        let l = line("verify", None, &[sig(Method::Dkim, d, "fail", Some('I'))], 0, &End::Done);
        assert_eq!(l.matches('\n').count(), 1);
        assert!(l.ends_with(" exit=0\n"));
        assert_eq!(l.matches("dkim1.result=").count(), 1, "{l}");
        assert!(l.contains(
            r#"dkim1.d="evil.example\x0d\x0aqmail-dkim: mode\x3dverify dkim1.result\x3dpass \"x\\ \xe2\x80\xa8\xc3\xa9\x00""#
        ), "{l}");
        // Every pair is key=value with a bare or a quoted value: split on spaces outside quotes.
        let long = "a".repeat(10_000);
        let l = line("verify", None, &[sig(Method::Dkim, &long, "fail", None)], 0, &End::Done);
        assert!(l.len() < 300 && l.contains(&format!("\"{}...\"", "a".repeat(MAX_VALUE))), "{l}");
        // The worst case stays under PIPE_BUF: the most notes, every value escaped and long.
        let worst = "\n".repeat(1000);
        let notes: Vec<Note> = (0..MAX_NOTES).map(|_| sig(Method::Dkim, &worst, "permerror", Some('H'))).collect();
        let end = End::Refused(Refusal::permanent(worst.clone()));
        let l = line("verify", Some("verify"), &notes, 31, &end);
        assert!(l.len() < 4096 && l.contains(" more=") && l.ends_with(" exit=31\n"), "{}", l.len());
        assert!(line("pass", None, &[sig(Method::Dkim, "", "fail", None)], 0, &End::Done).contains("dkim1.d=\"\""));
    }

    #[test]
    fn notes_are_bounded() {
        let _ = take();
        for _ in 0..MAX_NOTES + 5 {
            note(Note::Result { method: Method::Dk, result: "pass", letter: 'A' });
        }
        assert_eq!(take().len(), MAX_NOTES);
        assert!(take().is_empty());
    }

    #[test]
    fn switch() {
        assert!(enabled(Some("1")) && enabled(Some("yes")));
        assert!(!enabled(None) && !enabled(Some("")) && !enabled(Some("0")));
    }
}
