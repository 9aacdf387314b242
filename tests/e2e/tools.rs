//! dknewkey and dkim through their binaries, against the loopback DNS server; the manuals
//! checked with mandoc.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};

fn dknewkey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dknewkey")).args(args).output().unwrap()
}

fn dkim(args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_dkim"));
    c.args(args).env_remove("SELECTOR_DATA").env_remove("DNSCACHEIP");
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut ch = c.spawn().unwrap();
    let mut si = ch.stdin.take().unwrap();
    si.write_all(stdin.unwrap_or(b"")).unwrap();
    drop(si);
    ch.wait_with_output().unwrap()
}

/// The TXT value from a .pub file, read back from its tinydns-data line (octal escapes undone).
fn tinydns_value(pubfile: &Path) -> String {
    let text = std::fs::read_to_string(pubfile).unwrap();
    let line = text.lines().find(|l| l.starts_with('\'')).expect("tinydns line");
    let mut parts = line[1..].splitn(2, ':');
    let _name = parts.next();
    let rest = parts.next().unwrap();
    let value = &rest[..rest.rfind(':').unwrap()];
    let mut out = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() + 1 && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap(), 8).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The TXT value from the BIND lines: the quoted strings joined.
fn bind_value(pubfile: &Path) -> String {
    let text = std::fs::read_to_string(pubfile).unwrap();
    let start = text.find("IN\tTXT").or_else(|| text.find("IN TXT")).expect("BIND line");
    let rest = &text[start..];
    let end = rest.find(')').unwrap();
    let mut v = String::new();
    let mut inq = false;
    let mut esc = false;
    for c in rest[..end].chars() {
        if inq {
            if esc {
                v.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                inq = false;
            } else {
                v.push(c);
            }
        } else if c == '"' {
            inq = true;
        }
    }
    v
}

