//! One test per parser of attacker (or admin) input, each on the input shape most likely to
//! make it slow. The parsers that other modules own tests for (tag lists, h=, globs, comments,
//! Authentication-Results) are not repeated here.

use super::{assert_linear, repeat};
use qmail_dkim::message::{address_domain, address_domains, count_fields, find_header_end, unfold, Headers};
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
                let _ = black_box(qmail_dkim::message::author_domain(h));
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
                black_box(qmail_dkim::headers::forged(h, "mx.example.org"));
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
                    black_box(qmail_dkim::auth_results::fits(p, v));
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
            assert!(qmail_dkim::envelope::read(&e[..]).is_ok());
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
            let mut p = qmail_dkim::envelope::Parser::default();
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
    use qmail_dkim::dkim::verify::{verify_message, Options, Outcome};
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
                qmail_dkim::dns::Fixed(format!("v=DKIM1; k=rsa; p={p}").into_bytes())
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
            let (seq, _) = qmail_dkim::der::read(der).unwrap();
            let mut r = qmail_dkim::der::Reader::new(seq.value);
            let mut k = 0;
            while !r.is_empty() {
                r.next_tlv().unwrap();
                k += 1;
            }
            black_box(k);
            black_box(qmail_dkim::der::public_key(der));
            black_box(qmail_dkim::der::bit_length(seq.value));
        },
    );
}

// --- private keys (admin input) -----------------------------------------------------------------

