use super::*;
use crate::dkim::key::{spki_from_pkcs1, SigningKey};
use crate::dkim::parse::qp_decode;
use crate::dkim::record::{decode_public_key, rsa_components};
use crate::dkim::sign::{self, SignParams};
use crate::dkim::Canonicalization;
use crate::dns::{Fixed, TxtAnswer, TxtLookup};
use base64::Engine;
use std::sync::OnceLock;

/// One TLV: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    crate::der::read(input).ok().map(|(t, rest)| (t.tag, t.value, rest))
}

/// The algorithm OID and key bits of a SubjectPublicKeyInfo.
fn spki(der_bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    crate::der::spki(der_bytes).map(|s| (s.algorithm, s.key))
}

/// RFC 8463 Appendix A: the Ed25519 test key, as OpenSSL's PKCS#8 PEM.
const ED_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
const ED_PUB: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

const NOW: u64 = 1_700_000_000;

/// A 2048-bit RSA key made once per test run with openssl.
fn rsa_pem() -> &'static [u8] {
    static K: OnceLock<Vec<u8>> = OnceLock::new();
    K.get_or_init(|| {
        let out = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
            .stderr(std::process::Stdio::null())
            .output()
            .expect("openssl");
        assert!(out.status.success());
        out.stdout
    })
}

