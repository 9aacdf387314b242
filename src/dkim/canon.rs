//! Canonicalization (RFC 6376 §3.4) of our LF-ended input into the CRLF wire form that the hashes
//! are computed over. A CR right before an LF is part of the line end, as
//! indimail's libdkim and the verifiers we test against read it.
//!
//! The body canonicalizer is a streaming state machine: it never holds more than one output
//! block, whatever the length of a line or of the message.

use super::{Canon, HashAlg};
use crate::message::{Field, Headers};
use ring::digest;

/// Canonical bytes are gathered in a buffer of this size and hashed in one `update` each: a
/// call per line costs more than the hashing of the line, and the buffer stays in L1 cache.
const FLUSH_AT: usize = 16 * 1024;
/// Room past `FLUSH_AT` for one chunk written by whole 64-byte stores: the chunk, a CR per LF
/// and the overshoot of the last store.
const SLACK: usize = 256;
/// The fast path looks at the input in chunks of this size, one bit per byte.
const CHUNK: usize = 64;

/// Where a chunk's line feeds, carriage returns, spaces and tabs are (bit i: byte i).
#[derive(Clone, Copy)]
struct Masks {
    lf: u64,
    cr: u64,
    sp: u64,
    tab: u64,
}

/// What the fast path needs of one chunk: the line feeds to write as CR LF, and whether
/// anything in it needs the general rules (`bad`).
#[derive(Clone, Copy, Default)]
struct Chunk {
    lf: u64,
    bad: u64,
}

/// The fast path's verdict on a chunk, from its masks, the two bytes before it and the one
/// after it. A chunk is left to the general rules when it holds an empty line (its trailing
/// CR LF may vanish), a CR LF split by its end, or, relaxed, a tab or a space followed by
/// white space or a line end (a run to shorten, or trailing white space). What is left is
/// exactly what canonicalization copies as it is, with a CR added before a bare LF.
#[inline(always)]
fn chunk_flags(m: Masks, prev: [u8; 2], next: u8, relaxed: bool) -> Chunk {
    let [p2, p1] = prev;
    // An LF right after an LF ends an empty line.
    let mut bad = m.lf & ((m.lf << 1) | u64::from(p1 == b'\n'));
    let mut lf = m.lf;
    if m.cr != 0 || p1 == b'\r' {
        let cr_before = (m.cr << 1) | u64::from(p1 == b'\r');
        let lf_two_before = (m.lf << 2) | (u64::from(p1 == b'\n') << 1) | u64::from(p2 == b'\n');
        // CR LF right after an LF: an empty line too; a CR LF across the chunk's end.
        bad |= m.lf & cr_before & lf_two_before;
        bad |= m.cr & (u64::from(next == b'\n') << 63);
        lf &= !cr_before;
    }
    if relaxed {
        let any = m.sp | m.tab | m.lf | m.cr;
        let next_any = matches!(next, b' ' | b'\t' | b'\n' | b'\r');
        bad |= m.tab | (m.sp & ((any >> 1) | (u64::from(next_any) << 63)));
    }
    Chunk { lf, bad }
}

