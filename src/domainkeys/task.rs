//! The DomainKeys tasks run() drives: when DomainKeys is on (`DKSIGN` / `DKVERIFY`: opt-in,
//! where qmail-dk signed by default), signing and verifying as [`crate::task::Task`]s.

use super::canon::DkHasher;
use super::sign::{make_field, parse_options, plan_fields, sign_digest};
use super::verify::{self, message_sender, Plan, Verification};
use super::{is_same_or_subdomain, Canon, Outcome};
use crate::auth_results::{DomainKeysOutput, MethodOutput};
use crate::config::{key_selector, ControlDir, Env, KeyChoice, Mode};
use crate::dkim::key::SigningKey;
use crate::error::{Error, Refusal, Result};
use crate::message::Headers;
use crate::task::{Context, Finished, Task};

/// qmail-dk's default key.
pub const DEFAULT_KEY: &str = "/etc/domainkeys/%/default";

/// What DomainKeys does for this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkMode {
    /// Sign with this key path template (`%` = signing domain).
    Sign { template: String },
    /// Verify; these letters refuse.
    Verify { letters: String },
}

/// `DKSIGN` set: sign (empty: [`DEFAULT_KEY`]); else `DKVERIFY` set: verify, unless the client
/// is a relay client and `RELAYCLIENT_NODKVERIFY` (or `RELAYCLIENT_NODKIMVERIFY`) is set; else
/// nothing (DomainKeys is opt-in).
pub fn dk_mode(env: &Env) -> Option<DkMode> {
    if let Some(t) = env.get("DKSIGN") {
        let t = if t.is_empty() { DEFAULT_KEY } else { t };
        return Some(DkMode::Sign { template: t.to_string() });
    }
    let letters = env.get("DKVERIFY")?;
    let relay = env.is_set("RELAYCLIENT") || env.is_set("AUTHINFO");
    if relay && (env.is_set("RELAYCLIENT_NODKVERIFY") || env.is_set("RELAYCLIENT_NODKIMVERIFY")) {
        return None;
    }
    Some(DkMode::Verify { letters: letters.to_string() })
}

/// Whether `DKQUEUE` applies: DomainKeys is configured and DKIM does nothing for this message.
pub fn dk_only(env: &Env, dkim: &Mode) -> bool {
    (env.is_set("DKSIGN") || env.is_set("DKVERIFY")) && *dkim == Mode::Pass
}

/// The DomainKeys tasks for a message (none, one signer, or one verifier).
pub fn plan(env: &Env, control: &ControlDir, headers: &Headers) -> Result<Vec<Box<dyn Task>>> {
    Ok(match dk_mode(env) {
        None => Vec::new(),
        Some(DkMode::Sign { template }) => match plan_sign(env, control, headers, &template)? {
            Some(s) => vec![Box::new(s) as Box<dyn Task>],
            None => Vec::new(),
        },
        Some(DkMode::Verify { letters }) => vec![Box::new(DkVerifier::new(headers, letters)) as Box<dyn Task>],
    })
}

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

