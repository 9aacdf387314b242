//! A zone in memory, the DNS of the unit tests (tests only: `#[cfg(test)]` in dns.rs).

use super::{reverse_name, valid_name, Answer, Mx, Resolver, TxtAnswer, TxtLookup};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A zone in memory for unit tests of SPF, DMARC and ARC: records by name (case-insensitive),
/// and a count of the questions asked, so tests can check lookup limits.
#[derive(Default)]
pub struct Zone {
    records: std::collections::HashMap<String, Vec<ZoneRecord>>,
    pub asked: Cell<usize>,
}

#[derive(Debug, Clone)]
pub enum ZoneRecord {
    Txt(String),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx(u16, String),
    Ptr(String),
    /// Every question for this name is a temporary failure.
    TempFail,
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    pub fn add(&mut self, name: &str, r: ZoneRecord) -> &mut Zone {
        self.records.entry(name.trim_end_matches('.').to_ascii_lowercase()).or_default().push(r);
        self
    }

    pub fn txt(&mut self, name: &str, text: &str) -> &mut Zone {
        self.add(name, ZoneRecord::Txt(text.to_string()))
    }

    fn find<T>(&self, name: &str, f: impl Fn(&ZoneRecord) -> Option<T>) -> Answer<T> {
        self.asked.set(self.asked.get() + 1);
        if !valid_name(name) {
            return Answer::BadName;
        }
        match self.records.get(&name.trim_end_matches('.').to_ascii_lowercase()) {
            None => Answer::NotFound,
            Some(rs) if rs.iter().any(|r| matches!(r, ZoneRecord::TempFail)) => Answer::TempFail("test".into()),
            Some(rs) => {
                let v: Vec<T> = rs.iter().filter_map(f).collect();
                if v.is_empty() {
                    Answer::NotFound
                } else {
                    Answer::Records(v)
                }
            }
        }
    }
}

impl TxtLookup for Zone {
    fn txt(&self, name: &str) -> TxtAnswer {
        match self.find(name, |r| match r {
            ZoneRecord::Txt(t) => Some(t.as_bytes().to_vec()),
            _ => None,
        }) {
            Answer::Records(v) => TxtAnswer::Records(v),
            Answer::NotFound => TxtAnswer::NotFound,
            Answer::TempFail(t) => TxtAnswer::TempFail(t),
            Answer::BadName => TxtAnswer::BadName,
        }
    }
}

impl Resolver for Zone {
    fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        self.find(name, |r| match r {
            ZoneRecord::A(a) => Some(*a),
            _ => None,
        })
    }
    fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        self.find(name, |r| match r {
            ZoneRecord::Aaaa(a) => Some(*a),
            _ => None,
        })
    }
    fn mx(&self, name: &str) -> Answer<Mx> {
        self.find(name, |r| match r {
            ZoneRecord::Mx(p, e) => Some(Mx { preference: *p, exchange: e.clone() }),
            _ => None,
        })
    }
    fn ptr(&self, ip: IpAddr) -> Answer<String> {
        self.find(&reverse_name(ip), |r| match r {
            ZoneRecord::Ptr(p) => Some(p.clone()),
            _ => None,
        })
    }
    /// A name exists when it or a name below it has a record (an empty non-terminal exists).
    fn exists(&self, name: &str) -> Result<bool, String> {
        self.asked.set(self.asked.get() + 1);
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if self.records.get(&name).is_some_and(|rs| rs.iter().any(|r| matches!(r, ZoneRecord::TempFail))) {
            return Err("test".into());
        }
        let below = format!(".{name}");
        Ok(self.records.keys().any(|k| *k == name || k.ends_with(&below)))
    }
}