fn b64e(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn rsa_record(extra: &str) -> String {
    let k = SigningKey::from_pem(rsa_pem(), false).unwrap();
    format!("v=DKIM1; k=rsa; {extra}p={}", b64e(&k.public_key_dns()))
}

fn ed_record(extra: &str) -> String {
    format!("v=DKIM1; k=ed25519; {extra}p={ED_PUB}")
}

/// One record for every name (like SELECTOR_DATA).
fn fixed(r: &str) -> Fixed {
    Fixed(r.as_bytes().to_vec())
}

struct Map(Vec<(String, TxtAnswer)>);
impl TxtLookup for Map {
    fn txt(&self, name: &str) -> TxtAnswer {
        self.0.iter().find(|(n, _)| n == name).map_or(TxtAnswer::NotFound, |(_, a)| a.clone())
    }
}

const MSG: &[u8] = b"From: Joe <joe@example.com>\nTo: sue@example.net\nSubject: hello\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nHi.\n\nWe lost the game.  Are you hungry yet?\n";

fn params(alg: Algorithm) -> SignParams {
    SignParams {
        algorithm: alg,
        canon: Canonicalization::RELAXED,
        domain: "example.com".into(),
        selector: "sel".into(),
        identity: None,
        timestamp: Some(NOW),
        expire: Some(NOW + 1000),
        body_length: false,
        query_tag: false,
        copy_headers: false,
        headers: vec!["from".into(), "to".into(), "subject".into(), "date".into(), "from".into()],
    }
}

fn sign_with(msg: &[u8], pem: &[u8], p: &SignParams) -> Vec<u8> {
    let need_sha1 = p.algorithm == Algorithm::RsaSha1;
    let key = SigningKey::from_pem(pem, need_sha1).unwrap();
    let (end, body) = find_header_end(msg, 0).unwrap();
    let headers = Headers::parse(msg[..end].to_vec());
    let mut h = BodyHasher::new(p.canon.body, p.algorithm.hash(), None);
    h.update(&msg[body..]);
    let (hash, len) = h.finish();
    let field = sign::sign(&headers, p, &hash, len, &key).unwrap();
    [field, msg.to_vec()].concat()
}

fn signed(alg: Algorithm) -> Vec<u8> {
    let pem: &[u8] = if alg == Algorithm::Ed25519Sha256 { ED_PEM.as_bytes() } else { rsa_pem() };
    sign_with(MSG, pem, &params(alg))
}

fn record_for(alg: Algorithm) -> String {
    if alg == Algorithm::Ed25519Sha256 {
        ed_record("")
    } else {
        rsa_record("")
    }
}

fn one(msg: &[u8], dns: &dyn TxtLookup, opts: &Options) -> Outcome {
    let r = verify_message(msg, dns, opts, NOW);
    assert_eq!(r.results.len(), 1, "{r:?}");
    r.results[0].outcome
}

fn letter(msg: &[u8], record: &str) -> char {
    one(msg, &fixed(record), &Options::default()).letter()
}

/// A hand-made signature field (for the checks made before any cryptography).
fn with_sig(tags: &str) -> Vec<u8> {
    [format!("DKIM-Signature: {tags}\n").into_bytes(), MSG.to_vec()].concat()
}

const OK_TAGS: &str = "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA";

#[test]
fn table_is_consistent() {
    for (i, o) in Outcome::ALL.iter().enumerate() {
        assert_eq!(o.letter(), (b'A' + i as u8) as char);
        assert_eq!(Outcome::from_letter(o.letter()), Some(*o));
        assert_eq!(Outcome::from_letter(o.letter().to_ascii_lowercase()), Some(*o));
        assert!(!o.status_text().is_empty());
    }
    assert_eq!(Outcome::from_letter('Z'), None);
    assert_eq!(Outcome::from_letter('1'), None);
    assert_eq!(Outcome::Success.status_text(), "good");
    assert_eq!(Outcome::BodyHashMismatch.code(), "7.7");
    assert_eq!(Outcome::Incompatible.code(), "7.6");
    assert_eq!(Outcome::DnsTempFailure.ar_result(), "temperror");
    assert_eq!(Outcome::Neutral.ar_result(), "policy");
    assert_eq!(Outcome::NoSignatures.ar_result(), "none");
}

#[test]
fn rfc8463_example() {
    let msg = b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n d=football.example.com; i=@football.example.com;\r\n q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n subject : date : message-id : from : subject : date;\r\n bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n d=football.example.com; i=@football.example.com;\r\n q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n date : message-id : from : subject : date;\r\n bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\nFrom: Joe SixPack <joe@football.example.com>\r\nTo: Suzie Q <suzie@shopping.example.net>\r\nSubject: Is dinner ready?\r\nDate: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\nMessage-ID: <20030712040037.46341.5F8J@football.example.com>\r\n\r\nHi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n";
    let dns = Map(vec![
        (
            "brisbane._domainkey.football.example.com".into(),
            TxtAnswer::Records(vec![b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_vec()]),
        ),
        (
            "test._domainkey.football.example.com".into(),
            TxtAnswer::Records(vec![b"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB".to_vec()]),
        ),
    ]);
    let r = verify_message(msg, &dns, &Options::default(), NOW);
    let got: Vec<Outcome> = r.results.iter().map(|r| r.outcome).collect();
    assert_eq!(got, vec![Outcome::Success, Outcome::Success], "{r:?}");
    assert_eq!(r.results[0].domain.as_deref(), Some("football.example.com"));
    assert_eq!(r.results[0].selector.as_deref(), Some("brisbane"));
    assert_eq!(r.results[0].identity.as_deref(), Some("@football.example.com"));
    assert_eq!(r.results[0].b_prefix.as_deref(), Some("/gCrinpc"));
    // The same message with LF line ends (as qmail holds it).
    let lf: Vec<u8> = msg.iter().copied().filter(|&c| c != b'\r').collect();
    let r = verify_message(&lf, &dns, &Options::default(), NOW);
    assert!(r.results.iter().all(|r| r.outcome == Outcome::Success), "{r:?}");
    // The body changed: U for both.
    let bad = [&lf[..], b"P.S.\n"].concat();
    let r = verify_message(&bad, &dns, &Options::default(), NOW);
    assert!(r.results.iter().all(|r| r.outcome == Outcome::BodyHashMismatch), "{r:?}");
}

#[test]
fn a_pass_for_each_algorithm_and_canonicalization() {
    for alg in [Algorithm::RsaSha256, Algorithm::Ed25519Sha256] {
        for c in ["simple/simple", "relaxed/relaxed", "relaxed/simple", "simple/relaxed"] {
            let mut p = params(alg);
            p.canon = Canonicalization::parse(c).unwrap();
            let pem: &[u8] = if alg == Algorithm::Ed25519Sha256 { ED_PEM.as_bytes() } else { rsa_pem() };
            let m = sign_with(MSG, pem, &p);
            assert_eq!(letter(&m, &record_for(alg)), 'A', "{alg:?} {c}");
        }
    }
}

#[test]
fn streaming_in_pieces_matches() {
    let m = signed(Algorithm::RsaSha256);
    let (end, body) = find_header_end(&m, 0).unwrap();
    let headers = Headers::parse(m[..end].to_vec());
    let mut v = Verifier::new(&headers, &Options::default(), NOW);
    for b in m[body..].chunks(3) {
        v.body(b);
    }
    let r = v.finish(&headers, &fixed(&record_for(Algorithm::RsaSha256)));
    assert_eq!(r.overall(), Outcome::Success);
}

#[test]
fn d_for_sha1_unless_allowed() {
    let m = signed(Algorithm::RsaSha1);
    assert_eq!(letter(&m, &rsa_record("")), 'D');
    let opts = Options { allow_sha1: true, ..Options::default() };
    assert_eq!(one(&m, &fixed(&rsa_record("")), &opts), Outcome::Success);
    // Key h= without sha1: V.
    assert_eq!(letter(&m, &rsa_record("h=sha256; ")), 'V');
}

#[test]
fn e_for_partial_body_unless_honored() {
    let mut p = params(Algorithm::Ed25519Sha256);
    p.body_length = true;
    let m = sign_with(MSG, ED_PEM.as_bytes(), &p);
    assert_eq!(letter(&m, &ed_record("")), 'A');
    let longer = [&m[..], b"Appended by a list.\n"].concat();
    assert_eq!(letter(&longer, &ed_record("")), 'E');
    let opts = Options { honor_body_length: true, ..Options::default() };
    assert_eq!(one(&longer, &fixed(&ed_record("")), &opts), Outcome::Success);
    // A body shorter than l=: U.
    let shorter = &m[..m.len() - 10];
    assert_eq!(letter(shorter, &ed_record("")), 'U');
}

#[test]
fn h_syntax() {
    let ok = with_sig(OK_TAGS);
    // The hand-made signature is syntactically fine: it fails only at the body hash.
    assert_eq!(letter(&ok, &rsa_record("")), 'U');
    for bad in [
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA; v=1",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; b=AAAA",
        "a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA",
        "v=1; a=rsa-md5; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=to:subject; bh=AAAA; b=AAAA",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=!!!!",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA; c=weird",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA; q=http",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA; l=12a",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA; t=5; x=4",
        "v=1; a=rsa-sha256; d=exa mple.com; s=sel; h=from:subject; bh=AAAA; b=AAAA",
        "v=1; a=rsa-sha256; d=; s=sel; h=from:subject; bh=AAAA; b=AAAA",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from::subject; bh=AAAA; b=AAAA",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA; junk",
        // Subject present in the message but not signed.
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; bh=AAAA; b=AAAA",
    ] {
        assert_eq!(letter(&with_sig(bad), &rsa_record("")), 'H', "{bad}");
    }
    // UNSIGNED_SUBJECT lifts the Subject requirement.
    let opts = Options { allow_unsigned_subject: true, ..Options::default() };
    let m = with_sig("v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; bh=AAAA; b=AAAA");
    assert_eq!(one(&m, &fixed(&rsa_record("")), &opts), Outcome::BodyHashMismatch);
}

#[test]
fn subject_requirement_only_when_present() {
    let msg = b"From: a@example.com\n\nbody\n";
    let mut p = params(Algorithm::Ed25519Sha256);
    p.headers = vec!["from".into()];
    let m = sign_with(msg, ED_PEM.as_bytes(), &p);
    assert_eq!(letter(&m, &ed_record("")), 'A');
}

#[test]
fn w_version() {
    assert_eq!(letter(&with_sig(&OK_TAGS.replace("v=1", "v=2")), &rsa_record("")), 'W');
}

#[test]
fn y_identity() {
    for i in ["joe@other.com", "joe@badexample.com", "no-at-sign"] {
        let t = format!("{OK_TAGS}; i={i}");
        assert_eq!(letter(&with_sig(&t), &rsa_record("")), 'Y', "{i}");
    }
    // A subdomain is fine; t=s in the key forbids it.
    let mut p = params(Algorithm::Ed25519Sha256);
    p.identity = Some("joe@mail.example.com".into());
    let m = sign_with(MSG, ED_PEM.as_bytes(), &p);
    assert_eq!(letter(&m, &ed_record("")), 'A');
    assert_eq!(letter(&m, &ed_record("t=s; ")), 'Y');
    assert_eq!(letter(&m, &ed_record("t=y:s; ")), 'Y');
}

#[test]
fn k_expired() {
    let t = format!("{OK_TAGS}; x={}", NOW - 1);
    assert_eq!(letter(&with_sig(&t), &rsa_record("")), 'K');
    let t = format!("{OK_TAGS}; x={}", NOW);
    assert_eq!(letter(&with_sig(&t), &rsa_record("")), 'U');
}

#[test]
fn o_name_too_long() {
    let long = format!("{}.example.com", vec!["a".repeat(60); 4].join("."));
    let t = OK_TAGS.replace("d=example.com", &format!("d={long}"));
    assert_eq!(letter(&with_sig(&t), &rsa_record("")), 'O');
    let t = OK_TAGS.replace("s=sel", &format!("s={}", "s".repeat(64)));
    assert_eq!(letter(&with_sig(&t), &rsa_record("")), 'O');
}

#[test]
fn dns_classes() {
    let m = signed(Algorithm::Ed25519Sha256);
    let name = "sel._domainkey.example.com".to_string();
    let with = |a: TxtAnswer| one(&m, &Map(vec![(name.clone(), a)]), &Options::default());
    assert_eq!(with(TxtAnswer::TempFail("timeout".into())), Outcome::DnsTempFailure);
    assert_eq!(with(TxtAnswer::NotFound), Outcome::DnsPermFailure);
    assert_eq!(with(TxtAnswer::BadName), Outcome::DomainNameTooLong);
    assert_eq!(with(TxtAnswer::Records(vec![])), Outcome::SelectorInvalid);
    let rec = ed_record("").into_bytes();
    assert_eq!(with(TxtAnswer::Records(vec![rec.clone(), rec.clone()])), Outcome::SelectorInvalid);
    assert_eq!(with(TxtAnswer::Records(vec![rec])), Outcome::Success);
}

#[test]
fn key_records() {
    let ed = signed(Algorithm::Ed25519Sha256);
    let rsa = signed(Algorithm::RsaSha256);
    // L: syntax, v=, k=, s=, no p=.
    assert_eq!(letter(&ed, "v=DKIM1; k=ed25519; p"), 'L');
    assert_eq!(letter(&ed, "v=DKIM2; k=ed25519; p=x"), 'L');
    assert_eq!(letter(&ed, &format!("k=ed25519; v=DKIM1; p={ED_PUB}")), 'L');
    assert_eq!(letter(&ed, "v=DKIM1; k=dsa; p=AAAA"), 'L');
    assert_eq!(letter(&ed, &ed_record("s=web; ")), 'L');
    assert_eq!(letter(&ed, &ed_record("s=web:email; ")), 'A');
    assert_eq!(letter(&ed, "v=DKIM1; k=ed25519"), 'L');
    assert_eq!(letter(&ed, "\u{0}\u{1}garbage"), 'L');
    // N: revoked.
    assert_eq!(letter(&ed, "v=DKIM1; k=ed25519; p="), 'N');
    assert_eq!(letter(&rsa, "v=DKIM1; p= "), 'N');
    // V: k= of the other family, h= without the hash.
    assert_eq!(letter(&ed, &rsa_record("")), 'V');
    assert_eq!(letter(&rsa, &ed_record("")), 'V');
    assert_eq!(letter(&rsa, &rsa_record("h=sha1; ")), 'V');
    assert_eq!(letter(&rsa, &rsa_record("h=sha1:sha256; ")), 'A');
    // R: not a key, wrong size.
    assert_eq!(letter(&ed, "v=DKIM1; k=ed25519; p=AAAA"), 'R');
    assert_eq!(letter(&ed, "v=DKIM1; k=ed25519; p=!!"), 'R');
    assert_eq!(letter(&rsa, "v=DKIM1; k=rsa; p=AAAAAAAA"), 'R');
    assert_eq!(letter(&rsa, &format!("v=DKIM1; k=rsa; p={ED_PUB}")), 'R');
    let small = fake_rsa_spki(512);
    assert_eq!(letter(&rsa, &format!("v=DKIM1; p={}", b64e(&small))), 'R');
    let big = fake_rsa_spki(8200);
    assert_eq!(letter(&rsa, &format!("v=DKIM1; p={}", b64e(&big))), 'R');
    // A key of the right size that is not the signer's: I.
    let other = fake_rsa_spki(2048);
    assert_eq!(letter(&rsa, &format!("v=DKIM1; p={}", b64e(&other))), 'I');
    // No v=, no k=: rsa by default.
    let k = SigningKey::from_pem(rsa_pem(), false).unwrap();
    assert_eq!(letter(&rsa, &format!("p={}", b64e(&k.public_key_dns()))), 'A');
    // A bare RSAPublicKey (no SubjectPublicKeyInfo) is accepted, as other verifiers do.
    let spki = k.public_key_dns();
    let (_, inner) = spki_parts(&spki);
    assert_eq!(letter(&rsa, &format!("p={}", b64e(&inner))), 'A');
}

/// RFC 8463 publishes the raw 32 bytes; the signer's own key in a SubjectPublicKeyInfo is a bad
/// key (R), as Mail::DKIM and dkimpy say, and that is found before the body is looked at.
#[test]
fn ed25519_key_record_in_spki_form_is_bad_key() {
    let ed = signed(Algorithm::Ed25519Sha256);
    let raw = base64::engine::general_purpose::STANDARD.decode(ED_PUB).unwrap();
    let wrapped = [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], &raw].concat();
    assert_eq!(letter(&ed, &format!("k=ed25519; p={}", b64e(&wrapped))), 'R');
    assert_eq!(letter(&ed, &format!("k=ed25519; p={}", b64e(&raw))), 'A');
    // The body no longer matches bh=, yet the key is what is reported.
    let mut tampered = ed.clone();
    tampered.extend_from_slice(b"tampered\n");
    assert_eq!(letter(&tampered, &format!("k=ed25519; p={}", b64e(&wrapped))), 'R');
    assert_eq!(letter(&tampered, &format!("k=ed25519; p={}", b64e(&raw))), 'U');
    let why = decode_public_key(crate::dkim::key::KeyType::Ed25519, &wrapped).unwrap_err();
    assert!(why.contains("SubjectPublicKeyInfo"), "{why}");
}

