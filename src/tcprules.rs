//! tcprules(1) rules text, read the way `tcprules` compiles it and `tcpserver` looks it up, so
//! that `dkim check` sees the environment a connection from an address gets.
//!
//! A line is `address:instructions`; `#` lines and lines without a colon are skipped, trailing
//! blanks are ignored. Instructions are `allow` or `deny`, then any number of `,VAR=` followed
//! by a delimiter character, the value and the same delimiter again (`,X="y"`, `,X='y'`).
//! The address `1.2.3.4-7` stands for 1.2.3.4 to 1.2.3.7.
//!
//! tcpserver asks for these addresses in order and takes the first one that has a rule (of
//! several rules with one address, the first line): `INFO@IP` (with a remote info), `IP`,
//! `=HOST`, the prefixes of IP ending in a dot (longest first), `=` + the suffixes of HOST that
//! start with a dot (longest first), `=` (with a host name), and the empty address.

/// The variables a rule sets, in order.
pub type Vars = Vec<(String, String)>;

/// One rule line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 1-based line number in the rules text.
    pub line: usize,
    /// The address part, as written.
    pub address: String,
    /// `deny` instead of `allow`.
    pub deny: bool,
    /// The variables it sets, in order.
    pub vars: Vars,
}

/// A line tcprules refuses ("unable to parse this line").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: tcprules cannot parse it: {why}")]
pub struct ParseError {
    pub(crate) line: usize,
    pub(crate) why: &'static str,
}

/// Parses the instructions after the colon: `allow` or `deny`, then `,VAR=dvalued` items.
pub(crate) fn parse_instructions(s: &str) -> Result<(bool, Vars), &'static str> {
    let (deny, mut rest) = if let Some(r) = s.strip_prefix("deny") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("allow") {
        (false, r)
    } else {
        return Err("the instructions start with neither allow nor deny");
    };
    Ok((deny, parse_vars(&mut rest)?))
}

/// `,VAR=dvalued,...` (a leading comma is optional for the first item, as `dkim check --env`
/// takes it).
pub fn parse_env(s: &str) -> Result<Vars, &'static str> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    let with_comma = if t.starts_with(',') { t.to_string() } else { format!(",{t}") };
    let mut rest = with_comma.as_str();
    parse_vars(&mut rest)
}

fn parse_vars(rest: &mut &str) -> Result<Vars, &'static str> {
    let mut vars = Vec::new();
    while let Some(item) = rest.strip_prefix(',') {
        let Some((name, after)) = item.split_once('=') else { return Err("a ,VAR item without '='") };
        let mut chars = after.chars();
        let Some(delim) = chars.next() else { return Err("no value after '='") };
        let value_and_rest = chars.as_str();
        let Some(end) = value_and_rest.find(delim) else { return Err("the value's closing delimiter is missing") };
        vars.push((name.to_string(), value_and_rest[..end].to_string()));
        *rest = &value_and_rest[end + delim.len_utf8()..];
    }
    if rest.is_empty() {
        Ok(vars)
    } else {
        Err("text after the instructions that is not a ,VAR=\"value\" item")
    }
}

/// Every rule of the text, with ranges left as written (see [`Rule::keys`]).
pub fn parse(text: &str) -> Result<Vec<Rule>, ParseError> {
    let mut rules = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((address, instr)) = line.split_once(':') else { continue };
        let (deny, vars) = parse_instructions(instr).map_err(|why| ParseError { line: i + 1, why })?;
        rules.push(Rule { line: i + 1, address: address.to_string(), deny, vars });
    }
    Ok(rules)
}

impl Rule {
    fn matches(&self, key: Key<'_>) -> bool {
        let a = &self.address;
        if a.contains('=') || a.contains('@') {
            return key.is(a);
        }
        let Some(dash) = a.find('-') else { return key.is(a) };
        // A range has no `=`, so it never stands for a `=` + host key (the only ones with a tail).
        if !key.tail.is_empty() {
            return false;
        }
        let key = key.head;
        let left = a[..dash].rfind('.').map_or(0, |d| d + 1);
        let right = dash + 1 + a[dash + 1..].find('.').unwrap_or(a.len() - dash - 1);
        let (Ok(bot), Ok(top)) = (a[left..dash].parse::<u64>(), a[dash + 1..right].parse::<u64>()) else {
            return false;
        };
        let (head, tail) = (&a[..left], &a[right..]);
        let Some(mid) = key.strip_prefix(head).and_then(|k| k.strip_suffix(tail)) else { return false };
        // tcprules writes the numbers without leading zeros.
        mid.parse::<u64>().is_ok_and(|n| n >= bot && n <= top.min(255) && n.to_string() == mid)
    }
}

/// One address tcpserver asks for: `head` then `tail`, compared in place, so that the suffixes
/// of a host name of many labels are never copied (16,000 labels once took 254 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key<'a> {
    head: &'a str,
    tail: &'a str,
}

impl<'a> Key<'a> {
    fn whole(head: &'a str) -> Key<'a> {
        Key { head, tail: "" }
    }

    fn is(&self, s: &str) -> bool {
        s.len() == self.head.len() + self.tail.len()
            && s.starts_with(self.head)
            && s.as_bytes()[self.head.len()..] == *self.tail.as_bytes()
    }
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.head, self.tail)
    }
}

