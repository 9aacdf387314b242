//! The one glob matcher, for every wildcard pattern the program reads: the key record's `g=`
//! (DKIM and DomainKeys), `control/dkimkeys` and the signaturedomains lists.
//!
//! A pattern is split at its `*`s into literal segments; the first must start the subject, the
//! last must end it, and each one between is found leftmost after the one before (greedy
//! leftmost matching is exact for `*`-separated segments). Nothing backtracks, so the cost is
//! O(pattern + subject) for segments without `?` (Knuth–Morris–Pratt search; the key record's
//! `g=`, which an attacker writes, never has a wildcard `?`), and at most
//! subject × segment for a segment with a wildcard `?`, which only the postmaster's control
//! files have and which is matched against a domain name of at most 253 octets.

/// A compiled view of a pattern: which characters are wildcards, and whether case matters.
#[derive(Debug, Clone, Copy)]
pub struct Glob<'p> {
    pattern: &'p [u8],
    question: bool,
    fold: bool,
}

impl<'p> Glob<'p> {
    /// Only `*` is a wildcard (RFC 4871 §3.6.1 g=, RFC 4870 g=); `?` is itself.
    pub fn star_only(pattern: &'p str) -> Glob<'p> {
        Glob { pattern: pattern.as_bytes(), question: false, fold: false }
    }

    /// `*` and `?` (one character), as fnmatch: the control files.
    pub fn star_and_question(pattern: &'p str) -> Glob<'p> {
        Glob { pattern: pattern.as_bytes(), question: true, fold: false }
    }

    /// Compare letters without regard to ASCII case.
    pub fn ignore_case(self) -> Glob<'p> {
        Glob { fold: true, ..self }
    }

    pub fn matches(&self, subject: &str) -> bool {
        let (p, s) = (self.pattern, subject.as_bytes());
        let (Some(first_star), Some(last_star)) =
            (p.iter().position(|&c| c == b'*'), p.iter().rposition(|&c| c == b'*'))
        else {
            return p.len() == s.len() && self.same(p, s);
        };
        let (head, tail) = (&p[..first_star], &p[last_star + 1..]);
        if s.len() < head.len() + tail.len()
            || !self.same(head, &s[..head.len()])
            || !self.same(tail, &s[s.len() - tail.len()..])
        {
            return false;
        }
        let mut rest = &s[head.len()..s.len() - tail.len()];
        let middle = if first_star < last_star { &p[first_star + 1..last_star] } else { &[][..] };
        for seg in middle.split(|&c| c == b'*').filter(|seg| !seg.is_empty()) {
            match self.find(seg, rest) {
                Some(at) => rest = &rest[at + seg.len()..],
                None => return false,
            }
        }
        true
    }

    fn eq(&self, p: u8, c: u8) -> bool {
        p == c || (self.question && p == b'?') || (self.fold && p.eq_ignore_ascii_case(&c))
    }

    /// Whether a segment matches text of its length.
    fn same(&self, seg: &[u8], text: &[u8]) -> bool {
        seg.iter().zip(text).all(|(&p, &c)| self.eq(p, c))
    }

    /// The leftmost position of a segment in `hay`.
    fn find(&self, seg: &[u8], hay: &[u8]) -> Option<usize> {
        if seg.len() > hay.len() {
            return None;
        }
        if self.question && seg.contains(&b'?') {
            return (0..=hay.len() - seg.len()).find(|&i| self.same(seg, &hay[i..i + seg.len()]));
        }
        // Knuth–Morris–Pratt: at most 2 × (segment + scanned text) comparisons. Without a
        // wildcard `?`, `eq` is an equivalence (case folding), as KMP needs.
        let mut fail = vec![0usize; seg.len()];
        let mut j = 0;
        for i in 1..seg.len() {
            while j > 0 && !self.eq(seg[j], seg[i]) {
                j = fail[j - 1];
            }
            if self.eq(seg[j], seg[i]) {
                j += 1;
            }
            fail[i] = j;
        }
        j = 0;
        for (i, &c) in hay.iter().enumerate() {
            while j > 0 && !self.eq(seg[j], c) {
                j = fail[j - 1];
            }
            if self.eq(seg[j], c) {
                j += 1;
                if j == seg.len() {
                    return Some(i + 1 - j);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn star(p: &str, s: &str) -> bool {
        Glob::star_only(p).matches(s)
    }

    fn fnm(p: &str, s: &str) -> bool {
        Glob::star_and_question(p).ignore_case().matches(s)
    }

    /// A plain backtracking matcher to compare with (exponential, so only for short inputs).
    fn reference(p: &[u8], s: &[u8], question: bool) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..], question)),
            Some((&c, rest)) => {
                s.first().is_some_and(|&d| (c == d || (question && c == b'?')) && reference(rest, &s[1..], question))
            }
        }
    }

    #[test]
    fn star_only_semantics() {
        assert!(star("a*b*c", "axxbyyc") && !star("a*b", "ab c") && star("*", ""));
        assert!(star("", "") && !star("", "x") && star("joe", "joe") && !star("joe", "Joe"));
        assert!(star("user+*", "user+tag") && star("*-offer", "x-offer") && !star("*-offer", "-offe"));
        assert!(star("a*a", "aa") && !star("a*a", "a") && star("**", "x"));
        // `?` is a literal in g= (RFC 4871 knows only `*`).
        assert!(!star("jo?", "joe") && star("jo?", "jo?"));
    }

    #[test]
    fn star_and_question_semantics() {
        assert!(fnm("*.a.org", "x.a.org") && !fnm("*.a.org", "a.org") && fnm("?.org", "x.org"));
        assert!(fnm("*.EXAMPLE.com", "mail.example.COM") && !fnm("?.org", "xy.org"));
        assert!(fnm("m?il*.??", "mail7.de") && !fnm("m?il*.??", "mail7.com"));
    }

    #[test]
    fn agrees_with_backtracking_reference() {
        let alphabet = [b'a', b'b', b'*', b'?'];
        let mut patterns = vec![Vec::new()];
        for _ in 0..5 {
            let next: Vec<Vec<u8>> =
                patterns.iter().flat_map(|p| alphabet.iter().map(move |&c| [p.clone(), vec![c]].concat())).collect();
            patterns.extend(next.into_iter().filter(|p| p.len() <= 5));
            patterns.sort();
            patterns.dedup();
        }
        let subjects: Vec<Vec<u8>> = (0..64u32)
            .flat_map(|bits| {
                (0..=6).map(move |len| (0..len).map(|i| if bits >> i & 1 == 1 { b'b' } else { b'a' }).collect())
            })
            .collect();
        for p in &patterns {
            let ps = std::str::from_utf8(p).unwrap();
            for s in &subjects {
                let ss = std::str::from_utf8(s).unwrap();
                assert_eq!(Glob::star_only(ps).matches(ss), reference(p, s, false), "{ps} {ss}");
                assert_eq!(Glob::star_and_question(ps).matches(ss), reference(p, s, true), "{ps} ? {ss}");
            }
        }
    }
}
