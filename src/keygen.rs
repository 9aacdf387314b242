//! Key generation and DNS record formatting for `dknewkey`.
//!
//! Pure functions (apart from the random number generator):
//!
//! * [`generate_rsa_pem`] / [`generate_ed25519_pem`]: a new private key as PKCS#8 PEM
//!   (`-----BEGIN PRIVATE KEY-----`), the form OpenSSL 3 writes. Ed25519 keys are byte for byte
//!   what `openssl genpkey -algorithm ed25519` writes (PKCS#8 v1, RFC 8410).
//! * [`public_key_info`] / [`public_record_key`]: the `p=` value of an existing private key
//!   (RSA PKCS#1 or PKCS#8, Ed25519 PKCS#8 v1 or v2): for RSA the base64 of the
//!   SubjectPublicKeyInfo DER (what `openssl pkey -pubout -outform DER` writes), for Ed25519 the
//!   base64 of the raw 32-byte public key (RFC 8463).
//! * [`dkim_record`], [`domainkeys_key_record`], [`domainkeys_policy_record`]: TXT record values.
//! * [`bind_txt`], [`tinydns_txt`]: those values as a BIND zone file line or a tinydns-data line.
//!
//! Keys are read by [`crate::keyfile`], the signer's reader, which judges no key size: so
//! `dknewkey -p` works on any size, even one the signer would refuse, and can say why.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use rsa::pkcs8::der::zeroize::Zeroizing;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};

use rsa::pkcs1::RsaPrivateKeyRef;
use rsa::pkcs8::der::{self, Decode as _};

#[cfg(test)]
use crate::der::{tlv as der_tlv, TAG_NULL, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE};
use crate::keyfile::{self, Armour, KeyFileError, PrivateKey};

use crate::dkim::key::{KeyType, DEFAULT_NEW_RSA_BITS, MAX_NEW_RSA_BITS, MIN_RSA_BITS};

/// The TTL of the tinydns-data lines we write.
pub const DEFAULT_TINYDNS_TTL: u32 = 86400;

/// Errors of key generation and key inspection. The messages are meant to follow `dknewkey: `.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeygenError {
    /// An RSA size outside `MIN_RSA_BITS..=MAX_NEW_RSA_BITS`.
    #[error("RSA key size {0} is not supported (use {MIN_RSA_BITS} to {MAX_NEW_RSA_BITS} bits; {DEFAULT_NEW_RSA_BITS} is the default)")]
    BadBits(usize),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The RSA library failed to generate or encode a key.
    #[error("RSA key generation failed: {0}")]
    Rsa(String),
    /// No PEM private key block, or broken base64 in it.
    #[error("not a PEM private key: {0}")]
    NotPem(String),
    /// An encrypted (password protected) private key.
    #[error("the private key is encrypted; qmail-dkim needs an unencrypted key")]
    Encrypted,
    /// A key type we do not handle (EC, DSA, RSA-PSS, X25519, ...).
    #[error("unsupported key type: {0} (DKIM uses rsa or ed25519 keys)")]
    Unsupported(String),
    /// The DER inside the PEM does not parse as the key it claims to be.
    #[error("malformed private key: {0}")]
    Malformed(String),
    /// DomainKeys (RFC 4870) knows only RSA keys.
    #[error("DomainKeys records need an RSA key")]
    DomainKeysNeedsRsa,
}

/// What the DNS needs to know about a private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// RSA or Ed25519.
    pub kind: KeyType,
    /// Modulus size for RSA (significant bits of n); 256 for Ed25519.
    pub bits: usize,
    /// The `p=` value: base64 of the SubjectPublicKeyInfo DER (RSA) or of the raw 32-byte key (Ed25519).
    pub p: String,
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

/// Checks an RSA size given by the user.
pub fn check_rsa_bits(bits: usize) -> Result<(), KeygenError> {
    if (MIN_RSA_BITS..=MAX_NEW_RSA_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(KeygenError::BadBits(bits))
    }
}

/// ring's `SystemRandom` as the `rand_core` generator the `rsa` crate asks for.
struct RingRng(SystemRandom);

#[derive(Debug)]
struct RingRngError;

impl std::fmt::Display for RingRngError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("system random number generator failed")
    }
}

impl std::error::Error for RingRngError {}

impl rsa::rand_core::TryRng for RingRng {
    type Error = RingRngError;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst).map_err(|_| RingRngError)
    }
}

impl rsa::rand_core::TryCryptoRng for RingRng {}

/// Generates an RSA key (public exponent 65537) of `bits` bits, returned as PKCS#8 PEM with LF
/// line ends (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey` / OpenSSL 3 `genrsa` write it).
pub fn generate_rsa_pem(bits: usize) -> Result<Zeroizing<String>, KeygenError> {
    check_rsa_bits(bits)?;
    let mut rng = RingRng(SystemRandom::new());
    let key = rsa::PrivateKey::new(&mut rng, bits).map_err(|e| match e {
        rsa::Error::Rng => KeygenError::Random,
        other => KeygenError::Rsa(other.to_string()),
    })?;
    key.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeygenError::Rsa(e.to_string()))
}

