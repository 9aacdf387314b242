//! The one plan: from the settings (`config::Settings`, the one reading of the environment
//! and the control files) to what runs for a message ([`Plan`]: which tasks, with which letters
//! and key templates, whether forged status fields go, what the log says about the mode), then
//! the tasks themselves ([`tasks`]: signing domains, sign jobs, keys loaded). qmail-dkim,
//! qmail-dkim-remote and `dkim check` all decide through [`Plan::new`]. This is the one place
//! that knows both `config` and the methods (`dkim`, `domainkeys`, ...), and turns the one
//! into the plain options of the other.

use crate::arc::seal::ArcSealTask;
use crate::arc::task::ArcVerifyTask;
use crate::config::control::lookup_dkimkeys;
use crate::config::settings::{PracticeVars, SignVars};
use crate::config::{authserv_id, key_selector, signing_domain, ControlDir, KeyChoice, KeyFile, Settings, DEFAULT_KEY};
use crate::dkim::key::SigningKey;
use crate::dkim::options;
use crate::dkim::policy::{Practice, PracticeRules, DEFAULT_PRACTICE_LETTERS};
use crate::dkim::sign::{default_header_list, SignParams};
use crate::dkim::task::Signer;
use crate::dkim::task::VerifyTask;
use crate::dkim::verify::{self, Outcome};
use crate::dkim::HashAlg;
use crate::dmarc::task::{DmarcSettings, DmarcTask};
use crate::domainkeys::task::{DkSigner, DkVerifier};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::message::Headers;
use crate::spf::{SpfSettings, SpfTask};
use crate::task::{Context, Task};

/// Where the message is: entering the queue (qmail-dkim, `dkim check`) or leaving it
/// (qmail-dkim-remote, which only signs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Entry,
    Exit,
}

/// What DKIM does with this message, decided as indimail's qmail-dkim decides it
/// (qmail-dkim(8)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A relay client with `RELAYCLIENT_NODKIMVERIFY`, or a DomainKeys-only setup: DKIM does
    /// nothing.
    Pass,
    /// Sign with this key path template (`%` = signing domain).
    Sign { template: String },
    /// Verify; the letters decide refusals (empty: refuse nothing).
    Verify { letters: String },
}

/// What DomainKeys does with this message (it is opt-in: `None` unless `DKSIGN`/`DKVERIFY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DkMode {
    /// Sign with this key path template (`%` = signing domain).
    Sign { template: String },
    /// Verify; these letters refuse.
    Verify { letters: String },
}

/// qmail-dk's default DomainKeys key.
pub(crate) const DEFAULT_DK_KEY: &str = "/etc/domainkeys/%/default";

/// What runs for a message, decided from the settings alone, before the header block is read:
/// the queue program is started at once, and which one it is (`DKQUEUE`) depends on this. The
/// header block then only decides the signing domains ([`sign_jobs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// DKIM's mode, as the log line and `dkim check` name it.
    pub(crate) mode: Mode,
    /// DKIM passes, but a queue-time check needs DKIM's results (DMARC reads them, a seal
    /// carries them): verify, refuse nothing.
    pub(crate) verify_for_checks: bool,
    pub(crate) domainkeys: Option<DkMode>,
    /// SPF, DMARC, ARC, the seal, DKIM2 verification.
    pub(crate) checks: Checks,
    /// qmail-dkim-remote: `DKIM2SIGN`, the DKIM2 key path template.
    pub(crate) dkim2_sign: Option<String>,
    /// An `Authentication-Results` field is written, so the incoming fields that claim our
    /// verdicts go (`headers::forged`), decided before any task finishes, so that a signature
    /// or seal made in the same run covers the message as it is queued.
    pub(crate) removes_forged: bool,
    /// `DKQUEUE` applies: DomainKeys is configured and DKIM does nothing.
    pub(crate) dk_only: bool,
    /// The options that change DKIM verdicts.
    pub(crate) verify: verify::Options,
}

