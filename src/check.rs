//! `dkim check`: what qmail-dkim would do for a connection and a sender. Every decision is made
//! by the function qmail-dkim itself calls (mode, signing domain, dkimkeys, key candidates, key
//! loading, queue program); the published record is judged by signing a probe message with the
//! key and verifying it through the DNS with the verifier. What lies outside qmail-dkim is
//! checked too: whether the user qmail-smtpd runs as can read the key, and `QMAILQUEUE`.

use crate::config::settings::ErrorSettings;
use crate::config::{self, KeyFound, Settings};
use crate::dkim::canon::BodyHasher;
use crate::dkim::key::{KeyType, SigningKey};
use crate::dkim::{record, sign, verify, HashAlg};
use crate::dns::{TxtAnswer, TxtLookup};
use crate::message::{find_header_end, Headers};
use crate::plan::{Mode, Plan, Stage};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A user as the kernel sees it for permission checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Every group, the primary one included.
    pub(crate) groups: Vec<u32>,
}

impl Who {
    /// The user `name` (or a number) with its supplementary groups from the group database.
    pub fn lookup(name: &str) -> Result<Who, String> {
        use nix::unistd::{getgrouplist, Uid, User};
        let user = match name.parse::<u32>() {
            Ok(n) => User::from_uid(Uid::from_raw(n)),
            Err(_) => User::from_name(name),
        }
        .map_err(|e| format!("cannot look up the user {name}: {e}"))?
        .ok_or_else(|| format!("there is no user {name}"))?;
        let cname = std::ffi::CString::new(user.name.clone()).map_err(|_| format!("bad user name {name:?}"))?;
        let mut groups: Vec<u32> =
            getgrouplist(&cname, user.gid).map_or_else(|_| vec![], |g| g.iter().map(|g| g.as_raw()).collect());
        if !groups.contains(&user.gid.as_raw()) {
            groups.push(user.gid.as_raw());
        }
        Ok(Who { name: user.name, uid: user.uid.as_raw(), gid: user.gid.as_raw(), groups })
    }

    /// `qmaild (uid 998, group nofiles)`.
    pub(crate) fn describe(&self) -> String {
        format!("{} (uid {}, group {})", self.name, self.uid, group_name(self.gid))
    }
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// `0640 root:nofiles`.
fn mode_owner(m: &fs::Metadata) -> String {
    format!("mode {:04o} {}:{}", m.mode() & 0o7777, user_name(m.uid()), group_name(m.gid()))
}

/// The permission class of `who` for a file: owner bits, else group bits, else other bits.
fn allows(m: &fs::Metadata, who: &Who, bit: u32) -> bool {
    let mode = m.mode();
    if m.uid() == who.uid {
        mode >> 6 & bit != 0
    } else if who.groups.contains(&m.gid()) {
        mode >> 3 & bit != 0
    } else {
        mode & bit != 0
    }
}

/// Would `who` be able to open `path` for reading? Walks the path as the kernel does, with the
/// owner/group/other bits (ACLs are not consulted); root reads anything. Missing files give
/// `NotFound`, as the real open would.
pub(crate) fn may_read(path: &Path, who: &Who) -> io::Result<()> {
    let abs = std::path::absolute(path)?;
    let denied = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    let mut cur = PathBuf::new();
    let mut comps = abs.components().peekable();
    while let Some(c) = comps.next() {
        cur.push(c);
        let m = fs::metadata(&cur)?;
        if who.uid == 0 {
            continue;
        }
        if comps.peek().is_some() {
            if m.is_dir() && !allows(&m, who, 0o1) {
                return Err(denied(format!(
                    "{} cannot enter the directory {} ({})",
                    who.describe(),
                    cur.display(),
                    mode_owner(&m)
                )));
            }
        } else if !allows(&m, who, 0o4) {
            return Err(denied(format!(
                "{} cannot read it ({}); give it to that group: chgrp {} {p}; chmod 0640 {p}",
                who.describe(),
                mode_owner(&m),
                group_name(who.gid),
                p = cur.display()
            )));
        }
    }
    Ok(())
}

/// What `dkim check` found: report lines, and one line per problem.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

impl Report {
    pub fn say(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }
    pub fn problem(&mut self, s: impl Into<String>) {
        self.problems.push(s.into());
    }
}

/// What to check.
pub struct Request<'a> {
    /// What qmail-dkim would read (the run script's environment, plus the rule's variables).
    pub settings: &'a Settings,
    /// The envelope sender / From address of a message.
    pub from: Option<&'a str>,
    /// The user qmail-dkim runs as; `None`: whoever runs the check.
    pub user: Option<&'a Who>,
    pub now: u64,
}

