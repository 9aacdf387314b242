//! Handing the message on: run the next program with the message on its fd 0 and the envelope
//! on its fd 1 (two pipes), wait for it, and mirror its exit code. Refusals: crate::refusal.

use crate::config::settings::QueueSettings;
use crate::error::{Error, Result};
use crate::message::{Field, Headers, ReplayError, Spool};
use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::signal::{killpg, Signal};
use nix::sys::time::TimeSpec;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{alarm, Pid};
use std::ffi::{OsStr, OsString};
use std::io::{self, PipeWriter, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::refusal::{report_refusal, CustomErrors};

pub const DEFAULT_QUEUE: &str = "/var/qmail/bin/qmail-queue";

/// The running queue program's pid, for the DEATH alarm handler (0: none).
pub static CHILD_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The next program's argv: our own arguments, else `DKIMQUEUE` (or `DKQUEUE` for a
/// DomainKeys-only run), else `QUEUEPROG`, else qmail-queue. Values are split on whitespace.
pub fn choose(args: &[OsString], q: &QueueSettings, dk_only: bool) -> Vec<OsString> {
    if !args.is_empty() {
        return args.to_vec();
    }
    let v = (q.dkimqueue.as_deref())
        .or(if dk_only { q.dkqueue.as_deref() } else { None })
        .or(q.queueprog.as_deref())
        .unwrap_or(DEFAULT_QUEUE);
    let words: Vec<OsString> = v.split_ascii_whitespace().map(OsString::from).collect();
    if words.is_empty() {
        vec![DEFAULT_QUEUE.into()]
    } else {
        words
    }
}

/// Whether `program` (as `Command` finds it: a name without `/` through `PATH`) is this very
/// executable (device and inode): a queue program that is qmail-dkim itself would start
/// qmail-dkim again and again until fork fails.
pub fn is_this_program(program: &OsStr) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let Ok(me) = std::fs::metadata("/proc/self/exe").map(id) else { return false };
    let p = Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return std::fs::metadata(p).map(id).ok() == Some(me);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| if d.as_os_str().is_empty() { Path::new(".").join(p) } else { d.join(p) })
        .find_map(|c| std::fs::metadata(c).ok().filter(|m| m.is_file()));
    found.map(id) == Some(me)
}

/// The variables the queue program must not get (a chained qmail-dkim would loop).
const HIDDEN: [&str; 2] = ["DKIMQUEUE", "DKQUEUE"];

/// Takes [`HIDDEN`] out of our own environment, once the run has read its settings: the
/// queue program then inherits the environment as it is, where `Command::env_remove` makes std
/// copy and sort every variable for the child (74,000 instructions with 37 variables). Call it
/// only while the process has one thread (qmail-dkim's start).
pub fn hide_queue_variables() {
    for k in HIDDEN {
        if std::env::var_os(k).is_some() {
            std::env::remove_var(k);
        }
    }
}

/// A started queue program with the write ends of its two pipes.
///
/// We hold no read end of either pipe: a program that closes one before reading it all is
/// seen at once (EPIPE, or POLLERR on our end), never after a write that blocks until DEATH.
/// Unread bytes are counted on our write end (FIONREAD), so each is closed only once the
/// program has taken everything in it, and the envelope's final NUL is written only after the
/// whole message has been taken: a program that leaves part of the message unread never gets
/// it, and so cannot queue a cut message.
pub struct Queue {
    /// The program's pid, which is also its process group: a wrapper that does not `exec`
    /// is stopped and killed together with what it started.
    pid: Pid,
    name: String,
    msg: Option<PipeWriter>,
    env: Option<PipeWriter>,
    /// The envelope's final NUL is in the pipe: from then on the program may queue.
    nul_written: bool,
    /// The program's end, once reaped.
    status: Option<WaitStatus>,
}

/// How often a blocked write or a wait for the program to take what is in a pipe looks at
/// the program (and at the DEATH deadline).
const LOOK_MS: u64 = 50;

/// The first wait for the program to take what is in a pipe; each next one is 1.5 times as
/// long (up to LOOK_MS): a quick program is seen at once (it waits for our close of the
/// message pipe), a slow one costs few wake-ups.
const FIRST_NAP_US: u64 = 10;

