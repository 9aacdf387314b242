//! SPF, DMARC and ARC at queue time through the real binary (docs/dmarc.md): one loopback DNS
//! zone with SPF, DMARC and DKIM records for several test domains, messages signed by dkimpy,
//! every result class, the letters upper/lower/absent in each error convention, and the one
//! Authentication-Results header read back by an independent RFC 8601 parser (Python's authres).

use crate::common::*;

pub(crate) const AUTHSERV: &str = "mx.test.example";
/// Allowed by the SPF records below; `BAD_IP` is not.
const GOOD_IP: &str = "192.0.2.1";
const BAD_IP: &str = "198.51.100.9";
const RCPT: &str = "rcpt@example.net";

/// Domains whose DKIM key (selector `sel`) is published.
const KEY_DOMAINS: &[&str] = &["example.com", "other.example", "strict.example", "example.co.uk", "other.co.uk"];

struct World {
    dns: Dns,
    key: TestKey,
}

impl World {
    fn new() -> World {
        let key = TestKey::rsa(2048);
        let rec = key.dns_record();
        let mut z: Vec<(String, String)> =
            KEY_DOMAINS.iter().map(|d| (format!("sel._domainkey.{d}"), rec.clone())).collect();
        let spf_ok = "v=spf1 ip4:192.0.2.0/24 -all";
        let mut add = |n: &str, v: &str| z.push((n.to_string(), v.to_string()));
        // SPF
        add("example.com", spf_ok);
        add("other.example", spf_ok);
        add("helo.example", spf_ok);
        add("softfail.example", "v=spf1 ~all");
        add("neutral.example", "v=spf1 ?all");
        add("nospf.example", "@A:192.0.2.7");
        add("tempfail.example", "@SERVFAIL");
        add("timeout.example", "@TIMEOUT");
        add("permerror.example", "v=spf1 ip4:192.0.2.0/24 bogus:x -all");
        let includes: Vec<String> = (1..=11).map(|i| format!("include:i{i}.toomany.example")).collect();
        add("toomany.example", &format!("v=spf1 {} -all", includes.join(" ")));
        for i in 1..=11 {
            add(&format!("i{i}.toomany.example"), "v=spf1 ip4:203.0.113.1 -all");
        }
        add("void.example", "v=spf1 a:v1.void.example a:v2.void.example a:v3.void.example ip4:192.0.2.0/24 -all");
        // DMARC
        add("_dmarc.example.com", "v=DMARC1; p=reject");
        add("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s");
        add("_dmarc.spdom.example", "v=DMARC1; p=none; sp=reject");
        add("spdom.example", "v=spf1 -all");
        add("_dmarc.quarantine.example", "v=DMARC1; p=quarantine");
        add("quarantine.example", "v=spf1 -all");
        add("_dmarc.none.example", "v=DMARC1; p=none");
        add("none.example", "v=spf1 -all");
        add("_dmarc.pct.example", "v=DMARC1; p=reject; pct=0");
        add("pct.example", "v=spf1 -all");
        add("_dmarc.tempdmarc.example", "@SERVFAIL");
        add("_dmarc.example.co.uk", "v=DMARC1; p=reject");
        add("_dmarc.other.co.uk", "v=DMARC1; p=none");
        add("nodmarc.example", "v=spf1 -all");
        // ARC: a mailing list that seals with dkimpy, a forwarding host that seals with us.
        add("lists._domainkey.lists.example.net", &rec);
        add("arc._domainkey.fwd.example", &rec);
        add("arc2._domainkey.relay2.example", &rec);
        let refs: Vec<(&str, &str)> = z.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        World { dns: Dns::start(&refs), key }
    }

    /// A message from `from` (the whole From: value).
    fn msg(from: &str) -> Vec<u8> {
        format!(
            "From: {from}\nTo: {RCPT}\nSubject: queue-time checks\nDate: Sun, 29 Nov 2026 12:00:00 +0000\n\
             Message-ID: <checks@test.example>\n\nHello.\n"
        )
        .into_bytes()
    }

    /// `msg(from)` signed by dkimpy for `d` (selector `sel`).
    fn signed(&self, from: &str, d: &str) -> Vec<u8> {
        dkimpy_sign(&World::msg(from), &self.key.path, "sel", d, &[])
    }

