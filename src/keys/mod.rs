//! `dkim keys`: key rotation as a state machine a cron job drives (docs/key-rotation.md).
//!
//! A domain's keys live in its directory under the key directory (`$CONTROLDIR/domainkeys/DOMAIN`):
//! one private key file per selector (`rsa20261207`), the file qmail-dkim reads for each key type
//! (the *slot*: `default` for RSA, `ed25519` for Ed25519), and `rotation.state`. A key goes
//! new → published → active → retiring → revoked → removed. The switch to a new key is one
//! rename: a copy of its file, whose first line names its selector
//! ([`crate::config::SELECTOR_LINE`]), over the slot. qmail-dkim reads the slot once per
//! message, so it gets the old file or the new one, each with its own selector.

pub mod files;
pub(crate) mod rotation;
pub(crate) mod state;

use crate::dkim::key::KeyType;
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;

pub use rotation::{advance, check_active, rotate, status, Settings};

/// A key whose record has answered this long signs (a daily cron job switches the day after):
/// the zone's other servers and the caches that remember the name did not exist catch up.
pub(crate) const PUBLISH_WAIT: u64 = 20 * 3600;
/// Kept after `control/queuelifetime`: mail delivered on its last day, verified again later.
pub(crate) const RETIRE_MARGIN: u64 = 7 * 86400;
/// qmail's default `queuelifetime`.
pub(crate) const DEFAULT_QUEUELIFETIME: u64 = 604_800;
/// A revoked key's private key is deleted this long after the revocation.
pub(crate) const REMOVE_AFTER: u64 = 30 * 86400;
/// A record awaited longer than this is a problem for `status`.
pub(crate) const LATE: u64 = 7 * 86400;

/// The file of the key directory that qmail-dkim reads for keys of this type
/// (`DKIMSIGN=domainkeys/%/default`, `DKIMSIGNEXTRA=domainkeys/%/ed25519`).
pub(crate) fn slot(kind: KeyType) -> &'static str {
    match kind {
        KeyType::Rsa => "default",
        KeyType::Ed25519 => "ed25519",
    }
}

/// The first part of a new selector: `rsa20261207`, `ed20261207`.
fn selector_prefix(kind: KeyType) -> &'static str {
    match kind {
        KeyType::Rsa => "rsa",
        KeyType::Ed25519 => "ed",
    }
}

/// The key directory: `--dir`, else `$CONTROLDIR/domainkeys`.
pub fn key_dir(control: &crate::config::ControlDir, dir: Option<&Path>) -> PathBuf {
    dir.map_or_else(|| control.resolve("domainkeys"), Path::to_path_buf)
}

/// `control/queuelifetime` in seconds (qmail-send's), default a week.
pub fn queuelifetime(control: &crate::config::ControlDir) -> Result<u64, String> {
    match control.first_line("queuelifetime").map_err(|e| e.to_string())? {
        None => Ok(DEFAULT_QUEUELIFETIME),
        Some(l) => l.trim().parse().map_err(|_| format!("control/queuelifetime {l:?} is not a number of seconds")),
    }
}

/// `2026-12-07T06:00:00Z`.
pub(crate) fn format_time(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{t}"))
}

/// A time as `--now` takes it: RFC 3339 (`2026-12-07T06:00:00Z`), a day (`2026-12-07`, its
/// midnight UTC), or `@SECONDS` since the epoch.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = || format!("not a time: {s:?} (2026-12-07, 2026-12-07T06:00:00Z or @SECONDS)");
    if let Some(n) = s.strip_prefix('@') {
        return n.parse().map_err(|_| bad());
    }
    let full = if s.len() == 10 { format!("{s}T00:00:00Z") } else { s.to_string() };
    let t = time::OffsetDateTime::parse(&full, &Rfc3339).map_err(|_| bad())?;
    u64::try_from(t.unix_timestamp()).map_err(|_| bad())
}

/// `20261207`: the day of `t`, for a selector.
fn day(t: u64) -> String {
    let d = i64::try_from(t).ok().and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok());
    d.map_or_else(|| t.to_string(), |d| format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("2026-12-07").unwrap(), 1_796_601_600);
        assert_eq!(format_time(1_796_601_600), "2026-12-07T00:00:00Z");
        assert_eq!(parse_time("2026-12-07T06:00:00Z").unwrap(), 1_796_623_200);
        assert_eq!(parse_time("2026-12-07T07:00:00+01:00").unwrap(), 1_796_623_200);
        assert_eq!(parse_time("@5").unwrap(), 5);
        assert_eq!(day(1_796_623_200), "20261207");
        for bad in ["", "tomorrow", "2026-13-01", "@-1", "1969-12-31"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
