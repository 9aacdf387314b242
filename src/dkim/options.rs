//! `DKIMSIGNOPTIONS` in getopt style (indimail's qmail-dkim): `-c r|s|t|u -l -q -t -h -i id
//! -x secs|- -z 1|2|3|4`.

use super::{Algorithm, Canon, Canonicalization};
use crate::getopt::{getopt, OptionError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    pub canon: Canonicalization,
    pub algorithms: Vec<Algorithm>,
    pub body_length: bool,
    pub query_tag: bool,
    pub timestamp: bool,
    pub copy_headers: bool,
    /// `-i`: None = not given, Some(None) = `-`.
    pub identity: Option<Option<String>>,
    /// `-x`: None = default (604800 s), Some(None) = `-` (no x=), Some(Some(secs)).
    pub expire: Option<Option<u64>>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            canon: Canonicalization::RELAXED,
            algorithms: vec![Algorithm::RsaSha256],
            body_length: false,
            query_tag: false,
            timestamp: false,
            copy_headers: false,
            identity: None,
            expire: None,
        }
    }
}

pub(crate) const DEFAULT_EXPIRE: u64 = 604_800;

/// Parses the option string; the error names the offending option.
pub fn parse(s: &str) -> Result<SignOptions, OptionError> {
    let mut o = SignOptions::default();
    getopt(s, &['c', 'i', 'x', 'z'], |c, arg| {
        match (c, arg) {
            ('l', _) => o.body_length = true,
            ('q', _) => o.query_tag = true,
            ('t', _) => o.timestamp = true,
            ('h', _) => o.copy_headers = true,
            ('c', Some(arg)) => {
                let (h, b) = match arg {
                    "r" => (Canon::Relaxed, Canon::Relaxed),
                    "s" => (Canon::Simple, Canon::Simple),
                    "t" => (Canon::Relaxed, Canon::Simple),
                    "u" => (Canon::Simple, Canon::Relaxed),
                    _ => return Err(OptionError::invalid(c, "canonicalization", arg)),
                };
                o.canon = Canonicalization { header: h, body: b };
            }
            ('i', Some(arg)) => o.identity = Some(if arg == "-" { None } else { Some(arg.to_string()) }),
            ('x', Some(arg)) => {
                o.expire = Some(if arg == "-" {
                    None
                } else {
                    Some(arg.parse::<u64>().map_err(|_| OptionError::invalid(c, "expiry", arg))?)
                })
            }
            ('z', Some(arg)) => {
                o.algorithms = match arg {
                    "1" => vec![Algorithm::RsaSha1],
                    "2" => vec![Algorithm::RsaSha256],
                    "3" => vec![Algorithm::RsaSha1, Algorithm::RsaSha256],
                    "4" => vec![Algorithm::Ed25519Sha256],
                    _ => return Err(OptionError::invalid(c, "hash", arg)),
                }
            }
            (other, _) => return Err(OptionError::Unknown(other)),
        }
        Ok(())
    })?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(parse("").unwrap(), SignOptions::default());
    }

    #[test]
    fn all_options() {
        let o = parse("-c s -lq -t -h -i joe@x.org -x 3600 -z4").unwrap();
        assert_eq!(o.canon, Canonicalization { header: Canon::Simple, body: Canon::Simple });
        assert!(o.body_length && o.query_tag && o.timestamp && o.copy_headers);
        assert_eq!(o.identity, Some(Some("joe@x.org".into())));
        assert_eq!(o.expire, Some(Some(3600)));
        assert_eq!(o.algorithms, vec![Algorithm::Ed25519Sha256]);
        assert_eq!(parse("-x -").unwrap().expire, Some(None));
        assert_eq!(parse("-z 3").unwrap().algorithms.len(), 2);
        assert_eq!(parse("-ct").unwrap().canon.body, Canon::Simple);
    }

    #[test]
    fn invalid() {
        for bad in ["-Q", "-c x", "-z 9", "-z", "z", "-x soon", "-"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
