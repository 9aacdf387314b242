//! DKIM2 (experimental, docs/dkim2.md) through the binaries with the loopback DNS: signed at
//! queue exit by qmail-dkim-remote (`DKIM2SIGN`, in front of the recording qmail-remote), checked
//! at queue entry by qmail-dkim (`DKIM2VERIFY`) for the envelope it arrives with.

use crate::common::*;

use std::fs;
use std::io::{Seek, Write};
use std::process::{Command, Stdio};

const AUTHSERV: &str = "mx.dest.example";

/// Keys for the originator (Ed25519) and a forwarder (RSA), the DNS that publishes them, and a
/// control directory for each hop.
struct World {
    dns: Dns,
    ctl: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let ctl = tempfile::Builder::new().prefix("ctl").tempdir().expect("tempdir");
        let a = TestKey::ed25519_at(&ctl.path().join("dkim2/a.example/sel"));
        let fwd = TestKey::rsa_at(&ctl.path().join("dkim2/dest.example/sel"), 2048);
        fs::write(ctl.path().join("me"), "a.example\n").expect("control/me");
        let dns = Dns::start(&[
            ("sel._domainkey.a.example", &a.dns_record()),
            ("sel._domainkey.dest.example", &fwd.dns_record()),
            ("_dmarc.a.example", "v=DMARC1; p=reject"),
        ]);
        World { dns, ctl }
    }

    /// qmail-dkim-remote for `sender` and `rcpts`, with `DKIM2SIGN`; what the real qmail-remote got.
    fn exit(&self, msg: &[u8], sender: &str, rcpts: &[&str]) -> Vec<u8> {
        let rec = tempfile::Builder::new().prefix("rec").tempdir().expect("tempdir");
        let template = self.ctl.path().join("dkim2/%/sel");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmail-dkim-remote"));
        cmd.arg("mx.next.example").arg(sender).args(rcpts);
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd.envs([
            ("CONTROLDIR", self.ctl.path().display().to_string()),
            ("RECREMOTE_DIR", rec.path().display().to_string()),
            ("DKREMOTE", support_dir().join("recremote.py").display().to_string()),
            ("DKIM2SIGN", template.display().to_string()),
            ("DNSCACHEIP", self.dns.addr()),
        ]);
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(msg).expect("write");
        file.rewind().expect("rewind");
        let out = cmd.stdin(Stdio::from(file)).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let got = fs::read(rec.path().join("msg")).expect("the real qmail-remote ran");
        assert!(got.ends_with(msg), "the message was changed below our fields");
        got
    }

    /// qmail-dkim at queue entry with `DKIM2VERIFY=letters` (and `extra`).
    fn entry(&self, msg: &[u8], sender: &str, rcpt: &str, extra: &[(&str, &str)]) -> (Output, Option<Recorded>) {
        let addr = self.dns.addr();
        let mut env: Vec<(&str, &str)> =
            vec![("AUTHSERV_ID", AUTHSERV), ("DNSCACHEIP", &addr), ("CUSTOM_ERRORS", "none"), ("DKIMLOG", "1")];
        env.extend_from_slice(extra);
        run_into_queue(msg, &env, sender, rcpt)
    }
}

fn dkim2_field(msg: &[u8]) -> String {
    headers_named(msg, "Authentication-Results").first().cloned().unwrap_or_default()
}

const MSG: &[u8] = b"From: Ann <ann@a.example>\nTo: a@dest.example, b@dest.example\nSubject: DKIM2\nDate: Mon, 07 Dec 2026 06:00:00 +0000\nMessage-ID: <dkim2@a.example>\n\nHello,\n\nthis crosses two hops.\n";

