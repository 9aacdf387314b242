//! The hashes of a message state (§6) and the data a signature signs (§12.8), on the DKIM
//! canonicalizers: relaxed header fields, the simple body.

use crate::dkim::canon::{relaxed_header, BodyHasher};
use crate::dkim::{Canon, HashAlg};

/// A header field as (name, value): the value after the colon with its line ends.
pub type Field<'a> = (&'a [u8], &'a [u8]);

/// Fields that are not part of a message state (§4): trace and transient fields, the
/// authentication fields of every method, DKIM2's own, and every `X-` field.
pub(crate) fn is_excluded(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 16] = [
        b"apparently-to",
        b"arc-authentication-results",
        b"arc-message-signature",
        b"arc-seal",
        b"authentication-results",
        b"delivered-to",
        b"dkim-signature",
        b"dkim2-signature",
        b"dl-expansion-history",
        b"message-instance",
        b"original-recipient",
        b"received",
        b"return-path",
        b"sio-label-history",
        b"x400-received",
        b"x400-trace",
    ];
    let name = name.trim_ascii();
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
        || name.len() >= 2 && name[..2].eq_ignore_ascii_case(b"x-")
        || name.len() >= 9 && name[..9].eq_ignore_ascii_case(b"received-")
}

/// The fields a state hash covers, in hash order: by name (case-insensitive, stable), and
/// within a name bottom-most first.
pub(crate) fn hashed_order<'a>(fields: &[Field<'a>]) -> Vec<Field<'a>> {
    let mut v: Vec<Field<'a>> = fields.iter().rev().filter(|(n, _)| !is_excluded(n)).copied().collect();
    v.sort_by(|(a, _), (b, _)| {
        let (a, b) = (a.trim_ascii(), b.trim_ascii());
        a.iter().map(u8::to_ascii_lowercase).cmp(b.iter().map(u8::to_ascii_lowercase))
    });
    v
}

/// The header hash of a state (§6.2): the relaxed canonical form of [`hashed_order`].
pub fn header_digest(fields: &[Field<'_>], alg: HashAlg) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(alg.ring());
    let mut buf = Vec::with_capacity(1024);
    for (n, v) in hashed_order(fields) {
        buf.clear();
        relaxed_header(n, v, &mut buf);
        ctx.update(&buf);
    }
    ctx.finish().as_ref().to_vec()
}

/// The body hash of a state (§6.1): the simple canonical body.
pub fn body_digest(body: &[u8], alg: HashAlg) -> Vec<u8> {
    let mut h = BodyHasher::new(Canon::Simple, alg, None);
    h.update(body);
    h.finish().0
}

/// One field of the signed data: lowercase name, `:`, the value with all whitespace removed,
/// CRLF (§12.8).
pub(crate) fn signed_field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.extend(name.iter().filter(|c| !c.is_ascii_whitespace()).map(u8::to_ascii_lowercase));
    out.push(b':');
    out.extend(value.iter().filter(|c| !c.is_ascii_whitespace()));
    out.extend_from_slice(b"\r\n");
}

/// The signature's own field in the signed data: as [`signed_field`], with the signature of
/// every `s=` entry removed (`selector:algorithm:` stays). One pass.
pub fn signed_self(value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"dkim2-signature:");
    for (k, spec) in value.split(|&c| c == b';').enumerate() {
        if k > 0 {
            out.push(b';');
        }
        let is_s = spec.contains(&b'=') && spec.split(|&c| c == b'=').next().is_some_and(|n| n.trim_ascii() == b"s");
        let visible = spec.iter().filter(|c| !c.is_ascii_whitespace());
        if !is_s {
            out.extend(visible);
            continue;
        }
        let mut colons = 0;
        for &c in visible {
            if c == b',' || c == b'|' {
                colons = 0;
                out.push(c);
            } else if colons < 2 {
                out.push(c);
                colons += usize::from(c == b':');
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_self_keeps_selector_and_algorithm() {
        let cases: [(&str, &str); 6] = [
            ("i=1; m=1; d=ex.com; s=sel:alg:U0lH;", "dkim2-signature:i=1;m=1;d=ex.com;s=sel:alg:;\r\n"),
            ("s=a:b:U0lH|c:d:WkZa, e:f:QUJD;", "dkim2-signature:s=a:b:|c:d:,e:f:;\r\n"),
            ("i=1;\r\n m=1;\r\n\ts=sel:alg:U0\r\n lH;", "dkim2-signature:i=1;m=1;s=sel:alg:;\r\n"),
            ("mf=QQ s=; n=a:b:c;", "dkim2-signature:mf=QQs=;n=a:b:c;\r\n"),
            ("\r\n\ts\r\n =a:b:c", "dkim2-signature:s=a:b:\r\n"),
            ("", "dkim2-signature:\r\n"),
        ];
        for (value, want) in cases {
            let mut out = Vec::new();
            signed_self(value.as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{value:?}");
        }
    }

    #[test]
    fn excluded_fields() {
        for n in ["Received", "X-Spam", "received-spf", "DKIM2-Signature", "message-instance", "Return-Path"] {
            assert!(is_excluded(n.as_bytes()), "{n}");
        }
        for n in ["From", "Subject", "x", "x400", "receivedx", "DKIM-Status"] {
            assert!(!is_excluded(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn hash_order_is_by_name_then_bottom_first() {
        let f: Vec<Field> =
            vec![(b"Subject", b" a\r\n"), (b"From", b" x\r\n"), (b"subject", b" b\r\n"), (b"X-A", b" c\r\n")];
        let names: Vec<&[u8]> = hashed_order(&f).iter().map(|(_, v)| *v).collect();
        assert_eq!(names, vec![b" x\r\n".as_slice(), b" b\r\n", b" a\r\n"]);
    }
}
