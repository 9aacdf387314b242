//! DMARC aggregate reports (RFC 9990) for `dkim dmarc`: [`import`] moves the spool that
//! qmail-dkim writes (`DMARCREPORTS`, [`crate::dmarc_spool`]) into a database ([`db`]), grouped
//! as RFC 9990 rows; [`report`] makes one report per policy domain and UTC day ([`xml`]) and
//! writes it to a directory or mails it ([`send`]). docs/dmarc-reports.md is the guide.
//!
//! Only `bin/dkim` reaches this module: qmail-dkim's per-message path carries none of its
//! crates (SQLite, the PostgreSQL client, the XML writer, gzip).

pub mod db;
pub(crate) mod send;
pub mod xml;

use crate::dmarc_spool::{Entry, Policy, Row};
use db::{Db, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(pub String);

impl ReportError {
    pub(crate) fn new(s: impl Into<String>) -> ReportError {
        ReportError(s.into())
    }
}

impl From<rusqlite::Error> for ReportError {
    fn from(e: rusqlite::Error) -> ReportError {
        ReportError(format!("sqlite: {e}"))
    }
}
impl From<postgres::Error> for ReportError {
    fn from(e: postgres::Error) -> ReportError {
        ReportError(format!("postgres: {e}"))
    }
}
impl From<std::io::Error> for ReportError {
    fn from(e: std::io::Error) -> ReportError {
        ReportError(e.to_string())
    }
}

/// Spool files counted in one transaction.
pub(crate) const BATCH: usize = 500;
/// How long the names of imported files are kept (to recognize a file whose removal failed).
pub(crate) const KEEP_IMPORTED_DAYS: i64 = 14;
pub const DAY: u64 = 86_400;

/// `YYYY-MM-DD` of a time (UTC).
pub fn day_of(t: u64) -> String {
    let (y, m, d) = civil_from_days(i64::try_from(t / DAY).unwrap_or(i64::MAX));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The start of a `YYYY-MM-DD` day (UTC), in seconds since the epoch.
pub fn parse_day(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).filter(|p| p.bytes().all(|c| c.is_ascii_digit()))?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let days = days_from_civil(y, m, d);
    if !((1..=12).contains(&m) && (1..=31).contains(&d) && civil_from_days(days) == (y, m, d) && days >= 0) {
        return None;
    }
    u64::try_from(days).ok().map(|d| d * DAY)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// An RFC 5322 date of a time, in UTC.
pub(crate) fn rfc5322_date(t: u64) -> String {
    const DOW: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = t / DAY;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    let s = t % DAY;
    let mon = MON[usize::try_from(m - 1).unwrap_or(0).min(11)];
    let dow = DOW[usize::try_from(days % 7).unwrap_or(0)];
    format!("{dow}, {d} {mon} {y} {:02}:{:02}:{:02} +0000", s / 3600, s / 60 % 60, s % 60)
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Records counted now.
    pub counted: u64,
    /// Files already counted by an earlier run (removed now).
    pub again: u64,
    /// Files that are not records (left in place, one line each on fd 2).
    pub bad: u64,
}

/// Moves the records of the spool `dir` (its `new/`) into `db`: a batch of files in one
/// transaction, the files removed after it commits. A file whose name the database already
/// holds was counted by a run that stopped before removing it: it is removed, not counted.
pub fn import(db: &mut Db, dir: &Path, progress: &mut dyn FnMut(&Imported)) -> Result<Imported, ReportError> {
    let new = dir.join("new");
    let mut names: Vec<String> = std::fs::read_dir(&new)
        .map_err(|e| ReportError::new(format!("{}: {e}", new.display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let mut done = Imported::default();
    for batch in names.chunks(BATCH) {
        let mut files: Vec<(String, PathBuf, Entry)> = Vec::new();
        for name in batch {
            let path = new.join(name);
            let text = match read_capped(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    eprintln!("dkim: {}: {e}", path.display());
                    done.bad += 1;
                    continue;
                }
            };
            match Entry::parse(&text) {
                Ok(e) => files.push((name.clone(), path, e)),
                Err(e) => {
                    eprintln!("dkim: {}: {e}", path.display());
                    done.bad += 1;
                }
            }
        }
        db.begin()?;
        let counted = (|| -> Result<(u64, u64), ReportError> {
            // (day, policy domain, row) -> (policy last seen, count, its time)
            let mut groups: BTreeMap<(String, String, String), (String, i64, i64)> = BTreeMap::new();
            let mut again = 0;
            for (name, _, e) in &files {
                let day = day_of(e.time);
                let n = db.exec(
                    "INSERT INTO dmarc_imported (name, day) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[name.as_str().into(), day.as_str().into()],
                )?;
                if n == 0 {
                    // Counted by a run that stopped before removing it.
                    again += 1;
                    continue;
                }
                let t = i64::try_from(e.time).unwrap_or(i64::MAX);
                let g = groups
                    .entry((day, e.policy.domain.clone(), e.row.to_text()))
                    .or_insert_with(|| (String::new(), 0, t));
                if t >= g.2 || g.0.is_empty() {
                    g.0 = e.policy.to_text();
                    g.2 = t;
                }
                g.1 += 1;
            }
            let mut counted = 0;
            for ((day, domain, row), (policy, count, last)) in &groups {
                db.exec(
                    "INSERT INTO dmarc_rows (day, policy_domain, row_key, policy, count, last_seen) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (day, policy_domain, row_key) DO UPDATE SET \
                     count = dmarc_rows.count + excluded.count, \
                     policy = CASE WHEN excluded.last_seen >= dmarc_rows.last_seen THEN excluded.policy ELSE dmarc_rows.policy END, \
                     last_seen = CASE WHEN excluded.last_seen >= dmarc_rows.last_seen THEN excluded.last_seen ELSE dmarc_rows.last_seen END",
                    &[
                        day.as_str().into(),
                        domain.as_str().into(),
                        row.as_str().into(),
                        policy.as_str().into(),
                        Value::Int(*count),
                        Value::Int(*last),
                    ],
                )?;
                counted += u64::try_from(*count).unwrap_or(0);
            }
            Ok((counted, again))
        })();
        let (counted, again) = match counted {
            Ok(c) => c,
            Err(e) => {
                let _ = db.rollback();
                return Err(e);
            }
        };
        db.commit()?;
        for (_, path, _) in &files {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("dkim: {}: {e} (counted; it will be removed by the next import)", path.display());
                }
            }
        }
        done.counted += counted;
        done.again += again;
        progress(&done);
    }
    let cutoff = day_of(now().saturating_sub(u64::try_from(KEEP_IMPORTED_DAYS).unwrap_or(14) * DAY));
    db.exec("DELETE FROM dmarc_imported WHERE day < $1", &[cutoff.into()])?;
    Ok(done)
}

fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    let f = std::fs::File::open(path)?;
    f.take(crate::dmarc_spool::MAX_FILE as u64 + 1).read_to_string(&mut s)?;
    Ok(s)
}

/// One report's content: a policy domain's rows of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayReport {
    pub(crate) day: String,
    /// The day's first second; the report covers `begin..=begin+86399`.
    pub(crate) begin: u64,
    /// The policy as last seen that day.
    pub(crate) policy: Policy,
    pub(crate) rows: Vec<(Row, u64)>,
}

