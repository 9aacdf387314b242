use super::record::DmarcPolicy;
use super::task::{DmarcSettings, DmarcTask};
use super::*;
use crate::auth_results::{render, DkimOutput, DkimResult, MethodOutput, MethodResult, SpfOutput, SpfResult, SpfScope};
use crate::dns::{Zone, ZoneRecord};
use crate::envelope::Envelope;
use crate::message::Headers;
use crate::task::{Context, Finished, Task};

/// A zone of TXT records; `@TEMPFAIL` fails every question for its name, `@A` makes the name
/// exist without a TXT record.
fn zone(records: &[(&str, &str)]) -> Zone {
    let mut z = Zone::new();
    for (n, t) in records {
        match *t {
            "@TEMPFAIL" => z.add(n, ZoneRecord::TempFail),
            "@A" => z.add(n, ZoneRecord::A(std::net::Ipv4Addr::new(192, 0, 2, 1))),
            _ => z.txt(n, t),
        };
    }
    z
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// SPF's result of an RFC 8601 word.
fn spf_word(w: &str) -> SpfResult {
    [
        SpfResult::None,
        SpfResult::Neutral,
        SpfResult::Pass,
        SpfResult::Fail,
        SpfResult::SoftFail,
        SpfResult::TempError,
        SpfResult::PermError,
    ]
    .into_iter()
    .find(|r| r.as_str() == w)
    .expect("an spf= word")
}

/// Evaluates with DKIM passes `dkim`, SPF `spf` (word, domain).
fn eval(z: &Zone, from: &str, dkim: &[&str], spf: (&str, Option<&str>)) -> Evaluation {
    let pass = s(dkim);
    let ev = Evidence { dkim_pass: &pass, dkim_temperror: &[], spf_result: spf_word(spf.0), spf_domain: spf.1 };
    evaluate(z, from, &ev)
}

const REJECT: &str = "v=DMARC1; p=reject";

/// RFC 9989 §4.10.2: relaxed alignment is the same Organizational Domain, found by walking;
/// strict is the same name. The walk joins a name with its parent that publishes a record,
/// never two siblings under a parent that publishes none (`co.uk`).
#[test]
fn co_uk_parent_aligned_sibling_not() {
    let z = zone(&[("_dmarc.example.co.uk", REJECT)]);
    let o = eval(&z, "sub.example.co.uk", &["example.co.uk"], ("none", None));
    assert_eq!((o.result, o.aligned), (DmarcResult::Pass, Some(Identifier::Dkim("example.co.uk".into()))));
    assert_eq!(o.org_domain.as_deref(), Some("example.co.uk"));
    let o = eval(&z, "example.co.uk", &["other.co.uk"], ("pass", Some("other.co.uk")));
    assert_eq!((o.result, o.applied), (DmarcResult::Fail, Some(DmarcPolicy::Reject)));
    let o = eval(&z, "example.co.uk", &["co.uk"], ("none", None));
    assert_eq!(o.result, DmarcResult::Fail);
    let z = zone(&[("_dmarc.example.co.uk", "v=DMARC1; p=reject; adkim=s")]);
    assert_eq!(eval(&z, "sub.example.co.uk", &["example.co.uk"], ("none", None)).result, DmarcResult::Fail);
    assert_eq!(eval(&z, "example.co.uk", &["example.co.uk"], ("none", None)).result, DmarcResult::Pass);
}

/// Where the walk and the public suffix list part: a registry that publishes no record makes
/// no boundary (`gov.example` without `psd=y`: its subdomains align with each other), and a
/// `psd=n` record makes one the list does not know.
#[test]
fn walk_not_list_decides_the_organizational_domain() {
    // agency.gov.example and other.gov.example share the Organizational Domain gov.example.
    let z = zone(&[("_dmarc.gov.example", REJECT)]);
    let o = eval(&z, "agency.gov.example", &["other.gov.example"], ("none", None));
    assert_eq!((o.result, o.org_domain.as_deref()), (DmarcResult::Pass, Some("gov.example")));
    // With psd=y the registry is a PSD: each registrant is its own Organizational Domain.
    let z = zone(&[("_dmarc.gov.example", "v=DMARC1; p=reject; psd=y")]);
    let o = eval(&z, "agency.gov.example", &["other.gov.example"], ("none", None));
    assert_eq!((o.result, o.org_domain.as_deref()), (DmarcResult::Fail, Some("agency.gov.example")));
    let p = o.policy.unwrap();
    assert_eq!((p.domain.as_str(), p.discovery), ("gov.example", Discovery::PublicSuffixDomain));
    // psd=n: a department is its own Organizational Domain; its parent's signature is not aligned.
    let z = zone(&[("_dmarc.dept.example.com", "v=DMARC1; p=reject; psd=n"), ("_dmarc.example.com", REJECT)]);
    let o = eval(&z, "mail.dept.example.com", &["example.com"], ("none", None));
    assert_eq!((o.result, o.org_domain.as_deref()), (DmarcResult::Fail, Some("dept.example.com")));
    assert_eq!(
        o.policy.map(|p| (p.domain, p.discovery)),
        Some(("dept.example.com".into(), Discovery::OrganizationalDomain))
    );
    let o = eval(&z, "mail.dept.example.com", &["x.dept.example.com"], ("none", None));
    assert_eq!(o.result, DmarcResult::Pass);
}

/// B.4.3: a PSD record, the Author Domain's own record, SPF aligned, DKIM not.
#[test]
fn psd_example_of_the_rfc() {
    let z = zone(&[("_dmarc.bank.example", "v=DMARC1; p=reject; psd=y"), ("_dmarc.giant.bank.example", REJECT)]);
    let o = eval(&z, "giant.bank.example", &["mail.mega.bank.example"], ("pass", Some("mail.giant.bank.example")));
    assert_eq!((o.result, o.aligned), (DmarcResult::Pass, Some(Identifier::Spf("mail.giant.bank.example".into()))));
    assert_eq!(
        o.alignment.iter().map(|a| a.aligned).collect::<Vec<_>>(),
        [Some(false), Some(true)],
        "DKIM's mega.bank.example is not aligned"
    );
    assert_eq!(o.policy.map(|p| p.discovery), Some(Discovery::AuthorDomain));
}

#[test]
fn pass_by_aligned_dkim() {
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    let o = eval(&z, "example.com", &["other.org", "mail.example.com"], ("fail", Some("example.com")));
    assert_eq!(o.result, DmarcResult::Pass);
    assert_eq!(o.aligned, Some(Identifier::Dkim("mail.example.com".into())));
    assert_eq!((o.requested, o.applied), (Some(DmarcPolicy::Reject), Some(DmarcPolicy::Reject)));
}

#[test]
fn pass_by_aligned_spf() {
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    let o = eval(&z, "Example.COM", &["other.org"], ("pass", Some("bounce.example.com")));
    assert_eq!((o.result, o.aligned), (DmarcResult::Pass, Some(Identifier::Spf("bounce.example.com".into()))));
    assert_eq!(o.domain, "example.com");
}

#[test]
fn fail_when_no_passing_identifier_is_aligned() {
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    let o = eval(&z, "example.com", &["example.net"], ("pass", Some("example.org")));
    assert_eq!((o.result, o.applied), (DmarcResult::Fail, Some(DmarcPolicy::Reject)));
    // An aligned SPF domain that did not pass does not count.
    let o = eval(&z, "example.com", &[], ("softfail", Some("example.com")));
    assert_eq!(o.result, DmarcResult::Fail);
}

#[test]
fn strict_alignment_needs_the_same_name() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s; aspf=s")]);
    let o = eval(&z, "example.com", &["mail.example.com"], ("pass", Some("bounce.example.com")));
    assert_eq!(o.result, DmarcResult::Fail);
    let o = eval(&z, "example.com", &["example.com"], ("none", None));
    assert_eq!(o.result, DmarcResult::Pass);
    let o = eval(&z, "example.com", &[], ("pass", Some("example.com")));
    assert_eq!(o.result, DmarcResult::Pass);
    // adkim=s alone leaves SPF relaxed.
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s")]);
    let o = eval(&z, "example.com", &["mail.example.com"], ("pass", Some("bounce.example.com")));
    assert_eq!(o.aligned, Some(Identifier::Spf("bounce.example.com".into())));
}

