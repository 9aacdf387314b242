//! `dkim keys rotate`, `advance` and `status`: the steps of a key's life, each one write that
//! appears whole (a file renamed into place), the state file written after each, so a run
//! killed between two steps leaves a state the next run completes.

use super::files::{self, Ownership};
use super::state::{self, Key, State};
use super::{format_time, slot, LATE, PUBLISH_WAIT, REMOVE_AFTER, RETIRE_MARGIN};
use crate::check::{judge, Report};
use crate::config::{key_selector, SELECTOR_LINE};
use crate::dkim::key::KeyType;
use crate::dns::{TxtAnswer, TxtLookup};
use crate::keygen::{self, DkimRecordOptions, RecordForms};
use base64::Engine as _;
use rsa::pkcs8::der::zeroize::Zeroizing;
use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

/// One byte more than a key file may have, so the reader sees a longer file as too long.
const MAX_KEY_FILE: u64 = crate::keyfile::MAX_KEY_FILE as u64 + 1;
/// The key types, in the order they are reported.
const KINDS: [KeyType; 2] = [KeyType::Rsa, KeyType::Ed25519];

/// What every command needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The key directory (`$CONTROLDIR/domainkeys`).
    pub dir: PathBuf,
    /// The time the command acts at (`--now`).
    pub now: u64,
    /// `control/queuelifetime`.
    pub queuelifetime: u64,
    /// How records are printed.
    pub forms: RecordForms,
}

impl Settings {
    /// When a key that stopped signing at `since` may be revoked.
    fn retire_until(&self, since: u64) -> u64 {
        since.saturating_add(self.queuelifetime).saturating_add(RETIRE_MARGIN)
    }
}

/// Why a run ended early.
#[derive(Debug)]
pub enum Halt {
    /// The test's stand-in for a kill, at a step boundary.
    Stopped,
    Failed(String),
}

impl From<String> for Halt {
    fn from(s: String) -> Self {
        Halt::Failed(s)
    }
}

/// Called after each step that is on disk, with its name; `true` stops the run there as a kill
/// would (tests).
pub type Stop<'a> = &'a mut dyn FnMut(&str) -> bool;

fn read_bounded(path: &Path) -> io::Result<Zeroizing<Vec<u8>>> {
    let f = fs::File::open(path)?;
    let mut v = Zeroizing::new(Vec::new());
    f.take(MAX_KEY_FILE).read_to_end(&mut v)?;
    Ok(v)
}

/// The key in a slot file: what qmail-dkim signs with now.
struct SlotKey {
    selector: String,
    p: String,
    own: Ownership,
}

