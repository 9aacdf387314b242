//! The DMARC report spool (`DMARCREPORTS=DIR`): one small text file per evaluated message, written
//! maildir-style at queue time (`DIR/tmp`, then renamed into `DIR/new`), read by
//! `dkim dmarc import`. The one writer and the one parser of the format; docs/dmarc-reports.md
//! describes it.
//!
//! The format, version 1: US-ASCII lines `name=value`, LF-ended, the first `v=1`. A file is
//! an [`Entry`]: `time=` and the two parts the database keeps apart, the [`Policy`] as
//! published and the [`Row`] (what RFC 9990 groups and counts). A part serialized alone is the
//! same lines without `v=` and `time=`, so the database stores exactly these texts and the
//! report reads them back with this parser. Bounds: a file of at most [`MAX_FILE`] octets,
//! lines of at most [`MAX_LINE`], at most [`MAX_DKIM`] DKIM results, [`MAX_RUA`] `rua=` URIs
//! and [`MAX_REASONS`] reasons; a value that could break a line (a control character, or a
//! space where the value is a word) is left out when written.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The format version this module writes and reads.
pub(crate) const VERSION: u32 = 1;
/// A record file is never longer (what is left out keeps it so).
pub(crate) const MAX_FILE: usize = 16 << 10;
pub(crate) const MAX_LINE: usize = 1024;
pub(crate) const MAX_DKIM: usize = 8;
pub(crate) const MAX_RUA: usize = 8;
pub(crate) const MAX_REASONS: usize = 4;

/// The policy record as published, and how it was found (RFC 9990 `policy_published`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// The domain whose `_dmarc` record was used.
    pub domain: String,
    /// `psl` (RFC 7489's organizational-domain lookup) or `treewalk` (RFC 9989).
    pub discovery: String,
    /// `none`, `quarantine`, `reject`.
    pub p: String,
    pub sp: Option<String>,
    pub np: Option<String>,
    /// `r` or `s`.
    pub adkim: String,
    pub aspf: String,
    pub fo: Option<String>,
    /// `t=`: `y` or `n`; `None` when the evaluation did not read it.
    pub testing: Option<String>,
    /// The `rua=` URIs, as published (`!size` included).
    pub rua: Vec<String>,
}

/// One DKIM result of a message (RFC 9990 `auth_results/dkim`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DkimAuth {
    pub domain: String,
    pub selector: String,
    pub result: String,
}

/// What RFC 9990 counts: one message's source, identifiers and results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    pub source_ip: String,
    pub header_from: String,
    pub envelope_from: Option<String>,
    pub dkim: Vec<DkimAuth>,
    /// The MAIL FROM domain SPF checked and its result (scope `mfrom`).
    pub spf: Option<(String, String)>,
    /// Whether an aligned DKIM signature passed (`policy_evaluated/dkim`).
    pub dkim_aligned: bool,
    /// Whether an aligned SPF domain passed (`policy_evaluated/spf`).
    pub spf_aligned: bool,
    /// `none`, `pass`, `quarantine`, `reject`: what we did.
    pub disposition: String,
    /// `(type, comment)`: why the disposition is not what the policy asked.
    pub reasons: Vec<(String, String)>,
}

/// One spool file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Seconds since the epoch, when the message came.
    pub time: u64,
    pub policy: Policy,
    pub row: Row,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SpoolError {
    #[error("not a version {VERSION} DMARC report record (first line {0:?})")]
    Version(String),
    #[error("record longer than {MAX_FILE} octets")]
    TooLong,
    #[error("line {0}: {1}")]
    Line(usize, String),
    #[error("missing {0}=")]
    Missing(&'static str),
}

const DISPOSITIONS: &[&str] = &["none", "pass", "quarantine", "reject"];
const POLICIES: &[&str] = &["none", "quarantine", "reject"];
const DKIM_RESULTS: &[&str] = &["none", "pass", "fail", "policy", "neutral", "temperror", "permerror"];
const SPF_RESULTS: &[&str] = &["none", "pass", "fail", "softfail", "policy", "neutral", "temperror", "permerror"];
const REASONS: &[&str] = &["local_policy", "mailing_list", "other", "policy_test_mode", "trusted_forwarder"];

/// A word: printable ASCII, no space, not empty.
fn is_word(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|c| c.is_ascii_graphic())
}

/// Free text: printable ASCII and spaces.
fn is_text(v: &str) -> bool {
    v.bytes().all(|c| c.is_ascii_graphic() || c == b' ')
}

fn line(out: &mut String, name: &str, value: &str) {
    if name.len() + value.len() + 2 <= MAX_LINE {
        let _ = writeln!(out, "{name}={value}");
    }
}

