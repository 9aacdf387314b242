//! ARC (RFC 8617) through the library, keys from the loopback DNS server: chains dkimpy seals
//! validate here (and fail here when tampered with, as they fail in dkimpy), the sets we seal
//! validate in dkimpy's `arc_verify`, and a body of several MiB streams through in pieces.

use crate::common::*;
use qmail_dkim::arc::seal::ArcSealTask;
use qmail_dkim::arc::task::ArcVerifyTask;
use qmail_dkim::arc::verify::Verifier;
use qmail_dkim::arc::{ArcOutput, ArcResult};
use qmail_dkim::auth_results::{MethodOutput, MethodResult, SpfOutput, SpfResult, SpfScope};
use qmail_dkim::dkim::key::SigningKey;
use qmail_dkim::dns::{Hickory, Resolver, Servers, TxtLookup};
use qmail_dkim::envelope::Envelope;
use qmail_dkim::message::{find_header_end, Headers};
use qmail_dkim::task::{Context, Finished, Task};
use std::time::Duration;

const MSG: &str = "Authentication-Results: lists.example.net; spf=pass smtp.mailfrom=alice@example.com\n\
From: Alice <alice@example.com>\nTo: list@lists.example.net\nSubject: ARC test\n\
Date: Sun, 29 Nov 2026 21:00:00 +0000\nMessage-ID: <arc-1@example.com>\n\n\
Hello list,\n\nthis is the body.\n";

/// The loopback DNS server with the keys of the list (RSA), of a forwarder (RSA) and of
/// our host (RSA and Ed25519), and one selector that always fails temporarily.
struct Setup {
    dns: Dns,
    rsa: TestKey,
    ed: TestKey,
}

fn setup() -> Setup {
    let (rsa, ed) = (TestKey::rsa(2048), TestKey::ed25519());
    let (r, e) = (rsa.dns_record(), ed.dns_record());
    let dns = Dns::start(&[
        ("lists._domainkey.lists.example.net", &r),
        ("fwd._domainkey.forwarder.example", &r),
        ("rsa._domainkey.mx.example.org", &r),
        ("ed._domainkey.mx.example.org", &e),
        ("temp._domainkey.mx.example.org", "@SERVFAIL"),
    ]);
    Setup { dns, rsa, ed }
}

/// Now: dkimpy refuses a seal whose t= is in the future.
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn split(msg: &[u8]) -> (Headers, &[u8]) {
    let (end, body) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    (Headers::parse(msg[..end].to_vec()), &msg[body..])
}

fn hickory(dns: &Dns) -> Hickory {
    Hickory::new(Servers::Listed(vec![dns.addr().parse().unwrap()]), Duration::from_secs(5))
}

/// Finishes a task as run() does, with our authserv-id and `earlier` as the run's results.
fn finish(t: Box<dyn Task>, h: &Headers, dns: &Dns, earlier: &[MethodOutput]) -> Finished {
    let env = Envelope { raw: Vec::new(), sender: b"alice@example.com".to_vec(), recipients: Vec::new() };
    let id = || "mx.example.org".to_string();
    let lookup = || -> Box<dyn TxtLookup> { Box::new(hickory(dns)) };
    let resolver = || -> Box<dyn Resolver> { Box::new(hickory(dns)) };
    let ctx = Context {
        headers: h,
        queued: h,
        envelope: &env,
        now: now(),
        verbose: true,
        authserv_id: &id,
        dns: &lookup,
        resolver: &resolver,
        earlier,
    };
    t.finish(&ctx).expect("task finishes")
}

/// Our validation, the body fed in pieces of `piece` bytes.
fn our_verify(msg: &[u8], dns: &Dns, piece: usize) -> ArcOutput {
    let (h, body) = split(msg);
    let mut v = Verifier::new(&h);
    for p in body.chunks(piece.max(1)) {
        v.body(p);
    }
    v.finish(&h, &hickory(dns))
}

