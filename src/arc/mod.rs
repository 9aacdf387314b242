//! ARC (RFC 8617): validate the chain a message arrives with ([`verify`], `ARCVERIFY`); seal
//! it when we forward ([`seal`], `ARCSIGN`).
//!
//! **Decision:** ARC is our own code on our DKIM core (`crate::dkim`: the streaming
//! `BodyHasher` and the header canonicalization of `canon`, `TagList` and `h_names`, the key
//! lookup `fetch_key` and `verify_sig`, `SigningKey::sign`, the signature folding of `sign`),
//! not mail-auth's `verify_arc`/`ArcSealer`, because mail-auth 0.13.3 holds the whole message
//! in memory (we stream bodies of any size with bounded memory), its relaxed body
//! canonicalization keeps whitespace-only trailing lines (a wrong body hash; fixed in 0.15.0,
//! which needs a newer rustc), and its ARC is behind a feature (`arc`) that only our
//! dev-dependency enables. In tests, dkimpy's `arc_sign`/`arc_verify` and mail-auth's
//! `verify_arc` are the oracles: they check what we seal and seal what we check
//! (tests/e2e/arc.rs).
//!
//! Results (`arc=` of our Authentication-Results): `none` (no ARC header field), `pass`,
//! `fail` (with a reason), and `temperror` when a key could not be fetched for now and nothing
//! else failed. `temperror` is not an RFC 8617 word (its `cv` has only none/pass/fail), but
//! RFC 8601 defines it for every method and mail-auth reports ARC the same way: a DNS hiccup
//! must be neither a pass nor a permanent refusal (`ARCVERIFY` letter `T`, always temporary).
//!
//! Bounds (docs/security.md): at most [`MAX_INSTANCES`] ARC sets (RFC 8617 §4.2.1: i=1..50),
//! so at most [`MAX_ARC_FIELDS`] ARC header fields are examined, of at most [`MAX_ARC_BYTES`]
//! together; a chain beyond either fails without more work. Validation then costs one body hash,
//! one AMS and at most 50 seals, each over at most [`MAX_ARC_BYTES`] of header data, and at
//! most 51 key lookups (a key name asked once).

pub mod seal;
pub mod task;
pub mod verify;

use crate::dkim::tags::TagList;
use crate::message::Headers;

/// ARC sets in a chain (RFC 8617 §4.2.1); a longer chain fails, and is never sealed again.
pub const MAX_INSTANCES: u32 = 50;
/// ARC header fields examined: three per set. One more makes the chain fail, found while
/// counting, before any is parsed.
pub const MAX_ARC_FIELDS: usize = 3 * MAX_INSTANCES as usize;
/// The ARC header fields of a message together (50 real sets take about 150 KiB). More makes the
/// chain fail: each of the 50 seals hashes all sets below it, so this bounds that work.
pub const MAX_ARC_BYTES: usize = 1 << 20;

/// The three ARC header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ARC-Authentication-Results` (AAR).
    Aar,
    /// `ARC-Message-Signature` (AMS).
    Ams,
    /// `ARC-Seal` (AS).
    Seal,
}

impl Kind {
    pub fn of(name: &[u8]) -> Option<Kind> {
        if name.eq_ignore_ascii_case(b"ARC-Authentication-Results") {
            Some(Kind::Aar)
        } else if name.eq_ignore_ascii_case(b"ARC-Message-Signature") {
            Some(Kind::Ams)
        } else if name.eq_ignore_ascii_case(b"ARC-Seal") {
            Some(Kind::Seal)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Aar => "ARC-Authentication-Results",
            Kind::Ams => "ARC-Message-Signature",
            Kind::Seal => "ARC-Seal",
        }
    }
}

/// One complete ARC set: indices into `headers.fields`, and the parsed AMS and AS tags.
#[derive(Debug, Clone)]
pub struct Set {
    pub instance: u32,
    pub aar: usize,
    pub ams: usize,
    pub seal: usize,
    pub ams_tags: TagList,
    pub seal_tags: TagList,
}

/// The ARC chain of a message, as far as its structure goes (RFC 8617 §5.2 steps 1 to 4).
#[derive(Debug, Clone)]
pub enum Chain {
    /// No ARC header field.
    None,
    /// Sets 1..N, complete, each cv= as it must be; in instance order.
    Sets(Vec<Set>),
    /// Structurally invalid: the chain fails.
    Broken(Broken),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Why, for the `reason=` of `arc=fail`.
    pub why: String,
    /// The instance a sealer may add with `cv=fail` (covering only its own set, RFC 8617
    /// §5.1.2); `None` when it must not seal: the newest seal already says `cv=fail` (§5.1), the
    /// chain is at 50 sets, or an instance is unreadable or out of range (no next number).
    pub next: Option<u32>,
}

