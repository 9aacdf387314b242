//! DMARC aggregate reports end to end (docs/dmarc-reports.md): mail through qmail-dkim with
//! `DMARCREPORTS` and the loopback DNS, `dkim dmarc import` into a real SQLite file or a real
//! PostgreSQL server started here, `dkim dmarc report`; the XML checked by `xmllint --schema`
//! against RFC 9990's schema and read back by mail-auth 0.13.3's report parser; `--send`
//! through a recording stand-in for qmail-inject.

use crate::common::*;
use mail_auth::report::Report;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tempfile::TempDir;

const RCPT: &str = "rcpt@mx.test.example";
const SPF_OK: &str = "v=spf1 ip4:192.0.2.0/24 -all";

struct World {
    dns: Dns,
    key: TestKey,
    dir: TempDir,
}

impl World {
    fn new() -> World {
        let key = TestKey::rsa(2048);
        let rec = key.dns_record();
        let z: Vec<(&str, &str)> = vec![
            ("sel._domainkey.example.com", &rec),
            ("example.com", SPF_OK),
            ("_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:dmarc@example.com,mailto:agg@thirdparty.example,mailto:agg@unauth.example"),
            ("example.com._report._dmarc.thirdparty.example", "v=DMARC1"),
            ("other.example", SPF_OK),
            ("_dmarc.other.example", "v=DMARC1; p=none; np=reject; t=y; adkim=s; rua=mailto:rua@other.example!10m"),
            ("norua.example", SPF_OK),
            ("_dmarc.norua.example", "v=DMARC1; p=reject"),
        ];
        World { dns: Dns::start(&z), key, dir: tempfile::tempdir().unwrap() }
    }

    /// A spool directory (`tmp`, `new`), as the postmaster makes it.
    fn spool(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        for sub in ["tmp", "new"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        d
    }

    fn msg(from: &str, subject: &str) -> Vec<u8> {
        format!("From: <{from}>\nTo: <{RCPT}>\nSubject: {subject}\nMessage-ID: <r@test.example>\n\nHello.\n")
            .into_bytes()
    }

    /// `msg` signed by dkimpy for example.com (selector `sel`).
    fn signed(&self, from: &str) -> Vec<u8> {
        dkimpy_sign(&World::msg(from, "signed"), &self.key.path, "sel", "example.com", &[])
    }

    /// qmail-dkim with DMARC (report only unless `extra` says) from client `ip`, spool `spool`.
    fn deliver(&self, msg: &[u8], sender: &str, ip: &str, spool: &Path, extra: &[(&str, &str)]) -> Output {
        let addr = self.dns.addr();
        let s = spool.display().to_string();
        let mut env: Vec<(&str, &str)> = vec![
            ("DNSCACHEIP", &addr),
            ("DNSTIMEOUT", "2"),
            ("DKIMVERIFY", ""),
            ("DMARCVERIFY", ""),
            ("CUSTOM_ERRORS", "none"),
            ("TCPREMOTEIP", ip),
            ("DMARCREPORTS", &s),
        ];
        env.extend_from_slice(extra);
        run_into_queue(msg, &env, sender, RCPT).0
    }

    fn queued(&self, msg: &[u8], sender: &str, ip: &str, spool: &Path) {
        let out = self.deliver(msg, sender, ip, spool, &[]);
        assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    }

    fn sqlite(&self) -> String {
        format!("sqlite:{}", self.dir.path().join("reports.sqlite").display())
    }
}

fn today() -> String {
    qmail_dkim::dmarc_reports::day_of(qmail_dkim::dmarc_reports::now())
}

fn spooled(spool: &Path) -> usize {
    std::fs::read_dir(spool.join("new")).unwrap().count()
}

/// `dkim ARGS` with `env` added; exit code, stdout, stderr.
fn dkim(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dkim"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run dkim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import(db: &str, spool: &Path) -> String {
    let (code, out, err) = dkim(&["dmarc", "import", "--db", db, &spool.display().to_string()], &[]);
    assert_eq!(code, 0, "import: {out}{err}");
    out
}

/// `dkim dmarc report --out` into a fresh directory: (file name, XML) of each report.
fn reports(db: &str, day: &str) -> Vec<(String, Vec<u8>)> {
    let out = tempfile::tempdir().unwrap();
    let (code, so, se) = dkim(
        &[
            "dmarc",
            "report",
            "--db",
            db,
            "--org",
            "Test & Co",
            "--from",
            "dmarc-reports@mx.test.example",
            "--day",
            day,
            "--out",
            &out.path().display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "report: {so}{se}");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mut xml = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(e.path()).unwrap()).read_to_end(&mut xml).unwrap();
            (e.file_name().into_string().unwrap(), xml)
        })
        .collect();
    v.sort();
    v
}

