//! Reliability through the real binary: odd and hostile input on fd 0, unreadable and
//! malformed keys and control files, temporary files, and a parallel load. Each case either
//! passes the message on byte for byte below our headers, or refuses it with a documented code
//! and a one-line diagnostic; nothing panics (every run has RUST_BACKTRACE=1 and is checked).
//! What tests/e2e/sign.rs already proves (envelope errors, queue faults, corrupt/EC/public
//! keys, odd bytes in the body of a signed message) is not repeated here.

use crate::common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SENDER: &str = "joe@example.com";

/// The two ways through qmail-dkim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path2 {
    Sign,
    Verify,
}

/// The environment of a run into `q`: the recording stand-in as DKIMQUEUE, RUST_BACKTRACE=1,
/// and for verifying a DNS server address nothing listens on (loopback; no lookup is expected).
fn base_env(q: &Queue, path: Path2, key: &Path) -> Vec<(String, String)> {
    let mut v = q.env();
    v.push(("DKIMQUEUE".into(), q.program().display().to_string()));
    v.push(("RUST_BACKTRACE".into(), "1".into()));
    match path {
        Path2::Sign => {
            v.push(("DKIMSIGN".into(), key.display().to_string()));
            // Messages without a usable From still get a signing domain.
            v.push(("BOUNCEDOMAIN".into(), "example.com".into()));
        }
        Path2::Verify => {
            v.push(("DKIMVERIFY".into(), String::new()));
            v.push(("DNSCACHEIP".into(), format!("127.0.0.1:{}", closed_udp_port())));
        }
    }
    v
}

fn with(mut v: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    v
}

/// One run; returns its output and what the stand-in recorded.
fn run(msg: &[u8], env: &[(String, String)], q: &Queue) -> (Output, Vec<Recorded>) {
    let out = Run::new(msg, &envelope(SENDER, &["x@example.org"])).env_owned(env).run();
    assert_no_panic(&out);
    assert!(!out.timed_out, "timed out; stderr: {}", out.stderr);
    assert!(!out.lingering, "something we started still holds fd 2");
    (out, q.records())
}

/// The message went through: exit 0, recorded exactly once, the input byte for byte after
/// what we prepended, and what we prepended is whole header fields with LF line ends.
/// Returns the prepended bytes.
#[track_caller]
fn assert_passed(name: &str, msg: &[u8], out: &Output, recs: &[Recorded]) -> Vec<u8> {
    assert_eq!(out.code, Some(0), "{name}: {}", out.stderr);
    assert_eq!(recs.len(), 1, "{name}: recorded {} times", recs.len());
    let r = &recs[0];
    assert!(r.msg.ends_with(msg), "{name}: the message was changed");
    assert_eq!(r.env, envelope(SENDER, &["x@example.org"]), "{name}: envelope changed");
    let added = r.msg[..r.msg.len() - msg.len()].to_vec();
    assert!(!added.is_empty() && added.ends_with(b"\n"), "{name}: {:?}", String::from_utf8_lossy(&added));
    assert!(!added.windows(2).any(|w| w == b"\r\n"), "{name}: our headers must end lines with LF");
    for (i, line) in added.split(|&c| c == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let cont = line[0] == b' ' || line[0] == b'\t';
        let field = line
            .iter()
            .position(|&c| c == b':')
            .is_some_and(|p| p > 0 && line[..p].iter().all(|c| c.is_ascii_graphic()));
        assert!((cont && i > 0) || field, "{name}: not a header line: {:?}", String::from_utf8_lossy(line));
    }
    added
}

/// A refusal: the code, a single diagnostic line on fd 2, nothing queued.
#[track_caller]
fn assert_refused(name: &str, out: &Output, recs: &[Recorded], code: i32, text: &str) {
    assert_eq!(out.code, Some(code), "{name}: {}", out.stderr);
    assert!(recs.is_empty(), "{name}: queued although refused");
    assert!(out.stderr.contains(text), "{name}: {:?} lacks {text:?}", out.stderr);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{name}: not one line: {:?}", out.stderr);
}

/// Verifies a recorded message with qmail-dkim itself, the key record given as SELECTOR_DATA.
fn verify_with_binary(msg: &[u8], record: &str) -> String {
    let q = Queue::new();
    let env = with(base_env(&q, Path2::Verify, Path::new("")), &[("SELECTOR_DATA", record)]);
    let (out, recs) = run(msg, &env, &q);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let added = &recs[0].msg[..recs[0].msg.len() - msg.len()];
    String::from_utf8_lossy(added).into_owned()
}

