//! The queue program's contract, through the real binary: exit 0 counts only when the queue
//! program exited 0 having read the whole message and the envelope up to its final NUL (else
//! 81: the client retries); the NUL is written only once the whole message has been read; DEATH
//! ends the run with 52 (killing the program's process group) only until the queue program has
//! read that NUL, after which it may have queued the message and is waited for; a queue program
//! that is qmail-dkim itself is refused.

use crate::common::*;
use std::path::PathBuf;
use std::time::Duration;

const SENDER: &str = "joe@example.com";
const MSG: &[u8] = b"From: joe@example.com\nTo: x@example.org\nSubject: contract\n\nbody\n";

/// Verifying an unsigned message (no DNS lookup) into `prog`, plus `extra`.
fn env_for(q: &Queue, prog: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = q.env();
    v.push(("DKIMQUEUE".into(), prog.into()));
    v.push(("RUST_BACKTRACE".into(), "1".into()));
    v.push(("DKIMVERIFY".into(), String::new()));
    v.push(("DNSCACHEIP".into(), format!("127.0.0.1:{}", closed_udp_port())));
    v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    v
}

fn partialqueue() -> String {
    support_dir().join("partialqueue.py").display().to_string()
}

fn recqueue() -> String {
    let p: PathBuf = recqueue_path();
    p.display().to_string()
}

fn run(envl: &[u8], env: &[(String, String)]) -> Output {
    let out = Run::new(MSG, envl).env_owned(env).timeout(Duration::from_secs(20)).run();
    assert_no_panic(&out);
    assert!(!out.timed_out, "hung; stderr: {}", out.stderr);
    assert!(!out.lingering, "something we started still holds fd 2");
    out
}

/// 10,000 recipients: far more than a pipe buffer holds.
fn many_rcpts() -> Vec<u8> {
    let rcpts: Vec<String> = (0..10_000).map(|i| format!("user{i:05}@example.org")).collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let e = envelope(SENDER, &refs);
    assert!(e.len() > 200_000);
    e
}

/// A queue program that exits 0 having read `msg` bytes of the message and `env` of the envelope.
fn partial(envl: &[u8], msg: &str, env: usize) -> Output {
    let q = Queue::new();
    run(envl, &env_for(&q, &partialqueue(), &[("PQ_MSG", msg), ("PQ_ENV", &env.to_string())]))
}

#[test]
fn exit_0_without_reading_a_small_message_is_81() {
    let out = partial(&envelope(SENDER, &["x@example.org"]), "0", 0);
    assert_eq!(out.code, Some(81), "{}", out.stderr);
    assert!(out.stderr.contains("without reading"), "{}", out.stderr);
}

#[test]
fn exit_0_after_part_of_the_message_is_81() {
    let envl = envelope(SENDER, &["x@example.org"]);
    let out = partial(&envl, "5", envl.len());
    assert_eq!(out.code, Some(81), "{}", out.stderr);
}

#[test]
fn exit_0_after_the_message_but_not_the_envelope_is_81() {
    let out = partial(&envelope(SENDER, &["x@example.org"]), "all", 0);
    assert_eq!(out.code, Some(81), "{}", out.stderr);
}

