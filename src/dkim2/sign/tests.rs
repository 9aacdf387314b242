use super::*;
use crate::dkim::key::fixture;
use crate::dkim2::hash::body_digest;
use crate::dkim2::verify::tests::verify_bytes;
use crate::dkim2::Dkim2Output;
use crate::dns::Zone;

const T0: u64 = 1_790_000_000;

fn key(name: &str) -> SigningKey {
    SigningKey::from_pem(&fixture(name), false).unwrap()
}

fn zone(keys: &[(&str, &SigningKey)]) -> Zone {
    let mut z = Zone::new();
    for (name, k) in keys {
        let p = base64::engine::general_purpose::STANDARD.encode(k.public_key_dns());
        Zone::txt(&mut z, name, &format!("v=DKIM1; k={}; p={p}", k.key_type().as_str()));
    }
    z
}

fn hashes(body: &[u8]) -> BodyHashes {
    BodyHashes { sha256: body_digest(body, HashAlg::Sha256), sha512: body_digest(body, HashAlg::Sha512) }
}

/// Signs `msg` (LF or CRLF) for this hop and returns the message with our fields on top.
fn hop(
    msg: &[u8],
    k: &SigningKey,
    domain: &str,
    from: &str,
    rcpt: &[&str],
    now: u64,
    dns: &Zone,
) -> Result<Vec<u8>, String> {
    let (end, start) = crate::message::find_header_end(msg, 0).unwrap();
    let h = Headers::parse(msg[..end].to_vec());
    let rcpt: Vec<String> = rcpt.iter().map(|r| r.to_string()).collect();
    let hop = Hop { key: k, domain, selector: "sel", mail_from: from, rcpt_to: &rcpt, now };
    let fields = sign(&h, &hashes(&msg[start..]), &hop, dns)?;
    Ok([fields.as_slice(), msg].concat())
}

fn check(msg: &[u8], from: &str, rcpt: &[&str], now: u64, dns: &Zone) -> Dkim2Output {
    let rcpt: Vec<String> = rcpt.iter().map(|r| r.to_string()).collect();
    verify_bytes(msg, from, &rcpt, dns, now)
}

const MSG: &[u8] = b"From: Ann <ann@a.example>\nTo: bob@b.example\nSubject: hello\n\nHi Bob,\n\nbye\n\n\n";

#[test]
fn first_hop_signs_and_verifies_rsa_and_ed25519() {
    for name in ["testkeys/ed25519.pem", "testkeys/rsa-2048.pem", "testkeys/rsa-1024.pem"] {
        let k = key(name);
        let dns = zone(&[("sel._domainkey.a.example", &k)]);
        let signed = hop(MSG, &k, "a.example", "<ann@a.example>", &["<bob@b.example>"], T0, &dns).unwrap();
        let text = String::from_utf8_lossy(&signed);
        assert!(
            text.starts_with("DKIM2-Signature: i=1; m=1;") && text.contains("\nMessage-Instance: m=1;\n\th=sha256:"),
            "{text}"
        );
        let r = check(&signed, "<ann@a.example>", &["<bob@b.example>"], T0 + 60, &dns);
        assert_eq!((r.result, r.reason.as_str()), (Dkim2Result::Pass, ""), "{name}");
        // A recipient it was not signed for: a replay.
        let r = check(&signed, "<ann@a.example>", &["<eve@b.example>"], T0 + 60, &dns);
        assert_eq!(r.result, Dkim2Result::Fail, "{name}: {}", r.reason);
        // Two weeks and a second later: too old.
        assert_eq!(
            check(&signed, "<ann@a.example>", &["<bob@b.example>"], T0 + 14 * 86400 + 1, &dns).result,
            Dkim2Result::Fail
        );
    }
}

#[test]
fn bounce_is_signed_with_the_null_sender() {
    let k = key("testkeys/ed25519.pem");
    let dns = zone(&[("sel._domainkey.mx.a.example", &k)]);
    let dsn = b"From: MAILER-DAEMON@mx.a.example\nTo: ann@b.example\nSubject: failure notice\n\nHi.\n";
    let signed = hop(dsn, &k, "mx.a.example", "<>", &["<ann@b.example>"], T0, &dns).unwrap();
    assert!(String::from_utf8_lossy(&signed).contains("mf=PD4=;"));
    assert_eq!(check(&signed, "<>", &["<ann@b.example>"], T0, &dns).result, Dkim2Result::Pass);
}