/// Checks everything qmail-dkim depends on for this request, in the order it uses them.
pub fn check(req: &Request<'_>, dns: &dyn TxtLookup, out: &mut Report) {
    let s = req.settings;
    match &s.qmailqueue {
        None => {
            out.problem("QMAILQUEUE is not set: qmail-smtpd hands the message to qmail-queue and qmail-dkim never runs")
        }
        Some(q) => {
            out.say(format!("QMAILQUEUE: {q}"));
            if let Some(why) = not_runnable(Path::new(q)) {
                out.problem(format!("QMAILQUEUE={q}: {why}"));
            }
        }
    }
    // The plan qmail-dkim would make.
    let plan = Plan::new(s, Stage::Entry);
    match &plan.mode {
        Mode::Pass => out.say(format!("mode: pass (DKIM neither signs nor verifies: {})", why_pass(s))),
        Mode::Verify { letters } => {
            out.say(format!("mode: verify ({})", why_verify(s)));
            if letters.is_empty() {
                out.say("refuses: nothing (DKIMVERIFY is empty or unset: results are only recorded)");
            } else {
                let named: Vec<String> = letters
                    .chars()
                    .map(|c| match verify::Outcome::from_letter(c) {
                        Some(o) => format!("{c} {}", o.name()),
                        None => format!("{c} (no such letter)"),
                    })
                    .collect();
                out.say(format!("refuses (DKIMVERIFY={letters}): {}", named.join(", ")));
            }
        }
        Mode::Sign { template } => {
            out.say(format!("mode: sign ({}), key template {template}", why_sign(s)));
            check_signing(req, template, dns, out);
        }
    }
    check_queue_time(req, &plan, out);
    let queue = crate::queue::choose(&[], &s.queue, plan.dk_only);
    let prog = PathBuf::from(&queue[0]);
    out.say(format!("queue program: {}", prog.display()));
    if let Some(why) = not_runnable(&prog) {
        out.problem(format!("the queue program {}: {why}", prog.display()));
    }
    out.say(format!("refusals: {}", error_convention(&s.errors)));
}

/// A check's letters and what each refuses.
type Letters = &'static [(char, &'static str)];

