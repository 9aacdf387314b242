//! The rotation state of one domain: `rotation.state` in its key directory, one key a line,
//! `selector type state since p`, written whole to a temporary file and renamed into place,
//! so a reader (or a run killed half-way) sees the old file or the new one.

use crate::dkim::key::KeyType;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

/// The state file's name in a domain's key directory. qmail-dkim never reads it.
pub(crate) const STATE_FILE: &str = "rotation.state";
/// A state file is never longer than this (a line is about 450 bytes for a 2048-bit key).
pub(crate) const MAX_STATE_FILE: u64 = 1 << 20;

/// Where a key is in its life, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum State {
    /// Made; its record is not seen in the DNS yet.
    New,
    /// Its record answers and matches; it signs once it has done so for a while.
    Published,
    /// qmail-dkim signs with it: the slot file names it.
    Active,
    /// It signed until `since`; mail signed with it may still be queued, its record stays.
    Retiring,
    /// Its record is to be replaced by the revocation record (`p=` empty).
    Revoked,
    /// Its private key is deleted; its record may go.
    Removed,
}

impl State {
    pub(crate) const ALL: [State; 6] =
        [State::New, State::Published, State::Active, State::Retiring, State::Revoked, State::Removed];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Published => "published",
            State::Active => "active",
            State::Retiring => "retiring",
            State::Revoked => "revoked",
            State::Removed => "removed",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// One key of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) selector: String,
    pub(crate) kind: KeyType,
    pub(crate) state: State,
    /// When it entered `state` (seconds since the epoch).
    pub(crate) since: u64,
    /// The public key as the record's `p=` carries it.
    pub(crate) p: String,
}

/// Reads the state file of the key directory `dir`: no file, no keys.
pub(crate) fn read(dir: &Path) -> Result<Vec<Key>, String> {
    let path = dir.join(STATE_FILE);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut text = String::new();
    f.take(MAX_STATE_FILE + 1).read_to_string(&mut text).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_STATE_FILE {
        return Err(format!("{} is over {} KiB: not a state file", path.display(), MAX_STATE_FILE >> 10));
    }
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The keys of a state file's text; `#` lines and blank lines are comments.
pub(crate) fn parse(text: &str) -> Result<Vec<Key>, String> {
    let mut keys: Vec<Key> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}", n + 1);
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let [selector, kind, state, since, p] = f.as_slice() else {
            return Err(bad("not `selector type state since p`"));
        };
        if !(crate::domain::is_label_list(selector) && crate::domain::fits_dns(selector)) {
            return Err(bad("not a selector"));
        }
        if keys.iter().any(|k| k.selector == *selector) {
            return Err(bad("the selector is listed twice"));
        }
        let key = Key {
            selector: selector.to_string(),
            kind: KeyType::from_name(kind).ok_or_else(|| bad("the type is not rsa or ed25519"))?,
            state: State::from_name(state).ok_or_else(|| bad("not a state"))?,
            since: super::parse_time(since).map_err(|e| bad(&e))?,
            p: p.to_string(),
        };
        keys.push(key);
    }
    Ok(keys)
}

/// The text of a state file.
pub(crate) fn render(domain: &str, keys: &[Key]) -> String {
    let mut out = format!(
        "# The keys of {domain}, kept by dkim keys (see dkim(8)): selector type state since p\n\
         # qmail-dkim does not read this file; dkim keys advance changes it.\n"
    );
    for k in keys {
        let _ = writeln!(out, "{} {} {} {} {}", k.selector, k.kind, k.state.as_str(), super::format_time(k.since), k.p);
    }
    out
}

/// Writes the state file of `dir` at once (a temporary file renamed over it).
pub(crate) fn write(dir: &Path, domain: &str, keys: &[Key]) -> Result<(), String> {
    let path = dir.join(STATE_FILE);
    super::files::install(&path, render(domain, keys).as_bytes(), super::files::Ownership::PUBLIC, true)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trip_and_errors() {
        let keys = vec![
            Key {
                selector: "default".into(),
                kind: KeyType::Rsa,
                state: State::Retiring,
                since: 86400,
                p: "AAA".into(),
            },
            Key {
                selector: "ed20270101".into(),
                kind: KeyType::Ed25519,
                state: State::New,
                since: 1_798_761_600,
                p: "BBB".into(),
            },
        ];
        let text = render("example.com", &keys);
        assert!(text.contains("default rsa retiring 1970-01-02T00:00:00Z AAA\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), keys);
        for (bad, why) in [
            ("a rsa new", "line 1: not `selector type state since p`"),
            ("a/b rsa new @0 AAA", "line 1: not a selector"),
            ("a dsa new @0 AAA", "line 1: the type is not rsa or ed25519"),
            ("a rsa old @0 AAA", "line 1: not a state"),
            ("a rsa new yesterday AAA", "line 1: not a time"),
            ("a rsa new @0 AAA\na rsa new @0 AAA", "line 2: the selector is listed twice"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with(why), "{bad}: {e}");
        }
    }
}
