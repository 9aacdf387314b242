//! check_host() (RFC 7208 §4): fetch, select and parse the record, evaluate its terms in order,
//! follow include and redirect, within the limits of §4.6.4.

use super::macros::{Context, MacroString, Vars};
use super::record::{self, Directive, DualCidr, Mechanism, Qualifier, Record, Selected};
use crate::dns::{Answer, Resolver, TxtAnswer};
use crate::domain::{fits_dns, MAX_NAME};
use std::net::IpAddr;

/// Terms that query DNS (include, a, mx, ptr, exists, redirect) per check_host, all records together.
pub const MAX_DNS_TERMS: u32 = 10;
/// Lookups answered with no records (NXDOMAIN or NODATA) per check_host.
pub(crate) const MAX_VOID_LOOKUPS: u32 = 2;
/// MX names one `mx` term may look up; more are `permerror`.
pub const MAX_MX_NAMES: usize = 10;
/// PTR names one `ptr` term (or the `p` macro) validates; the rest are ignored.
pub const MAX_PTR_NAMES: usize = 10;

use super::{SpfOutput, SpfResult, SpfScope};

impl From<Qualifier> for SpfResult {
    fn from(q: Qualifier) -> SpfResult {
        match q {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

/// RFC 7208 §4: `ip` is the client address, `domain` the domain checked, `sender` the
/// identity as `local@domain` (`postmaster@helo` for the HELO identity), `helo` the HELO name
/// (`h`) and `host_domain` our name (`r`, explanations only). Which identity that was is the
/// caller's to say ([`SpfOutput::with_identity`]).
pub fn check_host(
    resolver: &dyn Resolver,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
    host_domain: &str,
) -> SpfOutput {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());

    // §5: an IPv4-mapped IPv6 client is an IPv4 client.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    // §4.3: the identity's domain must be a domain name (an address literal, spaces or
    // non-ASCII are not; a macro may still make other octets in names it asks for).
    if !crate::domain::is_dns_name(domain) {
        return SpfOutput {
            result: SpfResult::None,
            domain: domain.to_string(),
            reason: format!("{} is not a domain name", printable(domain)),
            explanation: None,
            scope: SpfScope::MailFrom,
            identity: None,
        };
    }
    let (local, sender_domain) = match sender.rsplit_once('@') {
        Some(("", d)) => ("postmaster", d),
        Some((l, d)) => (l, d),
        None => ("postmaster", sender),
    };
    let mut ev = Eval {
        resolver,
        ip,
        sender: cap("postmaster", sender),
        local: cap("postmaster", local),
        sender_domain: cap("unknown", sender_domain),
        helo: if helo.len() > MAX_NAME { "unknown" } else { helo },
        host_domain,
        now,
        terms: 0,
        voids: 0,
        validated: None,
    };
    let done = ev.check(domain, true);
    let reason = match done.result {
        SpfResult::Pass => format!("{ip} is allowed by {domain}"),
        SpfResult::Fail => format!("{ip} is not allowed to send mail for {domain}"),
        SpfResult::SoftFail => format!("{domain} does not quite allow {ip}"),
        SpfResult::Neutral => format!("{domain} says neither yes nor no for {ip}"),
        _ => done.why,
    };
    SpfOutput {
        result: done.result,
        domain: domain.to_string(),
        reason,
        explanation: done.explanation,
        scope: SpfScope::MailFrom,
        identity: None,
    }
}

/// Values longer than any envelope address are not SMTP identities; they would only make
/// expansions costly.
fn cap<'a>(instead: &'static str, v: &'a str) -> &'a str {
    if v.len() > crate::envelope::ADDRESS_LIMIT {
        instead
    } else {
        v
    }
}

struct Eval<'a> {
    resolver: &'a dyn Resolver,
    ip: IpAddr,
    sender: &'a str,
    local: &'a str,
    sender_domain: &'a str,
    helo: &'a str,
    host_domain: &'a str,
    now: u64,
    terms: u32,
    voids: u32,
    /// `p`, found once when first asked.
    validated: Option<String>,
}

/// The result of one check_host() level.
struct Done {
    result: SpfResult,
    why: String,
    explanation: Option<String>,
}

impl Done {
    fn of(result: SpfResult, why: impl Into<String>) -> Done {
        Done { result, why: why.into(), explanation: None }
    }
}

/// A term stops the evaluation: temperror or permerror, with why.
type Stop = (SpfResult, String);

impl Eval<'_> {
    fn vars<'b>(&'b self, domain: &'b str) -> Vars<'b> {
        Vars {
            sender: self.sender,
            local: self.local,
            sender_domain: self.sender_domain,
            domain,
            ip: self.ip,
            validated: self.validated.as_deref().unwrap_or("unknown"),
            helo: self.helo,
            host_domain: self.host_domain,
            now: self.now,
        }
    }