/// SPF, DMARC and ARC: what runs, what each letter refuses, and whether the seal's key is there
/// (docs/dmarc.md).
fn check_queue_time(req: &Request<'_>, plan: &Plan, out: &mut Report) {
    let s = req.settings;
    let checks = &plan.checks;
    let relay = s.relay();
    // (variable, its value, method, the letters that run, what each letter refuses)
    type Check<'a> = (&'a str, &'a Option<String>, &'a str, &'a Option<String>, Letters);
    let lists: [Check<'_>; 3] = [
        (
            "SPFVERIFY",
            &s.spfverify,
            "spf",
            &checks.spf,
            &[('F', "fail"), ('S', "softfail"), ('N', "neutral"), ('T', "temperror"), ('P', "permerror")],
        ),
        (
            "DMARCVERIFY",
            &s.dmarcverify,
            "dmarc",
            &checks.dmarc,
            &[('R', "p=reject"), ('Q', "p=quarantine"), ('N', "p=none"), ('T', "temperror"), ('P', "permerror")],
        ),
        ("ARCVERIFY", &s.arcverify, "arc", &checks.arc, &[('F', "fail"), ('T', "temperror")]),
    ];
    for (var, value, method, letters, known) in lists {
        let Some(letters) = letters else {
            if relay && value.is_some() {
                out.say(format!("{method}: not checked ({var} is ignored for a relay client)"));
            }
            continue;
        };
        let why = match (value, method) {
            (Some(_), _) => "",
            (None, "spf") => " (DMARCVERIFY needs it)",
            (None, _) => " (ARCSIGN needs it)",
        };
        if letters.is_empty() {
            out.say(format!("{method}: checked, refuses nothing{why}"));
            continue;
        }
        let mut named = Vec::new();
        for c in letters.chars() {
            match known.iter().find(|(k, _)| *k == c.to_ascii_uppercase()) {
                Some((_, what)) => {
                    let how = if c.is_ascii_uppercase() && c != 'T' { "permanently" } else { "temporarily" };
                    named.push(format!("{c} {what} {how}"));
                }
                None => out.problem(format!("{var}={letters}: {c} is not a letter of {var}")),
            }
        }
        out.say(format!("{method}: checked, refuses ({var}={letters}): {}", named.join(", ")));
    }
    if checks.spf.is_some() && s.tcpremoteip.is_none() {
        out.say("spf: TCPREMOTEIP is not set here (tcpserver sets it): local injection gets spf=none");
    }
    if let Some(template) = &checks.arc_sign {
        // As qmail-dkim decides it for a message from --from (qmail-dkim's own function).
        let from = req.from.map_or_else(Vec::new, |f| format!("From: {f}\n").into_bytes());
        let domain = match crate::plan::seal_domain(s, &Headers::parse(from)) {
            Ok(d) => d,
            Err(e) => {
                out.problem(format!("ARCSIGN: no sealing domain ({e}): set ARCDOMAIN"));
                return;
            }
        };
        let choice = config::KeyChoice::new(&s.control, template, &domain);
        match choice.find_with(|p| {
            if let Some(w) = req.user {
                may_read(p, w)?;
            }
            fs::read(p)
        }) {
            KeyFound::Read(path, pem) => match SigningKey::from_pem(&pem, false).and(config::key_selector(&path, &pem))
            {
                Ok(s) => out.say(format!("arc seal: d={domain} s={s} key {}", path.display())),
                Err(e) => out.problem(format!("ARCSIGN key {}: {e}", path.display())),
            },
            KeyFound::Unreadable(path, e) => out.problem(format!("ARCSIGN key {}: {e}", path.display())),
            KeyFound::Missing => out.problem(format!("ARCSIGN: {}: messages are not sealed", choice.no_key())),
        }
    }
}

fn why_sign(s: &Settings) -> String {
    if s.dkimsign.is_some() {
        "DKIMSIGN is set".into()
    } else if s.relayclient {
        "RELAYCLIENT is set and DKIMVERIFY is not".into()
    } else {
        "AUTHINFO is set and DKIMVERIFY is not".into()
    }
}

fn why_verify(s: &Settings) -> String {
    match (s.relay(), s.dkimverify.is_some()) {
        (false, _) => "neither DKIMSIGN nor RELAYCLIENT nor AUTHINFO is set".into(),
        (true, true) => "DKIMVERIFY is set, DKIMSIGN is not; a relay client is verified too".into(),
        (true, false) => "DKIMSIGN is not set".into(),
    }
}

fn why_pass(s: &Settings) -> String {
    if s.dksign.is_some() || s.dkverify.is_some() {
        "a DomainKeys-only setup (DKSIGN or DKVERIFY without a DKIM variable)".into()
    } else {
        "a relay client with RELAYCLIENT_NODKIMVERIFY".into()
    }
}

/// Why a program cannot be run, if it cannot.
fn not_runnable(p: &Path) -> Option<String> {
    match fs::metadata(p) {
        Err(e) => Some(e.to_string()),
        Ok(m) if !m.is_file() => Some("not a file".into()),
        Ok(m) if m.mode() & 0o111 == 0 => Some("not executable".into()),
        Ok(_) => None,
    }
}

