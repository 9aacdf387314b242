//! dknewkey: make a DKIM (and DomainKeys) signing key and print the DNS records to publish.
//!
//! ```text
//! dknewkey [-e] [-f] [-b bits] [-t rsa|ed25519] [-d domain] [--bind] [--tinydns]
//!          [--domainkeys [--policy-all]] [--hash sha256] [--service email]
//!          [--group name] [--ttl seconds] keyfile [bits]
//! dknewkey -p [-e] [-d domain] [formats and record options] keyfile
//! dknewkey -p --value [-e] [--hash sha256] [--service email] keyfile
//! dknewkey -r [-f] keyfile
//! ```
//!
//! The selector is the key file's name. The record goes to standard output and to `keyfile.pub`;
//! messages go to standard error. Exit 0 on success, 1 on an error, 2 on a usage error.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use qmail_dkim::dkim::key::KeyType;
use qmail_dkim::keygen::{self, DkimRecordOptions, PublicKeyInfo};

/// The group of qmaild, the user qmail-smtpd runs as on a stock qmail.
const SMTP_GROUP: &str = "nofiles";
/// One byte more than a key file may have, so the reader sees a longer file as too long.
const MAX_KEY_FILE: u64 = qmail_dkim::keyfile::MAX_KEY_FILE as u64 + 1;

#[derive(Parser, Debug)]
#[command(
    name = "dknewkey",
    version,
    about = "Make a DKIM signing key for qmail-dkim and print the DNS TXT record to publish",
    long_about = "Make a DKIM signing key for qmail-dkim and print the DNS TXT record to publish.\n\n\
The selector is the key file's name (\"default\" for .../domainkeys/example.com/default). \
The record is printed on standard output and written to KEYFILE.pub; the private key is never printed.",
    after_help = "Examples:\n  \
/var/qmail/bin/dknewkey -d example.com /var/qmail/control/domainkeys/example.com/default\n  \
/var/qmail/bin/dknewkey -t ed25519 /var/qmail/control/domainkeys/example.com/ed1\n  \
/var/qmail/bin/dknewkey -p -e /var/qmail/control/domainkeys/example.com/default\n  \
/var/qmail/bin/dknewkey -p --value /var/qmail/control/domainkeys/example.com/default"
)]
struct Cli {
    /// Print the DNS record of an existing key (no new key is made)
    #[arg(short = 'p', conflicts_with = "remove")]
    print: bool,

    /// Remove the key and KEYFILE.pub
    #[arg(short = 'r')]
    remove: bool,

    /// Replace an existing key (with -r: remove a file that does not look like a private key)
    #[arg(short = 'f')]
    force: bool,

    /// RSA key size in bits, 1024 to 4096 [default: 2048]
    #[arg(short = 'b', value_name = "BITS", conflicts_with_all = ["print", "remove"])]
    bits: Option<usize>,

    /// Key type
    #[arg(short = 't', value_name = "rsa|ed25519", value_parser = parse_kind, conflicts_with = "remove")]
    kind: Option<KeyType>,

    /// Signing domain, for the record's name [default: the key's directory name if it is a domain]
    #[arg(short = 'd', value_name = "DOMAIN", conflicts_with = "remove")]
    domain: Option<String>,

    /// Leave t=y (testing) out of the records
    #[arg(short = 'e', conflicts_with = "remove")]
    no_testing: bool,

    /// Also print the DomainKeys (RFC 4870) key record and the _domainkey policy record
    #[arg(long = "domainkeys", conflicts_with = "remove")]
    domainkeys: bool,

    /// With --domainkeys: the policy says the domain signs all its mail (o=- instead of o=~)
    #[arg(long = "policy-all", requires = "domainkeys")]
    policy_all: bool,

    /// With -p: print only the record's value (v=DKIM1; k=...; p=...) on one line, for
    /// SELECTOR_DATA or a DNS provider's form
    #[arg(long = "value", requires = "print", conflicts_with_all = ["bind", "tinydns", "domainkeys"])]
    value: bool,

    /// Print the record in BIND zone file form
    #[arg(long = "bind", conflicts_with = "remove")]
    bind: bool,

    /// Print the record as a tinydns-data line
    #[arg(long = "tinydns", conflicts_with = "remove")]
    tinydns: bool,

    /// Add h=sha256 to the DKIM record (the key may not be used with rsa-sha1)
    #[arg(long = "hash", value_name = "sha256", value_parser = ["sha256"], conflicts_with = "remove")]
    hash: Option<String>,

    /// Add s=email to the DKIM record
    #[arg(long = "service", value_name = "email", value_parser = ["email"], conflicts_with = "remove")]
    service: Option<String>,

