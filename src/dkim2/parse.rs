//! The one parser of `DKIM2-Signature` (draft §10) and of `Message-Instance` (§9) values, both
//! tag lists (§8) read by [`TagList::parse`], the DKIM tag-list parser, so its caps hold here too:
//! at most [`crate::dkim::tags::MAX_TAGS`] tags, a repeated name refused. Tag names are
//! case-sensitive; a name we do not know (`I=` included) is ignored.
//!
//! Every step is one pass over its value; the lists inside a value are capped
//! ([`MAX_SIGNATURE_VALUES`], [`MAX_HASHES`], [`MAX_RECIPIENTS`]), so a field costs time and memory
//! in proportion to its length.

use super::recipe::Recipe;
use super::{HashName, SigAlgorithm};
use crate::dkim::tags::{strip_ws, TagList};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// `s=` entries per signature: each may cost a key lookup.
pub const MAX_SIGNATURE_VALUES: usize = 8;
/// `h=` entries per Message-Instance (two hash algorithms are defined).
pub const MAX_HASHES: usize = 8;
/// `rt=` addresses per signature: one SMTP transaction's recipients (RFC 5321 §4.5.3.1.8 asks a
/// server to take at least 100; qmail-smtpd takes as many as it is given).
pub const MAX_RECIPIENTS: usize = 1000;
/// `n=`: at most 64 characters (§10.3).
pub(crate) const MAX_NONCE: usize = 64;

/// Base64 as DKIM2 writes it: standard alphabet, padding optional, folding whitespace removed first.
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a field cannot be read; every one is a PERMERROR (§14.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Tags(#[from] crate::dkim::tags::TagError),
    #[error("missing {0}=")]
    Missing(&'static str),
    #[error("invalid {0}=")]
    Invalid(&'static str),
    #[error("nd= together with mf= or rt=")]
    NextDomainWithEnvelope,
    #[error("selector {0} twice in s=")]
    DuplicateSelector(String),
    #[error("hash {0} twice in h=")]
    DuplicateHash(String),
    #[error("more than {0} entries in {1}=")]
    TooMany(usize, &'static str),
    #[error("r=: {0}")]
    Recipe(String),
}

/// One `s=` entry: `selector:algorithm:signature`, with its `|` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureValue {
    pub selector: String,
    pub algorithm: SigAlgorithm,
    pub b: Vec<u8>,
    pub group: u32,
}

/// What a signature binds its hop to (§7): the SMTP envelope, or the next signer's domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// `mf=` and `rt=`, decoded, each an RFC 5321 path with its angle brackets.
    Envelope { mail_from: String, rcpt_to: Vec<String> },
    /// `nd=`.
    NextDomain(String),
}

/// A parsed `DKIM2-Signature` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub i: u32,
    pub m: u32,
    pub t: u64,
    /// `d=`, lowercase.
    pub d: String,
    pub s: Vec<SignatureValue>,
    pub binding: Binding,
    pub n: Option<String>,
    pub flags: Vec<String>,
}

/// One `h=` entry of a Message-Instance: `algorithm:header-hash:body-hash`, with its `|` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHash {
    pub name: HashName,
    pub header: Vec<u8>,
    pub body: Vec<u8>,
    pub group: u32,
}

/// A parsed `Message-Instance` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub m: u32,
    pub hashes: Vec<MessageHash>,
    pub recipe: Option<Recipe>,
}

