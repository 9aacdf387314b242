use super::parse::aar_instance;
use super::seal::ArcSealTask;
use super::task::refusal;
use super::task::ArcVerifyTask;
use super::verify::Verifier;
use super::*;
use crate::auth_results::{MethodOutput, MethodResult, SpfOutput, SpfResult, SpfScope};
use crate::dkim::key::{fixture, SigningKey};
use crate::dns::{Resolver, TxtLookup, Zone, ZoneRecord};
use crate::envelope::Envelope;
use crate::message::{find_header_end, Headers};
use crate::task::{Context, Finished, Task};
use base64::Engine;

const MSG: &[u8] = b"From: Alice <alice@example.com>\nTo: bob@example.net\nSubject: hello\nDate: Sun, 29 Nov 2026 21:00:00 +0000\nMessage-ID: <1@example.com>\n\nHello Bob,\n\nthis is the body.\n";

/// The RSA test key, the Ed25519 one, and their key records.
fn key(ed: bool) -> (SigningKey, String) {
    let name = if ed { "ed25519-pkcs8.pem" } else { "rsa-2048-pkcs8.pem" };
    let k = SigningKey::from_pem(&fixture(name), false).unwrap();
    let p = base64::engine::general_purpose::STANDARD.encode(k.public_key_dns());
    let rec = format!("v=DKIM1; k={}; p={p}", k.key_type().as_str());
    (k, rec)
}

/// The zone of both test keys: `rsa._domainkey.example.org`, `ed._domainkey.example.org`, and
/// `temp._domainkey.example.org` that always fails temporarily.
fn zone() -> Zone {
    let mut z = Zone::new();
    Zone::txt(&mut z, "rsa._domainkey.example.org", &key(false).1);
    Zone::txt(&mut z, "ed._domainkey.example.org", &key(true).1);
    z.add("temp._domainkey.example.org", ZoneRecord::TempFail);
    z
}

fn split(msg: &[u8]) -> (Headers, &[u8]) {
    let (end, body) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    (Headers::parse(msg[..end].to_vec()), &msg[body..])
}

fn verify(msg: &[u8]) -> ArcOutput {
    let (h, body) = split(msg);
    let mut v = Verifier::new(&h);
    v.body(body);
    v.finish(&h, &zone())
}

/// Finishes a task as run() does, with the test zone and `earlier` as the run's results.
fn finish(t: Box<dyn Task>, h: &Headers, earlier: &[MethodOutput]) -> Finished {
    let env = Envelope { raw: Vec::new(), sender: Vec::new(), recipients: Vec::new() };
    let id = || "mx.example.org".to_string();
    let dns = || -> Box<dyn TxtLookup> { Box::new(zone()) };
    let resolver = || -> Box<dyn Resolver> { Box::new(zone()) };
    let ctx = Context {
        headers: h,
        queued: h,
        envelope: &env,
        now: 1_800_000_000,
        verbose: false,
        authserv_id: &id,
        dns: &dns,
        resolver: &resolver,
        earlier,
    };
    t.finish(&ctx).unwrap()
}

/// Seals `msg` as the given selector of example.org, with `earlier` as the run's results.
fn seal(msg: &[u8], selector: &str, earlier: &[MethodOutput]) -> Vec<u8> {
    let (h, body) = split(msg);
    let k = SigningKey::from_pem(
        &fixture(if selector == "ed" { "ed25519-pkcs8.pem" } else { "rsa-2048-pkcs8.pem" }),
        false,
    )
    .unwrap();
    let mut t = Box::new(ArcSealTask::new(&h, k, "example.org".into(), selector.into(), 1_800_000_000));
    t.body(body);
    let r = finish(t, &h, earlier);
    [r.prepend.as_slice(), msg].concat()
}

/// An `spf=pass` result without an identity.
fn spf_pass() -> MethodOutput {
    MethodOutput::Spf(SpfOutput {
        result: SpfResult::Pass,
        domain: String::new(),
        reason: String::new(),
        explanation: None,
        scope: SpfScope::MailFrom,
        identity: None,
    })
}

/// `spf=pass` and the verify task's ARC result, as the seal finds them.
fn arc(result: ArcResult) -> Vec<MethodOutput> {
    vec![spf_pass(), MethodOutput::Arc(ArcOutput { result, reason: String::new(), instances: 0 })]
}

