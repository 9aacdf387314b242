//! The DKIM key record (RFC 6376 §3.6.1, RFC 8463): its tags ([`KeyTags`], the one reader of
//! key records) and the public key in `p=`.

use super::key::KeyType;
/// RSA keys outside these sizes are never a pass (R).
use super::key::{MAX_RSA_BITS, MIN_RSA_BITS};
use super::parse::colon_list;
use super::tags::{strip_ws, TagList};
use super::verify::Outcome;
use super::Algorithm;
use base64::Engine;

/// A public key from a key record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// A usable key record.
pub(crate) struct KeyRecord {
    pub key: PublicKey,
    pub testing: bool,
    pub strict: bool,
    pub granularity: Option<String>,
}

/// A key record's tags as far as they do not depend on a signature (RFC 6376 §3.6.1). The one
/// reader of key records: the verifier goes on with [`KeyTags::for_signature`], `dkim testkey`
/// (crate::check::judge) with the key type it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyTags {
    /// `k=` (rsa when absent).
    pub k: KeyType,
    /// `p=`, white space removed; never empty (that is a revoked key).
    pub p: String,
    /// `h=` as published.
    pub h: Option<String>,
    /// `t=y`.
    pub testing: bool,
    /// `t=s`.
    pub strict: bool,
    /// `g=` (RFC 4871).
    pub granularity: Option<String>,
}

impl KeyTags {
    /// Reads a key record: L (SelectorInvalid) when it is not one, N (KeyRevoked) for an empty `p=`.
    pub(crate) fn parse(record: &[u8]) -> Result<KeyTags, (Outcome, String)> {
        let invalid = |why: String| Err((Outcome::SelectorInvalid, why));
        let tl = match TagList::parse_record(record) {
            Ok(t) => t,
            Err(e) => return invalid(format!("key record: {e}")),
        };
        if let Some(v) = tl.get("v") {
            if v != "DKIM1" || tl.tags.first().is_some_and(|(k, _)| k != "v") {
                return invalid(format!("key record v={v} (must be DKIM1, first)"));
            }
        }
        let Some(pval) = tl.get("p") else { return invalid("key record has no p=".into()) };
        let k = tl.get("k").map_or(Some(KeyType::Rsa), |k| KeyType::from_name(&strip_ws(k)));
        let Some(k) = k else {
            return invalid(format!(
                "unknown key type k={}",
                tl.get("k").map(strip_ws).unwrap_or_default().to_ascii_lowercase()
            ));
        };
        if let Some(s) = tl.get("s") {
            if !colon_list(s).any(|x| x == "*" || x.eq_ignore_ascii_case("email")) {
                return invalid(format!("key service s={s} is not email"));
            }
        }
        let flag = |want: &str| tl.get("t").is_some_and(|t| colon_list(t).any(|f| f.eq_ignore_ascii_case(want)));
        let (testing, strict) = (flag("y"), flag("s"));
        let p = strip_ws(pval);
        if p.is_empty() {
            return Err((Outcome::KeyRevoked, "key revoked (empty p=)".into()));
        }
        let h = tl.get("h").map(str::to_string);
        Ok(KeyTags { k, p, h, testing, strict, granularity: tl.get("g").map(|g| g.to_string()) })
    }

    /// Whether the record's key may make signatures of `alg` (k= and h=): else E.
    fn for_signature(&self, alg: Algorithm) -> Result<(), (Outcome, String)> {
        let want_k = match alg {
            Algorithm::Ed25519Sha256 => KeyType::Ed25519,
            _ => KeyType::Rsa,
        };
        if self.k != want_k {
            return Err((Outcome::AlgorithmMismatch, format!("k={} key for an {} signature", self.k, alg.as_str())));
        }
        if let Some(h) = &self.h {
            if !colon_list(h).any(|x| x.eq_ignore_ascii_case(alg.hash().name())) {
                return Err((Outcome::AlgorithmMismatch, format!("key h={h} does not allow {}", alg.hash().name())));
            }
        }
        Ok(())
    }

    /// The decoded `p=`: R when it is not base64.
    pub(crate) fn p_bytes(&self) -> Result<Vec<u8>, (Outcome, String)> {
        base64::engine::general_purpose::STANDARD
            .decode(self.p.as_bytes())
            .map_err(|_| (Outcome::PublicKeyInvalid, "p= is not base64".into()))
    }
}

/// Parses a key record for a signature of `alg`.
pub(super) fn parse_key_record(record: &[u8], alg: Algorithm) -> Result<KeyRecord, (Outcome, String)> {
    let tags = KeyTags::parse(record)?;
    tags.for_signature(alg)?;
    let key = decode_public_key(tags.k, &tags.p_bytes()?).map_err(|why| (Outcome::PublicKeyInvalid, why))?;
    Ok(KeyRecord { key, testing: tags.testing, strict: tags.strict, granularity: tags.granularity })
}

/// The key in a decoded `p=` of key type `k` (`rsa` or `ed25519`); the error says why it is
/// unusable (R). Shared with `dkim testkey`, so that it judges a record as the verifier does.
pub(crate) fn decode_public_key(k: KeyType, der: &[u8]) -> Result<PublicKey, String> {
    if k == KeyType::Ed25519 {
        return ed25519_key(der).map(PublicKey::Ed25519);
    }
    let Some((n, e)) = rsa_components(der) else { return Err("p= is not an RSA public key".into()) };
    let bits = crate::der::bit_length(&n);
    if bits < MIN_RSA_BITS {
        return Err(format!("RSA key of {bits} bits is too short"));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!("RSA key of {bits} bits is too long"));
    }
    Ok(PublicKey::Rsa { n, e })
}

// --- the key in p= (DER: see crate::der) ---------------------------------------------------------

/// An RSA key as DKIM publishes it (SubjectPublicKeyInfo), or a bare RSAPublicKey, which some
/// publishers use and other verifiers accept; bytes after the key are ignored. Leading zero
/// bytes are dropped; a zero modulus or exponent is refused.
pub(super) fn rsa_components(der_bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (crate::der::PublicKey::Rsa { n, e }, _) = crate::der::public_key(der_bytes)? else { return None };
    let (n, e) = (crate::der::strip_zeros(n), crate::der::strip_zeros(e));
    if n.is_empty() || e.is_empty() {
        return None;
    }
    Some((n.to_vec(), e.to_vec()))
}

/// RFC 8463: the raw 32 bytes and nothing else. A SubjectPublicKeyInfo around them is
/// refused, as Mail::DKIM and dkimpy refuse it: accepting it would pass mail those verifiers
/// fail, and tell the publisher nothing is wrong.
fn ed25519_key(der_bytes: &[u8]) -> Result<Vec<u8>, String> {
    if der_bytes.len() == 32 {
        return Ok(der_bytes.to_vec());
    }
    if let Some((crate::der::PublicKey::Ed25519(_), _)) = crate::der::public_key(der_bytes) {
        return Err("p= is an Ed25519 SubjectPublicKeyInfo, not the raw 32-byte key (RFC 8463)".into());
    }
    Err(format!("p= is {} bytes, not a 32-byte Ed25519 key", der_bytes.len()))
}