    /// One check_host() level on `domain` (the top level, an include or a redirect target).
    /// `explain`: fetch the explanation of a `fail` (not within an include, §5.2).
    fn check(&mut self, domain: &str, explain: bool) -> Done {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        // §4.3: a malformed or single-label domain is `none`.
        if !fits_dns(domain) || !domain.contains('.') {
            return Done::of(SpfResult::None, format!("{} is not a domain name", printable(domain)));
        }
        let records = match self.resolver.txt(domain) {
            TxtAnswer::Records(r) => r,
            TxtAnswer::NotFound | TxtAnswer::BadName => {
                return Done::of(SpfResult::None, format!("{domain} has no SPF record"));
            }
            TxtAnswer::TempFail(e) => {
                return Done::of(SpfResult::TempError, format!("DNS error for {domain} TXT: {e}"));
            }
        };
        let record = match record::select(&records) {
            Selected::NoRecord => return Done::of(SpfResult::None, format!("{domain} has no SPF record")),
            Selected::Several => return Done::of(SpfResult::PermError, format!("{domain} has several SPF records")),
            Selected::One(r) => match record::parse(r) {
                Ok(rec) => rec,
                Err(e) => {
                    return Done::of(SpfResult::PermError, format!("syntax error in the SPF record of {domain}: {e}"))
                }
            },
        };
        match self.terms_of(&record, domain) {
            Err((result, why)) => Done::of(result, why),
            Ok(Some(q)) => {
                let mut d = Done::of(q.into(), "");
                if q == Qualifier::Fail && explain {
                    d.explanation = record.exp.as_ref().and_then(|e| self.explanation(e, domain));
                }
                d
            }
            Ok(None) => match &record.redirect {
                None => Done::of(SpfResult::Neutral, ""),
                Some(target) => {
                    if let Err((result, why)) = self.count_term() {
                        return Done::of(result, why);
                    }
                    let target = self.target(Some(target), domain);
                    let inner = self.check(&target, explain);
                    // §6.1: a redirect to a domain without a record is a permerror.
                    if inner.result == SpfResult::None {
                        return Done::of(
                            SpfResult::PermError,
                            format!("redirect to {}: {}", printable(&target), inner.why),
                        );
                    }
                    inner
                }
            },
        }
    }

    /// The qualifier of the first matching directive.
    fn terms_of(&mut self, record: &Record, domain: &str) -> Result<Option<Qualifier>, Stop> {
        for Directive { qualifier, mechanism } in &record.directives {
            if mechanism.queries_dns() {
                self.count_term()?;
            }
            if self.matches(mechanism, domain)? {
                return Ok(Some(*qualifier));
            }
        }
        Ok(None)
    }

    fn count_term(&mut self) -> Result<(), Stop> {
        self.terms += 1;
        if self.terms > MAX_DNS_TERMS {
            return Err((SpfResult::PermError, format!("more than {MAX_DNS_TERMS} DNS-querying terms")));
        }
        Ok(())
    }

    fn void(&mut self, name: &str) -> Result<(), Stop> {
        self.voids += 1;
        if self.voids > MAX_VOID_LOOKUPS {
            return Err((
                SpfResult::PermError,
                format!("more than {MAX_VOID_LOOKUPS} lookups without an answer (the last {})", printable(name)),
            ));
        }
        Ok(())
    }

