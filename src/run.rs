//! The one place that sequences I/O: settings -> plan -> start the queue program -> read the
//! header block from fd 0 -> tasks -> stream the body into the spool and the hashers -> read
//! fd 1 -> sign -> queue -> exit.

use crate::config::{authserv_id, Settings};
use crate::envelope;
use crate::error::{Error, Refusal, Result};
use crate::message::{count_fields, find_header_end, Headers, Spool, MAX_HEADER_BYTES, MAX_HEADER_FIELDS};
use crate::plan::{Plan, Stage};
use crate::queue::{self, Queue};
use crate::task::{stricter, Task};
use crate::{log, plan, refusal};
use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};

const READ_SIZE: usize = 256 * 1024;

/// Entry point of the qmail-dkim binary: returns the exit code.
pub fn main() -> i32 {
    std::panic::set_hook(Box::new(on_panic));
    // The one reading of the environment, and the one plan made from it.
    let settings = Settings::from_process();
    let plan = Plan::new(&settings, Stage::Entry);
    refusal::set_aside_reply_pipe(&settings.errors);
    queue::hide_queue_variables();
    install_death_alarm(settings.death);
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (code, end) = match run(&settings, &plan, &args) {
        Ok(code) => (code, log::End::Done),
        Err(Error::Refused(Refusal { permanent, text })) => {
            let r = refusal::refuse(&settings.errors, permanent, &text);
            if r.replies_on_fd2() {
                // fd 2 is indimail's reply pipe: a log line there would join the SMTP reply.
                return r.code;
            }
            (r.code, log::End::Refused(Refusal { permanent, text }))
        }
        Err(e) => {
            eprintln!("qmail-dkim: {e}");
            (e.exit_code(), log::End::Failed(e.to_string()))
        }
    };
    log_end(&settings, &plan, code, &end);
    code
}

/// A panic (a bug) on any thread ends the run with 81, a temporary failure, and never a signal,
/// whether the build unwinds or aborts (the release profile has `panic = "abort"`, which
/// catch_unwind cannot catch). The queue program has not had the envelope's final NUL, so it
/// queues nothing when our end of its pipes closes.
fn on_panic(info: &std::panic::PanicHookInfo<'_>) {
    let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
    eprintln!("qmail-dkim: internal error (panic{at}); message not queued");
    let settings = Settings::from_process();
    log_end(&settings, &Plan::new(&settings, Stage::Entry), 81, &log::End::Failed("internal error (panic)".into()));
    // SAFETY: _exit ends the process at once; nothing of ours needs to run after a bug.
    unsafe { libc::_exit(81) }
}

/// The `DKIMLOG` line of a run that ends with `code`.
fn log_end(settings: &Settings, plan: &Plan, code: i32, end: &log::End) {
    if log::enabled(settings.dkimlog.as_deref()) {
        let (mode, dk) = plan.log_modes();
        eprint!("{}", log::line(mode, dk, &log::take(), code, end));
    }
}

extern "C" fn on_alarm(_: libc::c_int) {
    // The queue program must not outlive us holding the caller's error descriptor. It has not
    // been given the envelope's final NUL (Queue::feed_and_wait cancels this alarm and keeps the
    // deadline itself before it writes anything), so it has queued nothing. Only
    // async-signal-safe calls here: kill(2), write(2), _exit(2).
    const TEXT: &[u8] = b"qmail-dkim: timeout: the run took longer than DEATH seconds\n";
    let pid = queue::CHILD_PID.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // Its whole process group: a wrapper's own child must not read on and queue.
        let _ = signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = nix::unistd::write(io::stderr(), TEXT);
    // SAFETY: _exit ends the process at once; no Rust state is used after it.
    unsafe { libc::_exit(52) }
}

/// `DEATH` seconds (0: none).
fn install_death_alarm(secs: u32) {
    if secs == 0 {
        return;
    }
    // SAFETY: the handler calls only async-signal-safe functions (see on_alarm).
    let _ = unsafe { signal::signal(Signal::SIGALRM, SigHandler::Handler(on_alarm)) };
    nix::unistd::alarm::set(secs);
}

