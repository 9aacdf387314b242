//! TXT lookups for key and policy records. One small trait so that verification does not care
//! whether the answer comes from DNS (hickory, `DNSCACHEIP` or /etc/resolv.conf, bounded in
//! time) or from `SELECTOR_DATA`.

/// The answer to one TXT question, in the classes the result letters need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The TXT records found, each with its character-strings concatenated.
    Records(Vec<Vec<u8>>),
    /// NXDOMAIN, or the name exists without a TXT record: a permanent failure.
    NotFound,
    /// SERVFAIL, timeout, refused connection, no servers: try again later.
    TempFail(String),
    /// The name is not a valid DNS name (e.g. over 253 octets).
    BadName,
}

pub trait TxtLookup {
    fn txt(&self, name: &str) -> TxtAnswer;
    /// The same lookups for the questions the sender cannot choose ([`unchosen_txt`]); `None`
    /// when this lookup has no time budget (`SELECTOR_DATA`, a test zone).
    fn unchosen_txt(&self) -> Option<Box<dyn TxtLookup>> {
        None
    }
}

/// The answer to one question of another type, in the same classes as [`TxtAnswer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Records(Vec<T>),
    /// NXDOMAIN, or the name exists without records of that type (RFC 7208 calls both "void").
    NotFound,
    TempFail(String),
    BadName,
}

/// A mail exchanger: preference and host name (without the trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    pub exchange: String,
}

/// Every question SPF, DMARC and ARC ask (TXT through [`TxtLookup`]). Always real DNS (or a
/// test zone): `SELECTOR_DATA` answers only DKIM key questions.
pub trait Resolver: TxtLookup {
    fn a(&self, name: &str) -> Answer<Ipv4Addr>;
    fn aaaa(&self, name: &str) -> Answer<Ipv6Addr>;
    fn mx(&self, name: &str) -> Answer<Mx>;
    /// The PTR records of `ip`'s reverse name (`in-addr.arpa` / `ip6.arpa`).
    fn ptr(&self, ip: IpAddr) -> Answer<String>;
    /// Whether `name` exists (RFC 8020, RFC 9989 A.4): only NXDOMAIN says it does not; a name
    /// without records of the type asked (NODATA) exists. `Err` on a temporary failure.
    fn exists(&self, name: &str) -> Result<bool, String>;
    /// The same resolver for the questions the sender cannot choose ([`unchosen`]); `None` when
    /// it has no time budget (a test zone).
    fn unchosen(&self) -> Option<Box<dyn Resolver>> {
        None
    }
}

/// `r` for the questions the sender of a message cannot choose: the From domain's DMARC policy
/// (every question of its discovery), the keys of DKIM signatures in line with the From domain,
/// the SPF check of an envelope domain in line with it ([`crate::domain::in_line`]). They draw
/// on a time budget of their own ([`RESERVE_TIMEOUTS`]), so that no question the sender adds
/// (more signatures, ARC sets, names in its own zones) can use up their time. Use it for every
/// question of such a check, e.g. `let resolver = dns::unchosen((ctx.resolver)());`.
pub fn unchosen(r: Box<dyn Resolver>) -> Box<dyn Resolver> {
    r.unchosen().unwrap_or(r)
}

/// [`unchosen`] for key lookups (which may be `SELECTOR_DATA`).
pub fn unchosen_txt(l: Box<dyn TxtLookup>) -> Box<dyn TxtLookup> {
    l.unchosen_txt().unwrap_or(l)
}

/// The reverse name of an address: `4.3.2.1.in-addr.arpa`, or the 32 nibbles of `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// `SELECTOR_DATA`: that exact string is the record for every lookup.
pub struct Fixed(pub Vec<u8>);

impl TxtLookup for Fixed {
    fn txt(&self, name: &str) -> TxtAnswer {
        if !valid_name(name) {
            return TxtAnswer::BadName;
        }
        TxtAnswer::Records(vec![self.0.clone()])
    }
}

/// A DNS name we may ask for: at most 253 octets, labels of 1..=63 octets.
pub fn valid_name(name: &str) -> bool {
    crate::domain::fits_dns(name.strip_suffix('.').unwrap_or(name))
}

