//! TXT lookups for key and policy records. One small trait so that verification does not care
//! whether the answer comes from DNS (hickory, `DNSCACHEIP` or /etc/resolv.conf, bounded in
//! time) or from `SELECTOR_DATA`.

/// The answer to one TXT question, in the classes the result letters need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The TXT records found, each with its character-strings concatenated.
    Records(Vec<Vec<u8>>),
    /// NXDOMAIN, or the name exists without a TXT record: a permanent failure.
    NotFound,
    /// SERVFAIL, timeout, refused connection, no servers: try again later.
    TempFail(String),
    /// The name is not a valid DNS name (e.g. over 253 octets).
    BadName,
}

pub trait TxtLookup {
    fn txt(&self, name: &str) -> TxtAnswer;
}

/// `SELECTOR_DATA`: that exact string is the record for every lookup.
pub struct Fixed(pub Vec<u8>);

impl TxtLookup for Fixed {
    fn txt(&self, name: &str) -> TxtAnswer {
        if !valid_name(name) {
            return TxtAnswer::BadName;
        }
        TxtAnswer::Records(vec![self.0.clone()])
    }
}

/// A DNS name we may ask for: at most 253 octets, labels of 1..=63 octets.
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    !n.is_empty() && n.len() <= 253 && n.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}
