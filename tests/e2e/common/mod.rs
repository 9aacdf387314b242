//! Helpers for qmail-dkim's integration tests: a loopback DNS server
//! (`tests/support/dnsd.py`), a recording stand-in for qmail-queue
//! (`tests/support/recqueue.py`), a runner that drives `qmail-dkim` the way
//! qmail does (message on fd 0, envelope on fd 1), fixed test keys,
//! and the independent verifiers and signers in `tests/interop/`.
//!
//! Everything talks only to 127.0.0.1. Use from a test module with
//! `use crate::common::*;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Paths

/// The crate's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/support/`, home of `dnsd.py` and `recqueue.py`.
pub fn support_dir() -> PathBuf {
    repo_root().join("tests").join("support")
}

/// `tests/interop/`, home of the dkimpy and Mail::DKIM scripts.
pub fn interop_dir() -> PathBuf {
    repo_root().join("tests").join("interop")
}

/// The `qmail-dkim` binary cargo built for these tests.
pub fn qmail_dkim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_qmail-dkim"))
}

// ---------------------------------------------------------------------------
// DNS

/// A running `dnsd.py` on 127.0.0.1 (UDP and TCP, one port), serving TXT
/// records. Killed when dropped (and it exits by itself if the test process
/// dies, since it watches its stdin pipe).
///
/// Record values may be the special words of `dnsd.py`: `@SERVFAIL`,
/// `@NXDOMAIN`, `@REFUSED`, `@TIMEOUT`, `@TRUNC` (UDP: TC=1 and no answer; TCP:
/// the other records of that name), `@RDATA:<hex>` (raw TXT RDATA).
pub struct Dns {
    pub port: u16,
    zone: PathBuf,
    child: Child,
    log: PathBuf,
    dir: TempDir,
}

impl Dns {
    /// Start a server with these `(name, txt)` records (name without a
    /// trailing dot; several pairs with one name = several TXT records).
    /// Waits (at most ~30 s: a loaded CI machine starts Python slowly) until it listens.
    pub fn start(records: &[(&str, &str)]) -> Dns {
        let dir = tempfile::Builder::new().prefix("dnsd").tempdir().expect("tempdir");
        let zone = dir.path().join("zone");
        let port_file = dir.path().join("port");
        let log = dir.path().join("queries.log");
        write_zone(&zone, records);
        let mut child = Command::new(support_dir().join("dnsd.py"))
            .arg("--zone")
            .arg(&zone)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .arg("--exit-on-stdin-eof")
            .arg("--lifetime")
            .arg("1800")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start tests/support/dnsd.py (is python3 on PATH?)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(s) = fs::read_to_string(&port_file) {
                if let Ok(p) = s.trim().parse::<u16>() {
                    break p;
                }
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("dnsd.py exited early: {st}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dnsd.py did not write its port file within 30 s");
            }
            thread::sleep(Duration::from_millis(10));
        };
        Dns { port, zone, child, log, dir }
    }

    /// Replace the whole zone (takes effect at the next query).
    pub fn set(&self, records: &[(&str, &str)]) {
        write_zone(&self.zone, records);
    }

    /// "127.0.0.1:PORT", the form `DNSCACHEIP` takes.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The queries seen so far, one line each: `udp|tcp <qname> <qtype> <outcome>`
    /// (outcome: `NOERROR(<n records>)`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`,
    /// `TIMEOUT`, `TRUNC`, `TC(size N)`, `NODATA`, `malformed(...)`, ...).
    pub fn queries(&self) -> Vec<String> {
        fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Forget the queries logged so far.
    pub fn clear_queries(&self) {
        let _ = fs::remove_file(&self.log);
    }

    /// The directory holding the zone and log files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_zone(path: &Path, records: &[(&str, &str)]) {
    let mut text = String::new();
    for (name, value) in records {
        assert!(
            !name.contains(['\t', '\n', '\r']) && !value.contains(['\n', '\r']),
            "zone record may not contain TAB/newline in the name or newline in the value: {name:?}"
        );
        text.push_str(&name.trim_end_matches('.').to_ascii_lowercase());
        text.push('\t');
        text.push_str(value);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).expect("write zone");
    fs::rename(&tmp, path).expect("rename zone");
}

