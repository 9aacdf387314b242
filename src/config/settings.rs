//! The one reading of the environment: every variable qmail-dkim, qmail-dkim-remote and
//! `dkim` read, read once at start-up into typed fields. Nothing else reads [`Env`]; what the
//! control files say is read through [`Settings`] too, when first needed (most messages need
//! none), and at most once.
//!
//! This module is the reference for the manuals' ENVIRONMENT sections ([`VARIABLES`] lists
//! every name, and a test checks that each manual names its own). Each field says its default
//! and what a bad value does. "Set" means present, even if empty (`RELAYCLIENT=` is set), as
//! in qmail; "unset or empty" is written where an empty value counts as unset.
//!
//! The reading is cheap on purpose: qmail starts one qmail-dkim per message, so it is one
//! binary search per variable on the sorted environment ([`Env`]), and a copy only of what is
//! set.

use super::control::{self, ControlDir, DkimKeysEntry, EnvChange};
use super::env::Env;
use crate::error::{Error, Result};
use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Which manual documents a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manual {
    /// qmail-dkim(8).
    QmailDkim,
    /// qmail-dkim-remote(8).
    Remote,
    /// dkim(8).
    Dkim,
}

/// Every variable read here, with the manual whose ENVIRONMENT section names it.
pub const VARIABLES: &[(&str, &[Manual])] = {
    use Manual::{Dkim as D, QmailDkim as Q, Remote as R};
    &[
        ("ARCDOMAIN", &[Q]),
        ("ARCSIGN", &[Q]),
        ("ARCVERIFY", &[Q]),
        ("AUTHINFO", &[Q]),
        ("AUTHSERV_ID", &[Q]),
        ("BOUNCEDOMAIN", &[Q]),
        ("CONTROLDIR", &[Q, R, D]),
        ("CUSTOM_ERRORS", &[Q]),
        ("DEATH", &[Q]),
        ("DKDOMAIN", &[Q]),
        ("DKEXCLUDEHEADERS", &[Q]),
        ("DKIM2SIGN", &[R]),
        ("DKIM2VERIFY", &[Q]),
        ("DKIMEXPIRE", &[Q]),
        ("DKIMIDENTITY", &[Q]),
        ("DKIMKEY", &[Q]),
        ("DKIMLOG", &[Q]),
        ("DKIMPRACTICE", &[Q]),
        ("DKIMQUEUE", &[Q]),
        ("DKIMSIGN", &[Q]),
        ("DKIMSIGNEXTRA", &[Q]),
        ("DKIMSIGNOPTIONS", &[Q]),
        ("DKIMSIGNOPTIONSEXTRA", &[Q]),
        ("DKIMSIGN_DOMAIN", &[R]),
        ("DKIMVERIFY", &[Q]),
        ("DKIM_ALLOW_SHA1", &[Q, D]),
        ("DKQUEUE", &[Q]),
        ("DKREMOTE", &[R]),
        ("DKSIGN", &[Q]),
        ("DKSIGNOPTIONS", &[Q]),
        ("DKVERIFY", &[Q]),
        ("DMARCREPORTS", &[Q]),
        ("DMARCVERIFY", &[Q]),
        ("DNSCACHEIP", &[Q, D]),
        ("DNSTIMEOUT", &[Q, D]),
        ("ERROR_FD", &[Q]),
        ("EXCLUDE_DKIMSIGN", &[Q]),
        ("HELOHOST", &[Q]),
        ("HONOR_BODYLENGTHTAG", &[Q, D]),
        ("NODKIMKEYS", &[Q]),
        ("NOSIGNATUREDOMAINS", &[Q]),
        ("QMAILINJECT", &[D]),
        ("QMAILQUEUE", &[Q]),
        ("QREGEX", &[Q]),
        ("QUEUEPROG", &[Q]),
        ("RELAYCLIENT", &[Q]),
        ("RELAYCLIENT_NODKIMVERIFY", &[Q]),
        ("RELAYCLIENT_NODKVERIFY", &[Q]),
        ("SELECTOR_DATA", &[Q]),
        ("SIGNATUREDOMAINS", &[Q]),
        ("SIGN_PRACTICE", &[Q]),
        ("SPFVERIFY", &[Q]),
        ("TCPREMOTEIP", &[Q]),
        (SPOOL_VARIABLE, &[Q, R]),
        ("UNSIGNED_FROM", &[Q, D]),
        ("UNSIGNED_SUBJECT", &[Q, D]),
        ("VERBOSE", &[Q]),
    ]
};

