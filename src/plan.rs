//! From the environment and the control files to the tasks of a run: the one place that knows
//! both `config` (what the environment and control files say) and the methods (`dkim`,
//! `domainkeys`), and turns the one into the plain options of the other.

use crate::arc::seal::ArcSealTask;
use crate::arc::verify::ArcVerifyTask;
use crate::config::control::{self, lookup_dkimkeys, parse_dkimkeys, EnvChange};
use crate::config::{authserv_id, key_selector, signing_domain, ControlDir, Env, KeyChoice, KeyFile, Mode};
use crate::dkim::key::SigningKey;
use crate::dkim::options;
use crate::dkim::policy::{Practice, PracticePlan, DEFAULT_PRACTICE_LETTERS};
use crate::dkim::sign::{default_header_list, SignParams};
use crate::dkim::sign_task::Signer;
use crate::dkim::verify::{self, Outcome};
use crate::dkim::verify_task::VerifyTask;
use crate::dkim::HashAlg;
use crate::dmarc::task::{DmarcSettings, DmarcTask};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::message::Headers;
use crate::spf::{SpfSettings, SpfTask};
use crate::task::{Context, Task};

/// The tasks for a message whose header block is `headers`, in header order: the first task's
/// headers end up on top. DomainKeys comes after DKIM, so a DKIM-Signature ends up above the
/// DomainKey-Signature.
///
/// The queue-time checks finish in the order their results appear in the one
/// Authentication-Results field: SPF, DKIM, DKIM2, DomainKeys, DMARC (which reads SPF's and
/// DKIM's results), ARC, then the ARC seal (which carries all of them).
pub fn tasks(env: &Env, control: &ControlDir, mode: &Mode, headers: &Headers, now: u64) -> Result<Vec<Box<dyn Task>>> {
    let checks = Checks::from_env(env);
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    if let Some(letters) = &checks.spf {
        tasks.push(Box::new(SpfTask::new(SpfSettings {
            letters: letters.clone(),
            client_ip: client_ip(env),
            helo: env.nonempty("HELOHOST").map(|h| h.trim().trim_end_matches('.').to_string()),
            host_domain: host_domain(env, control),
        })));
    }
    match mode {
        Mode::Sign { template } => {
            for job in sign_jobs(env, control, template, headers, now)? {
                if let Some(s) = load_signer(job)? {
                    tasks.push(Box::new(s));
                }
            }
        }
        Mode::Verify { letters } => tasks.push(verify_task(env, control, letters, headers, now)),
        // DMARC needs DKIM's results, and a seal carries them: verify, report only.
        Mode::Pass if checks.any() => tasks.push(verify_task(env, control, "", headers, now)),
        Mode::Pass => {}
    }
    if let Some(letters) = &checks.dkim2 {
        tasks.push(Box::new(crate::dkim2::task::Dkim2VerifyTask::new(headers, letters.clone())));
    }
    tasks.extend(crate::domainkeys::task::plan(env, control, headers)?);
    if let Some(letters) = &checks.dmarc {
        tasks.push(Box::new(DmarcTask::new(DmarcSettings {
            letters: letters.clone(),
            reports: env.nonempty("DMARCREPORTS").map(std::path::PathBuf::from),
            client_ip: client_ip(env),
        })));
    }
    if let Some(letters) = &checks.arc {
        tasks.push(Box::new(ArcVerifyTask::new(headers, letters.clone(), now)));
    }
    if let Some(template) = &checks.arc_sign {
        if let Some(seal) = arc_sealer(env, control, template, headers, now)? {
            tasks.push(Box::new(seal));
        }
    }
    Ok(tasks)
}

/// Whether this run writes an `Authentication-Results` field, and so removes the incoming fields
/// that claim our verdicts (`headers::forged`): DKIM verification, DomainKeys verification, or
/// a queue-time check. run() decides the removal by this before any task finishes, so that a
/// signature or seal made in the same run covers the message as it is queued.
pub fn removes_forged(env: &Env, mode: &Mode) -> bool {
    matches!(mode, Mode::Verify { .. })
        || Checks::from_env(env).any()
        || matches!(crate::domainkeys::task::dk_mode(env), Some(crate::domainkeys::task::DkMode::Verify { .. }))
}

