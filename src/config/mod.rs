//! What the environment and the control files say, as plain data: the one reading of both
//! ([`settings`]), key candidates, a key file's selector, the signing domain, the authserv-id.
//! Nothing here writes, and only control files are read, so tests build [`Settings`] from pairs
//! and a temporary control directory and assert on the result.

pub mod control;
mod env;
pub mod settings;

pub use control::ControlDir;
pub use settings::Settings;

use crate::error::{Error, Result};
use crate::message::{address_domain, author_domain, unfold, Headers};
use std::path::{Path, PathBuf};

/// qmail-dkim's default DKIM key path template, under the control directory.
pub const DEFAULT_KEY: &str = "domainkeys/%/default";

/// Where to look for a key: the candidates in order. When none exists, a template with `%`
/// means "this domain has no key: queue unsigned", one without `%` is error 35. A signing
/// domain that is not a DNS name ([`crate::domain::is_dns_name`]) has no key whatever the
/// template: it must not become part of a path (`..`), nor a `d=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChoice {
    /// Empty when the domain is not a DNS name.
    pub candidates: Vec<PathBuf>,
    pub has_percent: bool,
    pub domain: String,
}

impl KeyChoice {
    pub fn new(control: &ControlDir, template: &str, domain: &str) -> KeyChoice {
        let has_percent = template.contains('%');
        let mut candidates = Vec::new();
        if crate::domain::is_dns_name(domain) {
            candidates.push(control.resolve(&template.replace('%', domain)));
            // Without `%`, `/dir/%` would fall back to the directory itself.
            let removed = template.replace("/%/", "/").replace('%', "");
            if has_percent && !removed.is_empty() && !removed.ends_with('/') {
                candidates.push(control.resolve(&removed));
            }
            candidates.dedup();
        }
        KeyChoice { candidates, has_percent, domain: domain.to_string() }
    }

    /// The first candidate that exists, with its contents; `None` when the domain has no key
    /// (the message is queued unsigned: say so with [`KeyChoice::no_key`]).
    pub fn find(&self) -> Result<Option<(PathBuf, Vec<u8>)>> {
        Ok(self.find_file()?.map(|k| (k.path, k.pem)))
    }

    /// [`KeyChoice::find`] with the file's permission bits, from the same open.
    pub fn find_file(&self) -> Result<Option<KeyFile>> {
        let mut mode = 0;
        let found = self.find_with(|p| {
            read_key(p).map(|(pem, m)| {
                mode = m;
                pem
            })
        });
        match found {
            KeyFound::Read(path, pem) => Ok(Some(KeyFile { path, pem, mode })),
            KeyFound::Unreadable(path, e) => Err(Error::key_unreadable(path, e)),
            KeyFound::Missing => match self.candidates.first() {
                Some(first) if !self.has_percent => Err(Error::KeyMissing(first.clone())),
                _ => Ok(None),
            },
        }
    }

    /// Why [`KeyChoice::find`] found no key, for the line on descriptor 2.
    pub fn no_key(&self) -> String {
        match self.candidates.first() {
            Some(first) => format!("no private key for {} ({})", self.domain, first.display()),
            None => format!("signing domain {:?} is not a domain name, so it has no key", self.domain),
        }
    }
}

/// A key file and its permission bits.
#[derive(Debug)]
pub struct KeyFile {
    pub path: PathBuf,
    pub pem: Vec<u8>,
    pub mode: u32,
}

/// The contents and the permission bits of a file, from one open and one `fstat` (`File`'s own
/// `read_to_end` would ask for the size and the position again).
fn read_key(path: &Path) -> std::io::Result<(Vec<u8>, u32)> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    let mut pem = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).min(1 << 20));
    Read::take(&mut f, u64::MAX).read_to_end(&mut pem)?;
    Ok((pem, meta.permissions().mode()))
}

/// What a search through the key candidates found.
#[derive(Debug)]
pub enum KeyFound {
    /// The first candidate that exists, and its contents.
    Read(PathBuf, Vec<u8>),
    /// The first candidate that exists but could not be read.
    Unreadable(PathBuf, std::io::Error),
    /// No candidate exists.
    Missing,
}