/// Odd message shapes, each: (name, bytes, whether our own signature must verify after it).
fn odd_messages() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut long_line = b"From: joe@example.com\nSubject: ".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', 1 << 20));
    long_line.extend_from_slice(b"\nTo: x@example.org\n\nbody\n");
    let mut many = b"From: joe@example.com\nSubject: many\n".to_vec();
    for i in 0..10_000usize {
        let name = if i.is_multiple_of(2) { "Received" } else { "Comments" };
        many.extend_from_slice(format!("{name}: field {i}\n").as_bytes());
    }
    many.extend_from_slice(b"\nbody\n");
    vec![
        ("nul-bytes", b"From: joe@example.com\nSubject: a\0b\nX-Nul: \0\n\nbody\0with NUL\n\0".to_vec(), true),
        ("bare-cr-only", b"From: joe@example.com\rSubject: x\r\rbody\rmore\r".to_vec(), true),
        ("bare-lf-in-crlf", b"From: joe@example.com\r\nSubject: b\n\r\nbody\r\nline\nend\r\n".to_vec(), true),
        (
            "mixed-endings",
            b"From: joe@example.com\r\nTo: x@y\nSubject: m\r\r\n\nbody\r\nline2\nline3\r\rend".to_vec(),
            true,
        ),
        (
            "no-blank-line",
            b"From: joe@example.com\nSubject: no separator\nthis is not a header\nstill text\n".to_vec(),
            true,
        ),
        ("no-body-no-newline", b"From: joe@example.com\nSubject: s".to_vec(), true),
        ("header-only-crlf", b"From: joe@example.com\r\n".to_vec(), true),
        ("only-blank-line", b"\n".to_vec(), true),
        ("only-crlf-lines", b"\r\n\r\n".to_vec(), true),
        ("one-mib-header-line", long_line, true),
        ("ten-thousand-headers", many, true),
        (
            "invalid-utf8",
            b"From: J\xf6rg <joe@example.com>\nSubject: \xff\xfe\xc3\x28\n\n\xc3\x28 body \xff\n".to_vec(),
            true,
        ),
        ("header-without-colon", b"From: joe@example.com\nThis line has no colon\nSubject: s\n\nbody\n".to_vec(), true),
        ("semicolon-in-name", b"From: joe@example.com\nSub;ect: x\nSubject: s\n\nbody\n".to_vec(), true),
        // A first line starting with whitespace would fold into our last field: refused, see
        // leading_whitespace_would_continue_our_signature.
    ]
}

#[test]
fn odd_input_passes_through_unchanged() {
    let key = TestKey::rsa(2048);
    let dir = tempfile::tempdir().unwrap();
    let kpath = dir.path().join("sel");
    key.copy_to(&kpath);
    let record = key.dns_record();
    for (name, msg, must_verify) in odd_messages() {
        for path in [Path2::Sign, Path2::Verify] {
            let q = Queue::new();
            let t = Instant::now();
            let (out, recs) = run(&msg, &base_env(&q, path, &kpath), &q);
            let added = assert_passed(&format!("{name} {path:?}"), &msg, &out, &recs);
            let text = String::from_utf8_lossy(&added).into_owned();
            assert!(t.elapsed() < Duration::from_secs(20), "{name} {path:?}: took {:?}", t.elapsed());
            match path {
                Path2::Sign => {
                    assert!(text.starts_with("DKIM-Signature: "), "{name}: {text}");
                    if must_verify {
                        let v = verify_with_binary(&recs[0].msg, &record);
                        assert!(v.contains("DKIM-Status: good"), "{name}: our signature does not verify: {v}");
                    }
                }
                Path2::Verify => assert!(text.contains("DKIM-Status: "), "{name}: {text}"),
            }
        }
    }
}

/// A first line starting with white space would continue the field we add last (our
/// signature, or DKIM-Status): refused permanently, with the usual conventions.
#[test]
fn leading_whitespace_would_continue_our_signature() {
    let key = TestKey::rsa(2048);
    let msg = b" folded first line\nFrom: joe@example.com\n\nbody\n";
    for path in [Path2::Sign, Path2::Verify] {
        let q = Queue::new();
        let (out, recs) = run(msg, &with(base_env(&q, path, &key.path), &[("CUSTOM_ERRORS", "indimail")]), &q);
        assert_refused(&format!("{path:?}"), &out, &recs, 88, "Dqmail-dkim: malformed message");
        let q = Queue::new();
        let (out, recs) = run(msg, &with(base_env(&q, path, &key.path), &[("CUSTOM_ERRORS", "none")]), &q);
        assert_refused(&format!("CUSTOM_ERRORS=none {path:?}"), &out, &recs, 31, "(#5.6.0)");
    }
}

