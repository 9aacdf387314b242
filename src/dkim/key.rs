//! Private keys for signing: PEM RSA (PKCS#1, PKCS#8) and Ed25519 (PKCS#8 v1/v2).
//! ring signs RSA-SHA256 with 2048–4096-bit keys and Ed25519; the `rsa` crate only what ring
//! refuses (rsa-sha1, 1024-bit and over-4096-bit keys). It is off the default path
//! (RUSTSEC-2023-0071, see docs/security.md).

use super::Algorithm;
use ring::signature::KeyPair;
use rsa::pkcs1::{RsaPublicKeyRef, UintRef};
use rsa::pkcs8::der;

// RSA key sizes, every purpose in one place.

/// The smallest RSA key for DKIM, signing or verifying, and for DomainKeys signing (RFC 8301:
/// verifiers ignore smaller keys).
pub const MIN_RSA_BITS: usize = 1024;
/// The largest RSA key the DKIM signer loads and the DKIM verifier accepts (ring's limit).
pub const MAX_RSA_BITS: usize = 8192;
/// The largest RSA key `dknewkey` makes: larger ones fit badly in DNS and many verifiers refuse
/// them. `dknewkey -p` reads any size.
pub(crate) const MAX_NEW_RSA_BITS: usize = 4096;
/// The RSA key size `dknewkey` makes when none is given.
pub const DEFAULT_NEW_RSA_BITS: usize = 2048;
/// DomainKeys verification: the sizes deployed DomainKeys keys had.
pub(crate) const DOMAINKEYS_MIN_VERIFY_BITS: usize = 512;
/// DomainKeys verification: the largest key accepted.
pub(crate) const DOMAINKEYS_MAX_VERIFY_BITS: usize = 2048;

const SHA1_PREFIX: &[u8] = &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];
const SHA256_PREFIX: &[u8] =
    &[0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

pub use crate::keyfile::KeyType;
use crate::keyfile::{Armour, KeyFileError, NotPem, PrivateKey};

/// The signer's words for why a key file gives no key: short, one line, no key material.
fn signer_words(e: KeyFileError) -> String {
    match e {
        KeyFileError::NotPem(NotPem::NotText) => "not a PEM file (not text)".into(),
        KeyFileError::NotPem(NotPem::NoBegin) => "not a PEM file (no PEM header line)".into(),
        KeyFileError::NotPem(NotPem::Other(l)) if l == "PUBLIC KEY" || l == "RSA PUBLIC KEY" => {
            "this is a public key, not a private key".into()
        }
        KeyFileError::NotPem(NotPem::Other(l)) => format!("unsupported PEM type {l:?}"),
        KeyFileError::NotPem(NotPem::TooLarge) => format!("not a key file ({})", NotPem::TooLarge),
        KeyFileError::NotPem(other) => format!("corrupt PEM ({other})"),
        KeyFileError::Encrypted { legacy: false } => "encrypted private keys are not supported".into(),
        // OpenSSL's `Proc-Type: 4,ENCRYPTED` PKCS#1: the words the signer always had for it.
        KeyFileError::Encrypted { legacy: true } | KeyFileError::Malformed { kind: Some(KeyType::Rsa), .. } => {
            "corrupt RSA key".into()
        }
        KeyFileError::Unsupported(t) if t == "EC" => "EC keys cannot sign DKIM (use RSA or Ed25519)".into(),
        KeyFileError::Unsupported(t) => format!("unsupported key type {t} (neither RSA nor Ed25519)"),
        KeyFileError::Malformed { kind: Some(KeyType::Ed25519), why } => format!("corrupt Ed25519 key ({why})"),
        KeyFileError::Malformed { kind: None, why } => format!("corrupt private key ({why})"),
    }
}

pub enum SigningKey {
    /// 2048–4096-bit RSA through ring.
    Ring(Box<ring::rsa::KeyPair>),
    /// RSA through the `rsa` crate (rsa-sha1 wanted, or a size ring refuses).
    Rsa(Box<rsa::PrivateKey>),
    Ed25519(Box<ring::signature::Ed25519KeyPair>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, {} bits)", self.key_type(), self.bits())
    }
}

impl SigningKey {
    /// Loads a key from a key file (PEM only: [`crate::keyfile::read`]). `need_sha1` makes RSA
    /// keys load through the `rsa` crate, which can sign SHA-1.
    pub fn from_pem(pem: &[u8], need_sha1: bool) -> Result<SigningKey, String> {
        let key = crate::keyfile::read(pem, Armour::Pem).map_err(signer_words)?;
        Self::from_key(&key, need_sha1)
    }

