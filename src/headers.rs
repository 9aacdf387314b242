//! The bytes of the verification headers we add (LF-ended, folded with LF TAB), and which
//! incoming fields are forgeries of them to be removed:
//! - `DKIM-Status:` (shared/SPEC.md §6 texts), with a second line `(old=NAME:number)` when the
//!   practice step changed the result;
//! - `Authentication-Results:` (RFC 8601): `authserv-id; dkim=<result> [reason="…"]
//!   header.d=… header.i=… header.s=… header.a=… header.b=<first 8 of b=>`, one result per
//!   signature, `dkim=none` without signatures;
//! - `X-DKIM-ADSP:` / `X-DKIM-SSP:` when the practice step consulted such a record.
//!
//! Removed from the incoming message: every `DKIM-Status`, `X-DKIM-ADSP` and `X-DKIM-SSP`
//! field, and every `Authentication-Results` field whose authserv-id is ours
//! (case-insensitive), so that a sender cannot forge a pass.

use crate::config::{ControlDir, Env};
use crate::dkim::verify::{Outcome, SigResult};
use crate::message::{unfold, Headers};

/// `DKIM-Status: <text>` and, when the practice step changed the result, `\t(old=NAME:n)`.
pub fn dkim_status(o: Outcome, old: Option<Outcome>) -> Vec<u8> {
    let mut s = format!("DKIM-Status: {}\n", o.status_text());
    if let Some(old) = old {
        s.push_str(&format!("\t(old={}:{})\n", old.name(), old.number()));
    }
    s.into_bytes()
}

/// `X-DKIM-ADSP: discardable;` and the like.
pub fn practice_header(name: &str, value: &str) -> Vec<u8> {
    format!("{name}: {value}\n").into_bytes()
}

/// The authserv-id: `AUTHSERV_ID`, else the first line of control/me, else the host name.
/// Characters that cannot be in an unquoted RFC 8601 value are dropped.
pub fn authserv_id(env: &Env, control: &ControlDir) -> String {
    let raw = env
        .nonempty("AUTHSERV_ID")
        .map(str::to_string)
        .or_else(|| control.first_line("me").ok().flatten())
        .or_else(hostname)
        .unwrap_or_default();
    let id: String = raw.trim().chars().filter(|&c| is_token_char(c)).collect();
    if id.is_empty() {
        "localhost".into()
    } else {
        id
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let h = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!h.is_empty()).then_some(h)
}

/// RFC 2045 token characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// Property values longer than this are cut (they come from the message).
const MAX_VALUE: usize = 128;

/// A property value: as it is when it is a token (or, with `at`, a `local@domain` of token
/// characters), else a quoted string; control characters are dropped.
fn pvalue(s: &str, at: bool) -> String {
    // Values come from the message: keep them short and ASCII.
    let s: String = s.chars().take(MAX_VALUE).map(|c| if c.is_ascii() { c } else { '?' }).collect();
    let s = s.as_str();
    let plain = !s.is_empty() && s.chars().all(|c| is_token_char(c) || (at && c == '@'));
    if plain && (!at || s.matches('@').count() <= 1) {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The `Authentication-Results:` field.
pub fn authentication_results(authserv_id: &str, results: &[SigResult]) -> Vec<u8> {
    let mut out = format!("Authentication-Results: {authserv_id}");
    if results.is_empty() {
        out.push_str("; dkim=none\n");
        return out.into_bytes();
    }
    for r in results {
        out.push_str(";\n\t");
        let mut col = 8;
        let mut words: Vec<String> = vec![format!("dkim={}", r.outcome.ar_result())];
        if !r.outcome.is_pass() {
            words.push(format!("reason={}", pvalue(r.outcome.status_text(), false)));
        }
        let props: [(&str, &Option<String>, bool); 5] = [
            ("header.d", &r.domain, false),
            ("header.i", &r.identity, true),
            ("header.s", &r.selector, false),
            ("header.a", &r.algorithm, false),
            ("header.b", &r.b_prefix, false),
        ];
        for (name, v, at) in props {
            if let Some(v) = v {
                words.push(format!("{name}={}", pvalue(v, at)));
            }
        }
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                if col + 1 + w.len() > 78 {
                    out.push_str("\n\t");
                    col = 8;
                } else {
                    out.push(' ');
                    col += 1;
                }
            }
            out.push_str(w);
            col += w.len();
        }
    }
    out.push('\n');
    out.into_bytes()
}