fn read_slot(dir: &Path, kind: KeyType) -> Result<Option<SlotKey>, String> {
    let path = dir.join(slot(kind));
    let pem = match read_bounded(&path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let info = keygen::public_key_info(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    if info.kind != kind {
        return Err(format!("{} holds an {} key; dkim keys keeps {kind} keys there", path.display(), info.kind));
    }
    let selector = key_selector(&path, &pem).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(SlotKey { selector, p: info.p, own: Ownership::like(&meta) }))
}

/// Brings the state in line with the slot file, which is what qmail-dkim signs with: after a
/// switch killed before the state was written, a first rotation, or a key put there by hand.
/// Returns what it changed, one line each.
fn reconcile(keys: &mut Vec<Key>, slot_key: Option<&SlotKey>, kind: KeyType, now: u64) -> Vec<String> {
    let Some(sk) = slot_key else { return Vec::new() };
    let active = keys.iter().position(|k| k.kind == kind && k.state == State::Active);
    if active.is_some_and(|i| keys[i].selector == sk.selector && keys[i].p == sk.p) {
        return Vec::new();
    }
    let mut notes = Vec::new();
    match keys.iter().position(|k| k.selector == sk.selector) {
        Some(i) => {
            if keys[i].p != sk.p {
                notes.push(format!(
                    "{}: the file {} holds another key under this selector (replaced by hand?)",
                    sk.selector,
                    slot(kind)
                ));
                keys[i].p = sk.p.clone();
                keys[i].kind = kind;
            }
            if keys[i].state != State::Active {
                keys[i].state = State::Active;
                keys[i].since = now;
                notes.push(format!("{} active: the file {} names it", sk.selector, slot(kind)));
            }
        }
        None => {
            keys.push(Key { selector: sk.selector.clone(), kind, state: State::Active, since: now, p: sk.p.clone() });
            notes.push(format!("{} active: the key of the file {}, taken into the rotation", sk.selector, slot(kind)));
        }
    }
    if let Some(i) = active.filter(|&i| keys[i].selector != sk.selector) {
        keys[i].state = State::Retiring;
        keys[i].since = now;
        notes.push(format!("{} retiring: it no longer signs", keys[i].selector));
    }
    notes
}

/// The domains of the key directory: `only`, else every subdirectory named like a domain that
/// has a state file (or, with `with_slots`, a slot file).
fn domains(dir: &Path, only: Option<&str>, with_slots: bool) -> Result<Vec<String>, String> {
    if let Some(d) = only {
        return Ok(vec![d.trim_end_matches('.').to_ascii_lowercase()]);
    }
    let rd = fs::read_dir(dir).map_err(|e| format!("cannot read the key directory {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        let wanted =
            p.join(state::STATE_FILE).exists() || (with_slots && KINDS.iter().any(|&k| p.join(slot(k)).is_file()));
        if p.is_dir() && keygen::looks_like_domain(&name) && wanted {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// What the record of a key says about it: the verdict words of `dkim testkey` and whether it
/// is a match.
fn record(dns: &dyn TxtLookup, domain: &str, k: &Key) -> (TxtAnswer, String, bool) {
    let name = keygen::key_record_name(&k.selector, domain);
    let answer = dns.txt(&name);
    let mine = base64::engine::general_purpose::STANDARD.decode(&k.p).unwrap_or_default();
    let (verdict, code) = judge(&answer, &mine, k.kind);
    (answer, verdict, code == 0)
}

fn save(dir: &Path, domain: &str, keys: &[Key], stop: Stop<'_>, step: &str) -> Result<(), Halt> {
    state::write(dir, domain, keys)?;
    halt_at(stop, step)
}

fn halt_at(stop: Stop<'_>, step: &str) -> Result<(), Halt> {
    if stop(step) {
        Err(Halt::Stopped)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// advance

/// `dkim keys advance`: every step that is due, for `only` or every domain with a state file.
/// Problems go to `out` (one per domain at most when a domain cannot be read); the others go on.
pub fn advance(s: &Settings, only: Option<&str>, dns: &dyn TxtLookup, out: &mut Report) -> Result<(), String> {
    match advance_with(s, only, dns, out, &mut |_| false) {
        Ok(()) | Err(Halt::Stopped) => Ok(()),
        Err(Halt::Failed(e)) => Err(e),
    }
}

/// [`advance`], calling `stop` after each step.
pub fn advance_with(
    s: &Settings,
    only: Option<&str>,
    dns: &dyn TxtLookup,
    out: &mut Report,
    stop: Stop<'_>,
) -> Result<(), Halt> {
    for domain in domains(&s.dir, only, false)? {
        match advance_domain(s, &domain, dns, out, stop) {
            Err(Halt::Failed(e)) => out.problem(format!("{domain}: {e}")),
            r => r?,
        }
    }
    Ok(())
}

fn advance_domain(
    s: &Settings,
    domain: &str,
    dns: &dyn TxtLookup,
    out: &mut Report,
    stop: Stop<'_>,
) -> Result<(), Halt> {
    let dir = s.dir.join(domain);
    let mut keys = state::read(&dir)?;
    if keys.is_empty() {
        out.say(format!("{domain}: no rotation under way (dkim keys rotate -d {domain} starts one)"));
        return Ok(());
    }
    let before = keys.clone();
    for kind in KINDS {
        match read_slot(&dir, kind) {
            Ok(sk) => {
                for n in reconcile(&mut keys, sk.as_ref(), kind, s.now) {
                    out.say(format!("{domain} {n}"));
                }
            }
            Err(e) => out.problem(format!("{domain}: {e}")),
        }
    }
    if keys != before {
        save(&dir, domain, &keys, stop, "reconcile")?;
    }
    // revoked -> removed
    for i in 0..keys.len() {
        let k = &keys[i];
        if k.state != State::Revoked || s.now < k.since.saturating_add(REMOVE_AFTER) {
            continue;
        }
        // A key taken over from a slot file has no file of its own.
        if !KINDS.iter().any(|&t| slot(t) == k.selector) {
            for f in [k.selector.clone(), format!("{}.pub", k.selector)] {
                match fs::remove_file(dir.join(&f)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Halt::Failed(format!("cannot remove {}: {e}", dir.join(&f).display()))),
                }
            }
            halt_at(stop, "remove files")?;
        }
        out.say(format!(
            "{domain} {} removed: its private key is deleted; delete the TXT record {} now",
            k.selector,
            keygen::key_record_name(&k.selector, domain)
        ));
        keys[i].state = State::Removed;
        keys[i].since = s.now;
        save(&dir, domain, &keys, stop, "removed")?;
    }
    // retiring -> revoked
    for i in 0..keys.len() {
        let k = &keys[i];
        if k.state != State::Retiring || s.now < s.retire_until(k.since) {
            continue;
        }
        out.say(format!(
            "{domain} {} revoked: no mail signed with it can still be queued; replace the TXT record {} by:",
            k.selector,
            keygen::key_record_name(&k.selector, domain)
        ));
        out.say(keygen::render_revocation(&k.selector, domain, k.kind, s.forms).trim_end().to_string());
        keys[i].state = State::Revoked;
        keys[i].since = s.now;
        save(&dir, domain, &keys, stop, "revoked")?;
    }
    // published -> active
    for kind in KINDS {
        let Some(i) = keys.iter().rposition(|k| k.kind == kind && k.state == State::Published) else { continue };
        if s.now < keys[i].since.saturating_add(PUBLISH_WAIT) {
            continue;
        }
        let (_, verdict, ok) = record(dns, domain, &keys[i]);
        if !ok {
            out.problem(format!(
                "{domain} {}: not switched to: record {}: {verdict}",
                keys[i].selector,
                keygen::key_record_name(&keys[i].selector, domain)
            ));
            continue;
        }
        switch(s, &dir, domain, &mut keys, i, out, stop)?;
    }
    // new -> published
    for i in 0..keys.len() {
        if keys[i].state != State::New {
            continue;
        }
        let name = keygen::key_record_name(&keys[i].selector, domain);
        let (answer, verdict, ok) = record(dns, domain, &keys[i]);
        if !ok {
            let line = format!("{domain} {} new: record {name}: {verdict}", keys[i].selector);
            if matches!(answer, TxtAnswer::NotFound) {
                out.say(format!("{line}: publish it (dkim keys status shows it); the active key goes on signing"));
            } else {
                out.problem(line);
            }
            continue;
        }
        out.say(format!(
            "{domain} {} published: its record {name} answers and matches; it signs from {} on",
            keys[i].selector,
            format_time(s.now.saturating_add(PUBLISH_WAIT))
        ));
        keys[i].state = State::Published;
        keys[i].since = s.now;
        save(&dir, domain, &keys, stop, "published")?;
    }
    Ok(())
}

/// The switch: a copy of the key's file, its first line naming its selector, renamed over the
/// slot file. Then the state: the key active, the one before it retiring.
fn switch(
    s: &Settings,
    dir: &Path,
    domain: &str,
    keys: &mut [Key],
    i: usize,
    out: &mut Report,
    stop: Stop<'_>,
) -> Result<(), Halt> {
    let k = keys[i].clone();
    let src = dir.join(&k.selector);
    let pem = read_bounded(&src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    let info = keygen::public_key_info(&pem).map_err(|e| format!("{}: {e}", src.display()))?;
    if info.p != k.p || info.kind != k.kind {
        return Err(Halt::Failed(format!("{} is not the key of the record {}", src.display(), k.selector)));
    }
    let meta = fs::metadata(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut content = Zeroizing::new(format!("{SELECTOR_LINE} {}\n", k.selector).into_bytes());
    // A key file that names a selector itself (copied by hand) keeps only the line made here.
    let body = if crate::keyfile::has_selector_line(&pem) {
        pem.iter().position(|&b| b == b'\n').map_or(&pem[..0], |n| &pem[n + 1..])
    } else {
        &pem[..]
    };
    content.extend_from_slice(body);
    let slot_path = dir.join(slot(k.kind));
    files::install(&slot_path, &content, Ownership::like(&meta), true)
        .map_err(|e| format!("cannot switch {}: {e}", slot_path.display()))?;
    halt_at(stop, "switch")?;
    let old = keys.iter().position(|o| o.kind == k.kind && o.state == State::Active);
    let mut line = format!(
        "{domain} {} active: qmail-dkim signs with it from now on (the file {} names it)",
        k.selector,
        slot(k.kind)
    );
    if let Some(o) = old {
        line.push_str(&format!(
            "; {} retiring: keep its TXT record {} until {}",
            keys[o].selector,
            keygen::key_record_name(&keys[o].selector, domain),
            format_time(s.retire_until(s.now))
        ));
        keys[o].state = State::Retiring;
        keys[o].since = s.now;
    }
    out.say(line);
    keys[i].state = State::Active;
    keys[i].since = s.now;
    save(dir, domain, keys, stop, "switched")
}

// ---------------------------------------------------------------------------------------------
// rotate

/// `dkim keys rotate`: a new key of `kind` for `domain`, its record printed; nothing signs
/// with it until `advance` has seen the record.
pub fn rotate(
    s: &Settings,
    domain: &str,
    kind: KeyType,
    bits: usize,
    group: Option<u32>,
    out: &mut Report,
) -> Result<String, String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !keygen::looks_like_domain(&domain) {
        return Err(format!("{domain:?} is not a domain name"));
    }
    if kind == KeyType::Rsa {
        keygen::check_rsa_bits(bits).map_err(|e| e.to_string())?;
    }
    let dir = s.dir.join(&domain);
    {
        use std::os::unix::fs::DirBuilderExt as _;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| format!("cannot make the directory {}: {e}", dir.display()))?;
    }
    let mut keys = state::read(&dir)?;
    let sk = read_slot(&dir, kind)?;
    for n in reconcile(&mut keys, sk.as_ref(), kind, s.now) {
        out.say(format!("{domain} {n}"));
    }
    if let Some(k) = keys.iter().find(|k| k.kind == kind && matches!(k.state, State::New | State::Published)) {
        return Err(format!(
            "{domain} {} is {} already: dkim keys advance makes it sign; rotate again after that",
            k.selector,
            k.state.as_str()
        ));
    }
    let selector = next_selector(&dir, &keys, kind, s.now);
    let (pem, info) = keygen::generate(kind, bits).map_err(|e| e.to_string())?;
    let own = match (group, &sk) {
        (Some(g), _) => Ownership { mode: 0o640, gid: Some(g) },
        (None, Some(sk)) => sk.own,
        (None, None) => default_ownership(),
    };
    let path = dir.join(&selector);
    files::install(&path, pem.as_bytes(), own, false).map_err(|e| format!("cannot make {}: {e}", path.display()))?;
    let opts = DkimRecordOptions { testing: false, ..DkimRecordOptions::default() };
    let both = keygen::render_records(
        &selector,
        &domain,
        &info,
        opts,
        None,
        RecordForms { ttl: s.forms.ttl, ..RecordForms::default() },
    )
    .map_err(|e| e.to_string())?;
    let pubp = dir.join(format!("{selector}.pub"));
    files::install(&pubp, both.as_bytes(), Ownership::PUBLIC, true)
        .map_err(|e| format!("cannot write {}: {e}", pubp.display()))?;
    keys.push(Key { selector: selector.clone(), kind, state: State::New, since: s.now, p: info.p.clone() });
    state::write(&dir, &domain, &keys)?;
    let shown = keygen::render_records(&selector, &domain, &info, opts, None, s.forms).map_err(|e| e.to_string())?;
    out.say(shown.trim_end().to_string());
    out.say(format!(
        "{domain} {selector} new: made {}; publish its record {} (above); dkim keys advance switches to it once the record has answered for {} hours",
        path.display(),
        keygen::key_record_name(&selector, &domain),
        PUBLISH_WAIT / 3600
    ));
    Ok(selector)
}

/// `rsa20261207`, or `rsa20261207-2`… when that one is taken.
fn next_selector(dir: &Path, keys: &[Key], kind: KeyType, now: u64) -> String {
    let base = format!("{}{}", super::selector_prefix(kind), super::day(now));
    let taken = |s: &str| keys.iter().any(|k| k.selector == s) || fs::symlink_metadata(dir.join(s)).is_ok();
    let mut sel = base.clone();
    let mut n = 2;
    while taken(&sel) {
        sel = format!("{base}-{n}");
        n += 1;
    }
    sel
}

/// As dknewkey: as root, group nofiles (qmail-smtpd's) and mode 0640; else mode 0600.
fn default_ownership() -> Ownership {
    if nix::unistd::geteuid().is_root() {
        if let Ok(Some(g)) = nix::unistd::Group::from_name("nofiles") {
            return Ownership { mode: 0o640, gid: Some(g.gid.as_raw()) };
        }
    }
    Ownership { mode: 0o600, gid: None }
}

// ---------------------------------------------------------------------------------------------
// status

/// `dkim keys status`: every key of `only` or of every domain of the key directory, with what
/// its record says; a problem for each thing that makes signatures fail or a rotation stall.
pub fn status(s: &Settings, only: Option<&str>, dns: &dyn TxtLookup, out: &mut Report) -> Result<(), String> {
    let list = domains(&s.dir, only, true)?;
    if list.is_empty() {
        out.say(format!("no domain has keys under {}", s.dir.display()));
    }
    for domain in list {
        status_domain(s, &domain, dns, out);
    }
    Ok(())
}

fn status_domain(s: &Settings, domain: &str, dns: &dyn TxtLookup, out: &mut Report) {
    let dir = s.dir.join(domain);
    let mut keys = match state::read(&dir) {
        Ok(k) => k,
        Err(e) => return out.problem(format!("{domain}: {e}")),
    };
    let managed = !keys.is_empty();
    for kind in KINDS {
        match read_slot(&dir, kind) {
            Ok(sk) => {
                for n in reconcile(&mut keys, sk.as_ref(), kind, s.now) {
                    if managed {
                        out.say(format!("{domain} {n} (dkim keys advance records it)"));
                    }
                }
            }
            Err(e) => out.problem(format!("{domain}: {e}")),
        }
    }
    if keys.is_empty() {
        out.say(format!("{domain}: no key"));
        return;
    }
    let mut order: Vec<&Key> = keys.iter().collect();
    order.sort_by_key(|k| (k.kind != KeyType::Rsa, k.state));
    for k in order {
        let name = keygen::key_record_name(&k.selector, domain);
        let (answer, verdict, ok) = record(dns, domain, k);
        let head = format!("{domain} {} {} ({}, since {})", k.selector, k.state.as_str(), k.kind, format_time(k.since));
        let active = keys
            .iter()
            .find(|a| a.kind == k.kind && a.state == State::Active)
            .map_or_else(|| format!("no {} key", k.kind), |a| a.selector.clone());
        match k.state {
            State::Active => {
                let how = if managed { "" } else { "; not rotated by dkim keys" };
                out.say(format!("{head}: qmail-dkim signs with it (the file {}{how}); record {verdict}", slot(k.kind)));
                if !ok {
                    out.problem(format!(
                        "{domain} {} (active): record {name}: {verdict}: receivers cannot verify its signatures",
                        k.selector
                    ));
                }
            }
            State::Published => {
                out.say(format!(
                    "{head}: record {verdict}; it signs from {} on (dkim keys advance)",
                    format_time(k.since.saturating_add(PUBLISH_WAIT))
                ));
                if !ok {
                    out.problem(format!(
                        "{domain} {} (published): record {name}: {verdict}: it will not sign",
                        k.selector
                    ));
                }
            }
            State::New if ok => {
                out.say(format!("{head}: its record answers; dkim keys advance marks it published"));
            }
            State::New => {
                out.say(format!("{head}: waiting for its record {name} ({verdict}); {active} goes on signing"));
                if !matches!(answer, TxtAnswer::NotFound) {
                    out.problem(format!("{domain} {} (new): record {name}: {verdict}", k.selector));
                } else if s.now > k.since.saturating_add(LATE) {
                    out.problem(format!(
                        "{domain} {} (new): record {name} has not appeared since {}; {active} goes on signing",
                        k.selector,
                        format_time(k.since)
                    ));
                }
            }
            State::Retiring => {
                out.say(format!(
                    "{head}: mail signed with it may be queued; keep its record {name} until {} (record {verdict})",
                    format_time(s.retire_until(k.since))
                ));
                if !ok {
                    out.problem(format!(
                        "{domain} {} (retiring): record {name}: {verdict}: queued mail signed with it fails",
                        k.selector
                    ));
                }
            }
            State::Revoked if verdict.starts_with("revoked") => out.say(format!(
                "{head}: its record {name} is revoked (p= empty); the private key goes at {}",
                format_time(k.since.saturating_add(REMOVE_AFTER))
            )),
            State::Revoked => out.say(format!(
                "{head}: replace its record {name} ({verdict}) by the revocation record: {}",
                keygen::render_revocation(&k.selector, domain, k.kind, RecordForms { value: true, ..s.forms })
                    .trim_end()
            )),
            State::Removed if matches!(answer, TxtAnswer::NotFound) => out.say(format!("{head}: its record is gone")),
            State::Removed => out.say(format!("{head}: its TXT record {name} is still there: delete it")),
        }
    }
}

/// For `dkim check`: the active keys of the domains `dkim keys` rotates, and a problem for each
/// whose record is missing or does not match.
pub fn check_active(dir: &Path, dns: &dyn TxtLookup, out: &mut Report) {
    let Ok(list) = domains(dir, None, false) else { return };
    for domain in list {
        let Ok(keys) = state::read(&dir.join(&domain)) else { continue };
        for k in keys.iter().filter(|k| k.state == State::Active) {
            let (_, verdict, ok) = record(dns, &domain, k);
            let name = keygen::key_record_name(&k.selector, &domain);
            if ok {
                out.say(format!("dkim keys: {domain} signs with {} ({}): record {name} {verdict}", k.selector, k.kind));
            } else {
                out.problem(format!(
                    "dkim keys: {domain} signs with {}: record {name}: {verdict}: receivers cannot verify its signatures",
                    k.selector
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Zone;

    const DAY: u64 = 86400;
    const T0: u64 = 1_796_601_600; // 2026-12-07

    fn settings(dir: &Path, now: u64) -> Settings {
        Settings { dir: dir.to_path_buf(), now, queuelifetime: 7 * DAY, forms: RecordForms::default() }
    }

    /// A key directory with example.com's never-rotated Ed25519 key in its slot file, published.
    fn site() -> (tempfile::TempDir, Zone) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("example.com");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("ed25519"), crate::dkim::key::fixture("ed25519-pkcs8.pem")).unwrap();
        let info = keygen::public_key_info(&fs::read(d.join("ed25519")).unwrap()).unwrap();
        let mut zone = Zone::new();
        Zone::txt(&mut zone, "ed25519._domainkey.example.com", &format!("v=DKIM1; k=ed25519; p={}", info.p));
        (dir, zone)
    }

    /// Publishes the record of `sel` as its .pub file says.
    fn publish(zone: &mut Zone, dir: &Path, sel: &str) {
        let p = keygen::public_key_info(&fs::read(dir.join("example.com").join(sel)).unwrap()).unwrap();
        Zone::txt(zone, &format!("{sel}._domainkey.example.com"), &format!("v=DKIM1; k=ed25519; p={}", p.p));
    }

    fn keys(dir: &Path) -> Vec<(String, State, u64)> {
        state::read(&dir.join("example.com")).unwrap().into_iter().map(|k| (k.selector, k.state, k.since)).collect()
    }

    fn slot_selector(dir: &Path) -> String {
        let p = dir.join("example.com/ed25519");
        key_selector(&p, &fs::read(&p).unwrap()).unwrap()
    }

    fn run(dir: &Path, zone: &Zone, now: u64) -> Report {
        let mut out = Report::default();
        advance(&settings(dir, now), None, zone, &mut out).unwrap();
        out
    }

    #[test]
    fn rotation_from_start_to_end() {
        let (dir, mut zone) = site();
        let mut out = Report::default();
        let sel = rotate(&settings(dir.path(), T0), "example.com", KeyType::Ed25519, 0, None, &mut out).unwrap();
        assert_eq!(sel, "ed20261207");
        assert_eq!(keys(dir.path()), [("ed25519".into(), State::Active, T0), (sel.clone(), State::New, T0)]);
        // A second rotation waits for the first.
        let e = rotate(&settings(dir.path(), T0), "example.com", KeyType::Ed25519, 0, None, &mut out).unwrap_err();
        assert!(e.contains("is new already"), "{e}");
        // No record yet: nothing moves, the old key signs.
        let out = run(dir.path(), &zone, T0 + DAY);
        assert!(out.lines.iter().any(|l| l.contains("missing: no TXT record")), "{:?}", out.lines);
        assert_eq!(keys(dir.path())[1].1, State::New);
        publish(&mut zone, dir.path(), &sel);
        run(dir.path(), &zone, T0 + 2 * DAY);
        let after = keys(dir.path());
        assert_eq!(after[1], (sel.clone(), State::Published, T0 + 2 * DAY));
        // Twice at one time: nothing changes the second time.
        let again = run(dir.path(), &zone, T0 + 2 * DAY);
        assert_eq!(keys(dir.path()), after);
        assert!(again.problems.is_empty(), "{:?}", again.problems);
        assert_eq!(slot_selector(dir.path()), "ed25519");
        // The switch.
        let t1 = T0 + 3 * DAY;
        let out = run(dir.path(), &zone, t1);
        assert_eq!(slot_selector(dir.path()), sel, "{:?}", out.lines);
        assert_eq!(keys(dir.path()), [("ed25519".into(), State::Retiring, t1), (sel.clone(), State::Active, t1)]);
        let pem = fs::read(dir.path().join("example.com/ed25519")).unwrap();
        assert!(pem.starts_with(format!("DKIM-Selector: {sel}\n-----BEGIN").as_bytes()));
        // Retiring for queuelifetime and the margin, then revoked, then removed.
        run(dir.path(), &zone, t1 + 14 * DAY - 1);
        assert_eq!(keys(dir.path())[0].1, State::Retiring);
        let out = run(dir.path(), &zone, t1 + 14 * DAY);
        assert_eq!(keys(dir.path())[0].1, State::Revoked);
        assert!(out.lines.iter().any(|l| l.contains("'ed25519._domainkey.example.com:v=DKIM1; k=ed25519; p=:86400")));
        let out = run(dir.path(), &zone, t1 + 44 * DAY);
        assert_eq!(keys(dir.path())[0].1, State::Removed, "{:?}", out.lines);
        // The slot itself is never removed: the key taken over from it had no file of its own.
        assert_eq!(slot_selector(dir.path()), sel);
    }

    /// A run stopped after any of its steps (as a kill would) leaves a state the next run
    /// completes: the end is the same as that of a run never stopped.
    #[test]
    fn advance_killed_between_steps_is_completed_by_the_next_run() {
        let prepare = || {
            let (dir, mut zone) = site();
            let mut out = Report::default();
            let sel = rotate(&settings(dir.path(), T0), "example.com", KeyType::Ed25519, 0, None, &mut out).unwrap();
            publish(&mut zone, dir.path(), &sel);
            run(dir.path(), &zone, T0);
            (dir, zone)
        };
        let end = |dir: &Path| (keys(dir), slot_selector(dir));
        let times = [T0 + DAY, T0 + 15 * DAY, T0 + 45 * DAY];
        let (whole, zone) = prepare();
        for t in times {
            run(whole.path(), &zone, t);
        }
        let expected = end(whole.path());
        let mut stops = 0;
        for t in times {
            for k in 0.. {
                let (dir, zone) = prepare();
                let mut n = 0;
                let mut stopped = false;
                for u in times {
                    let mut out = Report::default();
                    let s = settings(dir.path(), u);
                    let r = advance_with(&s, None, &zone, &mut out, &mut |_| {
                        n += 1;
                        u == t && n > k && !stopped && {
                            stopped = true;
                            true
                        }
                    });
                    assert!(!matches!(r, Err(Halt::Failed(_))), "{r:?}");
                    if stopped && u == t {
                        // The next run, at the same time.
                        run(dir.path(), &zone, u);
                    }
                }
                assert_eq!(end(dir.path()), expected, "stopped at {t} after step {k}");
                if !stopped {
                    break;
                }
                stops += 1;
            }
        }
        assert!(stops >= 4, "{stops} step boundaries");
    }

    /// qmail-dkim's own read of the key (the `%` template's candidates, the file's selector line)
    /// while the slot is switched back and forth hundreds of times: every read finds a key, and
    /// its selector is the one of that key, never the other's.
    #[test]
    fn reads_during_switches_get_the_old_pair_or_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("example.com");
        fs::create_dir(&d).unwrap();
        let keys: Vec<(String, Vec<u8>)> = ["a", "b"]
            .iter()
            .map(|sel| {
                let (pem, info) = keygen::generate(KeyType::Ed25519, 0).unwrap();
                (info.p, format!("{SELECTOR_LINE} {sel}\n{}", pem.as_str()).into_bytes())
            })
            .collect();
        let slot = d.join("default");
        files::install(&slot, &keys[0].1, Ownership::PUBLIC, true).unwrap();
        let control = crate::config::ControlDir::new(dir.path());
        let choice = crate::config::KeyChoice::new(&control, "%/default", "example.com");
        let done = std::sync::atomic::AtomicBool::new(false);
        let reads = std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..300 {
                    files::install(&slot, &keys[(i + 1) % 2].1, Ownership::PUBLIC, true).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (path, pem) = choice.find().unwrap().expect("a key at every moment");
                let sel = key_selector(&path, &pem).unwrap();
                let p = keygen::public_key_info(&pem).unwrap().p;
                let want = if sel == "a" { &keys[0].0 } else { &keys[1].0 };
                assert_eq!(&p, want, "selector {sel} with the other key");
                reads += 1;
            }
            reads
        });
        assert!(reads > 10, "{reads} reads");
        println!("{reads} reads during 300 switches");
    }

    /// A record that never appears: the old key goes on signing, and status says so, a week on
    /// as a problem.
    #[test]
    fn record_that_never_appears_keeps_the_old_key() {
        let (dir, zone) = site();
        let mut out = Report::default();
        let sel = rotate(&settings(dir.path(), T0), "example.com", KeyType::Ed25519, 0, None, &mut out).unwrap();
        for d in 1..30 {
            run(dir.path(), &zone, T0 + d * DAY);
        }
        assert_eq!(slot_selector(dir.path()), "ed25519");
        let mut st = Report::default();
        status(&settings(dir.path(), T0 + 30 * DAY), None, &zone, &mut st).unwrap();
        let want = format!(
            "waiting for its record {sel}._domainkey.example.com (missing: no TXT record); ed25519 goes on signing"
        );
        assert!(st.lines.iter().any(|l| l.contains(&want)), "{:?}", st.lines);
        assert_eq!(st.problems.len(), 1, "{:?}", st.problems);
        assert!(st.problems[0].contains("has not appeared since 2026-12-07T00:00:00Z"), "{:?}", st.problems);
    }

    /// status: the active key's record missing is a problem; a site that never rotated is
    /// reported too.
    #[test]
    fn status_of_a_site_that_never_rotated() {
        let (dir, zone) = site();
        let mut st = Report::default();
        status(&settings(dir.path(), T0), None, &zone, &mut st).unwrap();
        assert!(st.problems.is_empty(), "{:?}", st.problems);
        assert!(st.lines[0].contains("ed25519 active (ed25519, since 2026-12-07T00:00:00Z): qmail-dkim signs with it (the file ed25519; not rotated by dkim keys); record match"), "{:?}", st.lines);
        let mut st = Report::default();
        status(&settings(dir.path(), T0), None, &Zone::new(), &mut st).unwrap();
        assert_eq!(st.problems, ["example.com ed25519 (active): record ed25519._domainkey.example.com: missing: no TXT record: receivers cannot verify its signatures"]);
        assert!(!dir.path().join("example.com").join(state::STATE_FILE).exists(), "status writes nothing");
    }
}
