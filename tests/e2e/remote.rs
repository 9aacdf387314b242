//! qmail-dkim-remote, run as qmail-rspawn runs qmail-remote (`host sender recipient...`, the
//! message on fd 0 as a regular file, results read from fd 1), in front of a recording stand-in
//! for the real qmail-remote (tests/support/recremote.py, named by DKREMOTE).

use crate::common::*;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const RCPTS: [&str; 2] = ["a@dest.example", "b@dest.example"];

fn remote_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_qmail-dkim-remote"))
}

fn recremote() -> PathBuf {
    support_dir().join("recremote.py")
}

/// A control directory, a TMPDIR to prove nothing is left there, and a recording directory.
struct Setup {
    ctl: tempfile::TempDir,
    tmp: tempfile::TempDir,
    rec: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Setup {
    fn new() -> Setup {
        let ctl = tempfile::Builder::new().prefix("ctl").tempdir().expect("tempdir");
        let tmp = tempfile::Builder::new().prefix("tmp").tempdir().expect("tempdir");
        let rec = tempfile::Builder::new().prefix("rec").tempdir().expect("tempdir");
        let env = vec![
            ("CONTROLDIR".to_string(), ctl.path().display().to_string()),
            ("TMPDIR".to_string(), tmp.path().display().to_string()),
            ("RECREMOTE_DIR".to_string(), rec.path().display().to_string()),
            ("DKREMOTE".to_string(), recremote().display().to_string()),
        ];
        Setup { ctl, tmp, rec, env }
    }

    fn set(&mut self, k: &str, v: &str) {
        self.env.retain(|(n, _)| n != k);
        self.env.push((k.to_string(), v.to_string()));
    }

    /// A fresh RSA key at `domainkeys/<domain>/<sel>` and its DNS record.
    fn key(&self, domain: &str, sel: &str) -> (String, String) {
        let k = TestKey::rsa_at(&self.ctl.path().join("domainkeys").join(domain).join(sel), 2048);
        (format!("{sel}._domainkey.{domain}"), k.dns_record())
    }

    /// What the stand-in read on fd 0, and its side file; `None` when it did not run.
    fn recorded(&self) -> Option<(Vec<u8>, Json)> {
        let json = fs::read_to_string(self.rec.path().join("json")).ok()?;
        let msg = fs::read(self.rec.path().join("msg")).expect("msg beside json");
        Some((msg, serde_json::from_str::<Json>(&json).expect("recremote json")))
    }

    fn tmp_is_empty(&self) -> bool {
        fs::read_dir(self.tmp.path()).expect("tmpdir").next().is_none()
    }
}

struct Out {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `prefix... qmail-dkim-remote host sender rcpts...` with the message on fd 0: a regular
/// file as qmail-rspawn gives it, or a pipe.
fn run(s: &Setup, msg: &[u8], sender: &str, pipe: bool, prefix: &[&str]) -> Out {
    let mut args: Vec<String> = prefix.iter().map(|a| a.to_string()).collect();
    args.push(remote_bin().display().to_string());
    args.push("mx.dest.example".into());
    args.push(sender.into());
    args.extend(RCPTS.iter().map(|r| r.to_string()));
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..]).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.envs(s.env.iter().map(|(k, v)| (k, v)));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let file = tempfile::tempfile().expect("tempfile");
    if pipe {
        cmd.stdin(Stdio::piped());
    } else {
        (&file).write_all(msg).expect("write message");
        use std::io::Seek;
        (&file).rewind().expect("rewind");
        cmd.stdin(Stdio::from(file));
    }
    let mut child = cmd.spawn().expect("spawn");
    let feeder = child.stdin.take().map(|mut w| {
        let msg = msg.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&msg);
        })
    });
    let out = child.wait_with_output().expect("wait");
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Out { code: out.status.code(), stdout: out.stdout, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn message(body_bytes: usize) -> Vec<u8> {
    let mut m = b"From: Joe <joe@example.com>\nTo: a@dest.example\nSubject: leaving the queue\nDate: Sun, 29 Nov 2026 20:00:00 +0000\nMessage-ID: <1@example.com>\n\n".to_vec();
    let line = b"A line of the body, long enough to look like text. 0123456789\n";
    while m.len() < body_bytes {
        m.extend_from_slice(line);
    }
    m
}

fn default_result() -> Vec<u8> {
    let mut r: Vec<u8> = RCPTS.iter().flat_map(|a| format!("rok {a}\n\0").into_bytes()).collect();
    r.extend_from_slice(b"Kdelivered\n\0");
    r
}

/// The argv qmail-rspawn gave, the environment and the message (with our signature on top) reach
/// the real qmail-remote; fd 0 is a regular file read from offset 0 whose size is the message's,
/// as qmail-rspawn gives it; dkimpy and Mail::DKIM verify; fd 1 and the exit status are
/// qmail-remote's; nothing is left in TMPDIR. Sizes below and above the spool's memory limit,
/// fd 0 a file or a pipe.
#[test]
fn signed_at_exit_verifies_and_passes_everything_on() {
    let s = Setup::new();
    let (name, record) = s.key("example.com", "default");
    let dns = Dns::start(&[(&name, &record)]);
    for (size, pipe) in [(2_000, false), (1 << 20, false), (300_000, true)] {
        let _ = fs::remove_file(s.rec.path().join("json"));
        let msg = message(size);
        let out = run(&s, &msg, "joe@example.com", pipe, &[]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(out.stdout, default_result());
        let (got, json) = s.recorded().expect("the real qmail-remote ran");
        assert!(got.ends_with(&msg), "the message was changed");
        let top = &got[..got.len() - msg.len()];
        assert_eq!(headers_named(top, "DKIM-Signature").len(), 1, "{}", String::from_utf8_lossy(top));
        assert!(String::from_utf8_lossy(top).contains("d=example.com"));
        let argv = json.get("argv").map(str_list).unwrap_or_default();
        // (argv[0] is passed on too, but a script started through `#!` cannot see it.)
        let mut want = vec!["mx.dest.example".to_string(), "joe@example.com".into()];
        want.extend(RCPTS.iter().map(|r| r.to_string()));
        assert_eq!(argv[1..], want);
        let environ = json.get("environ").expect("environ");
        assert_eq!(environ.get("RECREMOTE_DIR").and_then(Json::as_str), Some(s.rec.path().to_str().unwrap()));
        assert_eq!(json.get("regular").and_then(Json::as_bool), Some(true));
        assert_eq!(json.get("offset").and_then(Json::as_i64), Some(0));
        assert_eq!(json.get("size").and_then(Json::as_i64), Some(got.len() as i64));
        let v = dkimpy_verify(&got, &dns);
        assert!(v.ok, "dkimpy: {} {}", v.report, v.stderr);
        let v = mail_dkim_verify(&got, &dns, false);
        assert!(v.ok, "Mail::DKIM: {} {}", v.report, v.stderr);
        assert!(s.tmp_is_empty(), "a temporary file was left behind");
    }
}

/// qmail-remote's results and exit status reach qmail-rspawn byte for byte: success, a
/// temporary and a permanent outcome per recipient and per message, and the exit codes qmail-rspawn
/// tells apart (0, 111 for "unable to run", 100).
#[test]
fn results_and_exit_status_pass_through_unchanged() {
    let mut s = Setup::new();
    s.key("example.com", "default");
    let cases: [(&str, &[u8], i32); 5] = [
        ("rok a\\0rok b\\0Kthanks\\0", b"rok a\0rok b\0Kthanks\0", 0),
        ("sbusy\\0sbusy\\0Zlater\\0", b"sbusy\0sbusy\0Zlater\0", 0),
        ("hno such user\\0rok\\0Dsome failed\\0", b"hno such user\0rok\0Dsome failed\0", 0),
        ("Zconnection refused\\0", b"Zconnection refused\0", 111),
        ("", b"", 100),
    ];
    for (result, bytes, code) in cases {
        s.set("RECREMOTE_RESULT", result);
        s.set("RECREMOTE_EXIT", &code.to_string());
        let out = run(&s, &message(1000), "joe@example.com", false, &[]);
        assert_eq!((out.code, out.stdout.as_slice()), (Some(code), bytes), "{result}: {}", out.stderr);
    }
}

/// A bounce (empty envelope sender, as qmail-send makes it) is signed for control/bouncehost
/// with that domain's key; control/me when there is no bouncehost.
#[test]
fn bounce_is_signed_for_bouncehost() {
    let s = Setup::new();
    let (b, b_rec) = s.key("bounce.example", "default");
    let (m, m_rec) = s.key("me.example", "default");
    let dns = Dns::start(&[(&b, &b_rec), (&m, &m_rec)]);
    fs::write(s.ctl.path().join("me"), "me.example\n").unwrap();
    let bounce = b"From: MAILER-DAEMON@bounce.example\nTo: joe@dest.example\nSubject: failure notice\n\nHi. This is the qmail-send program.\n";
    for (bouncehost, d) in [(true, "d=bounce.example"), (false, "d=me.example")] {
        if bouncehost {
            fs::write(s.ctl.path().join("bouncehost"), "bounce.example\n").unwrap();
        } else {
            fs::remove_file(s.ctl.path().join("bouncehost")).unwrap();
        }
        let out = run(&s, bounce, "", false, &[]);
        assert_eq!((out.code, out.stdout.clone()), (Some(0), default_result()), "{}", out.stderr);
        let (got, json) = s.recorded().expect("ran");
        assert_eq!(json.get("argv").map(str_list).unwrap_or_default()[2], "");
        let sig = headers_named(&got, "DKIM-Signature");
        assert!(sig.len() == 1 && sig[0].contains(d), "{sig:?}");
        assert!(dkimpy_verify(&got, &dns).ok);
    }
}

/// No key for the sender's domain: the real qmail-remote gets the message as it was, the queue
/// file itself (fd 0 rewound to where it was), or the same bytes through a pipe.
#[test]
fn no_key_for_the_domain_leaves_unsigned() {
    let s = Setup::new();
    s.key("example.com", "default");
    for pipe in [false, true] {
        let msg = message(400_000);
        let out = run(&s, &msg, "joe@other.example", pipe, &[]);
        assert_eq!((out.code, out.stdout.clone()), (Some(0), default_result()), "{}", out.stderr);
        let (got, json) = s.recorded().expect("ran");
        assert!(got == msg, "the message was changed");
        assert_eq!(json.get("offset").and_then(Json::as_i64), Some(0));
        assert!(s.tmp_is_empty());
    }
}

/// A message signed at queue entry with the same d= and selector is not signed again; one
/// signed for another selector is.
#[test]
fn signed_at_entry_is_not_signed_again() {
    let s = Setup::new();
    s.key("example.com", "default");
    let msg = message(5000);
    assert_eq!(run(&s, &msg, "joe@example.com", false, &[]).code, Some(0));
    let (once, _) = s.recorded().expect("ran");
    assert_eq!(run(&s, &once, "joe@example.com", false, &[]).code, Some(0));
    let (twice, _) = s.recorded().expect("ran");
    assert!(twice == once, "signed again");
    let other =
        [b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=old; h=from; bh=AA; b=AA\n".as_slice(), &msg].concat();
    assert_eq!(run(&s, &other, "joe@example.com", false, &[]).code, Some(0));
    let (got, _) = s.recorded().expect("ran");
    assert_eq!(headers_named(&got, "DKIM-Signature").len(), 2);
}

/// A DKIM-Signature that names our d= and s= but that our key did not make (a list post or a
/// forward can carry one anybody wrote, `b=AAAA`) does not stop signing: only one that verifies
/// with our own key does (checked without DNS: none is running here).
#[test]
fn a_signature_naming_our_d_and_s_that_our_key_did_not_make_does_not_stop_signing() {
    let s = Setup::new();
    s.key("example.com", "default");
    let msg = message(5000);
    let fake = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=default; h=from; bh=AAAA; b=AAAA\n";
    for m in [
        [fake.as_slice(), &msg].concat(),
        // Made by another key for our d= and s=, with a correct body hash.
        dkimpy_sign(&msg, &TestKey::other_rsa().path, "default", "example.com", &[]),
    ] {
        let out = run(&s, &m, "joe@example.com", false, &[]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let (got, _) = s.recorded().expect("ran");
        assert_eq!(headers_named(&got, "DKIM-Signature").len(), 2, "not signed: {}", out.stderr);
        assert!(!out.stderr.contains("already signed"), "{}", out.stderr);
        assert!(got.ends_with(&m), "message changed");
    }
}

/// Every failure is a temporary message report in qmail-remote's form (`Z`, text, NUL; exit 0),
/// so qmail-send keeps the message and retries: nothing is lost, nothing bounced for our fault,
/// the real qmail-remote is not run, and no temporary file is left.
#[test]
fn every_failure_is_a_z_report_and_exit_0() {
    // (what fails, environment, envelope sender, a word of the report)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("key named without % is missing", vec![("DKIMSIGN", "/nonexistent/key")], "joe@example.com", "does not exist"),
        ("unusable key", vec![("DKIMSIGN", "garbage")], "joe@example.com", "unusable private key"),
        ("bad DKIMSIGNOPTIONS", vec![("DKIMSIGNOPTIONS", "-z 9")], "joe@example.com", "DKIMSIGNOPTIONS"),
        ("bad control/dkimkeys", vec![("DKIMSIGN", "%/x")], "joe@example.com", "dkimkeys"),
        (
            "no real qmail-remote (signed)",
            vec![("DKREMOTE", "/nonexistent/qmail-remote")],
            "joe@example.com",
            "/nonexistent/qmail-remote",
        ),
        (
            "no real qmail-remote (unsigned)",
            vec![("DKREMOTE", "/nonexistent/qmail-remote")],
            "joe@unknown.example",
            "/nonexistent/qmail-remote",
        ),
        ("bounce without bouncehost or me", vec![], "", "no signing domain"),
        (
            "DKREMOTE names the wrapper itself",
            vec![("DKREMOTE", env!("CARGO_BIN_EXE_qmail-dkim-remote"))],
            "joe@example.com",
            "itself",
        ),
        ("key is a directory", vec![("DKIMSIGN", "domainkeys")], "joe@example.com", "cannot read key"),
    ];
    for (name, env, sender, text) in cases {
        let mut s = Setup::new();
        s.key("example.com", "default");
        fs::write(s.ctl.path().join("garbage"), "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
            .unwrap();
        if name.contains("dkimkeys") {
            fs::write(s.ctl.path().join("dkimkeys"), "example.com\n").unwrap();
        }
        for (k, v) in env {
            s.set(k, v);
        }
        for size in [3000, 600_000] {
            let out = run(&s, &message(size), sender, false, &[]);
            assert_eq!(out.code, Some(0), "{name}");
            let report = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(report.starts_with("Zqmail-dkim-remote: ") && report.ends_with("\n\0"), "{name}: {report:?}");
            assert_eq!(report.matches('\0').count(), 1, "{name}: {report:?}");
            assert!(report.contains(text), "{name}: {report:?}");
            assert!(s.recorded().is_none(), "{name}: the real qmail-remote ran");
            assert!(s.tmp_is_empty(), "{name}: a temporary file was left behind");
        }
    }
}

/// A 100 MiB message goes through a spool file, not memory: the peak RSS (of us and then of
/// the stand-in we become, as `/usr/bin/time -f %M` reports it) stays far below the size, the
/// message arrives whole and signed, and no temporary file is left.
#[test]
fn big_message_in_bounded_memory() {
    let s = Setup::new();
    s.key("example.com", "default");
    let msg = message(100 << 20);
    let peak = tempfile::NamedTempFile::new().expect("temp file");
    let p = peak.path().to_str().expect("path").to_string();
    let out = run(&s, &msg, "joe@example.com", false, &["/usr/bin/time", "-f", "%M", "-o", &p]);
    assert_eq!((out.code, out.stdout.clone()), (Some(0), default_result()), "{}", out.stderr);
    let (got, _) = s.recorded().expect("ran");
    assert!(got.len() > msg.len() && got.ends_with(&msg), "the message was changed");
    assert_eq!(headers_named(&got, "DKIM-Signature").len(), 1);
    let kib: u64 = fs::read_to_string(peak.path()).expect("time -o").trim().parse().expect("peak RSS in KiB");
    eprintln!("100 MiB message: peak RSS {kib} KiB");
    assert!(kib < 48 << 10, "peak RSS {kib} KiB");
    assert!(s.tmp_is_empty());
}

#[test]
fn version_and_help() {
    for (arg, want) in
        [("--version", "qmail-dkim-remote "), ("--help", "usage: qmail-dkim-remote host sender recipient")]
    {
        let out = Command::new(remote_bin()).arg(arg).output().expect("run");
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(want), "{arg}");
    }
}