impl Plan {
    /// The plan for a run at `stage`: a pure function of the settings.
    pub(crate) fn new(s: &Settings, stage: Stage) -> Plan {
        let verify = verify_options(s);
        if stage == Stage::Exit {
            return Plan {
                mode: Mode::Sign { template: remote_template(s) },
                verify_for_checks: false,
                domainkeys: None,
                checks: Checks::default(),
                dkim2_sign: s.dkim2sign.clone(),
                removes_forged: false,
                dk_only: false,
                verify,
            };
        }
        let mode = dkim_mode(s);
        let domainkeys = dk_mode(s);
        let checks = Checks::new(s);
        Plan {
            verify_for_checks: mode == Mode::Pass && checks.any(),
            removes_forged: matches!(mode, Mode::Verify { .. })
                || checks.any()
                || matches!(domainkeys, Some(DkMode::Verify { .. })),
            dk_only: dk_only(s, &mode),
            mode,
            domainkeys,
            checks,
            dkim2_sign: None,
            verify,
        }
    }

    /// The modes the `DKIMLOG` line names: DKIM's (sign, verify, pass) and DomainKeys' when on.
    pub(crate) fn log_modes(&self) -> (&'static str, Option<&'static str>) {
        let mode = match self.mode {
            Mode::Sign { .. } => "sign",
            Mode::Verify { .. } => "verify",
            Mode::Pass => "pass",
        };
        let dk = self.domainkeys.as_ref().map(|m| match m {
            DkMode::Sign { .. } => "sign",
            DkMode::Verify { .. } => "verify",
        });
        (mode, dk)
    }
}

/// DKIM's mode: `DKIMSIGN` signs; a qmail-dk setup (`DKSIGN` or `DKVERIFY`, no `DKIMVERIFY`)
/// passes; a relay client verifies with `DKIMVERIFY` (or passes with a bypass variable), else
/// signs; anyone else is verified.
pub(crate) fn dkim_mode(s: &Settings) -> Mode {
    let key = || s.dkimkey.clone().unwrap_or_else(|| DEFAULT_KEY.to_string());
    if let Some(t) = &s.dkimsign {
        return Mode::Sign { template: if t.is_empty() { key() } else { t.clone() } };
    }
    // A qmail-dk setup (DKSIGN or DKVERIFY, no DKIM variable) gets DomainKeys only, as it did
    // from qmail-dk: no DKIM default key, no DKIM-Status on every message.
    if s.dkimverify.is_none() && (s.dksign.is_some() || s.dkverify.is_some()) {
        return Mode::Pass;
    }
    let bypass = s.relay_nodkimverify || s.relay_nodkverify;
    match &s.dkimverify {
        Some(_) if s.relay() && bypass => Mode::Pass,
        Some(l) => Mode::Verify { letters: l.clone() },
        None if s.relay() => Mode::Sign { template: key() },
        None => Mode::Verify { letters: String::new() },
    }
}

/// `DKSIGN` set: sign (empty: [`DEFAULT_DK_KEY`]); else `DKVERIFY` set: verify, unless the
/// client is a relay client and `RELAYCLIENT_NODKVERIFY` (or `RELAYCLIENT_NODKIMVERIFY`) is
/// set; else nothing (DomainKeys is opt-in).
pub(crate) fn dk_mode(s: &Settings) -> Option<DkMode> {
    if let Some(t) = &s.dksign {
        let t = if t.is_empty() { DEFAULT_DK_KEY } else { t };
        return Some(DkMode::Sign { template: t.to_string() });
    }
    let letters = s.dkverify.as_ref()?;
    if s.relay() && (s.relay_nodkverify || s.relay_nodkimverify) {
        return None;
    }
    Some(DkMode::Verify { letters: letters.clone() })
}

/// Whether `DKQUEUE` applies: DomainKeys is configured and DKIM does nothing for this message.
pub(crate) fn dk_only(s: &Settings, dkim: &Mode) -> bool {
    (s.dksign.is_some() || s.dkverify.is_some()) && *dkim == Mode::Pass
}

/// qmail-dkim-remote's key template: `DKIMSIGN`, else `DKIMKEY`, else `domainkeys/%/default`.
pub(crate) fn remote_template(s: &Settings) -> String {
    s.dkimsign.clone().filter(|t| !t.is_empty()).or_else(|| s.dkimkey.clone()).unwrap_or_else(|| DEFAULT_KEY.into())
}

