//! Which incoming fields are forgeries of the status headers we add, to be removed (the fields
//! themselves are written by `dkim::task` and `domainkeys::task`).
//!
//! Removed from the incoming message: every `DKIM-Status`, `X-DKIM-ADSP` and `X-DKIM-SSP`
//! field, and every `Authentication-Results` field whose authserv-id is ours
//! (case-insensitive), so that a sender cannot forge a pass; a bare CR counts as a field
//! boundary (see [`forged`]).

use crate::message::Headers;
use crate::rfc5322::{first_word, is_wsp};

/// Whether an `Authentication-Results` value may be read as naming `id` (case-insensitive) as
/// its authserv-id: the first word after any CFWS as RFC 5322 reads it ([`first_word`]),
/// or as a lenient reader may read it: the first RFC 2045 token (`id)` is `id` to a reader that
/// ends the token at the `)`), or after leading comments whose parentheses it pairs otherwise
/// (without quoted-pairs, without nesting, skipping a stray `)`, or up to a later `)`). So our
/// id at the start, or, when the value starts with `(` or `)`, right after any `)` (white space
/// between; bare and followed by no token character, or the whole of a quoted-string) counts.
/// **Decision:** a field of another server that starts with a comment and has our id after a
/// `)` is removed too; no real one looks like that, and a forged pass must not pass.
/// Linear: one look at each `)`, the white space after it and at most the id's length.
pub fn ar_names_authserv_id(value: &[u8], id: &str) -> bool {
    // The field's line end closes an unterminated quoted-string for a reader of lines.
    let value = value.trim_ascii_end();
    let id = id.as_bytes();
    if id.is_empty() {
        return false;
    }
    if first_word(value).eq_ignore_ascii_case(id) {
        return true;
    }
    let is_token = |c: &u8| c.is_ascii() && crate::auth_results::is_token_char(char::from(*c));
    // Whether `rest`, after white space, starts with our id as a word.
    let names = |rest: &[u8]| {
        let rest = &rest[rest.iter().position(|&c| !is_wsp(c)).unwrap_or(rest.len())..];
        let (word, quoted) = match rest.strip_prefix(b"\"") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        word.len() >= id.len()
            && word[..id.len()].eq_ignore_ascii_case(id)
            && match word.get(id.len()) {
                _ if quoted => word.get(id.len()) == Some(&b'"'),
                None => true,
                Some(c) => !is_token(c),
            }
    };
    let Some(start) = value.iter().position(|&c| !is_wsp(c)) else { return false };
    if names(&value[start..]) {
        return true;
    }
    matches!(value[start], b'(' | b')')
        && memchr::memchr_iter(b')', &value[start..]).any(|i| names(&value[start + i + 1..]))
}

/// The fields we add; an incoming one is a forgery whatever it says.
const STATUS_FIELDS: [&str; 4] = ["DKIM-Status", "DomainKey-Status", "X-DKIM-ADSP", "X-DKIM-SSP"];

/// Whether a field `name: value` claims to be one of our verification results.
fn claims_ours(name: &[u8], value: &[u8], authserv_id: &str) -> bool {
    let name = name.trim_ascii();
    STATUS_FIELDS.iter().any(|x| name.eq_ignore_ascii_case(x.as_bytes()))
        || (name.eq_ignore_ascii_case(b"Authentication-Results") && ar_names_authserv_id(value, authserv_id))
}

/// Indices of incoming fields that claim to be our verification results: every DKIM-Status,
/// DomainKey-Status, X-DKIM-ADSP and X-DKIM-SSP field, and Authentication-Results with our
/// authserv-id ([`ar_names_authserv_id`]). Both verifiers remove all of them, so neither kind
/// can be forged past the other.
/// **Decision:** a bare CR counts as a field boundary here, as everywhere a field is picked by
/// name ([`Headers::views`]): a field any of whose CR-separated parts is such a claim
/// (`Subject: hi<CR>DKIM-Status: good`) is removed whole. Refusing the message instead would
/// bounce legitimate mail with a stray CR elsewhere; passing it would let the part reach
/// readers that split on CR. Linear: each byte is looked at a bounded number of times.
pub fn forged(headers: &Headers, authserv_id: &str) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for v in headers.views() {
        if out.last() != Some(&v.index) && claims_ours(v.name, v.value, authserv_id) {
            out.push(v.index);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The authserv-id of an `Authentication-Results` value: the first word after any CFWS.
    fn ar_authserv_id(value: &[u8]) -> String {
        String::from_utf8_lossy(&first_word(value)).into_owned()
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

    /// Readers that pair parentheses otherwise than RFC 5322: a stray `)` after a comment,
    /// `\(` taken as a quoted-pair inside `\\(`, no nesting, one comment to the last `)`.
    #[test]
    fn ar_naming_our_id_under_a_lenient_reading_is_forged() {
        let ours = |v: &[u8]| ar_names_authserv_id(v, "mx.example.org");
        for v in [
            &b" (\\)) mx.example.org; dkim=pass"[..],
            b" (a\\(b) mx.example.org; dkim=pass",
            b" (a (b) MX.example.org; dkim=pass",
            b" (a) x (b) mx.example.org; dkim=pass",
            b" ) mx.example.org; dkim=pass",
            b"(a))\r\n\t\"mx.example.org\" ; dkim=pass",
            b" (x)mx.example.org(y); dkim=pass",
            b" (x) mx.example.org",
            b" mx.example.org; dkim=pass",
            b" mx.example.org); dkim=pass",
            b" mx.example.org/1; dkim=pass",
            b" \"mx.example.org\r\n",
        ] {
            assert!(ours(v), "{:?}", String::from_utf8_lossy(v));
        }
        for v in [
            &b" other.org; dkim=pass header.d=mx.example.org"[..],
            b" other.org (x) mx.example.org; dkim=pass",
            b" (a) mx.example.org.evil; dkim=pass",
            b" (a) mx.example.orgx; dkim=pass",
            b" (a) \"mx.example.org x\"; dkim=pass",
            b" (mx.example.org) other.org; dkim=pass",
            b" (a) xmx.example.org; dkim=pass",
            b"",
            b" ((((",
        ] {
            assert!(!ours(v), "{:?}", String::from_utf8_lossy(v));
        }
        assert!(!ar_names_authserv_id(b" (a) ; dkim=pass", ""));
        let h = Headers::parse(
            b"Authentication-Results: (\\)) mx.example.org; dkim=pass\nAuthentication-Results: (a\\(b) mx.example.org; dkim=pass\nAuthentication-Results: other.org; dkim=pass\n".to_vec(),
        );
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
}
