//! What the verification result means for the message: accept, or refuse temporarily or
//! permanently, as the `DKIMVERIFY` letters say (qmail-dkim-letters(5)); and the optional practice
//! step (`DKIMPRACTICE`: the signaturedomains / nosignaturedomains lists, ADSP or SSP) that may
//! turn a failure into FAIL (G) or NEUTRAL (D).
//!
//! ADSP (RFC 5617) was moved to Historic in 2013 and SSP never left draft status; both are here
//! because indimail users configure them. Nothing here writes anything.

use super::tags::TagList;
use super::verify::Outcome;
use crate::dns::{TxtAnswer, TxtLookup};
use crate::error::Refusal;
use crate::glob::Glob;

/// `qmail-dkim: <DKIM-Status text> (#<5|4>.<code>)`.
pub(crate) fn refusal_text(o: Outcome, permanent: bool) -> String {
    format!("qmail-dkim: {} (#{}.{})", o.status_text(), if permanent { 5 } else { 4 }, o.code())
}

/// An uppercase letter of the outcome in `letters` refuses permanently, else a lowercase one
/// temporarily, else the message is accepted (`None`).
pub(crate) fn decide(o: Outcome, letters: &str) -> Option<Refusal> {
    crate::task::letter_refuses(letters, o.letter())
        .map(|permanent| Refusal { permanent, text: refusal_text(o, permanent) })
}

/// The letters `DKIMPRACTICE=` (empty) stands for: every failure.
pub(crate) const DEFAULT_PRACTICE_LETTERS: &str = "FGHIJKLMNPQRSTUVWX";

/// Which signing practice to consult after the lists (`SIGN_PRACTICE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Practice {
    /// `_adsp._domainkey.<domain>` (the default).
    Adsp,
    /// `_ssp._domainkey.<domain>`.
    Ssp,
    /// Only signaturedomains / nosignaturedomains.
    Local,
}

/// The practice step's rules: which practice, and the two domain lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeRules {
    pub practice: Practice,
    /// Entries of signaturedomains (file or `SIGNATUREDOMAINS`).
    pub signing: Vec<String>,
    /// Entries of nosignaturedomains (file or `NOSIGNATUREDOMAINS`).
    pub nonsigning: Vec<String>,
}

/// A list entry matches a domain, ignoring case, when it is the domain itself; `.bank.com`
/// matches the subdomains of bank.com but not bank.com itself (as qmail's rcpthosts); an entry
/// with `*` or `?` is a glob as in dkimkeys ([`crate::glob`]; `*` alone matches every domain).
/// A domain that is not a DNS name matches only `*`. indimail compares by prefix instead, so
/// that `bank.com` matched `bank.com.evil.org` (docs/migrating.md).
pub(crate) fn list_matches(list: &[String], domain: &str) -> bool {
    let valid = crate::domain::is_dns_name(domain);
    list.iter().any(|entry| {
        let e = entry.trim();
        let e = e.strip_suffix('.').unwrap_or(e);
        if e == "*" {
            true
        } else if e.is_empty() || !valid {
            false
        } else if e.contains(['*', '?']) {
            Glob::star_and_question(e).ignore_case().matches(domain)
        } else if e.starts_with('.') {
            domain.len() > e.len() && domain[domain.len() - e.len()..].eq_ignore_ascii_case(e)
        } else {
            domain.eq_ignore_ascii_case(e)
        }
    })
}

/// What the practice step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Practiced {
    pub outcome: Outcome,
    /// The outcome before, when the step changed it (the `(old=…)` line).
    pub old: Option<Outcome>,
    /// `("X-DKIM-ADSP" | "X-DKIM-SSP", value)` when a policy record was consulted.
    pub header: Option<(&'static str, &'static str)>,
}

/// Runs the practice step for the author domain (From:). Without a domain nothing changes.
pub(crate) fn apply_practice(
    rules: &PracticeRules,
    o: Outcome,
    domain: Option<&str>,
    dns: &dyn TxtLookup,
) -> Practiced {
    let unchanged = Practiced { outcome: o, old: None, header: None };
    let Some(domain) = domain.filter(|d| !d.is_empty()) else { return unchanged };
    if list_matches(&rules.signing, domain) {
        return unchanged;
    }
    let (new, header) = if list_matches(&rules.nonsigning, domain) {
        (Outcome::Neutral, None)
    } else {
        match rules.practice {
            Practice::Local => return unchanged,
            Practice::Adsp => {
                let (value, discard) = policy_record(dns, &format!("_adsp._domainkey.{domain}"), &["discardable"]);
                (if discard { Outcome::Fail } else { Outcome::Neutral }, Some(("X-DKIM-ADSP", value)))
            }
            Practice::Ssp => {
                let (value, discard) = policy_record(dns, &format!("_ssp._domainkey.{domain}"), &["all", "strict"]);
                (if discard { Outcome::Fail } else { Outcome::Neutral }, Some(("X-DKIM-SSP", value)))
            }
        }
    };
    Practiced { outcome: new, old: (new != o).then_some(o), header }
}