impl DayReport {
    pub(crate) fn end(&self) -> u64 {
        self.begin + DAY - 1
    }
}

/// The reports of a day, one per policy domain, in domain order.
pub(crate) fn day_reports(db: &mut Db, day: &str) -> Result<Vec<DayReport>, ReportError> {
    let begin = parse_day(day).ok_or_else(|| ReportError::new(format!("{day}: not a day (YYYY-MM-DD)")))?;
    let rows = db.query(
        "SELECT policy_domain, row_key, policy, count, last_seen FROM dmarc_rows WHERE day = $1 \
         ORDER BY policy_domain, row_key",
        &[day.into()],
    )?;
    let mut out: Vec<DayReport> = Vec::new();
    let mut last_seen = 0;
    for r in rows {
        let [domain, row, policy, count, seen] = r.as_slice() else { continue };
        let row =
            Row::parse(row.text()).map_err(|e| ReportError::new(format!("a stored row of {}: {e}", domain.text())))?;
        let policy = Policy::parse(policy.text())
            .map_err(|e| ReportError::new(format!("a stored policy of {}: {e}", domain.text())))?;
        let count = u64::try_from(count.int()).unwrap_or(0);
        match out.last_mut() {
            Some(rep) if rep.policy.domain == domain.text() => {
                if seen.int() >= last_seen {
                    rep.policy = policy;
                    last_seen = seen.int();
                }
                rep.rows.push((row, count));
            }
            _ => {
                last_seen = seen.int();
                out.push(DayReport { day: day.to_string(), begin, policy, rows: vec![(row, count)] });
            }
        }
    }
    Ok(out)
}

