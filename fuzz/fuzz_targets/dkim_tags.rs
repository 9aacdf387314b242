//! The `tag=value` list parser of DKIM-Signature fields (and key records, DomainKeys): no
//! panic; every accepted list has valid, distinct names and trimmed values; writing the list
//! back out and parsing it again gives the same list. Then the same bytes as a DKIM-Signature
//! field go through the whole verifier (tag checks, canonicalization) with a fixed key record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qmail_dkim::dkim::tags::{dkim_qp_encode, strip_ws, TagList};
use qmail_dkim::dkim::verify::{verify_message, Options};
use qmail_dkim::dns::Fixed;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = TagList::parse(data) {
        let mut names: Vec<&str> = Vec::new();
        let mut text = String::new();
        for (n, v) in &t.tags {
            assert!(n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()), "{n:?}");
            assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{n:?}");
            assert!(!names.contains(&n.as_str()), "duplicate {n}");
            names.push(n);
            assert!(!v.contains(';'));
            assert_eq!(v.trim_matches([' ', '\t', '\r', '\n']), v);
            assert_eq!(t.get(n), Some(v.as_str()));
            let _ = strip_ws(v);
            text.push_str(&format!("{n}={v};"));
        }
        let again = TagList::parse(text.as_bytes());
        assert_eq!(again.as_ref(), Ok(&t), "re-parse of {text:?}");
    }
    let qp = dkim_qp_encode(data);
    assert!(qp.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b';' && c != b'|'));

    // As a signature field of a small message.
    let mut msg = b"DKIM-Signature:".to_vec();
    msg.extend_from_slice(data);
    if !msg.ends_with(b"\n") {
        msg.push(b'\n');
    }
    msg.extend_from_slice(b"From: a@example.com\nSubject: s\n\nbody\n");
    let dns = Fixed(b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_vec());
    let r = verify_message(&msg, &dns, &Options::default(), 1_700_000_000);
    let _ = r.overall();
});