/// Two sets sealed by us: RSA then Ed25519.
fn two_sets() -> Vec<u8> {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    seal(&one, "ed", &arc(ArcResult::Pass))
}

fn replace(msg: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(msg.to_vec()).unwrap();
    assert!(s.contains(from), "{from:?} not in the message");
    s.replacen(from, to, 1).into_bytes()
}

fn fails_with(msg: &[u8], why: &str) {
    let v = verify(msg);
    assert_eq!(v.result, ArcResult::Fail, "{v:?}");
    assert!(v.reason.contains(why), "{:?} does not say {why:?}", v.reason);
}

#[test]
fn message_without_arc_fields_is_none() {
    assert_eq!(verify(MSG).result, ArcResult::None);
}

#[test]
fn our_seals_validate_at_instance_one_and_two() {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    let text = String::from_utf8_lossy(&one);
    assert!(text.starts_with("ARC-Seal: i=1; a=rsa-sha256; t=1800000000; cv=none;"), "{text}");
    assert!(text.contains("\nARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed;"), "{text}");
    assert!(text.contains("\nARC-Authentication-Results: i=1; mx.example.org; spf=pass; arc=none\n"), "{text}");
    assert_eq!(verify(&one), ArcOutput { result: ArcResult::Pass, reason: String::new(), instances: 1 });
    let two = seal(&one, "ed", &arc(ArcResult::Pass));
    assert!(String::from_utf8_lossy(&two).starts_with("ARC-Seal: i=2; a=ed25519-sha256; t=1800000000; cv=pass;"));
    assert_eq!(verify(&two).result, ArcResult::Pass);
    assert_eq!(verify(&two).instances, 2);
}

#[test]
fn changed_body_fails_the_newest_ams() {
    fails_with(&replace(&two_sets(), "this is the body", "this is another body"), "body hash differs");
}

#[test]
fn changed_signed_header_fails_the_newest_ams() {
    fails_with(&replace(&two_sets(), "Subject: hello", "Subject: hullo"), "ARC-Message-Signature i=2 does not verify");
}

#[test]
fn changed_older_set_fails_the_seal() {
    // Nothing but the seals covers the AAR of i=1.
    fails_with(&replace(&two_sets(), "i=1; mx.example.org; spf=pass", "i=1; mx.example.org; spf=fail"), "ARC-Seal i=2");
}

#[test]
fn changed_seal_signature_fails() {
    let two = two_sets();
    let text = String::from_utf8(two.clone()).unwrap();
    let b = text.find("cv=pass;").and_then(|p| text[p..].find("b=").map(|q| p + q + 2)).unwrap();
    let mut bad = two;
    bad[b] = if bad[b] == b'A' { b'B' } else { b'A' };
    fails_with(&bad, "ARC-Seal i=2 does not verify");
}

#[test]
fn missing_set_member_fails() {
    let two = two_sets();
    let text = String::from_utf8(two).unwrap();
    let start = text.find("ARC-Authentication-Results: i=1;").unwrap();
    let end = start + text[start..].find('\n').unwrap() + 1;
    let without = format!("{}{}", &text[..start], &text[end..]);
    fails_with(without.as_bytes(), "ARC set i=1 has no ARC-Authentication-Results");
}

#[test]
fn duplicate_set_member_fails() {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    let dup = [b"ARC-Authentication-Results: i=1; other.example; none\n".as_slice(), &one].concat();
    fails_with(&dup, "two ARC-Authentication-Results fields with i=1");
}

#[test]
fn cv_none_above_instance_one_fails() {
    fails_with(&replace(&two_sets(), "cv=pass", "cv=none"), "ARC-Seal i=2 has cv=none (must be pass)");
    fails_with(&replace(&two_sets(), "cv=none", "cv=pass"), "ARC-Seal i=1 has cv=pass (must be none)");
}

#[test]
fn cv_fail_chain_fails_and_is_not_sealed_again() {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    let failed = seal(&replace(&one, "this is the body", "changed"), "ed", &arc(ArcResult::Fail));
    assert!(String::from_utf8_lossy(&failed).starts_with("ARC-Seal: i=2; a=ed25519-sha256; t=1800000000; cv=fail;"));
    fails_with(&failed, "ARC-Seal i=2 has cv=fail");
    // RFC 8617 §5.1: the chain has ended.
    assert_eq!(seal(&failed, "rsa", &arc(ArcResult::Fail)), failed);
}