    /// A key the reader accepted, checked for signing: ring's checks, the RSA size limits.
    pub(crate) fn from_key(key: &PrivateKey, need_sha1: bool) -> Result<SigningKey, String> {
        match key {
            PrivateKey::Rsa { pkcs1, .. } => Self::rsa(pkcs1, need_sha1),
            PrivateKey::Ed25519 { seed, public } => {
                let pair = match public {
                    Some(p) => ring::signature::Ed25519KeyPair::from_seed_and_public_key(&seed[..], p),
                    None => ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed[..]),
                };
                pair.map(|k| SigningKey::Ed25519(Box::new(k))).map_err(|e| format!("corrupt Ed25519 key: {e}"))
            }
        }
    }

    fn rsa(pkcs1: &[u8], need_sha1: bool) -> Result<SigningKey, String> {
        if !need_sha1 {
            if let Ok(k) = ring::rsa::KeyPair::from_der(pkcs1) {
                return Ok(SigningKey::Ring(Box::new(k)));
            }
        }
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let k = rsa::PrivateKey::from_pkcs1_der(pkcs1).map_err(|_| "corrupt RSA key")?;
        let bits = k.n().bit_width() as usize;
        if bits < MIN_RSA_BITS {
            return Err(format!("RSA key of {bits} bits is too short (at least {MIN_RSA_BITS})"));
        }
        if bits > MAX_RSA_BITS {
            return Err(format!("RSA key of {bits} bits is too long (at most {MAX_RSA_BITS})"));
        }
        Ok(SigningKey::Rsa(Box::new(k)))
    }

    pub fn key_type(&self) -> KeyType {
        match self {
            SigningKey::Ed25519(_) => KeyType::Ed25519,
            _ => KeyType::Rsa,
        }
    }

    pub fn bits(&self) -> usize {
        use rsa::traits::PublicKeyParts;
        match self {
            SigningKey::Ring(k) => k.public().modulus_len() * 8,
            SigningKey::Rsa(k) => k.n().bit_width() as usize,
            SigningKey::Ed25519(_) => 256,
        }
    }

    /// Whether this key can make signatures of this algorithm.
    pub fn fits(&self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (SigningKey::Ring(_), Algorithm::RsaSha256)
                | (SigningKey::Rsa(_), Algorithm::RsaSha256 | Algorithm::RsaSha1)
                | (SigningKey::Ed25519(_), Algorithm::Ed25519Sha256)
        )
    }

    /// Signs the header data (not a digest: the hash is applied here as the algorithm says).
    pub fn sign(&self, alg: Algorithm, data: &[u8]) -> Result<Vec<u8>, String> {
        let rng = ring::rand::SystemRandom::new();
        match (self, alg) {
            (SigningKey::Ring(k), Algorithm::RsaSha256) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, data, &mut sig).map_err(|_| "RSA signing failed")?;
                Ok(sig)
            }
            (SigningKey::Rsa(k), Algorithm::RsaSha256 | Algorithm::RsaSha1) => {
                let (prefix, hash) = if alg == Algorithm::RsaSha1 {
                    (SHA1_PREFIX, &ring::digest::SHA1_FOR_LEGACY_USE_ONLY)
                } else {
                    (SHA256_PREFIX, &ring::digest::SHA256)
                };
                let digest = ring::digest::digest(hash, data);
                let pad = rsa::Pkcs1v15Sign { hash_len: Some(digest.as_ref().len()), prefix: prefix.into() };
                k.sign(pad, digest.as_ref()).map_err(|e| format!("RSA signing failed: {e}"))
            }
            (SigningKey::Ed25519(k), Algorithm::Ed25519Sha256) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, data);
                Ok(k.sign(digest.as_ref()).as_ref().to_vec())
            }
            _ => Err(format!("a {} key cannot make {} signatures", self.key_type().as_str(), alg.as_str())),
        }
    }

    /// The public key as published in DNS `p=`: SubjectPublicKeyInfo DER for RSA, the raw
    /// 32 bytes for Ed25519 (RFC 8463).
    pub fn public_key_dns(&self) -> Vec<u8> {
        match self {
            SigningKey::Ring(k) => spki_from_pkcs1(k.public().as_ref()),
            SigningKey::Rsa(k) => {
                use rsa::pkcs8::EncodePublicKey;
                k.to_public_key().to_public_key_der().map(|d| d.as_bytes().to_vec()).unwrap_or_default()
            }
            SigningKey::Ed25519(k) => k.public_key().as_ref().to_vec(),
        }
    }
}

/// The SubjectPublicKeyInfo DER of an RSA key (rsaEncryption, NULL parameters), as
/// `openssl pkey -pubout -outform DER` writes it.
pub(crate) fn rsa_spki(n: UintRef<'_>, e: UintRef<'_>) -> Result<Vec<u8>, der::Error> {
    use der::Encode as _;
    let pkcs1 = RsaPublicKeyRef { modulus: n, public_exponent: e }.to_der()?;
    spki_of(&pkcs1)
}

