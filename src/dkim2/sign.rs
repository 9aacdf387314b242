//! Signing a hop (§12): the next `DKIM2-Signature`, and the `Message-Instance` a first hop or a
//! changed message needs.
//!
//! - No DKIM2 field yet: `Message-Instance` m=1 with the state's hashes, signature i=1.
//! - A chain whose newest state is the message as it is (nothing hashed changed): after the
//!   chain verifies, signature i=N+1 over the same m=.
//! - A chain and fields prepended above its newest field since (ours at queue entry, say
//!   `DKIM-Status`): a Message-Instance m=M+1 whose recipe removes them, checked to recreate
//!   the newest state exactly, then signature i=N+1 over it.
//! - Anything else (a changed body, an unreadable or failing chain): no DKIM2 field is added,
//!   and the reason is returned.

use super::hash::{header_digest, is_excluded, signed_field, signed_self, Field};
use super::parse::{Binding, Instance, Signature, B64};
use super::recipe::{BodyRecipe, Recipe, Step};
use super::verify::{verify_with, Body, Envelope, Rules};
use super::Dkim2Result;
use super::{HashName, INSTANCE_FIELD, MAX_CHAIN, SIGNATURE_FIELD};
use crate::dkim::key::{KeyType, SigningKey};
use crate::dkim::{Algorithm, HashAlg};
use crate::dns::TxtLookup;
use crate::message::Headers;
use base64::Engine;

/// Who signs, for which envelope, when.
pub(crate) struct Hop<'a> {
    pub key: &'a SigningKey,
    pub domain: &'a str,
    pub selector: &'a str,
    /// The SMTP envelope of this hop: paths with angle brackets (`<>` for a bounce).
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    pub now: u64,
}

/// The current body's simple-canonical hashes (sha512 only when a Message-Instance uses it).
pub(crate) struct BodyHashes {
    pub sha256: Vec<u8>,
    pub sha512: Vec<u8>,
}

/// The fields to prepend (LF-ended, top first), or why the message is not signed.
pub(crate) fn sign(
    headers: &Headers,
    body: &BodyHashes,
    hop: &Hop<'_>,
    dns: &dyn TxtLookup,
) -> Result<Vec<u8>, String> {
    let alg = match hop.key.key_type() {
        KeyType::Rsa => Algorithm::RsaSha256,
        KeyType::Ed25519 => Algorithm::Ed25519Sha256,
    };
    let fields: Vec<Field> = headers.fields.iter().map(|f| (headers.name(f), headers.value(f))).collect();
    let is = |n: &[u8], want: &str| n.trim_ascii().eq_ignore_ascii_case(want.as_bytes());
    let dkim2_at: Vec<usize> =
        (0..fields.len()).filter(|&k| is(fields[k].0, SIGNATURE_FIELD) || is(fields[k].0, INSTANCE_FIELD)).collect();
    let state = |f: &[Field]| (header_digest(f, HashAlg::Sha256), body.sha256.clone());

    let mut chain: Vec<(&[u8], &[u8])> = Vec::new(); // (name, value) of the fields signed before ours
    let (i, m, new_mi) = if dkim2_at.is_empty() {
        let (h, b) = state(&fields);
        (1, 1, Some(instance_value(1, &h, &b, None)))
    } else {
        if dkim2_at.len() > 2 * MAX_CHAIN {
            return Err(format!("more than {MAX_CHAIN} hops already"));
        }
        let mut sigs = Vec::new();
        let mut mis = Vec::new();
        for &k in &dkim2_at {
            let (n, v) = fields[k];
            if is(n, SIGNATURE_FIELD) {
                sigs.push((Signature::parse(v).map_err(|e| format!("{SIGNATURE_FIELD}: {e}"))?, n, v));
            } else {
                mis.push((Instance::parse(v).map_err(|e| format!("{INSTANCE_FIELD}: {e}"))?, n, v));
            }
        }
        sigs.sort_by_key(|s| s.0.i);
        mis.sort_by_key(|s| s.0.m);
        let (Some(top), Some(newest)) = (sigs.last(), mis.last()) else {
            return Err("a DKIM2 chain without signature or Message-Instance".into());
        };
        let Some(recorded) = newest.0.hashes.iter().find(|h| h.name == HashName::Known(HashAlg::Sha256)) else {
            return Err(format!("Message-Instance m={} has no sha256 hashes", newest.0.m));
        };
        let (top_i, top_m) = (top.0.i, newest.0.m);
        let Binding::Envelope { mail_from, rcpt_to } = &top.0.binding else {
            return Err(format!("i={top_i} names the next domain (nd=), not an envelope"));
        };
        let (h, b) = state(&fields);
        if b != recorded.body {
            return Err(format!("the body changed since m={top_m} (a recipe for it is not made here)"));
        }
        // The fields above the newest DKIM2 field were added after its hop signed.
        let added: Vec<usize> = (0..dkim2_at[0]).filter(|&k| !is_excluded(fields[k].0)).collect();
        let recipe = if h == recorded.header {
            None
        } else {
            let r = removal_recipe(&fields, &added);
            let before = Headers::parse(r.apply_headers(&fields));
            let bf: Vec<Field> = before.fields.iter().map(|f| (before.name(f), before.value(f))).collect();
            if header_digest(&bf, HashAlg::Sha256) != recorded.header {
                return Err(format!("header fields changed since m={top_m} other than by fields added on top"));
            }
            Some(r)
        };
        // Only a chain that verifies is continued: as it was before the fields added on top, for
        // the envelope its newest signature names (the entry checked ours against it).
        let previous = if recipe.is_some() { headers.without(&added) } else { headers.clone() };
        let digests = Body::Digests { sha256: body.sha256.clone(), sha512: body.sha512.clone() };
        let env = Envelope { mail_from, rcpt_to };
        let report = verify_with(&previous, digests, &env, dns, hop.now, &Rules::DRAFT);
        if report.result != Dkim2Result::Pass {
            return Err(format!("the DKIM2 chain does not verify ({}: {})", report.result.as_str(), report.reason));
        }
        chain.extend(mis.iter().map(|(_, n, v)| (*n, *v)));
        chain.extend(sigs.iter().map(|(_, n, v)| (*n, *v)));
        match recipe {
            Some(r) => (top_i + 1, top_m + 1, Some(instance_value(top_m + 1, &h, &b, Some(&r)))),
            None => (top_i + 1, top_m, None),
        }
    };

    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let rt: Vec<String> = hop.rcpt_to.iter().map(|r| b64(r)).collect();
    let mut value = format!(" i={i}; m={m}; t={}; d={};\n\tmf={};\n\trt=", hop.now, hop.domain, b64(hop.mail_from));
    let mut col = 4;
    for (k, r) in rt.iter().enumerate() {
        if k > 0 {
            value.push(',');
            col += 1;
            if col + r.len() > 76 {
                value.push_str("\n\t");
                col = 1;
            }
        }
        value.push_str(r);
        col += r.len();
    }
    value.push_str(&format!(";\n\ts={}:{}:", hop.selector, alg.as_str()));

    // The signed data (§12.8): the instances up to m=, the signatures before ours, ours.
    let mut data = Vec::with_capacity(1024);
    let mi_name = INSTANCE_FIELD.as_bytes();
    let (old_mis, old_sigs): (Vec<_>, Vec<_>) = chain.iter().partition(|(n, _)| is(n, INSTANCE_FIELD));
    for (n, v) in &old_mis {
        signed_field(n, v, &mut data);
    }
    if let Some(mi) = &new_mi {
        signed_field(mi_name, mi.as_bytes(), &mut data);
    }
    for (n, v) in &old_sigs {
        signed_field(n, v, &mut data);
    }
    // As the verifier will see it: with the `;` that ends the tag list.
    signed_self(format!("{value};").as_bytes(), &mut data);
    let sig = hop.key.sign(alg, &data)?;
    value.push_str(&base64::engine::general_purpose::STANDARD.encode(sig));
    value.push(';');

    let mut out = format!("{SIGNATURE_FIELD}:{value}\n").into_bytes();
    if let Some(mi) = new_mi {
        out.extend_from_slice(format!("{INSTANCE_FIELD}:{mi}\n").as_bytes());
    }
    Ok(out)
}

