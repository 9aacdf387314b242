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
    pub line: usize,
    pub why: &'static str,
}

/// Parses the instructions after the colon: `allow` or `deny`, then `,VAR=dvalued` items.
pub fn parse_instructions(s: &str) -> Result<(bool, Vars), &'static str> {
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
    /// Does this rule's address (a range expanded as tcprules does) equal `key`?
    pub fn has_key(&self, key: &str) -> bool {
        let a = &self.address;
        if a.contains('=') || a.contains('@') {
            return a == key;
        }
        let Some(dash) = a.find('-') else { return a == key };
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

/// The addresses tcpserver tries for a connection, in its order.
pub fn lookup_keys(ip: &str, host: Option<&str>, info: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(i) = info {
        keys.push(format!("{i}@{ip}"));
    }
    keys.push(ip.to_string());
    if let Some(h) = host {
        keys.push(format!("={h}"));
    }
    for (n, c) in ip.char_indices().rev() {
        if c == '.' {
            keys.push(ip[..=n].to_string());
        }
    }
    if let Some(h) = host {
        for (n, c) in h.char_indices() {
            if c == '.' {
                keys.push(format!("={}", &h[n..]));
            }
        }
        keys.push("=".to_string());
    }
    keys.push(String::new());
    keys
}

/// The rule tcpserver applies to a connection from `ip` (and `host`, `info` when known), if any.
pub fn find<'a>(rules: &'a [Rule], ip: &str, host: Option<&str>, info: Option<&str>) -> Option<&'a Rule> {
    lookup_keys(ip, host, info).iter().find_map(|k| rules.iter().find(|r| r.has_key(k)))
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
