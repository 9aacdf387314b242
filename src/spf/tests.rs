//! check_host() and the task over the in-memory zone.

use super::task::{SpfSettings, SpfTask};
use super::verify::MAX_DNS_TERMS;
use super::{check_host, SpfOutput, SpfResult};
use crate::dns::{Resolver, Zone, ZoneRecord};
use crate::envelope::Envelope;
use crate::message::Headers;
use crate::task::{Context, Task};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn run(z: &Zone, client: &str, domain: &str) -> SpfOutput {
    check_host(z, ip(client), domain, &format!("user@{domain}"), "helo.example.net", "mx.example.net")
}

fn result(z: &Zone, client: &str, domain: &str) -> SpfResult {
    run(z, client, domain).result
}

fn zone(records: &[(&str, &str)]) -> Zone {
    let mut z = Zone::new();
    for (name, v) in records {
        z.txt(name, v);
    }
    z
}

/// RFC 7208 Appendix A's zone, with `example.com`'s record as given.
fn appendix_a(record: &str) -> Zone {
    let mut z = Zone::new();
    z.txt("example.com", record);
    let a = |z: &mut Zone, n: &str, v: &str| {
        z.add(n, ZoneRecord::A(v.parse().unwrap()));
    };
    a(&mut z, "example.com", "192.0.2.10");
    a(&mut z, "example.com", "192.0.2.11");
    a(&mut z, "amy.example.com", "192.0.2.65");
    a(&mut z, "bob.example.com", "192.0.2.66");
    a(&mut z, "mail-a.example.com", "192.0.2.129");
    a(&mut z, "mail-b.example.com", "192.0.2.130");
    a(&mut z, "mail-c.example.org", "192.0.2.140");
    z.add("example.com", ZoneRecord::Mx(10, "mail-a.example.com".into()));
    z.add("example.com", ZoneRecord::Mx(20, "mail-b.example.com".into()));
    z.add("example.org", ZoneRecord::Mx(10, "mail-c.example.org".into()));
    for (rev, host) in [
        ("10.2.0.192", "example.com"),
        ("11.2.0.192", "example.com"),
        ("65.2.0.192", "amy.example.com"),
        ("66.2.0.192", "bob.example.com"),
        ("129.2.0.192", "mail-a.example.com"),
        ("130.2.0.192", "mail-b.example.com"),
        ("140.2.0.192", "mail-c.example.org"),
        ("10.0.0.10", "bob.example.com"),
    ] {
        z.add(&format!("{rev}.in-addr.arpa"), ZoneRecord::Ptr(host.into()));
    }
    z
}

