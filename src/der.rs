//! The lenient DER reader DKIM and DomainKeys key records need, which no crate offers: a `p=`
//! value is a SubjectPublicKeyInfo or a bare RSAPublicKey, non-minimal lengths and trailing bytes
//! are taken (as other verifiers take them) and reported. Private keys, and the SubjectPublicKeyInfo
//! we publish, go through the RustCrypto `pkcs1`/`pkcs8`/`spki` crates (src/keyfile.rs,
//! src/dkim/key.rs). The writing side here is for tests, which build malformed DER on purpose
//! (non-minimal lengths, bytes after an element, deep nesting), which those crates refuse to write.
//!
//! Lengths of up to 4 bytes are read (no key we handle comes near 4 GiB); non-minimal lengths
//! are accepted, the indefinite form (0x80) and multi-byte tags are not. What to make of bytes
//! after an element is the caller's choice: the readers say whether there were any.

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_BIT_STRING: u8 = 0x03;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub const TAG_SEQUENCE: u8 = 0x30;

/// DER content (no tag, no length) of the rsaEncryption OID, as the `pkcs1` crate names it.
pub const OID_RSA_ENCRYPTION: &[u8] = rsa::pkcs1::ALGORITHM_OID.as_bytes();
/// DER content of the id-Ed25519 OID (RFC 8410).
pub const OID_ED25519: &[u8] = const_oid::db::rfc8410::ID_ED_25519.as_bytes();

/// Why DER did not parse, as a short phrase ("truncated DER", or what a caller expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error(pub &'static str);

const TRUNCATED: Error = Error("truncated DER");

/// One DER element: its tag and its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// Reads the element at the start of `input`: it and the bytes after it.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), Error> {
    let (&tag, rest) = input.split_first().ok_or(TRUNCATED)?;
    if tag & 0x1f == 0x1f {
        return Err(Error("unexpected multi-byte DER tag"));
    }
    let (&l0, rest) = rest.split_first().ok_or(TRUNCATED)?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return Err(Error("bad DER length"));
        }
        if rest.len() < n {
            return Err(TRUNCATED);
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(TRUNCATED);
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// The elements of a SEQUENCE (or of any run of DER), one at a time.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element.
    pub fn next_tlv(&mut self) -> Result<Tlv<'a>, Error> {
        let (tlv, rest) = read(self.rest)?;
        self.rest = rest;
        Ok(tlv)
    }

    /// The next element, which must have this tag; `what` is the error otherwise.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, Error> {
        let t = self.next_tlv()?;
        if t.tag == tag {
            Ok(t)
        } else {
            Err(Error(what))
        }
    }

    /// The contents of the next element if it has this tag.
    fn take(&mut self, tag: u8) -> Option<&'a [u8]> {
        let t = self.next_tlv().ok()?;
        (t.tag == tag).then_some(t.value)
    }
}

/// A SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spki<'a> {
    /// The algorithm OID (contents only); its parameters are not looked at.
    pub algorithm: &'a [u8],
    /// The subjectPublicKey BIT STRING after its unused-bits byte (which must be 0).
    pub key: &'a [u8],
    /// Whether bytes follow the BIT STRING or the SEQUENCE.
    pub trailing: bool,
}

/// Parses a SubjectPublicKeyInfo at the start of `input`.
pub fn spki(input: &[u8]) -> Option<Spki<'_>> {
    let (alg, bits, trailing) = pair(input, TAG_SEQUENCE, TAG_BIT_STRING)?;
    let algorithm = Reader::new(alg).take(TAG_OID)?;
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    Some(Spki { algorithm, key, trailing })
}

/// An RSAPublicKey (PKCS#1, RFC 8017 §A.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsaPublicKey<'a> {
    /// The modulus INTEGER's contents as they are (a leading zero byte kept; maybe empty).
    pub n: &'a [u8],
    /// The public exponent INTEGER's contents, likewise.
    pub e: &'a [u8],
    /// Whether bytes follow the exponent or the SEQUENCE.
    pub trailing: bool,
}

