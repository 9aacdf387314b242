//! Making a `DomainKey-Signature:` (qmail-dk's `DKSIGN` side): which fields are signed, the
//! `DKSIGNOPTIONS`, and the field itself.

use super::canon::{field_name, select_fields};
use super::Canon;
use crate::dkim::key::SigningKey;
use crate::getopt::{getopt, OptionError};
use crate::message::Headers;
use base64::Engine;

/// DigestInfo prefix of SHA-1 (RFC 8017 §9.2).
const SHA1_PREFIX: &[u8] = &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];

/// Signing keys under this size are refused (as for DKIM).
pub use crate::dkim::key::MIN_RSA_BITS as MIN_SIGN_BITS;

/// `DKSIGNOPTIONS` (qmail-dk's getopt string `hrb:c:s:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// `-c simple|nofws` (default nofws).
    pub canon: Canon,
    /// `-h`: write h= (the names of the signed fields).
    pub with_h: bool,
    /// `-r`: leave out every field whose name occurs more than once; implies `-h`.
    pub rdupe: bool,
    /// `-s selector`: instead of the key file's basename.
    pub selector: Option<String>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions { canon: Canon::Nofws, with_h: false, rdupe: false, selector: None }
    }
}

/// Parses `DKSIGNOPTIONS`. `-b <n>` (libdomainkeys' advice length) is accepted and ignored.
pub fn parse_options(s: &str) -> Result<SignOptions, OptionError> {
    let mut o = SignOptions::default();
    getopt(s, &['b', 'c', 's'], |c, arg| {
        match (c, arg) {
            ('h', _) => o.with_h = true,
            ('r', _) => {
                o.rdupe = true;
                o.with_h = true;
            }
            ('c', Some(arg)) => {
                o.canon = Canon::parse(arg).ok_or_else(|| OptionError::invalid(c, "canonicalization", arg))?
            }
            ('s', Some(arg)) => {
                if arg.is_empty()
                    || !arg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                {
                    return Err(OptionError::invalid(c, "selector", arg));
                }
                o.selector = Some(arg.to_string());
            }
            ('b', Some(arg)) => {
                arg.parse::<u32>().map_err(|_| OptionError::invalid(c, "length", arg))?;
            }
            (other, _) => return Err(OptionError::Unknown(other)),
        }
        Ok(())
    })?;
    Ok(o)
}

/// The fields to sign, top to bottom, and the h= list (when one is written).
/// `exclude` (`DKEXCLUDEHEADERS`): names left out (case-insensitive); an exclusion or `-h`/`-r`
/// makes an h= list so that verifiers hash the same fields.
pub(crate) fn signed_fields(
    headers: &Headers,
    o: &SignOptions,
    exclude: &[String],
) -> (Vec<usize>, Option<Vec<String>>) {
    let exclude: Vec<String> =
        exclude.iter().map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).collect();
    if !o.with_h && exclude.is_empty() {
        return (select_fields(headers, 0, None), None);
    }
    let mut names: Vec<(usize, String, String)> = Vec::new();
    for i in 0..headers.fields.len() {
        let Some(lower) = field_name(headers, i) else { continue };
        if exclude.contains(&lower) {
            continue;
        }
        let shown = String::from_utf8_lossy(headers.name(&headers.fields[i])).into_owned();
        names.push((i, lower, shown));
    }
    if o.rdupe {
        let mut count: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (_, l, _) in &names {
            *count.entry(l.clone()).or_default() += 1;
        }
        names.retain(|(_, l, _)| count.get(l) == Some(&1));
    }
    let h: Vec<String> = names.iter().map(|(_, _, s)| s.clone()).collect();
    // Hash exactly what a verifier will pick with this h= (every instance listed, in order,
    // gives message order under Mail::DKIM's rule and libdomainkeys' alike).
    (select_fields(headers, 0, Some(&h)), Some(h))
}

