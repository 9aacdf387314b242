//! The qmail-queue envelope parser: whatever the bytes, no panic; the result does not depend
//! on how the bytes arrive (one read or many); a parsed envelope is a prefix of the input and
//! re-encodes to exactly the bytes read.
#![no_main]

use fuzz_support::{split, Cursor};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::envelope::{self, Parser};

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor(data);
    let sizes = c.piece().to_vec();
    let input = c.rest();

    let whole = envelope::read(input);

    let mut p = Parser::default();
    let mut failed: Option<i32> = None;
    for piece in split(input, &sizes) {
        if p.is_done() {
            break;
        }
        match p.feed(piece) {
            Ok(n) => assert!(n <= piece.len()),
            Err(e) => {
                failed = Some(e.exit_code());
                break;
            }
        }
    }
    let chunked = match failed {
        Some(code) => Err(code),
        None => p.finish().map_err(|e| e.exit_code()),
    };
    match (&whole, &chunked) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.raw, b.raw);
            assert_eq!(a.sender, b.sender);
            assert_eq!(a.recipients, b.recipients);
            assert!(input.starts_with(&a.raw));
            let rcpts: Vec<&[u8]> = a.recipients.iter().map(Vec::as_slice).collect();
            assert_eq!(envelope::build(&a.sender, &rcpts), a.raw);
            assert!(a.sender.len() < envelope::ADDRESS_LIMIT);
            assert!(a.recipients.iter().all(|r| r.len() < envelope::ADDRESS_LIMIT));
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.exit_code(), *b);
            assert!(matches!(*b, 11 | 54 | 91), "undocumented envelope code {b}");
        }
        _ => panic!("one read and many reads disagree: {:?} vs {:?}", whole.as_ref().map(|e| &e.raw), chunked),
    }
});
