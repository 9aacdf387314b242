//! The results of the authentication methods, typed, and the one builder of the
//! `Authentication-Results:` field we add (RFC 8601).
//!
//! Each method's task hands on a [`MethodOutput`]: the typed facts of its evaluation
//! ([`DkimOutput`], [`DomainKeysOutput`], [`SpfOutput`], [`DmarcOutput`], [`ArcOutput`],
//! [`Dkim2Output`]), each with its RFC 8601 result word ([`DkimResult`], [`SpfResult`],
//! [`DmarcResult`], [`ArcResult`], [`Dkim2Result`]). Later tasks read these facts (DMARC reads
//! SPF's, DKIM's and DKIM2's; the ARC seal reads ARC's), and so does the log. They live here,
//! below every method, because the methods do not know each other.
//!
//! One field per message: run() renders the outputs ([`render`]), in task order, into a single
//! field with one authserv-id ([`field`]); the ARC seal renders the same into its AAR. Values
//! come from the message, so each is written as RFC 8601 `pvalue` allows: bare when it is an
//! RFC 2045 token or a `[local-part]@domain`, else as a quoted-string; a value that cannot be
//! written in ASCII without changing it (control or non-ASCII characters, longer than
//! [`MAX_VALUE`]) is dropped with its property, so nothing from the message can add a method or
//! a property.

/// Longest property value written (a domain name is at most 253).
pub const MAX_VALUE: usize = 255;

/// Lines are folded before this column.
const WIDTH: usize = 78;

/// The result of one method, e.g. `dkim=pass header.d=example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    method: &'static str,
    result: &'static str,
    reason: Option<String>,
    comment: Option<String>,
    props: Vec<(&'static str, String)>,
}

impl MethodResult {
    /// `method` and `result` are ours (RFC 8601 keywords), never from the message.
    pub fn new(method: &'static str, result: &'static str) -> MethodResult {
        MethodResult { method, result, reason: None, comment: None, props: Vec::new() }
    }

    /// `reason="…"` (RFC 8601 §2.2); dropped when it cannot be written.
    pub fn reason(mut self, text: &str) -> MethodResult {
        self.reason = value(text, false);
        self
    }

    /// A comment after the result, `(…)`.
    pub fn comment(mut self, text: &str) -> MethodResult {
        let c: String = text.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(MAX_VALUE).collect();
        if !c.is_empty() {
            let mut out = String::with_capacity(c.len() + 2);
            out.push('(');
            for ch in c.chars() {
                if matches!(ch, '(' | ')' | '\\') {
                    out.push('\\');
                }
                out.push(ch);
            }
            out.push(')');
            self.comment = Some(out);
        }
        self
    }

    /// `ptype.property=value` (`name` is ours, e.g. `header.d`); nothing when `v` is `None`,
    /// cannot be written, or is not what the property names ([`fits`]).
    pub fn prop(mut self, name: &'static str, v: Option<&str>) -> MethodResult {
        if let Some(v) = v.filter(|v| fits(name, v)).and_then(|v| value(v, true)) {
            self.props.push((name, v));
        }
        self
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    pub fn result(&self) -> &'static str {
        self.result
    }

    /// The value of property `name` as written (a quoted-string keeps its quotes).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.props.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    fn words(&self) -> Vec<String> {
        let mut w = vec![format!("{}={}", self.method, self.result)];
        w.extend(self.comment.clone());
        w.extend(self.reason.as_ref().map(|r| format!("reason={r}")));
        w.extend(self.props.iter().map(|(n, v)| format!("{n}={v}")));
        w
    }
}

/// The `Authentication-Results:` field, LF-ended, folded with LF TAB: on one line when it
/// fits, else each method on a line of its own. `authserv_id` must already be a valid value
/// (see `headers::authserv_id`). No methods: `none` (RFC 8601 §2.2).
pub fn field(authserv_id: &str, methods: &[MethodResult]) -> Vec<u8> {
    folded(format!("Authentication-Results: {authserv_id};"), methods)
}

/// The `ARC-Authentication-Results:` field of ARC instance `i` (RFC 8617 §4.1.1): `i=N;`, then
/// what [`field`] writes after its name, folded the same way.
pub fn arc_field(i: u32, authserv_id: &str, methods: &[MethodResult]) -> Vec<u8> {
    folded(format!("ARC-Authentication-Results: i={i}; {authserv_id};"), methods)
}