fn verify_task(env: &Env, control: &ControlDir, letters: &str, headers: &Headers, now: u64) -> Box<dyn Task> {
    let (env2, control2) = (env.clone(), control.clone());
    let practice = Box::new(move |o: Outcome| practice_plan(&env2, &control2, o));
    Box::new(VerifyTask::new(letters, &verify_options(env), headers, now, practice))
}

/// Which queue-time checks run, with their letters (empty: report only). docs/dmarc.md.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    pub spf: Option<String>,
    pub dmarc: Option<String>,
    pub arc: Option<String>,
    /// `ARCSIGN`: the key path template of the seal.
    pub arc_sign: Option<String>,
    /// `DKIM2VERIFY` (experimental, docs/dkim2.md).
    pub dkim2: Option<String>,
}

impl Checks {
    /// `SPFVERIFY`, `DMARCVERIFY`, `ARCVERIFY`, `ARCSIGN`. A relay client (`RELAYCLIENT` or
    /// `AUTHINFO` set: our own users) is not checked: its address is not the sender domain's
    /// server, so SPF and DMARC would fail it. DMARC needs SPF, so it runs SPF (report only
    /// unless `SPFVERIFY` says more); a seal needs the chain's verdict, so it runs ARC.
    pub fn from_env(env: &Env) -> Checks {
        let relay = env.is_set("RELAYCLIENT") || env.is_set("AUTHINFO");
        let get = |v: &str| if relay { None } else { env.get(v).map(str::to_string) };
        let (mut spf, dmarc, mut arc) = (get("SPFVERIFY"), get("DMARCVERIFY"), get("ARCVERIFY"));
        if dmarc.is_some() && spf.is_none() {
            spf = Some(String::new());
        }
        let arc_sign = env.nonempty("ARCSIGN").map(str::to_string);
        if arc_sign.is_some() && arc.is_none() {
            arc = Some(String::new());
        }
        Checks { spf, dmarc, arc, arc_sign, dkim2: get("DKIM2VERIFY") }
    }

    fn any(&self) -> bool {
        self.spf.is_some() || self.dmarc.is_some() || self.arc.is_some() || self.dkim2.is_some()
    }
}

/// `TCPREMOTEIP` (tcpserver's; an IPv4-mapped IPv6 address counts as IPv4). `None` for local
/// injection, or a value that is no address (with a line on descriptor 2).
pub fn client_ip(env: &Env) -> Option<std::net::IpAddr> {
    use std::net::IpAddr;
    let v = env.nonempty("TCPREMOTEIP")?.trim();
    let v = v.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(v);
    match v.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        Ok(ip) => Some(ip),
        Err(_) => {
            eprintln!("qmail-dkim: warning: TCPREMOTEIP {v:?} is not an IP address; SPF is none");
            None
        }
    }
}

/// Our host name for SPF's `%{r}`: control/me, else the system's.
fn host_domain(env: &Env, control: &ControlDir) -> String {
    control.first_line("me").ok().flatten().unwrap_or_else(|| authserv_id(env, control))
}

/// The sealing domain: `ARCDOMAIN`; else, for a relay client (our own user), the domain DKIM
/// would sign for; else the host name in control/me. Never the message's for a client from
/// outside: its fields would let any sender choose which hosted domain's key seals.
pub fn seal_domain(env: &Env, control: &ControlDir, headers: &Headers) -> Result<String> {
    let norm = |d: &str| d.trim().trim_end_matches('.').to_ascii_lowercase();
    if let Some(d) = env.nonempty("ARCDOMAIN") {
        return Ok(norm(d));
    }
    if env.is_set("RELAYCLIENT") || env.is_set("AUTHINFO") {
        return signing_domain(headers, env, control)?.ok_or(Error::NoDomain);
    }
    let me = control.first_line("me")?.map(|d| norm(&d)).filter(|d| !d.is_empty());
    me.ok_or_else(|| Error::Config("no sealing domain: set ARCDOMAIN, or the host name in control/me".into()))
}