/// Descriptor 0 (the message) or 1 (the envelope) as a `File` of its own: a duplicate, so
/// dropping it leaves the caller's descriptor open.
fn fd(which: BorrowedFd<'_>, what: &'static str) -> Result<File> {
    which.try_clone_to_owned().map(File::from).map_err(|source| Error::Read { what, source })
}

fn stdin_file() -> Result<File> {
    fd(io::stdin().as_fd(), "message")
}

fn envelope_file() -> Result<File> {
    fd(io::stdout().as_fd(), "envelope")
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Read { what: "message", source: e }),
        }
    }
}

pub fn run(settings: &Settings, plan: &Plan, args: &[OsString]) -> Result<i32> {
    // Start the queue program at once: its start-up runs beside our reading and hashing on the
    // other core. It queues nothing until the envelope's final NUL, so if we refuse we close its
    // pipes, reap it and exit with our own code. A program that cannot be started is reported
    // after the input has been read, as the caller expects.
    let queue = Queue::start(&queue::choose(args, &settings.queue, plan.dk_only));
    let mut queue = match queue {
        Ok(q) => Some(q),
        Err(e) => {
            drain_input();
            return Err(e);
        }
    };
    match prepare(settings, plan) {
        Ok(Prepared { prefix, remove, headers, mut spool, envelope }) => match queue.take() {
            Some(q) => q.feed_and_wait(&prefix, &headers, &remove, &mut spool, &envelope.raw),
            None => Err(Error::Internal("queue program vanished".into())),
        },
        Err(e) => match queue.take() {
            Some(q) => q.abandon(e),
            None => Err(e),
        },
    }
}

/// Reads and discards the rest of fd 0 and the envelope, so the caller finishes writing before
/// it reads our exit code.
fn drain_input() {
    let mut buf = vec![0u8; 64 * 1024];
    if let Ok(mut stdin) = stdin_file() {
        while matches!(read_some(&mut stdin, &mut buf), Ok(n) if n > 0) {}
    }
    if let Ok(mut env) = envelope_file() {
        let _ = envelope::read(&mut env);
    }
}

/// Everything the queue program is to get.
struct Prepared {
    prefix: Vec<u8>,
    remove: Vec<usize>,
    headers: Headers,
    spool: Spool,
    envelope: envelope::Envelope,
}

fn prepare(settings: &Settings, plan: &Plan) -> Result<Prepared> {
    let mut stdin = stdin_file()?;

    // 1. The header block.
    let Head { bytes: head, block_end, body_start, eof, buf } = read_head(&mut stdin)?;
    let headers = Headers::parse(head[..block_end].to_vec());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());

    // 2. The plan's tasks; keys are loaded here.
    let mut tasks = plan::tasks(settings, plan, &headers, now)?;

    // 3. The body: spool every byte, hash the body.
    let spool = spool_all(&mut stdin, Head { bytes: head, block_end, body_start, eof, buf }, &mut tasks)?;

    // 4. The envelope, then each task's result. Fields that forge our verdicts go whenever we
    // write one (decided here, once, for every method); signatures made now cover what is queued.
    let envelope = envelope::read(&mut envelope_file()?)?;
    // Made once: from control/me or the host name.
    let id = std::cell::OnceCell::new();
    let authserv = || id.get_or_init(|| authserv_id(settings)).as_str();
    let forged = if plan.removes_forged { crate::headers::forged(&headers, authserv()) } else { Vec::new() };
    let queued = if forged.is_empty() { None } else { Some(headers.without(&forged)) };
    let queued_ref = queued.as_ref().unwrap_or(&headers);
    let (mut prefix, outputs, refusal) = plan::with_context(settings, &headers, queued_ref, &envelope, now, |ctx| {
        let (mut prefix, mut outputs, mut refusal) = (Vec::new(), Vec::new(), None);
        for t in tasks {
            let r = t.finish(&crate::task::Context { earlier: &outputs, ..*ctx })?;
            r.outputs.iter().for_each(log::note_output);
            prefix.extend_from_slice(&r.prepend);
            outputs.extend(r.outputs);
            refusal = stricter(refusal, r.refuse);
        }
        // DMARC's report record, now that the final refusal is known (its disposition).
        if let Some(dir) = &settings.dmarcreports {
            let all = crate::task::Context { earlier: &outputs, ..*ctx };
            crate::dmarc::report_entry::spool(dir, settings.client_ip(), &all, refusal.as_ref());
        }
        Ok::<_, Error>((prefix, outputs, refusal))
    })?;
    if let Some(r) = refusal {
        return Err(Error::Refused(r));
    }
    let remove = forged;
    // One Authentication-Results for every method (task order: spf, dkim, dkim2, domainkeys,
    // dmarc, arc), on top, rendered once from the typed results.
    if !outputs.is_empty() {
        let mut field = crate::auth_results::field(authserv(), &crate::auth_results::render(&outputs));
        field.extend_from_slice(&prefix);
        prefix = field;
    }
    // A reader that drops stray CRs would also see a continuation after leading CRs.
    if !prefix.is_empty() && matches!(headers.block.iter().find(|&&b| b != b'\r'), Some(b' ' | b'\t')) {
        return Err(leading_continuation());
    }
    Ok(Prepared { prefix, remove, headers, spool, envelope })
}

