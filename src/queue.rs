//! Handing the message on: run the next program with the message on its fd 0 and the envelope
//! on its fd 1 (two pipes), wait for it, and mirror its exit code. Refusals: crate::refusal.

use crate::config::Env;
use crate::error::{Error, Result};
use crate::message::{Field, Headers, ReplayError, Spool};
use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{alarm, Pid};
use std::ffi::OsString;
use std::io::{self, PipeReader, PipeWriter, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::refusal::{report_refusal, CustomErrors};

pub const DEFAULT_QUEUE: &str = "/var/qmail/bin/qmail-queue";

/// The running queue program's pid, for the DEATH alarm handler (0: none).
pub static CHILD_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The next program's argv: our own arguments, else `DKIMQUEUE` (or `DKQUEUE` for a
/// DomainKeys-only run), else `QUEUEPROG`, else qmail-queue. Values are split on whitespace.
pub fn choose(args: &[OsString], env: &Env, dk_only: bool) -> Vec<OsString> {
    if !args.is_empty() {
        return args.to_vec();
    }
    let v = env
        .nonempty("DKIMQUEUE")
        .or_else(|| if dk_only { env.nonempty("DKQUEUE") } else { None })
        .or_else(|| env.nonempty("QUEUEPROG"))
        .unwrap_or(DEFAULT_QUEUE);
    let words: Vec<OsString> = v.split_ascii_whitespace().map(OsString::from).collect();
    if words.is_empty() {
        vec![DEFAULT_QUEUE.into()]
    } else {
        words
    }
}

/// The variables the queue program must not get (a chained qmail-dkim would loop).
const HIDDEN: [&str; 2] = ["DKIMQUEUE", "DKQUEUE"];

/// Takes [`HIDDEN`] out of our own environment, once the run has its snapshot (`Env`): the
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
pub struct Queue {
    pid: Pid,
    name: String,
    msg: Option<PipeWriter>,
    env: Option<PipeWriter>,
    /// Our own duplicates of the pipes' read ends: after the program exits, a byte left in
    /// either is one it did not read. Holding them takes EPIPE away, so every write keeps the
    /// program's exit in view instead (`Feeder`).
    msg_left: PipeReader,
    env_left: PipeReader,
    /// The program's end, once reaped.
    status: Option<WaitStatus>,
}

/// How often a blocked write or the wait for the envelope's hand-over looks at the program
/// (and at the DEATH deadline).
const LOOK_MS: u64 = 50;

impl Queue {
    /// Starts the program. It gets our environment less `DKIMQUEUE`/`DKQUEUE` (so a chained
    /// qmail-dkim does not loop), and our fd 2.
    pub fn start(argv: &[OsString]) -> Result<Queue> {
        let name = argv[0].to_string_lossy().into_owned();
        let (msg_r, msg_w) = std::io::pipe().map_err(Error::Pipe)?;
        let (env_r, env_w) = std::io::pipe().map_err(Error::Pipe)?;
        // Close-on-exec duplicates: the program does not inherit them.
        let msg_left = msg_r.try_clone().map_err(Error::Pipe)?;
        let env_left = env_r.try_clone().map_err(Error::Pipe)?;
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
        cmd.args(&argv[1..]).stdin(Stdio::from(msg_r)).stdout(Stdio::from(env_r)).stderr(Stdio::inherit());
        let child = cmd.spawn().map_err(|e| match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOMEM) => Error::Fork(e),
            _ => Error::Exec { path: name.clone(), source: e },
        })?;
        let pid = Pid::from_raw(child.id() as i32);
        CHILD_PID.store(pid.as_raw(), std::sync::atomic::Ordering::SeqCst);
        Ok(Queue { pid, name, msg: Some(msg_w), env: Some(env_w), msg_left, env_left, status: None })
    }

    /// Writes our headers, the spooled message and the envelope, in qmail-queue's order, then
    /// waits and returns the program's code. It counts as success (0) only if the program
    /// exited 0 having read both pipes empty, the envelope up to its final NUL.
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
        let mut whole = false;
        match self.feed(deadline, prefix, headers, remove, spool, envelope) {
            Ok(()) => whole = true,
            Err(ReplayError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(ReplayError::Write(e)) if e.kind() == io::ErrorKind::TimedOut => return self.kill_late(),
            Err(ReplayError::Write(e)) => return self.abandon(Error::Pipe(e)),
            Err(ReplayError::Read(e)) => return self.abandon(Error::Read { what: "spool", source: e }),
        }
        self.msg.take();
        self.env.take();
        if whole {
            if let Some(deadline) = deadline {
                self.await_handover(deadline)?;
            }
        }
        let code = self.wait()?;
        if code == 0 && !(whole && unread(&self.msg_left) == 0 && unread(&self.env_left) == 0) {
            return Err(Error::QueueShortRead);
        }
        Ok(code)
    }

    /// Writes everything; BrokenPipe: the program exited first; TimedOut: DEATH ran out.
    fn feed(
        &mut self,
        deadline: Option<Instant>,
        prefix: &[u8],
        headers: &Headers,
        remove: &[usize],
        spool: &mut Spool,
        envelope: &[u8],
    ) -> Result<(), ReplayError> {
        let mut f = Feeder { pid: self.pid, deadline, status: None };
        let r = self.feed_msg(&mut f, prefix, headers, remove, spool).and_then(|()| {
            self.msg.take();
            match &self.env {
                Some(w) => f.write_all(w, envelope).map_err(ReplayError::Write),
                None => Ok(()),
            }
        });
        if f.status.is_some() {
            self.status = f.status;
        }
        r
    }

    fn feed_msg(
        &self,
        f: &mut Feeder,
        prefix: &[u8],
        headers: &Headers,
        remove: &[usize],
        spool: &mut Spool,
    ) -> Result<(), ReplayError> {
        let Some(w) = &self.msg else { return Ok(()) };
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

    /// Waits until the program has read the whole envelope or exited, or DEATH runs out.
    fn await_handover(&mut self, deadline: Instant) -> Result<()> {
        let mut nap = 100; // µs: a quick program is seen at once, a slow one costs few wake-ups
        loop {
            if self.status.is_some() || unread(&self.env_left) == 0 {
                return Ok(());
            }
            if let Some(s) = self.try_wait()? {
                self.status = Some(s);
                continue;
            }
            if Instant::now() >= deadline {
                return self.stop_at_deadline();
            }
            std::thread::sleep(Duration::from_micros(nap).min(deadline.saturating_duration_since(Instant::now())));
            nap = (nap * 2).min(LOOK_MS * 1000);
        }
    }

    /// DEATH ran out while the final NUL was still in the pipe. The program is stopped first
    /// so that it cannot read on while we look: if it has read the NUL meanwhile it goes on
    /// and we wait for it; otherwise it has queued nothing and is killed.
    fn stop_at_deadline(&mut self) -> Result<()> {
        if kill(self.pid, Signal::SIGSTOP).is_ok() {
            loop {
                match waitpid(self.pid, Some(WaitPidFlag::WUNTRACED)) {
                    Ok(WaitStatus::Stopped(..)) => break,
                    Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                        self.status = Some(s);
                        return Ok(());
                    }
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::Wait(e.into())),
                }
            }
            if unread(&self.env_left) == 0 {
                let _ = kill(self.pid, Signal::SIGCONT);
                return Ok(());
            }
        }
        self.kill_late()
    }

    /// Kills the program, which has not read the final NUL, reaps it and reports DEATH (52).
    fn kill_late<T>(&mut self) -> Result<T> {
        let _ = kill(self.pid, Signal::SIGKILL);
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

    fn try_wait(&self) -> Result<Option<WaitStatus>> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => Ok(Some(s)),
            Ok(_) | Err(Errno::EINTR) => Ok(None),
            Err(e) => Err(Error::Wait(e.into())),
        }
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

