//! Refusals: how the reason reaches the SMTP client, and the log (shared/SPEC.md §2).
//!
//! The convention is `CUSTOM_ERRORS` when set; otherwise it is chosen so that a permanent
//! refusal stays permanent on every qmail: notqmail's when fd 6 is a pipe (notqmail's
//! qmail-smtpd opens one for every queue program), indimail's when `ERROR_FD` is set, else
//! plain exit codes. Whenever the reason does not itself go to fd 2, one line naming the
//! refusal goes there, because fd 2 is the log of qmail-smtpd under tcpserver.

use crate::config::Env;
use crate::error::{Error, Refusal};
use std::io;

/// notqmail's qmail-queue(8): "custom error string on descriptor 6".
pub const NOTQMAIL_FD: i32 = 6;
/// notqmail reads at most 255 bytes of the text, indimail 1023.
const NOTQMAIL_MAX: usize = 255;
const INDIMAIL_MAX: usize = 1023;

/// How refusals are reported (`CUSTOM_ERRORS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomErrors {
    /// Text on fd 2 (or `ERROR_FD`), exit 88.
    Indimail,
    /// Text on fd 6, exit 82.
    Notqmail,
    /// Exit 31 (permanent) or 71 (temporary); no text for the client.
    None,
}

impl CustomErrors {
    /// The convention for this run; probes fd 6 (one fstat) only when `CUSTOM_ERRORS` does not
    /// name one.
    pub fn from_env(env: &Env) -> CustomErrors {
        CustomErrors::choose(env, || is_pipe(NOTQMAIL_FD))
    }

    /// [`CustomErrors::from_env`] with the fd 6 probe given, so the choice can be tested.
    /// An unknown or empty `CUSTOM_ERRORS` counts as unset (`auto` names that on purpose).
    pub fn choose(env: &Env, fd6_is_pipe: impl FnOnce() -> bool) -> CustomErrors {
        match env.get("CUSTOM_ERRORS").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("indimail") => return CustomErrors::Indimail,
            Some("notqmail") => return CustomErrors::Notqmail,
            Some("none") | Some("netqmail") => return CustomErrors::None,
            _ => {}
        }
        let error_fd = env.get("ERROR_FD").map(str::trim);
        // indimail's qmail-smtpd with ERROR_FD=6 made fd 6 its own error pipe.
        if error_fd != Some("6") && fd6_is_pipe() {
            CustomErrors::Notqmail
        } else if error_fd.is_some() {
            CustomErrors::Indimail
        } else {
            CustomErrors::None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CustomErrors::Indimail => "indimail",
            CustomErrors::Notqmail => "notqmail",
            CustomErrors::None => "none",
        }
    }
}

/// Whether `fd` is open and is a pipe (a FIFO).
pub fn is_pipe(fd: i32) -> bool {
    // SAFETY: fstat fills a stat buffer we own; a closed descriptor just fails with EBADF.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO
    }
}

/// What a refusal writes where, and the exit code: the pure part of [`refuse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub code: i32,
    /// The `D`/`Z` text for the caller and the descriptor it goes to (no newline: indimail and
    /// notqmail put it verbatim into the SMTP reply).
    pub text: Option<(i32, String)>,
    /// The newline-terminated line for fd 2, when the text does not go there itself.
    pub log: Option<String>,
}

impl Plan {
    /// fd 2 is the caller's reply channel (indimail's error pipe), not a log: anything else
    /// written there would end up in the SMTP reply.
    pub fn replies_on_fd2(&self) -> bool {
        matches!(self.text, Some((2, _)))
    }
}

/// Plans a refusal; `text` is the reason without the D/Z letter.
pub fn plan(conv: CustomErrors, env: &Env, permanent: bool, text: &str) -> Plan {
    let letter = if permanent { 'D' } else { 'Z' };
    let clean = one_line(text);
    let (code, text) = match conv {
        CustomErrors::Indimail => {
            let fd = match env.get("ERROR_FD").map(str::trim) {
                Some("-1") => None,
                Some(n) => n.parse::<i32>().ok().filter(|&n| n >= 0).or(Some(2)),
                None => Some(2),
            };
            (88, fd.map(|fd| (fd, cut(format!("{letter}{clean}"), INDIMAIL_MAX))))
        }
        CustomErrors::Notqmail => (82, Some((NOTQMAIL_FD, cut(format!("{letter}{clean}"), NOTQMAIL_MAX)))),
        CustomErrors::None => (Error::Refused(Refusal { permanent, text: String::new() }).exit_code(), None),
    };
    let log = match &text {
        Some((2, _)) => None,
        _ => {
            let kind = if permanent { "permanently" } else { "temporarily" };
            let reason = clean.strip_prefix("qmail-dkim: ").unwrap_or(&clean);
            Some(format!("qmail-dkim: refused {kind} (exit {code}): {reason}\n"))
        }
    };
    Plan { code, text, log }
}