/// The start of the message: the header block and the body bytes read with it.
pub struct Head {
    pub bytes: Vec<u8>,
    /// `bytes[..block_end]` is the header block, without the blank line.
    pub block_end: usize,
    pub body_start: usize,
    /// fd 0 ended within `bytes`.
    pub eof: bool,
    /// The read buffer, reused for the body: a second 256 KiB `vec![0; N]` would be cleared
    /// by calloc on every message (a fifth of an unsigned verify's instructions).
    pub buf: Vec<u8>,
}

/// Reads fd 0 up to the end of the header block, within the bounds of message.rs.
pub fn read_head(stdin: &mut File) -> Result<Head> {
    // Grown as read: a 4 KiB message then costs no mmap/munmap pair of a 256 KiB reservation.
    let mut head: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; READ_SIZE];
    let mut eof = false;
    let (block_end, body_start) = loop {
        let scan_from = head.len().saturating_sub(2);
        let n = read_some(stdin, &mut buf)?;
        if n == 0 {
            eof = true;
            break find_header_end(&head, 0).unwrap_or((head.len(), head.len()));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(e) = find_header_end(&head, scan_from) {
            break e;
        }
        if head.len() > MAX_HEADER_BYTES + 2 {
            return Err(header_too_large(format!("more than {} MiB", MAX_HEADER_BYTES >> 20)));
        }
    };
    // The bounds of message.rs (MAX_HEADER_BYTES says why we refuse).
    if block_end > MAX_HEADER_BYTES {
        return Err(header_too_large(format!("more than {} MiB", MAX_HEADER_BYTES >> 20)));
    }
    if count_fields(&head[..block_end]) > MAX_HEADER_FIELDS {
        return Err(header_too_large(format!("more than {MAX_HEADER_FIELDS} fields")));
    }
    Ok(Head { bytes: head, block_end, body_start, eof, buf })
}

/// **Decision:** a message whose first line starts with a space or a tab (after any CRs, which
/// some readers drop) is refused permanently when we would add a header: that line would
/// continue our last field (`DKIM-Status: good` would read `DKIM-Status: good (forged)`; a
/// signature of ours would break), and the queue gets the message byte for byte, so it cannot
/// be mended. RFC 5322 has no such message (a header section starts with a field name).
/// Nothing is added in pass mode, so nothing is refused there.
fn leading_continuation() -> Error {
    Error::Refused(Refusal::permanent(
        "qmail-dkim: malformed message: the first header line starts with white space (#5.6.0)",
    ))
}