    /// Group of the new key, mode 0640 [default as root: nofiles if it exists; else mode 0600]
    #[arg(long = "group", value_name = "NAME", conflicts_with_all = ["print", "remove"])]
    group: Option<String>,

    /// TTL of the tinydns-data lines
    #[arg(long = "ttl", value_name = "SECONDS", default_value_t = keygen::DEFAULT_TINYDNS_TTL, conflicts_with = "remove")]
    ttl: u32,

    /// The private key file; its name is the selector
    #[arg(value_name = "KEYFILE")]
    keyfile: PathBuf,

    /// Key size, as in the old `dknewkey keyfile bits` form
    #[arg(value_name = "BITS", conflicts_with_all = ["bits", "print", "remove"])]
    legacy_bits: Option<usize>,
}

fn parse_kind(s: &str) -> Result<KeyType, String> {
    KeyType::from_name(s).ok_or_else(|| format!("'{s}' is not a key type (rsa or ed25519)"))
}

/// An error for the one `dknewkey: ...` line.
struct Fail(String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(msg)) => {
            eprintln!("dknewkey: {msg}");
            ExitCode::from(1)
        }
    }
}

fn warn(msg: &str) {
    eprintln!("dknewkey: warning: {msg}");
}

fn run(cli: &Cli) -> Result<(), Fail> {
    if cli.remove {
        return remove_key(&cli.keyfile, cli.force);
    }
    let params = if cli.print { None } else { Some(new_key_params(cli)?) };
    let selector = selector_of(&cli.keyfile)?;
    // The value alone names no domain: no guess, no warning about one.
    let domain = if cli.value { String::new() } else { signing_domain(cli)? };
    if cli.print {
        let pem = read_key(&cli.keyfile)?;
        let info = keygen::public_key_info(&pem).map_err(|e| Fail(format!("{}: {e}", cli.keyfile.display())))?;
        if let Some(k) = cli.kind {
            if k != info.kind {
                return Err(Fail(format!("{} is an {} key, not {k}", cli.keyfile.display(), info.kind)));
            }
        }
        if info.kind == KeyType::Rsa && info.bits < qmail_dkim::dkim::key::MIN_RSA_BITS {
            warn(&format!(
                "{} is a {}-bit RSA key: verifiers ignore keys under 1024 bits (RFC 8301); make a new one",
                cli.keyfile.display(),
                info.bits
            ));
        }
        // The selector a key file names on its first line (a file `dkim keys` switched).
        let selector = qmail_dkim::config::key_selector(&cli.keyfile, &pem)
            .map_err(|e| Fail(format!("{}: {e}", cli.keyfile.display())))?;
        let text = if cli.value {
            format!("{}\n", keygen::dkim_record(info.kind, &info.p, record_options(cli)))
        } else {
            render(cli, &selector, &domain, &info)?
        };
        io::stdout().write_all(text.as_bytes()).map_err(|e| Fail(format!("cannot write the record: {e}")))?;
        return Ok(());
    }
    let (kind, bits) = params.unwrap_or((KeyType::Rsa, qmail_dkim::dkim::key::DEFAULT_NEW_RSA_BITS));
    create_key(cli, &selector, &domain, kind, bits)
}

/// The selector: the key file's name, which must be a DNS label (or several).
fn selector_of(path: &Path) -> Result<String, Fail> {
    let name = path
        .file_name()
        .and_then(OsStr::to_str)
        .ok_or_else(|| Fail(format!("{}: the key file needs a name (it is the selector)", path.display())))?;
    if !keygen::is_valid_selector(name) {
        return Err(Fail(format!(
            "'{name}' cannot be a selector (the selector is the key file's name: letters, digits, hyphens, dots)"
        )));
    }
    Ok(name.to_string())
}

/// `-d`, else the key's directory name when it looks like a domain, else example.com.
fn signing_domain(cli: &Cli) -> Result<String, Fail> {
    if let Some(d) = &cli.domain {
        let d = d.trim_end_matches('.');
        if !keygen::looks_like_domain(d) {
            return Err(Fail(format!("-d {d}: not a domain name")));
        }
        return Ok(d.to_ascii_lowercase());
    }
    let parent = match cli.keyfile.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = fs::canonicalize(&parent).unwrap_or(parent);
    let name = dir.file_name().and_then(OsStr::to_str).unwrap_or("");
    if keygen::looks_like_domain(name) {
        return Ok(name.trim_end_matches('.').to_ascii_lowercase());
    }
    warn(&format!(
        "no -d and the key's directory '{name}' is not a domain name: the record says example.com; \
         print the right one with: {} -p -d DOMAIN {}",
        tool("dknewkey"),
        cli.keyfile.display()
    ));
    Ok("example.com".to_string())
}