/// The report read back by an independent parser (mail-auth).
fn checked(xml: &[u8]) -> Report {
    Report::parse_xml(xml).unwrap_or_else(|e| panic!("mail-auth: {e}\n{}", String::from_utf8_lossy(xml)))
}

/// The report checked against RFC 9990's schema by xmllint. The schema is kept beside the
/// checkout (`../shared/suites/dmarc`), not in the repository: the test that needs it is ignored
/// by default and `.ci/run` runs it when the schema is there.
fn schema_valid(xml: &[u8]) {
    let xsd = repo_root().join("../shared/suites/dmarc/rfc9990.xsd");
    assert!(xsd.exists(), "{} (the shared suites beside the checkout)", xsd.display());
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", &xsd.display().to_string(), &f.path().display().to_string()])
        .output()
        .expect("xmllint (libxml2-utils; run .ci/install-test-deps)");
    assert!(
        out.status.success(),
        "xmllint: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(xml)
    );
}

#[test]
#[ignore = "needs ../shared/suites/dmarc/rfc9990.xsd beside the checkout (not part of the repository)"]
fn reports_validate_against_the_rfc9990_schema() {
    let w = World::new();
    let spool = w.spool("spool");
    for ip in ["192.0.2.1", "192.0.2.2", "198.51.100.9"] {
        w.queued(&World::msg("a@example.com", "x"), "a@example.com", ip, &spool);
    }
    w.queued(&World::msg("b@other.example", "x"), "b@other.example", "192.0.2.3", &spool);
    w.queued(&w.signed("joe@example.com"), "joe@example.com", "192.0.2.1", &spool);
    let out =
        w.deliver(&World::msg("a@example.com", "x"), "a@example.com", "198.51.100.9", &spool, &[("DMARCVERIFY", "R")]);
    assert_eq!(out.code, Some(31), "{}", out.stderr);
    let db = w.sqlite();
    import(&db, &spool);
    let r = reports(&db, &today());
    assert_eq!(r.len(), 2);
    for (_, xml) in &r {
        schema_valid(xml);
        checked(xml);
    }
}