/// Signed at exit for two recipients, the message verifies at entry for each of them and is
/// refused (F) for a recipient it was not signed for: a replay.
#[test]
fn signed_at_exit_verifies_at_entry_and_a_replay_fails() {
    let w = World::new();
    let out = w.exit(MSG, "ann@a.example", &["a@dest.example", "b@dest.example"]);
    let top = String::from_utf8_lossy(&out[..out.len() - MSG.len()]).into_owned();
    assert!(top.starts_with("DKIM2-Signature: i=1; m=1;") && top.contains("Message-Instance: m=1;"), "{top}");
    for rcpt in ["a@dest.example", "b@dest.example"] {
        let (o, rec) = w.entry(&out, "ann@a.example", rcpt, &[("DKIM2VERIFY", "FPN")]);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        let ar = dkim2_field(&rec.expect("queued").msg);
        assert!(ar.contains("dkim2=pass header.d=a.example header.i=1"), "{ar}");
        assert!(o.stderr.contains("dkim2chain.id=a.example dkim2chain.result=pass"), "{}", o.stderr);
    }
    let (o, rec) = w.entry(&out, "ann@a.example", "eve@dest.example", &[("DKIM2VERIFY", "F")]);
    assert_eq!(o.code, Some(31), "{}", o.stderr);
    assert!(rec.is_none());
    assert!(o.stderr.contains("DKIM2 chain does not verify (#5.7.20)"), "{}", o.stderr);
    // Lowercase: a temporary refusal; empty: reported only.
    let (o, _) = w.entry(&out, "ann@a.example", "eve@dest.example", &[("DKIM2VERIFY", "f")]);
    assert_eq!(o.code, Some(71), "{}", o.stderr);
    let (o, rec) = w.entry(&out, "ann@a.example", "eve@dest.example", &[("DKIM2VERIFY", "")]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(dkim2_field(&rec.unwrap().msg).contains("dkim2=fail"));
    // No DKIM2 signature: N.
    let (o, _) = w.entry(MSG, "ann@a.example", "a@dest.example", &[("DKIM2VERIFY", "N")]);
    assert_eq!(o.code, Some(31), "{}", o.stderr);
    assert!(o.stderr.contains("no DKIM2 signature"), "{}", o.stderr);
}

/// Exit, entry (which adds its own DKIM-Status and Authentication-Results), forward from the
/// destination to a third domain (exit again: a recipe removes the entry's DKIM-Status), entry:
/// the two-hop chain passes there, and header.d is the originator's.
#[test]
fn two_hop_chain_passes() {
    let w = World::new();
    let hop1 = w.exit(MSG, "ann@a.example", &["a@dest.example"]);
    let (o, rec) = w.entry(&hop1, "ann@a.example", "a@dest.example", &[("DKIM2VERIFY", "F"), ("DKIMVERIFY", "")]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let arrived = rec.expect("queued").msg;
    assert!(!headers_named(&arrived, "DKIM-Status").is_empty());
    let hop2 = w.exit(&arrived, "a-fwd@dest.example", &["carol@final.example"]);
    let top = String::from_utf8_lossy(&hop2[..hop2.len() - arrived.len()]).into_owned();
    assert!(top.starts_with("DKIM2-Signature: i=2; m=2;") && top.contains("Message-Instance: m=2;"), "{top}");
    let (o, rec) = w.entry(&hop2, "a-fwd@dest.example", "carol@final.example", &[("DKIM2VERIFY", "FP")]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let ar = dkim2_field(&rec.unwrap().msg);
    assert!(ar.contains("dkim2=pass header.d=a.example header.i=1"), "{ar}");
    // The first hop's recipient cannot take the forwarded copy: it was not sent to it.
    let (o, _) = w.entry(&hop2, "a-fwd@dest.example", "a@dest.example", &[("DKIM2VERIFY", "F")]);
    assert_eq!(o.code, Some(31), "{}", o.stderr);
}

/// A body changed after signing, with no Message-Instance recording it, fails (F refuses);
/// and the exit does not continue such a chain (it leaves the message without a new DKIM2
/// signature and says why).
#[test]
fn changed_body_without_recipe_fails() {
    let w = World::new();
    let hop1 = w.exit(MSG, "ann@a.example", &["a@dest.example"]);
    let changed = [hop1.as_slice(), b"-- \nA footer added on the way.\n"].concat();
    let (o, rec) = w.entry(&changed, "ann@a.example", "a@dest.example", &[("DKIM2VERIFY", "")]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let ar = dkim2_field(&rec.unwrap().msg);
    assert!(ar.contains("dkim2=fail") && ar.contains("body hash"), "{ar}");
    let (o, _) = w.entry(&changed, "ann@a.example", "a@dest.example", &[("DKIM2VERIFY", "F")]);
    assert_eq!(o.code, Some(31), "{}", o.stderr);
    let forwarded = w.exit(&changed, "a-fwd@dest.example", &["carol@final.example"]);
    assert_eq!(forwarded, changed, "a broken chain is not continued");
}

/// A bounce (null sender) is signed at exit with `mf=<>` for control/me (no bouncehost here)
/// and verifies at entry for the null sender.
#[test]
fn bounce_signed_at_exit_verifies_at_entry() {
    let w = World::new();
    let bounce = b"From: MAILER-DAEMON@a.example\nTo: ann@b.example\nSubject: failure notice\n\nHi.\n";
    let signed = w.exit(bounce, "", &["ann@b.example"]);
    assert!(String::from_utf8_lossy(&signed).contains("mf=PD4=;"));
    let (o, rec) = w.entry(&signed, "", "ann@b.example", &[("DKIM2VERIFY", "FP")]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(dkim2_field(&rec.unwrap().msg).contains("dkim2=pass header.d=a.example"));
}

/// DMARC counts a DKIM2 chain that passed, with its first signer's domain, as an aligned DKIM
/// pass (as mail-auth does): a message with no DKIM signature and no SPF passes DMARC.
#[test]
fn dmarc_counts_an_aligned_dkim2_pass() {
    let w = World::new();
    let hop1 = w.exit(MSG, "ann@a.example", &["a@dest.example"]);
    let (o, rec) = w.entry(&hop1, "ann@a.example", "a@dest.example", &[("DKIM2VERIFY", ""), ("DMARCVERIFY", "R")]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let ar = dkim2_field(&rec.unwrap().msg);
    assert!(ar.contains("dkim2=pass") && ar.contains("dmarc=pass"), "{ar}");
    // Without DKIM2 the same message fails p=reject.
    let (o, _) = w.entry(MSG, "ann@a.example", "a@dest.example", &[("DMARCVERIFY", "R")]);
    assert_eq!(o.code, Some(31), "{}", o.stderr);
}

/// Two DKIM signatures are logged as `dkim1.*` and `dkim2.*`; the DKIM2 check beside them
/// must not write `dkim2.result` a second time with another meaning: every key appears once.
#[test]
fn dkimlog_keys_of_dkim2_check_and_second_dkim_signature_do_not_clash() {
    let w = World::new();
    let sig = |a: &str| format!("DKIM-Signature: v=1; a={a}; d=a.example; s=sel; h=from; bh=AAAA; b=AAAA\n");
    let two = [sig("ed25519-sha256").as_bytes(), sig("rsa-sha256").as_bytes(), MSG].concat();
    let hop1 = w.exit(&two, "ann@a.example", &["a@dest.example"]);
    let (o, _) = w.entry(&hop1, "ann@a.example", "a@dest.example", &[("DKIM2VERIFY", ""), ("DKIMVERIFY", "")]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let line = crate::admin::dkimlog_line(&o.stderr);
    let pairs = crate::admin::pairs(&line);
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&"dkim2.result") && keys.contains(&"dkim2chain.result"), "{line}");
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n, "a key appears twice: {line}");
}
