//! The DomainKeys tasks run() drives: signing and verifying as [`crate::task::Task`]s.
//! Whether they run, and with what, is decided in `crate::plan` (DomainKeys is opt-in:
//! `DKSIGN` / `DKVERIFY`, where qmail-dk signed by default).

use super::canon::DkHasher;
use super::sign::{make_field, sign_digest, signed_fields};
use super::verify::{self, message_sender, Start, Verification};
use super::{is_same_or_subdomain, Canon, Outcome};
use crate::auth_results::{DomainKeysOutput, MethodOutput};
use crate::dkim::key::SigningKey;
use crate::error::{Error, Refusal, Result};
use crate::message::Headers;
use crate::task::{Context, Finished, Task};

// ---------------------------------------------------------------------------
// Signing

/// A loaded key and the hash of the signed fields; the body is fed in.
pub struct DkSigner {
    key: SigningKey,
    hasher: DkHasher,
    canon: Canon,
    selector: String,
    domain: String,
    h: Option<Vec<String>>,
}

/// The signing domain: `dkdomain` (`DKDOMAIN`) when the sender's domain is it or below it,
/// else the domain of `Sender:`, else of `From:`.
pub(crate) fn signing_domain(dkdomain: Option<&str>, headers: &Headers) -> Option<String> {
    let sender = message_sender(headers).map(|(_, m)| m.domain);
    match (dkdomain.map(str::to_string), sender) {
        (Some(d), Some(s)) if is_same_or_subdomain(&s, &d) => Some(d),
        (Some(d), Some(s)) => {
            eprintln!(
                "qmail-dkim: DomainKeys: DKDOMAIN={d} is not a parent of the sender's domain {s}: signing as {s}"
            );
            Some(s)
        }
        (Some(d), None) => Some(d),
        (None, s) => s,
    }
}

/// Why a key cannot sign DomainKeys signatures, if it cannot: RSA of at least 1024 bits.
pub(crate) fn check_key(key: &SigningKey) -> std::result::Result<(), String> {
    if !matches!(key, SigningKey::Rsa(_)) {
        return Err("DomainKeys needs an RSA key".into());
    }
    if key.bits() < super::sign::MIN_SIGN_BITS {
        return Err(format!("{}-bit RSA key: DomainKeys signing needs at least 1024", key.bits()));
    }
    Ok(())
}

impl DkSigner {
    /// A signer with `key` (checked by [`check_key`]) for `domain`, the signed fields of
    /// `headers` hashed now; `exclude` names fields not signed (`DKEXCLUDEHEADERS`).
    pub(crate) fn new(
        key: SigningKey,
        options: &super::sign::SignOptions,
        selector: String,
        domain: String,
        headers: &Headers,
        exclude: &[String],
    ) -> DkSigner {
        let (fields, h) = signed_fields(headers, options, exclude);
        let mut hasher = DkHasher::new(options.canon);
        for &i in &fields {
            hasher.header(headers.raw(&headers.fields[i]));
        }
        DkSigner { key, hasher, canon: options.canon, selector, domain, h }
    }
}

impl Task for DkSigner {
    fn body(&mut self, data: &[u8]) {
        self.hasher.body(data);
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let DkSigner { key, hasher, canon, selector, domain, h } = *self;
        let digest = hasher.finish();
        let sig = sign_digest(&key, &digest)
            .map_err(|e| Error::Internal(format!("DomainKeys signing for d={domain} s={selector}: {e}")))?;
        if ctx.verbose {
            eprintln!("qmail-dkim: DomainKeys: signed d={domain} s={selector} c={}", canon.as_str());
        }
        crate::log::note(crate::log::Note::Sig {
            method: crate::log::Method::Dk,
            d: Some(domain.clone()),
            s: Some(selector.clone()),
            a: Some("rsa-sha1".into()),
            result: "signed",
            letter: None,
        });
        Ok(Finished { prepend: make_field(canon, &selector, &domain, h.as_deref(), &sig), ..Default::default() })
    }
}

// ---------------------------------------------------------------------------
// Verifying

pub(crate) struct DkVerifier {
    letters: String,
    start: Start,
}

impl DkVerifier {
    pub(crate) fn new(headers: &Headers, letters: String) -> DkVerifier {
        DkVerifier { letters, start: verify::start(headers) }
    }
}

impl Task for DkVerifier {
    fn body(&mut self, data: &[u8]) {
        if let Start::Hash(p) = &mut self.start {
            p.hasher.body(data);
        }
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let DkVerifier { letters, start } = *self;
        let dns = (ctx.dns)();
        let mut outcome = match start {
            Start::Done(o) => o,
            Start::Hash(p) => verify::finish(*p, &*dns),
        };
        let refuse = decide(&letters, &outcome);
        // The policy is only reported, in the headers of a message that is queued.
        if refuse.is_none() {
            verify::lookup_policy(&mut outcome, ctx.headers, &*dns);
        }
        if ctx.verbose {
            eprintln!("qmail-dkim: {}", log_line(&outcome));
        }
        let prepend = status_field(&outcome).into_bytes();
        Ok(Finished { prepend, outputs: vec![MethodOutput::DomainKeys(output(&outcome))], refuse })
    }
}

/// `DomainKey-Status: <value>`, with the flags of the key and the domain's policy as a comment.
pub(crate) fn status_field(o: &Verification) -> String {
    match o.comment() {
        Some(c) => format!("DomainKey-Status: {} ({c})\n", o.outcome.header_value()),
        None => format!("DomainKey-Status: {}\n", o.outcome.header_value()),
    }
}

