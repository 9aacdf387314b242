//! Signing through the real binary into the recording queue stand-in: the interop matrix
//! (dkimpy and Mail::DKIM verify what we sign), the environment and control-file rules, and
//! every exit code of the signing path.

use crate::common::*;
use std::fs;
use std::path::Path;

const SENDER: &str = "joe@example.com";

fn env_with<'a>(q: &'a Queue, extra: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
    let mut v = q.env();
    v.push(("DKIMQUEUE".into(), q.program().display().to_string()));
    v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    v
}

/// Runs qmail-dkim; returns the output and the single recording (if any).
fn sign(msg: &[u8], extra: &[(&str, &str)]) -> (Output, Option<Recorded>) {
    run_into_queue(msg, extra, SENDER, "x@y.org")
}

/// The messages of the interop matrix: LF and CRLF line ends, 8-bit text, an empty body,
/// trailing blank lines, long folded headers, duplicate headers.
fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let long_to: String = (0..30).map(|i| format!("user{i}@example.org")).collect::<Vec<_>>().join(",\n\t");
    vec![
        ("plain", b"From: Joe <joe@example.com>\nTo: x@y.org\nSubject: hello\n\nHello world.\n".to_vec()),
        (
            "crlf",
            b"From: Joe <joe@example.com>\r\nTo: x@y.org\r\nSubject:  spaced   out \r\n\r\nLine  one \r\n\tLine two\r\n".to_vec(),
        ),
        (
            "8bit",
            "From: Jörg <joe@example.com>\nTo: x@y.org\nSubject: Grüße\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nSchöne Grüße aus Köln.\n"
                .as_bytes()
                .to_vec(),
        ),
        ("empty-body", b"From: joe@example.com\nTo: x@y.org\nSubject: nothing\n\n".to_vec()),
        ("no-body", b"From: joe@example.com\nTo: x@y.org\nSubject: no separator\n".to_vec()),
        ("trailing-blank", b"From: joe@example.com\nTo: x@y.org\nSubject: t\n\nbody\n\n\n \n\t\n\n".to_vec()),
        (
            "folded-dup",
            format!(
                "From: joe@example.com\nTo: {long_to}\nSubject: a very long subject line that goes on and on\n and is folded\n\tmore than once\nComments: one\nComments: two\nX-Mailer: test\nX-Other: unsigned\n\nBody.\n"
            )
            .into_bytes(),
        ),
    ]
}

struct Setup {
    dns: Dns,
    rsa: TestKey,
    rsa1024: TestKey,
    ed: TestKey,
}

fn setup() -> Setup {
    let rsa = TestKey::rsa(2048);
    let rsa1024 = TestKey::rsa(1024);
    let ed = TestKey::ed25519();
    let dns = Dns::start(&[
        ("rsa._domainkey.example.com", &rsa.dns_record()),
        ("rsa1024._domainkey.example.com", &rsa1024.dns_record()),
        ("ed._domainkey.example.com", &ed.dns_record()),
    ]);
    Setup { dns, rsa, rsa1024, ed }
}

/// A key file named after its selector, in a temporary directory.
fn key_as(dir: &Path, key: &TestKey, selector: &str) -> String {
    let p = dir.join(selector);
    key.copy_to(&p);
    p.display().to_string()
}

fn matrix(options: &[&str], mail_dkim_too: bool) {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let rsa = key_as(dir.path(), &s.rsa, "rsa");
    for opt in options {
        for (name, msg) in messages() {
            let (out, rec) = sign(&msg, &[("DKIMSIGN", &rsa), ("DKIMSIGNOPTIONS", opt)]);
            assert_eq!(out.code, Some(0), "{name} {opt}: {}", out.stderr);
            let rec = rec.expect("queued");
            // Our headers, then the input byte for byte.
            assert!(rec.msg.ends_with(&msg), "{name} {opt}: message changed");
            assert!(rec.msg.starts_with(b"DKIM-Signature: "), "{name} {opt}");
            let v = dkimpy_verify(&rec.msg, &s.dns);
            assert!(v.ok, "dkimpy rejects {name} {opt}: {} {}", v.report, v.stderr);
            if mail_dkim_too {
                let v = mail_dkim_verify(&rec.msg, &s.dns, false);
                assert!(v.ok, "Mail::DKIM rejects {name} {opt}: {} {}", v.report, v.stderr);
            }
        }
    }
}

