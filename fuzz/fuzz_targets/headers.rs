//! The header splitter and its helpers: `Headers::parse` reproduces the block exactly (the
//! fields' raw ranges tile it), names and values lie inside their field; `find_header_end`
//! gives the same answer whether the data arrives at once or in pieces (as `run::prepare`
//! reads it); `address_domain`, `unfold`, `first_value` and the DKIM header canonicalizers
//! never panic.
#![no_main]

use fuzz_support::{split, Cursor};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::dkim::canon;
use qmail_dkim::dkim::Canon;
use qmail_dkim::message::{address_domain, count_fields, find_header_end, unfold, Headers};

/// The incremental search of `run::prepare`: scan from two bytes before the new data; at end of
/// input rescan from 0 and take everything as header when there is no blank line.
fn incremental(pieces: &[&[u8]]) -> (usize, usize) {
    let mut head: Vec<u8> = Vec::new();
    for p in pieces {
        if p.is_empty() {
            continue;
        }
        let scan_from = head.len().saturating_sub(2);
        head.extend_from_slice(p);
        if let Some(e) = find_header_end(&head, scan_from) {
            return e;
        }
    }
    find_header_end(&head, 0).unwrap_or((head.len(), head.len()))
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor(data);
    let sizes = c.piece().to_vec();
    let input = c.rest();

    // 1. Where the header block ends.
    let at_once = find_header_end(input, 0).unwrap_or((input.len(), input.len()));
    let pieces = split(input, &sizes);
    let inc = incremental(&pieces);
    assert_eq!(at_once, inc, "header end depends on how the input is read");
    let (block_end, body_start) = at_once;
    assert!(block_end <= body_start && body_start <= input.len());
    let sep = &input[block_end..body_start];
    assert!(sep.is_empty() || sep == b"\n" || sep == b"\r\n", "separator {sep:?}");

    // 2. The fields tile the block exactly.
    let block = input[..block_end].to_vec();
    let h = Headers::parse(block.clone());
    assert_eq!(count_fields(&block), h.fields.len());
    let mut pos = 0;
    for f in &h.fields {
        assert_eq!(f.raw.start, pos);
        assert!(f.raw.end > f.raw.start);
        assert!(f.name.start >= f.raw.start && f.name.end <= f.raw.end);
        assert!(f.value.start >= f.name.end && f.value.end <= f.raw.end);
        pos = f.raw.end;
        let v = h.value(f);
        let _ = address_domain(v);
        let u = unfold(v);
        assert!(!u.contains(&b'\n'));
        let mut out = Vec::new();
        canon::header(Canon::Simple, &h, f, &mut out);
        canon::header(Canon::Relaxed, &h, f, &mut out);
        let _ = canon::strip_b_value(h.raw(f));
        canon::signature_header(Canon::Relaxed, h.raw(f), &mut out);
        canon::signature_header(Canon::Simple, h.raw(f), &mut out);
    }
    assert_eq!(pos, block.len(), "fields do not cover the block");
    let rebuilt: Vec<u8> = h.fields.iter().flat_map(|f| h.raw(f).iter().copied()).collect();
    assert_eq!(rebuilt, block);
    for name in ["From", "Sender", "Return-Path", "X-Bounced-Address", "Subject"] {
        if let Some(v) = h.first_value(name) {
            let _ = address_domain(&v);
        }
    }

    // 3. Whole input as one header value, too.
    let _ = address_domain(input);
    let names: Vec<String> = h.fields.iter().map(|f| String::from_utf8_lossy(h.name(f)).into_owned()).collect();
    let mut out = Vec::new();
    canon::signed_headers(Canon::Relaxed, &h, &names, None, &mut out);
    canon::signed_headers(Canon::Simple, &h, &names, Some(0), &mut out);
});