/// The masks of one chunk, a byte at a time: the reference for the vector versions, and the
/// fast path's classifier on other processors.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn masks_bytewise(c: &[u8; CHUNK]) -> Masks {
    let mut m = Masks { lf: 0, cr: 0, sp: 0, tab: 0 };
    for (i, &b) in c.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b'\n' => m.lf |= bit,
            b'\r' => m.cr |= bit,
            b' ' => m.sp |= bit,
            b'\t' => m.tab |= bit,
            _ => {}
        }
    }
    m
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BodyHasher, Masks, CHUNK};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub(super) fn masks_avx2(c: &[u8; CHUNK]) -> Masks {
        // SAFETY: both loads read 32 bytes inside the 64 of `c`.
        #[allow(unsafe_code)]
        let (a, b) = unsafe {
            let p = c.as_ptr().cast::<__m256i>();
            (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)))
        };
        let m = |x: u8| {
            let x = _mm256_set1_epi8(x.cast_signed());
            let lo = _mm256_movemask_epi8(_mm256_cmpeq_epi8(a, x)).cast_unsigned();
            let hi = _mm256_movemask_epi8(_mm256_cmpeq_epi8(b, x)).cast_unsigned();
            u64::from(lo) | (u64::from(hi) << 32)
        };
        Masks { lf: m(b'\n'), cr: m(b'\r'), sp: m(b' '), tab: m(b'\t') }
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn masks_sse2(c: &[u8; CHUNK]) -> Masks {
        // SAFETY: the four loads read 16 bytes each inside the 64 of `c`.
        #[allow(unsafe_code)]
        let v: [__m128i; 4] = std::array::from_fn(|k| unsafe { _mm_loadu_si128(c.as_ptr().cast::<__m128i>().add(k)) });
        let m = |x: u8| {
            let x = _mm_set1_epi8(x.cast_signed());
            v.iter().enumerate().fold(0u64, |acc, (k, v)| {
                let bits = _mm_movemask_epi8(_mm_cmpeq_epi8(*v, x)).cast_unsigned();
                acc | (u64::from(bits) << (16 * k))
            })
        };
        Masks { lf: m(b'\n'), cr: m(b'\r'), sp: m(b' '), tab: m(b'\t') }
    }

    impl BodyHasher {
        #[target_feature(enable = "avx2")]
        pub(super) fn chunks_avx2(&mut self, data: &[u8]) -> usize {
            self.chunks_with(data, |c| masks_avx2(c))
        }

        #[target_feature(enable = "sse2")]
        pub(super) fn chunks_sse2(&mut self, data: &[u8]) -> usize {
            self.chunks_with(data, |c| masks_sse2(c))
        }
    }
}

/// Canonicalizes and hashes a body fed in arbitrary pieces.
///
/// Most chunks of 64 bytes need nothing but a CR before each LF (see `chunk_flags`): those are
/// copied with whole-chunk stores; the others, and the few bytes at the end of each piece, go
/// through the general rules one line at a time.
pub struct BodyHasher {
    canon: Canon,
    hash: HashAlg,
    ctx: digest::Context,
    /// `l=`: hash only this many canonical bytes.
    limit: Option<u64>,
    /// Canonical bytes produced (hashed or not).
    total: u64,
    /// Empty lines seen but not yet emitted (they vanish if only empty lines follow).
    blank: u64,
    /// The current line has produced output.
    in_line: bool,
    /// Relaxed: whitespace seen since the last output byte of this line.
    pending_ws: bool,
    /// The last input byte was a CR: line end if an LF follows, data otherwise.
    cr_held: bool,
    /// The last two input bytes (two LFs before the body: a line starts there).
    prev: [u8; 2],
    /// Canonical bytes not yet hashed: `buf[..fill]`; `FLUSH_AT + SLACK` long, allocated at the
    /// first byte.
    buf: Vec<u8>,
    fill: usize,
}

impl BodyHasher {
    pub fn new(canon: Canon, hash: HashAlg, limit: Option<u64>) -> BodyHasher {
        BodyHasher {
            canon,
            hash,
            ctx: digest::Context::new(hash.ring()),
            limit,
            total: 0,
            blank: 0,
            in_line: false,
            pending_ws: false,
            cr_held: false,
            prev: [b'\n', b'\n'],
            buf: Vec::new(),
            fill: 0,
        }
    }

    pub(crate) fn canon(&self) -> Canon {
        self.canon
    }

    pub(crate) fn hash_alg(&self) -> HashAlg {
        self.hash
    }

    pub(crate) fn limit(&self) -> Option<u64> {
        self.limit
    }

    pub fn update(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // With l= every byte goes through `emit`, which stops at the limit.
        let pos = if self.limit.is_none() && data.len() > CHUNK { self.chunks(data) } else { 0 };
        self.update_lines(&data[pos..]);
        self.prev = match data {
            [.., a, b] => [*a, *b],
            [b] => [self.prev[1], *b],
            [] => self.prev,
        };
    }