#[test]
fn interop_rsa_sha256_all_canonicalizations() {
    matrix(&["", "-c r", "-c s", "-c t", "-c u", "-c r -l -q -t -h -i joe@example.com -x 3600"], true);
}

#[test]
fn interop_rsa_sha1_and_both() {
    matrix(&["-z 1 -c r", "-z 1 -c s", "-z 1 -c t", "-z 1 -c u", "-z 3"], true);
}

#[test]
fn interop_ed25519_and_dual() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let rsa = key_as(dir.path(), &s.rsa, "rsa");
    let ed = key_as(dir.path(), &s.ed, "ed");
    for (name, msg) in messages() {
        for canon in ["-c r", "-c s", "-c t", "-c u"] {
            let opts = format!("-z 4 {canon}");
            let (out, rec) = sign(&msg, &[("DKIMSIGN", &ed), ("DKIMSIGNOPTIONS", &opts)]);
            assert_eq!(out.code, Some(0), "{name}: {}", out.stderr);
            let rec = rec.unwrap();
            assert!(rec.msg_text().contains("a=ed25519-sha256"));
            let v = dkimpy_verify(&rec.msg, &s.dns);
            assert!(v.ok, "dkimpy rejects ed25519 {name} {canon}: {}", v.report);
        }
        // RSA and Ed25519 together: the extra (Ed25519) signature is placed above the RSA one.
        let (out, rec) = sign(&msg, &[("DKIMSIGN", &rsa), ("DKIMSIGNEXTRA", &ed), ("DKIMSIGNOPTIONSEXTRA", "-z 4")]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let rec = rec.unwrap();
        let sigs = headers_named(&rec.msg, "DKIM-Signature");
        assert_eq!(sigs.len(), 2);
        assert!(sigs[0].contains("ed25519-sha256") && sigs[1].contains("rsa-sha256"), "{sigs:?}");
        let v = dkimpy_verify(&rec.msg, &s.dns);
        assert!(v.ok, "dkimpy rejects dual {name}: {}", v.report);
        let v = mail_dkim_verify(&rec.msg, &s.dns, true);
        assert!(v.ok, "Mail::DKIM rejects the RSA half of dual {name}: {}", v.report);
    }
}

#[test]
fn interop_rsa_1024() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let k = key_as(dir.path(), &s.rsa1024, "rsa1024");
    let msg = &messages()[0].1;
    for opt in ["", "-z 1"] {
        let (out, rec) = sign(msg, &[("DKIMSIGN", &k), ("DKIMSIGNOPTIONS", opt)]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let rec = rec.unwrap();
        assert!(dkimpy_verify(&rec.msg, &s.dns).ok);
        assert!(mail_dkim_verify(&rec.msg, &s.dns, false).ok);
    }
}

