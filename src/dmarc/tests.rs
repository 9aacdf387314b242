use super::record::{Alignment, Policy};
use super::task::{DmarcSettings, DmarcTask};
use super::*;
use crate::auth_results::MethodResult;
use crate::dns::{Zone, ZoneRecord};
use crate::envelope::Envelope;
use crate::message::Headers;
use crate::task::{Context, Task, TaskResult};

fn zone(records: &[(&str, &str)]) -> Zone {
    let mut z = Zone::new();
    for (n, t) in records {
        if *t == "@TEMPFAIL" {
            z.add(n, ZoneRecord::TempFail);
        } else {
            z.txt(n, t);
        }
    }
    z
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Evaluates with DKIM passes `dkim`, SPF `spf` (word, domain), roll 0 (panics when pct does
/// not need one, so tests notice a roll drawn without need).
fn eval(z: &Zone, from: &str, dkim: &[&str], spf: (&str, Option<&str>)) -> DmarcOutput {
    let pass = s(dkim);
    let ev = Evidence { dkim_pass: &pass, dkim_temperror: &[], spf_result: spf.0, spf_domain: spf.1 };
    evaluate(z, from, &ev, &mut || panic!("no roll needed"))
}

const REJECT: &str = "v=DMARC1; p=reject";

#[test]
fn organizational_domains_from_the_public_suffix_list() {
    for (d, o) in [
        ("example.com", "example.com"),
        ("a.b.example.com", "example.com"),
        ("sub.example.co.uk", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("co.uk", "co.uk"),
        ("com", "com"),
        ("user.github.io", "user.github.io"),
        ("x.example.invalidtld", "example.invalidtld"),
        ("example.com.", "example.com"),
    ] {
        assert_eq!(organizational_domain(d), o, "{d}");
    }
}

/// shared/SPEC.md §11: relaxed alignment joins a name with its parent, never siblings under
/// a public suffix; strict joins only the same name.
#[test]
fn co_uk_parent_aligned_sibling_not() {
    assert!(aligned("sub.example.co.uk", "example.co.uk", Alignment::Relaxed));
    assert!(aligned("example.co.uk", "sub.example.co.uk", Alignment::Relaxed));
    assert!(!aligned("other.co.uk", "example.co.uk", Alignment::Relaxed));
    assert!(!aligned("co.uk", "example.co.uk", Alignment::Relaxed));
    assert!(!aligned("sub.example.co.uk", "example.co.uk", Alignment::Strict));
    assert!(aligned("example.co.uk", "example.co.uk", Alignment::Strict));
    let z = zone(&[("_dmarc.example.co.uk", REJECT)]);
    let o = eval(&z, "sub.example.co.uk", &["example.co.uk"], ("none", None));
    assert_eq!((o.result, o.aligned), (Verdict::Pass, Some(Identifier::Dkim("example.co.uk".into()))));
    let o = eval(&z, "example.co.uk", &["other.co.uk"], ("pass", Some("other.co.uk")));
    assert_eq!((o.result, o.applied), (Verdict::Fail, Some(Policy::Reject)));
}

#[test]
fn pass_by_aligned_dkim() {
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    let o = eval(&z, "example.com", &["other.org", "mail.example.com"], ("fail", Some("example.com")));
    assert_eq!(o.result, Verdict::Pass);
    assert_eq!(o.aligned, Some(Identifier::Dkim("mail.example.com".into())));
    assert_eq!(o.requested, Some(Policy::Reject));
    assert_eq!(o.applied, None);
}

#[test]
fn pass_by_aligned_spf() {
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    let o = eval(&z, "Example.COM", &["other.org"], ("pass", Some("bounce.example.com")));
    assert_eq!((o.result, o.aligned), (Verdict::Pass, Some(Identifier::Spf("bounce.example.com".into()))));
    assert_eq!(o.domain, "example.com");
}

#[test]
fn fail_when_no_passing_identifier_is_aligned() {
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    let o = eval(&z, "example.com", &["example.net"], ("pass", Some("example.org")));
    assert_eq!((o.result, o.applied), (Verdict::Fail, Some(Policy::Reject)));
    // An aligned SPF domain that did not pass does not count.
    let o = eval(&z, "example.com", &[], ("softfail", Some("example.com")));
    assert_eq!(o.result, Verdict::Fail);
}

#[test]
fn strict_alignment_needs_the_same_name() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s; aspf=s")]);
    let o = eval(&z, "example.com", &["mail.example.com"], ("pass", Some("bounce.example.com")));
    assert_eq!(o.result, Verdict::Fail);
    let o = eval(&z, "example.com", &["example.com"], ("none", None));
    assert_eq!(o.result, Verdict::Pass);
    let o = eval(&z, "example.com", &[], ("pass", Some("example.com")));
    assert_eq!(o.result, Verdict::Pass);
    // adkim=s alone leaves SPF relaxed.
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s")]);
    let o = eval(&z, "example.com", &["mail.example.com"], ("pass", Some("bounce.example.com")));
    assert_eq!(o.aligned, Some(Identifier::Spf("bounce.example.com".into())));
}

#[test]
fn subdomain_gets_sp_of_the_organizational_record() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine")]);
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!((o.result, o.requested, o.applied), (Verdict::Fail, Some(Policy::Quarantine), Some(Policy::Quarantine)));
    assert_eq!(o.record.as_ref().map(|(at, _)| at.as_str()), Some("example.com"));
    assert_eq!(z.asked.get(), 2);
    // Without sp= the subdomain gets p=.
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    assert_eq!(eval(&z, "a.b.example.com", &[], ("none", None)).applied, Some(Policy::Reject));
    // The subdomain's own record applies its p=, and the organizational one is not asked.
    let z = zone(&[
        ("_dmarc.example.com", "v=DMARC1; p=reject; sp=reject"),
        ("_dmarc.sub.example.com", "v=DMARC1; p=none"),
    ]);
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!((o.requested, z.asked.get()), (Some(Policy::None), 1));
}

#[test]
fn each_policy_is_applied_as_published() {
    for p in [Policy::None, Policy::Quarantine, Policy::Reject] {
        let z = zone(&[("_dmarc.example.com", &format!("v=DMARC1; p={}", p.name()))]);
        let o = eval(&z, "example.com", &[], ("none", None));
        assert_eq!((o.result, o.applied), (Verdict::Fail, Some(p)));
    }
}

#[test]
fn no_record_is_none_after_two_lookups_at_most() {
    let z = zone(&[]);
    let o = eval(&z, "a.b.c.example.com", &["example.com"], ("pass", Some("example.com")));
    assert_eq!((o.result, o.requested), (Verdict::None, None));
    assert_eq!(z.asked.get(), MAX_LOOKUPS);
    // Only records starting with v=DMARC1 count.
    let z = zone(&[("_dmarc.example.com", "v=spf1 -all"), ("_dmarc.example.com", "p=reject; v=DMARC1")]);
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).result, Verdict::None);
    // The From domain is its own organizational domain: one lookup.
    let z = zone(&[]);
    eval(&z, "example.com", &[], ("none", None));
    assert_eq!(z.asked.get(), 1);
}