/// The ARC sealer: `ARCSIGN` is a key path template as for DKIMSIGN (`%` = the sealing domain,
/// [`seal_domain`]). `None` when a `%` template finds no key.
pub fn arc_sealer(
    env: &Env,
    control: &ControlDir,
    template: &str,
    headers: &Headers,
    now: u64,
) -> Result<Option<ArcSealTask>> {
    let choice = KeyChoice::new(control, template, &seal_domain(env, control, headers)?);
    let Some(KeyFile { path, pem, mode }) = choice.find_file()? else {
        eprintln!("qmail-dkim: {}: not sealed", choice.no_key());
        return Ok(None);
    };
    warn_key_mode(&path, mode);
    let key = SigningKey::from_pem(&pem, false).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    let selector = key_selector(&path, &pem).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    Ok(Some(ArcSealTask::new(headers, key, choice.domain, selector, now)))
}

/// The DKIM2 signer of qmail-dkim-remote: `DKIM2SIGN` is a key path template as for DKIMSIGN
/// (`%` = `domain`, the envelope sender's). `None` when a `%` template finds no key.
pub fn dkim2_signer(
    control: &ControlDir,
    template: &str,
    domain: &str,
    headers: &Headers,
    now: u64,
) -> Result<Option<crate::dkim2::task::Dkim2SignTask>> {
    let choice = KeyChoice::new(control, template, domain);
    let Some(KeyFile { path, pem, mode }) = choice.find_file()? else {
        eprintln!("qmail-dkim: DKIM2: {}: not signed", choice.no_key());
        return Ok(None);
    };
    warn_key_mode(&path, mode);
    let key = SigningKey::from_pem(&pem, false).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    let selector = key_selector(&path, &pem).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    Ok(Some(crate::dkim2::task::Dkim2SignTask::new(headers, key, choice.domain, selector, now)))
}

/// The settings that change DKIM verdicts.
/// Calls `f` with the [`Context`] tasks finish with: the message, the envelope, `VERBOSE`, and the
/// authserv-id and a resolver, made only when a task asks (qmail-dkim and qmail-dkim-remote).
pub fn with_context<R>(
    env: &Env,
    control: &ControlDir,
    headers: &Headers,
    queued: &Headers,
    envelope: &Envelope,
    now: u64,
    f: impl FnOnce(&Context<'_>) -> R,
) -> R {
    let authserv = || authserv_id(env, control);
    // One resolver and its DNS time budgets for the whole message (crate::dns::unchosen), made
    // when a task first asks (a message that is only signed never reads DNSCACHEIP).
    let cell = std::cell::OnceCell::new();
    let shared = || cell.get_or_init(|| std::rc::Rc::new(crate::dns::Hickory::from_env(env))).clone();
    let lookup = || crate::dns::keys_or_shared(env, shared);
    let resolver = || Box::new(shared()) as Box<dyn crate::dns::Resolver>;
    let ctx = Context {
        headers,
        queued,
        envelope,
        now,
        verbose: env.is_set("VERBOSE"),
        authserv_id: &authserv,
        dns: &lookup,
        resolver: &resolver,
        earlier: &[],
    };
    f(&ctx)
}

pub fn verify_options(env: &Env) -> verify::Options {
    verify::Options {
        allow_sha1: env.is_set("DKIM_ALLOW_SHA1"),
        check_all_from: env.is_set("UNSIGNED_FROM"),
        allow_unsigned_subject: env.is_set("UNSIGNED_SUBJECT"),
        honor_body_length: env.is_set("HONOR_BODYLENGTHTAG"),
        ..verify::Options::default()
    }
}

/// Whether the practice step runs for this outcome, and with what. It runs only when
/// `DKIMPRACTICE` is set and holds the outcome's letter (either case; empty means
/// [`DEFAULT_PRACTICE_LETTERS`]), and `SIGN_PRACTICE` is `adsp` (default), `ssp` or `local`
/// (any other value turns it off).
pub fn practice_plan(env: &Env, control: &ControlDir, o: Outcome) -> Result<Option<PracticePlan>> {
    let Some(letters) = env.get("DKIMPRACTICE") else { return Ok(None) };
    let letters = if letters.is_empty() { DEFAULT_PRACTICE_LETTERS } else { letters };
    if !letters.to_ascii_uppercase().contains(o.letter()) {
        return Ok(None);
    }
    let practice = match env.get("SIGN_PRACTICE").map(str::trim) {
        None | Some("") | Some("adsp") => Practice::Adsp,
        Some("ssp") => Practice::Ssp,
        Some("local") => Practice::Local,
        Some(_) => return Ok(None),
    };
    let list = |var: &str, file: &str| -> Result<Vec<String>> {
        match env.get(var) {
            Some(v) => Ok(split_list(v)),
            None => Ok(control.lines(file)?.unwrap_or_default()),
        }
    };
    Ok(Some(PracticePlan {
        practice,
        signing: list("SIGNATUREDOMAINS", "signaturedomains")?,
        nonsigning: list("NOSIGNATUREDOMAINS", "nosignaturedomains")?,
    }))
}

fn split_list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// One key and the signatures to make with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignJob {
    pub key: KeyChoice,
    /// One per algorithm; `selector` is filled in from the key file that is found.
    pub params: Vec<SignParams>,
}

