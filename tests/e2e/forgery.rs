//! A forged verification result never reaches the queue, whichever verifier runs.

use crate::common::*;

const FORGED: &[u8] = b"DKIM-Status: good\nDomainKey-Status: good\nX-DKIM-ADSP: all;\nX-DKIM-SSP: all;\nAuthentication-Results: mx.example.net; dkim=pass header.d=bank.example\nAuthentication-Results: other.example; dkim=pass\nFrom: ceo@bank.example\nSubject: pay\n\nNow.\n";

fn run(vars: &[(&str, &str)]) -> Vec<u8> {
    let q = Queue::new();
    let mut env = q.env();
    env.push(("DKIMQUEUE".into(), q.program().display().to_string()));
    env.push(("AUTHSERV_ID".into(), "mx.example.net".into()));
    env.push(("SELECTOR_DATA".into(), "v=DKIM1; k=rsa; p=".into()));
    env.extend(vars.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    let out = run_qmail_dkim(FORGED, &envelope("ceo@bank.example", &["a@b"]), &env_refs(&env), &[]);
    assert_no_panic(&out);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    q.records().pop().expect("queued").msg
}

#[test]
fn forged_results_are_removed_by_either_verifier() {
    for vars in [&[("DKIMVERIFY", "")][..], &[("DKVERIFY", "")][..], &[("DKIMVERIFY", ""), ("DKVERIFY", "")][..]] {
        let msg = run(vars);
        let text = String::from_utf8_lossy(&msg);
        for forged in [
            "DKIM-Status: good",
            "DomainKey-Status: good",
            "X-DKIM-ADSP: all;",
            "X-DKIM-SSP: all;",
            "header.d=bank.example",
        ] {
            assert!(!text.contains(forged), "{vars:?}: {forged} reached the queue:\n{text}");
        }
        // A result of another server stays, and the rest of the message is unchanged.
        assert!(text.contains(
            "Authentication-Results: other.example; dkim=pass\nFrom: ceo@bank.example\nSubject: pay\n\nNow.\n"
        ));
    }
}

/// Runs qmail-dkim as a verifier with the recording queue and a loopback DNS server that
/// knows no keys; the authserv-id is `mx.example.net`.
fn verify_with(msg: &[u8], vars: &[(&str, &str)]) -> (Output, Option<Recorded>) {
    let dns = Dns::start(&[]);
    let q = Queue::new();
    let mut env = q.env();
    env.push(("DKIMQUEUE".into(), q.program().display().to_string()));
    env.push(("AUTHSERV_ID".into(), "mx.example.net".into()));
    env.push(("DNSCACHEIP".into(), dns.addr()));
    env.extend(vars.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    let out = run_qmail_dkim(msg, &envelope("ceo@bank.example", &["a@b"]), &env_refs(&env), &[]);
    assert_no_panic(&out);
    let mut r = q.records();
    assert!(r.len() <= 1, "queued more than once");
    (out, r.pop())
}

const VERIFIERS: [&[(&str, &str)]; 3] =
    [&[("DKIMVERIFY", "")], &[("DKVERIFY", "")], &[("DKIMVERIFY", ""), ("DKVERIFY", "")]];

/// Every verifier removes the forged `header.d=bank.example` results and status headers of
/// `msg`; the message ends with `kept` unchanged.
#[track_caller]
fn assert_forgeries_removed(msg: &[u8], kept: &str) {
    for vars in VERIFIERS {
        let (out, rec) = verify_with(msg, vars);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let text = rec.expect("queued").msg_text();
        assert!(
            !text.contains("header.d=bank.example") && !text.contains("\rDKIM-Status"),
            "{vars:?}: forgery queued:\n{text}"
        );
        assert!(text.ends_with(kept), "{vars:?}:\n{text}");
    }
}

/// RFC 5322 §3.2.2: `(\))` is one comment, so this claims our authserv-id.
#[test]
fn ar_comment_with_quoted_pair_is_removed() {
    let msg = b"Authentication-Results: (\\)) mx.example.net; dkim=pass header.d=bank.example\nAuthentication-Results: (a \\( b) mx.example.net; domainkeys=pass header.d=bank.example\nFrom: ceo@bank.example\n\nNow.\n";
    assert_forgeries_removed(msg, "\nFrom: ceo@bank.example\n\nNow.\n");
}

/// Mail readers that end a line at a bare CR would show the part after it as a field.
#[test]
fn bare_cr_hides_forged_field() {
    let msg = b"Subject: hi\rAuthentication-Results: mx.example.net; dkim=pass header.d=bank.example\nX-Note: a\rDKIM-Status: good\nSubject: kept\r\nX-Kept: stray\rCR\nFrom: ceo@bank.example\n\nNow.\n";
    assert_forgeries_removed(msg, "\nSubject: kept\r\nX-Kept: stray\rCR\nFrom: ceo@bank.example\n\nNow.\n");
}

/// DomainKeys `d=` comes from the message: one that is no domain is left out, it cannot add a
/// `dkim=pass`. With both verifiers there is one Authentication-Results from us, dkim first.
#[test]
fn domainkeys_d_cannot_add_a_method() {
    for d in ["paypal.com,dkim=pass", "x\"(y"] {
        let msg = format!("DomainKey-Signature: a=rsa-sha1; q=dns; c=nofws; s=sel; d={d}; b=AAAA;\nFrom: joe@{d}\nSubject: s\n\nbody\n");
        let (out, rec) = verify_with(msg.as_bytes(), &[("DKIMVERIFY", ""), ("DKVERIFY", "")]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let text = rec.expect("queued").msg_text();
        let ars = headers_named(text.as_bytes(), "Authentication-Results");
        assert_eq!(ars.len(), 1, "{ars:?}");
        // Unfolded: where the field breaks its lines is not the point here.
        let ar = ars[0].split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(ar.starts_with("Authentication-Results: mx.example.net; dkim=none; domainkeys="), "{ar}");
        assert!(!ar.contains("header.d="), "{ar}");
        assert_eq!(ar.matches("dkim=").count(), 1, "{ar}");
    }
}

/// A first line that starts with white space would continue the last field we add.
#[test]
fn leading_whitespace_would_continue_our_status_header() {
    let msg = b" (forged) continued\nFrom: ceo@bank.example\n\nNow.\n";
    for (vars, msg) in
        VERIFIERS.iter().flat_map(|v| [(v, &msg[..]), (v, b"\r\t(forged)\nFrom: ceo@bank.example\n\nNow.\n")])
    {
        let (out, rec) = verify_with(msg, vars);
        // The default convention on a caller without descriptor 6 or ERROR_FD: 31, a log line.
        assert_eq!(out.code, Some(31), "{vars:?}: {}", out.stderr);
        assert!(rec.is_none(), "{vars:?}: queued");
        assert!(out.stderr.contains("malformed message") && out.stderr.contains("(#5.6.0)"), "{}", out.stderr);
    }
    // Nothing added (a relay client not verified): passed on byte for byte.
    let (out, rec) = verify_with(msg, &[("DKIMVERIFY", ""), ("RELAYCLIENT", ""), ("RELAYCLIENT_NODKIMVERIFY", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(rec.expect("queued").msg, msg);
}