#[test]
fn exit_0_before_the_envelopes_final_nul_is_81() {
    let envl = envelope(SENDER, &["x@example.org", "y@example.org"]);
    let out = partial(&envl, "all", envl.len() - 1);
    assert_eq!(out.code, Some(81), "{}", out.stderr);
    // The same program reading one byte more (the NUL) has done its part.
    let out = partial(&envl, "all", envl.len());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn exit_0_having_read_everything_is_0_and_bytes_unchanged() {
    for envl in [envelope(SENDER, &["x@example.org"]), many_rcpts()] {
        let q = Queue::new();
        let out = run(&envl, &env_for(&q, &recqueue(), &[]));
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let recs = q.records();
        assert_eq!(recs.len(), 1);
        assert!(recs[0].msg.ends_with(MSG), "message changed");
        assert_eq!(recs[0].env, envl, "envelope changed");
    }
}

#[test]
fn ten_thousand_recipients_and_an_early_exit_0_give_81_without_hanging() {
    let envl = many_rcpts();
    for (msg, env) in [("all", 100), ("all", 0), ("0", 0)] {
        let out = partial(&envl, msg, env);
        assert_eq!(out.code, Some(81), "{msg} {env}: {}", out.stderr);
    }
    // An early non-zero exit is mirrored.
    let q = Queue::new();
    let out = run(&envl, &env_for(&q, &partialqueue(), &[("PQ_ENV", "100"), ("PQ_EXIT", "71")]));
    assert_eq!(out.code, Some(71), "{}", out.stderr);
}

#[test]
fn death_spares_a_queue_program_that_has_read_the_envelope() {
    let q = Queue::new();
    // DEATH leaves the program (Python) time to start and read on a loaded machine; it then
    // sleeps well past the deadline.
    let env = env_for(&q, &recqueue(), &[("DEATH", "3"), ("RECQUEUE_MODE", "late"), ("RECQUEUE_SLEEP", "6")]);
    let envl = envelope(SENDER, &["x@example.org"]);
    let out = run(&envl, &env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let inv = q.invocations();
    assert_eq!(inv.len(), 1, "the queue program was killed before it finished");
    assert_eq!(inv[0].get("exit").and_then(|e| e.as_i64()), Some(0));
    assert_eq!(q.records().len(), 1);
    assert_eq!(q.records()[0].env, envl);
}

#[test]
fn death_kills_a_queue_program_that_has_not_read_the_envelope() {
    // Small: everything fits the pipes; large: our envelope write is blocked when DEATH runs out.
    for envl in [envelope(SENDER, &["x@example.org"]), many_rcpts()] {
        let q = Queue::new();
        let env = env_for(&q, &recqueue(), &[("DEATH", "1"), ("RECQUEUE_MODE", "hang"), ("RECQUEUE_SLEEP", "20")]);
        // `run` checks that nothing holds fd 2 afterwards: the sleeping program is gone.
        let out = run(&envl, &env);
        assert_eq!(out.code, Some(52), "{}", out.stderr);
        assert!(out.stderr.contains("DEATH"), "{}", out.stderr);
        assert!(q.invocations().is_empty(), "the queue program finished instead of being killed");
    }
}

#[test]
fn death_while_the_client_still_writes_the_message_is_52() {
    let q = Queue::new();
    let env = env_for(&q, &recqueue(), &[("DEATH", "1")]);
    let bin = qmail_dkim_bin().display().to_string();
    // The client sends the header block, then stalls for longer than DEATH.
    let out = Run::new(b"", &envelope(SENDER, &["x@example.org"]))
        .program("/bin/sh")
        .args(&["-c", &format!("(printf 'From: joe@example.com\\n\\n'; sleep 4) | exec {bin}")])
        .env_owned(&env)
        .timeout(Duration::from_secs(20))
        .run();
    assert_eq!(out.code, Some(52), "{}", out.stderr);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("DEATH"), "{}", out.stderr);
    assert!(q.invocations().is_empty(), "queued although the run timed out");
}

/// A queue program that is a wrapper which does not `exec` (a shell script that runs the real
/// one and then exits with its code): DEATH stops and kills its whole process group, so the
/// wrapper's child does not read the envelope later and queue a message the client resends.
#[test]
fn death_kills_the_child_of_a_queue_wrapper_that_does_not_exec() {
    let q = Queue::new();
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("wrapper");
    std::fs::write(&wrapper, format!("#!/bin/sh\n'{}'\nexit $?\n", recqueue())).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The child sleeps past DEATH before it reads; `run` returns once nothing holds fd 2.
    let env = env_for(
        &q,
        &wrapper.display().to_string(),
        &[("DEATH", "1"), ("RECQUEUE_MODE", "hang"), ("RECQUEUE_SLEEP", "3")],
    );
    let out = run(&envelope(SENDER, &["x@example.org"]), &env);
    assert_eq!(out.code, Some(52), "{}", out.stderr);
    assert!(q.invocations().is_empty(), "the wrapper's child lived on and queued: {:?}", q.invocations());
}

/// A message larger than any pipe buffer: 4 MiB.
fn big_message() -> Vec<u8> {
    let mut m = MSG.to_vec();
    let line = b"0123456789012345678901234567890123456789012345678901234567890123456789\n";
    while m.len() < 4 << 20 {
        m.extend_from_slice(line);
    }
    m
}

/// A queue program that reads 1,000 bytes of the message, closes fd 0 and reads the envelope
/// to its end: seen at once (it used to block us until DEATH, a day, when the message did not
/// fit the pipe), it never gets the envelope's final NUL (so it cannot queue the cut message),
/// and the run fails temporarily (81).
#[test]
fn a_queue_program_that_closes_fd_0_early_never_gets_the_final_nul() {
    // No DEATH: the default (a day) must not matter.
    stopped_reader_never_gets_the_final_nul(&[("PQ_MSG", "1000"), ("PQ_CLOSE", "1"), ("PQ_ENV", "all")]);
}

/// A program that reads part of the message and then the envelope without closing fd 0 is
/// seen at once too, and gets no final NUL.
#[test]
fn a_queue_program_that_reads_the_envelope_before_the_whole_message_never_gets_the_final_nul() {
    stopped_reader_never_gets_the_final_nul(&[("PQ_MSG", "1000"), ("PQ_ENV", "all")]);
}

/// Runs the partial queue program with `vars` on a small and a 4 MiB message: 81 at once, and
/// the envelope it read lacks the final NUL.
fn stopped_reader_never_gets_the_final_nul(vars: &[(&str, &str)]) {
    let envl = envelope(SENDER, &["x@example.org"]);
    for msg in [MSG.repeat(200), big_message()] {
        let q = Queue::new();
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report");
        let report_s = report.display().to_string();
        let mut vars = vars.to_vec();
        vars.push(("PQ_REPORT", &report_s));
        let env = env_for(&q, &partialqueue(), &vars);
        let out = Run::new(&msg, &envl).env_owned(&env).timeout(Duration::from_secs(60)).run();
        assert_no_panic(&out);
        assert!(!out.timed_out, "blocked on a queue program that stopped reading ({} bytes)", msg.len());
        assert_eq!(out.code, Some(81), "{}", out.stderr);
        let got = std::fs::read_to_string(&report).expect("the queue program's report");
        let env_read: usize = got.split(' ').nth(1).and_then(|n| n.parse().ok()).expect("report");
        assert!(env_read < envl.len(), "the queue program got the final NUL: {got}");
    }
}

/// A queue program that is qmail-dkim itself (by path, through PATH, or as the default
/// qmail-queue name a postmaster replaced) would start qmail-dkim again and again until fork
/// fails: refused at once with 81 and a line that says so.
#[test]
fn a_queue_program_that_is_qmail_dkim_itself_is_refused() {
    let q = Queue::new();
    let bin = qmail_dkim_bin();
    let dir = bin.parent().unwrap().display().to_string();
    let link_dir = tempfile::tempdir().unwrap();
    let link = link_dir.path().join("qmail-queue");
    std::os::unix::fs::symlink(&bin, &link).unwrap();
    let path = format!("{dir}:/usr/bin:/bin");
    for (var, prog) in [
        ("QUEUEPROG", bin.display().to_string()),
        ("QUEUEPROG", "qmail-dkim".to_string()),
        ("QUEUEPROG", link.display().to_string()),
    ] {
        let mut env: Vec<(String, String)> = env_for(&q, "", &[("DEATH", "1"), ("PATH", &path)]);
        env.retain(|(k, _)| k != "DKIMQUEUE");
        env.push((var.into(), prog.clone()));
        let out = run(&envelope(SENDER, &["x@example.org"]), &env);
        assert_eq!(out.code, Some(81), "{prog}: {}", out.stderr);
        assert!(out.stderr.contains("is qmail-dkim itself"), "{prog}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{prog}: {}", out.stderr);
        assert!(q.invocations().is_empty());
    }
}
