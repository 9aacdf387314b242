//! The DNS Tree Walk (RFC 9989 §4.10) and the Organizational Domain it gives (§4.10.2).
//!
//! A walk asks `_dmarc.<name>` for the starting name, then, when the name has eight labels
//! or more, for its rightmost seven, then one label less each time down to one: at most
//! [`MAX_QUERIES`] questions whatever the length of the name. It stops early after a single
//! DMARC record with `psd=y` or `psd=n`. Several DMARC records at one name are discarded and
//! the walk goes on (§4.10 steps 2 and 6). The walks of one message share a [`Walker`], so a
//! name is asked once however many identifiers lead to it.

use super::record::{self, Psd, Record, RecordError};
use crate::dns::{TxtAnswer, TxtLookup};
use std::cell::RefCell;
use std::rc::Rc;

/// Questions one walk asks at most (§4.10).
pub const MAX_QUERIES: usize = 8;

/// What `_dmarc.<name>` holds once the records not starting with `v=DMARC1` are discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtName {
    /// No DMARC record (no such name, no TXT record, or none starting with `v=DMARC1`).
    Nothing,
    /// Several DMARC records: all discarded.
    Several,
    /// One DMARC record.
    Record(Rc<Record>),
    /// One DMARC record, improperly formatted (see [`record`]).
    Invalid(RecordError),
}

impl AtName {
    /// One DMARC record, valid or not: the name counts as having one.
    fn found(&self) -> bool {
        matches!(self, AtName::Record(_) | AtName::Invalid(_))
    }

    fn psd(&self) -> Psd {
        match self {
            AtName::Record(r) => r.psd,
            _ => Psd::Unknown,
        }
    }
}

/// A finished (or interrupted) walk: the names with a DMARC record, longest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Walk {
    pub found: Vec<(String, AtName)>,
    /// A question failed temporarily: the walk stopped there.
    pub error: Option<String>,
}

/// The `_dmarc` questions of one message, each asked once.
pub(crate) struct Walker<'a> {
    dns: &'a dyn TxtLookup,
    asked: RefCell<Vec<(String, Result<AtName, String>)>>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(dns: &'a dyn TxtLookup) -> Walker<'a> {
        Walker { dns, asked: RefCell::new(Vec::new()) }
    }

    /// What `_dmarc.<name>` holds; `Err` on a temporary failure.
    pub(crate) fn at(&self, name: &str) -> Result<AtName, String> {
        if let Some((_, a)) = self.asked.borrow().iter().find(|(n, _)| n == name) {
            return a.clone();
        }
        let a = match self.dns.txt(&format!("_dmarc.{name}")) {
            TxtAnswer::Records(rs) => {
                let mut dmarc = rs.iter().filter(|r| record::is_dmarc1(r));
                match (dmarc.next(), dmarc.next()) {
                    (None, _) => Ok(AtName::Nothing),
                    (Some(_), Some(_)) => Ok(AtName::Several),
                    (Some(one), None) => Ok(match record::parse(one) {
                        Ok(r) => AtName::Record(Rc::new(r)),
                        Err(e) => AtName::Invalid(e),
                    }),
                }
            }
            TxtAnswer::NotFound | TxtAnswer::BadName => Ok(AtName::Nothing),
            TxtAnswer::TempFail(e) => Err(format!("DNS lookup of _dmarc.{name} failed: {e}")),
        };
        self.asked.borrow_mut().push((name.to_string(), a.clone()));
        a
    }

    /// The walk from `start`, a lowercase DNS name.
    pub(crate) fn walk(&self, start: &str) -> Walk {
        let mut w = Walk::default();
        for name in names(start) {
            match self.at(name) {
                Err(e) => {
                    w.error = Some(e);
                    break;
                }
                Ok(a) if a.found() => {
                    let stop = matches!(a.psd(), Psd::Yes | Psd::No);
                    w.found.push((name.to_string(), a));
                    if stop {
                        break;
                    }
                }
                Ok(_) => {}
            }
        }
        w
    }
}