    /// Runs qmail-dkim in verify mode from client `ip` (None: local injection) with `extra`.
    fn run(&self, msg: &[u8], sender: &str, ip: Option<&str>, extra: &[(&str, &str)]) -> (Output, Option<Recorded>) {
        let addr = self.dns.addr();
        let mut env: Vec<(&str, &str)> = vec![
            ("AUTHSERV_ID", AUTHSERV),
            ("DNSCACHEIP", &addr),
            ("DNSTIMEOUT", "1"),
            ("CUSTOM_ERRORS", "none"),
            ("DKIMVERIFY", ""),
        ];
        if let Some(ip) = ip {
            env.push(("TCPREMOTEIP", ip));
        }
        env.extend_from_slice(extra);
        run_into_queue(msg, &env, sender, RCPT)
    }

    /// Runs and expects the message queued; returns the parsed Authentication-Results.
    fn queued(&self, msg: &[u8], sender: &str, ip: Option<&str>, extra: &[(&str, &str)]) -> Results {
        let (out, rec) = self.run(msg, sender, ip, extra);
        assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
        let rec = rec.expect("queued");
        assert!(rec.msg.ends_with(msg), "the message must be queued unchanged below our headers");
        Results::of(&rec.msg)
    }

    /// Runs and expects a refusal with exit code `code` (31 permanent, 71 temporary under
    /// `CUSTOM_ERRORS=none`) whose reason contains `text`; nothing queued.
    fn refused(&self, msg: &[u8], sender: &str, ip: Option<&str>, extra: &[(&str, &str)], code: i32, text: &str) {
        let (out, rec) = self.run(msg, sender, ip, extra);
        assert_eq!(out.code, Some(code), "stderr: {}", out.stderr);
        assert!(rec.is_none(), "refused but queued");
        assert!(out.stderr.contains(text), "{text:?} not in: {}", out.stderr);
    }
}

/// The top Authentication-Results field as authres parsed it.
pub(crate) struct Results(pub(crate) Json);

impl Results {
    pub(crate) fn of(msg: &[u8]) -> Results {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), msg).unwrap();
        let out = std::process::Command::new(interop_dir().join("authres_parse.py"))
            .arg(f.path())
            .output()
            .expect("run tests/interop/authres_parse.py (run .ci/install-test-deps)");
        assert!(
            out.status.success(),
            "authres refused our header: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(msg)
        );
        let j: Json = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(j["authserv_id"], AUTHSERV);
        Results(j)
    }

    pub(crate) fn all(&self) -> Vec<&Json> {
        self.0["results"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
    }

    /// The methods in order, e.g. `["spf", "dkim", "dmarc"]`.
    pub(crate) fn methods(&self) -> Vec<String> {
        self.all().iter().map(|r| r["method"].as_str().unwrap_or("").to_string()).collect()
    }

    /// The one result of `method` (panics when there is not exactly one).
    pub(crate) fn one(&self, method: &str) -> &Json {
        let v: Vec<&Json> = self.all().into_iter().filter(|r| r["method"] == method).collect();
        assert_eq!(v.len(), 1, "one {method} result expected: {}", self.0);
        v[0]
    }

    pub(crate) fn result(&self, method: &str) -> String {
        self.one(method)["result"].as_str().unwrap_or("").to_string()
    }

    pub(crate) fn prop(&self, method: &str, prop: &str) -> String {
        self.one(method)["props"][prop].as_str().unwrap_or("").to_string()
    }
}

// ---------------------------------------------------------------------------
// SPF

#[test]
fn spf_result_classes() {
    let w = World::new();
    let cases: &[(&str, &str, &str)] = &[
        ("a@example.com", GOOD_IP, "pass"),
        ("a@example.com", BAD_IP, "fail"),
        ("a@softfail.example", GOOD_IP, "softfail"),
        ("a@neutral.example", GOOD_IP, "neutral"),
        ("a@nospf.example", GOOD_IP, "none"),
        ("a@nxdomain.example", GOOD_IP, "none"),
        ("a@tempfail.example", GOOD_IP, "temperror"),
        ("a@timeout.example", GOOD_IP, "temperror"),
        ("a@permerror.example", GOOD_IP, "permerror"),
        ("a@toomany.example", GOOD_IP, "permerror"),
        ("a@void.example", GOOD_IP, "permerror"),
    ];
    for (sender, ip, want) in cases {
        let r = w.queued(&World::msg("x@y.example"), sender, Some(ip), &[("SPFVERIFY", "")]);
        assert_eq!(r.result("spf"), *want, "{sender} from {ip}: {}", r.0);
        assert_eq!(r.prop("spf", "smtp.mailfrom"), *sender);
    }
}