/// Generates an Ed25519 key, written as PEM exactly as `openssl genpkey -algorithm ed25519`
/// writes it (PKCS#8 v1, RFC 8410: 16 bytes of structure, then a 32-byte random seed).
pub fn generate_ed25519_pem() -> Result<Zeroizing<String>, KeygenError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(&mut seed[..]).map_err(|_| KeygenError::Random)?;
    ed25519_pem_from_seed(&seed)
}

/// The PKCS#8 v1 PEM of the Ed25519 key with this seed, encoded by the `pkcs8` crate.
pub fn ed25519_pem_from_seed(seed: &[u8; 32]) -> Result<Zeroizing<String>, KeygenError> {
    use rsa::pkcs8::der::asn1::OctetStringRef;
    use rsa::pkcs8::der::Encode as _;
    let encode = |e: der::Error| KeygenError::Rsa(format!("encoding the Ed25519 key: {e}"));
    let curve_private_key = Zeroizing::new(OctetStringRef::new(seed).map_err(encode)?.to_der().map_err(encode)?);
    let der = rsa::pkcs8::PrivateKeyInfoRef {
        algorithm: rsa::pkcs8::AlgorithmIdentifierRef { oid: const_oid::db::rfc8410::ID_ED_25519, parameters: None },
        private_key: OctetStringRef::new(&curve_private_key).map_err(encode)?,
        public_key: None,
    }
    .to_der()
    .map_err(encode)?;
    Ok(pem_encode("PRIVATE KEY", &Zeroizing::new(der)))
}

/// Generates a key of the given kind (`bits` is used for RSA only) and returns its PEM together
/// with what its DNS record needs.
pub fn generate(kind: KeyType, bits: usize) -> Result<(Zeroizing<String>, PublicKeyInfo), KeygenError> {
    let pem = match kind {
        KeyType::Rsa => generate_rsa_pem(bits)?,
        KeyType::Ed25519 => generate_ed25519_pem()?,
    };
    // Derive the public side from the PEM we are about to write: what we publish is what the
    // signer will read.
    let info = public_key_info(pem.as_bytes())?;
    Ok((pem, info))
}