impl Queue {
    /// Starts the program in a process group of its own. It gets our environment less
    /// `DKIMQUEUE`/`DKQUEUE` (so a chained qmail-dkim does not loop), and our fd 2 (indimail's
    /// reply pipe when that was set aside: crate::refusal).
    pub fn start(argv: &[OsString]) -> Result<Queue> {
        let name = argv[0].to_string_lossy().into_owned();
        if is_this_program(&argv[0]) {
            return Err(Error::QueueIsSelf(name));
        }
        let (msg_r, msg_w) = std::io::pipe().map_err(Error::Pipe)?;
        let (env_r, env_w) = std::io::pipe().map_err(Error::Pipe)?;
        for w in [&msg_w, &env_w] {
            fcntl(w, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| Error::Pipe(e.into()))?;
        }
        let mut cmd = Command::new(&argv[0]);
        // Only what is set: any env_remove makes std copy and sort the whole environment.
        for k in HIDDEN {
            if std::env::var_os(k).is_some() {
                cmd.env_remove(k);
            }
        }
        cmd.args(&argv[1..]).stdin(Stdio::from(msg_r)).stdout(Stdio::from(env_r));
        cmd.stderr(crate::refusal::queue_stderr().map_or_else(Stdio::inherit, Stdio::from));
        cmd.process_group(0);
        let child = cmd.spawn().map_err(|e| match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOMEM) => Error::Fork(e),
            _ => Error::Exec { path: name.clone(), source: e },
        })?;
        let pid = Pid::from_raw(child.id() as i32);
        CHILD_PID.store(pid.as_raw(), std::sync::atomic::Ordering::SeqCst);
        Ok(Queue { pid, name, msg: Some(msg_w), env: Some(env_w), nul_written: false, status: None })
    }

    /// Writes our headers, the spooled message and the envelope, in qmail-queue's order, then
    /// waits and returns the program's code. It counts as success (0) only if the program
    /// exited 0 having taken both pipes' contents, the envelope up to its final NUL.
    /// `remove` lists header fields (indices into `headers.fields`) that are left out.
    ///
    /// DEATH is taken over from the alarm here and holds only until the program has read the
    /// final NUL: after that it may have queued the message, and a 52 would make the client
    /// send it twice, so we wait for it (qmail-queue has its own alarm) and mirror its code.
    pub fn feed_and_wait(
        mut self,
        prefix: &[u8],
        headers: &Headers,
        remove: &[usize],
        spool: &mut Spool,
        envelope: &[u8],
    ) -> Result<i32> {
        let deadline = alarm::cancel().map(|s| Instant::now() + Duration::from_secs(s.into()));
        let env = self.env.take();
        let (fed, status) = match (self.msg.take(), &env) {
            (Some(msg), Some(env_w)) => {
                let (body, nul) = envelope.split_at(envelope.len().saturating_sub(1));
                let early = Some(Early { env: env_w, body, sent: 0 });
                let mut f = Feeder { pid: self.pid, deadline, status: None, early };
                let fed = feed(&mut f, msg, prefix, headers, remove, spool).and_then(|sent| {
                    f.write_all(env_w, &body[sent..]).map_err(ReplayError::Write)?;
                    f.write_all(env_w, nul).map_err(ReplayError::Write)?;
                    self.nul_written = true;
                    f.drain(env_w).map_err(ReplayError::Write)
                });
                (fed, f.status)
            }
            _ => (Ok(()), None),
        };
        self.env = env;
        if status.is_some() {
            self.status = status;
        }
        let whole = match fed {
            Ok(()) => true,
            // The program exited, or closed a pipe with bytes in it: nothing more is written.
            Err(ReplayError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => false,
            Err(ReplayError::Write(e)) if e.kind() == io::ErrorKind::TimedOut => {
                self.stop_at_deadline()?;
                self.nul_written && unread(self.env.as_ref()) == 0
            }
            Err(ReplayError::Write(e)) => return self.abandon(Error::Pipe(e)),
            Err(ReplayError::Read(e)) => return self.abandon(Error::Read { what: "spool", source: e }),
        };
        self.msg.take();
        self.env.take();
        let code = self.wait()?;
        if code == 0 && !whole {
            return Err(Error::QueueShortRead);
        }
        Ok(code)
    }

    /// DEATH ran out. If the final NUL is not yet written, the program has queued nothing and
    /// is killed. Otherwise its process group is stopped first so that nothing in it reads on
    /// while we look: if the NUL has been read meanwhile it goes on and we wait for it;
    /// otherwise it has queued nothing and is killed.
    fn stop_at_deadline(&mut self) -> Result<()> {
        if self.nul_written && killpg(self.pid, Signal::SIGSTOP).is_ok() {
            loop {
                match waitpid(self.pid, Some(WaitPidFlag::WUNTRACED)) {
                    Ok(WaitStatus::Stopped(..)) => break,
                    Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                        self.status = Some(s);
                        let _ = killpg(self.pid, Signal::SIGCONT);
                        return Ok(());
                    }
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::Wait(e.into())),
                }
            }
            if unread(self.env.as_ref()) == 0 {
                let _ = killpg(self.pid, Signal::SIGCONT);
                return Ok(());
            }
        }
        self.kill_late()
    }

    /// Kills the program's process group, which has not read the final NUL, reaps the program
    /// and reports DEATH (52).
    fn kill_late<T>(&mut self) -> Result<T> {
        let _ = killpg(self.pid, Signal::SIGKILL);
        let _ = self.wait();
        Err(Error::Timeout)
    }

    /// Closes both pipes without completing the envelope (qmail-queue then queues nothing) and
    /// reaps the program; returns `err`.
    pub fn abandon<T>(mut self, err: Error) -> Result<T> {
        self.msg.take();
        self.env.take();
        let _ = self.wait();
        Err(err)
    }

    fn wait(&mut self) -> Result<i32> {
        let status = match self.status {
            Some(s) => s,
            None => loop {
                match waitpid(self.pid, None) {
                    Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => break s,
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::Wait(e.into())),
                }
            },
        };
        self.status = Some(status);
        match status {
            WaitStatus::Exited(_, c) => Ok(c),
            WaitStatus::Signaled(_, s, _) => Err(Error::QueueKilled(self.name.clone(), s as i32)),
            _ => Err(Error::Wait(io::Error::other("unknown exit status"))),
        }
    }
}

