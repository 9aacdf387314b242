//! `dkim keys`: rotations driven through the real binaries against the loopback DNS server,
//! with `--now` for the simulated time. The test is the administrator: it publishes and removes
//! exactly the records the commands print (their tinydns-data lines), and signs through
//! qmail-dkim at each step; dkimpy and mail-auth verify against the zone of that moment.

use crate::common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

const DAY: u64 = 86400;
/// 2027-01-01T00:00:00Z.
const T0: u64 = 1_798_761_600;
const MSG: &[u8] = b"From: Joe <joe@example.com>\nTo: x@y.org\nSubject: rotation\n\nSigned during a rotation.\n";

/// The zone the administrator publishes: name -> TXT value.
struct Zone {
    dns: Dns,
    records: BTreeMap<String, String>,
}

impl Zone {
    fn new(records: &[(&str, &str)]) -> Zone {
        let dns = Dns::start(records);
        Zone { dns, records: records.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect() }
    }

    fn push(&self) {
        let v: Vec<(&str, &str)> = self.records.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.dns.set(&v);
    }

    /// Does what the output of a command says to do in the DNS: publish each tinydns-data
    /// line (replacing what the name had), delete the records it says to delete.
    fn apply(&mut self, output: &str) -> Vec<String> {
        let mut changes = Vec::new();
        for line in output.lines() {
            if let Some(rest) = line.strip_prefix('\'') {
                let (rest, _ttl) = rest.rsplit_once(':').expect("ttl");
                let (name, value) = rest.split_once(':').expect("name:value");
                let value = value.replace("\\072", ":").replace("\\134", "\\");
                changes.push(format!("publish {name}: {value}"));
                self.records.insert(name.to_string(), value);
            } else if let Some(i) = line.find("delete the TXT record ") {
                let name = line[i + "delete the TXT record ".len()..].split_whitespace().next().unwrap();
                changes.push(format!("delete {name}"));
                self.records.remove(name);
            }
        }
        self.push();
        changes
    }
}

/// A site: the key directory, a control directory, and example.com's keys of today in their
/// slot files (`default` RSA, `ed25519`), published.
struct Site {
    _tmp: tempfile::TempDir,
    keys: PathBuf,
    control: PathBuf,
}

impl Site {
    fn new(rsa: bool, ed: bool) -> (Site, Vec<(String, String)>) {
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("domainkeys");
        let control = tmp.path().join("control");
        fs::create_dir_all(&control).unwrap();
        let mut records = Vec::new();
        if rsa {
            let k = TestKey::rsa(2048);
            k.copy_to(&keys.join("example.com/default"));
            records.push(("default._domainkey.example.com".to_string(), k.dns_record()));
        }
        if ed {
            let k = TestKey::ed25519();
            k.copy_to(&keys.join("example.com/ed25519"));
            records.push(("ed25519._domainkey.example.com".to_string(), k.dns_record()));
        }
        (Site { _tmp: tmp, keys, control }, records)
    }

    /// `dkim keys --dir … --dns … ARGS --now T`: stdout and exit code.
    fn keys(&self, zone: &Zone, args: &[&str], now: u64) -> (String, i32) {
        let out = Command::new(env!("CARGO_BIN_EXE_dkim"))
            .arg("keys")
            .args(args)
            .args(["--dir", &self.keys.display().to_string(), "--dns", &zone.dns.addr(), "--now", &format!("@{now}")])
            .env("CONTROLDIR", &self.control)
            .env_remove("DNSCACHEIP")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty() || out.status.code() == Some(1), "{args:?}: {stderr}");
        (String::from_utf8_lossy(&out.stdout).into_owned() + &stderr, out.status.code().unwrap_or(-1))
    }

    /// The environment of qmail-dkim signing with the slot files (RSA and Ed25519).
    fn sign_env(&self, rsa: bool, ed: bool) -> Vec<(String, String)> {
        let slot = |name: &str| format!("{}/%/{name}", self.keys.display());
        let mut v = vec![("CONTROLDIR".to_string(), self.control.display().to_string())];
        if rsa {
            v.push(("DKIMSIGN".into(), slot("default")));
            v.push(("DKIMSIGNOPTIONS".into(), "-z 2".into()));
        }
        if ed {
            let (var, opt) =
                if rsa { ("DKIMSIGNEXTRA", "DKIMSIGNOPTIONSEXTRA") } else { ("DKIMSIGN", "DKIMSIGNOPTIONS") };
            v.push((var.into(), slot("ed25519")));
            v.push((opt.into(), "-z 4".into()));
        }
        v
    }

    fn state(&self) -> String {
        fs::read_to_string(self.keys.join("example.com/rotation.state")).unwrap_or_default()
    }
}

