//! DMARC over real DNS (the loopback server): our `dmarc::evaluate` through `dns::Hickory`,
//! with mail-auth 0.13.3's `verify_dmarc` as the oracle where RFC 7489 and DMARCbis agree
//! (src/dmarc/mod.rs says where they do not).

use crate::common::Dns;
use qmail_dkim::dmarc::record::Policy;
use qmail_dkim::dmarc::{evaluate, DmarcOutput, Evidence};
use qmail_dkim::dns::{Hickory, Servers};
use std::time::Duration;

fn zone() -> Vec<(&'static str, &'static str)> {
    vec![
        ("_dmarc.example.com", "v=DMARC1; p=reject"),
        ("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s"),
        ("_dmarc.org.example", "v=DMARC1; p=reject; sp=quarantine"),
        ("sub.org.example", "@A:192.0.2.1"),
        ("_dmarc.none.example", "v=DMARC1; p=none"),
        ("_dmarc.example.co.uk", "v=DMARC1; p=reject"),
        ("_dmarc.broken.example", "v=DMARC1; p=reject; adkim=x"),
        ("_dmarc.rua.example", "v=DMARC1; rua=mailto:d@rua.example"),
        ("_dmarc.badp.example", "v=DMARC1; p=bogus; rua=mailto:d@badp.example"),
        ("_dmarc.nop.example", "v=DMARC1; fo=1"),
        ("_dmarc.servfail.example", "@SERVFAIL"),
        ("_dmarc.two.example", "v=DMARC1; p=reject"),
        ("_dmarc.two.example", "v=DMARC1; p=none"),
        ("_dmarc.pct.example", "v=DMARC1; p=reject; pct=0"),
    ]
}

/// One message's inputs: From domain, DKIM passes, DKIM temporary errors, SPF word and domain.
struct Case {
    from: &'static str,
    dkim: &'static [&'static str],
    dkim_temp: &'static [&'static str],
    spf: &'static str,
    spf_domain: &'static str,
}

const fn case(from: &'static str, dkim: &'static [&'static str], spf: &'static str, spf_domain: &'static str) -> Case {
    Case { from, dkim, dkim_temp: &[], spf, spf_domain }
}

fn ours(dns: &Dns, c: &Case) -> DmarcOutput {
    let resolver = Hickory::new(Servers::Listed(vec![dns.addr().parse().unwrap()]), Duration::from_secs(5));
    let pass: Vec<String> = c.dkim.iter().map(|d| d.to_string()).collect();
    let temp: Vec<String> = c.dkim_temp.iter().map(|d| d.to_string()).collect();
    let ev = Evidence { dkim_pass: &pass, dkim_temperror: &temp, spf_result: c.spf, spf_domain: Some(c.spf_domain) };
    evaluate(&resolver, c.from, &ev, &mut || 0)
}

/// mail-auth's result word and policy (`None` without a record).
fn theirs(
    rt: &tokio::runtime::Runtime,
    auth: &mail_auth::MessageAuthenticator,
    c: &Case,
) -> (&'static str, Option<Policy>) {
    use mail_auth::dmarc::verify::DmarcParameters;
    use mail_auth::{DkimOutput, DmarcResult, SpfOutput, SpfResult};
    let msg = format!("From: Joe <joe@{}>\r\nSubject: x\r\n\r\nbody\r\n", c.from);
    let parsed = mail_auth::AuthenticatedMessage::parse(msg.as_bytes()).unwrap();
    let sigs: Vec<mail_auth::dkim::Signature> = c
        .dkim
        .iter()
        .chain(c.dkim_temp)
        .map(|d| mail_auth::dkim::Signature { d: d.to_string(), ..Default::default() })
        .collect();
    let dkim: Vec<DkimOutput<'_>> = sigs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i < c.dkim.len() {
                DkimOutput::pass().with_signature(s)
            } else {
                DkimOutput::temp_err(mail_auth::Error::Dns(mail_auth::DnsError::Resolver("test".into())))
                    .with_signature(s)
            }
        })
        .collect();
    let spf_result = match c.spf {
        "pass" => SpfResult::Pass,
        "fail" => SpfResult::Fail,
        "softfail" => SpfResult::SoftFail,
        "temperror" => SpfResult::TempError,
        _ => SpfResult::None,
    };
    let spf = SpfOutput::new(c.spf_domain.to_string()).with_result(spf_result);
    let out = rt.block_on(auth.verify_dmarc(DmarcParameters::new(&parsed, &dkim, c.spf_domain, &spf)));
    let word = match out.result() {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    };
    let policy = out.dmarc_record().map(|_| match out.policy() {
        mail_auth::dmarc::Policy::Reject => Policy::Reject,
        mail_auth::dmarc::Policy::Quarantine => Policy::Quarantine,
        mail_auth::dmarc::Policy::None | mail_auth::dmarc::Policy::Unspecified => Policy::None,
    });
    (word, policy)
}

