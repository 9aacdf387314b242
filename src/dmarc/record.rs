//! The DMARC Policy Record (RFC 9989 §4.7, §4.8): the one parser. The record grammar is
//! DMARC's own (§4.8: `dmarc-record = dmarc-version *(dmarc-sep dmarc-tag) [dmarc-sep]`, tag
//! names `1*ALPHA`, values any printing character but `;`), read in one pass, left to right.
//!
//! What RFC 9989 says about errors, and what we do:
//! - A record that does not start with `v=DMARC1` is no DMARC record at all ([`is_dmarc1`]);
//!   `DMARC1` must match exactly, the rest is read without regard to case (ABNF literals).
//! - Unknown tags are ignored (§4.7), and so are RFC 7489's `pct=`, `rf=` and `ri=`, which
//!   are historic now (§9.3).
//! - "Syntax errors in the remainder of the record MUST be discarded in favor of default
//!   values (if any) or ignored outright" (§4.8): an item that is not `name=value`, or a value
//!   outside its tag's grammar (`adkim`, `aspf`, `t`, `psd`, `fo`, a URI of `rua`/`ruf`), is
//!   ignored and the tag keeps its default.
//! - `p=` missing or invalid, or `sp=` or `np=` invalid (§4.10.1): `p=none` when `rua=`
//!   holds a valid URI, else no DMARC processing ([`Record::policies`] gives `None`).
//! - A tag name given twice: DMARC records follow DKIM's tag-value syntax (§4.7), whose tag
//!   lists must not repeat a name (RFC 6376 §3.2): an improperly formatted record,
//!   [`RecordError::Duplicate`], the result `permerror` (§9.2).

pub(crate) use crate::auth_results::DmarcPolicy;

/// A policy tag's value, in any case.
fn parse_policy(v: &str) -> Option<DmarcPolicy> {
    [DmarcPolicy::None, DmarcPolicy::Quarantine, DmarcPolicy::Reject]
        .into_iter()
        .find(|p| v.eq_ignore_ascii_case(p.name()))
}

/// Identifier alignment mode (`adkim=`, `aspf=`, §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    Relaxed,
    Strict,
}

/// `psd=` (§4.7): whether the record is a Public Suffix Domain's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Psd {
    /// `psd=y`: a PSD; the tree walk stops here and the Organizational Domain is one label below.
    Yes,
    /// `psd=n`: the Organizational Domain of itself and its subdomains; the walk stops here.
    No,
    /// `psd=u`, the default: found by the tree walk.
    Unknown,
}

/// A DMARC Policy Record, as published (defaults filled in, invalid values ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `p=`; `None` when absent or invalid.
    pub p: Option<DmarcPolicy>,
    /// `sp=`; `None` when absent or invalid.
    pub sp: Option<DmarcPolicy>,
    /// `np=`; `None` when absent or invalid.
    pub np: Option<DmarcPolicy>,
    /// `p=` is absent or invalid, or `sp=` or `np=` is invalid: §4.10.1 decides (see
    /// [`Record::policies`]).
    pub policy_invalid: bool,
    pub adkim: Alignment,
    pub aspf: Alignment,
    /// `t=y`: the Domain Owner is testing; one step weaker applies (§4.7).
    pub t: bool,
    pub psd: Psd,
    /// The valid URIs of `rua=`, in order (an obsolete `!size` suffix dropped, §4.8).
    pub rua: Vec<String>,
    /// The valid URIs of `ruf=`.
    pub ruf: Vec<String>,
    /// `fo=` when valid, else the default `0`.
    pub fo: String,
}

/// The policies that apply under a record (§4.7, §4.10.1), defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policies {
    /// For the domain that published the record.
    pub p: DmarcPolicy,
    /// For its existing subdomains: `sp=`, else `p=`.
    pub sp: DmarcPolicy,
    /// For its non-existent subdomains: `np=`, else `sp=`, else `p=`.
    pub np: DmarcPolicy,
    /// `p=none` put there by §4.10.1 (no valid `p=`, or an invalid `sp=`/`np=`, and a valid
    /// `rua=`).
    pub assumed: bool,
}