fn spki_parts(d: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (oid, key) = spki(d).unwrap();
    (oid.to_vec(), key.to_vec())
}

/// A SubjectPublicKeyInfo with a modulus of `bits` bits (not a real key).
fn fake_rsa_spki(bits: usize) -> Vec<u8> {
    let bytes = bits.div_ceil(8);
    let mut n = vec![0xa5u8; bytes];
    n[0] = 0x80 >> ((8 - bits % 8) % 8);
    n[0] |= 1;
    n[bytes - 1] |= 1;
    let mut int_n = vec![0u8];
    int_n.extend_from_slice(&n);
    let mut seq = Vec::new();
    tlv(0x02, &int_n, &mut seq);
    tlv(0x02, &[0x01, 0x00, 0x01], &mut seq);
    let mut pk = Vec::new();
    tlv(0x30, &seq, &mut pk);
    spki_from_pkcs1(&pk)
}

fn tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
}

#[test]
fn m_granularity() {
    let mut p = params(Algorithm::Ed25519Sha256);
    p.identity = Some("joe@example.com".into());
    let m = sign_with(MSG, ED_PEM.as_bytes(), &p);
    assert_eq!(letter(&m, &ed_record("g=joe; ")), 'A');
    assert_eq!(letter(&m, &ed_record("g=j*; ")), 'A');
    assert_eq!(letter(&m, &ed_record("g=*; ")), 'A');
    assert_eq!(letter(&m, &ed_record("g=sue; ")), 'M');
    assert_eq!(letter(&m, &ed_record("g=; ")), 'M');
    // Without i=, the local part is empty.
    let m = signed(Algorithm::Ed25519Sha256);
    assert_eq!(letter(&m, &ed_record("g=joe; ")), 'M');
}

