//! The letter tables of man/qmail-dkim-letters.5 against the code's outcome tables, so that the
//! manual cannot drift from what qmail-dkim writes and how it refuses.

use qmail_dkim::dkim::verify::Outcome;
use qmail_dkim::domainkeys::{self, ALL_OUTCOMES};

const PAGE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/man/qmail-dkim-letters.5"));

/// The text of section `name` (from its `.SH` line to the next `.SH`).
fn section(name: &str) -> &'static str {
    let head = format!(".SH \"{name}\"\n");
    let start = PAGE.find(&head).unwrap_or_else(|| panic!("no section {name}")) + head.len();
    let rest = &PAGE[start..];
    &rest[..rest.find("\n.SH ").unwrap_or(rest.len())]
}

/// The data rows of the one tbl table of `text` (after the `_` line), fields split at `|`, with
/// `T{` ... `T}` text blocks joined into one field.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    let body = &text[text.find(".TS\n").expect("a .TS table")..text.find("\n.TE\n").expect(".TE")];
    let mut lines = body.lines().skip_while(|l| *l != "_").skip(1);
    let mut rows = Vec::new();
    while let Some(line) = lines.next() {
        let mut fields: Vec<String> = line.split('|').map(str::to_string).collect();
        if fields.last().is_some_and(|f| f == "T{") {
            let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "T}").collect();
            *fields.last_mut().unwrap() = block.join(" ");
        }
        rows.push(fields);
    }
    rows
}

/// The first line after the tag of each `.TP` entry of `text` whose tag is a bold letter
/// (`\fBA\fR`), in order.
fn entries(text: &str) -> Vec<(char, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for w in lines.windows(3) {
        let letter = w[1].strip_prefix("\\fB").and_then(|t| t.strip_suffix("\\fR"));
        if let (true, Some(l)) = (w[0].starts_with(".TP"), letter) {
            if l.len() == 1 {
                out.push((l.chars().next().unwrap(), w[2]));
            }
        }
    }
    out
}

#[test]
fn manual_dkim_letter_table_matches_outcomes() {
    let text = section("DKIM LETTERS");
    let rows = table_rows(text);
    let want: Vec<Vec<String>> = Outcome::ALL
        .iter()
        .map(|o| vec![o.letter().to_string(), o.ar_result().into(), o.code().into(), o.status_text().into()])
        .collect();
    assert_eq!(rows, want);
    let names: Vec<(char, String)> = entries(text).iter().map(|(c, l)| (*c, l.replace("\\-", "-"))).collect();
    let want: Vec<(char, String)> =
        Outcome::ALL.iter().map(|o| (o.letter(), format!("{} ({}).", o.name(), o.number()))).collect();
    assert_eq!(names, want);
}

#[test]
fn manual_domainkeys_letter_table_matches_statuses() {
    let text = section("DOMAINKEYS LETTERS");
    let rows = table_rows(text);
    let want: Vec<Vec<String>> = ALL_OUTCOMES
        .iter()
        .map(|s: &domainkeys::Outcome| {
            vec![
                s.letter().to_string(),
                s.ar_result().into(),
                s.code().into(),
                s.header_value().into(),
                s.meaning().into(),
            ]
        })
        .collect();
    assert_eq!(rows, want);
    let names: Vec<(char, String)> = entries(text).iter().map(|(c, l)| (*c, l.to_string())).collect();
    let want: Vec<(char, String)> = ALL_OUTCOMES.iter().map(|s| (s.letter(), format!("{}.", s.name()))).collect();
    assert_eq!(names, want);
}