/// The tasks for a message whose header block is `headers`, in header order: the first task's
/// headers end up on top. DomainKeys comes after DKIM, so a DKIM-Signature ends up above the
/// DomainKey-Signature. Keys are found and loaded here.
///
/// The queue-time checks finish in the order their results appear in the one
/// Authentication-Results field: SPF, DKIM, DKIM2, DomainKeys, DMARC (which reads SPF's and
/// DKIM's results), ARC, then the ARC seal (which carries all of them).
pub(crate) fn tasks(s: &Settings, plan: &Plan, headers: &Headers, now: u64) -> Result<Vec<Box<dyn Task>>> {
    let checks = &plan.checks;
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    if let Some(letters) = &checks.spf {
        tasks.push(Box::new(SpfTask::new(SpfSettings {
            letters: letters.clone(),
            client_ip: s.client_ip(),
            helo: s.helohost.clone(),
            host_domain: host_domain(s),
        })));
    }
    match &plan.mode {
        Mode::Sign { template } => {
            for job in sign_jobs(s, template, headers, now)? {
                if let Some(signer) = load_signer(job)? {
                    tasks.push(Box::new(signer));
                }
            }
        }
        Mode::Verify { letters } => tasks.push(verify_task(s, plan, letters, headers, now)),
        Mode::Pass if plan.verify_for_checks => tasks.push(verify_task(s, plan, "", headers, now)),
        Mode::Pass => {}
    }
    if let Some(letters) = &checks.dkim2 {
        tasks.push(Box::new(crate::dkim2::task::Dkim2VerifyTask::new(headers, letters.clone())));
    }
    match &plan.domainkeys {
        None => {}
        Some(DkMode::Sign { template }) => {
            if let Some(signer) = dk_signer(s, headers, template)? {
                tasks.push(Box::new(signer));
            }
        }
        Some(DkMode::Verify { letters }) => tasks.push(Box::new(DkVerifier::new(headers, letters.clone()))),
    }
    if let Some(letters) = &checks.dmarc {
        tasks.push(Box::new(DmarcTask::new(DmarcSettings { letters: letters.clone() })));
    }
    if let Some(letters) = &checks.arc {
        tasks.push(Box::new(ArcVerifyTask::new(headers, letters.clone(), now)));
    }
    if let Some(template) = &checks.arc_sign {
        if let Some(seal) = arc_sealer(s, template, headers, now)? {
            tasks.push(Box::new(seal));
        }
    }
    Ok(tasks)
}

fn verify_task(s: &Settings, plan: &Plan, letters: &str, headers: &Headers, now: u64) -> Box<dyn Task> {
    let vars = s.practice.clone();
    let practice = Box::new(move |o: Outcome| practice_rules(&vars, o));
    Box::new(VerifyTask::new(letters, &plan.verify, headers, now, practice))
}

/// Which queue-time checks run, with their letters (empty: report only). docs/dmarc.md.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Checks {
    pub(crate) spf: Option<String>,
    pub(crate) dmarc: Option<String>,
    pub(crate) arc: Option<String>,
    /// `ARCSIGN`: the key path template of the seal.
    pub(crate) arc_sign: Option<String>,
    /// `DKIM2VERIFY` (experimental, docs/dkim2.md).
    pub(crate) dkim2: Option<String>,
}

impl Checks {
    /// `SPFVERIFY`, `DMARCVERIFY`, `ARCVERIFY`, `ARCSIGN`. A relay client (`RELAYCLIENT` or
    /// `AUTHINFO` set: our own users) is not checked: its address is not the sender domain's
    /// server, so SPF and DMARC would fail it. DMARC needs SPF, so it runs SPF (report only
    /// unless `SPFVERIFY` says more); a seal needs the chain's verdict, so it runs ARC.
    pub(crate) fn new(s: &Settings) -> Checks {
        let get = |v: &Option<String>| if s.relay() { None } else { v.clone() };
        let (mut spf, dmarc, mut arc) = (get(&s.spfverify), get(&s.dmarcverify), get(&s.arcverify));
        if dmarc.is_some() && spf.is_none() {
            spf = Some(String::new());
        }
        let arc_sign = s.arcsign.clone();
        if arc_sign.is_some() && arc.is_none() {
            arc = Some(String::new());
        }
        Checks { spf, dmarc, arc, arc_sign, dkim2: get(&s.dkim2verify) }
    }

    pub(crate) fn any(&self) -> bool {
        self.spf.is_some() || self.dmarc.is_some() || self.arc.is_some() || self.dkim2.is_some()
    }
}

/// Our host name for SPF's `%{r}`: control/me, else the system's.
fn host_domain(s: &Settings) -> String {
    s.me().ok().flatten().unwrap_or_else(|| authserv_id(s))
}