/// The refusal for an outcome, by its letter alone as in qmail-dk ([`super::verify`]): an
/// uppercase letter refuses permanently, a lowercase one temporarily (uppercase wins when both
/// are given); no letter lets it through. Testing flags and the `o=` policy change nothing.
pub(crate) fn decide(letters: &str, o: &Verification) -> Option<Refusal> {
    crate::task::letter_refuses(letters, o.outcome.letter())
        .map(|permanent| Refusal { permanent, text: refusal_text(o.outcome, permanent) })
}

/// `qmail-dkim: DomainKeys <status>: <meaning> (#5.x.y)`.
pub(crate) fn refusal_text(s: Outcome, permanent: bool) -> String {
    format!(
        "qmail-dkim: DomainKeys {}: {} (#{}.{})",
        s.header_value(),
        s.meaning(),
        if permanent { 5 } else { 4 },
        s.code()
    )
}

fn log_line(o: &Verification) -> String {
    let mut l = format!("DomainKeys: {} ({}) ", o.outcome.header_value(), o.outcome.letter());
    if let (Some(d), Some(s)) = (&o.domain, &o.selector) {
        l.push_str(&format!("d={d} s={s} "));
    }
    if let Some((_, m)) = &o.sender {
        l.push_str(&format!("sender={} ", m.address()));
    }
    l.push_str(&o.detail);
    if let Some(c) = o.comment() {
        l.push_str(&format!(" ({c})"));
    }
    l.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The typed result, as the `domainkeys` method of Authentication-Results shows it (RFC 8601
/// §2.7.1).
pub(crate) fn output(o: &Verification) -> DomainKeysOutput {
    DomainKeysOutput {
        result: o.outcome.result(),
        letter: o.outcome.letter(),
        comment: o.comment(),
        domain: o.domain.clone(),
        selector: o.selector.clone(),
        sender: o.sender.as_ref().map(|(field, mb)| (*field, mb.address())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(s: Outcome) -> Verification {
        match verify::start(&Headers::parse(b"From: a@b.c\n".to_vec())) {
            Start::Done(mut o) => {
                o.outcome = s;
                o
            }
            Start::Hash(_) => unreachable!(),
        }
    }

    #[test]
    fn letters_decide() {
        // Russell Nelson's recommended set.
        let l = "DEGIJKfh";
        for s in super::super::ALL_OUTCOMES {
            let r = decide(l, &outcome(s));
            match s.letter() {
                'D' | 'E' | 'G' | 'I' | 'J' | 'K' => assert_eq!(r.map(|r| r.permanent), Some(true), "{s:?}"),
                'F' | 'H' => assert_eq!(r.map(|r| r.permanent), Some(false), "{s:?}"),
                _ => assert_eq!(r, None, "{s:?}"),
            }
        }
        assert_eq!(decide("kK", &outcome(Outcome::Internal)).map(|r| r.permanent), Some(true));
        assert_eq!(decide("", &outcome(Outcome::Internal)), None);
        // By the letter alone: neither testing nor a policy that does not sign all changes it.
        let mut o = outcome(Outcome::BadSig);
        o.key_testing = true;
        o.policy = Some(verify::Policy::Published { signs_all: false, testing: true });
        assert_eq!(decide("B", &o).map(|r| r.permanent), Some(true));
        let mut o = outcome(Outcome::NoSig);
        o.policy = Some(verify::Policy::NotPublished);
        assert_eq!(decide("c", &o).map(|r| r.permanent), Some(false));
        assert_eq!(
            decide("h", &outcome(Outcome::NoResource)).unwrap().text,
            "qmail-dkim: DomainKeys no resources: the signature is too large to process (#4.3.0)"
        );
        assert_eq!(
            decide("K", &outcome(Outcome::Internal)).unwrap().text,
            "qmail-dkim: DomainKeys bad format: internal error (#5.3.0)"
        );
    }

    #[test]
    fn ar_and_forgeries() {
        let o = outcome(Outcome::NoSig);
        assert_eq!(
            crate::auth_results::field("mx.example", &[output(&o).method_result()]),
            b"Authentication-Results: mx.example; domainkeys=none header.from=a@b.c\n"
        );
        // d= comes from the message: one that is no domain is left out, it cannot add a method.
        let mut o = outcome(Outcome::BadSig);
        o.domain = Some("paypal.com,dkim=pass".into());
        assert_eq!(
            crate::auth_results::field("mx.example", &[output(&o).method_result()]),
            b"Authentication-Results: mx.example; domainkeys=fail header.from=a@b.c\n"
        );
        let h = Headers::parse(
            b"DomainKey-Status: good\nAuthentication-Results: mx.example; domainkeys=pass\nAuthentication-Results: other.example; dkim=pass\nauthentication-results: MX.example (x); dkim=pass\n".to_vec(),
        );
        assert_eq!(crate::headers::forged(&h, "mx.example"), vec![0, 1, 3]);
    }

    #[test]
    fn domain_to_sign_as() {
        let h = Headers::parse(b"From: a@mail.example.com\nSender: b@lists.example.org\n".to_vec());
        assert_eq!(signing_domain(None, &h).as_deref(), Some("lists.example.org"));
        assert_eq!(signing_domain(Some("example.org"), &h).as_deref(), Some("example.org"));
        assert_eq!(signing_domain(Some("other.net"), &h).as_deref(), Some("lists.example.org"));
        let h = Headers::parse(b"Subject: x\n".to_vec());
        assert_eq!(signing_domain(None, &h), None);
    }
}
