//! SPF macro strings (RFC 7208 §7): the one parser of `macro-string`, used for every domain-spec,
//! unknown modifier and explanation text, and their expansion.
//!
//! Bounds: parsing is one pass over the text. Expanding a domain-spec keeps only the rightmost
//! [`MAX_NAME`]` + 1` octets, built from the last piece backwards, because §7.3 truncates an
//! overlong name on the left; so its cost is the pieces read until enough octets are found
//! (at most every piece once), its memory bounded. An explanation stops at
//! [`MAX_EXPLANATION`] characters.

use crate::domain::MAX_NAME;
use std::net::IpAddr;

/// Longest explanation kept (§6.2 text for a log line or a comment).
pub const MAX_EXPLANATION: usize = 512;

/// A `%{...}` macro: letter (lowercase), how many right-hand parts (0 = all), reversal,
/// delimiters (default `.`), and whether the result is URL-escaped (uppercase letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expand {
    letter: u8,
    keep: usize,
    reverse: bool,
    delimiters: Vec<u8>,
    escape: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Macro(Expand),
}

/// A parsed macro-string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MacroString {
    pub pieces: Vec<Piece>,
}

/// Where a macro-string stands: the letters `c`, `r`, `t` and spaces are allowed only in
/// explanation text (§7.1, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Domain,
    Explanation,
}

/// Most parts a transformer can ask for that make a difference: an IPv6 `i` has 32, a name of
/// 253 octets at most 127. Larger numbers are read without overflow and mean "all".
const MAX_KEEP: usize = 1024;

pub fn parse(text: &str, ctx: Context) -> Result<MacroString, String> {
    let b = text.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c != b'%' {
            let ok = matches!(c, 0x21..=0x7e) || (c == b' ' && ctx == Context::Explanation);
            if !ok {
                return Err(format!("character {:?} in a macro string", char::from(c)));
            }
            lit.push(char::from(c));
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'%') => lit.push('%'),
            Some(b'_') => lit.push(' '),
            Some(b'-') => lit.push_str("%20"),
            Some(b'{') => {
                let end = b[i + 2..].iter().position(|&x| x == b'}').ok_or("unterminated %{")?;
                let inner = &b[i + 2..i + 2 + end];
                if !lit.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Macro(parse_expand(inner, ctx)?));
                i += 2 + end + 1;
                continue;
            }
            _ => return Err("% not followed by {, %, _ or -".into()),
        }
        i += 2;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(MacroString { pieces })
}

/// `macro-letter transformers *delimiter`.
fn parse_expand(inner: &[u8], ctx: Context) -> Result<Expand, String> {
    let (&first, rest) = inner.split_first().ok_or("empty %{}")?;
    let letter = first.to_ascii_lowercase();
    let allowed: &[u8] = match ctx {
        Context::Domain => b"slodiphv",
        Context::Explanation => b"slodiphvcrt",
    };
    if !allowed.contains(&letter) {
        return Err(format!("macro letter {:?} not allowed here", char::from(first)));
    }
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let keep = if digits == 0 {
        0
    } else {
        let n = rest[..digits].iter().fold(0usize, |n, &d| (n * 10 + usize::from(d - b'0')).min(MAX_KEEP));
        if n == 0 {
            return Err("macro transformer 0".into());
        }
        n
    };
    let mut rest = &rest[digits..];
    let mut reverse = false;
    if let Some((&c, r)) = rest.split_first() {
        if c == b'r' || c == b'R' {
            reverse = true;
            rest = r;
        }
    }
    if let Some(&bad) = rest.iter().find(|c| !b".-+,/_=".contains(c)) {
        return Err(format!("macro delimiter {:?}", char::from(bad)));
    }
    let delimiters = if rest.is_empty() { b".".to_vec() } else { rest.to_vec() };
    Ok(Expand { letter, keep, reverse, delimiters, escape: first.is_ascii_uppercase() })
}