impl Policy {
    /// The part's lines (words that could not be written are left out, and the parser then
    /// refuses the part: the writer checks [`Entry::is_writable`] first).
    pub(crate) fn to_text(&self) -> String {
        let mut s = String::new();
        line(&mut s, "domain", &self.domain);
        line(&mut s, "discovery", &self.discovery);
        line(&mut s, "p", &self.p);
        for (name, v) in [("sp", &self.sp), ("np", &self.np)] {
            if let Some(v) = v {
                line(&mut s, name, v);
            }
        }
        line(&mut s, "adkim", &self.adkim);
        line(&mut s, "aspf", &self.aspf);
        if let Some(fo) = self.fo.as_deref().filter(|v| is_word(v)) {
            line(&mut s, "fo", fo);
        }
        if let Some(t) = &self.testing {
            line(&mut s, "testing", t);
        }
        for u in self.rua.iter().filter(|u| is_word(u)).take(MAX_RUA) {
            line(&mut s, "rua", u);
        }
        s
    }

    pub(crate) fn parse(text: &str) -> Result<Policy, SpoolError> {
        let mut p = Policy::default();
        read_lines(text, 1, |n, name, v| p.field(n, name, v).map(|_| ()))?;
        p.check()?;
        Ok(p)
    }

    /// Takes one line; `Ok(false)` when `name` is not a policy field.
    fn field(&mut self, n: usize, name: &str, v: &str) -> Result<bool, SpoolError> {
        let bad = || SpoolError::Line(n, format!("bad {name}= value"));
        let word = |set: &[&str]| if set.contains(&v) { Ok(v.to_string()) } else { Err(bad()) };
        match name {
            "domain" if crate::domain::is_dns_name(v) => self.domain = v.into(),
            "discovery" => self.discovery = word(&["psl", "treewalk"])?,
            "p" => self.p = word(POLICIES)?,
            "sp" => self.sp = Some(word(POLICIES)?),
            "np" => self.np = Some(word(POLICIES)?),
            "adkim" => self.adkim = word(&["r", "s"])?,
            "aspf" => self.aspf = word(&["r", "s"])?,
            "fo" if is_word(v) => self.fo = Some(v.into()),
            "testing" => self.testing = Some(word(&["y", "n"])?),
            "rua" if is_word(v) && self.rua.len() < MAX_RUA => self.rua.push(v.into()),
            "domain" | "fo" | "rua" => return Err(bad()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn check(&self) -> Result<(), SpoolError> {
        for (name, v) in [("domain", &self.domain), ("discovery", &self.discovery), ("p", &self.p)] {
            if v.is_empty() {
                return Err(SpoolError::Missing(name));
            }
        }
        for (name, v) in [("adkim", &self.adkim), ("aspf", &self.aspf)] {
            if v.is_empty() {
                return Err(SpoolError::Missing(name));
            }
        }
        Ok(())
    }
}

impl Row {
    pub(crate) fn to_text(&self) -> String {
        let mut s = String::new();
        line(&mut s, "source_ip", &self.source_ip);
        line(&mut s, "header_from", &self.header_from);
        if let Some(e) = &self.envelope_from {
            line(&mut s, "envelope_from", e);
        }
        for d in self.dkim.iter().take(MAX_DKIM) {
            let sel = if d.selector.is_empty() { "-" } else { &d.selector };
            line(&mut s, "dkim", &format!("{} {sel} {}", d.domain, d.result));
        }
        if let Some((d, r)) = &self.spf {
            line(&mut s, "spf", &format!("{d} mfrom {r}"));
        }
        line(&mut s, "dmarc_dkim", if self.dkim_aligned { "pass" } else { "fail" });
        line(&mut s, "dmarc_spf", if self.spf_aligned { "pass" } else { "fail" });
        line(&mut s, "disposition", &self.disposition);
        for (t, c) in self.reasons.iter().take(MAX_REASONS) {
            line(&mut s, "reason", &if c.is_empty() { t.clone() } else { format!("{t} {c}") });
        }
        s
    }

    pub(crate) fn parse(text: &str) -> Result<Row, SpoolError> {
        let mut r = Row::default();
        read_lines(text, 1, |n, name, v| r.field(n, name, v).map(|_| ()))?;
        r.check()?;
        Ok(r)
    }

    fn field(&mut self, n: usize, name: &str, v: &str) -> Result<bool, SpoolError> {
        let bad = || SpoolError::Line(n, format!("bad {name}= value"));
        let pass_fail = || match v {
            "pass" => Ok(true),
            "fail" => Ok(false),
            _ => Err(bad()),
        };
        match name {
            "source_ip" => self.source_ip = v.parse::<IpAddr>().map_err(|_| bad())?.to_string(),
            "header_from" if crate::domain::is_dns_name(v) => self.header_from = v.into(),
            "envelope_from" if crate::domain::is_dns_name(v) => self.envelope_from = Some(v.into()),
            "dkim" => {
                let mut w = v.split(' ');
                let (Some(d), Some(s), Some(res), None) = (w.next(), w.next(), w.next(), w.next()) else {
                    return Err(bad());
                };
                if !crate::domain::is_dns_name(d) || !is_word(s) || !DKIM_RESULTS.contains(&res) {
                    return Err(bad());
                }
                if self.dkim.len() < MAX_DKIM {
                    let selector = if s == "-" { String::new() } else { s.into() };
                    self.dkim.push(DkimAuth { domain: d.into(), selector, result: res.into() });
                }
            }
            "spf" => {
                let mut w = v.split(' ');
                let (Some(d), Some("mfrom"), Some(res), None) = (w.next(), w.next(), w.next(), w.next()) else {
                    return Err(bad());
                };
                if !crate::domain::is_dns_name(d) || !SPF_RESULTS.contains(&res) {
                    return Err(bad());
                }
                self.spf = Some((d.into(), res.into()));
            }
            "dmarc_dkim" => self.dkim_aligned = pass_fail()?,
            "dmarc_spf" => self.spf_aligned = pass_fail()?,
            "disposition" if DISPOSITIONS.contains(&v) => self.disposition = v.into(),
            "reason" => {
                let (t, c) = v.split_once(' ').unwrap_or((v, ""));
                if !REASONS.contains(&t) || !is_text(c) {
                    return Err(bad());
                }
                if self.reasons.len() < MAX_REASONS {
                    self.reasons.push((t.into(), c.into()));
                }
            }
            "header_from" | "envelope_from" | "disposition" => return Err(bad()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn check(&self) -> Result<(), SpoolError> {
        for (name, v) in
            [("source_ip", &self.source_ip), ("header_from", &self.header_from), ("disposition", &self.disposition)]
        {
            if v.is_empty() {
                return Err(SpoolError::Missing(name));
            }
        }
        Ok(())
    }
}

/// Calls `f(line number, name, value)` for each line of `text` from line `first` on: at most
/// [`MAX_FILE`] octets, lines of at most [`MAX_LINE`], each `name=value`.
fn read_lines(
    text: &str,
    first: usize,
    mut f: impl FnMut(usize, &str, &str) -> Result<(), SpoolError>,
) -> Result<(), SpoolError> {
    if text.len() > MAX_FILE {
        return Err(SpoolError::TooLong);
    }
    for (i, l) in text.split_terminator('\n').enumerate() {
        let n = first + i;
        if l.len() > MAX_LINE || !is_text(l) {
            return Err(SpoolError::Line(n, "not a line of printable US-ASCII".into()));
        }
        let Some((name, v)) = l.split_once('=') else {
            return Err(SpoolError::Line(n, "no '='".into()));
        };
        f(n, name, v)?;
    }
    Ok(())
}

impl Entry {
    pub(crate) fn to_text(&self) -> String {
        format!("v={VERSION}\ntime={}\n{}{}", self.time, self.policy.to_text(), self.row.to_text())
    }

    /// Reads a spool file. Lines of a later minor addition (an unknown name) are ignored; a
    /// file of another version is refused whole.
    pub(crate) fn parse(text: &str) -> Result<Entry, SpoolError> {
        if text.len() > MAX_FILE {
            return Err(SpoolError::TooLong);
        }
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        if first != format!("v={VERSION}") {
            return Err(SpoolError::Version(first.chars().take(40).collect()));
        }
        let mut e = Entry::default();
        let mut time = None;
        read_lines(rest, 2, |n, name, v| {
            if name == "time" {
                time = Some(v.parse::<u64>().map_err(|_| SpoolError::Line(n, "bad time= value".into()))?);
            } else if !e.policy.field(n, name, v)? {
                e.row.field(n, name, v)?;
            }
            Ok(())
        })?;
        e.time = time.ok_or(SpoolError::Missing("time"))?;
        e.policy.check()?;
        e.row.check()?;
        Ok(e)
    }

    /// Whether every field the parser requires can be written: the words are words.
    pub(crate) fn is_writable(&self) -> bool {
        let p = &self.policy;
        let r = &self.row;
        [&p.domain, &p.discovery, &p.p, &p.adkim, &p.aspf, &r.source_ip, &r.header_from, &r.disposition]
            .iter()
            .all(|v| is_word(v))
            && r.dkim.iter().all(|d| is_word(&d.domain) && (d.selector.is_empty() || is_word(&d.selector)))
            && r.reasons.iter().all(|(t, c)| is_word(t) && is_text(c))
            && Entry::parse(&self.to_text()).is_ok()
    }
}

/// A name unique on this host and among hosts (maildir's: time, microseconds, process,
/// a counter, host name).
fn unique_name(time: u64) -> String {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_micros());
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into());
    let host: String =
        host.chars().map(|c| if c == '/' || c == ':' || !c.is_ascii_graphic() { '_' } else { c }).collect();
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!("{time}.M{micros}P{}Q{n}.{host}", std::process::id())
}

/// Writes `entry` into the spool `dir`: `dir/tmp/NAME`, flushed to disk, then renamed to
/// `dir/new/NAME`, so a reader never sees half a file. Returns the path in `new`.
pub fn write(dir: &Path, entry: &Entry) -> std::io::Result<PathBuf> {
    if !entry.is_writable() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the record holds a value it cannot carry"));
    }
    let name = unique_name(entry.time);
    let tmp = dir.join("tmp").join(&name);
    let new = dir.join("new").join(&name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(entry.to_text().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &new)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| new)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Entry {
        Entry {
            time: 1_796_000_000,
            policy: Policy {
                domain: "example.com".into(),
                discovery: "psl".into(),
                p: "reject".into(),
                sp: Some("quarantine".into()),
                np: None,
                adkim: "r".into(),
                aspf: "s".into(),
                fo: Some("1".into()),
                testing: None,
                rua: vec!["mailto:dmarc@example.com!10m".into(), "mailto:x@other.example".into()],
            },
            row: Row {
                source_ip: "2001:db8::1".into(),
                header_from: "example.com".into(),
                envelope_from: Some("bounce.example.com".into()),
                dkim: vec![
                    DkimAuth { domain: "example.com".into(), selector: "sel".into(), result: "pass".into() },
                    DkimAuth { domain: "other.example".into(), selector: String::new(), result: "fail".into() },
                ],
                spf: Some(("bounce.example.com".into(), "softfail".into())),
                dkim_aligned: true,
                spf_aligned: false,
                disposition: "reject".into(),
                reasons: vec![("local_policy".into(), "no letter".into())],
            },
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let e = sample();
        let text = e.to_text();
        assert!(text.starts_with("v=1\ntime=1796000000\ndomain=example.com\n"), "{text}");
        assert_eq!(Entry::parse(&text), Ok(e.clone()));
        assert_eq!(Policy::parse(&e.policy.to_text()), Ok(e.policy.clone()));
        assert_eq!(Row::parse(&e.row.to_text()), Ok(e.row.clone()));
    }

    #[test]
    fn unknown_lines_are_ignored_and_another_version_is_refused() {
        let text = sample().to_text().replace("time=", "later=x\ntime=");
        assert_eq!(Entry::parse(&text), Ok(sample()));
        assert!(matches!(Entry::parse(&sample().to_text().replace("v=1", "v=2")), Err(SpoolError::Version(_))));
        assert!(matches!(Entry::parse("v=1\n"), Err(SpoolError::Missing("time"))));
        for bad in ["p=block", "disposition=drop", "dkim=example.com sel", "spf=example.com helo pass", "source_ip=x"] {
            let text = format!("{}{bad}\n", sample().to_text());
            assert!(matches!(Entry::parse(&text), Err(SpoolError::Line(..))), "{bad}");
        }
    }

    #[test]
    fn a_value_that_would_break_a_line_is_not_written() {
        let mut e = sample();
        e.row.header_from = "example.com\ndisposition=none".into();
        assert!(!e.is_writable());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        std::fs::create_dir(dir.path().join("new")).unwrap();
        assert!(write(dir.path(), &e).is_err());
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let p = write(dir.path(), &sample()).unwrap();
        assert_eq!(Entry::parse(&std::fs::read_to_string(p).unwrap()), Ok(sample()));
    }

    #[test]
    fn spool_record_with_many_lines_is_linear() {
        crate::linear::assert_linear(
            "spool record, dkim lines repeated",
            64,
            |n| {
                let mut t = sample().to_text().into_bytes();
                t.extend(crate::linear::repeat(b"dkim=example.com sel pass\n", n));
                t
            },
            |v| drop(std::hint::black_box(Entry::parse(std::str::from_utf8(v).unwrap_or("")))),
        );
    }
}
