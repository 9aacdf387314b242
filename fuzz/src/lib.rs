//! Shared pieces of the fuzz targets: fixed test keys, a tiny input cursor, and a plain
//! (non-streaming) reference body canonicalizer to check the streaming one against.

use qmail_dkim::dkim::canon::BodyHasher;
use qmail_dkim::dkim::key::SigningKey;
use qmail_dkim::dkim::sign::{self, SignParams};
use qmail_dkim::dkim::{Algorithm, Canon, Canonicalization};
use qmail_dkim::message::Headers;
use std::sync::OnceLock;

/// A 2048-bit RSA test key made for the fuzzers only (PKCS#8). Never used for real mail.
pub const RSA_PEM: &str = "
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDU9/mZt8X8CuwM
BHSN1abG/7h6yB72ChKqQWMDUbzsP9n7dLcIitiW8Hugs55mwoOw5UWjvoPzeIFM
bNLqo8LIo/5K80+cHeMJzKa7+yXQ7TKmkjp3Cu4wF3XvtxcmKvu9qa0AO5NpG1JH
3lBJQDlIQg2ieHMhe1hmFW5c8VFv5TgIy7WfOLStPAI6ehD/fRV1hkmZIK1dPd3z
fibAvgEpOFFpuSaAQxbX9plNU0uU71BguwlcVcTH57UzPkhgppjDNXmkNe3cCZKp
BQrJVYl7z1Yqu60HrySezk01COvTGC4JaDs0mKcejqVjx3CMeTYZPuSkLHI//tUw
VaTgSVmDAgMBAAECggEAG2TiWGGJOAh3oHwaOfxXfZV7N1/yi5d0Gy5Z/B1Rfdog
wfWbbZ/eiFvaqysvnuw6YFC9iniBJJpFl30QDFqQPZrKpP1zKhO2Fpaag+ekT6GT
OFXq61EenlUGOJWGhsRUqWrf8/210nlPNitkjGeUdrT4aAOyW4YwMsFi9tWbsha/
8G70FUfgR8BXXV8mY3SFpeVfYx7zWITObbohN4Mzfc5waoy/sTt6u6lQy9h1PcIh
2xrdFp4xwVhyZhHMBXmhBMGgZ7VVAhcJ5NLadfd6c/afUI7By2gMz3IzdjxCspKh
6fOqblQ75xjofICsMUWo7CWB2ELKK655FoGZuGjmQQKBgQDtctNLITf9E/ynXmvm
4ExpYkY6tFPRbw/rBTm22emN1mrZCYeg3qNVVOnNYmcUfKUGBzW7TfAm3bOnqYNI
QPHmCHunSEKcIlqLR2VI4haJzpPkg15njLMnbNdfslsbqxRRLySKF1pQSjS/p9fV
T8WqphONjEjYKjI378QOn4nUcQKBgQDlm4frD+QArLmFUojbgwL3MTj5UVMCc+oU
IweNL+HII+q86oNyYPdG2jQzMYUdNwqXNAZsMl/GYO9ebAZe1SIg5E9gvkoHGVc0
sbYhO6uUvQ0veh0+2vN6wC0jEN5+n767IG05KW5ft5lB07WFrX3ZQgVxCM6yH0Ek
a21SKwv3MwKBgCNY4JNiko8eFpJjv/RSl41oj8PVbFTVD62QzZKmxdnTfXxpqsML
4YymY1erumSWWYqYMCt94q4mesQOu/hZkqkHwkCYxTGw+4GYUz+SSICjO+jclYUc
sN7BmR4p0t4/jXq4ZdwYtd0V7txJBBxBD8/jgS2lIILtZSRmkO0MWtxBAoGABBeR
hI7z8U8iv02JQuBC3UTzTv40DIckVNeK+ukvjPGW7WcAkLlJrumUpJTtWmfwuGEk
/CiprE9t9LDYLDiAMzXedErv5tB8zWOda1o05KG56m6ytrwQOs/R/h3+2SLfs1YQ
nEQww2PyR0oOoiNFaunSTwFpLaOA9bU0bZJ21CECgYEA6AodEnO5GRwndnw7t9/E
1Ml7ZZJz5oQq1usfzdDQbODibYAMTnRdZqgfoBN6s9Aw/fRgUIke/5pDtojLhgD9
Dsy2CqXX++7sJ2rxTjl118AdDJHHySMdYUdFiZxxp/iCU5SfOLKNtiIgPAAG+GyK
28mncvbO6KqnJnzplj7Nvyc=
-----END PRIVATE KEY-----
";