/// §4.10.1: under a parent's record an existing subdomain gets sp=, a non-existent one np=;
/// the existence question is asked only when they differ.
#[test]
fn subdomain_gets_sp_or_np_of_the_organizational_record() {
    let np = "v=DMARC1; p=reject; sp=quarantine; np=none";
    let z = zone(&[("_dmarc.example.com", np), ("sub.example.com", "@A")]);
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!((o.result, o.requested), (DmarcResult::Fail, Some(DmarcPolicy::Quarantine)));
    let p = o.policy.unwrap();
    assert_eq!((p.domain.as_str(), p.discovery), ("example.com", Discovery::OrganizationalDomain));
    // _dmarc.sub, _dmarc.example.com, _dmarc.com, and the existence question.
    assert_eq!(z.asked.get(), 4);
    let o = eval(&z, "nx.example.com", &[], ("none", None));
    assert_eq!(o.requested, Some(DmarcPolicy::None));
    // An empty non-terminal exists.
    let z = zone(&[("_dmarc.example.com", np), ("a.ent.example.com", "@A")]);
    assert_eq!(eval(&z, "ent.example.com", &[], ("none", None)).requested, Some(DmarcPolicy::Quarantine));
    // np= absent: sp=, and no existence question.
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine")]);
    assert_eq!(eval(&z, "nx.example.com", &[], ("none", None)).requested, Some(DmarcPolicy::Quarantine));
    assert_eq!(z.asked.get(), 3);
    // Without sp= and np= the subdomain gets p=.
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    assert_eq!(eval(&z, "a.b.example.com", &[], ("none", None)).applied, Some(DmarcPolicy::Reject));
    // The subdomain's own record applies its p=, and nothing above is asked.
    let z = zone(&[
        ("_dmarc.example.com", "v=DMARC1; p=reject; sp=reject"),
        ("_dmarc.sub.example.com", "v=DMARC1; p=none"),
    ]);
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!(
        (o.requested, o.policy.map(|p| p.discovery), z.asked.get()),
        (Some(DmarcPolicy::None), Some(Discovery::AuthorDomain), 1)
    );
}