fn folded(head: String, methods: &[MethodResult]) -> Vec<u8> {
    let words: Vec<Vec<String>> = methods.iter().map(MethodResult::words).collect();
    if words.is_empty() {
        return format!("{head} none\n").into_bytes();
    }
    let one_line = words.iter().map(|w| w.join(" ")).collect::<Vec<_>>().join("; ");
    if head.len() + 1 + one_line.len() <= WIDTH {
        return format!("{head} {one_line}\n").into_bytes();
    }
    let mut out = head;
    for (m, ws) in words.iter().enumerate() {
        if m > 0 {
            out.push(';');
        }
        out.push_str("\n\t");
        let mut col = 8;
        for (i, w) in ws.iter().enumerate() {
            if i > 0 {
                if col + 1 + w.len() > WIDTH {
                    out.push_str("\n\t");
                    col = 8;
                } else {
                    out.push(' ');
                    col += 1;
                }
            }
            out.push_str(w);
            col += w.len();
        }
    }
    out.push('\n');
    out.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The typed results

/// An RFC 8601 result word: one enum per method, each with the words its method defines.
macro_rules! result_words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $w:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v),+
        }

        impl $name {
            /// The RFC 8601 word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $w),+
                }
            }
        }
    };
}

result_words! {
    /// `dkim=` and `domainkeys=` (RFC 8601 §2.7.1, the same words for both).
    DkimResult {
        None => "none",
        Pass => "pass",
        Fail => "fail",
        Policy => "policy",
        Neutral => "neutral",
        TempError => "temperror",
        PermError => "permerror",
    }
}

result_words! {
    /// `spf=` (RFC 7208 §2.6, RFC 8601 §2.7.2).
    SpfResult {
        None => "none",
        Neutral => "neutral",
        Pass => "pass",
        Fail => "fail",
        SoftFail => "softfail",
        TempError => "temperror",
        PermError => "permerror",
    }
}

result_words! {
    /// `dmarc=` (RFC 9989 §9.2).
    DmarcResult {
        Pass => "pass",
        Fail => "fail",
        None => "none",
        TempError => "temperror",
        PermError => "permerror",
    }
}

result_words! {
    /// `arc=` (RFC 8617 §4.4: none, pass, fail; and `temperror`, which RFC 8601 defines for
    /// every method: a key that could not be fetched for now).
    ArcResult {
        None => "none",
        Pass => "pass",
        Fail => "fail",
        TempError => "temperror",
    }
}

result_words! {
    /// `dkim2=` (draft-gondwana-dkim2-authres).
    Dkim2Result {
        Pass => "pass",
        Fail => "fail",
        PermError => "permerror",
        TempError => "temperror",
        /// No DKIM2-Signature and no Message-Instance.
        None => "none",
    }
}

/// One DKIM signature checked (RFC 6376): its result and the tags Authentication-Results shows
/// (RFC 8601 §2.7.1, RFC 6008), as found in the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimOutput {
    pub result: DkimResult,
    /// Its status letter (qmail-dkim-letters(5)).
    pub letter: char,
    /// The status text, shown as `reason=` when the signature is not a plain success.
    pub reason: Option<&'static str>,
    /// `d=`, the signing domain.
    pub domain: Option<String>,
    /// `i=`, the AUID (`@d` when absent).
    pub identity: Option<String>,
    /// `s=`.
    pub selector: Option<String>,
    /// `a=`.
    pub algorithm: Option<String>,
    /// The first 8 characters of `b=` (RFC 6008).
    pub b_prefix: Option<String>,
}

/// Which header gave a DomainKeys sending address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderField {
    From,
    Sender,
}

impl SenderField {
    /// The Authentication-Results property (RFC 8601 §2.7.1 for `domainkeys`).
    pub fn property(self) -> &'static str {
        match self {
            SenderField::From => "header.from",
            SenderField::Sender => "header.sender",
        }
    }
}

/// The DomainKeys signature checked (RFC 4870).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainKeysOutput {
    pub result: DkimResult,
    /// Its status letter (`DKVERIFY`).
    pub letter: char,
    /// What the key's and the domain's flags say, in fixed words.
    pub comment: Option<String>,
    /// `d=` and `s=`, when a signature was parsed.
    pub domain: Option<String>,
    pub selector: Option<String>,
    /// The sending address and the header it came from.
    pub sender: Option<(SenderField, String)>,
}

/// Which identity SPF checked (RFC 7208 §2.3, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpfScope {
    /// The envelope sender (`smtp.mailfrom`).
    #[default]
    MailFrom,
    /// The HELO name, for the null sender (`smtp.helo`).
    Helo,
}