/// §6.6.3 step 5: several records at the name found are no policy, and the organizational
/// domain is not asked instead.
#[test]
fn several_records_are_no_policy() {
    let z = zone(&[
        ("_dmarc.sub.example.com", REJECT),
        ("_dmarc.sub.example.com", "v=DMARC1; p=none"),
        ("_dmarc.example.com", REJECT),
    ]);
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!((o.result, z.asked.get()), (Verdict::None, 1));
    assert!(o.detail.contains("several"), "{}", o.detail);
}

#[test]
fn record_without_valid_p_is_none_unless_rua_makes_it_p_none() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=rejectt")]);
    let o = eval(&z, "example.com", &[], ("none", None));
    assert_eq!((o.result, o.requested), (Verdict::None, None));
    // The author's invalid record is not replaced by the organizational one (step 3).
    assert_eq!(z.asked.get(), 1);
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=rejectt; rua=mailto:d@example.com")]);
    let o = eval(&z, "example.com", &[], ("none", None));
    assert_eq!((o.result, o.applied), (Verdict::Fail, Some(Policy::None)));
}

#[test]
fn invalid_record_is_permerror() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; adkim=x")]);
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).result, Verdict::PermError);
}

#[test]
fn from_domain_that_is_not_a_dns_name_is_permerror_without_dns() {
    let z = zone(&[]);
    for d in ["", "a..b", ".", &"a".repeat(64), "ex ample.com"] {
        assert_eq!(eval(&z, d, &[], ("none", None)).result, Verdict::PermError, "{d:?}");
    }
    assert_eq!(z.asked.get(), 0);
}

/// pct=0 never applies reject (quarantine instead); the roll is drawn only when 0 < pct < 100.
#[test]
fn pct_zero_applies_the_next_weaker_policy() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; pct=0")]);
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).applied, Some(Policy::Quarantine));
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=quarantine; pct=0")]);
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).applied, Some(Policy::None));
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; pct=100")]);
    assert_eq!(eval(&z, "example.com", &[], ("none", None)).applied, Some(Policy::Reject));
}