/// Where `report` puts the reports.
pub enum Target<'a> {
    /// Write each report's file into this directory.
    Out(&'a Path),
    /// Mail each report through this `qmail-inject`, asking DNS with this resolver.
    Send { inject: &'a str, resolver: &'a dyn crate::dns::Resolver },
}

/// What `report` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reported {
    pub(crate) reports: u64,
    pub written: Vec<PathBuf>,
    /// `(destination, report id)` of every message sent.
    pub sent: Vec<(String, String)>,
    /// Another host holds the sender's lock: nothing sent.
    pub other_sender: bool,
    /// Failures, each one line; the run exits 1 when there is one.
    pub failed: Vec<String>,
}

/// Makes the reports of `day` and writes or sends them. A report is sent to a destination at
/// most once: the destination is claimed in the database before the message is handed over, and
/// released when the handing over fails (the next run tries again).
pub fn report(db: &mut Db, day: &str, who: &xml::Reporter, target: Target<'_>) -> Result<Reported, ReportError> {
    let reports = day_reports(db, day)?;
    let mut done = Reported { reports: reports.len() as u64, ..Reported::default() };
    if let Target::Send { .. } = target {
        if !db.lock_sender()? {
            done.other_sender = true;
            return Ok(done);
        }
    }
    for r in &reports {
        let name = xml::file_name(r, who);
        let gz = xml::gzip(&xml::xml(r, who), &name);
        match target {
            Target::Out(dir) => {
                let path = dir.join(&name);
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, &gz)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| ReportError::new(format!("{}: {e}", path.display())))?;
                done.written.push(path);
            }
            Target::Send { inject, resolver } => {
                let id = xml::report_id(r, who);
                for to in send::mailto_addresses(&r.policy.rua) {
                    match send::authorized(resolver, &r.policy.domain, &to) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            done.failed.push(format!("{to}: the authorization of {} failed: {e}", r.policy.domain));
                            continue;
                        }
                    }
                    let claim: [Value; 3] =
                        [r.day.as_str().into(), r.policy.domain.as_str().into(), to.as_str().into()];
                    let claimed = db.exec(
                        "INSERT INTO dmarc_sent (day, policy_domain, destination, report_id, sent_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (day, policy_domain, destination) DO NOTHING",
                        &[
                            claim[0].clone(),
                            claim[1].clone(),
                            claim[2].clone(),
                            id.as_str().into(),
                            Value::Int(i64::try_from(now()).unwrap_or(0)),
                        ],
                    )?;
                    if claimed == 0 {
                        continue;
                    }
                    let msg = send::message(r, who, &to, &gz, now());
                    match send::inject(inject, &who.email, &to, &msg) {
                        Ok(()) => done.sent.push((to.clone(), id.clone())),
                        Err(e) => {
                            done.failed.push(format!("{} to {to}: {e}", r.policy.domain));
                            db.exec(
                                "DELETE FROM dmarc_sent WHERE day = $1 AND policy_domain = $2 AND destination = $3",
                                &claim,
                            )?;
                        }
                    }
                }
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2026-12-06"), Some(1_796_515_200));
        assert_eq!(day_of(1_796_515_200 + DAY - 1), "2026-12-06");
        assert_eq!(parse_day("2024-02-29").map(day_of).as_deref(), Some("2024-02-29"));
        for bad in ["2026-02-30", "2026-13-01", "26-12-06", "2026-12-6", "2026/12/06", "x"] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        assert_eq!(rfc5322_date(1_796_515_200 + 3661), "Sun, 6 Dec 2026 01:01:01 +0000");
    }

    #[test]
    fn a_url_shown_has_no_password() {
        assert_eq!(db::redact("postgres://u:secret@h/db"), "postgres://u:...@h/db");
        assert_eq!(db::redact("sqlite:/x"), "sqlite:/x");
    }
}
