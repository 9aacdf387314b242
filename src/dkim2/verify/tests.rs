use super::*;
use crate::dns::Zone;
use std::path::PathBuf;

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared").join(rel)
}

/// A zone from a `dns.json` of the form `{domain: {"sel._domainkey": [["txt", "record"]]}}`.
pub(crate) fn zone_from(path: &std::path::Path) -> Zone {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let mut z = Zone::new();
    for (domain, names) in v.as_object().unwrap() {
        for (name, records) in names.as_object().unwrap() {
            for r in records.as_array().unwrap() {
                let r = r.as_array().unwrap();
                assert_eq!(r[0].as_str(), Some("txt"));
                Zone::txt(&mut z, &format!("{name}.{domain}"), r[1].as_str().unwrap());
            }
        }
    }
    z
}

/// Header block and body of a message file.
pub(crate) fn split(msg: &[u8]) -> (Headers, &[u8]) {
    let (end, body) = crate::message::find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    (Headers::parse(msg[..end].to_vec()), &msg[body..])
}

pub(crate) fn verify_bytes(msg: &[u8], from: &str, rcpt: &[String], dns: &dyn TxtLookup, now: u64) -> Dkim2Output {
    let (h, body) = split(msg);
    verify(&h, Body::Bytes(body), &Envelope { mail_from: from, rcpt_to: rcpt }, dns, now)
}

/// Vectors whose expected result we do not give, each with the reason.
const EXPLAINED: [(&str, Dkim2Result, &str); 1] = [(
    "d2_08_mldsa44",
    Dkim2Result::PermError,
    "pure ML-DSA-44 (k=mldsa44, which draft-ietf-dkim-dkim2-dns does not define yet) is not \
     implemented: an s= algorithm the verifier does not implement is a PERMERROR (§14.6)",
)];