/// The addresses tcpserver tries for a connection, in its order; `info_at_ip` is `INFO@IP`
/// when a remote info is known. Every key borrows from the arguments.
pub(crate) fn lookup_keys<'a>(
    ip: &'a str,
    host: Option<&'a str>,
    info_at_ip: Option<&'a str>,
) -> impl Iterator<Item = Key<'a>> {
    let ip_prefixes = ip.char_indices().rev().filter(|&(_, c)| c == '.').map(move |(n, _)| Key::whole(&ip[..=n]));
    let host_suffixes = host.into_iter().flat_map(|h| {
        h.char_indices()
            .filter(|&(_, c)| c == '.')
            .map(move |(n, _)| Key { head: "=", tail: &h[n..] })
            .chain(std::iter::once(Key::whole("=")))
    });
    info_at_ip
        .map(Key::whole)
        .into_iter()
        .chain(std::iter::once(Key::whole(ip)))
        .chain(host.map(|h| Key { head: "=", tail: h }))
        .chain(ip_prefixes)
        .chain(host_suffixes)
        .chain(std::iter::once(Key::whole("")))
}

/// The rule tcpserver applies to a connection from `ip` (and `host`, `info` when known), if any.
pub fn find<'a>(rules: &'a [Rule], ip: &str, host: Option<&str>, info: Option<&str>) -> Option<&'a Rule> {
    let info_at_ip = info.map(|i| format!("{i}@{ip}"));
    let mut keys = lookup_keys(ip, host, info_at_ip.as_deref());
    keys.find_map(|k| rules.iter().find(|r| r.matches(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "# comment\n\
        127.:allow,RELAYCLIENT=\"\",DKIMSIGN=\"/k/%/default\"\n\
        10.0.0.4-7:allow,RELAYCLIENT=''\n\
        192.168.1.9:deny\n\
        192.168.1.9:allow,X=\"never\"\n\
        =mail.example.com:allow,H=\"host\"\n\
        =.example.org:allow,H=\"domain\"\n\
        no colon here\n\
        :allow,DKIMVERIFY=\"FGH\",QMAILQUEUE=\"/var/qmail/bin/qmail-dkim\"   \n";

    #[test]
    fn tcpserver_order() {
        let r = parse(RULES).unwrap();
        assert_eq!(r.len(), 7);
        let f = find(&r, "127.0.0.1", None, None).unwrap();
        assert_eq!((f.line, f.vars[1].1.as_str()), (2, "/k/%/default"));
        assert_eq!(f.vars[0], ("RELAYCLIENT".to_string(), String::new()));
        assert_eq!(find(&r, "10.0.0.5", None, None).unwrap().line, 3);
        assert_eq!(find(&r, "10.0.0.8", None, None).unwrap().line, 9);
        assert_eq!(find(&r, "10.0.0.05", None, None).unwrap().line, 9);
        // Of two rules for one address the first wins.
        assert!(find(&r, "192.168.1.9", None, None).unwrap().deny);
        assert_eq!(find(&r, "1.2.3.4", Some("mail.example.com"), None).unwrap().line, 6);
        assert_eq!(find(&r, "1.2.3.4", Some("a.b.example.org"), None).unwrap().line, 7);
        // The whole address beats the host name, which beats an address prefix.
        assert_eq!(find(&r, "192.168.1.9", Some("mail.example.com"), None).unwrap().line, 4);
        assert_eq!(find(&r, "127.0.0.1", Some("mail.example.com"), None).unwrap().line, 6);
        let d = find(&r, "1.2.3.4", None, None).unwrap();
        assert_eq!(d.vars.last().unwrap().1, "/var/qmail/bin/qmail-dkim");
    }

    #[test]
    fn lookup_order() {
        let keys: Vec<String> =
            lookup_keys("1.2.3.4", Some("a.b.org"), Some("u@1.2.3.4")).map(|k| k.to_string()).collect();
        let want = ["u@1.2.3.4", "1.2.3.4", "=a.b.org", "1.2.3.", "1.2.", "1.", "=.b.org", "=.org", "=", ""];
        assert_eq!(keys, want);
        let r = parse("u@1.2.3.4:allow,X=\"info\"\n").unwrap();
        assert_eq!(find(&r, "1.2.3.4", None, Some("u")).map(|r| r.line), Some(1));
    }

    #[test]
    fn instructions() {
        assert_eq!(
            parse_env("RELAYCLIENT=\"\",DKIMSIGN=\"a,b\"").unwrap(),
            vec![("RELAYCLIENT".to_string(), String::new()), ("DKIMSIGN".to_string(), "a,b".to_string())]
        );
        assert_eq!(parse_env("").unwrap(), vec![]);
        assert!(parse_env("X=\"open").is_err());
        assert!(parse_env("X").is_err());
        assert!(parse("1.2.3.4:allow X=\"y\"\n").is_err());
        assert!(parse("1.2.3.4:permit\n").is_err());
        assert!(parse("1.2.3.4:deny\n").unwrap()[0].deny);
    }
}
