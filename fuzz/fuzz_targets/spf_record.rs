//! SPF (RFC 7208) on arbitrary input: every line through the record parser and the macro-string
//! parser (domain-spec and explanation contexts) and, when it parses, the expansion; then
//! check_host() over the zone written in the input (`fuzz_support::Zone`), with the client
//! from `ip`, `sender`, `helo` and `domain` lines. No panic; an expanded name is at most a few
//! octets over 253 (then the lookup answers `BadName`), an explanation at most
//! `MAX_EXPLANATION`; check_host asks no more questions than its limits allow.
#![no_main]

use fuzz_support::{setting, Zone};
use libfuzzer_sys::fuzz_target;
use qmail_dkim::domain::MAX_NAME;
use qmail_dkim::spf::verify::{MAX_DNS_TERMS, MAX_MX_NAMES, MAX_PTR_NAMES};
use qmail_dkim::spf::macros::{self, Context, Vars, MAX_EXPLANATION};
use qmail_dkim::spf::{check_host, record};
use std::net::IpAddr;

/// The top TXT question, each of the 10 terms with its own question and up to 10 address
/// questions (an `mx` or `ptr`), `%{p}` once (a PTR and 10 address questions), and `exp=`.
const MAX_SPF_QUESTIONS: usize = 1 + MAX_DNS_TERMS as usize * (1 + MAX_MX_NAMES) + 1 + MAX_PTR_NAMES + 1;

fuzz_target!(|data: &[u8]| {
    let (zone, other) = Zone::parse(data);
    let text = |w: &str| setting(&other, w).map(|v| String::from_utf8_lossy(v).into_owned());
    let ip: IpAddr = text("ip").and_then(|v| v.trim().parse().ok()).unwrap_or([192, 0, 2, 1].into());
    let sender = text("sender").unwrap_or_else(|| "user@example.com".into());
    let helo = text("helo").unwrap_or_else(|| "mail.example.com".into());
    let domain = text("domain").unwrap_or_else(|| sender.rsplit_once('@').map_or(helo.clone(), |(_, d)| d.to_string()));

    let (local, sender_domain) = sender.rsplit_once('@').unwrap_or(("postmaster", &sender));
    let vars = Vars {
        sender: &sender,
        local,
        sender_domain,
        domain: &domain,
        ip,
        validated: &helo,
        helo: &helo,
        host_domain: "mx.fuzz.example",
        now: 1_800_000_000,
    };
    for line in data.split(|&c| c == b'\n') {
        let _ = record::select(&[line.to_vec()]);
        let _ = record::parse(line);
        let Ok(s) = std::str::from_utf8(line) else { continue };
        if let Ok(m) = macros::parse(s, Context::Domain) {
            let _ = m.is_domain_spec();
            let name = m.expand_domain(&vars);
            // The kept window is 254 octets. Without a dot to cut at it stays whole (the
            // lookup answers BadName), and the 1 or 2 bytes of a character it cuts become one
            // U+FFFD each: 252 + 2 * 3.
            assert!(name.len() <= MAX_NAME + 5, "expanded name of {} octets", name.len());
        }
        if let Ok(m) = macros::parse(s, Context::Explanation) {
            let t = m.expand_text(&vars);
            assert!(t.len() <= MAX_EXPLANATION, "explanation of {} octets", t.len());
        }
    }

    let out = check_host(&zone, ip, &domain, &sender, &helo, "mx.fuzz.example");
    let asked = zone.asked.get();
    assert!(asked <= MAX_SPF_QUESTIONS, "{asked} questions for {:?}: {}", out.result, out.reason);
    if let Some(e) = &out.explanation {
        assert!(e.len() <= MAX_EXPLANATION);
    }
});
