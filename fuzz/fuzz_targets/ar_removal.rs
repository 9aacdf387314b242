//! The removal decision for incoming `Authentication-Results` fields: `headers::forged` over a
//! field whose value is the input (after a first line naming our authserv-id) removes it
//! whenever some plausible reader takes our id for its authserv-id: RFC 5322's, and the readers
//! that pair parentheses otherwise (without quoted-pairs, without nesting, skipping a stray
//! `)`), each of which this target implements independently. The decision is the one
//! `headers::ar_names_authserv_id` makes, also behind a bare CR.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qmail_dkim::headers::{ar_names_authserv_id, forged};
use qmail_dkim::message::Headers;

fn wsp(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// How a reader skips leading comments and finds the first word.
#[derive(Clone, Copy, Debug)]
struct Reader {
    /// `\` quotes the next byte (in comments and quoted strings).
    quoted_pairs: bool,
    /// `(` inside a comment opens another one.
    nesting: bool,
    /// A `)` outside comments is skipped like white space.
    skip_stray: bool,
}

impl Reader {
    /// The first word after white space and comments, `None` when there is none.
    fn first_word(self, v: &[u8]) -> Option<Vec<u8>> {
        let mut i = 0;
        loop {
            while i < v.len() && wsp(v[i]) {
                i += 1;
            }
            match v.get(i)? {
                b'(' => {
                    let mut depth = 1u32;
                    i += 1;
                    while depth > 0 {
                        let c = *v.get(i)?;
                        i += 1;
                        match c {
                            b'\\' if self.quoted_pairs => i += 1,
                            b'(' if self.nesting => depth += 1,
                            b')' => depth -= 1,
                            _ => {}
                        }
                    }
                }
                b')' if self.skip_stray => i += 1,
                b'"' => {
                    let mut w = Vec::new();
                    i += 1;
                    loop {
                        let c = *v.get(i)?;
                        i += 1;
                        match c {
                            b'\\' if self.quoted_pairs => {
                                w.push(*v.get(i)?);
                                i += 1;
                            }
                            b'"' => return Some(w),
                            _ => w.push(c),
                        }
                    }
                }
                _ => {
                    let end = v[i..]
                        .iter()
                        .position(|&c| wsp(c) || matches!(c, b';' | b'(' | b')' | b'"'))
                        .map_or(v.len(), |e| i + e);
                    return Some(v[i..end].to_vec());
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (first, value) = match data.iter().position(|&c| c == b'\n') {
        Some(n) => (&data[..n], &data[n + 1..]),
        None => (&b"mx.example.org"[..], data),
    };
    // Our authserv-id as config::authserv_id makes it: token characters only, never empty.
    let id: String = String::from_utf8_lossy(first)
        .chars()
        .filter(|&c| qmail_dkim::auth_results::is_token_char(c))
        .collect();
    let id = if id.is_empty() { "localhost".to_string() } else { id };
    let decided = ar_names_authserv_id(value, &id);
    for quoted_pairs in [true, false] {
        for nesting in [true, false] {
            for skip_stray in [true, false] {
                let r = Reader { quoted_pairs, nesting, skip_stray };
                if let Some(w) = r.first_word(value) {
                    assert!(
                        !w.eq_ignore_ascii_case(id.as_bytes()) || decided,
                        "{r:?} reads {id:?} in {value:?}, which is kept"
                    );
                }
            }
        }
    }
    // As a field (value without line ends, as one line), and behind a bare CR.
    let line: Vec<u8> = value.iter().map(|&c| if c == b'\n' { b' ' } else { c }).collect();
    let mut block = b"Authentication-Results:".to_vec();
    block.extend_from_slice(&line);
    block.extend_from_slice(b"\nX-Hidden: a\rAuthentication-Results:");
    block.extend_from_slice(&line);
    block.push(b'\n');
    let h = Headers::parse(block);
    let removed = forged(&h, &id);
    // A bare CR in the value cuts it for the reader behind the first one: checked above only.
    if h.fields.len() == 2 && !line.contains(&b'\r') && ar_names_authserv_id(&line, &id) {
        assert_eq!(removed, vec![0, 1], "kept a field naming {id:?}: {line:?}");
    }
});