impl Signature {
    pub fn parse(value: &[u8]) -> Result<Signature, ParseError> {
        let tl = TagList::parse(value)?;
        let get = |n: &'static str| tl.get(n);
        let need = |n: &'static str| get(n).ok_or(ParseError::Missing(n));
        for (_, v) in &tl.tags {
            if !is_tag_value(v) {
                return Err(ParseError::Invalid("tag"));
            }
        }
        let i = number(need("i")?).ok_or(ParseError::Invalid("i"))?;
        let m = number(need("m")?).ok_or(ParseError::Invalid("m"))?;
        let t = number(need("t")?).ok_or(ParseError::Invalid("t"))?;
        let d = dns_name(need("d")?).ok_or(ParseError::Invalid("d"))?;
        let s = signature_values(need("s")?)?;
        let mf = get("mf").map(|v| path(v).ok_or(ParseError::Invalid("mf"))).transpose()?;
        let rt = get("rt").map(recipients).transpose()?;
        let nd = get("nd").map(|v| dns_name(v).ok_or(ParseError::Invalid("nd"))).transpose()?;
        let binding = match (nd, mf, rt) {
            (Some(nd), None, None) => Binding::NextDomain(nd),
            (Some(_), _, _) => return Err(ParseError::NextDomainWithEnvelope),
            (None, Some(mail_from), Some(rcpt_to)) => Binding::Envelope { mail_from, rcpt_to },
            (None, None, _) => return Err(ParseError::Missing("mf")),
            (None, Some(_), None) => return Err(ParseError::Missing("rt")),
        };
        let n = match get("n") {
            Some(v) if v.len() <= MAX_NONCE && v.bytes().all(|c| c.is_ascii_graphic()) => Some(v.to_string()),
            Some(_) => return Err(ParseError::Invalid("n")),
            None => None,
        };
        let flags = match get("f") {
            Some(v) => v
                .split(',')
                .map(|f| {
                    let f = trim(f);
                    is_textstring(f).then(|| f.to_string()).ok_or(ParseError::Invalid("f"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        Ok(Signature { i, m, t, d, s, binding, n, flags })
    }
}

impl Instance {
    pub fn parse(value: &[u8]) -> Result<Instance, ParseError> {
        let tl = TagList::parse(value)?;
        for (_, v) in &tl.tags {
            if !is_tag_value(v) {
                return Err(ParseError::Invalid("tag"));
            }
        }
        let m = number(tl.get("m").ok_or(ParseError::Missing("m"))?).ok_or(ParseError::Invalid("m"))?;
        let hashes = hashes(tl.get("h").ok_or(ParseError::Missing("h"))?)?;
        let recipe = match tl.get("r") {
            Some(v) => {
                let json = B64.decode(strip_ws(v)).map_err(|_| ParseError::Invalid("r"))?;
                Some(Recipe::from_json(&json).map_err(ParseError::Recipe)?)
            }
            None => None,
        };
        Ok(Instance { m, hashes, recipe })
    }
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// A tag value is visible ASCII and folding whitespace (§8).
fn is_tag_value(v: &str) -> bool {
    v.bytes().all(|c| c.is_ascii_graphic() || matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

fn number<T: TryFrom<u64>>(v: &str) -> Option<T> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().and_then(|n| T::try_from(n).ok())
}

/// A DNS name: labels of letters, digits, `-` and `_`, at most 63 octets each, 253 in all.
fn dns_name(v: &str) -> Option<String> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        });
    ok.then(|| v.to_ascii_lowercase())
}

fn is_textstring(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn b64(v: &str) -> Option<Vec<u8>> {
    let v = strip_ws(v);
    if v.is_empty() {
        return None;
    }
    B64.decode(v).ok()
}

/// One base64 path (`mf=` or an `rt=` entry), decoded; UTF-8 text (an SMTPUTF8 address may be).
fn path(v: &str) -> Option<String> {
    b64(v).and_then(|b| String::from_utf8(b).ok())
}

fn recipients(v: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    for p in v.split(',') {
        if out.len() == MAX_RECIPIENTS {
            return Err(ParseError::TooMany(MAX_RECIPIENTS, "rt"));
        }
        out.push(path(p).ok_or(ParseError::Invalid("rt"))?);
    }
    Ok(out)
}

/// `a:b:c` entries separated by `,` (all of a group) and `|` (groups), with their group number.
fn entries(v: &str) -> impl Iterator<Item = (u32, Option<(&str, &str, &str)>)> {
    (0u32..).zip(v.split('|')).flat_map(|(g, group)| {
        group.split(',').map(move |e| {
            let mut it = e.splitn(3, ':');
            let triple = match (it.next(), it.next(), it.next()) {
                (Some(a), Some(b), Some(c)) => Some((trim(a), trim(b), c)),
                _ => None,
            };
            (g, triple)
        })
    })
}

fn signature_values(v: &str) -> Result<Vec<SignatureValue>, ParseError> {
    let mut out: Vec<SignatureValue> = Vec::new();
    for (group, e) in entries(v) {
        if out.len() == MAX_SIGNATURE_VALUES {
            return Err(ParseError::TooMany(MAX_SIGNATURE_VALUES, "s"));
        }
        let (selector, alg, sig) = e.ok_or(ParseError::Invalid("s"))?;
        let selector = dns_name(selector).ok_or(ParseError::Invalid("s"))?;
        if !is_textstring(alg) {
            return Err(ParseError::Invalid("s"));
        }
        let b = b64(sig).ok_or(ParseError::Invalid("s"))?;
        if out.iter().any(|o| o.selector == selector) {
            return Err(ParseError::DuplicateSelector(selector));
        }
        out.push(SignatureValue { selector, algorithm: SigAlgorithm::parse(alg), b, group });
    }
    Ok(out)
}

fn hashes(v: &str) -> Result<Vec<MessageHash>, ParseError> {
    let mut out: Vec<MessageHash> = Vec::new();
    for (group, e) in entries(v) {
        if out.len() == MAX_HASHES {
            return Err(ParseError::TooMany(MAX_HASHES, "h"));
        }
        let (name, header, body) = e.ok_or(ParseError::Invalid("h"))?;
        if !is_textstring(name) {
            return Err(ParseError::Invalid("h"));
        }
        let name = HashName::parse(name);
        if out.iter().any(|o| o.name == name) {
            return Err(ParseError::DuplicateHash(name.as_str().to_string()));
        }
        let header = b64(header).ok_or(ParseError::Invalid("h"))?;
        let body = b64(body).ok_or(ParseError::Invalid("h"))?;
        out.push(MessageHash { name, header, body, group });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