/// Signs `MSG` through qmail-dkim; the queued message and the selectors of its signatures.
fn sign(env: &[(String, String)]) -> (Vec<u8>, Vec<String>) {
    let (out, rec) = run_into_queue(MSG, &env_refs(env), "joe@example.com", "x@y.org");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let msg = rec.expect("queued").msg;
    let sels = headers_named(&msg, "DKIM-Signature")
        .iter()
        .map(|h| {
            let v = h.replace(['\n', '\t', ' '], "");
            v.split(';').find_map(|t| t.strip_prefix("s=")).unwrap().to_string()
        })
        .collect();
    (msg, sels)
}

fn selector_made(output: &str) -> String {
    let line = output.lines().find(|l| l.contains(" new: made ")).unwrap_or_else(|| panic!("{output}"));
    line.split_whitespace().nth(1).unwrap().to_string()
}

/// A rotation of both keys of example.com, twice, over seven simulated months: at every step the
/// commands print what changes in the DNS, the test publishes exactly that, and a message
/// signed through qmail-dkim verifies with dkimpy against the zone of that moment, as does
/// every earlier message for `queuelifetime` after it was signed; `advance` run twice in a row
/// changes nothing the second time.
#[test]
fn rotation_over_months_every_message_verifies_against_the_zone_of_its_day() {
    let (site, records) = Site::new(true, true);
    let recs: Vec<(&str, &str)> = records.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut zone = Zone::new(&recs);
    let env = site.sign_env(true, true);
    let mut signed: Vec<(u64, Vec<u8>, Vec<String>)> = Vec::new();
    let mut log = Vec::new();
    let step = |zone: &mut Zone,
                t: u64,
                args: &[&str],
                log: &mut Vec<String>,
                signed: &mut Vec<(u64, Vec<u8>, Vec<String>)>|
     -> String {
        let (out, code) = site.keys(zone, args, t);
        assert_eq!(code, 0, "{args:?} at {t}: {out}");
        let changes = zone.apply(&out);
        log.push(format!("day {}: dkim keys {}\n{out}DNS: {changes:?}", (t - T0) / DAY, args.join(" ")));
        if args[0] == "advance" {
            // Twice in a row: the second run changes nothing.
            let before = site.state();
            let (again, _) = site.keys(zone, args, t);
            assert_eq!(site.state(), before, "second advance at {t} changed the state: {again}");
            assert!(!again.contains("'") && !again.contains("delete"), "second advance asks for DNS changes: {again}");
        }
        // A message now: signed with published keys only, verified against today's zone; and
        // every message signed in the last queuelifetime still verifies.
        let (msg, sels) = sign(&env);
        signed.push((t, msg, sels));
        for (when, msg, sels) in signed.iter() {
            if t > when + 7 * DAY {
                continue;
            }
            let v = dkimpy_verify(msg, &zone.dns);
            assert!(
                v.ok,
                "signed on day {} with {sels:?}, day {}: {} {}",
                (when - T0) / DAY,
                (t - T0) / DAY,
                v.report,
                v.stderr
            );
        }
        out
    };
    let mut selectors = Vec::new();
    for round in [0, 180] {
        let t = T0 + round * DAY;
        let rsa =
            selector_made(&step(&mut zone, t, &["rotate", "-d", "example.com", "--tinydns"], &mut log, &mut signed));
        let ed = selector_made(&step(
            &mut zone,
            t,
            &["rotate", "-d", "example.com", "--type", "ed25519", "--tinydns"],
            &mut log,
            &mut signed,
        ));
        let out = step(&mut zone, t + 3600, &["advance", "--tinydns"], &mut log, &mut signed);
        assert!(out.contains(&format!("{rsa} published")) && out.contains(&format!("{ed} published")), "{out}");
        assert_eq!(signed.last().unwrap().2.len(), 2);
        // Not yet: the record has answered for an hour only.
        assert!(!signed.last().unwrap().2.contains(&rsa));
        // The last message signed with the keys of before, then the switch.
        step(&mut zone, t + DAY, &["status"], &mut log, &mut signed);
        let out = step(&mut zone, t + DAY + 3600, &["advance", "--tinydns"], &mut log, &mut signed);
        assert!(out.contains(&format!("{rsa} active")), "{out}");
        let now_signing = &signed.last().unwrap().2;
        assert!(now_signing.contains(&rsa) && now_signing.contains(&ed), "{now_signing:?}");
        // Day 8: queuelifetime after the last message of the old keys, which still verifies.
        for d in [5, 8, 15, 16, 46] {
            step(&mut zone, t + d * DAY, &["advance", "--tinydns"], &mut log, &mut signed);
        }
        selectors.push((rsa, ed));
    }
    // The first round's keys are revoked and removed, their records gone; the old ones too.
    let state = site.state();
    for (sel, st) in [
        ("default", "removed"),
        ("ed25519", "removed"),
        (selectors[0].0.as_str(), "removed"),
        (selectors[1].0.as_str(), "active"),
        (selectors[1].1.as_str(), "active"),
    ] {
        assert!(
            state.lines().any(|l| l.starts_with(&format!("{sel} ")) && l.contains(&format!(" {st} "))),
            "{sel} {st}: {state}"
        );
    }
    assert!(!zone.records.contains_key("default._domainkey.example.com"));
    assert!(!site.keys.join(format!("example.com/{}", selectors[0].0)).exists(), "the private key is deleted");
    let (st, code) = site.keys(&zone, &["status"], T0 + 230 * DAY);
    assert_eq!(code, 0, "{st}");
    println!("{}", log.join("\n"));
}