#[test]
fn key_round_trip_through_dns() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, extra) in [("rsa", vec!["-b", "2048"]), ("rsa", vec!["-b", "1024"]), ("ed25519", vec![])] {
        let key = dir.path().join(format!("{kind}{}", extra.get(1).unwrap_or(&"")));
        let ks = key.to_str().unwrap();
        let mut args = vec!["-t", kind, "-d", "example.com", "-e"];
        args.extend(&extra);
        args.push(ks);
        let out = dknewkey(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pubf = key.with_file_name(format!("{}.pub", key.file_name().unwrap().to_str().unwrap()));
        let record = tinydns_value(&pubf);
        assert_eq!(record, bind_value(&pubf), "BIND and tinydns forms disagree");
        assert!(record.starts_with("v=DKIM1; k=") && !record.contains("t=y"), "{record}");
        // -p prints the same record for the existing key.
        let p = dknewkey(&["-p", "-e", "-t", kind, "-d", "example.com", ks]);
        assert!(String::from_utf8_lossy(&p.stdout).contains(&record[record.find("p=").unwrap()..][..40]));
        let sel = key.file_name().unwrap().to_str().unwrap();
        let dns = Dns::start(&[(&format!("{sel}._domainkey.example.com"), &record)]);
        // Sign with qmail-dkim, verify with dkim (through DNS) and dkimpy.
        let q = Queue::new();
        let mut env = q.env();
        env.push(("DKIMQUEUE".into(), q.program().display().to_string()));
        env.push(("DKIMSIGN".into(), ks.into()));
        if kind == "ed25519" {
            env.push(("DKIMSIGNOPTIONS".into(), "-z 4".into()));
        }
        let out = run_qmail_dkim(
            b"From: a@example.com\nSubject: k\n\nbody\n",
            &envelope("a@example.com", &["b@c"]),
            &env_refs(&env),
            &[],
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let signed = q.records().pop().unwrap().msg;
        let v = dkim(&["verify", "--dns", &dns.addr()], Some(&signed));
        assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
        assert!(dkimpy_verify(&signed, &dns).ok);
        // dkim sign produces the same kind of signature.
        let mut sargs = vec!["sign", "-k", ks];
        if kind == "ed25519" {
            sargs.extend(["-z", "4"]);
        }
        let s = dkim(&sargs, Some(b"From: a@example.com\nSubject: k\n\nbody\n"));
        assert_eq!(s.status.code(), Some(0));
        let v = dkim(&["verify", "--dns", &dns.addr()], Some(&s.stdout));
        assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
        // testkey: match.
        let t = dkim(&["testkey", "-d", "example.com", "-s", sel, "-k", ks, "--dns", &dns.addr()], None);
        assert_eq!(t.status.code(), Some(0), "{}", String::from_utf8_lossy(&t.stdout));
        assert!(String::from_utf8_lossy(&t.stdout).contains("match"));
    }
}

#[test]
fn testkey_answers() {
    let k = TestKey::rsa(2048);
    let other = TestKey::other_rsa();
    let ks = k.path.to_str().unwrap();
    let dns = Dns::start(&[
        ("good._domainkey.example.com", &k.dns_record()),
        ("testing._domainkey.example.com", &format!("v=DKIM1; k=rsa; t=y; p={}", k.public_b64)),
        ("other._domainkey.example.com", &other.dns_record()),
        ("revoked._domainkey.example.com", "v=DKIM1; k=rsa; p="),
        ("broken._domainkey.example.com", "v=DKIM1; k=rsa; p=!!!"),
        ("slow._domainkey.example.com", "@TIMEOUT"),
    ]);
    for (sel, code, word) in [
        ("good", 0, "match"),
        ("testing", 0, "testing"),
        ("other", 1, "mismatch"),
        ("revoked", 1, "revoked"),
        ("broken", 1, "malformed"),
        ("missing", 1, "missing"),
    ] {
        let t = dkim(&["testkey", "-d", "example.com", "-s", sel, "-k", ks, "--dns", &dns.addr()], None);
        let text = String::from_utf8_lossy(&t.stdout);
        assert_eq!(t.status.code(), Some(code), "{sel}: {text}");
        assert!(text.contains(word), "{sel}: {text}");
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_dkim"));
    let t = c
        .args(["testkey", "-d", "example.com", "-s", "slow", "-k", ks, "--dns", &dns.addr()])
        .env("DNSTIMEOUT", "1")
        .output()
        .unwrap();
    assert_eq!(t.status.code(), Some(3), "{}", String::from_utf8_lossy(&t.stdout));
}

/// `dkim testkey` and `dkim verify` judge an Ed25519 record in SubjectPublicKeyInfo form as the
/// verifier in qmail-dkim does: unusable (R), not a match.
#[test]
fn testkey_and_verify_refuse_ed25519_key_in_spki_form() {
    use base64::Engine;
    let k = TestKey::ed25519();
    let ks = k.path.to_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD.decode(&k.public_b64).unwrap();
    let spki = base64::engine::general_purpose::STANDARD
        .encode([&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], &key].concat());
    let dns = Dns::start(&[
        ("key._domainkey.example.com", &format!("v=DKIM1; k=ed25519; p={spki}")),
        ("raw._domainkey.example.com", &k.dns_record()),
    ]);
    let t = dkim(&["testkey", "-d", "example.com", "-s", "key", "-k", ks, "--dns", &dns.addr()], None);
    let text = String::from_utf8_lossy(&t.stdout);
    assert_eq!(t.status.code(), Some(1), "{text}");
    assert!(text.contains("unusable") && text.contains("SubjectPublicKeyInfo"), "{text}");
    let t = dkim(&["testkey", "-d", "example.com", "-s", "raw", "-k", ks, "--dns", &dns.addr()], None);
    assert_eq!(t.status.code(), Some(0), "{}", String::from_utf8_lossy(&t.stdout));
    let s = dkim(
        &["sign", "-k", ks, "-s", "key", "-d", "example.com", "-z", "4"],
        Some(b"From: a@example.com\nSubject: k\n\nbody\n"),
    );
    assert_eq!(s.status.code(), Some(0), "{}", String::from_utf8_lossy(&s.stderr));
    let v = dkim(&["verify", "--dns", &dns.addr()], Some(&s.stdout));
    let text = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(1), "{text}");
    assert!(text.contains("overall: R "), "{text}");
}