#[test]
fn hundred_identical_messages_give_one_row_with_count_100() {
    let w = World::new();
    let spool = w.spool("spool");
    let msg = w.signed("joe@example.com");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    w.queued(&msg, "joe@example.com", "192.0.2.1", &spool);
                }
            });
        }
    });
    assert_eq!(spooled(&spool), 100);
    let db = w.sqlite();
    assert!(import(&db, &spool).starts_with("100 records imported"));
    assert_eq!(spooled(&spool), 0, "imported records are removed");
    let r = reports(&db, &today());
    assert_eq!(r.len(), 1);
    let (name, xml) = &r[0];
    let begin = qmail_dkim::dmarc_reports::parse_day(&today()).unwrap();
    assert_eq!(*name, format!("mx.test.example!example.com!{begin}!{}.xml.gz", begin + 86399));
    let rep = checked(xml);
    // (mail-auth drops the spaces around an entity reference; xmllint read it whole.)
    assert!(String::from_utf8_lossy(xml).contains("<org_name>Test &amp; Co</org_name>"));
    assert_eq!((rep.domain(), rep.date_range_begin(), rep.date_range_end()), ("example.com", begin, begin + 86399));
    assert_eq!(rep.p(), mail_auth::report::Disposition::Reject);
    assert_eq!(rep.records().len(), 1);
    let rec = &rep.records()[0];
    assert_eq!(rec.count(), 100);
    assert_eq!(rec.source_ip(), Some("192.0.2.1".parse().unwrap()));
    assert_eq!(rec.header_from(), "example.com");
    assert_eq!(rec.envelope_from(), "example.com");
    assert_eq!(rec.action_disposition(), mail_auth::report::ActionDisposition::Pass);
    assert_eq!(rec.dmarc_dkim_result(), mail_auth::report::DmarcResult::Pass);
    assert_eq!(rec.dmarc_spf_result(), mail_auth::report::DmarcResult::Pass);
    let dkim = rec.dkim_auth_result();
    assert_eq!((dkim.len(), dkim[0].domain(), dkim[0].selector()), (1, "example.com", "sel"));
    assert_eq!(dkim[0].result(), mail_auth::report::DkimResult::Pass);
    assert_eq!(rec.spf_auth_result()[0].result(), mail_auth::report::SpfResult::Pass);
}

#[test]
fn three_client_addresses_and_two_policy_domains_give_two_reports_with_the_right_rows() {
    let w = World::new();
    let spool = w.spool("spool");
    for ip in ["192.0.2.1", "192.0.2.2", "198.51.100.9"] {
        w.queued(&World::msg("a@example.com", "x"), "a@example.com", ip, &spool);
    }
    w.queued(&World::msg("b@other.example", "x"), "b@other.example", "192.0.2.3", &spool);
    w.queued(&World::msg("b@other.example", "x"), "b@other.example", "192.0.2.3", &spool);
    // No rua=: no record.
    w.queued(&World::msg("c@norua.example", "x"), "c@norua.example", "192.0.2.3", &spool);
    // A report itself: no record (no report about reports).
    w.queued(
        &World::msg("a@example.com", "Report Domain: x.example Submitter: y Report-ID: <z>"),
        "a@example.com",
        "192.0.2.1",
        &spool,
    );
    // Refused by p=reject: recorded with disposition reject.
    let out =
        w.deliver(&World::msg("a@example.com", "x"), "a@example.com", "198.51.100.9", &spool, &[("DMARCVERIFY", "R")]);
    assert_eq!(out.code, Some(31), "{}", out.stderr);
    // Refused temporarily: it will come back; no record now.
    let out =
        w.deliver(&World::msg("a@example.com", "x"), "a@example.com", "198.51.100.9", &spool, &[("DMARCVERIFY", "r")]);
    assert_eq!(out.code, Some(71), "{}", out.stderr);
    assert_eq!(spooled(&spool), 6);
    let db = w.sqlite();
    import(&db, &spool);
    let r = reports(&db, &today());
    assert_eq!(r.len(), 2, "{:?}", r.iter().map(|x| &x.0).collect::<Vec<_>>());
    let a = checked(&r[0].1);
    let b = checked(&r[1].1);
    assert_eq!((a.domain(), b.domain()), ("example.com", "other.example"));
    let mut rows: Vec<(String, u32, String)> = a
        .records()
        .iter()
        .map(|r| (r.source_ip().unwrap().to_string(), r.count(), format!("{:?}", r.action_disposition())))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("192.0.2.1".into(), 1, "Pass".into()),
            ("192.0.2.2".into(), 1, "Pass".into()),
            ("198.51.100.9".into(), 1, "None".into()),
            ("198.51.100.9".into(), 1, "Reject".into()),
        ]
    );
    // The one queued although p=reject: local policy says why.
    let queued_fail =
        a.records().iter().find(|r| r.action_disposition() == mail_auth::report::ActionDisposition::None).unwrap();
    assert_eq!(queued_fail.dmarc_spf_result(), mail_auth::report::DmarcResult::Fail);
    assert_eq!(queued_fail.policy_override_reason().len(), 1);
    assert_eq!(b.records().len(), 1);
    assert_eq!(b.records()[0].count(), 2);
    assert_eq!(b.adkim(), mail_auth::report::Alignment::Strict);
    assert_eq!((b.p(), b.np()), (mail_auth::report::Disposition::None, mail_auth::report::Disposition::Reject));
    assert!(b.testing());
    assert_eq!(b.discovery_method(), mail_auth::report::Discovery::Treewalk);
    assert!(!a.testing());
    // p=none: nothing enforced, so a pass is disposition none.
    assert_eq!(b.records()[0].action_disposition(), mail_auth::report::ActionDisposition::None);
}