/// PEM armour with 64-character base64 lines and LF line ends.
fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(B64.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Reading an existing private key
// ---------------------------------------------------------------------------------------------

/// The DNS public key of a private key: its kind and the base64 `p=` value.
///
/// Accepts PEM `RSA PRIVATE KEY` (PKCS#1) and `PRIVATE KEY` (PKCS#8 v1 or v2, RSA or Ed25519),
/// or the same as bare DER.
pub fn public_record_key(pem: &[u8]) -> Result<(KeyType, String), KeygenError> {
    let info = public_key_info(pem)?;
    Ok((info.kind, info.p))
}

/// Like [`public_record_key`], and also gives the key size.
pub fn public_key_info(pem: &[u8]) -> Result<PublicKeyInfo, KeygenError> {
    match keyfile::read(pem, Armour::PemOrDer)? {
        PrivateKey::Rsa { pkcs1, bits } => {
            let key = RsaPrivateKeyRef::from_der(&pkcs1).map_err(|e| KeygenError::Malformed(format!("RSA: {e}")))?;
            let spki = crate::dkim::key::rsa_spki(key.modulus, key.public_exponent)
                .map_err(|e| KeygenError::Rsa(format!("encoding the public key: {e}")))?;
            Ok(PublicKeyInfo { kind: KeyType::Rsa, bits, p: B64.encode(spki) })
        }
        PrivateKey::Ed25519 { seed, public } => {
            let pair = match public {
                None => Ed25519KeyPair::from_seed_unchecked(&seed[..])
                    .map_err(|_| KeygenError::Malformed("Ed25519: ring refused the key".into())),
                Some(key) => Ed25519KeyPair::from_seed_and_public_key(&seed[..], &key).map_err(|_| {
                    KeygenError::Malformed("Ed25519: the public key in the file does not match the private key".into())
                }),
            }?;
            Ok(PublicKeyInfo { kind: KeyType::Ed25519, bits: 256, p: B64.encode(pair.public_key().as_ref()) })
        }
    }
}

impl From<KeyFileError> for KeygenError {
    fn from(e: KeyFileError) -> Self {
        match e {
            KeyFileError::NotPem(why) => KeygenError::NotPem(why.to_string()),
            KeyFileError::Encrypted { .. } => KeygenError::Encrypted,
            KeyFileError::Unsupported(t) => KeygenError::Unsupported(t),
            KeyFileError::Malformed { why, .. } => KeygenError::Malformed(why),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Record values
// ---------------------------------------------------------------------------------------------

/// Optional tags of a DKIM key record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DkimRecordOptions {
    /// `t=y`: the domain is testing DKIM (verifiers must not treat failures differently from unsigned mail).
    pub testing: bool,
    /// `h=sha256`: the key may sign only with SHA-256 (no rsa-sha1).
    pub sha256_only: bool,
    /// `s=email`: the key is for email only.
    pub email_only: bool,
}

impl Default for DkimRecordOptions {
    fn default() -> Self {
        DkimRecordOptions { testing: true, sha256_only: false, email_only: false }
    }
}

/// The DKIM key record: `v=DKIM1; k=rsa; [t=y; ][h=sha256; ][s=email; ]p=…`.
pub fn dkim_record(kind: KeyType, p: &str, opts: DkimRecordOptions) -> String {
    let mut r = format!("v=DKIM1; k={}; ", kind.as_str());
    if opts.testing {
        r.push_str("t=y; ");
    }
    if opts.sha256_only {
        r.push_str("h=sha256; ");
    }
    if opts.email_only {
        r.push_str("s=email; ");
    }
    r.push_str("p=");
    r.push_str(p);
    r
}

/// The DomainKeys (RFC 4870) key record: `k=rsa; [t=y; ]p=…`.
pub fn domainkeys_key_record(kind: KeyType, p: &str, testing: bool) -> Result<String, KeygenError> {
    if kind != KeyType::Rsa {
        return Err(KeygenError::DomainKeysNeedsRsa);
    }
    Ok(format!("k=rsa; {}p={p}", if testing { "t=y; " } else { "" }))
}

/// The DomainKeys policy record published at `_domainkey.<domain>`:
/// `[t=y; ]o=~; r=postmaster@<domain>` (`o=-` when the domain signs all its mail).
pub fn domainkeys_policy_record(domain: &str, signs_all: bool, testing: bool) -> String {
    format!(
        "{}o={}; r=postmaster@{}",
        if testing { "t=y; " } else { "" },
        if signs_all { '-' } else { '~' },
        domain.trim_end_matches('.')
    )
}

/// `<selector>._domainkey.<domain>` (no trailing dot).
pub fn key_record_name(selector: &str, domain: &str) -> String {
    format!("{selector}._domainkey.{}", domain.trim_end_matches('.'))
}

/// `_domainkey.<domain>` (no trailing dot): the DomainKeys policy record's name.
pub fn policy_record_name(domain: &str) -> String {
    format!("_domainkey.{}", domain.trim_end_matches('.'))
}

/// Is this a plausible DNS domain name for a signing domain: at least two labels of letters,
/// digits and hyphens (no hyphen at either end of a label), labels 1..63 octets, 253 in all,
/// and a top-level label that is not all digits (so no IP address)?
///
/// Stricter than [`crate::domain::is_dns_name`] (which it builds on): `dknewkey` uses it to tell a
/// domain from a file name, and to refuse what would make a record nobody can look up.
pub fn looks_like_domain(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let host_label = |l: &str| !l.starts_with('-') && !l.ends_with('-') && !l.contains('_');
    crate::domain::is_dns_name(name)
        && name.contains('.')
        && name.split('.').all(host_label)
        && name.rsplit('.').next().is_some_and(|t| !t.bytes().all(|b| b.is_ascii_digit()))
}

/// Is this a valid DKIM selector (RFC 6376 `selector = sub-domain *("." sub-domain)`):
/// labels of letters, digits and hyphens, not starting or ending with a hyphen, 1..63 octets?
pub fn is_valid_selector(sel: &str) -> bool {
    !sel.is_empty()
        && sel.len() <= 200
        && sel.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

// ---------------------------------------------------------------------------------------------
// Zone file formats
// ---------------------------------------------------------------------------------------------

/// The longest character-string in a TXT record (RFC 1035 §3.3).
pub const TXT_CHUNK: usize = 255;

/// A BIND zone file TXT record: `name. IN TXT ( "…" "…" )`, the value split into quoted strings
/// of at most 255 bytes each (`"` and `\` escaped with a backslash, other non-printable bytes
/// as `\DDD` decimal, as BIND reads them). `name` is made fully qualified (trailing dot).
/// Several strings are put one per line inside the parentheses.
pub fn bind_txt(name: &str, value: &str) -> String {
    let fqdn = if name.ends_with('.') { name.to_string() } else { format!("{name}.") };
    let chunks: Vec<String> = value.as_bytes().chunks(TXT_CHUNK).map(bind_quote).collect();
    let mut out = format!("{fqdn}\tIN\tTXT\t( ");
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\t");
        }
        out.push_str(c);
    }
    if chunks.is_empty() {
        out.push_str("\"\"");
    }
    out.push_str(" )");
    out
}

fn bind_quote(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(char::from(b));
            }
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\{b:03}");
            }
        }
    }
    s.push('"');
    s
}