/// The custom-error convention, chosen as [`crate::refusal`] says (a permanent refusal stays
/// permanent on every qmail).
fn error_convention(e: &ErrorSettings) -> String {
    let known = e.custom_errors.as_deref().map(|v| v.trim().to_ascii_lowercase());
    if let (Some(v), true) =
        (&e.custom_errors, matches!(known.as_deref(), Some("indimail" | "notqmail" | "none" | "netqmail")))
    {
        // Our own descriptor 6 says nothing about qmail-smtpd's: an explicit value decides alone.
        let what = match crate::queue::CustomErrors::choose(e, || false) {
            crate::queue::CustomErrors::Notqmail => "notqmail's: exit 82, the text on descriptor 6",
            crate::queue::CustomErrors::Indimail => "indimail's: exit 88, the text on ERROR_FD (default 2)",
            crate::queue::CustomErrors::None => "none: exit 31 (permanent) or 71 (temporary)",
        };
        return format!("CUSTOM_ERRORS={v}, {what}");
    }
    let otherwise = if e.error_fd.as_deref().map(str::trim) == Some("-1") {
        "else none (exit 31 or 71) since ERROR_FD=-1 is indimail's \"no reply pipe\""
    } else if e.error_fd.is_some() {
        "else indimail's (exit 88, text on ERROR_FD) since ERROR_FD is set"
    } else {
        "else none (exit 31 or 71, understood by every qmail)"
    };
    format!(
        "CUSTOM_ERRORS is not set (or not one of indimail, notqmail, none): notqmail's convention (exit 82, text on descriptor 6) when descriptor 6 is a pipe, as notqmail's qmail-smtpd gives it; {otherwise}"
    )
}

fn check_signing(req: &Request<'_>, template: &str, dns: &dyn TxtLookup, out: &mut Report) {
    let s = req.settings;
    // Without --from the domain comes from BOUNCEDOMAIN or the control files, as for a
    // message without sender fields; the probe message then comes from its postmaster.
    let from = match req.from {
        Some(f) => f.to_string(),
        None => match config::signing_domain(&Headers::parse(Vec::new()), s) {
            Ok(Some(d)) => format!("postmaster@{d}"),
            _ => String::new(),
        },
    };
    let probe_msg =
        if from.is_empty() { PROBE.as_bytes().to_vec() } else { format!("From: {from}\n{PROBE}").into_bytes() };
    let Some((end, body)) = find_header_end(&probe_msg, 0) else { return };
    let headers = Headers::parse(probe_msg[..end].to_vec());
    let jobs = match crate::plan::sign_jobs(s, template, &headers, req.now) {
        Ok(j) => j,
        Err(e) => {
            out.problem(format!("qmail-dkim refuses every message from this client: {e}"));
            return;
        }
    };
    let whom = req.user.map_or_else(|| "this user".to_string(), Who::describe);
    for job in jobs {
        let domain = job.params.first().map_or(String::new(), |p| p.domain.clone());
        out.say(format!(
            "signing domain: {domain}; key candidates: {}",
            job.key.candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")
        ));
        let found = job.key.find_with(|p| {
            if let Some(w) = req.user {
                may_read(p, w)?;
            }
            fs::read(p)
        });
        let (path, pem) = match found {
            KeyFound::Read(path, pem) => {
                out.say(format!("key: {} (readable by {whom})", path.display()));
                (path, pem)
            }
            KeyFound::Unreadable(path, e) => {
                out.problem(format!(
                    "qmail-dkim cannot read the key {}, so it defers every message (temporary error): {e}",
                    path.display()
                ));
                // Go on with the check as the caller, who may read it.
                match fs::read(&path) {
                    Ok(pem) => (path, pem),
                    Err(_) => continue,
                }
            }
            KeyFound::Missing if job.key.has_percent => {
                out.problem(format!(
                    "no key for {domain}: none of {} exists, so mail from {domain} is queued unsigned",
                    job.key.candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")
                ));
                continue;
            }
            KeyFound::Missing => {
                out.problem(format!(
                    "the key {} does not exist: qmail-dkim refuses every message (exit 35)",
                    job.key.candidates[0].display()
                ));
                continue;
            }
        };
        let need_sha1 = job.params.iter().any(|p| p.algorithm.hash() == HashAlg::Sha1);
        let key = match SigningKey::from_pem(&pem, need_sha1) {
            Ok(k) => k,
            Err(reason) => {
                out.problem(format!("unusable private key {}: {reason}", path.display()));
                continue;
            }
        };
        let selector = match config::key_selector(&path, &pem) {
            Ok(s) => s,
            Err(reason) => {
                out.problem(format!("unusable private key {}: {reason}", path.display()));
                continue;
            }
        };
        for mut p in job.params {
            p.selector = selector.clone();
            let sig = format!("d={} s={} a={}", p.domain, p.selector, p.algorithm.as_str());
            if !key.fits(p.algorithm) {
                out.problem(format!(
                    "{sig}: a {} key cannot make {} signatures (check DKIMSIGNOPTIONS -z)",
                    key.key_type().as_str(),
                    p.algorithm.as_str()
                ));
                continue;
            }
            out.say(format!("signature: {sig}"));
            probe(&p, &key, (&headers, &probe_msg, body), dns, req.now, out);
        }
    }
}

