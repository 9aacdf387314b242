//! ARC sealing (RFC 8617 §5.1): the `ARCSIGN` task adds instance N+1 (ARC-Seal on top, then
//! ARC-Message-Signature, then ARC-Authentication-Results) with the verdicts of the same run.
//!
//! - AAR: `i=N; <authserv-id>; <every method result of the earlier tasks>`, written as our
//!   Authentication-Results (crate::auth_results).
//! - AMS: relaxed/relaxed, sha256 (rsa-sha256, or ed25519-sha256 for an Ed25519 key: mail-auth
//!   validates those, dkimpy 1.1.8's ARC knows only rsa-sha256, so RSA is the safe choice), `t=`,
//!   `h=` the default DKIM list (crate::dkim::sign::default_header_list: never ARC fields, so
//!   neither ARC-Seal, which RFC 8617 §4.1.2 forbids, nor the new AAR, as dkimpy's sealer does)
//!   and the DKIM-Signature fields present (§4.1.2: SHOULD).
//! - AS: `cv=` from the typed result of the verify task (which runs before): `none` without a
//!   chain, `pass`, or `fail`; over the sets 1..N+1, or, for `cv=fail`, over the new set only
//!   (§5.1.2).
//!
//! No seal (nothing added, the message goes on) when: the chain already has 50 sets; its
//! newest seal says `cv=fail` (§5.1: the chain has ended); an instance number is unreadable or
//! out of range (no next number to take); the verdict is `temperror` (a DNS hiccup must not end a
//! good chain with `cv=fail`, nor vouch for it with `cv=pass`) or missing while a chain exists.

use super::verify::{in_range, sets_data};
use super::{collect, Chain, Set, MAX_INSTANCES};
use crate::auth_results::{self, ArcResult};
use crate::dkim::canon::{self, BodyHasher};
use crate::dkim::key::{KeyType, SigningKey};
use crate::dkim::sign::{default_header_list, fold_base64, push_list, push_tag};
use crate::dkim::{Algorithm, Canon, HashAlg};
use crate::message::Headers;
use crate::task::Context;
use base64::Engine;

/// The `ARCSIGN` task: one key, the chain as it arrived, the body hash of the new AMS.
pub struct ArcSealTask {
    key: SigningKey,
    alg: Algorithm,
    pub(super) domain: String,
    pub(super) selector: String,
    now: u64,
    pub(super) chain: Chain,
    pub(super) hasher: BodyHasher,
}

/// What to add: instance, cv=, and the sets the seal covers besides the new one.
pub(super) struct NextSet {
    pub(super) instance: u32,
    pub(super) cv: &'static str,
    prior: Vec<Set>,
}

impl ArcSealTask {
    /// Prepares the seal of a message whose header block is `headers` (before its body).
    pub fn new(headers: &Headers, key: SigningKey, domain: String, selector: String, now: u64) -> ArcSealTask {
        let alg = match key.key_type() {
            KeyType::Ed25519 => Algorithm::Ed25519Sha256,
            KeyType::Rsa => Algorithm::RsaSha256,
        };
        ArcSealTask {
            key,
            alg,
            domain,
            selector,
            now,
            chain: collect(headers),
            hasher: BodyHasher::new(Canon::Relaxed, HashAlg::Sha256, None),
        }
    }

    /// The next set, or why none is added. `arc` is the verify task's result.
    pub(super) fn next_set(chain: Chain, arc: Option<ArcResult>) -> std::result::Result<NextSet, String> {
        match chain {
            Chain::None => Ok(NextSet { instance: 1, cv: "none", prior: Vec::new() }),
            Chain::Sets(sets) => {
                let n = sets.last().map_or(0, |s| s.instance);
                if n >= MAX_INSTANCES {
                    return Err(format!("the chain has {n} sets, the most RFC 8617 allows"));
                }
                match arc {
                    Some(ArcResult::Pass) => Ok(NextSet { instance: n + 1, cv: "pass", prior: sets }),
                    Some(ArcResult::Fail) => Ok(NextSet { instance: n + 1, cv: "fail", prior: Vec::new() }),
                    Some(other) => {
                        Err(format!("arc={}: the chain can be neither vouched for nor ended", other.as_str()))
                    }
                    None => Err("no ARC verdict to seal".into()),
                }
            }
            Chain::Broken(b) => match b.next {
                Some(instance) => Ok(NextSet { instance, cv: "fail", prior: Vec::new() }),
                None => Err(format!("the chain cannot be continued: {}", b.why)),
            },
        }
    }