/// RFC 7208 Appendix A.1: which hosts each record lets send.
#[test]
fn rfc7208_appendix_a_simple_examples() {
    let hosts = [
        "192.0.2.10",
        "192.0.2.11",
        "192.0.2.65",
        "192.0.2.66",
        "192.0.2.128",
        "192.0.2.129",
        "192.0.2.130",
        "192.0.2.131",
        "192.0.2.140",
        "192.0.2.143",
        "192.0.2.200",
        "10.0.0.10",
    ];
    let cases: &[(&str, &[&str])] = &[
        ("v=spf1 +all", &hosts),
        ("v=spf1 a -all", &["192.0.2.10", "192.0.2.11"]),
        ("v=spf1 a:example.org -all", &[]),
        ("v=spf1 mx -all", &["192.0.2.129", "192.0.2.130"]),
        ("v=spf1 mx:example.org -all", &["192.0.2.140"]),
        ("v=spf1 mx mx:example.org -all", &["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
        (
            "v=spf1 mx/30 mx:example.org/30 -all",
            &["192.0.2.128", "192.0.2.129", "192.0.2.130", "192.0.2.131", "192.0.2.140", "192.0.2.143"],
        ),
        ("v=spf1 ptr -all", &["192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.129", "192.0.2.130"]),
        (
            "v=spf1 ip4:192.0.2.128/28 -all",
            &["192.0.2.128", "192.0.2.129", "192.0.2.130", "192.0.2.131", "192.0.2.140", "192.0.2.143"],
        ),
    ];
    for (record, allowed) in cases {
        let z = appendix_a(record);
        for h in hosts {
            let want = if allowed.contains(&h) { SpfResult::Pass } else { SpfResult::Fail };
            assert_eq!(result(&z, h, "example.com"), want, "{record} for {h}");
        }
    }
}

#[test]
fn every_result_class() {
    let z = zone(&[
        ("pass.example", "v=spf1 ip4:192.0.2.0/24 -all"),
        ("soft.example", "v=spf1 ~all"),
        ("neutral.example", "v=spf1 ?all"),
        ("empty.example", "v=spf1"),
        ("other.example", "some other text"),
        ("two.example", "v=spf1 -all"),
        ("two.example", "v=spf1 +all"),
        ("syntax.example", "v=spf1 -all foo"),
    ]);
    let mut z = z;
    z.add("temp.example", ZoneRecord::TempFail);
    let c = "192.0.2.9";
    assert_eq!(result(&z, c, "pass.example"), SpfResult::Pass);
    assert_eq!(result(&z, "198.51.100.1", "pass.example"), SpfResult::Fail);
    assert_eq!(result(&z, c, "soft.example"), SpfResult::SoftFail);
    assert_eq!(result(&z, c, "neutral.example"), SpfResult::Neutral);
    assert_eq!(result(&z, c, "empty.example"), SpfResult::Neutral, "§4.7: no match, no redirect");
    assert_eq!(result(&z, c, "other.example"), SpfResult::None);
    assert_eq!(result(&z, c, "nxdomain.example"), SpfResult::None);
    assert_eq!(result(&z, c, "two.example"), SpfResult::PermError, "§4.5: two records");
    assert_eq!(result(&z, c, "syntax.example"), SpfResult::PermError, "§4.6: error after a match");
    assert_eq!(result(&z, c, "temp.example"), SpfResult::TempError);
    let o = run(&z, c, "pass.example");
    assert_eq!((o.reason.as_str(), o.domain.as_str()), ("192.0.2.9 is allowed by pass.example", "pass.example"));
    assert_eq!(
        run(&z, "198.51.100.1", "pass.example").reason,
        "198.51.100.1 is not allowed to send mail for pass.example"
    );
}

#[test]
fn result_words_are_rfc7208_words() {
    let all = [
        (SpfResult::None, "none"),
        (SpfResult::Neutral, "neutral"),
        (SpfResult::Pass, "pass"),
        (SpfResult::Fail, "fail"),
        (SpfResult::SoftFail, "softfail"),
        (SpfResult::TempError, "temperror"),
        (SpfResult::PermError, "permerror"),
    ];
    for (r, w) in all {
        assert_eq!(r.as_str(), w);
    }
}

/// §4.3: nothing is asked for a malformed or single-label domain.
#[test]
fn malformed_or_single_label_domain_is_none_without_a_query() {
    let z = zone(&[("localhost", "v=spf1 -all")]);
    for d in [
        "localhost",
        "",
        "a..example",
        ".example",
        "[192.0.2.1]",
        "a b.example",
        "\u{e9}.example",
        &format!("{}.example", "a".repeat(64)),
    ] {
        assert_eq!(result(&z, "192.0.2.1", d), SpfResult::None, "{d:?}");
    }
    assert_eq!(z.asked.get(), 0);
}

/// §5.2's table: include's pass matches; fail, softfail, neutral do not; temperror,
/// permerror and none end the evaluation.
#[test]
fn include_results_follow_the_rfc_table() {
    let mut z = zone(&[
        ("ok.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("no.example", "v=spf1 -all"),
        ("soft.example", "v=spf1 ~all"),
        ("bad.example", "v=spf1 bogus"),
        ("none.example", "not spf"),
        ("top1.example", "v=spf1 include:ok.example -all"),
        ("top2.example", "v=spf1 -include:no.example include:soft.example ?include:ok.example ~all"),
        ("top3.example", "v=spf1 include:bad.example +all"),
        ("top4.example", "v=spf1 include:none.example +all"),
        ("top5.example", "v=spf1 include:nx.example +all"),
        ("top6.example", "v=spf1 include:temp.example +all"),
        ("top7.example", "v=spf1 -include:ok.example"),
    ]);
    z.add("temp.example", ZoneRecord::TempFail);
    let c = "192.0.2.1";
    assert_eq!(result(&z, c, "top1.example"), SpfResult::Pass);
    assert_eq!(result(&z, "192.0.2.2", "top1.example"), SpfResult::Fail);
    assert_eq!(result(&z, c, "top2.example"), SpfResult::Neutral);
    assert_eq!(result(&z, c, "top3.example"), SpfResult::PermError);
    assert_eq!(result(&z, c, "top4.example"), SpfResult::PermError);
    assert_eq!(result(&z, c, "top5.example"), SpfResult::PermError);
    assert_eq!(result(&z, c, "top6.example"), SpfResult::TempError);
    assert_eq!(result(&z, c, "top7.example"), SpfResult::Fail);
}

/// §6.1: redirect applies only when nothing matched, its target's result is the result, a
/// target without a record is permerror, and `%{d}` becomes the target.
#[test]
fn redirect_replaces_the_record() {
    let z = zone(&[
        ("r.example", "v=spf1 ip4:203.0.113.1 redirect=_spf.t.example"),
        ("_spf.t.example", "v=spf1 exists:%{d}.d.example ~all"),
        ("_spf.t.example.d.example", "unused"),
        ("all.example", "v=spf1 +all redirect=nx.example"),
        ("nx-target.example", "v=spf1 redirect=nx.example"),
    ]);
    let mut z = z;
    z.add("_spf.t.example.d.example", ZoneRecord::A("127.0.0.2".parse().unwrap()));
    assert_eq!(result(&z, "203.0.113.1", "r.example"), SpfResult::Pass);
    assert_eq!(result(&z, "192.0.2.1", "r.example"), SpfResult::Pass, "exists:%{{d}} with d the target");
    assert_eq!(result(&z, "192.0.2.1", "all.example"), SpfResult::Pass);
    assert_eq!(result(&z, "192.0.2.1", "nx-target.example"), SpfResult::PermError);
}

/// A chain of `n` includes (each with nothing to match) and a final `-all`.
fn includes(n: usize) -> Zone {
    let mut z = Zone::new();
    let terms: Vec<String> = (0..n).map(|i| format!("include:i{i}.example")).collect();
    z.txt("top.example", &format!("v=spf1 {} -all", terms.join(" ")));
    for i in 0..n {
        z.txt(&format!("i{i}.example"), "v=spf1 ?ip4:203.0.113.0/24");
    }
    z
}

#[test]
fn ten_includes_are_evaluated_eleven_are_permerror() {
    let z = includes(10);
    assert_eq!(result(&z, "192.0.2.1", "top.example"), SpfResult::Fail);
    assert_eq!(z.asked.get(), 11);
    let z = includes(11);
    let o = run(&z, "192.0.2.1", "top.example");
    assert_eq!(o.result, SpfResult::PermError);
    assert!(o.reason.contains("more than 10 DNS-querying terms"), "{}", o.reason);
    assert_eq!(z.asked.get(), 11, "the 11th include is not looked up");
}

/// A record that includes itself stops at the term limit.
#[test]
fn include_loop_is_permerror_at_the_term_limit() {
    let z = zone(&[("loop.example", "v=spf1 include:loop.example. -all")]);
    assert_eq!(result(&z, "192.0.2.1", "loop.example."), SpfResult::PermError);
    assert_eq!(z.asked.get(), 11);
}

/// The limit counts the terms of every record together, redirect included, and the
/// mechanisms that ask nothing (ip4, ip6, all) are not counted.
#[test]
fn dns_term_limit_spans_includes_and_redirects() {
    let z = zone(&[
        (
            "top.example",
            "v=spf1 a:x.example a:x.example a:x.example ip4:198.51.100.1 ip6:2001:db8::1 include:i.example -all",
        ),
        ("i.example", "v=spf1 a:x.example a:x.example a:x.example redirect=r.example"),
        ("r.example", "v=spf1 a:x.example a:x.example ?all"),
    ]);
    let mut z = z;
    z.add("x.example", ZoneRecord::A("203.0.113.1".parse().unwrap()));
    // 3 + include + 3 + redirect + 2 = 10.
    assert_eq!(result(&z, "192.0.2.1", "top.example"), SpfResult::Fail);
    let mut z2 = zone(&[
        ("top.example", "v=spf1 a:x.example a:x.example a:x.example include:i.example -all"),
        ("i.example", "v=spf1 a:x.example a:x.example a:x.example redirect=r.example"),
        ("r.example", "v=spf1 a:x.example a:x.example a:x.example ?all"),
    ]);
    z2.add("x.example", ZoneRecord::A("203.0.113.1".parse().unwrap()));
    assert_eq!(result(&z2, "192.0.2.1", "top.example"), SpfResult::PermError);
    assert_eq!(MAX_DNS_TERMS, 10);
}

#[test]
fn two_void_lookups_are_allowed_the_third_is_permerror() {
    let z = zone(&[("two.example", "v=spf1 a:nx1.example mx:nx2.example -all")]);
    assert_eq!(result(&z, "192.0.2.1", "two.example"), SpfResult::Fail);
    let z = zone(&[("three.example", "v=spf1 a:nx1.example mx:nx2.example ptr:x.example -all")]);
    let o = run(&z, "192.0.2.1", "three.example");
    assert_eq!(o.result, SpfResult::PermError);
    assert!(o.reason.contains("without an answer (the last 1.2.0.192.in-addr.arpa)"), "{}", o.reason);
    let z = zone(&[("e.example", "v=spf1 a:nx1.example mx:nx2.example exists:nx3.example -all")]);
    assert_eq!(result(&z, "192.0.2.1", "e.example"), SpfResult::PermError);
    // An existing name without addresses of the asked type (NODATA) is void too.
    let mut z = zone(&[("nodata.example", "v=spf1 a:t.example a:t.example a:t.example -all")]);
    z.txt("t.example", "text only");
    assert_eq!(result(&z, "192.0.2.1", "nodata.example"), SpfResult::PermError);
}

fn mx_zone(n: usize, matching_first: bool) -> Zone {
    let mut z = zone(&[("m.example", "v=spf1 mx -all")]);
    for i in 0..n {
        let host = format!("mx{i}.m.example");
        z.add("m.example", ZoneRecord::Mx(10, host.clone()));
        let a = if matching_first && i == 0 { "192.0.2.1" } else { "203.0.113.1" };
        z.add(&host, ZoneRecord::A(a.parse().unwrap()));
    }
    z
}

#[test]
fn ten_mx_names_are_looked_up_eleven_are_permerror() {
    let z = mx_zone(10, false);
    assert_eq!(result(&z, "192.0.2.1", "m.example"), SpfResult::Fail);
    assert_eq!(z.asked.get(), 1 + 1 + 10);
    let z = mx_zone(11, true);
    assert_eq!(result(&z, "192.0.2.1", "m.example"), SpfResult::PermError);
    assert_eq!(z.asked.get(), 2, "no address is asked for");
}

/// §4.6.4: PTR names beyond the first 10 are ignored (no permerror).
#[test]
fn ptr_names_beyond_ten_are_ignored() {
    let mut z = zone(&[("p.example", "v=spf1 ptr -all")]);
    for i in 0..11 {
        let host = format!("h{i}.p.example");
        z.add("1.2.0.192.in-addr.arpa", ZoneRecord::Ptr(host.clone()));
        let a = if i == 10 { "192.0.2.1" } else { "203.0.113.1" };
        z.add(&host, ZoneRecord::A(a.parse().unwrap()));
    }
    assert_eq!(result(&z, "192.0.2.1", "p.example"), SpfResult::Fail);
    assert_eq!(z.asked.get(), 1 + 1 + 10);
}

#[test]
fn ptr_needs_a_validated_name_under_the_target() {
    let mut z = zone(&[("p.example", "v=spf1 ptr -all"), ("q.example", "v=spf1 ptr:other.example -all")]);
    z.add("1.2.0.192.in-addr.arpa", ZoneRecord::Ptr("Mail.P.example.".into()));
    z.add("mail.p.example", ZoneRecord::A("192.0.2.1".parse().unwrap()));
    z.add("2.2.0.192.in-addr.arpa", ZoneRecord::Ptr("liar.p.example".into()));
    z.add("liar.p.example", ZoneRecord::A("203.0.113.1".parse().unwrap()));
    z.add("3.2.0.192.in-addr.arpa", ZoneRecord::TempFail);
    assert_eq!(result(&z, "192.0.2.1", "p.example"), SpfResult::Pass);
    assert_eq!(result(&z, "192.0.2.1", "q.example"), SpfResult::Fail);
    assert_eq!(result(&z, "192.0.2.2", "p.example"), SpfResult::Fail, "not validated");
    // Our decision against §5.5's "no match": a PTR outage is temperror (ptr_outage_is_temperror_not_fail).
    assert_eq!(result(&z, "192.0.2.3", "p.example"), SpfResult::TempError);
}

#[test]
fn temporary_dns_failures_are_temperror_never_pass() {
    let mut z = zone(&[
        ("a.example", "v=spf1 a:t.example +all"),
        ("mx.example", "v=spf1 mx:t.example +all"),
        ("ex.example", "v=spf1 exists:t.example +all"),
        ("inc.example", "v=spf1 include:t.example +all"),
        ("mxa.example", "v=spf1 mx +all"),
    ]);
    z.add("t.example", ZoneRecord::TempFail);
    z.add("mxa.example", ZoneRecord::Mx(10, "t.example".into()));
    for d in ["a.example", "mx.example", "ex.example", "inc.example", "mxa.example"] {
        let o = run(&z, "192.0.2.1", d);
        assert_eq!(o.result, SpfResult::TempError, "{d}");
        assert!(o.reason.contains("t.example"), "{}", o.reason);
    }
}

#[test]
fn cidr_and_address_families() {
    let mut z = zone(&[
        ("c.example", "v=spf1 a/24//64 -all"),
        ("six.example", "v=spf1 ip6:2001:db8::/32 ip4:192.0.2.0/24 -all"),
        ("zero.example", "v=spf1 ip4:0.0.0.0/0 -all"),
        ("mapped.example", "v=spf1 ip6:::ffff:0:0/96 -all"),
    ]);
    z.add("c.example", ZoneRecord::A("192.0.2.1".parse().unwrap()));
    z.add("c.example", ZoneRecord::Aaaa("2001:db8:1:2::1".parse().unwrap()));
    assert_eq!(result(&z, "192.0.2.200", "c.example"), SpfResult::Pass);
    assert_eq!(result(&z, "192.0.3.1", "c.example"), SpfResult::Fail);
    assert_eq!(result(&z, "2001:db8:1:2:ffff::9", "c.example"), SpfResult::Pass);
    assert_eq!(result(&z, "2001:db8:1:3::1", "c.example"), SpfResult::Fail);
    assert_eq!(result(&z, "2001:db8:ff::1", "six.example"), SpfResult::Pass);
    assert_eq!(result(&z, "2001:db9::1", "six.example"), SpfResult::Fail);
    assert_eq!(result(&z, "203.0.113.7", "zero.example"), SpfResult::Pass);
    assert_eq!(result(&z, "2001:db8::1", "zero.example"), SpfResult::Fail);
    // §5: an IPv4-mapped IPv6 client is IPv4: ip4 and A records match it, ip6 does not.
    assert_eq!(result(&z, "::ffff:192.0.2.77", "six.example"), SpfResult::Pass);
    assert_eq!(result(&z, "::ffff:192.0.2.77", "c.example"), SpfResult::Pass);
    assert_eq!(result(&z, "::ffff:192.0.2.77", "mapped.example"), SpfResult::Fail);
    assert_eq!(run(&z, "::ffff:192.0.2.77", "six.example").reason, "192.0.2.77 is allowed by six.example");
}

#[test]
fn exists_with_macros_asks_the_expanded_name() {
    let mut z = zone(&[("e.example", "v=spf1 exists:%{ir}.%{l1r-}.%{v}._spf.%{d2} -all")]);
    z.add("1.2.0.192.strong.in-addr._spf.e.example", ZoneRecord::A("127.0.0.2".parse().unwrap()));
    let o = check_host(&z, ip("192.0.2.1"), "e.example", "strong-bad@e.example", "h.example", "me.example");
    assert_eq!(o.result, SpfResult::Pass);
    let o = check_host(&z, ip("192.0.2.1"), "e.example", "weak-bad@e.example", "h.example", "me.example");
    assert_eq!(o.result, SpfResult::Fail);
    // exists asks for an A record even for an IPv6 client (§5.7).
    let mut z = zone(&[("e6.example", "v=spf1 exists:%{d}.x.example -all")]);
    z.add("e6.example.x.example", ZoneRecord::A("127.0.0.2".parse().unwrap()));
    assert_eq!(result(&z, "2001:db8::1", "e6.example"), SpfResult::Pass);
}

#[test]
fn helo_and_sender_macros() {
    let mut z = zone(&[("h.example", "v=spf1 exists:%{h}.%{o}.%{l}.chk.example -all")]);
    z.add("mta.h.example.h.example.postmaster.chk.example", ZoneRecord::A("127.0.0.2".parse().unwrap()));
    let o = check_host(&z, ip("192.0.2.1"), "h.example", "postmaster@h.example", "mta.h.example", "me.example");
    assert_eq!(o.result, SpfResult::Pass);
    // §4.3: a sender without a local part is postmaster.
    let o = check_host(&z, ip("192.0.2.1"), "h.example", "@h.example", "mta.h.example", "me.example");
    assert_eq!(o.result, SpfResult::Pass);
}

/// `%{p}` is a validated PTR name; without one, `unknown`.
#[test]
fn p_macro_is_the_validated_name_or_unknown() {
    // 192.0.2.1 and 192.0.2.2 both point to good.pm.example, whose address is 192.0.2.1.
    let mut z = zone(&[("pm.example", "v=spf1 exists:%{p}.allow.example -all")]);
    z.add("1.2.0.192.in-addr.arpa", ZoneRecord::Ptr("good.pm.example".into()));
    z.add("2.2.0.192.in-addr.arpa", ZoneRecord::Ptr("good.pm.example".into()));
    z.add("good.pm.example", ZoneRecord::A("192.0.2.1".parse().unwrap()));
    z.add("good.pm.example.allow.example", ZoneRecord::A("127.0.0.2".parse().unwrap()));
    assert_eq!(result(&z, "192.0.2.1", "pm.example"), SpfResult::Pass);
    assert_eq!(result(&z, "192.0.2.2", "pm.example"), SpfResult::Fail, "not validated: unknown.allow.example");
    z.add("unknown.allow.example", ZoneRecord::A("127.0.0.2".parse().unwrap()));
    assert_eq!(result(&z, "192.0.2.2", "pm.example"), SpfResult::Pass);
}

/// §7.3: of several validated names, `%{p}` is the checked domain, else one below it.
#[test]
fn p_macro_prefers_the_domain_then_a_subdomain() {
    let mut z = zone(&[("pd.example", "v=spf1 exists:%{p}.allow.example -all")]);
    for n in ["other.example", "mail.pd.example"] {
        z.add("1.2.0.192.in-addr.arpa", ZoneRecord::Ptr(n.into()));
        z.add(n, ZoneRecord::A("192.0.2.1".parse().unwrap()));
    }
    z.add("mail.pd.example.allow.example", ZoneRecord::A("127.0.0.2".parse().unwrap()));
    assert_eq!(result(&z, "192.0.2.1", "pd.example"), SpfResult::Pass);
}

/// A macro that makes a label longer than 63 octets asks nothing and matches nothing; it is not
/// a void lookup.
#[test]
fn unaskable_target_name_matches_nothing() {
    let z =
        zone(&[("b.example", "v=spf1 a:%{l}.x.example a:%{l}.x.example a:%{l}.x.example exists:%{l}.x.example ?all")]);
    let long = "l".repeat(70);
    let o = check_host(&z, ip("192.0.2.1"), "b.example", &format!("{long}@b.example"), "h.example", "me.example");
    assert_eq!(o.result, SpfResult::Neutral);
}

#[test]
fn explanation_of_a_fail_is_expanded() {
    let z = zone(&[
        ("x.example", "v=spf1 -all exp=why.%{d}"),
        ("why.x.example", "%{i} may not send for %{o} (%{c} via %{r} at %{t})"),
        ("inc.example", "v=spf1 include:x2.example -all"),
        ("x2.example", "v=spf1 ?all exp=why.x.example"),
    ]);
    let o = check_host(&z, ip("192.0.2.1"), "x.example", "a@x.example", "h.example", "me.example");
    assert_eq!(o.result, SpfResult::Fail);
    let e = o.explanation.unwrap();
    let t = e.strip_prefix("192.0.2.1 may not send for x.example (192.0.2.1 via me.example at ").unwrap();
    assert!(t.len() > 9 && t.strip_suffix(')').unwrap().bytes().all(|c| c.is_ascii_digit()), "{e}");
    let o = check_host(&z, ip("192.0.2.1"), "inc.example", "a@inc.example", "h.example", "me.example");
    assert_eq!((o.result, o.explanation), (SpfResult::Fail, None));
}

/// RFC 7208 §5.5 makes a DNS error of `ptr` "no match", which turned `ptr -all` into a
/// permanent fail while the reverse zone's servers were down.
#[test]
fn ptr_outage_is_temperror_not_fail() {
    let mut z = zone(&[("p.example", "v=spf1 ptr -all")]);
    z.add("1.2.0.192.in-addr.arpa", crate::dns::ZoneRecord::TempFail);
    let o = check_host(&z, ip("192.0.2.1"), "p.example", "a@p.example", "h.example", "me.example");
    assert_eq!(o.result, SpfResult::TempError, "{}", o.reason);
}

// --- the task ------------------------------------------------------------------------------------

fn task_zone() -> Zone {
    let mut z = zone(&[
        ("pass.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("soft.example", "v=spf1 ~all"),
        ("neutral.example", "v=spf1 ?all"),
        ("bad.example", "v=spf1 nonsense"),
        ("helo.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("exp.example", "v=spf1 -all exp=why.exp.example"),
        ("why.exp.example", "see https://exp.example/spf about %{i}"),
    ]);
    z.add("temp.example", ZoneRecord::TempFail);
    z
}

fn finish(letters: &str, client: Option<&str>, sender: &str, helo: Option<&str>) -> crate::task::Finished {
    let headers = Headers::parse(b"Subject: x\n\n".to_vec());
    let envelope =
        Envelope { raw: Vec::new(), sender: sender.as_bytes().to_vec(), recipients: vec![b"r@x.example".to_vec()] };
    let authserv = || "me.example".to_string();
    let dns = || -> Box<dyn crate::dns::TxtLookup> { Box::new(task_zone()) };
    let resolver = || -> Box<dyn Resolver> { Box::new(task_zone()) };
    let ctx = Context {
        headers: &headers,
        queued: &headers,
        envelope: &envelope,
        now: 0,
        verbose: false,
        authserv_id: &authserv,
        dns: &dns,
        resolver: &resolver,
        earlier: &[],
    };
    let task = SpfTask::new(SpfSettings {
        letters: letters.into(),
        client_ip: client.map(ip),
        helo: helo.map(str::to_string),
        host_domain: "me.example".into(),
    });
    let mut t: Box<dyn Task> = Box::new(task);
    t.body(b"ignored");
    t.finish(&ctx).unwrap()
}

#[test]
fn task_reports_one_spf_result_with_the_sender() {
    let r = finish("", Some("192.0.2.1"), "u@pass.example", Some("helo.example"));
    assert_eq!(r.method_results().len(), 1);
    assert_eq!((r.method_results()[0].method(), r.method_results()[0].result()), ("spf", "pass"));
    assert_eq!(r.method_results()[0].property("smtp.mailfrom"), Some("u@pass.example"));
    assert!(r.refuse.is_none() && r.prepend.is_empty());
    let field = String::from_utf8(crate::auth_results::field("me.example", &r.method_results())).unwrap();
    let words: Vec<&str> = field.split_whitespace().collect();
    assert_eq!(
        words[2..].join(" "),
        "spf=pass (192.0.2.1 is allowed by pass.example) smtp.mailfrom=u@pass.example",
        "{field}"
    );
}

#[test]
fn task_null_sender_checks_the_helo_name() {
    for sender in ["", "<>"] {
        let r = finish("F", Some("192.0.2.1"), sender, Some("helo.example"));
        assert_eq!(r.method_results()[0].result(), "pass");
        assert_eq!(r.method_results()[0].property("smtp.helo"), Some("helo.example"));
        let r = finish("F", Some("192.0.2.2"), sender, Some("helo.example"));
        assert_eq!(r.method_results()[0].result(), "fail");
        assert!(r.refuse.is_some());
        let r = finish("F", Some("192.0.2.2"), sender, None);
        assert_eq!(r.method_results()[0].result(), "none");
        assert!(r.refuse.is_none());
    }
}

#[test]
fn task_local_injection_is_none_and_never_refused() {
    let r = finish("FSNTPfsntp", None, "u@bad.example", Some("helo.example"));
    assert_eq!(r.method_results()[0].result(), "none");
    assert!(r.refuse.is_none());
}

#[test]
fn task_sender_without_a_domain_is_none() {
    for sender in ["user", "u@", "u@localhost", "#@[]"] {
        let r = finish("FSNTP", Some("192.0.2.1"), sender, Some("helo.example"));
        assert_eq!(r.method_results()[0].result(), "none", "{sender}");
        assert!(r.refuse.is_none());
    }
}

#[test]
fn task_letters_choose_refusals_and_codes() {
    let c = Some("192.0.2.9");
    let h = Some("helo.example");
    let r = finish("F", c, "u@pass.example", h).refuse.unwrap();
    assert!(r.permanent);
    assert_eq!(r.text, "qmail-dkim: SPF fail: 192.0.2.9 is not allowed to send mail for pass.example (#5.7.23)");
    let r = finish("f", c, "u@pass.example", h).refuse.unwrap();
    assert!(!r.permanent && r.text.ends_with("(#4.7.23)"), "{}", r.text);
    assert!(finish("SNTP", c, "u@pass.example", h).refuse.is_none());
    assert!(finish("S", c, "u@soft.example", h).refuse.unwrap().text.starts_with("qmail-dkim: SPF softfail: "));
    assert!(finish("N", c, "u@neutral.example", h).refuse.unwrap().text.ends_with("(#5.7.23)"));
    // A DNS failure refuses only temporarily, even with an uppercase T.
    for t in ["t", "T"] {
        let r = finish(t, c, "u@temp.example", h).refuse.unwrap();
        assert!(
            !r.permanent && r.text.starts_with("qmail-dkim: SPF temperror: ") && r.text.ends_with("(#4.7.24)"),
            "{}",
            r.text
        );
    }
    let r = finish("P", c, "u@bad.example", h).refuse.unwrap();
    assert!(
        r.permanent && r.text.starts_with("qmail-dkim: SPF permerror: ") && r.text.ends_with("(#5.7.24)"),
        "{}",
        r.text
    );
    assert!(finish("", c, "u@bad.example", h).refuse.is_none());
    assert!(finish("FSNTP", Some("192.0.2.1"), "u@pass.example", h).refuse.is_none(), "pass never refuses");
    assert!(finish("FSNTP", c, "u@none.example", h).refuse.is_none(), "none never refuses");
}

/// Records of many terms, each check: linear in the record, and the term limit holds however
/// long the record.
#[test]
fn long_records_are_evaluated_in_linear_time() {
    crate::linear::assert_linear(
        "check_host on a record of many ip4 terms and a macro",
        1024,
        |n| {
            let mut rec = String::from("v=spf1");
            rec.push_str(&" ip4:203.0.113.0/24 ip6:2001:db8::/32".repeat(n.div_ceil(36)));
            rec.push_str(" exists:%{l1r-}.%{ir}.x.example -all");
            zone(&[("long.example", &rec)])
        },
        |z| {
            assert_eq!(result(z, "192.0.2.1", "long.example"), SpfResult::Fail);
        },
    );
}

/// RFC 7208 §8.4: the domain's explanation of a fail reaches the client, marked as the domain's.
#[test]
fn task_refusal_carries_the_domains_explanation() {
    let r = finish("F", Some("192.0.2.9"), "u@exp.example", None).refuse.unwrap();
    assert!(
        r.text.ends_with("; exp.example says: see https://exp.example/spf about 192.0.2.9 (#5.7.23)"),
        "{}",
        r.text
    );
}
