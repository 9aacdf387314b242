//! Mailing a report (RFC 9990): the destinations of `rua=` (mailto only), RFC 9990's external
//! destination verification, the MIME message, and `qmail-inject`.

use super::xml::{self, Reporter};
use super::{DayReport, ReportError};
use crate::dns::{Resolver, TxtAnswer};
use std::io::Write as _;
use std::process::{Command, Stdio};

/// The `mailto:` addresses of a `rua=` list, without `!size` and URI query; lowercase domain.
pub(crate) fn mailto_addresses(rua: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in rua {
        let u = u.split_once('!').map_or(u.as_str(), |(u, _)| u);
        let Some(addr) = u.get(..7).filter(|s| s.eq_ignore_ascii_case("mailto:")).map(|_| &u[7..]) else { continue };
        let addr = addr.split_once('?').map_or(addr, |(a, _)| a);
        let addr = percent_decode(addr);
        let Some((local, domain)) = addr.rsplit_once('@') else { continue };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if local.is_empty()
            || !crate::domain::is_dns_name(&domain)
            || !local
                .bytes()
                .all(|c| c.is_ascii_graphic() && !matches!(c, b'<' | b'>' | b'(' | b')' | b',' | b';' | b'"'))
        {
            continue;
        }
        let a = format!("{local}@{domain}");
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a destination may get the policy domain's reports: its domain is the policy
/// domain or below it, or `<policy domain>._report._dmarc.<its domain>` publishes a
/// `v=DMARC1` record (RFC 9990's external destination verification). `Err` when DNS failed
/// temporarily (try again later).
pub(crate) fn authorized(resolver: &dyn Resolver, policy_domain: &str, address: &str) -> Result<bool, String> {
    let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
    let pd = policy_domain.to_ascii_lowercase();
    if domain == pd || domain.strip_suffix(&pd).is_some_and(|p| p.ends_with('.')) {
        return Ok(true);
    }
    match resolver.txt(&format!("{pd}._report._dmarc.{domain}")) {
        TxtAnswer::Records(rs) => Ok(rs.iter().any(|r| crate::dmarc::record::is_dmarc1(r))),
        TxtAnswer::NotFound | TxtAnswer::BadName => Ok(false),
        TxtAnswer::TempFail(e) => Err(e),
    }
}

/// The report as a MIME message to `to` (LF line ends; qmail-inject takes them).
pub(crate) fn message(r: &DayReport, who: &Reporter, to: &str, gz: &[u8], now: u64) -> Vec<u8> {
    use base64::Engine as _;
    let name = xml::file_name(r, who);
    let id = xml::report_id(r, who);
    let boundary = format!("=_dmarc_{}_{}", r.begin, now);
    let b64 = base64::engine::general_purpose::STANDARD.encode(gz);
    let mut body = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        body.push_str(&String::from_utf8_lossy(chunk));
        body.push('\n');
    }
    let rows: u64 = r.rows.iter().map(|(_, n)| n).sum();
    format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nDate: {date}\nMessage-ID: <{mid}.{now}>\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n\
         --{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n\
         This is an aggregate DMARC report (RFC 9990) from {org} for {domain},\n\
         {day} (UTC): {rows} messages. The report is attached.\n\n\
         --{boundary}\nContent-Type: application/gzip\nContent-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"{name}\"\n\n{body}\n--{boundary}--\n",
        from = who.email,
        subject = xml::subject(r, who),
        date = super::rfc5322_date(now),
        mid = id,
        org = who.org.replace(['\n', '\r'], " "),
        domain = r.policy.domain,
        day = r.day,
    )
    .into_bytes()
}

/// Hands a message to `qmail-inject` (`program -f SENDER -a RECIPIENT`, the message on its
/// input); `Err` unless it exits 0.
pub(crate) fn inject(program: &str, sender: &str, to: &str, msg: &[u8]) -> Result<(), ReportError> {
    let mut child = Command::new(program)
        .args(["-f", sender, "-a", to])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| ReportError::new(format!("{program}: {e}")))?;
    let written = child.stdin.take().map(|mut i| i.write_all(msg));
    let status = child.wait().map_err(|e| ReportError::new(format!("{program}: {e}")))?;
    if let Some(Err(e)) = written {
        return Err(ReportError::new(format!("{program}: {e}")));
    }
    if !status.success() {
        return Err(ReportError::new(format!("{program} failed ({status})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_destinations_of_rua() {
        let rua: Vec<String> = [
            "mailto:dmarc@Example.COM!10m",
            "https://r.example/x",
            "mailto:a%2Bb@other.example?subject=x",
            "MAILTO:dmarc@example.com",
            "mailto:nodomain",
            "mailto:<x>@example.com",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(mailto_addresses(&rua), vec!["dmarc@example.com", "a+b@other.example"]);
    }
}
