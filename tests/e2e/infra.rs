//! Self-test of the test infrastructure (tests/e2e/common, tests/support,
//! tests/interop), without the qmail-dkim binary: the loopback DNS server,
//! the recording queue, the runner, and the independent DKIM implementations.
//! Needs `.ci/install-test-deps` (python3 with dkimpy, Mail::DKIM, openssl).

use crate::common::*;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// A hand-built DNS client (std only)

const TXT: u16 = 16;
const A: u16 = 1;

fn encode_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
    v
}

fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    q.extend_from_slice(&1u16.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0]);
    q.extend_from_slice(&(edns.is_some() as u16).to_be_bytes());
    q.extend_from_slice(&encode_name(name));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        q.push(0); // root
        q.extend_from_slice(&41u16.to_be_bytes());
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // ttl (ext rcode, version, flags), rdlen
    }
    q
}

#[derive(Debug)]
struct Resp {
    id: u16,
    rcode: u8,
    tc: bool,
    aa: bool,
    /// Each TXT record: its character-strings.
    txt: Vec<Vec<Vec<u8>>>,
}

impl Resp {
    fn joined(&self) -> Vec<String> {
        self.txt.iter().map(|r| String::from_utf8_lossy(&r.concat()).into_owned()).collect()
    }
}

fn skip_name(p: &[u8], mut i: usize) -> usize {
    loop {
        let n = p[i] as usize;
        if n & 0xC0 == 0xC0 {
            return i + 2;
        }
        i += 1;
        if n == 0 {
            return i;
        }
        i += n;
    }
}

fn parse(p: &[u8]) -> Resp {
    assert!(p.len() >= 12, "short response");
    let id = u16::from_be_bytes([p[0], p[1]]);
    let flags = u16::from_be_bytes([p[2], p[3]]);
    assert!(flags & 0x8000 != 0, "QR not set");
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(p, i) + 4;
    }
    let mut txt = Vec::new();
    for _ in 0..an {
        i = skip_name(p, i);
        let rtype = u16::from_be_bytes([p[i], p[i + 1]]);
        let rdlen = u16::from_be_bytes([p[i + 8], p[i + 9]]) as usize;
        i += 10;
        let rdata = &p[i..i + rdlen];
        i += rdlen;
        if rtype == TXT {
            let mut strings = Vec::new();
            let mut j = 0;
            while j < rdata.len() {
                let n = rdata[j] as usize;
                strings.push(rdata[j + 1..j + 1 + n].to_vec());
                j += 1 + n;
            }
            txt.push(strings);
        }
    }
    Resp { id, rcode: (flags & 0xF) as u8, tc: flags & 0x0200 != 0, aa: flags & 0x0400 != 0, txt }
}

