//! The administrator's first hour, through the real binary: the refusal convention
//! chosen by default from how the caller started us (notqmail's fd 6 pipe, indimail's
//! ERROR_FD, else plain exit codes) and an explicit CUSTOM_ERRORS winning; the log line on fd 2
//! for every refusal whose text goes elsewhere; the DKIMLOG line of signed, verified, refused
//! and hostile messages; and an unreadable key naming the user and the group that need access.

use crate::common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const SENDER: &str = "joe@example.com";
const MSG: &[u8] = b"From: Joe <joe@example.com>\nTo: sue@example.net\nSubject: dinner\n\nAre you hungry yet?\n";
/// The refusal of an unsigned message with DKIMVERIFY=S (or s).
const NO_SIG: &str = "qmail-dkim: no signatures";

/// The environment of a run into `q` (no DNS needed unless `extra` says so).
fn env_of(q: &Queue, ctl: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = q.env();
    v.push(("DKIMQUEUE".into(), q.program().display().to_string()));
    v.push(("CONTROLDIR".into(), ctl.display().to_string()));
    v.push(("AUTHSERV_ID".into(), "mx.test.example".into()));
    v.push(("RUST_BACKTRACE".into(), "1".into()));
    v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    v
}

fn finish(out: Output, q: &Queue) -> (Output, Vec<Recorded>) {
    assert_no_panic(&out);
    assert!(!out.timed_out && !out.lingering, "{}", out.stderr);
    (out, q.records())
}

/// The refusal of an unsigned message (S / s), run as `run` sets it up.
fn refuse_unsigned(permanent: bool, extra: &[(&str, &str)], setup: impl FnOnce(Run) -> Run) -> (Output, Vec<Recorded>) {
    let q = Queue::new();
    let ctl = tempfile::tempdir().unwrap();
    let mut e = vec![("DKIMVERIFY", if permanent { "S" } else { "s" })];
    e.extend_from_slice(extra);
    let out =
        setup(Run::new(MSG, &envelope(SENDER, &["sue@example.net"])).env_owned(&env_of(&q, ctl.path(), &e))).run();
    finish(out, &q)
}

fn expected_text(permanent: bool) -> String {
    format!("{}{NO_SIG} (#{}.7.5)", if permanent { 'D' } else { 'Z' }, if permanent { 5 } else { 4 })
}

fn expected_log(permanent: bool, code: i32) -> String {
    let kind = if permanent { "permanently" } else { "temporarily" };
    format!("qmail-dkim: refused {kind} (exit {code}): no signatures (#{}.7.5)\n", if permanent { 5 } else { 4 })
}

/// CUSTOM_ERRORS unset: notqmail's convention when fd 6 is a pipe, indimail's when ERROR_FD is
/// set, else 31/71; the reason reaches the client where the caller reads it, and fd 2 (the
/// log) gets one line whenever the reason went elsewhere.
#[test]
fn default_convention_follows_the_caller() {
    for permanent in [true, false] {
        let text = expected_text(permanent);
        // notqmail's qmail-smtpd: fd 6 is a pipe.
        let (out, recs) = refuse_unsigned(permanent, &[], |r| r.capture_fd(6));
        assert_eq!(out.code, Some(82), "{}", out.stderr);
        assert_eq!(out.fd_text(6), text);
        assert_eq!(out.stderr, expected_log(permanent, 82));
        assert!(recs.is_empty());

        // indimail's qmail-smtpd with ERROR_FD: the text on that descriptor, the log line on fd 2.
        let (out, recs) = refuse_unsigned(permanent, &[("ERROR_FD", "5")], |r| r.capture_fd(5).close_fd(6));
        assert_eq!(out.code, Some(88), "{}", out.stderr);
        assert_eq!(out.fd_text(5), text);
        assert_eq!(out.stderr, expected_log(permanent, 88));
        assert!(recs.is_empty());

        // ERROR_FD=2: fd 2 is indimail's reply pipe; it gets the text alone, without a newline.
        let (out, _) = refuse_unsigned(permanent, &[("ERROR_FD", "2")], |r| r.close_fd(6));
        assert_eq!((out.code, out.stderr.as_str()), (Some(88), text.as_str()));

        // ERROR_FD=-1 (indimail without a reply pipe): the none convention, 31 or 71.
        let code = if permanent { 31 } else { 71 };
        let (out, _) = refuse_unsigned(permanent, &[("ERROR_FD", "-1")], |r| r.close_fd(6));
        assert_eq!((out.code, out.stderr), (Some(code), expected_log(permanent, code)));

        // Neither (netqmail, qmail-inject): 31 or 71, understood by every qmail.
        let code = if permanent { 31 } else { 71 };
        let (out, recs) = refuse_unsigned(permanent, &[], |r| r.close_fd(6));
        assert_eq!(out.code, Some(code), "{}", out.stderr);
        assert_eq!(out.stderr, expected_log(permanent, code));
        assert!(recs.is_empty());

        // fd 6 open on a file is not notqmail's pipe.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("fd6");
        let sh = format!("exec '{}' 6>'{}'", qmail_dkim_bin().display(), f.display());
        let (out, _) = refuse_unsigned(permanent, &[], |r| r.program("/bin/sh").args(&["-c", &sh]));
        assert_eq!((out.code, out.stderr), (Some(code), expected_log(permanent, code)));
        assert_eq!(fs::read_to_string(&f).unwrap(), "");
    }
}