/// A tinydns-data `'` (TXT) line: `'name:value:ttl`. In the value, `:` is written `\072`, `\`
/// `\134`, and every byte outside printable ASCII as `\ooo` octal, as tinydns-data reads it
/// (tinydns-data splits long values into character-strings itself). `name` loses a trailing dot.
pub fn tinydns_txt(name: &str, value: &str, ttl: u32) -> String {
    format!("'{}:{}:{ttl}", tinydns_escape(name.trim_end_matches('.')), tinydns_escape(value))
}

fn tinydns_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        match b {
            b':' | b'\\' => {
                let _ = write!(out, "\\{b:03o}");
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The printed records (dknewkey, `dkim keys`)
// ---------------------------------------------------------------------------------------------

/// How records are printed: dknewkey's `--bind`, `--tinydns` (neither: both forms, each under
/// a comment line) and `--value` (the DKIM record's value alone, one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordForms {
    pub bind: bool,
    pub tinydns: bool,
    pub value: bool,
    /// The TTL of tinydns-data lines.
    pub ttl: u32,
}

impl Default for RecordForms {
    fn default() -> Self {
        RecordForms { bind: false, tinydns: false, value: false, ttl: DEFAULT_TINYDNS_TTL }
    }
}

impl RecordForms {
    /// `section(comment, form)` once per form asked for, a blank line between them.
    fn each(&self, mut section: impl FnMut(&str, &dyn Fn(&str, &str) -> String) -> String) -> String {
        let (bind, tinydns) = if !self.bind && !self.tinydns { (true, true) } else { (self.bind, self.tinydns) };
        let ttl = self.ttl;
        let mut out = String::new();
        if bind {
            out.push_str(&section(";", &|name, value| bind_txt(name, value)));
        }
        if tinydns {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&section("#", &|name, value| tinydns_txt(name, value, ttl)));
        }
        out
    }
}

/// The records of a key, in the forms asked for: the DKIM record, and with `domainkeys`
/// (`Some(signs_all)`) the DomainKeys key record (as a comment) and policy record.
pub fn render_records(
    selector: &str,
    domain: &str,
    info: &PublicKeyInfo,
    opts: DkimRecordOptions,
    domainkeys: Option<bool>,
    forms: RecordForms,
) -> Result<String, KeygenError> {
    let dkim = dkim_record(info.kind, &info.p, opts);
    if forms.value {
        return Ok(format!("{dkim}\n"));
    }
    let testing = opts.testing;
    let key_name = key_record_name(selector, domain);
    let dk = match domainkeys {
        Some(signs_all) => Some((
            domainkeys_key_record(info.kind, &info.p, testing)?,
            policy_record_name(domain),
            domainkeys_policy_record(domain, signs_all, testing),
        )),
        None => None,
    };
    Ok(forms.each(|comment, fmt| {
        let mut out = format!(
            "{comment} DKIM key {key_name} ({} {} bits{})\n",
            info.kind,
            info.bits,
            if testing { ", t=y: testing" } else { "" }
        );
        out.push_str(&fmt(&key_name, &dkim));
        out.push('\n');
        if let Some((dk_key, policy_name, policy)) = &dk {
            out.push_str(&format!(
                "{comment} DomainKeys verifiers read the record above as well. A selector used only for\n\
                 {comment} DomainKeys would publish this instead (never two TXT records at one name):\n"
            ));
            for line in fmt(&key_name, dk_key).lines() {
                out.push_str(&format!("{comment} {line}\n"));
            }
            out.push_str(&format!("{comment} DomainKeys policy of {domain}\n"));
            out.push_str(&fmt(policy_name, policy));
            out.push('\n');
        }
        out
    }))
}