#[test]
fn spf_checks_helo_for_the_null_sender() {
    let w = World::new();
    let r = w.queued(&World::msg("x@y.example"), "", Some(GOOD_IP), &[("SPFVERIFY", ""), ("HELOHOST", "helo.example")]);
    assert_eq!(r.result("spf"), "pass", "{}", r.0);
    assert_eq!(r.prop("spf", "smtp.helo"), "helo.example");
    let r = w.queued(&World::msg("x@y.example"), "", Some(BAD_IP), &[("SPFVERIFY", ""), ("HELOHOST", "helo.example")]);
    assert_eq!(r.result("spf"), "fail", "{}", r.0);
}

#[test]
fn spf_local_injection_is_none_and_never_refused() {
    let w = World::new();
    let r = w.queued(&World::msg("x@y.example"), "a@example.com", None, &[("SPFVERIFY", "FSNTP")]);
    assert_eq!(r.result("spf"), "none", "{}", r.0);
}

#[test]
fn spf_letters_upper_lower_absent() {
    let w = World::new();
    let m = World::msg("x@y.example");
    let cases: &[(&str, &str, &str)] = &[
        ("a@example.com", BAD_IP, "F"),
        ("a@softfail.example", GOOD_IP, "S"),
        ("a@neutral.example", GOOD_IP, "N"),
        ("a@permerror.example", GOOD_IP, "P"),
    ];
    for (sender, ip, letter) in cases {
        w.refused(&m, sender, Some(ip), &[("SPFVERIFY", letter)], 31, "SPF");
        w.refused(&m, sender, Some(ip), &[("SPFVERIFY", &letter.to_ascii_lowercase())], 71, "SPF");
        // Other letters only: queued.
        let others: String = "FSNTP".chars().filter(|c| c.to_string() != *letter).collect();
        w.queued(&m, sender, Some(ip), &[("SPFVERIFY", &others)]);
    }
    // A DNS failure refuses only temporarily, even with an uppercase T.
    w.refused(&m, "a@tempfail.example", Some(GOOD_IP), &[("SPFVERIFY", "T")], 71, "SPF");
    w.refused(&m, "a@tempfail.example", Some(GOOD_IP), &[("SPFVERIFY", "t")], 71, "SPF");
    // pass and none are never refused.
    w.queued(&m, "a@example.com", Some(GOOD_IP), &[("SPFVERIFY", "FSNTPfsntp")]);
    w.queued(&m, "a@nospf.example", Some(GOOD_IP), &[("SPFVERIFY", "FSNTPfsntp")]);
}

