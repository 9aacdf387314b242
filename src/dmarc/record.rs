//! The DMARC policy record (RFC 7489 §6.3, §6.4): the one parser. DMARC records follow DKIM's
//! tag-value syntax (§6.3), so the list is split by [`crate::dkim::tags::TagList`], with its
//! bounds (at most 64 tags, a duplicate refuses the list, linear); each value is then read
//! once, left to right.
//!
//! Tag names and keyword values are read without regard to case (ABNF literals); `DMARC1`
//! must match exactly (§6.3). Unknown tags are ignored (DMARCbis's `np=`, `t=`, `psd=` are
//! unknown here). What a bad value means:
//! - `p=` missing or invalid, or `sp=` invalid: §6.6.3 step 6: `p=none` when `rua=` holds a
//!   valid URI, else no DMARC processing ([`RecordError::NoPolicy`], the result `none`);
//! - any other tag with a value outside its grammar (`adkim`, `aspf`, `pct`, `fo`, `rf`,
//!   `ri`), or a list that is not a tag-value list: a syntactically incorrect record,
//!   [`RecordError::Invalid`], the result `permerror` (§11.2);
//! - `rua=` keeps its valid URIs (step 6, and the aggregate reports); `ruf=` is checked no further.

use crate::dkim::tags::TagList;

/// A requested policy (`p=`, `sp=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    /// The policy for the failing messages that `pct=` leaves out (§6.3): one step weaker.
    pub fn weaker(self) -> Policy {
        match self {
            Policy::Reject => Policy::Quarantine,
            Policy::Quarantine | Policy::None => Policy::None,
        }
    }

    fn parse(v: &str) -> Option<Policy> {
        [Policy::None, Policy::Quarantine, Policy::Reject].into_iter().find(|p| v.eq_ignore_ascii_case(p.name()))
    }
}

/// Identifier alignment mode (`adkim=`, `aspf=`, §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    Relaxed,
    Strict,
}

/// What evaluation needs of a policy record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `p=`, or `none` when §6.6.3 step 6 put it there ([`Record::p_assumed`]).
    pub p: Policy,
    pub sp: Option<Policy>,
    pub adkim: Alignment,
    pub aspf: Alignment,
    /// 0..=100; 100 when absent.
    pub pct: u8,
    /// `p=` was missing or invalid (or `sp=` invalid) and a valid `rua=` made it `p=none`.
    pub p_assumed: bool,
    /// The valid `rua=` URIs (`!size` included), for the aggregate reports.
    pub rua: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// §6.6.3 step 6: no valid `p=` (or an invalid `sp=`) and no valid `rua=` URI.
    #[error("DMARC record without a valid p= and without a valid rua=")]
    NoPolicy,
    /// A syntactically incorrect record (§11.2 `permerror`).
    #[error("invalid DMARC record: {0}")]
    Invalid(String),
}

