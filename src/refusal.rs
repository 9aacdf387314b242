//! Refusals: how the reason reaches the SMTP client, and the log (qmail-dkim(8), EXIT CODES).
//!
//! The convention is `CUSTOM_ERRORS` when set; otherwise it is chosen so that a permanent
//! refusal stays permanent on every qmail: notqmail's when fd 6 is a pipe (notqmail's
//! qmail-smtpd opens one for every queue program), indimail's when `ERROR_FD` is set, else
//! plain exit codes. Whenever the reason does not itself go to fd 2, one line naming the
//! refusal goes there, because fd 2 is the log of qmail-smtpd under tcpserver.

use crate::config::settings::ErrorSettings;
use crate::error::{Error, Refusal};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

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
    pub fn from_settings(e: &ErrorSettings) -> CustomErrors {
        // Probed once, at start-up (crate::run): fd 6 may later be one of our own pipes.
        static FD6_IS_PIPE: OnceLock<bool> = OnceLock::new();
        CustomErrors::choose(e, || *FD6_IS_PIPE.get_or_init(|| is_pipe(NOTQMAIL_FD)))
    }

    /// [`CustomErrors::from_settings`] with the fd 6 probe given, so the choice can be tested.
    /// An unknown or empty `CUSTOM_ERRORS` counts as unset (`auto` names that on purpose).
    /// `ERROR_FD=-1` is indimail's "no error pipe": exit 88 without text would be answered
    /// `Zqq temporary problem`, so a permanent refusal would turn temporary; it means `none`.
    pub fn choose(e: &ErrorSettings, fd6_is_pipe: impl FnOnce() -> bool) -> CustomErrors {
        let error_fd = e.error_fd.as_deref().map(str::trim);
        let indimail = if error_fd == Some("-1") { CustomErrors::None } else { CustomErrors::Indimail };
        match e.custom_errors.as_deref().map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("indimail") => return indimail,
            Some("notqmail") => return CustomErrors::Notqmail,
            Some("none") | Some("netqmail") => return CustomErrors::None,
            _ => {}
        }
        // indimail's qmail-smtpd with ERROR_FD=6 made fd 6 its own error pipe.
        if error_fd != Some("6") && fd6_is_pipe() {
            CustomErrors::Notqmail
        } else if error_fd.is_some() {
            indimail
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

/// The descriptor indimail's qmail-smtpd reads the text from: `ERROR_FD`, else 2.
fn reply_fd(e: &ErrorSettings) -> i32 {
    e.error_fd.as_deref().and_then(|n| n.trim().parse::<i32>().ok()).filter(|&n| n >= 0).unwrap_or(2)
}

/// indimail's reply pipe, moved off fd 2 by [`set_aside_reply_pipe`] (-1: not moved).
static REPLY_PIPE: AtomicI32 = AtomicI32::new(-1);

/// When fd 2 is indimail's reply pipe, everything written there becomes the SMTP reply, so it
/// must carry the refusal text alone: the pipe moves to a descriptor of its own, kept for the
/// refusal ([`refuse`]) and for the queue program's fd 2 (its own refusals go there), and our
/// fd 2 becomes /dev/null, so diagnostics, `VERBOSE` and the `DKIMLOG` line go nowhere.
/// Called once, before anything is written.
pub fn set_aside_reply_pipe(e: &ErrorSettings) {
    if CustomErrors::from_settings(e) != CustomErrors::Indimail || reply_fd(e) != 2 {
        return;
    }
    // SAFETY: descriptor calls on numbers; failures leave fd 2 as it was.
    unsafe {
        let kept = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 10);
        if kept < 0 {
            return;
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null < 0 || libc::dup2(null, 2) < 0 {
            libc::close(kept);
            if null >= 0 {
                libc::close(null);
            }
            return;
        }
        libc::close(null);
        REPLY_PIPE.store(kept, Ordering::SeqCst);
    }
}

/// The queue program's fd 2: indimail's reply pipe when [`set_aside_reply_pipe`] moved it,
/// else `None` (it inherits ours).
pub fn queue_stderr() -> Option<OwnedFd> {
    let fd = REPLY_PIPE.load(Ordering::SeqCst);
    if fd < 0 {
        return None;
    }
    // SAFETY: REPLY_PIPE is a descriptor we own and never close.
    unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned().ok()
}

/// What a refusal writes where, and the exit code: the pure part of [`refuse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub code: i32,
    /// The `D`/`Z` text for the caller and the descriptor it goes to (no newline: indimail and
    /// notqmail put it verbatim into the SMTP reply).
    pub text: Option<(i32, String)>,
    /// The newline-terminated line for fd 2, when the text does not go there itself.
    pub log: Option<String>,
}

