//! qmail-dkim-remote: signs a message as it leaves the queue (docs/signing-at-exit.md). It stands
//! in for qmail-remote: qmail-rspawn starts it as `host sender recipient...` with the message on
//! fd 0, and it execs the real qmail-remote with the same arguments, environment and cwd and the
//! signed message on fd 0, so the result protocol and the exit status are qmail-remote's own.
//! Its own failures become a temporary message report (`Z`), so qmail-send retries the delivery.

use crate::config::Settings;
use crate::dkim::tags::TagList;
use crate::dkim::task::Signer;
use crate::dkim::verify::{Options as VerifyOptions, Verifier};
use crate::dns::{TxtAnswer, TxtLookup};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::message::{author_domain, Headers};
use crate::plan::{self, Mode, Plan, Stage};
use crate::run::{self, Head};
use crate::task::{Context, Finished, Task};
use std::convert::Infallible;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;

/// Where the real qmail-remote is when `DKREMOTE` does not say.
pub(crate) const DEFAULT_REMOTE: &str = "/var/qmail/bin/qmail-remote.orig";

const USAGE: &str = "usage: qmail-dkim-remote host sender recipient ...

Installed in place of qmail-remote: signs the message on fd 0 with DKIM and runs
the real qmail-remote ($DKREMOTE, default /var/qmail/bin/qmail-remote.orig) with
the same arguments. See qmail-dkim-remote(8) and docs/signing-at-exit.md.
";

/// Entry point of the qmail-dkim-remote binary: returns the exit code (0 after a failure
/// report, as qmail-remote; on success the real qmail-remote has replaced us).
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() == 2 {
        match args[1].as_bytes() {
            b"--version" | b"-V" => {
                println!("qmail-dkim-remote {}", env!("CARGO_PKG_VERSION"));
                return 0;
            }
            b"--help" | b"-h" => {
                print!("{USAGE}");
                return 0;
            }
            _ => {}
        }
    }
    if args.len() < 4 {
        // qmail-remote itself: "usage" is a temporary failure too (qmail-rspawn always gives
        // host, sender and at least one recipient).
        eprint!("{USAGE}");
        report_temporary("usage: qmail-dkim-remote host sender recipient ...");
        return 0;
    }
    let settings = Settings::from_process();
    let plan = Plan::new(&settings, Stage::Exit);
    let text = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&settings, &plan, &args))) {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => e.to_string(),
        Err(_) => "internal error (panic)".to_string(),
    };
    eprintln!("qmail-dkim-remote: {text}");
    report_temporary(&text);
    0
}

/// The message report qmail-remote writes for a temporary failure before any recipient
/// report: `Z`, the text, a newline, NUL. qmail-rspawn reads it as "deferral" for every
/// recipient, so qmail-send keeps the message and retries.
pub(crate) fn temporary_report(text: &str) -> Vec<u8> {
    // A NUL would end the report early; a newline would end qmail-send's log line.
    let text: String = text.chars().map(|c| if c == '\0' || c == '\n' { ' ' } else { c }).collect();
    format!("Zqmail-dkim-remote: {text} (#4.3.0)\n\0").into_bytes()
}

fn report_temporary(text: &str) {
    let mut out = ManuallyDrop::new(
        // SAFETY: fd 1 is qmail-rspawn's result pipe; ManuallyDrop never closes it.
        unsafe { File::from_raw_fd(1) },
    );
    let _ = out.write_all(&temporary_report(text));
}

/// The signing domain: the envelope sender's (`from_field`, `DKIMSIGN_DOMAIN=from`: the From:
/// field's, for DMARC alignment, falling back to the sender's); a bounce (empty sender) takes
/// control/bouncehost, then control/me. A sender without `@` gives an empty domain, which has
/// no key ([`crate::config::KeyChoice`]): the message leaves unsigned.
pub(crate) fn signing_domain(from_field: bool, s: &Settings, sender: &[u8], headers: &Headers) -> Result<String> {
    if from_field {
        if let Ok(d) = author_domain(headers) {
            return Ok(d);
        }
    }
    if sender.is_empty() {
        let file = match s.bouncehost()? {
            Some(d) => Some(d),
            None => s.me()?,
        };
        return file.map(|d| d.trim_end_matches('.').to_ascii_lowercase()).ok_or(Error::NoDomain);
    }
    let domain = match memchr::memrchr(b'@', sender) {
        Some(at) => &sender[at + 1..],
        None => &[][..],
    };
    Ok(String::from_utf8_lossy(domain).trim_end_matches('.').to_ascii_lowercase())
}

/// Whether the message carries a DKIM-Signature with our `d=` and `s=`: only then is it worth
/// checking whether we made it ([`SignUnlessOurs`]).
fn names_us(headers: &Headers, domain: &str, selector: &str) -> bool {
    headers.named("DKIM-Signature").any(|f| {
        TagList::parse(headers.value(f)).is_ok_and(|t| {
            let d = t.get("d").map(crate::dkim::tags::strip_ws);
            let s = t.get("s").map(crate::dkim::tags::strip_ws);
            d.is_some_and(|d| d.eq_ignore_ascii_case(domain)) && s.as_deref() == Some(selector)
        })
    })
}

