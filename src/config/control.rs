//! qmail control files under `$CONTROLDIR` (default /var/qmail/control): one entry a line,
//! `#` comments and blank lines ignored, CRLF tolerated.

use crate::error::{Error, Result};
use crate::glob::Glob;
use std::io;
use std::path::{Path, PathBuf};

pub(crate) const DEFAULT_CONTROLDIR: &str = "/var/qmail/control";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlDir {
    pub(crate) path: PathBuf,
}

impl ControlDir {
    pub(crate) fn new(path: impl Into<PathBuf>) -> ControlDir {
        ControlDir { path: path.into() }
    }

    /// A path relative to the control directory (absolute paths are kept).
    pub(crate) fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.join(p)
        }
    }

    /// The meaningful lines of a control file; `Ok(None)` when it does not exist.
    pub(crate) fn lines(&self, name: &str) -> Result<Option<Vec<String>>> {
        read_lines(&self.resolve(name))
    }

    /// The first meaningful line of a control file (like qmail's control_readline).
    pub(crate) fn first_line(&self, name: &str) -> Result<Option<String>> {
        Ok(self.lines(name)?.and_then(|l| l.into_iter().next()))
    }
}

pub(crate) fn read_lines(path: &Path) -> Result<Option<Vec<String>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(parse_lines(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(Error::Control { path: path.to_path_buf(), reason: e.to_string() }),
    }
}

pub fn parse_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// One `dkimkeys` line: `domain:private_key_path[:envstr]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKeysEntry {
    pub pattern: String,
    pub key: String,
    pub envstr: Vec<EnvChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    Set(String, String),
    Unset(String),
}

pub fn parse_dkimkeys(lines: &[String], path: &Path) -> Result<Vec<DkimKeysEntry>> {
    let bad =
        |n: usize, why: &str| Error::Control { path: path.to_path_buf(), reason: format!("entry {}: {why}", n + 1) };
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let mut parts = line.splitn(3, ':');
        let pattern = parts.next().unwrap_or_default().trim();
        let key = parts.next().map(str::trim).ok_or_else(|| bad(n, "expected domain:private_key_path[:envstr]"))?;
        if pattern.is_empty() || key.is_empty() {
            return Err(bad(n, "empty domain or key path"));
        }
        let envstr = match parts.next() {
            Some(e) => parse_envstr(e).map_err(|why| bad(n, &why))?,
            None => Vec::new(),
        };
        out.push(DkimKeysEntry { pattern: pattern.to_string(), key: key.to_string(), envstr });
    }
    Ok(out)
}

/// `VAR=val,VAR2=,…`: `VAR=` unsets, `\,` is a literal comma.
pub fn parse_envstr(s: &str) -> std::result::Result<Vec<EnvChange>, String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            ',' => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    let mut out = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, v) = item.split_once('=').ok_or_else(|| format!("envstr item {item:?} has no '='"))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("envstr item {item:?} has an invalid variable name"));
        }
        out.push(if v.is_empty() { EnvChange::Unset(k.into()) } else { EnvChange::Set(k.into(), v.into()) });
    }
    Ok(out)
}

/// The `dkimkeys` entry for a domain: exact match, else a glob (`*`, `?`; [`crate::glob`]),
/// else (with `QREGEX`) an extended case-insensitive regular expression.
pub fn lookup_dkimkeys<'a>(entries: &'a [DkimKeysEntry], domain: &str, qregex: bool) -> Option<&'a DkimKeysEntry> {
    let domain = domain.to_ascii_lowercase();
    if let Some(e) = entries.iter().find(|e| e.pattern.eq_ignore_ascii_case(&domain)) {
        return Some(e);
    }
    if let Some(e) = entries
        .iter()
        .find(|e| e.pattern.contains(['*', '?']) && Glob::star_and_question(&e.pattern).ignore_case().matches(&domain))
    {
        return Some(e);
    }
    if qregex {
        return entries.iter().find(|e| {
            regex::RegexBuilder::new(&format!("^(?:{})$", e.pattern))
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .is_ok_and(|r| r.is_match(&domain))
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_comments_and_crlf() {
        assert_eq!(parse_lines(b"# c\r\n\r\na.org:k\r\n  \n"), vec!["a.org:k".to_string()]);
    }

    #[test]
    fn dkimkeys() {
        let lines = vec![
            "example.com:domainkeys/example.com/default".to_string(),
            "*.example.org:/keys/org:DKIMSIGNOPTIONS=-z 4,DKIMIDENTITY=".to_string(),
            "ex[0-9]+\\.net:k3".to_string(),
        ];
        let e = parse_dkimkeys(&lines, Path::new("dkimkeys")).unwrap();
        assert_eq!(lookup_dkimkeys(&e, "EXAMPLE.com", false).unwrap().key, "domainkeys/example.com/default");
        let g = lookup_dkimkeys(&e, "mail.example.org", false).unwrap();
        assert_eq!(
            g.envstr,
            vec![EnvChange::Set("DKIMSIGNOPTIONS".into(), "-z 4".into()), EnvChange::Unset("DKIMIDENTITY".into())]
        );
        assert!(lookup_dkimkeys(&e, "ex12.net", false).is_none());
        assert_eq!(lookup_dkimkeys(&e, "ex12.net", true).unwrap().key, "k3");
        assert!(lookup_dkimkeys(&e, "other.com", true).is_none());
    }

    #[test]
    fn broken_lines() {
        let p = Path::new("dkimkeys");
        assert!(parse_dkimkeys(&["nocolon".to_string()], p).is_err());
        assert!(parse_dkimkeys(&["a.org:k:NOEQUALS".to_string()], p).is_err());
        assert_eq!(parse_envstr("A=x\\,y").unwrap(), vec![EnvChange::Set("A".into(), "x,y".into())]);
    }
}
