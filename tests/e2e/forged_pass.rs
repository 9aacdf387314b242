//! Forged passes through the real binary: a sender who drains the DNS time budget before DMARC
//! asks, a From field hidden behind a bare CR, an Authentication-Results field a lenient reader
//! takes as ours, a property value that reads as another method.

use crate::checks::{Results, AUTHSERV};
use crate::common::*;

const BAD_IP: &str = "198.51.100.9";
const RCPT: &str = "rcpt@example.net";

fn msg(from: &str) -> Vec<u8> {
    format!("From: {from}\nTo: {RCPT}\nSubject: invoice\nDate: Sun, 29 Nov 2026 12:00:00 +0000\nMessage-ID: <fp@test.example>\n\nPay now.\n")
        .into_bytes()
}

/// Runs qmail-dkim verifying, with SPF and DMARC, from `BAD_IP` (which no SPF record allows).
fn run(dns: &Dns, m: &[u8], sender: &str, extra: &[(&str, &str)]) -> (Output, Option<Recorded>) {
    let addr = dns.addr();
    let mut env: Vec<(&str, &str)> = vec![
        ("AUTHSERV_ID", AUTHSERV),
        ("DNSCACHEIP", &addr),
        ("DNSTIMEOUT", "1"),
        ("CUSTOM_ERRORS", "none"),
        ("TCPREMOTEIP", BAD_IP),
        ("DKIMVERIFY", ""),
    ];
    env.extend_from_slice(extra);
    let (out, rec) = run_into_queue(m, &env, sender, RCPT);
    assert_no_panic(&out);
    (out, rec)
}