/// indimail's `ERROR_FD=-1` ("no error pipe"): exit 88 without text is answered `Zqq temporary
/// problem`, so a permanent refusal must be 31 there, even with CUSTOM_ERRORS=indimail.
#[test]
fn error_fd_minus_1_keeps_a_permanent_refusal_permanent() {
    for extra in [vec![("ERROR_FD", "-1")], vec![("ERROR_FD", "-1"), ("CUSTOM_ERRORS", "indimail")]] {
        let (out, recs) = refuse_unsigned(true, &extra, |r| r.close_fd(6));
        assert_eq!((out.code, out.stderr.as_str()), (Some(31), expected_log(true, 31).as_str()), "{extra:?}");
        assert!(recs.is_empty());
    }
}

/// When fd 2 is indimail's reply pipe (CUSTOM_ERRORS=indimail without ERROR_FD, or ERROR_FD=2),
/// everything on it becomes the SMTP reply: it carries our refusal alone (no VERBOSE line, no
/// missing-key diagnostic, no DKIMLOG line before it, which made the reply 451 and showed a key
/// path to the client), and the queue program's own refusal still reaches it.
#[test]
fn indimails_reply_pipe_on_fd_2_carries_the_refusal_alone() {
    let ctl = tempfile::tempdir().unwrap();
    let arc = format!("{}/domainkeys/%/arc", ctl.path().display());
    let noisy = [("VERBOSE", "1"), ("DKIMLOG", "1"), ("ARCSIGN", arc.as_str()), ("ARCDOMAIN", "example.com")];
    for fd in [None, Some("2")] {
        let mut extra: Vec<(&str, &str)> = noisy.to_vec();
        match fd {
            None => extra.push(("CUSTOM_ERRORS", "indimail")),
            Some(n) => extra.push(("ERROR_FD", n)),
        }
        let (out, recs) = refuse_unsigned(true, &extra, |r| r.close_fd(6));
        assert_eq!((out.code, out.stderr.as_str()), (Some(88), expected_text(true).as_str()), "{fd:?}");
        assert!(recs.is_empty());
        // Nothing refused by us: the queue program's own text is the reply, alone.
        let q = Queue::new();
        let mut e = vec![("DKIMVERIFY", ""), ("RECQUEUE_EXIT", "88"), ("RECQUEUE_STDERR", "Dno such user (#5.1.1)")];
        e.extend_from_slice(&extra);
        let run =
            Run::new(MSG, &envelope(SENDER, &["sue@example.net"])).env_owned(&env_of(&q, ctl.path(), &e)).close_fd(6);
        let (out, _) = finish(run.run(), &q);
        assert_eq!((out.code, out.stderr.as_str()), (Some(88), "Dno such user (#5.1.1)"), "{fd:?}");
    }
}

