//! DMARC (RFC 9989) on arbitrary input: every line through the record parser, every word as a
//! name through the tree walk's names and the organizational domain, `from` lines as From field
//! values through `address_domains`; then `evaluate` for each From domain found (the first 4)
//! over the zone written in the input (`fuzz_support::Zone`), with the DKIM and SPF results of
//! `dkim`, `dkimtemp` and `spf` lines. No panic; a walk asks at most `MAX_QUERIES` names, each a
//! suffix of the start at a label boundary; evaluate asks at most one walk per identifier it may
//! walk (plus the From domain's own name and the existence question) and passes only with an
//! aligned identifier and a policy record.
#![no_main]

use fuzz_support::{setting, Zone};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::auth_results::SpfResult;
use qmail_dkim::dmarc::record;
use qmail_dkim::dmarc::walk::{self, MAX_QUERIES};
use qmail_dkim::dmarc::{evaluate, DmarcResult, Evidence, MAX_IDENTIFIER_WALKS};
use qmail_dkim::message::{address_domains, unfold};

fn words(lines: &[&[u8]], word: &str) -> Vec<String> {
    let prefix = format!("{word} ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn is_suffix_at_a_label(part: &str, d: &str) {
    assert!(d.ends_with(part), "{part:?} is not a suffix of {d:?}");
    assert!(part.len() == d.len() || d[..d.len() - part.len()].ends_with('.'), "{part:?} of {d:?}");
}

fn walk_names_are_suffixes(name: &str) {
    let d = name.strip_suffix('.').unwrap_or(name);
    let names: Vec<&str> = walk::names(d).collect();
    assert!(names.len() <= MAX_QUERIES, "{} names for {d:?}", names.len());
    for n in names {
        is_suffix_at_a_label(n, d);
    }
    is_suffix_at_a_label(walk::organizational_domain(d, &[]), d);
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
        walk_names_are_suffixes(n);
        walk_names_are_suffixes(&n.to_ascii_lowercase());
    }

    let dkim_pass = words(&other, "dkim");
    let dkim_temperror = words(&other, "dkimtemp");
    let spf = setting(&other, "spf").map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    let (spf_word, spf_domain) = spf.split_once(' ').unwrap_or((&spf, ""));
    let spf_result = match spf_word {
        "pass" => SpfResult::Pass,
        "temperror" => SpfResult::TempError,
        "fail" => SpfResult::Fail,
        _ => SpfResult::None,
    };
    let ev = Evidence {
        dkim_pass: &dkim_pass,
        dkim_temperror: &dkim_temperror,
        spf_result,
        spf_domain: (!spf_domain.is_empty()).then_some(spf_domain),
    };
    let mut domains = Vec::new();
    for from in other.iter().filter_map(|l| l.strip_prefix(b"from ")) {
        domains.extend(address_domains(&unfold(from)).into_iter().flatten());
    }
    for d in domains.iter().take(4) {
        let before = zone.asked.get();
        let out = evaluate(&zone, d, &ev);
        let asked = zone.asked.get() - before;
        let bound = 2 + (MAX_IDENTIFIER_WALKS + 1) * MAX_QUERIES;
        assert!(asked <= bound, "{asked} questions for {d:?}");
        if out.result == DmarcResult::Pass {
            assert!(out.aligned.is_some() && out.policy.is_some(), "{out:?}");
        }
    }
});
