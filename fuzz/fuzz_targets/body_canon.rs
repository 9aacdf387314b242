//! The streaming body canonicalizer (`BodyHasher`): for any body and any way of cutting it into
//! pieces, simple and relaxed, with and without `l=`, the hash and the canonical length equal
//! those of a plain reference canonicalizer run on the whole body.
#![no_main]

use fuzz_support::{reference_body, split, Cursor};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::dkim::canon::BodyHasher;
use qmail_dkim::dkim::{Canon, HashAlg};

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor(data);
    let sizes = c.piece().to_vec();
    let limit_byte = c.u16();
    let body = c.rest();
    for canon in [Canon::Simple, Canon::Relaxed] {
        let want = reference_body(canon, body);
        let limit = if limit_byte & 0x8000 != 0 { Some(u64::from(limit_byte & 0x7fff)) } else { None };
        let hashed = match limit {
            Some(l) => &want[..(l as usize).min(want.len())],
            None => &want[..],
        };
        let want_hash = ring::digest::digest(&ring::digest::SHA256, hashed);

        let mut whole = BodyHasher::new(canon, HashAlg::Sha256, limit);
        whole.update(body);
        let (h1, n1) = whole.finish();

        let mut pieces = BodyHasher::new(canon, HashAlg::Sha256, limit);
        for p in split(body, &sizes) {
            pieces.update(p);
        }
        let (h2, n2) = pieces.finish();

        assert_eq!(n1, want.len() as u64, "{canon:?}: canonical length");
        assert_eq!(h1, want_hash.as_ref(), "{canon:?}: hash of the whole body differs from the reference");
        assert_eq!((h2, n2), (h1, n1), "{canon:?}: the hash depends on the chunking");
    }
});