    /// The chunks of `data` that have a byte after them, classified with the widest vector
    /// instructions the processor has; returns where they end.
    fn chunks(&mut self, data: &[u8]) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor has AVX2 (checked on the line above).
                #[allow(unsafe_code)]
                return unsafe { self.chunks_avx2(data) };
            }
            // SAFETY: SSE2 is part of every x86_64 processor.
            #[allow(unsafe_code)]
            return unsafe { self.chunks_sse2(data) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.chunks_with(data, masks_bytewise)
    }

    /// Each chunk that `chunk_flags` finds clean is copied with whole-chunk stores, a CR added
    /// before each bare LF; the others go through the general rules.
    #[inline(always)]
    fn chunks_with(&mut self, data: &[u8], masks: impl Fn(&[u8; CHUNK]) -> Masks) -> usize {
        if self.buf.len() < FLUSH_AT + SLACK {
            self.buf = vec![0; FLUSH_AT + SLACK];
        }
        let relaxed = self.canon == Canon::Relaxed;
        let mut prev = self.prev;
        let mut pos = 0;
        while let (Some(c), Some(&next)) = (data.get(pos..pos + CHUNK), data.get(pos + CHUNK)) {
            let Some(c) = c.first_chunk::<CHUNK>() else { break };
            let f = chunk_flags(masks(c), prev, next, relaxed);
            if f.bad == 0 && !self.pending_ws && !self.cr_held {
                if self.blank > 0 {
                    // Empty lines before content: they stay.
                    self.start_line();
                }
                if self.fill >= FLUSH_AT {
                    self.flush();
                }
                let o = self.fill;
                let Some(out) = self.buf.get_mut(o..o + 3 * CHUNK).and_then(|b| b.first_chunk_mut::<{ 3 * CHUNK }>())
                else {
                    // Not reached: fill < FLUSH_AT here, and the buffer is SLACK longer.
                    self.update_lines(c);
                    pos += CHUNK;
                    continue;
                };
                out[..CHUNK].copy_from_slice(c);
                // Each CR shifts the rest of the chunk by one: store it again from the LF on,
                // 64 bytes from the input when it has them. `at` (a bit number plus the CRs
                // before it) stays below 128: the masks keep the bounds checks out.
                let mut added = 0;
                let mut lf = f.lf;
                while lf != 0 {
                    let j = lf.trailing_zeros() as usize & (CHUNK - 1);
                    let at = (j + added) & (2 * CHUNK - 1);
                    out[at] = b'\r';
                    added += 1;
                    let dst = &mut out[at + 1..at + 1 + CHUNK];
                    match data.get(pos + j..pos + j + CHUNK) {
                        Some(src) => dst.copy_from_slice(src),
                        None => dst[..CHUNK - j].copy_from_slice(&c[j..]),
                    }
                    lf &= lf - 1;
                }
                self.fill = o + CHUNK + added;
                self.total += (CHUNK + added) as u64;
                self.in_line = c[CHUNK - 1] != b'\n';
            } else {
                self.update_lines(c);
            }
            prev = [c[CHUNK - 2], c[CHUNK - 1]];
            pos += CHUNK;
        }
        pos
    }

    /// The general rules, a line at a time.
    fn update_lines(&mut self, mut data: &[u8]) {
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
        let mut pos = 0;
        while let Some(p) = memchr::memchr(b'\n', &data[pos..]) {
            let mut seg = &data[pos..pos + p];
            if let [rest @ .., b'\r'] = seg {
                seg = rest;
            }
            self.content(seg);
            self.end_line();
            pos += p + 1;
        }
        let data = &data[pos..];
        if !data.is_empty() {
            let mut seg = data;
            if let [rest @ .., b'\r'] = seg {
                seg = rest;
                self.cr_held = true;
            }
            self.content(seg);
        }
    }

    /// Ends the body; returns the hash and the canonical length (all of it, not only up to l=).
    pub fn finish(mut self) -> (Vec<u8>, u64) {
        if self.cr_held {
            self.cr_held = false;
            self.content(b"\r");
        }
        if self.in_line {
            self.emit(b"\r\n");
            self.in_line = false;
        }
        if self.total == 0 && self.canon == Canon::Simple {
            self.emit(b"\r\n");
        }
        self.flush();
        let total = self.total;
        (self.ctx.finish().as_ref().to_vec(), total)
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
            Canon::Relaxed => {
                let mut i = 0;
                while i < seg.len() {
                    match memchr::memchr2(b' ', b'\t', &seg[i..]) {
                        Some(p) => {
                            if p > 0 {
                                self.word(&seg[i..i + p]);
                            }
                            let mut j = i + p + 1;
                            while j < seg.len() && (seg[j] == b' ' || seg[j] == b'\t') {
                                j += 1;
                            }
                            self.pending_ws = true;
                            i = j;
                        }
                        None => {
                            self.word(&seg[i..]);
                            break;
                        }
                    }
                }
            }
        }
    }

    fn word(&mut self, w: &[u8]) {
        self.start_line();
        if self.pending_ws {
            self.pending_ws = false;
            self.emit(b" ");
        }
        self.emit(w);
    }

    fn start_line(&mut self) {
        if !self.in_line {
            self.in_line = true;
            while self.blank > 0 {
                self.blank -= 1;
                self.emit(b"\r\n");
            }
        }
    }

    fn end_line(&mut self) {
        self.pending_ws = false;
        if self.in_line {
            self.emit(b"\r\n");
            self.in_line = false;
        } else {
            self.blank += 1;
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        let take = match self.limit {
            // At most bytes.len(), so it fits.
            Some(l) => usize::try_from(l.saturating_sub(self.total)).map_or(bytes.len(), |n| n.min(bytes.len())),
            None => bytes.len(),
        };
        self.total += bytes.len() as u64;
        let mut rest = &bytes[..take];
        if rest.is_empty() {
            return;
        }
        if self.buf.len() < FLUSH_AT + SLACK {
            self.buf = vec![0; FLUSH_AT + SLACK];
        }
        while !rest.is_empty() {
            if self.fill >= FLUSH_AT {
                self.flush();
            }
            let n = rest.len().min(FLUSH_AT - self.fill);
            self.buf[self.fill..self.fill + n].copy_from_slice(&rest[..n]);
            self.fill += n;
            rest = &rest[n..];
        }
    }

    fn flush(&mut self) {
        if self.fill > 0 {
            self.ctx.update(&self.buf[..self.fill]);
            self.fill = 0;
        }
    }
}