/// The one variable not read here: the spool reads it itself (`message::temp_file`) when a
/// message outgrows memory, as the directory of files that have no name (unset or empty:
/// /tmp; a directory it cannot write in: exit 53, temporary).
pub const SPOOL_VARIABLE: &str = "TMPDIR";

/// What the environment and the control files say. Built once per run ([`Settings::from_env`]).
#[derive(Debug)]
pub struct Settings {
    /// `CONTROLDIR` (unset or empty: /var/qmail/control). A directory that does not exist
    /// means no control files.
    pub control: ControlDir,
    /// `RELAYCLIENT` set: our own user (tcpserver sets it for relay clients).
    pub relayclient: bool,
    /// `AUTHINFO` set: an authenticated client, also our own user.
    pub authinfo: bool,
    /// `RELAYCLIENT_NODKIMVERIFY` set: a relay client is not verified (DKIM, and DomainKeys).
    pub relay_nodkimverify: bool,
    /// `RELAYCLIENT_NODKVERIFY` set: the same.
    pub relay_nodkverify: bool,

    /// `DKIMSIGN`: set: sign with this key path template (`%` = the signing domain); empty:
    /// `DKIMKEY`'s. qmail-dkim-remote: unset or empty means `DKIMKEY`'s. No key for a template
    /// with `%`: the message goes unsigned; without `%`: exit 35; a key that cannot be read or
    /// used: exit 55 (temporary).
    pub dkimsign: Option<String>,
    /// `DKIMKEY` (unset or empty: `domainkeys/%/default` under the control directory); a key
    /// path template as `DKIMSIGN`'s.
    pub dkimkey: Option<String>,
    /// `DKIMVERIFY`: the letters that refuse (qmail-dkim-letters(5)); set and empty: verify,
    /// refuse nothing. Unknown letters refuse nothing.
    pub dkimverify: Option<String>,
    /// The variables signing reads, which a `dkimkeys` entry may change for its domain.
    pub sign: SignVars,
    /// `NODKIMKEYS` set: control/dkimkeys is not read.
    pub nodkimkeys: bool,
    /// `QREGEX` set: a dkimkeys pattern may be a regular expression (one that does not compile
    /// matches nothing).
    pub qregex: bool,
    /// `BOUNCEDOMAIN` (unset or empty: none): the signing domain of a message without sender
    /// fields; `user@domain` gives `domain`; lowercased.
    pub bouncedomain: Option<String>,
    /// `AUTHSERV_ID` (unset or empty: control/me, else the host name). Characters that cannot
    /// be in an RFC 8601 value are dropped; nothing left means `localhost`.
    pub authserv_id: Option<String>,

    /// `DKIM_ALLOW_SHA1`, `UNSIGNED_FROM`, `UNSIGNED_SUBJECT`, `HONOR_BODYLENGTHTAG`: each set
    /// or not; they change DKIM verdicts (qmail-dkim(8)).
    pub allow_sha1: bool,
    pub unsigned_from: bool,
    pub unsigned_subject: bool,
    pub honor_bodylength: bool,
    /// `DKIMPRACTICE`, `SIGN_PRACTICE`, `SIGNATUREDOMAINS`, `NOSIGNATUREDOMAINS`.
    pub practice: PracticeVars,