impl KeyChoice {
    /// Tries the candidates in order with `read` (qmail-dkim: `std::fs::read`; `dkim check`: the
    /// same as another user): a missing file or directory means "next", any other error stops.
    pub fn find_with(&self, mut read: impl FnMut(&Path) -> std::io::Result<Vec<u8>>) -> KeyFound {
        for cand in &self.candidates {
            match read(cand) {
                Ok(b) => return KeyFound::Read(cand.clone(), b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {}
                // `/dir/%` where the domain is a directory: that domain has no key file.
                Err(e) if e.raw_os_error() == Some(libc::EISDIR) && self.has_percent => {}
                Err(e) => return KeyFound::Unreadable(cand.clone(), e),
            }
        }
        KeyFound::Missing
    }
}

/// The selector: the key file's basename.
pub fn selector_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

pub use crate::keyfile::SELECTOR_LINE;

/// The selector of the key `pem` read from `path`: the value of a first line
/// `DKIM-Selector: NAME` ([`crate::keyfile::selector`]), else the file's name ([`selector_of`]).
pub fn key_selector(path: &Path, pem: &[u8]) -> std::result::Result<String, String> {
    Ok(crate::keyfile::selector(pem)?.unwrap_or_else(|| selector_of(path)))
}

/// The signing domain (d=): Return-Path, Sender, From, X-Bounced-Address, then BOUNCEDOMAIN,
/// control/bouncehost, control/me. Fields as any reader sees them ([`Headers::views`]); From
/// only when it names one domain ([`author_domain`]).
pub fn signing_domain(headers: &Headers, settings: &Settings) -> Result<Option<String>> {
    for name in ["Return-Path", "Sender", "From", "X-Bounced-Address"] {
        let d = match name {
            "From" => author_domain(headers).ok(),
            _ => headers.views_named(name).next().and_then(|v| address_domain(&unfold(v.value))),
        };
        if let Some(d) = d {
            return Ok(Some(d));
        }
    }
    if let Some(d) = &settings.bouncedomain {
        return Ok(Some(d.clone()));
    }
    let file = match settings.bouncehost()? {
        Some(d) => Some(d),
        None => settings.me()?,
    };
    Ok(file.map(|d| d.trim_end_matches('.').to_ascii_lowercase()))
}

/// The authserv-id: `AUTHSERV_ID`, else the first line of control/me, else the host name.
/// Characters that cannot be in an unquoted RFC 8601 value are dropped.
pub fn authserv_id(settings: &Settings) -> String {
    let raw =
        settings.authserv_id.clone().or_else(|| settings.me().ok().flatten()).or_else(hostname).unwrap_or_default();
    let id: String = raw.trim().chars().filter(|&c| crate::auth_results::is_token_char(c)).collect();
    if id.is_empty() {
        "localhost".into()
    } else {
        id
    }
}

/// The system's host name, asked once per run.
fn hostname() -> Option<String> {
    static HOST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let h = nix::unistd::gethostname().ok()?;
        let h = h.to_string_lossy().trim().to_string();
        (!h.is_empty()).then_some(h)
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings with `p` and the control directory `dir`.
    fn settings(dir: &Path, p: &[(&str, &str)]) -> Settings {
        let mut pairs = vec![("CONTROLDIR", dir.to_str().unwrap())];
        pairs.extend_from_slice(p);
        Settings::from_pairs(&pairs)
    }

    /// A key file that names its selector on its first line signs with that selector; a file
    /// without the line keeps its name as the selector (`domainkeys/%/default` never rotated).
    #[test]
    fn selector_line_of_a_key_file_names_the_selector() {
        let p = Path::new("/k/example.com/default");
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(key_selector(p, pem).unwrap(), "default");
        let named = [b"DKIM-Selector: rsa20261207\r\n".as_slice(), pem].concat();
        assert_eq!(key_selector(p, &named).unwrap(), "rsa20261207");
        let lower = [b"dkim-selector:ed20270101\n".as_slice(), pem].concat();
        assert_eq!(key_selector(p, &lower).unwrap(), "ed20270101");
        // Only the first line counts; a bad name is an unusable key, not the file's name.
        let second = [b"\nDKIM-Selector: x\n".as_slice(), pem].concat();
        assert_eq!(key_selector(p, &second).unwrap(), "default");
        for bad in ["DKIM-Selector: \n", "DKIM-Selector: a/../b\n", "DKIM-Selector: a b\n"] {
            let e = key_selector(p, &[bad.as_bytes(), pem].concat()).unwrap_err();
            assert!(e.contains("names no valid selector"), "{e}");
        }
    }

    #[test]
    fn key_candidates() {
        let c = ControlDir::new("/ctl");
        let k = KeyChoice::new(&c, "domainkeys/%/default", "a.org");
        assert_eq!(
            k.candidates,
            vec![PathBuf::from("/ctl/domainkeys/a.org/default"), PathBuf::from("/ctl/domainkeys/default")]
        );
        assert!(k.has_percent);
        let k = KeyChoice::new(&c, "/keys/sel", "a.org");
        assert_eq!(k.candidates, vec![PathBuf::from("/keys/sel")]);
        assert!(!k.has_percent);
    }

    /// `DKIMSIGN=/dir/%` without a key for the domain fell back to `/dir/` itself, and reading
    /// a directory failed with 55 (retried for ever) instead of queueing the message unsigned.
    #[test]
    fn percent_as_last_component_has_no_directory_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let c = ControlDir::new(dir.path());
        let template = format!("{}/%", dir.path().display());
        let k = KeyChoice::new(&c, &template, "a.org");
        assert_eq!(k.candidates, vec![dir.path().join("a.org")]);
        assert!(matches!(k.find(), Ok(None)));
        assert_eq!(KeyChoice::new(&c, "%", "a.org").candidates, vec![dir.path().join("a.org")]);
        // A directory where a `%` key should be is no key either; without `%` it is an error.
        std::fs::create_dir(dir.path().join("a.org")).unwrap();
        assert!(matches!(k.find(), Ok(None)));
        assert!(matches!(KeyChoice::new(&c, "a.org", "a.org").find(), Err(Error::KeyUnreadable { .. })));
        assert!(matches!(KeyChoice::new(&c, "missing", "a.org").find(), Err(Error::KeyMissing(_))));
    }