/// The signing jobs for a message: the primary key (dkimkeys entry or the template), then
/// `DKIMSIGNEXTRA`. The returned order is the order of the headers, top first (the extra
/// signature goes above the primary one).
pub fn sign_jobs(env: &Env, control: &ControlDir, template: &str, headers: &Headers, now: u64) -> Result<Vec<SignJob>> {
    let domain = signing_domain(headers, env, control)?.ok_or(Error::NoDomain)?;
    sign_jobs_for(env, control, template, &domain, headers, now)
}

/// [`sign_jobs`] for a signing domain the caller chose (qmail-dkim-remote: the envelope sender's).
pub fn sign_jobs_for(
    env: &Env,
    control: &ControlDir,
    template: &str,
    domain: &str,
    headers: &Headers,
    now: u64,
) -> Result<Vec<SignJob>> {
    let domain = domain.to_string();
    let mut env = env.clone();
    let mut template = template.to_string();
    if !env.is_set("NODKIMKEYS") {
        let path = control.resolve("dkimkeys");
        if let Some(lines) = control::read_lines(&path)? {
            let entries = parse_dkimkeys(&lines, &path)?;
            if let Some(e) = lookup_dkimkeys(&entries, &domain, env.is_set("QREGEX")) {
                template = e.key.clone();
                for c in &e.envstr {
                    match c {
                        EnvChange::Set(k, v) => env.set(k, v),
                        EnvChange::Unset(k) => env.unset(k),
                    }
                }
            }
        }
    }
    let exclude: Vec<String> =
        env.get("EXCLUDE_DKIMSIGN").unwrap_or("").split(':').map(|s| s.trim().to_string()).collect();
    let names = default_header_list(headers, &exclude);
    let primary = SignJob {
        key: KeyChoice::new(control, &template, &domain),
        params: params_for(&env, "DKIMSIGNOPTIONS", &domain, &names, now)?,
    };
    let mut jobs = Vec::new();
    if let Some(extra) = env.nonempty("DKIMSIGNEXTRA") {
        jobs.push(SignJob {
            key: KeyChoice::new(control, extra, &domain),
            params: params_for(&env, "DKIMSIGNOPTIONSEXTRA", &domain, &names, now)?,
        });
    }
    jobs.push(primary);
    Ok(jobs)
}

fn params_for(env: &Env, var: &str, domain: &str, names: &[String], now: u64) -> Result<Vec<SignParams>> {
    let o = options::parse(env.get(var).unwrap_or("")).map_err(|e| Error::Config(format!("Invalid {var}: {e}")))?;
    let identity = match env.get("DKIMIDENTITY") {
        Some(i) => Some(i.to_string()).filter(|i| !i.is_empty() && i != "-"),
        None => o.identity.clone().flatten(),
    };
    let secs = match env.get("DKIMEXPIRE") {
        Some(x) if x.is_empty() || x == "-" => None,
        Some(x) => Some(x.trim().parse::<u64>().map_err(|_| Error::Config(format!("Invalid DKIMEXPIRE {x:?}")))?),
        None => match o.expire {
            None => Some(options::DEFAULT_EXPIRE),
            Some(s) => s,
        },
    };
    let timestamp = o.timestamp.then_some(now);
    Ok(o.algorithms
        .iter()
        .map(|&algorithm| SignParams {
            algorithm,
            canon: o.canon,
            domain: domain.to_string(),
            selector: String::new(),
            identity: identity.clone(),
            timestamp,
            expire: secs.map(|s| now + s),
            body_length: o.body_length,
            query_tag: o.query_tag,
            copy_headers: o.copy_headers,
            headers: names.to_vec(),
        })
        .collect())
}