/// An existence question that fails: a pass stays a pass, a failure becomes temperror.
#[test]
fn existence_unknown_is_temperror_for_a_failing_message() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=none; np=reject"), ("sub.example.com", "@TEMPFAIL")]);
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!((o.result, o.requested), (DmarcResult::TempError, None));
    let o = eval(&z, "sub.example.com", &["example.com"], ("none", None));
    assert_eq!(o.result, DmarcResult::Pass);
}

/// §4.7 `t=y`: one step weaker; p=none stays none.
#[test]
fn testing_applies_one_step_weaker() {
    for (rec, requested, applied) in [
        ("v=DMARC1; p=reject; t=y", DmarcPolicy::Reject, DmarcPolicy::Quarantine),
        ("v=DMARC1; p=quarantine; t=y", DmarcPolicy::Quarantine, DmarcPolicy::None),
        ("v=DMARC1; p=none; t=y", DmarcPolicy::None, DmarcPolicy::None),
        ("v=DMARC1; p=reject; t=n", DmarcPolicy::Reject, DmarcPolicy::Reject),
    ] {
        let z = zone(&[("_dmarc.example.com", rec)]);
        let o = eval(&z, "example.com", &[], ("none", None));
        assert_eq!((o.result, o.requested, o.applied), (DmarcResult::Fail, Some(requested), Some(applied)), "{rec}");
    }
}

/// pct= is historic (RFC 9989 A.6): pct=0 no longer weakens the policy.
#[test]
fn pct_is_ignored() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; pct=0")]);
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).applied, Some(DmarcPolicy::Reject));
}

#[test]
fn no_record_is_none() {
    let z = zone(&[]);
    let o = eval(&z, "a.b.example.com", &["a.b.example.com"], ("pass", Some("a.b.example.com")));
    assert_eq!((o.result, o.policy, o.requested), (DmarcResult::None, None, None));
    // _dmarc.a.b.example.com, _dmarc.b.example.com, _dmarc.example.com, _dmarc.com.
    assert_eq!(z.asked.get(), 4);
}

