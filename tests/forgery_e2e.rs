//! A forged verification result never reaches the queue, whichever verifier runs.

mod common;
use common::*;

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
        for forged in ["DKIM-Status: good", "DomainKey-Status: good", "X-DKIM-ADSP: all;", "X-DKIM-SSP: all;", "header.d=bank.example"] {
            assert!(!text.contains(forged), "{vars:?}: {forged} reached the queue:\n{text}");
        }
        // A result of another server stays, and the rest of the message is unchanged.
        assert!(text.contains("Authentication-Results: other.example; dkim=pass\nFrom: ceo@bank.example\nSubject: pay\n\nNow.\n"));
    }
}
