//! The private key loader (PEM, PKCS#1, PKCS#8, RSA and Ed25519): any file content is either
//! a usable key or a clean error whose text carries no key material.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qmail_dkim::dkim::key::{SigningKey, MAX_RSA_BITS, MIN_RSA_BITS};
use qmail_dkim::dkim::Algorithm;

fuzz_target!(|data: &[u8]| {
    for sha1 in [false, true] {
        match SigningKey::from_pem(data, sha1) {
            Ok(k) => {
                if k.key_type() == qmail_dkim::dkim::key::KeyType::Rsa {
                    assert!((MIN_RSA_BITS..=MAX_RSA_BITS).contains(&k.bits()), "{} bits", k.bits());
                }
                for alg in [Algorithm::RsaSha256, Algorithm::RsaSha1, Algorithm::Ed25519Sha256] {
                    if k.fits(alg) {
                        let _ = k.sign(alg, b"data");
                    }
                }
                let _ = k.public_key_dns();
            }
            Err(e) => {
                // One short line, and no base64 line of the file (key material) in it.
                assert!(e.len() < 600 && !e.contains('\n'), "{e}");
                // The one echo of the file is the label of its BEGIN line (at most 40
                // characters): not key material, whatever the fuzzer puts there.
                if e.starts_with("unsupported PEM type") {
                    continue;
                }
                let text = String::from_utf8_lossy(data);
                for line in text.lines().map(str::trim).filter(|l| {
                    l.len() >= 16 && l.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
                }) {
                    assert!(!e.contains(line), "key material in the diagnostic: {e}");
                }
            }
        }
    }
});