/// §4.10 steps 2 and 6: several records at one name are discarded and the walk goes on.
#[test]
fn several_records_are_discarded_and_the_walk_goes_on() {
    let z = zone(&[
        ("_dmarc.sub.example.com", REJECT),
        ("_dmarc.sub.example.com", "v=DMARC1; p=none"),
        ("_dmarc.example.com", "v=DMARC1; p=quarantine"),
        ("sub.example.com", "@A"),
    ]);
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!((o.result, o.requested), (DmarcResult::Fail, Some(DmarcPolicy::Quarantine)));
    assert_eq!(o.policy.map(|p| p.domain), Some("example.com".into()));
    // Several at the only name: no DMARC.
    let z = zone(&[("_dmarc.example.com", REJECT), ("_dmarc.example.com", "v=DMARC1; p=none")]);
    let o = eval(&z, "example.com", &[], ("none", None));
    assert_eq!(o.result, DmarcResult::None);
    assert!(o.detail.contains("several"), "{}", o.detail);
    // Other TXT records beside one DMARC record do not count.
    let z = zone(&[("_dmarc.example.com", REJECT), ("_dmarc.example.com", "v=spf1 -all")]);
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).result, DmarcResult::Fail);
}

#[test]
fn record_without_valid_p_is_none_unless_rua_makes_it_p_none() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=rejectt")]);
    let o = eval(&z, "example.com", &[], ("none", None));
    assert_eq!((o.result, o.requested), (DmarcResult::None, None));
    // The record is still the one found: the parent is not asked for a policy instead.
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=rejectt; rua=mailto:d@example.com")]);
    let o = eval(&z, "example.com", &[], ("none", None));
    assert_eq!((o.result, o.applied), (DmarcResult::Fail, Some(DmarcPolicy::None)));
}

/// §4.8: an invalid value is ignored for its default, not an error of the whole record.
#[test]
fn invalid_tag_values_take_their_defaults() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; adkim=x; aspf=; pct=x; ri=day; fo=9; t=maybe")]);
    let o = eval(&z, "example.com", &["mail.example.com"], ("none", None));
    assert_eq!((o.result, o.requested), (DmarcResult::Pass, Some(DmarcPolicy::Reject)), "adkim= relaxed by default");
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).applied, Some(DmarcPolicy::Reject), "t=n by default");
}

#[test]
fn duplicate_tag_is_permerror() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; p=none")]);
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).result, DmarcResult::PermError);
}

#[test]
fn from_domain_that_is_not_a_dns_name_is_permerror_without_dns() {
    let z = zone(&[]);
    for d in ["", "a..b", ".", &"a".repeat(64), "ex ample.com"] {
        assert_eq!(eval(&z, d, &[], ("none", None)).result, DmarcResult::PermError, "{d:?}");
    }
    assert_eq!(z.asked.get(), 0);
}

#[test]
fn dns_failure_is_temperror_never_none_or_pass() {
    let z = zone(&[("_dmarc.example.com", "@TEMPFAIL")]);
    let o = eval(&z, "example.com", &["example.com"], ("pass", Some("example.com")));
    assert_eq!(o.result, DmarcResult::TempError);
    // A failure further up the walk, before any record was found.
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!(o.result, DmarcResult::TempError);
}

/// The From domain's own record decides the policy even when the walk above it fails; only
/// an alignment that needed that walk is unknown.
#[test]
fn failure_above_the_own_record_leaves_only_relaxed_alignment_unknown() {
    let z = zone(&[("_dmarc.example.com", REJECT), ("_dmarc.com", "@TEMPFAIL")]);
    let o = eval(&z, "example.com", &["example.com"], ("none", None));
    assert_eq!(o.result, DmarcResult::Pass);
    let o = eval(&z, "example.com", &["example.net"], ("none", None));
    assert_eq!((o.result, o.applied), (DmarcResult::Fail, Some(DmarcPolicy::Reject)), "another TLD never aligns");
    let o = eval(&z, "example.com", &["mail.example.com"], ("none", None));
    assert_eq!(o.result, DmarcResult::TempError);
    assert_eq!(o.alignment[0].aligned, None);
}