/// mail-auth's verifier is a differential oracle on inputs outside its known defects
/// (docs/decisions.md: DKIM's canonicalization, signing and verifying are ours): relaxed bodies
/// without whitespace-only trailing lines.
#[test]
fn mail_auth_agrees() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let rsa = key_as(dir.path(), &s.rsa, "rsa");
    let ed = key_as(dir.path(), &s.ed, "ed");
    let (rt, auth) = mail_auth_for(&s.dns);
    for (name, msg) in messages() {
        if name == "trailing-blank" || name == "no-body" {
            continue;
        }
        for (key, opt) in [(&rsa, "-c r"), (&rsa, "-c s"), (&rsa, "-c t"), (&ed, "-z 4")] {
            let (out, recd) = sign(&msg, &[("DKIMSIGN", key), ("DKIMSIGNOPTIONS", opt)]);
            assert_eq!(out.code, Some(0), "{}", out.stderr);
            let signed = lf_to_crlf(&recd.unwrap().msg);
            let parsed = mail_auth::AuthenticatedMessage::parse(&signed).unwrap();
            let results = rt.block_on(auth.verify_dkim(&parsed));
            assert!(
                !results.is_empty() && results.iter().all(|r| matches!(r.result(), mail_auth::DkimResult::Pass)),
                "mail-auth disagrees on {name} {opt}: {:?}",
                results.iter().map(|r| r.result().clone()).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn byte_for_byte_and_envelope_unchanged() {
    let k = TestKey::rsa(2048);
    let mut msg = b"From: joe@example.com\nSubject: bytes\n\n".to_vec();
    msg.extend_from_slice(b"NUL\0inside\nbare\rCR\nmixed\r\nendings\n\xff\xfe invalid utf-8\nno final newline");
    let q = Queue::new();
    let env = env_with(&q, &[("DKIMSIGN", k.path.to_str().unwrap())]);
    let envl = envelope("", &["a@b", "c@d"]);
    let out = run_qmail_dkim(&msg, &envl, &env_refs(&env), &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = q.records();
    assert_eq!(r.len(), 1);
    assert!(r[0].msg.ends_with(&msg));
    let added = &r[0].msg[..r[0].msg.len() - msg.len()];
    assert!(added.starts_with(b"DKIM-Signature: ") && added.ends_with(b"\n"));
    assert!(!added.windows(2).any(|w| w == b"\r\n"), "our header must use LF line ends");
    assert_eq!(r[0].env, envl);
    assert_eq!(r[0].dkimqueue(), None, "DKIMQUEUE must be unset for the queue program");
}

#[test]
fn key_selection_rules() {
    let k = TestKey::rsa(2048);
    let ctl = tempfile::tempdir().unwrap();
    let c = ctl.path().display().to_string();
    let msg = b"From: joe@example.com\nSubject: s\n\nb\n";

    // % replaced by the domain; selector = basename.
    k.copy_to(&ctl.path().join("domainkeys/example.com/sel1"));
    let (out, r) = sign(msg, &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t = r.unwrap().msg_text();
    assert!(t.contains("d=example.com;") && t.contains("s=sel1;"), "{t}");

    // No key for the domain with a %: queued unsigned.
    let (out, r) = sign(b"From: a@other.org\n\nb\n", &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1")]);
    assert_eq!(out.code, Some(0));
    assert!(!r.unwrap().msg_text().contains("DKIM-Signature"));

    // % removed when the per-domain file is missing: domainkeys/%/default -> domainkeys/default.
    k.copy_to(&ctl.path().join("domainkeys/default"));
    let (out, r) = sign(b"From: a@other.org\n\nb\n", &[("CONTROLDIR", &c), ("RELAYCLIENT", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t = r.unwrap().msg_text();
    assert!(t.contains("d=other.org;") && t.contains("s=default;"), "{t}");

    // AUTHINFO alone signs with the default key as well; DKIMKEY chooses another.
    let (_, r) = sign(msg, &[("CONTROLDIR", &c), ("AUTHINFO", "joe")]);
    assert!(r.unwrap().msg_text().contains("DKIM-Signature"));
    let (_, r) = sign(msg, &[("CONTROLDIR", &c), ("RELAYCLIENT", ""), ("DKIMKEY", "domainkeys/%/sel1")]);
    assert!(r.unwrap().msg_text().contains("s=sel1;"));

    // dkimkeys overrides DKIMSIGN and applies its envstr; NODKIMKEYS turns it off.
    k.copy_to(&ctl.path().join("keys/fromfile"));
    fs::write(ctl.path().join("dkimkeys"), "# comment\r\n\r\nexample.com:keys/fromfile:DKIMSIGNOPTIONS=-c s -t\r\n")
        .unwrap();
    let (out, r) = sign(msg, &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t = r.unwrap().msg_text();
    assert!(
        t.contains("s=fromfile;") && t.contains("c=simple/simple") && (t.contains("\tt=") || t.contains(" t=")),
        "{t}"
    );
    let (_, r) = sign(msg, &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1"), ("NODKIMKEYS", "")]);
    assert!(r.unwrap().msg_text().contains("s=sel1;"));
    // Glob and QREGEX entries.
    fs::write(ctl.path().join("dkimkeys"), "*.example.net:keys/fromfile\nmail[0-9]+\\.example\\.org:keys/fromfile\n")
        .unwrap();
    let (_, r) = sign(b"From: a@x.example.net\n\nb\n", &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1")]);
    assert!(r.unwrap().msg_text().contains("s=fromfile;"));
    let (_, r) = sign(
        b"From: a@mail7.example.org\n\nb\n",
        &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1"), ("QREGEX", "1")],
    );
    assert!(r.unwrap().msg_text().contains("s=fromfile;"));
    fs::remove_file(ctl.path().join("dkimkeys")).unwrap();

    // Signing domain: Sender before From; BOUNCEDOMAIN, then control/bouncehost when no header has one.
    let (_, r) = sign(
        b"From: a@from.org\nSender: b@example.com\n\nb\n",
        &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1")],
    );
    assert!(r.unwrap().msg_text().contains("d=example.com;"));
    let (_, r) = sign(
        b"Subject: none\n\nb\n",
        &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1"), ("BOUNCEDOMAIN", "bounce@example.com")],
    );
    assert!(r.unwrap().msg_text().contains("d=example.com;"));
    fs::write(ctl.path().join("bouncehost"), "example.com\n").unwrap();
    let (_, r) = sign(b"Subject: none\n\nb\n", &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1")]);
    assert!(r.unwrap().msg_text().contains("d=example.com;"));

    // Headers: X- unsigned except X-Mailer, EXCLUDE_DKIMSIGN, From oversigned.
    let (_, r) = sign(
        b"From: joe@example.com\nTo: a@b\nX-Mailer: m\nX-Spam: y\nReceived: r\nList-Id: l\n\nb\n",
        &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel1"), ("EXCLUDE_DKIMSIGN", "list-:To")],
    );
    let t = r.unwrap().msg_text();
    assert!(t.contains("h=from:x-mailer:from;"), "{t}");

    // DKIMIDENTITY and DKIMEXPIRE override the options.
    let (_, r) = sign(
        msg,
        &[
            ("CONTROLDIR", &c),
            ("DKIMSIGN", "domainkeys/%/sel1"),
            ("DKIMSIGNOPTIONS", "-i a@example.com -x 10"),
            ("DKIMIDENTITY", "b@example.com"),
            ("DKIMEXPIRE", ""),
        ],
    );
    let t = r.unwrap().msg_text();
    assert!(t.contains("i=b@example.com;") && !t.contains(" x="), "{t}");
}

/// `DKIMSIGN=/dir/%` with no key for the domain fell back to reading `/dir/` itself and
/// refused the message with 55 (retried for ever); the manual says it is queued unsigned.
#[test]
fn dkimsign_dir_percent_without_key_is_queued_unsigned() {
    let keys = tempfile::tempdir().unwrap();
    let template = format!("{}/%", keys.path().display());
    let msg = b"From: joe@example.com\nSubject: s\n\nb\n";
    let (primary, extra) =
        ([("DKIMSIGN", template.as_str())], [("DKIMSIGN", template.as_str()), ("DKIMSIGNEXTRA", &template)]);
    for env in [&primary[..], &extra[..]] {
        let (out, r) = sign(msg, env);
        assert_eq!(out.code, Some(0), "{env:?}: {}", out.stderr);
        assert_eq!(r.unwrap().msg_text(), String::from_utf8_lossy(msg), "{env:?}");
        assert!(out.stderr.contains("no private key for example.com"), "{}", out.stderr);
    }
    // The key named after the domain is found and its name is the selector.
    TestKey::rsa(2048).copy_to(&keys.path().join("example.com"));
    let (out, r) = sign(msg, &[("DKIMSIGN", &template)]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t = r.unwrap().msg_text();
    assert!(t.contains("d=example.com;") && t.contains("s=example.com;"), "{t}");
}

/// `From: x@...` put `..` into the key path (`domainkeys/%/default` became `default` one level
/// up, and the message was signed with d=..), and a domain too long for a file name gave 55.
/// Such a domain has no key: the message is queued unsigned, for DKIM and DomainKeys alike.
#[test]
fn dot_dot_from_domain_is_queued_unsigned() {
    let ctl = tempfile::tempdir().unwrap();
    let c = ctl.path().display().to_string();
    let k = TestKey::rsa(2048);
    k.copy_to(&ctl.path().join("default"));
    k.copy_to(&ctl.path().join("domainkeys/default"));
    let long = format!("From: x@{}.org\n\nb\n", "a".repeat(300));
    for msg in [&b"From: x@..\n\nb\n"[..], b"From: x@...\n\nb\n", b"From: x@a..b\n\nb\n", long.as_bytes()] {
        let (out, r) =
            sign(msg, &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/default"), ("DKSIGN", "domainkeys/%/default")]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(r.unwrap().msg_text(), String::from_utf8_lossy(msg));
        assert!(out.stderr.contains("is not a domain name"), "{}", out.stderr);
        // Without a `%` as well: not error 35, and not signed as d=.. with the fixed key.
        let fixed = ctl.path().join("default").display().to_string();
        let (out, r) = sign(msg, &[("DKIMSIGN", &fixed)]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(r.unwrap().msg_text(), String::from_utf8_lossy(msg));
    }
}

#[test]
fn sign_or_verify_choice() {
    let k = TestKey::rsa(2048);
    let ks = k.path.to_str().unwrap();
    let msg = b"From: joe@example.com\nSubject: s\n\nb\n";
    // Nothing set, not a relay client: verification path, never signed.
    let (out, r) = sign(msg, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!r.unwrap().msg_text().contains("DKIM-Signature"));
    // DKIMVERIFY set with a relay client: verified, not signed.
    let (_, r) = sign(msg, &[("DKIMVERIFY", ""), ("RELAYCLIENT", ""), ("DKIMKEY", ks)]);
    assert!(!r.unwrap().msg_text().contains("DKIM-Signature"));
    // RELAYCLIENT_NODKIMVERIFY: handed on untouched.
    for v in ["RELAYCLIENT_NODKIMVERIFY", "RELAYCLIENT_NODKVERIFY"] {
        let (_, r) = sign(msg, &[("DKIMVERIFY", "FGH"), ("RELAYCLIENT", ""), (v, "")]);
        assert_eq!(r.unwrap().msg, msg.to_vec());
    }
    // DKIMSIGN wins over DKIMVERIFY.
    let (_, r) = sign(msg, &[("DKIMSIGN", ks), ("DKIMVERIFY", "FGH")]);
    assert!(r.unwrap().msg_text().starts_with("DKIM-Signature"));
}

#[test]
fn key_errors() {
    let msg = b"From: joe@example.com\nSubject: s\n\nb\n";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Missing key without %: 35, nothing queued.
    let (out, r) = sign(msg, &[("DKIMSIGN", "/nonexistent/key")]);
    assert_eq!(out.code, Some(35));
    assert!(r.is_none());
    assert!(out.stderr.starts_with("qmail-dkim: ") && out.stderr.contains("/nonexistent/key"), "{}", out.stderr);
    assert_eq!(out.stderr.trim_end().lines().count(), 1);
    // Corrupt PEM, a public key, an EC key, a directory, a 512-bit key: 55, nothing queued.
    fs::write(d.join("corrupt"), "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n").unwrap();
    fs::write(d.join("garbage"), b"\x00\x01binary").unwrap();
    let k = TestKey::rsa(2048);
    // Its public half (`openssl pkey -pubout`) and an EC key, from tests/data/testkeys.
    fs::copy(testkeys_dir().join("rsa-2048.pub.pem"), d.join("public")).unwrap();
    fs::copy(testkeys_dir().join("ec-p256.pem"), d.join("ec")).unwrap();
    fs::create_dir(d.join("adir")).unwrap();
    let short = TestKey::rsa(512);
    for (name, path) in [
        ("corrupt", d.join("corrupt")),
        ("garbage", d.join("garbage")),
        ("public", d.join("public")),
        ("ec", d.join("ec")),
        ("dir", d.join("adir")),
        ("512", short.path.clone()),
    ] {
        let (out, r) = sign(msg, &[("DKIMSIGN", path.to_str().unwrap())]);
        assert_eq!(out.code, Some(55), "{name}: {}", out.stderr);
        assert!(r.is_none(), "{name}");
        assert!(out.stderr.starts_with("qmail-dkim: "), "{name}: {}", out.stderr);
        assert!(!out.stderr.contains("BEGIN"), "no key material in diagnostics");
    }
    // Key type and algorithm disagree.
    let (out, _) = sign(msg, &[("DKIMSIGN", k.path.to_str().unwrap()), ("DKIMSIGNOPTIONS", "-z 4")]);
    assert_eq!(out.code, Some(55), "{}", out.stderr);
    // Invalid options: temporary, nothing queued.
    for bad in ["-Q", "-c x", "-z 9"] {
        let (out, r) = sign(msg, &[("DKIMSIGN", k.path.to_str().unwrap()), ("DKIMSIGNOPTIONS", bad)]);
        assert_eq!(out.code, Some(55), "{bad}");
        assert!(out.stderr.contains("Invalid DKIMSIGNOPTIONS"), "{}", out.stderr);
        assert!(r.is_none());
    }
    // A world-readable key signs but warns.
    let p = d.join("open");
    k.copy_to(&p);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    let (out, r) = sign(msg, &[("DKIMSIGN", p.to_str().unwrap())]);
    assert_eq!(out.code, Some(0));
    assert!(r.is_some());
    assert!(out.stderr.contains("warning") && out.stderr.contains("0644"), "{}", out.stderr);
    // A malformed dkimkeys file: 55.
    fs::write(d.join("dkimkeys"), "example.com\n").unwrap();
    let (out, r) = sign(msg, &[("DKIMSIGN", k.path.to_str().unwrap()), ("CONTROLDIR", d.to_str().unwrap())]);
    assert_eq!(out.code, Some(55), "{}", out.stderr);
    assert!(out.stderr.contains("dkimkeys"));
    assert!(r.is_none());
}

#[test]
fn envelope_errors() {
    let k = TestKey::rsa(2048);
    let q = Queue::new();
    let env = env_with(&q, &[("DKIMSIGN", k.path.to_str().unwrap())]);
    let msg = b"From: joe@example.com\n\nb\n";
    let long = format!("F{}\0\0", "a".repeat(1003));
    for (envl, code) in [
        (b"Xjoe\0\0".to_vec(), 91),
        (b"Fjoe\0Xa\0\0".to_vec(), 91),
        (b"Fjoe\0Ta\0".to_vec(), 54),
        (b"".to_vec(), 54),
        (long.into_bytes(), 11),
    ] {
        let out = run_qmail_dkim(msg, &envl, &env_refs(&env), &[]);
        assert_eq!(out.code, Some(code), "{envl:?}: {}", out.stderr);
        assert_no_panic(&out);
    }
    assert!(q.records().is_empty());
    // Zero recipients are allowed.
    let out = run_qmail_dkim(msg, b"Fjoe\0\0", &env_refs(&env), &[]);
    assert_eq!(out.code, Some(0));
    assert_eq!(q.records().len(), 1);
}

#[test]
fn queue_exit_codes_are_mirrored() {
    let k = TestKey::rsa(2048);
    let msg = b"From: joe@example.com\n\nb\n";
    for code in [0, 11, 31, 51, 52, 53, 54, 55, 56, 61, 62, 63, 64, 65, 66, 71, 72, 73, 74, 81, 91] {
        let c = code.to_string();
        let q = Queue::new();
        let env = env_with(&q, &[("DKIMSIGN", k.path.to_str().unwrap()), ("RECQUEUE_EXIT", &c)]);
        let out = run_qmail_dkim(msg, &envelope(SENDER, &["a@b"]), &env_refs(&env), &[]);
        assert_eq!(out.code, Some(code), "{}", out.stderr);
    }
}

#[test]
fn queue_failures() {
    let k = TestKey::rsa(2048);
    let ks = k.path.to_str().unwrap();
    let big: Vec<u8> = {
        let mut m = b"From: joe@example.com\n\n".to_vec();
        m.extend(
            std::iter::repeat_n(
                b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n".as_slice(),
                64 * 1024,
            )
            .flatten(),
        );
        m
    };
    let envl = envelope(SENDER, &["a@b"]);
    // Missing or not executable: 120.
    for prog in ["/nonexistent/qmail-queue", "/etc/hostname"] {
        let out = run_qmail_dkim(b"From: a@b\n\nx\n", &envl, &[("DKIMSIGN", ks), ("DKIMQUEUE", prog)], &[]);
        assert_eq!(out.code, Some(120), "{prog}: {}", out.stderr);
        assert!(out.stderr.contains(prog));
    }
    // Killed by a signal: 81.
    let q = Queue::new();
    let env = env_with(&q, &[("DKIMSIGN", ks), ("RECQUEUE_MODE", "kill")]);
    let out = run_qmail_dkim(&big, &envl, &env_refs(&env), &[]);
    assert_eq!(out.code, Some(81), "{}", out.stderr);
    // Refuses early without reading (4 MiB message): its code, no SIGPIPE death.
    for (mode, code) in [("early", "71"), ("partial", "31"), ("partial", "0"), ("slow", "0")] {
        let q = Queue::new();
        let env = env_with(&q, &[("DKIMSIGN", ks), ("RECQUEUE_MODE", mode), ("RECQUEUE_EXIT", code)]);
        let out = run_qmail_dkim(&big, &envl, &env_refs(&env), &[]);
        assert_eq!(out.signal, None);
        let want = match (mode, code) {
            ("slow", _) => 0,
            (_, "0") => 81, // exited 0 without reading everything: not trusted
            (_, c) => c.parse().unwrap(),
        };
        assert_eq!(out.code, Some(want), "{mode} {code}: {}", out.stderr);
    }
    // Our own arguments name the next program (QMAILQUEUE="qmail-dkim other-filter").
    let q = Queue::new();
    let mut env = q.env();
    env.push(("DKIMSIGN".into(), ks.into()));
    env.push(("DKIMQUEUE".into(), "/nonexistent".into()));
    let prog = q.program().display().to_string();
    let out = run_qmail_dkim(b"From: a@b\n\nx\n", &envl, &env_refs(&env), &[&prog]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(q.records().len(), 1);
    // Pipe failure: with too few descriptors the pipes cannot be made: 59.
    let q = Queue::new();
    let env = env_with(&q, &[("DKIMSIGN", ks)]);
    let bin = qmail_dkim_bin().display().to_string();
    let out = Run::new(b"From: a@b\n\nx\n", &envl)
        .program("/bin/sh")
        .args(&["-c", &format!("ulimit -n 5; exec {bin}")])
        .env_owned(&env)
        .run();
    assert_eq!(out.code, Some(59), "{}", out.stderr);
}

#[test]
fn death_bounds_the_run() {
    let k = TestKey::rsa(2048);
    let q = Queue::new();
    let env = env_with(
        &q,
        &[("DKIMSIGN", k.path.to_str().unwrap()), ("DEATH", "1"), ("RECQUEUE_MODE", "hang"), ("RECQUEUE_SLEEP", "5")],
    );
    let out = run_qmail_dkim(b"From: a@b\n\nx\n", &envelope(SENDER, &["a@b"]), &env_refs(&env), &[]);
    assert_eq!(out.code, Some(52), "{}", out.stderr);
}