impl Disposition {
    /// fd 2 is the caller's reply channel (indimail's error pipe), not a log: anything else
    /// written there would end up in the SMTP reply.
    pub fn replies_on_fd2(&self) -> bool {
        matches!(self.text, Some((2, _)))
    }
}

/// Where a refusal goes and its exit code; `text` is the reason without the D/Z letter.
pub fn disposition(conv: CustomErrors, e: &ErrorSettings, permanent: bool, text: &str) -> Disposition {
    let letter = if permanent { 'D' } else { 'Z' };
    let clean = one_line(text);
    let (code, text) = match conv {
        CustomErrors::Indimail if e.error_fd.as_deref().map(str::trim) == Some("-1") => {
            return disposition(CustomErrors::None, e, permanent, text);
        }
        CustomErrors::Indimail => (88, Some((reply_fd(e), cut(format!("{letter}{clean}"), INDIMAIL_MAX)))),
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
    Disposition { code, text, log }
}

/// Reports a refusal in this run's convention: writes the text and the log line, returns the
/// disposition (its `code` is the exit code).
pub fn refuse(e: &ErrorSettings, permanent: bool, text: &str) -> Disposition {
    let p = disposition(CustomErrors::from_settings(e), e, permanent, text);
    if let Some((fd, t)) = &p.text {
        let moved = REPLY_PIPE.load(Ordering::SeqCst);
        write_fd(if *fd == 2 && moved >= 0 { moved } else { *fd }, t.as_bytes());
    }
    if let Some(l) = &p.log {
        write_fd(2, l.as_bytes());
    }
    p
}

/// [`refuse`], returning only the exit code.
pub fn report_refusal(e: &ErrorSettings, permanent: bool, text: &str) -> i32 {
    refuse(e, permanent, text).code
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

    fn env(p: &[(&str, &str)]) -> ErrorSettings {
        crate::config::Settings::from_pairs(p).errors
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
        let p = disposition(CustomErrors::None, &env(&[]), true, t);
        assert_eq!(
            p,
            Disposition {
                code: 31,
                text: None,
                log: Some("qmail-dkim: refused permanently (exit 31): no signatures (#5.7.5)\n".into())
            }
        );
        assert_eq!(disposition(CustomErrors::None, &env(&[]), false, t).code, 71);
        let p = disposition(CustomErrors::Notqmail, &env(&[]), false, t);
        assert_eq!((p.code, p.text), (82, Some((6, format!("Z{t}")))));
        assert_eq!(p.log.as_deref(), Some("qmail-dkim: refused temporarily (exit 82): no signatures (#5.7.5)\n"));
        // indimail on fd 2: the text is the whole of what fd 2 gets, without a newline.
        let p = disposition(CustomErrors::Indimail, &env(&[]), true, t);
        assert_eq!((p.code, &p.text, &p.log), (88, &Some((2, format!("D{t}"))), &None));
        assert!(p.replies_on_fd2());
        let p = disposition(CustomErrors::Indimail, &env(&[("ERROR_FD", "5")]), true, t);
        assert_eq!((p.text, p.log.is_some()), (Some((5, format!("D{t}"))), true));
        // indimail's "no error pipe" is the none convention: 31 stays permanent.
        let p = disposition(CustomErrors::Indimail, &env(&[("ERROR_FD", "-1")]), true, t);
        assert_eq!((p.code, p.text, p.log.is_some()), (31, None, true));
        for e in [env(&[("ERROR_FD", "-1")]), env(&[("ERROR_FD", " -1 "), ("CUSTOM_ERRORS", "indimail")])] {
            assert_eq!(CustomErrors::choose(&e, || false), CustomErrors::None);
        }
    }

    #[test]
    fn text_is_one_line_and_cut_on_a_character() {
        let p = disposition(CustomErrors::Notqmail, &env(&[]), true, &format!("a\r\nb\0{}", "é".repeat(300)));
        let (_, t) = p.text.unwrap();
        assert!(t.starts_with("Da  b?é"));
        assert!(t.len() <= 255 && t.len() >= 254);
        assert!(!p.log.unwrap().trim_end_matches('\n').contains(['\n', '\r', '\0']));
    }
}