/// The unit tests' DNS: a zone in memory.
#[cfg(test)]
mod zone;
#[cfg(test)]
pub use zone::{Zone, ZoneRecord};

// ---------------------------------------------------------------------------
// Real DNS through hickory-resolver.

mod lenient;

pub use crate::config::settings::parse_dnscacheip;
use crate::config::settings::DnsSettings;
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Default time bound of one query (`DNSTIMEOUT` seconds overrides it).
pub const DEFAULT_TIMEOUT: Duration = crate::config::settings::DEFAULT_DNS_TIMEOUT;
/// The questions of one message that the sender may choose (every question but the
/// [`unchosen`] ones) may wait at most this many query time bounds in all; after that each
/// further one is a temporary failure at once, so a dead server cannot hold a delivery for
/// (signatures × timeout).
pub const BUDGET_TIMEOUTS: u32 = 2;
/// The [`unchosen`] questions of one message have a budget of their own, this many query time
/// bounds, which no other question uses up. A message's DNS questions wait at most
/// `BUDGET_TIMEOUTS + RESERVE_TIMEOUTS` query time bounds in all.
pub const RESERVE_TIMEOUTS: u32 = 2;

/// One resolver per message, shared by every task (DKIM keys, SPF, DMARC, ARC), so that they
/// share its time budgets: a dead server costs `BUDGET_TIMEOUTS + RESERVE_TIMEOUTS` query
/// bounds per message, not that much per check.
impl<T: TxtLookup + ?Sized> TxtLookup for std::rc::Rc<T> {
    fn txt(&self, name: &str) -> TxtAnswer {
        (**self).txt(name)
    }
    fn unchosen_txt(&self) -> Option<Box<dyn TxtLookup>> {
        (**self).unchosen_txt()
    }
}

impl<T: Resolver + ?Sized> Resolver for std::rc::Rc<T> {
    fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        (**self).a(name)
    }
    fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        (**self).aaaa(name)
    }
    fn mx(&self, name: &str) -> Answer<Mx> {
        (**self).mx(name)
    }
    fn ptr(&self, ip: IpAddr) -> Answer<String> {
        (**self).ptr(ip)
    }
    fn exists(&self, name: &str) -> Result<bool, String> {
        (**self).exists(name)
    }
    fn unchosen(&self) -> Option<Box<dyn Resolver>> {
        (**self).unchosen()
    }
}

/// The lookups of one message: `SELECTOR_DATA` when it is set (no DNS at all), else DNS.
pub fn from_settings(s: &DnsSettings) -> Box<dyn TxtLookup> {
    if let Some(d) = &s.selector_data {
        return Box::new(Fixed(d.as_bytes().to_vec()));
    }
    Box::new(Hickory::from_settings(s))
}

/// The key lookups of one message beside `shared`, the message's one resolver:
/// `SELECTOR_DATA` when it is set, else the shared resolver itself (one time budget for
/// everything), made only now.
pub fn keys_or_shared(s: &DnsSettings, shared: impl FnOnce() -> std::rc::Rc<Hickory>) -> Box<dyn TxtLookup> {
    match &s.selector_data {
        Some(d) => Box::new(Fixed(d.as_bytes().to_vec())),
        None => Box::new(shared()),
    }
}

/// Where the servers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Servers {
    /// `DNSCACHEIP`.
    Listed(Vec<SocketAddr>),
    /// /etc/resolv.conf (127.0.0.1:53 when it is missing or names no server).
    System,
}

/// TXT lookups through hickory-resolver: UDP, then TCP when the answer is truncated; one
/// time bound per query and two budgets for the message (its questions' waiting time, counted
/// per question: the sender's choice, and the [`unchosen`] ones). The tokio runtime (current
/// thread) and the resolver are made at the first lookup, so a message without signatures
/// costs nothing. [`Hickory::unchosen`] is a handle on the same resolver and budgets.
pub struct Hickory {
    shared: std::rc::Rc<Shared>,
    /// Which budget this handle's questions draw on.
    reserve: bool,
}

