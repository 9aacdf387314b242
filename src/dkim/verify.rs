//! DKIM verification (RFC 6376, RFC 8463, RFC 8301), streaming: the signatures are parsed from
//! the header block before the body arrives, each body hash is computed as the body streams
//! through [`Verifier::body`], and the keys are fetched and the signatures checked at
//! [`Verifier::finish`]. Every way a signature can end is one [`Outcome`], and every outcome is
//! one letter of `DKIMVERIFY` (qmail-dkim-letters(5)).
//!
//! Bounds: at most [`MAX_SIGNATURES`] signatures (the top-most ones) are evaluated per message,
//! so at most that many key records are queried (a selector named twice is queried once).
//!
//! Which letter when several could apply, in the order the checks run:
//! 1. the field does not parse as a tag list: H; `v=` is not `1`: W; a required tag (`v a b bh
//!    d h s`) missing or any tag value malformed (unknown `a=`, bad base64, `c=`, `q=` without
//!    `dns/txt`, non-numeric `l= t= x=`, `x=` before `t=`, `d=`/`s=` not a domain name): H;
//!    `h=` without `from`: H; `h=` without `subject` while the message has a Subject field and
//!    `UNSIGNED_SUBJECT` is not set: H; `i=` not in `d=` (or without `@`): Y;
//! 2. `x=` in the past: K;
//! 3. the key name (`s._domainkey.d`) over 253 octets or a label over 63: O (no query made);
//! 4. DNS: temporary failure, timeout, refused: P; NXDOMAIN or no TXT record: Q;
//! 5. the key record: several TXT records, not a tag list, `v=` not `DKIM1` (or not first),
//!    unknown `k=`, `s=` without `email`/`*`, no `p=`: L; `p=` empty: N; `k=` of another
//!    algorithm family or `h=` without the signature's hash: V; `p=` not a key, or an RSA key
//!    under 1024 or over 8192 bits: R; `g=` not matching the local part of `i=`: M; `t=s` and
//!    an `i=` in a subdomain of `d=`: Y;
//! 6. the body: shorter than `l=` or not hashing to `bh=`: U;
//! 7. the signature: RSA/Ed25519 verification fails: I, or J when the key has `t=y`;
//! 8. a signature that verified: X when `UNSIGNED_FROM` is set and the message has more From
//!    fields than `h=` covers; E when `l=` left part of the body unsigned and
//!    `HONOR_BODYLENGTHTAG` is not set; D for `rsa-sha1` unless `DKIM_ALLOW_SHA1` is set
//!    (RFC 8301); else A.
//!
//! Overall: any signature with A makes the message A; else the first signature's result (top
//! first); no signature: S. B, C, F, G and T are never produced here: B is a libdkim progress
//! code, C and F are folded into A (docs/decisions.md: Any signature that verifies makes the
//! message A), T is replaced by the first failure's own letter (more precise), G comes only
//! from the practice step ([`super::policy`]).

use super::canon::{self, BodyHasher};
use super::parse::{parse_signature, Parsed};
use super::record::{parse_key_record, KeyRecord, PublicKey};
use super::Algorithm;
use crate::auth_results::DkimResult;
use crate::dns::{TxtAnswer, TxtLookup};
use crate::glob::Glob;
use crate::message::{find_header_end, Headers};

/// Signatures evaluated per message (the top-most ones); the others are ignored.
pub(crate) const MAX_SIGNATURES: usize = 8;

/// The outcome of a signature or of a message: libdkim's statuses, one letter each (A..Y).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Outcome {
    Success = 0,
    FinishedBody,
    PartialSuccess,
    Neutral,
    SuccessButExtra,
    ThirdParty,
    Fail,
    BadSyntax,
    SignatureBad,
    SignatureBadButTesting,
    SignatureExpired,
    SelectorInvalid,
    GranularityMismatch,
    KeyRevoked,
    DomainNameTooLong,
    DnsTempFailure,
    DnsPermFailure,
    PublicKeyInvalid,
    NoSignatures,
    NoValidSignatures,
    BodyHashMismatch,
    AlgorithmMismatch,
    Incompatible,
    UnsignedFrom,
    BadIdentity,
}