/// One header field, canonicalized, with its CRLF, appended to `out`.
pub fn header(canon: Canon, headers: &Headers, f: &Field, out: &mut Vec<u8>) {
    match canon {
        Canon::Simple => simple_header(headers.raw(f), out),
        Canon::Relaxed => relaxed_header(headers.name(f), headers.value(f), out),
    }
}

/// Simple: the field as it is, each line end written CRLF, a missing last line end added.
pub fn simple_header(raw: &[u8], out: &mut Vec<u8>) {
    let mut rest = raw;
    while let Some(p) = memchr::memchr(b'\n', rest) {
        let mut line = &rest[..p];
        if let [l @ .., b'\r'] = line {
            line = l;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        rest = &rest[p + 1..];
    }
    if !rest.is_empty() {
        out.extend_from_slice(rest);
        out.extend_from_slice(b"\r\n");
    }
}

/// Relaxed: lowercase name, unfolded value with whitespace runs as one SP, trimmed, CRLF.
pub fn relaxed_header(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.extend(name.trim_ascii().iter().map(|c| c.to_ascii_lowercase()));
    out.push(b':');
    relaxed_value(value, out);
    out.extend_from_slice(b"\r\n");
}

fn relaxed_value(value: &[u8], out: &mut Vec<u8>) {
    let mut ws = false;
    let mut started = false;
    let mut i = 0;
    while i < value.len() {
        let c = value[i];
        let line_end = c == b'\n' || (c == b'\r' && value.get(i + 1) == Some(&b'\n'));
        if line_end {
            i += 1;
            continue;
        }
        if c == b' ' || c == b'\t' {
            ws = true;
        } else {
            if ws && started {
                out.push(b' ');
            }
            ws = false;
            started = true;
            out.push(c);
        }
        i += 1;
    }
}

/// The signed header data (RFC 6376 §5.4): the fields named in `h=`, each name taking the
/// bottom-most instance not yet used; a name with no instance left contributes nothing
/// (oversigning). Fields above `skip_from` (the signature header's own index) are all eligible;
/// the caller excludes the signature field itself by passing its index in `exclude`.
pub fn signed_headers(canon: Canon, headers: &Headers, names: &[String], exclude: Option<usize>, out: &mut Vec<u8>) {
    // Lowercase name -> indices of its fields, top to bottom; each h= entry takes the last one
    // left. Linear in fields + names: a header block of 100,000 fields and an h= of as many
    // names cost milliseconds (a scan per name would take minutes).
    let mut by_name: std::collections::HashMap<Vec<u8>, Vec<usize>> = std::collections::HashMap::new();
    for (i, f) in headers.fields.iter().enumerate() {
        if Some(i) != exclude {
            by_name.entry(headers.name(f).to_ascii_lowercase()).or_default().push(i);
        }
    }
    for name in names {
        let key = name.trim().as_bytes().to_ascii_lowercase();
        if let Some(i) = by_name.get_mut(&key).and_then(Vec::pop) {
            header(canon, headers, &headers.fields[i], out);
        }
    }
}

/// The signature header itself with the b= value removed and no trailing CRLF (§3.7).
/// `raw` is the whole field (name, colon, value, line ends).
pub fn signature_header(canon: Canon, raw: &[u8], out: &mut Vec<u8>) {
    let stripped = strip_b_value(raw);
    let start = out.len();
    match canon {
        Canon::Simple => simple_header(&stripped, out),
        Canon::Relaxed => {
            let colon = memchr::memchr(b':', &stripped).unwrap_or(0);
            let mut ne = colon;
            while ne > 0 && matches!(stripped[ne - 1], b' ' | b'\t') {
                ne -= 1;
            }
            relaxed_header(&stripped[..ne], &stripped[colon + 1..], out);
        }
    }
    if out.len() >= start + 2 && out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
}

/// Empties the value of the `b=` tag (not `bh=`), keeping everything else byte for byte.
pub fn strip_b_value(raw: &[u8]) -> Vec<u8> {
    let colon = memchr::memchr(b':', raw).map_or(0, |c| c + 1);
    let mut out = raw[..colon].to_vec();
    let v = &raw[colon..];
    let mut i = 0;
    // Walk tag by tag: a tag starts after ';' (or the value start), skipping FWS.
    loop {
        let seg_end = memchr::memchr(b';', &v[i..]).map_or(v.len(), |p| i + p);
        let seg = &v[i..seg_end];
        let name_start = seg.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
        let is_b = name_start.is_some_and(|s| {
            let rest = &seg[s..];
            rest.first() == Some(&b'b') && {
                let after = &rest[1..];
                let k = after.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
                k.is_some_and(|k| after[k] == b'=')
            }
        });
        if is_b {
            let eq = i + memchr::memchr(b'=', seg).unwrap_or(0);
            out.extend_from_slice(&v[i..=eq]);
            // Keep a trailing line end if the b= tag is the last thing in the field.
            if seg_end == v.len() {
                let tail = &v[eq + 1..];
                if tail.ends_with(b"\r\n") {
                    out.extend_from_slice(b"\r\n");
                } else if tail.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
        } else {
            out.extend_from_slice(seg);
        }
        if seg_end == v.len() {
            break;
        }
        out.push(b';');
        i = seg_end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn bh(canon: Canon, hash: HashAlg, body: &[u8]) -> String {
        let mut h = BodyHasher::new(canon, hash, None);
        h.update(body);
        base64::engine::general_purpose::STANDARD.encode(h.finish().0)
    }

    /// Feeds the body one byte at a time: the state machine must not depend on the chunking.
    fn bh_bytewise(canon: Canon, body: &[u8]) -> String {
        let mut h = BodyHasher::new(canon, HashAlg::Sha256, None);
        for b in body {
            h.update(std::slice::from_ref(b));
        }
        base64::engine::general_purpose::STANDARD.encode(h.finish().0)
    }

    fn canon_body(canon: Canon, body: &[u8]) -> Vec<u8> {
        // Recover the canonical bytes through l= accounting: compare against expected strings.
        let mut h = BodyHasher::new(canon, HashAlg::Sha256, None);
        h.update(body);
        let (hash, _) = h.finish();
        hash
    }

    fn sha(b: &[u8]) -> Vec<u8> {
        digest::digest(&digest::SHA256, b).as_ref().to_vec()
    }

    #[test]
    fn spec_vectors() {
        use Canon::*;
        use HashAlg::*;
        assert_eq!(bh(Simple, Sha256, b""), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
        assert_eq!(bh(Simple, Sha1, b""), "uoq1oCgLlTqpdDX/iUbLy7J1Wic=");
        assert_eq!(bh(Relaxed, Sha256, b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(bh(Relaxed, Sha1, b""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        let hello = "Ba3gj8+xBPQLJTahTfzW6RbWQ/XPgESxkCi2B66PSQg=";
        assert_eq!(bh(Simple, Sha256, b"Hello\r\n"), hello);
        assert_eq!(bh(Relaxed, Sha256, b"Hello\r\n"), hello);
        assert_eq!(bh(Relaxed, Sha256, b"Hello\r\n \r\n\t\r\n"), hello);
        assert_eq!(bh(Simple, Sha256, b"Hello\n"), hello);
        assert_eq!(bh(Simple, Sha256, b"Hello"), hello);
        assert_eq!(bh(Simple, Sha256, b"Hello\n\n\n"), hello);
        assert_eq!(bh(Relaxed, Sha256, b"Hello  \t\n\n \n"), hello);
    }

    #[test]
    fn rfc6376_examples() {
        // RFC 6376 §3.4.5.
        let body = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(canon_body(Canon::Relaxed, body), sha(b" C\r\nD E\r\n"));
        assert_eq!(canon_body(Canon::Simple, body), sha(b" C \r\nD \t E\r\n"));
        let mut out = Vec::new();
        relaxed_header(b"A", b" X\r\n", &mut out);
        relaxed_header(b"B ", b" Y\t\r\n\tZ  \r\n", &mut out);
        assert_eq!(out, b"a:X\r\nb:Y Z\r\n");
    }

    #[test]
    fn chunking_does_not_matter() {
        let bodies: &[&[u8]] = &[
            b"a  b\r\n\r\n c\t\r\n\r\n",
            b"x\r\ry\r\n\r\n",
            b"\r\n\r\nfoo\r",
            b"tail without newline  ",
            b"\r",
            b"  \n\t\n",
            b"a\n\nb\n\n\n",
        ];
        for b in bodies {
            for c in [Canon::Simple, Canon::Relaxed] {
                assert_eq!(bh_bytewise(c, b), bh(c, HashAlg::Sha256, b), "{c:?} {b:?}");
            }
        }
    }

    /// The relaxed fast path finds tabs and double spaces once per block: lines before, between
    /// and after them, a tab or double space at a line's start or end, and one right after a
    /// line end, must come out as when every line is searched.
    #[test]
    fn relaxed_block_search_matches_line_by_line() {
        let body = b"clean one\nclean two\r\nhas\ttab\nclean three\nhas  two\n\tlead\nx  \ntrail \nok\n  \nend\n";
        let want =
            b"clean one\r\nclean two\r\nhas tab\r\nclean three\r\nhas two\r\n lead\r\nx\r\ntrail\r\nok\r\n\r\nend\r\n";
        assert_eq!(canon_body(Canon::Relaxed, body), sha(want));
        assert_eq!(bh_bytewise(Canon::Relaxed, body), bh(Canon::Relaxed, HashAlg::Sha256, body));
        for split in 0..body.len() {
            let mut h = BodyHasher::new(Canon::Relaxed, HashAlg::Sha256, None);
            h.update(&body[..split]);
            h.update(&body[split..]);
            assert_eq!(h.finish().0, sha(want), "split at {split}");
        }
    }

    /// RFC 6376 §3.4.3 and §3.4.4 written plainly, over the whole body: lines split at LF, a
    /// CR right before the LF part of the line end, relaxed runs of SP/HT made one SP and
    /// dropped at the line end, empty lines at the end dropped, simple's empty body one CRLF.
    fn reference(canon: Canon, body: &[u8]) -> Vec<u8> {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let (mut line, ended) = match rest.iter().position(|&c| c == b'\n') {
                Some(p) => {
                    let l = &rest[..p];
                    rest = &rest[p + 1..];
                    (l.to_vec(), true)
                }
                None => {
                    let l = rest.to_vec();
                    rest = &[];
                    (l, false)
                }
            };
            if ended && line.last() == Some(&b'\r') {
                line.pop();
            }
            if canon == Canon::Relaxed {
                let mut out = Vec::new();
                let mut ws = false;
                for c in line {
                    if c == b' ' || c == b'\t' {
                        ws = true;
                    } else {
                        if ws {
                            out.push(b' ');
                        }
                        ws = false;
                        out.push(c);
                    }
                }
                line = out;
            }
            lines.push(line);
        }
        while lines.last().is_some_and(Vec::is_empty) {
            lines.pop();
        }
        let mut out = Vec::new();
        for l in &lines {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
        if out.is_empty() && canon == Canon::Simple {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// A small deterministic generator (xorshift), so that a failure is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }

    /// Bodies that exercise the 64-byte fast path and its borders: long clean stretches (copied
    /// whole), with the bytes that need the general rules (bare CR, bare LF, CR LF, SP/HT runs,
    /// trailing white space, empty lines, empty lines at the end) at random places, so that
    /// they fall on chunk borders, first and last bytes, and piece borders.
    fn random_body(r: &mut Rng) -> Vec<u8> {
        let len = r.below(700);
        let clean = r.below(4) == 0;
        let mut b = Vec::with_capacity(len + 4);
        while b.len() < len {
            let c = match r.below(if clean { 24 } else { 12 }) {
                0 | 4 => b'\n',
                1 | 5 => b' ',
                2 => b'\r',
                3 => b'\t',
                _ => b"abcdefgh"[r.below(8)],
            };
            b.push(c);
        }
        match r.below(4) {
            0 => b.extend_from_slice(b"\n\n\r\n"),
            1 => b.extend_from_slice(b" \t\r"),
            _ => {}
        }
        b
    }

    /// The streaming canonicalizer (its fast path and its general rules) against the plain
    /// reference, over random bodies cut into pieces of every size from 1 to 130 and at random.
    #[test]
    fn body_matches_reference_whatever_the_pieces() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let mut bodies: Vec<Vec<u8>> = (0..400).map(|_| random_body(&mut r)).collect();
        let line = b"the quick brown fox jumps over the lazy dog lorem ipsum dolor sit amet\n";
        bodies.push(line.iter().copied().cycle().take(5000).collect());
        bodies.push(line.iter().copied().cycle().take(5000).chain(*b"\n\n").collect());
        bodies.push(b"x\r\n".iter().copied().cycle().take(3000).collect());
        bodies.push(b"\n".repeat(300));
        bodies.push(b"ab \n".repeat(100));
        for (i, body) in bodies.iter().enumerate() {
            for canon in [Canon::Simple, Canon::Relaxed] {
                let want = reference(canon, body);
                let want_hash = sha(&want);
                let mut sizes: Vec<usize> = (1..=130).collect();
                sizes.extend((0..20).map(|_| 1 + r.below(400)));
                sizes.push(usize::MAX);
                for size in sizes {
                    let mut h = BodyHasher::new(canon, HashAlg::Sha256, None);
                    for piece in body.chunks(size.min(body.len().max(1))) {
                        h.update(piece);
                    }
                    let (hash, n) = h.finish();
                    assert_eq!(n, want.len() as u64, "body {i} {canon:?} pieces of {size}: length");
                    assert_eq!(hash, want_hash, "body {i} {canon:?} pieces of {size}: {body:?}");
                }
            }
        }
    }

    /// The vector classifiers agree with the bytewise one on every byte value at every place.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn chunk_masks_agree() {
        let mut r = Rng(42);
        let check = |c: &[u8; CHUNK]| {
            let want = masks_bytewise(c);
            // SAFETY: SSE2 is part of every x86_64 processor.
            #[allow(unsafe_code)]
            let got = unsafe { x86::masks_sse2(c) };
            assert_eq!((got.lf, got.cr, got.sp, got.tab), (want.lf, want.cr, want.sp, want.tab));
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor has AVX2 (checked on the line above).
                #[allow(unsafe_code)]
                let got = unsafe { x86::masks_avx2(c) };
                assert_eq!((got.lf, got.cr, got.sp, got.tab), (want.lf, want.cr, want.sp, want.tab));
            }
        };
        for v in 0..=255u8 {
            check(&[v; CHUNK]);
        }
        for _ in 0..2000 {
            let mut c = [0u8; CHUNK];
            for b in c.iter_mut() {
                *b = match r.below(3) {
                    0 => b"\n\r \t"[r.below(4)],
                    _ => (r.next() & 0xff) as u8,
                };
            }
            check(&c);
        }
    }

    #[test]
    fn bare_cr_is_data() {
        assert_eq!(canon_body(Canon::Simple, b"a\rb\n"), sha(b"a\rb\r\n"));
        assert_eq!(canon_body(Canon::Simple, b"a\r"), sha(b"a\r\r\n"));
        assert_eq!(canon_body(Canon::Relaxed, b"a \r\n"), sha(b"a\r\n"));
    }

    #[test]
    fn length_limit() {
        let mut h = BodyHasher::new(Canon::Relaxed, HashAlg::Sha256, Some(3));
        h.update(b"Hello\n");
        let (hash, total) = h.finish();
        assert_eq!(total, 7);
        assert_eq!(hash, sha(b"Hel"));
    }

    #[test]
    fn strip_b() {
        assert_eq!(
            strip_b_value(b"DKIM-Signature: v=1; bh=abc; b=XYZ\n\t123;\n"),
            b"DKIM-Signature: v=1; bh=abc; b=;\n".to_vec()
        );
        assert_eq!(strip_b_value(b"DKIM-Signature: v=1; b=XYZ\n\t123\n"), b"DKIM-Signature: v=1; b=\n".to_vec());
        let mut out = Vec::new();
        signature_header(Canon::Relaxed, b"DKIM-Signature: v=1;\n\tb=XYZ\n", &mut out);
        assert_eq!(out, b"dkim-signature:v=1; b=");
    }

    /// Bottom-up matching, oversigning, the excluded signature field, and linear time for a
    /// block of 100,000 fields signed all at once.
    #[test]
    fn signed_headers_many_fields() {
        let h = Headers::parse(b"A: 1\nB: 2\nA: 3\nDKIM-Signature: x\n".to_vec());
        let names: Vec<String> = ["a", "A ", "a", "b", "dkim-signature"].iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        signed_headers(Canon::Relaxed, &h, &names, Some(3), &mut out);
        assert_eq!(out, b"a:3\r\na:1\r\nb:2\r\n");

        let mut block = Vec::new();
        for i in 0..100_000 {
            block.extend_from_slice(format!("Comments: {i}\n").as_bytes());
        }
        let h = Headers::parse(block);
        let names = vec!["comments".to_string(); 100_001];
        let t = std::time::Instant::now();
        let mut out = Vec::new();
        signed_headers(Canon::Relaxed, &h, &names, None, &mut out);
        assert!(out.starts_with(b"comments:99999\r\n"));
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn simple_header_crlf() {
        let mut out = Vec::new();
        simple_header(b"Subject: a\n b\r\n", &mut out);
        assert_eq!(out, b"Subject: a\r\n b\r\n");
    }
}