struct Shared {
    servers: Servers,
    timeout: Duration,
    /// Time waited so far: by the sender's questions, by the unchosen ones.
    spent: [Cell<Duration>; 2],
    state: RefCell<Option<Result<(tokio::runtime::Runtime, hickory_resolver::TokioResolver), String>>>,
    /// Every answer of this message, so that no question goes on the wire twice (DMARC's tree
    /// walks of several identifiers share most names), with whether an unchosen question got
    /// it. As many entries as questions asked.
    cache: RefCell<std::collections::HashMap<(String, hickory_resolver::proto::rr::RecordType), (QueryResult, bool)>>,
}

type QueryResult = std::result::Result<Vec<hickory_resolver::proto::rr::RData>, QueryError>;

const USED_UP: &str = "DNS time budget for this message used up";

impl Hickory {
    /// The resolver `DNSCACHEIP` and `DNSTIMEOUT` name.
    pub fn from_settings(s: &DnsSettings) -> Hickory {
        let servers = match &s.servers {
            Some(l) if !l.is_empty() => Servers::Listed(l.clone()),
            Some(_) => {
                eprintln!("qmail-dkim: warning: DNSCACHEIP names no usable address; using /etc/resolv.conf");
                Servers::System
            }
            None => Servers::System,
        };
        Hickory::new(servers, s.timeout)
    }

    pub fn new(servers: Servers, timeout: Duration) -> Hickory {
        let shared = Shared {
            servers,
            timeout,
            spent: [Cell::new(Duration::ZERO), Cell::new(Duration::ZERO)],
            state: RefCell::new(None),
            cache: RefCell::default(),
        };
        Hickory { shared: std::rc::Rc::new(shared), reserve: false }
    }

    /// The same resolver, its questions drawing on the budget of the unchosen questions.
    pub fn unchosen(&self) -> Hickory {
        Hickory { shared: self.shared.clone(), reserve: true }
    }
}

impl Shared {
    /// The servers' addresses: `DNSCACHEIP`, else /etc/resolv.conf, else 127.0.0.1:53.
    fn addresses(&self) -> Vec<SocketAddr> {
        match &self.servers {
            Servers::Listed(l) => l.clone(),
            Servers::System => {
                let sys = hickory_resolver::system_conf::read_system_conf()
                    .ok()
                    .map(|(c, _)| c.name_servers().iter().map(|n| SocketAddr::new(n.ip, 53)).collect::<Vec<_>>())
                    .unwrap_or_default();
                if sys.is_empty() {
                    vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)]
                } else {
                    sys
                }
            }
        }
    }

    fn build(&self) -> Result<(tokio::runtime::Runtime, hickory_resolver::TokioResolver), String> {
        use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
        use hickory_resolver::net::runtime::TokioRuntimeProvider;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the DNS runtime: {e}"))?;
        let servers: Vec<NameServerConfig> = self
            .addresses()
            .iter()
            .map(|a| {
                let mut ns = NameServerConfig::udp_and_tcp(a.ip());
                for c in &mut ns.connections {
                    c.port = a.port();
                }
                ns
            })
            .collect();
        let config = ResolverConfig::from_parts(None, Vec::new(), servers);
        let mut opts = ResolverOpts::default();
        opts.timeout = self.timeout;
        opts.attempts = 1;
        opts.ndots = 0;
        opts.cache_size = 64;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.edns0 = true;
        opts.try_tcp_on_error = false;
        let resolver = {
            let _guard = rt.enter();
            hickory_resolver::TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .map_err(|e| format!("cannot set up the resolver: {e}"))?
        };
        Ok((rt, resolver))
    }
}

/// Why a query has no records, before it is turned into an answer of its type.
#[derive(Clone)]
enum QueryError {
    /// NXDOMAIN: the name does not exist.
    NoName,
    /// The name exists without records of the type asked.
    NoData,
    TempFail(String),
    BadName,
}

impl<T> From<QueryError> for Answer<T> {
    fn from(e: QueryError) -> Answer<T> {
        match e {
            QueryError::NoName | QueryError::NoData => Answer::NotFound,
            QueryError::TempFail(t) => Answer::TempFail(t),
            QueryError::BadName => Answer::BadName,
        }
    }
}