impl Outcome {
    /// Every outcome, in letter order.
    pub const ALL: [Outcome; 25] = [
        Outcome::Success,
        Outcome::FinishedBody,
        Outcome::PartialSuccess,
        Outcome::Neutral,
        Outcome::SuccessButExtra,
        Outcome::ThirdParty,
        Outcome::Fail,
        Outcome::BadSyntax,
        Outcome::SignatureBad,
        Outcome::SignatureBadButTesting,
        Outcome::SignatureExpired,
        Outcome::SelectorInvalid,
        Outcome::GranularityMismatch,
        Outcome::KeyRevoked,
        Outcome::DomainNameTooLong,
        Outcome::DnsTempFailure,
        Outcome::DnsPermFailure,
        Outcome::PublicKeyInvalid,
        Outcome::NoSignatures,
        Outcome::NoValidSignatures,
        Outcome::BodyHashMismatch,
        Outcome::AlgorithmMismatch,
        Outcome::Incompatible,
        Outcome::UnsignedFrom,
        Outcome::BadIdentity,
    ];

    /// The `DKIMVERIFY` letter (uppercase).
    pub fn letter(self) -> char {
        (b'A' + self as u8) as char
    }

    /// The outcome of a letter (either case).
    pub(crate) fn from_letter(c: char) -> Option<Outcome> {
        let u = c.to_ascii_uppercase();
        if !u.is_ascii_uppercase() {
            return None;
        }
        Outcome::ALL.get((u as u8 - b'A') as usize).copied()
    }

    /// The status name (libdkim's, without `DKIM_`).
    pub fn name(self) -> &'static str {
        use Outcome::*;
        match self {
            Success => "SUCCESS",
            FinishedBody => "FINISHED_BODY",
            PartialSuccess => "PARTIAL_SUCCESS",
            Neutral => "NEUTRAL",
            SuccessButExtra => "SUCCESS_BUT_EXTRA",
            ThirdParty => "3PS_SIGNATURE",
            Fail => "FAIL",
            BadSyntax => "BAD_SYNTAX",
            SignatureBad => "SIGNATURE_BAD",
            SignatureBadButTesting => "SIGNATURE_BAD_BUT_TESTING",
            SignatureExpired => "SIGNATURE_EXPIRED",
            SelectorInvalid => "SELECTOR_INVALID",
            GranularityMismatch => "SELECTOR_GRANULARITY_MISMATCH",
            KeyRevoked => "SELECTOR_KEY_REVOKED",
            DomainNameTooLong => "SELECTOR_DOMAIN_NAME_TOO_LONG",
            DnsTempFailure => "SELECTOR_DNS_TEMP_FAILURE",
            DnsPermFailure => "SELECTOR_DNS_PERM_FAILURE",
            PublicKeyInvalid => "SELECTOR_PUBLIC_KEY_INVALID",
            NoSignatures => "NO_SIGNATURES",
            NoValidSignatures => "NO_VALID_SIGNATURES",
            BodyHashMismatch => "BODY_HASH_MISMATCH",
            AlgorithmMismatch => "SELECTOR_ALGORITHM_MISMATCH",
            Incompatible => "STAT_INCOMPAT",
            UnsignedFrom => "UNSIGNED_FROM",
            BadIdentity => "BAD_IDENTITY",
        }
    }

    /// libdkim's numeric status (dkim.h), used in the `(old=NAME:number)` line.
    pub fn number(self) -> i32 {
        use Outcome::*;
        match self {
            Success => 0,
            FinishedBody => 1,
            PartialSuccess => 2,
            Neutral => 3,
            SuccessButExtra => 4,
            ThirdParty => 5,
            Fail => -1,
            BadSyntax => -2,
            SignatureBad => -3,
            SignatureBadButTesting => -4,
            SignatureExpired => -5,
            SelectorInvalid => -6,
            GranularityMismatch => -7,
            KeyRevoked => -8,
            DomainNameTooLong => -9,
            DnsTempFailure => -10,
            DnsPermFailure => -11,
            PublicKeyInvalid => -12,
            NoSignatures => -13,
            NoValidSignatures => -14,
            BodyHashMismatch => -15,
            AlgorithmMismatch => -16,
            Incompatible => -17,
            UnsignedFrom => -18,
            BadIdentity => -19,
        }
    }

    /// The `DKIM-Status:` text: indimail's, its typos fixed (docs/migrating.md).
    pub fn status_text(self) -> &'static str {
        use Outcome::*;
        match self {
            Success => "good",
            FinishedBody => "process result: no more message body is needed",
            PartialSuccess => "verify result: at least one but not all signatures verified",
            Neutral => "verify result: no signatures verified but message is not suspicious",
            SuccessButExtra => "signature result: signature verified but it did not include all of the body",
            ThirdParty => "signature result: 3rd party signature",
            Fail => "DKIM Signature verification failed",
            BadSyntax => "signature error: DKIM-Signature could not parse or has bad tags/values",
            SignatureBad => "signature error: RSA/ED25519 verify failed",
            SignatureBadButTesting => "signature error: RSA/ED25519 verify failed but testing",
            SignatureExpired => "signature error: x= is old",
            SelectorInvalid => "signature error: selector doesn't parse or contains invalid values",
            GranularityMismatch => "signature error: selector g= doesn't match i=",
            KeyRevoked => "signature error: selector p= empty",
            DomainNameTooLong => "signature error: selector domain name too long to request",
            DnsTempFailure => "signature error: temporary dns failure requesting selector",
            DnsPermFailure => "signature error: permanent dns failure requesting selector",
            PublicKeyInvalid => "signature error: selector p= value invalid or wrong format",
            NoSignatures => "no signatures",
            NoValidSignatures => "no valid signatures",
            BodyHashMismatch => "signature verify error: message body does not hash to bh value",
            AlgorithmMismatch => "signature error: selector h= doesn't match signature a=",
            Incompatible => "signature error: incompatible v=",
            UnsignedFrom => "signature error: not all message's From headers in signature",
            BadIdentity => "signature error: invalid identity in signature",
        }
    }

    /// The enhanced status code after the class digit: `7.0`, `7.5`, `7.6` or `7.7`.
    pub fn code(self) -> &'static str {
        use Outcome::*;
        match self {
            Success | FinishedBody | PartialSuccess | Neutral | SuccessButExtra | ThirdParty | Fail
            | DomainNameTooLong | DnsTempFailure | DnsPermFailure => "7.0",
            BadSyntax
            | SignatureBad
            | SignatureBadButTesting
            | SignatureExpired
            | SelectorInvalid
            | GranularityMismatch
            | KeyRevoked
            | PublicKeyInvalid
            | NoSignatures
            | NoValidSignatures => "7.5",
            Incompatible => "7.6",
            BodyHashMismatch | AlgorithmMismatch | UnsignedFrom | BadIdentity => "7.7",
        }
    }

    /// The RFC 8601 `dkim=` result word.
    pub fn ar_result(self) -> &'static str {
        self.result().as_str()
    }

    /// The RFC 8601 result, typed.
    pub(crate) fn result(self) -> DkimResult {
        use Outcome::*;
        match self {
            Success | PartialSuccess | ThirdParty => DkimResult::Pass,
            NoSignatures => DkimResult::None,
            Neutral | SuccessButExtra | UnsignedFrom => DkimResult::Policy,
            FinishedBody => DkimResult::Neutral,
            Fail | SignatureBad | SignatureBadButTesting | BodyHashMismatch | NoValidSignatures => DkimResult::Fail,
            DnsTempFailure => DkimResult::TempError,
            BadSyntax | SignatureExpired | SelectorInvalid | GranularityMismatch | KeyRevoked | DomainNameTooLong
            | DnsPermFailure | PublicKeyInvalid | AlgorithmMismatch | Incompatible | BadIdentity => {
                DkimResult::PermError
            }
        }
    }

    pub(crate) fn is_pass(self) -> bool {
        self == Outcome::Success
    }
}