/// Writes the message, and waits until the program has taken all of it; returns how much of
/// the envelope (less its final NUL) went into its pipe meanwhile. Dropping `w` then closes the
/// message. BrokenPipe: the program exited, or closed the message or read the envelope before
/// it had the whole message; TimedOut: DEATH ran out.
fn feed(
    f: &mut Feeder<'_>,
    w: PipeWriter,
    prefix: &[u8],
    headers: &Headers,
    remove: &[usize],
    spool: &mut Spool,
) -> Result<usize, ReplayError> {
    feed_msg(&w, f, prefix, headers, remove, spool)?;
    f.hand_over_msg(&w).map_err(ReplayError::Write)
}

fn feed_msg(
    w: &PipeWriter,
    f: &mut Feeder<'_>,
    prefix: &[u8],
    headers: &Headers,
    remove: &[usize],
    spool: &mut Spool,
) -> Result<(), ReplayError> {
    if spool.file().is_some() {
        // Big message only: large pipe buffers count against the user's limit.
        set_pipe_size(w);
    }
    f.write_all(w, prefix).map_err(ReplayError::Write)?;
    if remove.is_empty() {
        return send_spool(spool, 0, w, f);
    }
    // Only the header block changes; it is at the start of the spool.
    for fld in kept_fields(headers, remove) {
        f.write_all(w, headers.raw(fld)).map_err(ReplayError::Write)?;
    }
    let covered = headers.fields.last().map_or(0, |fld| fld.raw.end);
    send_spool(spool, covered as u64, w, f)
}