/// Signs unless the message already carries a signature of ours (signed at queue entry): one
/// with our `d=` and `s=` that verifies with our own key, asked of no DNS. A signature that only
/// names our `d=` and `s=` (a list post or a forward can carry one anybody wrote) does not count.
struct SignUnlessOurs {
    signer: Signer,
    verifier: Verifier,
    own: OwnKey,
}

/// Our own key record, the one answer to its own name.
struct OwnKey {
    name: String,
    record: Vec<u8>,
}

impl TxtLookup for OwnKey {
    fn txt(&self, name: &str) -> TxtAnswer {
        if name.trim_end_matches('.').eq_ignore_ascii_case(&self.name) {
            TxtAnswer::Records(vec![self.record.clone()])
        } else {
            TxtAnswer::NotFound
        }
    }
}

impl SignUnlessOurs {
    fn new(signer: Signer, headers: &Headers, domain: &str, selector: &str, now: u64) -> SignUnlessOurs {
        // Our own signature with our own key: rsa-sha1 too, when that is what we sign with.
        let opts = VerifyOptions { allow_sha1: true, ..VerifyOptions::default() };
        let own = OwnKey { name: format!("{selector}._domainkey.{domain}"), record: signer.key_record() };
        SignUnlessOurs { verifier: Verifier::new(headers, &opts, now), signer, own }
    }
}

impl Task for SignUnlessOurs {
    fn body(&mut self, data: &[u8]) {
        self.signer.update(data);
        self.verifier.body(data);
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let SignUnlessOurs { signer, verifier, own } = *self;
        let report = verifier.finish(ctx.headers, &own);
        let ours = report.results.iter().find(|r| {
            r.outcome.is_pass()
                && r.selector
                    .as_deref()
                    .zip(r.domain.as_deref())
                    .is_some_and(|(s, d)| format!("{s}._domainkey.{d}").eq_ignore_ascii_case(&own.name))
        });
        if let Some(r) = ours {
            eprintln!(
                "qmail-dkim-remote: already signed for d={}: not signed again",
                r.domain.as_deref().unwrap_or_default()
            );
            return Ok(Finished::default());
        }
        Box::new(signer).finish(ctx)
    }
}

fn fd0() -> ManuallyDrop<File> {
    // SAFETY: fd 0 is the message qmail-rspawn gave us; ManuallyDrop never closes it here.
    ManuallyDrop::new(unsafe { File::from_raw_fd(0) })
}

fn run(settings: &Settings, plan: &Plan, args: &[OsString]) -> Result<Infallible> {
    let real = settings.dkremote.as_deref().unwrap_or(DEFAULT_REMOTE).to_string();
    let mut stdin = fd0();
    // qmail-rspawn gives the queue file itself: when nothing is signed it is handed on as it is.
    let start = (&*stdin).stream_position().ok();
    let Head { bytes: head, block_end, body_start, eof, buf } = run::read_head(&mut stdin)?;
    let headers = Headers::parse(head[..block_end].to_vec());
    let sender = args[2].as_bytes();
    let domain = signing_domain(settings.sign_domain_from, settings, sender, &headers)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());

    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    // A first line that starts with white space would continue our last field (run.rs refuses
    // such a message at entry); here it leaves unsigned.
    if matches!(headers.block.iter().find(|&&b| b != b'\r'), Some(b' ' | b'\t')) {
        eprintln!("qmail-dkim-remote: the first header line starts with white space: not signed");
    } else {
        let template = match &plan.mode {
            Mode::Sign { template } => template.as_str(),
            _ => return Err(Error::Internal("qmail-dkim-remote's plan does not sign".into())),
        };
        for job in plan::sign_jobs_for(settings, template, &domain, &headers, now)? {
            let d = job.key.domain.clone();
            let Some(s) = plan::load_signer(job)? else { continue };
            match s.selector().map(str::to_string) {
                Some(sel) if names_us(&headers, &d, &sel) => {
                    tasks.push(Box::new(SignUnlessOurs::new(s, &headers, &d, &sel, now)))
                }
                _ => tasks.push(Box::new(s)),
            }
        }
        // DKIM2 binds d= to the envelope sender (mf=), whatever DKIMSIGN_DOMAIN says.
        if let Some(t) = &plan.dkim2_sign {
            let d2 = signing_domain(false, settings, sender, &headers)?;
            let signer = plan::dkim2_signer(&settings.control, t, &d2, &headers, now)?;
            tasks.extend(signer.map(|s| Box::new(s) as Box<dyn Task>));
        }
    }
    if tasks.is_empty() {
        if let Some(off) = start {
            (&*stdin).seek(SeekFrom::Start(off)).map_err(|e| Error::Read { what: "message", source: e })?;
            return Err(exec(&real, args));
        }
    }

    let mut spool = run::spool_all(&mut stdin, Head { bytes: head, block_end, body_start, eof, buf }, &mut tasks)?;
    let envelope = Envelope {
        raw: Vec::new(),
        sender: sender.to_vec(),
        recipients: args[3..].iter().map(|a| a.as_bytes().to_vec()).collect(),
    };
    let prefix = plan::with_context(settings, &headers, &headers, &envelope, now, |ctx| -> Result<Vec<u8>> {
        let mut prefix = Vec::new();
        for t in tasks {
            prefix.extend_from_slice(&t.finish(ctx)?.prepend);
        }
        Ok(prefix)
    })?;

    if prefix.is_empty() {
        if let Some(off) = start {
            (&*stdin).seek(SeekFrom::Start(off)).map_err(|e| Error::Read { what: "message", source: e })?;
            return Err(exec(&real, args));
        }
    }
    // The signed message as a regular file read from offset 0, as qmail-rspawn gives it:
    // qmail-remote variants fstat it for SIZE, mmap it or seek back to resend.
    let mut out = crate::message::temp_file().map_err(Error::Spool)?;
    out.write_all(&prefix).map_err(Error::Spool)?;
    spool.replay(0, |d| out.write_all(d)).map_err(|e| match e {
        crate::message::ReplayError::Read(e) => Error::Read { what: "spool", source: e },
        crate::message::ReplayError::Write(e) => Error::Spool(e),
    })?;
    drop(spool);
    out.rewind().map_err(Error::Spool)?;
    // SAFETY: dup2 onto fd 0, which nothing here owns (fd0() never closes it).
    if unsafe { libc::dup2(out.as_raw_fd(), 0) } < 0 {
        return Err(Error::Spool(io::Error::last_os_error()));
    }
    drop(out);
    Err(exec(&real, args))
}

