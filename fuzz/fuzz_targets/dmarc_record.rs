//! DMARC (RFC 7489) on arbitrary input: every line through the record parser, every word as a
//! name through the organizational domain and alignment, `from` lines as From field values
//! through `address_domains`; then `evaluate` for each From domain found (the first 4) over the
//! zone written in the input (`fuzz_support::Zone`), with the DKIM and SPF results of `dkim`,
//! `dkimtemp` and `spf` lines. No panic; the organizational domain is a suffix of the name at
//! a label boundary; alignment is reflexive; evaluate asks at most `MAX_LOOKUPS` questions and
//! passes only with an aligned identifier.
#![no_main]

use fuzz_support::{setting, Zone};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::dmarc::record::{self, Alignment};
use qmail_dkim::dmarc::{aligned, evaluate, organizational_domain, Evidence, Verdict, MAX_LOOKUPS};
use qmail_dkim::message::{address_domains, unfold};

fn words(lines: &[&[u8]], word: &str) -> Vec<String> {
    let prefix = format!("{word} ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn org_is_a_suffix(name: &str) {
    let d = name.strip_suffix('.').unwrap_or(name);
    let org = organizational_domain(name);
    assert!(d.ends_with(org), "{org:?} is not a suffix of {d:?}");
    assert!(org.len() == d.len() || d[..d.len() - org.len()].ends_with('.'), "{org:?} of {d:?}");
}

fuzz_target!(|data: &[u8]| {
    let (zone, other) = Zone::parse(data);
    let mut names: Vec<String> = Vec::new();
    for line in data.split(|&c| c == b'\n') {
        let _ = record::is_dmarc1(line);
        let _ = record::parse(line);
        for w in line.split(|&c| c == b' ').take(8) {
            names.push(String::from_utf8_lossy(w).into_owned());
        }
    }
    names.truncate(64);
    for n in &names {
        org_is_a_suffix(n);
        org_is_a_suffix(&n.to_ascii_lowercase());
        assert!(aligned(n, n, Alignment::Strict) && aligned(n, n, Alignment::Relaxed), "{n:?}");
    }
    for pair in names.windows(2) {
        let _ = aligned(&pair[0], &pair[1], Alignment::Relaxed);
    }

    let dkim_pass = words(&other, "dkim");
    let dkim_temperror = words(&other, "dkimtemp");
    let spf = setting(&other, "spf").map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    let (spf_result, spf_domain) = spf.split_once(' ').unwrap_or((&spf, ""));
    let ev = Evidence {
        dkim_pass: &dkim_pass,
        dkim_temperror: &dkim_temperror,
        spf_result,
        spf_domain: (!spf_domain.is_empty()).then_some(spf_domain),
    };
    let roll = setting(&other, "roll").and_then(|v| v.first().copied()).unwrap_or(0) % 100;
    let mut domains = Vec::new();
    for from in other.iter().filter_map(|l| l.strip_prefix(b"from ")) {
        domains.extend(address_domains(&unfold(from)).into_iter().flatten());
    }
    for d in domains.iter().take(4) {
        let before = zone.asked.get();
        let out = evaluate(&zone, d, &ev, &mut || roll);
        let asked = zone.asked.get() - before;
        assert!(asked <= MAX_LOOKUPS, "{asked} questions for {d:?}");
        if out.result == Verdict::Pass {
            assert!(out.aligned.is_some() && out.record.is_some(), "{out:?}");
        }
    }
});