/// A UDP port on 127.0.0.1 that nothing listens on (just freed), to test an
/// unreachable DNS server.
pub fn closed_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------
// Recording queue

/// A temporary directory in which `recqueue.py` records what it was fed.
pub struct Queue {
    dir: TempDir,
}

/// One complete recording: what a queue program read on fd 0 and fd 1.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub msg: Vec<u8>,
    pub env: Vec<u8>,
    /// recqueue's `.json` side file (pid, argv, cwd, DKIMQUEUE, environ, mode,
    /// exit, msg_len, env_len, complete, error).
    pub json: String,
}

impl Recorded {
    pub fn parsed(&self) -> Json {
        serde_json::from_str(&self.json).expect("recqueue json")
    }
    /// The value of DKIMQUEUE the queue program saw (None = unset).
    pub fn dkimqueue(&self) -> Option<String> {
        self.parsed().get("DKIMQUEUE").and_then(|v| v.as_str().map(str::to_string))
    }
    /// The queue program's argv (argv[0] first).
    pub fn argv(&self) -> Vec<String> {
        self.parsed().get("argv").map(str_list).unwrap_or_default()
    }
    /// One variable of the queue program's environment.
    pub fn environ(&self, name: &str) -> Option<String> {
        self.parsed().get("environ").and_then(|e| e.get(name)).and_then(|v| v.as_str().map(str::to_string))
    }
    /// The message as text (lossy UTF-8), for assertions.
    pub fn msg_text(&self) -> String {
        String::from_utf8_lossy(&self.msg).into_owned()
    }
}

impl Queue {
    pub fn new() -> Queue {
        Queue { dir: tempfile::Builder::new().prefix("recqueue").tempdir().expect("tempdir") }
    }

    /// Path of `recqueue.py` (use as QMAILQUEUE / DKIMQUEUE / argv[1]).
    pub fn program(&self) -> PathBuf {
        recqueue_path()
    }

    /// `[("RECQUEUE_DIR", dir)]`: add to the environment of the run.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("RECQUEUE_DIR".to_string(), self.dir.path().display().to_string())]
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Complete recordings (.msg + .env + .json), oldest first.
    pub fn records(&self) -> Vec<Recorded> {
        self.stems()
            .into_iter()
            .filter(|s| s.with_extension("msg").exists())
            .map(|s| Recorded {
                msg: fs::read(s.with_extension("msg")).unwrap_or_default(),
                env: fs::read(s.with_extension("env")).unwrap_or_default(),
                json: fs::read_to_string(s.with_extension("json")).unwrap_or_default(),
            })
            .collect()
    }

    /// The .json of every invocation, oldest first, including those that
    /// recorded no message (early, partial, envelope errors).
    pub fn invocations(&self) -> Vec<Json> {
        self.stems()
            .into_iter()
            .filter_map(|s| fs::read_to_string(s.with_extension("json")).ok())
            .map(|t| serde_json::from_str(&t).expect("recqueue json"))
            .collect()
    }

    /// `<dir>/<pid>-<ns>` for each .json, sorted by start time.
    fn stems(&self) -> Vec<PathBuf> {
        let mut v: Vec<(u128, u32, PathBuf)> = Vec::new();
        for e in fs::read_dir(self.dir.path()).expect("read_dir").flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
            let mut it = stem.splitn(2, '-');
            let pid = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            let ns = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            v.push((ns, pid, p.with_extension("")));
        }
        v.sort();
        v.into_iter().map(|(_, _, p)| p).collect()
    }
}

impl Default for Queue {
    fn default() -> Self {
        Queue::new()
    }
}

/// Path of `tests/support/recqueue.py`.
pub fn recqueue_path() -> PathBuf {
    support_dir().join("recqueue.py")
}

