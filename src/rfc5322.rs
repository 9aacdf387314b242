//! The one scanner for RFC 5322 §3.2.2–3.2.4 lexical structure in header values: comments
//! (nested, with quoted-pairs), quoted-strings (with quoted-pairs), and the text between.
//! Every parser that has to skip a comment or a quoted string uses it, so they cannot disagree
//! about where one ends (a forged `Authentication-Results: (\)) ours; dkim=pass` must be read
//! the way a mail reader reads it). One step per byte, no recursion, no backtracking: linear
//! in time and constant in memory whatever the nesting or the balance of the input.

/// What a byte of a header value is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Outside comments and quoted strings (a stray `)` too).
    Text,
    /// A comment, its parentheses included.
    Comment,
    /// The `"` that opens or closes a quoted string.
    Quote,
    /// The inside of a quoted string.
    Quoted,
}

/// One byte of the input and what it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexeme {
    pub byte: u8,
    pub part: Part,
    /// The `\` that starts a quoted-pair.
    pub escape: bool,
    /// The byte a `\` quotes (it has no special meaning).
    pub escaped: bool,
}

/// Iterator over the bytes of a header value with their [`Part`]. After the last byte,
/// [`Scanner::balanced`] says whether every comment and quoted string was closed and no `)`
/// was stray. Unbalanced input is read on: an unclosed comment or quoted string runs to the end.
pub struct Scanner<'a> {
    v: &'a [u8],
    pos: usize,
    depth: u32,
    quoted: bool,
    pending_escape: bool,
    stray: bool,
}

impl<'a> Scanner<'a> {
    pub fn new(v: &'a [u8]) -> Scanner<'a> {
        Scanner { v, pos: 0, depth: 0, quoted: false, pending_escape: false, stray: false }
    }

    /// Whether everything read so far closed its comments and quotes, without a stray `)`.
    pub fn balanced(&self) -> bool {
        !self.stray && self.depth == 0 && !self.quoted
    }

    /// The offset of the next byte.
    pub fn pos(&self) -> usize {
        self.pos
    }
}

impl Iterator for Scanner<'_> {
    type Item = Lexeme;

    fn next(&mut self) -> Option<Lexeme> {
        let &c = self.v.get(self.pos)?;
        self.pos += 1;
        let inside = if self.depth > 0 {
            Part::Comment
        } else if self.quoted {
            Part::Quoted
        } else {
            Part::Text
        };
        if self.pending_escape {
            self.pending_escape = false;
            return Some(Lexeme { byte: c, part: inside, escape: false, escaped: true });
        }
        let mut lx = Lexeme { byte: c, part: inside, escape: false, escaped: false };
        match c {
            b'\\' => {
                self.pending_escape = true;
                lx.escape = true;
            }
            b'"' if self.depth == 0 => {
                self.quoted = !self.quoted;
                lx.part = Part::Quote;
            }
            b'(' if !self.quoted => {
                self.depth = self.depth.saturating_add(1);
                lx.part = Part::Comment;
            }
            b')' if !self.quoted && self.depth > 0 => self.depth -= 1,
            b')' if !self.quoted => self.stray = true,
            _ => {}
        }
        Some(lx)
    }
}

/// The value without its comments, and whether its comments and quotes balance. When they do
/// not, the best effort: a stray `)` is kept, an unclosed comment runs to the end, an unclosed
/// quoted string too.
pub fn remove_comments(v: &[u8]) -> (Vec<u8>, bool) {
    let m = mask(v);
    (m.text, m.balanced)
}

/// A value readied for finding addresses in it.
pub struct Masked {
    /// Comments removed (see [`remove_comments`]).
    pub text: Vec<u8>,
    /// The same, with quoted-pairs and `<>@,:;` inside quoted strings made `x`: a display name
    /// (`"a <b@c>" <d@e>`) cannot pass for the address.
    pub masked: Vec<u8>,
    pub balanced: bool,
    /// A quoted string was still open at the end.
    pub open_quote: bool,
}

/// [`Masked`] of `v`, in one pass.
pub fn mask(v: &[u8]) -> Masked {
    let mut s = Scanner::new(v);
    let (mut text, mut masked) = (Vec::with_capacity(v.len()), Vec::with_capacity(v.len()));
    for l in s.by_ref() {
        match l.part {
            Part::Comment => continue,
            Part::Quoted if l.escaped || matches!(l.byte, b'<' | b'>' | b'@' | b',' | b':' | b';') => masked.push(b'x'),
            _ => masked.push(l.byte),
        }
        text.push(l.byte);
    }
    Masked { text, masked, balanced: s.balanced(), open_quote: s.quoted }
}

/// Folding whitespace (RFC 5322 §3.2.2), line ends included; a bare CR counts, as mail readers
/// that split lines on it would see a line end there.
pub fn is_wsp(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// The first word of a value after any CFWS: the contents of a leading quoted-string
/// (quoted-pairs unquoted), else the bytes up to whitespace, `;` or a comment.
pub fn first_word(v: &[u8]) -> Vec<u8> {
    let mut word = Vec::new();
    let (mut started, mut in_quote) = (false, false);
    for l in Scanner::new(v) {
        if !started {
            match l.part {
                Part::Comment => continue,
                Part::Text if is_wsp(l.byte) => continue,
                Part::Quote => {
                    (started, in_quote) = (true, true);
                    continue;
                }
                _ => started = true,
            }
        }
        let more = if in_quote {
            l.part == Part::Quoted
        } else {
            l.part == Part::Text && (l.escaped || !(is_wsp(l.byte) || l.byte == b';'))
        };
        if !more {
            break;
        }
        if !(in_quote && l.escape) {
            word.push(l.byte);
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(v: &[u8]) -> String {
        Scanner::new(v)
            .map(|l| match l.part {
                Part::Text => 't',
                Part::Comment => 'c',
                Part::Quote => 'q',
                Part::Quoted => 's',
            })
            .collect()
    }

    #[test]
    fn classifies() {
        assert_eq!(parts(b"a (b (c) \\) d) \"(e)\" f\\(g"), "ttcccccccccccctqsssqttttt");
        assert_eq!(parts(b"(\\)) x"), "cccctt");
        assert_eq!(parts(b"\"a\\\"b\" c"), "qssssqtt");
        let (out, ok) = remove_comments(b"a (b (c) \\) d) \"(e)\" f\\(g");
        assert_eq!((out.as_slice(), ok), (&b"a  \"(e)\" f\\(g"[..], true));
        for unbalanced in [&b"a (b"[..], b"a) b", b"a (b))", b"\"a (b)", b"(a\\)"] {
            assert!(!remove_comments(unbalanced).1, "{unbalanced:?}");
        }
    }

    /// RFC 5322 §3.2.2: `(\))` is one comment; the word after it is the authserv-id.
    #[test]
    fn comment_with_quoted_pair_is_skipped_whole() {
        assert_eq!(first_word(b" (\\)) mx.example.org; dkim=pass"), b"mx.example.org");
        assert_eq!(first_word(b" (a (\\( b) \\\\) mx.example.org;"), b"mx.example.org");
        assert_eq!(first_word(b" \"mx.exa\\mple.org\" ; x"), b"mx.example.org");
        assert_eq!(first_word(b"\r\n\t(c)mx(c)"), b"mx");
        assert_eq!(first_word(b" mx.example.org\r; dkim=pass"), b"mx.example.org");
        assert_eq!(first_word(b" (unclosed mx.example.org"), b"");
    }
}
