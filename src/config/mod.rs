//! Everything the environment and the control files decide, as plain data. Nothing here writes,
//! and only control files are read, so tests build an `Env` and a temporary control directory and
//! assert on the result.

pub mod control;
pub mod env;
pub mod options;

pub use control::ControlDir;
pub use env::Env;

use crate::dkim::sign::{default_header_list, SignParams};
use crate::error::{Error, Result};
use crate::message::{address_domain, Headers};
use control::{lookup_dkimkeys, parse_dkimkeys, EnvChange};
use std::path::{Path, PathBuf};

/// What to do with DKIM for this message (shared/SPEC.md §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A relay client with `RELAYCLIENT_NODKIMVERIFY`: hand the message on untouched.
    Pass,
    /// Sign with this key path template (`%` = signing domain).
    Sign { template: String },
    /// Verify; the letters decide refusals (empty: refuse nothing).
    Verify { letters: String },
}

pub const DEFAULT_KEY: &str = "domainkeys/%/default";

pub fn control_dir(env: &Env) -> ControlDir {
    ControlDir::new(env.nonempty("CONTROLDIR").unwrap_or(control::DEFAULT_CONTROLDIR))
}

pub fn dkim_mode(env: &Env) -> Mode {
    let relay = env.is_set("RELAYCLIENT") || env.is_set("AUTHINFO");
    if let Some(t) = env.get("DKIMSIGN") {
        let t = if t.is_empty() { env.nonempty("DKIMKEY").unwrap_or(DEFAULT_KEY) } else { t };
        return Mode::Sign { template: t.to_string() };
    }
    // A qmail-dk setup (DKSIGN or DKVERIFY, no DKIM variable) gets DomainKeys only, as it did
    // from qmail-dk: no DKIM default key, no DKIM-Status on every message.
    if !env.is_set("DKIMVERIFY") && (env.is_set("DKSIGN") || env.is_set("DKVERIFY")) {
        return Mode::Pass;
    }
    let bypass = env.is_set("RELAYCLIENT_NODKIMVERIFY") || env.is_set("RELAYCLIENT_NODKVERIFY");
    match env.get("DKIMVERIFY") {
        Some(_) if relay && bypass => Mode::Pass,
        Some(l) => Mode::Verify { letters: l.to_string() },
        None if relay => Mode::Sign { template: env.nonempty("DKIMKEY").unwrap_or(DEFAULT_KEY).to_string() },
        None => Mode::Verify { letters: String::new() },
    }
}

/// Where to look for a key: the candidates in order. When none exists, a template with `%`
/// means "this domain has no key: queue unsigned", one without `%` is error 35. A signing
/// domain that is not a DNS name ([`crate::domain::is_dns_name`]) has no key whatever the
/// template: it must not become part of a path (`..`), nor a `d=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChoice {
    /// Empty when the domain is not a DNS name.
    pub candidates: Vec<PathBuf>,
    pub has_percent: bool,
    pub domain: String,
}

impl KeyChoice {
    pub fn new(control: &ControlDir, template: &str, domain: &str) -> KeyChoice {
        let has_percent = template.contains('%');
        let mut candidates = Vec::new();
        if crate::domain::is_dns_name(domain) {
            candidates.push(control.resolve(&template.replace('%', domain)));
            // Without `%`, `/dir/%` would fall back to the directory itself.
            let removed = template.replace("/%/", "/").replace('%', "");
            if has_percent && !removed.is_empty() && !removed.ends_with('/') {
                candidates.push(control.resolve(&removed));
            }
            candidates.dedup();
        }
        KeyChoice { candidates, has_percent, domain: domain.to_string() }
    }

    /// The first candidate that exists, with its contents; `None` when the domain has no key
    /// (the message is queued unsigned: say so with [`KeyChoice::no_key`]).
    pub fn find(&self) -> Result<Option<(PathBuf, Vec<u8>)>> {
        match self.find_with(|p| std::fs::read(p)) {
            KeyFound::Read(path, pem) => Ok(Some((path, pem))),
            KeyFound::Unreadable(path, e) => Err(Error::key_unreadable(path, e)),
            KeyFound::Missing => match self.candidates.first() {
                Some(first) if !self.has_percent => Err(Error::KeyMissing(first.clone())),
                _ => Ok(None),
            },
        }
    }

    /// Why [`KeyChoice::find`] found no key, for the line on descriptor 2.
    pub fn no_key(&self) -> String {
        match self.candidates.first() {
            Some(first) => format!("no private key for {} ({})", self.domain, first.display()),
            None => format!("signing domain {:?} is not a domain name, so it has no key", self.domain),
        }
    }
}