/// Parses an RSAPublicKey at the start of `input`.
pub fn rsa_public_key(input: &[u8]) -> Option<RsaPublicKey<'_>> {
    let (n, e, trailing) = pair(input, TAG_INTEGER, TAG_INTEGER)?;
    Some(RsaPublicKey { n, e, trailing })
}

/// A SEQUENCE at the start of `input` whose first two elements have these tags: their contents,
/// and whether bytes follow the second element or the SEQUENCE.
fn pair(input: &[u8], first: u8, second: u8) -> Option<(&[u8], &[u8], bool)> {
    let mut outer = Reader::new(input);
    let mut fields = Reader::new(outer.take(TAG_SEQUENCE)?);
    let a = fields.take(first)?;
    let b = fields.take(second)?;
    Some((a, b, !outer.is_empty() || !fields.is_empty()))
}

/// A public key of a type DKIM knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// Modulus and exponent, as in [`RsaPublicKey`].
    Rsa { n: &'a [u8], e: &'a [u8] },
    /// The subjectPublicKey of an id-Ed25519 SubjectPublicKeyInfo (32 bytes if it is a key).
    Ed25519(&'a [u8]),
}

/// A key as DNS key records publish it: a SubjectPublicKeyInfo of rsaEncryption (around an
/// RSAPublicKey) or of id-Ed25519, or a bare RSAPublicKey. None for anything else, including a
/// SubjectPublicKeyInfo of another algorithm. The flag: whether bytes followed any element
/// (which the caller may refuse).
pub fn public_key(input: &[u8]) -> Option<(PublicKey<'_>, bool)> {
    match spki(input) {
        Some(s) if s.algorithm == OID_RSA_ENCRYPTION => {
            let k = rsa_public_key(s.key)?;
            Some((PublicKey::Rsa { n: k.n, e: k.e }, s.trailing || k.trailing))
        }
        Some(s) if s.algorithm == OID_ED25519 => Some((PublicKey::Ed25519(s.key), s.trailing)),
        Some(_) => None,
        None => {
            let k = rsa_public_key(input)?;
            Some((PublicKey::Rsa { n: k.n, e: k.e }, k.trailing))
        }
    }
}

/// An unsigned big-endian number without its leading zero bytes (empty for zero).
pub fn strip_zeros(magnitude: &[u8]) -> &[u8] {
    let z = magnitude.iter().take_while(|&&b| b == 0).count();
    &magnitude[z..]
}

/// Significant bits of an unsigned big-endian number.
pub fn bit_length(magnitude: &[u8]) -> usize {
    match strip_zeros(magnitude) {
        [] => 0,
        m => (m.len() - 1) * 8 + (8 - m[0].leading_zeros() as usize),
    }
}

// --- writing (tests build keys, also malformed ones, with these) ----------------------------------