impl SpfScope {
    /// The Authentication-Results property of the identity.
    pub fn property(self) -> &'static str {
        match self {
            SpfScope::MailFrom => "smtp.mailfrom",
            SpfScope::Helo => "smtp.helo",
        }
    }
}

/// What check_host() found, and for which identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfOutput {
    pub result: SpfResult,
    /// The domain checked (the identity's domain).
    pub domain: String,
    /// Why, in words, e.g. `192.0.2.1 is allowed by example.com`.
    pub reason: String,
    /// The expanded `exp=` text of a `fail` (§6.2), when the domain gives one.
    pub explanation: Option<String>,
    /// The identity checked: set by the caller, which knows which one it asked about.
    pub scope: SpfScope,
    /// The envelope sender or the HELO name, as it arrived.
    pub identity: Option<String>,
}

impl SpfOutput {
    /// The output for the identity `identity` of scope `scope`.
    pub fn with_identity(mut self, scope: SpfScope, identity: Option<String>) -> SpfOutput {
        self.scope = scope;
        self.identity = identity;
        self
    }
}

/// A DMARC policy (`p=`, `sp=`, `np=`; RFC 9989 §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

impl DmarcPolicy {
    pub fn name(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }

    /// The policy `t=y` applies instead (§4.7 `t`): one step weaker.
    pub fn weaker(self) -> DmarcPolicy {
        match self {
            DmarcPolicy::Reject => DmarcPolicy::Quarantine,
            DmarcPolicy::Quarantine | DmarcPolicy::None => DmarcPolicy::None,
        }
    }
}

/// The DMARC evaluation of a message (RFC 9989), as Authentication-Results and the log show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcOutput {
    pub result: DmarcResult,
    /// The From domain, lowercased; empty when there is none.
    pub domain: String,
    /// What the record asks for the From domain (`p=`, `sp=` or `np=`), its `t=y`.
    pub requested: Option<DmarcPolicy>,
    pub testing: bool,
    /// The policy that applies (one step weaker under `t=y`).
    pub applied: Option<DmarcPolicy>,
    /// The message is refused (`dis=reject`), else queued (`dis=none`).
    pub refused: bool,
    /// A DKIM signature, an SPF identity that passed in line with the From domain.
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    /// Why, when no record decided.
    pub reason: String,
    /// The record as published, when one decided: what a DMARC report record names.
    pub published: Option<crate::dmarc_spool::Policy>,
}

/// The ARC chain's result (RFC 8617 §5.2), why (empty for none and pass), and N, the newest
/// instance (0 without a chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcOutput {
    pub result: ArcResult,
    pub reason: String,
    pub instances: u32,
}

/// The DKIM2 chain's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dkim2Output {
    pub result: Dkim2Result,
    /// Why, for the log and Authentication-Results; empty on a pass.
    pub reason: String,
    /// `(i, d)` of every signature, oldest first, when the chain could be read.
    pub chain: Vec<(u32, String)>,
}

/// What one task found, for the tasks after it and the end of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodOutput {
    /// The DKIM signatures of a message, top first, and the message's result after the practice
    /// step with its status letter.
    Dkim {
        signatures: Vec<DkimOutput>,
        result: DkimResult,
        letter: char,
    },
    DomainKeys(DomainKeysOutput),
    Spf(SpfOutput),
    Dmarc(DmarcOutput),
    Arc(ArcOutput),
    Dkim2(Dkim2Output),
}

impl MethodOutput {
    /// Appends its part of Authentication-Results: one method result, or one per DKIM
    /// signature (`dkim=none` without signatures).
    pub fn render_into(&self, out: &mut Vec<MethodResult>) {
        match self {
            MethodOutput::Dkim { signatures, .. } if signatures.is_empty() => {
                out.push(MethodResult::new("dkim", DkimResult::None.as_str()));
            }
            MethodOutput::Dkim { signatures, .. } => out.extend(signatures.iter().map(DkimOutput::method_result)),
            MethodOutput::DomainKeys(o) => out.push(o.method_result()),
            MethodOutput::Spf(o) => out.push(o.method_result()),
            MethodOutput::Dmarc(o) => out.push(o.method_result()),
            MethodOutput::Arc(o) => out.push(o.method_result()),
            MethodOutput::Dkim2(o) => out.push(o.method_result()),
        }
    }
}