    /// The three fields, ARC-Seal on top, LF-ended.
    pub(super) fn seal(self, ctx: &Context<'_>, next: &NextSet) -> std::result::Result<Vec<u8>, String> {
        let ArcSealTask { key, alg, domain, selector, now, hasher, .. } = self;
        let headers = ctx.headers;
        if !in_range(headers, &next.prior) {
            return Err("the header block changed since the task was made".into());
        }
        let i = next.instance;
        let (bh, _) = hasher.finish();
        let b64 = &base64::engine::general_purpose::STANDARD;

        let aar = auth_results::arc_field(i, &(ctx.authserv_id)(), &auth_results::render(ctx.earlier));

        // The AMS covers the message as it is queued (ctx.queued: without the fields run.rs
        // removes as forged; a Subject hiding a forged status after a bare CR would otherwise
        // break our own seal).
        let queued = ctx.queued;
        // RFC 8617 §4.1.2: the AMS SHOULD also sign the DKIM-Signature fields already present,
        // so that the next hop can tell whether they were changed after this seal.
        let mut names = default_header_list(queued, &[]);
        let dkim = queued.fields.iter().filter(|f| queued.name(f).eq_ignore_ascii_case(b"dkim-signature")).count();
        names.extend(std::iter::repeat_n("dkim-signature".to_string(), dkim));
        let mut ams = String::from("ARC-Message-Signature: ");
        let mut col = ams.len();
        for t in [
            format!("i={i}"),
            format!("a={}", alg.as_str()),
            "c=relaxed/relaxed".into(),
            format!("d={domain}"),
            format!("s={selector}"),
            format!("t={now}"),
        ] {
            push_tag(&mut ams, &mut col, &t);
        }
        push_list(&mut ams, &mut col, "h=", &names.iter().map(String::as_str).collect::<Vec<_>>(), ":");
        push_tag(&mut ams, &mut col, &format!("bh={}", b64.encode(bh)));
        let mut data = Vec::with_capacity(4096);
        canon::signed_headers(Canon::Relaxed, queued, &names, None, &mut data);
        let ams = signed(ams, data, &key, alg)?;

        let mut seal = String::from("ARC-Seal: ");
        let mut col = seal.len();
        for t in [
            format!("i={i}"),
            format!("a={}", alg.as_str()),
            format!("t={now}"),
            format!("cv={}", next.cv),
            format!("d={domain}"),
            format!("s={selector}"),
        ] {
            push_tag(&mut seal, &mut col, &t);
        }
        let mut data = Vec::with_capacity(4096 * (next.prior.len() + 1));
        sets_data(headers, &next.prior, &mut data);
        for new in [&aar, ams.as_bytes()] {
            let h = Headers::parse(new.to_vec());
            for f in &h.fields {
                canon::header(Canon::Relaxed, &h, f, &mut data);
            }
        }
        let seal = signed(seal, data, &key, alg)?;

        let mut out = seal.into_bytes();
        out.extend_from_slice(ams.as_bytes());
        out.extend_from_slice(&aar);
        Ok(out)
    }
}

/// Ends a signature field with `b=`, signs `data` followed by the field itself (relaxed, `b=`
/// empty, no line end) and writes the signature folded as our DKIM-Signature is.
fn signed(
    mut field: String,
    mut data: Vec<u8>,
    key: &SigningKey,
    alg: Algorithm,
) -> std::result::Result<String, String> {
    let line_start = field.rfind('\n').map_or(0, |i| i + 1);
    if field.len() - line_start + 3 > 78 {
        field.push_str("\n\t");
    } else {
        field.push(' ');
    }
    field.push_str("b=");
    canon::signature_header(Canon::Relaxed, field.as_bytes(), &mut data);
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(alg, &data)?);
    let line_start = field.rfind('\n').map_or(0, |i| i + 1);
    let room = 76usize.saturating_sub(field.len() - line_start).max(8);
    fold_base64(&mut field, &sig, room, 72, "\n\t");
    field.push('\n');
    Ok(field)
}