/// Two signatures with correct body hashes whose keys live in a zone that never answers use up
/// the time the sender's questions have; the From domain's policy and the key of the signature
/// in line with it are still asked, in time of their own.
#[test]
fn signatures_in_a_dead_zone_do_not_starve_dmarc() {
    let key = TestKey::rsa(2048);
    let rec = key.dns_record();
    let dns = Dns::start(&[
        ("_dmarc.victim.example", "v=DMARC1; p=reject"),
        ("victim.example", "v=spf1 ip4:192.0.2.0/24 -all"),
        ("sel._domainkey.victim.example", &rec),
        ("s1._domainkey.dead.example", "@TIMEOUT"),
        ("s2._domainkey.dead.example", "@TIMEOUT"),
    ]);
    let spoof = msg("CEO <ceo@victim.example>");
    let dead = |m: &[u8]| {
        let m = dkimpy_sign(m, &key.path, "s1", "dead.example", &[]);
        dkimpy_sign(&m, &key.path, "s2", "dead.example", &[])
    };
    // The spoof: SPF fails, no signature of victim.example. p=reject refuses it.
    let (out, q) = run(&dns, &dead(&spoof), "ceo@victim.example", &[("DMARCVERIFY", "R")]);
    assert!(q.is_none(), "the spoof was queued: {}", out.stderr);
    assert_eq!(out.code, Some(31), "{}", out.stderr);
    assert!(out.stderr.contains("DMARC policy of victim.example is reject"), "{}", out.stderr);
    // Signed by victim.example below the two: that key is asked too, and DMARC passes.
    let real = dead(&dkimpy_sign(&spoof, &key.path, "sel", "victim.example", &[]));
    let (out, q) = run(&dns, &real, "ceo@victim.example", &[("DMARCVERIFY", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = Results::of(&q.expect("queued").msg);
    let dkim: Vec<(String, String)> = r
        .all()
        .iter()
        .filter(|m| m["method"] == "dkim")
        .map(|m| (m["result"].as_str().unwrap_or("").into(), m["props"]["header.d"].as_str().unwrap_or("").into()))
        .collect();
    assert!(dkim.contains(&("pass".into(), "victim.example".into())), "{}", r.0);
    assert_eq!(r.result("dmarc"), "pass", "{}", r.0);
    assert_eq!(r.result("spf"), "fail", "{}", r.0);
}

/// `Subject: invoice<CR>From: CEO <ceo@victim.example>` above the real From: readers that end a
/// line at a bare CR show the CEO. DMARC sees both From fields (two domains: permerror, not
/// the sender's own pass), and so does the signing domain (no single author: our own domain).
#[test]
fn from_after_a_bare_cr_is_a_from_field() {
    let dns = Dns::start(&[
        ("_dmarc.victim.example", "v=DMARC1; p=reject"),
        ("_dmarc.attacker.example", "v=DMARC1; p=none"),
        ("attacker.example", "v=spf1 ip4:198.51.100.0/24 -all"),
    ]);
    let m = b"Subject: invoice\rFrom: CEO <ceo@victim.example>\nFrom: a@attacker.example\nTo: rcpt@example.net\n\nPay now.\n";
    let (out, q) = run(&dns, m, "a@attacker.example", &[("DMARCVERIFY", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = Results::of(&q.expect("queued").msg);
    assert_eq!(r.result("spf"), "pass", "{}", r.0);
    assert_eq!(r.result("dmarc"), "permerror", "{}", r.0);
    let (out, q) = run(&dns, m, "a@attacker.example", &[("DMARCVERIFY", "P")]);
    assert_eq!(out.code, Some(31), "{}", out.stderr);
    assert!(q.is_none());

    // Signing: the author is not one domain, so the key of neither From domain signs.
    let k = TestKey::rsa(2048);
    let ctl = tempfile::tempdir().unwrap();
    std::fs::write(ctl.path().join("me"), "mx.test.example\n").unwrap();
    for d in ["attacker.example", "victim.example", "mx.test.example"] {
        k.copy_to(&ctl.path().join(format!("domainkeys/{d}/sel")));
    }
    let c = ctl.path().display().to_string();
    let (out, q) =
        run_into_queue(m, &[("CONTROLDIR", &c), ("DKIMSIGN", "domainkeys/%/sel")], "a@attacker.example", RCPT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t = q.expect("queued").msg_text();
    assert!(t.contains("d=mx.test.example;"), "{t}");
}

/// RFC 5322 reads `(\\))` as a comment and a stray `)`, and `(a\\(b) …` as an unclosed comment;
/// readers that skip the stray `)`, or take `\(` for a quoted-pair, see our authserv-id. Both
/// fields go, whichever verifier runs; another server's field stays.
#[test]
fn ar_that_a_lenient_reader_takes_as_ours_is_removed() {
    let dns = Dns::start(&[]);
    let m = format!(
        "Authentication-Results: (\\\\)) {AUTHSERV}; dkim=pass header.d=bank.example\n\
         Authentication-Results: (a\\\\(b) {AUTHSERV}; dkim=pass header.d=bank.example\n\
         Authentication-Results: (a) x (b) {AUTHSERV}; dkim=pass header.d=bank.example\n\
         Authentication-Results: other.example; dkim=pass\nFrom: ceo@bank.example\n\nNow.\n"
    );
    for vars in [&[][..], &[("DKVERIFY", "")][..]] {
        let (out, q) = run(&dns, m.as_bytes(), "ceo@bank.example", vars);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let t = q.expect("queued").msg_text();
        assert!(!t.contains("header.d=bank.example"), "{vars:?}: forgery queued:\n{t}");
        assert!(
            t.ends_with("\nAuthentication-Results: other.example; dkim=pass\nFrom: ceo@bank.example\n\nNow.\n"),
            "{t}"
        );
    }
}

/// `d=paypal.com,dkim=pass` in a DomainKey-Signature, `i=` that is no address in a
/// DKIM-Signature: valid RFC 8601 as quoted-strings, but a naive reader of our field sees
/// `dkim=pass`. Such values are left out with their property.
#[test]
fn property_value_that_reads_as_a_method_is_left_out() {
    let dns = Dns::start(&[]);
    let m = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; i=x@paypal.com,dkim=pass; h=from:subject; bh=AAAA; b=AAAA\nDomainKey-Signature: a=rsa-sha1; q=dns; c=nofws; s=sel; d=paypal.com,dkim=pass; b=AAAA;\nFrom: joe@paypal.com,dkim=pass\nSubject: s\n\nbody\n";
    let (out, q) = run(&dns, m, "joe@example.com", &[("DKVERIFY", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t = q.expect("queued").msg_text();
    let ar = headers_named(t.as_bytes(), "Authentication-Results");
    assert_eq!(ar.len(), 1, "{ar:?}");
    let ar = ar[0].split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!ar.contains("dkim=pass") && !ar.contains("header.d=paypal") && !ar.contains("header.i="), "{ar}");
    assert_eq!(ar.matches("dkim=").count(), 1, "{ar}");
    assert!(ar.contains("header.d=example.com"), "{ar}");
}