#[test]
fn cli_exit_codes() {
    // Usage errors: 2.
    assert_eq!(dkim(&["sign"], None).status.code(), Some(2));
    assert_eq!(dkim(&["bogus"], None).status.code(), Some(2));
    assert_eq!(dknewkey(&["-b", "512", "/tmp/never"]).status.code().map(|c| c != 0), Some(true));
    // Unreadable key or file: 1.
    assert_eq!(dkim(&["sign", "-k", "/nonexistent"], Some(b"From: a@b\n\nx\n")).status.code(), Some(1));
    assert_eq!(dkim(&["verify", "/nonexistent"], None).status.code(), Some(1));
    // No signature: 1, with the overall line S.
    let v = dkim(&["verify", "--selector-data", "v=DKIM1; p="], Some(b"From: a@b\n\nx\n"));
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stdout).contains("overall: S"));
    // A tampered body: 1, letter U.
    let k = TestKey::rsa(2048);
    let s = dkim(&["sign", "-k", k.path.to_str().unwrap()], Some(b"From: a@b.org\n\nbody\n"));
    let mut t = s.stdout.clone();
    let n = t.len();
    t[n - 2] = b'X';
    let v = dkim(&["verify", "--selector-data", &k.dns_record()], Some(&t));
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stdout).contains(" U "), "{}", String::from_utf8_lossy(&v.stdout));
    // dknewkey refuses to overwrite without -f.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sel");
    assert!(dknewkey(&["-d", "example.com", p.to_str().unwrap()]).status.success());
    assert_eq!(dknewkey(&["-d", "example.com", p.to_str().unwrap()]).status.code(), Some(1));
    assert!(dknewkey(&["-f", "-d", "example.com", p.to_str().unwrap()]).status.success());
}

/// Every page in man/ is lint clean, style included, and at most 800 lines long.
#[test]
fn manuals_are_lint_clean() {
    assert!(
        Command::new("mandoc").arg("-V").output().is_ok(),
        "mandoc is not installed: install it (apt-get install mandoc; .ci/run does) to check the manuals"
    );
    let mut pages: Vec<_> = std::fs::read_dir(repo_root().join("man")).unwrap().map(|e| e.unwrap().path()).collect();
    pages.sort();
    assert!(pages.len() >= 5, "{pages:?}");
    for p in pages {
        let out = Command::new("mandoc").arg("-Tlint").arg(&p).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(text.trim().is_empty(), "{}: {text}", p.display());
        let lines = std::fs::read_to_string(&p).unwrap().lines().count();
        assert!(lines <= 800, "{}: {lines} lines, more than 800", p.display());
    }
}

#[test]
fn dknewkey_value_is_the_record_value() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, flags) in [("rsa", vec![]), ("rsa", vec!["-e", "--hash", "sha256"]), ("ed25519", vec!["-e"])] {
        let key = dir.path().join(format!("{kind}{}", flags.len()));
        let ks = key.to_str().unwrap();
        let mut args = vec!["-t", kind, "-d", "example.com"];
        args.extend(&flags);
        args.push(ks);
        let made = dknewkey(&args);
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let record = tinydns_value(&key.with_file_name(format!("{}.pub", key.file_name().unwrap().to_str().unwrap())));
        let mut vargs = vec!["-p", "--value"];
        vargs.extend(&flags);
        vargs.push(ks);
        let v = dknewkey(&vargs);
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
        assert!(v.stderr.is_empty(), "{}", String::from_utf8_lossy(&v.stderr));
        let value = String::from_utf8(v.stdout).unwrap();
        assert_eq!(value, format!("{record}\n"), "{kind} {flags:?}");
        let value = value.trim_end();
        // The value works as SELECTOR_DATA for our verifier, and through the DNS for dkimpy.
        let mut sargs = vec!["sign", "-k", ks];
        if kind == "ed25519" {
            sargs.extend(["-z", "4"]);
        }
        let signed = dkim(&sargs, Some(b"From: a@example.com\nSubject: v\n\nbody\n")).stdout;
        let ours = dkim(&["verify", "--selector-data", value], Some(&signed));
        assert_eq!(ours.status.code(), Some(0), "{}", String::from_utf8_lossy(&ours.stdout));
        let sel = key.file_name().unwrap().to_str().unwrap();
        let dns = Dns::start(&[(&format!("{sel}._domainkey.example.com"), value)]);
        let py = dkimpy_verify(&signed, &dns);
        assert!(py.ok, "{} {}", py.report, py.stderr);
    }
    // --value needs -p and takes no record format.
    assert_eq!(dknewkey(&["--value", "/nonexistent/k"]).status.code(), Some(2));
    assert_eq!(dknewkey(&["-p", "--value", "--bind", "/nonexistent/k"]).status.code(), Some(2));
}

