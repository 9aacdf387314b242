//! Which incoming fields are forgeries of the status headers we add, to be removed (the fields
//! themselves are written by `dkim::verify_task` and `domainkeys::task`).
//!
//! Removed from the incoming message: every `DKIM-Status`, `X-DKIM-ADSP` and `X-DKIM-SSP`
//! field, and every `Authentication-Results` field whose authserv-id is ours
//! (case-insensitive), so that a sender cannot forge a pass; a bare CR counts as a field
//! boundary (see [`forged`]).

use crate::message::Headers;
use crate::rfc5322::first_word;

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
        || (name.eq_ignore_ascii_case(b"Authentication-Results")
            && ar_authserv_id(value).eq_ignore_ascii_case(authserv_id))
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