/// Borrow a `Vec<(String, String)>` as the `&[(&str, &str)]` the runners take.
pub fn env_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

// ---------------------------------------------------------------------------
// Running a qmail-queue program

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal number, if a signal ended it (9 also when we killed it on timeout).
    pub signal: Option<i32>,
    /// Everything written on fd 2 (lossy UTF-8).
    pub stderr: String,
    /// Bytes written on each extra fd asked for with [`Run::capture_fd`].
    pub fds: Vec<(i32, Vec<u8>)>,
    /// The run took longer than the timeout and was killed.
    pub timed_out: bool,
    /// fd 2 (or a captured fd) was still open 5 s after the program exited:
    /// something it started is still running and holding it (qmail would hang).
    pub lingering: bool,
}

impl Output {
    /// The text written on extra fd `fd` (empty if none or not captured).
    pub fn fd_text(&self, fd: i32) -> String {
        self.fds
            .iter()
            .find(|(n, _)| *n == fd)
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

/// The message and envelope bytes qmail feeds a QMAILQUEUE program.
pub fn envelope(sender: &str, rcpts: &[&str]) -> Vec<u8> {
    let mut v = Vec::with_capacity(sender.len() + 3);
    v.push(b'F');
    v.extend_from_slice(sender.as_bytes());
    v.push(0);
    for r in rcpts {
        v.push(b'T');
        v.extend_from_slice(r.as_bytes());
        v.push(0);
    }
    v.push(0);
    v
}

/// Run `qmail-dkim` as qmail would: a cleared environment plus PATH plus
/// `env`, the message written to fd 0 (then closed), then the envelope written
/// to fd 1 (a pipe: for a QMAILQUEUE program fd 1 is an input), fd 2 captured.
/// Times out (killed, `timed_out`) after 30 s.
pub fn run_qmail_dkim(msg: &[u8], envelope: &[u8], env: &[(&str, &str)], args: &[&str]) -> Output {
    Run::new(msg, envelope).env(env).args(args).run()
}

/// Runs qmail-dkim into a fresh recording queue with `env` (the queue's own variables and
/// `DKIMQUEUE` added), `sender` and one recipient; returns the output and the single recording.
pub fn run_into_queue(msg: &[u8], env: &[(&str, &str)], sender: &str, rcpt: &str) -> (Output, Option<Recorded>) {
    let q = Queue::new();
    let mut v = q.env();
    v.push(("DKIMQUEUE".into(), q.program().display().to_string()));
    v.extend(env.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    let out = run_qmail_dkim(msg, &envelope(sender, &[rcpt]), &env_refs(&v), &[]);
    assert_no_panic(&out);
    let mut r = q.records();
    assert!(r.len() <= 1, "queued more than once");
    (out, r.pop())
}

/// The general runner behind [`run_qmail_dkim`].
pub struct Run {
    program: PathBuf,
    msg: Vec<u8>,
    envelope: Vec<u8>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    capture: Vec<i32>,
    close: Vec<i32>,
    timeout: Duration,
    keep_path: bool,
}

impl Run {
    pub fn new(msg: &[u8], envelope: &[u8]) -> Run {
        Run {
            program: qmail_dkim_bin(),
            msg: msg.to_vec(),
            envelope: envelope.to_vec(),
            env: Vec::new(),
            args: Vec::new(),
            cwd: None,
            capture: Vec::new(),
            close: Vec::new(),
            timeout: Duration::from_secs(30),
            keep_path: true,
        }
    }
    /// Run another program than qmail-dkim (e.g. recqueue.py itself).
    pub fn program(mut self, p: impl AsRef<Path>) -> Run {
        self.program = p.as_ref().to_path_buf();
        self
    }
    pub fn env(mut self, env: &[(&str, &str)]) -> Run {
        self.env.extend(env.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        self
    }
    pub fn env_owned(mut self, env: &[(String, String)]) -> Run {
        self.env.extend(env.iter().cloned());
        self
    }
    pub fn args(mut self, args: &[&str]) -> Run {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Run {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }
    /// Give the program a pipe on fd `fd` (e.g. 6 for notqmail's custom error
    /// text, or the fd named by ERROR_FD) and collect what it writes there.
    pub fn capture_fd(mut self, fd: i32) -> Run {
        assert!(fd > 2, "fds 0, 1 and 2 are always set up");
        assert!(self.capture.len() < 16, "at most 16 extra fds");
        self.capture.push(fd);
        self
    }
    /// Make sure fd `fd` is closed in the program (whatever the test runner inherited).
    pub fn close_fd(mut self, fd: i32) -> Run {
        assert!(fd > 2 && !self.capture.contains(&fd), "fd {fd} is set up by the runner");
        assert!(self.close.len() < 16, "at most 16 closed fds");
        self.close.push(fd);
        self
    }
    pub fn timeout(mut self, t: Duration) -> Run {
        self.timeout = t;
        self
    }
    /// Do not pass PATH either (an entirely empty environment plus `env`).
    pub fn no_path(mut self) -> Run {
        self.keep_path = false;
        self
    }

    pub fn run(self) -> Output {
        let (env_r, mut env_w) = std::io::pipe().expect("pipe");
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).env_clear();
        if self.keep_path {
            if let Some(p) = std::env::var_os("PATH") {
                cmd.env("PATH", p);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::from(env_r)).stderr(Stdio::piped());

        // Extra fds: pipes whose write ends become fd N in the child.
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        let mut map: Vec<(i32, i32)> = Vec::new();
        for &fd in &self.capture {
            let (r, w) = std::io::pipe().expect("pipe");
            use std::os::fd::AsRawFd;
            map.push((w.as_raw_fd(), fd));
            readers.push((fd, r));
            writers.push(w);
        }
        let close = self.close.clone();
        if !map.is_empty() || !close.is_empty() {
            // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between fork and exec.
            #[allow(unsafe_code)]
            unsafe {
                cmd.pre_exec(move || {
                    // First move every source above any target, then dup2 into place
                    // (dup2 clears FD_CLOEXEC on the new descriptor).
                    // (No allocation here: we are between fork and exec.)
                    let mut high = [0i32; 16];
                    for (i, &(src, _)) in map.iter().enumerate() {
                        let h = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 200);
                        if h < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        high[i] = h;
                    }
                    for (i, &(_, dst)) in map.iter().enumerate() {
                        if libc::dup2(high[i], dst) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    // Last: a source may have had the number of a descriptor to close.
                    for &fd in &close {
                        libc::close(fd);
                    }
                    Ok(())
                });
            }
        }

        let start = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()));
        drop(cmd); // closes our copy of the envelope pipe's read end
        drop(writers); // closes our copies of the extra fds' write ends

        // Feed fd 0 then fd 1 from another thread, so that a program that
        // exits early (or never reads) cannot block the test. EPIPE is fine.
        let stdin = child.stdin.take().expect("stdin");
        let (msg, envelope) = (self.msg, self.envelope);
        let feeder = thread::spawn(move || {
            let mut stdin: ChildStdin = stdin;
            let _ = stdin.write_all(&msg);
            drop(stdin);
            let _ = env_w.write_all(&envelope);
            drop(env_w);
        });

        // Collect fd 2 and the extra fds until EOF, each in its own thread.
        let (tx, rx) = mpsc::channel::<(i32, Vec<u8>)>();
        let mut pending = 0;
        if let Some(mut e) = child.stderr.take() {
            let tx = tx.clone();
            pending += 1;
            thread::spawn(move || {
                let mut b = Vec::new();
                let _ = e.read_to_end(&mut b);
                let _ = tx.send((2, b));
            });
        }
        for (fd, mut r) in readers {
            let tx = tx.clone();
            pending += 1;
            thread::spawn(move || {
                let mut b = Vec::new();
                let _ = r.read_to_end(&mut b);
                let _ = tx.send((fd, b));
            });
        }
        drop(tx);

        let mut out = Output::default();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) => {}
                Err(_) => break None,
            }
            if start.elapsed() > self.timeout {
                out.timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            thread::sleep(Duration::from_millis(2));
        };
        if let Some(st) = status {
            out.code = st.code();
            out.signal = st.signal();
        }

        let grace = Instant::now() + Duration::from_secs(5);
        let mut got: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
        while pending > 0 {
            let left = grace.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((fd, b)) => {
                    got.insert(fd, b);
                    pending -= 1;
                }
                Err(_) => {
                    out.lingering = true;
                    break;
                }
            }
        }
        let _ = feeder.join();
        out.stderr = String::from_utf8_lossy(&got.remove(&2).unwrap_or_default()).into_owned();
        out.fds = got.into_iter().collect();
        out
    }
}

