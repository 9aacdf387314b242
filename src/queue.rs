//! Handing the message on: run the next program with the message on its fd 0 and the envelope
//! on its fd 1 (two pipes), wait for it, and mirror its exit code. Refusals: crate::refusal.

use crate::config::Env;
use crate::error::{Error, Result};
use crate::message::{Headers, ReplayError, Spool};
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

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

/// A started queue program with the write ends of its two pipes.
pub struct Queue {
    child: Child,
    name: String,
    msg: Option<std::io::PipeWriter>,
    env: Option<std::io::PipeWriter>,
}

impl Queue {
    /// Starts the program. It gets our environment less `DKIMQUEUE`/`DKQUEUE` (so a chained
    /// qmail-dkim does not loop), and our fd 2.
    pub fn start(argv: &[OsString]) -> Result<Queue> {
        let name = argv[0].to_string_lossy().into_owned();
        let (msg_r, msg_w) = std::io::pipe().map_err(Error::Pipe)?;
        let (env_r, env_w) = std::io::pipe().map_err(Error::Pipe)?;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_remove("DKIMQUEUE")
            .env_remove("DKQUEUE")
            .stdin(Stdio::from(msg_r))
            .stdout(Stdio::from(env_r))
            .stderr(Stdio::inherit());
        let child = cmd.spawn().map_err(|e| match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOMEM) => Error::Fork(e),
            _ => Error::Exec { path: name.clone(), source: e },
        })?;
        CHILD_PID.store(child.id() as i32, std::sync::atomic::Ordering::SeqCst);
        Ok(Queue { child, name, msg: Some(msg_w), env: Some(env_w) })
    }

    /// Writes our headers, the spooled message and the envelope, in qmail-queue's order, then
    /// waits. A program that stops reading early is reaped and its code returned; a program
    /// that exits 0 without having read everything is not trusted.
    /// `remove` lists header fields (indices into `headers.fields`) that are left out.
    pub fn feed_and_wait(
        mut self,
        prefix: &[u8],
        headers: &Headers,
        remove: &[usize],
        spool: &mut Spool,
        envelope: &[u8],
    ) -> Result<i32> {
        let mut short = false;
        if let Some(mut w) = self.msg.take() {
            if spool.file().is_some() {
                // Big message only: large pipe buffers count against the user's limit.
                set_pipe_size(&w);
            }
            let r = w.write_all(prefix).map_err(ReplayError::Write).and_then(|_| {
                if remove.is_empty() {
                    send_spool(spool, 0, &mut w)
                } else {
                    // Only the header block changes; it is at the start of the spool.
                    for (i, f) in headers.fields.iter().enumerate() {
                        if !remove.contains(&i) {
                            w.write_all(headers.raw(f)).map_err(ReplayError::Write)?;
                        }
                    }
                    let covered = headers.fields.last().map_or(0, |f| f.raw.end);
                    send_spool(spool, covered as u64, &mut w)
                }
            });
            match r {
                Ok(()) => {}
                Err(ReplayError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => short = true,
                Err(ReplayError::Write(e)) => return self.abandon(Error::Pipe(e)),
                Err(ReplayError::Read(e)) => return self.abandon(Error::Read { what: "spool", source: e }),
            }
            drop(w);
        }
        if let Some(mut w) = self.env.take() {
            if !short {
                match w.write_all(envelope) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => short = true,
                    Err(e) => return self.abandon(Error::Pipe(e)),
                }
            }
        }
        let code = self.wait()?;
        if short && code == 0 {
            return Err(Error::QueueShortRead);
        }
        Ok(code)
    }

    /// Closes both pipes without completing the envelope (qmail-queue then queues nothing) and
    /// reaps the program; returns `err`.
    pub fn abandon<T>(mut self, err: Error) -> Result<T> {
        self.msg.take();
        self.env.take();
        let _ = self.child.wait();
        Err(err)
    }

    fn wait(&mut self) -> Result<i32> {
        let status = loop {
            match self.child.wait() {
                Ok(s) => break s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Wait(e)),
            }
        };
        match (status.code(), status.signal()) {
            (Some(c), _) => Ok(c),
            (None, Some(s)) => Err(Error::QueueKilled(self.name.clone(), s)),
            _ => Err(Error::Wait(io::Error::other("unknown exit status"))),
        }
    }
}

/// Sends the spool from offset `from` into the pipe: splice(2) from the spool file (no copy
/// through user space), else plain writes.
fn send_spool(spool: &mut Spool, from: u64, w: &mut std::io::PipeWriter) -> Result<(), ReplayError> {
    use std::os::fd::AsRawFd;
    if let Some((file, len)) = spool.file() {
        let mut off = from as libc::loff_t;
        let end = len as libc::loff_t;
        let (fin, fout) = (file.as_raw_fd(), w.as_raw_fd());
        while off < end {
            let want = ((end - off) as usize).min(1 << 30);
            // SAFETY: splice between two descriptors we own; `off` is a valid pointer.
            let n = unsafe { libc::splice(fin, &mut off, fout, std::ptr::null_mut(), want, libc::SPLICE_F_MORE) };
            if n > 0 {
                continue;
            }
            if n == 0 {
                return Err(ReplayError::Read(io::Error::new(io::ErrorKind::UnexpectedEof, "spool shorter than expected")));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EINVAL) | Some(libc::ENOSYS) => return spool.replay(off as u64, |d| w.write_all(d)),
                _ => return Err(ReplayError::Write(e)),
            }
        }
        return Ok(());
    }
    spool.replay(from, |d| w.write_all(d))
}

/// A larger pipe lets big messages go through in fewer system calls; failure is harmless.
fn set_pipe_size(w: &std::io::PipeWriter) {
    use std::os::fd::AsRawFd;
    grow_pipe(w.as_raw_fd());
}

/// Asks for a 1 MiB pipe buffer on `fd` (fails harmlessly when `fd` is no pipe).
pub fn grow_pipe(fd: i32) {
    // SAFETY: fcntl on a descriptor number; F_SETPIPE_SZ only changes a pipe's buffer size.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
    }
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
}
