//! Criterion benchmarks of the hot functions: body canonicalization + hash (simple, relaxed,
//! relaxed with whitespace to rewrite), header canonicalization, tag parsing.
//! `cargo bench --bench hot`

#![allow(clippy::cast_possible_truncation, reason = "test data: small sizes, counts and ports")]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qmail_dkim::dkim::canon::{relaxed_header, BodyHasher};
use qmail_dkim::dkim::tags::TagList;
use qmail_dkim::dkim::{Canon, HashAlg};
use std::hint::black_box;

fn text(size: usize, spaced: bool) -> Vec<u8> {
    let line: &[u8] = if spaced {
        b"the  quick\tbrown fox   jumps over the lazy dog lorem ipsum dolor sit amet  \n"
    } else {
        b"the quick brown fox jumps over the lazy dog lorem ipsum dolor sit amet cons\n"
    };
    line.iter().copied().cycle().take(size).collect()
}

fn body(c: &mut Criterion) {
    let size = 8 << 20;
    let mut g = c.benchmark_group("body");
    g.throughput(Throughput::Bytes(size as u64));
    g.sample_size(20);
    for (name, canon, spaced) in [
        ("simple", Canon::Simple, false),
        ("relaxed", Canon::Relaxed, false),
        ("relaxed-whitespace", Canon::Relaxed, true),
    ] {
        let data = text(size, spaced);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut h = BodyHasher::new(canon, HashAlg::Sha256, None);
                for chunk in data.chunks(256 * 1024) {
                    h.update(black_box(chunk));
                }
                h.finish()
            })
        });
    }
    let data = text(size, false);
    g.bench_function("sha256-only", |b| b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&data))));
    g.finish();
}

fn headers(c: &mut Criterion) {
    let value: &[u8] = b" a very long subject line that goes on and on\n and is folded\n\tmore than once\n";
    let mut g = c.benchmark_group("header");
    g.throughput(Throughput::Bytes(value.len() as u64));
    g.bench_function("relaxed", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            relaxed_header(black_box(b"Subject"), black_box(value), &mut out);
        })
    });
    let sig: &[u8] = b"v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;\n\tt=1700000000; x=1700604800; h=from:to:subject:date:message-id:from;\n\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n\tb=dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdA==";
    g.throughput(Throughput::Bytes(sig.len() as u64));
    g.bench_function("tags", |b| b.iter(|| TagList::parse(black_box(sig))));
    g.finish();
}

/// What `DMARCREPORTS` adds to a message: one record file written, flushed and renamed into
/// the spool (here in the system's temporary directory).
fn dmarc_spool(c: &mut Criterion) {
    use qmail_dkim::dmarc_spool::{write, DkimAuth, Entry, Policy, Row};
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["tmp", "new"] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    let e = Entry {
        time: 1_796_000_000,
        policy: Policy {
            domain: "example.com".into(),
            discovery: "psl".into(),
            p: "reject".into(),
            adkim: "r".into(),
            aspf: "r".into(),
            rua: vec!["mailto:dmarc@example.com".into()],
            ..Policy::default()
        },
        row: Row {
            source_ip: "192.0.2.1".into(),
            header_from: "example.com".into(),
            envelope_from: Some("example.com".into()),
            dkim: vec![DkimAuth { domain: "example.com".into(), selector: "sel".into(), result: "pass".into() }],
            spf: Some(("example.com".into(), "pass".into())),
            dkim_aligned: true,
            spf_aligned: true,
            disposition: "pass".into(),
            reasons: Vec::new(),
        },
    };
    c.bench_function("dmarc_spool/write", |b| {
        b.iter(|| {
            let p = write(dir.path(), black_box(&e)).expect("write");
            std::fs::remove_file(p).expect("rm");
        })
    });
}

criterion_group!(benches, body, headers, dmarc_spool);
criterion_main!(benches);
