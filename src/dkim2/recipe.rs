//! Recipes (§5): the JSON in a Message-Instance's `r=` that recreates the state before a hop's
//! change. The one reader of that JSON is here, a recursive-descent parser of just the JSON a
//! recipe needs (and the skipping of what it ignores): one pass, nesting capped at
//! [`MAX_DEPTH`], at most [`MAX_STEPS`] steps, and nothing kept but the recipe itself, so
//! memory stays below the size of the text. Applying a recipe copies each current line or field
//! at most once (copy ranges are clamped to ascend), so the state it makes is at most the current
//! state plus the recipe's data.
//!
//! ```text
//! {"h": {"subject": [{"c":[1,1]}, {"d":["old value"]}], "list-id": []},
//!  "b": [{"c":[1,5]}, {"u":["base64 of a line that is not UTF-8"]}]}      "b": null = cannot
//! ```

use super::hash::{is_excluded, Field};
use super::parse::B64;
use base64::Engine;
use std::collections::{BTreeMap, HashSet};

/// Nesting of arrays and objects, ignored values included. A recipe needs 4.
pub const MAX_DEPTH: usize = 32;
/// Steps in one recipe, header and body recipes together.
pub(crate) const MAX_STEPS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `c`: the current lines (body, top down) or field instances (bottom up) `start..=end`.
    Copy(u32, u32),
    /// `d` (UTF-8) or `u` (base64): these literal lines or field values.
    Data(Vec<Vec<u8>>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BodyRecipe {
    /// No `b`: the body did not change.
    #[default]
    Unchanged,
    Steps(Vec<Step>),
    /// `b: null`: the previous body cannot be recreated.
    Lost,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipe {
    /// Lowercase field name and its steps; an empty list removes every instance.
    pub headers: Vec<(String, Vec<Step>)>,
    pub body: BodyRecipe,
}

impl Recipe {
    /// Reads the decoded `r=` JSON. The error says where it stopped.
    pub fn from_json(json: &[u8]) -> Result<Recipe, String> {
        let mut p = Json { s: json, pos: 0, steps: 0 };
        p.ws();
        let r = p.recipe().map_err(|e| format!("{e} at offset {}", p.pos))?;
        p.ws();
        if p.pos != json.len() {
            return Err(format!("text after the recipe at offset {}", p.pos));
        }
        Ok(r)
    }

    /// Whether the recipe changes the `From` field.
    pub(crate) fn changes_from(&self) -> bool {
        self.headers.iter().any(|(n, _)| n == "from")
    }

    /// The previous header block (without the excluded fields, grouped by name: fit for hashing,
    /// not for delivery), CRLF-ended.
    pub fn apply_headers(&self, fields: &[Field<'_>]) -> Vec<u8> {
        let mut by_name: BTreeMap<Vec<u8>, Instances<'_>> = BTreeMap::new();
        let mut size = 0;
        for (n, v) in fields {
            if !is_excluded(n) {
                size += n.len() + v.len() + 4;
                by_name.entry(n.trim_ascii().to_ascii_lowercase()).or_default().0.push(v.trim_ascii());
            }
        }
        for (n, steps) in &self.headers {
            by_name.entry(n.as_bytes().to_vec()).or_default().1 = Some(steps);
        }
        let mut out = Vec::with_capacity(size + 2);
        for (name, (current, steps)) in by_name {
            let values = match steps {
                Some(steps) => header_steps(&current, steps),
                None => current,
            };
            for v in values {
                out.extend_from_slice(&name);
                out.extend_from_slice(b": ");
                out.extend_from_slice(v);
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }
}

/// A field name's current values (top to bottom) and its recipe, if any.
type Instances<'a> = (Vec<&'a [u8]>, Option<&'a [Step]>);

/// The previous instances of one field, top to bottom. Instances are numbered bottom up.
fn header_steps<'a>(current: &[&'a [u8]], steps: &'a [Step]) -> Vec<&'a [u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut next = 1;
    for step in steps {
        match step {
            Step::Copy(a, b) => {
                for k in clamp(*a, *b, current.len(), &mut next) {
                    if let Some(v) = current.len().checked_sub(k).and_then(|i| current.get(i)) {
                        out.push(v);
                    }
                }
            }
            Step::Data(lines) => out.extend(lines.iter().map(Vec::as_slice)),
        }
    }
    out.reverse();
    out
}

/// The lines `a..=b` that may still be copied (each at most once, in ascending order).
fn clamp(a: u32, b: u32, available: usize, next: &mut usize) -> std::ops::RangeInclusive<usize> {
    let first = usize::try_from(a).unwrap_or(usize::MAX).max(*next);
    let last = usize::try_from(b).unwrap_or(usize::MAX).min(available);
    if first <= last {
        *next = last + 1;
    }
    first..=last
}

/// The previous body from the current one. Lines end at LF (a CR before it is part of the line
/// end); a last empty line is not a line. Every output line ends CRLF; nothing at all is CRLF.
pub fn apply_body(body: &[u8], steps: &[Step]) -> Vec<u8> {
    let total = memchr::memchr_iter(b'\n', body).count() + usize::from(!body.is_empty() && !body.ends_with(b"\n"));
    let mut out = Vec::with_capacity(body.len());
    // The lines are walked once, forwards: copy ranges ascend.
    let (mut line_no, mut pos) = (1usize, 0usize);
    let mut next = 1;
    for step in steps {
        match step {
            Step::Copy(a, b) => {
                for k in clamp(*a, *b, total, &mut next) {
                    while line_no < k {
                        pos = memchr::memchr(b'\n', &body[pos..]).map_or(body.len(), |i| pos + i + 1);
                        line_no += 1;
                    }
                    let end = memchr::memchr(b'\n', &body[pos..]).map_or(body.len(), |i| pos + i);
                    let line = &body[pos..end];
                    out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
                    out.extend_from_slice(b"\r\n");
                    pos = (end + 1).min(body.len());
                    line_no += 1;
                }
            }
            Step::Data(lines) => {
                for l in lines {
                    out.extend_from_slice(l);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    if out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out
}

// --- the JSON reader ---------------------------------------------------------------------------

struct Json<'a> {
    s: &'a [u8],
    pos: usize,
    steps: usize,
}

type R<T> = Result<T, &'static str>;

impl Json<'_> {
    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err("unexpected character")
        }
    }

    /// `{ "key": value, ... }`, calling `f` for each key with the reader before its value.
    fn object(&mut self, mut f: impl FnMut(&mut Self, String) -> R<()>) -> R<()> {
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = String::from_utf8(self.string()?).map_err(|_| "key is not UTF-8")?;
            self.eat(b':')?;
            f(self, key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err("expected , or }"),
            }
        }
    }

    /// `[ value, ... ]`, calling `f` for each element.
    fn array(&mut self, mut f: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.eat(b'[')?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            f(self)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err("expected , or ]"),
            }
        }
    }

    fn recipe(&mut self) -> R<Recipe> {
        let mut r = Recipe::default();
        let (mut seen_h, mut seen_b) = (false, false);
        self.object(|p, key| match key.as_str() {
            "h" if !seen_h => {
                seen_h = true;
                r.headers = p.header_map()?;
                Ok(())
            }
            "b" if !seen_b => {
                seen_b = true;
                r.body = if p.peek() == Some(b'n') {
                    p.literal(b"null")?;
                    BodyRecipe::Lost
                } else {
                    BodyRecipe::Steps(p.steps()?)
                };
                Ok(())
            }
            "h" | "b" => Err("duplicate key"),
            _ => p.skip(1),
        })?;
        Ok(r)
    }

    fn header_map(&mut self) -> R<Vec<(String, Vec<Step>)>> {
        let mut out = Vec::new();
        let mut names = HashSet::new();
        self.object(|p, name| {
            if name.is_empty() || !name.bytes().all(|c| c.is_ascii_graphic() && c != b':') {
                return Err("not a field name");
            }
            let name = name.to_ascii_lowercase();
            let steps = p.steps()?;
            if !names.insert(name.clone()) {
                return Err("field name twice");
            }
            if !is_excluded(name.as_bytes()) {
                out.push((name, steps));
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn steps(&mut self) -> R<Vec<Step>> {
        let mut out = Vec::new();
        self.array(|p| {
            if p.steps == MAX_STEPS {
                return Err("too many steps");
            }
            p.steps += 1;
            if p.peek() != Some(b'{') {
                // Not an object: ignored.
                return p.skip(3);
            }
            let mut step = None;
            p.object(|p, key| {
                let s = match key.as_str() {
                    "c" => {
                        let mut n = Vec::with_capacity(2);
                        p.array(|p| {
                            if n.len() < 2 {
                                n.push(p.index()?);
                                Ok(())
                            } else {
                                p.skip(4)
                            }
                        })?;
                        match n[..] {
                            [a, b] => Step::Copy(a, b),
                            _ => return Err("c needs [start, end]"),
                        }
                    }
                    "d" | "u" => {
                        let mut lines = Vec::new();
                        let base64 = key == "u";
                        p.array(|p| {
                            let mut v = p.string()?;
                            if base64 {
                                v = B64
                                    .decode(crate::dkim::tags::strip_ws(&String::from_utf8_lossy(&v)))
                                    .map_err(|_| "u is not base64")?;
                            } else if std::str::from_utf8(&v).is_err() {
                                return Err("d is not UTF-8");
                            }
                            if v.iter().any(|&c| c == b'\r' || c == b'\n') {
                                return Err("CR or LF in data");
                            }
                            lines.push(v);
                            Ok(())
                        })?;
                        Step::Data(lines)
                    }
                    _ => return p.skip(4),
                };
                if step.replace(s).is_some() {
                    return Err("more than one of c, d, u in a step");
                }
                Ok(())
            })?;
            out.extend(step);
            Ok(())
        })?;
        Ok(out)
    }

    /// A non-negative integer; beyond u32 it counts as u32::MAX (a range end past every line).
    fn index(&mut self) -> R<u32> {
        self.ws();
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        let digits = &self.s[start..self.pos];
        if digits.is_empty() || matches!(self.s.get(self.pos), Some(b'.' | b'e' | b'E')) {
            return Err("not a non-negative integer");
        }
        Ok(digits
            .iter()
            .try_fold(0u32, |acc, &d| acc.checked_mul(10)?.checked_add(u32::from(d - b'0')))
            .unwrap_or(u32::MAX))
    }

    fn literal(&mut self, word: &[u8]) -> R<()> {
        self.ws();
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err("unknown literal")
        }
    }

    /// A string, unescaped (UTF-8 bytes; invalid UTF-8 is passed through for the caller to judge).
    fn string(&mut self) -> R<Vec<u8>> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else { return Err("unterminated string") };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else { return Err("unterminated string") };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if !self.s[self.pos..].starts_with(b"\\u") {
                                    return Err("lone surrogate");
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err("lone surrogate");
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            let ch = char::from_u32(cp).ok_or("lone surrogate")?;
                            let mut b = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        _ => return Err("bad escape"),
                    }
                }
                0..=0x1f => return Err("control character in string"),
                _ => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> R<u32> {
        let h = self.s.get(self.pos..self.pos + 4).ok_or("short \\u escape")?;
        let s = std::str::from_utf8(h).map_err(|_| "bad \\u escape")?;
        let v = u32::from_str_radix(s, 16).map_err(|_| "bad \\u escape")?;
        self.pos += 4;
        Ok(v)
    }

    /// Skips any value, `depth` levels down.
    fn skip(&mut self, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply");
        }
        match self.peek() {
            Some(b'{') => self.object(|p, _| p.skip(depth + 1)),
            Some(b'[') => self.array(|p| p.skip(depth + 1)),
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|c| matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.pos += 1;
                }
                std::str::from_utf8(&self.s[start..self.pos])
                    .ok()
                    .and_then(|n| n.parse::<f64>().ok())
                    .map(drop)
                    .ok_or("bad number")
            }
            _ => Err("expected a value"),
        }
    }
}

#[cfg(test)]
mod tests;
