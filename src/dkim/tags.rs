//! `tag=value; …` lists (RFC 6376 §3.2), used by DKIM-Signature, key records and DomainKeys.

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
    #[error("invalid tag name: {0:?}")]
    BadName(String),
    #[error("duplicate tag: {0}")]
    Duplicate(String),
    #[error("value is not valid text")]
    NotText,
}

impl TagList {
    /// Strict parse: every non-empty item must be `name=value`, names `ALPHA *(ALNUM / "_")`,
    /// no name twice (RFC 6376 §3.2: a duplicate makes the whole list invalid).
    pub fn parse(input: &[u8]) -> Result<TagList, TagError> {
        let s = std::str::from_utf8(input).map_err(|_| TagError::NotText)?;
        let mut tags: Vec<(String, String)> = Vec::new();
        for item in s.split(';') {
            let item = trim_fws(item);
            if item.is_empty() {
                continue;
            }
            let (n, v) = item.split_once('=').ok_or_else(|| TagError::NoEquals(item.to_string()))?;
            let n = trim_fws(n);
            let mut chars = n.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(TagError::BadName(n.to_string()));
            }
            if tags.iter().any(|(k, _)| k == n) {
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

    #[test]
    fn rejects() {
        assert!(matches!(TagList::parse(b"v=1; v=2"), Err(TagError::Duplicate(_))));
        assert!(matches!(TagList::parse(b"v"), Err(TagError::NoEquals(_))));
        assert!(matches!(TagList::parse(b"1a=x"), Err(TagError::BadName(_))));
        assert!(TagList::parse(b"").unwrap().tags.is_empty());
    }

    #[test]
    fn qp() {
        assert_eq!(dkim_qp_encode(b"From: a|b;c=d"), "From:=20a=7Cb=3Bc=3Dd");
    }
}
