//! Verifying a DomainKey-Signature (the topmost one, as libdomainkeys does).
//!
//! Before the body: find and parse the signature, check the sender, pick the signed fields and
//! hash them ([`start`]). After the body: fetch the key, check it and the signature ([`finish`]).
//! The status alone decides a refusal, as in qmail-dk (libdomainkeys' `dk_eom` gives BADSIG or
//! NOSIG whatever `o=` says); the sending domain's policy record `_domainkey.<sender domain>`
//! is only read to be reported ([`lookup_policy`]).

use super::canon::{select_fields, DkHasher};
use super::{is_same_or_subdomain, parse_mailbox, Canon, Mailbox, Outcome};
use crate::der;
#[cfg(test)]
use crate::der::bit_length as bit_len;
use crate::dkim::tags::{h_names, strip_ws, TagList};
use crate::dns::{TxtAnswer, TxtLookup};
use crate::glob::Glob;
use crate::message::Headers;
use base64::Engine;

/// Key sizes accepted when verifying.
use crate::dkim::key::{DOMAINKEYS_MAX_VERIFY_BITS as MAX_VERIFY_BITS, DOMAINKEYS_MIN_VERIFY_BITS as MIN_VERIFY_BITS};
/// A decoded b= of this many bytes or more is not processed (libdomainkeys: NORESOURCE).
pub(crate) const MAX_SIGNATURE_BYTES: usize = 1024;
/// DomainKey-Signature fields examined per message, from the top: the topmost is verified, the
/// others only checked for a second signature by the same d=; fields below these are ignored.
pub(crate) const MAX_SIGNATURES: usize = 8;

const SHA1_PREFIX: &[u8] = &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];

pub(crate) use crate::auth_results::SenderField;

/// The result of one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub outcome: Outcome,
    /// The signature's d=, when one was parsed.
    pub domain: Option<String>,
    pub selector: Option<String>,
    /// The sending address and where it came from.
    pub sender: Option<(SenderField, Mailbox)>,
    /// The key record said t=y.
    pub key_testing: bool,
    /// The sending domain's policy, when it was looked up to be reported.
    pub policy: Option<Policy>,
    /// A detail for the log.
    pub detail: String,
}

