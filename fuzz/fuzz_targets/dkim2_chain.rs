//! DKIM2 chain verification on arbitrary input: the lines before a `--` line are the zone
//! (`fuzz_support::Zone`) and settings (`from <path>`, `rcpt <path>`, `now <seconds>`), the
//! rest is the message, verified by `dkim2::verify::verify` as bytes and again with only its
//! body hashes. No panic; at most 50 × 8 key questions; the result is the same both ways unless
//! a body recipe needed the bytes; a pass lists the chain 1..N.
#![no_main]

use fuzz_support::{setting, zone_and_message};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::dkim::HashAlg;
use qmail_dkim::dkim2::hash::body_digest;
use qmail_dkim::dkim2::parse::MAX_SIGNATURE_VALUES;
use qmail_dkim::dkim2::verify::{verify, Body, Envelope};
use qmail_dkim::dkim2::Dkim2Result;
use qmail_dkim::dkim2::MAX_CHAIN;
use qmail_dkim::message::{find_header_end, Headers};

fuzz_target!(|data: &[u8]| {
    let (zone, other, msg) = zone_and_message(data);
    let text = |w| setting(&other, w).map(|v| String::from_utf8_lossy(v).into_owned());
    let from = text("from").unwrap_or_else(|| "<>".into());
    let rcpt: Vec<String> = other
        .iter()
        .filter_map(|l| l.strip_prefix(b"rcpt "))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let now = text("now").and_then(|n| n.parse().ok()).unwrap_or(1_740_002_100);
    let env = Envelope { mail_from: &from, rcpt_to: &rcpt };

    let (end, start) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    let headers = Headers::parse(msg[..end].to_vec());
    let body = &msg[start..];
    let r = verify(&headers, Body::Bytes(body), &env, &zone, now);
    assert!(zone.asked.get() <= MAX_CHAIN * MAX_SIGNATURE_VALUES, "{} key questions", zone.asked.get());
    if r.result == Dkim2Result::Pass {
        assert!((1..).zip(&r.chain).all(|(k, (i, _))| k == *i));
    }
    let digests =
        Body::Digests { sha256: body_digest(body, HashAlg::Sha256), sha512: body_digest(body, HashAlg::Sha512) };
    let (zone2, _, _) = zone_and_message(data);
    let again = verify(&headers, digests, &env, &zone2, now);
    if !again.reason.contains("was not kept") {
        assert_eq!(r.result, again.result, "{} / {}", r.reason, again.reason);
    }
});
