//! dkim: sign or verify a message by hand, or test a key against the DNS, with the same library
//! code as qmail-dkim. See dkim(8).

use clap::{ArgAction, Args, Parser, Subcommand};
use qmail_dkim::check::{self, Who};
use qmail_dkim::config::{self, Settings};
use qmail_dkim::dkim::canon::BodyHasher;
use qmail_dkim::dkim::key::SigningKey;
use qmail_dkim::dkim::sign;
use qmail_dkim::dkim::verify::{self, Outcome};
use qmail_dkim::dns;
use qmail_dkim::message::{find_header_end, Headers};
use qmail_dkim::tcprules;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[path = "dkim/keys.rs"]
mod keys;

#[derive(Parser)]
#[command(name = "dkim", version, about = "Sign or verify a message with DKIM, or test a key against the DNS")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sign a message (file or stdin) and write it to stdout.
    Sign(SignArgs),
    /// Verify every DKIM-Signature of a message; one line per signature.
    Verify(VerifyArgs),
    /// Check a private key against its published record.
    Testkey(TestkeyArgs),
    /// Say what qmail-dkim would do for a client and a sender, and every problem on the way.
    Check(CheckArgs),
    /// Rotate keys without outages: status, rotate, advance (for cron).
    Keys(keys::KeysArgs),
    /// DMARC aggregate reports: import the DMARCREPORTS spool, make and send the reports.
    #[command(subcommand)]
    Dmarc(DmarcCmd),
}

#[derive(Subcommand)]
enum DmarcCmd {
    /// Move the records of a DMARCREPORTS spool into the database.
    Import(ImportArgs),
    /// Make one RFC 9990 report per policy domain of a day; write (--out) or mail (--send) them.
    Report(ReportArgs),
}

#[derive(Args)]
struct ImportArgs {
    /// sqlite:PATH or postgres://...
    #[arg(long = "db", value_name = "URL", default_value = qmail_dkim::dmarc_reports::db::DEFAULT_URL)]
    db: String,
    /// The spool directory (DMARCREPORTS).
    dir: PathBuf,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["out", "send"])))]
struct ReportArgs {
    /// sqlite:PATH or postgres://...
    #[arg(long = "db", value_name = "URL", default_value = qmail_dkim::dmarc_reports::db::DEFAULT_URL)]
    db: String,
    /// The reporting organization (org_name).
    #[arg(long = "org", value_name = "NAME")]
    org: String,
    /// The reports' sender and contact address.
    #[arg(long = "from", value_name = "ADDRESS")]
    from: String,
    /// The UTC day [default: yesterday].
    #[arg(long = "day", value_name = "YYYY-MM-DD")]
    day: Option<String>,
    /// Write the .xml.gz files into this directory.
    #[arg(long = "out", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Mail each report to the rua= addresses through qmail-inject (QMAILINJECT).
    #[arg(long = "send")]
    send: bool,
    /// DNS server address, for the authorization of external destinations [default: DNSCACHEIP].
    #[arg(long = "dns", value_name = "ADDRESS")]
    dns: Option<String>,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
struct SignArgs {
    /// The private key (PEM).
    #[arg(short = 'k')]
    key: PathBuf,
    /// Selector (default: the key file's name).
    #[arg(short = 's')]
    selector: Option<String>,
    /// Signing domain (default: from Return-Path/Sender/From).
    #[arg(short = 'd')]
    domain: Option<String>,
    /// Canonicalization r|s|t|u.
    #[arg(short = 'c')]
    canon: Option<String>,
    /// Add l=.
    #[arg(short = 'l')]
    length: bool,
    /// Add q=dns/txt.
    #[arg(short = 'q')]
    query: bool,
    /// Add t=.
    #[arg(short = 't')]
    timestamp: bool,
    /// Add z= (copied headers).
    #[arg(short = 'h')]
    copy: bool,
    /// Identity (i=), - for none.
    #[arg(short = 'i')]
    identity: Option<String>,
    /// Expiry in seconds from now, - for none.
    #[arg(short = 'x')]
    expire: Option<String>,
    /// 1 rsa-sha1, 2 rsa-sha256, 3 both, 4 ed25519-sha256.
    #[arg(short = 'z')]
    hash: Option<String>,
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// The message (default: standard input).
    file: Option<PathBuf>,
}

#[derive(Args)]
struct DnsArgs {
    /// Use this key record for every lookup (no DNS).
    #[arg(long = "selector-data")]
    selector_data: Option<String>,
    /// DNS server address (127.0.0.1:5353, [::1]:53).
    #[arg(long = "dns")]
    dns: Option<String>,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    dns: DnsArgs,
    /// The message (default: standard input).
    file: Option<PathBuf>,
}

#[derive(Args)]
struct TestkeyArgs {
    #[arg(short = 'd')]
    domain: String,
    #[arg(short = 's')]
    selector: String,
    #[arg(short = 'k')]
    key: PathBuf,
    #[command(flatten)]
    dns: DnsArgs,
}

#[derive(Args)]
struct CheckArgs {
    /// The variables a tcprules line sets: 'RELAYCLIENT="",DKIMSIGN="..."'.
    #[arg(long = "env", value_name = "VARS", conflicts_with = "rules")]
    env: Option<String>,
    /// A tcprules rules text file (/etc/tcp.smtp): take the variables of the rule for --ip.
    #[arg(long = "rules", value_name = "FILE", requires = "ip")]
    rules: Option<PathBuf>,
    /// The client's IP address, for --rules.
    #[arg(long = "ip", value_name = "ADDRESS", requires = "rules")]
    ip: Option<String>,
    /// The client's host name (TCPREMOTEHOST), for =host rules.
    #[arg(long = "host", value_name = "NAME", requires = "rules")]
    host: Option<String>,
    /// The sender (From address) of a message.
    #[arg(long = "from", value_name = "ADDRESS")]
    from: Option<String>,
    /// The user qmail-dkim runs as (qmaild under qmail-smtpd) [default: the caller].
    #[arg(long = "user", value_name = "NAME")]
    user: Option<String>,
    /// DNS server address (127.0.0.1:5353, [::1]:53) [default: DNSCACHEIP, /etc/resolv.conf].
    #[arg(long = "dns", value_name = "ADDRESS")]
    dns: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Sign(a) => sign_cmd(a),
        Cmd::Verify(a) => verify_cmd(a),
        Cmd::Testkey(a) => testkey_cmd(a),
        Cmd::Check(a) => check_cmd(a),
        Cmd::Dmarc(DmarcCmd::Import(a)) => dmarc_import_cmd(a),
        Cmd::Dmarc(DmarcCmd::Report(a)) => dmarc_report_cmd(a),
        Cmd::Keys(a) => keys::run(a, now()),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("dkim: {e}");
            ExitCode::from(1)
        }
    }
}

