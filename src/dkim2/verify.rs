//! Chain verification (§14): whether a message is a Fully Verified DKIM2 Message for the
//! envelope it arrived with. The steps run in the draft's order and stop at the first result
//! that is known: field syntax and numbering (§14.2), timestamps (§14.3), the envelope, the
//! `mf=`/`d=` match and the chain of custody (§14.4), the hashes of every Message-Instance,
//! recreating earlier states with their recipes, and the authenticity of `From` (§14.7, §14.8),
//! then every signature (§14.5, §14.6), each key asked once per message.

use super::hash::{body_digest, header_digest, signed_field, signed_self, Field};
use super::parse::{Binding, Instance, MessageHash, ParseError, Signature, SignatureValue};
use super::recipe::{apply_body, BodyRecipe};
use super::{HashName, SigAlgorithm, INSTANCE_FIELD, MAX_CHAIN, MAX_FIELD_BYTES, SIGNATURE_FIELD};
use crate::dkim::verify::{fetch_key, verify_sig, Outcome};
use crate::dkim::HashAlg;
use crate::dns::{TxtAnswer, TxtLookup};
use crate::message::Headers;

/// A signature older than this is a FAIL (§14.3).
pub(crate) const MAX_AGE: u64 = 14 * 86400;
/// A signature from further ahead than this is a FAIL (§14.3).
pub(crate) const MAX_FUTURE: u64 = 86400;

use super::{Dkim2Output, Dkim2Result};

/// The SMTP envelope the message arrived with: paths with their angle brackets (`<>` for the
/// null sender).
pub struct Envelope<'a> {
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
}

/// The body of the message as it is: its bytes, or (when no recipe needs them) only its hashes.
pub enum Body<'a> {
    Bytes(&'a [u8]),
    /// The simple-canonical body hashes (sha256, sha512) computed while the body streamed.
    Digests {
        sha256: Vec<u8>,
        sha512: Vec<u8>,
    },
}

/// A result other than pass, with why.
#[derive(Debug)]
enum Failure {
    Temp(String),
    Fail(String),
    Perm(String),
}

impl Failure {
    fn result(&self) -> Dkim2Result {
        match self {
            Failure::Temp(_) => Dkim2Result::TempError,
            Failure::Fail(_) => Dkim2Result::Fail,
            Failure::Perm(_) => Dkim2Result::PermError,
        }
    }
}

type Step = Result<(), Failure>;

fn perm(s: impl Into<String>) -> Failure {
    Failure::Perm(s.into())
}
fn fail(s: impl Into<String>) -> Failure {
    Failure::Fail(s.into())
}

/// Results of a `,` group (all must pass) or of the `|` groups of a tag (one must pass), keeping
/// the first reason of each kind (§14.6 steps 6 and 7).
#[derive(Default)]
struct Tally {
    members: u32,
    passed: bool,
    temp: Option<String>,
    fail: Option<String>,
    perm: Option<String>,
}

impl Tally {
    fn record(&mut self, r: Step) {
        self.members += 1;
        match r {
            Ok(()) => self.passed = true,
            Err(Failure::Temp(s)) => drop(self.temp.get_or_insert(s)),
            Err(Failure::Fail(s)) => drop(self.fail.get_or_insert(s)),
            Err(Failure::Perm(s)) => drop(self.perm.get_or_insert(s)),
        }
    }

    /// A group: FAIL over PERMERROR over TEMPERROR.
    fn all(self) -> Step {
        match (self.temp, self.fail, self.perm) {
            (_, Some(f), _) => Err(Failure::Fail(f)),
            (_, None, Some(p)) => Err(Failure::Perm(p)),
            (Some(t), None, None) => Err(Failure::Temp(t)),
            (None, None, None) => Ok(()),
        }
    }

    /// The groups: a pass wins, then TEMPERROR over FAIL over PERMERROR.
    fn any(self, none_passed: String) -> Step {
        if self.passed {
            Ok(())
        } else if let Some(t) = self.temp {
            Err(Failure::Temp(t))
        } else if let Some(f) = self.fail {
            Err(Failure::Fail(if self.members > 1 { none_passed } else { f }))
        } else {
            Err(Failure::Perm(self.perm.unwrap_or(none_passed)))
        }
    }
}

/// The result of entries in `|` groups of `,` lists (`s=`, `h=`): a group stops at its first
/// FAIL, the groups at the first that passes.
fn grouped<T>(
    items: &[T],
    group: impl Fn(&T) -> u32,
    mut eval: impl FnMut(&T) -> Step,
    none: impl Fn() -> String,
) -> Step {
    let mut groups = Tally::default();
    for g in items.chunk_by(|a, b| group(a) == group(b)) {
        let mut all = Tally::default();
        for item in g {
            all.record(eval(item));
            if all.fail.is_some() {
                break;
            }
        }
        groups.record(all.all());
        if groups.passed {
            return Ok(());
        }
    }
    groups.any(none())
}

