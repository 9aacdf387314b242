//! The one parser of SPF records (RFC 7208 §4.5 selection, §12 grammar): a whole record is
//! parsed before any term is evaluated, so a syntax error anywhere is `permerror` (§4.6).
//! One pass over the text; the terms kept are proportional to it.

use super::macros::{self, Context, MacroString};
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

/// Prefix lengths of `a` and `mx` (`/24//64`); 32 and 128 when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DualCidr {
    pub v4: u8,
    pub v6: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(MacroString),
    A(Option<MacroString>, DualCidr),
    Mx(Option<MacroString>, DualCidr),
    Ptr(Option<MacroString>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(MacroString),
}

impl Mechanism {
    /// The terms that count against the limit of 10 DNS-querying terms (§4.6.4).
    pub(crate) fn queries_dns(&self) -> bool {
        !matches!(self, Mechanism::All | Mechanism::Ip4(..) | Mechanism::Ip6(..))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<MacroString>,
    pub exp: Option<MacroString>,
}

/// What the TXT records of a name hold (§4.5).
#[derive(Debug, PartialEq, Eq)]
pub enum Selected<'a> {
    /// No record begins with `v=spf1`: `none`.
    NoRecord,
    /// More than one does: `permerror`.
    Several,
    One(&'a [u8]),
}

/// The records whose version section is exactly `v=spf1` (ended by a space or the end).
pub fn select(records: &[Vec<u8>]) -> Selected<'_> {
    let mut found = records
        .iter()
        .filter(|r| r.len() >= 6 && r[..6].eq_ignore_ascii_case(b"v=spf1") && r.get(6).is_none_or(|&c| c == b' '));
    match (found.next(), found.next()) {
        (None, _) => Selected::NoRecord,
        (Some(r), None) => Selected::One(r),
        (Some(_), Some(_)) => Selected::Several,
    }
}

/// Parses one record (as [`select`] returned it). The error says what is wrong, for the reason.
pub fn parse(record: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(record).map_err(|_| "record is not ASCII".to_string())?;
    if !text.is_ascii() {
        return Err("record is not ASCII".into());
    }
    if text.len() < 6 || !text[..6].eq_ignore_ascii_case("v=spf1") {
        return Err("record does not begin with v=spf1".into());
    }
    let mut rec = Record::default();
    for term in text[6..].split(' ').filter(|t| !t.is_empty()) {
        if let Some((name, value)) = modifier(term) {
            let spec = || -> Result<MacroString, String> {
                let m = macros::parse(value, Context::Domain)?;
                if !m.is_domain_spec() {
                    return Err(format!("{term}: not a domain-spec"));
                }
                Ok(m)
            };
            if name.eq_ignore_ascii_case("redirect") {
                if rec.redirect.replace(spec()?).is_some() {
                    return Err("more than one redirect".into());
                }
            } else if name.eq_ignore_ascii_case("exp") {
                if rec.exp.replace(spec()?).is_some() {
                    return Err("more than one exp".into());
                }
            } else {
                // Unknown modifiers are ignored (§6), but must be macro-strings.
                macros::parse(value, Context::Explanation).map_err(|e| format!("{term}: {e}"))?;
            }
        } else {
            rec.directives.push(directive(term).map_err(|e| format!("{term}: {e}"))?);
        }
    }
    Ok(rec)
}

/// `name "=" value` where name is ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let b = term.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let n = b.iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')).count();
    (b.get(n) == Some(&b'=')).then(|| (&term[..n], &term[n + 1..]))
}

fn directive(term: &str) -> Result<Directive, String> {
    let (qualifier, rest) = match term.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &term[1..]),
        b'-' => (Qualifier::Fail, &term[1..]),
        b'~' => (Qualifier::SoftFail, &term[1..]),
        b'?' => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let end = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, arg) = rest.split_at(end);
    let name = name.to_ascii_lowercase();
    let domain = |arg: &str| -> Result<MacroString, String> {
        let m = macros::parse(arg, Context::Domain)?;
        if m.is_domain_spec() {
            Ok(m)
        } else {
            Err("not a domain-spec".into())
        }
    };
    let required = |arg: &str| arg.strip_prefix(':').ok_or_else(|| format!("{name} needs :domain")).and_then(domain);
    let optional = |arg: &str| -> Result<Option<MacroString>, String> {
        match arg.strip_prefix(':') {
            Some(d) => domain(d).map(Some),
            None if arg.is_empty() => Ok(None),
            None => Err("unexpected text".into()),
        }
    };
    let mechanism = match name.as_str() {
        "all" if arg.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(required(arg)?),
        "exists" => Mechanism::Exists(required(arg)?),
        "ptr" => Mechanism::Ptr(optional(arg)?),
        "a" | "mx" => {
            let (spec, cidr) = dual_cidr(arg)?;
            let spec = optional(spec)?;
            if name == "a" {
                Mechanism::A(spec, cidr)
            } else {
                Mechanism::Mx(spec, cidr)
            }
        }
        "ip4" => {
            let (addr, len) = network(arg, 32, "IPv4")?;
            Mechanism::Ip4(addr, len)
        }
        "ip6" => {
            let (addr, len) = network(arg, 128, "IPv6")?;
            Mechanism::Ip6(addr, len)
        }
        _ => return Err("unknown mechanism".into()),
    };
    Ok(Directive { qualifier, mechanism })
}