    /// `From: x@...` made `%` into `..` in the key path, and a domain too long for a file name
    /// gave 55: a signing domain that is not a DNS name has no key, with or without `%`.
    #[test]
    fn dot_dot_signing_domain_has_no_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("default"), "not used").unwrap();
        let c = ControlDir::new(dir.path().join("sub"));
        let long = format!("{}.org", "a".repeat(300));
        for bad in ["..", ".", "", "a/b", long.as_str()] {
            for template in ["%/default", "/keys/%", "default"] {
                let k = KeyChoice::new(&c, template, bad);
                assert!(k.candidates.is_empty(), "{bad:?} {template}");
                assert!(matches!(k.find(), Ok(None)), "{bad:?} {template}");
                assert!(k.no_key().contains("is not a domain name"));
            }
        }
    }

    /// The warning about a key others can read takes the mode from the open that reads the key.
    #[test]
    fn key_file_mode_comes_with_its_contents() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sel");
        std::fs::write(&key, "pem").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let k = KeyChoice::new(&ControlDir::new(dir.path()), "sel", "a.org").find_file().unwrap().unwrap();
        assert_eq!((k.path, k.pem, k.mode & 0o7777), (key, b"pem".to_vec(), 0o644));
    }

    #[test]
    fn domain_order() {
        let dir = tempfile::tempdir().unwrap();
        let env = |p: &[(&str, &str)]| settings(dir.path(), p);
        let h = Headers::parse(b"From: a@from.org\nSender: b@sender.org\n".to_vec());
        assert_eq!(signing_domain(&h, &env(&[])).unwrap().as_deref(), Some("sender.org"));
        let h = Headers::parse(b"Subject: x\n".to_vec());
        assert_eq!(signing_domain(&h, &env(&[("BOUNCEDOMAIN", "x@b.org")])).unwrap().as_deref(), Some("b.org"));
        assert_eq!(signing_domain(&h, &env(&[])).unwrap(), None);
        std::fs::write(dir.path().join("me"), "me.org\n").unwrap();
        assert_eq!(signing_domain(&h, &env(&[])).unwrap().as_deref(), Some("me.org"));
        std::fs::write(dir.path().join("bouncehost"), "bh.org\n").unwrap();
        assert_eq!(signing_domain(&h, &env(&[])).unwrap().as_deref(), Some("bh.org"));
    }

    #[test]
    fn authserv() {
        let dir = tempfile::tempdir().unwrap();
        let env = |p: &[(&str, &str)]| settings(dir.path(), p);
        assert_eq!(authserv_id(&env(&[("AUTHSERV_ID", "mx.a.org")])), "mx.a.org");
        std::fs::write(dir.path().join("me"), "me.example.org\n").unwrap();
        assert_eq!(authserv_id(&env(&[])), "me.example.org");
        assert_eq!(authserv_id(&env(&[("AUTHSERV_ID", "x y;z")])), "xyz");
        let dir2 = tempfile::tempdir().unwrap();
        assert!(!authserv_id(&settings(dir2.path(), &[])).is_empty());
    }
}