    /// `DKSIGN`: set: sign with DomainKeys with this key path template (empty:
    /// /etc/domainkeys/%/default).
    pub dksign: Option<String>,
    /// `DKVERIFY`: DomainKeys letters that refuse (set and empty: verify, refuse nothing).
    pub dkverify: Option<String>,
    /// `DKSIGNOPTIONS` (unset: none). A bad option string: exit 55 (temporary) for every
    /// message DomainKeys would sign.
    pub dksignoptions: String,
    /// `DKDOMAIN` (unset or empty: none), trimmed, without a final dot, lowercased.
    pub dkdomain: Option<String>,
    /// `DKEXCLUDEHEADERS`: `:`-separated names DomainKeys does not sign.
    pub dkexcludeheaders: String,

    /// `SPFVERIFY`, `DMARCVERIFY`, `ARCVERIFY`, `DKIM2VERIFY`: letters (set and empty: check,
    /// refuse nothing). A letter a check does not know refuses nothing.
    pub spfverify: Option<String>,
    pub dmarcverify: Option<String>,
    pub arcverify: Option<String>,
    pub dkim2verify: Option<String>,
    /// `ARCSIGN` (unset or empty: no seal): the seal's key path template, as `DKIMSIGN`'s
    /// (no key for a `%` template: not sealed).
    pub arcsign: Option<String>,
    /// `ARCDOMAIN` (unset or empty: see `plan::seal_domain`), trimmed, no final dot, lowercased.
    pub arcdomain: Option<String>,
    /// `HELOHOST` (unset or empty: none), trimmed, without a final dot.
    pub helohost: Option<String>,
    /// `TCPREMOTEIP` as given (unset or empty: local injection); read by [`Settings::client_ip`].
    pub tcpremoteip: Option<String>,
    /// `DMARCREPORTS` (unset or empty: no spool): the DMARC report spool directory.
    pub dmarcreports: Option<PathBuf>,

    /// `VERBOSE` set: a line on descriptor 2 per result.
    pub verbose: bool,
    /// `DKIMLOG` as given: the one log line per message unless unset, empty or `0`.
    pub dkimlog: Option<String>,
    /// `DEATH`: seconds the whole run may take (unset, empty or not a number: 86400; 0: no
    /// limit); then the queue program is killed, nothing is queued, exit 52.
    pub death: u32,
    pub dns: DnsSettings,
    pub queue: QueueSettings,
    pub errors: ErrorSettings,

    /// qmail-dkim-remote: `DKREMOTE` (unset or empty: /var/qmail/bin/qmail-remote.orig). One
    /// that cannot be run, or qmail-dkim-remote itself: a temporary failure report (`Z`).
    pub dkremote: Option<String>,
    /// qmail-dkim-remote: `DKIMSIGN_DOMAIN=from` (any case): sign for the From field's domain.
    /// Any other value: the sender's.
    pub sign_domain_from: bool,
    /// qmail-dkim-remote: `DKIM2SIGN` (unset or empty: no DKIM2 signature); a key path
    /// template as `DKIMSIGN`'s.
    pub dkim2sign: Option<String>,
    /// `dkim dmarc report --send`: `QMAILINJECT` (unset or empty: /var/qmail/bin/qmail-inject).
    pub qmailinject: Option<String>,
    /// `dkim check`: `QMAILQUEUE` as qmail-smtpd would get it.
    pub qmailqueue: Option<String>,

    files: Files,
}

/// The variables signing reads. A control/dkimkeys entry's `VAR=value,VAR2=` changes these
/// for its domain ([`SignVars::apply`]); it changes nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignVars {
    /// `DKIMSIGNOPTIONS` (unset: none). A bad option string: exit 55 (temporary) for every
    /// message signed.
    pub options: String,
    /// `DKIMSIGNOPTIONSEXTRA`: the same for the extra signature.
    pub options_extra: String,
    /// `DKIMSIGNEXTRA` (unset or empty: none): a second key path template.
    pub extra: Option<String>,
    /// `DKIMIDENTITY` (unset: `-i` of the options; empty or `-`: no i=).
    pub identity: Option<String>,
    /// `DKIMEXPIRE` (unset: `-x` of the options, else 7 days; empty or `-`: no x=). Not a
    /// number: exit 55 (temporary) for every message signed.
    pub expire: Option<String>,
    /// `EXCLUDE_DKIMSIGN`: `:`-separated names not signed.
    pub exclude: String,
}