    /// The name a domain-spec (or, without one, the current domain) stands for. `p` is looked
    /// up once, the first time a domain-spec uses it.
    fn target(&mut self, spec: Option<&MacroString>, domain: &str) -> String {
        let Some(spec) = spec else {
            return domain.to_string();
        };
        if spec.uses_p() && self.validated.is_none() {
            // §7.3: the current domain if it is validated, else one below it, else any.
            let names = self.validated_names(None, false).unwrap_or_default();
            let d = domain.to_ascii_lowercase();
            let best = names
                .iter()
                .find(|n| **n == d)
                .or_else(|| names.iter().find(|n| is_at_or_below(n, &d)))
                .or(names.first());
            self.validated = Some(best.map_or_else(|| "unknown".into(), String::clone));
        }
        spec.expand_domain(&self.vars(domain))
    }

    fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Result<bool, Stop> {
        Ok(match mechanism {
            Mechanism::All => true,
            Mechanism::Ip4(net, len) => match self.ip {
                IpAddr::V4(ip) => in_net(&ip.octets(), &net.octets(), *len),
                IpAddr::V6(_) => false,
            },
            Mechanism::Ip6(net, len) => match self.ip {
                IpAddr::V6(ip) => in_net(&ip.octets(), &net.octets(), *len),
                IpAddr::V4(_) => false,
            },
            Mechanism::A(spec, cidr) => {
                let name = self.target(spec.as_ref(), domain);
                self.host_matches(&name, *cidr, true)?
            }
            Mechanism::Mx(spec, cidr) => {
                let name = self.target(spec.as_ref(), domain);
                let answer = self.resolver.mx(&name);
                let mxs = self.records(&name, "MX", answer, true)?.unwrap_or_default();
                if mxs.len() > MAX_MX_NAMES {
                    return Err((
                        SpfResult::PermError,
                        format!("{} has {} MX names, more than {MAX_MX_NAMES}", printable(&name), mxs.len()),
                    ));
                }
                let mut any = false;
                for mx in &mxs {
                    if self.host_matches(&mx.exchange, *cidr, false)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            Mechanism::Ptr(spec) => {
                let target = self.target(spec.as_ref(), domain);
                !self.validated_names(Some(&target), true)?.is_empty()
            }
            Mechanism::Exists(spec) => {
                let name = self.target(Some(spec), domain);
                // §5.7: always an A query, whatever the client's address family.
                let answer = self.resolver.a(&name);
                self.records(&name, "A", answer, true)?.is_some()
            }
            Mechanism::Include(spec) => {
                let name = self.target(Some(spec), domain);
                let inner = self.check(&name, false);
                // §5.2's table.
                match inner.result {
                    SpfResult::Pass => true,
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => false,
                    SpfResult::TempError => return Err((SpfResult::TempError, inner.why)),
                    SpfResult::PermError => return Err((SpfResult::PermError, inner.why)),
                    SpfResult::None => {
                        return Err((SpfResult::PermError, format!("include of {}: {}", printable(&name), inner.why)))
                    }
                }
            }
        })
    }

    /// The records of an answer; `None` when there are none: a void lookup (counted when
    /// `void` says the query is the term's own, not one for an MX or PTR name) or a name that
    /// cannot be asked (`BadName`, e.g. a macro made a 64-octet label: no query, no match).
    fn records<T>(&mut self, name: &str, rtype: &str, a: Answer<T>, void: bool) -> Result<Option<Vec<T>>, Stop> {
        match a {
            Answer::Records(r) if !r.is_empty() => Ok(Some(r)),
            Answer::TempFail(e) => Err(temp(name, rtype, &e)),
            Answer::BadName => Ok(None),
            Answer::Records(_) | Answer::NotFound => {
                if void {
                    self.void(name)?;
                }
                Ok(None)
            }
        }
    }

    /// Whether an address of `name` (of the client's family) is in the client's network.
    fn host_matches(&mut self, name: &str, cidr: DualCidr, void: bool) -> Result<bool, Stop> {
        Ok(match self.ip {
            IpAddr::V4(ip) => {
                let answer = self.resolver.a(name);
                self.records(name, "A", answer, void)?
                    .is_some_and(|r| r.iter().any(|a| in_net(&ip.octets(), &a.octets(), cidr.v4)))
            }
            IpAddr::V6(ip) => {
                let answer = self.resolver.aaaa(name);
                self.records(name, "AAAA", answer, void)?
                    .is_some_and(|r| r.iter().any(|a| in_net(&ip.octets(), &a.octets(), cidr.v6)))
            }
        })
    }

    /// §5.5: the client's PTR names (the first 10) that have an address equal to the client's;
    /// with `target`, only those equal to it or below it, and the first such is enough. DNS
    /// errors match nothing (§5.5). For the `ptr` term (`void`), a PTR question answered with
    /// nothing is a void lookup; for `%{p}` it is not (no term).
    fn validated_names(&mut self, target: Option<&str>, void: bool) -> Result<Vec<String>, Stop> {
        let names = match self.resolver.ptr(self.ip) {
            Answer::Records(n) if !n.is_empty() => n,
            Answer::Records(_) | Answer::NotFound if void => {
                self.void(&crate::dns::reverse_name(self.ip))?;
                return Ok(Vec::new());
            }
            // **Decision:** the `ptr` mechanism's own PTR question failing temporarily is
            // temperror, not RFC 7208 §5.5's "no match": a DNS outage must never turn
            // `ptr -all` into a permanent refusal (docs/dmarc.md). `%{p}` stays "unknown".
            Answer::TempFail(e) if void => return Err(temp(&crate::dns::reverse_name(self.ip), "PTR", &e)),
            _ => return Ok(Vec::new()),
        };
        let target = target.map(|t| t.strip_suffix('.').unwrap_or(t).to_ascii_lowercase());
        let mut out = Vec::new();
        for name in names.iter().take(MAX_PTR_NAMES) {
            let lower = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
            if target.as_deref().is_some_and(|t| !is_at_or_below(&lower, t)) {
                continue;
            }
            let full = DualCidr { v4: 32, v6: 128 };
            if let Ok(true) = self.host_matches(&lower, full, false) {
                out.push(lower);
                if target.is_some() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// §6.2: the TXT record at the expanded `exp=` name, expanded; nothing on any error.
    fn explanation(&mut self, spec: &MacroString, domain: &str) -> Option<String> {
        let name = self.target(Some(spec), domain);
        let TxtAnswer::Records(r) = self.resolver.txt(&name) else {
            return None;
        };
        let [one] = r.as_slice() else {
            return None;
        };
        let text = std::str::from_utf8(one).ok()?;
        let m = super::macros::parse(text, Context::Explanation).ok()?;
        if m.uses_p() {
            self.target(Some(&m), domain);
        }
        Some(m.expand_text(&self.vars(domain)))
    }
}

fn temp(name: &str, rtype: &str, e: &str) -> Stop {
    (SpfResult::TempError, format!("DNS error for {} {rtype}: {e}", printable(name)))
}

/// `name` is `domain` or a name below it (both lowercase, without a final dot).
fn is_at_or_below(name: &str, domain: &str) -> bool {
    name == domain || name.strip_suffix(domain).is_some_and(|head| head.ends_with('.'))
}

/// The first `len` bits of `a` and `net` are equal.
fn in_net(a: &[u8], net: &[u8], len: u8) -> bool {
    let len = usize::from(len).min(a.len() * 8);
    let (whole, bits) = (len / 8, len % 8);
    if a[..whole] != net[..whole] {
        return false;
    }
    bits == 0 || {
        let mask = 0xffu8 << (8 - bits);
        a[whole] & mask == net[whole] & mask
    }
}

/// A name for a reason text: at most 253 printable ASCII characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic()).take(MAX_NAME).collect()
}