/// A key record `g=**********b` against a 40-character local part pinned a core for hours with
/// the old backtracking glob, before the signature was even checked.
#[test]
fn g_glob_with_many_stars_is_linear() {
    let mut p = params(Algorithm::Ed25519Sha256);
    let local = "a".repeat(40);
    p.identity = Some(format!("{local}@example.com"));
    let m = sign_with(MSG, ED_PEM.as_bytes(), &p);
    let stars = "*".repeat(2000);
    assert_eq!(letter(&m, &ed_record(&format!("g={stars}b; "))), 'M');
    assert_eq!(letter(&m, &ed_record(&format!("g={stars}a{stars}; "))), 'A');
    // `?` is not a wildcard in g= (RFC 4871 has only `*`).
    assert_eq!(letter(&m, &ed_record(&format!("g={}; ", "?".repeat(40)))), 'M');
}

#[test]
fn u_i_j() {
    let m = signed(Algorithm::RsaSha256);
    let body_changed = [&m[..], b"more\n"].concat();
    assert_eq!(letter(&body_changed, &rsa_record("")), 'U');
    let s = String::from_utf8(m.clone()).unwrap();
    let header_changed = s.replace("Subject: hello", "Subject: HELLO").into_bytes();
    assert_eq!(letter(&header_changed, &rsa_record("")), 'I');
    assert_eq!(letter(&header_changed, &rsa_record("t=y; ")), 'J');
    let e = signed(Algorithm::Ed25519Sha256);
    let s = String::from_utf8(e).unwrap();
    let header_changed = s.replace("To: sue@", "To: bob@").into_bytes();
    assert_eq!(letter(&header_changed, &ed_record("")), 'I');
    // Relaxed: whitespace changes in headers do not matter.
    let ws = s.replace("Subject: hello", "Subject:   hello  ").into_bytes();
    assert_eq!(letter(&ws, &ed_record("")), 'A');
}