/// Fail the test if the binary panicked (its stderr says so).
#[track_caller]
pub fn assert_no_panic(out: &Output) {
    assert!(!out.stderr.contains("panicked"), "the program panicked; stderr:\n{}", out.stderr);
}

// ---------------------------------------------------------------------------
// Keys (fixed test keys in tests/data/testkeys)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ed25519,
}

/// A private key file in PEM (PKCS#8, as `openssl genpkey` writes it) and its
/// public half in the form a DKIM key record's `p=` takes.
///
/// The keys are fixed files made once (tests/data/testkeys/README.md), not
/// generated per test: every `TestKey::rsa(2048)` is the same key. A test that
/// needs two different keys of one kind takes [`TestKey::other_rsa`].
pub struct TestKey {
    pub kind: KeyKind,
    /// The private key file (a copy, mode 0600, the test may change or remove it).
    pub path: PathBuf,
    /// base64 of the SubjectPublicKeyInfo (RSA) or of the raw 32-byte key (Ed25519).
    pub public_b64: String,
    _dir: Option<TempDir>,
}

/// `tests/data/testkeys/`.
pub fn testkeys_dir() -> PathBuf {
    repo_root().join("tests").join("data").join("testkeys")
}

impl TestKey {
    /// The fixed RSA key of `bits` bits (512, 768, 1024, 2048 or 4096), copied into a temporary directory.
    pub fn rsa(bits: u32) -> TestKey {
        TestKey::in_tempdir(|p| TestKey::rsa_at(p, bits))
    }
    /// The fixed Ed25519 key, copied into a temporary directory.
    pub fn ed25519() -> TestKey {
        TestKey::in_tempdir(TestKey::ed25519_at)
    }
    /// A second fixed 2048-bit RSA key, different from `rsa(2048)`.
    pub fn other_rsa() -> TestKey {
        TestKey::in_tempdir(|p| TestKey::fixture_at(p, "rsa-2048-other", KeyKind::Rsa))
    }
    /// The fixed RSA key of `bits` bits copied to `path` (parent directories are made).
    pub fn rsa_at(path: &Path, bits: u32) -> TestKey {
        TestKey::fixture_at(path, &format!("rsa-{bits}"), KeyKind::Rsa)
    }
    /// The fixed Ed25519 key copied to `path` (parent directories are made).
    pub fn ed25519_at(path: &Path) -> TestKey {
        TestKey::fixture_at(path, "ed25519", KeyKind::Ed25519)
    }
    fn in_tempdir(make: impl FnOnce(&Path) -> TestKey) -> TestKey {
        let dir = tempfile::Builder::new().prefix("key").tempdir().expect("tempdir");
        let mut k = make(&dir.path().join("key.pem"));
        k._dir = Some(dir);
        k
    }
    /// Copies `tests/data/testkeys/<name>.pem` to `path` (mode 0600, as `openssl genpkey`
    /// writes it) and reads its public half from `<name>.p`.
    fn fixture_at(path: &Path, name: &str, kind: KeyKind) -> TestKey {
        let src = testkeys_dir().join(format!("{name}.pem"));
        assert!(src.exists(), "no test key {} (tests/data/testkeys/README.md says how to add one)", src.display());
        let k = TestKey {
            kind,
            path: path.to_path_buf(),
            public_b64: fs::read_to_string(src.with_extension("p"))
                .expect("public half (.p) of a test key")
                .trim()
                .to_string(),
            _dir: None,
        };
        k.copy_from(&src);
        k
    }
    fn copy_from(&self, src: &Path) {
        use std::os::unix::fs::PermissionsExt;
        if let Some(p) = self.path.parent() {
            fs::create_dir_all(p).expect("mkdir");
        }
        fs::copy(src, &self.path).expect("copy key");
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600)).expect("chmod key");
    }
    /// Copy the private key file to `path` (parent directories are made).
    pub fn copy_to(&self, path: &Path) {
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).expect("mkdir");
        }
        fs::copy(&self.path, path).expect("copy key");
    }
    /// The TXT value to publish: `v=DKIM1; k=rsa|ed25519; p=...`.
    pub fn dns_record(&self) -> String {
        let k = match self.kind {
            KeyKind::Rsa => "rsa",
            KeyKind::Ed25519 => "ed25519",
        };
        format!("v=DKIM1; k={k}; p={}", self.public_b64)
    }
    /// The TXT value of a DomainKeys key record: `k=rsa; p=...` (RSA only).
    pub fn dk_record(&self) -> String {
        format!("k=rsa; p={}", self.public_b64)
    }
}