#[test]
fn two_hops_unchanged_and_with_our_fields_on_top() {
    let (k1, k2) = (key("testkeys/ed25519.pem"), key("testkeys/rsa-2048.pem"));
    let dns = zone(&[("sel._domainkey.a.example", &k1), ("sel._domainkey.b.example", &k2)]);
    let one = hop(MSG, &k1, "a.example", "<ann@a.example>", &["<bob@b.example>"], T0, &dns).unwrap();
    // Unchanged (only trace fields added): the next i= over the same m=.
    let arrived = [b"Received: from a\nDelivered-To: bob@b.example\nX-Spam: no\n".as_slice(), &one].concat();
    let two = hop(&arrived, &k2, "b.example", "<bob@b.example>", &["<carol@c.example>"], T0 + 5, &dns).unwrap();
    assert!(String::from_utf8_lossy(&two).starts_with("DKIM2-Signature: i=2; m=1;"));
    assert!(!String::from_utf8_lossy(&two[..two.len() - arrived.len()]).contains("Message-Instance"));
    let r = check(&two, "<bob@b.example>", &["<carol@c.example>"], T0 + 10, &dns);
    assert_eq!((r.result, r.reason.as_str()), (Dkim2Result::Pass, ""));
    assert_eq!(r.chain, vec![(1, "a.example".to_string()), (2, "b.example".to_string())]);

    // Fields added on top since (as qmail-dkim adds DKIM-Status at entry): a recipe removes them.
    let arrived = [b"DKIM-Status: good\nComments: checked\nReceived: from a\n".as_slice(), &one].concat();
    let two = hop(&arrived, &k2, "b.example", "<bob@b.example>", &["<carol@c.example>"], T0 + 5, &dns).unwrap();
    let text = String::from_utf8_lossy(&two);
    assert!(text.starts_with("DKIM2-Signature: i=2; m=2;") && text.contains("Message-Instance: m=2;"), "{text}");
    let r = check(&two, "<bob@b.example>", &["<carol@c.example>"], T0 + 10, &dns);
    assert_eq!((r.result, r.reason.as_str()), (Dkim2Result::Pass, ""));
}

#[test]
fn changes_that_cannot_be_recorded_are_not_signed() {
    let (k1, k2) = (key("testkeys/ed25519.pem"), key("testkeys/rsa-2048.pem"));
    let dns = zone(&[("sel._domainkey.a.example", &k1), ("sel._domainkey.b.example", &k2)]);
    let one = hop(MSG, &k1, "a.example", "<ann@a.example>", &["<bob@b.example>"], T0, &dns).unwrap();
    let body_changed = [one.as_slice(), b"-- \nfooter\n"].concat();
    let e = hop(&body_changed, &k2, "b.example", "<bob@b.example>", &["<c@c.example>"], T0, &dns).unwrap_err();
    assert!(e.contains("body changed"), "{e}");
    // ... and a verifier fails it.
    assert_eq!(check(&body_changed, "<ann@a.example>", &["<bob@b.example>"], T0, &dns).result, Dkim2Result::Fail);
    let subject_changed = String::from_utf8_lossy(&one).replace("Subject: hello", "Subject: [list] hello").into_bytes();
    let e = hop(&subject_changed, &k2, "b.example", "<bob@b.example>", &["<c@c.example>"], T0, &dns).unwrap_err();
    assert!(e.contains("header fields changed"), "{e}");
    // A chain that does not verify (another key published) is not continued.
    let other = zone(&[("sel._domainkey.a.example", &k2), ("sel._domainkey.b.example", &k2)]);
    let e = hop(&one, &k2, "b.example", "<bob@b.example>", &["<c@c.example>"], T0, &other).unwrap_err();
    assert!(e.contains("does not verify"), "{e}");
}

#[test]
fn recipe_json_round_trips() {
    let r = Recipe {
        headers: vec![
            ("dkim-status".into(), vec![]),
            ("subject".into(), vec![Step::Copy(1, 2), Step::Data(vec![b"a \"q\" \\ \x01".to_vec()])]),
        ],
        body: BodyRecipe::Steps(vec![Step::Data(vec![vec![0xff, b'a']]), Step::Copy(3, 4)]),
    };
    assert_eq!(Recipe::from_json(&r.to_json()), Ok(r));
    let lost = Recipe { headers: vec![], body: BodyRecipe::Lost };
    assert_eq!(lost.to_json(), b"{\"b\":null}");
    assert_eq!(Recipe::from_json(&lost.to_json()), Ok(lost));
}