fn read_input(file: &Option<PathBuf>) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    match file {
        Some(p) if p.as_os_str() != "-" => {
            v = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        }
        _ => {
            std::io::stdin().read_to_end(&mut v).map_err(|e| format!("cannot read standard input: {e}"))?;
        }
    }
    Ok(v)
}

fn split(msg: &[u8]) -> (Headers, usize) {
    let (end, body) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    (Headers::parse(msg[..end].to_vec()), body)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn sign_cmd(a: SignArgs) -> Result<u8, String> {
    let msg = read_input(&a.file)?;
    let (headers, body_start) = split(&msg);
    // The same option string qmail-dkim reads from DKIMSIGNOPTIONS.
    let mut opts = Vec::new();
    for (flag, on) in [("-l", a.length), ("-q", a.query), ("-t", a.timestamp), ("-h", a.copy)] {
        if on {
            opts.push(flag.to_string());
        }
    }
    for (flag, v) in [("-c", &a.canon), ("-i", &a.identity), ("-x", &a.expire), ("-z", &a.hash)] {
        if let Some(v) = v {
            opts.push(format!("{flag} {v}"));
        }
    }
    let mut pairs =
        vec![("DKIMSIGNOPTIONS", opts.join(" ")), ("NODKIMKEYS", String::new()), ("CONTROLDIR", "/nonexistent".into())];
    if let Some(d) = &a.domain {
        pairs.push(("BOUNCEDOMAIN", d.clone()));
    }
    let settings = Settings::from_pairs(&pairs);
    let template = a.key.display().to_string();
    let jobs = qmail_dkim::plan::sign_jobs(&settings, &template, &headers, now()).map_err(|e| e.to_string())?;
    let pem = std::fs::read(&a.key).map_err(|e| format!("cannot read {}: {e}", a.key.display()))?;
    let mut out = Vec::new();
    for job in jobs {
        let need_sha1 = job.params.iter().any(|p| p.algorithm.hash() == qmail_dkim::dkim::HashAlg::Sha1);
        let key = SigningKey::from_pem(&pem, need_sha1).map_err(|e| format!("{}: {e}", a.key.display()))?;
        let selector = match &a.selector {
            Some(s) => s.clone(),
            None => config::key_selector(&a.key, &pem).map_err(|e| format!("{}: {e}", a.key.display()))?,
        };
        for mut p in job.params {
            p.selector = selector.clone();
            if let Some(d) = &a.domain {
                p.domain = d.to_ascii_lowercase();
            }
            if !key.fits(p.algorithm) {
                return Err(format!(
                    "a {} key cannot make {} signatures (-z)",
                    key.key_type().as_str(),
                    p.algorithm.as_str()
                ));
            }
            let mut h = BodyHasher::new(p.canon.body, p.algorithm.hash(), None);
            h.update(&msg[body_start.min(msg.len())..]);
            let (hash, len) = h.finish();
            out.extend(sign::sign(&headers, &p, &hash, len, &key)?);
        }
    }
    out.extend_from_slice(&msg);
    std::io::stdout().write_all(&out).map_err(|e| format!("cannot write: {e}"))?;
    Ok(0)
}

fn lookup(d: &DnsArgs) -> Box<dyn dns::TxtLookup> {
    let mut set = Vec::new();
    if let Some(s) = &d.selector_data {
        set.push(("SELECTOR_DATA", s.as_str()));
    }
    if let Some(a) = &d.dns {
        set.push(("DNSCACHEIP", a.as_str()));
    }
    dns::from_settings(&Settings::from_process_with(&set, &["SELECTOR_DATA"]).dns)
}

fn verify_cmd(a: VerifyArgs) -> Result<u8, String> {
    let msg = read_input(&a.file)?;
    let settings = Settings::from_process();
    let report = verify::verify_message(&msg, &*lookup(&a.dns), &qmail_dkim::plan::verify_options(&settings), now());
    for r in &report.results {
        println!(
            "d={} s={} a={} {} {}{}",
            r.domain.as_deref().unwrap_or("-"),
            r.selector.as_deref().unwrap_or("-"),
            r.algorithm.as_deref().unwrap_or("-"),
            r.outcome.letter(),
            r.outcome.status_text(),
            if r.detail.is_empty() { String::new() } else { format!(" ({})", r.detail) }
        );
    }
    let overall = report.overall();
    println!("overall: {} {}", overall.letter(), overall.status_text());
    Ok(match overall {
        Outcome::Success => 0,
        o if o.letter() == 'P' => 3,
        _ => 1,
    })
}

fn testkey_cmd(a: TestkeyArgs) -> Result<u8, String> {
    let pem = std::fs::read(&a.key).map_err(|e| format!("cannot read {}: {e}", a.key.display()))?;
    let key = SigningKey::from_pem(&pem, false).map_err(|e| format!("{}: {e}", a.key.display()))?;
    let mine = key.public_key_dns();
    let name = format!("{}._domainkey.{}", a.selector, a.domain);
    let (verdict, code) = check::judge(&lookup(&a.dns).txt(&name), &mine, key.key_type());
    println!("{name}: {verdict}");
    Ok(code)
}

fn check_cmd(a: CheckArgs) -> Result<u8, String> {
    let mut out = check::Report::default();
    let mut vars = match (&a.rules, &a.ip) {
        (Some(file), Some(ip)) => rule_vars(file, ip, a.host.as_deref(), &mut out)?,
        _ => env_vars(a.env.as_deref().unwrap_or(""))?,
    };
    if let Some(d) = &a.dns {
        vars.push(("DNSCACHEIP".into(), d.clone()));
    }
    // What qmail-dkim would read: the environment here, with the rule's variables.
    let settings = Settings::from_process_with(&vars, &[]);
    let who = match a.user.as_deref().map(Who::lookup).transpose() {
        Ok(w) => w,
        Err(e) => {
            out.problem(e);
            None
        }
    };
    let req = check::Request { settings: &settings, from: a.from.as_deref(), user: who.as_ref(), now: now() };
    let lookup = dns::from_settings(&settings.dns);
    check::check(&req, &*lookup, &mut out);
    keys::check(&settings, &*lookup, &mut out);
    for l in &out.lines {
        println!("{l}");
    }
    for p in &out.problems {
        println!("problem: {p}");
    }
    if out.problems.is_empty() {
        println!("ok: qmail-dkim would work as shown");
        Ok(0)
    } else {
        Ok(1)
    }
}

/// A rules text file is never longer than this (a few thousand lines is a big one).
const MAX_RULES_FILE: u64 = 16 << 20;

/// `--env`: the variables as a rule writes them, or a whole rule line pasted from the rules file.
fn env_vars(s: &str) -> Result<tcprules::Vars, String> {
    if s.contains(":allow") || s.contains(":deny") {
        let rules = tcprules::parse(s).map_err(|e| format!("--env: {e}"))?;
        return Ok(rules.into_iter().flat_map(|r| r.vars).collect());
    }
    tcprules::parse_env(s).map_err(|why| format!("--env: {why}"))
}

/// The variables of the rule tcpserver would apply to `ip`, reporting which one it is.
fn rule_vars(file: &Path, ip: &str, host: Option<&str>, out: &mut check::Report) -> Result<tcprules::Vars, String> {
    let mut text = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_RULES_FILE + 1).read_to_end(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if text.len() as u64 > MAX_RULES_FILE {
        return Err(format!("{} is over {} MiB: not a rules file", file.display(), MAX_RULES_FILE >> 20));
    }
    let rules = tcprules::parse(&String::from_utf8_lossy(&text)).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut cdb = file.as_os_str().to_os_string();
    cdb.push(".cdb");
    let (src, bin) =
        (std::fs::metadata(file).and_then(|m| m.modified()), std::fs::metadata(&cdb).and_then(|m| m.modified()));
    if let (Ok(s), Ok(b)) = (src, bin) {
        if s > b {
            out.problem(format!(
                "{} is newer than {}: tcpserver still uses the old rules; run tcprules",
                file.display(),
                PathBuf::from(&cdb).display()
            ));
        }
    }
    let Some(rule) = tcprules::find(&rules, ip, host, None) else {
        out.say(format!("rule: none in {} matches {ip}: tcpserver allows it and sets nothing", file.display()));
        return Ok(Vec::new());
    };
    out.say(format!("rule: {} line {} ({}:...)", file.display(), rule.line, rule.address));
    if rule.deny {
        out.problem(format!("the rule for {ip} is deny: tcpserver refuses the connection"));
    }
    Ok(rule.vars.clone())
}

fn dmarc_import_cmd(a: ImportArgs) -> Result<u8, String> {
    use qmail_dkim::dmarc_reports::{self as reports, db::Db};
    use std::io::IsTerminal;
    let mut db = Db::open(&a.db).map_err(|e| e.to_string())?;
    let tty = std::io::stderr().is_terminal();
    let mut progress = |d: &reports::Imported| {
        if tty {
            eprint!("\rdkim: {} records imported", d.counted);
        }
    };
    let done = reports::import(&mut db, &a.dir, &mut progress).map_err(|e| e.to_string())?;
    if tty {
        eprintln!();
    }
    println!("{} records imported, {} counted before, {} not records", done.counted, done.again, done.bad);
    Ok(u8::from(done.bad > 0))
}

fn dmarc_report_cmd(a: ReportArgs) -> Result<u8, String> {
    use qmail_dkim::dmarc_reports::{self as reports, db::Db, xml::Reporter, Target};
    if !a.from.rsplit_once('@').is_some_and(|(l, d)| !l.is_empty() && qmail_dkim::domain::is_dns_name(d)) {
        eprintln!("dkim: --from {}: not an address", a.from);
        return Ok(2);
    }
    let day = a.day.clone().unwrap_or_else(|| reports::day_of(now().saturating_sub(reports::DAY)));
    if reports::parse_day(&day).is_none() {
        eprintln!("dkim: --day {day}: not a day (YYYY-MM-DD)");
        return Ok(2);
    }
    let who = Reporter { org: a.org.clone(), email: a.from.clone() };
    let mut db = Db::open(&a.db).map_err(|e| e.to_string())?;
    let set: Vec<(&str, &str)> = a.dns.iter().map(|d| ("DNSCACHEIP", d.as_str())).collect();
    let settings = Settings::from_process_with(&set, &[]);
    let resolver = dns::Hickory::from_settings(&settings.dns);
    let inject = settings.qmailinject.clone().unwrap_or_else(|| "/var/qmail/bin/qmail-inject".to_string());
    let target = match &a.out {
        Some(dir) => Target::Out(dir),
        None => Target::Send { inject: &inject, resolver: &resolver },
    };
    let done = reports::report(&mut db, &day, &who, target).map_err(|e| e.to_string())?;
    for p in &done.written {
        println!("{}", p.display());
    }
    for (to, id) in &done.sent {
        println!("sent {id} to {to}");
    }
    if done.other_sender {
        println!("another host is sending the reports: nothing sent");
    }
    for f in &done.failed {
        eprintln!("dkim: {f}");
    }
    Ok(u8::from(!done.failed.is_empty()))
}