/// mail-auth 0.15.1's DKIM2 vectors, each at its own time and envelope: every case agrees or is
/// in EXPLAINED.
#[test]
#[ignore = "needs ../shared/peer-corpus/dkim2 beside the checkout (not part of the repository); .ci/run runs it when it is there"]
fn mail_auth_dkim2_vectors() {
    let dir = shared("peer-corpus/dkim2");
    let zone = zone_from(&dir.join("dns.json"));
    let cases: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let (mut agree, mut explained, mut wrong) = (0, 0, Vec::new());
    for c in cases.as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let msg = std::fs::read(dir.join("expected").join(c["file"].as_str().unwrap())).unwrap();
        let rcpt: Vec<String> =
            c["rcpt_to"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
        let r = verify_bytes(&msg, c["mail_from"].as_str().unwrap(), &rcpt, &zone, c["now"].as_u64().unwrap());
        let want = c["expected"].as_str().unwrap();
        eprintln!("{name}: {} ({}) want {want}", r.result.as_str(), r.reason);
        if r.result.as_str() == want {
            agree += 1;
        } else if let Some((_, v, _)) = EXPLAINED.iter().find(|(n, _, _)| *n == name) {
            assert_eq!(r.result, *v, "{name}: {}", r.reason);
            explained += 1;
        } else {
            wrong.push(format!("{name}: got {} ({}), want {want}", r.result.as_str(), r.reason));
        }
    }
    eprintln!("dkim2 vectors: {agree} agree, {explained} explained, {} differ", wrong.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(explained, EXPLAINED.len());
}

/// The working group's Perl implementation's two-hop chains (Mail::DKIM2 milter tests), for the
/// envelope of their second hop. Their hops are 497 (case 1) and 480 (cases 3, 4) days apart, so
/// at any time one of them breaks the 14-day rule of §14.3: our verifier applies it to every
/// signature of the chain, as mail-auth does, and fails them. They were made at -06, before
/// -07's rule that `From` be authentic for i=1 (§11, §14.8: theirs is fastmailteam.com, d= is
/// test1.dkim2.com), which fails them too. With both rules lifted, everything else (both
/// signatures, the hashes, the List-Id recipe, the envelope, custody) verifies.
#[test]
#[ignore = "needs ../shared/suites/dkim2 beside the checkout (not part of the repository); .ci/run runs it when it is there"]
fn perl_mail_dkim2_chains() {
    let dir = shared("suites/dkim2/vectors");
    let zone = zone_from(&dir.join("dns.json"));
    let rcpt = vec!["<recipient@test2.dkim2.com>".to_string()];
    for (file, hop2) in [
        ("milter-case1-unchanged-forward.eml", 1_784_377_001),
        ("milter-case3-modified-with-intermediate-mi.eml", 1_782_942_102),
        ("milter-case4-broken-mi-stripped.eml", 1_782_942_102),
    ] {
        let msg = std::fs::read(dir.join(file)).unwrap();
        let (h, body) = split(&msg);
        let env = Envelope { mail_from: "<forwarder@test2.dkim2.com>", rcpt_to: &rcpt };
        let at_hop2 = verify(&h, Body::Bytes(body), &env, &zone, hop2);
        eprintln!("{file}: at hop 2's time: {} ({})", at_hop2.result.as_str(), at_hop2.reason);
        assert_eq!(at_hop2.result, Dkim2Result::Fail, "{file}: {}", at_hop2.reason);
        assert!(at_hop2.reason.starts_with("i=1: t=1740000000 is more than 14 days old"), "{}", at_hop2.reason);
        let at_hop1 = verify(&h, Body::Bytes(body), &env, &zone, 1_740_000_000);
        assert_eq!(at_hop1.result, Dkim2Result::Fail, "{file}: {}", at_hop1.reason);
        assert!(at_hop1.reason.starts_with("i=2: t="), "{}", at_hop1.reason);
        let old = Rules { max_age: u64::MAX, ..Rules::DRAFT };
        let aged = verify_with(&h, Body::Bytes(body), &env, &zone, hop2, &old);
        assert_eq!(aged.result, Dkim2Result::Fail, "{file}: {}", aged.reason);
        assert_eq!(aged.reason, "i=1: From is not authentic for d=test1.dkim2.com");
        let lifted = Rules { max_age: u64::MAX, authentic_from: false };
        let lifted = verify_with(&h, Body::Bytes(body), &env, &zone, hop2, &lifted);
        eprintln!("{file}: age rule lifted: {} ({})", lifted.result.as_str(), lifted.reason);
        assert_eq!(lifted.result, Dkim2Result::Pass, "{file}: {}", lifted.reason);
        assert_eq!(lifted.chain, vec![(1, "test1.dkim2.com".to_string()), (2, "test2.dkim2.com".to_string())]);
        // A recipient the second hop did not sign for is a replay.
        let other = vec!["<someone@test2.dkim2.com>".to_string()];
        let env = Envelope { mail_from: "<forwarder@test2.dkim2.com>", rcpt_to: &other };
        let lifted = Rules { max_age: u64::MAX, authentic_from: false };
        assert_eq!(verify_with(&h, Body::Bytes(body), &env, &zone, hop2, &lifted).result, Dkim2Result::Fail);
    }
}

/// A two-hop chain whose second Message-Instance carries a body recipe of one copy step per
/// line (the most steps a body of n lines can have): checking it hashes the body, recreates
/// the older body and hashes that, all in time and memory linear in the message.
#[test]
fn chain_with_a_body_recipe_verifies_in_linear_time() {
    use crate::dkim2::hash::{body_digest, header_digest};
    use crate::dkim2::recipe::{BodyRecipe, Recipe, Step};
    use base64::Engine;
    let e = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let make = |n: usize| {
        let lines = (n / 8).max(1);
        let old: Vec<u8> = (0..lines).flat_map(|_| b"line\r\n".iter().copied()).collect();
        let new: Vec<u8> = [old.as_slice(), b"footer\r\n"].concat();
        let head = b"From: a@a.example\r\nSubject: s\r\n".to_vec();
        let h = Headers::parse(head.clone());
        let f: Vec<(&[u8], &[u8])> = h.fields.iter().map(|x| (h.name(x), h.value(x))).collect();
        let hh = e(&header_digest(&f, HashAlg::Sha256));
        let steps: Vec<Step> = (1..=lines as u32).map(|k| Step::Copy(k, k)).collect();
        let r = Recipe { headers: vec![], body: BodyRecipe::Steps(steps) };
        let mi2 = format!(
            "Message-Instance: m=2; h=sha256:{hh}:{}; r={}\r\n",
            e(&body_digest(&new, HashAlg::Sha256)),
            e(&r.to_json())
        );
        let mi1 = format!("Message-Instance: m=1; h=sha256:{hh}:{}\r\n", e(&body_digest(&old, HashAlg::Sha256)));
        let mf = |a: &str| e(a.as_bytes());
        let sig = |i: u32, m: u32, d: &str, from: &str, to: &str| {
            format!(
                "DKIM2-Signature: i={i}; m={m}; t=1000; d={d}; mf={}; rt={}; s=s:ed25519-sha256:QUJD\r\n",
                mf(from),
                mf(to)
            )
        };
        let block = [
            sig(2, 2, "b.example", "<x@b.example>", "<y@c.example>"),
            mi2,
            sig(1, 1, "a.example", "<a@a.example>", "<x@b.example>"),
            mi1,
        ]
        .concat();
        (Headers::parse([block.as_bytes(), &head].concat()), new)
    };
    let zone = Zone::new();
    let rcpt = vec!["<y@c.example>".to_string()];
    let (h, b) = make(1000);
    let r = verify(&h, Body::Bytes(&b), &Envelope { mail_from: "<x@b.example>", rcpt_to: &rcpt }, &zone, 1000);
    // Every hash matched and the recipe recreated the old body: only the keys are missing.
    assert_eq!(
        (r.result, r.reason.as_str()),
        (Dkim2Result::PermError, "i=1: s._domainkey.a.example: no such TXT record")
    );
    crate::linear::assert_linear("dkim2 chain with a body recipe", 8192, make, |(h, b)| {
        let env = Envelope { mail_from: "<x@b.example>", rcpt_to: &rcpt };
        std::hint::black_box(verify(h, Body::Bytes(b), &env, &zone, 1000));
    });
}
