//! The message as read from fd 0: the header block (kept in memory and parsed into fields) and
//! the spool that holds every byte for the next program (memory below a threshold, an unlinked
//! 0600 file in `$TMPDIR` above it).

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;

/// Bounds of the header block, the part of the message held in memory and parsed.
/// **Decision:** a message over either bound is refused permanently (`#5.3.4`, reported as
/// `CUSTOM_ERRORS` says, like any refusal), as sendmail answers "552 5.6.0 Headers too large"
/// (Postfix keeps only 100 KB of header). No real message comes near them; queueing such a
/// message unsigned or unverified instead would let a sender slip past the `DKIMVERIFY`
/// refusals, and refusing keeps memory and time bounded whatever arrives on fd 0.
pub(crate) const MAX_HEADER_BYTES: usize = 16 << 20;
/// See [`MAX_HEADER_BYTES`].
pub(crate) const MAX_HEADER_FIELDS: usize = 100_000;

/// The number of fields `Headers::parse` would make of `block`, without making them.
pub fn count_fields(block: &[u8]) -> usize {
    let mut n = 0usize;
    let mut pos = 0;
    while pos < block.len() {
        if n == 0 || !matches!(block[pos], b' ' | b'\t') {
            n += 1;
        }
        pos = memchr::memchr(b'\n', &block[pos..]).map_or(block.len(), |i| pos + i + 1);
    }
    n
}

/// One header field: byte ranges into the header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The whole field, from its name to and including its last line end.
    pub raw: Range<usize>,
    /// The name, without the colon and without whitespace before the colon.
    pub name: Range<usize>,
    /// The value after the colon, with its line ends (folded).
    pub value: Range<usize>,
}

/// The parsed header block.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    pub(crate) block: Vec<u8>,
    pub fields: Vec<Field>,
}

impl Headers {
    /// Splits a header block (everything before the body, without the blank separator line).
    /// A line without a colon that is not a continuation is kept as a field with an empty name;
    /// nothing is dropped, so the block is always reproduced exactly.
    pub fn parse(block: Vec<u8>) -> Headers {
        let mut fields: Vec<Field> = Vec::new();
        let mut pos = 0;
        while pos < block.len() {
            let end = memchr::memchr(b'\n', &block[pos..]).map_or(block.len(), |i| pos + i + 1);
            let first = block[pos];
            let continuation = first == b' ' || first == b'\t';
            if let (true, Some(f)) = (continuation, fields.last_mut()) {
                f.raw.end = end;
                f.value.end = end;
            } else {
                let line = &block[pos..end];
                match memchr::memchr(b':', line) {
                    Some(c) => {
                        let mut ne = pos + c;
                        while ne > pos && matches!(block[ne - 1], b' ' | b'\t') {
                            ne -= 1;
                        }
                        fields.push(Field { raw: pos..end, name: pos..ne, value: pos + c + 1..end });
                    }
                    None => fields.push(Field { raw: pos..end, name: pos..pos, value: pos..end }),
                }
            }
            pos = end;
        }
        Headers { block, fields }
    }

    pub fn name(&self, f: &Field) -> &[u8] {
        &self.block[f.name.clone()]
    }

    pub fn raw(&self, f: &Field) -> &[u8] {
        &self.block[f.raw.clone()]
    }

    /// The header block without the fields at the indices `gone` (as the queue will get it when
    /// they are removed), for a signature that must cover only what is queued. Linear.
    pub(crate) fn without(&self, gone: &[usize]) -> Headers {
        let mut drop = vec![false; self.fields.len()];
        for &i in gone {
            if let Some(d) = drop.get_mut(i) {
                *d = true;
            }
        }
        let mut block = Vec::with_capacity(self.block.len());
        for (f, d) in self.fields.iter().zip(drop) {
            if !d {
                block.extend_from_slice(self.raw(f));
            }
        }
        Headers::parse(block)
    }

    pub fn value(&self, f: &Field) -> &[u8] {
        &self.block[f.value.clone()]
    }

    /// Fields with this name (case-insensitive), top to bottom.
    pub(crate) fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| self.name(f).eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The unfolded value of the first field with this name, trimmed.
    pub fn first_value(&self, name: &str) -> Option<Vec<u8>> {
        self.named(name).next().map(|f| unfold(self.value(f)))
    }

