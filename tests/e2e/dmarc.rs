//! DMARC (RFC 9989) through the binary, over the loopback DNS server: each case is a message
//! signed by dkimpy (or not) from a client SPF allows (or not), run through qmail-dkim with
//! `DMARCVERIFY`, its `dmarc=` result and `policy.dmarc` read back from the header; the same
//! zone and identifiers then go to two independent implementations of RFC 9989, mail-auth
//! 0.13.3's `verify_dmarc` and the Node `mailauth` package's lib/dmarc
//! (tests/interop/mailauth_dmarc.js). Where an oracle departs from RFC 9989 the case says so,
//! with the section; docs/dmarc.md has the table.

use crate::common::*;

const GOOD_IP: &str = "192.0.2.1";
const SPF_OK: &str = "v=spf1 ip4:192.0.2.0/24 -all";
/// Signing domains with a key (selector `sel`).
const KEY_DOMAINS: &[&str] = &[
    "mail.own.example",
    "up.example",
    "other.gov.example",
    "mail.agency2.gov.example",
    "corp.example",
    "x.dept.corp.example",
    "bob.github.io",
    "mail.badval.example",
    "deep.example",
];

fn records() -> Vec<(&'static str, &'static str)> {
    vec![
        ("_dmarc.own.example", "v=DMARC1; p=reject"),
        ("bounce.own.example", SPF_OK),
        ("_dmarc.up.example", "v=DMARC1; p=quarantine; rua=mailto:d@up.example"),
        ("_dmarc.gov.example", "v=DMARC1; p=reject; psd=y"),
        ("_dmarc.agency2.gov.example", "v=DMARC1; p=none"),
        ("_dmarc.corp.example", "v=DMARC1; p=reject"),
        ("_dmarc.dept.corp.example", "v=DMARC1; p=quarantine; psd=n"),
        ("_dmarc.deep.example", "v=DMARC1; p=reject"),
        ("deep.example", SPF_OK),
        // Ten labels: the walk from a twelve-label name jumps over it (§4.10 step 4).
        ("_dmarc.c.d.e.f.g.h.i.j.deep.example", "v=DMARC1; p=none"),
        ("_dmarc.np.example", "v=DMARC1; p=none; np=reject"),
        ("real.np.example", "@A:192.0.2.5"),
        // An empty non-terminal: no records of its own, a name below it.
        ("host.ent.np.example", "@A:192.0.2.7"),
        ("_dmarc.testing.example", "v=DMARC1; p=reject; t=y"),
        ("_dmarc.pct.example", "v=DMARC1; p=reject; pct=0"),
        ("_dmarc.unknown.example", "v=DMARC1; p=reject; future=1; rf=afrf; ri=3600; x=y"),
        // A registry in the public suffix list's private section that publishes a record
        // without psd=y: by the walk its registrants share it as Organizational Domain.
        ("_dmarc.github.io", "v=DMARC1; p=reject"),
        ("_dmarc.multi.example", "v=DMARC1; p=reject"),
        ("_dmarc.multi.example", "v=DMARC1; p=none"),
        ("_dmarc.x.multi2.example", "v=DMARC1; p=reject"),
        ("_dmarc.x.multi2.example", "v=DMARC1; p=none"),
        ("x.multi2.example", "@A:192.0.2.6"),
        ("_dmarc.multi2.example", "v=DMARC1; p=quarantine"),
        ("_dmarc.badval.example", "v=DMARC1; p=reject; adkim=x"),
        ("_dmarc.badnp.example", "v=DMARC1; p=reject; np=bogus"),
        ("_dmarc.rua.example", "v=DMARC1; rua=mailto:d@rua.example"),
        ("_dmarc.dup.example", "v=DMARC1; p=reject; p=none"),
        ("_dmarc.servfail.example", "@SERVFAIL"),
    ]
}