/// The settings that change verdicts (all from the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `DKIM_ALLOW_SHA1`: an rsa-sha1 signature that verifies is a pass (else D).
    pub allow_sha1: bool,
    /// `UNSIGNED_FROM`: X when a From field of the message is not covered.
    pub check_all_from: bool,
    /// `UNSIGNED_SUBJECT`: a signature need not cover Subject.
    pub allow_unsigned_subject: bool,
    /// `HONOR_BODYLENGTHTAG`: a signature whose l= leaves body unsigned can pass.
    pub honor_body_length: bool,
    pub max_signatures: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            allow_sha1: false,
            check_all_from: false,
            allow_unsigned_subject: false,
            honor_body_length: false,
            max_signatures: MAX_SIGNATURES,
        }
    }
}

/// One signature checked: its outcome, and the tags Authentication-Results shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub outcome: Outcome,
    pub domain: Option<String>,
    pub selector: Option<String>,
    pub identity: Option<String>,
    pub algorithm: Option<String>,
    /// The first 8 characters of b= (RFC 6008).
    pub b_prefix: Option<String>,
    /// A short explanation for the log.
    pub detail: String,
}

/// The results of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One per evaluated signature, top first.
    pub results: Vec<Verification>,
    /// DKIM-Signature fields beyond the limit, not evaluated.
    pub ignored: usize,
}