/// An explicit CUSTOM_ERRORS wins over what the descriptors suggest.
#[test]
fn explicit_custom_errors_wins() {
    let text = expected_text(true);
    let (out, _) = refuse_unsigned(true, &[("CUSTOM_ERRORS", "none")], |r| r.capture_fd(6));
    assert_eq!((out.code, out.fd_text(6), out.stderr), (Some(31), String::new(), expected_log(true, 31)));
    let (out, _) = refuse_unsigned(true, &[("CUSTOM_ERRORS", "indimail")], |r| r.capture_fd(6));
    assert_eq!((out.code, out.fd_text(6), out.stderr), (Some(88), String::new(), text.clone()));
    let (out, _) =
        refuse_unsigned(true, &[("CUSTOM_ERRORS", "notqmail"), ("ERROR_FD", "5")], |r| r.capture_fd(5).close_fd(6));
    assert_eq!((out.code, out.fd_text(5), out.stderr), (Some(82), String::new(), expected_log(true, 82)));
    let (out, _) = refuse_unsigned(true, &[("CUSTOM_ERRORS", "notqmail")], |r| r.capture_fd(6));
    assert_eq!((out.code, out.fd_text(6)), (Some(82), text));
}

/// The fd 6 probe is one fstat, and none at all when CUSTOM_ERRORS names a convention
/// (strace of the qmail-dkim process itself, not its queue program).
#[test]
fn fd6_is_probed_once_and_only_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let probes = |extra: &[(&str, &str)]| -> usize {
        let log = dir.path().join("trace");
        let bin = qmail_dkim_bin().display().to_string();
        let lg = log.display().to_string();
        let (out, _) = refuse_unsigned(true, extra, |r| {
            r.program("strace")
                .args(&["-qq", "-e", "trace=fstat,newfstatat,statx,fstat64", "-o", &lg, &bin])
                .capture_fd(6)
        });
        assert!(matches!(out.code, Some(31 | 82)), "{}", out.stderr);
        let t = fs::read_to_string(&log).expect("strace output");
        t.lines().filter(|l| l.contains("fstat(6,") || l.contains("fstatat(6,") || l.contains("statx(6,")).count()
    };
    assert_eq!(probes(&[]), 1);
    assert_eq!(probes(&[("CUSTOM_ERRORS", "none")]), 0);
}

// ---------------------------------------------------------------------------
// DKIMLOG

/// The one DKIMLOG line of a run's fd 2.
#[track_caller]
pub(crate) fn dkimlog_line(stderr: &str) -> String {
    let l: Vec<&str> = stderr.lines().filter(|l| l.starts_with("qmail-dkim: mode=")).collect();
    assert_eq!(l.len(), 1, "one DKIMLOG line expected in {stderr:?}");
    assert!(stderr.contains(&format!("{}\n", l[0])), "not newline-terminated: {stderr:?}");
    l[0].to_string()
}

/// Splits a DKIMLOG line into its pairs, honouring quotes; fails on anything else.
pub(crate) fn pairs(line: &str) -> Vec<(String, String)> {
    let rest = line.strip_prefix("qmail-dkim: ").expect("prefix");
    let mut v = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'),
            "bad key {key:?} in {line}"
        );
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.push(chars.next().expect("escape")),
                    '"' => break,
                    c => val.push(c),
                }
            }
            assert!(matches!(chars.next(), None | Some(' ')), "junk after a quoted value in {line}");
        } else {
            val = chars.by_ref().take_while(|&c| c != ' ').collect();
        }
        v.push((key, val));
        if chars.peek().is_none() {
            return v;
        }
    }
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Vec<&'a str> {
    p.iter().filter(|(a, _)| a == k).map(|(_, b)| b.as_str()).collect()
}

/// A control directory with a DKIM key (Ed25519, selector s1) and a DomainKeys key (RSA,
/// selector s2), and a loopback DNS server publishing both.
struct Fx {
    ctl: tempfile::TempDir,
    dns: Dns,
}

