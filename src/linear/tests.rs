//! One test per parser of attacker (or admin) input, each on the input shape most likely to
//! make it slow. The parsers that other modules own tests for (tag lists, h=, globs, comments,
//! Authentication-Results) are not repeated here.

use super::{assert_linear, repeat};
use crate::message::{address_domain, address_domains, count_fields, find_header_end, unfold, Headers};
use std::hint::black_box;

// --- the check itself ----------------------------------------------------------------------------

#[test]
#[should_panic(expected = "takes")]
fn linear_check_catches_quadratic_time() {
    assert_linear(
        "a quadratic scan (every prefix searched again)",
        256,
        |n| repeat(b"a", n),
        |v| {
            let mut k = 0usize;
            for i in 0..v.len() {
                k += black_box(&v[..i]).iter().filter(|&&c| c == b'b').count();
            }
            black_box(k);
        },
    );
}

#[test]
#[should_panic(expected = "allocates")]
fn linear_check_catches_quadratic_allocation() {
    assert_linear(
        "a quadratic allocation (room for every prefix)",
        256,
        |n| repeat(b"a", n),
        |v| {
            for i in 0..v.len() {
                black_box(Vec::<u8>::with_capacity(i));
            }
        },
    );
}

// --- the header block ---------------------------------------------------------------------------

#[test]
fn header_block_of_many_fields_is_linear() {
    assert_linear(
        "Headers::parse + count_fields, many short fields and continuations",
        4096,
        |n| repeat(b"A:b\n c\nNoColon\n\t\n", n),
        |b| {
            black_box(count_fields(b));
            black_box(Headers::parse(b.clone()).fields.len());
        },
    );
}

#[test]
fn header_field_of_many_folds_is_linear() {
    assert_linear(
        "Headers::parse + unfold, one field folded many times",
        4096,
        |n| {
            let mut b = b"Subject: x".to_vec();
            b.extend(repeat(b"\r\n \t", n));
            b.push(b'\n');
            b
        },
        |b| {
            let h = Headers::parse(b.clone());
            black_box(h.first_value("subject"));
            black_box(unfold(b));
        },
    );
}

/// As `run::prepare` calls it: after every read, from two bytes before the new data.
#[test]
fn header_end_found_incrementally_is_linear() {
    for unit in [&b"A: b\n"[..], b"x\n\r\r\n\t", b"\r\r\r\r\n "] {
        assert_linear(
            &format!("find_header_end fed 7 bytes at a time, {unit:?}"),
            4096,
            |n| {
                let mut m = repeat(unit, n);
                m.extend_from_slice(b"\n\nbody");
                m
            },
            |m| {
                let mut head = Vec::new();
                let mut end = None;
                for chunk in m.chunks(7) {
                    let from = head.len().saturating_sub(2);
                    head.extend_from_slice(chunk);
                    end = find_header_end(&head, from);
                    if end.is_some() {
                        break;
                    }
                }
                assert!(end.is_some());
            },
        );
    }
}

// --- addresses -----------------------------------------------------------------------------------

#[test]
fn address_domain_is_linear() {
    for unit in [&b"<"[..], b">", b"<a@b>", b"@", b"(", b"((x)", b"\"\\", b"a@b.c,", b" \t", b"g:", b"<@r,", b","] {
        assert_linear(
            &format!("address_domain and address_domains, {unit:?} repeated"),
            4096,
            |n| {
                let mut v = repeat(unit, n);
                v.extend_from_slice(b" <joe@example.com>");
                v
            },
            |v| {
                black_box(address_domain(v));
                black_box(address_domains(v));
            },
        );
    }
}