/// The names a walk from `name` asks, in order (§4.10 steps 1, 3, 4, 7): the name, then its
/// rightmost seven labels at most, then one label less each time, down to one label.
pub fn names(name: &str) -> impl Iterator<Item = &str> {
    let labels = name.split('.').count();
    // Suffixes of `name`, each starting after a dot, longest first.
    let suffixes = name.match_indices('.').map(move |(i, _)| &name[i + 1..]);
    let skip = labels.saturating_sub(MAX_QUERIES);
    std::iter::once(name).chain(suffixes.skip(skip))
}

/// The Organizational Domain of `start` from its walk (§4.10.2): going from the longest name
/// to the shortest, a record with `psd=n` is it; a record with `psd=y` (other than the start's)
/// puts it one label below; else the record at the fewest labels; `start` itself when the walk
/// found nothing.
pub fn organizational_domain<'s>(start: &'s str, found: &[(String, AtName)]) -> &'s str {
    for (name, a) in found {
        match a.psd() {
            Psd::No => return suffix_of(start, name),
            Psd::Yes if name != start => {
                let labels = name.split('.').count() + 1;
                let skip = start.split('.').count().saturating_sub(labels);
                return start.splitn(skip + 1, '.').last().unwrap_or(start);
            }
            _ => {}
        }
    }
    found.last().map_or(start, |(name, _)| suffix_of(start, name))
}

/// `name` as a slice of `start` (every name of a walk is a suffix of its start).
fn suffix_of<'s>(start: &'s str, name: &str) -> &'s str {
    start.get(start.len().saturating_sub(name.len())..).unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_walk_follow_the_rfc_example() {
        // RFC 9989 §4.10's example: eight questions for a name of thirteen labels.
        let n: Vec<&str> = names("a.b.c.d.e.f.g.h.i.j.mail.example.com").collect();
        assert_eq!(
            n,
            [
                "a.b.c.d.e.f.g.h.i.j.mail.example.com",
                "g.h.i.j.mail.example.com",
                "h.i.j.mail.example.com",
                "i.j.mail.example.com",
                "j.mail.example.com",
                "mail.example.com",
                "example.com",
                "com"
            ]
        );
        assert_eq!(names("example.com").collect::<Vec<_>>(), ["example.com", "com"]);
        assert_eq!(names("localhost").collect::<Vec<_>>(), ["localhost"]);
        // Eight labels: the name, then seven, six, ... one.
        assert_eq!(names("a.b.c.d.e.f.g.h").count(), 8);
        assert_eq!(names("b.c.d.e.f.g.h").count(), 7);
        for labels in 1..=127 {
            let name = vec!["a"; labels].join(".");
            let n: Vec<&str> = names(&name).collect();
            assert_eq!(n.len(), labels.min(MAX_QUERIES), "{labels}");
            assert!(n.windows(2).all(|w| w[0].ends_with(&format!(".{}", w[1]))), "{labels}");
        }
    }

    fn rec(psd: &str) -> AtName {
        let text = format!("v=DMARC1; p=none; psd={psd}");
        AtName::Record(Rc::new(record::parse(text.as_bytes()).unwrap()))
    }

    fn found(v: &[(&str, &str)]) -> Vec<(String, AtName)> {
        v.iter().map(|(n, p)| (n.to_string(), rec(p))).collect()
    }

    /// §4.10.2 and its examples (and B.4.3's).
    #[test]
    fn organizational_domain_rules() {
        let start = "a.mail.example.com";
        let org = |f: &[(&str, &str)]| organizational_domain(start, &found(f)).to_string();
        assert_eq!(org(&[]), start);
        assert_eq!(org(&[("mail.example.com", "u"), ("example.com", "u")]), "example.com");
        assert_eq!(org(&[("mail.example.com", "n")]), "mail.example.com");
        assert_eq!(org(&[("com", "y")]), "example.com");
        assert_eq!(org(&[("mail.example.com", "u"), ("example.com", "y")]), "mail.example.com");
        // psd=y at the start itself is no boundary below it: the record with the fewest labels.
        assert_eq!(organizational_domain("bank.example", &found(&[("bank.example", "y")])), "bank.example");
        let b = "giant.bank.example";
        assert_eq!(organizational_domain(b, &found(&[(b, "u"), ("bank.example", "y")])), b);
        let m = "mail.mega.bank.example";
        assert_eq!(organizational_domain(m, &found(&[("bank.example", "y")])), "mega.bank.example");
    }
}