#[test]
fn pct_applies_the_policy_to_rolls_below_it() {
    let z = zone(&[("_dmarc.example.com", "v=DMARC1; p=reject; pct=30")]);
    let ev = Evidence { spf_result: "none", ..Evidence::default() };
    for (roll, p) in [(0, Policy::Reject), (29, Policy::Reject), (30, Policy::Quarantine), (99, Policy::Quarantine)] {
        assert_eq!(evaluate(&z, "example.com", &ev, &mut || roll).applied, Some(p), "{roll}");
    }
    // A passing message draws no roll.
    let ev = Evidence { spf_result: "pass", spf_domain: Some("example.com"), ..Evidence::default() };
    assert_eq!(evaluate(&z, "example.com", &ev, &mut || panic!("rolled")).result, Verdict::Pass);
}

#[test]
fn dns_failure_is_temperror_never_none_or_pass() {
    let z = zone(&[("_dmarc.example.com", "@TEMPFAIL")]);
    let o = eval(&z, "example.com", &["example.com"], ("pass", Some("example.com")));
    assert_eq!(o.result, Verdict::TempError);
    // The organizational domain's lookup too.
    let o = eval(&z, "sub.example.com", &[], ("none", None));
    assert_eq!(o.result, Verdict::TempError);
}

#[test]
fn aligned_temporary_failure_without_a_pass_is_temperror() {
    let z = zone(&[("_dmarc.example.com", REJECT)]);
    let temp = s(&["example.com"]);
    let ev =
        Evidence { dkim_temperror: &temp, spf_result: "fail", spf_domain: Some("example.com"), ..Evidence::default() };
    assert_eq!(evaluate(&z, "example.com", &ev, &mut || 0).result, Verdict::TempError);
    let ev = Evidence { spf_result: "temperror", spf_domain: Some("example.com"), ..Evidence::default() };
    assert_eq!(evaluate(&z, "example.com", &ev, &mut || 0).result, Verdict::TempError);
    // Unaligned temporary failures do not matter; an aligned pass wins over them.
    let other = s(&["example.net"]);
    let ev = Evidence {
        dkim_temperror: &other,
        spf_result: "temperror",
        spf_domain: Some("example.org"),
        ..Evidence::default()
    };
    assert_eq!(evaluate(&z, "example.com", &ev, &mut || 0).result, Verdict::Fail);
    let pass = s(&["example.com"]);
    let ev =
        Evidence { dkim_pass: &pass, dkim_temperror: &temp, spf_result: "temperror", spf_domain: Some("example.com") };
    assert_eq!(evaluate(&z, "example.com", &ev, &mut || 0).result, Verdict::Pass);
}

// --- the task ------------------------------------------------------------------------------

struct Msg {
    headers: Headers,
    envelope: Envelope,
    earlier: Vec<MethodResult>,
}

fn msg(header: &str, sender: &str, earlier: Vec<MethodResult>) -> Msg {
    Msg {
        headers: Headers::parse(header.as_bytes().to_vec()),
        envelope: Envelope { raw: Vec::new(), sender: sender.as_bytes().to_vec(), recipients: vec![b"a@b".to_vec()] },
        earlier,
    }
}

fn spf_result(word: &'static str, mailfrom: &str) -> MethodResult {
    MethodResult::new("spf", word).prop("smtp.mailfrom", Some(mailfrom))
}

fn dkim_result(word: &'static str, d: &str) -> MethodResult {
    MethodResult::new("dkim", word).prop("header.d", Some(d))
}

fn finish(records: &[(&str, &str)], m: &Msg, task: DmarcTask) -> TaskResult {
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
    DmarcTask::new(DmarcSettings { letters: letters.into(), ..DmarcSettings::default() })
}

/// The `dmarc=` part of the `Authentication-Results` field, unfolded.
fn ar(r: &TaskResult) -> String {
    let f = String::from_utf8(crate::auth_results::field("mx", &r.auth)).unwrap().replace("\n\t", " ");
    f.strip_prefix("Authentication-Results: mx; ").and_then(|f| f.strip_suffix('\n')).unwrap().to_string()
}