/// A control directory with a key for example.com that `nobody` may or may not read, and the
/// environment of a signing tcprules line.
struct Setup {
    dir: tempfile::TempDir,
    key: std::path::PathBuf,
}

impl Setup {
    fn new() -> Setup {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = dir.path().join("domainkeys/example.com/default");
        let out = dknewkey(&["-e", "-d", "example.com", "--group", "nogroup", key.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Setup { dir, key }
    }

    fn record(&self) -> String {
        let v = dknewkey(&["-p", "--value", "-e", self.key.to_str().unwrap()]);
        String::from_utf8(v.stdout).unwrap().trim_end().to_string()
    }

    /// `dkim check` with only this environment (plus PATH), as qmail-smtpd's run script gives it.
    fn check(&self, args: &[&str], dns: &Dns) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_dkim"))
            .arg("check")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CONTROLDIR", self.dir.path())
            .env("DNSCACHEIP", dns.addr())
            .env("DNSTIMEOUT", "2")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    }
}

/// The variables of a signing rule: qmail-dkim as QMAILQUEUE, a queue program that exists.
fn signing_env(extra: &str) -> String {
    format!("RELAYCLIENT=\"\",QMAILQUEUE=\"{}\",DKIMQUEUE=\"/bin/true\"{extra}", qmail_dkim_bin().display())
}

fn problems(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("problem: ")).collect()
}

#[test]
fn check_on_a_working_setup_exits_0() {
    let s = Setup::new();
    let dns = Dns::start(&[("default._domainkey.example.com", &s.record())]);
    let (code, text) = s.check(&["--env", &signing_env(""), "--from", "alice@example.com", "--user", "nobody"], &dns);
    assert_eq!(code, Some(0), "{text}");
    assert!(problems(&text).is_empty(), "{text}");
    for want in [
        "mode: sign (RELAYCLIENT is set",
        &format!("key: {} (readable by nobody", s.key.display()),
        "signature: d=example.com s=default a=rsa-sha256",
        "record default._domainkey.example.com: a receiver verifies the signature",
        "queue program: /bin/true",
        "refusals: CUSTOM_ERRORS is not set",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // The record was asked for through DNSCACHEIP.
    assert!(dns.queries().iter().any(|q| q.contains("default._domainkey.example.com")));
    // A whole rule line pasted into --env works too.
    let line = format!("127.:allow,{}", signing_env(""));
    let (code, text) = s.check(&["--env", &line, "--from", "alice@example.com"], &dns);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("mode: sign (RELAYCLIENT is set"), "{text}");
    // An explicit convention is reported as such.
    let (code, text) =
        s.check(&["--env", &signing_env(",CUSTOM_ERRORS=\"notqmail\""), "--from", "a@example.com"], &dns);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("refusals: CUSTOM_ERRORS=notqmail, notqmail's: exit 82"), "{text}");
}