#[test]
fn aligned_temporary_failure_without_a_pass_is_temperror() {
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    let temp = s(&["example.com"]);
    let ev = Evidence {
        dkim_temperror: &temp,
        spf_result: SpfResult::Fail,
        spf_domain: Some("example.com"),
        ..Evidence::default()
    };
    assert_eq!(evaluate(&z, "example.com", &ev).result, DmarcResult::TempError);
    let ev = Evidence { spf_result: SpfResult::TempError, spf_domain: Some("example.com"), ..Evidence::default() };
    assert_eq!(evaluate(&z, "example.com", &ev).result, DmarcResult::TempError);
    // Unaligned temporary failures do not matter; an aligned pass wins over them.
    let other = s(&["example.net"]);
    let ev = Evidence {
        dkim_temperror: &other,
        spf_result: SpfResult::TempError,
        spf_domain: Some("example.org"),
        ..Evidence::default()
    };
    assert_eq!(evaluate(&z, "example.com", &ev).result, DmarcResult::Fail);
    let pass = s(&["example.com"]);
    let ev = Evidence {
        dkim_pass: &pass,
        dkim_temperror: &temp,
        spf_result: SpfResult::TempError,
        spf_domain: Some("example.com"),
    };
    assert_eq!(evaluate(&z, "example.com", &ev).result, DmarcResult::Pass);
}

/// A From domain of `labels` labels (at most 127: 253 octets) under `b.c`.
fn deep(labels: usize) -> String {
    format!("{}b.c", "a.".repeat(labels.clamp(2, 127) - 2))
}

/// One walk is at most eight questions however deep the From domain (§4.10), and the walks of
/// several identifiers ask no name twice.
#[test]
fn deep_from_domain_costs_at_most_the_bound() {
    for labels in [2, 7, 8, 9, 20, 127] {
        let from = deep(labels);
        let z = zone(&[]);
        assert_eq!(eval(&z, &from, &[], ("none", None)).result, DmarcResult::None, "{labels}");
        assert_eq!(z.asked.get(), labels.min(walk::MAX_QUERIES), "{labels} labels");
    }
    let from = deep(127);
    assert_eq!(from.len(), 253);
    let z = zone(&[("_dmarc.b.c", REJECT)]);
    let ids = [from.as_str(), &from[2..], &from[4..], "b.c", "mail.b.c"];
    let o = eval(&z, &from, &ids, ("pass", Some(&from[6..])));
    assert_eq!(o.result, DmarcResult::Pass);
    assert!(o.alignment.iter().all(|a| a.aligned == Some(true)), "{:?}", o.alignment);
    // The From walk asks 8 names; each other identifier adds its own name at most: the
    // 7-label suffixes below it were asked already.
    assert!(z.asked.get() <= walk::MAX_QUERIES + ids.len(), "{}", z.asked.get());
}

/// The walk's cost stops growing at its bound: a 127-label From domain (the most 253 octets
/// hold) costs eight questions, as an 8-label one does, in time and memory within 16 times.
#[test]
fn dmarc_tree_walk_is_linear() {
    crate::linear::assert_linear("DMARC tree walk, From domain of n labels (at most 127)", 8, deep, |from| {
        for _ in 0..200 {
            let z = zone(&[("_dmarc.b.c", REJECT)]);
            let ids = s(&[from, "mail.b.c"]);
            let ev = Evidence { dkim_pass: &ids, spf_result: SpfResult::None, ..Evidence::default() };
            std::hint::black_box(evaluate(&z, from, &ev));
            assert!(z.asked.get() <= 2 * walk::MAX_QUERIES);
        }
    });
}

// --- the task ------------------------------------------------------------------------------

struct Msg {
    headers: Headers,
    envelope: Envelope,
    earlier: Vec<MethodOutput>,
}

fn msg(header: &str, sender: &str, earlier: Vec<MethodOutput>) -> Msg {
    Msg {
        headers: Headers::parse(header.as_bytes().to_vec()),
        envelope: Envelope { raw: Vec::new(), sender: sender.as_bytes().to_vec(), recipients: vec![b"a@b".to_vec()] },
        earlier,
    }
}

fn spf_output(result: SpfResult, scope: SpfScope, identity: &str) -> MethodOutput {
    MethodOutput::Spf(SpfOutput {
        result,
        domain: String::new(),
        reason: String::new(),
        explanation: None,
        scope,
        identity: Some(identity.to_string()),
    })
}