impl Record {
    /// The policies that apply, or `None` when the record asks for no DMARC processing: no
    /// valid `p=` (or an invalid `sp=`/`np=`) and no valid `rua=` URI (§4.10.1).
    pub(crate) fn policies(&self) -> Option<Policies> {
        match self.p {
            Some(p) if !self.policy_invalid => {
                let sp = self.sp.unwrap_or(p);
                Some(Policies { p, sp, np: self.np.unwrap_or(sp), assumed: false })
            }
            _ if !self.rua.is_empty() => {
                Some(Policies { p: DmarcPolicy::None, sp: DmarcPolicy::None, np: DmarcPolicy::None, assumed: true })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not a DMARC record: it does not start with `v=DMARC1`.
    #[error("not a DMARC record")]
    NotDmarc,
    /// A tag name given twice (RFC 6376 §3.2): an improperly formatted record.
    #[error("invalid DMARC record: tag {0} given twice")]
    Duplicate(String),
}

/// Whether a TXT record is a DMARC record: it starts with `v=DMARC1` (§4.10 steps 2 and 6
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

/// The tags this parser reads; a second occurrence of one of them is a duplicate. Unknown
/// names are skipped, repeated or not.
const KNOWN: &[&str] = &["v", "p", "sp", "np", "adkim", "aspf", "t", "psd", "rua", "ruf", "fo"];

/// Parses a record that [`is_dmarc1`].
pub fn parse(txt: &[u8]) -> Result<Record, RecordError> {
    if !is_dmarc1(txt) {
        return Err(RecordError::NotDmarc);
    }
    let mut r = Record {
        p: None,
        sp: None,
        np: None,
        policy_invalid: false,
        adkim: Alignment::Relaxed,
        aspf: Alignment::Relaxed,
        t: false,
        psd: Psd::Unknown,
        rua: Vec::new(),
        ruf: Vec::new(),
        fo: "0".into(),
    };
    let mut seen = [false; KNOWN.len()];
    let (mut p_seen, mut sp_bad, mut np_bad) = (false, false, false);
    for item in txt.split(|&c| c == b';') {
        let Some((name, v)) = tag(item) else { continue };
        let name = name.to_ascii_lowercase();
        let Some(k) = KNOWN.iter().position(|&n| n == name) else { continue };
        if std::mem::replace(&mut seen[k], true) {
            return Err(RecordError::Duplicate(name));
        }
        match name.as_str() {
            "p" => {
                p_seen = true;
                r.p = parse_policy(v);
            }
            "sp" => {
                r.sp = parse_policy(v);
                sp_bad = r.sp.is_none();
            }
            "np" => {
                r.np = parse_policy(v);
                np_bad = r.np.is_none();
            }
            "adkim" => r.adkim = alignment(v).unwrap_or(Alignment::Relaxed),
            "aspf" => r.aspf = alignment(v).unwrap_or(Alignment::Relaxed),
            "t" => r.t = v.eq_ignore_ascii_case("y"),
            "psd" => {
                r.psd = match v {
                    "y" | "Y" => Psd::Yes,
                    "n" | "N" => Psd::No,
                    _ => Psd::Unknown,
                }
            }
            "rua" => r.rua = uri_list(v),
            "ruf" => r.ruf = uri_list(v),
            "fo" if colon_list(v, |o| matches!(o, "0" | "1" | "d" | "s")) => r.fo = v.to_ascii_lowercase(),
            _ => {}
        }
    }
    r.policy_invalid = !p_seen || r.p.is_none() || sp_bad || np_bad;
    Ok(r)
}

/// One item of the list as `(name, value)`: `1*ALPHA equals 1*dmarc-value` (§4.8), whitespace
/// around both trimmed; `None` for anything else (a syntax error, ignored).
fn tag(item: &[u8]) -> Option<(&str, &str)> {
    let item = std::str::from_utf8(item).ok()?.trim_matches(is_ws);
    let (name, v) = item.split_once('=')?;
    let (name, v) = (name.trim_matches(is_ws), v.trim_matches(is_ws));
    let name_ok = !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphabetic());
    let value_ok = !v.is_empty() && v.bytes().all(|c| c == b'\t' || (0x20..=0x7e).contains(&c));
    (name_ok && value_ok).then_some((name, v))
}

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

/// Items separated by `:` (with whitespace around), each accepted by `item` (lowercased).
fn colon_list(v: &str, item: impl Fn(&str) -> bool) -> bool {
    v.split(':').all(|o| item(&o.trim_matches(is_ws).to_ascii_lowercase()))
}

/// The valid URIs of a `dmarc-urilist`, each without an obsolete size suffix.
fn uri_list(v: &str) -> Vec<String> {
    v.split(',').map(|u| u.trim_matches(is_ws)).filter_map(dmarc_uri).map(str::to_string).collect()
}

/// `dmarc-uri [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]` (§4.8): the URI without the size when
/// it is one, checked as far as §4.10.1 needs: a scheme (RFC 3986 §3.1), a colon, something
/// after it, no whitespace.
fn dmarc_uri(u: &str) -> Option<&str> {
    let (uri, size) = match u.split_once('!') {
        Some((uri, size)) => (uri, Some(size)),
        None => (u, None),
    };
    if let Some(size) = size {
        let digits = size.strip_suffix(['k', 'm', 'g', 't', 'K', 'M', 'G', 'T']).unwrap_or(size);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let (scheme, rest) = uri.split_once(':')?;
    let ok = scheme.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && rest.bytes().all(|c| c.is_ascii_graphic());
    ok.then_some(uri)
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
            assert_eq!(parse(no.as_bytes()), Err(RecordError::NotDmarc), "{no}");
        }
    }

    #[test]
    fn tags_and_defaults() {
        let r = ok("v=DMARC1; p=reject");
        assert_eq!(
            r,
            Record {
                p: Some(DmarcPolicy::Reject),
                sp: None,
                np: None,
                policy_invalid: false,
                adkim: Alignment::Relaxed,
                aspf: Alignment::Relaxed,
                t: false,
                psd: Psd::Unknown,
                rua: vec![],
                ruf: vec![],
                fo: "0".into(),
            }
        );
        let r = ok("v=DMARC1;P=Quarantine; sp=none; np=Reject; ADKIM=s; aspf=S; t=Y; psd=n; fo=0:d : s; \
                    rua=mailto:a@example.com!10m, https://r.example/x; ruf=mailto:f@example.com; x=y");
        assert_eq!(
            (r.p, r.sp, r.np, r.adkim, r.aspf, r.t, r.psd),
            (
                Some(DmarcPolicy::Quarantine),
                Some(DmarcPolicy::None),
                Some(DmarcPolicy::Reject),
                Alignment::Strict,
                Alignment::Strict,
                true,
                Psd::No
            )
        );
        assert_eq!(r.rua, ["mailto:a@example.com", "https://r.example/x"]);
        assert_eq!((r.ruf.as_slice(), r.fo.as_str()), (&["mailto:f@example.com".to_string()][..], "0:d : s"));
        assert_eq!(
            r.policies(),
            Some(Policies {
                p: DmarcPolicy::Quarantine,
                sp: DmarcPolicy::None,
                np: DmarcPolicy::Reject,
                assumed: false
            })
        );
        assert_eq!(ok("v=DMARC1; p=reject; psd=y").psd, Psd::Yes);
        // sp= defaults to p=, np= to sp=.
        let pol = ok("v=DMARC1; p=reject; sp=quarantine").policies().unwrap();
        assert_eq!((pol.sp, pol.np), (DmarcPolicy::Quarantine, DmarcPolicy::Quarantine));
        let pol = ok("v=DMARC1; p=reject").policies().unwrap();
        assert_eq!((pol.sp, pol.np), (DmarcPolicy::Reject, DmarcPolicy::Reject));
    }

    /// RFC 7489's pct=, rf= and ri= are historic (§9.3): ignored, whatever their values.
    #[test]
    fn pct_rf_ri_and_unknown_tags_are_ignored() {
        for s in [
            "v=DMARC1; p=reject; pct=0",
            "v=DMARC1; p=reject; pct=x; rf=a b; ri=day",
            "v=DMARC1; p=reject; pct=1; pct=2; future=1; future=2",
        ] {
            assert_eq!(ok(s), ok("v=DMARC1; p=reject"), "{s}");
        }
    }

    /// §4.10.1.
    #[test]
    fn missing_or_invalid_p_is_none_with_a_valid_rua_else_no_policy() {
        for s in [
            "v=DMARC1; rua=mailto:a@example.com",
            "v=DMARC1; p=bogus; rua=x,mailto:a@example.com",
            "v=DMARC1; p=reject; sp=bad; rua=mailto:a@example.com",
            "v=DMARC1; p=reject; np=bad; rua=mailto:a@example.com",
        ] {
            let p = ok(s).policies().unwrap_or_else(|| panic!("{s}"));
            assert_eq!(
                (p.p, p.sp, p.np, p.assumed),
                (DmarcPolicy::None, DmarcPolicy::None, DmarcPolicy::None, true),
                "{s}"
            );
        }
        for s in [
            "v=DMARC1",
            "v=DMARC1; p=rejected",
            "v=DMARC1; p=reject; sp=x",
            "v=DMARC1; p=reject; np=x",
            "v=DMARC1; p=; rua=notauri",
            "v=DMARC1; rua=mailto:",
        ] {
            assert_eq!(ok(s).policies(), None, "{s}");
        }
    }

    /// §4.8: syntax errors are ignored in favour of the defaults, the rest of the record holds.
    #[test]
    fn invalid_values_fall_back_to_their_defaults() {
        for s in [
            "v=DMARC1; p=reject; adkim=x",
            "v=DMARC1; p=reject; aspf=",
            "v=DMARC1; p=reject; t=maybe",
            "v=DMARC1; p=reject; psd=x",
            "v=DMARC1; p=reject; fo=2",
            "v=DMARC1; p=reject; rua=not a uri",
            "v=DMARC1; p=reject; garbage",
            "v=DMARC1; p=reject; 1x=y",
            "v=DMARC1; p=reject; =y",
            "v=DMARC1; p=reject; \u{e9}=y",
        ] {
            assert_eq!(ok(s), ok("v=DMARC1; p=reject"), "{s}");
        }
    }

    #[test]
    fn a_tag_given_twice_makes_the_record_invalid() {
        for s in ["v=DMARC1; p=reject; p=none", "v=DMARC1; p=reject; P=none", "v=DMARC1; p=reject; v=DMARC1"] {
            assert!(matches!(parse(s.as_bytes()), Err(RecordError::Duplicate(_))), "{s}");
        }
    }
}
