//! DomainKeys (RFC 4870) through the real binary: signing (`DKSIGN`) checked by Mail::DKIM,
//! Mail::DKIM's signatures verified by us (`DKVERIFY`), every result letter A–M (K is a unit
//! test in src/domainkeys/task.rs), the policy record, DomainKeys together with DKIM, and the
//! queue program choice (`DKQUEUE`).

use crate::common::*;
use std::path::Path;

const SENDER: &str = "joe@example.com";

/// A message with the things canonicalization cares about: folded headers, runs of whitespace
/// in headers and body, empty lines inside the body and trailing empty lines.
const MSG: &[u8] = b"From: Joe SixPack <joe@example.com>\nTo: Suzie Q <suzie@example.net>\nSubject: Is dinner\n   ready?\nDate: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\nMessage-ID: <20030712040037.46341.5F8J@example.com>\n\nHi.\n\n  We lost   the game.\tAre you hungry yet?\n\t\nJoe.\n\n\n";

fn messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("sample", MSG.to_vec()),
        ("crlf", lf_to_crlf(MSG)),
        ("empty-body", b"From: joe@example.com\nTo: x@y.org\nSubject: nothing\n\n".to_vec()),
        ("no-body", b"From: joe@example.com\nTo: x@y.org\nSubject: no separator\n".to_vec()),
        ("blank-body", b"From: joe@example.com\nTo: x@y.org\nSubject: blank\n\n \n\t\n\n".to_vec()),
        (
            "dup-headers",
            b"Received: from a by b\nReceived: from c by d\nFrom: joe@example.com\nTo: x@y.org\nComments: one\nComments: two\nSubject: s\n\nBody.\n"
                .to_vec(),
        ),
        ("sender", b"From: Joe <joe@other.org>\nSender: list@example.com\nTo: x@y.org\nSubject: via list\n\nBody\n".to_vec()),
    ]
}

/// A DNS server with the key `sel._domainkey.example.com` (and `extra` records), the key file
/// (named after its selector) and a control directory.
struct Fx {
    dns: Dns,
    key: TestKey,
    dir: tempfile::TempDir,
}

impl Fx {
    fn new(bits: u32, extra: &[(&str, &str)]) -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::rsa_at(&dir.path().join("keys/example.com/sel"), bits);
        let rec = key.dk_record();
        let mut records: Vec<(&str, &str)> = vec![("sel._domainkey.example.com", &rec)];
        records.extend_from_slice(extra);
        let dns = Dns::start(&records);
        Fx { dns, key, dir }
    }

    fn key_path(&self) -> String {
        self.key.path.display().to_string()
    }

    fn control(&self) -> String {
        let c = self.dir.path().join("control");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("me"), "mx.test.example\n").unwrap();
        c.display().to_string()
    }

    /// Runs qmail-dkim with the recording queue as DKIMQUEUE and our DNS server. Refusals in
    /// indimail's convention (unless `extra` names another), whose fd 2 is the D/Z text alone.
    fn run(&self, msg: &[u8], extra: &[(&str, &str)]) -> (Output, Option<Recorded>) {
        let q = Queue::new();
        let mut env = q.env();
        env.push(("CUSTOM_ERRORS".into(), "indimail".into()));
        env.push(("DKIMQUEUE".into(), q.program().display().to_string()));
        env.push(("DNSCACHEIP".into(), self.dns.addr()));
        env.push(("CONTROLDIR".into(), self.control()));
        env.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        let out = run_qmail_dkim(msg, &envelope(SENDER, &["x@y.org"]), &env_refs(&env), &[]);
        assert_no_panic(&out);
        let mut r = q.records();
        assert!(r.len() <= 1, "queued more than once");
        (out, r.pop())
    }

    fn sign(&self, msg: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
        let kp = self.key_path();
        // A relay client, as in real use (DKIM then signs only where it has a key: here none).
        let mut env = vec![("DKSIGN", kp.as_str()), ("RELAYCLIENT", "")];
        env.extend_from_slice(extra);
        let (out, rec) = self.run(msg, &env);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        rec.expect("queued").msg
    }

    /// Verifies with DKVERIFY=`letters`: the exit code, stderr, the DomainKey-Status value
    /// without its comment (None when nothing was queued) and the queued message.
    fn verify(&self, msg: &[u8], letters: &str) -> (Option<i32>, String, Option<String>, Option<Recorded>) {
        let (out, rec) = self.run(msg, &[("DKVERIFY", letters)]);
        let status = rec.as_ref().map(|r| {
            let v = status_field(r);
            v.split_once(" (").map_or(v.as_str(), |(s, _)| s).to_string()
        });
        (out.code, out.stderr, status, rec)
    }

    /// How often the policy record `_domainkey.example.com` was asked for.
    fn policy_queries(&self) -> usize {
        self.dns.queries().iter().filter(|q| q.split_whitespace().nth(1) == Some("_domainkey.example.com")).count()
    }
}