#[test]
fn broken_chain_is_sealed_with_cv_fail_over_the_new_set_only() {
    use crate::dkim::canon;
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    let broken = [b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=example.org; s=rsa; b=AAAA\n".as_slice(), &one].concat();
    fails_with(&broken, "two ARC-Seal fields with i=1");
    let sealed = seal(&broken, "ed", &arc(ArcResult::Fail));
    let text = String::from_utf8_lossy(&sealed);
    assert!(text.starts_with("ARC-Seal: i=2; a=ed25519-sha256; t=1800000000; cv=fail;"), "{text}");
    // The new seal signs its own set alone (RFC 8617 §5.1.2).
    let (h, _) = split(&sealed);
    let (seal_f, ams_f, aar_f) = (&h.fields[0], &h.fields[1], &h.fields[2]);
    let mut data = Vec::new();
    canon::header(crate::dkim::Canon::Relaxed, &h, aar_f, &mut data);
    canon::header(crate::dkim::Canon::Relaxed, &h, ams_f, &mut data);
    canon::signature_header(crate::dkim::Canon::Relaxed, h.raw(seal_f), &mut data);
    let tags = TagList::parse(h.value(seal_f)).unwrap();
    let b =
        base64::engine::general_purpose::STANDARD.decode(crate::dkim::tags::strip_ws(tags.get("b").unwrap())).unwrap();
    let public = crate::dkim::record::PublicKey::Ed25519(key(true).0.public_key_dns());
    assert!(crate::dkim::verify::verify_sig(&public, crate::dkim::Algorithm::Ed25519Sha256, &data, &b));
}

#[test]
fn temporary_dns_failure_is_temperror_and_refuses_only_temporarily() {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    let temp = replace(&replace(&one, "s=rsa;", "s=temp;"), "s=rsa;", "s=temp;");
    let v = verify(&temp);
    assert_eq!(v.result, ArcResult::TempError, "{v:?}");
    assert!(v.reason.contains("temp._domainkey.example.org"), "{v:?}");
    assert_eq!(refusal(&v, "F"), None);
    for letters in ["T", "t", "Tt"] {
        let r = refusal(&v, letters).unwrap();
        assert!(!r.permanent && r.text.ends_with("(#4.7.29)"), "{letters}: {r:?}");
    }
    // A failure for good elsewhere wins over the temporary one.
    fails_with(&replace(&temp, "this is the body", "changed"), "body hash differs");
}

#[test]
fn fail_letters_refuse_permanently_or_temporarily() {
    let v = verify(&replace(&two_sets(), "this is the body", "changed"));
    assert!(refusal(&v, "F").unwrap().permanent);
    assert!(!refusal(&v, "f").unwrap().permanent);
    assert_eq!(refusal(&v, "T"), None);
    assert_eq!(refusal(&v, ""), None);
    assert_eq!(refusal(&verify(&two_sets()), "FT"), None);
}

#[test]
fn verify_task_reports_one_arc_result() {
    let two = two_sets();
    let (h, body) = split(&two);
    let mut t = Box::new(ArcVerifyTask::new(&h, "F".into(), 0));
    // The body in small pieces: the hash streams.
    for piece in body.chunks(3) {
        t.body(piece);
    }
    let r = finish(t, &h, &[]);
    assert_eq!(r.method_results(), vec![MethodResult::new("arc", "pass")]);
    assert_eq!(r.refuse, None);
    assert!(r.prepend.is_empty());
}

/// A set of ARC fields for instance `i` that parse (not signed: for the structure only).
fn fake_set(i: u32) -> String {
    let cv = if i == 1 { "none" } else { "pass" };
    format!(
        "ARC-Seal: i={i}; cv={cv}; a=rsa-sha256; d=example.org; s=rsa; b=AAAA\nARC-Message-Signature: i={i}; a=rsa-sha256; d=example.org; s=rsa; h=from; bh=AAAA; b=AAAA\nARC-Authentication-Results: i={i}; mx.example.org; none\n"
    )
}

#[test]
fn fifty_sets_are_collected_and_fifty_one_fail() {
    let fifty: String = (1..=50).rev().map(fake_set).collect();
    match collect(&Headers::parse(fifty.clone().into_bytes())) {
        Chain::Sets(s) => assert_eq!(s.len(), 50),
        c => panic!("{c:?}"),
    }
    let more = format!("{}{fifty}", fake_set(51));
    match collect(&Headers::parse(more.into_bytes())) {
        Chain::Broken(b) => assert_eq!(b, Broken { why: "more than 150 ARC header fields".into(), next: None }),
        c => panic!("{c:?}"),
    }
    // Instance 51 alone is out of range.
    match collect(&Headers::parse(fake_set(51).into_bytes())) {
        Chain::Broken(b) => assert_eq!(b.next, None, "{b:?}"),
        c => panic!("{c:?}"),
    }
}

#[test]
fn chain_of_fifty_sets_passes_and_is_not_sealed_again() {
    let mut msg = seal(MSG, "ed", &arc(ArcResult::None));
    for _ in 2..=50 {
        msg = seal(&msg, "ed", &arc(ArcResult::Pass));
    }
    assert_eq!(verify(&msg), ArcOutput { result: ArcResult::Pass, reason: String::new(), instances: 50 });
    assert_eq!(seal(&msg, "ed", &arc(ArcResult::Pass)), msg);
}

#[test]
fn missing_instance_fails() {
    let sets = format!("{}{}", fake_set(3), fake_set(1));
    match collect(&Headers::parse(sets.into_bytes())) {
        Chain::Broken(b) => {
            assert_eq!(b, Broken { why: "ARC set i=2 has no ARC-Authentication-Results".into(), next: Some(4) })
        }
        c => panic!("{c:?}"),
    }
}

#[test]
fn unreadable_instances_fail_and_are_not_sealed() {
    for bad in [
        "ARC-Seal: i=0; cv=none; a=rsa-sha256; d=example.org; s=rsa; b=AAAA\n",
        "ARC-Seal: i=x; cv=none\n",
        "ARC-Seal: cv=none\n",
        "ARC-Seal: i=1; i=1\n",
        "ARC-Message-Signature: i=100\n",
        "ARC-Authentication-Results: mx.example.org; none\n",
        "ARC-Authentication-Results: i=1 mx.example.org\n",
    ] {
        match collect(&Headers::parse(format!("{bad}{}", fake_set(1)).into_bytes())) {
            Chain::Broken(b) => assert_eq!(b.next, None, "{bad}: {b:?}"),
            c => panic!("{bad}: {c:?}"),
        }
    }
}

#[test]
fn aar_instance_allows_folding_white_space() {
    assert_eq!(aar_instance(b" i = 7 ;\n\tmx; none"), Some(7));
    assert_eq!(aar_instance(b"i=1;mx"), Some(1));
    assert_eq!(aar_instance(b" i=1"), None);
    assert_eq!(aar_instance(b" j=1; mx"), None);
    assert_eq!(aar_instance(b" i=123; mx"), None);
}

#[test]
fn bad_ams_tags_fail() {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    fails_with(&replace(&one, "a=rsa-sha256; c=relaxed", "a=rsa-sha1; c=relaxed"), "rsa-sha1");
    fails_with(&replace(&one, "c=relaxed/relaxed", "c=odd"), "unknown c=");
    fails_with(&replace(&one, "h=", "h=arc-seal:"), "signs ARC-Seal");
    fails_with(&replace(&one, "\tbh=", "\txh="), "no valid bh=");
}

/// RFC 6376 §3.2 (the tag-list of RFC 8617 §4.1.2 and §4.1.3): an empty tag-spec makes the set
/// unreadable and the chain fail, as dkimpy and ValiMail's suite (as_format_tags_sc) say.
#[test]
fn empty_tag_spec_in_a_seal_or_ams_fails() {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    fails_with(&replace(&one, "cv=none;", "cv=none;;"), "empty tag-spec");
    fails_with(&replace(&one, "c=relaxed/relaxed;", "c=relaxed/relaxed;;"), "empty tag-spec");
}

#[test]
fn seal_with_h_tag_fails() {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    fails_with(&replace(&one, "cv=none;", "cv=none; h=from;"), "ARC-Seal i=1 has h=");
}

#[test]
fn many_arc_fields_are_collected_in_linear_time() {
    // Below the caps: growing tag lists in the fields; above: the count stops the scan.
    crate::linear::assert_linear(
        "arc::collect, ARC fields among many others",
        64,
        |n| {
            let mut block = Vec::new();
            for k in 0..n {
                block.extend_from_slice(format!("Received: from {k}\n").as_bytes());
                if k % 64 == 0 {
                    block.extend_from_slice(fake_set(1).as_bytes());
                }
            }
            Headers::parse(block)
        },
        |h| {
            std::hint::black_box(matches!(collect(h), Chain::Broken(_)));
        },
    );
    let huge: String = std::iter::repeat_n("ARC-Seal: i=1\n", 100_000).collect();
    let h = Headers::parse(huge.into_bytes());
    match collect(&h) {
        Chain::Broken(b) => assert_eq!(b.why, "more than 150 ARC header fields"),
        c => panic!("{c:?}"),
    }
}

#[test]
fn temperror_or_missing_verdict_adds_no_seal_to_a_chain() {
    let one = seal(MSG, "rsa", &arc(ArcResult::None));
    assert_eq!(seal(&one, "rsa", &arc(ArcResult::TempError)), one);
    assert_eq!(seal(&one, "rsa", &[spf_pass()]), one);
    // Without a chain there is nothing to vouch for: i=1, cv=none.
    assert!(seal(MSG, "rsa", &[]).starts_with(b"ARC-Seal: i=1; a=rsa-sha256; t=1800000000; cv=none;"));
}

#[test]
fn arc_fields_over_a_mib_fail_unparsed() {
    let big = format!("ARC-Authentication-Results: i=1; mx; none (x{})\n", "y".repeat(MAX_ARC_BYTES));
    match collect(&Headers::parse(format!("{big}{}", fake_set(1)).into_bytes())) {
        Chain::Broken(b) => {
            assert_eq!(b, Broken { why: format!("ARC header fields of more than {MAX_ARC_BYTES} bytes"), next: None })
        }
        c => panic!("{c:?}"),
    }
}

/// A one-set chain over [`MSG`] whose AMS carries `extra` tags (e.g. `x=`), signed and
/// sealed with the RSA test key as any sealer would.
fn one_set_with_ams_tags(extra: &str) -> Vec<u8> {
    use crate::dkim::{canon, Algorithm, Canon, HashAlg};
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (h, body) = split(MSG);
    let (k, _) = key(false);
    let mut hasher = canon::BodyHasher::new(Canon::Relaxed, HashAlg::Sha256, None);
    hasher.update(body);
    let bh = hasher.finish().0;
    let names: Vec<String> = ["from", "to", "subject"].iter().map(|s| s.to_string()).collect();
    let mut ams = format!(
        "ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=rsa; {extra} \
         h=from:to:subject; bh={}; b=",
        b64(&bh)
    );
    let mut data = Vec::new();
    canon::signed_headers(Canon::Relaxed, &h, &names, None, &mut data);
    canon::signature_header(Canon::Relaxed, ams.as_bytes(), &mut data);
    ams = format!("{ams}{}\n", b64(&k.sign(Algorithm::RsaSha256, &data).unwrap()));
    let aar = "ARC-Authentication-Results: i=1; mx.example.org; spf=pass\n";
    let below = Headers::parse(format!("{aar}{ams}").into_bytes());
    let mut data = Vec::new();
    for f in &below.fields {
        canon::header(Canon::Relaxed, &below, f, &mut data);
    }
    let seal = "ARC-Seal: i=1; a=rsa-sha256; t=1000; cv=none; d=example.org; s=rsa; b=";
    canon::signature_header(Canon::Relaxed, seal.as_bytes(), &mut data);
    let seal = format!("{seal}{}\n", b64(&k.sign(Algorithm::RsaSha256, &data).unwrap()));
    [seal.as_bytes(), ams.as_bytes(), aar.as_bytes(), MSG].concat()
}

/// RFC 8617 §4.1.2: the AMS has the semantics of a DKIM-Signature, and an expired one
/// (RFC 6376 §3.5 `x=`) does not verify, as in our DKIM verifier; dkimpy fails such a chain
/// and mail-auth does not pass it.
#[test]
fn newest_ams_past_its_x_expiry_fails() {
    assert_eq!(verify(&one_set_with_ams_tags("t=1000; x=4000000000;")).result, ArcResult::Pass);
    fails_with(&one_set_with_ams_tags("t=1000; x=2000;"), "expired");
    fails_with(&one_set_with_ams_tags("t=3000; x=2000;"), "x=");
}
