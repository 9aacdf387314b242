//! `dkim keys status|rotate|advance`: the arguments; the work is `qmail_dkim::keys`.

use clap::{Args, Subcommand};
use qmail_dkim::check::Report;
use qmail_dkim::config::Settings;
use qmail_dkim::dkim::key::{KeyType, DEFAULT_NEW_RSA_BITS};
use qmail_dkim::keygen::{RecordForms, DEFAULT_TINYDNS_TTL};
use qmail_dkim::{dns, keys};
use std::path::PathBuf;

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    cmd: KeysCmd,
    /// The key directory [default: $CONTROLDIR/domainkeys].
    #[arg(long = "dir", value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    /// Act as at this time (2026-12-07, 2026-12-07T06:00:00Z, @SECONDS) [default: now].
    #[arg(long = "now", value_name = "TIME", global = true)]
    now: Option<String>,
    /// DNS server address (127.0.0.1:5353, [::1]:53) [default: DNSCACHEIP, /etc/resolv.conf].
    #[arg(long = "dns", value_name = "ADDRESS", global = true)]
    dns: Option<String>,
}

#[derive(Args)]
struct Forms {
    /// Print records in BIND zone file form.
    #[arg(long = "bind")]
    bind: bool,
    /// Print records as tinydns-data lines.
    #[arg(long = "tinydns")]
    tinydns: bool,
    /// Print only the records' values.
    #[arg(long = "value", conflicts_with_all = ["bind", "tinydns"])]
    value: bool,
    /// TTL of the tinydns-data lines.
    #[arg(long = "ttl", value_name = "SECONDS", default_value_t = DEFAULT_TINYDNS_TTL)]
    ttl: u32,
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Every key of every domain (or of -d DOMAIN), and what its record says.
    Status {
        /// Only this domain.
        #[arg(short = 'd', value_name = "DOMAIN")]
        domain: Option<String>,
    },
    /// Make the next key of a domain and print its record; nothing signs with it yet.
    Rotate {
        /// The domain whose next key to make.
        #[arg(short = 'd', value_name = "DOMAIN")]
        domain: String,
        /// Key type.
        #[arg(long = "type", value_name = "rsa|ed25519", default_value = "rsa", value_parser = parse_kind)]
        kind: KeyType,
        /// RSA key size in bits, 1024 to 4096.
        #[arg(long = "bits", value_name = "BITS", default_value_t = DEFAULT_NEW_RSA_BITS)]
        bits: usize,
        /// Group of the new key, mode 0640 [default: that of the key it replaces].
        #[arg(long = "group", value_name = "NAME")]
        group: Option<String>,
        #[command(flatten)]
        forms: Forms,
    },
    /// Take every step that is due (for cron; running it again changes nothing).
    Advance {
        /// Only this domain.
        #[arg(short = 'd', value_name = "DOMAIN")]
        domain: Option<String>,
        #[command(flatten)]
        forms: Forms,
    },
}

fn parse_kind(s: &str) -> Result<KeyType, String> {
    KeyType::from_name(s).ok_or_else(|| format!("'{s}' is not a key type (rsa or ed25519)"))
}

fn group_id(name: &str) -> Result<u32, String> {
    use nix::unistd::{Gid, Group};
    let g = match name.parse::<u32>() {
        Ok(n) => Group::from_gid(Gid::from_raw(n)),
        Err(_) => Group::from_name(name),
    }
    .map_err(|e| format!("--group {name}: {e}"))?;
    g.map(|g| g.gid.as_raw()).ok_or_else(|| format!("--group {name}: no such group"))
}

pub fn run(a: KeysArgs, now: u64) -> Result<u8, String> {
    let set: Vec<(&str, &str)> = a.dns.iter().map(|d| ("DNSCACHEIP", d.as_str())).collect();
    let settings = Settings::from_process_with(&set, &[]);
    let control = &settings.control;
    let now = match &a.now {
        Some(t) => keys::parse_time(t).map_err(|e| format!("--now: {e}"))?,
        None => now,
    };
    let mut s = keys::Settings {
        dir: keys::key_dir(control, a.dir.as_deref()),
        now,
        queuelifetime: keys::queuelifetime(control)?,
        forms: RecordForms::default(),
    };
    // The resolver qmail-dkim uses for keys (SELECTOR_DATA does not apply: it is no DNS).
    let dns = || dns::Hickory::from_settings(&settings.dns);
    let mut out = Report::default();
    match a.cmd {
        KeysCmd::Status { domain } => keys::status(&s, domain.as_deref(), &dns(), &mut out)?,
        KeysCmd::Rotate { domain, kind, bits, group, forms } => {
            s.forms = record_forms(&forms);
            let gid = group.as_deref().map(group_id).transpose()?;
            keys::rotate(&s, &domain, kind, bits, gid, &mut out)?;
        }
        KeysCmd::Advance { domain, forms } => {
            s.forms = record_forms(&forms);
            keys::advance(&s, domain.as_deref(), &dns(), &mut out)?;
        }
    }
    for l in &out.lines {
        println!("{l}");
    }
    for p in &out.problems {
        println!("problem: {p}");
    }
    Ok(u8::from(!out.problems.is_empty()))
}

fn record_forms(f: &Forms) -> RecordForms {
    RecordForms { bind: f.bind, tinydns: f.tinydns, value: f.value, ttl: f.ttl }
}

/// For `dkim check`: the active keys of the domains `dkim keys` rotates.
pub fn check(settings: &Settings, dns: &dyn dns::TxtLookup, out: &mut Report) {
    keys::check_active(&keys::key_dir(&settings.control, None), dns, out);
}