/// The rest of the message `dkim check` signs and verifies, after its From field.
const PROBE: &str = "Subject: dkim check\n\nA probe of dkim check.\n";

/// Signs the probe message with the key and verifies it through the DNS, as a receiver would.
fn probe(
    p: &sign::SignParams,
    key: &SigningKey,
    (headers, msg, body): (&Headers, &[u8], usize),
    dns: &dyn TxtLookup,
    now: u64,
    out: &mut Report,
) {
    let name = format!("{}._domainkey.{}", p.selector, p.domain);
    let mut h = BodyHasher::new(p.canon.body, p.algorithm.hash(), None);
    h.update(&msg[body..]);
    let (hash, len) = h.finish();
    let mut signed = match sign::sign(headers, p, &hash, len, key) {
        Ok(f) => f,
        Err(e) => {
            out.problem(format!("signing a probe with d={} s={} fails: {e}", p.domain, p.selector));
            return;
        }
    };
    signed.extend_from_slice(msg);
    let report = verify::verify_message(&signed, dns, &verify::Options::default(), now);
    let Some(r) = report.results.first() else { return };
    if r.outcome.is_pass() {
        out.say(format!("record {name}: a receiver verifies the signature ({})", r.outcome.name()));
        if let TxtAnswer::Records(recs) = dns.txt(&name) {
            if recs.iter().any(|rec| is_testing(rec)) {
                out.say(format!("record {name}: t=y (testing): drop it once mail verifies"));
            }
        }
        return;
    }
    let mut text = format!("record {name}: a receiver gets {} {} ({})", r.outcome.letter(), r.outcome.name(), r.detail);
    // What the record says about this key, unless the DNS did not answer at all.
    if r.outcome.letter() != 'P' {
        text.push_str(": ");
        text.push_str(&judge(&dns.txt(&name), &key.public_key_dns(), key.key_type()).0);
    }
    out.problem(text);
}

/// t=y, read by the verifier's key record reader.
fn is_testing(rec: &[u8]) -> bool {
    record::KeyTags::parse(rec).is_ok_and(|t| t.testing)
}

