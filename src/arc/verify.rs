//! ARC chain validation (RFC 8617 §5.2), streaming like DKIM: the chain is collected and the
//! newest ARC-Message-Signature parsed from the header block, its body hash computed as the body
//! streams, and the keys fetched and the signatures checked at [`Verifier::finish`].
//!
//! The steps: the structure ([`super::collect`]: sets 1..N complete, at most 50, cv=none on
//! i=1 and cv=pass above, no cv=fail); the newest AMS as a DKIM signature (`bh=` over the body,
//! the `h=` fields and the AMS itself with `b=` emptied, by its `c=`, simple/simple when
//! absent as in RFC 6376); then every ARC-Seal from N down to 1, over the sets 1..i in
//! instance order, each AAR, AMS, AS relaxed, the AS being checked last with `b=` emptied and
//! no line end. A key that cannot be fetched for now makes the result `temperror` unless
//! another step fails for good. `arc.oldest-pass` (optional in RFC 8617) is not computed.
//! Algorithms: rsa-sha256 and ed25519-sha256 (rsa-sha1 fails, RFC 8301); keys 1024 to 8192
//! bits, as for DKIM.

use super::{collect, Chain, Set};
use crate::dkim::canon::{self, BodyHasher};
use crate::dkim::tags::{h_names, strip_ws, TagList};
use crate::dkim::verify::{fetch_key, verify_sig, Outcome};
use crate::dkim::{Algorithm, Canon, Canonicalization};
use crate::dns::{TxtAnswer, TxtLookup};
use crate::message::Headers;
use base64::Engine;

use super::{ArcOutput, ArcResult};

/// The newest AMS, parsed.
#[derive(Debug, Clone)]
struct Ams {
    alg: Algorithm,
    canon: Canonicalization,
    domain: String,
    selector: String,
    names: Vec<String>,
    bh: Vec<u8>,
    b: Vec<u8>,
    length: Option<u64>,
    /// `x=`: after it the AMS no longer verifies (RFC 6376 §3.5, as our DKIM verifier).
    expires: Option<u64>,
}

/// Validates the ARC chain of one message.
pub struct Verifier {
    chain: Chain,
    /// The newest set's AMS, or why it is unusable.
    ams: std::result::Result<Ams, String>,
    hasher: Option<BodyHasher>,
    /// The time an AMS `x=` is compared with (Unix seconds).
    now: u64,
}

impl Verifier {
    /// Collects the chain and prepares the body hash of its newest AMS (before the body is read).
    /// The AMS expiry is checked against the system clock; see [`Verifier::at`].
    pub fn new(headers: &Headers) -> Verifier {
        let chain = collect(headers);
        let ams = match &chain {
            Chain::Sets(sets) => match sets.last() {
                Some(s) => parse_ams(&s.ams_tags, s.instance),
                None => Err("internal: empty chain".into()),
            },
            _ => Err(String::new()),
        };
        let hasher = ams.as_ref().ok().map(|a| BodyHasher::new(a.canon.body, a.alg.hash(), a.length));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Verifier { chain, ams, hasher, now }
    }

    /// The same, with the run's time for the AMS `x=`.
    pub(crate) fn at(mut self, now: u64) -> Verifier {
        self.now = now;
        self
    }

    /// Body bytes, in order, in any pieces.
    pub fn body(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
    }