fn spf_result(result: SpfResult, mailfrom: &str) -> MethodOutput {
    spf_output(result, SpfScope::MailFrom, mailfrom)
}

fn dkim_result(result: DkimResult, d: &str) -> MethodOutput {
    let sig = DkimOutput {
        result,
        letter: 'A',
        reason: None,
        domain: Some(d.to_string()),
        identity: None,
        selector: None,
        algorithm: None,
        b_prefix: None,
    };
    MethodOutput::Dkim { signatures: vec![sig], result, letter: 'A' }
}

/// What Authentication-Results shows of one output.
fn shown(o: &MethodOutput) -> MethodResult {
    render(std::slice::from_ref(o)).remove(0)
}

fn finish(records: &[(&str, &str)], m: &Msg, task: DmarcTask) -> Finished {
    let records: Vec<(String, String)> = records.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let make = move || -> Box<dyn crate::dns::Resolver> {
        let r: Vec<(&str, &str)> = records.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        Box::new(zone(&r))
    };
    let ctx = Context {
        headers: &m.headers,
        queued: &m.headers,
        envelope: &m.envelope,
        now: 0,
        verbose: false,
        authserv_id: &|| "mx.test".to_string(),
        dns: &|| panic!("DMARC asks the resolver, not the key lookup"),
        resolver: &make,
        earlier: &m.earlier,
    };
    Box::new(task).finish(&ctx).unwrap()
}

fn task(letters: &str) -> DmarcTask {
    DmarcTask::new(DmarcSettings { letters: letters.into() })
}

/// The `dmarc=` part of the `Authentication-Results` field, unfolded.
fn ar(r: &Finished) -> String {
    let f = String::from_utf8(crate::auth_results::field("mx", &r.method_results())).unwrap().replace("\n\t", " ");
    f.strip_prefix("Authentication-Results: mx; ").and_then(|f| f.strip_suffix('\n')).unwrap().to_string()
}

#[test]
fn failing_message_under_p_reject_is_refused_by_r() {
    let m =
        msg("From: Joe <joe@example.com>\n", "joe@example.org", vec![spf_result(SpfResult::Pass, "joe@example.org")]);
    let r = finish(&[("_dmarc.example.com", REJECT)], &m, task("R"));
    let refusal = r.refuse.unwrap();
    assert!(refusal.permanent);
    assert_eq!(refusal.text, "qmail-dkim: DMARC policy of example.com is reject and the message failed (#5.7.1)");
    let r = finish(&[("_dmarc.example.com", REJECT)], &m, task("r"));
    assert_eq!(
        r.refuse.map(|f| (f.permanent, f.text)),
        Some((false, "qmail-dkim: DMARC policy of example.com is reject and the message failed (#4.7.1)".into()))
    );
    // Report only: queued, with the result.
    let r = finish(&[("_dmarc.example.com", REJECT)], &m, task(""));
    assert!(r.refuse.is_none());
    assert_eq!(ar(&r), "dmarc=fail (p=reject dis=none) header.from=example.com policy.dmarc=reject");
    // Q and N do not refuse under reject.
    assert!(finish(&[("_dmarc.example.com", REJECT)], &m, task("QNTP")).refuse.is_none());
}

#[test]
fn q_and_n_refuse_by_the_policy_that_applies() {
    let m = msg("From: joe@example.com\n", "joe@example.org", vec![]);
    let q = [("_dmarc.example.com", "v=DMARC1; p=quarantine")];
    assert!(finish(&q, &m, task("R")).refuse.is_none());
    assert!(finish(&q, &m, task("Q")).refuse.is_some_and(|r| r.permanent && r.text.contains("is quarantine")));
    let n = [("_dmarc.example.com", "v=DMARC1; p=none")];
    assert!(finish(&n, &m, task("RQ")).refuse.is_none());
    assert!(finish(&n, &m, task("n")).refuse.is_some_and(|r| !r.permanent));
}