/// A permanent refusal of a header block over the bounds of `message::MAX_HEADER_BYTES`.
fn header_too_large(what: String) -> Error {
    Error::Refused(Refusal::permanent(format!("qmail-dkim: header too large: {what} (#5.3.4)")))
}

/// Spools the whole message (the head already read, then the rest of fd 0) and feeds its body
/// to the tasks.
pub fn spool_all(stdin: &mut File, head: Head, tasks: &mut [Box<dyn Task>]) -> Result<Spool> {
    let mut spool = Spool::default();
    spool.write(&head.bytes)?;
    for t in tasks.iter_mut() {
        t.body(&head.bytes[head.body_start..]);
    }
    let Head { bytes, eof, buf, .. } = head;
    drop(bytes);
    if !eof {
        stream_body(stdin, &mut spool, tasks, buf)?;
    }
    Ok(spool)
}

/// Fills `buf` from `r` until it is full or at end of file; returns the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = read_some(r, &mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Reads the rest of fd 0 into the spool and through the tasks. When there is work to do the
/// tasks run on a second thread, so canonicalization and hashing overlap reading and spooling;
/// a few buffers circulate between the two, so memory stays bounded. `buf` (READ_SIZE long) is
/// the header block's read buffer, reused: a fresh one costs a 256 KiB memset per message once
/// malloc serves that size from the heap.
fn stream_body(stdin: &mut File, spool: &mut Spool, tasks: &mut [Box<dyn Task>], mut buf: Vec<u8>) -> Result<()> {
    let n = fill(stdin, &mut buf)?;
    spool.write(&buf[..n])?;
    for t in tasks.iter_mut() {
        t.body(&buf[..n]);
    }
    if n < READ_SIZE {
        return Ok(());
    }
    // A big message: fewer, larger reads when the caller feeds us through a pipe. Only now,
    // because large pipe buffers count against the user's pipe-user-pages-soft limit, and
    // qmaild runs many of us at once.
    queue::grow_pipe(io::stdin());
    if tasks.is_empty() {
        loop {
            let n = fill(stdin, &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            spool.write(&buf[..n])?;
        }
    }
    use std::sync::mpsc;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(3);
        let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
        let worker = s.spawn(move || {
            for b in rx {
                for t in tasks.iter_mut() {
                    t.body(&b);
                }
                let _ = back_tx.send(b);
            }
        });
        let mut spare = Some(buf);
        let result = (|| -> Result<()> {
            loop {
                let mut b = spare.take().or_else(|| back_rx.try_recv().ok()).unwrap_or_default();
                b.resize(READ_SIZE, 0);
                let n = fill(stdin, &mut b)?;
                if n == 0 {
                    return Ok(());
                }
                b.truncate(n);
                spool.write(&b)?;
                if tx.send(b).is_err() {
                    return Err(Error::Internal("hashing thread stopped".into()));
                }
            }
        })();
        drop(tx);
        if worker.join().is_err() {
            return Err(Error::Internal("hashing thread panicked".into()));
        }
        result
    })
}

#[cfg(test)]
mod tests {
    /// The hook is the whole "exit 81 on a bug" contract under the release profile's
    /// `panic = "abort"`: checked in a child process (this test binary again), because it ends
    /// the process.
    #[test]
    fn a_panic_exits_81_not_by_signal() {
        if std::env::var_os("QD_PANIC_CHILD").is_some() {
            std::panic::set_hook(Box::new(super::on_panic));
            let v: Vec<u8> = Vec::new();
            let _ = std::hint::black_box(&v)[1];
            return;
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "run::tests::a_panic_exits_81_not_by_signal", "--nocapture", "--test-threads=1"])
            .env("QD_PANIC_CHILD", "1")
            .env("DKIMLOG", "1")
            .output()
            .expect("run the child");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(81), "{err}");
        assert!(err.contains("qmail-dkim: internal error (panic at src/run.rs:"), "{err}");
        assert!(err.lines().any(|l| l.starts_with("qmail-dkim: mode=") && l.contains("panic")), "no log line: {err}");
    }
}