fn udp_raw(port: u16, pkt: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.send_to(pkt, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 65535];
    match s.recv(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn udp(port: u16, name: &str, qtype: u16) -> Resp {
    let id = 0x1234;
    let r = parse(&udp_raw(port, &query(id, name, qtype, None), Duration::from_secs(3)).expect("udp answer"));
    assert_eq!(r.id, id);
    r
}

fn tcp(port: u16, name: &str, qtype: u16) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let q = query(0x4321, name, qtype, None);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    let r = parse(&buf);
    assert_eq!(r.id, 0x4321);
    r
}

// ---------------------------------------------------------------------------
// DNS server

#[test]
fn dns_serves_txt_over_udp_and_tcp() {
    let long = "v=DKIM1; k=rsa; p=".to_string() + &"A".repeat(380);
    let dns = Dns::start(&[
        ("sel._domainkey.example.com", "v=DKIM1; p=abc"),
        ("long._domainkey.example.com", &long),
        ("two.example.com", "first"),
        ("two.example.com", "second"),
    ]);
    assert_eq!(dns.addr(), format!("127.0.0.1:{}", dns.port));

    for r in [udp(dns.port, "sel._domainkey.example.com", TXT), tcp(dns.port, "sel._domainkey.example.com", TXT)] {
        assert_eq!(r.rcode, 0);
        assert!(r.aa && !r.tc);
        assert_eq!(r.joined(), vec!["v=DKIM1; p=abc"]);
    }
    // Case-insensitive names; a value over 255 bytes is split into strings.
    for r in [udp(dns.port, "LONG._domainkey.Example.COM", TXT), tcp(dns.port, "long._domainkey.example.com", TXT)] {
        assert_eq!(r.joined(), vec![long.clone()]);
        let lens: Vec<usize> = r.txt[0].iter().map(Vec::len).collect();
        assert_eq!(lens, vec![255, long.len() - 255]);
    }
    let r = udp(dns.port, "two.example.com", TXT);
    assert_eq!(r.joined(), vec!["first", "second"]);
    // Other types of a known name: NOERROR, no answer. Unknown name: NXDOMAIN.
    let r = udp(dns.port, "two.example.com", A);
    assert_eq!((r.rcode, r.txt.len()), (0, 0));
    assert_eq!(udp(dns.port, "nope.example.com", TXT).rcode, 3);
    assert_eq!(tcp(dns.port, "nope.example.com", TXT).rcode, 3);

    // Rewriting the zone takes effect at once.
    dns.set(&[("sel._domainkey.example.com", "v=DKIM1; p=xyz")]);
    assert_eq!(udp(dns.port, "sel._domainkey.example.com", TXT).joined(), vec!["v=DKIM1; p=xyz"]);
    assert_eq!(udp(dns.port, "two.example.com", TXT).rcode, 3);

    let log = dns.queries();
    assert!(log.iter().any(|l| l.starts_with("tcp long._domainkey.example.com 16 NOERROR(1)")), "{log:?}");
    assert!(log.iter().any(|l| l == "udp nope.example.com 16 NXDOMAIN"), "{log:?}");
}

#[test]
fn dns_fault_modes() {
    let dns = Dns::start(&[
        ("sf.example.com", "@SERVFAIL"),
        ("nx.example.com", "@NXDOMAIN"),
        ("ref.example.com", "@REFUSED"),
        ("to.example.com", "@TIMEOUT"),
        ("tr.example.com", "@TRUNC"),
        ("tr.example.com", "v=DKIM1; p=tcp-only"),
        ("raw.example.com", "@RDATA:03616263026465"),
    ]);
    for r in [udp(dns.port, "sf.example.com", TXT), tcp(dns.port, "sf.example.com", TXT)] {
        assert_eq!(r.rcode, 2);
    }
    assert_eq!(udp(dns.port, "nx.example.com", TXT).rcode, 3);
    assert_eq!(udp(dns.port, "ref.example.com", TXT).rcode, 5);
    let r = udp(dns.port, "tr.example.com", TXT);
    assert!(r.tc && r.txt.is_empty() && r.rcode == 0, "{r:?}");
    let r = tcp(dns.port, "tr.example.com", TXT);
    assert!(!r.tc);
    assert_eq!(r.joined(), vec!["v=DKIM1; p=tcp-only"]);
    let r = udp(dns.port, "raw.example.com", TXT);
    assert_eq!(r.txt, vec![vec![b"abc".to_vec(), b"de".to_vec()]]);
    let t = Instant::now();
    assert!(udp_raw(dns.port, &query(7, "to.example.com", TXT, None), Duration::from_millis(300)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(250));
}

#[test]
fn dns_truncates_big_udp_answers_unless_edns() {
    let big = "p=".to_string() + &"B".repeat(700);
    let dns = Dns::start(&[("big.example.com", &big)]);
    let r = udp(dns.port, "big.example.com", TXT);
    assert!(r.tc && r.txt.is_empty());
    assert_eq!(tcp(dns.port, "big.example.com", TXT).joined(), vec![big.clone()]);
    let raw = udp_raw(dns.port, &query(9, "big.example.com", TXT, Some(1232)), Duration::from_secs(3)).unwrap();
    let r = parse(&raw);
    assert!(!r.tc);
    assert_eq!(r.joined(), vec![big]);
}

#[test]
fn dns_survives_malformed_packets_and_reads_compressed_questions() {
    let dns = Dns::start(&[("ok.example.com", "fine")]);
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff; 40],
        // question name is a pointer to itself (a loop)
        vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 16, 0, 1],
        // label running past the end
        vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 60, b'a', b'b'],
        // a response, not a query
        vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 1],
    ];
    for j in &junk {
        let _ = udp_raw(dns.port, j, Duration::from_millis(50));
    }
    // Garbage over TCP, then close.
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", dns.port)) {
        let _ = s.write_all(&[0, 5, 1, 2, 3, 4, 5]);
    }
    // A question whose name is a compression pointer to labels placed after it.
    let mut q = vec![0x55, 0x66, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(&[0xc0, 18]); // pointer to offset 18
    q.extend_from_slice(&TXT.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q.extend_from_slice(&encode_name("ok.example.com"));
    let r = parse(&udp_raw(dns.port, &q, Duration::from_secs(3)).expect("answer"));
    assert_eq!(r.joined(), vec!["fine"]);
    // Still alive and well.
    assert_eq!(udp(dns.port, "ok.example.com", TXT).joined(), vec!["fine"]);
    assert_eq!(tcp(dns.port, "ok.example.com", TXT).joined(), vec!["fine"]);
    assert!(dns.queries().iter().any(|l| l.contains("malformed")));
}

// ---------------------------------------------------------------------------
// Recording queue (run directly, through the same runner qmail-dkim gets)

const MSG: &[u8] = b"From: a@example.com\nTo: b@example.org\nSubject: hi\n\nbody\n";

fn recq(queue: &Queue, msg: &[u8], env: &[u8], extra: &[(&str, &str)]) -> Output {
    Run::new(msg, env).program(queue.program()).env_owned(&queue.env()).env(extra).run()
}

#[test]
fn recqueue_records_message_and_envelope() {
    let q = Queue::new();
    let env = envelope("a@example.com", &["b@example.org", "c@example.net"]);
    let out = recq(&q, MSG, &env, &[("DKIMQUEUE", "/should/show")]);
    assert_eq!((out.code, out.signal, out.timed_out, out.lingering), (Some(0), None, false, false), "{out:?}");
    let out = recq(&q, b"", &envelope("", &[]), &[]);
    assert_eq!(out.code, Some(0));
    let recs = q.records();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].msg, MSG);
    assert_eq!(recs[0].env, env);
    assert_eq!(recs[0].dkimqueue().as_deref(), Some("/should/show"));
    assert_eq!(recs[0].argv(), vec![recqueue_path().display().to_string()]);
    assert!(recs[0].environ("PATH").is_some());
    assert_eq!(recs[0].environ("HOME"), None, "environment is cleared");
    assert_eq!(recs[1].msg, b"");
    assert_eq!(recs[1].env, b"F\0\0");
    assert_eq!(recs[1].dkimqueue(), None);
    assert_eq!(envelope("", &[]), b"F\0\0");
    assert_eq!(envelope("s@x", &["r@y"]), b"Fs@x\0Tr@y\0\0");
}

