//! DomainKeys canonicalization (RFC 4870 §3.4.2) into one SHA-1: the signed header fields, then
//! the separator line and the body, streamed.
//!
//! Both algorithms write every line CRLF-ended and drop trailing empty lines; the separator line
//! counts as the first body line, so an empty (or all-blank) body drops it too (libdomainkeys and
//! Mail::DKIM agree on this). `nofws` removes SP, TAB, CR and LF from header fields (which unfolds
//! them; names keep their case) and SP, TAB and bare CR from body lines. `simple` keeps every byte.
//! In our LF-ended input, a CR right before an LF is part of the line end, as
//! in DKIM ([`crate::dkim::canon`]).

use super::Canon;
use crate::message::Headers;
use ring::digest;

const FLUSH_AT: usize = 64 * 1024;

/// One SHA-1 over headers, then the body.
pub struct DkHasher {
    canon: Canon,
    ctx: digest::Context,
    in_body: bool,
    /// Empty lines seen but not yet emitted (they vanish if only empty lines follow).
    blank: u64,
    /// The current body line has produced output.
    in_line: bool,
    /// The last body byte was a CR: line end if an LF follows, data otherwise.
    cr_held: bool,
    buf: Vec<u8>,
    /// Tests: a copy of every canonical byte.
    capture: Option<Vec<u8>>,
}