/// Reports a refusal in this run's convention: writes the text and the log line, returns the
/// plan (its `code` is the exit code).
pub fn refuse(env: &Env, permanent: bool, text: &str) -> Plan {
    let p = plan(CustomErrors::from_env(env), env, permanent, text);
    if let Some((fd, t)) = &p.text {
        write_fd(*fd, t.as_bytes());
    }
    if let Some(l) = &p.log {
        write_fd(2, l.as_bytes());
    }
    p
}

/// [`refuse`], returning only the exit code.
pub fn report_refusal(env: &Env, permanent: bool, text: &str) -> i32 {
    refuse(env, permanent, text).code
}

/// The reply text on one line: CR and LF become spaces, other control characters `?`.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\r' | '\n' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// At most `max` bytes, cut on a character boundary.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn write_fd(fd: i32, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        // SAFETY: write(2) on a descriptor number; a bad one just fails with EBADF.
        let n = unsafe { libc::write(fd, data[off..].as_ptr().cast(), data.len() - off) };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        off += n as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(p: &[(&str, &str)]) -> Env {
        Env::from_pairs(p)
    }

    #[test]
    fn default_is_safe_on_every_qmail() {
        let probed = std::cell::Cell::new(false);
        let probe = |r: bool| {
            let probed = &probed;
            move || {
                probed.set(true);
                r
            }
        };
        assert_eq!(CustomErrors::choose(&env(&[]), probe(true)), CustomErrors::Notqmail);
        assert_eq!(CustomErrors::choose(&env(&[]), probe(false)), CustomErrors::None);
        assert_eq!(CustomErrors::choose(&env(&[("ERROR_FD", "5")]), probe(false)), CustomErrors::Indimail);
        assert_eq!(CustomErrors::choose(&env(&[("ERROR_FD", "5")]), probe(true)), CustomErrors::Notqmail);
        assert_eq!(CustomErrors::choose(&env(&[("ERROR_FD", "6")]), probe(true)), CustomErrors::Indimail);
        assert_eq!(CustomErrors::choose(&env(&[("CUSTOM_ERRORS", "auto")]), probe(false)), CustomErrors::None);
        assert_eq!(CustomErrors::choose(&env(&[("CUSTOM_ERRORS", "")]), probe(true)), CustomErrors::Notqmail);
        // An explicit convention wins, and fd 6 is not even looked at.
        probed.set(false);
        for (v, want) in [
            ("indimail", CustomErrors::Indimail),
            ("NotQmail", CustomErrors::Notqmail),
            ("none", CustomErrors::None),
            ("netqmail", CustomErrors::None),
        ] {
            assert_eq!(CustomErrors::choose(&env(&[("CUSTOM_ERRORS", v), ("ERROR_FD", "5")]), probe(true)), want);
        }
        assert!(!probed.get());
    }

    #[test]
    fn where_text_and_log_go() {
        let t = "qmail-dkim: no signatures (#5.7.5)";
        let p = plan(CustomErrors::None, &env(&[]), true, t);
        assert_eq!(
            p,
            Plan {
                code: 31,
                text: None,
                log: Some("qmail-dkim: refused permanently (exit 31): no signatures (#5.7.5)\n".into())
            }
        );
        assert_eq!(plan(CustomErrors::None, &env(&[]), false, t).code, 71);
        let p = plan(CustomErrors::Notqmail, &env(&[]), false, t);
        assert_eq!((p.code, p.text), (82, Some((6, format!("Z{t}")))));
        assert_eq!(p.log.as_deref(), Some("qmail-dkim: refused temporarily (exit 82): no signatures (#5.7.5)\n"));
        // indimail on fd 2: the text is the whole of what fd 2 gets, without a newline.
        let p = plan(CustomErrors::Indimail, &env(&[]), true, t);
        assert_eq!((p.code, &p.text, &p.log), (88, &Some((2, format!("D{t}"))), &None));
        assert!(p.replies_on_fd2());
        let p = plan(CustomErrors::Indimail, &env(&[("ERROR_FD", "5")]), true, t);
        assert_eq!((p.text, p.log.is_some()), (Some((5, format!("D{t}"))), true));
        let p = plan(CustomErrors::Indimail, &env(&[("ERROR_FD", "-1")]), true, t);
        assert_eq!((p.text, p.log.is_some()), (None, true));
    }

    #[test]
    fn text_is_one_line_and_cut_on_a_character() {
        let p = plan(CustomErrors::Notqmail, &env(&[]), true, &format!("a\r\nb\0{}", "é".repeat(300)));
        let (_, t) = p.text.unwrap();
        assert!(t.starts_with("Da  b?é"));
        assert!(t.len() <= 255 && t.len() >= 254);
        assert!(!p.log.unwrap().trim_end_matches('\n').contains(['\n', '\r', '\0']));
    }
}