impl Hickory {
    /// One question, answered from this message's cache when it was asked before.
    /// A temporary failure of a question the sender may choose is not the answer of an unchosen
    /// one: that is asked again, in its own time (a sender's SPF record may name
    /// `_dmarc.<From domain>` once its budget is used up). A budget used up is never kept.
    fn query(&self, name: &str, rtype: hickory_resolver::proto::rr::RecordType) -> QueryResult {
        let key = (name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase(), rtype);
        if let Some((hit, by_unchosen)) = self.shared.cache.borrow().get(&key) {
            if !(self.reserve && !by_unchosen && matches!(hit, Err(QueryError::TempFail(_)))) {
                return hit.clone();
            }
        }
        let r = self.ask(name, rtype);
        if !matches!(&r, Err(QueryError::TempFail(why)) if why == USED_UP) {
            self.shared.cache.borrow_mut().insert(key, (r.clone(), self.reserve));
        }
        r
    }

    /// One question on the wire within the message's time budget; the records of that type in
    /// the answer.
    fn ask(&self, name: &str, rtype: hickory_resolver::proto::rr::RecordType) -> QueryResult {
        use hickory_resolver::proto::rr::Name;
        if !valid_name(name) {
            return Err(QueryError::BadName);
        }
        let sh = &*self.shared;
        let (spent, budget) = if self.reserve {
            (&sh.spent[1], sh.timeout * RESERVE_TIMEOUTS)
        } else {
            (&sh.spent[0], sh.timeout * BUDGET_TIMEOUTS)
        };
        let left = budget.saturating_sub(spent.get());
        if left.is_zero() {
            return Err(QueryError::TempFail(USED_UP.into()));
        }
        // Labels as raw octets (RFC 2181 §11: any octet): an SPF target name may hold `:`, `/`,
        // spaces or `%` after macro expansion (RFC 7208 §7.1), which `Name::from_ascii` refuses.
        let Ok(qname) = Name::from_labels(name.strip_suffix('.').unwrap_or(name).split('.').map(str::as_bytes)) else {
            return Err(QueryError::BadName);
        };
        let mut state = sh.state.borrow_mut();
        if state.is_none() {
            *state = Some(sh.build());
        }
        let (rt, resolver) = match state.as_ref() {
            Some(Ok(s)) => (&s.0, &s.1),
            Some(Err(e)) => return Err(QueryError::TempFail(e.clone())),
            None => return Err(QueryError::TempFail("no resolver".into())),
        };
        let bound = left.min(sh.timeout + Duration::from_millis(100));
        let started = Instant::now();
        let r = rt.block_on(async { tokio::time::timeout(bound, resolver.lookup(qname.clone(), rtype)).await });
        let result = match r {
            Err(_) => Err(QueryError::TempFail(format!("no answer within {} ms", bound.as_millis()))),
            Ok(Err(e)) if e.is_nx_domain() => Err(QueryError::NoName),
            Ok(Err(e)) if e.is_no_records_found() => Err(QueryError::NoData),
            Ok(Err(hickory_resolver::net::NetError::Proto(hickory_resolver::proto::ProtoError::Decode(
                hickory_resolver::proto::serialize::binary::DecodeError::InvalidEmptyRecord,
            )))) if rtype == hickory_resolver::proto::rr::RecordType::TXT => {
                // A TXT record of zero-length data made hickory refuse the whole answer.
                use hickory_resolver::proto::rr::{rdata::TXT, RData};
                let rest = left.saturating_sub(started.elapsed()).min(sh.timeout);
                match lenient::txt(&sh.addresses(), &qname, Instant::now() + rest) {
                    lenient::Lenient::Records(r) => {
                        Ok(r.iter().map(|t| RData::TXT(TXT::from_bytes(vec![t.as_slice()]))).collect())
                    }
                    lenient::Lenient::NoName => Err(QueryError::NoName),
                    lenient::Lenient::NoData => Err(QueryError::NoData),
                    lenient::Lenient::TempFail(t) => Err(QueryError::TempFail(t)),
                }
            }
            Ok(Err(e)) => Err(QueryError::TempFail(e.to_string())),
            Ok(Ok(lookup)) => {
                let recs: Vec<_> =
                    lookup.answers().iter().filter(|r| r.record_type() == rtype).map(|r| r.data.clone()).collect();
                if recs.is_empty() {
                    Err(QueryError::NoData)
                } else {
                    Ok(recs)
                }
            }
        };
        spent.set(spent.get() + started.elapsed());
        result
    }