/// The method results of `outputs`, in order.
pub fn render(outputs: &[MethodOutput]) -> Vec<MethodResult> {
    let mut out = Vec::with_capacity(outputs.len() + 2);
    for o in outputs {
        o.render_into(&mut out);
    }
    out
}

impl DkimOutput {
    /// `dkim=<result> [reason="…"] header.d=… header.i=… header.s=… header.a=… header.b=…`.
    pub fn method_result(&self) -> MethodResult {
        let mut m = MethodResult::new("dkim", self.result.as_str());
        if let Some(r) = self.reason {
            m = m.reason(r);
        }
        m.prop("header.d", self.domain.as_deref())
            .prop("header.i", self.identity.as_deref())
            .prop("header.s", self.selector.as_deref())
            .prop("header.a", self.algorithm.as_deref())
            .prop("header.b", self.b_prefix.as_deref())
    }
}

impl DomainKeysOutput {
    /// `domainkeys=<result> [(comment)] header.d=… header.from=…|header.sender=…`.
    pub fn method_result(&self) -> MethodResult {
        let mut m = MethodResult::new("domainkeys", self.result.as_str());
        if let Some(c) = &self.comment {
            m = m.comment(c);
        }
        let m = m.prop("header.d", self.domain.as_deref());
        match &self.sender {
            Some((field, address)) => m.prop(field.property(), Some(address)),
            None => m,
        }
    }
}

impl SpfOutput {
    /// `spf=<result> (reason) smtp.mailfrom=…|smtp.helo=…`.
    pub fn method_result(&self) -> MethodResult {
        MethodResult::new("spf", self.result.as_str())
            .comment(&self.reason)
            .prop(self.scope.property(), self.identity.as_deref())
    }
}

impl DmarcOutput {
    /// `dmarc=<result> (p=<policy>[ t=y] dis=<none|reject>) [reason="…"] header.from=…
    /// policy.dmarc=<policy>`; `policy.dmarc` on `pass` and `fail` only.
    pub fn method_result(&self) -> MethodResult {
        let mut m = MethodResult::new("dmarc", self.result.as_str());
        if let Some(requested) = self.requested {
            let t = if self.testing { " t=y" } else { "" };
            let dis = if self.refused { "reject" } else { "none" };
            m = m.comment(&format!("p={}{t} dis={dis}", requested.name()));
        }
        if !self.reason.is_empty() {
            m = m.reason(&self.reason);
        }
        let decided = matches!(self.result, DmarcResult::Pass | DmarcResult::Fail);
        m.prop("header.from", (!self.domain.is_empty()).then_some(self.domain.as_str()))
            .prop("policy.dmarc", self.applied.filter(|_| decided).map(DmarcPolicy::name))
    }
}

impl ArcOutput {
    /// `arc=<result>`, with the reason when it is not a pass.
    pub fn method_result(&self) -> MethodResult {
        let m = MethodResult::new("arc", self.result.as_str());
        if self.reason.is_empty() {
            m
        } else {
            m.reason(&self.reason)
        }
    }
}

impl Dkim2Output {
    /// `dkim2=`, with the first signer (`header.d`, `header.i`) on a pass, else the reason
    /// (draft-gondwana-dkim2-authres).
    pub fn method_result(&self) -> MethodResult {
        let m = MethodResult::new("dkim2", self.result.as_str());
        match (self.result, self.chain.first()) {
            (Dkim2Result::Pass, Some((i, d))) => m.prop("header.d", Some(d)).prop("header.i", Some(&i.to_string())),
            _ if self.reason.is_empty() => m,
            _ => m.reason(&self.reason),
        }
    }

    /// The first signer's domain on a pass.
    pub fn signer(&self) -> Option<&str> {
        match (self.result, self.chain.first()) {
            (Dkim2Result::Pass, Some((_, d))) => Some(d),
            _ => None,
        }
    }
}

/// Whether Authentication-Results shows `v` as property `name` ([`fits`], and writable):
/// the log names an identity only when the field does.
pub fn shows(name: &str, v: &str) -> bool {
    fits(name, v) && value(v, true).is_some()
}

/// RFC 2045 token characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// RFC 5322 atext.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// A domain name ([`crate::domain::is_dns_name`]).
fn is_domain(s: &str) -> bool {
    crate::domain::is_dns_name(s)
}

/// `[dot-atom]@domain`, which RFC 8601 `pvalue` allows bare.
fn is_address(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, dom)) => {
            is_domain(dom) && (local.is_empty() || local.split('.').all(|p| !p.is_empty() && p.chars().all(is_atext)))
        }
        None => false,
    }
}