impl MacroString {
    /// Whether `p` (the client's validated name, a PTR lookup) is used.
    pub(crate) fn uses_p(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Macro(m) if m.letter == b'p'))
    }

    /// True when the string ends as a domain-spec must (§12 `domain-end`): with a macro, or
    /// with `.` and a top label (letters, digits and inner hyphens, not all digits) and an
    /// optional final dot.
    pub fn is_domain_spec(&self) -> bool {
        match self.pieces.last() {
            None => false,
            Some(Piece::Macro(_)) => true,
            Some(Piece::Literal(s)) => {
                let s = s.strip_suffix('.').unwrap_or(s);
                match s.rfind('.') {
                    None => false,
                    Some(dot) => is_toplabel(&s[dot + 1..]),
                }
            }
        }
    }

    /// The name to query: expanded, and, when longer than 253 octets, cut on the left at label
    /// boundaries (§7.3). Anything longer than one query allows stays longer, so the lookup
    /// answers `BadName`.
    pub fn expand_domain(&self, vars: &Vars<'_>) -> String {
        let window = MAX_NAME + 1;
        let mut rev: Vec<u8> = Vec::with_capacity(window + 64);
        let mut tmp = String::new();
        let mut longer = false;
        for p in self.pieces.iter().rev() {
            tmp.clear();
            match p {
                Piece::Literal(s) => tmp.push_str(s),
                Piece::Macro(m) => m.expand(vars, &mut tmp),
            }
            rev.extend(tmp.bytes().rev());
            if rev.len() > window {
                rev.truncate(window);
                longer = true;
                break;
            }
        }
        rev.reverse();
        let mut name = String::from_utf8_lossy(&rev).into_owned();
        if longer || name.len() > MAX_NAME {
            // The first dot of the window leaves at most 253 octets to its right.
            if let Some(dot) = name.find('.') {
                name = name[dot + 1..].to_string();
            }
        }
        name
    }

    /// Explanation text (§6.2): expanded left to right, at most [`MAX_EXPLANATION`] characters.
    pub fn expand_text(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Literal(s) => out.push_str(s),
                Piece::Macro(m) => m.expand(vars, &mut out),
            }
            if out.len() >= MAX_EXPLANATION {
                let mut end = MAX_EXPLANATION;
                while !out.is_char_boundary(end) {
                    end -= 1;
                }
                out.truncate(end);
                break;
            }
        }
        out
    }
}

fn is_toplabel(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !b.iter().all(u8::is_ascii_digit)
}

/// The values macros stand for (§7.2).
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    pub sender: &'a str,
    pub local: &'a str,
    pub sender_domain: &'a str,
    pub domain: &'a str,
    pub ip: IpAddr,
    /// The validated domain name of `ip` (`p`), `unknown` when there is none.
    pub validated: &'a str,
    pub helo: &'a str,
    pub host_domain: &'a str,
    pub now: u64,
}

impl Expand {
    fn expand(&self, v: &Vars<'_>, out: &mut String) {
        let owned;
        let value: &str = match self.letter {
            b's' => v.sender,
            b'l' => v.local,
            b'o' => v.sender_domain,
            b'd' => v.domain,
            b'i' => {
                owned = dotted(v.ip);
                &owned
            }
            b'p' => v.validated,
            b'v' => match v.ip {
                IpAddr::V4(_) => "in-addr",
                IpAddr::V6(_) => "ip6",
            },
            b'h' => v.helo,
            b'c' => {
                owned = v.ip.to_string();
                &owned
            }
            b'r' => {
                if v.host_domain.is_empty() {
                    "unknown"
                } else {
                    v.host_domain
                }
            }
            _ => {
                owned = v.now.to_string();
                &owned
            }
        };
        let mut parts: Vec<&str> =
            value.split(|c: char| u8::try_from(c).is_ok_and(|b| self.delimiters.contains(&b))).collect();
        if self.reverse {
            parts.reverse();
        }
        if self.keep > 0 && parts.len() > self.keep {
            parts.drain(..parts.len() - self.keep);
        }
        for (k, part) in parts.iter().enumerate() {
            if k > 0 {
                out.push('.');
            }
            if self.escape {
                url_escape(part, out);
            } else {
                out.push_str(part);
            }
        }
    }
}