/// A Message-Instance value (leading space included).
fn instance_value(m: u32, header: &[u8], body: &[u8], recipe: Option<&Recipe>) -> String {
    let e = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut v = format!(" m={m};\n\th=sha256:{}:{};", e(header), e(body));
    if let Some(r) = recipe {
        v.push_str(&format!("\n\tr={};", B64.encode(r.to_json())));
    }
    v
}

/// The header recipe that removes the fields at `added` (the topmost of their names: instances
/// count bottom up, so the others are instances 1..=kept).
fn removal_recipe(fields: &[Field<'_>], added: &[usize]) -> Recipe {
    let mut names: Vec<String> = Vec::new();
    for &k in added {
        let n = String::from_utf8_lossy(fields[k].0.trim_ascii()).to_ascii_lowercase();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let headers = names
        .into_iter()
        .map(|n| {
            let count = |ks: &mut dyn Iterator<Item = usize>| {
                ks.filter(|&k| fields[k].0.trim_ascii().eq_ignore_ascii_case(n.as_bytes())).count()
            };
            let total = count(&mut (0..fields.len()));
            let gone = count(&mut added.iter().copied());
            let kept = u32::try_from(total - gone).unwrap_or(u32::MAX);
            let steps = if kept > 0 { vec![Step::Copy(1, kept)] } else { Vec::new() };
            (n, steps)
        })
        .collect();
    Recipe { headers, body: BodyRecipe::Unchanged }
}

impl Recipe {
    /// The recipe as JSON (what `from_json` reads back).
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = String::from("{");
        if !self.headers.is_empty() {
            out.push_str("\"h\":{");
            for (k, (n, steps)) in self.headers.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                json_string(n.as_bytes(), &mut out);
                out.push(':');
                json_steps(steps, &mut out);
            }
            out.push('}');
        }
        match &self.body {
            BodyRecipe::Unchanged => {}
            BodyRecipe::Lost => out.push_str(if self.headers.is_empty() { "\"b\":null" } else { ",\"b\":null" }),
            BodyRecipe::Steps(s) => {
                out.push_str(if self.headers.is_empty() { "\"b\":" } else { ",\"b\":" });
                json_steps(s, &mut out);
            }
        }
        out.push('}');
        out.into_bytes()
    }
}

fn json_steps(steps: &[Step], out: &mut String) {
    out.push('[');
    for (k, s) in steps.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        match s {
            Step::Copy(a, b) => out.push_str(&format!("{{\"c\":[{a},{b}]}}")),
            Step::Data(lines) => {
                let utf8 = lines.iter().all(|l| std::str::from_utf8(l).is_ok());
                out.push_str(if utf8 { "{\"d\":[" } else { "{\"u\":[" });
                for (j, l) in lines.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    if utf8 {
                        json_string(l, out);
                    } else {
                        json_string(base64::engine::general_purpose::STANDARD.encode(l).as_bytes(), out);
                    }
                }
                out.push_str("]}");
            }
        }
    }
    out.push(']');
}

fn json_string(s: &[u8], out: &mut String) {
    out.push('"');
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
