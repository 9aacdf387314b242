//! The bytes of the verification headers we add (LF-ended, folded with LF TAB), and which
//! incoming fields are forgeries of them to be removed:
//! - `DKIM-Status:` (shared/SPEC.md §6 texts), with a second line `(old=NAME:number)` when the
//!   practice step changed the result;
//! - the DKIM part of `Authentication-Results:` (RFC 8601, written by crate::auth_results):
//!   `dkim=<result> [reason="…"] header.d=… header.i=… header.s=… header.a=… header.b=<first 8
//!   of b=>`, one result per signature, `dkim=none` without signatures;
//! - `X-DKIM-ADSP:` / `X-DKIM-SSP:` when the practice step consulted such a record.
//!
//! Removed from the incoming message: every `DKIM-Status`, `X-DKIM-ADSP` and `X-DKIM-SSP`
//! field, and every `Authentication-Results` field whose authserv-id is ours
//! (case-insensitive), so that a sender cannot forge a pass; a bare CR counts as a field
//! boundary (see [`forged`]).

use crate::config::{ControlDir, Env};
use crate::auth_results::{is_token_char, MethodResult};
use crate::dkim::verify::{Outcome, SigResult};
use crate::message::Headers;
use crate::rfc5322::first_word;

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

/// The DKIM part of our `Authentication-Results`: one `dkim=` per signature, `dkim=none`
/// without signatures.
pub fn dkim_results(results: &[SigResult]) -> Vec<MethodResult> {
    if results.is_empty() {
        return vec![MethodResult::new("dkim", "none")];
    }
    results
        .iter()
        .map(|r| {
            let mut m = MethodResult::new("dkim", r.outcome.ar_result());
            if !r.outcome.is_pass() {
                m = m.reason(r.outcome.status_text());
            }
            m.prop("header.d", r.domain.as_deref())
                .prop("header.i", r.identity.as_deref())
                .prop("header.s", r.selector.as_deref())
                .prop("header.a", r.algorithm.as_deref())
                .prop("header.b", r.b_prefix.as_deref())
        })
        .collect()
}

/// The authserv-id of an `Authentication-Results` value: the first word after any CFWS.
pub fn ar_authserv_id(value: &[u8]) -> String {
    String::from_utf8_lossy(&first_word(value)).into_owned()
}

/// The fields we add; an incoming one is a forgery whatever it says.
const STATUS_FIELDS: [&str; 4] = ["DKIM-Status", "DomainKey-Status", "X-DKIM-ADSP", "X-DKIM-SSP"];

/// Whether a field `name: value` claims to be one of our verification results.
fn claims_ours(name: &[u8], value: &[u8], authserv_id: &str) -> bool {
    let name = name.trim_ascii();
    STATUS_FIELDS.iter().any(|x| name.eq_ignore_ascii_case(x.as_bytes()))
        || (name.eq_ignore_ascii_case(b"Authentication-Results") && ar_authserv_id(value).eq_ignore_ascii_case(authserv_id))
}

/// The parts of a field after each bare CR (a CR not followed by LF). Several mail readers end
/// a line at a bare CR, so each part may be read as a field of its own.
fn after_bare_crs(raw: &[u8]) -> Vec<&[u8]> {
    let mut cuts: Vec<usize> = memchr::memchr_iter(b'\r', raw).filter(|&i| raw.get(i + 1) != Some(&b'\n')).collect();
    cuts.push(raw.len());
    cuts.windows(2).map(|w| &raw[w[0] + 1..w[1]]).collect()
}