#[test]
fn recqueue_validates_envelope_like_qmail_queue() {
    let q = Queue::new();
    let cases: Vec<(Vec<u8>, i32)> = vec![
        (b"Xa@b\0Tc@d\0\0".to_vec(), 91),
        (b"Fa@b\0Xc@d\0\0".to_vec(), 91),
        (b"Fa@b\0Tc@d\0".to_vec(), 54),
        (b"".to_vec(), 54),
        (b"Fa@b".to_vec(), 54),
        ([b"F".to_vec(), vec![b'a'; 1003], b"\0\0".to_vec()].concat(), 11),
        ([b"F\0T".to_vec(), vec![b'a'; 1003], b"\0\0".to_vec()].concat(), 11),
        ([b"F".to_vec(), vec![b'a'; 1002], b"\0\0".to_vec()].concat(), 0),
    ];
    for (env, want) in &cases {
        let out = recq(&q, MSG, env, &[]);
        assert_eq!(out.code, Some(*want), "envelope {:?}", String::from_utf8_lossy(&env[..env.len().min(20)]));
    }
    assert_eq!(q.records().len(), 1, "only the valid envelope is recorded");
    let inv = q.invocations();
    assert_eq!(inv.len(), cases.len());
    assert_eq!(inv[0].get("exit").and_then(Json::as_i64), Some(91));
    assert_eq!(inv[0].get("complete").and_then(Json::as_bool), Some(false));
}

