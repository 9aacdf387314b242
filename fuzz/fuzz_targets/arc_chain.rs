//! ARC (RFC 8617) on arbitrary input: the lines before a `--` line are the zone
//! (`fuzz_support::Zone`, the keys of the chain) and settings, the rest is the message. The
//! chain is collected (`arc::collect`) and validated (`Verifier`) against the zone; then, with
//! a `seal` line, sealed by us (`ArcSealTask`, Ed25519) with that verdict and validated again
//! with our key added. No panic; a collected chain is sets 1..N in order, N <= 50; at most 51
//! key questions; our seal over a chain that was none or passed passes, over one that failed
//! fails.
#![no_main]

use fuzz_support::{ed25519_key, key_record, setting, zone_and_message, Zone, ED25519_PEM};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::arc::seal::ArcSealTask;
use qmail_dkim::arc::verify::Verifier;
use qmail_dkim::auth_results::MethodOutput;
use qmail_dkim::arc::{collect, ArcOutput, ArcResult, Chain, Kind, MAX_INSTANCES};
use qmail_dkim::dkim::key::SigningKey;
use qmail_dkim::dns::{Resolver, TxtAnswer, TxtLookup};
use qmail_dkim::envelope::Envelope;
use qmail_dkim::message::{find_header_end, Headers};
use qmail_dkim::task::{Context, Task};

const NOW: u64 = 1_800_000_000;
/// Where our key is published: a name the input's zone is unlikely to hold.
const OUR_KEY: &str = "fuzz-seal._domainkey.fuzz-seal.example";

/// The zone, and our key.
struct WithOurKey<'a>(&'a Zone);

impl TxtLookup for WithOurKey<'_> {
    fn txt(&self, name: &str) -> TxtAnswer {
        if name.eq_ignore_ascii_case(OUR_KEY) {
            return TxtAnswer::Records(vec![key_record(ed25519_key())]);
        }
        self.0.txt(name)
    }
}

fn verify(msg: &[u8], dns: &dyn TxtLookup) -> (Headers, ArcOutput) {
    let (end, start) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    let headers = Headers::parse(msg[..end].to_vec());
    let mut v = Verifier::new(&headers);
    v.body(&msg[start..]);
    let verdict = v.finish(&headers, dns);
    (headers, verdict)
}

fuzz_target!(|data: &[u8]| {
    let (zone, other, msg) = zone_and_message(data);

    let (end, _) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    let headers = Headers::parse(msg[..end].to_vec());
    if let Chain::Sets(sets) = collect(&headers) {
        assert!(!sets.is_empty() && sets.len() <= MAX_INSTANCES as usize);
        for (k, s) in sets.iter().enumerate() {
            assert_eq!(s.instance as usize, k + 1);
            for (i, kind) in [(s.aar, Kind::Aar), (s.ams, Kind::Ams), (s.seal, Kind::Seal)] {
                assert_eq!(Kind::of(headers.name(&headers.fields[i])), Some(kind));
            }
        }
    }

    let (headers, verdict) = verify(msg, &zone);
    let asked = zone.asked.get();
    assert!(asked <= MAX_INSTANCES as usize + 1, "{asked} key questions");

    if setting(&other, "seal").is_none() || matches!(verdict.result, ArcResult::TempError) {
        return;
    }
    // A first line that starts with white space would continue our last field.
    if msg.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
        return;
    }
    let Ok(key) = SigningKey::from_pem(ED25519_PEM.as_bytes(), false) else { panic!("fuzz key") };
    let (_, start) = find_header_end(msg, 0).unwrap_or((msg.len(), msg.len()));
    let mut task = Box::new(ArcSealTask::new(&headers, key, "fuzz-seal.example".into(), "fuzz-seal".into(), NOW));
    task.body(&msg[start..]);
    let env = Envelope { raw: Vec::new(), sender: Vec::new(), recipients: Vec::new() };
    let id = || "mx.fuzz.example".to_string();
    let dns = || -> Box<dyn TxtLookup> { Box::new(qmail_dkim::dns::Fixed(Vec::new())) };
    let resolver = || -> Box<dyn Resolver> { panic!("sealing asks no DNS") };
    let earlier = [MethodOutput::Arc(verdict.clone())];
    let ctx = Context {
        headers: &headers,
        queued: &headers,
        envelope: &env,
        now: NOW,
        verbose: false,
        authserv_id: &id,
        dns: &dns,
        resolver: &resolver,
        earlier: &earlier,
    };
    let added = match task.finish(&ctx) {
        Ok(r) => r.prepend,
        Err(e) => panic!("sealing failed: {e}"),
    };
    if added.is_empty() {
        // Not sealed: the chain is at 50 sets, ended by cv=fail, or unreadable.
        return;
    }
    let resealed = [added.as_slice(), msg].concat();
    let (_, again) = verify(&resealed, &WithOurKey(&zone));
    match verdict.result {
        ArcResult::None | ArcResult::Pass => assert_eq!(again.result, ArcResult::Pass, "{verdict:?} then {again:?}"),
        ArcResult::Fail => assert_eq!(again.result, ArcResult::Fail, "{verdict:?} then {again:?}"),
        ArcResult::TempError => {}
    }
});
