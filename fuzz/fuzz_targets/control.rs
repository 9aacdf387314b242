//! The control-file and option parsers: `parse_lines` (comments, blank lines, CRLF),
//! `parse_dkimkeys` with its envstr, `parse_envstr`, the dkimkeys lookup (exact, glob, QREGEX), the glob itself
//! and `DKIMSIGNOPTIONS` (`dkim::options::parse`). No panic, and the documented shapes.
#![no_main]

use fuzz_support::Cursor;
use libfuzzer_sys::fuzz_target;
use qmail_dkim::config::control::{lookup_dkimkeys, parse_dkimkeys, parse_envstr, parse_lines, EnvChange};
use qmail_dkim::dkim::options;
use qmail_dkim::glob::Glob;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor(data);
    let domain = String::from_utf8_lossy(c.piece()).into_owned();
    let file = c.rest();

    let lines = parse_lines(file);
    for l in &lines {
        assert!(!l.is_empty() && !l.starts_with('#'));
        assert_eq!(l.trim(), l);
        assert!(!l.contains('\n'));
    }
    if let Ok(entries) = parse_dkimkeys(&lines, Path::new("dkimkeys")) {
        assert_eq!(entries.len(), lines.len());
        for e in &entries {
            assert!(!e.pattern.is_empty() && !e.key.is_empty());
            for ch in &e.envstr {
                let k = match ch {
                    EnvChange::Set(k, v) => {
                        assert!(!v.is_empty());
                        k
                    }
                    EnvChange::Unset(k) => k,
                };
                assert!(!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            }
        }
        let _ = lookup_dkimkeys(&entries, &domain, false);
        // Keep regex compilation cheap: only short patterns with QREGEX.
        if entries.iter().all(|e| e.pattern.len() <= 64) && entries.len() <= 16 {
            let _ = lookup_dkimkeys(&entries, &domain, true);
        }
    }
    let text = String::from_utf8_lossy(file);
    let _ = parse_envstr(&text);
    // The glob is linear: no size cap needed.
    let _ = Glob::star_and_question(&text).ignore_case().matches(&domain);
    let _ = Glob::star_only(&text).matches(&domain);
    if let Ok(o) = options::parse(&text) {
        assert!(!o.algorithms.is_empty());
    }
});