#[test]
fn failing_message_under_p_reject_is_refused_by_r() {
    let m = msg("From: Joe <joe@example.com>\n", "joe@example.org", vec![spf_result("pass", "joe@example.org")]);
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
    assert_eq!(ar(&r), "dmarc=fail (p=reject dis=none) header.from=example.com");
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

/// shared/SPEC.md §11: `pct=0` never refuses with `R`; quarantine applies.
#[test]
fn pct_zero_with_r_letters_is_not_refused_quarantine_applies() {
    let m = msg("From: joe@example.com\n", "", vec![]);
    let rec = [("_dmarc.example.com", "v=DMARC1; p=reject; pct=0")];
    for roll in [0, 50, 99] {
        let r = finish(&rec, &m, task("R").with_roll(roll));
        assert!(r.refuse.is_none());
        assert_eq!(ar(&r), "dmarc=fail (p=quarantine pct=0 dis=none) header.from=example.com");
    }
    assert!(finish(&rec, &m, task("RQ")).refuse.is_some_and(|r| r.text.contains("is quarantine")));
}

#[test]
fn pct_roll_of_the_task_decides_between_policy_and_the_weaker_one() {
    let m = msg("From: joe@example.com\n", "", vec![]);
    let rec = [("_dmarc.example.com", "v=DMARC1; p=reject; pct=50")];
    assert!(finish(&rec, &m, task("R").with_roll(49)).refuse.is_some());
    assert!(finish(&rec, &m, task("R").with_roll(50)).refuse.is_none());
    // The real roll gives one of the two.
    let r = finish(&rec, &m, task(""));
    let a = ar(&r);
    assert!(a.contains("(p=reject pct=50 dis=none)") || a.contains("(p=quarantine pct=50 dis=none)"), "{a}");
}

#[test]
fn pass_by_aligned_dkim_from_earlier_results() {
    let earlier = vec![
        spf_result("fail", "joe@example.org"),
        dkim_result("fail", "example.com"),
        dkim_result("pass", "mail.example.com"),
    ];
    let m = msg("From: joe@example.com\n", "joe@example.org", earlier);
    let r = finish(&[("_dmarc.example.com", REJECT)], &m, task("RQNTP"));
    assert!(r.refuse.is_none());
    assert_eq!(ar(&r), "dmarc=pass (p=reject dis=none) header.from=example.com");
}

/// SPF's domain is the MAIL FROM's; for `<>` the HELO name SPF checked.
#[test]
fn pass_by_aligned_spf_of_mail_from_or_helo() {
    let m = msg("From: joe@example.com\n", "b@bounce.example.com", vec![spf_result("pass", "b@bounce.example.com")]);
    let r = finish(&[("_dmarc.example.com", REJECT)], &m, task("R"));
    assert!(ar(&r).contains("dmarc=pass"));
    let helo = MethodResult::new("spf", "pass").prop("smtp.helo", Some("mx.example.com"));
    let m = msg("From: joe@example.com\n", "", vec![helo.clone()]);
    assert!(ar(&finish(&[("_dmarc.example.com", REJECT)], &m, task("R"))).contains("dmarc=pass"));
    // With a sender, HELO does not count.
    let m = msg("From: joe@example.com\n", "x@example.org", vec![helo]);
    assert!(finish(&[("_dmarc.example.com", REJECT)], &m, task("R")).refuse.is_some());
}

/// RFC 7489 §3.1.2 aligns the RFC5321.MailFrom domain, which SPF checked: the envelope's,
/// whatever the `smtp.mailfrom` property could carry. A sender the A-R cannot show (a UTF-8
/// local part, RFC 6531; over 255 octets) leaves no property, but its SPF pass still counts.
#[test]
fn spf_pass_of_a_sender_the_property_cannot_carry_is_aligned() {
    let long = format!("{}@example.com", "l".repeat(300));
    for sender in ["j\u{f6}e@example.com", long.as_str()] {
        let spf = spf_result("pass", sender);
        assert_eq!(spf.property("smtp.mailfrom"), None, "the property is dropped");
        let m = msg("From: joe@example.com\n", sender, vec![spf]);
        let r = finish(&[("_dmarc.example.com", REJECT)], &m, task("R"));
        assert!(r.refuse.is_none(), "{sender}");
        assert_eq!(ar(&r), "dmarc=pass (p=reject dis=none) header.from=example.com");
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
    let m = msg("From: joe@example.com\n", "", vec![dkim_result("temperror", "example.com")]);
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
    let r = finish(&[("_dmarc.example.com", "v=DMARC1; p=reject; pct=x\r\n")], &m, task("P"));
    assert_eq!(r.refuse.map(|f| f.text), Some("qmail-dkim: DMARC permanent error for example.com (#5.7.1)".into()));
}

#[test]
fn no_record_is_none_and_never_refused() {
    let m = msg("From: joe@sub.example.co.uk\n", "", vec![]);
    let r = finish(&[("_dmarc.co.uk", REJECT)], &m, task("RQNTP"));
    assert!(r.refuse.is_none());
    assert_eq!(ar(&r), "dmarc=none reason=\"no DMARC record\" header.from=sub.example.co.uk");
}

#[test]
fn subdomain_sp_from_the_organizational_record_refuses() {
    let m = msg("From: joe@sub.example.co.uk\n", "x@other.co.uk", vec![spf_result("pass", "x@other.co.uk")]);
    let rec = [("_dmarc.example.co.uk", "v=DMARC1; p=none; sp=reject")];
    let r = finish(&rec, &m, task("R"));
    assert!(r.refuse.is_some_and(|f| f.text.contains("DMARC policy of sub.example.co.uk is reject")));
    let m = msg("From: joe@sub.example.co.uk\n", "x@example.co.uk", vec![spf_result("pass", "x@example.co.uk")]);
    assert!(finish(&rec, &m, task("R")).refuse.is_none());
}