#[test]
fn check_names_each_problem() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new();
    let dns = Dns::start(&[("default._domainkey.example.com", &s.record())]);
    let from = ["--from", "alice@example.com"];

    // A key nobody cannot read: one problem, naming the user, the group and the mode.
    std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, text) = s.check(&[&["--env", &signing_env(""), "--user", "nobody"][..], &from].concat(), &dns);
    assert_eq!(code, Some(1), "{text}");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{text}");
    assert!(p[0].contains("cannot read the key") && p[0].contains("nobody (uid 65534, group nogroup)"), "{text}");
    assert!(p[0].contains("mode 0600"), "{text}");
    // The same key is fine for the caller (root).
    let (code, text) = s.check(&[&["--env", &signing_env("")][..], &from].concat(), &dns);
    assert_eq!(code, Some(0), "{text}");
    std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o640)).unwrap();

    // No key for the sender's domain (a % template): queued unsigned.
    let (code, text) = s.check(&["--env", &signing_env(""), "--from", "bob@other.example"], &dns);
    assert_eq!(code, Some(1), "{text}");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{text}");
    assert!(p[0].contains("no key for other.example") && p[0].contains("queued unsigned"), "{text}");
    // A key named without %: every message refused.
    let (code, text) = s.check(&[&["--env", &signing_env(",DKIMSIGN=\"/nonexistent/key\"")][..], &from].concat(), &dns);
    assert_eq!(code, Some(1), "{text}");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{text}");
    assert!(p[0].contains("/nonexistent/key does not exist") && p[0].contains("exit 35"), "{text}");

    // A record that publishes another key.
    let other = TestKey::rsa(2048);
    dns.set(&[("default._domainkey.example.com", &other.dns_record())]);
    let (code, text) = s.check(&[&["--env", &signing_env("")][..], &from].concat(), &dns);
    assert_eq!(code, Some(1), "{text}");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{text}");
    assert!(p[0].contains("record default._domainkey.example.com") && p[0].contains("mismatch"), "{text}");
    // No record at all.
    dns.set(&[]);
    let (_, text) = s.check(&[&["--env", &signing_env("")][..], &from].concat(), &dns);
    assert!(problems(&text).iter().any(|p| p.contains("missing: no TXT record")), "{text}");

    // qmail-dkim not in QMAILQUEUE: it never runs.
    let (code, text) = s.check(&["--env", "RELAYCLIENT=\"\",DKIMQUEUE=\"/bin/true\"", "--from", "a@example.com"], &dns);
    assert_eq!(code, Some(1), "{text}");
    assert!(problems(&text).iter().any(|p| p.contains("QMAILQUEUE is not set")), "{text}");
}

/// `dkim check --host` / `--ip` of many labels: tcpserver's keys (every suffix of the host,
/// every prefix of the address) are compared in place. 16,000 labels once took 254 MB; now
/// 16 times the labels of a small run cost about nothing more (peak RSS, `/usr/bin/time -f %M`),
/// and the right rule is still found.
#[test]
fn check_of_a_host_and_address_of_many_labels_uses_little_memory() {
    let s = Setup::new();
    let dns = Dns::start(&[]);
    let rules = s.dir.path().join("tcp.smtp");
    std::fs::write(&rules, "=.org:allow,X=\"by host\"\n9.9.:allow,X=\"by address\"\n:deny\n").unwrap();
    let peak_kib = |ip: &str, host: &str| {
        let peak = tempfile::NamedTempFile::new().unwrap();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o", peak.path().to_str().unwrap(), env!("CARGO_BIN_EXE_dkim"), "check"])
            .args(["--rules", rules.to_str().unwrap(), "--ip", ip, "--host", host])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CONTROLDIR", s.dir.path())
            .env("DNSCACHEIP", dns.addr())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // time(1) says "Command exited with non-zero status 1" first: check finds problems.
        let report = std::fs::read_to_string(peak.path()).unwrap();
        let kib: u64 = report.lines().last().unwrap_or("").trim().parse().expect("peak RSS in KiB");
        (kib, text)
    };
    let (small, text) = peak_kib("192.0.2.1", &("a.".repeat(1_000) + "org"));
    assert!(text.contains("line 1 (=.org:...)"), "{text}");
    let (large, text) = peak_kib("192.0.2.1", &("a.".repeat(16_000) + "org"));
    assert!(text.contains("line 1 (=.org:...)"), "{text}");
    let (large_ip, text) = peak_kib(&"9.".repeat(16_000), "example.net");
    assert!(text.contains("line 2 (9.9.:...)"), "{text}");
    eprintln!("dkim check: peak RSS {small} KiB (1,000 labels), {large} / {large_ip} KiB (16,000)");
    assert!(large.max(large_ip) < small + (8 << 10), "{small} KiB -> {large} / {large_ip} KiB");
}