/// Appends a DER length (short form under 0x80, else the fewest bytes).
#[cfg(test)]
pub fn write_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One element.
#[cfg(test)]
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    write_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// Minimal DER encoding of a positive INTEGER given its big-endian magnitude.
#[cfg(test)]
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let mut m = magnitude;
    while m.len() > 1 && m[0] == 0 {
        m = &m[1..];
    }
    let mut content = Vec::with_capacity(m.len() + 1);
    if m.first().is_some_and(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(m);
    tlv(TAG_INTEGER, &content)
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (rsaEncryption, NULL parameters), as
/// `openssl pkey -pubout -outform DER` writes it.
#[cfg(test)]
pub fn spki_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    let mut alg = tlv(TAG_OID, OID_RSA_ENCRYPTION);
    alg.extend_from_slice(&tlv(TAG_NULL, &[]));
    let mut bits = Vec::with_capacity(pkcs1.len() + 1);
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut body = tlv(TAG_SEQUENCE, &alg);
    body.extend_from_slice(&tlv(TAG_BIT_STRING, &bits));
    tlv(TAG_SEQUENCE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_pkcs1(n: &[u8], e: &[u8]) -> Vec<u8> {
        let mut body = unsigned_integer(n);
        body.extend_from_slice(&unsigned_integer(e));
        tlv(TAG_SEQUENCE, &body)
    }

    #[test]
    fn read_one_element() {
        assert_eq!(read(&[0x04, 0x02, 1, 2, 9]), Ok((Tlv { tag: 4, value: &[1, 2][..] }, &[9][..])));
        assert_eq!(read(&[0x05, 0x00]), Ok((Tlv { tag: 5, value: &[][..] }, &[][..])));
        // Long form, also non-minimal.
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend_from_slice(&[7; 256]);
        assert_eq!(read(&long).unwrap().0.value.len(), 256);
        assert_eq!(read(&[0x04, 0x81, 0x01, 7]).unwrap().0.value, [7]);
        assert_eq!(read(&[0x04, 0x84, 0, 0, 0, 1, 7]).unwrap().0.value, [7]);
    }

    #[test]
    fn read_refusals() {
        assert_eq!(read(&[]), Err(Error("truncated DER")));
        assert_eq!(read(&[0x30]), Err(Error("truncated DER")));
        assert_eq!(read(&[0x30, 0x05, 1]), Err(Error("truncated DER")));
        // The length itself cut short.
        assert_eq!(read(&[0x30, 0x82, 0x01]), Err(Error("truncated DER")));
        // Indefinite, and lengths of over 4 bytes.
        assert_eq!(read(&[0x30, 0x80, 0, 0]), Err(Error("bad DER length")));
        assert_eq!(read(&[0x30, 0x85, 0, 0, 0, 0, 1, 0]), Err(Error("bad DER length")));
        assert_eq!(read(&[0x1f, 0x01, 0x00]), Err(Error("unexpected multi-byte DER tag")));
        assert_eq!(read(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 1]), Err(Error("truncated DER")));
    }

    #[test]
    fn reader_walks_a_sequence() {
        let seq = [0x02, 0x01, 0x05, 0x04, 0x00, 0x05, 0x00];
        let mut r = Reader::new(&seq);
        assert_eq!(r.peek_tag(), Some(0x02));
        assert_eq!(r.expect(TAG_INTEGER, "no version").unwrap().value, [5]);
        assert_eq!(r.expect(TAG_INTEGER, "no modulus"), Err(Error("no modulus")));
        assert_eq!(r.next_tlv().unwrap().tag, TAG_NULL);
        assert!(r.is_empty());
        assert_eq!(r.peek_tag(), None);
        assert_eq!(r.next_tlv(), Err(Error("truncated DER")));
    }

    #[test]
    fn spki_round_trip() {
        let pkcs1 = rsa_pkcs1(&[0xc1; 64], &[1, 0, 1]);
        let d = spki_from_pkcs1(&pkcs1);
        let s = spki(&d).unwrap();
        assert_eq!((s.algorithm, s.key, s.trailing), (OID_RSA_ENCRYPTION, &pkcs1[..], false));
        let k = rsa_public_key(&pkcs1).unwrap();
        assert_eq!((k.n.len(), k.n[0], k.e, k.trailing), (65, 0, &[1, 0, 1][..], false));
        assert_eq!(public_key(&d), Some((PublicKey::Rsa { n: k.n, e: k.e }, false)));
        // A bare RSAPublicKey is taken as well.
        assert_eq!(public_key(&pkcs1), Some((PublicKey::Rsa { n: k.n, e: k.e }, false)));
        // openssl's form for a short key.
        let p = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL02WYVl+YhHOQRWa0zbkazGb2RQ9lvrKXfxZf1fYRbkE2e68g8NP9dx9BBU6Rs1Nsk2pgybiIltOH4YWwr8HE8CAwEAAQ==";
        use base64::Engine as _;
        let d = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        let pkcs1 = spki(&d).unwrap().key;
        assert_eq!(spki_from_pkcs1(pkcs1), d);
        let Some((PublicKey::Rsa { n, e }, false)) = public_key(&d) else { panic!() };
        assert_eq!((bit_length(n), e), (512, &[1, 0, 1][..]));
    }

    #[test]
    fn ed25519_and_other_algorithms() {
        let mut d = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        d.extend_from_slice(&[9; 32]);
        assert_eq!(public_key(&d), Some((PublicKey::Ed25519(&[9; 32]), false)));
        // X25519: a SubjectPublicKeyInfo, but of no algorithm we know.
        d[8] = 0x6e;
        assert!(spki(&d).is_some());
        assert_eq!(public_key(&d), None);
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let pkcs1 = rsa_pkcs1(&[0xc1; 64], &[3]);
        let d = spki_from_pkcs1(&pkcs1);
        // After the outer SEQUENCE.
        let after = [&d[..], &[0]].concat();
        assert!(spki(&after).unwrap().trailing);
        assert!(public_key(&after).unwrap().1);
        // After the exponent, inside the SEQUENCE.
        let mut inner = pkcs1.clone();
        inner[1] += 2;
        inner.extend_from_slice(&[0x05, 0x00]);
        assert!(rsa_public_key(&inner).unwrap().trailing);
        assert!(public_key(&spki_from_pkcs1(&inner)).unwrap().1);
        assert!(!spki(&spki_from_pkcs1(&inner)).unwrap().trailing);
        // After the BIT STRING, inside the SubjectPublicKeyInfo.
        let mut body = tlv(TAG_SEQUENCE, &tlv(TAG_OID, OID_RSA_ENCRYPTION));
        body.extend_from_slice(&tlv(TAG_BIT_STRING, &[&[0][..], &pkcs1].concat()));
        body.extend_from_slice(&[0x05, 0x00]);
        let s = tlv(TAG_SEQUENCE, &body);
        assert!(spki(&s).unwrap().trailing);
        assert_eq!(spki(&s).unwrap().algorithm, OID_RSA_ENCRYPTION);
    }

    #[test]
    fn malformed_keys() {
        let pkcs1 = rsa_pkcs1(&[0xc1; 64], &[3]);
        let d = spki_from_pkcs1(&pkcs1);
        for cut in 0..d.len() {
            assert_eq!(public_key(&d[..cut]), None, "cut at {cut}");
        }
        assert_eq!(public_key(b"\x30\x00"), None);
        // Unused bits in the BIT STRING.
        let mut odd = d.clone();
        let bit_string = d.iter().position(|&b| b == TAG_BIT_STRING).unwrap();
        odd[bit_string + 2] = 1;
        assert_eq!(spki(&odd), None);
        // Not INTEGERs.
        assert_eq!(rsa_public_key(&tlv(TAG_SEQUENCE, &[0x04, 0x01, 1, 0x02, 0x01, 3])), None);
        assert_eq!(rsa_public_key(&tlv(TAG_SEQUENCE, &[0x02, 0x01, 1])), None);
        // Empty INTEGERs are reported as they are.
        assert_eq!(rsa_public_key(&[0x30, 0x04, 0x02, 0x00, 0x02, 0x00]).map(|k| (k.n, k.e)), Some((&[][..], &[][..])));
        // A length of over 4 bytes anywhere.
        assert_eq!(public_key(&[0x30, 0x85, 0, 0, 0, 0, 2, 0x02, 0x00]), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(strip_zeros(&[0, 0, 1, 0]), [1, 0]);
        assert_eq!(strip_zeros(&[0, 0]), [0u8; 0]);
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0x00, 0x01, 0x00]), 9);
        assert_eq!(bit_length(&[0x80, 0]), 16);
    }

    #[test]
    fn writing() {
        let mut out = Vec::new();
        write_len(0x7f, &mut out);
        write_len(0x80, &mut out);
        write_len(0x1234, &mut out);
        write_len(0x01_0000, &mut out);
        assert_eq!(out, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34, 0x83, 0x01, 0x00, 0x00]);
        assert_eq!(tlv(0x04, &[0u8; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(unsigned_integer(&[0x00, 0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(unsigned_integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0]), [0x02, 0x01, 0x00]);
        // What the DKIM signer published before: a fixed AlgorithmIdentifier, then the key.
        let pkcs1 = rsa_pkcs1(&[0xc1; 300], &[1, 0, 1]);
        let alg: &[u8] = &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
        let bits = tlv(TAG_BIT_STRING, &[&[0][..], &pkcs1].concat());
        assert_eq!(spki_from_pkcs1(&pkcs1), tlv(TAG_SEQUENCE, &[alg, &bits].concat()));
    }
}