/// Indices of incoming fields that claim to be our verification results: every DKIM-Status,
/// DomainKey-Status, X-DKIM-ADSP and X-DKIM-SSP field, and Authentication-Results with our
/// authserv-id. Both verifiers remove all of them, so neither kind can be forged past the other.
/// **Decision:** a bare CR counts as a field boundary here: a field any of whose CR-separated
/// parts is such a claim (`Subject: hi<CR>DKIM-Status: good`) is removed whole. Refusing the
/// message instead would bounce legitimate mail with a stray CR elsewhere; passing it would let
/// the part reach readers that split on CR. Linear: each byte is looked at a bounded number of
/// times.
pub fn forged(headers: &Headers, authserv_id: &str) -> Vec<usize> {
    headers
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            claims_ours(headers.name(f), headers.value(f), authserv_id)
                || after_bare_crs(headers.raw(f)).into_iter().any(|part| match memchr::memchr(b':', part) {
                    Some(c) => claims_ours(&part[..c], &part[c + 1..], authserv_id),
                    None => false,
                })
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
        let f = |r: &[SigResult]| String::from_utf8(crate::auth_results::field("mx.example.org", &dkim_results(r))).unwrap();
        assert_eq!(f(&[]), "Authentication-Results: mx.example.org; dkim=none\n");
        let a = f(&[sr(Outcome::Success), sr(Outcome::SignatureBad)]);
        assert_eq!(
            a,
            "Authentication-Results: mx.example.org;\n\tdkim=pass header.d=example.com header.i=@example.com header.s=sel\n\theader.a=rsa-sha256 header.b=\"ab/cd+ef\";\n\tdkim=fail reason=\"signature error: RSA/ED25519 verify failed\"\n\theader.d=example.com header.i=@example.com header.s=sel\n\theader.a=rsa-sha256 header.b=\"ab/cd+ef\"\n"
        );
        // Hostile values are quoted or dropped, never break the field.
        let mut bad = sr(Outcome::BadSyntax);
        bad.domain = Some("evil; dkim=pass".into());
        bad.identity = Some("a\"b@x\ny".into());
        bad.selector = Some("sé".into());
        let a = f(&[bad]);
        assert!(a.contains("header.d=\"evil; dkim=pass\""), "{a}");
        assert!(!a.contains("header.i=") && !a.contains("header.s="), "{a}");
        assert_eq!(a.matches('\n').count(), a.matches("\n\t").count() + 1);
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

    /// RFC 5322 §3.2.2: `(\))` is one comment, so the authserv-id is `mx.example.org`.
    #[test]
    fn ar_comment_with_quoted_pair_is_forged() {
        assert_eq!(ar_authserv_id(b" (\\)) mx.example.org; dkim=pass"), "mx.example.org");
        let h = Headers::parse(b"Authentication-Results: (\\)) mx.example.org; dkim=pass\nAuthentication-Results: (a \\( b) mx.example.org; dkim=pass\n".to_vec());
        assert_eq!(forged(&h, "mx.example.org"), vec![0, 1]);
    }

    /// A reader that ends lines at a bare CR sees a forged field inside another one.
    #[test]
    fn bare_cr_hides_forged_field() {
        let h = Headers::parse(
            b"Subject: hi\rAuthentication-Results: mx.example.org; dkim=pass\nSubject: a\rDKIM-Status: good\nX: a\r\n\tb\rx-dkim-ssp: all\nSubject: ok\r\nAuthentication-Results: x.org\rmx.example.org; dkim=pass\nAuthentication-Results: mx.example.org\r; dkim=pass\nSubject: \r\rno colon\rAuthentication-Results: other.org\n"
                .to_vec(),
        );
        assert_eq!(forged(&h, "mx.example.org"), vec![0, 1, 2, 5]);
    }

    /// Deep nesting, unclosed comments and many bare CRs: the bytes scanned grow with the
    /// input (at most once each), at 1x and 16x.
    #[test]
    fn forgery_scan_of_nested_or_unbalanced_input_is_linear() {
        let shapes: [(&[u8], &[u8]); 4] = [
            (b"Authentication-Results: ", b"("),
            (b"Authentication-Results: ", b"(\\"),
            (b"Authentication-Results: \"", b"\\\""),
            (b"Subject: x", b"\rAuthentication-Results: (("),
        ];
        for (head, unit) in shapes {
            for n in [2_000, 32_000] {
                let mut block = head.to_vec();
                block.extend(unit.repeat(n));
                block.extend_from_slice(b" mx; dkim=pass\n");
                let len = block.len() as u64;
                let h = Headers::parse(block);
                let steps = crate::rfc5322::steps(|| {
                    std::hint::black_box(forged(&h, "mx"));
                });
                assert!(steps <= len, "{head:?}{unit:?} x{n}: {steps} steps for {len} bytes");
            }
        }
    }
}