/// What an oracle gives for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Oracle {
    /// The same result and policy as ours.
    Agrees,
    /// Another result and policy, for the reason given (RFC 9989's section).
    Differs(&'static str, Option<&'static str>, &'static str),
}
use Oracle::{Agrees, Differs};

struct Case {
    /// The From domain.
    from: &'static str,
    /// The domain that signs (selector `sel`), if any.
    dkim: Option<&'static str>,
    /// The envelope sender's domain, which SPF passes (the client is allowed), if any.
    spf: Option<&'static str>,
    /// Our `dmarc=` result and `policy.dmarc`.
    want: (&'static str, Option<&'static str>),
    mail_auth: Oracle,
    node: Oracle,
}

const fn case(
    from: &'static str,
    dkim: Option<&'static str>,
    spf: Option<&'static str>,
    want: (&'static str, Option<&'static str>),
) -> Case {
    Case { from, dkim, spf, want, mail_auth: Agrees, node: Agrees }
}

const SEVERAL: &str = "several DMARC records at one name are all discarded (RFC 9989 §4.10 steps 2 and 6); \
                       mail-auth uses the first that parses";

const DUPLICATE: &str = "DMARC records follow DKIM's tag-value syntax (RFC 9989 §4.7), where a name given twice \
                         makes the tag list invalid (RFC 6376 §3.2): permerror (§9.2); the oracles take the last";

fn cases() -> Vec<Case> {
    vec![
        // The From domain's own record.
        case("own.example", None, None, ("fail", Some("reject"))),
        case("own.example", Some("mail.own.example"), None, ("pass", Some("reject"))),
        case("own.example", None, Some("bounce.own.example"), ("pass", Some("reject"))),
        // A parent's record several labels up; aligned through the walk.
        case("x.y.z.up.example", None, None, ("fail", Some("quarantine"))),
        case("x.y.z.up.example", Some("up.example"), None, ("pass", Some("quarantine"))),
        // psd=y: the PSD's policy for a registrant without a record, which is its own
        // Organizational Domain (a sibling's signature does not align).
        case("agency.gov.example", Some("other.gov.example"), None, ("fail", Some("reject"))),
        case("agency2.gov.example", Some("mail.agency2.gov.example"), None, ("pass", Some("none"))),
        // psd=n: a department is its own Organizational Domain; the apex's signature is not
        // aligned (it would be by the public suffix list).
        case("mail.dept.corp.example", Some("corp.example"), None, ("fail", Some("quarantine"))),
        case("mail.dept.corp.example", Some("x.dept.corp.example"), None, ("pass", Some("quarantine"))),
        // Deeper than the walk's bound: the record at ten labels is jumped over.
        case("a.b.c.d.e.f.g.h.i.j.deep.example", None, None, ("fail", Some("reject"))),
        // np=: a subdomain that does not exist (NXDOMAIN), one that does, and one that exists
        // as an empty non-terminal (NODATA: only a name below it has records).
        case("ghost.np.example", None, None, ("fail", Some("reject"))),
        case("real.np.example", None, None, ("fail", Some("none"))),
        case("ent.np.example", None, None, ("fail", Some("none"))),
        // t=y with p=reject: quarantine.
        case("testing.example", None, None, ("fail", Some("quarantine"))),
        // pct=0 is ignored now, and so are unknown and historic tags.
        case("pct.example", None, None, ("fail", Some("reject"))),
        case("unknown.example", None, None, ("fail", Some("reject"))),
        // Aligned only by the walk (the public suffix list knows github.io as a suffix).
        case("alice.github.io", Some("bob.github.io"), None, ("pass", Some("reject"))),
        // Several records at one name.
        Case {
            mail_auth: Differs("fail", Some("reject"), SEVERAL),
            ..case("multi.example", None, None, ("none", None))
        },
        Case {
            mail_auth: Differs("fail", Some("reject"), SEVERAL),
            ..case("x.multi2.example", None, None, ("fail", Some("quarantine")))
        },
        // An invalid value takes its default (adkim=r); an invalid np= without rua= means no
        // DMARC; no p= with a valid rua= is p=none.
        Case {
            mail_auth: Differs(
                "permerror",
                None,
                "an invalid tag value is discarded for its default (RFC 9989 §4.8); mail-auth refuses the record",
            ),
            ..case("badval.example", Some("mail.badval.example"), None, ("pass", Some("reject")))
        },
        Case {
            mail_auth: Differs(
                "permerror",
                None,
                "an invalid np= without a valid rua= means no DMARC processing (RFC 9989 §4.10.1); mail-auth \
                 refuses the record",
            ),
            ..case("badnp.example", None, None, ("none", None))
        },
        case("rua.example", None, None, ("fail", Some("none"))),
        // A tag given twice: an improperly formatted record.
        Case {
            mail_auth: Differs("fail", Some("none"), DUPLICATE),
            node: Differs("fail", Some("none"), DUPLICATE),
            ..case("dup.example", None, None, ("permerror", None))
        },
        // No record anywhere; a DNS failure.
        case("norecord.example", None, None, ("none", None)),
        case("servfail.example", Some("mail.own.example"), None, ("temperror", None)),
    ]
}