fn mail_dkim_dk(msg: &[u8], key: &Path, method: &str, with_h: bool) -> Vec<u8> {
    let mut extra = vec!["--domainkeys", method];
    if with_h {
        extra.push("--dk-headers");
    }
    mail_dkim_sign(msg, key, "sel", "example.com", &extra)
}

/// The whole DomainKey-Status value, comment included.
fn status_field(r: &Recorded) -> String {
    let s = headers_named(&r.msg, "DomainKey-Status");
    assert_eq!(s.len(), 1, "one DomainKey-Status: {s:?}");
    s[0].split_once(':').unwrap().1.trim().to_string()
}

fn ar(r: &Recorded) -> String {
    headers_named(&r.msg, "Authentication-Results").into_iter().find(|a| a.contains("domainkeys=")).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Signing

#[test]
fn our_signatures_verify_with_mail_dkim_and_here() {
    let fx = Fx::new(1024, &[]);
    for (name, msg) in messages() {
        for opts in ["", "-c simple", "-c nofws -h", "-c simple -r", "-r"] {
            let signed = fx.sign(&msg, &[("DKSIGNOPTIONS", opts)]);
            let text = String::from_utf8_lossy(&signed).into_owned();
            let canon = if opts.contains("simple") { "simple" } else { "nofws" };
            assert!(
                text.starts_with(&format!(
                    "DomainKey-Signature: a=rsa-sha1; q=dns; c={canon};\n\ts=sel; d=example.com;\n"
                )),
                "{name} {opts}: {text}"
            );
            assert!(signed.ends_with(&msg), "{name} {opts}: message changed");
            assert_eq!(text.contains("\th="), opts.contains('h') || opts.contains('r'), "{name} {opts}");
            let v = mail_dkim_verify(&signed, &fx.dns, false);
            assert!(
                v.ok && v.report.contains("DomainKeys"),
                "Mail::DKIM rejects {name} {opts}: {} {}",
                v.report,
                v.stderr
            );
            let (code, err, status, rec) = fx.verify(&signed, "BCDEFGHIJKLM");
            assert_eq!((code, status.as_deref()), (Some(0), Some("good")), "{name} {opts}: {err}");
            let a = ar(&rec.unwrap());
            let who = if name == "sender" { "header.sender=list@example.com" } else { "header.from=joe@example.com" };
            assert!(a.starts_with("Authentication-Results: mx.test.example;"), "{a}");
            assert!(a.contains(&format!("domainkeys=pass header.d=example.com {who}")), "{a}");
        }
    }
}

#[test]
fn excluded_headers_are_not_signed() {
    let fx = Fx::new(1024, &[]);
    let signed = fx.sign(MSG, &[("DKEXCLUDEHEADERS", "date:Message-ID")]);
    let text = String::from_utf8_lossy(&signed).into_owned();
    assert!(text.contains("\th=From:To:Subject;\n"), "{text}");
    // Changing an excluded header keeps the signature good, changing a signed one breaks it.
    let changed = text.replace("Fri, 11 Jul 2003", "Sat, 12 Jul 2003");
    assert!(mail_dkim_verify(changed.as_bytes(), &fx.dns, false).ok);
    assert_eq!(fx.verify(changed.as_bytes(), "").2.as_deref(), Some("good"));
    let changed = text.replace("Suzie Q", "Suzy Q");
    assert!(!mail_dkim_verify(changed.as_bytes(), &fx.dns, false).ok);
    assert_eq!(fx.verify(changed.as_bytes(), "").2.as_deref(), Some("bad"));
}

#[test]
fn selector_domain_and_key_rules() {
    let fx = Fx::new(1024, &[]);
    let c = fx.control();
    // -s overrides the file name; DKDOMAIN a parent of the sender's domain.
    let msg = b"From: joe@mail.example.com\nTo: x@y.org\n\nhi\n";
    let signed = fx.sign(msg, &[("DKSIGNOPTIONS", "-s other"), ("DKDOMAIN", "example.com")]);
    assert!(String::from_utf8_lossy(&signed).contains("\ts=other; d=example.com;\n"));
    // % is the signing domain; a relative path is under CONTROLDIR.
    let dk = Path::new(&c).join("domainkeys/example.com");
    fx.key.copy_to(&dk.join("default"));
    let (out, rec) = fx.run(MSG, &[("DKSIGN", "domainkeys/%/default")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(rec.unwrap().msg_text().contains("\ts=default; d=example.com;\n"));
    // No key for that domain with a %: queued unsigned.
    let (out, rec) = fx.run(b"From: a@nokey.org\n\nb\n", &[("DKSIGN", "domainkeys/%/sel")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!rec.unwrap().msg_text().contains("DomainKey-Signature"));
    // A missing key without %: 35, nothing queued.
    let (out, rec) = fx.run(MSG, &[("DKSIGN", "/nonexistent/key")]);
    assert_eq!(out.code, Some(35));
    assert!(rec.is_none());
    // Invalid DKSIGNOPTIONS: temporary error, nothing queued. (The line on fd 2 is seen
    // outside indimail's convention, whose fd 2 carries a refusal alone.)
    let kp = fx.key_path();
    let (out, rec) = fx.run(MSG, &[("DKSIGN", &kp), ("DKSIGNOPTIONS", "-c relaxed"), ("CUSTOM_ERRORS", "none")]);
    assert_eq!(out.code, Some(55), "{}", out.stderr);
    assert!(out.stderr.contains("Invalid DKSIGNOPTIONS"), "{}", out.stderr);
    assert!(rec.is_none());
}

#[test]
fn signing_refuses_keys_under_1024_bits() {
    let fx = Fx::new(512, &[]);
    let kp = fx.key_path();
    let (out, rec) = fx.run(MSG, &[("DKSIGN", &kp), ("CUSTOM_ERRORS", "none")]);
    assert_eq!(out.code, Some(55), "{}", out.stderr);
    assert!(out.stderr.contains("too short"), "{}", out.stderr);
    assert!(rec.is_none());
}

#[test]
fn dkim_and_domainkeys_signatures_together() {
    let fx = Fx::new(1024, &[]);
    let kp = fx.key_path();
    let dkim_key = TestKey::rsa(2048);
    let dkim_rec = dkim_key.dns_record();
    fx.dns.set(&[("sel._domainkey.example.com", &fx.key.dk_record()), ("dkim._domainkey.example.com", &dkim_rec)]);
    let kdir = tempfile::tempdir().unwrap();
    let dkim_path = kdir.path().join("dkim");
    dkim_key.copy_to(&dkim_path);
    let (out, rec) = fx.run(MSG, &[("DKSIGN", &kp), ("DKIMSIGN", &dkim_path.display().to_string())]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let msg = rec.unwrap().msg;
    let fields = header_fields(&msg);
    assert!(fields[0].starts_with("DKIM-Signature:"), "{fields:?}");
    assert!(fields[1].starts_with("DomainKey-Signature:"), "{fields:?}");
    let v = mail_dkim_verify(&msg, &fx.dns, false);
    assert!(v.ok, "{} {}", v.report, v.stderr);
    assert_eq!(v.report.lines().count(), 2, "{}", v.report);
}

#[test]
fn dkqueue_when_only_domainkeys() {
    let fx = Fx::new(1024, &[]);
    let kp = fx.key_path();
    let q = Queue::new();
    let mut env = q.env();
    env.push(("DKQUEUE".into(), q.program().display().to_string()));
    env.push(("QUEUEPROG".into(), "/nonexistent/queue".into()));
    env.push(("DKSIGN".into(), kp));
    // DKIM has nothing to do: a relay client that is not to be verified.
    env.push(("DKIMVERIFY".into(), String::new()));
    env.push(("RELAYCLIENT".into(), String::new()));
    env.push(("RELAYCLIENT_NODKVERIFY".into(), String::new()));
    let out = run_qmail_dkim(MSG, &envelope(SENDER, &["x@y.org"]), &env_refs(&env), &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = q.records();
    assert_eq!(r.len(), 1);
    assert!(r[0].msg.starts_with(b"DomainKey-Signature: "));
    assert_eq!(r[0].environ("DKQUEUE"), None, "DKQUEUE is not passed on");
}

// ---------------------------------------------------------------------------
// Verifying

#[test]
fn mail_dkim_signatures_verify_here() {
    let fx = Fx::new(1024, &[]);
    for (name, msg) in messages() {
        for method in ["nofws", "simple"] {
            for with_h in [false, true] {
                let signed = mail_dkim_dk(&msg, &fx.key.path, method, with_h);
                assert!(mail_dkim_verify(&signed, &fx.dns, false).ok, "Mail::DKIM's own {name} {method}");
                let (code, err, status, rec) = fx.verify(&signed, "BCDEFGHIJKLM");
                assert_eq!((code, status.as_deref()), (Some(0), Some("good")), "{name} {method} h={with_h}: {err}");
                assert!(ar(&rec.unwrap()).contains("domainkeys=pass header.d=example.com"));
            }
        }
    }
}

#[test]
fn tampered_header_or_body_is_bad() {
    let fx = Fx::new(1024, &[]);
    for method in ["nofws", "simple"] {
        let signed = String::from_utf8(mail_dkim_dk(MSG, &fx.key.path, method, false)).unwrap();
        let cases = [
            signed.replace("Subject: Is dinner", "Subject: Is lunch"),
            signed.replace("We lost", "We won"),
            signed.replace("Joe.\n", "Joe.\nP.S. send money\n"),
        ];
        for t in &cases {
            assert!(!mail_dkim_verify(t.as_bytes(), &fx.dns, false).ok);
            let (code, err, status, _) = fx.verify(t.as_bytes(), "");
            assert_eq!((code, status.as_deref()), (Some(0), Some("bad")), "{err}");
            // B refuses, whatever the domain's policy (none here).
            let (code, err, status, _) = fx.verify(t.as_bytes(), "B");
            assert_eq!((code, status), (Some(88), None));
            assert!(err.starts_with("Dqmail-dkim: DomainKeys bad: "), "{err}");
            assert!(err.contains("(#5.7.5)"), "{err}");
        }
        // Whitespace changes are what nofws forgives.
        let ws = signed.replace("We lost   the game.", "We lost the  game. ");
        let expect = if method == "nofws" { "good" } else { "bad" };
        assert_eq!(fx.verify(ws.as_bytes(), "").2.as_deref(), Some(expect), "{method}");
        // A header added above the signature is not covered: still good.
        let above = format!("Received: from relay by mx\n{signed}");
        assert_eq!(fx.verify(above.as_bytes(), "B").2.as_deref(), Some("good"));
    }
}

/// Each letter: a message or a DNS setup that produces it, the status value, and whether
/// Russell Nelson's recommended `DEGIJKfh` refuses it (permanently / temporarily).
#[test]
fn every_letter() {
    let fx = Fx::new(1024, &[]);
    let key_rec = fx.key.dk_record();
    let p = fx.key.public_b64.clone();
    let good = String::from_utf8(mail_dkim_dk(MSG, &fx.key.path, "nofws", false)).unwrap();
    let sig_line = |d: &str, extra: &str| {
        format!("DomainKey-Signature: a=rsa-sha1; q=dns; c=nofws; s=sel; d={d};{extra} b=AAAA;\n")
    };
    let unsigned = String::from_utf8(MSG.to_vec()).unwrap();
    let big = "A".repeat(1500);
    let granularity_rec = format!("g=suzie; k=rsa; p={p}");
    type Case<'a> = (char, String, Vec<(&'a str, &'a str)>, &'a str, Option<bool>);
    let cases: Vec<Case> = vec![
        ('A', good.clone(), vec![], "good", None),
        ('B', good.replace("hungry", "thirsty"), vec![], "bad", None),
        ('C', unsigned.clone(), vec![], "no signature", None),
        ('D', good.clone(), vec![("sel._domainkey.example.com", "@NXDOMAIN")], "no key", Some(true)),
        ('E', good.clone(), vec![("sel._domainkey.example.com", "k=rsa; p=AAAAAAAA")], "bad key", Some(true)),
        ('F', good.clone(), vec![("sel._domainkey.example.com", "@SERVFAIL")], "no key", Some(false)),
        ('G', format!("{}{unsigned}", sig_line("other.org", "")), vec![], "bad format", Some(true)),
        (
            'H',
            format!("DomainKey-Signature: a=rsa-sha1; c=nofws; s=sel; d=example.com; b={big};\n{unsigned}"),
            vec![],
            "no resources",
            Some(false),
        ),
        (
            'I',
            format!("{}{unsigned}", sig_line("example.com", " a=rsa-sha256;").replace("a=rsa-sha1; ", "")),
            vec![],
            "bad format",
            Some(true),
        ),
        ('J', good.clone(), vec![("sel._domainkey.example.com", "k=rsa; p=")], "revoked", Some(true)),
        ('L', good.clone(), vec![("sel._domainkey.example.com", &granularity_rec)], "bad sender", None),
        ('M', format!("{}{good}", sig_line("example.com", "")), vec![], "dup sig", None),
    ];
    for (letter, msg, records, status, rn) in cases {
        let mut recs: Vec<(&str, &str)> = records.clone();
        if !recs.iter().any(|(n, _)| *n == "sel._domainkey.example.com") {
            recs.push(("sel._domainkey.example.com", &key_rec));
        }
        fx.dns.set(&recs);
        // Not in the letters: queued with the status.
        let (code, err, st, _) = fx.verify(msg.as_bytes(), "");
        assert_eq!((code, st.as_deref()), (Some(0), Some(status)), "{letter}: {err}");
        // Upper case: permanent; lower case: temporary.
        let (code, err, st, _) = fx.verify(msg.as_bytes(), &letter.to_string());
        assert_eq!((code, st), (Some(88), None), "{letter}");
        assert!(err.starts_with(&format!("Dqmail-dkim: DomainKeys {status}: ")), "{letter}: {err}");
        assert!(err.contains("(#5."), "{letter}: {err}");
        let (code, err, _, _) = fx.verify(msg.as_bytes(), &letter.to_ascii_lowercase().to_string());
        assert_eq!(code, Some(88), "{letter}");
        assert!(
            err.starts_with(&format!("Zqmail-dkim: DomainKeys {status}: ")) && err.contains("(#4."),
            "{letter}: {err}"
        );
        // Other letters: queued.
        let others: String = "ABCDEFGHIJKLM".chars().filter(|&c| c != letter).collect();
        assert_eq!(fx.verify(msg.as_bytes(), &others).0, Some(0), "{letter}");
        // DEGIJKfh.
        let (code, err, _, _) = fx.verify(msg.as_bytes(), "DEGIJKfh");
        match rn {
            None => assert_eq!(code, Some(0), "{letter} with DEGIJKfh: {err}"),
            Some(perm) => {
                assert_eq!(code, Some(88), "{letter} with DEGIJKfh");
                assert!(err.starts_with(if perm { "D" } else { "Z" }), "{letter}: {err}");
            }
        }
    }
}

/// qmail-dk refuses by the letter alone (libdomainkeys' `dk_eom` without policy flags): an
/// admin who writes `DKVERIFY=B` wants bad signatures refused, whatever the sender's `o=`
/// policy or testing flags say. Nothing is looked up for the policy of a refused message.
#[test]
fn dkverify_b_refuses_bad_signature_without_strict_policy() {
    let fx = Fx::new(1024, &[]);
    let key_rec = fx.key.dk_record();
    let good = String::from_utf8(mail_dkim_dk(MSG, &fx.key.path, "nofws", false)).unwrap();
    let bad = good.replace("hungry", "thirsty");
    let testing_key = format!("t=y; {key_rec}");
    for (policy, key) in
        [(None, &key_rec), (Some("o=~"), &key_rec), (Some("o=-; t=y"), &key_rec), (Some("o=-"), &testing_key)]
    {
        let mut recs = vec![("sel._domainkey.example.com", key.as_str())];
        recs.extend(policy.map(|p| ("_domainkey.example.com", p)));
        fx.dns.set(&recs);
        fx.dns.clear_queries();
        for (letters, head) in [("B", "Dqmail-dkim: DomainKeys bad: "), ("b", "Zqmail-dkim: DomainKeys bad: ")] {
            let (code, err, status, _) = fx.verify(bad.as_bytes(), letters);
            assert_eq!((code, status), (Some(88), None), "policy {policy:?} key {key:.8}: {err}");
            assert!(err.starts_with(head), "{err}");
        }
        assert_eq!(fx.policy_queries(), 0, "{:?}", fx.dns.queries());
    }
}

/// As for B: `DKVERIFY=C` refuses every unsigned message, with or without a policy record.
#[test]
fn dkverify_c_refuses_unsigned_without_strict_policy() {
    let fx = Fx::new(1024, &[]);
    for policy in [None, Some("o=~"), Some("t=y; o=-"), Some("@SERVFAIL")] {
        let recs: Vec<(&str, &str)> = policy.map(|p| ("_domainkey.example.com", p)).into_iter().collect();
        fx.dns.set(&recs);
        fx.dns.clear_queries();
        let (code, err, status, _) = fx.verify(MSG, "C");
        assert_eq!((code, status), (Some(88), None), "policy {policy:?}: {err}");
        assert!(err.starts_with("Dqmail-dkim: DomainKeys no signature: "), "{err}");
        assert_eq!(fx.policy_queries(), 0, "{:?}", fx.dns.queries());
    }
}

/// The policy record and the testing flags are reported in the comment of DomainKey-Status and
/// of Authentication-Results of a message that is queued, after one query at most.
#[test]
fn policy_and_testing_are_reported_not_applied() {
    let fx = Fx::new(1024, &[]);
    let key_rec = fx.key.dk_record();
    let good = String::from_utf8(mail_dkim_dk(MSG, &fx.key.path, "nofws", false)).unwrap();
    let bad = good.replace("hungry", "thirsty");
    let unsigned = String::from_utf8(MSG.to_vec()).unwrap();
    let testing_key = format!("t=y; {key_rec}");
    let (k, tk, b, u) = (key_rec.as_str(), testing_key.as_str(), bad.as_str(), unsigned.as_str());
    // (policy record, key record, message, DomainKey-Status value)
    let cases: Vec<(Option<&str>, &str, &str, &str)> = vec![
        (None, k, b, "bad (no policy published)"),
        (Some("o=~"), k, b, "bad (policy o=~: the domain signs some of its mail)"),
        (Some("o=-"), k, b, "bad (policy o=-: the domain signs all its mail)"),
        (Some("o=-; t=y"), k, b, "bad (policy o=-: the domain signs all its mail; policy t=y: testing)"),
        (Some("o=-"), tk, b, "bad (key t=y: testing; policy o=-: the domain signs all its mail)"),
        (Some("@SERVFAIL"), k, b, "bad (policy unknown)"),
        (None, k, u, "no signature (no policy published)"),
        (Some("o=-"), k, u, "no signature (policy o=-: the domain signs all its mail)"),
        (Some("o=-"), k, good.as_str(), "good"),
        (Some("o=-; t=y"), tk, good.as_str(), "good"),
    ];
    for (policy, key, msg, want) in cases {
        let mut recs = vec![("sel._domainkey.example.com", key)];
        recs.extend(policy.map(|p| ("_domainkey.example.com", p)));
        fx.dns.set(&recs);
        fx.dns.clear_queries();
        // Queued: the letters given do not name the result.
        let (code, err, _, rec) = fx.verify(msg.as_bytes(), "DEGIJK");
        assert_eq!(code, Some(0), "{want}: {err}");
        let rec = rec.unwrap();
        assert_eq!(status_field(&rec), want);
        let comment = want.split_once(" (").map(|(_, c)| format!("({c} "));
        if let Some(c) = &comment {
            // Unfolded: the field may break the line after the comment.
            let a = ar(&rec).split_whitespace().collect::<Vec<_>>().join(" ") + " ";
            assert!(a.contains(c.as_str()), "{want}: {a}");
        } else {
            assert!(!ar(&rec).contains('('), "{}", ar(&rec));
        }
        // One lookup for the policy of a failure, none for a pass (the resolver itself asks a
        // second time after SERVFAIL, as for any name).
        let want_queries = match (want, policy) {
            ("good", _) => 0,
            (_, Some("@SERVFAIL")) => 2,
            _ => 1,
        };
        assert_eq!(fx.policy_queries(), want_queries, "{want}: {:?}", fx.dns.queries());
    }
}

#[test]
fn small_keys_verify() {
    // Deployed DomainKeys keys were often 512 or 768 bits: accepted when verifying.
    for bits in [512, 768, 2048] {
        let fx = Fx::new(bits, &[]);
        let signed = mail_dkim_dk(MSG, &fx.key.path, "nofws", false);
        let (code, err, status, _) = fx.verify(&signed, "BCDEFGHIJKLM");
        assert_eq!((code, status.as_deref()), (Some(0), Some("good")), "{bits}: {err}");
    }
}

#[test]
fn forged_status_headers_are_removed() {
    let fx = Fx::new(1024, &[]);
    let forged = format!(
        "DomainKey-Status: good\nAuthentication-Results: mx.test.example; domainkeys=pass header.d=example.com\nAuthentication-Results: elsewhere.example; domainkeys=pass\n{}",
        String::from_utf8_lossy(MSG)
    );
    let (code, err, status, rec) = fx.verify(forged.as_bytes(), "");
    assert_eq!((code, status.as_deref()), (Some(0), Some("no signature")), "{err}");
    let msg = rec.unwrap().msg;
    let ars = headers_named(&msg, "Authentication-Results");
    assert!(ars.iter().all(|a| !a.contains("domainkeys=pass header.d")), "{ars:?}");
    assert!(ars.iter().any(|a| a.contains("elsewhere.example")), "{ars:?}");
    assert!(
        ars.iter().any(|a| a.contains("domainkeys=none (no policy published) header.from=joe@example.com")),
        "{ars:?}"
    );
}

#[test]
fn relay_clients_can_skip_verification() {
    let fx = Fx::new(1024, &[]);
    for bypass in ["RELAYCLIENT_NODKVERIFY", "RELAYCLIENT_NODKIMVERIFY"] {
        let (out, rec) = fx.run(MSG, &[("DKVERIFY", "C"), ("RELAYCLIENT", ""), (bypass, "")]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(headers_named(&rec.unwrap().msg, "DomainKey-Status").is_empty());
    }
}

#[test]
fn both_verifiers_the_stricter_wins() {
    // Unsigned mail from a domain that signs all: DomainKeys says C, DKIM says S (no signatures).
    let fx = Fx::new(1024, &[("_domainkey.example.com", "o=-")]);
    let (out, rec) = fx.run(MSG, &[("DKVERIFY", "c"), ("DKIMVERIFY", "S")]);
    assert_eq!(out.code, Some(88));
    assert!(out.stderr.starts_with("D") && !out.stderr.contains("DomainKeys"), "{}", out.stderr);
    assert!(rec.is_none());
    let (out, _) = fx.run(MSG, &[("DKVERIFY", "C"), ("DKIMVERIFY", "s")]);
    assert_eq!(out.code, Some(88));
    assert!(out.stderr.starts_with("Dqmail-dkim: DomainKeys no signature"), "{}", out.stderr);
    // Neither refuses: both status headers, DKIM's first.
    let (out, rec) = fx.run(MSG, &[("DKVERIFY", ""), ("DKIMVERIFY", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let fields = header_fields(&rec.unwrap().msg);
    let dkim = fields.iter().position(|f| f.starts_with("DKIM-Status:"));
    let dk = fields.iter().position(|f| f.starts_with("DomainKey-Status:"));
    assert!(dkim.is_some() && dk.is_some() && dkim < dk, "{fields:?}");
}

#[test]
fn refusal_conventions() {
    let fx = Fx::new(1024, &[]);
    fx.dns.set(&[("sel._domainkey.example.com", "k=rsa; p=")]);
    let signed = mail_dkim_dk(MSG, &fx.key.path, "nofws", false);
    let (out, _) = fx.run(&signed, &[("DKVERIFY", "J"), ("CUSTOM_ERRORS", "none")]);
    assert_eq!(out.code, Some(31), "{}", out.stderr);
    let (out, _) = fx.run(&signed, &[("DKVERIFY", "j"), ("CUSTOM_ERRORS", "none")]);
    assert_eq!(out.code, Some(71), "{}", out.stderr);
    assert!(out.stderr.contains("DomainKeys revoked"), "{}", out.stderr);
}