/// Whether a TXT record is a DMARC record: it starts with `v=DMARC1` (§6.6.3 steps 2 and 4
/// discard every other record before they are counted).
pub fn is_dmarc1(txt: &[u8]) -> bool {
    let ws = |s: &[u8]| -> usize { s.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n')).count() };
    let mut s = &txt[ws(txt)..];
    let Some(rest) = s.strip_prefix(b"v").or_else(|| s.strip_prefix(b"V")) else {
        return false;
    };
    s = &rest[ws(rest)..];
    let Some(rest) = s.strip_prefix(b"=") else {
        return false;
    };
    s = &rest[ws(rest)..];
    let Some(rest) = s.strip_prefix(b"DMARC1") else {
        return false;
    };
    s = &rest[ws(rest)..];
    s.is_empty() || s[0] == b';'
}

/// Parses a record that [`is_dmarc1`].
pub fn parse(txt: &[u8]) -> Result<Record, RecordError> {
    if !is_dmarc1(txt) {
        return Err(RecordError::Invalid("does not start with v=DMARC1".into()));
    }
    let list = TagList::parse(txt).map_err(|e| RecordError::Invalid(e.to_string()))?;
    let invalid = |name: &str, v: &str| RecordError::Invalid(format!("{name}={v:?}"));
    let mut r = Record {
        p: Policy::None,
        sp: None,
        adkim: Alignment::Relaxed,
        aspf: Alignment::Relaxed,
        pct: 100,
        p_assumed: false,
        rua: Vec::new(),
    };
    let (mut p, mut sp_bad, mut rua_valid) = (None, false, false);
    // Known tags seen (TagList refuses `p=..; p=..` but not `p=..; P=..`).
    let mut seen: Vec<String> = Vec::new();
    for (i, (name, v)) in list.tags.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        let v = v.as_str();
        if KNOWN.contains(&name.as_str()) {
            if seen.contains(&name) {
                return Err(RecordError::Invalid(format!("duplicate tag: {name}")));
            }
            seen.push(name.clone());
        }
        match name.as_str() {
            "v" if i == 0 => {}
            "v" => return Err(RecordError::Invalid("v= is not the first tag".into())),
            "p" => p = Policy::parse(v),
            "sp" => match Policy::parse(v) {
                Some(s) => r.sp = Some(s),
                None => sp_bad = true,
            },
            "adkim" => r.adkim = alignment(v).ok_or_else(|| invalid("adkim", v))?,
            "aspf" => r.aspf = alignment(v).ok_or_else(|| invalid("aspf", v))?,
            "pct" => r.pct = pct(v).ok_or_else(|| invalid("pct", v))?,
            "fo" if !colon_list(v, |o| matches!(o, "0" | "1" | "d" | "s")) => return Err(invalid("fo", v)),
            "rf" if !colon_list(v, is_keyword) => return Err(invalid("rf", v)),
            "ri" if !(1..=32).contains(&v.len()) || !v.bytes().all(|c| c.is_ascii_digit()) => {
                return Err(invalid("ri", v))
            }
            "rua" => {
                r.rua = v
                    .split(',')
                    .map(|u| u.trim_matches(is_ws))
                    .filter(|u| is_dmarc_uri(u))
                    .take(MAX_RUA)
                    .map(String::from)
                    .collect();
                rua_valid = !r.rua.is_empty();
            }
            _ => {}
        }
    }
    match p {
        Some(p) if !sp_bad => r.p = p,
        _ if rua_valid => {
            r.p = Policy::None;
            r.sp = None;
            r.p_assumed = true;
        }
        _ => return Err(RecordError::NoPolicy),
    }
    Ok(r)
}

/// `rua=` URIs kept (a report goes to at most this many destinations).
pub const MAX_RUA: usize = 8;

const KNOWN: &[&str] = &["v", "p", "sp", "adkim", "aspf", "pct", "rua", "ruf", "fo", "rf", "ri"];

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn alignment(v: &str) -> Option<Alignment> {
    match v {
        "r" | "R" => Some(Alignment::Relaxed),
        "s" | "S" => Some(Alignment::Strict),
        _ => None,
    }
}

/// `1*3DIGIT`, at most 100.
fn pct(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 3 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse::<u8>().ok().filter(|&n| n <= 100)
}

/// Items separated by `:` (with whitespace around), each accepted by `item` (lowercased).
fn colon_list(v: &str, item: impl Fn(&str) -> bool) -> bool {
    v.split(':').all(|o| item(&o.trim_matches(is_ws).to_ascii_lowercase()))
}