fn oracle(dns: &Dns) -> (tokio::runtime::Runtime, mail_auth::MessageAuthenticator) {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut ns = NameServerConfig::udp_and_tcp("127.0.0.1".parse().unwrap());
    for c in &mut ns.connections {
        c.port = dns.port;
    }
    let mut opts = ResolverOpts::default();
    opts.attempts = 1;
    opts.timeout = Duration::from_secs(5);
    let auth = mail_auth::MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts).unwrap();
    (rt, auth)
}

/// Where RFC 7489 (ours) and DMARCbis (mail-auth) agree: the same result and the same policy
/// for the From domain (`p=`, or `sp=` for a subdomain).
#[test]
fn mail_auth_agrees_where_rfc7489_and_dmarcbis_do() {
    let dns = Dns::start(&zone());
    let (rt, auth) = oracle(&dns);
    let cases = [
        // Aligned DKIM, relaxed: a subdomain's signature passes for the parent.
        case("example.com", &["mail.example.com"], "fail", "example.org"),
        // Aligned SPF, relaxed.
        case("example.com", &["example.net"], "pass", "bounce.example.com"),
        // Nothing aligned.
        case("example.com", &["example.net"], "pass", "example.org"),
        case("example.com", &[], "softfail", "example.com"),
        // Strict: subdomains do not align, the same name does.
        case("strict.example", &["mail.strict.example"], "pass", "bounce.strict.example"),
        case("strict.example", &["strict.example"], "none", "x.example"),
        // sp= for a subdomain, from the organizational domain's record.
        case("sub.org.example", &[], "none", "x.example"),
        case("sub.org.example", &["org.example"], "none", "x.example"),
        case("none.example", &[], "fail", "none.example"),
        // shared/SPEC.md §11: a parent aligns under co.uk, a sibling does not.
        case("sub.example.co.uk", &["example.co.uk"], "none", "x.example"),
        case("example.co.uk", &["other.co.uk"], "pass", "other.co.uk"),
        case("sub.example.co.uk", &["other.co.uk"], "none", "x.example"),
        // No record.
        case("norecord.example", &[], "fail", "norecord.example"),
        // An invalid record; no p= with a valid rua= (p=none); no p= and no rua= (none).
        case("broken.example", &[], "none", "x.example"),
        case("rua.example", &[], "none", "x.example"),
        case("nop.example", &[], "none", "x.example"),
        // DNS failure.
        case("servfail.example", &["servfail.example"], "pass", "servfail.example"),
        // An aligned temporary failure and no aligned pass.
        Case {
            from: "example.com",
            dkim: &["example.net"],
            dkim_temp: &["example.com"],
            spf: "fail",
            spf_domain: "example.com",
        },
        Case { from: "example.com", dkim: &[], dkim_temp: &[], spf: "temperror", spf_domain: "example.com" },
    ];
    let mut words = Vec::new();
    for c in &cases {
        let o = ours(&dns, c);
        let t = theirs(&rt, &auth, c);
        assert_eq!((o.result.word(), o.requested), t, "{}: ours {o:?}", c.from);
        words.push(o.result.word());
    }
    // The cases reach every result.
    for w in ["pass", "fail", "none", "temperror", "permerror"] {
        assert!(words.contains(&w), "{w}");
    }
}

/// Where they differ, ours follows RFC 7489: `pct=` (mail-auth ignores it), several records
/// at one name (mail-auth takes the first that parses; §6.6.3 step 5 applies none), an invalid
/// `p=` beside a valid `rua=` (mail-auth: permerror; §6.6.3 step 6: `p=none`).
#[test]
fn pct_and_several_records_follow_rfc7489() {
    let dns = Dns::start(&zone());
    let (rt, auth) = oracle(&dns);
    let c = case("pct.example", &[], "fail", "pct.example");
    let o = ours(&dns, &c);
    assert_eq!((o.result.word(), o.requested, o.applied), ("fail", Some(Policy::Reject), Some(Policy::Quarantine)));
    assert_eq!(theirs(&rt, &auth, &c), ("fail", Some(Policy::Reject)));
    let c = case("two.example", &[], "fail", "two.example");
    let o = ours(&dns, &c);
    assert_eq!((o.result.word(), o.requested), ("none", None));
    assert!(o.detail.contains("several"), "{}", o.detail);
    assert_eq!(theirs(&rt, &auth, &c).0, "fail");
    let c = case("badp.example", &[], "fail", "badp.example");
    let o = ours(&dns, &c);
    assert_eq!((o.result.word(), o.requested), ("fail", Some(Policy::None)));
    assert_eq!(theirs(&rt, &auth, &c), ("permerror", None));
}

/// At most two TXT questions a message (docs/security.md): the From domain's and the
/// organizational domain's, however deep the name.
#[test]
fn dmarc_asks_at_most_two_questions_for_a_deep_name() {
    let dns = Dns::start(&zone());
    let deep = "a.b.c.d.e.f.g.h.i.j.example.com";
    let o = ours(&dns, &case(deep, &[], "none", "x.example"));
    assert_eq!((o.result.word(), o.requested), ("fail", Some(Policy::Reject)));
    let asked = dns.queries();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].contains(&format!("_dmarc.{deep}")) && asked[1].contains("_dmarc.example.com"), "{asked:?}");
}