struct World {
    dns: Dns,
    key: TestKey,
}

impl World {
    fn new() -> World {
        let key = TestKey::rsa(2048);
        let rec = key.dns_record();
        let keys: Vec<(String, String)> =
            KEY_DOMAINS.iter().map(|d| (format!("sel._domainkey.{d}"), rec.clone())).collect();
        let mut z: Vec<(&str, &str)> = records();
        z.extend(keys.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        World { dns: Dns::start(&z), key }
    }

    fn msg(from: &str) -> Vec<u8> {
        format!(
            "From: A <a@{from}>\nTo: r@example.net\nSubject: dmarc\nDate: Mon, 7 Dec 2026 08:00:00 +0000\n\
             Message-ID: <dmarc@test.example>\n\nHello.\n"
        )
        .into_bytes()
    }

    /// Runs the case through qmail-dkim; returns the `dmarc=` result, `policy.dmarc`, and the
    /// whole Authentication-Results field.
    fn ours(&self, c: &Case) -> (String, Option<String>, String) {
        let msg = match c.dkim {
            Some(d) => dkimpy_sign(&World::msg(c.from), &self.key.path, "sel", d, &[]),
            None => World::msg(c.from),
        };
        let sender = format!("x@{}", c.spf.unwrap_or("nospf.example"));
        let addr = self.dns.addr();
        let env = [
            ("AUTHSERV_ID", "mx.test.example"),
            ("DNSCACHEIP", addr.as_str()),
            ("DNSTIMEOUT", "2"),
            ("CUSTOM_ERRORS", "none"),
            ("DKIMVERIFY", ""),
            ("DMARCVERIFY", ""),
            ("TCPREMOTEIP", GOOD_IP),
        ];
        let (out, rec) = run_into_queue(&msg, &env, &sender, "r@example.net");
        assert_eq!(out.code, Some(0), "{}: {}", c.from, out.stderr);
        let rec = rec.expect("queued");
        let ar = headers_named(&rec.msg, "Authentication-Results")[0].replace("\n\t", " ").replace('\n', " ");
        // The identifiers are what the case says.
        if let Some(d) = c.dkim {
            assert!(ar.contains(&format!("dkim=pass header.d={d} ")), "{ar}");
        }
        if c.spf.is_some() {
            assert!(ar.contains("spf=pass"), "{ar}");
        }
        let part = ar.split(';').map(str::trim).find(|p| p.starts_with("dmarc=")).expect("dmarc=").to_string();
        let word = part["dmarc=".len()..].split(' ').next().unwrap_or("").to_string();
        let policy = part.split(' ').find_map(|w| w.strip_prefix("policy.dmarc=")).map(str::to_string);
        (word, policy, ar)
    }
}

/// mail-auth's result word and policy (the policy only on pass and fail).
fn mail_auth(
    rt: &tokio::runtime::Runtime,
    auth: &mail_auth::MessageAuthenticator,
    c: &Case,
) -> (String, Option<String>) {
    use mail_auth::dmarc::verify::DmarcParameters;
    use mail_auth::{DkimOutput, DmarcResult, SpfOutput, SpfResult};
    let msg = format!("From: A <a@{}>\r\nSubject: x\r\n\r\nbody\r\n", c.from);
    let parsed = mail_auth::AuthenticatedMessage::parse(msg.as_bytes()).unwrap();
    let sigs: Vec<mail_auth::dkim::Signature> =
        c.dkim.iter().map(|d| mail_auth::dkim::Signature { d: d.to_string(), ..Default::default() }).collect();
    let dkim: Vec<DkimOutput<'_>> = sigs.iter().map(|s| DkimOutput::pass().with_signature(s)).collect();
    let spf_domain = c.spf.unwrap_or("nospf.example");
    let spf = SpfOutput::new(spf_domain.to_string()).with_result(if c.spf.is_some() {
        SpfResult::Pass
    } else {
        SpfResult::None
    });
    let out = rt.block_on(auth.verify_dmarc(DmarcParameters::new(&parsed, &dkim, spf_domain, &spf)));
    let word = match out.result() {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    };
    let policy = matches!(word, "pass" | "fail").then(|| match out.policy() {
        mail_auth::dmarc::Policy::Reject => "reject",
        mail_auth::dmarc::Policy::Quarantine => "quarantine",
        mail_auth::dmarc::Policy::None | mail_auth::dmarc::Policy::Unspecified => "none",
    });
    (word.to_string(), policy.map(str::to_string))
}

/// The Node `mailauth` package's results for all cases, in order.
fn node(dns: &Dns, cases: &[Case]) -> Vec<(String, Option<String>)> {
    let input = serde_json::Value::Array(
        cases
            .iter()
            .map(|c| {
                serde_json::json!({
                    "from": format!("a@{}", c.from),
                    "dkim": c.dkim.iter().collect::<Vec<_>>(),
                    "spf": c.spf,
                })
            })
            .collect(),
    );
    let mut child = std::process::Command::new(interop_dir().join("mailauth_dmarc.js"))
        .arg(dns.addr())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tests/interop/mailauth_dmarc.js (is node on PATH? run .ci/install-test-deps)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.to_string().as_bytes()).expect("write cases");
    }
    let out = child.wait_with_output().expect("mailauth_dmarc.js");
    assert!(out.status.success(), "mailauth_dmarc.js: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array()
        .expect("list")
        .iter()
        .map(|r| {
            let word = r["result"].as_str().unwrap_or("").to_string();
            let policy = r["policy"].as_str().filter(|_| matches!(word.as_str(), "pass" | "fail")).map(str::to_string);
            (word, policy)
        })
        .collect()
}