/// The fields as a reader that ends lines at a bare CR sees them, and the one author domain of
/// every From among them: many bare CRs in one field, many hidden From fields, long folds.
#[test]
fn field_views_and_author_domain_are_linear() {
    for (head, unit) in [
        (&b"Subject: x"[..], &b"\rFrom: a@x.org"[..]),
        (b"From: a@x.org", b"\r \r\t\r"),
        (b"From: a@x.org", b"\r\r\r:"),
        (b"Subject: x", b"\rX-A: (\r"),
        (b"From: ", b"a@x.org,\r\n "),
    ] {
        assert_linear(
            &format!("Headers::views, author_domain, {head:?} then {unit:?} repeated"),
            2048,
            |n| {
                let mut b = head.to_vec();
                b.extend(repeat(unit, n));
                b.extend_from_slice(b"\nFrom: a@x.org\n");
                Headers::parse(b)
            },
            |h| {
                black_box(h.views().count());
                let _ = black_box(crate::message::author_domain(h));
            },
        );
    }
}

/// The removal decision for incoming Authentication-Results: many `)`, white space after each,
/// near-misses of our id after each, unbalanced comments, hidden fields behind bare CRs.
#[test]
fn authentication_results_removal_is_linear() {
    for unit in
        [&b")"[..], b") \t", b") mx.example.orx", b"(\\)", b"((", b") \"mx.example.or", b"\rAuthentication-Results: ("]
    {
        assert_linear(
            &format!("headers::forged over Authentication-Results, {unit:?} repeated"),
            2048,
            |n| {
                let mut b = b"Authentication-Results: (".to_vec();
                b.extend(repeat(unit, n));
                b.extend_from_slice(b" other.org; dkim=pass\n");
                Headers::parse(b)
            },
            |h| {
                black_box(crate::headers::forged(h, "mx.example.org"));
            },
        );
    }
}

/// What a property value must be: long domains and addresses, many labels, many dots.
#[test]
fn property_value_check_is_linear() {
    for unit in [&b"a."[..], b"a-b_c.", b"x.y@", b".", b"ab"] {
        assert_linear(
            &format!("auth_results::fits, {unit:?} repeated"),
            2048,
            |n| {
                let mut v = repeat(unit, n);
                v.extend_from_slice(b"example.com");
                String::from_utf8(v).unwrap_or_default()
            },
            |v| {
                for p in ["header.d", "header.i", "header.from", "smtp.mailfrom", "header.s"] {
                    black_box(crate::auth_results::fits(p, v));
                }
            },
        );
    }
}

// --- the envelope --------------------------------------------------------------------------------

#[test]
fn envelope_of_many_recipients_is_linear() {
    assert_linear(
        "envelope::read, many recipients",
        4096,
        |n| {
            let mut e = b"Fa@b\0".to_vec();
            e.extend(repeat(b"Tr@example.org\0", n));
            e.push(0);
            e
        },
        |e| {
            assert!(crate::envelope::read(&e[..]).is_ok());
        },
    );
}

#[test]
fn envelope_fed_byte_by_byte_is_linear() {
    assert_linear(
        "envelope::Parser fed one byte at a time, long addresses",
        4096,
        |n| {
            let mut e = b"F".to_vec();
            e.extend(repeat(b"a", 1000));
            e.push(0);
            e.extend(repeat(&[b"T".as_slice(), &[b'x'; 1000], b"\0"].concat(), n));
            e.push(0);
            e
        },
        |e| {
            let mut p = crate::envelope::Parser::default();
            for b in e.chunks(1) {
                p.feed(b).unwrap();
            }
            assert!(p.finish().is_ok());
        },
    );
}

// --- key records (DNS TXT, p=) -------------------------------------------------------------------