/// `:address[/n]` of ip4 and ip6.
fn network<A: std::str::FromStr>(arg: &str, max: u8, family: &str) -> Result<(A, u8), String> {
    let net = arg.strip_prefix(':').ok_or_else(|| format!("needs :{family} address"))?;
    let (addr, len) = match net.split_once('/') {
        Some((a, l)) => (a, prefix(l, max)?),
        None => (net, max),
    };
    Ok((addr.parse().map_err(|_| format!("bad {family} address"))?, len))
}

/// Splits `[:domain-spec][/n][//m]` into the domain part and the prefix lengths.
fn dual_cidr(arg: &str) -> Result<(&str, DualCidr), String> {
    let mut rest = arg;
    let mut cidr = DualCidr { v4: 32, v6: 128 };
    if let Some(i) = rest.rfind("//") {
        let digits = &rest[i + 2..];
        if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
            cidr.v6 = prefix(digits, 128)?;
            rest = &rest[..i];
        }
    }
    if let Some(i) = rest.rfind('/') {
        let digits = &rest[i + 1..];
        if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
            cidr.v4 = prefix(digits, 32)?;
            rest = &rest[..i];
        }
    }
    Ok((rest, cidr))
}

/// A prefix length: `0` or digits without a leading zero, at most `max`.
fn prefix(digits: &str, max: u8) -> Result<u8, String> {
    let ok = !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u8>() {
        Ok(n) if ok && n <= max => Ok(n),
        _ => Err(format!("bad prefix length /{digits}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Record, String> {
        parse(s.as_bytes())
    }

    #[test]
    fn exactly_one_v_spf1_record_is_selected() {
        let r = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(select(&r(&["hello", "v=spf1 -all"])), Selected::One(b"v=spf1 -all"));
        assert_eq!(select(&r(&["V=SPF1"])), Selected::One(b"V=SPF1"));
        assert_eq!(select(&r(&["v=spf10 -all", "v=spf1-all", "spf2.0/pra"])), Selected::NoRecord);
        assert_eq!(select(&r(&["v=spf1 a", "v=spf1 mx"])), Selected::Several);
        assert_eq!(select(&[]), Selected::NoRecord);
    }

    #[test]
    fn every_mechanism_and_modifier_parses() {
        let r = p("v=spf1  +all -include:_spf.example.com ~a ?a:x.example/24 a//64 a:x.example/24//64 mx \
                   mx:%{d}/0 ptr ptr:example.org ip4:192.0.2.0/24 ip4:192.0.2.1 ip6:2001:db8::/32 \
                   ip6:::ffff:192.0.2.1 exists:%{ir}.%{v}._spf.%{d} redirect=_spf.example.com \
                   exp=explain.%{d} foo.bar-1=%{c}x  ")
        .unwrap();
        assert_eq!(r.directives.len(), 15);
        assert_eq!(r.directives[1].qualifier, Qualifier::Fail);
        assert_eq!(r.directives[4].mechanism, Mechanism::A(None, DualCidr { v4: 32, v6: 64 }));
        assert!(matches!(r.directives[5].mechanism, Mechanism::A(Some(_), DualCidr { v4: 24, v6: 64 })));
        assert!(matches!(r.directives[7].mechanism, Mechanism::Mx(Some(_), DualCidr { v4: 0, v6: 128 })));
        assert_eq!(r.directives[10].mechanism, Mechanism::Ip4("192.0.2.0".parse().unwrap(), 24));
        assert!(r.redirect.is_some() && r.exp.is_some());
        assert!(p("v=spf1").unwrap().directives.is_empty());
        assert!(p("V=SPF1 ALL Include:a.example REDIRECT=b.example").is_ok());
    }

    #[test]
    fn syntax_errors_are_errors() {
        for bad in [
            "v=spf1 redirect=a.example redirect=b.example",
            "v=spf1 exp=a.example exp=b.example",
            "v=spf1 foo",
            "v=spf1 foo:bar.example",
            "v=spf1 *all",
            "v=spf1 all:x",
            "v=spf1 include",
            "v=spf1 include:",
            "v=spf1 include:com",
            "v=spf1 exists:%{x}.example.com",
            "v=spf1 a:example.com/33",
            "v=spf1 a:example.com/024",
            "v=spf1 a//129",
            "v=spf1 ip4:192.0.2.0/33",
            "v=spf1 ip4:192.0.2.01",
            "v=spf1 ip4:192.0.2",
            "v=spf1 ip4",
            "v=spf1 ip6:2001:db8::/129",
            "v=spf1 ip6:192.0.2.1",
            "v=spf1 a:%{c}.example.com",
            "v=spf1 -all\tmx",
            "v=spf1 unknown=%",
            "v=spf1 redirect=%{d}com",
            "v=spf1 a:exa\u{e9}mple.com",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
