//! Making a DKIM-Signature header from the parsed headers, a finished body hash and a key.

use super::canon::{signature_header, signed_headers};
use super::key::SigningKey;
use super::tags::dkim_qp_encode;
use super::{Algorithm, Canonicalization};
use crate::message::{unfold, Headers};
use base64::Engine;

/// Everything that goes into one signature except the key and the body hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignParams {
    pub algorithm: Algorithm,
    pub canon: Canonicalization,
    pub domain: String,
    pub selector: String,
    pub identity: Option<String>,
    /// t=
    pub timestamp: Option<u64>,
    /// x=
    pub expire: Option<u64>,
    /// l= (the canonical body length)
    pub body_length: bool,
    /// q=dns/txt
    pub query_tag: bool,
    /// z= copied headers
    pub copy_headers: bool,
    /// h=, in order (lowercase names; repeated names and the extra `from` are intended).
    pub headers: Vec<String>,
}

/// Header names never signed by default (indimail's list). `X-` headers are skipped too,
/// except `X-Mailer`.
const NEVER_SIGNED: &[&str] = &[
    "received",
    "return-path",
    "authentication-results",
    "arc-authentication-results",
    "arc-seal",
    "arc-message-signature",
    "dkim-signature",
    "domainkey-signature",
    "dkim-status",
    "domainkey-status",
];

/// The default h= list: every present header that may be signed, one entry per instance, top to
/// bottom, and one extra `from` so that no From can be added above the signed one (oversigning).
pub fn default_header_list(headers: &Headers, exclude: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    for f in &headers.fields {
        let name = headers.name(f);
        let Ok(name) = std::str::from_utf8(name) else { continue };
        let lower = name.to_ascii_lowercase();
        // A name h= cannot carry is left unsigned: ':' separates the names and ';' ends the
        // tag (RFC 5322 allows ';' in a field name; found by fuzz/sign_verify).
        if lower.is_empty() || !lower.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b':' && c != b';') {
            continue;
        }
        if NEVER_SIGNED.contains(&lower.as_str()) {
            continue;
        }
        if lower.starts_with("x-") && lower != "x-mailer" {
            continue;
        }
        if exclude.iter().any(|e| !e.is_empty() && lower.starts_with(&e.to_ascii_lowercase())) {
            continue;
        }
        names.push(lower);
    }
    // Always one more `from` than present: it oversigns, and a message without From still gets
    // the h=from that RFC 6376 requires (an absent field signs as nothing).
    names.push("from".to_string());
    names
}

/// Builds the complete `DKIM-Signature:` field, LF-folded, ending in LF.
pub fn sign(
    headers: &Headers,
    p: &SignParams,
    body_hash: &[u8],
    body_len: u64,
    key: &SigningKey,
) -> Result<Vec<u8>, String> {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let mut tags: Vec<String> = vec![
        "v=1".into(),
        format!("a={}", p.algorithm.as_str()),
        format!("c={}", p.canon.to_tag()),
        format!("d={}", p.domain),
        format!("s={}", p.selector),
    ];
    if p.query_tag {
        tags.push("q=dns/txt".into());
    }
    if let Some(i) = &p.identity {
        tags.push(format!("i={}", dkim_qp_encode(i.as_bytes())));
    }
    if let Some(t) = p.timestamp {
        tags.push(format!("t={t}"));
    }
    if let Some(x) = p.expire {
        tags.push(format!("x={x}"));
    }
    if p.body_length {
        tags.push(format!("l={body_len}"));
    }
    let mut field = String::from("DKIM-Signature: ");
    let mut col = field.len();
    for t in &tags {
        push_tag(&mut field, &mut col, t);
    }
    push_list(&mut field, &mut col, "h=", &p.headers.iter().map(String::as_str).collect::<Vec<_>>(), ":");
    if p.copy_headers {
        let copies: Vec<String> = copied_headers(headers, &p.headers);
        push_list(&mut field, &mut col, "z=", &copies.iter().map(String::as_str).collect::<Vec<_>>(), "|");
    }
    push_tag(&mut field, &mut col, &format!("bh={}", b64.encode(body_hash)));
    // b= last, empty while signing; the value is appended after signing.
    if col + 3 > 78 {
        field.push_str("\n\t");
    } else {
        field.push(' ');
    }
    field.push_str("b=");

    let mut data = Vec::with_capacity(4096);
    signed_headers(p.canon.header, headers, &p.headers, None, &mut data);
    signature_header(p.canon.header, field.as_bytes(), &mut data);
    let sig = key.sign(p.algorithm, &data)?;
    let sig = b64.encode(sig);
    // Fold b= in 72-column pieces; the first piece stays on the "b=" line (FWS inside b= is
    // ignored by verifiers, but not every one strips FWS right after "b=").
    let line_start = field.rfind('\n').map_or(0, |i| i + 1);
    let room = 76usize.saturating_sub(field.len() - line_start).max(8);
    fold_base64(&mut field, &sig, room, 72, "\n\t");
    field.push('\n');
    Ok(field.into_bytes())
}