/// The authserv-id of an `Authentication-Results` value: the first word after any comments.
pub fn ar_authserv_id(value: &[u8]) -> String {
    let v = unfold(value);
    let s = String::from_utf8_lossy(&v);
    let mut chars = s.chars().peekable();
    // Skip CFWS.
    loop {
        match chars.peek() {
            Some(c) if c.is_whitespace() => {
                chars.next();
            }
            Some('(') => {
                let mut depth = 0;
                for c in chars.by_ref() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => break,
        }
    }
    let mut id = String::new();
    if chars.peek() == Some(&'"') {
        chars.next();
        let mut esc = false;
        for c in chars {
            if esc {
                id.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                break;
            } else {
                id.push(c);
            }
        }
    } else {
        for c in chars {
            if c.is_whitespace() || c == ';' || c == '(' {
                break;
            }
            id.push(c);
        }
    }
    id
}

/// Indices of incoming fields that claim to be our verification results: every DKIM-Status,
/// DomainKey-Status, X-DKIM-ADSP and X-DKIM-SSP field, and Authentication-Results with our
/// authserv-id. Both verifiers remove all of them, so neither kind can be forged past the other.
pub fn forged(headers: &Headers, authserv_id: &str) -> Vec<usize> {
    headers
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            let n = headers.name(f);
            ["DKIM-Status", "DomainKey-Status", "X-DKIM-ADSP", "X-DKIM-SSP"]
                .iter()
                .any(|x| n.eq_ignore_ascii_case(x.as_bytes()))
                || (n.eq_ignore_ascii_case(b"Authentication-Results")
                    && ar_authserv_id(headers.value(f)).eq_ignore_ascii_case(authserv_id))
        })
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sr(o: Outcome) -> SigResult {
        SigResult {
            outcome: o,
            domain: Some("example.com".into()),
            selector: Some("sel".into()),
            identity: Some("@example.com".into()),
            algorithm: Some("rsa-sha256".into()),
            b_prefix: Some("ab/cd+ef".into()),
            detail: String::new(),
        }
    }

    #[test]
    fn status() {
        assert_eq!(dkim_status(Outcome::Success, None), b"DKIM-Status: good\n");
        assert_eq!(
            String::from_utf8(dkim_status(Outcome::Neutral, Some(Outcome::NoSignatures))).unwrap(),
            "DKIM-Status: verify result: no signatures verified but message is not suspicious\n\t(old=NO_SIGNATURES:-13)\n"
        );
        assert_eq!(practice_header("X-DKIM-ADSP", "unknown;"), b"X-DKIM-ADSP: unknown;\n");
    }

    #[test]
    fn ar() {
        assert_eq!(authentication_results("mx.example.org", &[]), b"Authentication-Results: mx.example.org; dkim=none\n");
        let a = String::from_utf8(authentication_results("mx.example.org", &[sr(Outcome::Success), sr(Outcome::SignatureBad)]))
            .unwrap();
        assert_eq!(
            a,
            "Authentication-Results: mx.example.org;\n\tdkim=pass header.d=example.com header.i=@example.com header.s=sel\n\theader.a=rsa-sha256 header.b=\"ab/cd+ef\";\n\tdkim=fail reason=\"signature error: RSA/ED25519 verify failed\"\n\theader.d=example.com header.i=@example.com header.s=sel\n\theader.a=rsa-sha256 header.b=\"ab/cd+ef\"\n"
        );
        for line in a.lines() {
            assert!(line.len() <= 78, "{line}");
        }
        // Hostile values are quoted, never break the field.
        let mut bad = sr(Outcome::BadSyntax);
        bad.domain = Some("evil; dkim=pass".into());
        bad.identity = Some("a\"b@x\ny".into());
        let a = String::from_utf8(authentication_results("mx", &[bad])).unwrap();
        assert!(a.contains("header.d=\"evil; dkim=pass\""), "{a}");
        assert!(a.contains("header.i=\"a\\\"b@xy\""), "{a}");
        assert_eq!(a.matches('\n').count(), a.matches("\n\t").count() + 1);
        let mut long = sr(Outcome::BadSyntax);
        long.domain = Some(format!("{}é", "a".repeat(300)));
        let a = String::from_utf8(authentication_results("mx", &[long])).unwrap();
        assert!(a.contains(&format!("header.d={}\n", "a".repeat(128))), "{a}");
        let mut odd = sr(Outcome::BadSyntax);
        odd.selector = Some("sé".into());
        let a = String::from_utf8(authentication_results("mx", &[odd])).unwrap();
        assert!(a.contains("header.s=\"s?\""), "{a}");
    }

    #[test]
    fn authserv() {
        let dir = tempfile::tempdir().unwrap();
        let c = ControlDir::new(dir.path());
        assert_eq!(authserv_id(&Env::from_pairs(&[("AUTHSERV_ID", "mx.a.org")]), &c), "mx.a.org");
        std::fs::write(dir.path().join("me"), "me.example.org\n").unwrap();
        assert_eq!(authserv_id(&Env::default(), &c), "me.example.org");
        assert_eq!(authserv_id(&Env::from_pairs(&[("AUTHSERV_ID", "x y;z")]), &c), "xyz");
        let dir2 = tempfile::tempdir().unwrap();
        assert!(!authserv_id(&Env::default(), &ControlDir::new(dir2.path())).is_empty());
    }

    #[test]
    fn forgeries() {
        assert_eq!(ar_authserv_id(b" mx.example.org; dkim=pass"), "mx.example.org");
        assert_eq!(ar_authserv_id(b" (comment (nested)) MX.example.org 1; spf=pass"), "MX.example.org");
        assert_eq!(ar_authserv_id(b"\n\t\"mx.example.org\"; none"), "mx.example.org");
        assert_eq!(ar_authserv_id(b" mx.example.org;"), "mx.example.org");
        let h = Headers::parse(
            b"Authentication-Results: MX.example.org; dkim=pass\nAuthentication-Results: other.org; dkim=pass\nDKIM-Status: good\nx-dkim-adsp: all;\nX-DKIM-SSP: strict;\nFrom: a@b\nAuthentication-Results: mx.example.org.evil; dkim=pass\n"
                .to_vec(),
        );
        assert_eq!(forged(&h, "mx.example.org"), vec![0, 2, 3, 4]);
    }
}