/// `i`: dotted quad, or the 32 nibbles of an IPv6 address separated by dots (§7.3).
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(63);
            for b in a.octets() {
                for n in [b >> 4, b & 0xf] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push(char::from_digit(u32::from(n), 16).unwrap_or('0'));
                }
            }
            s
        }
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (§7.3).
fn url_escape(s: &str, out: &mut String) {
    use std::fmt::Write;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(ip: &str) -> Vars<'static> {
        Vars {
            sender: "strong-bad@email.example.com",
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            validated: "mx.example.org",
            helo: "mx.example.org",
            host_domain: "mx.example.net",
            now: 1_000_000_000,
        }
    }

    fn d(spec: &str, ip: &str) -> String {
        parse(spec, Context::Domain).unwrap().expand_domain(&vars(ip))
    }

    /// RFC 7208 §7.4, every example.
    #[test]
    fn rfc7208_section_7_4_examples_expand_as_printed() {
        let v4 = "192.0.2.3";
        for (spec, want) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
            ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
            ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ] {
            assert_eq!(d(spec, v4), want, "{spec}");
        }
        assert_eq!(
            d("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01"),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn uppercase_macros_are_url_escaped_and_escapes_expand() {
        assert_eq!(d("%{S}", "192.0.2.3"), "strong-bad%40email.example.com");
        let t = parse("%{c} %%%_%- %{r} %{t}", Context::Explanation).unwrap().expand_text(&vars("2001:db8::cb01"));
        assert_eq!(t, "2001:db8::cb01 % %20 mx.example.net 1000000000");
    }

    #[test]
    fn bad_macros_are_errors() {
        for bad in ["%", "%x", "%{", "%{s", "%{}", "%{q}", "%{s0}", "%{s*}", "a b", "%{c}", "%{r}", "%{t}", "é"] {
            assert!(parse(bad, Context::Domain).is_err(), "{bad:?}");
        }
        assert!(parse("%{c}%{r}%{t} text", Context::Explanation).is_ok());
        assert!(parse("%{d99999999999999999999}", Context::Domain).is_ok());
    }

    #[test]
    fn domain_end_is_a_macro_or_a_top_label() {
        for (spec, ok) in [
            ("example.com", true),
            ("example.com.", true),
            ("%{d}", true),
            ("_spf.%{d}", true),
            ("%{d}.com", true),
            ("com", false),
            ("example.123", false),
            ("example.-com", false),
            ("example.c-1", true),
            ("%{d}com", false),
        ] {
            assert_eq!(parse(spec, Context::Domain).unwrap().is_domain_spec(), ok, "{spec}");
        }
    }

    /// §7.3: over 253 octets, whole labels go from the left.
    #[test]
    fn overlong_expansion_is_cut_on_the_left_at_a_label() {
        let label = "a".repeat(60);
        let spec = format!("{label}.{label}.{label}.{label}.{label}.%{{d}}");
        let name = d(&spec, "192.0.2.3");
        assert!(name.len() <= MAX_NAME, "{}", name.len());
        assert!(name.ends_with(".email.example.com") && name.starts_with('a'), "{name}");
        assert_eq!(name, format!("{label}.{label}.{label}.email.example.com"));
        let one = format!("{}.com", "b".repeat(300));
        assert_eq!(d(&one, "192.0.2.3"), "com");
    }

    #[test]
    fn long_macro_strings_parse_and_expand_in_linear_time() {
        crate::linear::assert_linear(
            "SPF macro-string parse + expand_domain + expand_text",
            1024,
            |n| crate::linear::repeat(b"%{l1r-}%{h}x", n),
            |b| {
                let s = std::str::from_utf8(b).unwrap();
                let v = vars("2001:db8::1");
                let m = parse(s, Context::Domain).unwrap();
                std::hint::black_box(m.expand_domain(&v));
                std::hint::black_box(m.expand_text(&v));
                let empty = Vars { helo: "", ..v };
                // Empty values: every piece is read, each in constant time.
                let m = parse(&s.replace("%{l1r-}", "").replace('x', ""), Context::Domain).unwrap();
                std::hint::black_box(m.expand_domain(&empty));
            },
        );
    }
}