/// `t=y` applies one step weaker: `R` does not refuse a testing `p=reject`, `Q` does.
#[test]
fn testing_reject_is_refused_by_q_not_r() {
    let m = msg("From: joe@example.com\n", "", vec![]);
    let rec = [("_dmarc.example.com", "v=DMARC1; p=reject; t=y")];
    let r = finish(&rec, &m, task("R"));
    assert!(r.refuse.is_none());
    assert_eq!(ar(&r), "dmarc=fail (p=reject t=y dis=none) header.from=example.com policy.dmarc=quarantine");
    assert!(finish(&rec, &m, task("RQ")).refuse.is_some_and(|r| r.text.contains("is quarantine")));
}

/// RFC 7489's `pct=0` made `R` never refuse; RFC 9989 ignores `pct=`.
#[test]
fn pct_zero_no_longer_spares_a_reject() {
    let m = msg("From: joe@example.com\n", "", vec![]);
    let rec = [("_dmarc.example.com", "v=DMARC1; p=reject; pct=0")];
    let r = finish(&rec, &m, task("R"));
    assert!(r.refuse.is_some_and(|r| r.permanent && r.text.contains("is reject")));
}

#[test]
fn pass_by_aligned_dkim_from_earlier_results() {
    let earlier = vec![
        spf_result(SpfResult::Fail, "joe@example.org"),
        dkim_result(DkimResult::Fail, "example.com"),
        dkim_result(DkimResult::Pass, "mail.example.com"),
    ];
    let m = msg("From: joe@example.com\n", "joe@example.org", earlier);
    let r = finish(&[("_dmarc.example.com", REJECT)], &m, task("RQNTP"));
    assert!(r.refuse.is_none());
    assert_eq!(ar(&r), "dmarc=pass (p=reject dis=none) header.from=example.com policy.dmarc=reject");
}

/// SPF's domain is the MAIL FROM's; for `<>` the HELO name SPF checked.
#[test]
fn pass_by_aligned_spf_of_mail_from_or_helo() {
    let m = msg(
        "From: joe@example.com\n",
        "b@bounce.example.com",
        vec![spf_result(SpfResult::Pass, "b@bounce.example.com")],
    );
    let r = finish(&[("_dmarc.example.com", REJECT)], &m, task("R"));
    assert!(ar(&r).contains("dmarc=pass"));
    let helo = spf_output(SpfResult::Pass, SpfScope::Helo, "mx.example.com");
    let m = msg("From: joe@example.com\n", "", vec![helo.clone()]);
    assert!(ar(&finish(&[("_dmarc.example.com", REJECT)], &m, task("R"))).contains("dmarc=pass"));
    // With a sender, HELO does not count.
    let m = msg("From: joe@example.com\n", "x@example.org", vec![helo]);
    assert!(finish(&[("_dmarc.example.com", REJECT)], &m, task("R")).refuse.is_some());
}

/// RFC 9989 §4.4.2 aligns the RFC5321.MailFrom domain, which SPF checked: the envelope's,
/// whatever the `smtp.mailfrom` property could carry. A sender the A-R cannot show (a UTF-8
/// local part, RFC 6531; over 255 octets) leaves no property, but its SPF pass still counts.
#[test]
fn spf_pass_of_a_sender_the_property_cannot_carry_is_aligned() {
    let long = format!("{}@example.com", "l".repeat(300));
    for sender in ["j\u{f6}e@example.com", long.as_str()] {
        let spf = spf_result(SpfResult::Pass, sender);
        assert_eq!(shown(&spf).property("smtp.mailfrom"), None, "the property is dropped");
        let m = msg("From: joe@example.com\n", sender, vec![spf]);
        let r = finish(&[("_dmarc.example.com", REJECT)], &m, task("R"));
        assert!(r.refuse.is_none(), "{sender}");
        assert_eq!(ar(&r), "dmarc=pass (p=reject dis=none) header.from=example.com policy.dmarc=reject");
    }
}

#[test]
fn temperror_refuses_only_temporarily_even_with_uppercase_t() {
    let m = msg("From: joe@example.com\n", "", vec![]);
    let r = finish(&[("_dmarc.example.com", "@TEMPFAIL")], &m, task("RT"));
    assert_eq!(
        r.refuse.map(|f| (f.permanent, f.text)),
        Some((false, "qmail-dkim: DMARC check of example.com failed temporarily (#4.7.1)".into()))
    );
    let r = finish(&[("_dmarc.example.com", "@TEMPFAIL")], &m, task("R"));
    assert!(r.refuse.is_none());
    assert!(ar(&r).starts_with("dmarc=temperror reason="), "{}", ar(&r));
    // An aligned DKIM temperror from the DKIM task.
    let m = msg("From: joe@example.com\n", "", vec![dkim_result(DkimResult::TempError, "example.com")]);
    assert!(finish(&[("_dmarc.example.com", REJECT)], &m, task("t")).refuse.is_some_and(|r| !r.permanent));
}