fn owned(w: (&str, Option<&str>)) -> (String, Option<String>) {
    (w.0.to_string(), w.1.map(str::to_string))
}

/// Every case through the binary, mail-auth and Node's mailauth: our verdict is RFC 9989's,
/// and each oracle agrees except where the case says why it departs from RFC 9989.
#[test]
fn dmarc_verdicts_agree_with_mail_auth_and_node_mailauth() {
    let w = World::new();
    let (rt, auth) = mail_auth_for(&w.dns);
    let cases = cases();
    let theirs = node(&w.dns, &cases);
    let mut table = String::new();
    for (c, n) in cases.iter().zip(theirs) {
        let (word, policy, ar) = w.ours(c);
        let ours = (word, policy);
        assert_eq!(ours, owned(c.want), "{}: {ar}", c.from);
        let m = mail_auth(&rt, &auth, c);
        for (who, oracle, got) in [("mail-auth", c.mail_auth, &m), ("node mailauth", c.node, &n)] {
            let want = match oracle {
                Agrees => ours.clone(),
                Differs(word, policy, _) => owned((word, policy)),
            };
            assert_eq!(*got, want, "{who} on {}", c.from);
        }
        let show = |v: &(String, Option<String>)| format!("{} {}", v.0, v.1.as_deref().unwrap_or("-"));
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            c.from,
            c.dkim.unwrap_or("-"),
            c.spf.unwrap_or("-"),
            show(&ours),
            show(&m),
            show(&n)
        ));
    }
    eprintln!("| From | DKIM d= | SPF | ours | mail-auth | node mailauth |\n|---|---|---|---|---|---|\n{table}");
}