impl SignVars {
    /// A dkimkeys entry's change: `VAR=` unsets, `VAR=value` sets; names signing does not read
    /// change nothing.
    pub fn apply(&mut self, c: &EnvChange) {
        let (k, v) = match c {
            EnvChange::Set(k, v) => (k.as_str(), Some(v.as_str())),
            EnvChange::Unset(k) => (k.as_str(), None),
        };
        let text = |v: Option<&str>| v.unwrap_or("").to_string();
        match k {
            "DKIMSIGNOPTIONS" => self.options = text(v),
            "DKIMSIGNOPTIONSEXTRA" => self.options_extra = text(v),
            "DKIMSIGNEXTRA" => self.extra = v.filter(|v| !v.is_empty()).map(str::to_string),
            "DKIMIDENTITY" => self.identity = v.map(str::to_string),
            "DKIMEXPIRE" => self.expire = v.map(str::to_string),
            "EXCLUDE_DKIMSIGN" => self.exclude = text(v),
            _ => {}
        }
    }
}

/// The practice step (`DKIMPRACTICE`): a plain copy the DKIM verifier keeps until its outcome
/// is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeVars {
    /// `DKIMPRACTICE`: unset: no practice step; empty: the default letters; else the
    /// outcome letters it runs for (either case).
    pub letters: Option<String>,
    /// `SIGN_PRACTICE`, trimmed: unset, empty or `adsp`: ADSP; `ssp`; `local`; anything else
    /// turns the step off.
    pub practice: Option<String>,
    /// `SIGNATUREDOMAINS` (unset: control/signaturedomains).
    pub signing: Option<String>,
    /// `NOSIGNATUREDOMAINS` (unset: control/nosignaturedomains).
    pub nonsigning: Option<String>,
    /// Where the two control files are.
    pub control: ControlDir,
}

impl PracticeVars {
    /// The signing and non-signing domain lists: the variable (names separated by commas or
    /// white space), else the control file. Read when the step runs, once.
    pub fn lists(&self) -> Result<(Vec<String>, Vec<String>)> {
        let list = |v: &Option<String>, file: &str| -> Result<Vec<String>> {
            match v {
                Some(v) => Ok(split_list(v)),
                None => Ok(self.control.lines(file)?.unwrap_or_default()),
            }
        };
        Ok((list(&self.signing, "signaturedomains")?, list(&self.nonsigning, "nosignaturedomains")?))
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// DNS: where the questions go and how long one may take.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSettings {
    /// `SELECTOR_DATA` set: the one TXT answer to every key question (tests; no DNS at all).
    pub selector_data: Option<String>,
    /// `DNSCACHEIP` (unset or empty: /etc/resolv.conf): the servers, separated by spaces or
    /// commas, each an address with an optional port. `Some` of an empty list: it named no
    /// usable one (a warning, then /etc/resolv.conf).
    pub servers: Option<Vec<SocketAddr>>,
    /// `DNSTIMEOUT`: seconds one query may take, fractions allowed (unset, not a positive
    /// number: 5 s; bounded to 10 ms .. 1 h).
    pub timeout: Duration,
}

/// Default time bound of one DNS query.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for DnsSettings {
    fn default() -> DnsSettings {
        DnsSettings { selector_data: None, servers: None, timeout: DEFAULT_DNS_TIMEOUT }
    }
}

/// The next program's choice (`queue::choose`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// `DKIMQUEUE` (unset or empty: none), split on white space. A program that cannot be run:
    /// exit 120; qmail-dkim itself: exit 81. Hidden from the queue program it starts.
    pub dkimqueue: Option<String>,
    /// `DKQUEUE`: the same, for a DomainKeys-only run.
    pub dkqueue: Option<String>,
    /// `QUEUEPROG`: the same, after both (unset or empty: /var/qmail/bin/qmail-queue).
    pub queueprog: Option<String>,
}