/// The `disposition=` of each record in the spool.
fn dispositions(spool: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(spool.join("new"))
        .unwrap()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            text.lines().filter_map(|l| l.strip_prefix("disposition=")).map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v
}

/// A message DMARC passes (DKIM aligned) but SPF's letters refuse was recorded with DMARC's
/// own disposition, `pass`, though we rejected it: the record is written once every check has
/// finished, so it says `reject` (and why); the same message queued keeps `pass`, and one
/// refused temporarily leaves no record.
#[test]
fn dmarc_pass_refused_by_spf_letters_is_recorded_as_reject() {
    let w = World::new();
    let spool = w.spool("spool");
    let signed = w.signed("a@example.com");
    // 198.51.100.9 is outside example.com's SPF record: SPF fails, DKIM passes aligned.
    let out = w.deliver(&signed, "a@example.com", "198.51.100.9", &spool, &[("SPFVERIFY", "F")]);
    assert_eq!(out.code, Some(31), "{}", out.stderr);
    assert_eq!(dispositions(&spool), ["reject"]);
    let text =
        std::fs::read_dir(spool.join("new")).unwrap().map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap());
    let text: String = text.collect();
    assert!(text.contains("dmarc_dkim=pass\n") && text.contains("\nreason=local_policy "), "{text}");
    // p=none (t=y), SPF fails and refuses: reject too.
    let out = w.deliver(
        &World::msg("b@other.example", "x"),
        "b@other.example",
        "198.51.100.9",
        &spool,
        &[("SPFVERIFY", "F")],
    );
    assert_eq!(out.code, Some(31), "{}", out.stderr);
    assert_eq!(dispositions(&spool), ["reject", "reject"]);
    // Refused temporarily by SPF: no record; queued: DMARC's own disposition.
    let out = w.deliver(&signed, "a@example.com", "198.51.100.9", &spool, &[("SPFVERIFY", "f")]);
    assert_eq!(out.code, Some(71), "{}", out.stderr);
    assert_eq!(dispositions(&spool), ["reject", "reject"]);
    let out = w.deliver(&signed, "a@example.com", "198.51.100.9", &spool, &[("SPFVERIFY", "")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = w.deliver(&World::msg("b@other.example", "x"), "b@other.example", "198.51.100.9", &spool, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(dispositions(&spool), ["none", "pass", "reject", "reject"]);
    // The report reads back (mail-auth): the DMARC pass we rejected, with its reason.
    let db = w.sqlite();
    import(&db, &spool);
    let r = reports(&db, &today());
    let a = checked(&r[0].1);
    assert_eq!(a.domain(), "example.com");
    use mail_auth::report::ActionDisposition;
    let rejected = a.records().iter().find(|r| r.action_disposition() == ActionDisposition::Reject).unwrap();
    assert_eq!(rejected.dmarc_dkim_result(), mail_auth::report::DmarcResult::Pass);
    assert_eq!(rejected.policy_override_reason().len(), 1);
}

#[test]
fn import_run_twice_counts_once() {
    let w = World::new();
    let spool = w.spool("spool");
    for _ in 0..3 {
        w.queued(&World::msg("a@example.com", "x"), "a@example.com", "192.0.2.1", &spool);
    }
    let db = w.sqlite();
    // A copy of the files as they were: a run that committed and then stopped before removing them.
    let kept = w.spool("kept");
    for e in std::fs::read_dir(spool.join("new")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), kept.join("new").join(e.file_name())).unwrap();
    }
    assert!(import(&db, &spool).starts_with("3 records imported"));
    assert!(import(&db, &spool).starts_with("0 records imported"));
    for e in std::fs::read_dir(kept.join("new")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), spool.join("new").join(e.file_name())).unwrap();
    }
    let out = import(&db, &spool);
    assert!(out.starts_with("0 records imported, 3 counted before"), "{out}");
    assert_eq!(spooled(&spool), 0);
    let r = reports(&db, &today());
    assert_eq!(checked(&r[0].1).records()[0].count(), 3);
}