/// What a published record means for this key (`dkim testkey`), with its exit code: 0 match
/// or testing, 1 missing/malformed/revoked/mismatch, 3 a temporary DNS failure.
pub fn judge(answer: &TxtAnswer, mine: &[u8], kind: KeyType) -> (String, u8) {
    use crate::dkim::record::{decode_public_key, KeyTags};
    let recs = match answer {
        TxtAnswer::TempFail(e) => return (format!("temporary DNS failure: {e}"), 3),
        TxtAnswer::NotFound => return ("missing: no TXT record".to_string(), 1),
        TxtAnswer::BadName => return ("malformed: invalid DNS name".to_string(), 1),
        TxtAnswer::Records(recs) => recs,
    };
    // The record is read by the verifier's own reader, step by step, so that a record testkey
    // passes is one mail passes with.
    let [rec] = recs.as_slice() else {
        return (format!("malformed: {} TXT records at this name", recs.len()), 1);
    };
    let tags = match KeyTags::parse(rec) {
        Ok(t) => t,
        Err((verify::Outcome::KeyRevoked, _)) => return ("revoked: p= is empty".into(), 1),
        Err((_, why)) => return (format!("malformed: {why}"), 1),
    };
    if tags.k != kind {
        return (format!("mismatch: the record is k={}, the key is {kind}", tags.k), 1);
    }
    let published = match tags.p_bytes() {
        Ok(p) => p,
        Err((_, why)) => return (format!("malformed: {why}"), 1),
    };
    let published = match decode_public_key(tags.k, &published) {
        Ok(key) => key,
        Err(why) => return (format!("unusable: {why}"), 1),
    };
    if decode_public_key(kind, mine).ok() != Some(published) {
        return ("mismatch: the record publishes another key".into(), 1);
    }
    if tags.testing {
        ("testing: the record publishes this key with t=y".into(), 0)
    } else {
        ("match".into(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn nobody() -> Who {
        Who { name: "nobody".into(), uid: 65534, gid: 65534, groups: vec![65534] }
    }

    #[test]
    fn may_read_walks_the_directories() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("d");
        fs::create_dir(&sub).unwrap();
        let key = sub.join("k");
        fs::write(&key, "x").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(may_read(&key, &nobody()).is_ok());
        // The key's mode.
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let e = may_read(&key, &nobody()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("cannot read it (mode 0600"), "{e}");
        // Group read for a member of the file's group.
        let member = Who { groups: vec![65534, fs::metadata(&key).unwrap().gid()], ..nobody() };
        fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(may_read(&key, &member).is_ok());
        assert!(may_read(&key, &nobody()).is_err());
        // A directory on the way that the user cannot enter.
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
        let e = may_read(&key, &nobody()).unwrap_err();
        assert!(e.to_string().contains(&format!("cannot enter the directory {}", sub.display())), "{e}");
        // Missing is missing, as for the real open; root reads anything.
        assert_eq!(may_read(&sub.join("none"), &nobody()).unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        let root = Who { name: "root".into(), uid: 0, gid: 0, groups: vec![0] };
        assert!(may_read(&key, &root).is_ok());
        assert_eq!(may_read(&sub.join("none"), &root).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    /// `dkim testkey` reads a record with the verifier's reader: what the verifier calls L, N,
    /// E or R, testkey does not call a match (a DKIM record next to an SPF record used to be).
    #[test]
    fn judge_reads_records_as_the_verifier() {
        use base64::Engine as _;
        let key = SigningKey::from_pem(&crate::dkim::key::fixture("rsa-1024-pkcs8.pem"), false).unwrap();
        let mine = key.public_key_dns();
        let p = base64::engine::general_purpose::STANDARD.encode(&mine);
        let one = |r: String| TxtAnswer::Records(vec![r.into_bytes()]);
        let cases = [
            (one(format!("v=DKIM1; k=rsa; p={p}")), "match", 0),
            (one(format!("v=DKIM1; t=s:y; p={p}")), "testing: the record publishes this key with t=y", 0),
            (
                TxtAnswer::Records(vec![b"v=spf1 -all".to_vec(), format!("v=DKIM1; p={p}").into_bytes()]),
                "malformed: 2 TXT records at this name",
                1,
            ),
            (one(format!("v=DKIM1; s=tlsrpt; p={p}")), "malformed: key service s=tlsrpt is not email", 1),
            (one(format!("v=DKIM1; k=dsa; p={p}")), "malformed: unknown key type k=dsa", 1),
            (one(format!("p={p}; v=DKIM1")), "malformed: key record v=DKIM1 (must be DKIM1, first)", 1),
            (one("v=DKIM1; k=rsa".into()), "malformed: key record has no p=", 1),
            (one("v=DKIM1; p= ".into()), "revoked: p= is empty", 1),
            (one(format!("v=DKIM1; k=ED25519; p={p}")), "mismatch: the record is k=ed25519, the key is rsa", 1),
            (one("v=DKIM1; p=!!!".into()), "malformed: p= is not base64", 1),
            (one("v=DKIM1; p=AAAA".into()), "unusable: p= is not an RSA public key", 1),
        ];
        for (answer, word, code) in cases {
            assert_eq!(judge(&answer, &mine, KeyType::Rsa), (word.to_string(), code), "{answer:?}");
        }
    }
}