/// How refusals reach the client (`refusal`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorSettings {
    /// `CUSTOM_ERRORS` as given: `indimail`, `notqmail`, `none` or `netqmail` (any case);
    /// anything else counts as unset (the convention is then chosen from descriptor 6 and
    /// `ERROR_FD`).
    pub custom_errors: Option<String>,
    /// `ERROR_FD` as given: indimail's reply descriptor (not a number or negative: 2; `-1`:
    /// indimail's "no reply pipe", which means the `none` convention).
    pub error_fd: Option<String>,
}

/// The control files, each read when first asked for and kept: a read error is kept as its
/// reason, so asking again gives the same answer.
#[derive(Debug, Default)]
struct Files {
    me: OnceCell<std::result::Result<Option<String>, String>>,
    bouncehost: OnceCell<std::result::Result<Option<String>, String>>,
    dkimkeys: OnceCell<std::result::Result<Option<Vec<DkimKeysEntry>>, String>>,
}

/// The position of `name` in [`VARIABLES`], at compile time: a name read but not listed does
/// not compile.
const fn slot(name: &str) -> usize {
    let mut i = 0;
    while i < VARIABLES.len() {
        let (n, want) = (VARIABLES[i].0.as_bytes(), name.as_bytes());
        if n.len() == want.len() {
            let mut k = 0;
            while k < n.len() && n[k] == want[k] {
                k += 1;
            }
            if k == n.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("a variable read is not in VARIABLES")
}

/// [`slot`] of a name, as a constant.
macro_rules! i {
    ($name:literal) => {
        const { slot($name) }
    };
}

/// The value of every variable in [`VARIABLES`] (`None`: unset), by position: one walk over
/// the sorted environment beside the sorted list, instead of a search per name.
fn values(env: &Env) -> [Option<&str>; VARIABLES.len()] {
    let mut vals = [None; VARIABLES.len()];
    let mut names = VARIABLES.iter().map(|(n, _)| *n).enumerate().peekable();
    for (k, v) in env.iter() {
        while names.next_if(|(_, n)| *n < k).is_some() {}
        if let Some((i, _)) = names.next_if(|(_, n)| *n == k) {
            vals[i] = Some(v);
        }
    }
    vals
}

impl Settings {
    /// The process environment.
    pub fn from_process() -> Settings {
        Settings::from_env(&Env::from_process())
    }

    /// The process environment with `set` set and `unset` taken out first (`dkim`: the
    /// variables of a tcprules rule, `--dns`).
    pub fn from_process_with<K: AsRef<str>, V: AsRef<str>>(set: &[(K, V)], unset: &[&str]) -> Settings {
        let mut env = Env::from_process();
        for k in unset {
            env.unset(k);
        }
        for (k, v) in set {
            env.set(k.as_ref(), v.as_ref());
        }
        Settings::from_env(&env)
    }

    /// An environment given as pairs (tests, and `dkim` building the environment qmail-dkim
    /// would get).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Settings {
        Settings::from_env(&Env::from_pairs(pairs))
    }

    pub(crate) fn from_env(env: &Env) -> Settings {
        let vals = values(env);
        let get = |i: usize| vals[i];
        let set = |i: usize| vals[i].is_some();
        let ne = |i: usize| vals[i].filter(|v| !v.is_empty());
        let own = |i: usize| get(i).map(str::to_string);
        let nonempty = |i: usize| ne(i).map(str::to_string);
        let text = |i: usize| get(i).unwrap_or("").to_string();
        let domain = |d: &str| d.trim().trim_end_matches('.').to_ascii_lowercase();
        let control = ControlDir::new(ne(i!("CONTROLDIR")).unwrap_or(control::DEFAULT_CONTROLDIR));
        Settings {
            relayclient: set(i!("RELAYCLIENT")),
            authinfo: set(i!("AUTHINFO")),
            relay_nodkimverify: set(i!("RELAYCLIENT_NODKIMVERIFY")),
            relay_nodkverify: set(i!("RELAYCLIENT_NODKVERIFY")),
            dkimsign: own(i!("DKIMSIGN")),
            dkimkey: nonempty(i!("DKIMKEY")),
            dkimverify: own(i!("DKIMVERIFY")),
            sign: SignVars {
                options: text(i!("DKIMSIGNOPTIONS")),
                options_extra: text(i!("DKIMSIGNOPTIONSEXTRA")),
                extra: nonempty(i!("DKIMSIGNEXTRA")),
                identity: own(i!("DKIMIDENTITY")),
                expire: own(i!("DKIMEXPIRE")),
                exclude: text(i!("EXCLUDE_DKIMSIGN")),
            },
            nodkimkeys: set(i!("NODKIMKEYS")),
            qregex: set(i!("QREGEX")),
            bouncedomain: ne(i!("BOUNCEDOMAIN"))
                .map(|b| domain(b.rsplit_once('@').map_or(b, |(_, d)| d)))
                .filter(|d| !d.is_empty()),
            authserv_id: nonempty(i!("AUTHSERV_ID")),
            allow_sha1: set(i!("DKIM_ALLOW_SHA1")),
            unsigned_from: set(i!("UNSIGNED_FROM")),
            unsigned_subject: set(i!("UNSIGNED_SUBJECT")),
            honor_bodylength: set(i!("HONOR_BODYLENGTHTAG")),
            practice: PracticeVars {
                letters: own(i!("DKIMPRACTICE")),
                practice: get(i!("SIGN_PRACTICE")).map(|p| p.trim().to_string()),
                signing: own(i!("SIGNATUREDOMAINS")),
                nonsigning: own(i!("NOSIGNATUREDOMAINS")),
                control: control.clone(),
            },
            dksign: own(i!("DKSIGN")),
            dkverify: own(i!("DKVERIFY")),
            dksignoptions: text(i!("DKSIGNOPTIONS")),
            dkdomain: ne(i!("DKDOMAIN")).map(domain),
            dkexcludeheaders: text(i!("DKEXCLUDEHEADERS")),
            spfverify: own(i!("SPFVERIFY")),
            dmarcverify: own(i!("DMARCVERIFY")),
            arcverify: own(i!("ARCVERIFY")),
            dkim2verify: own(i!("DKIM2VERIFY")),
            arcsign: nonempty(i!("ARCSIGN")),
            arcdomain: ne(i!("ARCDOMAIN")).map(domain),
            helohost: ne(i!("HELOHOST")).map(|h| h.trim().trim_end_matches('.').to_string()),
            tcpremoteip: nonempty(i!("TCPREMOTEIP")),
            dmarcreports: ne(i!("DMARCREPORTS")).map(PathBuf::from),
            verbose: set(i!("VERBOSE")),
            dkimlog: own(i!("DKIMLOG")),
            death: ne(i!("DEATH")).and_then(|d| d.trim().parse::<u32>().ok()).unwrap_or(86_400),
            dns: DnsSettings {
                selector_data: own(i!("SELECTOR_DATA")),
                servers: ne(i!("DNSCACHEIP")).map(parse_dnscacheip),
                timeout: dns_timeout(ne(i!("DNSTIMEOUT"))),
            },
            queue: QueueSettings {
                dkimqueue: nonempty(i!("DKIMQUEUE")),
                dkqueue: nonempty(i!("DKQUEUE")),
                queueprog: nonempty(i!("QUEUEPROG")),
            },
            errors: ErrorSettings { custom_errors: own(i!("CUSTOM_ERRORS")), error_fd: own(i!("ERROR_FD")) },
            dkremote: nonempty(i!("DKREMOTE")),
            sign_domain_from: get(i!("DKIMSIGN_DOMAIN")).is_some_and(|v| v.eq_ignore_ascii_case("from")),
            dkim2sign: nonempty(i!("DKIM2SIGN")),
            qmailinject: nonempty(i!("QMAILINJECT")),
            qmailqueue: own(i!("QMAILQUEUE")),
            control,
            files: Files::default(),
        }
    }

    /// A relay client (`RELAYCLIENT` or `AUTHINFO` set): our own user.
    pub fn relay(&self) -> bool {
        self.relayclient || self.authinfo
    }

    /// `TCPREMOTEIP` as an address (an IPv4-mapped IPv6 address counts as IPv4). `None` for
    /// local injection, or a value that is no address (with a line on descriptor 2: SPF is
    /// then `none`).
    pub fn client_ip(&self) -> Option<IpAddr> {
        let v = self.tcpremoteip.as_deref()?.trim();
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

    /// The first line of control/me (`None`: no such file or no line).
    pub fn me(&self) -> Result<Option<String>> {
        self.first_line(&self.files.me, "me")
    }

    /// The first line of control/bouncehost.
    pub fn bouncehost(&self) -> Result<Option<String>> {
        self.first_line(&self.files.bouncehost, "bouncehost")
    }

    fn first_line(
        &self,
        cell: &OnceCell<std::result::Result<Option<String>, String>>,
        name: &str,
    ) -> Result<Option<String>> {
        cell.get_or_init(|| self.control.first_line(name).map_err(reason))
            .clone()
            .map_err(|reason| Error::Control { path: self.control.resolve(name), reason })
    }

    /// The entries of control/dkimkeys (`None`: no such file); a malformed entry, or a file
    /// that cannot be read: exit 55 (temporary) for every message signed.
    pub fn dkimkeys(&self) -> Result<Option<&[DkimKeysEntry]>> {
        let path = self.control.resolve("dkimkeys");
        let read = || -> Result<Option<Vec<DkimKeysEntry>>> {
            match control::read_lines(&path)? {
                Some(lines) => Ok(Some(control::parse_dkimkeys(&lines, &path)?)),
                None => Ok(None),
            }
        };
        match self.files.dkimkeys.get_or_init(|| read().map_err(reason)) {
            Ok(e) => Ok(e.as_deref()),
            Err(r) => Err(Error::Control { path, reason: r.clone() }),
        }
    }
}

/// The reason of a control file error, to keep; other errors keep their text.
fn reason(e: Error) -> String {
    match e {
        Error::Control { reason, .. } => reason,
        e => e.to_string(),
    }
}

/// The servers named by `DNSCACHEIP`: addresses separated by spaces or commas, each an IP
/// address with an optional port (`127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]:5353`).
/// Entries that are neither are skipped.
pub fn parse_dnscacheip(v: &str) -> Vec<SocketAddr> {
    v.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            s.parse::<SocketAddr>().ok().or_else(|| {
                let bare = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
                bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
            })
        })
        .collect()
}