/// Our tool `name` by its full path (beside this program), since Debian's dkimpy has its own
/// dknewkey in /usr/bin.
fn tool(name: &str) -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
        .map_or_else(|| name.to_string(), |p| p.display().to_string())
}

/// Who we run as, for error messages about unreadable files.
fn whoami() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>, Fail> {
    let f = File::open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            Fail(format!("cannot read {}: {e} (running as {})", path.display(), whoami()))
        } else {
            Fail(format!("cannot read {}: {e}", path.display()))
        }
    })?;
    let meta = f.metadata().map_err(|e| Fail(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Fail(format!("{} is not a regular file", path.display())));
    }
    let mut buf = Vec::new();
    f.take(MAX_KEY_FILE).read_to_end(&mut buf).map_err(|e| Fail(format!("cannot read {}: {e}", path.display())))?;
    Ok(buf)
}

fn pub_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_os_string();
    s.push(".pub");
    PathBuf::from(s)
}

/// `-r`: remove the key and its .pub.
fn remove_key(path: &Path, force: bool) -> Result<(), Fail> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Err(Fail(format!("{} is a directory", path.display()))),
        Ok(m) if m.file_type().is_file() && !force => {
            let pem = read_key(path)?;
            if let Err(e) = keygen::public_key_info(&pem) {
                return Err(Fail(format!(
                    "{} does not look like a private key ({e}); use -r -f to remove it anyway",
                    path.display()
                )));
            }
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Fail(format!("{}: no such key", path.display())));
        }
        Err(e) => return Err(Fail(format!("{}: {e}", path.display()))),
    }
    fs::remove_file(path).map_err(|e| Fail(format!("cannot remove {}: {e}", path.display())))?;
    eprintln!("dknewkey: removed {}", path.display());
    let pubp = pub_path(path);
    match fs::remove_file(&pubp) {
        Ok(()) => eprintln!("dknewkey: removed {}", pubp.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Fail(format!("cannot remove {}: {e}", pubp.display()))),
    }
    eprintln!("dknewkey: remove its TXT record from the DNS only after no queued mail can still be signed with it");
    Ok(())
}

/// The group and mode a new key gets.
struct Ownership {
    gid: Option<nix::unistd::Gid>,
    group_name: Option<String>,
    mode: u32,
}

/// `--group`, else (with -f) the group of the key being replaced, else as root the group
/// nofiles, else none (mode 0600).
fn ownership(cli: &Cli, old: Option<&fs::Metadata>) -> Result<Ownership, Fail> {
    use nix::unistd::{Gid, Group};
    if let Some(name) = &cli.group {
        let group = match name.parse::<u32>() {
            Ok(n) => Group::from_gid(Gid::from_raw(n))?,
            Err(_) => Group::from_name(name)?,
        };
        let g = group.ok_or_else(|| Fail(format!("--group {name}: no such group")))?;
        return Ok(Ownership { gid: Some(g.gid), group_name: Some(g.name), mode: 0o640 });
    }
    if let Some(m) = old.filter(|m| m.is_file()) {
        // Replacing a key: keep what the administrator gave the old one (group, group read).
        let gid = Gid::from_raw(m.gid());
        let name = Group::from_gid(gid).ok().flatten().map_or_else(|| gid.to_string(), |g| g.name);
        let mode = if m.mode() & 0o040 != 0 { 0o640 } else { 0o600 };
        return Ok(Ownership { gid: Some(gid), group_name: Some(name), mode });
    }
    if nix::unistd::geteuid().is_root() {
        if let Ok(Some(g)) = Group::from_name(SMTP_GROUP) {
            return Ok(Ownership { gid: Some(g.gid), group_name: Some(g.name), mode: 0o640 });
        }
        warn(&format!(
            "there is no group {SMTP_GROUP}: the key is mode 0600, readable by root only; \
             give it to the group qmail-smtpd runs as (--group NAME, or chgrp and chmod 0640)"
        ));
    }
    Ok(Ownership { gid: None, group_name: None, mode: 0o600 })
}

/// Checks the options of a new key before anything else; returns its type and size.
fn new_key_params(cli: &Cli) -> Result<(KeyType, usize), Fail> {
    let kind = cli.kind.unwrap_or(KeyType::Rsa);
    let bits = cli.bits.or(cli.legacy_bits);
    if kind == KeyType::Ed25519 && bits.is_some() {
        warn("-b is for RSA keys; an Ed25519 key is always 256 bits");
    }
    let bits = bits.unwrap_or(qmail_dkim::dkim::key::DEFAULT_NEW_RSA_BITS);
    if kind == KeyType::Rsa {
        keygen::check_rsa_bits(bits)?;
        if bits < 2048 {
            warn(&format!(
                "a {bits}-bit key is signed with the rsa crate, which has a timing side channel \
                 (RUSTSEC-2023-0071); 2048 bits is the default and the recommendation"
            ));
        }
    }
    if kind == KeyType::Ed25519 && cli.domainkeys {
        return Err(Fail("DomainKeys records need an RSA key (leave out --domainkeys or -t ed25519)".into()));
    }
    Ok((kind, bits))
}

