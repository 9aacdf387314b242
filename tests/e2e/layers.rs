//! The guard of the layering that `lib.rs` draws: every `crate::x` path in a module's source
//! (src/, read as text) names a module of a lower layer, so the modules form no circle. A new
//! module must be put in [`LAYERS`]; a new import that goes up or sideways fails here.

use std::path::Path;

/// Bottom first. A module may use the modules of the layers below its own, never its own
/// layer's or a higher one's. `linear` is the unit tests' linear-time harness
/// (tests/support/linear.rs), which imports nothing of the crate.
const LAYERS: &[&[&str]] = &[
    &["access", "der", "domain", "getopt", "glob", "linear", "rfc5322", "tcprules"],
    &["dmarc_spool"],
    &["auth_results", "error", "keyfile"],
    &["envelope", "log", "message"],
    &["config", "headers"],
    &["dns", "refusal"],
    &["task"],
    &["dkim"],
    &["keygen"],
    &["domainkeys"],
    &["arc", "dkim2", "dmarc", "spf"],
    &["queue"],
    &["plan"],
    &["check", "run"],
    &["keys", "remote"],
    &["dmarc_reports"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level modules a line of code names through `crate::`, including in
/// `use crate::{a, b::c}` groups.
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Items at brace depth 0 of the group.
            let mut depth = 0;
            let mut start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_ascii_alphabetic() || c == '_') => {
                        let name: String =
                            group[k..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        out.push(name);
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_import_only_from_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        if ["bin", "lib"].contains(&module) {
            continue;
        }
        let own = layer(module).unwrap_or_else(|| panic!("module {module} is not in LAYERS"));
        for (n, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for used in named_modules(line) {
                if used == module {
                    continue;
                }
                match layer(&used) {
                    Some(l) if l < own => {}
                    _ => wrong.push(format!("{}:{}: {module} uses {used}", rel.display(), n + 1)),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers of lib.rs:\n{}", wrong.join("\n"));
}

#[test]
fn group_imports_are_seen() {
    assert_eq!(named_modules("use crate::{dns, log::{self, Note}, plan};"), ["dns", "log", "plan"]);
    assert_eq!(named_modules("let x = crate::dns::from_env(crate::config::f());"), ["dns", "config"]);
}