#[test]
fn check_takes_the_rule_tcpserver_would() {
    let s = Setup::new();
    let dns = Dns::start(&[("default._domainkey.example.com", &s.record())]);
    let q = qmail_dkim_bin();
    let rules = s.dir.path().join("tcp.smtp");
    std::fs::write(
        &rules,
        format!(
            "# relay clients sign\n\
             127.:allow,RELAYCLIENT=\"\",QMAILQUEUE=\"{q}\",DKIMQUEUE=\"/bin/true\"\n\
             10.1.2.3-9:deny\n\
             :allow,QMAILQUEUE=\"{q}\",DKIMVERIFY=\"FGH\",DKIMQUEUE=\"/bin/true\"\n",
            q = q.display()
        ),
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let (code, text) = s.check(&["--rules", r, "--ip", "127.0.0.1", "--from", "a@example.com"], &dns);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("line 2 (127.:...)") && text.contains("mode: sign"), "{text}");
    let (code, text) = s.check(&["--rules", r, "--ip", "192.0.2.1", "--from", "a@example.com"], &dns);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("line 4 (:...)") && text.contains("mode: verify"), "{text}");
    assert!(text.contains("F BODY_HASH_MISMATCH") || text.contains("refuses (DKIMVERIFY=FGH)"), "{text}");
    let (code, text) = s.check(&["--rules", r, "--ip", "10.1.2.5"], &dns);
    assert_eq!(code, Some(1), "{text}");
    assert!(problems(&text).iter().any(|p| p.contains("deny")), "{text}");
    // A rules file newer than its compiled form.
    std::fs::write(s.dir.path().join("tcp.smtp.cdb"), "").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options().write(true).open(s.dir.path().join("tcp.smtp.cdb")).unwrap().set_modified(old).unwrap();
    let (code, text) = s.check(&["--rules", r, "--ip", "127.0.0.1", "--from", "a@example.com"], &dns);
    assert_eq!(code, Some(1), "{text}");
    assert!(problems(&text).iter().any(|p| p.contains("run tcprules")), "{text}");
    // A line tcprules cannot parse.
    std::fs::write(&rules, "127.:allow RELAYCLIENT=\"\"\n").unwrap();
    let (code, text) = s.check(&["--rules", r, "--ip", "127.0.0.1"], &dns);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("line 1: tcprules cannot parse it"), "{text}");
    // Not a rules file: refused after 16 MiB, without reading the rest.
    std::fs::File::create(&rules).unwrap().set_len(1 << 30).unwrap();
    let (code, text) = s.check(&["--rules", r, "--ip", "127.0.0.1"], &dns);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("is over 16 MiB"), "{text}");
}

/// The command lines of the README's install block ("Installing into qmail").
fn readme_install_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Installing into qmail").expect("install section")..];
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("sh block");
    block.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// Runs the README's install lines with /var/qmail and /usr/local moved under `root`; with
/// `bin_dir`, the binaries come from there instead of target/release.
fn install_under(root: &Path, bin_dir: Option<&Path>) {
    for line in readme_install_commands() {
        let mut l = line.replace(" /var/qmail", &format!(" {}/var/qmail", root.display()));
        l = l.replace(" /usr/local", &format!(" {}/usr/local", root.display()));
        if let Some(d) = bin_dir {
            if l.starts_with("cargo ") {
                continue;
            }
            l = l.replace("target/release/", &format!("{}/", d.display()));
        }
        let out = Command::new("sh").arg("-c").arg(&l).current_dir(repo_root()).output().unwrap();
        assert!(out.status.success(), "{l}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The binaries and manuals are in place, with their modes, and run.
fn assert_installed(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let bin = root.join("var/qmail/bin");
    for tool in ["dkim", "dknewkey", "qmail-dkim-remote"] {
        let out = Command::new(bin.join(tool)).arg("--version").output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with(tool), "{tool} --version");
    }
    for tool in ["qmail-dkim", "qmail-dkim-remote", "dkim", "dknewkey"] {
        let m = std::fs::metadata(bin.join(tool)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o755, "{tool}");
    }
    // qmail-dkim runs: no message, no envelope: exit 54 (unable to read), not 126 or 127.
    let out = Command::new(bin.join("qmail-dkim"))
        .env("DKIMQUEUE", "/bin/true")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(54), "{}", String::from_utf8_lossy(&out.stderr));
    for page in ["qmail-dkim.8", "qmail-dkim-remote.8", "dkim.8", "dknewkey.8", "qmail-dkim-letters.5"] {
        let section = format!("man{}", &page[page.len() - 1..]);
        let p = root.join("usr/local/share/man").join(section).join(page);
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(repo_root().join("man").join(page)).unwrap());
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644, "{page}");
    }
}