fn spki_of(pkcs1: &[u8]) -> Result<Vec<u8>, der::Error> {
    use der::Encode as _;
    rsa::pkcs8::SubjectPublicKeyInfoRef {
        algorithm: rsa::pkcs8::AlgorithmIdentifierRef {
            oid: rsa::pkcs1::ALGORITHM_OID,
            parameters: Some(der::AnyRef::NULL),
        },
        subject_public_key: der::asn1::BitStringRef::from_bytes(pkcs1)?,
    }
    .to_der()
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (empty if it cannot be encoded, which a
/// key ring or the `rsa` crate loaded never is).
pub(crate) fn spki_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    spki_of(pkcs1).unwrap_or_default()
}

/// A key fixture and what a loader makes of it: the key type and size, or the diagnostic.
#[cfg(test)]
pub(crate) type FixtureCase = (&'static str, Result<(KeyType, usize), &'static str>);

/// Reads a key fixture of tests/data (made once with openssl).
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// RFC 8463 Appendix A: the Ed25519 test key (seed), as OpenSSL's PKCS#8 v1 PEM.
    pub(crate) const RFC8463_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";

    #[test]
    fn ed25519_rfc8463_public_key() {
        let k = SigningKey::from_pem(RFC8463_ED25519_PEM.as_bytes(), false).unwrap();
        let p = base64::engine::general_purpose::STANDARD.encode(k.public_key_dns());
        assert_eq!(p, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
        assert!(k.fits(Algorithm::Ed25519Sha256));
        assert!(!k.fits(Algorithm::RsaSha256));
    }

    #[test]
    fn refuses_garbage() {
        assert!(SigningKey::from_pem(b"hello", false).is_err());
        assert!(SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n", false).is_err());
        assert!(SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", false).is_err());
        assert!(SigningKey::from_pem(b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", false)
            .is_err());
    }

    /// An Ed25519 PKCS#8 v2 (RFC 5958, the public key inside) signs with its key; one whose
    /// public key is another's is refused.
    #[test]
    fn ed25519_pkcs8_v2_signs_and_a_wrong_public_key_is_refused() {
        use rsa::pkcs8::der::{asn1::BitStringRef, asn1::OctetStringRef, Encode as _};
        let b64 = base64::engine::general_purpose::STANDARD;
        let seed = b64.decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap();
        let mut public = b64.decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").unwrap();
        let inner = OctetStringRef::new(&seed).unwrap().to_der().unwrap();
        let v2 = |public: &[u8]| {
            let der = rsa::pkcs8::PrivateKeyInfoRef {
                algorithm: rsa::pkcs8::AlgorithmIdentifierRef {
                    oid: const_oid::db::rfc8410::ID_ED_25519,
                    parameters: None,
                },
                private_key: OctetStringRef::new(&inner).unwrap(),
                public_key: Some(BitStringRef::from_bytes(public).unwrap()),
            }
            .to_der()
            .unwrap();
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", b64.encode(der))
        };
        let k = SigningKey::from_pem(v2(&public).as_bytes(), false).unwrap();
        assert_eq!(k.public_key_dns(), public);
        assert!(k.sign(Algorithm::Ed25519Sha256, b"data").is_ok());
        public[31] ^= 1;
        let e = SigningKey::from_pem(v2(&public).as_bytes(), false).unwrap_err();
        assert!(e.starts_with("corrupt Ed25519 key"), "{e}");
    }

    /// The signer's words for the reader's refusals that no fixture shows.
    #[test]
    fn signer_words_for_other_refusals() {
        let words = |file: &[u8]| SigningKey::from_pem(file, false).unwrap_err();
        assert_eq!(
            words(&vec![b'A'; crate::keyfile::MAX_KEY_FILE + 1]),
            "not a key file (the file is longer than 1048576 bytes)"
        );
        assert_eq!(words(b"hello"), "not a PEM file (no PEM header line)");
        assert_eq!(
            words(b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n"),
            "corrupt PEM (no \"-----END PRIVATE KEY-----\" line)"
        );
        assert_eq!(
            words(b"-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n"),
            "unsupported key type DSA (neither RSA nor Ed25519)"
        );
        // An Ed25519 PKCS#8 cut short still names its algorithm.
        let short = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMc\n-----END PRIVATE KEY-----\n";
        assert_eq!(words(short), "corrupt Ed25519 key (truncated DER)");
    }

    /// fuzz/private_key: an unknown PEM label was copied whole into the diagnostic.
    #[test]
    fn long_pem_label_is_cut_in_the_diagnostic() {
        let label = "X".repeat(5000);
        let pem = format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
        let e = SigningKey::from_pem(pem.as_bytes(), false).unwrap_err();
        assert!(e.starts_with("unsupported PEM type") && e.len() < 80, "{e}");
    }
    /// What the signer's key loader makes of each key fixture, for ring's path and for the
    /// `rsa` crate's (rsa-sha1): the key type and size, or the exact diagnostic.
    #[test]
    fn key_fixtures_load_as_before() {
        let cases: &[FixtureCase] = &[
            ("rsa-1024-pkcs1.pem", Ok((KeyType::Rsa, 1024))),
            ("rsa-1024-pkcs8.pem", Ok((KeyType::Rsa, 1024))),
            ("rsa-2048-pkcs1.pem", Ok((KeyType::Rsa, 2048))),
            ("rsa-2048-pkcs8.pem", Ok((KeyType::Rsa, 2048))),
            ("rsa-4096-pkcs1.pem", Ok((KeyType::Rsa, 4096))),
            ("rsa-4096-pkcs8.pem", Ok((KeyType::Rsa, 4096))),
            ("ed25519-pkcs8.pem", Ok((KeyType::Ed25519, 256))),
            ("rsa-8200.pem", Err("RSA key of 8200 bits is too long (at most 8192)")),
            ("rsa-1024-encrypted.pem", Err("encrypted private keys are not supported")),
            ("rsa-1024-encrypted-pkcs1.pem", Err("corrupt RSA key")),
            ("ec-p256.pem", Err("EC keys cannot sign DKIM (use RSA or Ed25519)")),
            ("rsa-2048-public.pem", Err("this is a public key, not a private key")),
            ("rsa-2048-corrupt.pem", Err("corrupt RSA key")),
            ("rsa-2048-pkcs1.der", Err("not a PEM file (not text)")),
            ("rsa-2048-pkcs8.der", Err("not a PEM file (not text)")),
        ];
        for (name, want) in cases {
            for need_sha1 in [false, true] {
                let got = SigningKey::from_pem(&fixture(name), need_sha1).map(|k| (k.key_type(), k.bits()));
                assert_eq!(
                    got.as_ref().map_err(String::as_str),
                    want.as_ref().map_err(|e| *e),
                    "{name} sha1={need_sha1}"
                );
            }
        }
        // ring takes 2048 to 4096 bits; the rest, and rsa-sha1, go through the `rsa` crate.
        for (name, sha1, ring) in [
            ("rsa-1024-pkcs8.pem", false, false),
            ("rsa-2048-pkcs1.pem", false, true),
            ("rsa-2048-pkcs1.pem", true, false),
            ("rsa-4096-pkcs8.pem", false, true),
        ] {
            let k = SigningKey::from_pem(&fixture(name), sha1).unwrap();
            assert_eq!(matches!(k, SigningKey::Ring(_)), ring, "{name} sha1={sha1}");
        }
    }

    /// Both loaders publish the same `p=` as `openssl pkey -pubout -outform DER`.
    #[test]
    fn key_fixture_public_key_is_openssls() {
        let pem = String::from_utf8(fixture("rsa-2048-public.pem")).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        for name in ["rsa-2048-pkcs1.pem", "rsa-2048-pkcs8.pem"] {
            for sha1 in [false, true] {
                let k = SigningKey::from_pem(&fixture(name), sha1).unwrap();
                assert_eq!(base64::engine::general_purpose::STANDARD.encode(k.public_key_dns()), b64, "{name}");
            }
        }
    }

    /// The `spki` crate wraps a key as the hand-written DER of the tests does, byte for byte.
    #[test]
    fn spki_from_pkcs1_agrees_with_the_test_der_writer() {
        for name in ["rsa-1024-pkcs1.pem", "rsa-4096-pkcs8.pem", "rsa-8200.pem"] {
            let Ok(PrivateKey::Rsa { pkcs1: der_bytes, .. }) = crate::keyfile::read(&fixture(name), Armour::Pem) else {
                panic!("{name}")
            };
            use rsa::pkcs8::der::Decode as _;
            let k = rsa::pkcs1::RsaPrivateKeyRef::from_der(&der_bytes).unwrap();
            let mut pkcs1 = crate::der::unsigned_integer(k.modulus.as_bytes());
            pkcs1.extend_from_slice(&crate::der::unsigned_integer(k.public_exponent.as_bytes()));
            let pkcs1 = crate::der::tlv(crate::der::TAG_SEQUENCE, &pkcs1);
            assert_eq!(spki_from_pkcs1(&pkcs1), crate::der::spki_from_pkcs1(&pkcs1), "{name}");
            assert_eq!(rsa_spki(k.modulus, k.public_exponent).unwrap(), crate::der::spki_from_pkcs1(&pkcs1), "{name}");
        }
    }
}