#[test]
fn x_unsigned_from() {
    let mut p = params(Algorithm::Ed25519Sha256);
    p.headers = vec!["from".into(), "to".into(), "subject".into()];
    let m = sign_with(MSG, ED_PEM.as_bytes(), &p);
    // A second From added above the signed one (after the signature field).
    let s = String::from_utf8(m).unwrap();
    let at = s.find("From:").unwrap();
    let forged = format!("{}From: evil@attacker.example\n{}", &s[..at], &s[at..]).into_bytes();
    // The signature covers the bottom-most From, so it still verifies...
    assert_eq!(letter(&forged, &ed_record("")), 'A');
    // ...but with UNSIGNED_FROM the uncovered From is X.
    let opts = Options { check_all_from: true, ..Options::default() };
    assert_eq!(one(&forged, &fixed(&ed_record("")), &opts), Outcome::UnsignedFrom);
    // Oversigning (our default h= lists from twice) prevents it: the signature breaks instead.
    let m2 = signed(Algorithm::Ed25519Sha256);
    let s = String::from_utf8(m2).unwrap();
    let at = s.find("From:").unwrap();
    let forged = format!("{}From: evil@attacker.example\n{}", &s[..at], &s[at..]).into_bytes();
    assert_eq!(one(&forged, &fixed(&ed_record("")), &opts), Outcome::SignatureBad);
}

