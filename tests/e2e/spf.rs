//! SPF (RFC 7208) over real DNS on loopback: our check_host() through `dns::Hickory`, with
//! mail-auth 0.13.3's `verify_spf` as the oracle on the same server. Where mail-auth is wrong
//! (src/spf/mod.rs lists where), the case says what each gives and why ours is right.

use crate::common::*;
use qmail_dkim::dns::{Hickory, Servers};
use qmail_dkim::spf::{check_host, SpfResult};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const HOST: &str = "mx.test.example";

fn zone() -> Vec<(String, String)> {
    let mut z: Vec<(String, String)> = [
        ("pass.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("soft.example", "v=spf1 ~all"),
        ("neutral.example", "v=spf1 ?all"),
        ("none.example", "not an SPF record"),
        ("inc.example", "v=spf1 include:pass.example -all"),
        ("redir.example", "v=spf1 ip4:203.0.113.9 redirect=pass.example"),
        ("mx.example", "v=spf1 mx -all"),
        ("mx.example", "@MX:10 mail.mx.example"),
        ("mail.mx.example", "@A:192.0.2.20"),
        ("a.example", "v=spf1 a/24//64 -all"),
        ("a.example", "@A:198.51.100.1"),
        ("a.example", "@AAAA:2001:db8:1::1"),
        ("ptr.example", "v=spf1 ptr -all"),
        ("30.2.0.192.in-addr.arpa", "@PTR:host.ptr.example"),
        ("host.ptr.example", "@A:192.0.2.30"),
        ("exists.example", "v=spf1 exists:%{ir}.%{l1r-}._spf.%{d} -all"),
        ("1.2.0.192.strong._spf.exists.example", "@A:127.0.0.2"),
        ("syntax.example", "v=spf1 ip4:192.0.2.1 redirect=pass.example redirect=soft.example"),
        ("moo.example", "v=spf1 ip4:192.0.2.1 -all moo:x"),
        ("cidr33.example", "v=spf1 ip4:192.0.2.1/33 -all"),
        ("two.example", "v=spf1 +all"),
        ("two.example", "v=spf1 -all"),
        ("temp.example", "@SERVFAIL"),
        ("slow.example", "v=spf1 a:never.slow.example -all"),
        ("never.slow.example", "@TIMEOUT"),
        ("void.example", "v=spf1 a:nx1.void.example mx:nx2.void.example exists:nx3.void.example -all"),
        ("void2.example", "v=spf1 a:nx1.void.example mx:nx2.void.example -all"),
        ("helo.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("exists6.example", "v=spf1 exists:aaaa.exists6.example -all"),
        ("aaaa.exists6.example", "@AAAA:2001:db8::5"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    for (top, n) in [("ten.example", 10), ("eleven.example", 11)] {
        let terms: Vec<String> = (0..n).map(|i| format!("include:i{i}.inc.example")).collect();
        z.push((top.into(), format!("v=spf1 {} -all", terms.join(" "))));
    }
    for i in 0..11 {
        z.push((format!("i{i}.inc.example"), "v=spf1 ?ip4:203.0.113.1".into()));
    }
    z
}

/// One case: the identity (domain, sender; an empty sender checks the HELO name), the client,
/// our result, and mail-auth's when it differs.
struct Case {
    what: &'static str,
    domain: &'static str,
    sender: &'static str,
    ip: &'static str,
    ours: SpfResult,
    /// `Some` only where mail-auth is wrong; the comment at the case says why.
    theirs: Option<SpfResult>,
}

const fn case(what: &'static str, domain: &'static str, ip: &'static str, ours: SpfResult) -> Case {
    Case { what, domain, sender: "user", ip, ours, theirs: None }
}

fn cases() -> Vec<Case> {
    use SpfResult::*;
    vec![
        case("pass", "pass.example", "192.0.2.1", Pass),
        case("fail", "pass.example", "192.0.2.2", Fail),
        case("softfail", "soft.example", "192.0.2.1", SoftFail),
        case("neutral", "neutral.example", "192.0.2.1", Neutral),
        case("none: no SPF record", "none.example", "192.0.2.1", None),
        case("none: NXDOMAIN", "nx.example", "192.0.2.1", None),
        case("include pass", "inc.example", "192.0.2.1", Pass),
        case("include no match", "inc.example", "192.0.2.3", Fail),
        case("redirect", "redir.example", "192.0.2.1", Pass),
        case("redirect fail", "redir.example", "192.0.2.4", Fail),
        case("mx", "mx.example", "192.0.2.20", Pass),
        case("mx no match", "mx.example", "192.0.2.21", Fail),
        case("a/24", "a.example", "198.51.100.77", Pass),
        case("a/24 no match", "a.example", "198.51.101.1", Fail),
        case("a//64", "a.example", "2001:db8:1::ff", Pass),
        case("a//64 no match", "a.example", "2001:db8:2::1", Fail),
        case("ptr", "ptr.example", "192.0.2.30", Pass),
        case("ptr no match", "ptr.example", "192.0.2.31", Fail),
        Case { sender: "strong-bad", ..case("exists with macros", "exists.example", "192.0.2.1", Pass) },
        Case { sender: "weak-bad", ..case("exists with macros, no match", "exists.example", "192.0.2.1", Fail) },
        case("permerror: syntax", "syntax.example", "192.0.2.1", PermError),
        case("temperror: SERVFAIL", "temp.example", "192.0.2.1", TempError),
        case("10 includes", "ten.example", "192.0.2.1", Fail),
        // Both: the 11th DNS-querying term is a permerror.
        case("11 includes", "eleven.example", "192.0.2.1", PermError),
        case("2 void lookups", "void2.example", "192.0.2.1", Fail),
        Case { sender: "", ..case("HELO identity", "helo.example", "192.0.2.1", Pass) },
        Case { sender: "", ..case("HELO identity fail", "helo.example", "192.0.2.9", Fail) },
        case("IPv4-mapped client, ip4", "pass.example", "::ffff:192.0.2.1", Pass),
        // mail-auth has no void-lookup limit (RFC 7208 §4.6.4: permerror beyond 2).
        Case { theirs: Some(Fail), ..case("3 void lookups", "void.example", "192.0.2.1", PermError) },
        // §4.6, §12: an unknown mechanism is a syntax error; mail-auth skips it like a modifier.
        Case { theirs: Some(Pass), ..case("permerror: unknown mechanism", "moo.example", "192.0.2.1", PermError) },
        // §12: an ip4 prefix length is 0 to 32; mail-auth takes 33 as 32 (and an octet 999 as 255).
        Case { theirs: Some(Pass), ..case("permerror: /33", "cidr33.example", "192.0.2.1", PermError) },
        // §4.5: two SPF records are a permerror; mail-auth takes the first that parses.
        Case { theirs: Some(Pass), ..case("two records", "two.example", "192.0.2.1", PermError) },
        // §5: an IPv4-mapped client is IPv4, so `a` asks for A records; mail-auth asks AAAA.
        Case { theirs: Some(Fail), ..case("IPv4-mapped client, a", "a.example", "::ffff:198.51.100.7", Pass) },
        // §5.7: exists asks for an A record only; mail-auth also takes an AAAA record.
        Case { theirs: Some(Pass), ..case("exists AAAA only", "exists6.example", "192.0.2.1", Fail) },
    ]
}

fn ours(dns: &Dns, c: &Case, timeout: Duration) -> SpfResult {
    // A resolver per case: its time budget is per message.
    let r = Hickory::new(Servers::Listed(vec![dns.addr().parse().unwrap()]), timeout);
    let ip: IpAddr = c.ip.parse().unwrap();
    let (domain, sender) = identity(c);
    check_host(&r, ip, domain, &sender, "helo.example", HOST).result
}

fn identity(c: &Case) -> (&'static str, String) {
    if c.sender.is_empty() {
        (c.domain, format!("postmaster@{}", c.domain))
    } else {
        (c.domain, format!("{}@{}", c.sender, c.domain))
    }
}

fn mail_auth(port: u16, timeout: Duration) -> mail_auth::MessageAuthenticator {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    let mut ns = NameServerConfig::udp_and_tcp("127.0.0.1".parse().unwrap());
    for c in &mut ns.connections {
        c.port = port;
    }
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    mail_auth::MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts).unwrap()
}

fn theirs(rt: &tokio::runtime::Runtime, auth: &mail_auth::MessageAuthenticator, c: &Case) -> String {
    use mail_auth::spf::verify::SpfParameters;
    let ip: IpAddr = c.ip.parse().unwrap();
    let (domain, sender) = identity(c);
    let params = if c.sender.is_empty() {
        SpfParameters::verify_ehlo(ip, domain, HOST)
    } else {
        SpfParameters::verify_mail_from(ip, "helo.example", HOST, &sender)
    };
    rt.block_on(auth.verify_spf(params)).result().to_string().to_ascii_lowercase()
}

fn start() -> Dns {
    let z = zone();
    let refs: Vec<(&str, &str)> = z.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    Dns::start(&refs)
}

#[test]
fn check_host_agrees_with_mail_auth_outside_its_defects() {
    let dns = start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let auth = mail_auth(dns.port, Duration::from_secs(2));
    let mut wrong = Vec::new();
    for c in cases() {
        let o = ours(&dns, &c, Duration::from_secs(2));
        let t = theirs(&rt, &auth, &c);
        let want_theirs = c.theirs.unwrap_or(c.ours).as_str();
        if o != c.ours || t != want_theirs {
            wrong.push(format!(
                "{}: ours {} (want {}), mail-auth {t} (want {want_theirs})",
                c.what,
                o.as_str(),
                c.ours.as_str()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A server that never answers is temperror within the resolver's time bound, never a pass or
/// a permanent result. mail-auth gives temperror for one time-out too; its difference (an
/// overall 20 s limit that turns into permerror, §4.6.4 says temperror) needs 20 s of
/// time-outs, which this test does not wait for.
#[test]
fn dns_timeout_is_temperror_within_the_budget() {
    let dns = start();
    let c = case("timeout", "slow.example", "192.0.2.1", SpfResult::TempError);
    let t = Instant::now();
    assert_eq!(ours(&dns, &c, Duration::from_millis(500)), SpfResult::TempError);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(theirs(&rt, &mail_auth(dns.port, Duration::from_millis(500)), &c), "temperror");
}

/// The limits hold on the wire: the 11th include and the 3rd void lookup are never asked.
#[test]
fn limits_stop_the_queries() {
    let dns = start();
    let q = |c: &Case| {
        dns.clear_queries();
        ours(&dns, c, Duration::from_secs(2));
        dns.queries()
    };
    let asked = q(&case("11 includes", "eleven.example", "192.0.2.1", SpfResult::PermError));
    assert!(asked.iter().any(|l| l.contains("i9.inc.example")), "{asked:?}");
    assert!(!asked.iter().any(|l| l.contains("i10.inc.example")), "{asked:?}");
    let asked = q(&case("3 void lookups", "void.example", "192.0.2.1", SpfResult::PermError));
    assert!(asked.iter().any(|l| l.contains("nx3.void.example")), "the third is asked, then counted: {asked:?}");
}

/// RFC 7208 §7.1: a target name may hold any visible character but `%` after expansion (and
/// `%%`, `%_`, `%-` put `%`, spaces and `%20` into it); RFC 2181 §11: a label may hold any octet.
/// Such names are asked of DNS as they are, labels as raw octets, and match.
#[test]
fn spf_target_names_with_any_visible_character_are_asked() {
    let dns = Dns::start(&[
        ("colon-a.example", "v=spf1 a:foo:bar/baz.example.com -all"),
        ("colon-mx.example", "v=spf1 mx:foo:bar/baz.example.com -all"),
        ("foo:bar/baz.example.com", "@A:192.0.2.7"),
        ("foo:bar/baz.example.com", "@MX:0 foo:bar/baz.example.com"),
        ("mania.example", "v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all"),
        ("macro%percent  space%20url-space.example.com", "@A:192.0.2.8"),
        ("local.example", "v=spf1 exists:%{l}.x.local.example -all"),
        ("a b(c)\\d.x.local.example", "@A:127.0.0.2"),
    ]);
    let r = || Hickory::new(Servers::Listed(vec![dns.addr().parse().unwrap()]), Duration::from_secs(2));
    let check = |domain: &str, sender: &str, ip: &str| {
        check_host(&r(), ip.parse().unwrap(), domain, &format!("{sender}@{domain}"), "h.example", HOST).result
    };
    assert_eq!(check("colon-a.example", "u", "192.0.2.7"), SpfResult::Pass);
    assert_eq!(check("colon-a.example", "u", "::ffff:192.0.2.7"), SpfResult::Pass);
    assert_eq!(check("colon-mx.example", "u", "192.0.2.7"), SpfResult::Pass);
    assert_eq!(check("mania.example", "u", "192.0.2.8"), SpfResult::Pass);
    assert_eq!(check("mania.example", "u", "192.0.2.9"), SpfResult::Fail);
    assert_eq!(check("local.example", "a b(c)\\d", "192.0.2.9"), SpfResult::Pass);
    let asked = dns.queries();
    assert!(asked.iter().any(|l| l.contains(" macro%percent  space%20url-space.example.com 1 ")), "{asked:?}");
}

/// A TXT answer holding a record of zero-length data (illegal, RFC 1035 §3.3.14, but seen)
/// beside the SPF record: hickory-resolver refuses the whole answer, so it is read again
/// leniently, and the valid record is used. (Over TCP hickory drops such an answer without a
/// word and the question times out: an answer too big for UDP stays a temporary failure.)
#[test]
fn txt_answer_with_a_zero_length_record_keeps_the_valid_one() {
    use qmail_dkim::dns::{TxtAnswer, TxtLookup};
    // "v=spf1 ip4:" "192.0.2.5 -all" as two character-strings, then an empty record.
    let spf = "@RDATA:0b763d73706631206970343a0e3139322e302e322e35202d616c6c";
    let dns = Dns::start(&[("null.example", spf), ("null.example", "@RDATA:"), ("only.example", "@RDATA:")]);
    let r = || Hickory::new(Servers::Listed(vec![dns.addr().parse().unwrap()]), Duration::from_secs(2));
    let want = TxtAnswer::Records(vec![b"v=spf1 ip4:192.0.2.5 -all".to_vec(), Vec::new()]);
    assert_eq!(r().txt("null.example"), want);
    let spf = |name: &str, ip: &str| {
        check_host(&r(), ip.parse().unwrap(), name, &format!("u@{name}"), "h.example", HOST).result
    };
    assert_eq!(spf("null.example", "192.0.2.5"), SpfResult::Pass);
    assert_eq!(spf("null.example", "192.0.2.6"), SpfResult::Fail);
    assert_eq!(r().txt("only.example"), TxtAnswer::Records(vec![Vec::new()]));
    assert_eq!(spf("only.example", "192.0.2.5"), SpfResult::None);
}