/// Records made by the library's writer (the format qmail-dkim writes), `n` of them.
fn fill(spool: &Path, n: usize, ip: &str) {
    use qmail_dkim::dmarc_spool::{write, Entry, Policy, Row};
    let e = Entry {
        time: qmail_dkim::dmarc_reports::now(),
        policy: Policy {
            domain: "example.com".into(),
            discovery: "psl".into(),
            p: "reject".into(),
            adkim: "r".into(),
            aspf: "r".into(),
            rua: vec!["mailto:dmarc@example.com".into()],
            ..Policy::default()
        },
        row: Row {
            source_ip: ip.into(),
            header_from: "example.com".into(),
            envelope_from: Some("example.com".into()),
            spf: Some(("example.com".into(), "pass".into())),
            spf_aligned: true,
            disposition: "pass".into(),
            ..Row::default()
        },
    };
    for _ in 0..n {
        write(spool, &e).unwrap();
    }
}

#[test]
fn import_killed_anywhere_loses_and_doubles_nothing() {
    let w = World::new();
    let spool = w.spool("spool");
    let n = 3000;
    fill(&spool, n, "192.0.2.1");
    let db = w.sqlite();
    // Kill the import at a few points of its work, then let one finish.
    for delay_ms in [30u64, 120, 400] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dkim"))
            .args(["dmarc", "import", "--db", &db, &spool.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    import(&db, &spool);
    assert_eq!(spooled(&spool), 0);
    let r = reports(&db, &today());
    assert_eq!(checked(&r[0].1).records()[0].count(), n as u32);
}

#[test]
fn dmarc_commands_exit_2_on_usage_errors_and_1_on_a_bad_database() {
    let w = World::new();
    let db = w.sqlite();
    for args in [
        vec![
            "dmarc",
            "report",
            "--db",
            &db,
            "--org",
            "O",
            "--from",
            "r@x.example",
            "--day",
            "2026-02-30",
            "--out",
            "/tmp",
        ],
        vec!["dmarc", "report", "--db", &db, "--org", "O", "--from", "nobody", "--out", "/tmp"],
        vec!["dmarc", "report", "--db", &db, "--org", "O", "--from", "r@x.example"],
        vec!["dmarc", "import"],
    ] {
        let (code, _, err) = dkim(&args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    let (code, _, err) = dkim(&["dmarc", "import", "--db", "mysql://x", "/nonexistent"], &[]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
}

#[test]
fn unwritable_spool_queues_the_message() {
    let w = World::new();
    let missing = w.dir.path().join("no-such-spool");
    let out = w.deliver(&World::msg("a@example.com", "x"), "a@example.com", "192.0.2.1", &missing, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("DMARCREPORTS")).collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
}

/// A recording stand-in for qmail-inject: each call leaves `N.args` and `N.msg` in `dir`.
fn recording_inject(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("qmail-inject");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nf=$(mktemp {d}/sent.XXXXXXXX)\nprintf '%s\\n' \"$@\" > \"$f.args\"\ncat > \"$f.msg\"\nrm -f \"$f\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The messages the stand-in got: (arguments, message).
fn sent(dir: &Path) -> Vec<(Vec<String>, Vec<u8>)> {
    let mut v: Vec<(Vec<String>, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "args").then(|| {
                let args = std::fs::read_to_string(&p).unwrap().lines().map(String::from).collect();
                (args, std::fs::read(p.with_extension("msg")).unwrap())
            })
        })
        .collect();
    v.sort();
    v
}

fn send(w: &World, db: &str, inject: &Path) -> (i32, String, String) {
    let addr = w.dns.addr();
    let i = inject.display().to_string();
    dkim(
        &[
            "dmarc",
            "report",
            "--db",
            db,
            "--org",
            "Test",
            "--from",
            "dmarc-reports@mx.test.example",
            "--day",
            &today(),
            "--send",
        ],
        &[("QMAILINJECT", &i), ("DNSCACHEIP", &addr), ("DNSTIMEOUT", "2")],
    )
}

#[test]
fn send_mails_each_report_once_to_authorized_destinations() {
    let w = World::new();
    let spool = w.spool("spool");
    w.queued(&w.signed("joe@example.com"), "joe@example.com", "192.0.2.1", &spool);
    w.queued(&World::msg("b@other.example", "x"), "b@other.example", "192.0.2.3", &spool);
    let db = w.sqlite();
    import(&db, &spool);
    let outbox = w.dir.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let inject = recording_inject(&outbox);
    let (code, out, err) = send(&w, &db, &inject);
    assert_eq!(code, 0, "{out}{err}");
    let got = sent(&outbox);
    let mut to: Vec<&str> = got.iter().map(|(a, _)| a[3].as_str()).collect();
    to.sort();
    // agg@unauth.example publishes no authorization: nothing for it.
    assert_eq!(to, ["agg@thirdparty.example", "dmarc@example.com", "rua@other.example"]);
    let begin = qmail_dkim::dmarc_reports::parse_day(&today()).unwrap();
    for (args, msg) in &got {
        assert_eq!(args[..3], ["-f", "dmarc-reports@mx.test.example", "-a"]);
        let text = String::from_utf8_lossy(msg);
        let domain = if args[3].ends_with("other.example") { "other.example" } else { "example.com" };
        let id = format!("{}.{domain}@mx.test.example", today().replace('-', ""));
        let subject = format!("Subject: Report Domain: {domain} Submitter: mx.test.example Report-ID: <{id}>\n");
        assert!(text.contains(&subject), "{text}");
        assert!(text.contains("Content-Type: application/gzip"), "{text}");
        assert!(text.contains(&format!("filename=\"mx.test.example!{domain}!{begin}!{}.xml.gz\"", begin + 86399)));
        // The attachment gunzips to the report: mail-auth reads it from the whole message.
        let rep = Report::parse_rfc5322(&lf_to_crlf(msg), 1 << 20).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!((rep.domain(), rep.report_id()), (domain, id.as_str()));
    }
    // A second run sends nothing.
    let (code, out, err) = send(&w, &db, &inject);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(sent(&outbox).len(), 3);
}

// ---------------------------------------------------------------------------
// PostgreSQL

/// A PostgreSQL server in a temporary directory, on a Unix socket only; stopped when dropped.
/// `initdb` refuses to run as root, so as root the server runs as `nobody` (setpriv).
struct Postgres {
    dir: TempDir,
    bin: PathBuf,
}

impl Postgres {
    fn bin_dir() -> PathBuf {
        if let Ok(out) = Command::new("sh").args(["-c", "command -v initdb"]).output() {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !p.is_empty() {
                let p = std::fs::canonicalize(p).unwrap();
                return p.parent().unwrap().to_path_buf();
            }
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL (Debian's postgresql package; run .ci/install-test-deps)")
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .collect();
        found.sort();
        found.pop().expect("initdb under /usr/lib/postgresql/*/bin")
    }

    fn as_server_user(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if nix::unistd::geteuid().is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start() -> Postgres {
        let dir = tempfile::Builder::new().prefix("pg").tempdir().unwrap();
        let pg = Postgres { bin: Postgres::bin_dir(), dir };
        if nix::unistd::geteuid().is_root() {
            let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
            nix::unistd::chown(pg.dir.path(), Some(nobody.uid), Some(nobody.gid)).unwrap();
        }
        let data = pg.dir.path().join("data");
        let out = pg
            .as_server_user("initdb")
            .args(["-D", &data.display().to_string(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let opts = format!("-k {} -c listen_addresses='' -c fsync=off", pg.dir.path().display());
        let out = pg
            .as_server_user("pg_ctl")
            .args([
                "-D",
                &data.display().to_string(),
                "-o",
                &opts,
                "-l",
                &pg.dir.path().join("log").display().to_string(),
                "-w",
                "start",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(pg.dir.path().join("log")).unwrap_or_default()
        );
        pg
    }

    fn url(&self) -> String {
        format!("postgres:///postgres?host={}&user=postgres", self.dir.path().display())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .as_server_user("pg_ctl")
            .args(["-D", &data.display().to_string(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

#[test]
fn two_spools_into_one_postgres_give_one_report_and_one_sender() {
    let pg = Postgres::start();
    let w = World::new();
    let (mx1, mx2) = (w.spool("mx1"), w.spool("mx2"));
    let msg = w.signed("joe@example.com");
    for _ in 0..3 {
        w.queued(&msg, "joe@example.com", "192.0.2.1", &mx1);
    }
    for _ in 0..4 {
        w.queued(&msg, "joe@example.com", "192.0.2.1", &mx2);
    }
    w.queued(&World::msg("a@example.com", "x"), "a@example.com", "192.0.2.9", &mx2);
    let db = pg.url();
    // The two hosts import at once.
    let spawn = |spool: &Path| {
        Command::new(env!("CARGO_BIN_EXE_dkim"))
            .args(["dmarc", "import", "--db", &db, &spool.display().to_string()])
            .output()
            .unwrap()
    };
    let (o1, o2) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn(&mx1));
        let b = s.spawn(|| spawn(&mx2));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(
        o1.status.success() && o2.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o1.stderr),
        String::from_utf8_lossy(&o2.stderr)
    );
    let r = reports(&db, &today());
    assert_eq!(r.len(), 1);
    let rep = checked(&r[0].1);
    let mut counts: Vec<(String, u32)> =
        rep.records().iter().map(|r| (r.source_ip().unwrap().to_string(), r.count())).collect();
    counts.sort();
    assert_eq!(counts, vec![("192.0.2.1".to_string(), 7), ("192.0.2.9".to_string(), 1)]);
    // Two hosts send at once: one of them sends, each destination once.
    let outbox = w.dir.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let inject = recording_inject(&outbox);
    let (s1, s2) = std::thread::scope(|s| {
        let a = s.spawn(|| send(&w, &db, &inject));
        let b = s.spawn(|| send(&w, &db, &inject));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((s1.0, s2.0), (0, 0), "{s1:?} {s2:?}");
    let mut to: Vec<String> = sent(&outbox).into_iter().map(|(a, _)| a[3].clone()).collect();
    to.sort();
    assert_eq!(to, ["agg@thirdparty.example", "dmarc@example.com"]);
    let senders = [&s1.1, &s2.1].iter().filter(|o| o.contains("sent ")).count();
    assert_eq!(senders, 1, "{s1:?} {s2:?}");
}