/// The key record of a DKIM signature: `p=` grows, with whitespace in it (which the base64
/// decoder must skip) and, decoded, a DER SEQUENCE of junk.
#[test]
fn key_record_p_is_linear() {
    use crate::dkim::verify::{verify_message, Options, Outcome};
    let msg = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from;\n bh=AAAA; b=AAAA\nFrom: a@example.com\n\nbody\n";
    for spaced in [false, true] {
        assert_linear(
            &format!("DKIM key record, long p= (whitespace: {spaced})"),
            4096,
            |n| {
                let mut der = vec![0x30, 0x84];
                der.extend_from_slice(&(n as u32).to_be_bytes());
                der.extend(repeat(&[0x02, 0x01, 0x01], n));
                let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
                let p: String = if spaced { b64.chars().flat_map(|c| [c, ' ']).collect() } else { b64 };
                crate::dns::Fixed(format!("v=DKIM1; k=rsa; p={p}").into_bytes())
            },
            |dns| {
                let r = verify_message(msg, dns, &Options::default(), 0);
                assert_eq!(r.results.first().map(|r| r.outcome), Some(Outcome::PublicKeyInvalid), "{r:?}");
            },
        );
    }
}

/// DER as the key record and the key file hold it: a long SEQUENCE read element by element.
#[test]
fn der_of_many_elements_is_linear() {
    assert_linear(
        "der::Reader over many elements, der::public_key",
        4096,
        |n| {
            let body = repeat(&[0x02, 0x02, 0x00, 0x80], n);
            let mut der = vec![0x30, 0x84];
            der.extend_from_slice(&(body.len() as u32).to_be_bytes());
            der.extend(body);
            der
        },
        |der| {
            let (seq, _) = crate::der::read(der).unwrap();
            let mut r = crate::der::Reader::new(seq.value);
            let mut k = 0;
            while !r.is_empty() {
                r.next_tlv().unwrap();
                k += 1;
            }
            black_box(k);
            black_box(crate::der::public_key(der));
            black_box(crate::der::bit_length(seq.value));
        },
    );
}

// --- private keys (admin input) -----------------------------------------------------------------