/// Appends a `b=` value folded for a signature field: `first` characters on the current line,
/// then `width` per line, each continuation line starting with `break_with`. The one folder
/// of the DKIM and the DomainKeys signers.
pub(crate) fn fold_base64(field: &mut String, b64: &str, first: usize, width: usize, break_with: &str) {
    let mut rest = b64;
    let mut room = first.max(1);
    while !rest.is_empty() {
        let n = room.min(rest.len());
        field.push_str(&rest[..n]);
        rest = &rest[n..];
        if !rest.is_empty() {
            field.push_str(break_with);
        }
        room = width.max(1);
    }
}

/// Appends `tag;` to a signature field, folding before column 78 (`col` is the current
/// column). Shared with the ARC sealer (crate::arc).
pub(crate) fn push_tag(field: &mut String, col: &mut usize, tag: &str) {
    let piece = format!("{tag};");
    if *col > 16 && *col + 1 + piece.len() > 78 {
        field.push_str("\n\t");
        *col = 8;
    } else if !field.ends_with(' ') {
        field.push(' ');
        *col += 1;
    }
    field.push_str(&piece);
    *col += piece.len();
}

/// A tag whose value is a list, folded after separators, on a line of its own.
pub(crate) fn push_list(field: &mut String, col: &mut usize, prefix: &str, items: &[&str], sep: &str) {
    field.push_str("\n\t");
    *col = 8;
    field.push_str(prefix);
    *col += prefix.len();
    for (i, item) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        let piece_len = item.len() + if last { 1 } else { sep.len() };
        if *col + piece_len > 78 && i > 0 {
            field.push_str("\n\t");
            *col = 8;
        }
        field.push_str(item);
        field.push_str(if last { ";" } else { sep });
        *col += piece_len;
    }
    if items.is_empty() {
        field.push(';');
    }
}

/// z= entries: each signed field (first instance per listed name, once) as `Name:value`,
/// unfolded, DKIM-Quoted-Printable.
fn copied_headers(headers: &Headers, names: &[String]) -> Vec<String> {
    // Lowercase name -> its fields, top to bottom (one pass: linear in fields + names).
    let mut by_name: std::collections::HashMap<Vec<u8>, Vec<usize>> = std::collections::HashMap::new();
    for (i, f) in headers.fields.iter().enumerate() {
        by_name.entry(headers.name(f).to_ascii_lowercase()).or_default().push(i);
    }
    let mut out = Vec::new();
    for n in names {
        // remove(): each listed name is copied once, with all its instances.
        for i in by_name.remove(n.to_ascii_lowercase().as_bytes()).unwrap_or_default() {
            let f = &headers.fields[i];
            let mut v = headers.name(f).to_vec();
            v.push(b':');
            v.extend_from_slice(&unfold(headers.value(f)));
            out.push(dkim_qp_encode(&v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_copies_each_name_once_in_h_order() {
        let h = Headers::parse(b"To: t\nFrom: a\nSubject: s\nfrom: b\n".to_vec());
        let names: Vec<String> = ["from", "subject", "from", "cc"].iter().map(|s| s.to_string()).collect();
        assert_eq!(copied_headers(&h, &names), vec!["From:a", "from:b", "Subject:s"]);
    }

    /// fuzz/sign_verify: a field named `Sub;ect` put `sub;ect` into h=, where the `;` ended
    /// the tag, and our own signature no longer parsed (H).
    #[test]
    fn header_name_with_semicolon_is_not_signed() {
        let h = Headers::parse(b"From: a@example.com\nSub;ect: hi\nSubject: s\n".to_vec());
        assert_eq!(default_header_list(&h, &[]), vec!["from", "subject", "from"]);
    }

    /// The DKIM and the DomainKeys signers fold `b=` as they did before they shared the folder.
    #[test]
    fn fold_base64_as_both_signers_did() {
        let b64: String = ('A'..='Z').cycle().take(172).collect();
        let mut f = String::from("\tb=");
        fold_base64(&mut f, &b64, 66, 68, "\n\t  ");
        let lines: Vec<&str> = f.split('\n').collect();
        assert_eq!(lines.iter().map(|l| l.len()).collect::<Vec<_>>(), [69, 71, 41]);
        assert_eq!(f.replace("\n\t  ", "").trim_start_matches("\tb="), b64);
        let mut f = String::from("b=");
        fold_base64(&mut f, &b64, 74, 72, "\n\t");
        assert_eq!(f.split('\n').map(str::len).collect::<Vec<_>>(), [76, 73, 27]);
        let mut empty = String::new();
        fold_base64(&mut empty, "", 5, 5, "\n");
        assert_eq!(empty, "");
    }
}