/// A parsed DKIM2 field with its value as it is in the message.
struct Parsed<'a, T> {
    value: &'a [u8],
    name: &'a [u8],
    field: T,
}

/// Verifies the DKIM2 chain of the message with header block `headers` and body `body`,
/// received with `envelope`, at `now` (seconds since the epoch). Keys through `dns`.
pub fn verify(
    headers: &Headers,
    body: Body<'_>,
    envelope: &Envelope<'_>,
    dns: &dyn TxtLookup,
    now: u64,
) -> Dkim2Output {
    verify_with(headers, body, envelope, dns, now, &Rules::DRAFT)
}

/// Rules of the draft that can be lifted to look at old chains (tests, diagnosis), never for
/// mail as it arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// The age limit of every signature (§14.3).
    pub max_age: u64,
    /// Whether `From` must be authentic for the first signer and for every hop that changed it
    /// (§11, §14.8; new in -07).
    pub authentic_from: bool,
}

impl Rules {
    pub(crate) const DRAFT: Rules = Rules { max_age: MAX_AGE, authentic_from: true };
}

/// [`verify`] under other [`Rules`].
pub(crate) fn verify_with(
    headers: &Headers,
    body: Body<'_>,
    envelope: &Envelope<'_>,
    dns: &dyn TxtLookup,
    now: u64,
    rules: &Rules,
) -> Dkim2Output {
    let fields: Vec<Field> = headers.fields.iter().map(|f| (headers.name(f), headers.value(f))).collect();
    let mut chain = Vec::new();
    match run(&fields, body, envelope, dns, (now, rules), &mut chain) {
        Ok(()) => Dkim2Output { result: Dkim2Result::Pass, reason: String::new(), chain },
        Err(None) => Dkim2Output { result: Dkim2Result::None, reason: "no DKIM2 signature".into(), chain },
        Err(Some(f)) => {
            let result = f.result();
            let (Failure::Temp(reason) | Failure::Fail(reason) | Failure::Perm(reason)) = f;
            Dkim2Output { result, reason, chain }
        }
    }
}

