//! The DKIM-Signature field (RFC 6376 §3.5): its tags read into what the verifier needs
//! ([`Parsed`]), and the outcome when they are unusable.

use super::tags::{h_names, strip_ws, TagList};
use super::verify::{Options, Outcome, Verification};
use super::{Algorithm, Canon, Canonicalization};
use crate::message::Headers;
use base64::Engine;

/// A parsed, syntactically valid signature, waiting for its key and body hash.
#[derive(Debug, Clone)]
pub(super) struct Parsed {
    pub(super) alg: Algorithm,
    pub(super) canon: Canonicalization,
    pub(super) domain: String,
    pub(super) selector: String,
    /// i= decoded, or `@d`.
    pub(super) identity: String,
    pub(super) headers: Vec<String>,
    pub(super) bh: Vec<u8>,
    pub(super) b: Vec<u8>,
    pub(super) length: Option<u64>,
    pub(super) hasher: usize,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(strip_ws(s).as_bytes()).ok()
}

/// Decodes DKIM-Quoted-Printable (`=XX`), leaving malformed escapes as they are.
pub(super) fn qp_decode(s: &str) -> String {
    let b = strip_ws(s).into_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(x) = hex {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The items of a `:` list, one at a time: a huge list is never held as a whole.
pub(super) fn colon_list(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(':').map(strip_ws)
}

pub(super) fn parse_signature(
    headers: &Headers,
    value: &[u8],
    opts: &Options,
    now: u64,
) -> (Verification, Result<Parsed, (Outcome, String)>) {
    let mut shown = Verification {
        outcome: Outcome::BadSyntax,
        domain: None,
        selector: None,
        identity: None,
        algorithm: None,
        b_prefix: None,
        detail: String::new(),
    };
    let tl = match TagList::parse(value) {
        Ok(t) => t,
        Err(e) => return (shown, Err((Outcome::BadSyntax, e.to_string()))),
    };
    shown.domain = tl.get("d").map(str::to_ascii_lowercase).filter(|d| !d.is_empty());
    shown.selector = tl.get("s").map(str::to_string).filter(|s| !s.is_empty());
    shown.identity = tl.get("i").map(qp_decode).filter(|s| !s.is_empty());
    shown.algorithm = tl.get("a").map(str::to_ascii_lowercase).filter(|s| !s.is_empty());
    shown.b_prefix = tl.get("b").map(|b| strip_ws(b).chars().take(8).collect()).filter(|s: &String| !s.is_empty());
    let r = parse_tags(headers, &tl, opts, now);
    (shown, r)
}

fn parse_tags(headers: &Headers, tl: &TagList, opts: &Options, now: u64) -> Result<Parsed, (Outcome, String)> {
    let syntax = |why: String| Err((Outcome::BadSyntax, why));
    let Some(v) = tl.get("v") else { return syntax("v= missing".into()) };
    if v != "1" {
        return Err((Outcome::Incompatible, format!("v={v} is not 1")));
    }
    for t in ["a", "b", "bh", "d", "h", "s"] {
        if tl.get(t).is_none() {
            return syntax(format!("required tag {t}= missing"));
        }
    }
    let a = tl.get("a").unwrap_or_default().to_string();
    let Some(alg) = Algorithm::parse(&a) else { return syntax(format!("unknown algorithm a={a}")) };
    let b = match b64(tl.get("b").unwrap_or_default()) {
        Some(b) if !b.is_empty() => b,
        _ => return syntax("b= is not base64".into()),
    };
    let bh = match b64(tl.get("bh").unwrap_or_default()) {
        Some(b) if !b.is_empty() => b,
        _ => return syntax("bh= is not base64".into()),
    };
    let domain = tl.get("d").unwrap_or_default().to_ascii_lowercase();
    let domain = domain.strip_suffix('.').unwrap_or(&domain).to_string();
    let selector = tl.get("s").unwrap_or_default().to_ascii_lowercase();
    if !crate::domain::is_label_list(&domain) {
        return syntax(format!("d={domain} is not a domain name"));
    }
    if !crate::domain::is_label_list(&selector) {
        return syntax(format!("s={selector} is not a selector"));
    }
    let names = match h_names(tl.get("h").unwrap_or_default()) {
        Ok(n) => n,
        Err(e) => return syntax(e.to_string()),
    };
    if names.iter().any(|n| n.is_empty() || n.contains(|c: char| !c.is_ascii_graphic())) {
        return syntax("h= has an empty or invalid name".into());
    }
    if !names.iter().any(|n| n.eq_ignore_ascii_case("from")) {
        return syntax("h= does not include From".into());
    }
    if !opts.allow_unsigned_subject
        && headers.named("Subject").next().is_some()
        && !names.iter().any(|n| n.eq_ignore_ascii_case("subject"))
    {
        return syntax("h= does not include Subject (set UNSIGNED_SUBJECT to allow)".into());
    }
    let canon = match tl.get("c") {
        None => Canonicalization { header: Canon::Simple, body: Canon::Simple },
        Some(c) => match Canonicalization::parse(c) {
            Some(c) => c,
            None => return syntax(format!("unknown canonicalization c={c}")),
        },
    };
    if let Some(q) = tl.get("q") {
        if !colon_list(q).any(|m| m.eq_ignore_ascii_case("dns/txt")) {
            return syntax(format!("q={q} has no dns/txt"));
        }
    }
    let num = |t: &str| -> Result<Option<u64>, (Outcome, String)> {
        match tl.get(t) {
            None => Ok(None),
            Some(v) => {
                if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
                    return Err((Outcome::BadSyntax, format!("{t}={v} is not a number")));
                }
                // More digits than u64 holds: saturate (a length or a time beyond any real one).
                Ok(Some(v.parse::<u64>().unwrap_or(u64::MAX)))
            }
        }
    };
    let length = num("l")?;
    let timestamp = num("t")?;
    let expire = num("x")?;
    if let (Some(t), Some(x)) = (timestamp, expire) {
        if x < t {
            return syntax(format!("x={x} is before t={t}"));
        }
    }
    let identity = match tl.get("i") {
        None => format!("@{domain}"),
        Some(i) => {
            let i = qp_decode(i);
            let Some((_, idom)) = i.rsplit_once('@') else {
                return Err((Outcome::BadIdentity, format!("i={i} has no @")));
            };
            let idom = idom.to_ascii_lowercase();
            let idom = idom.strip_suffix('.').unwrap_or(&idom);
            if idom != domain && !idom.ends_with(&format!(".{domain}")) {
                return Err((Outcome::BadIdentity, format!("i={i} is not within d={domain}")));
            }
            i
        }
    };
    if let Some(x) = expire {
        if x < now {
            return Err((Outcome::SignatureExpired, format!("x={x} is in the past")));
        }
    }
    let name_len = selector.len() + "._domainkey.".len() + domain.len();
    if name_len > 253 || selector.split('.').chain(domain.split('.')).any(|l| l.len() > 63) {
        return Err((Outcome::DomainNameTooLong, format!("key name of {name_len} octets")));
    }
    Ok(Parsed { alg, canon, domain, selector, identity, headers: names, bh, b, length, hasher: 0 })
}
