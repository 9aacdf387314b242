//! The key record parser (RFC 6376 §3.6.1 tags, base64, the DER of RSA and Ed25519 public
//! keys), reached the way a verifier reaches it: a correctly signed message, and the fuzz
//! input as the one TXT record of its selector. No panic; and a pass only when the record
//! really carries the signing key (no forged pass from a malformed record).
#![no_main]

use base64::Engine;
use fuzz_support::{ed25519_key, key_record, params, rsa_key, sign_message};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::dkim::tags::{strip_ws, TagList};
use qmail_dkim::dkim::verify::{verify_message, Options, Outcome};
use qmail_dkim::dkim::{Algorithm, Canonicalization};
use qmail_dkim::dns::Fixed;
use qmail_dkim::message::Headers;
use std::sync::OnceLock;

struct Signed {
    msg: Vec<u8>,
    /// The public key bytes that must be inside p= for a pass.
    needle: Vec<u8>,
}

fn signed() -> &'static [Signed; 2] {
    static S: OnceLock<[Signed; 2]> = OnceLock::new();
    S.get_or_init(|| {
        let block = b"From: Joe <joe@example.com>\nTo: x@example.org\nSubject: key record\n";
        let body = b"Hello.\n";
        let h = Headers::parse(block.to_vec());
        let make = |alg, key: &'static qmail_dkim::dkim::key::SigningKey| {
            let p = params(alg, Canonicalization::RELAXED, &h);
            let msg = sign_message(block, body, &p, key);
            // Sanity: the real record verifies.
            let r = verify_message(&msg, &Fixed(key_record(key)), &Options::default(), 1_700_000_000);
            assert_eq!(r.overall(), Outcome::Success, "{:?}", r.results);
            let pk = key.public_key_dns();
            // RSA: the SPKI ends with the exponent; the modulus' last 64 bytes are a fine needle.
            let needle = if pk.len() > 64 { pk[pk.len() - 80..pk.len() - 5].to_vec() } else { pk };
            Signed { msg, needle }
        };
        [make(Algorithm::Ed25519Sha256, ed25519_key()), make(Algorithm::RsaSha256, rsa_key())]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, record)) = data.split_first() else { return };
    let s = &signed()[(which & 1) as usize];
    let r = verify_message(&s.msg, &Fixed(record.to_vec()), &Options::default(), 1_700_000_000);
    if r.overall() == Outcome::Success {
        let tl = TagList::parse_record(record).expect("a record that passes parses");
        let p = strip_ws(tl.get("p").expect("a record that passes has p="));
        let der = base64::engine::general_purpose::STANDARD.decode(p.as_bytes()).expect("p= base64");
        assert!(der.windows(s.needle.len()).any(|w| w == s.needle), "pass with a record that lacks the key");
    }
});