fn run(
    fields: &[Field<'_>],
    body: Body<'_>,
    envelope: &Envelope<'_>,
    dns: &dyn TxtLookup,
    (now, rules): (u64, &Rules),
    chain: &mut Vec<(u32, String)>,
) -> Result<(), Option<Failure>> {
    let is = |n: &[u8], want: &str| n.trim_ascii().eq_ignore_ascii_case(want.as_bytes());
    let sig_fields: Vec<&Field> = fields.iter().filter(|(n, _)| is(n, SIGNATURE_FIELD)).collect();
    let mi_fields: Vec<&Field> = fields.iter().filter(|(n, _)| is(n, INSTANCE_FIELD)).collect();
    if sig_fields.len() > MAX_CHAIN || mi_fields.len() > MAX_CHAIN {
        return Err(Some(perm(format!("more than {MAX_CHAIN} DKIM2 fields of a kind"))));
    }
    let bytes: usize = sig_fields.iter().chain(&mi_fields).map(|(_, v)| v.len()).sum();
    if bytes > MAX_FIELD_BYTES {
        return Err(Some(perm(format!("DKIM2 fields of {bytes} bytes (more than {MAX_FIELD_BYTES})"))));
    }
    let mut sigs = Vec::with_capacity(sig_fields.len());
    for (name, value) in sig_fields {
        let field = Signature::parse(value).map_err(|e| Some(bad(SIGNATURE_FIELD, &e)))?;
        sigs.push(Parsed { value, name, field });
    }
    let mut mis = Vec::with_capacity(mi_fields.len());
    for (name, value) in mi_fields {
        let field = Instance::parse(value).map_err(|e| Some(bad(INSTANCE_FIELD, &e)))?;
        mis.push(Parsed { value, name, field });
    }
    if sigs.is_empty() {
        return Err(if mis.is_empty() { None } else { Some(perm("Message-Instance without DKIM2-Signature")) });
    }
    sigs.sort_by_key(|s| s.field.i);
    mis.sort_by_key(|m| m.field.m);
    chain.extend(sigs.iter().map(|s| (s.field.i, s.field.d.clone())));

    numbering(&sigs, &mis).map_err(Some)?;
    timestamps(&sigs, now, rules.max_age).map_err(Some)?;
    let (top, _) = sigs.split_last().ok_or(None)?;
    check_envelope(&top.field, envelope).map_err(Some)?;
    for s in &sigs {
        mail_from_domain(&s.field).map_err(Some)?;
    }
    for pair in sigs.windows(2) {
        custody(&pair[0].field, &pair[1].field).map_err(Some)?;
    }
    instances(fields, body, &sigs, &mis, rules.authentic_from).map_err(Some)?;

    let mut cache: Vec<(String, TxtAnswer)> = Vec::new();
    let mut input = Vec::with_capacity(1024);
    let mut temp = None;
    for s in &sigs {
        input.clear();
        for m in mis.iter().filter(|m| m.field.m <= s.field.m) {
            signed_field(m.name, m.value, &mut input);
        }
        for p in sigs.iter().take_while(|p| p.field.i < s.field.i) {
            signed_field(p.name, p.value, &mut input);
        }
        signed_self(s.value, &mut input);
        match signature(&s.field, &input, dns, &mut cache) {
            Ok(()) => {}
            Err(Failure::Temp(t)) => drop(temp.get_or_insert(t)),
            Err(f) => return Err(Some(f)),
        }
    }
    match temp {
        Some(t) => Err(Some(Failure::Temp(t))),
        None => Ok(()),
    }
}

fn bad(field: &str, e: &ParseError) -> Failure {
    perm(format!("{field}: {e}"))
}

/// §14.2: i= from 1 without gaps, m= likewise, every signature covers an instance, in order,
/// and the newest covers the newest; paths carry their angle brackets.
fn numbering(sigs: &[Parsed<'_, Signature>], mis: &[Parsed<'_, Instance>]) -> Step {
    for (want, s) in (1u32..).zip(sigs) {
        if s.field.i != want {
            return Err(perm(format!("no DKIM2-Signature i={want}")));
        }
        if let Binding::Envelope { mail_from, rcpt_to } = &s.field.binding {
            if !is_path(mail_from) || !rcpt_to.iter().all(|r| is_path(r)) {
                return Err(perm(format!("i={want}: mf= or rt= without angle brackets")));
            }
        }
    }
    for (want, m) in (1u32..).zip(mis) {
        if m.field.m != want {
            return Err(perm(format!("no Message-Instance m={want}")));
        }
    }
    let highest = mis.last().map_or(0, |m| m.field.m);
    let mut previous = 0;
    for s in sigs {
        if s.field.m == 0 || s.field.m > highest {
            return Err(perm(format!("i={}: no Message-Instance m={}", s.field.i, s.field.m)));
        }
        if s.field.m < previous {
            return Err(perm(format!("i={}: m={} goes back", s.field.i, s.field.m)));
        }
        previous = s.field.m;
    }
    if highest > previous {
        return Err(perm(format!("Message-Instance m={highest} is not signed")));
    }
    Ok(())
}

fn timestamps(sigs: &[Parsed<'_, Signature>], now: u64, max_age: u64) -> Step {
    for s in sigs {
        let t = s.field.t;
        if now > t && now - t > max_age {
            return Err(fail(format!("i={}: t={t} is more than {} days old", s.field.i, max_age / 86400)));
        }
        if t > now.saturating_add(MAX_FUTURE) {
            return Err(fail(format!("i={}: t={t} is more than a day ahead", s.field.i)));
        }
    }
    Ok(())
}

fn is_path(p: &str) -> bool {
    p.starts_with('<') && p.ends_with('>')
}

fn is_null(p: &str) -> bool {
    matches!(p.trim(), "<>" | "")
}

/// `(local, domain)` of a path, brackets removed.
fn local_domain(p: &str) -> (&str, &str) {
    let p = p.strip_prefix('<').unwrap_or(p);
    let p = p.strip_suffix('>').unwrap_or(p);
    p.rsplit_once('@').unwrap_or((p, ""))
}

/// The local part exactly, the domain without regard to case.
fn same_address(a: &str, b: &str) -> bool {
    let ((al, ad), (bl, bd)) = (local_domain(a), local_domain(b));
    al == bl && ad.eq_ignore_ascii_case(bd)
}

/// `p1` is `p2` or a subdomain of it (§7.1). Address literals never match.
pub(crate) fn relaxed_match(p1: &str, p2: &str) -> bool {
    if p1.starts_with('[') || p2.starts_with('[') {
        return false;
    }
    let mut cur = p1;
    loop {
        if cur.eq_ignore_ascii_case(p2) {
            return true;
        }
        match cur.split_once('.') {
            Some((_, rest)) if !rest.is_empty() => cur = rest,
            _ => return false,
        }
    }
}

/// §14.4: the newest signature names our envelope: its mf= is our sender, its rt= has every
/// one of our recipients.
fn check_envelope(top: &Signature, env: &Envelope<'_>) -> Step {
    let Binding::Envelope { mail_from, rcpt_to } = &top.binding else {
        return Err(fail(format!("i={}: the newest signature has nd=", top.i)));
    };
    if !same_address(env.mail_from, mail_from) {
        return Err(fail(format!("i={}: mf= is not the envelope sender {}", top.i, env.mail_from)));
    }
    for r in env.rcpt_to {
        if !rcpt_to.iter().any(|s| same_address(r, s)) {
            return Err(fail(format!("i={}: recipient {r} is not in rt=", top.i)));
        }
    }
    Ok(())
}

fn mail_from_domain(s: &Signature) -> Step {
    match &s.binding {
        Binding::Envelope { mail_from, .. }
            if !is_null(mail_from) && !relaxed_match(local_domain(mail_from).1, &s.d) =>
        {
            Err(fail(format!("i={}: mf= domain is not d={} or below it", s.i, s.d)))
        }
        _ => Ok(()),
    }
}

/// §14.4: each hop received the message from the one before: its sender's domain (or its d=
/// for a null sender) is among the previous hop's recipients' domains, or it is the previous
/// hop's nd=.
fn custody(prev: &Signature, cur: &Signature) -> Step {
    let ok = match (&prev.binding, &cur.binding) {
        (Binding::NextDomain(nd), _) => nd.eq_ignore_ascii_case(&cur.d),
        (Binding::Envelope { rcpt_to, .. }, Binding::Envelope { mail_from, .. }) if !is_null(mail_from) => {
            let d = local_domain(mail_from).1;
            rcpt_to.iter().any(|r| relaxed_match(d, local_domain(r).1))
        }
        (Binding::Envelope { rcpt_to, .. }, _) => rcpt_to.iter().any(|r| relaxed_match(local_domain(r).1, &cur.d)),
    };
    if ok {
        Ok(())
    } else {
        Err(fail(format!("i={}: not received from i={} (chain of custody)", cur.i, prev.i)))
    }
}

/// The hashes of one state, computed when first asked for.
#[derive(Default)]
struct StateHashes {
    header: Vec<(HashAlg, Vec<u8>)>,
    body: Vec<(HashAlg, Vec<u8>)>,
}

impl StateHashes {
    fn check(&mut self, mi: &Instance, fields: &[Field<'_>], body: Option<&[u8]>) -> Step {
        grouped(
            &mi.hashes,
            |h| h.group,
            |h| self.one(mi.m, h, fields, body),
            || format!("m={}: no h= group matches", mi.m),
        )
    }

    fn one(&mut self, m: u32, h: &MessageHash, fields: &[Field<'_>], body: Option<&[u8]>) -> Step {
        let HashName::Known(alg) = h.name else {
            return Err(perm(format!("m={}: unknown hash {}", m, h.name.as_str())));
        };
        if cached(&mut self.header, alg, || header_digest(fields, alg)) != h.header {
            return Err(fail(format!("m={m}: header hash ({}) differs", alg.name())));
        }
        if let Some(b) = body {
            if cached(&mut self.body, alg, || body_digest(b, alg)) != h.body {
                return Err(fail(format!("m={m}: body hash ({}) differs", alg.name())));
            }
        }
        Ok(())
    }
}

fn cached(slot: &mut Vec<(HashAlg, Vec<u8>)>, alg: HashAlg, make: impl FnOnce() -> Vec<u8>) -> &[u8] {
    let i = match slot.iter().position(|(a, _)| *a == alg) {
        Some(i) => i,
        None => {
            slot.push((alg, make()));
            slot.len() - 1
        }
    };
    &slot[i].1
}

/// §14.7 and §14.8: from the newest Message-Instance back to m=1, the state's hashes match, and
/// each recipe recreates the state before it; the `From` of every state a recipe replaced is
/// authentic for the hop that replaced it, and the first state's for i=1.
fn instances(
    fields: &[Field<'_>],
    body: Body<'_>,
    sigs: &[Parsed<'_, Signature>],
    mis: &[Parsed<'_, Instance>],
    authentic_from: bool,
) -> Step {
    let mut hashes = StateHashes::default();
    // The current body: its bytes, or none when only its hashes were given (they are cached
    // below for both algorithms, so the bytes are never asked for unless a recipe needs them).
    let mut cur_body: Option<std::borrow::Cow<'_, [u8]>> = match body {
        Body::Bytes(b) => Some(std::borrow::Cow::Borrowed(b)),
        Body::Digests { sha256, sha512 } => {
            hashes.body = vec![(HashAlg::Sha256, sha256), (HashAlg::Sha512, sha512)];
            None
        }
    };
    let mut body_known = true;
    let mut block: Option<Headers> = None;
    let mut from = from_domain(fields);
    let mut lost: Option<u32> = None;
    for p in mis.iter().rev() {
        let mi = &p.field;
        if let Some(m) = lost {
            return Err(fail(format!("m={m}: the body before it cannot be recreated (b: null)")));
        }
        let owned: Vec<Field>;
        let cur_fields: &[Field] = match &block {
            Some(h) => {
                owned = h.fields.iter().map(|f| (h.name(f), h.value(f))).collect();
                &owned
            }
            None => fields,
        };
        let body_now = body_known.then(|| cur_body.as_deref().unwrap_or_default());
        hashes.check(mi, cur_fields, body_now)?;
        let Some(recipe) = mi.recipe.as_ref().filter(|_| mi.m > 1) else { continue };
        if authentic_from && recipe.changes_from() {
            let s = sigs
                .iter()
                .map(|s| &s.field)
                .find(|s| s.m >= mi.m)
                .ok_or_else(|| perm(format!("m={} is not signed", mi.m)))?;
            authentic(from.as_deref(), s)?;
        }
        match &recipe.body {
            BodyRecipe::Steps(steps) if body_known => {
                let Some(b) = cur_body.as_deref() else {
                    return Err(Failure::Temp(format!("m={}: the body was not kept for its recipe", mi.m)));
                };
                cur_body = Some(std::borrow::Cow::Owned(apply_body(b, steps)));
                hashes.body.clear();
            }
            BodyRecipe::Lost if body_known => {
                lost = Some(mi.m);
                body_known = false;
            }
            _ => {}
        }
        if !recipe.headers.is_empty() {
            let prev = recipe.apply_headers(cur_fields);
            let h = Headers::parse(prev);
            hashes.header.clear();
            if recipe.changes_from() {
                let f: Vec<Field> = h.fields.iter().map(|f| (h.name(f), h.value(f))).collect();
                from = from_domain(&f);
            }
            block = Some(h);
        }
    }
    match sigs.first() {
        Some(first) if authentic_from => authentic(from.as_deref(), &first.field),
        _ => Ok(()),
    }
}

/// The domain of the one address of the one `From` field, if there is exactly one of each.
fn from_domain(fields: &[Field<'_>]) -> Option<String> {
    let mut it = fields.iter().filter(|(n, _)| n.trim_ascii().eq_ignore_ascii_case(b"from"));
    let (Some((_, v)), None) = (it.next(), it.next()) else { return None };
    match crate::message::address_domains(v).as_slice() {
        [Some(d)] => Some(d.clone()),
        _ => None,
    }
}

fn authentic(from: Option<&str>, s: &Signature) -> Step {
    match from {
        Some(f) if relaxed_match(f, &s.d) => Ok(()),
        _ => Err(fail(format!("i={}: From is not authentic for d={}", s.i, s.d))),
    }
}

/// §14.6: one signature's `s=` groups.
fn signature(s: &Signature, input: &[u8], dns: &dyn TxtLookup, cache: &mut Vec<(String, TxtAnswer)>) -> Step {
    grouped(
        &s.s,
        |v| v.group,
        |v| one_signature(s, v, input, dns, cache),
        || format!("i={}: no s= group verifies", s.i),
    )
}

fn one_signature(
    s: &Signature,
    v: &SignatureValue,
    input: &[u8],
    dns: &dyn TxtLookup,
    cache: &mut Vec<(String, TxtAnswer)>,
) -> Step {
    let SigAlgorithm::Known(alg) = v.algorithm else {
        return Err(perm(format!("i={}: {}: unknown algorithm {}", s.i, v.selector, v.algorithm.as_str())));
    };
    let name = format!("{}._domainkey.{}", v.selector, s.d);
    let key = fetch_key(dns, cache, &name, alg).map_err(|(o, why)| match o {
        Outcome::DnsTempFailure => Failure::Temp(format!("i={}: {why}", s.i)),
        _ => perm(format!("i={}: {why}", s.i)),
    })?;
    if verify_sig(&key.key, alg, input, &v.b) {
        Ok(())
    } else {
        Err(fail(format!("i={}: {name}: {} signature does not verify", s.i, alg.as_str())))
    }
}

#[cfg(test)]
pub(crate) mod tests;
