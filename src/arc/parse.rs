//! The ARC header fields of a header block, read into a [`Chain`]: every field's kind and
//! instance, the AMS and AS tag lists, the structure of RFC 8617 §5.2 steps 1 to 4.

use super::{Broken, Chain, Kind, Set, MAX_ARC_BYTES, MAX_ARC_FIELDS, MAX_INSTANCES};
use crate::dkim::tags::TagList;
use crate::message::Headers;

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
pub(super) fn aar_instance(value: &[u8]) -> Option<u32> {
    let end = memchr::memchr(b';', value)?;
    let head = std::str::from_utf8(&value[..end]).ok()?;
    let (name, number) = head.split_once('=')?;
    let ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    if name.trim_matches(ws) != "i" {
        return None;
    }
    instance_number(number.trim_matches(ws))
}