fn create_key(cli: &Cli, selector: &str, domain: &str, kind: KeyType, bits: usize) -> Result<(), Fail> {
    let path = &cli.keyfile;
    let old = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Err(Fail(format!("{} is a directory", path.display()))),
        Ok(_) if !cli.force => {
            return Err(Fail(format!("{} exists; use -f to replace it, or -p to print its record", path.display())))
        }
        Ok(m) => Some(m),
        Err(_) => None,
    };
    let own = ownership(cli, old.as_ref())?;

    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| Fail(format!("cannot create the directory {}: {e}", dir.display())))?;
        eprintln!("dknewkey: made the directory {}", dir.display());
    }

    let (pem, info) = keygen::generate(kind, bits)?;
    install_key(path, pem.as_bytes(), &own, cli.force)?;

    let text = render(cli, selector, domain, &info)?;
    let pubp = pub_path(path);
    let wrote_pub = if stdout_is(&pubp) {
        false
    } else {
        write_pub(&pubp, &text)?;
        true
    };
    io::stdout().write_all(text.as_bytes()).map_err(|e| Fail(format!("cannot write the record: {e}")))?;
    let _ = io::stdout().flush();

    let mut hint =
        format!("dknewkey: made {} ({} {} bits, mode {:04o}", path.display(), info.kind, info.bits, own.mode);
    if let Some(g) = &own.group_name {
        hint.push_str(&format!(", group {g}"));
    }
    hint.push(')');
    if wrote_pub {
        hint.push_str(&format!(" and {}", pubp.display()));
    }
    eprintln!("{hint}");
    let name = keygen::key_record_name(selector, domain);
    eprintln!("Publish the TXT record {name} shown above, then check it with");
    eprintln!("  {} testkey -d {domain} -s {selector} -k {}", tool("dkim"), path.display());
    if !cli.no_testing {
        eprintln!("When signatures verify, drop t=y: {} -p -e -d {domain} {}", tool("dknewkey"), path.display());
    }
    eprintln!(
        "qmail-dkim must be able to read the key: under qmail-smtpd it runs as qmaild (group nofiles), \
         under qmail-inject as the user who sends."
    );
    Ok(())
}

/// Writes the key into a new file (mode and group set before any byte is written), then links it
/// into place (no -f: fails if the key appeared meanwhile) or renames it over the old one (-f).
fn install_key(path: &Path, pem: &[u8], own: &Ownership, force: bool) -> Result<(), Fail> {
    let how = qmail_dkim::keys::files::Ownership { mode: own.mode, gid: own.gid.map(|g| g.as_raw()) };
    qmail_dkim::keys::files::install(path, pem, how, force).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => Fail(format!("{} exists; use -f to replace it", path.display())),
        io::ErrorKind::PermissionDenied if own.gid.is_some() => {
            Fail(format!("cannot make {} (group {}): {e}", path.display(), own.group_name.as_deref().unwrap_or("?")))
        }
        _ => Fail(format!("cannot make {}: {e}", path.display())),
    })
}

/// Is standard output this very file (`dknewkey default 1024 > default.pub`)?
fn stdout_is(path: &Path) -> bool {
    let Ok(target) = fs::metadata(path) else { return false };
    let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else { return false };
    let Ok(out) = File::from(fd).metadata() else { return false };
    out.dev() == target.dev() && out.ino() == target.ino()
}

fn write_pub(path: &Path, text: &str) -> Result<(), Fail> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Fail(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes()).map_err(|e| Fail(format!("cannot write {}: {e}", path.display())))
}

/// The tags of the DKIM record that the options choose (-e, --hash, --service).
fn record_options(cli: &Cli) -> DkimRecordOptions {
    DkimRecordOptions { testing: !cli.no_testing, sha256_only: cli.hash.is_some(), email_only: cli.service.is_some() }
}

/// The records, in the formats asked for (both when none is named).
fn render(cli: &Cli, selector: &str, domain: &str, info: &PublicKeyInfo) -> Result<String, Fail> {
    let forms = keygen::RecordForms { bind: cli.bind, tinydns: cli.tinydns, value: false, ttl: cli.ttl };
    let dk = cli.domainkeys.then_some(cli.policy_all);
    Ok(keygen::render_records(selector, domain, info, record_options(cli), dk, forms)?)
}
