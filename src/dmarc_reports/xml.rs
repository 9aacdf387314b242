//! The RFC 9990 aggregate report: its XML (namespace `urn:ietf:params:xml:ns:dmarc-2.0`,
//! version 1.0, elements in the schema's order), gzip, the file name and the Subject.
//! quick-xml writes the elements and escapes the text; flate2 compresses.

use super::DayReport;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::io::Write as _;

pub(crate) const NAMESPACE: &str = "urn:ietf:params:xml:ns:dmarc-2.0";

/// Who reports: `org_name`, `email`, and the receiver domain of file names and Subjects (the
/// domain of `email`).
#[derive(Debug, Clone)]
pub struct Reporter {
    pub org: String,
    pub email: String,
}

impl Reporter {
    pub(crate) fn domain(&self) -> &str {
        self.email.rsplit_once('@').map_or(self.email.as_str(), |(_, d)| d)
    }
}

/// The report id: the day and the policy domain at the reporter, unique for this reporter, the
/// same in every run (so a file written twice has one name).
pub(crate) fn report_id(r: &DayReport, who: &Reporter) -> String {
    format!("{}.{}@{}", r.day.replace('-', ""), r.policy.domain, who.domain())
}

/// RFC 9990's file name: `receiver!policy-domain!begin!end.xml.gz`.
pub(crate) fn file_name(r: &DayReport, who: &Reporter) -> String {
    format!("{}!{}!{}!{}.xml.gz", who.domain(), r.policy.domain, r.begin, r.end())
}

/// RFC 9990's Subject.
pub(crate) fn subject(r: &DayReport, who: &Reporter) -> String {
    format!("Report Domain: {} Submitter: {} Report-ID: <{}>", r.policy.domain, who.domain(), report_id(r, who))
}

type W = Writer<Vec<u8>>;

fn el(w: &mut W, name: &str, text: &str) -> std::io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(text)).map(|_| ())
}

/// The XML document.
pub(crate) fn xml(r: &DayReport, who: &Reporter) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    // Writing into a Vec fails only when memory does, which aborts first.
    let _ = write(&mut w, r, who);
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

fn write(w: &mut W, r: &DayReport, who: &Reporter) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("feedback").with_attribute(("xmlns", NAMESPACE)).write_inner_content(|w| {
        el(w, "version", "1.0")?;
        w.create_element("report_metadata").write_inner_content(|w| {
            el(w, "org_name", &who.org)?;
            el(w, "email", &who.email)?;
            el(w, "report_id", &report_id(r, who))?;
            w.create_element("date_range").write_inner_content(|w| {
                el(w, "begin", &r.begin.to_string())?;
                el(w, "end", &r.end().to_string())
            })?;
            el(w, "generator", concat!("qmail-dkim ", env!("CARGO_PKG_VERSION")))
        })?;
        let p = &r.policy;
        w.create_element("policy_published").write_inner_content(|w| {
            el(w, "domain", &p.domain)?;
            el(w, "p", &p.p)?;
            for (name, v) in [("sp", &p.sp), ("np", &p.np)] {
                if let Some(v) = v {
                    el(w, name, v)?;
                }
            }
            el(w, "adkim", &p.adkim)?;
            el(w, "aspf", &p.aspf)?;
            el(w, "discovery_method", &p.discovery)?;
            if let Some(fo) = &p.fo {
                el(w, "fo", fo)?;
            }
            el(w, "testing", p.testing.as_deref().unwrap_or("n"))
        })?;
        for (row, count) in &r.rows {
            w.create_element("record").write_inner_content(|w| {
                w.create_element("row").write_inner_content(|w| {
                    el(w, "source_ip", &row.source_ip)?;
                    el(w, "count", &count.to_string())?;
                    w.create_element("policy_evaluated").write_inner_content(|w| {
                        el(w, "disposition", &row.disposition)?;
                        el(w, "dkim", if row.dkim_aligned { "pass" } else { "fail" })?;
                        el(w, "spf", if row.spf_aligned { "pass" } else { "fail" })?;
                        for (t, c) in &row.reasons {
                            w.create_element("reason").write_inner_content(|w| {
                                el(w, "type", t)?;
                                if !c.is_empty() {
                                    el(w, "comment", c)?;
                                }
                                Ok(())
                            })?;
                        }
                        Ok(())
                    })?;
                    Ok(())
                })?;
                w.create_element("identifiers").write_inner_content(|w| {
                    el(w, "header_from", &row.header_from)?;
                    if let Some(e) = &row.envelope_from {
                        el(w, "envelope_from", e)?;
                    }
                    Ok(())
                })?;
                w.create_element("auth_results").write_inner_content(|w| {
                    for d in &row.dkim {
                        w.create_element("dkim").write_inner_content(|w| {
                            el(w, "domain", &d.domain)?;
                            el(w, "selector", &d.selector)?;
                            el(w, "result", &d.result)
                        })?;
                    }
                    if let Some((d, res)) = &row.spf {
                        w.create_element("spf").write_inner_content(|w| {
                            el(w, "domain", d)?;
                            el(w, "scope", "mfrom")?;
                            el(w, "result", res)
                        })?;
                    }
                    Ok(())
                })?;
                Ok(())
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The report, gzip-compressed (with the file name in the gzip header).
pub(crate) fn gzip(xml: &[u8], name: &str) -> Vec<u8> {
    let inner = name.strip_suffix(".gz").unwrap_or(name);
    let mut e = flate2::GzBuilder::new().filename(inner.as_bytes()).write(Vec::new(), flate2::Compression::default());
    // Into a Vec: cannot fail but for memory.
    let _ = e.write_all(xml);
    e.finish().unwrap_or_default()
}
