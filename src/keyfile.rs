//! The one reader of a private key file, for qmail-dkim's signer, `dknewkey` and `dkim keys`.
//!
//! A key file is an optional first line `DKIM-Selector: NAME` ([`selector`]), then one PEM block
//! among any other text: PKCS#8 `PRIVATE KEY` (RSA, or Ed25519 as OpenSSL writes it, v1 or v2
//! with the public key) or PKCS#1 `RSA PRIVATE KEY`; `dknewkey` also takes the same as bare DER.
//! The key type is the PKCS#8 algorithm identifier as the `pkcs8` crate decodes it, compared with
//! the `pkcs1`/`const-oid` constants; the key's structure is checked by the `pkcs8`/`pkcs1`
//! crates. The PEM armour is read here: `pem-rfc7468` takes no text after the block, no blank
//! or header lines, which key files that admins edit have (docs/decisions.md).
//!
//! Linear in the file: one pass over its lines, then base64 and DER decoding; at most
//! [`MAX_KEY_FILE`] bytes.

use base64::Engine as _;
use const_oid::db::{rfc5912, rfc8410};
use rsa::pkcs1::{RsaPrivateKeyRef, RsaPublicKeyRef};
use rsa::pkcs8::der::zeroize::Zeroizing;
use rsa::pkcs8::der::{self, asn1::OctetStringRef, Decode as _, Reader as _};
use rsa::pkcs8::{AlgorithmIdentifierRef, ObjectIdentifier, PrivateKeyInfoRef};

/// A private key file is never longer than this.
pub const MAX_KEY_FILE: usize = 1 << 20;

/// The first line of a key file that names its selector (PEM allows text before the key).
/// `dkim keys` writes it into the file it switches, so that one file read gives the key and its
/// selector together: a rename over the file changes both at once (docs/key-rotation.md).
pub const SELECTOR_LINE: &str = "DKIM-Selector:";

/// Labels and algorithm names in diagnostics are cut to this many characters: one short line
/// whatever the file holds.
const NAME_CHARS: usize = 40;

/// The type of a key, as the `k=` tag of a DKIM key record names it. The one key-type enum:
/// the signer, `dknewkey` and the record writers share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA (`k=rsa`).
    Rsa,
    /// Ed25519 (`k=ed25519`, RFC 8463).
    Ed25519,
}

impl KeyType {
    /// The value of the DKIM key record's `k=` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// Parses `rsa` or `ed25519` (case-insensitive).
    pub fn from_name(name: &str) -> Option<KeyType> {
        if name.eq_ignore_ascii_case("rsa") {
            Some(KeyType::Rsa)
        } else if name.eq_ignore_ascii_case("ed25519") {
            Some(KeyType::Ed25519)
        } else {
            None
        }
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller takes besides PEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Armour {
    /// PEM only (the signer: a key file is text).
    Pem,
    /// PEM, or bare DER when the file starts with a SEQUENCE (`dknewkey -p`, `dkim keys`).
    PemOrDer,
}

/// A private key whose structure the `pkcs1`/`pkcs8` crates accepted. Whether a signer can use
/// it (its size, ring's checks) is the signer's business.
pub enum PrivateKey {
    /// PKCS#1 RSAPrivateKey DER (from inside PKCS#8 when the file was PKCS#8).
    Rsa {
        pkcs1: Zeroizing<Vec<u8>>,
        /// Significant bits of the modulus.
        bits: usize,
    },
    /// RFC 8410 CurvePrivateKey, and the public key a PKCS#8 v2 file carries (unchecked here).
    Ed25519 { seed: Zeroizing<[u8; 32]>, public: Option<[u8; 32]> },
}

impl PrivateKey {
    pub fn key_type(&self) -> KeyType {
        match self {
            PrivateKey::Rsa { .. } => KeyType::Rsa,
            PrivateKey::Ed25519 { .. } => KeyType::Ed25519,
        }
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateKey::Rsa { bits, .. } => write!(f, "PrivateKey(rsa, {bits} bits)"),
            PrivateKey::Ed25519 { .. } => f.write_str("PrivateKey(ed25519)"),
        }
    }
}

/// Why a file holds no PEM block to read a key from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPem {
    #[error("the file is longer than {MAX_KEY_FILE} bytes")]
    TooLarge,
    #[error("the file is not text")]
    NotText,
    #[error("no \"-----BEGIN PRIVATE KEY-----\" line")]
    NoBegin,
    /// The label of the first block that is not a private key (cut short).
    #[error("found a \"{0}\" block, no private key")]
    Other(String),
    /// The label whose END line is missing.
    #[error("no \"-----END {0}-----\" line")]
    NoEnd(String),
    #[error("bad base64 inside the PEM block")]
    BadBase64,
    #[error("the PEM block is empty")]
    Empty,
}

