//! `tag=value; …` lists (RFC 6376 §3.2), used by DKIM-Signature, key records and DomainKeys.
//! The one parser of this grammar and of the `h=` list: every caller goes through here, so the
//! bounds below hold everywhere.

use std::collections::HashSet;

/// Tags per list. DKIM-Signature defines 14 tags, key records 7, DomainKeys 9: a list with more
/// is refused as a whole ([`TagError::TooMany`]), so a field of 80,000 tags costs only the scan
/// up to the 65th. Parsing stays linear below the cap (names are checked for duplicates in a set).
pub(crate) const MAX_TAGS: usize = 64;

/// Names in an `h=` list (DKIM and DomainKeys): every field of the largest header accepted,
/// listed twice (signed and oversigned). Our own signer lists every signable field once, plus
/// one `from`, so its signatures always fit. A longer list makes its signature invalid
/// ([`TagError::TooManyNames`]), found while splitting, before more names are kept: a 4 MiB
/// `h=` of empty names used to cost ~110 MiB, now at most a few MiB.
pub(crate) const MAX_H_NAMES: usize = 2 * crate::message::MAX_HEADER_FIELDS;

/// A parsed tag list: names and values with folding whitespace removed around them.
/// Values keep inner whitespace; callers that need it removed (b=, bh=, p=) strip it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagList {
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("tag without '=': {0:?}")]
    NoEquals(String),
    #[error("empty tag-spec (two ';' in a row)")]
    Empty,
    #[error("invalid tag name: {0:?}")]
    BadName(String),
    #[error("duplicate tag: {0}")]
    Duplicate(String),
    #[error("value is not valid text")]
    NotText,
    #[error("more than {MAX_TAGS} tags")]
    TooMany,
    #[error("h= lists more than {MAX_H_NAMES} names")]
    TooManyNames,
}

impl TagList {
    /// The tag-list of a signature (DKIM-Signature, ARC-Message-Signature, ARC-Seal,
    /// DomainKey-Signature), as RFC 6376 §3.2 writes it: every item `name=value`, names
    /// `ALPHA *(ALNUM / "_")`, no name twice (a duplicate makes the whole list invalid), one
    /// `;` after the last tag allowed but no empty tag-spec between two (`s=x;;`).
    /// At most [`MAX_TAGS`] tags.
    pub fn parse(input: &[u8]) -> Result<TagList, TagError> {
        Self::parse_at_most(input, MAX_TAGS, false)
    }

    /// The tag-list of a DNS record (DKIM and DomainKeys key records, DMARC and policy
    /// records): as [`TagList::parse`], but empty tag-specs are skipped, as Mail::DKIM reads
    /// them (dkimpy refuses them); a domain's stray `;` must not fail all its mail.
    pub fn parse_record(input: &[u8]) -> Result<TagList, TagError> {
        Self::parse_at_most(input, MAX_TAGS, true)
    }

    fn parse_at_most(input: &[u8], max: usize, skip_empty: bool) -> Result<TagList, TagError> {
        let s = std::str::from_utf8(input).map_err(|_| TagError::NotText)?;
        let mut tags: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut items = s.split(';').peekable();
        while let Some(item) = items.next() {
            let item = trim_fws(item);
            if item.is_empty() {
                // Only after the last `;` (or in an empty list) is nothing allowed.
                if skip_empty || items.peek().is_none() {
                    continue;
                }
                return Err(TagError::Empty);
            }
            let (n, v) = item.split_once('=').ok_or_else(|| TagError::NoEquals(item.to_string()))?;
            let n = trim_fws(n);
            let mut chars = n.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(TagError::BadName(n.to_string()));
            }
            if tags.len() == max {
                return Err(TagError::TooMany);
            }
            if !seen.insert(n) {
                return Err(TagError::Duplicate(n.to_string()));
            }
            tags.push((n.to_string(), trim_fws(v).to_string()));
        }
        Ok(TagList { tags })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn trim_fws(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// The names of an `h=` list with all folding whitespace removed, in order; more than
/// [`MAX_H_NAMES`] is an error, noticed before the extra names are kept.
pub(crate) fn h_names(value: &str) -> Result<Vec<String>, TagError> {
    let mut names = Vec::new();
    for item in value.split(':') {
        if names.len() == MAX_H_NAMES {
            return Err(TagError::TooManyNames);
        }
        names.push(strip_ws(item));
    }
    Ok(names)
}

/// Removes all folding whitespace (for base64 values).
pub fn strip_ws(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n')).collect()
}

/// DKIM-Quoted-Printable (RFC 6376 §2.11) for z= and i=: everything outside `!`..`~` except
/// `;` and `=`, plus `|` (the z= separator), is written `=XX`.
pub fn dkim_qp_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        if (0x21..=0x7e).contains(&b) && b != b';' && b != b'=' && b != b'|' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let t = TagList::parse(b" v=1; a=rsa-sha256;\r\n\tb=ab\r\n cd ;").unwrap();
        assert_eq!(t.get("v"), Some("1"));
        assert_eq!(t.get("b"), Some("ab\r\n cd"));
        assert_eq!(strip_ws(t.get("b").unwrap()), "abcd");
    }

