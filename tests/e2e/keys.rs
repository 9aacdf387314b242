//! The key fixtures of tests/data through `dknewkey -p` and `dkim testkey`: what each tool
//! accepts, and the exact words it refuses the rest with.

use crate::common::*;
use std::process::{Command, Output};

fn tool(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).current_dir(repo_root().join("tests/data")).env_remove("DNSCACHEIP").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// (fixture, `dknewkey -p` stderr or None when it prints a record, `dkim testkey` stderr or
/// None when the key loads).
const FIXTURES: &[(&str, Option<&str>, Option<&str>)] = &[
    ("rsa-1024-pkcs1.pem", None, None),
    ("rsa-1024-pkcs8.pem", None, None),
    ("rsa-2048-pkcs1.pem", None, None),
    ("rsa-2048-pkcs8.pem", None, None),
    ("rsa-4096-pkcs1.pem", None, None),
    ("rsa-4096-pkcs8.pem", None, None),
    ("ed25519-pkcs8.pem", None, None),
    ("rsa-8200.pem", None, Some("RSA key of 8200 bits is too long (at most 8192)")),
    ("rsa-2048-pkcs1.der", None, Some("not a PEM file (not text)")),
    ("rsa-2048-pkcs8.der", None, Some("not a PEM file (not text)")),
    (
        "rsa-1024-encrypted.pem",
        Some("the private key is encrypted; qmail-dkim needs an unencrypted key"),
        Some("encrypted private keys are not supported"),
    ),
    (
        "rsa-1024-encrypted-pkcs1.pem",
        Some("the private key is encrypted; qmail-dkim needs an unencrypted key"),
        Some("corrupt RSA key"),
    ),
    (
        "ec-p256.pem",
        Some("unsupported key type: EC (DKIM uses rsa or ed25519 keys)"),
        Some("EC keys cannot sign DKIM (use RSA or Ed25519)"),
    ),
    (
        "rsa-2048-public.pem",
        Some("not a PEM private key: found a \"PUBLIC KEY\" block, no private key"),
        Some("this is a public key, not a private key"),
    ),
    ("rsa-2048-corrupt.pem", Some("malformed private key: truncated DER"), Some("corrupt RSA key")),
];

/// `dknewkey -p` reads every key size and both encodings; its record is what `dkim testkey`
/// finds a match for; each refusal keeps its words.
#[test]
fn key_fixtures_through_dknewkey_and_testkey() {
    let mut records = Vec::new();
    for (name, _, _) in FIXTURES {
        let out = tool(env!("CARGO_BIN_EXE_dknewkey"), &["-p", "--value", name]);
        if out.status.success() {
            records.push((name.replace('.', "-"), text(&out.stdout).trim().to_string()));
        }
    }
    let refs: Vec<(String, &str)> =
        records.iter().map(|(s, v)| (format!("{s}._domainkey.example.com"), v.as_str())).collect();
    let refs: Vec<(&str, &str)> = refs.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let dns = Dns::start(&refs);
    for (name, dknewkey_err, testkey_err) in FIXTURES {
        let out = tool(env!("CARGO_BIN_EXE_dknewkey"), &["-p", "--value", name]);
        match dknewkey_err {
            None => {
                assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
                let v = text(&out.stdout);
                let k = if name.starts_with("ed25519") { "ed25519" } else { "rsa" };
                assert!(v.starts_with(&format!("v=DKIM1; k={k}; t=y; p=")), "{name}: {v}");
            }
            Some(e) => {
                assert_eq!(out.status.code(), Some(1), "{name}");
                assert_eq!(text(&out.stderr), format!("dknewkey: {name}: {e}\n"), "{name}");
            }
        }
        let sel = name.replace('.', "-");
        let out = tool(
            env!("CARGO_BIN_EXE_dkim"),
            &["testkey", "-d", "example.com", "-s", &sel, "-k", name, "--dns", &dns.addr()],
        );
        match testkey_err {
            None => {
                assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stdout));
                let want = format!("{sel}._domainkey.example.com: testing: the record publishes this key with t=y\n");
                assert_eq!(text(&out.stdout), want, "{name}");
            }
            Some(e) => {
                assert_eq!(out.status.code(), Some(1), "{name}");
                assert_eq!(text(&out.stderr), format!("dkim: {name}: {e}\n"), "{name}");
            }
        }
    }
}

/// qmail-dkim's own loader signs with the keys `dkim testkey` loads and refuses the others
/// (exit 55) with the same words.
#[test]
fn key_fixtures_through_qmail_dkim() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (name, _, testkey_err) in FIXTURES {
        let path = dir.path().join(name);
        std::fs::copy(repo_root().join("tests/data").join(name), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let q = Queue::new();
        let mut env = q.env();
        env.push(("DKIMQUEUE".into(), q.program().display().to_string()));
        env.push(("DKIMSIGN".into(), path.display().to_string()));
        if name.starts_with("ed25519") {
            env.push(("DKIMSIGNOPTIONS".into(), "-z 4".into()));
        }
        let msg = b"From: a@example.com\nSubject: k\n\nbody\n";
        let out = Run::new(msg, &envelope("a@example.com", &["b@example.org"])).env_owned(&env).run();
        assert_no_panic(&out);
        match testkey_err {
            None => {
                assert_eq!(out.code, Some(0), "{name}: {}", out.stderr);
                assert!(q.records()[0].msg_text().starts_with("DKIM-Signature:"), "{name}");
            }
            Some(e) => {
                assert_eq!(out.code, Some(55), "{name}: {}", out.stderr);
                assert!(out.stderr.contains(e), "{name}: {:?} lacks {e:?}", out.stderr);
                assert!(q.records().is_empty(), "{name}");
            }
        }
    }
}