/// Whether `v` is what property `name` names, so that no value from the message reads as
/// something else to a naive reader (`header.d=paypal.com,dkim=pass`): a domain for
/// `header.d` and `smtp.helo`; `[local-part]@domain` (a dot-atom local part) for `header.i`
/// (or DKIM2's instance number), `header.sender`; either for `header.from` and `smtp.mailfrom`. Other properties (`header.s`,
/// `header.a`, `header.b`) are written as any value. **Decision:** a value that is not is left
/// out with its property, not quoted: RFC 8601 would allow the quoted-string, readers misread it.
pub fn fits(name: &str, v: &str) -> bool {
    // DKIM2's `header.i` is the signature's instance number.
    let is_instance = |v: &str| !v.is_empty() && v.len() <= 5 && v.bytes().all(|c| c.is_ascii_digit());
    match name {
        "header.d" | "smtp.helo" => is_domain(v),
        "header.i" | "header.sender" => is_address(v) || (name == "header.i" && is_instance(v)),
        "header.from" | "smtp.mailfrom" => is_domain(v) || is_address(v),
        _ => true,
    }
}

/// `s` as an RFC 8601 value: bare when it can be (with `addr`, a `local@domain` too), else a
/// quoted-string; `None` when it holds characters a quoted-string cannot carry in ASCII or is
/// too long.
fn value(s: &str, addr: bool) -> Option<String> {
    if s.len() > MAX_VALUE || s.chars().any(|c| !(c == ' ' || c.is_ascii_graphic())) {
        return None;
    }
    if !s.is_empty() && (s.chars().all(is_token_char) || (addr && is_address(s))) {
        return Some(s.to_string());
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn one_field_for_every_method() {
        assert_eq!(s(field("mx.example.org", &[])), "Authentication-Results: mx.example.org; none\n");
        let dkim = MethodResult::new("dkim", "none");
        assert_eq!(
            s(field("mx.example.org", std::slice::from_ref(&dkim))),
            "Authentication-Results: mx.example.org; dkim=none\n"
        );
        let dk = MethodResult::new("domainkeys", "pass")
            .prop("header.d", Some("example.com"))
            .prop("header.from", Some("a@example.com"));
        assert_eq!(
            s(field("mx", &[dkim, dk.clone()])),
            "Authentication-Results: mx;\n\tdkim=none;\n\tdomainkeys=pass header.d=example.com header.from=a@example.com\n"
        );
        let long =
            MethodResult::new("dkim", "fail").reason("signature error: RSA/ED25519 verify failed").comment("x (y)");
        let f = s(field("mx.example.org", &[long, dk]));
        assert_eq!(
            f,
            "Authentication-Results: mx.example.org;\n\tdkim=fail (x \\(y\\))\n\treason=\"signature error: RSA/ED25519 verify failed\";\n\tdomainkeys=pass header.d=example.com header.from=a@example.com\n"
        );
        for line in f.lines() {
            assert!(line.len() <= WIDTH, "{line}");
        }
    }

    /// The ARC sealer's AAR: `i=N;` before the same payload, folded the same way.
    #[test]
    fn arc_field_is_the_payload_after_the_instance() {
        let spf = MethodResult::new("spf", "pass").prop("smtp.mailfrom", Some("a@example.com"));
        assert_eq!(
            s(arc_field(2, "mx", &[spf, MethodResult::new("arc", "pass")])),
            "ARC-Authentication-Results: i=2; mx;\n\tspf=pass smtp.mailfrom=a@example.com;\n\tarc=pass\n"
        );
        assert_eq!(s(arc_field(1, "mx", &[])), "ARC-Authentication-Results: i=1; mx; none\n");
    }

    /// A `d=` from the message cannot add a method or a property, nor read as one: a value that
    /// is not what the property names is left out.
    #[test]
    fn property_values_that_are_not_what_they_name_are_left_out() {
        let f = |p: &'static str, d: &str| s(field("mx", &[MethodResult::new("domainkeys", "fail").prop(p, Some(d))]));
        for dropped in [
            "paypal.com,dkim=pass",
            "x\"(y",
            "evil; dkim=pass",
            "a\nb",
            "a\rb",
            "sé",
            "a\0",
            "a..b",
            "a b.org",
            "@x.org",
        ] {
            assert_eq!(f("header.d", dropped), "Authentication-Results: mx; domainkeys=fail\n", "{dropped:?}");
        }
        assert_eq!(f("header.d", &"a".repeat(254)), "Authentication-Results: mx; domainkeys=fail\n");
        assert_eq!(f("header.d", "Example.COM"), "Authentication-Results: mx; domainkeys=fail header.d=Example.COM\n");
        for (p, ok, bad) in [
            ("header.i", "@example.com", "x@paypal.com,dkim=pass"),
            ("header.i", "a.b+c@example.com", "\"a b\"@example.com"),
            ("header.from", "example.com", "a@b@example.com"),
            ("header.from", "joe@example.com", "joe@example.com; dkim=pass"),
            ("smtp.mailfrom", "joe@example.com", "joe@[192.0.2.1]"),
            ("smtp.helo", "mx.example.com", "[192.0.2.1]"),
            ("header.sender", "a@example.com", "example.com"),
        ] {
            assert_eq!(f(p, ok), format!("Authentication-Results: mx; domainkeys=fail {p}={ok}\n"));
            assert_eq!(f(p, bad), "Authentication-Results: mx; domainkeys=fail\n", "{p}={bad}");
        }
        // Other properties are any value, quoted when need be.
        assert_eq!(f("header.s", "a b"), "Authentication-Results: mx; domainkeys=fail header.s=\"a b\"\n");
    }

    /// The typed results render in task order, one `dkim=` per signature and `dkim=none`
    /// without one; a DKIM2 chain names its first signer only on a pass.
    #[test]
    fn typed_results_render_in_task_order() {
        let spf = SpfOutput {
            result: SpfResult::SoftFail,
            domain: "example.org".into(),
            reason: "why".into(),
            explanation: None,
            scope: SpfScope::Helo,
            identity: Some("mx.example.org".into()),
        };
        let dkim = |signatures| MethodOutput::Dkim { signatures, result: DkimResult::None, letter: 'S' };
        let sig = DkimOutput {
            result: DkimResult::TempError,
            letter: 'P',
            reason: Some("key unavailable"),
            domain: Some("example.com".into()),
            identity: None,
            selector: None,
            algorithm: None,
            b_prefix: None,
        };
        let chain = |result| Dkim2Output { result, reason: String::new(), chain: vec![(1, "a.example".into())] };
        let dmarc = DmarcOutput {
            result: DmarcResult::Fail,
            domain: "example.com".into(),
            requested: Some(DmarcPolicy::Reject),
            testing: true,
            applied: Some(DmarcPolicy::Quarantine),
            refused: false,
            dkim_aligned: false,
            spf_aligned: false,
            reason: String::new(),
            published: None,
        };
        let outputs = [
            MethodOutput::Spf(spf),
            dkim(Vec::new()),
            dkim(vec![sig]),
            MethodOutput::Dkim2(chain(Dkim2Result::Pass)),
            MethodOutput::Dkim2(chain(Dkim2Result::Fail)),
            MethodOutput::Dmarc(dmarc),
            MethodOutput::Arc(ArcOutput { result: ArcResult::Fail, reason: "broken".into(), instances: 2 }),
        ];
        assert_eq!(
            s(field("mx", &render(&outputs))),
            "Authentication-Results: mx;\n\tspf=softfail (why) smtp.helo=mx.example.org;\n\tdkim=none;\n\t\
             dkim=temperror reason=\"key unavailable\" header.d=example.com;\n\t\
             dkim2=pass header.d=a.example header.i=1;\n\tdkim2=fail;\n\t\
             dmarc=fail (p=reject t=y dis=none) header.from=example.com\n\tpolicy.dmarc=quarantine;\n\t\
             arc=fail reason=broken\n"
        );
    }

    #[test]
    fn values() {
        assert_eq!(value("example.com", true).unwrap(), "example.com");
        assert_eq!(value("@example.com", true).unwrap(), "@example.com");
        assert_eq!(value("a.b+c@example.com", true).unwrap(), "a.b+c@example.com");
        assert_eq!(value("a@b@example.com", true).unwrap(), "\"a@b@example.com\"");
        assert_eq!(value("a..b@example.com", true).unwrap(), "\"a..b@example.com\"");
        assert_eq!(value("@example.com", false).unwrap(), "\"@example.com\"");
        assert_eq!(value("ab/cd+ef", true).unwrap(), "\"ab/cd+ef\"");
        assert_eq!(value("", true).unwrap(), "\"\"");
        assert_eq!(value("a\\b", true).unwrap(), "\"a\\\\b\"");
    }
}