/// RFC 7489 `Keyword` (RFC 5321's): letters, digits and hyphens, starting with a letter or digit.
fn is_keyword(k: &str) -> bool {
    k.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// `dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]` (§6.4), the URI checked as far
/// as step 6 needs: a scheme (RFC 3986 §3.1), a colon, something after it, no whitespace.
fn is_dmarc_uri(u: &str) -> bool {
    let (uri, size) = match u.split_once('!') {
        Some((uri, size)) => (uri, Some(size)),
        None => (u, None),
    };
    if let Some(size) = size {
        let digits = size.strip_suffix(['k', 'm', 'g', 't', 'K', 'M', 'G', 'T']).unwrap_or(size);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    scheme.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && rest.bytes().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Record {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn only_records_starting_with_v_dmarc1_count() {
        for yes in ["v=DMARC1", "v=DMARC1; p=none", " v = DMARC1 ;p=reject", "V=DMARC1;"] {
            assert!(is_dmarc1(yes.as_bytes()), "{yes}");
        }
        for no in ["", "v=spf1 -all", "p=reject; v=DMARC1", "v=dmarc1; p=none", "v=DMARC10", "v=DMARC1x", "x v=DMARC1"]
        {
            assert!(!is_dmarc1(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn tags_and_defaults() {
        let r = ok("v=DMARC1; p=reject");
        assert_eq!(
            r,
            Record {
                p: Policy::Reject,
                sp: None,
                adkim: Alignment::Relaxed,
                aspf: Alignment::Relaxed,
                pct: 100,
                p_assumed: false,
                rua: Vec::new()
            }
        );
        let r = ok("v=DMARC1;P=Quarantine; sp=none; ADKIM=s; aspf=S; pct=0; fo=0:d : s; rf=afrf; ri=86400; \
                    rua=mailto:a@example.com!10m,https://r.example/x; ruf=mailto:f@example.com; np=reject; t=y; x=y");
        assert_eq!(
            (r.p, r.sp, r.adkim, r.aspf, r.pct),
            (Policy::Quarantine, Some(Policy::None), Alignment::Strict, Alignment::Strict, 0)
        );
        assert_eq!(ok("v=DMARC1; p=none; pct=100").pct, 100);
        assert_eq!(ok("v=DMARC1; p=none; pct=007").pct, 7);
    }

    /// §6.6.3 step 6.
    #[test]
    fn missing_or_invalid_p_is_none_with_a_valid_rua_else_no_policy() {
        for s in [
            "v=DMARC1; rua=mailto:a@example.com",
            "v=DMARC1; p=bogus; rua=x,mailto:a@example.com",
            "v=DMARC1; p=reject; sp=bad; rua=mailto:a@example.com",
        ] {
            let r = ok(s);
            assert_eq!((r.p, r.sp, r.p_assumed), (Policy::None, None, true), "{s}");
        }
        for s in [
            "v=DMARC1",
            "v=DMARC1; p=rejected",
            "v=DMARC1; p=reject; sp=x",
            "v=DMARC1; p=; rua=notauri",
            "v=DMARC1; rua=mailto:",
        ] {
            assert_eq!(parse(s.as_bytes()), Err(RecordError::NoPolicy), "{s}");
        }
    }

    #[test]
    fn syntax_errors_make_the_record_invalid() {
        for s in [
            "v=DMARC1; p=reject; adkim=x",
            "v=DMARC1; p=reject; aspf=",
            "v=DMARC1; p=reject; pct=101",
            "v=DMARC1; p=reject; pct=-1",
            "v=DMARC1; p=reject; pct=1000",
            "v=DMARC1; p=reject; pct=50.5",
            "v=DMARC1; p=reject; fo=2",
            "v=DMARC1; p=reject; rf=a b",
            "v=DMARC1; p=reject; ri=day",
            "v=DMARC1; p=reject; p=none",
            "v=DMARC1; p=reject; P=none",
            "v=DMARC1; p=reject; v=DMARC1",
            "v=DMARC1; p=reject; garbage",
            "v=DMARC1; p=reject; 1x=y",
        ] {
            assert!(matches!(parse(s.as_bytes()), Err(RecordError::Invalid(_))), "{s}");
        }
    }

    #[test]
    fn record_of_many_tags_is_refused_at_the_tag_cap() {
        let many: String = (0..100_000).map(|i| format!("x{i}=;")).collect();
        let r = parse(format!("v=DMARC1; p=reject; {many}").as_bytes());
        assert!(matches!(r, Err(RecordError::Invalid(ref e)) if e.contains("more than")), "{r:?}");
    }

    /// The values the parser reads itself (rua lists, fo lists): one pass each.
    #[test]
    fn dmarc_record_with_long_rua_and_fo_lists_is_linear() {
        for unit in [&b"mailto:a@example.com!10m,"[..], b"x,", b"0:", b"!"] {
            crate::linear::assert_linear(
                &format!("DMARC record, {:?} repeated", String::from_utf8_lossy(unit)),
                1024,
                |n| {
                    let list = crate::linear::repeat(unit, n);
                    let tag = if unit.starts_with(b"0") { "fo" } else { "rua" };
                    [format!("v=DMARC1; {tag}=").as_bytes(), &list, b"; p=none"].concat()
                },
                |v| drop(std::hint::black_box(parse(v))),
            );
        }
    }
}