impl Fx {
    fn new() -> Fx {
        let ctl = tempfile::tempdir().unwrap();
        let ed = TestKey::ed25519_at(&ctl.path().join("s1"));
        let rsa = TestKey::rsa_at(&ctl.path().join("s2"), 1024);
        let dns = Dns::start(&[
            ("s1._domainkey.example.com", &ed.dns_record()),
            ("s2._domainkey.example.com", &rsa.dk_record()),
        ]);
        Fx { ctl, dns }
    }
    fn run(&self, msg: &[u8], extra: &[(&str, &str)]) -> (Output, Vec<Recorded>) {
        let q = Queue::new();
        let dns = self.dns.addr();
        let mut e = vec![("DKIMLOG", "1"), ("DNSCACHEIP", dns.as_str())];
        e.extend_from_slice(extra);
        let out = Run::new(msg, &envelope(SENDER, &["sue@example.net"]))
            .env_owned(&env_of(&q, self.ctl.path(), &e))
            .close_fd(6)
            .run();
        finish(out, &q)
    }
    fn key(&self, sel: &str) -> String {
        self.ctl.path().join(sel).display().to_string()
    }
}

#[test]
fn dkimlog_signed_and_verified_messages() {
    let fx = Fx::new();
    let (s1, s2) = (fx.key("s1"), fx.key("s2"));
    // Signed, DKIM and DomainKeys.
    let (out, recs) = fx.run(MSG, &[("DKIMSIGN", &s1), ("DKIMSIGNOPTIONS", "-z 4"), ("DKSIGN", &s2)]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let line = dkimlog_line(&out.stderr);
    assert_eq!(
        line,
        "qmail-dkim: mode=sign dkmode=sign dkim1.d=example.com dkim1.s=s1 dkim1.a=ed25519-sha256 dkim1.result=signed \
         dk1.d=example.com dk1.s=s2 dk1.a=rsa-sha1 dk1.result=signed exit=0"
    );
    let signed = recs[0].msg.clone();

    // Verified: each signature with its letter and word, then the message's DKIM result.
    let (out, recs) = fx.run(&signed, &[("DKIMVERIFY", ""), ("DKVERIFY", "")]);
    assert_eq!((out.code, recs.len()), (Some(0), 1), "{}", out.stderr);
    assert_eq!(
        dkimlog_line(&out.stderr),
        "qmail-dkim: mode=verify dkmode=verify dkim1.d=example.com dkim1.s=s1 dkim1.a=ed25519-sha256 dkim1.result=pass \
         dkim1.letter=A dkim.result=pass dkim.letter=A dk1.d=example.com dk1.s=s2 dk1.result=pass dk1.letter=A exit=0"
    );

    // Nothing without DKIMLOG (or with DKIMLOG=0).
    let (out, _) = fx.run(&signed, &[("DKIMVERIFY", ""), ("DKIMLOG", "0")]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
}

#[test]
fn dkimlog_refused_message() {
    let fx = Fx::new();
    // No convention named, fd 6 closed: 31, the refusal's log line and the DKIMLOG line.
    let (out, recs) = fx.run(MSG, &[("DKIMVERIFY", "S")]);
    assert_eq!((out.code, recs.len()), (Some(31), 0), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "{}qmail-dkim: mode=verify dkim.result=none dkim.letter=S refused=permanent reason=\"no signatures (#5.7.5)\" exit=31\n",
            expected_log(true, 31)
        )
    );
    // A key that cannot be used: the error and its code.
    let (out, _) = fx.run(MSG, &[("DKIMSIGN", "/nonexistent/key")]);
    let p = pairs(&dkimlog_line(&out.stderr));
    assert_eq!(get(&p, "exit"), ["35"]);
    assert_eq!(get(&p, "error"), ["private key /nonexistent/key does not exist"]);
    // indimail on fd 2: fd 2 is the reply, so no log line may join it.
    let (out, _) = fx.run(MSG, &[("DKIMVERIFY", "S"), ("CUSTOM_ERRORS", "indimail")]);
    assert_eq!((out.code, out.stderr), (Some(88), expected_text(true)));
}

/// d=, s= and a= come from the message: CR, LF, quotes and `key=` text in them stay inside
/// one quoted value of one line.
#[test]
fn dkimlog_hostile_signature_values_cannot_forge_pairs() {
    let fx = Fx::new();
    let hostile = b"DKIM-Signature: v=1; a=rsa-sha256 exit=0; d=evil.example\r\n dkim1.result=pass \"dkim.letter=A\\\";\n s=x\rdkim1.letter=A; h=from; bh=AAAA; b=AAAA\nFrom: joe@example.com\n\nbody\n";
    let (out, recs) = fx.run(hostile, &[("DKIMVERIFY", "")]);
    assert_eq!((out.code, recs.len()), (Some(0), 1), "{}", out.stderr);
    let line = dkimlog_line(&out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    let p = pairs(&line);
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["mode", "dkim1.d", "dkim1.s", "dkim1.a", "dkim1.result", "dkim1.letter", "dkim.result", "dkim.letter", "exit"],
        "{line}"
    );
    assert_eq!(get(&p, "dkim1.letter"), ["H"], "{line}");
    assert_eq!(get(&p, "exit"), ["0"]);
    // What the attacker wrote is there, escaped: no CR, LF, quote or `=` of its own.
    assert!(line.contains(r#" dkim1.d="evil.example\x0d\x0a dkim1.result\x3dpass \"dkim.letter\x3da\\\"" "#), "{line}");
    assert!(line.contains(r#" dkim1.s="x\x0ddkim1.letter\x3dA" dkim1.a="rsa-sha256 exit\x3d0" "#), "{line}");
    assert!(!line.contains('\r'), "{line:?}");
}

// ---------------------------------------------------------------------------
// An unreadable key

/// As root, qmail-dkim runs as nobody (setpriv), so the key's mode decides; as another user the
/// key is made unreadable to that user itself. Either way the message names the user by name,
/// its group, the key's owner, group and mode, and what to change.
#[test]
fn unreadable_key_names_user_and_group() {
    let ctl = tempfile::tempdir().unwrap();
    fs::set_permissions(ctl.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let kdir = ctl.path().join("domainkeys").join("example.com");
    let key = kdir.join("default");
    TestKey::ed25519_at(&key);
    fs::set_permissions(ctl.path().join("domainkeys"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&kdir, fs::Permissions::from_mode(0o755)).unwrap();
    let root = nix_uid() == 0;
    fs::set_permissions(&key, fs::Permissions::from_mode(if root { 0o640 } else { 0o000 })).unwrap();
    let q = Queue::new();
    fs::set_permissions(q.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let env = env_of(&q, ctl.path(), &[("DKIMSIGN", "domainkeys/%/default"), ("DKIMLOG", "1")]);
    let mut run = Run::new(MSG, &envelope(SENDER, &["sue@example.net"])).env_owned(&env).close_fd(6);
    if root {
        let bin = qmail_dkim_bin().display().to_string();
        run = run.program("setpriv").args(&["--reuid=65534", "--regid=65534", "--clear-groups", "--", &bin]);
    }
    let (out, recs) = finish(run.run(), &q);
    assert_eq!((out.code, recs.len()), (Some(55), 0), "{}", out.stderr);
    let first = out.stderr.lines().next().unwrap_or("");
    let want = if root {
        let (user, group) = (name_of("passwd", 65534), name_of("group", 65534));
        format!(
            "qmail-dkim: cannot read key {}: permission denied (running as {user} uid 65534, groups {group}; the key is root:{} 0640: make it readable by group {group} (chgrp {group}, chmod g+r))",
            key.display(),
            name_of("group", 0)
        )
    } else {
        let me = String::from_utf8(std::process::Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        format!("qmail-dkim: cannot read key {}: permission denied (running as {} uid ", key.display(), me.trim())
    };
    assert!(first.starts_with(&want), "{first}\nwanted {want}");
    if !root {
        assert!(first.ends_with(" 0000: make it readable by its owner (chmod u+r))"), "{first}");
    }
    // The DKIMLOG line carries the same words, quoted.
    assert!(dkimlog_line(&out.stderr).contains(" error=\"cannot read key "), "{}", out.stderr);
}

fn nix_uid() -> u32 {
    let o = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// The name of an id in the passwd or group database.
fn name_of(db: &str, id: u32) -> String {
    let o = std::process::Command::new("getent").args([db, &id.to_string()]).output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    let name = t.split(':').next().unwrap_or("").to_string();
    assert!(!name.is_empty(), "getent {db} {id}: no entry");
    name
}