#[test]
fn two_from_domains_are_permerror() {
    let rec = [("_dmarc.example.com", REJECT), ("_dmarc.example.org", REJECT)];
    for h in ["From: a@example.com, b@example.org\n", "From: a@example.com\nFrom: b@example.org\n"] {
        let m = msg(h, "", vec![]);
        let r = finish(&rec, &m, task("RP"));
        let f = r.refuse.as_ref().unwrap();
        assert!(f.permanent);
        assert_eq!(f.text, "qmail-dkim: DMARC permanent error: From names several domains (#5.7.1)");
        assert_eq!(ar(&r), "dmarc=permerror reason=\"From names several domains\"");
    }
    // The same domain twice is one author domain.
    let m = msg("From: a@example.com, b@EXAMPLE.com\n", "", vec![]);
    assert!(finish(&rec, &m, task("R")).refuse.is_some_and(|r| r.text.contains("is reject")));
}

#[test]
fn no_from_or_from_without_domain_is_permerror() {
    for h in [
        "Subject: x\n",
        "From: undisclosed-recipients:;\n",
        "From: joe\n",
        "From: a@example.com, <>\n",
        "From: joe@ex\u{e9}mple.com\n",
    ] {
        let m = msg(h, "", vec![]);
        let r = finish(&[], &m, task("p"));
        assert!(ar(&r).contains("dmarc=permerror"), "{h:?}: {}", ar(&r));
        assert!(r.refuse.is_some_and(|f| !f.permanent), "{h:?}");
    }
    // Without P: queued.
    assert!(finish(&[], &msg("Subject: x\n", "", vec![]), task("RQNT")).refuse.is_none());
}

#[test]
fn invalid_record_is_permerror_refused_by_p() {
    let m = msg("From: joe@example.com\n", "", vec![]);
    let r = finish(&[("_dmarc.example.com", "v=DMARC1; p=reject; p=none\r\n")], &m, task("P"));
    assert_eq!(r.refuse.map(|f| f.text), Some("qmail-dkim: DMARC permanent error for example.com (#5.7.1)".into()));
}

#[test]
fn no_record_is_none_and_never_refused() {
    let m = msg("From: joe@sub.example.co.uk\n", "", vec![]);
    let r = finish(&[("_dmarc.other.co.uk", REJECT)], &m, task("RQNTP"));
    assert!(r.refuse.is_none());
    assert_eq!(ar(&r), "dmarc=none reason=\"no DMARC record\" header.from=sub.example.co.uk");
}

/// A Public Suffix Domain's record (`psd=y`) applies to a registrant that publishes none.
#[test]
fn psd_record_applies_to_a_registrant_without_one() {
    let m = msg("From: joe@sub.example.co.uk\n", "", vec![]);
    let r = finish(&[("_dmarc.co.uk", "v=DMARC1; p=reject; psd=y")], &m, task("R"));
    assert!(r.refuse.is_some_and(|f| f.text.contains("DMARC policy of sub.example.co.uk is reject")));
}

#[test]
fn subdomain_sp_from_the_organizational_record_refuses() {
    let m = msg("From: joe@sub.example.co.uk\n", "x@other.co.uk", vec![spf_result(SpfResult::Pass, "x@other.co.uk")]);
    let rec = [("_dmarc.example.co.uk", "v=DMARC1; p=none; sp=reject")];
    let r = finish(&rec, &m, task("R"));
    assert!(r.refuse.is_some_and(|f| f.text.contains("DMARC policy of sub.example.co.uk is reject")));
    let m =
        msg("From: joe@sub.example.co.uk\n", "x@example.co.uk", vec![spf_result(SpfResult::Pass, "x@example.co.uk")]);
    assert!(finish(&rec, &m, task("R")).refuse.is_none());
}