    /// Checks the newest AMS and every seal.
    pub fn finish(self, headers: &Headers, dns: &dyn TxtLookup) -> ArcOutput {
        let Verifier { chain, ams, hasher, now } = self;
        let fail = |why: String, n: u32| ArcOutput { result: ArcResult::Fail, reason: why, instances: n };
        let sets = match chain {
            Chain::None => return ArcOutput { result: ArcResult::None, reason: String::new(), instances: 0 },
            Chain::Broken(b) => return fail(b.why, 0),
            Chain::Sets(sets) => sets,
        };
        let Some(newest) = sets.last() else { return fail("internal: empty chain".into(), 0) };
        let n = newest.instance;
        if !in_range(headers, &sets) {
            return fail("internal: the header block changed".into(), n);
        }
        let (ams, body) = match (ams, hasher) {
            (Ok(a), Some(_)) if a.expires.is_some_and(|x| x < now) => {
                return fail(format!("ARC-Message-Signature i={n} has expired (x= is in the past)"), n)
            }
            (Ok(a), Some(h)) => (a, h.finish()),
            (Err(why), _) => return fail(why, n),
            (Ok(_), None) => return fail("internal: no body hash".into(), n),
        };
        let mut cache: Vec<(String, TxtAnswer)> = Vec::new();
        let mut temp: Option<String> = None;
        let mut check = |step: std::result::Result<(), (Outcome, String)>| -> Option<ArcOutput> {
            match step {
                Ok(()) => None,
                Err((Outcome::DnsTempFailure, why)) => {
                    temp.get_or_insert(why);
                    None
                }
                Err((_, why)) => Some(fail(why, n)),
            }
        };
        if let Some(v) = check(check_ams(headers, newest, &ams, &body, dns, &mut cache)) {
            return v;
        }
        for i in (0..sets.len()).rev() {
            if let Some(v) = check(check_seal(headers, &sets[..=i], dns, &mut cache)) {
                return v;
            }
        }
        match temp {
            Some(why) => ArcOutput { result: ArcResult::TempError, reason: why, instances: n },
            None => ArcOutput { result: ArcResult::Pass, reason: String::new(), instances: n },
        }
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(strip_ws(s).as_bytes()).ok().filter(|b| !b.is_empty())
}

/// The algorithm, `d=` and `s=` that an AMS and an AS share (RFC 8617 §4.1.2, §4.1.3).
fn signer(tags: &TagList, what: &str) -> std::result::Result<(Algorithm, String, String), String> {
    let a = tags.get("a").ok_or_else(|| format!("{what} has no a="))?;
    let alg = match Algorithm::parse(a) {
        Some(Algorithm::RsaSha1) => return Err(format!("{what} uses rsa-sha1 (RFC 8301)")),
        Some(alg) => alg,
        None => return Err(format!("{what} has an unknown algorithm")),
    };
    let name = |t: &str| {
        let v = tags.get(t).unwrap_or_default().to_ascii_lowercase();
        let v = v.strip_suffix('.').unwrap_or(&v).to_string();
        if crate::domain::is_label_list(&v) {
            Ok(v)
        } else {
            Err(format!("{what} has no valid {t}="))
        }
    };
    Ok((alg, name("d")?, name("s")?))
}

fn parse_ams(tags: &TagList, instance: u32) -> std::result::Result<Ams, String> {
    let what = format!("ARC-Message-Signature i={instance}");
    let (alg, domain, selector) = signer(tags, &what)?;
    let b = tags.get("b").and_then(b64).ok_or_else(|| format!("{what} has no valid b="))?;
    let bh = tags.get("bh").and_then(b64).ok_or_else(|| format!("{what} has no valid bh="))?;
    let names =
        h_names(tags.get("h").ok_or_else(|| format!("{what} has no h="))?).map_err(|e| format!("{what}: {e}"))?;
    if names.iter().any(|n| n.is_empty()) {
        return Err(format!("{what} has an empty name in h="));
    }
    // RFC 8617 §4.1.2: the AMS must not sign ARC-Seal fields.
    if names.iter().any(|n| n.eq_ignore_ascii_case("arc-seal")) {
        return Err(format!("{what} signs ARC-Seal"));
    }
    let canon = match tags.get("c") {
        None => Canonicalization { header: Canon::Simple, body: Canon::Simple },
        Some(c) => Canonicalization::parse(c).ok_or_else(|| format!("{what} has an unknown c="))?,
    };
    let length = match tags.get("l") {
        None => None,
        Some(l) if !l.is_empty() && l.bytes().all(|c| c.is_ascii_digit()) => Some(l.parse().unwrap_or(u64::MAX)),
        Some(_) => return Err(format!("{what} has an invalid l=")),
    };
    let number = |t: &str| match tags.get(t) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) => Ok(Some(v.parse().unwrap_or(u64::MAX))),
        Some(_) => Err(format!("{what} has an invalid {t}=")),
    };
    let (signed, expires) = (number("t")?, number("x")?);
    if let (Some(t), Some(x)) = (signed, expires) {
        if x < t {
            return Err(format!("{what} has x= before t="));
        }
    }
    Ok(Ams { alg, canon, domain, selector, names, bh, b, length, expires })
}