impl DkHasher {
    pub fn new(canon: Canon) -> DkHasher {
        DkHasher {
            canon,
            ctx: digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY),
            in_body: false,
            blank: 0,
            in_line: false,
            cr_held: false,
            buf: Vec::with_capacity(8 * 1024),
            capture: None,
        }
    }

    /// Keeps a copy of the canonical data (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn with_capture(mut self) -> DkHasher {
        self.capture = Some(Vec::new());
        self
    }

    /// One header field (name, colon, value with its folding and line ends).
    pub fn header(&mut self, raw: &[u8]) {
        debug_assert!(!self.in_body, "headers after the body");
        let mut out = Vec::with_capacity(raw.len() + 2);
        header_canon(self.canon, raw, &mut out);
        self.emit(&out);
    }

    /// Body bytes (everything after the separator line), in arbitrary pieces.
    pub fn body(&mut self, mut data: &[u8]) {
        self.begin_body();
        if self.cr_held {
            if data.is_empty() {
                return;
            }
            self.cr_held = false;
            if data[0] == b'\n' {
                self.end_line();
                data = &data[1..];
            } else {
                self.content(b"\r");
            }
        }
        while let Some(p) = memchr::memchr(b'\n', data) {
            let mut seg = &data[..p];
            if let [rest @ .., b'\r'] = seg {
                seg = rest;
            }
            self.content(seg);
            self.end_line();
            data = &data[p + 1..];
        }
        if !data.is_empty() {
            let mut seg = data;
            if let [rest @ .., b'\r'] = seg {
                seg = rest;
                self.cr_held = true;
            }
            self.content(seg);
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// The SHA-1 of everything.
    pub fn finish(self) -> Vec<u8> {
        self.finish_with_capture().0
    }

    /// The SHA-1 and, if asked for with [`DkHasher::with_capture`], the canonical data.
    pub(crate) fn finish_with_capture(mut self) -> (Vec<u8>, Option<Vec<u8>>) {
        self.begin_body();
        if self.cr_held {
            self.cr_held = false;
            self.content(b"\r");
        }
        if self.in_line {
            self.emit(b"\r\n");
            self.in_line = false;
        }
        self.flush();
        let capture = self.capture.take();
        (self.ctx.finish().as_ref().to_vec(), capture)
    }

    fn begin_body(&mut self) {
        if !self.in_body {
            self.in_body = true;
            // The separator line: an empty line like any other.
            self.blank = 1;
        }
    }

    fn content(&mut self, seg: &[u8]) {
        if seg.is_empty() {
            return;
        }
        match self.canon {
            Canon::Simple => {
                self.start_line();
                self.emit(seg);
            }
            Canon::Nofws => {
                for piece in seg.split(|&c| matches!(c, b' ' | b'\t' | b'\r')) {
                    if !piece.is_empty() {
                        self.start_line();
                        self.emit(piece);
                    }
                }
            }
        }
    }

    fn start_line(&mut self) {
        if !self.in_line {
            self.in_line = true;
            while self.blank > 0 {
                self.blank -= 1;
                self.emit(b"\r\n");
                if self.buf.len() >= FLUSH_AT {
                    self.flush();
                }
            }
        }
    }

    fn end_line(&mut self) {
        if self.in_line {
            self.emit(b"\r\n");
            self.in_line = false;
        } else {
            self.blank += 1;
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if let Some(c) = &mut self.capture {
            c.extend_from_slice(bytes);
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.ctx.update(&self.buf);
            self.buf.clear();
        }
    }
}

/// One header field canonicalized, with its CRLF, appended to `out`.
pub(crate) fn header_canon(canon: Canon, raw: &[u8], out: &mut Vec<u8>) {
    match canon {
        Canon::Simple => crate::dkim::canon::simple_header(raw, out),
        Canon::Nofws => {
            out.extend(raw.iter().copied().filter(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n')));
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The lowercase name of a field when it is a proper `name:` (no whitespace in the name).
pub(crate) fn field_name(headers: &Headers, i: usize) -> Option<String> {
    let f = headers.fields.get(i)?;
    let raw = headers.raw(f);
    let name = headers.name(f);
    if name.is_empty()
        || name.iter().any(|c| c.is_ascii_whitespace())
        || raw.first().is_some_and(|c| c.is_ascii_whitespace())
    {
        return None;
    }
    std::str::from_utf8(name).ok().map(str::to_ascii_lowercase)
}

/// The fields a DomainKeys signature covers, in hashing order: every field from index `from` on
/// (the fields below the signature), or, with `h=`, the listed ones as Mail::DKIM picks them
/// (RFC 4870 §3.3: all occurrences of a listed name; a name listed n times takes its last n−1
/// occurrences singly, from the bottom, and the rest at its first mention).
pub(crate) fn select_fields(headers: &Headers, from: usize, h: Option<&[String]>) -> Vec<usize> {
    let n = headers.fields.len();
    let Some(names) = h else {
        return (from.min(n)..n).collect();
    };
    use std::collections::HashMap;
    let mut heads: HashMap<String, Vec<usize>> = HashMap::new();
    for i in from.min(n)..n {
        if let Some(name) = field_name(headers, i) {
            heads.entry(name).or_default().push(i);
        }
    }
    let names: Vec<String> = names.iter().map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in &names {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    let mut out: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    for name in names.iter().rev() {
        let Some(count) = counts.get_mut(name.as_str()) else { continue };
        *count = count.saturating_sub(1);
        let Some(list) = heads.get_mut(name) else { continue };
        if *count > 0 {
            if let Some(i) = list.pop() {
                out.push_front(i);
            }
        } else {
            for &i in list.iter().rev() {
                out.push_front(i);
            }
            list.clear();
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Canonical data of a whole message (header block, then body) with these signed fields.
    fn canon_msg(canon: Canon, msg: &[u8]) -> Vec<u8> {
        let (block_end, body_start) = crate::message::find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
        let headers = Headers::parse(msg[..block_end].to_vec());
        let mut h = DkHasher::new(canon).with_capture();
        for f in &headers.fields {
            h.header(headers.raw(f));
        }
        h.body(&msg[body_start..]);
        let (hash, cap) = h.finish_with_capture();
        let cap = cap.unwrap();
        assert_eq!(hash, digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &cap).as_ref().to_vec());
        cap
    }

    fn bytewise(canon: Canon, headers: &[&[u8]], body: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut a = DkHasher::new(canon);
        let mut b = DkHasher::new(canon);
        for f in headers {
            a.header(f);
            b.header(f);
        }
        a.body(body);
        for c in body {
            b.body(std::slice::from_ref(c));
        }
        (a.finish(), b.finish())
    }

    #[test]
    fn nofws_unfolds_headers_and_strips_whitespace() {
        // RFC 4870 §3.4.2.2: FWS removed from header lines, continuation lines unwrapped.
        let msg = b"From: Joe  SixPack <joe@football.example.com>\nSubject: Is dinner\n\tready?\r\nTo: a@b\n\nHi.\n";
        assert_eq!(
            canon_msg(Canon::Nofws, msg),
            b"From:JoeSixPack<joe@football.example.com>\r\nSubject:Isdinnerready?\r\nTo:a@b\r\n\r\nHi.\r\n".to_vec()
        );
    }

    #[test]
    fn simple_keeps_headers_as_they_are() {
        let msg = b"From: Joe  SixPack <joe@football.example.com>\nSubject: Is dinner\n\tready?\n\nHi. \n";
        assert_eq!(
            canon_msg(Canon::Simple, msg),
            b"From: Joe  SixPack <joe@football.example.com>\r\nSubject: Is dinner\r\n\tready?\r\n\r\nHi. \r\n".to_vec()
        );
    }

    #[test]
    fn nofws_body_whitespace() {
        // Every SP and TAB inside body lines goes; lines stay lines.
        let msg = b"A: b\n\n  We lost the game.\tAre you\n hungry yet?  \n";
        assert_eq!(canon_msg(Canon::Nofws, msg), b"A:b\r\n\r\nWelostthegame.Areyou\r\nhungryyet?\r\n".to_vec());
    }

    #[test]
    fn trailing_empty_lines_are_dropped() {
        let msg = b"A: b\n\nHi.\n\n\n";
        assert_eq!(canon_msg(Canon::Simple, msg), b"A: b\r\n\r\nHi.\r\n".to_vec());
        assert_eq!(canon_msg(Canon::Nofws, msg), b"A:b\r\n\r\nHi.\r\n".to_vec());
        // nofws: lines that are blank after stripping are empty lines too.
        let msg = b"A: b\n\nHi.\n \t\n\t\n";
        assert_eq!(canon_msg(Canon::Nofws, msg), b"A:b\r\n\r\nHi.\r\n".to_vec());
        assert_eq!(canon_msg(Canon::Simple, msg), b"A: b\r\n\r\nHi.\r\n \t\r\n\t\r\n".to_vec());
        // Empty lines inside the body stay.
        let msg = b"A: b\n\n\nHi.\n\nthere\n\n";
        assert_eq!(canon_msg(Canon::Simple, msg), b"A: b\r\n\r\n\r\nHi.\r\n\r\nthere\r\n".to_vec());
    }

    #[test]
    fn empty_body_drops_the_separator() {
        for msg in [&b"A: b\n\n"[..], b"A: b\n", b"A: b\n\n\n\n", b"A: b\r\n\r\n"] {
            assert_eq!(canon_msg(Canon::Simple, msg), b"A: b\r\n".to_vec(), "{msg:?}");
            assert_eq!(canon_msg(Canon::Nofws, msg), b"A:b\r\n".to_vec(), "{msg:?}");
        }
        assert_eq!(canon_msg(Canon::Nofws, b"A: b\n\n  \n\t\n"), b"A:b\r\n".to_vec());
        assert_eq!(canon_msg(Canon::Simple, b"A: b\n\n  \n"), b"A: b\r\n\r\n  \r\n".to_vec());
    }

    #[test]
    fn last_line_without_newline_is_ended() {
        assert_eq!(canon_msg(Canon::Simple, b"A: b\n\nHi"), b"A: b\r\n\r\nHi\r\n".to_vec());
        assert_eq!(canon_msg(Canon::Nofws, b"A: b\n\nH i\r"), b"A:b\r\n\r\nHi\r\n".to_vec());
    }

    #[test]
    fn crlf_input_is_the_same_as_lf_input() {
        let lf = b"From: a@b.c\nSubject: x\n y\n\nline 1\n\nline 2\n\n";
        let crlf = b"From: a@b.c\r\nSubject: x\r\n y\r\n\r\nline 1\r\n\r\nline 2\r\n\r\n";
        for c in [Canon::Simple, Canon::Nofws] {
            assert_eq!(canon_msg(c, lf), canon_msg(c, crlf));
        }
    }

    #[test]
    fn bare_cr() {
        assert_eq!(canon_msg(Canon::Simple, b"A: b\n\na\rb\n"), b"A: b\r\n\r\na\rb\r\n".to_vec());
        assert_eq!(canon_msg(Canon::Nofws, b"A: b\n\na\rb\n"), b"A:b\r\n\r\nab\r\n".to_vec());
    }

    #[test]
    fn chunking_does_not_matter() {
        let bodies: &[&[u8]] = &[
            b"a  b\r\n\r\n c\t\r\n\r\n",
            b"x\r\ry\r\n\r\n",
            b"\r\n\r\nfoo\r",
            b"tail  ",
            b"\r",
            b"  \n\t\n",
            b"a\n\nb\n\n\n",
        ];
        for b in bodies {
            for c in [Canon::Simple, Canon::Nofws] {
                let (x, y) = bytewise(c, &[b"A: b\n"], b);
                assert_eq!(x, y, "{c:?} {b:?}");
            }
        }
    }

    #[test]
    fn only_fields_below_the_signature() {
        let h = Headers::parse(
            b"Received: x\nDomainKey-Signature: a=rsa-sha1; b=x\nFrom: a@b.c\nTo: d@e.f\nSubject: s\nTo: g@h.i\n"
                .to_vec(),
        );
        assert_eq!(select_fields(&h, 2, None), vec![2, 3, 4, 5]);
        // h=: all occurrences of a listed name, at the position of its (last) mention.
        let names = |s: &str| s.split(':').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(select_fields(&h, 2, Some(&names("from:to:subject"))), vec![2, 3, 5, 4]);
        // Listing every instance in order gives the message order (what our signer writes).
        assert_eq!(select_fields(&h, 2, Some(&names("from:to:subject:to"))), vec![2, 3, 4, 5]);
        assert_eq!(select_fields(&h, 2, Some(&names("From : Received"))), vec![2]);
        assert_eq!(select_fields(&h, 0, Some(&names("received:from"))), vec![0, 2]);
    }
}
