//! DKIM2 field parsers on arbitrary input: the input as a DKIM2-Signature value
//! (`dkim2::parse::Signature::parse`, and `hash::signed_self`), as a Message-Instance value
//! (`Instance::parse`) and as recipe JSON (`recipe::Recipe::from_json`); a recipe read is applied
//! to the header block and body of the input. No panic; parsed values respect their caps; the
//! signed form of a field has no white space; a recipe's previous state is at most the current
//! one plus the recipe's data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qmail_dkim::dkim2::hash::{signed_self, Field};
use qmail_dkim::dkim2::parse::{Binding, Instance, Signature, MAX_HASHES, MAX_RECIPIENTS, MAX_SIGNATURE_VALUES};
use qmail_dkim::dkim2::recipe::{apply_body, BodyRecipe, Recipe, Step};
use qmail_dkim::message::{find_header_end, Headers};

fn data_len(steps: &[Step]) -> usize {
    steps.iter().map(|s| if let Step::Data(d) = s { d.iter().map(|l| l.len() + 2).sum() } else { 0 }).sum()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Signature::parse(data) {
        assert!(!s.s.is_empty() && s.s.len() <= MAX_SIGNATURE_VALUES);
        if let Binding::Envelope { rcpt_to, .. } = &s.binding {
            assert!(rcpt_to.len() <= MAX_RECIPIENTS);
        }
    }
    let mut out = Vec::new();
    signed_self(data, &mut out);
    assert!(out.ends_with(b"\r\n") && !out[..out.len() - 2].iter().any(|c| c.is_ascii_whitespace()));

    if let Ok(mi) = Instance::parse(data) {
        assert!(mi.hashes.len() <= MAX_HASHES);
    }
    let Ok(recipe) = Recipe::from_json(data) else { return };
    let (end, start) = find_header_end(data, 0).unwrap_or((data.len(), data.len()));
    let h = Headers::parse(data[..end].to_vec());
    let fields: Vec<Field> = h.fields.iter().map(|f| (h.name(f), h.value(f))).collect();
    let before = recipe.apply_headers(&fields);
    let data_bytes: usize = recipe.headers.iter().map(|(n, s)| data_len(s) + s.len() * (n.len() + 4)).sum();
    assert!(before.len() <= 3 * end + data_bytes + 2, "{} from {end}", before.len());
    if let BodyRecipe::Steps(steps) = &recipe.body {
        let body = &data[start..];
        let prev = apply_body(body, steps);
        assert!(prev.len() <= 2 * body.len() + data_len(steps) + 2);
    }
});
