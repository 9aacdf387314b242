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

pub(crate) fn verify_bytes(msg: &[u8], from: &str, rcpt: &[String], dns: &dyn TxtLookup, now: u64) -> Report {
    let (h, body) = split(msg);
    verify(&h, Body::Bytes(body), &Envelope { mail_from: from, rcpt_to: rcpt }, dns, now)
}

/// Vectors whose expected result we do not give, each with the reason.
const EXPLAINED: [(&str, Verdict, &str); 1] = [(
    "d2_08_mldsa44",
    Verdict::PermError,
    "pure ML-DSA-44 (k=mldsa44, which draft-ietf-dkim-dkim2-dns does not define yet) is not \
     implemented: an s= algorithm the verifier does not implement is a PERMERROR (§14.6)",
)];

/// mail-auth 0.15.1's DKIM2 vectors, each at its own time and envelope: every case agrees or is
/// in EXPLAINED.
#[test]
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
        eprintln!("{name}: {} ({}) want {want}", r.verdict.as_str(), r.reason);
        if r.verdict.as_str() == want {
            agree += 1;
        } else if let Some((_, v, _)) = EXPLAINED.iter().find(|(n, _, _)| *n == name) {
            assert_eq!(r.verdict, *v, "{name}: {}", r.reason);
            explained += 1;
        } else {
            wrong.push(format!("{name}: got {} ({}), want {want}", r.verdict.as_str(), r.reason));
        }
    }
    eprintln!("dkim2 vectors: {agree} agree, {explained} explained, {} differ", wrong.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(explained, EXPLAINED.len());
}