/// `DNSTIMEOUT`: whole seconds (fractions allowed, e.g. `0.5`); default 5 s; at least 10 ms.
fn dns_timeout(v: Option<&str>) -> Duration {
    v.and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| Duration::from_secs_f64(t.clamp(0.01, 3600.0)))
        .unwrap_or(DEFAULT_DNS_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ENVIRONMENT section of a manual page: from its `.SH` line to the next, without font
    /// escapes (`\fBDKIMSIGN\fR`).
    fn environment_section(page: &str) -> String {
        let text = std::fs::read_to_string(format!("{}/man/{page}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut lines = text.lines().skip_while(|l| !(l.starts_with(".SH") && l.contains("ENVIRONMENT")));
        let head = lines.next().unwrap_or_else(|| panic!("{page} has no ENVIRONMENT section"));
        let section = std::iter::once(head).chain(lines.take_while(|l| !l.starts_with(".SH")));
        let mut text = section.collect::<Vec<_>>().join("\n");
        for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
            text = text.replace(font, " ");
        }
        text
    }

    /// Every variable read here is in the ENVIRONMENT section of its manual, as a whole word.
    #[test]
    fn every_variable_is_in_its_manual() {
        let pages = [
            (Manual::QmailDkim, environment_section("qmail-dkim.8")),
            (Manual::Remote, environment_section("qmail-dkim-remote.8")),
            (Manual::Dkim, environment_section("dkim.8")),
        ];
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut missing = Vec::new();
        for (name, manuals) in VARIABLES {
            for (m, section) in &pages {
                let named = section
                    .match_indices(name)
                    .any(|(i, _)| !section[..i].ends_with(word) && !section[i + name.len()..].starts_with(word));
                if manuals.contains(m) && !named {
                    missing.push(format!("{name} in {m:?}"));
                }
            }
        }
        assert!(missing.is_empty(), "not in the manual's ENVIRONMENT: {missing:?}");
    }

    /// [`values`] walks the environment beside this list: it must be sorted as the environment.
    #[test]
    fn variables_are_sorted() {
        assert!(VARIABLES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(VARIABLES[slot("DKIMSIGN")].0, "DKIMSIGN");
    }

    /// Every name in [`VARIABLES`] is read by [`Settings::from_env`]: a value that is not
    /// the default changes what it reads.
    #[test]
    fn every_variable_listed_is_read() {
        let base = format!("{:?}", Settings::from_pairs::<&str, &str>(&[]));
        for (name, _) in VARIABLES.iter().filter(|(n, _)| *n != SPOOL_VARIABLE) {
            let value = if *name == "DKIMSIGN_DOMAIN" { "from" } else { "9" };
            let s = format!("{:?}", Settings::from_pairs(&[(*name, value)]));
            assert_ne!(s, base, "{name} is listed but not read");
        }
    }

    #[test]
    fn set_empty_and_unset() {
        let s = Settings::from_pairs(&[("RELAYCLIENT", ""), ("DKIMSIGN", ""), ("DKIMKEY", ""), ("DEATH", "x")]);
        assert!(s.relayclient && s.relay() && !s.authinfo);
        assert_eq!((s.dkimsign.as_deref(), s.dkimkey.as_deref()), (Some(""), None));
        assert_eq!(s.death, 86_400);
        assert_eq!(s.control, ControlDir::new(control::DEFAULT_CONTROLDIR));
        let s = Settings::from_pairs(&[("BOUNCEDOMAIN", "x@B.org."), ("ARCDOMAIN", " A.org. "), ("DEATH", " 0 ")]);
        assert_eq!((s.bouncedomain.as_deref(), s.arcdomain.as_deref(), s.death), (Some("b.org"), Some("a.org"), 0));
        assert_eq!(Settings::from_pairs(&[("BOUNCEDOMAIN", "x@")]).bouncedomain, None);
    }

    /// A dkimkeys entry changes what signing reads, and nothing else.
    #[test]
    fn dkimkeys_changes_sign_vars() {
        let mut v = Settings::from_pairs(&[("DKIMIDENTITY", "@a.org"), ("DKIMSIGNEXTRA", "/x")]).sign;
        for c in control::parse_envstr("DKIMSIGNOPTIONS=-z 4,DKIMIDENTITY=,DKIMSIGNEXTRA=,PATH=/x").unwrap() {
            v.apply(&c);
        }
        assert_eq!(v, SignVars { options: "-z 4".into(), ..SignVars::default() });
    }

    /// control/me is read once, however many ask.
    #[test]
    fn control_files_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::from_pairs(&[("CONTROLDIR", dir.path().to_str().unwrap())]);
        std::fs::write(dir.path().join("me"), "me.org\n").unwrap();
        assert_eq!(s.me().unwrap().as_deref(), Some("me.org"));
        std::fs::write(dir.path().join("me"), "other.org\n").unwrap();
        assert_eq!(s.me().unwrap().as_deref(), Some("me.org"));
        assert_eq!(s.bouncehost().unwrap(), None);
        std::fs::write(dir.path().join("dkimkeys"), "nocolon\n").unwrap();
        assert!(matches!(s.dkimkeys(), Err(Error::Control { .. })));
        assert!(matches!(s.dkimkeys(), Err(Error::Control { .. })));
    }
}