/// What a search through the key candidates found.
#[derive(Debug)]
pub enum KeyFound {
    /// The first candidate that exists, and its contents.
    Read(PathBuf, Vec<u8>),
    /// The first candidate that exists but could not be read.
    Unreadable(PathBuf, std::io::Error),
    /// No candidate exists.
    Missing,
}

impl KeyChoice {
    /// Tries the candidates in order with `read` (qmail-dkim: `std::fs::read`; `dkim check`: the
    /// same as another user): a missing file or directory means "next", any other error stops.
    pub fn find_with(&self, mut read: impl FnMut(&Path) -> std::io::Result<Vec<u8>>) -> KeyFound {
        for cand in &self.candidates {
            match read(cand) {
                Ok(b) => return KeyFound::Read(cand.clone(), b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {}
                // `/dir/%` where the domain is a directory: that domain has no key file.
                Err(e) if e.raw_os_error() == Some(libc::EISDIR) && self.has_percent => {}
                Err(e) => return KeyFound::Unreadable(cand.clone(), e),
            }
        }
        KeyFound::Missing
    }
}

/// One key and the signatures to make with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignJob {
    pub key: KeyChoice,
    /// One per algorithm; `selector` is filled in from the key file that is found.
    pub params: Vec<SignParams>,
}

/// The selector: the key file's basename.
pub fn selector_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The signing domain (d=): Return-Path, Sender, From, X-Bounced-Address, then BOUNCEDOMAIN,
/// control/bouncehost, control/me.
pub fn signing_domain(headers: &Headers, env: &Env, control: &ControlDir) -> Result<Option<String>> {
    for name in ["Return-Path", "Sender", "From", "X-Bounced-Address"] {
        if let Some(d) = headers.first_value(name).and_then(|v| address_domain(&v)) {
            return Ok(Some(d));
        }
    }
    if let Some(b) = env.nonempty("BOUNCEDOMAIN") {
        let d = b.rsplit_once('@').map_or(b, |(_, d)| d).trim().trim_end_matches('.');
        if !d.is_empty() {
            return Ok(Some(d.to_ascii_lowercase()));
        }
    }
    for f in ["bouncehost", "me"] {
        if let Some(d) = control.first_line(f)? {
            return Ok(Some(d.trim_end_matches('.').to_ascii_lowercase()));
        }
    }
    Ok(None)
}

/// The signing jobs for a message: the primary key (dkimkeys entry or the template), then
/// `DKIMSIGNEXTRA`. The returned order is the order of the headers, top first (the extra
/// signature goes above the primary one).
pub fn sign_jobs(env: &Env, control: &ControlDir, template: &str, headers: &Headers, now: u64) -> Result<Vec<SignJob>> {
    let domain = signing_domain(headers, env, control)?.ok_or(Error::NoDomain)?;
    sign_jobs_for(env, control, template, &domain, headers, now)
}

/// [`sign_jobs`] for a signing domain the caller chose (qmail-dkim-remote: the envelope sender's).
pub fn sign_jobs_for(env: &Env, control: &ControlDir, template: &str, domain: &str, headers: &Headers, now: u64) -> Result<Vec<SignJob>> {
    let domain = domain.to_string();
    let mut env = env.clone();
    let mut template = template.to_string();
    if !env.is_set("NODKIMKEYS") {
        let path = control.resolve("dkimkeys");
        if let Some(lines) = control::read_lines(&path)? {
            let entries = parse_dkimkeys(&lines, &path)?;
            if let Some(e) = lookup_dkimkeys(&entries, &domain, env.is_set("QREGEX")) {
                template = e.key.clone();
                for c in &e.envstr {
                    match c {
                        EnvChange::Set(k, v) => env.set(k, v),
                        EnvChange::Unset(k) => env.unset(k),
                    }
                }
            }
        }
    }
    let exclude: Vec<String> = env.get("EXCLUDE_DKIMSIGN").unwrap_or("").split(':').map(|s| s.trim().to_string()).collect();
    let names = default_header_list(headers, &exclude);
    let primary = SignJob {
        key: KeyChoice::new(control, &template, &domain),
        params: params_for(&env, "DKIMSIGNOPTIONS", &domain, &names, now)?,
    };
    let mut jobs = Vec::new();
    if let Some(extra) = env.nonempty("DKIMSIGNEXTRA") {
        jobs.push(SignJob {
            key: KeyChoice::new(control, extra, &domain),
            params: params_for(&env, "DKIMSIGNOPTIONSEXTRA", &domain, &names, now)?,
        });
    }
    jobs.push(primary);
    Ok(jobs)
}