/// Bytes in a pipe nobody has read yet, asked on our write end (Linux answers FIONREAD on
/// either end); 0 when the pipe is closed or cannot be asked.
fn unread(w: Option<&PipeWriter>) -> usize {
    let Some(w) = w else { return 0 };
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD stores one int through a pointer to a live c_int; the descriptor is ours.
    let rc = unsafe { libc::ioctl(w.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc < 0 {
        0
    } else {
        n.max(0) as usize
    }
}

/// Writes into the non-blocking pipes while keeping the program's exit and the DEATH
/// deadline in view.
struct Feeder<'e> {
    pid: Pid,
    deadline: Option<Instant>,
    /// Set when the program was found to have exited.
    status: Option<WaitStatus>,
    /// While the message is written: the envelope, less its final NUL, goes into its pipe as
    /// far as that takes it without waiting (a program that reads the envelope before the end
    /// of the message is seen at once, not at DEATH).
    early: Option<Early<'e>>,
}

struct Early<'e> {
    env: &'e PipeWriter,
    body: &'e [u8],
    sent: usize,
}

impl Feeder<'_> {
    /// Errors: BrokenPipe when the program has exited or closed the pipe, TimedOut when DEATH
    /// ran out.
    fn write_all(&mut self, w: &PipeWriter, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match (&*w).write(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_writable(w.as_fd())?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Returns when `fd` may take more, or an error as for `write_all`.
    fn wait_writable(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let mut nap = Duration::from_millis(LOOK_MS);
        loop {
            self.write_early()?;
            if self.look(fd, PollFlags::POLLOUT, &mut nap)? {
                return Ok(());
            }
        }
    }

    /// Puts what the envelope's pipe takes without waiting into it (while the message is
    /// written). BrokenPipe when the program has read the envelope although the message is
    /// not yet all read: qmail-queue reads the message to its end first, so this program
    /// skipped part of it and must not get the final NUL.
    fn write_early(&mut self) -> io::Result<()> {
        let Some(e) = &mut self.early else { return Ok(()) };
        while e.sent < e.body.len() {
            match (&*e.env).write(&e.body[e.sent..]) {
                Ok(n) => e.sent += n,
                Err(x) if x.kind() == io::ErrorKind::Interrupted => {}
                Err(x) if x.kind() == io::ErrorKind::WouldBlock => break,
                Err(x) => return Err(x),
            }
        }
        if e.sent > 0 && unread(Some(e.env)) == 0 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }

    /// Returns once the program has read the whole message (in `msg`); returns how much of the
    /// envelope went into its pipe meanwhile ([`Feeder::write_early`]). BrokenPipe when the
    /// program closed the message pipe with bytes left in it, or read the envelope before it
    /// had the whole message: either way it is not to get the final NUL.
    fn hand_over_msg(&mut self, msg: &PipeWriter) -> io::Result<usize> {
        let mut nap = Duration::from_micros(FIRST_NAP_US);
        loop {
            if unread(Some(msg)) == 0 {
                break;
            }
            self.write_early()?;
            if self.look(msg.as_fd(), PollFlags::empty(), &mut nap)? {
                // POLLERR: no reader is left.
                if unread(Some(msg)) == 0 {
                    break;
                }
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            nap = (nap * 3 / 2).min(Duration::from_millis(LOOK_MS));
        }
        Ok(self.early.take().map_or(0, |e| e.sent))
    }

    /// Returns once the program has read everything in the pipe `w`. BrokenPipe when it
    /// closed the pipe (or exited) with bytes left in it, TimedOut when DEATH ran out.
    fn drain(&mut self, w: &PipeWriter) -> io::Result<()> {
        let mut nap = Duration::from_micros(FIRST_NAP_US);
        while unread(Some(w)) > 0 {
            if self.look(w.as_fd(), PollFlags::empty(), &mut nap)? {
                // POLLERR: no reader is left.
                return if unread(Some(w)) == 0 { Ok(()) } else { Err(io::ErrorKind::BrokenPipe.into()) };
            }
            nap = (nap * 3 / 2).min(Duration::from_millis(LOOK_MS));
        }
        Ok(())
    }

    /// Waits up to `nap` for `events` (or an error condition) on `fd`: true when one came.
    /// BrokenPipe when the program has exited, TimedOut when DEATH has run out.
    fn look(&mut self, fd: BorrowedFd<'_>, events: PollFlags, nap: &mut Duration) -> io::Result<bool> {
        let mut wait = *nap;
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            wait = wait.min(left);
        }
        let mut fds = [PollFd::new(fd, events)];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                self.status = Some(s);
                Err(io::ErrorKind::BrokenPipe.into())
            }
            Ok(_) | Err(Errno::EINTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// The fields not listed in `remove`, in order. A mark per field rather than a search of
/// `remove` per field: 100,000 forged fields cost milliseconds, not minutes.
fn kept_fields<'a>(headers: &'a Headers, remove: &[usize]) -> impl Iterator<Item = &'a Field> + 'a {
    let mut gone = vec![false; headers.fields.len()];
    for &i in remove {
        if let Some(g) = gone.get_mut(i) {
            *g = true;
        }
    }
    headers.fields.iter().zip(gone).filter(|(_, g)| !g).map(|(f, _)| f)
}

/// Sends the spool from offset `from` into the pipe: splice(2) from the spool file (no copy
/// through user space), else plain writes.
fn send_spool(spool: &mut Spool, from: u64, w: &PipeWriter, f: &mut Feeder<'_>) -> Result<(), ReplayError> {
    if let Some((file, len)) = spool.file() {
        let mut off = from as libc::loff_t;
        let end = len as libc::loff_t;
        let flags = SpliceFFlags::SPLICE_F_MORE | SpliceFFlags::SPLICE_F_NONBLOCK;
        while off < end {
            let want = usize::try_from(end - off).map_or(1 << 30, |n| n.min(1 << 30));
            match splice(file, Some(&mut off), w, None, want, flags) {
                Ok(0) => {
                    return Err(ReplayError::Read(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "spool shorter than expected",
                    )))
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => f.wait_writable(w.as_fd()).map_err(ReplayError::Write)?,
                Err(Errno::EINVAL | Errno::ENOSYS) => return spool.replay(off as u64, |d| f.write_all(w, d)),
                Err(e) => return Err(ReplayError::Write(e.into())),
            }
        }
        return Ok(());
    }
    spool.replay(from, |d| f.write_all(w, d))
}

/// A larger pipe lets big messages go through in fewer system calls; failure is harmless.
fn set_pipe_size(w: &PipeWriter) {
    grow_pipe(w);
}

/// Asks for a 1 MiB pipe buffer on `fd` (fails harmlessly when `fd` is no pipe).
pub fn grow_pipe(fd: impl AsFd) {
    let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(1 << 20));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_choice() {
        let env = |p: &[(&str, &str)]| crate::config::Settings::from_pairs(p).queue;
        let e = env(&[("DKIMQUEUE", "/q/a x"), ("QUEUEPROG", "/q/b")]);
        assert_eq!(choose(&[], &e, false), vec![OsString::from("/q/a"), "x".into()]);
        assert_eq!(choose(&["/f".into()], &e, false), vec![OsString::from("/f")]);
        let e = env(&[("QUEUEPROG", "/q/b"), ("DKQUEUE", "/q/dk")]);
        assert_eq!(choose(&[], &e, false), vec![OsString::from("/q/b")]);
        assert_eq!(choose(&[], &e, true), vec![OsString::from("/q/dk")]);
        assert_eq!(choose(&[], &QueueSettings::default(), false), vec![OsString::from(DEFAULT_QUEUE)]);
    }

    #[test]
    fn many_forged_status_fields_removed_in_linear_time() {
        // Was a search of the removal list per field: quadratic in forged fields.
        crate::linear::assert_linear(
            "forged fields",
            10_000,
            |n| {
                let block: Vec<u8> = (0..n).flat_map(|i| format!("X-{i}: v\n").into_bytes()).collect();
                let h = Headers::parse(block);
                let remove: Vec<usize> = (0..n).step_by(2).collect();
                move || {
                    let kept: Vec<&[u8]> = kept_fields(&h, &remove).map(|f| h.raw(f)).collect();
                    assert_eq!((kept.len(), kept.first().copied()), (n / 2, Some(b"X-1: v\n".as_slice())));
                }
            },
            |work| work(),
        );
        // Indices out of range (none are made) are ignored rather than a panic.
        let h = Headers::parse(b"A: 1\nB: 2\n".to_vec());
        assert_eq!(kept_fields(&h, &[1, 7]).count(), 1);
    }
}
