//! The one error type. Every failure of the queue program is a variant here, and
//! [`Error::exit_code`] is the only place that maps failures to qmail-queue exit codes.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Envelope does not start with `F` or a recipient does not start with `T` (qmail-queue: 91).
    #[error("envelope format error: {0}")]
    EnvelopeFormat(&'static str),
    /// An address of 1003 bytes or more (qmail-queue: 11).
    #[error("envelope address too long")]
    AddressTooLong,
    /// EOF before the envelope's final NUL, or a read error on fd 0 / fd 1 (qmail-queue: 54).
    #[error("unable to read {what}: {source}")]
    Read { what: &'static str, source: io::Error },
    /// Spool write failed (disk full, quota): 53.
    #[error("unable to write the spool: {0}")]
    Spool(io::Error),
    /// The private key named without a `%` does not exist (indimail: 35, permanent).
    #[error("private key {0} does not exist")]
    KeyMissing(PathBuf),
    /// The key exists but cannot be read: temporary, the postmaster has to fix it. `why` says
    /// who we run as and what to change ([`Error::key_unreadable`]).
    #[error("cannot read key {path}: {why}")]
    KeyUnreadable { path: PathBuf, source: io::Error, why: String },
    /// The key was read but is unusable (corrupt PEM, wrong type, too short, encrypted).
    #[error("unusable private key {path}: {reason}")]
    KeyInvalid { path: PathBuf, reason: String },
    /// A control file exists but cannot be read or has an unusable line.
    #[error("unable to read control file {path}: {reason}")]
    Control { path: PathBuf, reason: String },
    /// A configuration value in the environment is invalid (e.g. DKIMSIGNOPTIONS).
    #[error("{0}")]
    Config(String),
    /// No signing domain could be found for a message that must be signed.
    #[error("no signing domain: no Return-Path/Sender/From domain, BOUNCEDOMAIN, control/bouncehost or control/me")]
    NoDomain,
    #[error("unable to make a pipe: {0}")]
    Pipe(io::Error),
    #[error("unable to fork: {0}")]
    Fork(io::Error),
    #[error("trouble waiting for the queue program: {0}")]
    Wait(io::Error),
    #[error("unable to execute the queue program {path}: {source}")]
    Exec { path: String, source: io::Error },
    #[error("the queue program {0} was killed by signal {1}")]
    QueueKilled(String, i32),
    #[error("the queue program exited 0 without reading the whole message and envelope")]
    QueueShortRead,
    /// The queue program is this executable: it would start itself again and again.
    #[error("the queue program {0} is qmail-dkim itself: set DKIMQUEUE or QUEUEPROG to the real qmail-queue")]
    QueueIsSelf(String),
    #[error("timeout: the run took longer than DEATH seconds")]
    Timeout,
    /// A message refused (by a task's verdict or a malformed header block).
    #[error("{}", .0.text)]
    Refused(Refusal),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The one spelling of "do not queue this message": `permanent` decides D or Z, 31 or 71.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub permanent: bool,
    /// The text for the client, without the leading D/Z.
    pub(crate) text: String,
}

impl Refusal {
    pub(crate) fn permanent(text: impl Into<String>) -> Refusal {
        Refusal { permanent: true, text: text.into() }
    }

    pub(crate) fn temporary(text: impl Into<String>) -> Refusal {
        Refusal { permanent: false, text: text.into() }
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        Error::Refused(r)
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A key that exists but cannot be read; for a permission error, names the user and
    /// groups we run as and who may read the key (crate::access).
    pub(crate) fn key_unreadable(path: PathBuf, source: io::Error) -> Error {
        let who = crate::access::Creds::current();
        let why = match source.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => {
                format!("permission denied ({})", crate::access::explain(&path, "the key", &who))
            }
            _ => format!("{source} (running as {})", who.describe()),
        };
        Error::KeyUnreadable { path, source, why }
    }

    /// The qmail-queue exit code for this failure (qmail-dkim(8), EXIT CODES). Refusals are reported by
    /// `refusal::refuse`, which uses this for the `none` convention (31 / 71).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::EnvelopeFormat(_) => 91,
            Error::AddressTooLong => 11,
            Error::Read { .. } => 54,
            Error::Spool(e) if e.kind() == io::ErrorKind::OutOfMemory => 51,
            Error::Spool(_) => 53,
            Error::KeyMissing(_) => 35,
            Error::KeyUnreadable { .. }
            | Error::KeyInvalid { .. }
            | Error::Control { .. }
            | Error::Config(_)
            | Error::NoDomain => 55,
            Error::Pipe(_) => 59,
            Error::Fork(_) => 58,
            Error::Wait(_) => 57,
            Error::Exec { .. } => 120,
            Error::QueueKilled(..) | Error::QueueShortRead | Error::QueueIsSelf(_) | Error::Internal(_) => 81,
            Error::Timeout => 52,
            Error::Refused(Refusal { permanent: true, .. }) => 31,
            Error::Refused(Refusal { permanent: false, .. }) => 71,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_qmail_queue() {
        assert_eq!(Error::EnvelopeFormat("x").exit_code(), 91);
        assert_eq!(Error::AddressTooLong.exit_code(), 11);
        assert_eq!(Error::KeyMissing("k".into()).exit_code(), 35);
        assert_eq!(Error::Pipe(io::Error::other("x")).exit_code(), 59);
        assert_eq!(Error::Fork(io::Error::other("x")).exit_code(), 58);
        assert_eq!(Error::Wait(io::Error::other("x")).exit_code(), 57);
        assert_eq!(Error::Timeout.exit_code(), 52);
    }
}