fn params_for(env: &Env, var: &str, domain: &str, names: &[String], now: u64) -> Result<Vec<SignParams>> {
    let o = options::parse(env.get(var).unwrap_or(""))
        .map_err(|e| Error::Config(format!("Invalid {var}: {e}")))?;
    let identity = match env.get("DKIMIDENTITY") {
        Some(i) => Some(i.to_string()).filter(|i| !i.is_empty() && i != "-"),
        None => o.identity.clone().flatten(),
    };
    let secs = match env.get("DKIMEXPIRE") {
        Some(x) if x.is_empty() || x == "-" => None,
        Some(x) => Some(x.trim().parse::<u64>().map_err(|_| Error::Config(format!("Invalid DKIMEXPIRE {x:?}")))?),
        None => match o.expire {
            None => Some(options::DEFAULT_EXPIRE),
            Some(s) => s,
        },
    };
    let timestamp = o.timestamp.then_some(now);
    Ok(o.algorithms
        .iter()
        .map(|&algorithm| SignParams {
            algorithm,
            canon: o.canon,
            domain: domain.to_string(),
            selector: String::new(),
            identity: identity.clone(),
            timestamp,
            expire: secs.map(|s| now + s),
            body_length: o.body_length,
            query_tag: o.query_tag,
            copy_headers: o.copy_headers,
            headers: names.to_vec(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::Algorithm;

    fn env(p: &[(&str, &str)]) -> Env {
        Env::from_pairs(p)
    }

    #[test]
    fn mode_choice() {
        assert_eq!(dkim_mode(&env(&[])), Mode::Verify { letters: String::new() });
        assert_eq!(dkim_mode(&env(&[("RELAYCLIENT", "")])), Mode::Sign { template: DEFAULT_KEY.into() });
        assert_eq!(dkim_mode(&env(&[("AUTHINFO", ""), ("DKIMKEY", "k/%")])), Mode::Sign { template: "k/%".into() });
        assert_eq!(dkim_mode(&env(&[("DKIMSIGN", "/k"), ("DKIMVERIFY", "FG")])), Mode::Sign { template: "/k".into() });
        assert_eq!(dkim_mode(&env(&[("DKIMVERIFY", "FG"), ("RELAYCLIENT", "")])), Mode::Verify { letters: "FG".into() });
        // DomainKeys-only setups (qmail-dk's variables): DKIM does nothing.
        assert_eq!(dkim_mode(&env(&[("DKSIGN", ""), ("RELAYCLIENT", "")])), Mode::Pass);
        assert_eq!(dkim_mode(&env(&[("DKVERIFY", "DEGIJKfh")])), Mode::Pass);
        assert_eq!(dkim_mode(&env(&[("DKVERIFY", ""), ("DKIMVERIFY", "")])), Mode::Verify { letters: String::new() });
        for v in ["RELAYCLIENT_NODKIMVERIFY", "RELAYCLIENT_NODKVERIFY"] {
            assert_eq!(dkim_mode(&env(&[("DKIMVERIFY", "FG"), ("RELAYCLIENT", ""), (v, "")])), Mode::Pass);
            assert_eq!(dkim_mode(&env(&[("DKIMVERIFY", "FG"), (v, "")])), Mode::Verify { letters: "FG".into() });
        }
    }

    #[test]
    fn key_candidates() {
        let c = ControlDir::new("/ctl");
        let k = KeyChoice::new(&c, "domainkeys/%/default", "a.org");
        assert_eq!(k.candidates, vec![PathBuf::from("/ctl/domainkeys/a.org/default"), PathBuf::from("/ctl/domainkeys/default")]);
        assert!(k.has_percent);
        let k = KeyChoice::new(&c, "/keys/sel", "a.org");
        assert_eq!(k.candidates, vec![PathBuf::from("/keys/sel")]);
        assert!(!k.has_percent);
    }

    /// `DKIMSIGN=/dir/%` without a key for the domain fell back to `/dir/` itself, and reading
    /// a directory failed with 55 (retried for ever) instead of queueing the message unsigned.
    #[test]
    fn percent_as_last_component_has_no_directory_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let c = ControlDir::new(dir.path());
        let template = format!("{}/%", dir.path().display());
        let k = KeyChoice::new(&c, &template, "a.org");
        assert_eq!(k.candidates, vec![dir.path().join("a.org")]);
        assert!(matches!(k.find(), Ok(None)));
        assert_eq!(KeyChoice::new(&c, "%", "a.org").candidates, vec![dir.path().join("a.org")]);
        // A directory where a `%` key should be is no key either; without `%` it is an error.
        std::fs::create_dir(dir.path().join("a.org")).unwrap();
        assert!(matches!(k.find(), Ok(None)));
        assert!(matches!(KeyChoice::new(&c, "a.org", "a.org").find(), Err(Error::KeyUnreadable { .. })));
        assert!(matches!(KeyChoice::new(&c, "missing", "a.org").find(), Err(Error::KeyMissing(_))));
    }

    /// `From: x@...` made `%` into `..` in the key path, and a domain too long for a file name
    /// gave 55: a signing domain that is not a DNS name has no key, with or without `%`.
    #[test]
    fn dot_dot_signing_domain_has_no_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("default"), "not used").unwrap();
        let c = ControlDir::new(dir.path().join("sub"));
        let long = format!("{}.org", "a".repeat(300));
        for bad in ["..", ".", "", "a/b", long.as_str()] {
            for template in ["%/default", "/keys/%", "default"] {
                let k = KeyChoice::new(&c, template, bad);
                assert!(k.candidates.is_empty(), "{bad:?} {template}");
                assert!(matches!(k.find(), Ok(None)), "{bad:?} {template}");
                assert!(k.no_key().contains("is not a domain name"));
            }
        }
        let h = Headers::parse(b"From: x@..\n".to_vec());
        let jobs = sign_jobs(&env(&[("NODKIMKEYS", "")]), &c, "%/default", &h, 0).unwrap();
        assert!(jobs[0].key.candidates.is_empty());
    }

    #[test]
    fn domain_order() {
        let dir = tempfile::tempdir().unwrap();
        let c = ControlDir::new(dir.path());
        let h = Headers::parse(b"From: a@from.org\nSender: b@sender.org\n".to_vec());
        assert_eq!(signing_domain(&h, &env(&[]), &c).unwrap().as_deref(), Some("sender.org"));
        let h = Headers::parse(b"Subject: x\n".to_vec());
        assert_eq!(signing_domain(&h, &env(&[("BOUNCEDOMAIN", "x@b.org")]), &c).unwrap().as_deref(), Some("b.org"));
        assert_eq!(signing_domain(&h, &env(&[]), &c).unwrap(), None);
        std::fs::write(dir.path().join("me"), "me.org\n").unwrap();
        assert_eq!(signing_domain(&h, &env(&[]), &c).unwrap().as_deref(), Some("me.org"));
        std::fs::write(dir.path().join("bouncehost"), "bh.org\n").unwrap();
        assert_eq!(signing_domain(&h, &env(&[]), &c).unwrap().as_deref(), Some("bh.org"));
    }

    #[test]
    fn jobs_with_dkimkeys_and_extra() {
        let dir = tempfile::tempdir().unwrap();
        let c = ControlDir::new(dir.path());
        std::fs::write(dir.path().join("dkimkeys"), "a.org:keys/a/sel:DKIMSIGNOPTIONS=-z 4 -t -x -,DKIMIDENTITY=\n").unwrap();
        let h = Headers::parse(b"From: x@a.org\nTo: y@b.org\nX-Foo: 1\nX-Mailer: m\nReceived: r\n".to_vec());
        let jobs = sign_jobs(&env(&[("DKIMSIGNEXTRA", "/extra/%/e")]), &c, "/k/%/d", &h, 1000).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].key.candidates[0], PathBuf::from("/extra/a.org/e"));
        assert_eq!(jobs[0].params[0].algorithm, Algorithm::RsaSha256);
        assert_eq!(jobs[1].key.candidates[0], dir.path().join("keys/a/sel"));
        let p = &jobs[1].params[0];
        assert_eq!(p.algorithm, Algorithm::Ed25519Sha256);
        assert_eq!((p.timestamp, p.expire), (Some(1000), None));
        assert_eq!(p.headers, vec!["from", "to", "x-mailer", "from"]);
        assert_eq!(jobs[0].params[0].expire, Some(1000 + 604_800));
        assert!(sign_jobs(&env(&[("NODKIMKEYS", "")]), &c, "/k/%/d", &h, 0).unwrap()[0].key.candidates[0]
            .starts_with("/k/a.org"));
        assert!(matches!(
            sign_jobs(&env(&[("DKIMSIGNOPTIONS", "-z 9"), ("NODKIMKEYS", "")]), &c, "/k", &h, 0),
            Err(Error::Config(_))
        ));
    }
}