#[test]
fn overall_and_limit() {
    let ok = signed(Algorithm::Ed25519Sha256);
    let bad = with_sig(OK_TAGS);
    // A failing signature above a passing one: A.
    let both = [b"DKIM-Signature: v=2; a=x\n".to_vec(), ok.clone()].concat();
    let r = verify_message(&both, &fixed(&ed_record("")), &Options::default(), NOW);
    assert_eq!(r.results.iter().map(|r| r.outcome.letter()).collect::<String>(), "WA");
    assert_eq!(r.overall(), Outcome::Success);
    // Only failures: the first.
    let two_bad = [b"DKIM-Signature: v=2; a=x\n".to_vec(), bad.clone()].concat();
    let r = verify_message(&two_bad, &fixed(&ed_record("")), &Options::default(), NOW);
    assert_eq!(r.overall(), Outcome::Incompatible);
    // None: S.
    let r = verify_message(MSG, &fixed(""), &Options::default(), NOW);
    assert_eq!((r.results.len(), r.overall()), (0, Outcome::NoSignatures));
    // The limit: the first MAX_SIGNATURES are evaluated, the rest ignored (a pass below them
    // does not count).
    let mut many = Vec::new();
    for _ in 0..MAX_SIGNATURES {
        many.extend_from_slice(b"DKIM-Signature: v=2\n");
    }
    many.extend_from_slice(&ok);
    let r = verify_message(&many, &fixed(&ed_record("")), &Options::default(), NOW);
    assert_eq!((r.results.len(), r.ignored, r.overall()), (MAX_SIGNATURES, 1, Outcome::Incompatible));
}