    /// Every field as some reader may see it, top to bottom ([`View`]): the one notion of field
    /// boundaries of every decision that picks fields by name (the From of DMARC, of the
    /// signing domain and of the verifiers; the forged status fields). Linear: each field is
    /// searched for bare CRs once, and each byte is in at most three views.
    pub fn views(&self) -> impl Iterator<Item = View<'_>> + '_ {
        self.fields.iter().enumerate().flat_map(move |(index, f)| {
            let raw = self.raw(f);
            let whole = View { index, kind: ViewKind::Whole, name: self.name(f), value: self.value(f) };
            // Empty (no allocation) unless the field has a bare CR.
            let mut parts = Vec::new();
            let mut cut: Option<usize> = None;
            // A bare CR before white space folds, to such a reader as to RFC 5322 a CRLF does.
            let crs =
                memchr::memchr_iter(b'\r', raw).filter(|&i| !matches!(raw.get(i + 1), Some(b'\n' | b' ' | b'\t')));
            for end in crs.chain(std::iter::once(raw.len())) {
                let (kind, part) = match cut {
                    None if end == raw.len() => break,
                    None => (ViewKind::Head, &raw[..end]),
                    Some(c) => (ViewKind::AfterCr, &raw[c + 1..end]),
                };
                if let Some(colon) = memchr::memchr(b':', part) {
                    parts.push(View { index, kind, name: part[..colon].trim_ascii(), value: &part[colon + 1..] });
                }
                cut = Some(end);
            }
            std::iter::once(whole).chain(parts)
        })
    }

    /// The [`views`](Headers::views) with this name (case-insensitive).
    pub(crate) fn views_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = View<'a>> + 'a {
        self.views().filter(move |v| v.name.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// A field as a reader may see it. RFC 5322 reads each field whole; several mail readers end a
/// line at a bare CR (a CR not followed by LF), so they see the part of a field before its
/// first bare CR, and each part after one, as fields of their own (`Subject: hi<CR>From: x`),
/// unless the part starts with white space (a folded line to them too). A part without a colon
/// is no field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View<'a> {
    /// The field (of [`Headers::fields`]) the view is part of.
    pub(crate) index: usize,
    pub(crate) kind: ViewKind,
    /// The name, without surrounding white space.
    pub(crate) name: &'a [u8],
    /// The value after the colon, folded, up to the next bare CR for a part.
    pub(crate) value: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ViewKind {
    /// The whole field, as RFC 5322 reads it.
    Whole,
    /// The part before the field's first bare CR: the same field to a reader that splits there.
    Head,
    /// A part after a bare CR: one more field to such a reader.
    AfterCr,
}

impl ViewKind {
    /// Whether a reader sees one more field here (a head is the field itself, cut short).
    pub(crate) fn is_field(self) -> bool {
        self != ViewKind::Head
    }
}

/// The author domain (RFC 5322.From): the one domain of every mailbox of every `From:` field as
/// any reader sees it ([`Headers::views`]), lowercased. DMARC, the signing domain and every
/// other check that needs "the" From use this. A hidden `From:` after a bare CR counts, so a
/// message that shows another author to some readers has several domains. Errors: no From
/// address, an address without a domain, several domains.
pub fn author_domain(headers: &Headers) -> std::result::Result<String, &'static str> {
    let mut domain: Option<String> = None;
    for v in headers.views_named("From") {
        for d in address_domains(&unfold(v.value)) {
            let Some(d) = d else {
                return Err("a From address without a domain");
            };
            match &domain {
                None => domain = Some(d),
                Some(first) if *first == d => {}
                Some(_) => return Err("From names several domains"),
            }
        }
    }
    domain.ok_or("no From address")
}

/// Removes line ends (LF and the CR before it) and trims surrounding whitespace.
pub fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\r' && v.get(i + 1) == Some(&b'\n') {
            i += 2;
            continue;
        }
        if v[i] == b'\n' {
            i += 1;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out.trim_ascii().to_vec()
}

/// The domain of the first address in a header value: inside `<>` if present, else the bare
/// address; the part after the last `@`, lowercased, without a trailing dot. `<`, `>` and `@`
/// in a quoted display name do not count. Unbalanced parentheses or quotes are tolerated (see
/// [`crate::rfc5322::remove_comments`]); after an unclosed quote, its contents count.
pub fn address_domain(value: &[u8]) -> Option<String> {
    // The first element of the list, split as address_domains splits it: `a <x@y>, b <z@w>` is
    // y, not the w a search from the first `<` to the last `>` found.
    address_domains(value).into_iter().next().flatten()
}

/// The domain of one address (`local@domain`, a route before it allowed): after the last `@`,
/// lowercased, without a trailing dot; `None` when there is none or it is not made of
/// letters, digits, `-`, `.` and `_`.
fn spec_domain(addr: &[u8]) -> Option<String> {
    let addr = addr.trim_ascii();
    let at = memchr::memrchr(b'@', addr)?;
    let dom = addr[at + 1..].trim_ascii();
    let dom = dom.strip_suffix(b".").unwrap_or(dom);
    if dom.is_empty() || !dom.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_') {
        return None;
    }
    Some(String::from_utf8_lossy(dom).to_ascii_lowercase())
}