#[test]
fn private_key_pem_is_linear() {
    use qmail_dkim::dkim::key::SigningKey;
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

// --- DKIM body canonicalization ------------------------------------------------------------------

#[test]
fn dkim_body_canonicalization_is_linear() {
    use qmail_dkim::dkim::canon::BodyHasher;
    use qmail_dkim::dkim::{Canon, HashAlg};
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
    use qmail_dkim::dkim::canon::{relaxed_header, simple_header};
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
    use qmail_dkim::domainkeys::canon::DkHasher;
    use qmail_dkim::domainkeys::Canon;
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
    use qmail_dkim::config::control::{parse_dkimkeys, parse_lines};
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
    use qmail_dkim::config::control::parse_envstr;
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
    use qmail_dkim::dkim::options::parse;
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

// --- tcprules lookups ----------------------------------------------------------------------------

/// `dkim check --host` or `--ip` of many labels: tcpserver's keys (the host's suffixes, the
/// address's prefixes) are compared in place, so neither memory nor time grows with
/// (labels x length).
#[test]
fn tcprules_lookup_of_many_labels_is_linear() {
    use qmail_dkim::tcprules::{find, parse};
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

// --- comments and quoted strings, forged Authentication-Results, globs ---------------------------

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Deep nesting, long runs of quoted-pairs and unbalanced input: the scanner reads every byte
/// once at 1x and 16x, and the callers grow with the input. The scanner keeps no stack, so
/// memory is constant.
#[test]
fn nested_and_unbalanced_input_is_linear() {
    use qmail_dkim::rfc5322::{first_word, remove_comments, Scanner};
    for unit in [&b"("[..], b")", b"(\\", b"\"", b"\\(", b"((\"))"] {
        for n in [1_000usize, 16_000] {
            let v = unit.repeat(n);
            let mut s = Scanner::new(&v);
            assert_eq!(s.by_ref().count(), v.len());
            assert_eq!(s.pos(), v.len());
        }
        assert_linear(
            &format!("rfc5322 first_word + remove_comments, {:?} repeated", lossy(unit)),
            1_000,
            |n| unit.repeat(n),
            |v| {
                black_box(first_word(v));
                black_box(remove_comments(v));
            },
        );
    }
}

/// Deep nesting, unclosed comments and many bare CRs: the removal decision grows with the
/// input at 1x and 16x.
#[test]
fn forgery_scan_of_nested_or_unbalanced_input_is_linear() {
    let shapes: [(&[u8], &[u8]); 4] = [
        (b"Authentication-Results: ", b"("),
        (b"Authentication-Results: ", b"(\\"),
        (b"Authentication-Results: \"", b"\\\""),
        (b"Subject: x", b"\rAuthentication-Results: (("),
    ];
    for (head, unit) in shapes {
        assert_linear(
            &format!("headers::forged, {:?} then {:?} repeated", lossy(head), lossy(unit)),
            2_000,
            |n| {
                let mut block = head.to_vec();
                block.extend(unit.repeat(n));
                block.extend_from_slice(b" mx; dkim=pass\n");
                Headers::parse(block)
            },
            |h| {
                black_box(qmail_dkim::headers::forged(h, "mx"));
            },
        );
    }
}

/// Pattern and subject shapes that make backtracking matchers exponential or quadratic: grown
/// 16-fold, the matcher's time and allocation grow at most as the check allows.
#[test]
fn g_glob_with_many_stars_is_linear() {
    use qmail_dkim::glob::Glob;
    /// A name and the (pattern, subject) of size n.
    type Shape = (&'static str, fn(usize) -> (String, String));
    let shapes: [Shape; 7] = [
        ("stars then b (the g= attack)", |n| ("*".repeat(n) + "b", "a".repeat(n))),
        ("stars then b, matching", |n| ("*".repeat(n) + "b", "a".repeat(n) + "b")),
        ("*a*a*a…*b", |n| ("*a".repeat(n) + "*b", "a".repeat(n - 1) + "b")),
        ("long segment, no match", |n| (format!("*{}b*", "a".repeat(n)), "a".repeat(4 * n))),
        ("almost-periodic segments", |n| ("*aab".repeat(n) + "*", "aaa".repeat(n) + &"aab".repeat(n - 1))),
        ("long head and tail", |n| (format!("{}*{}", "a".repeat(n), "a".repeat(n)), "a".repeat(3 * n))),
        ("short ? segments", |n| ("*?a?".repeat(n) + "*c", "xa".repeat(n) + "c")),
    ];
    for (name, make) in shapes {
        // Which of the shapes match.
        let matching = name.ends_with("matching") || name == "long head and tail";
        assert_linear(&format!("glob, {name}"), 64, make, |(p, s)| {
            assert_eq!(Glob::star_and_question(p).matches(s), matching, "{name}");
        });
    }
}

// --- DKIM2, DMARC and SPF records ----------------------------------------------------------------

#[test]
fn dkim2_signature_parser_is_linear() {
    use qmail_dkim::dkim2::parse::Signature;
    // One long value per tag kind: a huge base64 signature, nonce-like unknown tags, folding.
    assert_linear(
        "DKIM2-Signature, long s= signature and folded base64",
        4096,
        |n| {
            let sig = repeat(b"QUJD\r\n\t", n);
            [b"i=1; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s=sel:rsa-sha256:".as_slice(), &sig].concat()
        },
        |v| drop(black_box(Signature::parse(v))),
    );
    assert_linear(
        "DKIM2-Signature, rt= of many recipients (refused at the cap, then linear)",
        4096,
        |n| [b"i=1; m=1; t=5; d=ex.com; mf=PD4=; s=s:a:QQ==; rt=".as_slice(), &repeat(b"PGFAYj4=,", n)].concat(),
        |v| drop(black_box(Signature::parse(v))),
    );
}

#[test]
fn message_instance_parser_is_linear() {
    use qmail_dkim::dkim2::parse::Instance;
    assert_linear(
        "Message-Instance, long hashes",
        4096,
        |n| [b"m=1; h=sha256:".as_slice(), &repeat(b"QUJD", n), b":", &repeat(b"REVG", n)].concat(),
        |v| drop(black_box(Instance::parse(v))),
    );
}

#[test]
fn recipe_reader_is_linear() {
    use qmail_dkim::dkim2::recipe::{Recipe, MAX_DEPTH};
    assert_linear(
        "recipe JSON, many body steps",
        2048,
        |n| {
            [
                br#"{"b":["#.as_slice(),
                &repeat(br#"{"c":[1,4294967295]},{"d":["abc\u00e9"]},{"u":["QUJD"]},"#, n),
                br#"{"c":[1,1]}]}"#,
            ]
            .concat()
        },
        |v| drop(black_box(Recipe::from_json(v))),
    );
    assert_linear(
        "recipe JSON, ignored values nested to the cap",
        2048,
        |n| {
            let unit = format!("{}1{},", "[".repeat(MAX_DEPTH - 2), "]".repeat(MAX_DEPTH - 2));
            [br#"{"x":["#.as_slice(), &repeat(unit.as_bytes(), n), b"0]}"].concat()
        },
        |v| drop(black_box(Recipe::from_json(v))),
    );
    assert_linear(
        "recipe JSON, many header names",
        2048,
        |n| {
            let names: String = (0..n / 12).map(|k| format!("\"h{k}\":[],")).collect();
            format!("{{\"h\":{{{names}\"z\":[]}}}}").into_bytes()
        },
        |v| drop(black_box(Recipe::from_json(v))),
    );
}

#[test]
fn applying_recipes_is_linear() {
    use qmail_dkim::dkim2::hash::Field;
    use qmail_dkim::dkim2::recipe::{apply_body, BodyRecipe, Recipe, Step};
    // Many copy steps over a body of many lines: each line is copied at most once.
    assert_linear(
        "apply_body, a copy step per line and overlapping ranges",
        4096,
        |n| {
            let body = repeat(b"line\r\n", n);
            let lines = n / 6;
            let steps: Vec<Step> =
                (1..=lines as u32).flat_map(|k| [Step::Copy(k, k), Step::Copy(1, u32::MAX)]).collect();
            (body, steps)
        },
        |(b, s)| drop(black_box(apply_body(b, s))),
    );
    assert_linear(
        "apply_headers, many fields of one name",
        4096,
        |n| qmail_dkim::message::Headers::parse(repeat(b"Subject: x\r\n", n)),
        |h| {
            let fields: Vec<Field> = h.fields.iter().map(|f| (h.name(f), h.value(f))).collect();
            let r = Recipe {
                headers: vec![("subject".into(), vec![Step::Copy(1, u32::MAX)])],
                body: BodyRecipe::Unchanged,
            };
            black_box(r.apply_headers(&fields));
        },
    );
}

#[test]
fn state_hashes_are_linear() {
    use qmail_dkim::dkim::HashAlg;
    use qmail_dkim::dkim2::hash::{header_digest, signed_self, Field};
    let make = |n: usize| {
        let block = repeat(b"Subject: a  b\r\n\tc\r\nX-Skip: y\r\n", n);
        qmail_dkim::message::Headers::parse(block)
    };
    assert_linear("dkim2 header hash", 4_000, make, |h| {
        let f: Vec<Field> = h.fields.iter().map(|f| (h.name(f), h.value(f))).collect();
        header_digest(&f, HashAlg::Sha256);
    });
    assert_linear(
        "dkim2 signed_self",
        4_000,
        |n| repeat(b"s=a:b:QUJD,c:d:RUZH|e:f:SUpL; ", n),
        |v| {
            let mut out = Vec::new();
            signed_self(v, &mut out);
        },
    );
}

/// Every item is looked at once: long records of many tags or long URI lists are linear.
#[test]
fn dmarc_record_with_long_rua_and_fo_lists_is_linear() {
    use qmail_dkim::dmarc::record::parse;
    for unit in [&b"mailto:a@example.com!10m,"[..], b"x,", b"0:", b"!", b"x=y;", b";"] {
        assert_linear(
            &format!("DMARC record, {:?} repeated", String::from_utf8_lossy(unit)),
            1024,
            |n| {
                let list = repeat(unit, n);
                let tag = if unit.starts_with(b"0") { "fo" } else { "rua" };
                [format!("v=DMARC1; {tag}=").as_bytes(), &list, b"; p=none"].concat()
            },
            |v| drop(std::hint::black_box(parse(v))),
        );
    }
}

#[test]
fn records_of_many_terms_parse_in_linear_time() {
    use qmail_dkim::spf::record::{parse, select};
    assert_linear(
        "SPF record of many terms",
        1024,
        |n| {
            let mut v = b"v=spf1".to_vec();
            v.extend(repeat(
                b" ip4:192.0.2.0/24 a:%{l1r-}.x.example//64 x=y ~include:a.b.example -ip6:2001:db8::/32",
                n,
            ));
            v
        },
        |b| {
            std::hint::black_box(parse(b).unwrap());
        },
    );
    assert_linear(
        "SPF record of one long term, and the selection among many TXT records",
        1024,
        |n| {
            let mut v = b"v=spf1 a:".to_vec();
            v.extend(repeat(b"ab//-/", n));
            v.extend(b".example.com/24//64");
            vec![v, repeat(b"v=spf10 ", n)]
        },
        |recs| {
            std::hint::black_box(select(recs));
            std::hint::black_box(parse(&recs[0]).is_ok());
        },
    );
}