/// Why a key file gives no key. The words are `dknewkey`'s and `dkim keys`'; the signer says
/// the same things in its own (`dkim::key`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("not a PEM private key: {0}")]
    NotPem(NotPem),
    /// `ENCRYPTED PRIVATE KEY` (PKCS#8), or `legacy`: OpenSSL's `Proc-Type: 4,ENCRYPTED` header.
    #[error("the private key is encrypted; qmail-dkim needs an unencrypted key")]
    Encrypted { legacy: bool },
    /// A key type DKIM has no use for: `EC`, `DSA`, `RSA-PSS`, `X25519`, `Ed448`, ... (a PEM
    /// label's first words or the PKCS#8 algorithm).
    #[error("unsupported key type: {0} (DKIM uses rsa or ed25519 keys)")]
    Unsupported(String),
    /// The DER does not parse as the key it claims to be; `kind` when the algorithm was read.
    #[error("malformed private key: {why}")]
    Malformed { kind: Option<KeyType>, why: String },
}

fn cut(s: &str) -> String {
    s.chars().take(NAME_CHARS).collect()
}

/// Reads the key of a key file.
pub fn read(file: &[u8], armour: Armour) -> Result<PrivateKey, KeyFileError> {
    if file.len() > MAX_KEY_FILE {
        return Err(KeyFileError::NotPem(NotPem::TooLarge));
    }
    if armour == Armour::PemOrDer && file.first() == Some(&0x30) {
        return pkcs8(file).or_else(|e8| pkcs1(file).map_err(|_| e8));
    }
    let text = std::str::from_utf8(file).map_err(|_| KeyFileError::NotPem(NotPem::NotText))?;
    let (label, der) = pem_block(text)?;
    match label {
        Label::Pkcs8 => pkcs8(&der),
        Label::Pkcs1 => pkcs1(&der),
    }
}

/// The selector a key file names on its first line `DKIM-Selector: NAME` (case-insensitive),
/// None without that line. A first line that names no valid selector is an error (the key is
/// unusable), never a silent fallback.
pub fn selector(file: &[u8]) -> Result<Option<String>, String> {
    if !has_selector_line(file) {
        return Ok(None);
    }
    let first = file.split(|&b| b == b'\n').next().unwrap_or_default();
    let value = String::from_utf8_lossy(&first[SELECTOR_LINE.len()..]).trim().to_string();
    if crate::domain::is_label_list(&value) && crate::domain::fits_dns(&value) {
        Ok(Some(value))
    } else {
        Err(format!(
            "its first line {SELECTOR_LINE} {:?} names no valid selector",
            value.chars().take(64).collect::<String>()
        ))
    }
}

