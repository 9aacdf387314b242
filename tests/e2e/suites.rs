//! Other projects' test suites through the qmail-dkim binary (tests/support/suites.py): the
//! OpenSPF RFC 7208 suite and ValiMail's ARC validation suite, read where they are kept
//! (`../shared/suites` beside the checkout, never copied), each case's zone served by its own
//! loopback DNS server, the message handed to the recording queue stand-in. Every case agrees,
//! or is skipped with the RFC section that says the suite is outdated there (the list and the
//! reasons are in suites.py, printed by every run).

use crate::common::*;

fn run_suite(which: &str) {
    let dir = repo_root().join("../shared/suites");
    assert!(dir.is_dir(), "no suites at {} (the team's shared material beside the checkout)", dir.display());
    let out = std::process::Command::new(support_dir().join("suites.py"))
        .arg(which)
        .arg("--bin")
        .arg(qmail_dkim_bin())
        .args(["--jobs", "2"])
        .output()
        .expect("cannot run tests/support/suites.py (run .ci/install-test-deps)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "needs ../shared/suites beside the checkout (not part of the repository); .ci/run runs it when it is there"]
fn openspf_rfc7208_suite_agrees() {
    run_suite("spf");
}

#[test]
#[ignore = "needs ../shared/suites beside the checkout (not part of the repository); .ci/run runs it when it is there"]
fn valimail_arc_suite_agrees() {
    run_suite("arc");
}