/// Each check's refusal reaches the client in every custom-error convention, upper case
/// permanently and lower case temporarily, the text naming the check.
#[test]
fn spf_dmarc_and_arc_refusals_in_each_error_convention() {
    let w = World::new();
    let addr = w.dns.addr();
    let q = Queue::new();
    // The queue's variables, ours, and the convention's; the message from a@example.com.
    let run = |msg: &[u8], vars: &[(&str, &str)], fd: i32| {
        let mut e = q.env();
        e.push(("DKIMQUEUE".into(), q.program().display().to_string()));
        for (a, b) in [("AUTHSERV_ID", AUTHSERV), ("DNSCACHEIP", addr.as_str()), ("TCPREMOTEIP", BAD_IP)] {
            e.push((a.into(), b.into()));
        }
        e.extend(vars.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        Run::new(msg, &envelope("a@example.com", &[RCPT])).env_owned(&e).capture_fd(fd).run()
    };
    let tampered = [&list_sealed(&w)[..], b"-- \nfooter added later\n"].concat();
    let cases: [(&str, &str, Vec<u8>, String, &str); 3] = [
        (
            "SPFVERIFY",
            "F",
            World::msg("x@y.example"),
            format!("qmail-dkim: SPF fail: {BAD_IP} is not allowed to send mail for example.com"),
            "7.23",
        ),
        (
            "DMARCVERIFY",
            "R",
            World::msg("a@example.com"),
            "qmail-dkim: DMARC policy of example.com is reject and the message failed".into(),
            "7.1",
        ),
        ("ARCVERIFY", "F", tampered, "qmail-dkim: ARC chain does not validate".into(), "7.29"),
    ];
    for (var, letter, msg, text, code) in &cases {
        for perm in [true, false] {
            let letters = if perm { letter.to_string() } else { letter.to_ascii_lowercase() };
            let (l, class) = if perm { ('D', 5) } else { ('Z', 4) };
            let want = format!("{l}{text} (#{class}.{code})");
            // indimail: ERROR_FD.
            let out = run(msg, &[(var, &letters), ("ERROR_FD", "5")], 5);
            assert_eq!((out.code, out.fd_text(5)), (Some(88), want.clone()), "{var}={letters}: {}", out.stderr);
            // notqmail: fd 6, 82.
            let out = run(msg, &[(var, &letters), ("CUSTOM_ERRORS", "notqmail")], 6);
            assert_eq!((out.code, out.fd_text(6)), (Some(82), want.clone()), "{var}={letters}: {}", out.stderr);
            // none: 31 / 71, the text in the log.
            let out = run(msg, &[(var, &letters), ("CUSTOM_ERRORS", "none")], 6);
            assert_eq!(out.code, Some(if perm { 31 } else { 71 }), "{var}={letters}: {}", out.stderr);
            assert!(out.stderr.contains(&want["Dqmail-dkim: ".len()..]), "{}", out.stderr);
        }
        // The letter absent: queued.
        let out = run(msg, &[(var, ""), ("CUSTOM_ERRORS", "none")], 6);
        assert_eq!(out.code, Some(0), "{var}=\"\": {}", out.stderr);
    }
    assert_eq!(q.records().len(), 3, "only the three report-only runs are queued");
}

// ---------------------------------------------------------------------------
// DMARC

#[test]
fn dmarc_pass_by_aligned_dkim_or_aligned_spf() {
    let w = World::new();
    // DKIM aligned, SPF fails (another client).
    let r = w.queued(
        &w.signed("A <a@example.com>", "example.com"),
        "a@example.com",
        Some(BAD_IP),
        &[("DMARCVERIFY", "RQNTP")],
    );
    assert_eq!((r.result("spf"), r.result("dkim"), r.result("dmarc")), ("fail".into(), "pass".into(), "pass".into()));
    assert_eq!(r.prop("dmarc", "header.from"), "example.com");
    // SPF aligned, no signature.
    let r = w.queued(&World::msg("a@example.com"), "a@example.com", Some(GOOD_IP), &[("DMARCVERIFY", "RQNTP")]);
    assert_eq!((r.result("spf"), r.result("dmarc")), ("pass".into(), "pass".into()), "{}", r.0);
}

/// RFC 7489 §3.1.2: an aligned SPF pass counts even when the A-R cannot show the sender
/// (a UTF-8 local part, RFC 6531, leaves `smtp.mailfrom` out): queued under `p=reject`, `R`.
#[test]
fn dmarc_spf_pass_of_a_utf8_sender_is_aligned() {
    let w = World::new();
    let r = w.queued(&World::msg("j@example.com"), "j\u{f6}e@example.com", Some(GOOD_IP), &[("DMARCVERIFY", "R")]);
    assert_eq!((r.result("spf"), r.result("dmarc")), ("pass".into(), "pass".into()), "{}", r.0);
}

#[test]
fn dmarc_fails_unaligned_and_refuses_by_policy() {
    let w = World::new();
    // DKIM passes for other.example and SPF passes for other.example: neither aligns with example.com.
    let m = w.signed("A <a@example.com>", "other.example");
    let r = w.queued(&m, "b@other.example", Some(GOOD_IP), &[("DMARCVERIFY", "")]);
    assert_eq!((r.result("spf"), r.result("dkim"), r.result("dmarc")), ("pass".into(), "pass".into(), "fail".into()));
    w.refused(
        &m,
        "b@other.example",
        Some(GOOD_IP),
        &[("DMARCVERIFY", "R")],
        31,
        "DMARC policy of example.com is reject",
    );
    w.refused(
        &m,
        "b@other.example",
        Some(GOOD_IP),
        &[("DMARCVERIFY", "r")],
        71,
        "DMARC policy of example.com is reject",
    );
    w.queued(&m, "b@other.example", Some(GOOD_IP), &[("DMARCVERIFY", "QNTP")]);
}

/// Relaxed alignment (the default) accepts the organizational domain, strict (adkim=s, aspf=s)
/// only the same name, and the organizational domain comes from the DNS tree walk:
/// sub.example.co.uk aligns with example.co.uk, example.co.uk not with its sibling other.co.uk.
/// Every From domain here falls under a p=reject record (its own or its organizational domain's).
#[test]
fn dmarc_relaxed_strict_and_tree_walk_alignment() {
    let w = World::new();
    let cases = [
        ("mail.example.com", "example.com", "pass"),
        ("mail.strict.example", "strict.example", "fail"),
        ("strict.example", "strict.example", "pass"),
        ("sub.example.co.uk", "example.co.uk", "pass"),
        ("example.co.uk", "other.co.uk", "fail"),
    ];
    for (from, d, want) in cases {
        let m = w.signed(&format!("a@{from}"), d);
        let r = w.queued(&m, "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "")]);
        assert_eq!((r.result("dkim"), r.result("dmarc")), ("pass".into(), want.into()), "{from} by {d}: {}", r.0);
        if want == "fail" {
            let text = format!("DMARC policy of {from} is reject");
            w.refused(&m, "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "R")], 31, &text);
        } else {
            w.queued(&m, "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "R")]);
        }
    }
}

#[test]
fn dmarc_policies_subdomain_and_pct() {
    let w = World::new();
    let run = |from: &str, letters: &str| {
        w.run(&World::msg(from), "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", letters)]).0.code
    };
    // sp=reject for subdomains, p=none for the domain itself.
    assert_eq!(run("a@sub.spdom.example", "R"), Some(31));
    assert_eq!(run("a@spdom.example", "R"), Some(0));
    assert_eq!(run("a@spdom.example", "N"), Some(31));
    // p=quarantine: Q refuses, R does not.
    assert_eq!(run("a@quarantine.example", "R"), Some(0));
    assert_eq!(run("a@quarantine.example", "Q"), Some(31));
    assert_eq!(run("a@quarantine.example", "q"), Some(71));
    // p=none: only N.
    assert_eq!(run("a@none.example", "RQ"), Some(0));
    assert_eq!(run("a@none.example", "N"), Some(31));
    // pct=0 is historic (RFC 9989 A.6), ignored: reject applies.
    assert_eq!(run("a@pct.example", "R"), Some(31));
    assert_eq!(run("a@pct.example", "Q"), Some(0));
    // No record: none, never refused.
    let r = w.queued(&World::msg("a@nodmarc.example"), "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "RQNTP")]);
    assert_eq!(r.result("dmarc"), "none");
}

#[test]
fn dmarc_temperror_and_permerror() {
    let w = World::new();
    let r = w.queued(&World::msg("a@tempdmarc.example"), "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "")]);
    assert_eq!(r.result("dmarc"), "temperror", "{}", r.0);
    // Temporary, even with an uppercase T.
    w.refused(
        &World::msg("a@tempdmarc.example"),
        "x@nospf.example",
        Some(GOOD_IP),
        &[("DMARCVERIFY", "T")],
        71,
        "DMARC",
    );
    // Two From domains: permerror.
    let two = World::msg("a@example.com, b@other.example");
    let r = w.queued(&two, "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "")]);
    assert_eq!(r.result("dmarc"), "permerror", "{}", r.0);
    w.refused(&two, "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "P")], 31, "DMARC");
    w.refused(&two, "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "p")], 71, "DMARC");
}

/// DMARC runs SPF and DKIM itself when they are not asked for; the header has every method,
/// in the documented order, and authres reads each property back.
#[test]
fn one_authentication_results_in_method_order() {
    let w = World::new();
    let m = w.signed("A <a@example.com>", "example.com");
    let (out, rec) =
        w.run(&m, "a@example.com", Some(GOOD_IP), &[("DMARCVERIFY", ""), ("DKIMVERIFY", ""), ("DKIMLOG", "1")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The log line has the checks too.
    for pair in ["spf.id=a@example.com spf.result=pass", "dkim.result=pass", "dmarc.id=example.com dmarc.result=pass"] {
        assert!(out.stderr.contains(pair), "{pair} not in {}", out.stderr);
    }
    let rec = rec.unwrap();
    assert_eq!(headers_named(&rec.msg, "Authentication-Results").len(), 1, "{}", rec.msg_text());
    let r = Results::of(&rec.msg);
    assert_eq!(r.methods(), ["spf", "dkim", "dmarc"]);
    assert_eq!(r.prop("spf", "smtp.mailfrom"), "a@example.com");
    assert_eq!(r.prop("dkim", "header.d"), "example.com");
    assert_eq!(r.prop("dkim", "header.s"), "sel");
    assert_eq!(r.prop("dmarc", "header.from"), "example.com");
    let field = &headers_named(&rec.msg, "Authentication-Results")[0];
    assert!(field.contains("dmarc=pass (p=reject"), "{field}");
    // No DKIMVERIFY at all (a DomainKeys-only setup would not verify DKIM): DMARC still gets it.
    let (out, rec) = w.run(&m, "a@example.com", Some(BAD_IP), &[("DMARCVERIFY", "R"), ("DKVERIFY", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(Results::of(&rec.unwrap().msg).result("dmarc"), "pass");
}

/// Relay clients (our own users) are not checked: their address is not their domain's server.
#[test]
fn relay_clients_are_not_checked() {
    let w = World::new();
    let (out, rec) = w.run(
        &World::msg("a@example.com"),
        "a@example.com",
        Some(BAD_IP),
        &[("SPFVERIFY", "F"), ("DMARCVERIFY", "R"), ("RELAYCLIENT", ""), ("DKIMSIGN", "/nonexistent/%/default")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let msg = rec.unwrap().msg_text();
    assert!(!msg.contains("spf=") && !msg.contains("dmarc="), "{msg}");
}

/// A forged header claiming our authserv-id with `dmarc=pass` never reaches the queue.
#[test]
fn forged_dmarc_pass_is_removed() {
    let w = World::new();
    let forged = [
        format!("Authentication-Results: {AUTHSERV}; dmarc=pass header.from=example.com\n").as_bytes(),
        &World::msg("a@example.com")[..],
    ]
    .concat();
    let (out, rec) = w.run(&forged, "x@nospf.example", Some(GOOD_IP), &[("DMARCVERIFY", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rec = rec.unwrap();
    let ars = headers_named(&rec.msg, "Authentication-Results");
    assert_eq!(ars.len(), 1, "{}", rec.msg_text());
    assert!(ars[0].contains("dmarc=fail"), "{}", ars[0]);
}

// ---------------------------------------------------------------------------
// ARC

/// A message as a mailing list sends it on: its own Authentication-Results (which dkimpy's
/// sealer copies into the ARC-Authentication-Results) and dkimpy's seal, instance 1.
fn list_sealed(w: &World) -> Vec<u8> {
    let m = [
        &b"Authentication-Results: lists.example.net; spf=pass smtp.mailfrom=a@example.com\n"[..],
        &w.signed("A <a@example.com>", "example.com")[..],
    ]
    .concat();
    dkimpy_arc_sign(&m, &w.key.path, "lists", "lists.example.net", "lists.example.net")
}

#[test]
fn arc_chain_sealed_by_dkimpy_passes_and_a_tampered_one_fails() {
    let w = World::new();
    let sealed = list_sealed(&w);
    let r = w.queued(&sealed, "list-bounces@lists.example.net", Some(GOOD_IP), &[("ARCVERIFY", "F")]);
    assert_eq!(r.result("arc"), "pass", "{}", r.0);
    assert_eq!(r.methods(), ["dkim", "arc"]);
    // The list changed the body after sealing: the newest ARC-Message-Signature fails.
    let tampered = [&sealed[..], b"-- \nfooter added later\n"].concat();
    let r = w.queued(&tampered, "list-bounces@lists.example.net", Some(GOOD_IP), &[("ARCVERIFY", "")]);
    assert_eq!(r.result("arc"), "fail", "{}", r.0);
    let text = "ARC chain does not validate (#5.7.29)";
    w.refused(&tampered, "list-bounces@lists.example.net", Some(GOOD_IP), &[("ARCVERIFY", "F")], 31, text);
    let text = "ARC chain does not validate (#4.7.29)";
    w.refused(&tampered, "list-bounces@lists.example.net", Some(GOOD_IP), &[("ARCVERIFY", "f")], 71, text);
    w.queued(&tampered, "list-bounces@lists.example.net", Some(GOOD_IP), &[("ARCVERIFY", "T")]);
}

/// docs/dmarc.md's forwarding host: it checks SPF, DKIM and DMARC, seals with `ARCSIGN` as
/// `ARCDOMAIN`, and dkimpy's validator accepts the chain; a second host extends it (i=2).
#[test]
fn forwarding_host_seals_and_dkimpy_validates() {
    let w = World::new();
    let keys = tempfile::tempdir().unwrap();
    w.key.copy_to(&keys.path().join("fwd.example").join("arc"));
    w.key.copy_to(&keys.path().join("relay2.example").join("arc2"));
    let template = format!("{}/%/arc", keys.path().display());
    let signed = w.signed("A <a@example.com>", "example.com");
    let vars = [("SPFVERIFY", ""), ("DMARCVERIFY", ""), ("ARCSIGN", template.as_str()), ("ARCDOMAIN", "fwd.example")];
    let (out, rec) = w.run(&signed, "a@example.com", Some(GOOD_IP), &vars);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let hop1 = rec.unwrap().msg;
    let text = String::from_utf8_lossy(&hop1).into_owned();
    let seal = &headers_named(&hop1, "ARC-Seal");
    assert_eq!(seal.len(), 1, "{text}");
    assert!(seal[0].contains("i=1") && seal[0].contains("cv=none") && seal[0].contains("d=fwd.example"), "{text}");
    // RFC 8617 §4.1.2: the message signature covers the DKIM-Signature already there.
    let ams = &headers_named(&hop1, "ARC-Message-Signature")[0];
    assert!(ams.to_ascii_lowercase().contains("dkim-signature"), "{ams}");
    let aar = &headers_named(&hop1, "ARC-Authentication-Results")[0];
    for word in ["i=1", AUTHSERV, "spf=pass", "dkim=pass", "dmarc=pass"] {
        assert!(aar.contains(word), "{word} not in {aar}");
    }
    let v = dkimpy_arc_verify(&hop1, &w.dns);
    assert!(v.ok, "dkimpy: {} {}\n{text}", v.report, v.stderr);
    // The next hop validates our seal and adds instance 2 with cv=pass.
    let template2 = format!("{}/%/arc2", keys.path().display());
    let vars2 = [("ARCVERIFY", "F"), ("ARCSIGN", template2.as_str()), ("ARCDOMAIN", "relay2.example")];
    let (out, rec) = w.run(&hop1, "a@example.com", Some(GOOD_IP), &vars2);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let hop2 = rec.unwrap().msg;
    let seals = headers_named(&hop2, "ARC-Seal");
    assert!(seals.iter().any(|s| s.contains("i=2") && s.contains("cv=pass")), "{seals:?}");
    let v = dkimpy_arc_verify(&hop2, &w.dns);
    assert!(v.ok, "dkimpy: {} {}\n{}", v.report, v.stderr, String::from_utf8_lossy(&hop2));
    // A `%` template without a key for the domain: not sealed, queued, a line in the log.
    let (out, rec) =
        w.run(&signed, "a@example.com", Some(GOOD_IP), &[("ARCSIGN", &template), ("ARCDOMAIN", "nokey.example")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(headers_named(&rec.unwrap().msg, "ARC-Seal").is_empty());
    assert!(out.stderr.contains("not sealed"), "{}", out.stderr);
}

/// Without ARCDOMAIN the sealing domain of a message from a client that is not a relay client
/// is ours (the host name in control/me), never one its sender picks with From:, Sender: or
/// Return-Path (that chose which hosted domain's key sealed); our own users' (relay clients')
/// messages are sealed for the domain DKIM would sign for.
#[test]
fn the_sealing_domain_of_a_message_from_outside_is_ours_not_the_senders() {
    let w = World::new();
    let keys = tempfile::tempdir().unwrap();
    w.key.copy_to(&keys.path().join("fwd.example").join("arc"));
    w.key.copy_to(&keys.path().join("hosted.example").join("arc"));
    let ctl = tempfile::tempdir().unwrap();
    std::fs::write(ctl.path().join("me"), "FWD.example.\n").unwrap();
    let template = format!("{}/%/arc", keys.path().display());
    let ctl_s = ctl.path().display().to_string();
    let vars = [("ARCSIGN", template.as_str()), ("CONTROLDIR", ctl_s.as_str())];
    let msg = World::msg("Boss <boss@hosted.example>");
    let withsender = [b"Sender: boss@hosted.example\n".as_slice(), &msg].concat();
    for m in [&msg, &withsender] {
        let (out, rec) = w.run(m, "boss@hosted.example", Some(GOOD_IP), &vars);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let q = rec.expect("queued").msg;
        let seal = headers_named(&q, "ARC-Seal");
        assert_eq!(seal.len(), 1, "{}", String::from_utf8_lossy(&q));
        assert!(seal[0].contains("d=fwd.example"), "sealed for the sender's choice: {}", seal[0]);
        let v = dkimpy_arc_verify(&q, &w.dns);
        assert!(v.ok, "dkimpy: {} {}", v.report, v.stderr);
    }
    // A relay client: the domain DKIM would sign for.
    let mut relay = vars.to_vec();
    relay.push(("RELAYCLIENT", ""));
    let (out, rec) = w.run(&msg, "boss@hosted.example", Some(GOOD_IP), &relay);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let seal = headers_named(&rec.expect("queued").msg, "ARC-Seal");
    assert!(seal.len() == 1 && seal[0].contains("d=hosted.example"), "{seal:?}");
    // No ARCDOMAIN and no control/me: a clear error, not a seal for the sender's domain.
    std::fs::remove_file(ctl.path().join("me")).unwrap();
    let (out, rec) = w.run(&msg, "boss@hosted.example", Some(GOOD_IP), &vars);
    assert_eq!(out.code, Some(55), "{}", out.stderr);
    assert!(rec.is_none() && out.stderr.contains("no sealing domain"), "{}", out.stderr);
}

/// A DNS server that never answers costs the two time budgets of a message (2 × DNSTIMEOUT for
/// the questions the sender cannot choose, 2 × for the others), shared by every check: SPF,
/// DKIM, DMARC (two questions) and ARC would take 5 × DNSTIMEOUT with a budget each. Every
/// check says temperror, and nothing is refused permanently.
#[test]
fn dead_dns_costs_one_budget_for_every_check() {
    let w = World::new();
    let msg = list_sealed(&w);
    let dead = Dns::start(&[
        ("example.com", "@TIMEOUT"),
        ("sel._domainkey.example.com", "@TIMEOUT"),
        ("_dmarc.example.com", "@TIMEOUT"),
        ("lists._domainkey.lists.example.net", "@TIMEOUT"),
    ]);
    let addr = dead.addr();
    let env = [
        ("AUTHSERV_ID", AUTHSERV),
        ("DNSCACHEIP", addr.as_str()),
        ("DNSTIMEOUT", "1"),
        ("CUSTOM_ERRORS", "none"),
        ("TCPREMOTEIP", GOOD_IP),
        ("DKIMVERIFY", ""),
        ("SPFVERIFY", "FT"),
        ("DMARCVERIFY", "RT"),
        ("ARCVERIFY", "FT"),
    ];
    let t = std::time::Instant::now();
    let (out, rec) = run_into_queue(&msg, &env, "a@example.com", RCPT);
    let took = t.elapsed();
    assert_eq!(out.code, Some(71), "temporary, never permanent: {}", out.stderr);
    assert!(rec.is_none());
    assert!(took < std::time::Duration::from_millis(5500), "took {took:?}: the two budgets are 4 s");
    // Reported only: every check temperror, the message queued.
    let env: Vec<(&str, &str)> =
        env.iter().map(|&(k, v)| if k.ends_with("VERIFY") { (k, "") } else { (k, v) }).collect();
    let (out, rec) = run_into_queue(&msg, &env, "a@example.com", RCPT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = Results::of(&rec.unwrap().msg);
    for m in ["spf", "dkim", "dmarc", "arc"] {
        assert_eq!(r.result(m), "temperror", "{m}: {}", r.0);
    }
}

/// Signatures and seals made in a run cover the message as it is queued: a field that hides a
/// forged status after a bare CR is removed, so neither the ARC-Message-Signature (verify mode)
/// nor our DKIM signature (sign mode with a seal, which removes forged fields too) may sign it.
/// Both did, and the next hop found them broken (dkimpy: cv=fail, "signature did not verify").
#[test]
fn signatures_and_seals_cover_the_message_as_queued() {
    let w = World::new();
    let keys = tempfile::tempdir().unwrap();
    w.key.copy_to(&keys.path().join("example.com").join("sel"));
    w.key.copy_to(&keys.path().join("fwd.example").join("arc"));
    let sign = format!("{}/%/sel", keys.path().display());
    let seal = format!("{}/%/arc", keys.path().display());
    let msg = b"Subject: hi\rDKIM-Status: good\nFrom: A <a@example.com>\nTo: rcpt@example.net\n\nHello.\n";
    let sealing = [("ARCSIGN", seal.as_str()), ("ARCDOMAIN", "fwd.example")];
    let signing = [sealing[0], sealing[1], ("RELAYCLIENT", ""), ("DKIMSIGN", sign.as_str())];
    for vars in [&sealing[..], &signing[..]] {
        let (out, rec) = w.run(msg, "a@example.com", Some(GOOD_IP), vars);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let queued = rec.unwrap().msg;
        let text = String::from_utf8_lossy(&queued).into_owned();
        assert!(headers_named(&queued, "Subject").is_empty(), "the forged field is removed: {text}");
        let v = dkimpy_arc_verify(&queued, &w.dns);
        assert!(v.ok, "dkimpy arc: {} {}\n{text}", v.report, v.stderr);
        if vars.len() == signing.len() {
            let v = dkimpy_verify(&queued, &w.dns);
            assert!(v.ok, "dkimpy: {} {}\n{text}", v.report, v.stderr);
        }
    }
}