/// Whether the file starts with the `DKIM-Selector:` line.
pub fn has_selector_line(file: &[u8]) -> bool {
    file.get(..SELECTOR_LINE.len()).is_some_and(|p| p.eq_ignore_ascii_case(SELECTOR_LINE.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    Pkcs8,
    Pkcs1,
}

/// The first private-key PEM block, its base64 decoded. Blocks of other labels before it (a
/// certificate, the public key) are passed over; lines with a colon inside it are RFC 1421
/// headers (`Proc-Type`, `DEK-Info`).
pub(crate) fn pem_block(text: &str) -> Result<(Label, Zeroizing<Vec<u8>>), KeyFileError> {
    let mut lines = text.lines();
    let mut other = None;
    while let Some(line) = lines.next() {
        let Some(label) = line.trim().strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let kind = match label {
            "PRIVATE KEY" => Label::Pkcs8,
            "RSA PRIVATE KEY" => Label::Pkcs1,
            "ENCRYPTED PRIVATE KEY" => return Err(KeyFileError::Encrypted { legacy: false }),
            l if l.ends_with("PRIVATE KEY") => {
                return Err(KeyFileError::Unsupported(cut(l.trim_end_matches(" PRIVATE KEY"))));
            }
            l => {
                other.get_or_insert_with(|| cut(l));
                continue;
            }
        };
        let mut b64 = Zeroizing::new(String::new());
        for body in lines.by_ref() {
            let body = body.trim();
            if body.strip_prefix("-----END ").and_then(|l| l.strip_suffix("-----")) == Some(label) {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|_| KeyFileError::NotPem(NotPem::BadBase64))?;
                if der.is_empty() {
                    return Err(KeyFileError::NotPem(NotPem::Empty));
                }
                return Ok((kind, Zeroizing::new(der)));
            }
            if body.contains(':') {
                if body.starts_with("Proc-Type:") && body.contains("ENCRYPTED") {
                    return Err(KeyFileError::Encrypted { legacy: true });
                }
                continue;
            }
            b64.push_str(body);
        }
        return Err(KeyFileError::NotPem(NotPem::NoEnd(label.to_string())));
    }
    Err(KeyFileError::NotPem(other.map_or(NotPem::NoBegin, NotPem::Other)))
}

/// A DER error inside a key, as the phrase after "malformed private key: ".
fn malformed(kind: Option<KeyType>, what: &str, e: der::Error) -> KeyFileError {
    let why = match e.kind() {
        der::ErrorKind::Incomplete { .. } => "truncated DER".into(),
        der::ErrorKind::TrailingData { .. } => format!("{what}: data after the key"),
        k => format!("{what}: {k}"),
    };
    KeyFileError::Malformed { kind, why }
}

fn malformed_because(kind: KeyType, why: &str) -> KeyFileError {
    KeyFileError::Malformed { kind: Some(kind), why: why.into() }
}

/// PKCS#8 (RFC 5208 PrivateKeyInfo / RFC 5958 OneAsymmetricKey) with RSA or Ed25519 inside.
fn pkcs8(der_bytes: &[u8]) -> Result<PrivateKey, KeyFileError> {
    let pki = match PrivateKeyInfoRef::from_der(der_bytes) {
        Ok(p) => p,
        // A cut or damaged key whose algorithm is still readable: say which kind it was.
        Err(e) => return Err(malformed(algorithm(der_bytes).and_then(key_type), "PKCS#8", e)),
    };
    let params = pki.algorithm.parameters;
    let private = pki.private_key.as_bytes();
    match key_type(pki.algorithm.oid) {
        Some(KeyType::Rsa) => {
            if params.is_some_and(|p| !p.is_null()) {
                return Err(malformed_because(KeyType::Rsa, "PKCS#8: rsaEncryption parameters are not NULL"));
            }
            pkcs1(private)
        }
        Some(KeyType::Ed25519) => {
            if params.is_some() {
                return Err(malformed_because(KeyType::Ed25519, "PKCS#8: Ed25519 has parameters"));
            }
            let seed = <&OctetStringRef>::from_der(private)
                .map_err(|e| malformed(Some(KeyType::Ed25519), "Ed25519", e))?
                .as_bytes();
            let seed: [u8; 32] = seed
                .try_into()
                .map_err(|_| malformed_because(KeyType::Ed25519, "Ed25519: the private key is not 32 bytes"))?;
            let public = match pki.public_key {
                None => None,
                Some(bits) => Some(
                    bits.as_bytes()
                        .and_then(|k| <[u8; 32]>::try_from(k).ok())
                        .ok_or_else(|| malformed_because(KeyType::Ed25519, "Ed25519: bad public key in PKCS#8 v2"))?,
                ),
            };
            Ok(PrivateKey::Ed25519 { seed: Zeroizing::new(seed), public })
        }
        None => Err(KeyFileError::Unsupported(algorithm_name(pki.algorithm.oid))),
    }
}

/// The key type of a PKCS#8 algorithm identifier.
fn key_type(oid: ObjectIdentifier) -> Option<KeyType> {
    if oid == rsa::pkcs1::ALGORITHM_OID {
        Some(KeyType::Rsa)
    } else if oid == rfc8410::ID_ED_25519 {
        Some(KeyType::Ed25519)
    } else {
        None
    }
}

/// A name for an algorithm DKIM cannot use.
fn algorithm_name(oid: ObjectIdentifier) -> String {
    let name = match oid {
        o if o == rfc5912::ID_RSASSA_PSS => "RSA-PSS",
        o if o == rfc8410::ID_X_25519 => "X25519",
        o if o == rfc8410::ID_ED_448 => "Ed448",
        o if o == rfc5912::ID_EC_PUBLIC_KEY => "EC",
        o if o == rfc5912::ID_DSA => "DSA",
        _ => "unknown algorithm",
    };
    name.into()
}

/// The algorithm of a PKCS#8 key that does not parse whole: its version and AlgorithmIdentifier
/// (the elements before the key) as the `der` crate reads them.
fn algorithm(der_bytes: &[u8]) -> Option<ObjectIdentifier> {
    let mut r = der::SliceReader::new(der_bytes).ok()?;
    let outer = der::Header::decode(&mut r).ok()?;
    (outer.tag() == der::Tag::Sequence).then_some(())?;
    r.decode::<u8>().ok()?;
    Some(r.decode::<AlgorithmIdentifierRef<'_>>().ok()?.oid)
}

/// PKCS#1 RSAPrivateKey. Any size: the `pkcs1` crate reads the structure without judging the key.
fn pkcs1(der_bytes: &[u8]) -> Result<PrivateKey, KeyFileError> {
    let key = match RsaPrivateKeyRef::from_der(der_bytes) {
        Ok(k) => k,
        Err(_) if RsaPublicKeyRef::from_der(der_bytes).is_ok() => {
            return Err(malformed_because(KeyType::Rsa, "RSA: no private exponent (is this a public key?)"));
        }
        Err(e) => return Err(malformed(Some(KeyType::Rsa), "RSA", e)),
    };
    let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
    let bits = crate::der::bit_length(n);
    if bits == 0 || crate::der::bit_length(e) < 2 || e.last().is_some_and(|&b| b & 1 == 0) {
        return Err(malformed_because(KeyType::Rsa, "RSA: impossible modulus or exponent"));
    }
    Ok(PrivateKey::Rsa { pkcs1: Zeroizing::new(der_bytes.to_vec()), bits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use rsa::pkcs8::der::asn1::BitStringRef;
    use rsa::pkcs8::der::Encode as _;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = B64.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    type Read = Result<(KeyType, usize), KeyFileError>;

    /// The type and size a file reads as.
    fn kind(file: &[u8], armour: Armour) -> Read {
        read(file, armour).map(|k| match k {
            PrivateKey::Rsa { bits, .. } => (KeyType::Rsa, bits),
            PrivateKey::Ed25519 { .. } => (KeyType::Ed25519, 256),
        })
    }

    fn der_of(file: &[u8]) -> Vec<u8> {
        let text = String::from_utf8(file.to_vec()).unwrap();
        B64.decode(text.lines().filter(|l| !l.starts_with("-----")).collect::<String>()).unwrap()
    }

    /// RFC 8463 Appendix A's seed, as `openssl genpkey -algorithm ed25519` writes it (PKCS#8 v1).
    const RFC8463_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    const RFC8463_PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    /// An Ed25519 PKCS#8 as the `pkcs8` crate encodes it: v1, or v2 with this public key.
    fn ed25519_pkcs8(seed: &[u8], public: Option<&[u8]>) -> Vec<u8> {
        let inner = OctetStringRef::new(seed).unwrap().to_der().unwrap();
        PrivateKeyInfoRef {
            algorithm: AlgorithmIdentifierRef { oid: rfc8410::ID_ED_25519, parameters: None },
            private_key: OctetStringRef::new(&inner).unwrap(),
            public_key: public.map(|p| BitStringRef::from_bytes(p).unwrap()),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn pkcs8_rsa_pem_reads() {
        assert_eq!(kind(&fixture("rsa-2048-pkcs8.pem"), Armour::Pem), Ok((KeyType::Rsa, 2048)));
        assert_eq!(kind(&fixture("rsa-8200.pem"), Armour::Pem), Ok((KeyType::Rsa, 8200)));
    }

    #[test]
    fn pkcs1_rsa_pem_reads() {
        assert_eq!(kind(&fixture("rsa-2048-pkcs1.pem"), Armour::Pem), Ok((KeyType::Rsa, 2048)));
        // The PKCS#1 inside a PKCS#8 is the same key.
        let (Ok(PrivateKey::Rsa { pkcs1: a, .. }), Ok(PrivateKey::Rsa { pkcs1: b, .. })) =
            (read(&fixture("rsa-2048-pkcs1.pem"), Armour::Pem), read(&fixture("rsa-2048-pkcs8.pem"), Armour::Pem))
        else {
            panic!()
        };
        assert_eq!(*a, *b);
    }

    #[test]
    fn openssl_ed25519_pkcs8_v1_reads() {
        assert_eq!(kind(&fixture("ed25519-pkcs8.pem"), Armour::Pem), Ok((KeyType::Ed25519, 256)));
        let seed = B64.decode(RFC8463_SEED).unwrap();
        let v1 = ed25519_pkcs8(&seed, None);
        // What openssl writes for this seed: 16 bytes of structure, then the seed.
        assert_eq!(B64.encode(&v1), "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g");
        let Ok(PrivateKey::Ed25519 { seed: got, public: None }) = read(pem("PRIVATE KEY", &v1).as_bytes(), Armour::Pem)
        else {
            panic!()
        };
        assert_eq!(got[..], seed[..]);
    }

    #[test]
    fn ed25519_pkcs8_v2_with_its_public_key_reads() {
        let seed = B64.decode(RFC8463_SEED).unwrap();
        let public = B64.decode(RFC8463_PUBLIC).unwrap();
        let v2 = ed25519_pkcs8(&seed, Some(&public));
        let Ok(PrivateKey::Ed25519 { public: Some(got), .. }) = read(pem("PRIVATE KEY", &v2).as_bytes(), Armour::Pem)
        else {
            panic!()
        };
        assert_eq!(got[..], public[..]);
        // A public key that is not 32 bytes.
        let bad = ed25519_pkcs8(&seed, Some(&public[..31]));
        assert!(matches!(
            read(pem("PRIVATE KEY", &bad).as_bytes(), Armour::Pem),
            Err(KeyFileError::Malformed { kind: Some(KeyType::Ed25519), .. })
        ));
    }

    #[test]
    fn bare_der_reads_only_where_taken() {
        for (name, bits) in [("rsa-2048-pkcs1.der", 2048), ("rsa-2048-pkcs8.der", 2048)] {
            assert_eq!(kind(&fixture(name), Armour::PemOrDer), Ok((KeyType::Rsa, bits)), "{name}");
            assert_eq!(kind(&fixture(name), Armour::Pem), Err(KeyFileError::NotPem(NotPem::NotText)), "{name}");
        }
        let seed = B64.decode(RFC8463_SEED).unwrap();
        assert_eq!(kind(&ed25519_pkcs8(&seed, None), Armour::PemOrDer), Ok((KeyType::Ed25519, 256)));
    }

    /// What admins' key files look like around the block: CRLF line ends, text before and
    /// after it, blank lines, spaces, header lines, a block of another kind before it.
    #[test]
    fn key_file_shapes_read() {
        let key = String::from_utf8(fixture("rsa-2048-pkcs1.pem")).unwrap();
        let want = Ok((KeyType::Rsa, 2048));
        let public = String::from_utf8(fixture("rsa-2048-public.pem")).unwrap();
        for (shape, file) in [
            ("crlf", key.replace('\n', "\r\n")),
            ("text around", format!("# the key of example.com\n\n{key}\ntrailing words\n")),
            ("no final newline", key.trim_end().to_string()),
            ("blank lines", key.replacen('\n', "\n\n", 1).replace("\n-----END", "\n\n-----END")),
            ("spaces", key.lines().map(|l| format!("  {l} \t")).collect::<Vec<_>>().join("\n")),
            ("header line", key.replacen('\n', "\nComment: made by hand\n", 1)),
            ("public key first", format!("{public}{key}")),
            ("selector line", format!("DKIM-Selector: s2026\n{key}")),
            ("selector line, crlf", format!("DKIM-Selector: s2026\r\n{}", key.replace('\n', "\r\n"))),
        ] {
            assert_eq!(kind(file.as_bytes(), Armour::Pem), want, "{shape}");
        }
    }

    #[test]
    fn selector_line() {
        let key = fixture("ed25519-pkcs8.pem");
        assert_eq!(selector(&key), Ok(None));
        assert_eq!(
            selector(&[b"DKIM-Selector: ed20270101\r\n".as_slice(), &key].concat()),
            Ok(Some("ed20270101".into()))
        );
        assert_eq!(selector(&[b"dkim-selector:a.b\n".as_slice(), &key].concat()), Ok(Some("a.b".into())));
        assert!(selector(b"DKIM-Selector: a b\n").unwrap_err().contains("names no valid selector"));
        assert!(has_selector_line(b"DKIM-SELECTOR: x") && !has_selector_line(b" DKIM-Selector: x"));
    }

    #[test]
    fn refusals_are_typed() {
        let np = |n| Err(KeyFileError::NotPem(n));
        let truncated = pem("PRIVATE KEY", &der_of(&fixture("rsa-2048-pkcs8.pem"))[..600]);
        let seed = B64.decode(RFC8463_SEED).unwrap();
        let mut x25519 = ed25519_pkcs8(&seed, None);
        x25519[11] = 0x6e;
        let cases: Vec<(&str, Vec<u8>, Read)> = vec![
            ("too large", vec![b'A'; MAX_KEY_FILE + 1], np(NotPem::TooLarge)),
            ("not text", b"\xff\xfe".to_vec(), np(NotPem::NotText)),
            ("no block", b"hello".to_vec(), np(NotPem::NoBegin)),
            ("public key", fixture("rsa-2048-public.pem"), np(NotPem::Other("PUBLIC KEY".into()))),
            ("no END", b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n".to_vec(), np(NotPem::NoEnd("PRIVATE KEY".into()))),
            (
                "END of another label",
                b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END RSA PRIVATE KEY-----\n".to_vec(),
                np(NotPem::NoEnd("PRIVATE KEY".into())),
            ),
            (
                "bad base64",
                b"-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n".to_vec(),
                np(NotPem::BadBase64),
            ),
            ("empty", b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".to_vec(), np(NotPem::Empty)),
            ("encrypted", fixture("rsa-1024-encrypted.pem"), Err(KeyFileError::Encrypted { legacy: false })),
            (
                "legacy encrypted",
                fixture("rsa-1024-encrypted-pkcs1.pem"),
                Err(KeyFileError::Encrypted { legacy: true }),
            ),
            ("EC label", fixture("ec-p256.pem"), Err(KeyFileError::Unsupported("EC".into()))),
            ("X25519", pem("PRIVATE KEY", &x25519).into_bytes(), Err(KeyFileError::Unsupported("X25519".into()))),
            (
                "truncated RSA PKCS#8",
                truncated.into_bytes(),
                Err(KeyFileError::Malformed { kind: Some(KeyType::Rsa), why: "truncated DER".into() }),
            ),
        ];
        for (what, file, want) in cases {
            assert_eq!(kind(&file, Armour::Pem), want, "{what}");
        }
        // A label of any length is cut in the diagnostic.
        let long = format!("-----BEGIN {}-----\n", "X".repeat(5000));
        let Err(KeyFileError::NotPem(NotPem::Other(l))) = read(long.as_bytes(), Armour::Pem) else { panic!() };
        assert_eq!(l.len(), NAME_CHARS);
    }

    /// The key file reader's line loop on every shape it passes over: blocks of other labels, text
    /// before the block, header and blank lines inside it, base64 lines. (`keyfile::read` refuses
    /// files over 1 MiB before this loop, so the loop itself is measured.)
    #[test]
    fn key_file_reader_is_linear() {
        for (what, head, unit) in [
            ("many blocks of another label", "", "-----BEGIN CERTIFICATE-----\n"),
            ("many text lines before the block", "", "# a comment line, not base64\r\n"),
            ("many header lines", "-----BEGIN RSA PRIVATE KEY-----\n", "Comment: x\n"),
            ("many blank lines", "-----BEGIN PRIVATE KEY-----\n", " \r\n"),
            (
                "many base64 lines",
                "-----BEGIN PRIVATE KEY-----\n",
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCqopryjgyrtrHp\n",
            ),
        ] {
            crate::linear::assert_linear(
                &format!("keyfile::pem_block, {what}"),
                1024,
                |n| {
                    let mut pem = head.to_string();
                    pem.push_str(&unit.repeat(n.div_ceil(unit.len())));
                    pem.push_str("-----END PRIVATE KEY-----\n");
                    pem
                },
                |pem| {
                    std::hint::black_box(pem_block(pem).is_ok());
                },
            );
        }
    }
}