#[test]
fn private_key_pem_is_linear() {
    use crate::dkim::key::SigningKey;
    for (what, unit) in [
        ("many base64 lines", &b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"[..]),
        ("many BEGIN lines", b"-----BEGIN PRIVATE KEY-----\n"),
        ("many header lines", b"Proc-Type: 4,ENCRYPTED\r\n"),
    ] {
        assert_linear(
            &format!("SigningKey::from_pem, {what}"),
            4096,
            |n| {
                let mut pem = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
                pem.extend(repeat(unit, n));
                pem.extend_from_slice(b"-----END PRIVATE KEY-----\n");
                pem
            },
            |pem| {
                assert!(SigningKey::from_pem(pem, false).is_err());
            },
        );
    }
}

/// The key file reader's line loop on every shape it passes over: blocks of other labels, text
/// before the block, header and blank lines inside it, base64 lines. (`keyfile::read` refuses
/// files over 1 MiB before this loop, so the loop itself is measured.)
#[test]
fn key_file_reader_is_linear() {
    for (what, head, unit) in [
        ("many blocks of another label", "", "-----BEGIN CERTIFICATE-----\n"),
        ("many text lines before the block", "", "# a comment line, not base64\r\n"),
        ("many header lines", "-----BEGIN RSA PRIVATE KEY-----\n", "Comment: x\n"),
        ("many blank lines", "-----BEGIN PRIVATE KEY-----\n", " \r\n"),
        (
            "many base64 lines",
            "-----BEGIN PRIVATE KEY-----\n",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCqopryjgyrtrHp\n",
        ),
    ] {
        assert_linear(
            &format!("keyfile::pem_block, {what}"),
            1024,
            |n| {
                let mut pem = head.to_string();
                pem.push_str(&unit.repeat(n.div_ceil(unit.len())));
                pem.push_str("-----END PRIVATE KEY-----\n");
                pem
            },
            |pem| {
                black_box(crate::keyfile::pem_block(pem).is_ok());
            },
        );
    }
}

// --- DKIM body canonicalization ------------------------------------------------------------------

#[test]
fn dkim_body_canonicalization_is_linear() {
    use crate::dkim::canon::BodyHasher;
    use crate::dkim::{Canon, HashAlg};
    let shapes: [(&str, &[u8]); 6] = [
        ("long runs of whitespace", b"                              \t\t\t\t\t\t"),
        ("many blank lines", b"\n"),
        ("many blank lines with whitespace", b" \t \r\n"),
        ("alternating words and spaces", b"a  "),
        ("bare CRs", b"\r\r \r"),
        ("blank lines then text", b"\n\n\n\n\n\n\n\n\n\nx\n"),
    ];
    for (what, unit) in shapes {
        for canon in [Canon::Relaxed, Canon::Simple] {
            for (limit, piece) in [(None, 65536), (Some(100), 65536), (None, 1)] {
                assert_linear(
                    &format!("BodyHasher {canon:?}, {what}, l={limit:?}, {piece}-byte pieces"),
                    if piece == 1 { 1024 } else { 16384 },
                    |n| repeat(unit, n),
                    |body| {
                        let mut h = BodyHasher::new(canon, HashAlg::Sha256, limit);
                        for p in body.chunks(piece) {
                            h.update(p);
                        }
                        black_box(h.finish());
                    },
                );
            }
        }
    }
}

#[test]
fn dkim_header_canonicalization_is_linear() {
    use crate::dkim::canon::{relaxed_header, simple_header};
    assert_linear(
        "relaxed_header / simple_header, whitespace and folds",
        4096,
        |n| repeat(b" \t\r\n \n a", n),
        |v| {
            let mut out = Vec::new();
            relaxed_header(b"Subject", v, &mut out);
            simple_header(v, &mut out);
            black_box(out);
        },
    );
}

// --- DomainKeys canonicalization -----------------------------------------------------------------

#[test]
fn domainkeys_canonicalization_is_linear() {
    use crate::domainkeys::canon::DkHasher;
    use crate::domainkeys::Canon;
    for (what, unit) in [
        ("long runs of whitespace", &b"                          \t\t\t\r"[..]),
        ("many blank lines", b"\n"),
        ("blank lines of whitespace", b" \t\r\n"),
        ("words", b"a b\tc\r\n"),
    ] {
        for canon in [Canon::Nofws, Canon::Simple] {
            for piece in [65536, 1] {
                assert_linear(
                    &format!("DkHasher {canon:?}, {what}, {piece}-byte pieces"),
                    if piece == 1 { 1024 } else { 16384 },
                    |n| repeat(unit, n),
                    |body| {
                        let mut h = DkHasher::new(canon);
                        h.header(body);
                        for p in body.chunks(piece) {
                            h.body(p);
                        }
                        black_box(h.finish());
                    },
                );
            }
        }
    }
}

// --- control files and DKIMSIGNOPTIONS (admin input) ---------------------------------------------

#[test]
fn control_file_is_linear() {
    use crate::config::control::{parse_dkimkeys, parse_lines};
    for (what, unit) in [
        ("many entries", &b"example.com:/var/qmail/control/domainkeys/%/default:A=1\\,2,B=\r\n"[..]),
        ("many comments and blank lines", b"# x\n\n \r\n"),
        ("one long line", b"a"),
    ] {
        assert_linear(
            &format!("parse_lines + parse_dkimkeys, {what}"),
            4096,
            |n| {
                let mut f = b"x:".to_vec();
                f.extend(repeat(unit, n));
                f
            },
            |f| {
                let lines = parse_lines(f);
                black_box(parse_dkimkeys(&lines, std::path::Path::new("dkimkeys")).map(|e| e.len()).ok());
            },
        );
    }
}

#[test]
fn envstr_is_linear() {
    use crate::config::control::parse_envstr;
    for unit in ["A=1,", "\\,", ",", "A=\\,\\,\\,\\,"] {
        assert_linear(
            &format!("parse_envstr, {unit:?} repeated"),
            4096,
            |n| String::from_utf8(repeat(unit.as_bytes(), n)).unwrap_or_default(),
            |s| {
                black_box(parse_envstr(s).ok());
            },
        );
    }
}

#[test]
fn dkimsignoptions_is_linear() {
    use crate::dkim::options::parse;
    for unit in ["-l ", "-lqth", "-z 2 -c r ", "-i joe@example.com ", "-x3600 "] {
        assert_linear(
            &format!("DKIMSIGNOPTIONS, {unit:?} repeated"),
            4096,
            |n| String::from_utf8(repeat(unit.as_bytes(), n)).unwrap_or_default(),
            |s| {
                black_box(parse(s).ok());
            },
        );
    }
}

/// A DomainKeys `p=` of SubjectPublicKeyInfos nested inside each other, as deep as the record
/// allows: read without recursion (it once recursed once per level, so a deep enough nesting,
/// which `SELECTOR_DATA` does not bound, overflowed the stack).
#[test]
fn domainkeys_key_in_nested_spki_does_not_recurse() {
    use crate::der::TAG_SEQUENCE;
    use crate::der::{tlv, unsigned_integer, write_len, OID_RSA_ENCRYPTION, TAG_BIT_STRING, TAG_NULL, TAG_OID};
    use crate::domainkeys::verify::rsa_components;
    let mut pkcs1 = unsigned_integer(&[0xc5; 128]);
    pkcs1.extend(unsigned_integer(&[1, 0, 1]));
    let pkcs1 = tlv(TAG_SEQUENCE, &pkcs1);
    let mut alg = tlv(TAG_OID, OID_RSA_ENCRYPTION);
    alg.extend(tlv(TAG_NULL, &[]));
    let alg = tlv(TAG_SEQUENCE, &alg);
    // What der::spki_from_pkcs1 makes, `depth` times around the key, built in linear time: the
    // heads of the layers from the inside out, then written outermost first.
    let nest = |depth: usize| {
        let mut heads: Vec<Vec<u8>> = Vec::with_capacity(depth);
        let mut inner = pkcs1.len();
        for _ in 0..depth {
            let mut bits = vec![TAG_BIT_STRING];
            write_len(inner + 1, &mut bits);
            bits.push(0);
            let body = alg.len() + bits.len() + inner;
            let mut head = vec![TAG_SEQUENCE];
            write_len(body, &mut head);
            head.extend(&alg);
            head.extend(bits);
            inner += head.len();
            heads.push(head);
        }
        let mut out: Vec<u8> = heads.into_iter().rev().flatten().collect();
        out.extend(&pkcs1);
        out
    };
    assert_eq!(nest(1), crate::der::spki_from_pkcs1(&pkcs1));
    assert!(rsa_components(&nest(1)).is_some(), "a key in a SubjectPublicKeyInfo");
    assert!(rsa_components(&nest(2)).is_some(), "and in one more, as some publishers wrote it");
    assert!(rsa_components(&nest(3)).is_none(), "deeper is no key");
    // About 3 MB; with one stack frame per level this overflowed a test thread's stack.
    assert!(rsa_components(&nest(100_000)).is_none());
}

// --- tcprules lookups ----------------------------------------------------------------------------

/// `dkim check --host` or `--ip` of many labels: tcpserver's keys (the host's suffixes, the
/// address's prefixes) are compared in place, so neither memory nor time grows with
/// (labels x length).
#[test]
fn tcprules_lookup_of_many_labels_is_linear() {
    use crate::tcprules::{find, parse};
    let rules = parse("=.nomatch.example:allow\n10.0.0.1-5:allow\n=x.example:allow\n1.2.:allow\n").unwrap();
    assert_linear(
        "tcprules lookup of a host and an address of many labels",
        1000,
        |n| ("a.".repeat(n) + "org", "9.".repeat(n) + "9"),
        |(host, ip)| {
            assert!(find(&rules, "192.0.2.1", Some(host), None).is_none());
            assert!(find(&rules, ip, None, None).is_none());
        },
    );
}