/// Replaces this process by the real qmail-remote with our argv (argv[0] too) and environment;
/// returns only on failure.
fn exec(real: &str, args: &[OsString]) -> Error {
    if crate::queue::is_this_program(std::ffi::OsStr::new(real)) {
        return Error::Config(format!("DKREMOTE {real} is qmail-dkim-remote itself, not the real qmail-remote"));
    }
    let e = std::process::Command::new(real).arg0(&args[0]).args(&args[1..]).exec();
    Error::Exec { path: real.to_string(), source: e }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_is_qmail_remote_temporary() {
        assert_eq!(temporary_report("x\ny\0z"), b"Zqmail-dkim-remote: x y z (#4.3.0)\n\0");
    }

    #[test]
    fn domain_choice() {
        let dir = tempfile::tempdir().unwrap();
        // Fresh settings for each question: they read a control file once.
        let c = || Settings::from_pairs(&[("CONTROLDIR", dir.path().to_str().unwrap())]);
        let h = Headers::parse(b"From: a@From.org\n".to_vec());
        let e = false;
        assert_eq!(signing_domain(e, &c(), b"x@Sender.ORG.", &h).unwrap(), "sender.org");
        assert_eq!(signing_domain(e, &c(), b"nobody", &h).unwrap(), "");
        let from = Settings::from_pairs(&[("DKIMSIGN_DOMAIN", "from")]).sign_domain_from;
        assert_eq!(signing_domain(from, &c(), b"x@sender.org", &h).unwrap(), "from.org");
        let none = Headers::parse(b"Subject: s\n".to_vec());
        assert_eq!(signing_domain(from, &c(), b"x@sender.org", &none).unwrap(), "sender.org");
        assert!(matches!(signing_domain(e, &c(), b"", &h), Err(Error::NoDomain)));
        std::fs::write(dir.path().join("me"), "me.org\n").unwrap();
        assert_eq!(signing_domain(e, &c(), b"", &h).unwrap(), "me.org");
        std::fs::write(dir.path().join("bouncehost"), "bh.org\n").unwrap();
        assert_eq!(signing_domain(e, &c(), b"", &h).unwrap(), "bh.org");
    }

    #[test]
    fn template_choice() {
        // The plan at queue exit signs with this template.
        let template = |p: &[(&str, &str)]| match Plan::new(&Settings::from_pairs(p), Stage::Exit).mode {
            Mode::Sign { template } => template,
            m => panic!("{m:?}"),
        };
        assert_eq!(template(&[]), "domainkeys/%/default");
        assert_eq!(template(&[("DKIMKEY", "k/%")]), "k/%");
        assert_eq!(template(&[("DKIMSIGN", "/s/%"), ("DKIMKEY", "k/%")]), "/s/%");
        assert_eq!(template(&[("DKIMSIGN", ""), ("DKIMKEY", "k/%")]), "k/%");
    }

    #[test]
    fn signature_naming_us_found_by_d_and_s() {
        let signed = Headers::parse(b"DKIM-Signature: v=1; d=A.org;\n s=sel; b=x\nFrom: a@a.org\n".to_vec());
        assert!(names_us(&signed, "a.org", "sel"));
        assert!(!names_us(&signed, "a.org", "old"));
        assert!(!names_us(&signed, "b.org", "sel"));
    }
}