/// RFC 8463 Appendix A: the Ed25519 test key, as OpenSSL writes it (PKCS#8 v1).
pub const ED25519_PEM: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";

pub fn rsa_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| match SigningKey::from_pem(RSA_PEM.as_bytes(), false) {
        Ok(k) => k,
        Err(e) => panic!("fuzz RSA key does not load: {e}"),
    })
}

/// The same RSA key through the `rsa` crate (can sign rsa-sha1).
pub fn rsa_sha1_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| match SigningKey::from_pem(RSA_PEM.as_bytes(), true) {
        Ok(k) => k,
        Err(e) => panic!("fuzz RSA key does not load: {e}"),
    })
}

pub fn ed25519_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| match SigningKey::from_pem(ED25519_PEM.as_bytes(), false) {
        Ok(k) => k,
        Err(e) => panic!("fuzz Ed25519 key does not load: {e}"),
    })
}

/// Takes bytes from the front of the fuzz input.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from(self.byte()) << 8 | u16::from(self.byte())
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }

    /// A length-prefixed piece (one length byte).
    pub fn piece(&mut self) -> &'a [u8] {
        let n = self.byte() as usize;
        self.take(n)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

/// Splits `data` into pieces whose lengths come from `sizes` (cycled; 0 is allowed and makes
/// an empty piece). Concatenated, the pieces are `data`.
pub fn split<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let want = if sizes.is_empty() { rest.len() } else { sizes[i % sizes.len()] as usize };
        i += 1;
        let n = want.min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
        if i > 100_000 {
            out.push(rest);
            break;
        }
    }
    out
}