    fn typed<T>(
        &self,
        name: &str,
        rtype: hickory_resolver::proto::rr::RecordType,
        f: impl Fn(&hickory_resolver::proto::rr::RData) -> Option<T>,
    ) -> Answer<T> {
        match self.query(name, rtype) {
            Ok(recs) => Answer::Records(recs.iter().filter_map(f).collect()),
            Err(e) => e.into(),
        }
    }
}

/// A host name from DNS, its labels as they are (not escaped) joined by dots, so that it can be
/// asked again. `None` for a name that our dotted text cannot carry: a label holding a dot, or
/// octets that are not UTF-8.
fn host_name(n: &hickory_resolver::proto::rr::Name) -> Option<String> {
    let mut s = String::new();
    for label in n.iter() {
        let l = std::str::from_utf8(label).ok().filter(|l| !l.contains('.'))?;
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(l);
    }
    Some(s)
}

impl TxtLookup for Hickory {
    fn txt(&self, name: &str) -> TxtAnswer {
        use hickory_resolver::proto::rr::{RData, RecordType};
        match self.query(name, RecordType::TXT) {
            Ok(recs) => TxtAnswer::Records(
                recs.iter()
                    .filter_map(|r| match r {
                        RData::TXT(t) => Some(t.txt_data.iter().flat_map(|s| s.iter().copied()).collect()),
                        _ => None,
                    })
                    .collect(),
            ),
            Err(QueryError::NoName | QueryError::NoData) => TxtAnswer::NotFound,
            Err(QueryError::TempFail(t)) => TxtAnswer::TempFail(t),
            Err(QueryError::BadName) => TxtAnswer::BadName,
        }
    }

    fn unchosen_txt(&self) -> Option<Box<dyn TxtLookup>> {
        Some(Box::new(Hickory::unchosen(self)))
    }
}