/// Finds and loads the key of a job; `None` when a `%` template found no key (that domain
/// is not signed).
pub fn load_signer(job: SignJob) -> Result<Option<Signer>> {
    let Some(KeyFile { path, pem, mode }) = job.key.find_file()? else {
        eprintln!("qmail-dkim: {}: not signed", job.key.no_key());
        return Ok(None);
    };
    warn_key_mode(&path, mode);
    let need_sha1 = job.params.iter().any(|p| p.algorithm.hash() == HashAlg::Sha1);
    let key =
        SigningKey::from_pem(&pem, need_sha1).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    let selector = key_selector(&path, &pem).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    let mut params = job.params;
    for p in &mut params {
        p.selector = selector.clone();
    }
    Signer::new(key, params).map(Some).map_err(|e| Error::KeyInvalid { path, reason: e.to_string() })
}

/// A private key others can read or change is worth a warning in the log.
fn warn_key_mode(path: &std::path::Path, mode: u32) {
    if mode & 0o022 != 0 || mode & 0o004 != 0 {
        eprintln!(
            "qmail-dkim: warning: private key {} has mode {:04o}; use 0640 or 0600",
            path.display(),
            mode & 0o7777
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::Algorithm;
    use std::path::PathBuf;

    fn env(p: &[(&str, &str)]) -> Env {
        Env::from_pairs(p)
    }

    fn plan(p: Practice, signing: &[&str], nonsigning: &[&str]) -> PracticePlan {
        PracticePlan {
            practice: p,
            signing: signing.iter().map(|s| s.to_string()).collect(),
            nonsigning: nonsigning.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// From `From: x@..`: a signing domain that is not a DNS name has no key candidates.
    #[test]
    fn dot_dot_signing_domain_has_no_key_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let c = ControlDir::new(dir.path().join("sub"));
        let h = Headers::parse(b"From: x@..\n".to_vec());
        let jobs = sign_jobs(&env(&[("NODKIMKEYS", "")]), &c, "%/default", &h, 0).unwrap();
        assert!(jobs[0].key.candidates.is_empty());
    }

    #[test]
    fn jobs_with_dkimkeys_and_extra() {
        let dir = tempfile::tempdir().unwrap();
        let c = ControlDir::new(dir.path());
        std::fs::write(dir.path().join("dkimkeys"), "a.org:keys/a/sel:DKIMSIGNOPTIONS=-z 4 -t -x -,DKIMIDENTITY=\n")
            .unwrap();
        let h = Headers::parse(b"From: x@a.org\nTo: y@b.org\nX-Foo: 1\nX-Mailer: m\nReceived: r\n".to_vec());
        let jobs = sign_jobs(&env(&[("DKIMSIGNEXTRA", "/extra/%/e")]), &c, "/k/%/d", &h, 1000).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].key.candidates[0], PathBuf::from("/extra/a.org/e"));
        assert_eq!(jobs[0].params[0].algorithm, Algorithm::RsaSha256);
        assert_eq!(jobs[1].key.candidates[0], dir.path().join("keys/a/sel"));
        let p = &jobs[1].params[0];
        assert_eq!(p.algorithm, Algorithm::Ed25519Sha256);
        assert_eq!((p.timestamp, p.expire), (Some(1000), None));
        assert_eq!(p.headers, vec!["from", "to", "x-mailer", "from"]);
        assert_eq!(jobs[0].params[0].expire, Some(1000 + 604_800));
        assert!(sign_jobs(&env(&[("NODKIMKEYS", "")]), &c, "/k/%/d", &h, 0).unwrap()[0].key.candidates[0]
            .starts_with("/k/a.org"));
        assert!(matches!(
            sign_jobs(&env(&[("DKIMSIGNOPTIONS", "-z 9"), ("NODKIMKEYS", "")]), &c, "/k", &h, 0),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn checks_from_env() {
        let c = |p: &[(&str, &str)]| Checks::from_env(&env(p));
        assert_eq!(c(&[]), Checks::default());
        let s = |v: &str| Some(v.to_string());
        // DMARC runs SPF (report only); a seal runs ARC validation (report only).
        assert_eq!(c(&[("DMARCVERIFY", "R")]), Checks { spf: s(""), dmarc: s("R"), ..Checks::default() });
        assert_eq!(c(&[("DMARCVERIFY", ""), ("SPFVERIFY", "F")]).spf, s("F"));
        let seal = c(&[("ARCSIGN", "/k/%/arc")]);
        assert_eq!((seal.arc, seal.arc_sign), (s(""), s("/k/%/arc")));
        assert_eq!(c(&[("ARCSIGN", "")]), Checks::default());
        assert_eq!(c(&[("DKIM2VERIFY", "Fp")]), Checks { dkim2: s("Fp"), ..Checks::default() });
        // Relay clients are not checked; they may still seal.
        for relay in ["RELAYCLIENT", "AUTHINFO"] {
            let r = c(&[
                (relay, ""),
                ("SPFVERIFY", "F"),
                ("DMARCVERIFY", "R"),
                ("ARCVERIFY", "F"),
                ("ARCSIGN", "/k"),
                ("DKIM2VERIFY", "F"),
            ]);
            assert_eq!(r, Checks { arc: s(""), arc_sign: s("/k"), ..Checks::default() });
        }
    }

    #[test]
    fn client_address_from_tcpremoteip() {
        let ip = |v: &str| client_ip(&env(&[("TCPREMOTEIP", v)]));
        assert_eq!(ip("192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(ip("::ffff:192.0.2.1"), Some("192.0.2.1".parse().unwrap()), "IPv4-mapped counts as IPv4");
        assert_eq!(ip("[2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ip("not an address"), None);
        assert_eq!(client_ip(&env(&[])), None);
    }

    #[test]
    fn plan_from_env() {
        let dir = tempfile::tempdir().unwrap();
        let c = ControlDir::new(dir.path());
        let e = |p: &[(&str, &str)]| Env::from_pairs(p);
        assert_eq!(practice_plan(&e(&[]), &c, Outcome::NoSignatures).unwrap(), None);
        let p = practice_plan(&e(&[("DKIMPRACTICE", "")]), &c, Outcome::NoSignatures).unwrap().unwrap();
        assert_eq!(p.practice, Practice::Adsp);
        assert!(practice_plan(&e(&[("DKIMPRACTICE", "")]), &c, Outcome::Success).unwrap().is_none());
        assert!(practice_plan(&e(&[("DKIMPRACTICE", "")]), &c, Outcome::DomainNameTooLong).unwrap().is_none());
        assert!(practice_plan(&e(&[("DKIMPRACTICE", "st")]), &c, Outcome::NoSignatures).unwrap().is_some());
        assert!(practice_plan(&e(&[("DKIMPRACTICE", "ST")]), &c, Outcome::SignatureBad).unwrap().is_none());
        assert!(practice_plan(&e(&[("DKIMPRACTICE", ""), ("SIGN_PRACTICE", "none")]), &c, Outcome::NoSignatures)
            .unwrap()
            .is_none());
        std::fs::write(dir.path().join("signaturedomains"), "# comment\nexample.com\n").unwrap();
        std::fs::write(dir.path().join("nosignaturedomains"), "*\n").unwrap();
        let p = practice_plan(&e(&[("DKIMPRACTICE", ""), ("SIGN_PRACTICE", "ssp")]), &c, Outcome::SignatureBad)
            .unwrap()
            .unwrap();
        assert_eq!(p, plan(Practice::Ssp, &["example.com"], &["*"]));
        let p = practice_plan(
            &e(&[
                ("DKIMPRACTICE", ""),
                ("SIGN_PRACTICE", "local"),
                ("SIGNATUREDOMAINS", "a.org"),
                ("NOSIGNATUREDOMAINS", ""),
            ]),
            &c,
            Outcome::SignatureBad,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p, plan(Practice::Local, &["a.org"], &[]));
    }
}