// ---------------------------------------------------------------------------
// Independent implementations (tests/interop)

/// Result of an interop script: success and its stdout+stderr.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub ok: bool,
    pub code: Option<i32>,
    /// stdout: one line per signature.
    pub report: String,
    pub stderr: String,
}

fn run_script(cmd: &mut Command) -> Verdict {
    let out = cmd.stdin(Stdio::null()).output().expect("run interop script (run .ci/install-test-deps)");
    Verdict {
        ok: out.status.success(),
        code: out.status.code(),
        report: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn temp_msg(msg: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("tempfile");
    f.write_all(msg).expect("write");
    f.flush().unwrap();
    f
}

/// Verify every DKIM-Signature with dkimpy, keys from `dns`.
pub fn dkimpy_verify(msg: &[u8], dns: &Dns) -> Verdict {
    let f = temp_msg(msg);
    run_script(Command::new(interop_dir().join("dkimpy_verify.py")).arg(f.path()).arg("--dns").arg(dns.addr()))
}

/// Verify every DKIM-Signature and DomainKey-Signature with Mail::DKIM.
/// `ignore_unsupported`: skip signatures whose algorithm Mail::DKIM lacks
/// (Debian 12's Mail::DKIM has no ed25519-sha256).
pub fn mail_dkim_verify(msg: &[u8], dns: &Dns, ignore_unsupported: bool) -> Verdict {
    let f = temp_msg(msg);
    let mut c = Command::new(interop_dir().join("mail_dkim_verify.pl"));
    c.arg(f.path()).arg(dns.port.to_string());
    if ignore_unsupported {
        c.arg("--ignore-unsupported");
    }
    run_script(&mut c)
}

/// Sign with dkimpy; `extra` e.g. `["--algo", "ed25519-sha256", "--canon", "simple/simple"]`.
/// Returns the signed message (LF line ends). Panics if signing fails.
pub fn dkimpy_sign(msg: &[u8], key: &Path, selector: &str, domain: &str, extra: &[&str]) -> Vec<u8> {
    let f = temp_msg(msg);
    let out = Command::new(interop_dir().join("dkimpy_sign.py"))
        .arg(f.path())
        .arg("--key")
        .arg(key)
        .args(["--selector", selector, "--domain", domain])
        .args(extra)
        .output()
        .expect("run dkimpy_sign.py");
    assert!(out.status.success(), "dkimpy_sign.py failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// mail-auth's authenticator asking the loopback `dns`, and the runtime to drive it: the
/// differential oracle of the DKIM and ARC tests.
pub fn mail_auth_for(dns: &Dns) -> (tokio::runtime::Runtime, mail_auth::MessageAuthenticator) {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut ns = NameServerConfig::udp_and_tcp("127.0.0.1".parse().unwrap());
    for c in &mut ns.connections {
        c.port = dns.port;
    }
    let auth =
        mail_auth::MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), ResolverOpts::default())
            .unwrap();
    (rt, auth)
}

/// Seal with dkimpy's ARC sealer (`dkim.arc_sign`) as authserv-id `srv_id`, whose
/// Authentication-Results fields in `msg` give the verdicts and cv=. Returns the sealed message
/// (LF line ends). Panics when dkimpy adds no set.
pub fn dkimpy_arc_sign(msg: &[u8], key: &Path, selector: &str, domain: &str, srv_id: &str) -> Vec<u8> {
    let f = temp_msg(msg);
    let out = Command::new(interop_dir().join("dkimpy_arc.py"))
        .arg("sign")
        .arg(f.path())
        .arg("--key")
        .arg(key)
        .args(["--selector", selector, "--domain", domain, "--srv-id", srv_id])
        .output()
        .expect("run dkimpy_arc.py");
    assert!(out.status.success(), "dkimpy_arc.py sign failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Validate the ARC chain with dkimpy (`dkim.arc_verify`), keys from `dns`: ok only for cv=pass;
/// the report is `cv=<result> <reason>`.
pub fn dkimpy_arc_verify(msg: &[u8], dns: &Dns) -> Verdict {
    let f = temp_msg(msg);
    run_script(
        Command::new(interop_dir().join("dkimpy_arc.py")).arg("verify").arg(f.path()).arg("--dns").arg(dns.addr()),
    )
}

/// Sign with Mail::DKIM; `extra` e.g. `["relaxed/relaxed", "rsa-sha1"]` or
/// `["--domainkeys", "nofws"]`. Returns the signed message (LF line ends).
pub fn mail_dkim_sign(msg: &[u8], key: &Path, selector: &str, domain: &str, extra: &[&str]) -> Vec<u8> {
    let f = temp_msg(msg);
    let out = Command::new(interop_dir().join("mail_dkim_sign.pl"))
        .arg(f.path())
        .arg(key)
        .args([selector, domain])
        .args(extra)
        .output()
        .expect("run mail_dkim_sign.pl");
    assert!(out.status.success(), "mail_dkim_sign.pl failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

// ---------------------------------------------------------------------------
// Small byte helpers

/// LF -> CRLF, leaving an existing CRLF alone.
pub fn lf_to_crlf(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len() + b.len() / 16);
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' && (i == 0 || b[i - 1] != b'\r') {
            v.push(b'\r');
        }
        v.push(c);
    }
    v
}

/// CRLF -> LF.
pub fn crlf_to_lf(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
            continue;
        }
        v.push(c);
    }
    v
}

/// The header block of a message (up to, not including, the first empty
/// line), split into fields with their continuation lines joined (line ends
/// kept). Handles LF and CRLF.
pub fn header_fields(msg: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(msg);
    let mut fields: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        if line == "\n" || line == "\r\n" {
            break;
        }
        if (line.starts_with(' ') || line.starts_with('\t')) && !fields.is_empty() {
            fields.last_mut().unwrap().push_str(line);
        } else {
            fields.push(line.to_string());
        }
    }
    fields
}

/// The header fields named `name` (case-insensitive), top first.
pub fn headers_named(msg: &[u8], name: &str) -> Vec<String> {
    header_fields(msg)
        .into_iter()
        .filter(|f| f.split_once(':').map(|(n, _)| n.trim_end().eq_ignore_ascii_case(name)).unwrap_or(false))
        .collect()
}

// ---------------------------------------------------------------------------
// recqueue's JSON side files

/// A parsed JSON value (recqueue's side files).
pub use serde_json::Value as Json;

/// The strings of a JSON array (other elements skipped); empty for anything else.
pub fn str_list(v: &Json) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}