    /// RFC 6376 §3.2: `tag-list = tag-spec *( ";" tag-spec ) [ ";" ]`. dkimpy refuses an empty
    /// tag-spec everywhere, Mail::DKIM reads it everywhere: signatures follow the grammar (and
    /// ValiMail's ARC suite), records are read as Mail::DKIM reads them.
    #[test]
    fn empty_tag_spec_is_an_error_in_a_signature_and_skipped_in_a_record() {
        for bad in [&b"cv=none; d=example.org; i=1; s=dummy;;\r\n t=12345"[..], b";a=b", b"a=b; ;c=d", b"a=b;;"] {
            assert_eq!(TagList::parse(bad), Err(TagError::Empty), "{}", String::from_utf8_lossy(bad));
        }
        for ok in [&b"a=b;"[..], b"a=b; \r\n", b"a=b", b"", b" \r\n "] {
            assert!(TagList::parse(ok).is_ok(), "{}", String::from_utf8_lossy(ok));
        }
        let r = TagList::parse_record(b"v=DKIM1;; k=rsa; p=abc;;").unwrap();
        assert_eq!((r.get("v"), r.get("k"), r.get("p")), (Some("DKIM1"), Some("rsa"), Some("abc")));
    }

    #[test]
    fn rejects() {
        assert!(matches!(TagList::parse(b"v=1; v=2"), Err(TagError::Duplicate(_))));
        assert!(matches!(TagList::parse(b"v"), Err(TagError::NoEquals(_))));
        assert!(matches!(TagList::parse(b"1a=x"), Err(TagError::BadName(_))));
        assert!(TagList::parse(b"").unwrap().tags.is_empty());
    }

    /// Many tags with empty values (`t0=;t1=;…`); the cap and linearity tests below use it.
    fn empty_tags(n: usize) -> Vec<u8> {
        (0..n).map(|i| format!("t{i}=;")).collect::<String>().into_bytes()
    }

    #[test]
    fn dkim_signature_with_80000_empty_tags_is_linear() {
        // Was ~15 s: the duplicate check compared each name with all before it.
        let big = [b"v=1; a=rsa-sha256; ".as_slice(), &empty_tags(80_000)].concat();
        assert_eq!(TagList::parse(&big), Err(TagError::TooMany));
        let at_cap = empty_tags(MAX_TAGS);
        assert_eq!(TagList::parse(&at_cap).map(|t| t.tags.len()), Ok(MAX_TAGS));
        // Without the cap the parser is linear.
        crate::linear::assert_linear(
            "tags",
            2_000,
            |n| {
                let input = empty_tags(n);
                // Records: the same list with an empty tag-spec after each tag.
                let doubled = String::from_utf8_lossy(&input).replace(';', ";;").into_bytes();
                move || {
                    assert_eq!(TagList::parse_at_most(&input, usize::MAX, false).map(|t| t.tags.len()), Ok(n));
                    assert_eq!(TagList::parse_at_most(&doubled, usize::MAX, true).map(|t| t.tags.len()), Ok(n));
                }
            },
            |work| work(),
        );
        let m = empty_tags(80_000);
        // A duplicate far down the list is still found.
        let dup = [m.as_slice(), b"t3=x"].concat();
        assert_eq!(TagList::parse_at_most(&dup, usize::MAX, false), Err(TagError::Duplicate("t3".into())));
    }

    #[test]
    fn huge_h_list_is_bounded() {
        let names = |n: usize| vec!["from"; n].join(":");
        assert_eq!(h_names(&names(MAX_H_NAMES)).map(|v| v.len()), Ok(MAX_H_NAMES));
        assert_eq!(h_names(&names(MAX_H_NAMES + 1)), Err(TagError::TooManyNames));
        // 4 MiB of ":" (2M empty names) is refused after MAX_H_NAMES, without keeping the rest.
        assert_eq!(h_names(&":".repeat(4 << 20)), Err(TagError::TooManyNames));
        assert_eq!(h_names(" From :\r\n\tTo"), Ok(vec!["From".to_string(), "To".to_string()]));
    }

    #[test]
    fn qp() {
        assert_eq!(dkim_qp_encode(b"From: a|b;c=d"), "From:=20a=7Cb=3Bc=3Dd");
    }
}