/// The sealing domain: `ARCDOMAIN`; else, for a relay client (our own user), the domain DKIM
/// would sign for; else the host name in control/me. Never the message's for a client from
/// outside: its fields would let any sender choose which hosted domain's key seals.
pub(crate) fn seal_domain(s: &Settings, headers: &Headers) -> Result<String> {
    if let Some(d) = &s.arcdomain {
        return Ok(d.clone());
    }
    if s.relay() {
        return signing_domain(headers, s)?.ok_or(Error::NoDomain);
    }
    let norm = |d: &str| d.trim().trim_end_matches('.').to_ascii_lowercase();
    let me = s.me()?.map(|d| norm(&d)).filter(|d| !d.is_empty());
    me.ok_or_else(|| Error::Config("no sealing domain: set ARCDOMAIN, or the host name in control/me".into()))
}

/// The ARC sealer: `ARCSIGN` is a key path template as for DKIMSIGN (`%` = the sealing domain,
/// [`seal_domain`]). `None` when a `%` template finds no key.
pub(crate) fn arc_sealer(s: &Settings, template: &str, headers: &Headers, now: u64) -> Result<Option<ArcSealTask>> {
    let choice = KeyChoice::new(&s.control, template, &seal_domain(s, headers)?);
    let Some(KeyFile { path, pem, mode }) = choice.find_file()? else {
        eprintln!("qmail-dkim: {}: not sealed", choice.no_key());
        return Ok(None);
    };
    warn_key_mode(&path, mode);
    let key = SigningKey::from_pem(&pem, false).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    let selector = key_selector(&path, &pem).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    Ok(Some(ArcSealTask::new(headers, key, choice.domain, selector, now)))
}

/// The DomainKeys signer; `None` when this message is not signed (no sender domain, or a `%`
/// key path that found no key for the domain).
pub(crate) fn dk_signer(s: &Settings, headers: &Headers, template: &str) -> Result<Option<DkSigner>> {
    use crate::domainkeys::{sign::parse_options, task};
    let options = parse_options(&s.dksignoptions).map_err(|e| Error::Config(format!("Invalid DKSIGNOPTIONS: {e}")))?;
    let Some(domain) = task::signing_domain(s.dkdomain.as_deref(), headers) else {
        eprintln!("qmail-dkim: DomainKeys: no Sender:/From: address to sign for: not signed");
        return Ok(None);
    };
    let choice = KeyChoice::new(&s.control, template, &domain);
    let Some((path, pem)) = choice.find()? else {
        eprintln!("qmail-dkim: DomainKeys: {}: not signed", choice.no_key());
        return Ok(None);
    };
    let key = SigningKey::from_pem(&pem, true).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    task::check_key(&key).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?;
    let selector = match options.selector.clone() {
        Some(sel) => sel,
        None => key_selector(&path, &pem).map_err(|reason| Error::KeyInvalid { path: path.clone(), reason })?,
    };
    let exclude: Vec<String> = s.dkexcludeheaders.split(':').map(str::to_string).collect();
    Ok(Some(DkSigner::new(key, &options, selector, domain, headers, &exclude)))
}