impl Verification {
    /// What the key's and the domain's flags say about a message that did not pass, for the
    /// comment of `DomainKey-Status:` and `Authentication-Results:`; fixed words only, so nothing
    /// from the DNS or the message needs quoting. None for a pass or when there is nothing to say.
    pub(crate) fn comment(&self) -> Option<String> {
        if self.outcome == Outcome::Ok {
            return None;
        }
        let mut parts: Vec<&str> = Vec::new();
        if self.key_testing {
            parts.push("key t=y: testing");
        }
        match &self.policy {
            None => {}
            Some(Policy::Published { signs_all, testing }) => {
                parts.push(if *signs_all {
                    "policy o=-: the domain signs all its mail"
                } else {
                    "policy o=~: the domain signs some of its mail"
                });
                if *testing {
                    parts.push("policy t=y: testing");
                }
            }
            Some(Policy::NotPublished) => parts.push("no policy published"),
            Some(Policy::Unknown) => parts.push("policy unknown"),
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn new(outcome: Outcome, detail: impl Into<String>) -> Verification {
        Verification {
            outcome,
            domain: None,
            selector: None,
            sender: None,
            key_testing: false,
            policy: None,
            detail: detail.into(),
        }
    }
}

/// The sending domain's policy record (RFC 4870), reported and never applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// One record: `o=-` (signs all its mail) or anything else (`o=~`, the default), `t=y`.
    Published { signs_all: bool, testing: bool },
    /// No such name, or no TXT record there.
    NotPublished,
    /// A DNS failure, several records, or one that does not parse.
    Unknown,
}

/// A signature ready to be checked once the body is hashed.
pub struct Pending {
    pub verification: Verification,
    pub hasher: DkHasher,
    selector: String,
    domain: String,
    signature: Vec<u8>,
}

pub enum Start {
    /// Decided from the headers alone.
    Done(Verification),
    /// The signed fields are hashed; feed the body, then call [`finish`].
    Hash(Box<Pending>),
}

/// The sending address of the message as a whole: the first Sender:, else the first From:.
pub fn message_sender(headers: &Headers) -> Option<(SenderField, Mailbox)> {
    if let Some(m) = headers.views_named("Sender").next().and_then(|v| parse_mailbox(v.value)) {
        return Some((SenderField::Sender, m));
    }
    headers.views_named("From").next().and_then(|v| parse_mailbox(v.value)).map(|m| (SenderField::From, m))
}

/// Everything that can be decided before the body.
pub fn start(headers: &Headers) -> Start {
    let sigs: Vec<usize> = (headers.fields.iter().enumerate())
        .filter(|(_, f)| headers.name(f).eq_ignore_ascii_case(b"DomainKey-Signature"))
        .map(|(i, _)| i)
        .take(MAX_SIGNATURES)
        .collect();
    let Some(&top) = sigs.first() else {
        let mut o = Verification::new(Outcome::NoSig, "no DomainKey-Signature");
        o.sender = message_sender(headers);
        return Start::Done(o);
    };
    match prepare(headers, top, &sigs) {
        Ok(p) => Start::Hash(Box::new(p)),
        Err(mut o) => {
            if o.sender.is_none() {
                o.sender = message_sender(headers);
            }
            Start::Done(*o)
        }
    }
}

fn prepare(headers: &Headers, top: usize, sigs: &[usize]) -> Result<Pending, Box<Verification>> {
    let value = headers.value(&headers.fields[top]);
    let tags = TagList::parse(value)
        .map_err(|e| Box::new(Verification::new(Outcome::Syntax, format!("DomainKey-Signature: {e}"))))?;
    let get = |n: &str| tags.get(n).map(strip_ws);
    let (Some(domain), Some(selector), Some(b)) = (get("d"), get("s"), get("b")) else {
        return Err(Box::new(Verification::new(Outcome::NoSig, "DomainKey-Signature without d=, s= or b=")));
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let with = |mut o: Verification| {
        o.domain = Some(domain.clone());
        o.selector = Some(selector.clone());
        Box::new(o)
    };
    if domain.is_empty() || selector.is_empty() {
        return Err(with(Verification::new(Outcome::NoSig, "empty d= or s=")));
    }
    let canon = match get("c") {
        None => Canon::Simple,
        Some(c) => {
            Canon::parse(&c).ok_or_else(|| with(Verification::new(Outcome::Syntax, format!("unknown c={c}"))))?
        }
    };
    if let Some(q) = get("q") {
        if !q.eq_ignore_ascii_case("dns") {
            return Err(with(Verification::new(Outcome::Args, format!("unsupported q={q}"))));
        }
    }
    if let Some(a) = get("a") {
        if !a.eq_ignore_ascii_case("rsa-sha1") {
            return Err(with(Verification::new(Outcome::Args, format!("unsupported a={a}"))));
        }
    }
    for &other in &sigs[1..] {
        let d = TagList::parse(headers.value(&headers.fields[other]))
            .ok()
            .and_then(|t| t.get("d").map(|d| strip_ws(d).trim_end_matches('.').to_ascii_lowercase()));
        if d.as_deref() == Some(domain.as_str()) {
            return Err(with(Verification::new(Outcome::Duplicate, format!("two DomainKey-Signatures by d={domain}"))));
        }
    }
    // The sending address: Sender: below the signature, else From: (RFC 4870 §3.4.1).
    if headers.views_named("From").filter(|v| v.kind.is_field()).count() > 1 {
        return Err(with(Verification::new(Outcome::Syntax, "more than one From: header")));
    }
    let below = |name: &str| -> Vec<usize> {
        (top + 1..headers.fields.len())
            .filter(|&i| headers.name(&headers.fields[i]).eq_ignore_ascii_case(name.as_bytes()))
            .collect()
    };
    let senders = below("Sender");
    if senders.len() > 1 {
        return Err(with(Verification::new(Outcome::Syntax, "more than one Sender: header")));
    }
    let (kind, idx) = match (senders.first(), below("From").first()) {
        (Some(&s), _) => (SenderField::Sender, s),
        (None, Some(&f)) => (SenderField::From, f),
        (None, None) => return Err(with(Verification::new(Outcome::NoSig, "no From: header below the signature"))),
    };
    let h = match tags.get("h").map(h_names).transpose() {
        Ok(h) => h,
        Err(e) => return Err(with(Verification::new(Outcome::NoResource, e.to_string()))),
    };
    let fields = select_fields(headers, top + 1, h.as_deref());
    if !fields.contains(&idx) {
        let name = if kind == SenderField::Sender { "Sender:" } else { "From:" };
        return Err(with(Verification::new(Outcome::NoSig, format!("the signature does not cover the {name} header"))));
    }
    let Some(mailbox) = parse_mailbox(headers.value(&headers.fields[idx])) else {
        return Err(with(Verification::new(Outcome::Syntax, "no usable address in the sender header")));
    };
    let sender = Some((kind, mailbox.clone()));
    if !is_same_or_subdomain(&mailbox.domain, &domain) {
        let mut o = with(Verification::new(
            Outcome::Syntax,
            format!("d={domain} is not the sender's domain {}", mailbox.domain),
        ));
        o.sender = sender;
        return Err(o);
    }
    let signature = match base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
        Ok(s) => s,
        Err(_) => {
            let mut o = with(Verification::new(Outcome::Syntax, "b= is not base64"));
            o.sender = sender;
            return Err(o);
        }
    };
    if signature.len() >= MAX_SIGNATURE_BYTES {
        let mut o = with(Verification::new(Outcome::NoResource, format!("b= of {} bytes", signature.len())));
        o.sender = sender;
        return Err(o);
    }
    let mut hasher = DkHasher::new(canon);
    for &i in &fields {
        hasher.header(headers.raw(&headers.fields[i]));
    }
    let mut verification = *with(Verification::new(Outcome::Internal, "not finished"));
    verification.sender = sender;
    Ok(Pending { verification, hasher, selector, domain, signature })
}

/// Fetches the key, checks it, and verifies the signature over the finished hash.
pub fn finish(p: Pending, dns: &dyn TxtLookup) -> Verification {
    let Pending { mut verification, hasher, selector, domain, signature } = p;
    let digest = hasher.finish();
    let (outcome, detail) = check_key_and_signature(&mut verification, &selector, &domain, &signature, &digest, dns);
    verification.outcome = outcome;
    verification.detail = detail;
    verification
}

fn check_key_and_signature(
    o: &mut Verification,
    selector: &str,
    domain: &str,
    signature: &[u8],
    digest: &[u8],
    dns: &dyn TxtLookup,
) -> (Outcome, String) {
    let name = format!("{selector}._domainkey.{domain}");
    let record = match dns.txt(&name) {
        TxtAnswer::TempFail(e) => return (Outcome::CantVerify, format!("{name}: {e}")),
        TxtAnswer::NotFound => return (Outcome::NoKey, format!("{name}: no key record")),
        TxtAnswer::BadName => return (Outcome::NoKey, format!("{name}: not a valid DNS name")),
        TxtAnswer::Records(r) if r.len() == 1 => r.into_iter().next().unwrap_or_default(),
        TxtAnswer::Records(r) if r.is_empty() => return (Outcome::NoKey, format!("{name}: no key record")),
        TxtAnswer::Records(r) => return (Outcome::BadKey, format!("{name}: {} TXT records", r.len())),
    };
    let tags = match TagList::parse_record(&record) {
        Ok(t) => t,
        Err(e) => return (Outcome::BadKey, format!("{name}: {e}")),
    };
    o.key_testing = tags.get("t").is_some_and(|t| t.contains('y'));
    if let (Some(g), Some((_, sender))) = (tags.get("g").map(strip_ws), &o.sender) {
        if !g.is_empty() && !granularity_matches(&g, &sender.local) {
            return (Outcome::Granularity, format!("g={g} does not match {}", sender.address()));
        }
    }
    let Some(p) = tags.get("p").map(strip_ws) else {
        return (Outcome::NoKey, format!("{name}: key record without p="));
    };
    if p.is_empty() {
        return (Outcome::Revoked, format!("{name}: p= is empty"));
    }
    if let Some(k) = tags.get("k").map(strip_ws) {
        if !k.eq_ignore_ascii_case("rsa") {
            return (Outcome::BadKey, format!("{name}: unsupported k={k}"));
        }
    }
    let key = match base64::engine::general_purpose::STANDARD.decode(p.as_bytes()) {
        Ok(k) => k,
        Err(_) => return (Outcome::BadKey, format!("{name}: p= is not base64")),
    };
    let Some((n, e)) = rsa_components(&key) else {
        return (Outcome::BadKey, format!("{name}: p= is not an RSA public key"));
    };
    let bits = der::bit_length(n);
    if !(MIN_VERIFY_BITS..=MAX_VERIFY_BITS).contains(&bits) {
        return (Outcome::BadKey, format!("{name}: {bits}-bit key (accepted: {MIN_VERIFY_BITS}–{MAX_VERIFY_BITS})"));
    }
    match rsa_sha1_verify(n, e, digest, signature) {
        Ok(true) => (Outcome::Ok, format!("verified with {name} ({bits} bits)")),
        Ok(false) => (Outcome::BadSig, format!("signature does not verify with {name}")),
        Err(why) => (Outcome::BadKey, format!("{name}: {why}")),
    }
}

/// g=: the local part must match exactly (case-insensitive, as libdomainkeys); each `*` in g=
/// matches any run of characters (as Mail::DKIM allows).
pub(crate) fn granularity_matches(g: &str, local: &str) -> bool {
    Glob::star_only(g).ignore_case().matches(local)
}

/// Whether the policy is worth reporting for this status: a message that did not pass, with a
/// DNS that answers (after F the query would wait for the same broken server) and a signature
/// that could be processed.
pub(crate) fn policy_matters(s: Outcome) -> bool {
    !matches!(s, Outcome::Ok | Outcome::CantVerify | Outcome::NoResource | Outcome::Internal)
}

/// Reads the policy record of the sending domain (first `Sender:`, else first `From:`) into
/// `o.policy` when [`policy_matters`]: one DNS query at most, and none without a sender domain.
/// The result is only reported: qmail-dk refuses by the status letter alone.
pub fn lookup_policy(o: &mut Verification, headers: &Headers, dns: &dyn TxtLookup) {
    if !policy_matters(o.outcome) {
        return;
    }
    let Some((_, sender)) = message_sender(headers) else { return };
    o.policy = Some(match dns.txt(&format!("_domainkey.{}", sender.domain)) {
        TxtAnswer::Records(r) if r.is_empty() => Policy::NotPublished,
        TxtAnswer::Records(r) if r.len() > 1 => Policy::Unknown,
        TxtAnswer::Records(r) => match r.first().map(|rec| TagList::parse_record(rec)) {
            Some(Ok(t)) => Policy::Published {
                signs_all: t.get("o").is_some_and(|v| strip_ws(v).starts_with('-')),
                testing: t.get("t").is_some_and(|v| strip_ws(v).contains('y')),
            },
            _ => Policy::Unknown,
        },
        TxtAnswer::NotFound | TxtAnswer::BadName => Policy::NotPublished,
        TxtAnswer::TempFail(_) => Policy::Unknown,
    });
}

/// RSA PKCS#1 v1.5 verification of a SHA-1 digest (the `rsa` crate: it accepts a digest and
/// keys under 1024 bits; public-key operations have no timing secret to leak).
pub(crate) fn rsa_sha1_verify(n: &[u8], e: &[u8], digest: &[u8], sig: &[u8]) -> Result<bool, String> {
    let n = der::strip_zeros(n);
    let e = der::strip_zeros(e);
    let key = rsa::PublicKey::new_with_size_limits(
        rsa::BoxedUint::from_be_slice_vartime(n),
        rsa::BoxedUint::from_be_slice_vartime(e),
        MIN_VERIFY_BITS..=MAX_VERIFY_BITS,
    )
    .map_err(|e| format!("unusable RSA key: {e}"))?;
    let pad = rsa::Pkcs1v15Sign { hash_len: Some(digest.len()), prefix: SHA1_PREFIX.into() };
    Ok(key.verify(pad, digest, sig).is_ok())
}

// ---------------------------------------------------------------------------
// The public key in p=: SubjectPublicKeyInfo (what DomainKeys and DKIM publish) or a bare
// PKCS#1 RSAPublicKey, with nothing after it (the DER reader is crate::der).

/// (modulus, exponent) of an RSA public key in SPKI or PKCS#1 DER, as the INTEGERs hold them.
/// The key inside a SubjectPublicKeyInfo may itself be either form; deeper nesting is refused
/// (a loop, not recursion: the record is attacker input).
pub(crate) fn rsa_components(mut key: &[u8]) -> Option<(&[u8], &[u8])> {
    for _ in 0..2 {
        let Some(s) = der::spki(key) else { break };
        if s.trailing || s.algorithm != der::OID_RSA_ENCRYPTION {
            return None;
        }
        key = s.key;
    }
    let k = der::rsa_public_key(key)?;
    if k.trailing || k.n.is_empty() || k.e.is_empty() {
        return None;
    }
    Some((k.n, k.e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers from a table; everything else is NXDOMAIN.
    pub(crate) struct Table(pub Vec<(String, TxtAnswer)>);

    impl TxtLookup for Table {
        fn txt(&self, name: &str) -> TxtAnswer {
            self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or(TxtAnswer::NotFound, |(_, a)| a.clone())
        }
    }

    #[test]
    fn granularity() {
        assert!(granularity_matches("joe", "Joe"));
        assert!(!granularity_matches("joe", "joel"));
        assert!(granularity_matches("j*", "joel"));
        assert!(granularity_matches("*-list", "news-list"));
        assert!(!granularity_matches("*-list", "news"));
    }

    #[test]
    fn der_reader() {
        // A 512-bit SPKI made by openssl.
        let spki = base64::engine::general_purpose::STANDARD
            .decode("MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL02WYVl+YhHOQRWa0zbkazGb2RQ9lvrKXfxZf1fYRbkE2e68g8NP9dx9BBU6Rs1Nsk2pgybiIltOH4YWwr8HE8CAwEAAQ==")
            .unwrap();
        let (n, e) = rsa_components(&spki).unwrap();
        assert_eq!(bit_len(n), 512);
        assert_eq!(e, &[1, 0, 1]);
        assert!(rsa_components(&spki[..spki.len() - 1]).is_none());
        assert!(rsa_components(b"\x30\x00").is_none());
        assert!(rsa_components(b"").is_none());
    }

    fn h(s: &str) -> Headers {
        Headers::parse(s.as_bytes().to_vec())
    }

    fn done(headers: &Headers) -> Verification {
        match start(headers) {
            Start::Done(o) => o,
            Start::Hash(_) => panic!("expected an early outcome"),
        }
    }

    #[test]
    fn early_outcomes() {
        assert_eq!(done(&h("From: a@b.c\n")).outcome, Outcome::NoSig);
        assert_eq!(done(&h("DomainKey-Signature: d=b.c; s=s\nFrom: a@b.c\n")).outcome, Outcome::NoSig);
        assert_eq!(done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA; x\nFrom: a@b.c\n")).outcome, Outcome::Syntax);
        assert_eq!(
            done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA; c=relaxed\nFrom: a@b.c\n")).outcome,
            Outcome::Syntax
        );
        assert_eq!(
            done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA; a=rsa-sha256\nFrom: a@b.c\n")).outcome,
            Outcome::Args
        );
        assert_eq!(done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA; q=http\nFrom: a@b.c\n")).outcome, Outcome::Args);
        assert_eq!(
            done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA\nDomainKey-Signature: d=B.c; s=t; b=AAAA\nFrom: a@b.c\n"))
                .outcome,
            Outcome::Duplicate
        );
        assert_eq!(
            done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA\nFrom: a@b.c\nFrom: x@b.c\n")).outcome,
            Outcome::Syntax
        );
        // From above the signature only: not covered.
        assert_eq!(
            done(&h("From: a@b.c\nDomainKey-Signature: d=b.c; s=s; b=AAAA\nTo: x@y.z\n")).outcome,
            Outcome::NoSig
        );
        // h= without From.
        assert_eq!(
            done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA; h=to\nFrom: a@b.c\nTo: x@y.z\n")).outcome,
            Outcome::NoSig
        );
        assert_eq!(done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA\nFrom: undisclosed\n")).outcome, Outcome::Syntax);
        assert_eq!(done(&h("DomainKey-Signature: d=other.org; s=s; b=AAAA\nFrom: a@b.c\n")).outcome, Outcome::Syntax);
        assert_eq!(done(&h("DomainKey-Signature: d=b.c; s=s; b=!!!\nFrom: a@b.c\n")).outcome, Outcome::Syntax);
        let big = "A".repeat(1400);
        assert_eq!(
            done(&h(&format!("DomainKey-Signature: d=b.c; s=s; b={big}\nFrom: a@b.c\n"))).outcome,
            Outcome::NoResource
        );
        // A parent domain may sign; Sender: wins over From:.
        assert!(matches!(start(&h("DomainKey-Signature: d=c; s=s; b=AAAA\nFrom: a@b.c\n")), Start::Hash(_)));
        let o = done(&h("DomainKey-Signature: d=b.c; s=s; b=AAAA\nFrom: a@b.c\nSender: l@list.org\n"));
        assert_eq!((o.outcome, o.sender.map(|s| s.0)), (Outcome::Syntax, Some(SenderField::Sender)));
    }

    /// A signature by b.c on top, then `n` more by other domains, one by b.c at `dup`, and From.
    fn many_signatures(n: usize, dup: usize) -> Headers {
        let mut s = String::from("DomainKey-Signature: d=b.c; s=s; b=AAAA\n");
        for i in 1..=n {
            let d = if i == dup { "b.c".to_string() } else { format!("x{i}.b.c") };
            s += &format!("DomainKey-Signature: d={d}; s=s; b=AAAA\n");
        }
        h(&(s + "From: a@b.c\n"))
    }

    #[test]
    fn many_domainkey_signature_fields_are_linear() {
        // Was quadratic: each signature field was looked up again among all fields.
        crate::linear::assert_linear(
            "DomainKey-Signature fields",
            5_000,
            |n| {
                let headers = many_signatures(n, n);
                move || assert!(matches!(start(&headers), Start::Hash(_)))
            },
            |work| work(),
        );
        // Only the first MAX_SIGNATURES are examined: a second b.c signature further down is not seen.
        assert_eq!(done(&many_signatures(20, MAX_SIGNATURES - 1)).outcome, Outcome::Duplicate);
        assert!(matches!(start(&many_signatures(20, MAX_SIGNATURES)), Start::Hash(_)));
    }

    #[test]
    fn huge_domainkeys_h_list_is_bounded() {
        let names = |n: usize| vec!["from"; n].join(":");
        let msg = |h: &str| format!("DomainKey-Signature: d=b.c; s=s; b=AAAA; h={h}\nFrom: a@b.c\n");
        assert!(matches!(start(&h(&msg(&names(crate::dkim::tags::MAX_H_NAMES)))), Start::Hash(_)));
        let o = done(&h(&msg(&names(crate::dkim::tags::MAX_H_NAMES + 1))));
        assert_eq!((o.outcome, o.detail.as_str()), (Outcome::NoResource, "h= lists more than 200000 names"));
        assert_eq!(done(&h(&msg(&":".repeat(4 << 20)))).outcome, Outcome::NoResource);
    }

    fn pending(headers: &Headers) -> Pending {
        match start(headers) {
            Start::Hash(p) => *p,
            Start::Done(o) => panic!("early outcome {o:?}"),
        }
    }

    #[test]
    fn key_record_outcomes() {
        let msg = h("DomainKey-Signature: d=b.c; s=s; b=AAAA\nFrom: joe@b.c\n");
        let key = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL02WYVl+YhHOQRWa0zbkazGb2RQ9lvrKXfxZf1fYRbkE2e68g8NP9dx9BBU6Rs1Nsk2pgybiIltOH4YWwr8HE8CAwEAAQ==";
        let run = |ans: TxtAnswer| finish(pending(&msg), &Table(vec![("s._domainkey.b.c".into(), ans)])).outcome;
        let rec = |s: &str| TxtAnswer::Records(vec![s.as_bytes().to_vec()]);
        assert_eq!(run(TxtAnswer::NotFound), Outcome::NoKey);
        assert_eq!(run(TxtAnswer::TempFail("timeout".into())), Outcome::CantVerify);
        assert_eq!(run(rec("k=rsa")), Outcome::NoKey);
        assert_eq!(run(rec("k=rsa; p=")), Outcome::Revoked);
        assert_eq!(run(rec("k=rsa; p=AAAA")), Outcome::BadKey);
        assert_eq!(run(rec("k=dsa; p=AAAA")), Outcome::BadKey);
        assert_eq!(run(rec("k=rsa; p; x")), Outcome::BadKey);
        assert_eq!(run(rec(&format!("g=jim; k=rsa; p={key}"))), Outcome::Granularity);
        assert_eq!(run(rec(&format!("g=; k=rsa; p={key}"))), Outcome::BadSig);
        assert_eq!(run(rec(&format!("g=joe; k=rsa; p={key}"))), Outcome::BadSig);
        assert_eq!(run(TxtAnswer::Records(vec![b"p=".to_vec(), b"p=".to_vec()])), Outcome::BadKey);
    }

    /// Answers from a table and counts the questions.
    struct Counting(Table, std::cell::Cell<usize>);

    impl TxtLookup for Counting {
        fn txt(&self, name: &str) -> TxtAnswer {
            self.1.set(self.1.get() + 1);
            self.0.txt(name)
        }
    }

    fn policy_of(status: Outcome, headers: &Headers, answer: Option<TxtAnswer>) -> (Option<Policy>, usize) {
        let mut o = Verification::new(status, "x");
        let dns = Counting(
            Table(answer.into_iter().map(|a| ("_domainkey.b.c".to_string(), a)).collect()),
            Default::default(),
        );
        lookup_policy(&mut o, headers, &dns);
        (o.policy, dns.1.get())
    }

    #[test]
    fn policy_is_read_once_and_only_to_be_reported() {
        let headers = h("From: joe@b.c\n");
        let rec = |s: &str| Some(TxtAnswer::Records(vec![s.as_bytes().to_vec()]));
        let published = |signs_all, testing| (Some(Policy::Published { signs_all, testing }), 1);
        assert_eq!(policy_of(Outcome::NoSig, &headers, None), (Some(Policy::NotPublished), 1));
        assert_eq!(policy_of(Outcome::BadSig, &headers, rec("o=-")), published(true, false));
        assert_eq!(policy_of(Outcome::BadSig, &headers, rec("o=~; r=postmaster@b.c")), published(false, false));
        assert_eq!(policy_of(Outcome::NoSig, &headers, rec("t=y; o= -")), published(true, true));
        assert_eq!(policy_of(Outcome::NoSig, &headers, rec("r=x")), published(false, false));
        assert_eq!(policy_of(Outcome::NoSig, &headers, rec("\u{0}\u{1}garbage")), (Some(Policy::Unknown), 1));
        let two = Some(TxtAnswer::Records(vec![b"o=-".to_vec(), b"o=~".to_vec()]));
        assert_eq!(policy_of(Outcome::NoSig, &headers, two), (Some(Policy::Unknown), 1));
        assert_eq!(
            policy_of(Outcome::NoSig, &headers, Some(TxtAnswer::TempFail("t".into()))),
            (Some(Policy::Unknown), 1)
        );
        // Not looked up for a pass, after a DNS failure, or without a sender domain.
        for s in [Outcome::Ok, Outcome::CantVerify, Outcome::NoResource, Outcome::Internal] {
            assert_eq!(policy_of(s, &headers, rec("o=-")), (None, 0), "{s:?}");
        }
        assert_eq!(policy_of(Outcome::NoSig, &h("Subject: x\n"), rec("o=-")), (None, 0));
    }

    #[test]
    fn comments() {
        let mut o = Verification::new(Outcome::BadSig, "x");
        assert_eq!(o.comment(), None);
        o.key_testing = true;
        o.policy = Some(Policy::Published { signs_all: true, testing: true });
        assert_eq!(
            o.comment().as_deref(),
            Some("key t=y: testing; policy o=-: the domain signs all its mail; policy t=y: testing")
        );
        o.key_testing = false;
        o.policy = Some(Policy::NotPublished);
        assert_eq!(o.comment().as_deref(), Some("no policy published"));
        // A pass says nothing, not even about a key in testing.
        o.outcome = Outcome::Ok;
        o.key_testing = true;
        assert_eq!(o.comment(), None);
    }

    /// A DomainKeys `p=` of SubjectPublicKeyInfos nested inside each other, as deep as the record
    /// allows: read without recursion (it once recursed once per level, so a deep enough nesting,
    /// which `SELECTOR_DATA` does not bound, overflowed the stack).
    #[test]
    fn domainkeys_key_in_nested_spki_does_not_recurse() {
        use crate::der::TAG_SEQUENCE;
        use crate::der::{tlv, unsigned_integer, write_len, OID_RSA_ENCRYPTION, TAG_BIT_STRING, TAG_NULL, TAG_OID};
        let mut pkcs1 = unsigned_integer(&[0xc5; 128]);
        pkcs1.extend(unsigned_integer(&[1, 0, 1]));
        let pkcs1 = tlv(TAG_SEQUENCE, &pkcs1);
        let mut alg = tlv(TAG_OID, OID_RSA_ENCRYPTION);
        alg.extend(tlv(TAG_NULL, &[]));
        let alg = tlv(TAG_SEQUENCE, &alg);
        // What der::spki_from_pkcs1 makes, `depth` times around the key, built in linear time: the
        // heads of the layers from the inside out, then written outermost first.
        let nest = |depth: usize| {
            let mut heads: Vec<Vec<u8>> = Vec::with_capacity(depth);
            let mut inner = pkcs1.len();
            for _ in 0..depth {
                let mut bits = vec![TAG_BIT_STRING];
                write_len(inner + 1, &mut bits);
                bits.push(0);
                let body = alg.len() + bits.len() + inner;
                let mut head = vec![TAG_SEQUENCE];
                write_len(body, &mut head);
                head.extend(&alg);
                head.extend(bits);
                inner += head.len();
                heads.push(head);
            }
            let mut out: Vec<u8> = heads.into_iter().rev().flatten().collect();
            out.extend(&pkcs1);
            out
        };
        assert_eq!(nest(1), crate::der::spki_from_pkcs1(&pkcs1));
        assert!(rsa_components(&nest(1)).is_some(), "a key in a SubjectPublicKeyInfo");
        assert!(rsa_components(&nest(2)).is_some(), "and in one more, as some publishers wrote it");
        assert!(rsa_components(&nest(3)).is_none(), "deeper is no key");
        // About 3 MB; with one stack frame per level this overflowed a test thread's stack.
        assert!(rsa_components(&nest(100_000)).is_none());
    }
}