/// The binary with `R`: the policy that applies decides, `t=y` and `np=` included.
#[test]
fn dmarc_letters_follow_the_policy_that_applies() {
    let w = World::new();
    let addr = w.dns.addr();
    let run = |from: &str, letters: &str| {
        let env = [
            ("DNSCACHEIP", addr.as_str()),
            ("DNSTIMEOUT", "2"),
            ("CUSTOM_ERRORS", "none"),
            ("DMARCVERIFY", letters),
            ("TCPREMOTEIP", GOOD_IP),
        ];
        let (out, rec) = run_into_queue(&World::msg(from), &env, "x@nospf.example", "r@example.net");
        (out.code, rec.is_some(), out.stderr)
    };
    for (from, letters, code) in [
        ("ghost.np.example", "R", 31),
        ("real.np.example", "R", 0),
        ("real.np.example", "N", 31),
        ("testing.example", "R", 0),
        ("testing.example", "Q", 31),
        ("pct.example", "R", 31),
        ("agency.gov.example", "r", 71),
        ("multi.example", "RQNTP", 0),
    ] {
        let (c, queued, stderr) = run(from, letters);
        assert_eq!((c, queued), (Some(code), code == 0), "{from} {letters}: {stderr}");
    }
}

/// One message with a deep From domain: the DMARC questions on the wire are the eight of RFC
/// 9989's walk (§4.10's list), each name once, and the rest is SPF's and DKIM's; the signing
/// domain's walk asks nothing new.
#[test]
fn dmarc_questions_on_the_wire_for_a_deep_from_domain() {
    let w = World::new();
    let from = "a.b.c.d.e.f.g.h.i.j.k.deep.example";
    let msg = dkimpy_sign(&World::msg(from), &w.key.path, "sel", "deep.example", &[]);
    w.dns.clear_queries();
    let addr = w.dns.addr();
    let env = [
        ("DNSCACHEIP", addr.as_str()),
        ("DNSTIMEOUT", "2"),
        ("DKIMVERIFY", ""),
        ("DMARCVERIFY", "R"),
        ("TCPREMOTEIP", GOOD_IP),
    ];
    let (out, rec) = run_into_queue(&msg, &env, "x@deep.example", "r@example.net");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let ar = headers_named(&rec.expect("queued").msg, "Authentication-Results")[0].clone();
    assert!(ar.contains("dmarc=pass"), "{ar}");
    let asked: Vec<(String, String)> = w
        .dns
        .queries()
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[1].to_ascii_lowercase(), f[2].to_string())
        })
        .collect();
    let mut seen = asked.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), asked.len(), "a question asked twice: {asked:?}");
    let dmarc: Vec<&str> = asked.iter().filter_map(|(n, _)| n.strip_prefix("_dmarc.")).collect();
    assert_eq!(
        dmarc,
        [
            from,
            "g.h.i.j.k.deep.example",
            "h.i.j.k.deep.example",
            "i.j.k.deep.example",
            "j.k.deep.example",
            "k.deep.example",
            "deep.example",
            "example"
        ]
    );
    // Besides: SPF's record of deep.example and the key of the signature.
    let other: Vec<&str> = asked.iter().map(|(n, _)| n.as_str()).filter(|n| !n.starts_with("_dmarc.")).collect();
    assert_eq!(other.len(), 2, "{other:?}");
    assert!(other.contains(&"deep.example") && other.contains(&"sel._domainkey.deep.example"), "{other:?}");
}