/// What the program does with ARCVERIFY and ARCSIGN: the verify task, then the seal with its
/// result (and an spf= result as another method would give), the body in 64 KiB pieces.
/// Returns the message with the new set on top, and the arc= result.
fn our_verify_and_seal(msg: &[u8], s: &Setup, key: &TestKey, selector: &str) -> (Vec<u8>, MethodResult) {
    let (h, body) = split(msg);
    let pem = std::fs::read(&key.path).unwrap();
    let signing = SigningKey::from_pem(&pem, false).unwrap();
    let mut verify = Box::new(ArcVerifyTask::new(&h, "F".into(), now()));
    let mut seal = Box::new(ArcSealTask::new(&h, signing, "mx.example.org".into(), selector.into(), now()));
    for p in body.chunks(64 << 10) {
        verify.body(p);
        seal.body(p);
    }
    let v = finish(verify, &h, &s.dns, &[]);
    let mut earlier = vec![MethodOutput::Spf(SpfOutput {
        result: SpfResult::Pass,
        domain: "example.com".into(),
        reason: String::new(),
        explanation: None,
        scope: SpfScope::MailFrom,
        identity: Some("alice@example.com".into()),
    })];
    earlier.extend(v.outputs.clone());
    let sealed = finish(seal, &h, &s.dns, &earlier);
    ([sealed.prepend.as_slice(), msg].concat(), v.method_results()[0].clone())
}

/// dkimpy's seal as the list (instance 1), then as a forwarder that saw arc=pass (instance 2).
fn dkimpy_chain(s: &Setup, msg: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let one = dkimpy_arc_sign(msg, &s.rsa.path, "lists", "lists.example.net", "lists.example.net");
    let seen = [b"Authentication-Results: forwarder.example; arc=pass\n".as_slice(), &one].concat();
    let two = dkimpy_arc_sign(&seen, &s.rsa.path, "fwd", "forwarder.example", "forwarder.example");
    (one, two)
}

fn replace(msg: &[u8], from: &str, to: &str) -> Vec<u8> {
    let t = String::from_utf8(msg.to_vec()).unwrap();
    assert!(t.contains(from), "{from:?} not in {t}");
    t.replacen(from, to, 1).into_bytes()
}

#[test]
fn dkimpy_sealed_chains_of_one_and_two_sets_pass_here() {
    let s = setup();
    let (one, two) = dkimpy_chain(&s, MSG.as_bytes());
    for (msg, n) in [(&one, 1), (&two, 2)] {
        let py = dkimpy_arc_verify(msg, &s.dns);
        assert!(py.ok, "dkimpy: {} {}", py.report, py.stderr);
        assert_eq!(
            our_verify(msg, &s.dns, 7),
            ArcOutput { result: ArcResult::Pass, reason: String::new(), instances: n }
        );
    }
}

#[test]
fn tampered_dkimpy_chains_fail_here_as_in_dkimpy() {
    let s = setup();
    let (_, two) = dkimpy_chain(&s, MSG.as_bytes());
    let text = String::from_utf8(two.clone()).unwrap();
    // The first base64 character of the newest seal's b=.
    let seal = text.find("ARC-Seal: i=2").unwrap();
    let b = seal + text[seal..].find(" b=").unwrap() + 3;
    let mut seal_b = two.clone();
    seal_b[b] = if seal_b[b] == b'A' { b'B' } else { b'A' };
    for (what, msg, why) in [
        ("body", replace(&two, "this is the body", "this is a changed body"), "body hash differs"),
        ("seal b=", seal_b, "ARC-Seal i=2 does not verify"),
        ("signed Subject", replace(&two, "Subject: ARC test", "Subject: ARC test!"), "ARC-Message-Signature i=2"),
    ] {
        let v = our_verify(&msg, &s.dns, 1 << 16);
        assert_eq!(v.result, ArcResult::Fail, "{what}: {v:?}");
        assert!(v.reason.contains(why), "{what}: {v:?}");
        let py = dkimpy_arc_verify(&msg, &s.dns);
        assert!(!py.ok && py.report.starts_with("cv=fail"), "dkimpy passes a changed {what}: {}", py.report);
    }
}

#[test]
fn our_seal_of_a_fresh_message_passes_dkimpy() {
    let s = setup();
    let (sealed, arc) = our_verify_and_seal(MSG.as_bytes(), &s, &s.rsa, "rsa");
    assert_eq!(arc, MethodResult::new("arc", "none"));
    let text = String::from_utf8_lossy(&sealed);
    assert!(text.starts_with("ARC-Seal: i=1; a=rsa-sha256;") && text.contains("cv=none;"), "{text}");
    let py = dkimpy_arc_verify(&sealed, &s.dns);
    assert!(py.ok, "dkimpy rejects our seal: {} {}\n{text}", py.report, py.stderr);
    assert_eq!(our_verify(&sealed, &s.dns, 1000).result, ArcResult::Pass);
}