/// A record that is never published: every day's `advance` leaves the old key signing, and
/// `status` says so (a problem once it has waited a week).
#[test]
fn record_that_never_appears_keeps_the_old_key_active() {
    let (site, records) = Site::new(false, true);
    let recs: Vec<(&str, &str)> = records.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let zone = Zone::new(&recs);
    let env = site.sign_env(false, true);
    let (out, code) = site.keys(&zone, &["rotate", "-d", "example.com", "--type", "ed25519", "--value"], T0);
    assert_eq!(code, 0, "{out}");
    let sel = selector_made(&out);
    for d in 0..10 {
        let (out, code) = site.keys(&zone, &["advance"], T0 + d * DAY);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!("{sel} new: record {sel}._domainkey.example.com: missing: no TXT record")),
            "{out}"
        );
    }
    let (msg, sels) = sign(&env);
    assert_eq!(sels, ["ed25519"]);
    assert!(dkimpy_verify(&msg, &zone.dns).ok);
    let (st, code) = site.keys(&zone, &["status", "-d", "example.com"], T0 + 10 * DAY);
    assert_eq!(code, 1, "{st}");
    assert!(
        st.contains(&format!(
            "waiting for its record {sel}._domainkey.example.com (missing: no TXT record); ed25519 goes on signing"
        )),
        "{st}"
    );
    assert!(st.contains(&format!("problem: example.com {sel} (new): record {sel}._domainkey.example.com has not appeared since 2027-01-01T00:00:00Z; ed25519 goes on signing")), "{st}");
}

/// A switch killed after the rename, before the state was written: qmail-dkim already signs
/// with the new key; the next `advance` records it (new active, old retiring) and goes on.
#[test]
fn advance_killed_after_the_switch_is_completed_by_the_next_run() {
    let (site, records) = Site::new(false, true);
    let recs: Vec<(&str, &str)> = records.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut zone = Zone::new(&recs);
    let (out, _) = site.keys(&zone, &["rotate", "-d", "example.com", "--type", "ed25519", "--tinydns"], T0);
    zone.apply(&out);
    let sel = selector_made(&out);
    site.keys(&zone, &["advance"], T0);
    assert!(site.state().contains(&format!("{sel} ed25519 published")));
    // What the switch does, and no more: the slot renamed, the state not yet written.
    let dir = site.keys.join("example.com");
    let pem = fs::read_to_string(dir.join(&sel)).unwrap();
    fs::write(dir.join(".tmp"), format!("DKIM-Selector: {sel}\n{pem}")).unwrap();
    fs::rename(dir.join(".tmp"), dir.join("ed25519")).unwrap();
    let (msg, sels) = sign(&site.sign_env(false, true));
    assert_eq!(sels, std::slice::from_ref(&sel));
    assert!(dkimpy_verify(&msg, &zone.dns).ok);
    let (st, code) = site.keys(&zone, &["status"], T0 + DAY);
    assert_eq!(code, 0, "{st}");
    assert!(st.contains(&format!("{sel} active: the file ed25519 names it (dkim keys advance records it)")), "{st}");
    let (out, code) = site.keys(&zone, &["advance"], T0 + DAY);
    assert_eq!(code, 0, "{out}");
    let state = site.state();
    assert!(state.contains(&format!("{sel} ed25519 active ")), "{state}");
    assert!(state.contains("ed25519 ed25519 retiring "), "{state}");
    let (out, _) = site.keys(&zone, &["advance", "--tinydns"], T0 + 16 * DAY);
    assert!(out.contains("'ed25519._domainkey.example.com:v=DKIM1; k=ed25519; p=:86400"), "{out}");
}