#[test]
fn empty_message_and_closed_fd0() {
    let key = TestKey::rsa(2048);
    let bin = qmail_dkim_bin().display().to_string();
    for path in [Path2::Sign, Path2::Verify] {
        // Zero bytes: an empty message, passed on with our headers.
        let q = Queue::new();
        let (out, recs) = run(b"", &base_env(&q, path, &key.path), &q);
        assert_passed(&format!("empty {path:?}"), b"", &out, &recs);
        // fd 0 closed: Rust's runtime reopens a closed fd 0 on /dev/null before main, so this
        // is the empty message again (qmail-queue fed /dev/null does the same).
        let q = Queue::new();
        let out = Run::new(b"", &envelope(SENDER, &["x@example.org"]))
            .program("/bin/sh")
            .args(&["-c", r#"exec "$0" <&-"#, &bin])
            .env_owned(&base_env(&q, path, &key.path))
            .run();
        assert_no_panic(&out);
        assert_passed(&format!("closed fd 0 {path:?}"), b"", &out, &q.records());
    }
}

#[test]
fn unreadable_fd0_is_54() {
    let key = TestKey::rsa(2048);
    let bin = qmail_dkim_bin().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for path in [Path2::Sign, Path2::Verify] {
        // fd 0 is a directory opened read-only: read(2) fails with EISDIR.
        let q = Queue::new();
        let out = Run::new(b"", &envelope(SENDER, &["x@example.org"]))
            .program("/bin/sh")
            .args(&["-c", r#"exec "$0" <"$1""#, &bin, &d])
            .env_owned(&base_env(&q, path, &key.path))
            .run();
        assert_no_panic(&out);
        assert_refused(&format!("directory on fd 0 {path:?}"), &out, &q.records(), 54, "unable to read message");
        // fd 0 opened write-only: read(2) fails with EBADF.
        let q = Queue::new();
        let f = dir.path().join("wo");
        let out = Run::new(b"", &envelope(SENDER, &["x@example.org"]))
            .program("/bin/sh")
            .args(&["-c", r#"exec "$0" 0>"$1""#, &bin, &f.display().to_string()])
            .env_owned(&base_env(&q, path, &key.path))
            .run();
        assert_no_panic(&out);
        assert_refused(&format!("write-only fd 0 {path:?}"), &out, &q.records(), 54, "unable to read message");
    }
}

#[test]
fn header_block_bounds() {
    let key = TestKey::rsa(2048);
    // 16 MiB and 100,000 fields are the bounds (src/message.rs, MAX_HEADER_BYTES): above them
    // the message is refused permanently in the CUSTOM_ERRORS convention (by default here, with
    // neither fd 6 nor ERROR_FD: 31 and a line on fd 2).
    let mut huge = b"From: joe@example.com\nX-Huge: ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', (16 << 20) + 10));
    huge.extend_from_slice(b"\n\nbody\n");
    let mut no_blank = b"From: joe@example.com\n".to_vec();
    no_blank.extend(
        std::iter::repeat_n(b"X-Line: 0123456789abcdef0123456789abcdef0123456789abcdef\n".as_slice(), 320_000)
            .flatten(),
    );
    let mut fields = b"From: joe@example.com\n".to_vec();
    for i in 0..100_000 {
        fields.extend_from_slice(format!("C: {i}\n").as_bytes());
    }
    let at_limit = fields.clone(); // 100,001 fields
    let mut under = b"From: joe@example.com\n".to_vec();
    for i in 0..99_999 {
        under.extend_from_slice(format!("C: {i}\n X\n").as_bytes()); // continuations do not count
    }
    under.extend_from_slice(b"\nbody\n");
    for path in [Path2::Sign, Path2::Verify] {
        for (name, msg) in
            [("16 MiB line", &huge), ("16 MiB without a blank line", &no_blank), ("100,001 fields", &at_limit)]
        {
            let q = Queue::new();
            let (out, recs) = run(msg, &base_env(&q, path, &key.path), &q);
            assert_refused(
                &format!("{name} {path:?}"),
                &out,
                &recs,
                31,
                "qmail-dkim: refused permanently (exit 31): header too large",
            );
            assert!(out.stderr.ends_with("(#5.3.4)\n"), "{}", out.stderr);
        }
        let q = Queue::new();
        let (out, recs) = run(&huge, &with(base_env(&q, path, &key.path), &[("CUSTOM_ERRORS", "indimail")]), &q);
        assert_refused("CUSTOM_ERRORS=indimail", &out, &recs, 88, "Dqmail-dkim: header too large");
        assert!(out.stderr.ends_with("(#5.3.4)"), "{}", out.stderr);
        // 100,000 fields exactly: passed on.
        let q = Queue::new();
        let (out, recs) = run(&under, &base_env(&q, path, &key.path), &q);
        assert_passed(&format!("100,000 fields {path:?}"), &under, &out, &recs);
    }
}

/// The argv that runs qmail-dkim as nobody (uid 65534) through setpriv (util-linux, which
/// .ci/install-test-deps installs); fails the test when that cannot work here.
fn as_nobody() -> Vec<String> {
    let probe = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "test", "-x"])
        .arg(qmail_dkim_bin())
        .status();
    assert!(
        matches!(probe, Ok(s) if s.success()),
        "cannot run {} as nobody with setpriv (needs root, util-linux, and a path nobody can reach): {probe:?}",
        qmail_dkim_bin().display()
    );
    ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        .iter()
        .map(|s| s.to_string())
        .chain([qmail_dkim_bin().display().to_string()])
        .collect()
}

#[test]
fn unreadable_key_and_control_files() {
    // We run as root, which reads a mode-000 file; so qmail-dkim runs as nobody here.
    let argv = as_nobody();
    let key = TestKey::rsa(2048);
    let ctl = tempfile::tempdir().unwrap();
    let c = ctl.path();
    fs::set_permissions(c, fs::Permissions::from_mode(0o755)).unwrap();
    let kpath = c.join("sel");
    key.copy_to(&kpath);
    fs::set_permissions(&kpath, fs::Permissions::from_mode(0o600)).unwrap();
    let msg = b"From: joe@example.com\nSubject: s\n\nbody\n";
    let run_nobody_msg = |msg: &[u8], env: &[(String, String)], q: &Queue| {
        // The stand-in runs as nobody too: it must be able to record.
        fs::set_permissions(q.dir(), fs::Permissions::from_mode(0o777)).unwrap();
        let out = Run::new(msg, &envelope(SENDER, &["x@example.org"]))
            .program(&argv[0])
            .args(&argv[1..].iter().map(String::as_str).collect::<Vec<_>>())
            .env_owned(env)
            .run();
        assert_no_panic(&out);
        (out, q.records())
    };
    let run_nobody = |env: &[(String, String)], q: &Queue| run_nobody_msg(msg, env, q);
    let cs = c.display().to_string();

    // The private key: 55, naming the file and the user we run as.
    let q = Queue::new();
    let (out, recs) = run_nobody(&base_env(&q, Path2::Sign, &kpath), &q);
    assert_refused("unreadable key", &out, &recs, 55, &kpath.display().to_string());
    assert!(out.stderr.contains("uid 65534") && out.stderr.contains("ermission denied"), "{}", out.stderr);

    // A readable key, but control/dkimkeys unreadable: 55, naming dkimkeys.
    fs::set_permissions(&kpath, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(c.join("dkimkeys"), "example.com:sel\n").unwrap();
    fs::set_permissions(c.join("dkimkeys"), fs::Permissions::from_mode(0o600)).unwrap();
    let q = Queue::new();
    let (out, recs) = run_nobody(&with(base_env(&q, Path2::Sign, &kpath), &[("CONTROLDIR", &cs)]), &q);
    assert_refused("unreadable dkimkeys", &out, &recs, 55, "dkimkeys");
    fs::remove_file(c.join("dkimkeys")).unwrap();

    // control/me needed for the signing domain and unreadable: 55.
    fs::write(c.join("me"), "example.com\n").unwrap();
    fs::set_permissions(c.join("me"), fs::Permissions::from_mode(0o600)).unwrap();
    let q = Queue::new();
    let env: Vec<(String, String)> =
        base_env(&q, Path2::Sign, &kpath).into_iter().filter(|(k, _)| k != "BOUNCEDOMAIN").collect();
    let (out, recs) = run_nobody_msg(b"Subject: no from\n\nbody\n", &with(env, &[("CONTROLDIR", &cs)]), &q);
    assert_refused("unreadable control/me", &out, &recs, 55, "control file");
    assert!(out.stderr.contains(&c.join("me").display().to_string()), "{}", out.stderr);

    // And the key readable by nobody signs (the world-readable warning is expected).
    fs::set_permissions(c.join("me"), fs::Permissions::from_mode(0o644)).unwrap();
    let q = Queue::new();
    let (out, recs) = run_nobody(&base_env(&q, Path2::Sign, &kpath), &q);
    assert_passed("readable key as nobody", msg, &out, &recs);
}

#[test]
fn key_file_shapes() {
    let rsa = TestKey::rsa(2048);
    let ed = TestKey::ed25519();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let msg = b"From: joe@example.com\nSubject: s\n\nbody\n";
    let pem = fs::read_to_string(&rsa.path).unwrap();
    // The same key as PKCS#1 (`openssl rsa -traditional`).
    let traditional = fs::read_to_string(testkeys_dir().join("rsa-2048.pkcs1.pem")).unwrap();
    assert!(traditional.contains("BEGIN RSA PRIVATE KEY"));

    // Usable shapes: CRLF line ends, PKCS#1 with CRLF, text around the PEM block, blank lines.
    let good = [
        ("crlf", pem.replace('\n', "\r\n")),
        ("pkcs1-crlf", traditional.replace('\n', "\r\n")),
        ("text-around", format!("# the key of example.com\n\n{pem}\ntrailing words\n")),
        ("blank-lines", pem.replacen('\n', "\n\n", 1)),
    ];
    for (name, text) in good {
        let p = d.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let q = Queue::new();
        let (out, recs) = run(msg, &base_env(&q, Path2::Sign, &p), &q);
        assert_passed(name, msg, &out, &recs);
        let v = verify_with_binary(&recs[0].msg, &rsa.dns_record());
        assert!(v.contains("DKIM-Status: good"), "{name}: {v}");
        assert!(!out.stderr.contains("warning"), "{name}: {}", out.stderr);
    }

    // Unusable shapes: 55 and one line that names the file and shows no key material.
    let half = {
        let lines: Vec<&str> = pem.lines().collect();
        let mut v = lines[..lines.len() / 2].join("\n");
        v.push_str("\n-----END PRIVATE KEY-----\n");
        v
    };
    let ed_pem = fs::read_to_string(&ed.path).unwrap();
    let bad = [
        ("empty", String::new()),
        ("truncated", half),
        ("no-end-line", pem.lines().take(5).collect::<Vec<_>>().join("\n")),
        ("two-keys-first-corrupt", format!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{pem}")),
        ("encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n".into()),
    ];
    for (name, text) in bad {
        let p = d.join(name);
        fs::write(&p, &text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let q = Queue::new();
        let (out, recs) = run(msg, &base_env(&q, Path2::Sign, &p), &q);
        assert_refused(name, &out, &recs, 55, &p.display().to_string());
        for line in text.lines().filter(|l| l.len() > 20 && !l.starts_with("-----")) {
            assert!(!out.stderr.contains(line), "{name}: key material in the diagnostic");
        }
    }
    // An RSA key over 8192 bits (tests/data/rsa-8200.pem, made for this test): refused.
    let p = d.join("rsa8200");
    fs::copy(repo_root().join("tests/data/rsa-8200.pem"), &p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    for opts in ["", "-z 1"] {
        let q = Queue::new();
        let (out, recs) = run(msg, &with(base_env(&q, Path2::Sign, &p), &[("DKIMSIGNOPTIONS", opts)]), &q);
        assert_refused("8200-bit key", &out, &recs, 55, "RSA key of 8200 bits is too long (at most 8192)");
    }
    // Wrong key type for the algorithm: an Ed25519 key with the default rsa-sha256.
    let q = Queue::new();
    let (out, recs) = run(msg, &base_env(&q, Path2::Sign, &ed.path), &q);
    assert_refused("ed25519 key, rsa-sha256", &out, &recs, 55, "cannot make rsa-sha256");
    assert!(!out.stderr.contains(ed_pem.lines().nth(1).unwrap()));
}

#[test]
fn control_file_shapes() {
    let key = TestKey::rsa(2048);
    let ctl = tempfile::tempdir().unwrap();
    let c = ctl.path();
    let cs = c.display().to_string();
    key.copy_to(&c.join("keys/fromfile"));
    let msg = b"From: joe@example.com\nSubject: s\n\nbody\n";
    let sign_with = |dkimkeys: &str, extra: &[(&str, &str)], msg: &[u8]| {
        fs::write(c.join("dkimkeys"), dkimkeys).unwrap();
        let q = Queue::new();
        let env = with(base_env(&q, Path2::Sign, Path::new("/nonexistent/%/default")), &[("CONTROLDIR", &cs)]);
        let (out, recs) = run(msg, &with(env, extra), &q);
        (out, recs)
    };

    // Comments, blank lines, CRLF, surrounding spaces, empty envstr items: all fine.
    let (out, recs) = sign_with(
        "# keys\r\n\r\n   \r\n  example.com : keys/fromfile : ,DKIMSIGNOPTIONS=-c s,, \r\n# end\r\n",
        &[],
        msg,
    );
    let added = assert_passed("tolerant dkimkeys", msg, &out, &recs);
    let t = String::from_utf8_lossy(&added);
    assert!(t.contains("s=fromfile;") && t.contains("c=simple/simple;"), "{t}");

    // Malformed entries: 55, one line naming dkimkeys and the entry, nothing queued; a bad
    // line anywhere in the file stops all signing until the postmaster fixes it.
    for (name, file, want) in [
        ("envstr without =", "example.com:keys/fromfile:NOEQUALS\n", "entry 1"),
        ("envstr bad name", "example.com:keys/fromfile:BAD-NAME=x\n", "invalid variable name"),
        ("empty key path", "example.com:\n", "empty domain or key path"),
        ("empty domain", ":keys/fromfile\n", "empty domain or key path"),
        ("bad line for another domain", "example.com:keys/fromfile\nother.org\n", "entry 2"),
    ] {
        let (out, recs) = sign_with(file, &[], msg);
        assert_refused(name, &out, &recs, 55, want);
        assert!(out.stderr.contains("dkimkeys"), "{name}: {}", out.stderr);
    }
    // An envstr that sets invalid options: 55, Invalid DKIMSIGNOPTIONS.
    let (out, recs) = sign_with("example.com:keys/fromfile:DKIMSIGNOPTIONS=-z 9\n", &[], msg);
    assert_refused("envstr with bad options", &out, &recs, 55, "Invalid DKIMSIGNOPTIONS");
    // Binary garbage in dkimkeys: no panic, a clean 55.
    let (out, recs) = sign_with("\u{0}\u{1}\u{fffd}\u{7f}\n", &[], msg);
    assert_refused("garbage dkimkeys", &out, &recs, 55, "dkimkeys");

    // control/me with CRLF and a comment gives the signing domain.
    fs::remove_file(c.join("dkimkeys")).unwrap();
    fs::write(c.join("me"), "# host\r\nexample.com\r\n").unwrap();
    let q = Queue::new();
    let env: Vec<(String, String)> =
        base_env(&q, Path2::Sign, &c.join("keys/fromfile")).into_iter().filter(|(k, _)| k != "BOUNCEDOMAIN").collect();
    let m = b"Subject: no from\n\nbody\n";
    let (out, recs) = run(m, &with(env, &[("CONTROLDIR", &cs)]), &q);
    let added = assert_passed("control/me CRLF", m, &out, &recs);
    assert!(String::from_utf8_lossy(&added).contains("d=example.com;"));
}

#[test]
fn spool_file_is_private_and_unlinked() {
    // The queue program looks at our open descriptors while we feed it a 1 MiB message: the
    // spool in TMPDIR is open, mode 600, and has no name (deleted), and TMPDIR is empty.
    let key = TestKey::rsa(2048);
    let tmp = tempfile::tempdir().unwrap();
    let seen = tempfile::tempdir().unwrap();
    let report = seen.path().join("report");
    let script = seen.path().join("queue.sh");
    fs::write(
        &script,
        format!(
            r#"#!/bin/sh
head -c 1 >/dev/null
for f in /proc/$PPID/fd/*; do
  l=$(readlink "$f")
  case "$l" in "$TMPDIR"/*) echo "$l $(stat -L -c %a "$f")" >>"{r}";; esac
done
echo "listing: $(ls -A "$TMPDIR" | wc -l)" >>"{r}"
cat >/dev/null
cat <&1 >/dev/null
"#,
            r = report.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut msg = b"From: joe@example.com\nSubject: big\n\n".to_vec();
    msg.extend(
        std::iter::repeat_n(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n".as_slice(),
            16 * 1024,
        )
        .flatten(),
    );
    for path in [Path2::Sign, Path2::Verify] {
        let _ = fs::remove_file(&report);
        let q = Queue::new();
        let env = with(
            base_env(&q, path, &key.path),
            &[("DKIMQUEUE", &script.display().to_string()), ("TMPDIR", &tmp.path().display().to_string())],
        );
        let (out, _) = run(&msg, &env, &q);
        assert_eq!(out.code, Some(0), "{path:?}: {}", out.stderr);
        let r = fs::read_to_string(&report).unwrap_or_default();
        let spool: Vec<&str> = r.lines().filter(|l| !l.starts_with("listing")).collect();
        assert_eq!(spool.len(), 1, "{path:?}: one spool file expected: {r}");
        assert!(spool[0].contains("(deleted)") && spool[0].ends_with(" 600"), "{path:?}: {r}");
        assert!(r.contains("listing: 0"), "{path:?}: TMPDIR not empty while we run: {r}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
    // TMPDIR unusable: a big message cannot be spooled: 53, one line, nothing queued; a small
    // one stays in memory and goes through.
    for path in [Path2::Sign, Path2::Verify] {
        let q = Queue::new();
        let env = with(base_env(&q, path, &key.path), &[("TMPDIR", "/nonexistent/tmp")]);
        let (out, recs) = run(&msg, &env, &q);
        assert_refused(&format!("no TMPDIR {path:?}"), &out, &recs, 53, "spool");
        let small = b"From: joe@example.com\n\nsmall\n";
        let q = Queue::new();
        let env = with(base_env(&q, path, &key.path), &[("TMPDIR", "/nonexistent/tmp")]);
        let (out, recs) = run(small, &env, &q);
        assert_passed("small, no TMPDIR", small, &out, &recs);
    }
}

#[test]
fn parallel_load_200_messages() {
    const N: usize = 200;
    const AT_ONCE: usize = 16;
    let key = TestKey::rsa(2048);
    let tmp = tempfile::tempdir().unwrap();
    let q = Queue::new();
    // Messages over SPOOL_MEMORY_LIMIT (256 KiB) go through the spool file; every tenth stays
    // small. Half are signed, half verified.
    let message = |i: usize| -> Vec<u8> {
        let mut m =
            format!("From: joe@example.com\nTo: x@example.org\nSubject: load {i}\nMessage-ID: <{i}@example.com>\n\n")
                .into_bytes();
        let lines = if i.is_multiple_of(10) { 10 } else { 4200 + i * 7 };
        for l in 0..lines {
            m.extend_from_slice(
                format!("message {i} line {l}: the quick brown fox jumps over the lazy dog\n").as_bytes(),
            );
        }
        m
    };
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..AT_ONCE {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= N {
                    return;
                }
                let path = if i.is_multiple_of(2) { Path2::Sign } else { Path2::Verify };
                let env = with(base_env(&q, path, &key.path), &[("TMPDIR", &tmp.path().display().to_string())]);
                let out = Run::new(&message(i), &envelope(SENDER, &["x@example.org"])).env_owned(&env).run();
                if out.code != Some(0) || out.stderr.contains("panicked") || out.timed_out {
                    failures.lock().unwrap().push(format!("{i}: {:?} {}", out.code, out.stderr));
                }
            });
        }
    });
    let f = failures.into_inner().unwrap();
    assert!(f.is_empty(), "failed runs: {f:?}");
    let recs = q.records();
    assert_eq!(recs.len(), N, "every message recorded exactly once");
    let mut seen = vec![0usize; N];
    for r in &recs {
        let t = r.msg_text();
        let i: usize = t
            .split("Subject: load ")
            .nth(1)
            .and_then(|s| s.split('\n').next())
            .and_then(|s| s.parse().ok())
            .expect("id");
        seen[i] += 1;
        let m = message(i);
        assert!(r.msg.ends_with(&m), "message {i} changed");
        let added = &r.msg[..r.msg.len() - m.len()];
        let added = String::from_utf8_lossy(added);
        if i.is_multiple_of(2) {
            assert!(added.starts_with("DKIM-Signature: ") && added.contains("d=example.com;"), "message {i}: {added}");
        } else {
            assert!(added.contains("DKIM-Status: no signatures\n"), "message {i}: {added}");
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "recorded counts: {seen:?}");
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0, "temporary files left in TMPDIR");
    eprintln!("200 messages through qmail-dkim in {:?}", start.elapsed());
}

/// Hostile verification input through the real binary: many tags, a 4 MiB h= list,
/// many DomainKey-Signature fields, many forged status fields. Each is handled in one linear
/// pass (the unit tests prove linearity: src/dkim/tags.rs, src/domainkeys/verify.rs,
/// src/queue.rs); here the message must be queued with the documented outcome, no DNS lookup
/// is made (the resolver is a closed port), and the peak RSS stays small (a 4 MiB h= used to
/// cost ~110 MiB). `/usr/bin/time -f %M`
/// measures the peak, as benches/compare.py does.
#[test]
fn hostile_signature_fields_are_bounded() {
    const HEAD: &str = "From: joe@example.com\nSubject: s\n";
    let tags = |n: usize| (0..n).map(|i| format!("t{i}=; ")).collect::<String>();
    let dkim_sig = |extra: &str, h: &str| {
        format!("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; {extra}h={h}; bh=AAAA; b=AAAA\n")
    };
    let dk_sig =
        |extra: &str, h: &str| format!("DomainKey-Signature: a=rsa-sha1; d=example.com; s=sel; {extra}h={h}; b=AAAA\n");
    let huge_h = format!("from:subject{}", ":from".repeat(800_000)); // 4 MiB
    let mut many_dk = String::new();
    for i in 0..90_000 {
        many_dk += &format!("DomainKey-Signature: d=x{i}.example.com; s=sel; b=AAAA\n");
    }
    let forged = "DKIM-Status: good\nDomainKey-Status: good\n".repeat(45_000);
    // (case, header fields above From, the DKIM-Status and DomainKey-Status values)
    const DKIM_H: &str = "signature error: DKIM-Signature could not parse or has bad tags/values";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("DKIM-Signature of 80,000 empty tags", dkim_sig(&tags(80_000), "from:subject"), DKIM_H, "no signature"),
        (
            "DomainKey-Signature of 80,000 empty tags",
            dk_sig(&tags(80_000), "from:subject"),
            "no signatures",
            "bad format",
        ),
        ("DKIM-Signature with a 4 MiB h=", dkim_sig("", &huge_h), DKIM_H, "no signature"),
        ("DomainKey-Signature with a 4 MiB h=", dk_sig("", &huge_h), "no signatures", "no resources"),
        // The topmost (d=x0.example.com) is not the sender's domain.
        ("90,000 DomainKey-Signature fields", many_dk, "no signatures", "bad format"),
        ("90,000 forged status fields", forged, "no signatures", "no signature"),
    ];
    let key = Path::new("");
    for (name, fields, dkim, dk) in cases {
        let body = format!("{HEAD}\nbody\n");
        let msg = format!("{fields}{body}").into_bytes();
        let q = Queue::new();
        let peak = tempfile::NamedTempFile::new().expect("temp file");
        let env = with(base_env(&q, Path2::Verify, key), &[("DKVERIFY", "")]);
        let mut args = vec!["-f", "%M", "-o", peak.path().to_str().expect("path")];
        let bin = qmail_dkim_bin();
        args.push(bin.to_str().expect("path"));
        let out = Run::new(&msg, &envelope(SENDER, &["x@example.org"]))
            .program("/usr/bin/time")
            .args(&args)
            .env_owned(&env)
            .run();
        assert_no_panic(&out);
        assert!(!out.timed_out, "{name}: timed out");
        let recs = q.records();
        assert_eq!((out.code, recs.len()), (Some(0), 1), "{name}: {}", out.stderr);
        let queued = recs[0].msg_text();
        // Without the DomainKeys policy comment (reported, not the point here).
        let status = |field: &str| {
            headers_named(queued.as_bytes(), field)
                .iter()
                .map(|f| f[field.len() + 1..].trim().split(" (policy").next().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            (status("DKIM-Status"), status("DomainKey-Status")),
            (vec![dkim.to_string()], vec![dk.to_string()]),
            "{name}"
        );
        // Forged status fields are gone; everything else is there, in order.
        let expected = if name.contains("forged") { body.clone() } else { String::from_utf8_lossy(&msg).into_owned() };
        assert!(queued.ends_with(&expected), "{name}: the message was changed");
        let kib: u64 = fs::read_to_string(peak.path()).expect("time -o").trim().parse().expect("peak RSS in KiB");
        assert!(kib < 64 << 10, "{name}: peak RSS {kib} KiB");
    }
}