/// The signing domain: `DKDOMAIN` when the sender's domain is it or below it, else the domain
/// of `Sender:`, else of `From:`.
pub fn signing_domain(env: &Env, headers: &Headers) -> Option<String> {
    let sender = message_sender(headers).map(|(_, m)| m.domain);
    match (env.nonempty("DKDOMAIN").map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase()), sender) {
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

/// Plans the signature; `None` when this message is not signed (no sender domain, or a `%`
/// key path that found no key for the domain).
pub fn plan_sign(env: &Env, control: &ControlDir, headers: &Headers, template: &str) -> Result<Option<DkSigner>> {
    let options = parse_options(env.get("DKSIGNOPTIONS").unwrap_or(""))
        .map_err(|e| Error::Config(format!("Invalid DKSIGNOPTIONS: {e}")))?;
    let Some(domain) = signing_domain(env, headers) else {
        eprintln!("qmail-dkim: DomainKeys: no Sender:/From: address to sign for: not signed");
        return Ok(None);
    };
    let choice = KeyChoice::new(control, template, &domain);
    let Some((path, pem)) = choice.find()? else {
        eprintln!("qmail-dkim: DomainKeys: {}: not signed", choice.no_key());
        return Ok(None);
    };
    let key = SigningKey::from_pem(&pem, true).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    if !matches!(key, SigningKey::Rsa(_)) {
        return Err(Error::KeyInvalid { path, reason: "DomainKeys needs an RSA key".into() });
    }
    if key.bits() < super::sign::MIN_SIGN_BITS {
        return Err(Error::KeyInvalid {
            path,
            reason: format!("{}-bit RSA key: DomainKeys signing needs at least 1024", key.bits()),
        });
    }
    let selector = match options.selector.clone() {
        Some(s) => s,
        None => key_selector(&path, &pem).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?,
    };
    let exclude: Vec<String> = env.get("DKEXCLUDEHEADERS").unwrap_or("").split(':').map(str::to_string).collect();
    let (fields, h) = plan_fields(headers, &options, &exclude);
    let mut hasher = DkHasher::new(options.canon);
    for &i in &fields {
        hasher.header(headers.raw(&headers.fields[i]));
    }
    Ok(Some(DkSigner { key, hasher, canon: options.canon, selector, domain, h }))
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

pub struct DkVerifier {
    letters: String,
    plan: Plan,
}

impl DkVerifier {
    pub fn new(headers: &Headers, letters: String) -> DkVerifier {
        DkVerifier { letters, plan: verify::plan(headers) }
    }
}

impl Task for DkVerifier {
    fn body(&mut self, data: &[u8]) {
        if let Plan::Hash(p) = &mut self.plan {
            p.hasher.body(data);
        }
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let DkVerifier { letters, plan } = *self;
        let dns = (ctx.dns)();
        let mut outcome = match plan {
            Plan::Done(o) => o,
            Plan::Hash(p) => verify::finish(*p, &*dns),
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
pub fn status_field(o: &Verification) -> String {
    match o.comment() {
        Some(c) => format!("DomainKey-Status: {} ({c})\n", o.outcome.header_value()),
        None => format!("DomainKey-Status: {}\n", o.outcome.header_value()),
    }
}

/// The refusal for an outcome, by its letter alone as in qmail-dk ([`super::verify`]): an
/// uppercase letter refuses permanently, a lowercase one temporarily (uppercase wins when both
/// are given); no letter lets it through. Testing flags and the `o=` policy change nothing.
pub fn decide(letters: &str, o: &Verification) -> Option<Refusal> {
    crate::task::letter_refuses(letters, o.outcome.letter())
        .map(|permanent| Refusal { permanent, text: refusal_text(o.outcome, permanent) })
}

/// `qmail-dkim: DomainKeys <status>: <meaning> (#5.x.y)`.
pub fn refusal_text(s: Outcome, permanent: bool) -> String {
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
pub fn output(o: &Verification) -> DomainKeysOutput {
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

    fn env(p: &[(&str, &str)]) -> Env {
        Env::from_pairs(p)
    }

    #[test]
    fn mode() {
        assert_eq!(dk_mode(&env(&[])), None);
        assert_eq!(dk_mode(&env(&[("DKSIGN", "")])), Some(DkMode::Sign { template: DEFAULT_KEY.into() }));
        assert_eq!(
            dk_mode(&env(&[("DKSIGN", "/k/%/sel"), ("DKVERIFY", "B")])),
            Some(DkMode::Sign { template: "/k/%/sel".into() })
        );
        assert_eq!(dk_mode(&env(&[("DKVERIFY", "DEGIJKfh")])), Some(DkMode::Verify { letters: "DEGIJKfh".into() }));
        assert_eq!(dk_mode(&env(&[("DKVERIFY", "")])), Some(DkMode::Verify { letters: String::new() }));
        for bypass in ["RELAYCLIENT_NODKVERIFY", "RELAYCLIENT_NODKIMVERIFY"] {
            assert_eq!(dk_mode(&env(&[("DKVERIFY", "B"), ("RELAYCLIENT", ""), (bypass, "")])), None);
            assert_eq!(dk_mode(&env(&[("DKVERIFY", "B"), ("AUTHINFO", "x"), (bypass, "")])), None);
            assert!(dk_mode(&env(&[("DKVERIFY", "B"), (bypass, "")])).is_some());
        }
        // The relay client that must not be verified may still be signed for.
        assert!(matches!(
            dk_mode(&env(&[("DKSIGN", ""), ("RELAYCLIENT", ""), ("RELAYCLIENT_NODKVERIFY", "")])),
            Some(DkMode::Sign { .. })
        ));
    }

    #[test]
    fn only_dk() {
        assert!(dk_only(&env(&[("DKVERIFY", "")]), &Mode::Pass));
        assert!(!dk_only(&env(&[]), &Mode::Pass));
        assert!(!dk_only(&env(&[("DKSIGN", "")]), &Mode::Verify { letters: String::new() }));
    }

    fn outcome(s: Outcome) -> Verification {
        match verify::plan(&Headers::parse(b"From: a@b.c\n".to_vec())) {
            Plan::Done(mut o) => {
                o.outcome = s;
                o
            }
            Plan::Hash(_) => unreachable!(),
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
        assert_eq!(signing_domain(&env(&[]), &h).as_deref(), Some("lists.example.org"));
        assert_eq!(signing_domain(&env(&[("DKDOMAIN", "example.org")]), &h).as_deref(), Some("example.org"));
        assert_eq!(signing_domain(&env(&[("DKDOMAIN", "other.net")]), &h).as_deref(), Some("lists.example.org"));
        let h = Headers::parse(b"Subject: x\n".to_vec());
        assert_eq!(signing_domain(&env(&[]), &h), None);
    }

    /// DKSIGN's `%` became `..` for `From: x@...`: such a domain has no key, and the message
    /// is not signed, whether or not the path has a `%`.
    #[test]
    fn dot_dot_sender_domain_is_not_signed() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("default");
        std::fs::write(&key, "a key that must not be read").unwrap();
        let c = ControlDir::new(dir.path().join("keys"));
        for from in [&b"From: x@..\n"[..], b"From: x@...\n", b"Sender: x@a..b\n"] {
            let h = Headers::parse(from.to_vec());
            for template in ["%/default", "/no/such/key"] {
                assert!(matches!(plan_sign(&env(&[]), &c, &h, template), Ok(None)), "{template}");
            }
        }
        let h = Headers::parse(b"Subject: no sender\n".to_vec());
        assert!(matches!(plan_sign(&env(&[("DKDOMAIN", "a..b")]), &c, &h, "/no/such/key"), Ok(None)));
        assert!(matches!(plan_sign(&env(&[("DKDOMAIN", "a.b")]), &c, &h, "/no/such/key"), Err(Error::KeyMissing(_))));
    }
}
