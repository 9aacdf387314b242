//! An immutable snapshot of the environment, so that every decision is a pure function of it.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
                .collect(),
        }
    }

    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Env {
        Env { vars: pairs.iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect() }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(String::as_str)
    }

    /// Set means present, even if empty (`RELAYCLIENT=` is set), as in qmail.
    pub fn is_set(&self, k: &str) -> bool {
        self.vars.contains_key(k)
    }

    /// Present and not empty.
    pub fn nonempty(&self, k: &str) -> Option<&str> {
        self.get(k).filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, k: &str, v: &str) {
        self.vars.insert(k.to_string(), v.to_string());
    }

    pub fn unset(&mut self, k: &str) {
        self.vars.remove(k);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