/// Signs the SHA-1 digest of the canonical data with an RSA key (PKCS#1 v1.5).
pub(crate) fn sign_digest(key: &SigningKey, digest: &[u8]) -> Result<Vec<u8>, String> {
    if key.bits() < MIN_SIGN_BITS {
        return Err(format!("RSA key of {} bits is too short to sign (at least {MIN_SIGN_BITS})", key.bits()));
    }
    match key {
        SigningKey::Rsa(k) => {
            let pad = rsa::Pkcs1v15Sign { hash_len: Some(digest.len()), prefix: SHA1_PREFIX.into() };
            k.sign(pad, digest).map_err(|e| format!("RSA signing failed: {e}"))
        }
        SigningKey::Ring(_) => Err("internal: RSA key not loaded for SHA-1".into()),
        SigningKey::Ed25519(_) => Err("DomainKeys needs an RSA key, not Ed25519".into()),
    }
}

/// The complete `DomainKey-Signature:` field, LF-folded, ending in LF.
pub(crate) fn make_field(canon: Canon, selector: &str, domain: &str, h: Option<&[String]>, sig: &[u8]) -> Vec<u8> {
    let mut f = format!("DomainKey-Signature: a=rsa-sha1; q=dns; c={};\n\ts={selector}; d={domain};\n", canon.as_str());
    if let Some(h) = h {
        f.push_str("\th=");
        let mut col = 10;
        for (i, name) in h.iter().enumerate() {
            let piece = if i + 1 == h.len() { format!("{name};") } else { format!("{name}:") };
            if col + piece.len() > 78 && i > 0 {
                f.push_str("\n\t  ");
                col = 10;
            }
            f.push_str(&piece);
            col += piece.len();
        }
        if h.is_empty() {
            f.push(';');
        }
        f.push('\n');
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig);
    f.push_str("\tb=");
    crate::dkim::sign::fold_base64(&mut f, &b64, 66, 68, "\n\t  ");
    f.push_str(";\n");
    f.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(parse_options("").unwrap(), SignOptions::default());
        let o = parse_options("-c simple -h -s sel1").unwrap();
        assert_eq!((o.canon, o.with_h, o.rdupe, o.selector.as_deref()), (Canon::Simple, true, false, Some("sel1")));
        let o = parse_options("-r -cnofws -b 2048").unwrap();
        assert_eq!((o.canon, o.with_h, o.rdupe), (Canon::Nofws, true, true));
        let o = parse_options("-hr").unwrap();
        assert!(o.rdupe && o.with_h);
        for bad in ["-c relaxed", "-x", "-s", "h", "-b many", "-s a/b"] {
            assert!(parse_options(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_to_sign() {
        let h = Headers::parse(b"Received: a\nReceived: b\nFrom: x@y.z\nTo: t@u.v\nX-Spam: 1\nSubject: s\n".to_vec());
        let (f, hl) = signed_fields(&h, &SignOptions::default(), &[]);
        assert_eq!((f, hl), (vec![0, 1, 2, 3, 4, 5], None));
        let o = SignOptions { with_h: true, ..Default::default() };
        let (f, hl) = signed_fields(&h, &o, &[]);
        assert_eq!(f, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(hl.unwrap(), vec!["Received", "Received", "From", "To", "X-Spam", "Subject"]);
        let (f, hl) = signed_fields(&h, &SignOptions::default(), &["x-spam".into(), "TO".into()]);
        assert_eq!(f, vec![0, 1, 2, 5]);
        assert_eq!(hl.unwrap(), vec!["Received", "Received", "From", "Subject"]);
        let o = SignOptions { with_h: true, rdupe: true, ..Default::default() };
        let (f, hl) = signed_fields(&h, &o, &[]);
        assert_eq!(f, vec![2, 3, 4, 5]);
        assert_eq!(hl.unwrap(), vec!["From", "To", "X-Spam", "Subject"]);
    }

    #[test]
    fn field_layout() {
        let f =
            make_field(Canon::Nofws, "sel", "example.com", Some(&["From".to_string(), "To".to_string()]), &[0u8; 128]);
        let s = String::from_utf8(f).unwrap();
        assert!(s.starts_with(
            "DomainKey-Signature: a=rsa-sha1; q=dns; c=nofws;\n\ts=sel; d=example.com;\n\th=From:To;\n\tb="
        ));
        assert!(s.ends_with(";\n"));
        assert!(s.lines().all(|l| l.len() <= 78), "{s}");
        let t = crate::dkim::tags::TagList::parse(s.split_once(':').unwrap().1.as_bytes()).unwrap();
        assert_eq!(t.get("d"), Some("example.com"));
        assert_eq!(crate::dkim::tags::strip_ws(t.get("b").unwrap()).len(), 172);
    }
}