/// The record that revokes a selector (`p=` empty: verifiers say "key revoked"), in the forms
/// asked for.
pub fn render_revocation(selector: &str, domain: &str, kind: KeyType, forms: RecordForms) -> String {
    let value = dkim_record(kind, "", DkimRecordOptions { testing: false, ..DkimRecordOptions::default() });
    if forms.value {
        return format!("{value}\n");
    }
    let name = key_record_name(selector, domain);
    forms.each(|comment, fmt| format!("{comment} revoked DKIM key {name} (p= empty)\n{}\n", fmt(&name, &value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_record_has_an_empty_p() {
        let f = RecordForms { value: true, ..RecordForms::default() };
        assert_eq!(render_revocation("s1", "example.com", KeyType::Rsa, f), "v=DKIM1; k=rsa; p=\n");
        let t = RecordForms { tinydns: true, ..RecordForms::default() };
        assert_eq!(
            render_revocation("s1", "example.com", KeyType::Ed25519, t),
            "# revoked DKIM key s1._domainkey.example.com (p= empty)\n's1._domainkey.example.com:v=DKIM1; k=ed25519; p=:86400\n"
        );
    }

    // ---- parsers for the zone formats (test-only), to check round trips ----

    /// Reads a BIND TXT line back: the concatenation of its quoted strings.
    fn parse_bind(line: &str) -> (String, Vec<Vec<u8>>) {
        let (name, rest) = line.split_once(char::is_whitespace).expect("name");
        let rest = rest.trim_start();
        let rest = rest.strip_prefix("IN").expect("IN").trim_start();
        let rest = rest.strip_prefix("TXT").expect("TXT").trim_start();
        let rest = rest.strip_prefix('(').expect("(");
        let rest = rest.trim_end().strip_suffix(')').expect(")");
        let b = rest.as_bytes();
        let mut strings = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            assert_eq!(b[i], b'"', "expected a quote in {rest:?}");
            i += 1;
            let mut cur = Vec::new();
            loop {
                match b[i] {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' if b[i + 1].is_ascii_digit() => {
                        let d = std::str::from_utf8(&b[i + 1..i + 4]).unwrap();
                        cur.push(d.parse::<u8>().unwrap());
                        i += 4;
                    }
                    b'\\' => {
                        cur.push(b[i + 1]);
                        i += 2;
                    }
                    c => {
                        assert!((0x20..0x7f).contains(&c), "raw non-printable in BIND output");
                        cur.push(c);
                        i += 1;
                    }
                }
            }
            strings.push(cur);
        }
        (name.to_string(), strings)
    }

    /// Reads a tinydns-data `'` line back: (name, value, ttl), undoing `\ooo`.
    fn parse_tinydns(line: &str) -> (String, Vec<u8>, u32) {
        let line = line.strip_prefix('\'').expect("'");
        assert!(!line.contains('\n'));
        let fields: Vec<&str> = line.split(':').collect();
        assert_eq!(fields.len(), 3, "unescaped colon in {line:?}");
        let unescape = |f: &str| {
            let b = f.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'\\' {
                    let o = std::str::from_utf8(&b[i + 1..i + 4]).unwrap();
                    out.push(u8::from_str_radix(o, 8).unwrap());
                    i += 4;
                } else {
                    assert!((0x20..0x7f).contains(&b[i]));
                    out.push(b[i]);
                    i += 1;
                }
            }
            out
        };
        (String::from_utf8(unescape(fields[0])).unwrap(), unescape(fields[1]), fields[2].parse().unwrap())
    }

    /// One 1024-bit RSA key for all tests (generation is slow in debug builds): PKCS#8 PEM.
    fn test_rsa_pem() -> &'static str {
        static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        KEY.get_or_init(|| generate_rsa_pem(1024).unwrap().to_string())
    }

    /// The PKCS#1 DER of an RSA key file.
    fn test_pkcs1_der(file: &[u8]) -> Vec<u8> {
        match keyfile::read(file, Armour::Pem).unwrap() {
            PrivateKey::Rsa { pkcs1, .. } => pkcs1.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    /// The same key as PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`, `openssl genrsa -traditional`).
    fn test_rsa_pkcs1_pem() -> String {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::pkcs8::DecodePrivateKey as _;
        let key = rsa::PrivateKey::from_pkcs8_pem(test_rsa_pem()).unwrap();
        key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string()
    }

    #[test]
    fn bits_range() {
        assert!(check_rsa_bits(1024).is_ok());
        assert!(check_rsa_bits(2048).is_ok());
        assert!(check_rsa_bits(4096).is_ok());
        assert_eq!(check_rsa_bits(512), Err(KeygenError::BadBits(512)));
        assert_eq!(check_rsa_bits(8192), Err(KeygenError::BadBits(8192)));
        assert!(generate_rsa_pem(768).is_err());
    }

    #[test]
    fn rsa_generation_round_trip() {
        let pem = test_rsa_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let info = public_key_info(pem.as_bytes()).unwrap();
        assert_eq!(info.kind, KeyType::Rsa);
        assert_eq!(info.bits, 1024);
        // The SPKI we build equals the one the rsa crate encodes.
        use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
        let key = rsa::PrivateKey::from_pkcs8_pem(pem).unwrap();
        let spki = key.to_public_key().to_public_key_der().unwrap();
        assert_eq!(info.p, B64.encode(spki.as_bytes()));
        // ring parses the SPKI's RSAPublicKey, as a verifier will.
        let der = B64.decode(&info.p).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x81, 0x9f, 0x30]);
    }

    /// DER of a PKCS#8 v1 Ed25519 private key up to the 32-byte seed (RFC 8410 §7, as OpenSSL writes it).
    const ED25519_PKCS8_V1_PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

    #[test]
    fn ed25519_generation_is_openssl_form() {
        let (pem, info) = generate(KeyType::Ed25519, 0).unwrap();
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "-----BEGIN PRIVATE KEY-----");
        assert_eq!(lines[2], "-----END PRIVATE KEY-----");
        assert!(lines[1].starts_with("MC4CAQAwBQYDK2VwBCIEI"));
        assert_eq!(lines[1].len(), 64);
        let der = B64.decode(lines[1]).unwrap();
        assert_eq!(&der[..16], &ED25519_PKCS8_V1_PREFIX);
        assert_eq!(der.len(), 48);
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
        assert_eq!(info.p, B64.encode(pair.public_key().as_ref()));
        assert_eq!(info.kind, KeyType::Ed25519);
        assert_eq!(B64.decode(&info.p).unwrap().len(), 32);
        // Two keys differ.
        let (pem2, _) = generate(KeyType::Ed25519, 0).unwrap();
        assert_ne!(*pem, *pem2);
    }

    #[test]
    fn rfc8463_test_key() {
        // RFC 8463 Appendix A.2: the seed of brisbane._domainkey.football.example.com and its p=.
        let seed = B64.decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap();
        let pem = ed25519_pem_from_seed(&seed.try_into().unwrap()).unwrap();
        let (kind, p) = public_record_key(pem.as_bytes()).unwrap();
        assert_eq!(kind, KeyType::Ed25519);
        assert_eq!(p, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
        assert_eq!(
            dkim_record(kind, &p, DkimRecordOptions { testing: false, ..Default::default() }),
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        );
    }

    #[test]
    fn ed25519_pkcs8_v2() {
        let seed = B64.decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap();
        let public = B64.decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").unwrap();
        // OneAsymmetricKey v2: version 1, alg, private key, [1] public key.
        let mut body = vec![0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
        body.extend_from_slice(&seed);
        body.extend_from_slice(&[0x81, 0x21, 0x00]);
        body.extend_from_slice(&public);
        let der = der_tlv(TAG_SEQUENCE, &body);
        let pem = pem_encode("PRIVATE KEY", &der);
        assert_eq!(public_record_key(pem.as_bytes()).unwrap().1, B64.encode(&public));
        // A v2 key whose public key does not match is refused.
        let mut bad = body.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let pem = pem_encode("PRIVATE KEY", &der_tlv(TAG_SEQUENCE, &bad));
        assert!(matches!(public_record_key(pem.as_bytes()), Err(KeygenError::Malformed(_))));
        // Bare DER works as well.
        assert_eq!(public_record_key(&der).unwrap().0, KeyType::Ed25519);
    }

    #[test]
    fn rsa_pkcs1_and_pkcs8_agree() {
        let pkcs1_pem = test_rsa_pkcs1_pem();
        assert!(pkcs1_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let info = public_key_info(pkcs1_pem.as_bytes()).unwrap();
        assert_eq!(info, public_key_info(test_rsa_pem().as_bytes()).unwrap());
        assert_eq!(info.kind, KeyType::Rsa);
        assert_eq!(info.bits, 1024);
        assert!(info.p.starts_with("MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ"));
        // The same key wrapped in PKCS#8.
        let pkcs1 = test_pkcs1_der(pkcs1_pem.as_bytes());
        let mut body = vec![0x02, 0x01, 0x00];
        let mut alg = der_tlv(TAG_OID, crate::der::OID_RSA_ENCRYPTION);
        alg.extend_from_slice(&der_tlv(TAG_NULL, &[]));
        body.extend_from_slice(&der_tlv(TAG_SEQUENCE, &alg));
        body.extend_from_slice(&der_tlv(TAG_OCTET_STRING, &pkcs1));
        let pem8 = pem_encode("PRIVATE KEY", &der_tlv(TAG_SEQUENCE, &body));
        assert_eq!(public_key_info(pem8.as_bytes()).unwrap(), info);
        // PEM with CRLF line ends and text around it.
        let crlf = format!("some comment\r\n{}", pkcs1_pem.replace('\n', "\r\n"));
        assert_eq!(public_key_info(crlf.as_bytes()).unwrap(), info);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            public_record_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
            Err(KeygenError::Encrypted)
        );
        let enc = test_rsa_pkcs1_pem().replace(
            "-----BEGIN RSA PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n",
        );
        assert_eq!(public_record_key(enc.as_bytes()), Err(KeygenError::Encrypted));
        assert!(matches!(
            public_record_key(b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"),
            Err(KeygenError::Unsupported(_))
        ));
        assert!(matches!(
            public_record_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            Err(KeygenError::NotPem(_))
        ));
        assert!(matches!(public_record_key(b"hello"), Err(KeygenError::NotPem(_))));
        assert!(matches!(
            public_record_key(b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----\n"),
            Err(KeygenError::Malformed(_))
        ));
        assert!(matches!(public_record_key(b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw"), Err(KeygenError::NotPem(_))));
        // X25519 key (openssl genpkey -algorithm x25519)
        let x = pem_encode("PRIVATE KEY", &{
            let mut d =
                vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20];
            d.extend_from_slice(&[7u8; 32]);
            d
        });
        assert_eq!(public_record_key(x.as_bytes()), Err(KeygenError::Unsupported("X25519".into())));
    }

    /// The words of the `pkcs1`/`pkcs8` crates' refusals, as `dknewkey -p` prints them.
    #[test]
    fn malformed_key_words() {
        use crate::dkim::key::fixture;
        let pkcs1 = test_pkcs1_der(&fixture("rsa-1024-pkcs1.pem"));
        let public = B64
            .decode(
                String::from_utf8(fixture("rsa-2048-public.pem"))
                    .unwrap()
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let rsa_public = &public[24..];
        let words =
            |der: &[u8], label: &str| public_key_info(pem_encode(label, der).as_bytes()).unwrap_err().to_string();
        assert_eq!(
            words(rsa_public, "RSA PRIVATE KEY"),
            "malformed private key: RSA: no private exponent (is this a public key?)"
        );
        assert_eq!(
            words(&[&pkcs1[..], &[0x05, 0x00]].concat(), "RSA PRIVATE KEY"),
            "malformed private key: RSA: data after the key"
        );
        assert_eq!(words(&pkcs1[..pkcs1.len() - 1], "RSA PRIVATE KEY"), "malformed private key: truncated DER");
        let e = words(&[0x30, 0x03, 0x02, 0x01, 0x07], "PRIVATE KEY");
        assert!(e.starts_with("malformed private key: PKCS#8: "), "{e}");
    }

    #[test]
    fn record_values() {
        let o = DkimRecordOptions::default();
        assert_eq!(dkim_record(KeyType::Rsa, "AAAA", o), "v=DKIM1; k=rsa; t=y; p=AAAA");
        let all = DkimRecordOptions { testing: true, sha256_only: true, email_only: true };
        assert_eq!(dkim_record(KeyType::Rsa, "AAAA", all), "v=DKIM1; k=rsa; t=y; h=sha256; s=email; p=AAAA");
        let none = DkimRecordOptions { testing: false, sha256_only: false, email_only: false };
        assert_eq!(dkim_record(KeyType::Ed25519, "BB", none), "v=DKIM1; k=ed25519; p=BB");
        assert_eq!(domainkeys_key_record(KeyType::Rsa, "AAAA", true).unwrap(), "k=rsa; t=y; p=AAAA");
        assert_eq!(domainkeys_key_record(KeyType::Rsa, "AAAA", false).unwrap(), "k=rsa; p=AAAA");
        assert_eq!(domainkeys_key_record(KeyType::Ed25519, "A", false), Err(KeygenError::DomainKeysNeedsRsa));
        assert_eq!(domainkeys_policy_record("domain.xyz", false, true), "t=y; o=~; r=postmaster@domain.xyz");
        assert_eq!(domainkeys_policy_record("domain.xyz.", true, false), "o=-; r=postmaster@domain.xyz");
        assert_eq!(key_record_name("default", "example.com."), "default._domainkey.example.com");
        assert_eq!(policy_record_name("example.com"), "_domainkey.example.com");
    }

    #[test]
    fn names() {
        for good in ["example.com", "mail.example.co.uk", "xn--bcher-kva.example", "a-b.c1", "example.com."] {
            assert!(looks_like_domain(good), "{good}");
        }
        for bad in ["domainkeys", "control", "", ".", "-a.com", "a-.com", "a..com", "127.0.0.1", "a_b.com", "tmp"] {
            assert!(!looks_like_domain(bad), "{bad}");
        }
        for good in ["default", "s2048", "2026-01", "rsa.mail", "ed25519"] {
            assert!(is_valid_selector(good), "{good}");
        }
        for bad in ["", "key.pem.", "my_key", "-x", "a..b", "sel ector"] {
            assert!(!is_valid_selector(bad), "{bad}");
        }
        assert_eq!(KeyType::from_name("ED25519"), Some(KeyType::Ed25519));
        assert_eq!(KeyType::from_name("rsa"), Some(KeyType::Rsa));
        assert_eq!(KeyType::from_name("dsa"), None);
    }

    #[test]
    fn bind_round_trip() {
        let long_p = "A".repeat(392); // a 2048-bit SPKI is 392 base64 characters
        let value = dkim_record(KeyType::Rsa, &long_p, DkimRecordOptions::default());
        let line = bind_txt("default._domainkey.example.com", &value);
        assert!(line.starts_with("default._domainkey.example.com.\tIN\tTXT\t( \""));
        let (name, strings) = parse_bind(&line.replace('\n', " "));
        assert_eq!(name, "default._domainkey.example.com.");
        assert_eq!(strings.len(), 2);
        assert!(strings.iter().all(|s| s.len() <= 255));
        assert_eq!(strings[0].len(), 255);
        assert_eq!(strings.concat(), value.as_bytes());

        // Quotes, backslashes and a control byte, placed across the 255-byte boundary.
        let mut tricky = "x".repeat(253);
        tricky.push_str("\"\\;\t\u{1}n=ok\"");
        let line = bind_txt("n.example.", &tricky);
        let (name, strings) = parse_bind(&line.replace('\n', " "));
        assert_eq!(name, "n.example.");
        assert!(strings.iter().all(|s| s.len() <= 255));
        assert_eq!(strings.concat(), tricky.as_bytes());

        // Short value: one string, one line.
        let line = bind_txt("_domainkey.example.com", "t=y; o=~; r=postmaster@example.com");
        assert_eq!(line, "_domainkey.example.com.\tIN\tTXT\t( \"t=y; o=~; r=postmaster@example.com\" )");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn tinydns_round_trip() {
        let p = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".repeat(9);
        let value = dkim_record(KeyType::Rsa, &p, DkimRecordOptions::default());
        let line = tinydns_txt("default._domainkey.example.com.", &value, DEFAULT_TINYDNS_TTL);
        assert!(line.starts_with("'default._domainkey.example.com:v=DKIM1; k=rsa; t=y; p=MIIB"));
        assert!(line.ends_with(":86400"));
        let (name, v, ttl) = parse_tinydns(&line);
        assert_eq!(name, "default._domainkey.example.com");
        assert_eq!(v, value.as_bytes());
        assert_eq!(ttl, 86400);

        let tricky = "a:b\\c\nd\u{7f}e é";
        let line = tinydns_txt("x.example", tricky, 300);
        assert_eq!(line, "'x.example:a\\072b\\134c\\012d\\177e \\303\\251:300");
        let (_, v, ttl) = parse_tinydns(&line);
        assert_eq!(v, tricky.as_bytes());
        assert_eq!(ttl, 300);

        let line = tinydns_txt("_domainkey.domain.xyz", &domainkeys_policy_record("domain.xyz", false, true), 86400);
        assert_eq!(line, "'_domainkey.domain.xyz:t=y; o=~; r=postmaster@domain.xyz:86400");
    }
    /// What `dknewkey -p` reads from each key fixture: any RSA size (8200 bits too), PEM or
    /// bare DER; or the exact diagnostic.
    #[test]
    fn key_fixtures_public_key_info_as_before() {
        use crate::dkim::key::fixture;
        let rsa = |bits| Ok((KeyType::Rsa, bits));
        let cases: &[crate::dkim::key::FixtureCase] = &[
            ("rsa-1024-pkcs1.pem", rsa(1024)),
            ("rsa-1024-pkcs8.pem", rsa(1024)),
            ("rsa-2048-pkcs1.pem", rsa(2048)),
            ("rsa-2048-pkcs8.pem", rsa(2048)),
            ("rsa-2048-pkcs1.der", rsa(2048)),
            ("rsa-2048-pkcs8.der", rsa(2048)),
            ("rsa-4096-pkcs1.pem", rsa(4096)),
            ("rsa-4096-pkcs8.pem", rsa(4096)),
            ("rsa-8200.pem", rsa(8200)),
            ("ed25519-pkcs8.pem", Ok((KeyType::Ed25519, 256))),
            ("rsa-1024-encrypted.pem", Err("the private key is encrypted; qmail-dkim needs an unencrypted key")),
            ("rsa-1024-encrypted-pkcs1.pem", Err("the private key is encrypted; qmail-dkim needs an unencrypted key")),
            ("ec-p256.pem", Err("unsupported key type: EC (DKIM uses rsa or ed25519 keys)")),
            ("rsa-2048-public.pem", Err("not a PEM private key: found a \"PUBLIC KEY\" block, no private key")),
            ("rsa-2048-corrupt.pem", Err("malformed private key: truncated DER")),
        ];
        let public = String::from_utf8(fixture("rsa-2048-public.pem")).unwrap();
        let public: String = public.lines().filter(|l| !l.starts_with("-----")).collect();
        for (name, want) in cases {
            let got = public_key_info(&fixture(name)).map(|i| (i.kind, i.bits)).map_err(|e| e.to_string());
            assert_eq!(got.as_ref().map_err(String::as_str), want.as_ref().map_err(|e| *e), "{name}");
            if name.starts_with("rsa-2048-pkcs") {
                assert_eq!(public_key_info(&fixture(name)).unwrap().p, public, "{name}");
            }
        }
    }
}