/// One ARC header field found.
struct Found {
    kind: Kind,
    index: usize,
    instance: u32,
    tags: Option<TagList>,
}

/// Collects and checks the ARC sets of a header block: linear in the block, and at most
/// [`MAX_ARC_FIELDS`] fields of [`MAX_ARC_BYTES`] are parsed.
pub fn collect(headers: &Headers) -> Chain {
    let broken = |why: String, next: Option<u32>| Chain::Broken(Broken { why, next });
    let mut found: Vec<Found> = Vec::new();
    let (mut seen, mut bytes) = (0usize, 0usize);
    let mut unreadable: Option<String> = None;
    for (index, f) in headers.fields.iter().enumerate() {
        let Some(kind) = Kind::of(headers.name(f)) else { continue };
        if seen == MAX_ARC_FIELDS {
            return broken(format!("more than {MAX_ARC_FIELDS} ARC header fields"), None);
        }
        seen += 1;
        bytes += f.raw.len();
        if bytes > MAX_ARC_BYTES {
            return broken(format!("ARC header fields of more than {MAX_ARC_BYTES} bytes"), None);
        }
        let value = headers.value(f);
        let (instance, tags) = match kind {
            Kind::Aar => (aar_instance(value), None),
            Kind::Ams | Kind::Seal => match TagList::parse(value) {
                Ok(t) => (t.get("i").and_then(instance_number), Some(t)),
                Err(e) => {
                    unreadable.get_or_insert_with(|| format!("{}: {e}", kind.name()));
                    continue;
                }
            },
        };
        match instance {
            Some(instance) => found.push(Found { kind, index, instance, tags }),
            None => {
                unreadable.get_or_insert_with(|| format!("{} without an instance i=1..{MAX_INSTANCES}", kind.name()));
            }
        }
    }
    if let Some(why) = unreadable {
        return broken(why, None);
    }
    let Some(highest) = found.iter().map(|f| f.instance).max() else { return Chain::None };
    // RFC 8617 §5.1: a chain whose newest seal says cv=fail is not sealed again.
    let newest_failed = found.iter().any(|f| {
        f.kind == Kind::Seal
            && f.instance == highest
            && f.tags.as_ref().and_then(|t| t.get("cv")).is_some_and(|cv| cv.eq_ignore_ascii_case("fail"))
    });
    let next = (!newest_failed && highest < MAX_INSTANCES).then_some(highest + 1);
    // slots[i - 1][kind]: the field of each kind for instance i.
    let mut slots: Vec<[Option<Found>; 3]> = (0..highest).map(|_| [None, None, None]).collect();
    for f in found {
        let (i, k) = (f.instance, f.kind as usize);
        let slot = &mut slots[i as usize - 1][k];
        if slot.is_some() {
            return broken(format!("two {} fields with i={i}", f.kind.name()), next);
        }
        *slot = Some(f);
    }
    let mut sets = Vec::with_capacity(slots.len());
    for (instance, slot) in (1..=highest).zip(slots) {
        let [Some(aar), Some(ams), Some(seal)] = slot else {
            let missing = slot.iter().position(Option::is_none).map_or("", |k| KINDS[k].name());
            return broken(format!("ARC set i={instance} has no {missing}"), next);
        };
        let (Some(ams_tags), Some(seal_tags)) = (ams.tags, seal.tags) else {
            return broken("internal: ARC tags missing".into(), None);
        };
        let cv = seal_tags.get("cv").unwrap_or_default().to_ascii_lowercase();
        let want = if instance == 1 { "none" } else { "pass" };
        if cv != want {
            return broken(format!("ARC-Seal i={instance} has cv={cv} (must be {want})"), next);
        }
        sets.push(Set { instance, aar: aar.index, ams: ams.index, seal: seal.index, ams_tags, seal_tags });
    }
    Chain::Sets(sets)
}

const KINDS: [Kind; 3] = [Kind::Aar, Kind::Ams, Kind::Seal];

/// An instance number: 1 to [`MAX_INSTANCES`], digits only (RFC 8617 §4.2.1: `1*2DIGIT`).
fn instance_number(v: &str) -> Option<u32> {
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|i| (1..=MAX_INSTANCES).contains(i))
}

/// The instance of an `ARC-Authentication-Results` value: `i=N;` before the authserv-id, with
/// folding white space around the parts (comments there are not read).
fn aar_instance(value: &[u8]) -> Option<u32> {
    let end = memchr::memchr(b';', value)?;
    let head = std::str::from_utf8(&value[..end]).ok()?;
    let (name, number) = head.split_once('=')?;
    let ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    if name.trim_matches(ws) != "i" {
        return None;
    }
    instance_number(number.trim_matches(ws))
}

#[cfg(test)]
mod tests;