#[test]
fn recqueue_exit_code_and_fault_modes() {
    let q = Queue::new();
    let env = envelope("a@example.com", &["b@example.org"]);

    let out = recq(&q, MSG, &env, &[("RECQUEUE_EXIT", "71")]);
    assert_eq!(out.code, Some(71));
    assert_eq!(q.records().len(), 1, "recorded even with a non-zero exit");

    let out = recq(&q, MSG, &env, &[("RECQUEUE_MODE", "early"), ("RECQUEUE_EXIT", "53")]);
    assert_eq!(out.code, Some(53));
    let out = recq(&q, MSG, &env, &[("RECQUEUE_MODE", "partial")]);
    assert_eq!(out.code, Some(0));
    assert_eq!(q.records().len(), 1);
    let inv = q.invocations();
    assert_eq!(inv[2].get("msg_len").and_then(Json::as_i64), Some(1));

    let out = recq(&q, MSG, &env, &[("RECQUEUE_MODE", "kill")]);
    assert_eq!((out.code, out.signal), (None, Some(9)));
    assert_eq!(q.records().len(), 2, "kill mode records before dying");

    let big = vec![b'x'; 3000];
    let t = Instant::now();
    let out = recq(&q, &big, &env, &[("RECQUEUE_MODE", "slow")]);
    assert_eq!(out.code, Some(0));
    assert!(t.elapsed() >= Duration::from_millis(500), "slow mode sleeps");
    assert_eq!(q.records().last().unwrap().msg, big);

    let t = Instant::now();
    let out = Run::new(MSG, &env)
        .program(q.program())
        .env(&[("RECQUEUE_MODE", "hang"), ("RECQUEUE_SLEEP", "20")])
        .timeout(Duration::from_millis(500))
        .run();
    assert!(out.timed_out && out.signal == Some(9), "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn runner_captures_stderr_and_extra_fds() {
    let q = Queue::new();
    let env = envelope("a@example.com", &["b@example.org"]);
    let out = Run::new(MSG, &env)
        .program(q.program())
        .env_owned(&q.env())
        .env(&[("RECQUEUE_EXIT", "88"), ("RECQUEUE_STDERR", "Dno way (#5.7.1)"), ("RECQUEUE_FD6", "Zlater")])
        .capture_fd(6)
        .capture_fd(5)
        .run();
    assert_eq!(out.code, Some(88));
    assert_eq!(out.stderr, "Dno way (#5.7.1)");
    assert_eq!(out.fd_text(6), "Zlater");
    assert_eq!(out.fd_text(5), "");
    assert!(!out.lingering);
    assert_no_panic(&out);
    // A huge message to a program that reads nothing must not deadlock.
    let out = Run::new(&vec![b'y'; 4 << 20], &env)
        .program(q.program())
        .env(&[("RECQUEUE_MODE", "early"), ("RECQUEUE_EXIT", "31")])
        .run();
    assert_eq!(out.code, Some(31));
}

#[test]
fn byte_helpers() {
    assert_eq!(lf_to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    assert_eq!(crlf_to_lf(b"a\r\nb\rc\n"), b"a\nb\rc\n");
    let m = b"DKIM-Signature: a=1;\n\tb=2\nFrom: x\nSubject: s\n\nFrom: body\n";
    assert_eq!(headers_named(m, "dkim-signature"), vec!["DKIM-Signature: a=1;\n\tb=2\n"]);
    assert_eq!(headers_named(m, "from"), vec!["From: x\n"]);
}

// ---------------------------------------------------------------------------
// Interop: independent signers and verifiers agree with each other

const SAMPLE: &[u8] = b"From: Joe SixPack <joe@football.example.com>\n\
To: Suzie Q <suzie@shopping.example.net>\n\
Subject: Is dinner ready?\n\
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\n\
Message-ID: <20030712040037.46341.5F8J@football.example.com>\n\
\n\
Hi.\n\
\n\
We lost the game.  Are you hungry yet?\n\
\n\
Joe.\n";

#[test]
fn interop_dkimpy_and_mail_dkim() {
    let rsa = TestKey::rsa(2048);
    let ed = TestKey::ed25519();
    let dns = Dns::start(&[
        ("rsa._domainkey.football.example.com", &rsa.dns_record()),
        ("ed._domainkey.football.example.com", &ed.dns_record()),
    ]);

    // dkimpy: RSA relaxed/relaxed, then Ed25519 simple/simple on top.
    let s1 = dkimpy_sign(SAMPLE, &rsa.path, "rsa", "football.example.com", &[]);
    let s2 = dkimpy_sign(
        &s1,
        &ed.path,
        "ed",
        "football.example.com",
        &["--algo", "ed25519-sha256", "--canon", "simple/simple"],
    );
    assert!(!s2.contains(&b'\r'), "signer output uses LF");
    assert!(s2.ends_with(SAMPLE));
    let v = dkimpy_verify(&s2, &dns);
    assert!(v.ok, "{v:?}");
    assert_eq!(v.report.lines().count(), 2, "{v:?}");
    // Same message in CRLF form verifies too.
    assert!(dkimpy_verify(&lf_to_crlf(&s2), &dns).ok);
    let v = mail_dkim_verify(&s1, &dns, false);
    assert!(v.ok, "{v:?}");
    // Debian 12's Mail::DKIM lacks ed25519: it fails unless told to skip it.
    assert!(!mail_dkim_verify(&s2, &dns, false).ok);
    let v = mail_dkim_verify(&s2, &dns, true);
    assert!(v.ok && v.report.contains("skipped"), "{v:?}");

    // Mail::DKIM: DKIM rsa-sha256 plus a DomainKeys nofws signature.
    let m = mail_dkim_sign(
        SAMPLE,
        &rsa.path,
        "rsa",
        "football.example.com",
        &["relaxed/relaxed", "rsa-sha256", "--domainkeys", "nofws", "--also-dkim"],
    );
    let v = mail_dkim_verify(&m, &dns, false);
    assert!(v.ok && v.report.contains(" DomainKeys ") && v.report.contains(" DKIM "), "{v:?}");
    let v = dkimpy_verify(&m, &dns);
    assert!(v.ok, "{v:?}");

    // Tampering is caught by both.
    let bad: Vec<u8> = String::from_utf8(s1.clone()).unwrap().replace("hungry", "angry").into_bytes();
    assert!(!dkimpy_verify(&bad, &dns).ok);
    assert!(!mail_dkim_verify(&bad, &dns, false).ok);
    // No key published: both fail.
    dns.set(&[]);
    assert!(!dkimpy_verify(&s1, &dns).ok);
    assert!(!mail_dkim_verify(&s1, &dns, false).ok);
    // No signature at all: not a pass.
    let v = dkimpy_verify(SAMPLE, &dns);
    assert!(!v.ok && v.code == Some(1));
}

/// The zone's typed lines (`@A:`, `@AAAA:`, `@MX:`, `@PTR:`) answer only their own type, through
/// the library's resolver, as SPF asks them.
#[test]
fn dnsd_serves_spf_record_types() {
    use qmail_dkim::dns::{Answer, Hickory, Mx, Resolver, Servers, TxtAnswer, TxtLookup};
    let dns = Dns::start(&[
        ("a.test", "@A:192.0.2.1"),
        ("a.test", "v=spf1 -all"),
        ("m.test", "@MX:10 a.test"),
        ("b.test", "@AAAA:2001:db8::1"),
        ("1.2.0.192.in-addr.arpa", "@PTR:a.test"),
    ]);
    let r = Hickory::new(Servers::Listed(vec![dns.addr().parse().unwrap()]), Duration::from_secs(5));
    assert_eq!(r.a("a.test"), Answer::Records(vec!["192.0.2.1".parse().unwrap()]));
    assert_eq!(r.txt("a.test"), TxtAnswer::Records(vec![b"v=spf1 -all".to_vec()]));
    assert_eq!(r.mx("m.test"), Answer::Records(vec![Mx { preference: 10, exchange: "a.test".into() }]));
    assert_eq!(r.aaaa("b.test"), Answer::Records(vec!["2001:db8::1".parse().unwrap()]));
    assert_eq!(r.ptr("192.0.2.1".parse().unwrap()), Answer::Records(vec!["a.test".to_string()]));
    assert_eq!(r.a("m.test"), Answer::NotFound, "NODATA");
    assert_eq!(r.txt("m.test"), TxtAnswer::NotFound, "NODATA");
    assert_eq!(r.a("none.test"), Answer::NotFound, "NXDOMAIN");
}