/// Looks up an ADSP/SSP record: the header value and whether its `dkim=` is one of `strong`.
fn policy_record(dns: &dyn TxtLookup, name: &str, strong: &[&str]) -> (&'static str, bool) {
    match dns.txt(name) {
        TxtAnswer::BadName => ("out of scope;", false),
        TxtAnswer::TempFail(_) => ("temporary failure;", false),
        TxtAnswer::NotFound => ("unknown;", false),
        TxtAnswer::Records(recs) => {
            let dkim = recs.iter().find_map(|r| {
                TagList::parse_record(r).ok().and_then(|t| t.get("dkim").map(|v| v.trim().to_ascii_lowercase()))
            });
            let value = match dkim.as_deref() {
                Some("all") => "all;",
                Some("discardable") => "discardable;",
                Some("strict") => "strict;",
                _ => "unknown;",
            };
            let strong = dkim.as_deref().is_some_and(|d| strong.contains(&d));
            (value, strong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Fixed;

    #[test]
    fn letters() {
        use Outcome::*;
        assert_eq!(decide(Success, ""), None);
        assert_eq!(
            decide(SignatureBad, "FGHIKLMNOQRTUVWjp"),
            Some(Refusal::permanent("qmail-dkim: signature error: RSA/ED25519 verify failed (#5.7.5)"))
        );
        assert_eq!(
            decide(DnsTempFailure, "FGHIKLMNOQRTUVWjp"),
            Some(Refusal::temporary("qmail-dkim: signature error: temporary dns failure requesting selector (#4.7.0)"))
        );
        assert_eq!(
            decide(SignatureBadButTesting, "FGHIKLMNOQRTUVWjp"),
            Some(Refusal::temporary("qmail-dkim: signature error: RSA/ED25519 verify failed but testing (#4.7.5)"))
        );
        assert_eq!(decide(NoSignatures, "FGHIKLMNOQRTUVWjp"), None);
        assert_eq!(decide(Neutral, "FGHIKLMNOQRTUVWjp"), None);
        assert_eq!(decide(Success, "FGHIKLMNOQRTUVWjp"), None);
        // Upper wins over lower.
        assert!(matches!(decide(BodyHashMismatch, "uU"), Some(Refusal { permanent: true, .. })));
        assert!(matches!(decide(BodyHashMismatch, "u"), Some(Refusal { permanent: false, .. })));
        assert!(matches!(decide(Success, "A"), Some(Refusal { permanent: true, .. })));
        for o in Outcome::ALL {
            assert!(matches!(decide(o, "ABCDEFGHIJKLMNOPQRSTUVWXY"), Some(Refusal { permanent: true, .. })));
            assert!(matches!(decide(o, "abcdefghijklmnopqrstuvwxy"), Some(Refusal { permanent: false, .. })));
        }
    }

    fn rules(p: Practice, signing: &[&str], nonsigning: &[&str]) -> PracticeRules {
        PracticeRules {
            practice: p,
            signing: signing.iter().map(|s| s.to_string()).collect(),
            nonsigning: nonsigning.iter().map(|s| s.to_string()).collect(),
        }
    }

    struct Map(Vec<(&'static str, TxtAnswer)>);
    impl TxtLookup for Map {
        fn txt(&self, name: &str) -> TxtAnswer {
            self.0.iter().find(|(n, _)| *n == name).map_or(TxtAnswer::NotFound, |(_, a)| a.clone())
        }
    }

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists() {
        let l = list(&["Example.COM"]);
        assert!(list_matches(&l, "example.com") && list_matches(&l, "EXAMPLE.com"));
        assert!(!list_matches(&l, "other.org") && !list_matches(&l, "mail.example.com"));
        assert!(list_matches(&list(&["example.com."]), "example.com"));
        assert!(list_matches(&list(&["*"]), "any.org"));
        assert!(!list_matches(&[], "any.org"));
    }

    /// `signaturedomains` matched by prefix: `bank.com` covered `bank.com.evil.org` (and
    /// `bank.community`), so a forger's domain kept the "signs all its mail" treatment, and a
    /// `nosignaturedomains` entry `bank` made every bank* domain neutral.
    #[test]
    fn signaturedomains_prefix_does_not_match_other_domains() {
        let l = list(&["bank.com"]);
        for other in ["bank.com.evil.org", "bank.community", "bank.co", "evilbank.com", "mail.bank.com"] {
            assert!(!list_matches(&l, other), "{other}");
        }
        assert!(!list_matches(&list(&["bank"]), "bank.com"));
        // `.bank.com`: its subdomains, not bank.com itself.
        let sub = list(&[".Bank.com"]);
        assert!(list_matches(&sub, "mail.bank.com") && list_matches(&sub, "a.b.BANK.com"));
        for other in ["bank.com", "evilbank.com", "bank.com.evil.org", ".bank.com"] {
            assert!(!list_matches(&sub, other), "{other}");
        }
        // Globs as in dkimkeys.
        let g = list(&["*.bank.com", "b?nk.org"]);
        assert!(list_matches(&g, "mail.bank.com") && list_matches(&g, "bonk.org"));
        assert!(!list_matches(&g, "bank.com") && !list_matches(&g, "bank.com.evil.org"));
        // A From domain that is not a DNS name is in no list, but `*` is every domain.
        assert!(!list_matches(&list(&["bank.com", ".bank.com", "*.com"]), "x..bank.com"));
        assert!(list_matches(&list(&["*"]), "x..bank.com"));
        // Through the practice step: the forger's domain gets the ADSP lookup, not signaturedomains.
        let adsp =
            Map(vec![("_adsp._domainkey.bank.com.evil.org", TxtAnswer::Records(vec![b"dkim=unknown".to_vec()]))]);
        let r = apply_practice(
            &rules(Practice::Adsp, &["bank.com"], &[]),
            Outcome::SignatureBad,
            Some("bank.com.evil.org"),
            &adsp,
        );
        assert_eq!(r.outcome, Outcome::Neutral);
        assert_eq!(r.header, Some(("X-DKIM-ADSP", "unknown;")));
    }

    #[test]
    fn practice_steps() {
        use Outcome::*;
        let none = Map(vec![]);
        // signaturedomains keeps the failure, even over a wildcard nosignaturedomains.
        let r = apply_practice(&rules(Practice::Adsp, &["a.org"], &["*"]), NoSignatures, Some("a.org"), &none);
        assert_eq!(r, Practiced { outcome: NoSignatures, old: None, header: None });
        // nosignaturedomains: neutral, no record consulted.
        let r = apply_practice(&rules(Practice::Adsp, &[], &["*"]), SignatureBad, Some("a.org"), &none);
        assert_eq!(r, Practiced { outcome: Neutral, old: Some(SignatureBad), header: None });
        // ADSP discardable → G; no record → D, "unknown;".
        let adsp = Map(vec![("_adsp._domainkey.a.org", TxtAnswer::Records(vec![b"dkim=discardable".to_vec()]))]);
        let r = apply_practice(&rules(Practice::Adsp, &[], &[]), NoSignatures, Some("a.org"), &adsp);
        assert_eq!(
            r,
            Practiced { outcome: Fail, old: Some(NoSignatures), header: Some(("X-DKIM-ADSP", "discardable;")) }
        );
        let r = apply_practice(&rules(Practice::Adsp, &[], &[]), NoSignatures, Some("b.org"), &adsp);
        assert_eq!(
            r,
            Practiced { outcome: Neutral, old: Some(NoSignatures), header: Some(("X-DKIM-ADSP", "unknown;")) }
        );
        let all = Map(vec![("_adsp._domainkey.a.org", TxtAnswer::Records(vec![b"dkim=all".to_vec()]))]);
        let r = apply_practice(&rules(Practice::Adsp, &[], &[]), SignatureBad, Some("a.org"), &all);
        assert_eq!(r.header, Some(("X-DKIM-ADSP", "all;")));
        assert_eq!(r.outcome, Neutral);
        let temp = Map(vec![("_adsp._domainkey.a.org", TxtAnswer::TempFail("x".into()))]);
        let r = apply_practice(&rules(Practice::Adsp, &[], &[]), SignatureBad, Some("a.org"), &temp);
        assert_eq!(r.header, Some(("X-DKIM-ADSP", "temporary failure;")));
        // SSP: all and strict → G.
        for (rec, want, hv) in
            [("dkim=strict", Fail, "strict;"), ("dkim=all", Fail, "all;"), ("dkim=unknown", Neutral, "unknown;")]
        {
            let ssp = Map(vec![("_ssp._domainkey.a.org", TxtAnswer::Records(vec![rec.as_bytes().to_vec()]))]);
            let r = apply_practice(&rules(Practice::Ssp, &[], &[]), NoSignatures, Some("a.org"), &ssp);
            assert_eq!((r.outcome, r.header), (want, Some(("X-DKIM-SSP", hv))));
        }
        // local: only the lists.
        let r = apply_practice(&rules(Practice::Local, &[], &[]), SignatureBad, Some("a.org"), &adsp);
        assert_eq!(r, Practiced { outcome: SignatureBad, old: None, header: None });
        // No From domain: nothing.
        let r = apply_practice(&rules(Practice::Adsp, &[], &["*"]), SignatureBad, None, &adsp);
        assert_eq!(r.outcome, SignatureBad);
        // A name too long to ask: out of scope.
        let long = format!("{}.org", "a".repeat(250));
        let r =
            apply_practice(&rules(Practice::Adsp, &[], &[]), SignatureBad, Some(&long), &Fixed(b"dkim=all".to_vec()));
        assert_eq!(r.header, Some(("X-DKIM-ADSP", "out of scope;")));
    }
}