/// The DKIM2 signer of qmail-dkim-remote: `DKIM2SIGN` is a key path template as for DKIMSIGN
/// (`%` = `domain`, the envelope sender's). `None` when a `%` template finds no key.
pub(crate) fn dkim2_signer(
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

/// Calls `f` with the [`Context`] tasks finish with: the message, the envelope, `VERBOSE`, and the
/// authserv-id and a resolver, made only when a task asks (qmail-dkim and qmail-dkim-remote).
pub(crate) fn with_context<R>(
    s: &Settings,
    headers: &Headers,
    queued: &Headers,
    envelope: &Envelope,
    now: u64,
    f: impl FnOnce(&Context<'_>) -> R,
) -> R {
    let authserv = || authserv_id(s);
    // One resolver and its DNS time budgets for the whole message (crate::dns::unchosen), made
    // when a task first asks (a message that is only signed never uses DNSCACHEIP).
    let cell = std::cell::OnceCell::new();
    let shared = || cell.get_or_init(|| std::rc::Rc::new(crate::dns::Hickory::from_settings(&s.dns))).clone();
    let lookup = || crate::dns::keys_or_shared(&s.dns, shared);
    let resolver = || Box::new(shared()) as Box<dyn crate::dns::Resolver>;
    let ctx = Context {
        headers,
        queued,
        envelope,
        now,
        verbose: s.verbose,
        authserv_id: &authserv,
        dns: &lookup,
        resolver: &resolver,
        earlier: &[],
    };
    f(&ctx)
}

/// The settings that change DKIM verdicts.
pub fn verify_options(s: &Settings) -> verify::Options {
    verify::Options {
        allow_sha1: s.allow_sha1,
        check_all_from: s.unsigned_from,
        allow_unsigned_subject: s.unsigned_subject,
        honor_body_length: s.honor_bodylength,
        ..verify::Options::default()
    }
}

/// Whether the practice step runs for this outcome, and with what. It runs only when
/// `DKIMPRACTICE` is set and holds the outcome's letter (either case; empty means
/// [`DEFAULT_PRACTICE_LETTERS`]), and `SIGN_PRACTICE` is `adsp` (default), `ssp` or `local`
/// (any other value turns it off).
pub(crate) fn practice_rules(p: &PracticeVars, o: Outcome) -> Result<Option<PracticeRules>> {
    let Some(letters) = &p.letters else { return Ok(None) };
    let letters = if letters.is_empty() { DEFAULT_PRACTICE_LETTERS } else { letters };
    if !letters.to_ascii_uppercase().contains(o.letter()) {
        return Ok(None);
    }
    let practice = match p.practice.as_deref() {
        None | Some("") | Some("adsp") => Practice::Adsp,
        Some("ssp") => Practice::Ssp,
        Some("local") => Practice::Local,
        Some(_) => return Ok(None),
    };
    let (signing, nonsigning) = p.lists()?;
    Ok(Some(PracticeRules { practice, signing, nonsigning }))
}

/// One key and the signatures to make with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignJob {
    pub(crate) key: KeyChoice,
    /// One per algorithm; `selector` is filled in from the key file that is found.
    pub params: Vec<SignParams>,
}

/// The signing jobs for a message: the primary key (dkimkeys entry or the template), then
/// `DKIMSIGNEXTRA`. The returned order is the order of the headers, top first (the extra
/// signature goes above the primary one).
pub fn sign_jobs(s: &Settings, template: &str, headers: &Headers, now: u64) -> Result<Vec<SignJob>> {
    let domain = signing_domain(headers, s)?.ok_or(Error::NoDomain)?;
    sign_jobs_for(s, template, &domain, headers, now)
}

/// [`sign_jobs`] for a signing domain the caller chose (qmail-dkim-remote: the envelope sender's).
pub(crate) fn sign_jobs_for(
    s: &Settings,
    template: &str,
    domain: &str,
    headers: &Headers,
    now: u64,
) -> Result<Vec<SignJob>> {
    let domain = domain.to_string();
    let mut vars = s.sign.clone();
    let mut template = template.to_string();
    if !s.nodkimkeys {
        if let Some(e) = s.dkimkeys()?.and_then(|entries| lookup_dkimkeys(entries, &domain, s.qregex)) {
            template = e.key.clone();
            for c in &e.envstr {
                vars.apply(c);
            }
        }
    }
    let exclude: Vec<String> = vars.exclude.split(':').map(|s| s.trim().to_string()).collect();
    let names = default_header_list(headers, &exclude);
    let primary = SignJob {
        key: KeyChoice::new(&s.control, &template, &domain),
        params: params_for(&vars, &vars.options, "DKIMSIGNOPTIONS", &domain, &names, now)?,
    };
    let mut jobs = Vec::new();
    if let Some(extra) = &vars.extra {
        jobs.push(SignJob {
            key: KeyChoice::new(&s.control, extra, &domain),
            params: params_for(&vars, &vars.options_extra, "DKIMSIGNOPTIONSEXTRA", &domain, &names, now)?,
        });
    }
    jobs.push(primary);
    Ok(jobs)
}

fn params_for(
    vars: &SignVars,
    opts: &str,
    var: &str,
    domain: &str,
    names: &[String],
    now: u64,
) -> Result<Vec<SignParams>> {
    let o = options::parse(opts).map_err(|e| Error::Config(format!("Invalid {var}: {e}")))?;
    let identity = match &vars.identity {
        Some(i) => Some(i.clone()).filter(|i| !i.is_empty() && i != "-"),
        None => o.identity.clone().flatten(),
    };
    let secs = match vars.expire.as_deref() {
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
pub(crate) fn load_signer(job: SignJob) -> Result<Option<Signer>> {
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

    fn env(p: &[(&str, &str)]) -> Settings {
        Settings::from_pairs(p)
    }

    /// Settings with `p` and the control directory `dir`.
    fn settings(dir: &std::path::Path, p: &[(&str, &str)]) -> Settings {
        let mut pairs = vec![("CONTROLDIR", dir.to_str().unwrap())];
        pairs.extend_from_slice(p);
        Settings::from_pairs(&pairs)
    }

    fn rules(p: Practice, signing: &[&str], nonsigning: &[&str]) -> PracticeRules {
        PracticeRules {
            practice: p,
            signing: signing.iter().map(|s| s.to_string()).collect(),
            nonsigning: nonsigning.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// From `From: x@..`: a signing domain that is not a DNS name has no key candidates.
    #[test]
    fn dot_dot_signing_domain_has_no_key_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        let h = Headers::parse(b"From: x@..\n".to_vec());
        let jobs = sign_jobs(&settings(&sub, &[("NODKIMKEYS", "")]), "%/default", &h, 0).unwrap();
        assert!(jobs[0].key.candidates.is_empty());
    }

    #[test]
    fn jobs_with_dkimkeys_and_extra() {
        let dir = tempfile::tempdir().unwrap();
        let c = |p: &[(&str, &str)]| settings(dir.path(), p);
        std::fs::write(dir.path().join("dkimkeys"), "a.org:keys/a/sel:DKIMSIGNOPTIONS=-z 4 -t -x -,DKIMIDENTITY=\n")
            .unwrap();
        let h = Headers::parse(b"From: x@a.org\nTo: y@b.org\nX-Foo: 1\nX-Mailer: m\nReceived: r\n".to_vec());
        let jobs = sign_jobs(&c(&[("DKIMSIGNEXTRA", "/extra/%/e")]), "/k/%/d", &h, 1000).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].key.candidates[0], PathBuf::from("/extra/a.org/e"));
        assert_eq!(jobs[0].params[0].algorithm, Algorithm::RsaSha256);
        assert_eq!(jobs[1].key.candidates[0], dir.path().join("keys/a/sel"));
        let p = &jobs[1].params[0];
        assert_eq!(p.algorithm, Algorithm::Ed25519Sha256);
        assert_eq!((p.timestamp, p.expire), (Some(1000), None));
        assert_eq!(p.headers, vec!["from", "to", "x-mailer", "from"]);
        assert_eq!(jobs[0].params[0].expire, Some(1000 + 604_800));
        assert!(
            sign_jobs(&c(&[("NODKIMKEYS", "")]), "/k/%/d", &h, 0).unwrap()[0].key.candidates[0].starts_with("/k/a.org")
        );
        assert!(matches!(
            sign_jobs(&c(&[("DKIMSIGNOPTIONS", "-z 9"), ("NODKIMKEYS", "")]), "/k", &h, 0),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn checks_from_env() {
        let c = |p: &[(&str, &str)]| Checks::new(&env(p));
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
        let ip = |v: &str| env(&[("TCPREMOTEIP", v)]).client_ip();
        assert_eq!(ip("192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(ip("::ffff:192.0.2.1"), Some("192.0.2.1".parse().unwrap()), "IPv4-mapped counts as IPv4");
        assert_eq!(ip("[2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ip("not an address"), None);
        assert_eq!(env(&[]).client_ip(), None);
    }

    #[test]
    fn plan_from_env() {
        let dir = tempfile::tempdir().unwrap();
        let e = |p: &[(&str, &str)]| settings(dir.path(), p).practice;
        assert_eq!(practice_rules(&e(&[]), Outcome::NoSignatures).unwrap(), None);
        let p = practice_rules(&e(&[("DKIMPRACTICE", "")]), Outcome::NoSignatures).unwrap().unwrap();
        assert_eq!(p.practice, Practice::Adsp);
        assert!(practice_rules(&e(&[("DKIMPRACTICE", "")]), Outcome::Success).unwrap().is_none());
        assert!(practice_rules(&e(&[("DKIMPRACTICE", "")]), Outcome::DomainNameTooLong).unwrap().is_none());
        assert!(practice_rules(&e(&[("DKIMPRACTICE", "st")]), Outcome::NoSignatures).unwrap().is_some());
        assert!(practice_rules(&e(&[("DKIMPRACTICE", "ST")]), Outcome::SignatureBad).unwrap().is_none());
        assert!(practice_rules(&e(&[("DKIMPRACTICE", ""), ("SIGN_PRACTICE", "none")]), Outcome::NoSignatures)
            .unwrap()
            .is_none());
        std::fs::write(dir.path().join("signaturedomains"), "# comment\nexample.com\n").unwrap();
        std::fs::write(dir.path().join("nosignaturedomains"), "*\n").unwrap();
        let p = practice_rules(&e(&[("DKIMPRACTICE", ""), ("SIGN_PRACTICE", "ssp")]), Outcome::SignatureBad)
            .unwrap()
            .unwrap();
        assert_eq!(p, rules(Practice::Ssp, &["example.com"], &["*"]));
        let p = practice_rules(
            &e(&[
                ("DKIMPRACTICE", ""),
                ("SIGN_PRACTICE", "local"),
                ("SIGNATUREDOMAINS", "a.org"),
                ("NOSIGNATUREDOMAINS", ""),
            ]),
            Outcome::SignatureBad,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p, rules(Practice::Local, &["a.org"], &[]));
    }

    #[test]
    fn mode_choice() {
        assert_eq!(dkim_mode(&env(&[])), Mode::Verify { letters: String::new() });
        assert_eq!(dkim_mode(&env(&[("RELAYCLIENT", "")])), Mode::Sign { template: DEFAULT_KEY.into() });
        assert_eq!(dkim_mode(&env(&[("AUTHINFO", ""), ("DKIMKEY", "k/%")])), Mode::Sign { template: "k/%".into() });
        assert_eq!(dkim_mode(&env(&[("DKIMSIGN", "/k"), ("DKIMVERIFY", "FG")])), Mode::Sign { template: "/k".into() });
        assert_eq!(
            dkim_mode(&env(&[("DKIMVERIFY", "FG"), ("RELAYCLIENT", "")])),
            Mode::Verify { letters: "FG".into() }
        );
        // DomainKeys-only setups (qmail-dk's variables): DKIM does nothing.
        assert_eq!(dkim_mode(&env(&[("DKSIGN", ""), ("RELAYCLIENT", "")])), Mode::Pass);
        assert_eq!(dkim_mode(&env(&[("DKVERIFY", "DEGIJKfh")])), Mode::Pass);
        assert_eq!(dkim_mode(&env(&[("DKVERIFY", ""), ("DKIMVERIFY", "")])), Mode::Verify { letters: String::new() });
        for v in ["RELAYCLIENT_NODKIMVERIFY", "RELAYCLIENT_NODKVERIFY"] {
            assert_eq!(dkim_mode(&env(&[("DKIMVERIFY", "FG"), ("RELAYCLIENT", ""), (v, "")])), Mode::Pass);
            assert_eq!(dkim_mode(&env(&[("DKIMVERIFY", "FG"), (v, "")])), Mode::Verify { letters: "FG".into() });
        }
    }

    #[test]
    fn mode() {
        assert_eq!(dk_mode(&env(&[])), None);
        assert_eq!(dk_mode(&env(&[("DKSIGN", "")])), Some(DkMode::Sign { template: DEFAULT_DK_KEY.into() }));
        assert_eq!(
            dk_mode(&env(&[("DKSIGN", "/k/%/sel"), ("DKVERIFY", "B")])),
            Some(DkMode::Sign { template: "/k/%/sel".into() })
        );
        assert_eq!(dk_mode(&env(&[("DKVERIFY", "DEGIJKfh")])), Some(DkMode::Verify { letters: "DEGIJKfh".into() }));
        assert_eq!(dk_mode(&env(&[("DKVERIFY", "")])), Some(DkMode::Verify { letters: String::new() }));
        for bypass in ["RELAYCLIENT_NODKVERIFY", "RELAYCLIENT_NODKIMVERIFY"] {
            assert_eq!(dk_mode(&env(&[("DKVERIFY", "B"), ("RELAYCLIENT", ""), (bypass, "")])), None);
            assert_eq!(dk_mode(&env(&[("DKVERIFY", "B"), ("AUTHINFO", "x"), (bypass, "")])), None);
            assert!(dk_mode(&env(&[("DKVERIFY", "B"), (bypass, "")])).is_some());
        }
        // The relay client that must not be verified may still be signed for.
        assert!(matches!(
            dk_mode(&env(&[("DKSIGN", ""), ("RELAYCLIENT", ""), ("RELAYCLIENT_NODKVERIFY", "")])),
            Some(DkMode::Sign { .. })
        ));
    }

    #[test]
    fn only_dk() {
        assert!(dk_only(&env(&[("DKVERIFY", "")]), &Mode::Pass));
        assert!(!dk_only(&env(&[]), &Mode::Pass));
        assert!(!dk_only(&env(&[("DKSIGN", "")]), &Mode::Verify { letters: String::new() }));
    }

    /// One plan decides what runs, whether forged fields go and what the log names, for every
    /// program: qmail-dkim and `dkim check` at entry, qmail-dkim-remote at exit.
    #[test]
    fn one_plan_decides_tasks_forged_fields_and_log() {
        let p = |pairs: &[(&str, &str)]| Plan::new(&env(pairs), Stage::Entry);
        let verify = p(&[]);
        assert_eq!((verify.removes_forged, verify.log_modes()), (true, ("verify", None)));
        let sign = p(&[("RELAYCLIENT", "")]);
        assert_eq!((sign.removes_forged, sign.log_modes()), (false, ("sign", None)));
        // Signing with a queue-time check: the check writes Authentication-Results.
        let sealed = p(&[("RELAYCLIENT", ""), ("ARCSIGN", "/k")]);
        assert!(sealed.removes_forged && !sealed.verify_for_checks);
        // DomainKeys only: DKIM passes, DKQUEUE applies; verifying DomainKeys removes forgeries.
        let dk = p(&[("DKVERIFY", "B")]);
        assert_eq!((dk.mode.clone(), dk.dk_only, dk.removes_forged), (Mode::Pass, true, true));
        assert_eq!(dk.log_modes(), ("pass", Some("verify")));
        let dk_sign = p(&[("DKSIGN", ""), ("RELAYCLIENT", "")]);
        assert_eq!((dk_sign.removes_forged, dk_sign.log_modes()), (false, ("pass", Some("sign"))));
        // DKIM passes, but DMARC needs its results: verify, refuse nothing.
        let pass = p(&[("DKVERIFY", ""), ("DMARCVERIFY", "R")]);
        assert!(pass.verify_for_checks && pass.mode == Mode::Pass);
        assert!(p(&[("DKIM_ALLOW_SHA1", "")]).verify.allow_sha1);
        // At exit: sign only, with DKIMSIGN or DKIMKEY, and DKIM2SIGN.
        let exit = Plan::new(
            &env(&[("DKIMSIGN", ""), ("DKIMKEY", "k/%"), ("DKIM2SIGN", "/d2"), ("DKVERIFY", "")]),
            Stage::Exit,
        );
        assert_eq!(exit.mode, Mode::Sign { template: "k/%".into() });
        assert_eq!(
            (exit.dkim2_sign.as_deref(), exit.domainkeys.clone(), exit.removes_forged),
            (Some("/d2"), None, false)
        );
    }

    /// DKSIGN's `%` became `..` for `From: x@...`: such a domain has no key, and the message
    /// is not signed, whether or not the path has a `%`.
    #[test]
    fn dot_dot_sender_domain_is_not_signed() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("default");
        std::fs::write(&key, "a key that must not be read").unwrap();
        let keys = dir.path().join("keys");
        let s = |p: &[(&str, &str)]| settings(&keys, p);
        for from in [&b"From: x@..\n"[..], b"From: x@...\n", b"Sender: x@a..b\n"] {
            let h = Headers::parse(from.to_vec());
            for template in ["%/default", "/no/such/key"] {
                assert!(matches!(dk_signer(&s(&[]), &h, template), Ok(None)), "{template}");
            }
        }
        let h = Headers::parse(b"Subject: no sender\n".to_vec());
        assert!(matches!(dk_signer(&s(&[("DKDOMAIN", "a..b")]), &h, "/no/such/key"), Ok(None)));
        assert!(matches!(dk_signer(&s(&[("DKDOMAIN", "a.b")]), &h, "/no/such/key"), Err(Error::KeyMissing(_))));
    }
}