/// The domain of every address in an address-list value (RFC 5322 §3.4: `From:` may name
/// several mailboxes, in groups too), in order; `None` for an element that has no domain.
/// Empty elements and empty groups (`undisclosed-recipients:;`) give nothing. Elements are split
/// at `,` outside `<>`, quoted strings and comments; a group's display name ends at `:`. One
/// pass over the value, then one over each element: linear. DMARC needs every author domain
/// where [`address_domain`] gives only the first.
pub fn address_domains(value: &[u8]) -> Vec<Option<String>> {
    let m = crate::rfc5322::mask(value);
    let v = if m.open_quote { m.text } else { m.masked };
    let mut out = Vec::new();
    let mut element = |e: &[u8]| {
        let inner = match (memchr::memchr(b'<', e), memchr::memrchr(b'>', e)) {
            (Some(a), Some(b)) if a < b => &e[a + 1..b],
            _ => e,
        };
        if !e.trim_ascii().is_empty() {
            out.push(spec_domain(inner));
        }
    };
    let (mut start, mut angle) = (0, false);
    for (i, &c) in v.iter().enumerate() {
        match c {
            b'<' => angle = true,
            b'>' => angle = false,
            b':' if !angle => start = i + 1,
            b',' | b';' if !angle => {
                element(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    element(&v[start..]);
    out
}

/// Where the header block ends in `data`: `Some((block_end, body_start))` once a blank line is
/// seen. `block_end` excludes the blank line; `body_start` is after it.
pub fn find_header_end(data: &[u8], from: usize) -> Option<(usize, usize)> {
    // A blank line is an LF at the start of the data or right after another line end.
    if from == 0 {
        if data.first() == Some(&b'\n') {
            return Some((0, 1));
        }
        if data.starts_with(b"\r\n") {
            return Some((0, 2));
        }
    }
    let mut i = from;
    while let Some(p) = memchr::memchr(b'\n', &data[i..]) {
        let lf = i + p;
        let next = &data[lf + 1..];
        if next.first() == Some(&b'\n') {
            return Some((lf + 1, lf + 2));
        }
        if next.starts_with(b"\r\n") {
            return Some((lf + 1, lf + 3));
        }
        if next.is_empty() || (next == b"\r") {
            // Not decidable yet: wait for more data.
            return None;
        }
        i = lf + 1;
    }
    None
}

/// Below this the message stays in memory.
pub(crate) const SPOOL_MEMORY_LIMIT: usize = 256 * 1024;

/// Every byte of the message, in order, for the next program.
pub(crate) enum Spool {
    Memory(Vec<u8>),
    File { file: File, len: u64 },
}

impl Default for Spool {
    fn default() -> Self {
        Spool::Memory(Vec::new())
    }
}

impl Spool {
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Spool::Memory(v) if v.len() + data.len() <= SPOOL_MEMORY_LIMIT => {
                v.extend_from_slice(data);
                Ok(())
            }
            Spool::Memory(v) => {
                let mut file = temp_file().map_err(Error::Spool)?;
                file.write_all(v).map_err(Error::Spool)?;
                file.write_all(data).map_err(Error::Spool)?;
                let len = (v.len() + data.len()) as u64;
                *self = Spool::File { file, len };
                Ok(())
            }
            Spool::File { file, len } => {
                file.write_all(data).map_err(Error::Spool)?;
                *len += data.len() as u64;
                Ok(())
            }
        }
    }

    /// The spool file and its length, when the message is on disk.
    pub(crate) fn file(&self) -> Option<(&File, u64)> {
        match self {
            Spool::File { file, len } => Some((file, *len)),
            Spool::Memory(_) => None,
        }
    }

    /// Calls `out` with the spooled bytes from offset `from` on, in order, in large pieces.
    pub(crate) fn replay(
        &mut self,
        from: u64,
        mut out: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ReplayError> {
        match self {
            Spool::Memory(v) => {
                out(&v[usize::try_from(from).map_or(v.len(), |f| f.min(v.len()))..]).map_err(ReplayError::Write)
            }
            Spool::File { file, .. } => {
                file.seek(SeekFrom::Start(from)).map_err(ReplayError::Read)?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = match file.read(&mut buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(ReplayError::Read(e)),
                    };
                    out(&buf[..n]).map_err(ReplayError::Write)?;
                }
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum ReplayError {
    Read(io::Error),
    Write(io::Error),
}

/// An anonymous 0600 file in `$TMPDIR` (default /tmp): `O_TMPFILE` where the file system has
/// it, else a random name that is unlinked at once.
pub(crate) fn temp_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::var_os("TMPDIR").filter(|d| !d.is_empty()).unwrap_or_else(|| "/tmp".into());
    let tmp = std::fs::OpenOptions::new().read(true).write(true).mode(0o600).custom_flags(libc::O_TMPFILE).open(&dir);
    if let Ok(f) = tmp {
        return Ok(f);
    }
    let mut seed = [0u8; 8];
    for attempt in 0..16u32 {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| io::Error::other("no randomness"))?;
        let name = std::path::Path::new(&dir).join(format!(
            "qmail-dkim.{}.{:016x}",
            std::process::id(),
            u64::from_le_bytes(seed) ^ attempt as u64
        ));
        match std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&name) {
            Ok(f) => {
                let _ = std::fs::remove_file(&name);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("cannot create a temporary file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_fields() {
        let h = Headers::parse(b"From: a@b\nSubject: x\n  y\r\nNoColon\nTo : c\n".to_vec());
        assert_eq!(h.fields.len(), 4);
        assert_eq!(h.name(&h.fields[0]), b"From");
        assert_eq!(h.raw(&h.fields[1]), b"Subject: x\n  y\r\n");
        assert_eq!(h.name(&h.fields[2]), b"");
        assert_eq!(h.name(&h.fields[3]), b"To");
        assert_eq!(h.value(&h.fields[3]), b" c\n");
        assert_eq!(h.first_value("subject").unwrap(), b"x  y");
    }

    /// RFC 5322 reads `Subject: hi<CR>From: x` as one Subject; a reader that ends lines at a
    /// bare CR sees a From too, and a From field cut short.
    #[test]
    fn views_see_fields_behind_a_bare_cr() {
        let h = Headers::parse(b"Subject: hi\rFrom: CEO <ceo@victim.example>\nFrom: a@x.org\rFrom: b@y.org\nX: a\r b\r\tc: d\r\r:e\rno colon\n".to_vec());
        let v: Vec<(usize, ViewKind, String, String)> = h
            .views()
            .map(|v| (v.index, v.kind, String::from_utf8_lossy(v.name).into(), String::from_utf8_lossy(v.value).into()))
            .collect();
        let w = |i, k, n: &str, val: &str| (i, k, n.to_string(), val.to_string());
        use ViewKind::*;
        assert_eq!(
            v,
            vec![
                w(0, Whole, "Subject", " hi\rFrom: CEO <ceo@victim.example>\n"),
                w(0, Head, "Subject", " hi"),
                w(0, AfterCr, "From", " CEO <ceo@victim.example>\n"),
                w(1, Whole, "From", " a@x.org\rFrom: b@y.org\n"),
                w(1, Head, "From", " a@x.org"),
                w(1, AfterCr, "From", " b@y.org\n"),
                w(2, Whole, "X", " a\r b\r\tc: d\r\r:e\rno colon\n"),
                w(2, Head, "X", " a\r b\r\tc: d"),
                w(2, AfterCr, "", "e"),
            ]
        );
        assert_eq!(h.views_named("from").filter(|v| v.kind.is_field()).count(), 3);
        assert_eq!(author_domain(&h), Err("From names several domains"));
    }

    #[test]
    fn the_author_domain() {
        let a = |b: &[u8]| author_domain(&Headers::parse(b.to_vec()));
        assert_eq!(a(b"From: Joe <joe@Example.COM>, b@example.com\nTo: x@y.org\n"), Ok("example.com".into()));
        assert_eq!(a(b"From: a@x.org\nFrom: b@x.org\n"), Ok("x.org".into()));
        assert_eq!(a(b"From: a@x.org\nFrom: b@y.org\n"), Err("From names several domains"));
        assert_eq!(a(b"Subject: a\rFrom: b@y.org\nFrom: a@x.org\n"), Err("From names several domains"));
        assert_eq!(a(b"Subject: a\r From: b@y.org\nFrom: a@x.org\n"), Ok("x.org".into()), "a fold to every reader");
        assert_eq!(a(b"From: undisclosed\n"), Err("a From address without a domain"));
        assert_eq!(a(b"To: a@x.org\n"), Err("no From address"));
    }

    #[test]
    fn field_count_matches_parse() {
        for b in [&b""[..], b" lead\nA: b\n c\nNoColon\n\tcont\nD: e", b"\n\n", b"A: 1\r\n\r\n"] {
            assert_eq!(count_fields(b), Headers::parse(b.to_vec()).fields.len(), "{b:?}");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(address_domain(b" Joe <joe@Example.COM>").as_deref(), Some("example.com"));
        assert_eq!(address_domain(b" joe@example.com (Joe)").as_deref(), Some("example.com"));
        assert_eq!(address_domain(b" \"a@b\" <x@y.org.>").as_deref(), Some("y.org"));
        assert_eq!(address_domain(b" <>"), None);
        assert_eq!(address_domain(b" \"x <a@victim.example>\" <me@mine.example>").as_deref(), Some("mine.example"));
        assert_eq!(address_domain(b" \"a\\\"<b@victim.example>\" <me@mine.example>").as_deref(), Some("mine.example"));
        assert_eq!(address_domain(b" undisclosed"), None);
    }

    #[test]
    fn address_domain_of_a_list_is_the_first_mailboxes() {
        // It was the last one: from the first `<` to the last `>`, then after the last `@`.
        assert_eq!(address_domain(b"a <x@first.example>, b <z@second.example>").as_deref(), Some("first.example"));
        assert_eq!(address_domain(b"x@first.example, b <z@second.example>").as_deref(), Some("first.example"));
        assert_eq!(address_domain(b"\"a, <q@quoted.example>\" <x@first.example>").as_deref(), Some("first.example"));
        assert_eq!(address_domain(b"<>"), None);
    }

    #[test]
    fn every_domain_of_an_address_list() {
        let d = |v: &[u8]| address_domains(v).into_iter().map(|d| d.unwrap_or_else(|| "-".into())).collect::<Vec<_>>();
        assert_eq!(d(b" Joe <joe@Example.COM>"), ["example.com"]);
        assert_eq!(d(b" a@x.org, \"b, c\" <b@y.org>,\r\n\tc@z.org (d, e@w.org)"), ["x.org", "y.org", "z.org"]);
        assert_eq!(d(b" team: a@x.org, b@y.org;, c@z.org"), ["x.org", "y.org", "z.org"]);
        assert_eq!(d(b" undisclosed-recipients:;"), Vec::<String>::new());
        assert_eq!(d(b" <@route.example,@r2.example:joe@x.org>"), ["x.org"]);
        assert_eq!(d(b" \"x <a@victim.example>\" <me@mine.example>"), ["mine.example"]);
        assert_eq!(d(b" a@x.org, undisclosed, <>"), ["x.org", "-", "-"]);
        assert_eq!(d(b" a@x.org,, b@x.org"), ["x.org", "x.org"]);
        // The first element is the one address_domain finds.
        assert_eq!(d(b" a@x.org, b@y.org")[0], address_domain(b" a@x.org, b@y.org").unwrap());
    }

    /// Unbalanced parentheses or quotes: the address is still found where it can be.
    #[test]
    fn domains_unbalanced() {
        assert_eq!(address_domain(b" joe@example.com (Joe").as_deref(), Some("example.com"));
        assert_eq!(address_domain(b" Joe) <joe@example.com>").as_deref(), Some("example.com"));
        assert_eq!(address_domain(b" \"Joe <joe@example.com>").as_deref(), Some("example.com"));
        assert_eq!(address_domain(b" joe@example.com)"), None);
        assert_eq!(address_domain(b" (Joe <joe@example.com>"), None);
    }

    #[test]
    fn header_end() {
        assert_eq!(find_header_end(b"A: b\n\nbody", 0), Some((5, 6)));
        assert_eq!(find_header_end(b"A: b\r\n\r\nbody", 0), Some((6, 8)));
        assert_eq!(find_header_end(b"\nbody", 0), Some((0, 1)));
        assert_eq!(find_header_end(b"A: b\n", 0), None);
        assert_eq!(find_header_end(b"A: b\nB: c\n", 0), None);
    }

    #[test]
    fn spool_spills_to_file() {
        let mut s = Spool::default();
        let chunk = vec![b'x'; 100_000];
        for _ in 0..5 {
            s.write(&chunk).unwrap();
        }
        assert!(matches!(s, Spool::File { .. }));
        let mut out = Vec::new();
        s.replay(0, |d| {
            out.extend_from_slice(d);
            Ok(())
        })
        .unwrap();
        assert_eq!(out.len(), 500_000);
    }
}