/// Bytes in a pipe nobody has read yet (0 when the pipe cannot be asked).
fn unread(r: &PipeReader) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD stores one int through a pointer to a live c_int; the descriptor is ours.
    let rc = unsafe { libc::ioctl(r.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc < 0 {
        0
    } else {
        n.max(0) as usize
    }
}

/// Writes into the non-blocking pipes while keeping the program's exit and the DEATH
/// deadline in view: we hold read ends ourselves, so a program that stops reading would
/// otherwise leave a full pipe blocking us for ever.
struct Feeder {
    pid: Pid,
    deadline: Option<Instant>,
    /// Set when the program was found to have exited.
    status: Option<WaitStatus>,
}

impl Feeder {
    /// Errors: BrokenPipe when the program has exited, TimedOut when DEATH ran out.
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
        loop {
            let mut ms = LOOK_MS;
            if let Some(d) = self.deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                ms = ms.min(u64::try_from(left.as_millis()).unwrap_or(u64::MAX).saturating_add(1));
            }
            let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
            match poll(&mut fds, PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))) {
                Ok(n) if n > 0 => return Ok(()),
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    self.status = Some(s);
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
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
fn send_spool(spool: &mut Spool, from: u64, w: &PipeWriter, f: &mut Feeder) -> Result<(), ReplayError> {
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
        let e = Env::from_pairs(&[("DKIMQUEUE", "/q/a x"), ("QUEUEPROG", "/q/b")]);
        assert_eq!(choose(&[], &e, false), vec![OsString::from("/q/a"), "x".into()]);
        assert_eq!(choose(&["/f".into()], &e, false), vec![OsString::from("/f")]);
        let e = Env::from_pairs(&[("QUEUEPROG", "/q/b"), ("DKQUEUE", "/q/dk")]);
        assert_eq!(choose(&[], &e, false), vec![OsString::from("/q/b")]);
        assert_eq!(choose(&[], &e, true), vec![OsString::from("/q/dk")]);
        assert_eq!(choose(&[], &Env::default(), false), vec![OsString::from(DEFAULT_QUEUE)]);
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