impl Report {
    /// The message's result: any pass → A; else the first failure; no signature → S.
    pub fn overall(&self) -> Outcome {
        if self.results.iter().any(|r| r.outcome.is_pass()) {
            return Outcome::Success;
        }
        self.results.iter().map(|r| r.outcome).find(|o| *o != Outcome::ThirdParty).unwrap_or(Outcome::NoSignatures)
    }
}

struct Sig {
    index: usize,
    shown: Verification,
    state: Result<Parsed, (Outcome, String)>,
}

/// Verifies the DKIM signatures of one message.
pub(crate) struct Verifier {
    opts: Options,
    sigs: Vec<Sig>,
    hashers: Vec<BodyHasher>,
    ignored: usize,
}

impl Verifier {
    /// Parses the signatures of a header block (before the body is read).
    pub(crate) fn new(headers: &Headers, opts: &Options, now: u64) -> Verifier {
        let mut v = Verifier { opts: opts.clone(), sigs: Vec::new(), hashers: Vec::new(), ignored: 0 };
        for (index, f) in headers.fields.iter().enumerate() {
            if !headers.name(f).eq_ignore_ascii_case(b"DKIM-Signature") {
                continue;
            }
            if v.sigs.len() >= v.opts.max_signatures {
                v.ignored += 1;
                continue;
            }
            let (shown, state) = parse_signature(headers, headers.value(f), &v.opts, now);
            let state = state.map(|mut p| {
                let want = (p.canon.body, p.alg.hash(), p.length);
                p.hasher = match v.hashers.iter().position(|h| (h.canon(), h.hash_alg(), h.limit()) == want) {
                    Some(i) => i,
                    None => {
                        v.hashers.push(BodyHasher::new(want.0, want.1, want.2));
                        v.hashers.len() - 1
                    }
                };
                p
            });
            v.sigs.push(Sig { index, shown, state });
        }
        v
    }

    /// Body bytes (after the blank line), in order, in any pieces.
    pub(crate) fn body(&mut self, data: &[u8]) {
        for h in &mut self.hashers {
            h.update(data);
        }
    }

    /// Fetches the keys and checks every signature.
    pub(crate) fn finish(self, headers: &Headers, dns: &dyn TxtLookup) -> Report {
        self.finish_keys(headers, &|_| dns)
    }

    /// [`finish`](Verifier::finish), each key asked of `keys(d)`: run() asks the keys of the
    /// signatures in line with the From domain as questions the sender cannot choose
    /// ([`crate::dns::unchosen`]).
    pub(crate) fn finish_keys<'k>(self, headers: &Headers, keys: &dyn Fn(&str) -> &'k dyn TxtLookup) -> Report {
        let Verifier { opts, sigs, hashers, ignored } = self;
        let bodies: Vec<(Vec<u8>, u64)> = hashers.into_iter().map(BodyHasher::finish).collect();
        let mut cache: Vec<(String, TxtAnswer)> = Vec::new();
        let mut results = Vec::with_capacity(sigs.len());
        for s in sigs {
            let (outcome, detail) = match &s.state {
                Err((o, d)) => (*o, d.clone()),
                Ok(p) => check(headers, s.index, p, &bodies[p.hasher], &opts, keys(&p.domain), &mut cache),
            };
            results.push(Verification { outcome, detail, ..s.shown });
        }
        Report { results, ignored }
    }
}

/// Verifies a whole message in memory (LF or CRLF line ends): for tests and tools.
pub fn verify_message(msg: &[u8], dns: &dyn TxtLookup, opts: &Options, now: u64) -> Report {
    let (end, body) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    let headers = Headers::parse(msg[..end].to_vec());
    let mut v = Verifier::new(&headers, opts, now);
    v.body(&msg[body..]);
    v.finish(&headers, dns)
}