#[test]
fn one_query_per_key_name() {
    use std::cell::Cell;
    struct Count(Cell<usize>, String);
    impl TxtLookup for Count {
        fn txt(&self, _: &str) -> TxtAnswer {
            self.0.set(self.0.get() + 1);
            TxtAnswer::Records(vec![self.1.clone().into_bytes()])
        }
    }
    let ok = signed(Algorithm::Ed25519Sha256);
    let field_end = String::from_utf8_lossy(&ok).find("\nFrom:").unwrap() + 1;
    let twice = [&ok[..field_end], &ok[..]].concat();
    let c = Count(Cell::new(0), ed_record(""));
    let r = verify_message(&twice, &c, &Options::default(), NOW);
    assert_eq!(r.results.len(), 1 + 1, "{r:?}");
    assert_eq!(c.0.get(), 1);
}

#[test]
fn qp_and_der_helpers() {
    assert_eq!(qp_decode("joe=40example.com"), "joe@example.com");
    assert_eq!(qp_decode("a=4"), "a=4");
    assert_eq!(qp_decode("a=zz"), "a=zz");
    assert!(der(&[0x30]).is_none());
    assert!(der(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
    assert!(der(&[0x30, 0x05, 1]).is_none());
    assert!(rsa_components(&[]).is_none());
}

#[test]
fn huge_h_list_is_bounded() {
    use crate::dkim::tags::{MAX_H_NAMES, MAX_TAGS};
    // MAX_H_NAMES names are a signature (it fails only at the body hash); one more is H.
    let h = |n: usize| format!("from:subject{}", ":to".repeat(n - 2));
    let sig = |h: &str| format!("v=1; a=rsa-sha256; d=example.com; s=sel; h={h}; bh=AAAA; b=AAAA");
    assert_eq!(letter(&with_sig(&sig(&h(MAX_H_NAMES))), &rsa_record("")), 'U');
    assert_eq!(letter(&with_sig(&sig(&h(MAX_H_NAMES + 1))), &rsa_record("")), 'H');
    // 4 MiB of empty names: refused after MAX_H_NAMES of them, nothing of the rest kept.
    assert_eq!(letter(&with_sig(&sig(&format!("from:subject{}", ":".repeat(4 << 20)))), &rsa_record("")), 'H');
    // Too many tags: a signature is H, a key record L (unknown tags are otherwise ignored).
    let extra = |n: usize| (0..n).map(|i| format!("x{i}=; ")).collect::<String>();
    assert_eq!(letter(&with_sig(&format!("{}{OK_TAGS}", extra(MAX_TAGS - 7))), &rsa_record("")), 'U');
    assert_eq!(letter(&with_sig(&format!("{}{OK_TAGS}", extra(MAX_TAGS - 6))), &rsa_record("")), 'H');
    let rsa = signed(Algorithm::RsaSha256);
    assert_eq!(letter(&rsa, &rsa_record(&extra(MAX_TAGS - 3))), 'A');
    assert_eq!(letter(&rsa, &rsa_record(&extra(MAX_TAGS - 2))), 'L');
    // Long q=, s= and t= lists are walked, not collected.
    assert_eq!(letter(&rsa, &rsa_record(&format!("t={}y; ", "x:".repeat(1 << 20)))), 'A');
}

/// RFC 6376 §3.2: no empty tag-spec in a signature's tag-list (`s=sel;;`): H (permerror), as
/// dkimpy says. A key record's stray `;` is read (Mail::DKIM reads it; dkimpy does not).
#[test]
fn empty_tag_spec_in_a_signature_is_a_syntax_error() {
    for bad in [
        "v=1; a=rsa-sha256; d=example.com; s=sel;; h=from:subject; bh=AAAA; b=AAAA",
        "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA;;",
        ";v=1; a=rsa-sha256; d=example.com; s=sel; h=from:subject; bh=AAAA; b=AAAA",
    ] {
        assert_eq!(letter(&with_sig(bad), &rsa_record("")), 'H', "{bad}");
    }
    assert_eq!(letter(&with_sig(&format!("{OK_TAGS};")), &rsa_record("")), 'U');
    let m = signed(Algorithm::RsaSha256);
    assert!(letter(&m, &rsa_record("")) != 'H');
    assert_eq!(letter(&m, &rsa_record("")), letter(&m, &rsa_record("").replacen("; ", ";; ", 1)));
}
