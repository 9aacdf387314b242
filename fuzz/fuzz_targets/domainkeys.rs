//! DomainKeys (RFC 4870) verification on arbitrary input: the DomainKey-Signature tag list,
//! the sender address parser, the nofws/simple canonicalizers and the key record, with the
//! fuzz input as both the message and the one TXT record. No panic. Also `DKSIGNOPTIONS`.
#![no_main]

use fuzz_support::Cursor;
use libfuzzer_sys::fuzz_target;
use qmail_dkim::dns::Fixed;
use qmail_dkim::domainkeys::{parse_mailbox, sign::parse_options, verify};
use qmail_dkim::message::{find_header_end, Headers};

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor(data);
    let record = c.piece().to_vec();
    let msg = c.rest();
    let (end, start) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    let headers = Headers::parse(msg[..end].to_vec());
    for f in &headers.fields {
        let _ = parse_mailbox(headers.value(f));
    }
    let _ = verify::message_sender(&headers);
    let dns = Fixed(record);
    let mut outcome = match verify::start(&headers) {
        verify::Start::Done(o) => o,
        verify::Start::Hash(mut p) => {
            p.hasher.body(&msg[start..]);
            verify::finish(*p, &dns)
        }
    };
    verify::lookup_policy(&mut outcome, &headers, &dns);
    let _ = parse_options(&String::from_utf8_lossy(msg));
});
