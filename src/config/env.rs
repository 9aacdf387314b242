//! An immutable snapshot of the environment, read by `config::settings` alone.
//!
//! Read once per run, as a sorted list that shares its storage between clones: qmail starts one
//! qmail-dkim per message, and a map of owned copies of every variable (tcpserver and qmail-smtpd
//! leave 30 to 40), made again for each task that keeps settings, was a fifth of the
//! instructions of an unsigned message (docs/performance.md).

use std::ffi::OsString;
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// (name, value), sorted by name, one entry per name. Clones share it until one changes.
    vars: Arc<Vec<(String, String)>>,
}

/// The bytes as they are when they are UTF-8 (no copy), else with U+FFFD for what is not.
fn text(s: OsString) -> String {
    s.into_string().unwrap_or_else(|s| s.to_string_lossy().into_owned())
}

impl Env {
    pub fn from_process() -> Env {
        Env::sorted(std::env::vars_os().map(|(k, v)| (text(k), text(v))).collect())
    }

    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Env {
        Env::sorted(pairs.iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect())
    }

    /// Sorts by name; of a name given twice the last value counts.
    fn sorted(mut vars: Vec<(String, String)>) -> Env {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        Env { vars: Arc::new(vars) }
    }

    fn find(&self, k: &str) -> Result<usize, usize> {
        self.vars.binary_search_by(|(name, _)| name.as_str().cmp(k))
    }

    #[cfg(test)]
    pub fn get(&self, k: &str) -> Option<&str> {
        self.find(k).ok().map(|i| self.vars[i].1.as_str())
    }

    /// Set means present, even if empty (`RELAYCLIENT=` is set), as in qmail.
    #[cfg(test)]
    pub fn is_set(&self, k: &str) -> bool {
        self.find(k).is_ok()
    }

    /// Present and not empty.
    #[cfg(test)]
    pub fn nonempty(&self, k: &str) -> Option<&str> {
        self.get(k).filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, k: &str, v: &str) {
        match self.find(k) {
            Ok(i) => Arc::make_mut(&mut self.vars)[i].1 = v.to_string(),
            Err(i) => Arc::make_mut(&mut self.vars).insert(i, (k.to_string(), v.to_string())),
        }
    }

    pub fn unset(&mut self, k: &str) {
        if let Ok(i) = self.find(k) {
            Arc::make_mut(&mut self.vars).remove(i);
        }
    }

    /// The variables, sorted by name (byte order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_sets_and_clones() {
        let mut e = Env::from_pairs(&[("B", "2"), ("A", ""), ("C", "3"), ("B", "later")]);
        assert_eq!(e.iter().collect::<Vec<_>>(), [("A", ""), ("B", "later"), ("C", "3")]);
        assert!(e.is_set("A") && e.get("A") == Some("") && e.nonempty("A").is_none());
        assert!(!e.is_set("D") && e.get("D").is_none() && !e.is_set("") && !e.is_set("AA"));
        let before = e.clone();
        e.set("D", "4");
        e.set("A", "1");
        e.unset("C");
        e.unset("X");
        assert_eq!(e.iter().collect::<Vec<_>>(), [("A", "1"), ("B", "later"), ("D", "4")]);
        // The clone keeps what it had.
        assert_eq!(before.iter().collect::<Vec<_>>(), [("A", ""), ("B", "later"), ("C", "3")]);
        assert_eq!(Env::from_pairs::<&str, &str>(&[]), Env::default());
    }

    #[test]
    fn process_environment_as_std_sees_it() {
        let e = Env::from_process();
        for (k, v) in std::env::vars_os() {
            assert_eq!(e.get(&k.to_string_lossy()), Some(&*v.to_string_lossy()));
        }
        assert_eq!(e.iter().count(), std::env::vars_os().count());
    }
}