impl Resolver for Hickory {
    fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        use hickory_resolver::proto::rr::{RData, RecordType};
        self.typed(name, RecordType::A, |r| match r {
            RData::A(a) => Some(a.0),
            _ => None,
        })
    }

    fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        use hickory_resolver::proto::rr::{RData, RecordType};
        self.typed(name, RecordType::AAAA, |r| match r {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
    }

    fn mx(&self, name: &str) -> Answer<Mx> {
        use hickory_resolver::proto::rr::{RData, RecordType};
        self.typed(name, RecordType::MX, |r| match r {
            RData::MX(m) => Some(Mx { preference: m.preference, exchange: host_name(&m.exchange)? }),
            _ => None,
        })
    }

    fn ptr(&self, ip: IpAddr) -> Answer<String> {
        use hickory_resolver::proto::rr::{RData, RecordType};
        self.typed(&reverse_name(ip), RecordType::PTR, |r| match r {
            RData::PTR(p) => host_name(&p.0),
            _ => None,
        })
    }

    /// An A question: the rcode tells, whatever the type (RFC 8020).
    fn exists(&self, name: &str) -> Result<bool, String> {
        match self.query(name, hickory_resolver::proto::rr::RecordType::A) {
            Ok(_) | Err(QueryError::NoData) => Ok(true),
            Err(QueryError::NoName | QueryError::BadName) => Ok(false),
            Err(QueryError::TempFail(e)) => Err(e),
        }
    }

    fn unchosen(&self) -> Option<Box<dyn Resolver>> {
        Some(Box::new(Hickory::unchosen(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("192.0.2.1".parse().unwrap()), "1.2.0.192.in-addr.arpa");
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0.") && v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
        assert_eq!(v6.len(), 64 + 8);
    }

    #[test]
    fn dnscacheip_forms() {
        let v = parse_dnscacheip("127.0.0.1, 10.0.0.1:5353 [::1]:5353,::1  [fe80::1] junk");
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:53".parse().unwrap(),
            "10.0.0.1:5353".parse().unwrap(),
            "[::1]:5353".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
            "[fe80::1]:53".parse().unwrap(),
        ];
        assert_eq!(v, want);
        assert!(parse_dnscacheip(" , ").is_empty());
    }

    #[test]
    fn timeouts() {
        let e = |v: &str| crate::config::Settings::from_pairs(&[("DNSTIMEOUT", v)]).dns.timeout;
        assert_eq!(DnsSettings::default().timeout, DEFAULT_TIMEOUT);
        assert_eq!(e("2"), Duration::from_secs(2));
        assert_eq!(e("0.5"), Duration::from_millis(500));
        assert_eq!(e("x"), DEFAULT_TIMEOUT);
        assert_eq!(e("-1"), DEFAULT_TIMEOUT);
    }

    #[test]
    fn selector_data_wins() {
        let env =
            crate::config::Settings::from_pairs(&[("SELECTOR_DATA", "v=DKIM1; p="), ("DNSCACHEIP", "127.0.0.1:1")]);
        let l = from_settings(&env.dns);
        assert_eq!(l.txt("a._domainkey.b.org"), TxtAnswer::Records(vec![b"v=DKIM1; p=".to_vec()]));
        assert_eq!(l.txt(&format!("{}.org", "a".repeat(260))), TxtAnswer::BadName);
    }

    /// The sender's questions use up their budget; the unchosen ones still wait for an answer,
    /// within a budget of their own (also for a name a sender's question failed on); then they
    /// too fail at once.
    #[test]
    fn unchosen_questions_keep_their_own_time() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let t = Duration::from_millis(150);
        let h = Hickory::new(Servers::Listed(vec![silent.local_addr().unwrap()]), t);
        let used_up = |a: &TxtAnswer| matches!(a, TxtAnswer::TempFail(why) if why.contains("used up"));
        let start = Instant::now();
        // The sender's SPF record may name the From domain's policy record.
        assert!(!used_up(&h.txt("_dmarc.victim.example")));
        for i in 1..BUDGET_TIMEOUTS {
            assert!(!used_up(&h.txt(&format!("s{i}._domainkey.dead.example"))));
        }
        let q = Instant::now();
        assert!(used_up(&h.txt("s._domainkey.dead.example")));
        assert!(matches!(dyn_resolver(&h).a("dead.example"), Answer::TempFail(why) if why.contains("used up")));
        assert!(q.elapsed() < t / 2, "{:?}", q.elapsed());
        let u = unchosen(dyn_resolver(&h));
        let q = Instant::now();
        let a = u.txt("_dmarc.victim.example");
        assert!(matches!(a, TxtAnswer::TempFail(_)) && !used_up(&a), "{a:?}");
        assert!(q.elapsed() >= t / 2, "the unchosen question had no time: {:?}", q.elapsed());
        // Its answer is kept for the message: no second wait.
        assert_eq!(u.txt("_dmarc.victim.example"), a);
        for i in 1..RESERVE_TIMEOUTS {
            let _ = u.txt(&format!("_dmarc.{i}.victim.example"));
        }
        assert!(used_up(&u.txt("_dmarc.sub.victim.example")));
        assert!(used_up(&unchosen_txt(Box::new(h.unchosen())).txt("k._domainkey.victim.example")));
        // The whole message: the two budgets and a little slack per question.
        let bound = t * (BUDGET_TIMEOUTS + RESERVE_TIMEOUTS) + Duration::from_millis(100) * 6;
        assert!(start.elapsed() < bound + Duration::from_millis(500), "{:?}", start.elapsed());
        // Without a budget (a zone, SELECTOR_DATA) a lookup is its own unchosen one.
        let z: Box<dyn Resolver> = Box::new(Zone::new());
        assert_eq!(unchosen(z).txt("x.example"), TxtAnswer::NotFound);
    }

    /// Another handle on `h`'s resolver, for the sender's questions.
    fn dyn_resolver(h: &Hickory) -> Box<dyn Resolver> {
        Box::new(Hickory { shared: h.shared.clone(), reserve: false })
    }

    #[test]
    fn unreachable_server_is_temporary_and_bounded() {
        // Nothing listens on this port: refused (ICMP) or silence; either way P, within the bound.
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let h =
            Hickory::new(Servers::Listed(vec![SocketAddr::from(([127, 0, 0, 1], port))]), Duration::from_millis(300));
        let t = Instant::now();
        assert!(matches!(h.txt("sel._domainkey.example.com"), TxtAnswer::TempFail(_)));
        assert!(matches!(h.txt("sel2._domainkey.example.com"), TxtAnswer::TempFail(_)));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_eq!(h.txt("bad..name"), TxtAnswer::BadName);
    }
}