#[test]
fn readme_install_command_into_an_empty_root() {
    let root = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_dkim")).parent().unwrap();
    install_under(root.path(), Some(bin_dir));
    assert_installed(root.path());
}

#[test]
#[ignore = "builds the release binaries (minutes with LTO on a small machine); .ci/run runs it"]
fn readme_install_command_with_the_release_build() {
    let root = tempfile::tempdir().unwrap();
    install_under(root.path(), None);
    assert_installed(root.path());
    // qmail starts one qmail-dkim per message: the README links it static and position-dependent,
    // so no dynamic linker runs and nothing is relocated at start (docs/performance.md).
    let elf = std::fs::read(root.path().join("var/qmail/bin/qmail-dkim")).unwrap();
    assert_eq!(elf_link_mode(&elf), (ET_EXEC, false), "qmail-dkim: static, not position-independent");
}

const ET_EXEC: u16 = 2;

/// The reader of the release test's link-mode check, on a build `cargo build` links as usual:
/// position-independent (ET_DYN), with a dynamic linker.
#[test]
fn elf_link_mode_of_a_default_build() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_dkim")).unwrap();
    assert_eq!(elf_link_mode(&elf), (3, true));
}

/// An ELF64 little-endian file's type (`e_type`) and whether it names a dynamic linker
/// (a `PT_INTERP` program header).
fn elf_link_mode(elf: &[u8]) -> (u16, bool) {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "ELF64 little-endian");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
    let phoff = usize::try_from(u64::from_le_bytes(elf[32..40].try_into().unwrap())).unwrap();
    let (size, count) = (usize::from(u16_at(54)), usize::from(u16_at(56)));
    let interp = (0..count).any(|i| u32::from_le_bytes(elf[phoff + i * size..][..4].try_into().unwrap()) == 3);
    (u16_at(16), interp)
}

/// `dkim check` says which queue-time checks a rule line turns on, what each letter refuses,
/// flags letters that mean nothing, and finds (or misses) the seal's key.
#[test]
fn check_reports_spf_dmarc_and_arc() {
    let s = Setup::new();
    let dns = Dns::start(&[]);
    let verify = |extra: &str| {
        format!("QMAILQUEUE=\"{}\",DKIMQUEUE=\"/bin/true\",DKIMVERIFY=\"\"{extra}", qmail_dkim_bin().display())
    };
    let key = s.key.to_str().unwrap().replace("example.com/default", "%/default");
    let env = verify(&format!(",DMARCVERIFY=\"Rq\",ARCSIGN=\"{key}\",ARCDOMAIN=\"example.com\""));
    let (code, text) = s.check(&["--env", &env], &dns);
    assert_eq!(code, Some(0), "{text}");
    for line in [
        "spf: checked, refuses nothing (DMARCVERIFY needs it)",
        "dmarc: checked, refuses (DMARCVERIFY=Rq): R p=reject permanently, q p=quarantine temporarily",
        "arc: checked, refuses nothing (ARCSIGN needs it)",
        "arc seal: d=example.com s=default key ",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    // A letter that means nothing, a seal without a key, a relay client's checks.
    let env = verify(",SPFVERIFY=\"FX\",ARCSIGN=\"/nonexistent/%/arc\",ARCDOMAIN=\"fwd.example\"");
    let (code, text) = s.check(&["--env", &env], &dns);
    assert_eq!(code, Some(1), "{text}");
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{text}");
    assert!(p[0].contains("X is not a letter of SPFVERIFY"), "{text}");
    assert!(p[1].contains("no private key for fwd.example") && p[1].contains("not sealed"), "{text}");
    let (_, text) = s.check(&["--env", &signing_env(",SPFVERIFY=\"F\"")], &dns);
    assert!(text.contains("spf: not checked (SPFVERIFY is ignored for a relay client)"), "{text}");
}