/// Many qmail-dkim runs at once while `advance` switches the key again and again: every
/// message is signed, with the old key or the new one, none unsigned, none refused, and every
/// signature verifies (mail-auth) against the zone.
#[test]
fn parallel_signing_while_advance_switches_signs_every_message() {
    let (site, records) = Site::new(false, true);
    let recs: Vec<(&str, &str)> = records.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut zone = Zone::new(&recs);
    let env = site.sign_env(false, true);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let switches = 8;
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (out, rec) = run_into_queue(MSG, &env_refs(&env), "joe@example.com", "x@y.org");
                        got.push((out.code, out.stderr, rec.map(|r| r.msg)));
                    }
                    got
                })
            })
            .collect();
        let mut t = T0;
        for _ in 0..switches {
            let (out, code) = site.keys(&zone, &["rotate", "-d", "example.com", "--type", "ed25519", "--tinydns"], t);
            assert_eq!(code, 0, "{out}");
            zone.apply(&out);
            site.keys(&zone, &["advance"], t);
            t += DAY;
            let (out, code) = site.keys(&zone, &["advance"], t);
            assert!(code == 0 && out.contains(" active: qmail-dkim signs with it"), "{out}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect::<Vec<_>>()
    });
    assert!(results.len() >= 8, "only {} messages", results.len());
    let (rt, auth) = mail_auth_for(&zone.dns);
    let mut by_selector = BTreeMap::new();
    for (code, stderr, msg) in &results {
        assert_eq!(*code, Some(0), "refused: {stderr}");
        let msg = msg.as_ref().expect("queued");
        let sigs = headers_named(msg, "DKIM-Signature");
        assert_eq!(sigs.len(), 1, "unsigned or signed twice: {}", String::from_utf8_lossy(msg));
        let crlf = lf_to_crlf(msg);
        let parsed = mail_auth::AuthenticatedMessage::parse(&crlf).unwrap();
        let r = rt.block_on(auth.verify_dkim(&parsed));
        assert!(matches!(r[0].result(), mail_auth::DkimResult::Pass), "{:?}: {}", r[0].result(), sigs[0]);
        let sel = sigs[0].replace(['\n', '\t', ' '], "");
        let sel = sel.split(';').find_map(|t| t.strip_prefix("s=")).unwrap().to_string();
        *by_selector.entry(sel).or_insert(0) += 1;
    }
    println!("{} messages, by selector: {by_selector:?}", results.len());
    assert!(by_selector.len() >= 2, "{by_selector:?}");
}

/// `dkim check` says so when the key a rotated domain signs with has no record.
#[test]
fn check_reports_an_active_key_without_its_record() {
    let (site, records) = Site::new(false, true);
    let recs: Vec<(&str, &str)> = records.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut zone = Zone::new(&recs);
    let (out, _) = site.keys(&zone, &["rotate", "-d", "example.com", "--type", "ed25519", "--tinydns"], T0);
    zone.apply(&out);
    let sel = selector_made(&out);
    site.keys(&zone, &["advance"], T0);
    site.keys(&zone, &["advance"], T0 + DAY);
    let check = |zone: &Zone| {
        let out = Command::new(env!("CARGO_BIN_EXE_dkim"))
            .args(["check", "--from", "joe@example.com", "--dns", &zone.dns.addr(), "--env"])
            .arg("RELAYCLIENT=\"\",DKIMSIGN=\"domainkeys/%/ed25519\",DKIMSIGNOPTIONS=\"-z 4\"")
            .env("CONTROLDIR", site.keys.parent().unwrap())
            .env("QMAILQUEUE", recqueue_path())
            .env("DKIMQUEUE", recqueue_path())
            .env_remove("DNSCACHEIP")
            .output()
            .unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code())
    };
    let (text, code) = check(&zone);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("signature: d=example.com s={sel} a=ed25519-sha256")), "{text}");
    assert!(
        text.contains(&format!(
            "dkim keys: example.com signs with {sel} (ed25519): record {sel}._domainkey.example.com match"
        )),
        "{text}"
    );
    zone.records.remove(&format!("{sel}._domainkey.example.com"));
    zone.push();
    let (text, code) = check(&zone);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("problem: dkim keys: example.com signs with {sel}: record {sel}._domainkey.example.com: missing: no TXT record")),
        "{text}"
    );
}