fn check(
    headers: &Headers,
    index: usize,
    p: &Parsed,
    body: &(Vec<u8>, u64),
    opts: &Options,
    dns: &dyn TxtLookup,
    cache: &mut Vec<(String, TxtAnswer)>,
) -> (Outcome, String) {
    let name = format!("{}._domainkey.{}", p.selector, p.domain);
    let key = match fetch_key(dns, cache, &name, p.alg) {
        Ok(k) => k,
        Err(e) => return e,
    };
    if let Some(g) = &key.granularity {
        let local = p.identity.rsplit_once('@').map_or("", |(l, _)| l);
        if !Glob::star_only(g).matches(local) {
            return (Outcome::GranularityMismatch, format!("{name}: g={g} does not match i={}", p.identity));
        }
    }
    if key.strict {
        let idom = p.identity.rsplit_once('@').map_or("", |(_, d)| d);
        if !idom.eq_ignore_ascii_case(&p.domain) {
            return (Outcome::BadIdentity, format!("{name}: t=s and i={} is not d={}", p.identity, p.domain));
        }
    }
    let (hash, total) = body;
    if let Some(l) = p.length {
        if *total < l {
            return (Outcome::BodyHashMismatch, format!("body of {total} octets is shorter than l={l}"));
        }
    }
    if *hash != p.bh {
        return (Outcome::BodyHashMismatch, "body hash differs from bh=".into());
    }
    let mut data = Vec::with_capacity(4096);
    canon::signed_headers(p.canon.header, headers, &p.headers, Some(index), &mut data);
    let Some(field) = headers.fields.get(index) else {
        return (Outcome::BadSyntax, "internal: signature field vanished".into());
    };
    canon::signature_header(p.canon.header, headers.raw(field), &mut data);
    if !verify_sig(&key.key, p.alg, &data, &p.b) {
        return if key.testing {
            (Outcome::SignatureBadButTesting, format!("{name}: {} signature does not verify (t=y)", p.alg.as_str()))
        } else {
            (Outcome::SignatureBad, format!("{name}: {} signature does not verify", p.alg.as_str()))
        };
    }
    if opts.check_all_from {
        let signed = p.headers.iter().filter(|n| n.eq_ignore_ascii_case("from")).count();
        let present = headers.views_named("From").filter(|v| v.kind.is_field()).count();
        if present > signed {
            return (Outcome::UnsignedFrom, format!("{present} From fields, {signed} signed"));
        }
    }
    if let Some(l) = p.length {
        if *total > l && !opts.honor_body_length {
            return (Outcome::SuccessButExtra, format!("l={l} signs {l} of {total} body octets"));
        }
    }
    if p.alg == Algorithm::RsaSha1 && !opts.allow_sha1 {
        return (Outcome::Neutral, "rsa-sha1 verified but is not accepted (RFC 8301; DKIM_ALLOW_SHA1)".into());
    }
    (Outcome::Success, format!("{name}: verified"))
}

/// The key record at `name` (`s._domainkey.d`) for a signature of `alg`, each name asked once
/// per message (`cache`). The one key lookup of DKIM and ARC (crate::arc); the error is the
/// outcome and its detail, which starts with the name.
pub(crate) fn fetch_key(
    dns: &dyn TxtLookup,
    cache: &mut Vec<(String, TxtAnswer)>,
    name: &str,
    alg: Algorithm,
) -> Result<KeyRecord, (Outcome, String)> {
    let answer = match cache.iter().find(|(n, _)| n == name) {
        Some((_, a)) => a.clone(),
        None => {
            let a = dns.txt(name);
            cache.push((name.to_string(), a.clone()));
            a
        }
    };
    let record = match answer {
        TxtAnswer::BadName => return Err((Outcome::DomainNameTooLong, format!("{name} cannot be requested"))),
        TxtAnswer::TempFail(why) => return Err((Outcome::DnsTempFailure, format!("{name}: {why}"))),
        TxtAnswer::NotFound => return Err((Outcome::DnsPermFailure, format!("{name}: no such TXT record"))),
        TxtAnswer::Records(r) if r.len() != 1 => {
            return Err((Outcome::SelectorInvalid, format!("{name}: {} TXT records", r.len())))
        }
        TxtAnswer::Records(mut r) => r.pop().unwrap_or_default(),
    };
    parse_key_record(&record, alg).map_err(|(o, why)| (o, format!("{name}: {why}")))
}

/// Whether `sig` signs `data` (the header data, unhashed) with `key` under `alg`.
pub(crate) fn verify_sig(key: &PublicKey, alg: Algorithm, data: &[u8], sig: &[u8]) -> bool {
    use ring::signature as s;
    match (key, alg) {
        (PublicKey::Rsa { n, e }, Algorithm::RsaSha1 | Algorithm::RsaSha256) => {
            let bits = n.len() * 8;
            let params: &s::RsaParameters = match alg {
                Algorithm::RsaSha1 => &s::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                _ if bits >= 2048 => &s::RSA_PKCS1_2048_8192_SHA256,
                _ => &s::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            };
            s::RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, data, sig).is_ok()
        }
        (PublicKey::Ed25519(k), Algorithm::Ed25519Sha256) => {
            let digest = ring::digest::digest(&ring::digest::SHA256, data);
            s::UnparsedPublicKey::new(&s::ED25519, k).verify(digest.as_ref(), sig).is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