/// An Ed25519 ARCSIGN key seals with ed25519-sha256, which validates here; dkimpy 1.1.8's ARC
/// knows only rsa-sha256 and refuses it for that alone (the known limit the manual states).
#[test]
fn ed25519_seal_validates_here_and_dkimpy_knows_only_rsa_for_arc() {
    let s = setup();
    let (sealed, _) = our_verify_and_seal(MSG.as_bytes(), &s, &s.ed, "ed");
    let text = String::from_utf8_lossy(&sealed);
    assert!(text.starts_with("ARC-Seal: i=1; a=ed25519-sha256;"), "{text}");
    assert_eq!(our_verify(&sealed, &s.dns, 1000).result, ArcResult::Pass);
    let py = dkimpy_arc_verify(&sealed, &s.dns);
    assert!(!py.ok && py.report.contains("unknown signature algorithm: b'ed25519-sha256'"), "{}", py.report);
}

#[test]
fn our_seal_on_a_dkimpy_chain_passes_dkimpy() {
    let s = setup();
    let (one, two) = dkimpy_chain(&s, MSG.as_bytes());
    for (msg, n) in [(&one, 2), (&two, 3)] {
        let (sealed, arc) = our_verify_and_seal(msg, &s, &s.rsa, "rsa");
        assert_eq!(arc, MethodResult::new("arc", "pass"));
        let text = String::from_utf8_lossy(&sealed);
        assert!(text.starts_with(&format!("ARC-Seal: i={n};")), "{text}");
        assert!(text.contains("cv=pass;") && text.contains("arc=pass"), "{text}");
        let py = dkimpy_arc_verify(&sealed, &s.dns);
        assert!(py.ok, "dkimpy rejects our seal i={n}: {} {}\n{text}", py.report, py.stderr);
        assert_eq!(our_verify(&sealed, &s.dns, 1000).instances, n);
    }
}

#[test]
fn several_mib_body_streams_through_validation_and_sealing() {
    let s = setup();
    let mut msg = MSG.as_bytes().to_vec();
    let line = b"A line of a long body, with  two spaces and a tab\tbefore its end \n";
    while msg.len() < 6 << 20 {
        msg.extend_from_slice(line);
    }
    let (_, two) = dkimpy_chain(&s, &msg);
    assert_eq!(our_verify(&two, &s.dns, 100_003).result, ArcResult::Pass);
    let (sealed, arc) = our_verify_and_seal(&two, &s, &s.rsa, "rsa");
    assert_eq!(arc.result(), "pass");
    let py = dkimpy_arc_verify(&sealed, &s.dns);
    assert!(py.ok, "dkimpy: {} {}", py.report, py.stderr);
}

#[test]
fn dns_temporary_failure_is_temperror_never_a_pass_nor_permanent() {
    let s = setup();
    let (sealed, _) = our_verify_and_seal(MSG.as_bytes(), &s, &s.rsa, "rsa");
    let temp = replace(&replace(&sealed, "s=rsa;", "s=temp;"), "s=rsa;", "s=temp;");
    let (h, body) = split(&temp);
    let mut t = Box::new(ArcVerifyTask::new(&h, "FT".into(), now()));
    t.body(body);
    let r = finish(t, &h, &s.dns, &[]);
    assert_eq!(r.method_results()[0].result(), "temperror");
    let refusal = r.refuse.expect("T refuses");
    assert!(!refusal.permanent, "{refusal:?}");
}

/// mail-auth's ARC validator (feature `arc` of the dev-dependency) as a second oracle: it
/// accepts our RSA and Ed25519 seals, at instance 1 and on top of dkimpy's chain. The body has
/// no whitespace-only trailing lines (mail-auth 0.13.3's relaxed body defect,
/// fixed in 0.15.0).
#[test]
fn mail_auth_validates_our_rsa_and_ed25519_seals() {
    let s = setup();
    let (rt, auth) = mail_auth_for(&s.dns);
    let (_, two) = dkimpy_chain(&s, MSG.as_bytes());
    for (base, n) in [(MSG.as_bytes().to_vec(), 1), (two, 3)] {
        for (key, selector) in [(&s.rsa, "rsa"), (&s.ed, "ed")] {
            let (sealed, _) = our_verify_and_seal(&base, &s, key, selector);
            let wire = lf_to_crlf(&sealed);
            let parsed = mail_auth::AuthenticatedMessage::parse(&wire).unwrap();
            let out = rt.block_on(auth.verify_arc(&parsed));
            assert_eq!(out.result(), &mail_auth::DkimResult::Pass, "mail-auth on our {selector} seal i={n}");
            assert_eq!(out.sets().len(), n);
            let changed = lf_to_crlf(&replace(&sealed, "this is the body", "this is a changed body"));
            let parsed = mail_auth::AuthenticatedMessage::parse(&changed).unwrap();
            assert_ne!(rt.block_on(auth.verify_arc(&parsed)).result(), &mail_auth::DkimResult::Pass);
        }
    }
}