type Step = std::result::Result<(), (Outcome, String)>;

fn bad(why: String) -> Step {
    Err((Outcome::Fail, why))
}

fn check_ams(
    headers: &Headers,
    set: &Set,
    ams: &Ams,
    body: &(Vec<u8>, u64),
    dns: &dyn TxtLookup,
    cache: &mut Vec<(String, TxtAnswer)>,
) -> Step {
    let i = set.instance;
    let (hash, total) = body;
    if ams.length.is_some_and(|l| *total < l) {
        return bad(format!("body shorter than l= of ARC-Message-Signature i={i}"));
    }
    if *hash != ams.bh {
        return bad(format!("body hash differs from bh= of ARC-Message-Signature i={i}"));
    }
    let name = format!("{}._domainkey.{}", ams.selector, ams.domain);
    let key = fetch_key(dns, cache, &name, ams.alg)?;
    let mut data = Vec::with_capacity(4096);
    canon::signed_headers(ams.canon.header, headers, &ams.names, Some(set.ams), &mut data);
    canon::signature_header(ams.canon.header, headers.raw(&headers.fields[set.ams]), &mut data);
    if !verify_sig(&key.key, ams.alg, &data, &ams.b) {
        return bad(format!("ARC-Message-Signature i={i} does not verify ({name})"));
    }
    Ok(())
}

/// The seal of the last of `sets` over all of them.
fn check_seal(headers: &Headers, sets: &[Set], dns: &dyn TxtLookup, cache: &mut Vec<(String, TxtAnswer)>) -> Step {
    let Some(set) = sets.last() else { return bad("internal: no set".into()) };
    let what = format!("ARC-Seal i={}", set.instance);
    let tags = &set.seal_tags;
    let (alg, domain, selector) = signer(tags, &what).map_err(|w| (Outcome::Fail, w))?;
    if tags.get("h").is_some() {
        return bad(format!("{what} has h="));
    }
    let Some(b) = tags.get("b").and_then(b64) else { return bad(format!("{what} has no valid b=")) };
    let name = format!("{selector}._domainkey.{domain}");
    let key = fetch_key(dns, cache, &name, alg)?;
    let data = seal_data(headers, sets);
    if !verify_sig(&key.key, alg, &data, &b) {
        return bad(format!("{what} does not verify ({name})"));
    }
    Ok(())
}

/// What the seal of the last of `sets` signs (RFC 8617 §5.1.1): AAR, AMS, AS of each set in
/// instance order, relaxed, the last AS with `b=` emptied and without its line end.
fn seal_data(headers: &Headers, sets: &[Set]) -> Vec<u8> {
    let mut data = Vec::with_capacity(4096 * sets.len());
    if let Some((last, below)) = sets.split_last() {
        sets_data(headers, below, &mut data);
        canon::header(Canon::Relaxed, headers, &headers.fields[last.aar], &mut data);
        canon::header(Canon::Relaxed, headers, &headers.fields[last.ams], &mut data);
        canon::signature_header(Canon::Relaxed, headers.raw(&headers.fields[last.seal]), &mut data);
    }
    data
}

/// Whether the fields `sets` name are in `headers` (the block they were collected from).
pub(crate) fn in_range(headers: &Headers, sets: &[Set]) -> bool {
    sets.iter().all(|s| [s.aar, s.ams, s.seal].iter().all(|&f| f < headers.fields.len()))
}

/// AAR, AMS, AS of each set, relaxed, each with its line end: what a seal signs below its own set.
pub(crate) fn sets_data(headers: &Headers, sets: &[Set], out: &mut Vec<u8>) {
    for s in sets {
        for f in [s.aar, s.ams, s.seal] {
            canon::header(Canon::Relaxed, headers, &headers.fields[f], out);
        }
    }
}