/// RFC 6376 §3.4.3 / §3.4.4 body canonicalization, written as plainly as possible, of our
/// LF-ended input: lines end at LF, a CR right before an LF belongs to the line end, any other
/// CR is data; a last line without LF is a line. The streaming `BodyHasher` must agree.
pub fn reference_body(canon: Canon, data: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut parts: Vec<&[u8]> = data.split(|&c| c == b'\n').collect();
    // split() yields a last, empty piece after a final LF: that is not a line.
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    let n = parts.len();
    for (i, p) in parts.into_iter().enumerate() {
        let ended_by_lf = i + 1 < n || data.ends_with(b"\n");
        let mut line = p.to_vec();
        if ended_by_lf && line.last() == Some(&b'\r') {
            line.pop();
        }
        if canon == Canon::Relaxed {
            let mut r = Vec::with_capacity(line.len());
            let mut ws = false;
            for c in line {
                if c == b' ' || c == b'\t' {
                    ws = true;
                } else {
                    if ws {
                        r.push(b' ');
                    }
                    ws = false;
                    r.push(c);
                }
            }
            // Trailing whitespace is dropped (ws pending at the end is never written).
            line = r;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
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

/// Signs a message the way `run` does: `split` is what `find_header_end` gave (block end,
/// body start); parse the block, hash the body, make the field. Returns our field followed by
/// the message, byte for byte.
pub fn sign_split(msg: &[u8], split: (usize, usize), p: &SignParams, key: &SigningKey) -> Vec<u8> {
    let headers = Headers::parse(msg[..split.0].to_vec());
    let mut h = BodyHasher::new(p.canon.body, p.algorithm.hash(), None);
    h.update(&msg[split.1..]);
    let (hash, len) = h.finish();
    let mut out = match sign::sign(&headers, p, &hash, len, key) {
        Ok(f) => f,
        Err(e) => panic!("signing failed: {e}"),
    };
    out.extend_from_slice(msg);
    out
}

/// Signs `header_block` + blank line + `body`.
pub fn sign_message(header_block: &[u8], body: &[u8], p: &SignParams, key: &SigningKey) -> Vec<u8> {
    let mut msg = header_block.to_vec();
    msg.push(b'\n');
    let start = msg.len();
    msg.extend_from_slice(body);
    sign_split(&msg, (header_block.len(), start), p, key)
}

/// Signing parameters with everything optional off.
pub fn params(algorithm: Algorithm, canon: Canonicalization, headers: &Headers) -> SignParams {
    SignParams {
        algorithm,
        canon,
        domain: "example.com".into(),
        selector: "fuzz".into(),
        identity: None,
        timestamp: None,
        expire: None,
        body_length: false,
        query_tag: false,
        copy_headers: false,
        headers: sign::default_header_list(headers, &[]),
    }
}

/// The key record that publishes `key`.
pub fn key_record(key: &SigningKey) -> Vec<u8> {
    use base64::Engine;
    let k = if key.key_type() == qmail_dkim::dkim::key::KeyType::Ed25519 { "ed25519" } else { "rsa" };
    format!("v=DKIM1; k={k}; p={}", base64::engine::general_purpose::STANDARD.encode(key.public_key_dns())).into_bytes()
}

/// Most questions one fuzz run may ask a [`Zone`] before it panics: far above what SPF
/// (10 terms, 10 MX or PTR names each), DMARC (2) or ARC (51 keys) may ask, so reaching it is
/// a lookup limit that does not hold.
pub const MAX_QUESTIONS: usize = 1000;

/// A DNS zone written in the fuzz input, one record a line: `name TYPE value`, TYPE one of
/// `TXT` (value: the record, any bytes), `A`, `AAAA`, `MX` (`pref host`), `PTR` (name: the
/// reverse name, `1.2.0.192.in-addr.arpa`), `TEMPFAIL` (every question for the name fails for
/// now). Names are matched without case and final dot; other lines are ignored. Counts the
/// questions, for the lookup limits.
#[derive(Default)]
pub struct Zone {
    records: std::collections::HashMap<String, Vec<Rec>>,
    pub asked: std::cell::Cell<usize>,
}

#[derive(Debug, Clone)]
enum Rec {
    Txt(Vec<u8>),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx(u16, String),
    Ptr(String),
    TempFail,
}

use qmail_dkim::dns::{self, Answer, Mx, Resolver, TxtAnswer, TxtLookup};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn key_of(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Zone {
    /// The records of the lines of `text` that are records; the other lines are returned.
    pub fn parse(text: &[u8]) -> (Zone, Vec<&[u8]>) {
        let mut z = Zone::default();
        let mut other = Vec::new();
        for line in text.split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !z.add_line(line) {
                other.push(line);
            }
        }
        (z, other)
    }

    fn add_line(&mut self, line: &[u8]) -> bool {
        let mut it = line.splitn(3, |&c| c == b' ');
        let (Some(name), Some(rtype), value) = (it.next(), it.next(), it.next().unwrap_or_default()) else {
            return false;
        };
        let text = String::from_utf8_lossy(value);
        let rec = match rtype {
            b"TXT" => Rec::Txt(value.to_vec()),
            b"A" => match text.trim().parse() {
                Ok(a) => Rec::A(a),
                Err(_) => return false,
            },
            b"AAAA" => match text.trim().parse() {
                Ok(a) => Rec::Aaaa(a),
                Err(_) => return false,
            },
            b"MX" => match text.trim().split_once(' ').map(|(p, h)| (p.parse(), h)) {
                Some((Ok(p), h)) => Rec::Mx(p, h.to_string()),
                _ => return false,
            },
            b"PTR" => Rec::Ptr(text.trim().to_string()),
            b"TEMPFAIL" => Rec::TempFail,
            _ => return false,
        };
        self.add(&String::from_utf8_lossy(name), rec);
        true
    }

    fn add(&mut self, name: &str, r: Rec) {
        self.records.entry(key_of(name)).or_default().push(r);
    }

    pub fn txt_record(&mut self, name: &str, value: &[u8]) {
        self.add(name, Rec::Txt(value.to_vec()));
    }

    fn find<T>(&self, name: &str, f: impl Fn(&Rec) -> Option<T>) -> Answer<T> {
        let n = self.asked.get() + 1;
        self.asked.set(n);
        assert!(n <= MAX_QUESTIONS, "more than {MAX_QUESTIONS} DNS questions");
        if !dns::valid_name(name) {
            return Answer::BadName;
        }
        match self.records.get(&key_of(name)) {
            None => Answer::NotFound,
            Some(rs) if rs.iter().any(|r| matches!(r, Rec::TempFail)) => Answer::TempFail("fuzz".into()),
            Some(rs) => {
                let v: Vec<T> = rs.iter().filter_map(f).collect();
                if v.is_empty() {
                    Answer::NotFound
                } else {
                    Answer::Records(v)
                }
            }
        }
    }
}

impl TxtLookup for Zone {
    fn txt(&self, name: &str) -> TxtAnswer {
        match self.find(name, |r| match r {
            Rec::Txt(t) => Some(t.clone()),
            _ => None,
        }) {
            Answer::Records(v) => TxtAnswer::Records(v),
            Answer::NotFound => TxtAnswer::NotFound,
            Answer::TempFail(t) => TxtAnswer::TempFail(t),
            Answer::BadName => TxtAnswer::BadName,
        }
    }
}

impl Resolver for Zone {
    fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        self.find(name, |r| match r {
            Rec::A(a) => Some(*a),
            _ => None,
        })
    }
    fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        self.find(name, |r| match r {
            Rec::Aaaa(a) => Some(*a),
            _ => None,
        })
    }
    fn mx(&self, name: &str) -> Answer<Mx> {
        self.find(name, |r| match r {
            Rec::Mx(p, e) => Some(Mx { preference: *p, exchange: e.clone() }),
            _ => None,
        })
    }
    fn ptr(&self, ip: IpAddr) -> Answer<String> {
        self.find(&dns::reverse_name(ip), |r| match r {
            Rec::Ptr(p) => Some(p.clone()),
            _ => None,
        })
    }
    /// A name exists when it or a name below it has a record (an empty non-terminal exists).
    fn exists(&self, name: &str) -> Result<bool, String> {
        let n = self.asked.get() + 1;
        self.asked.set(n);
        assert!(n <= MAX_QUESTIONS, "more than {MAX_QUESTIONS} DNS questions");
        let name = key_of(name);
        if self.records.get(&name).is_some_and(|rs| rs.iter().any(|r| matches!(r, Rec::TempFail))) {
            return Err("fuzz".into());
        }
        let below = format!(".{name}");
        Ok(self.records.keys().any(|k| *k == name || k.ends_with(&below)))
    }
}

/// The zone and settings (the lines before a `--` line) and the message after it.
pub fn zone_and_message(data: &[u8]) -> (Zone, Vec<&[u8]>, &[u8]) {
    let (head, msg) = match data.windows(4).position(|w| w == b"\n--\n") {
        Some(p) => (&data[..p], &data[p + 4..]),
        None => (&b""[..], data),
    };
    let (zone, other) = Zone::parse(head);
    (zone, other, msg)
}

/// The value of the first `word value` line among `lines` (empty for a line `word`).
pub fn setting<'a>(lines: &[&'a [u8]], word: &str) -> Option<&'a [u8]> {
    lines.iter().find_map(|l| {
        let rest = l.strip_prefix(word.as_bytes())?;
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix(b" ")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_matches_rfc_examples() {
        let body = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(reference_body(Canon::Relaxed, body), b" C\r\nD E\r\n");
        assert_eq!(reference_body(Canon::Simple, body), b" C \r\nD \t E\r\n");
        assert_eq!(reference_body(Canon::Simple, b""), b"\r\n");
        assert_eq!(reference_body(Canon::Relaxed, b""), b"");
        assert_eq!(reference_body(Canon::Simple, b"a\r"), b"a\r\r\n");
        assert_eq!(reference_body(Canon::Relaxed, b"a \r\n \t\n"), b"a\r\n");
    }

    #[test]
    fn keys_load() {
        rsa_key();
        rsa_sha1_key();
        ed25519_key();
    }
}
