use super::*;

const SIG: &str = "i=1; m=1; t=1740000000; d=Example.COM; mf=PHNlbmRlckBleGFtcGxlLmNvbT4=; \
                   rt=PGFAYi5jPg==,PGRAZS5mPg==; s=sel:ed25519-sha256:QUJD|sel2:rsa-sha256:REVG, sel3:x-new:R0g=; n=a:b;c";

#[test]
fn signature_fields() {
    let s = Signature::parse(SIG.replace(";c", "").as_bytes()).unwrap();
    assert_eq!((s.i, s.m, s.t, s.d.as_str()), (1, 1, 1_740_000_000, "example.com"));
    assert_eq!(
        s.binding,
        Binding::Envelope {
            mail_from: "<sender@example.com>".into(),
            rcpt_to: vec!["<a@b.c>".into(), "<d@e.f>".into()]
        }
    );
    let sv: Vec<(&str, &str, u32)> = s.s.iter().map(|v| (v.selector.as_str(), v.algorithm.as_str(), v.group)).collect();
    assert_eq!(sv, vec![("sel", "ed25519-sha256", 0), ("sel2", "rsa-sha256", 1), ("sel3", "x-new", 1)]);
    assert_eq!(s.s[0].b, b"ABC");
    assert_eq!(s.n.as_deref(), Some("a:b"));
}

#[test]
fn signature_errors() {
    let base = "i=1; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s=s:ed25519-sha256:QQ==";
    assert!(Signature::parse(base.as_bytes()).is_ok());
    for (bad, want) in [
        ("i=1; i=1", ParseError::Tags(crate::dkim::tags::TagError::Duplicate("i".into()))),
        ("m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s=s:a:QQ==", ParseError::Missing("i")),
        ("i=1; m=1; t=5; d=ex.com; rt=PGFAYj4=; s=s:a:QQ==", ParseError::Missing("mf")),
        ("i=1; m=1; t=5; d=ex.com; mf=PD4=; s=s:a:QQ==", ParseError::Missing("rt")),
        ("i=1; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; nd=x.y; s=s:a:QQ==", ParseError::NextDomainWithEnvelope),
        ("i=x; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s=s:a:QQ==", ParseError::Invalid("i")),
        ("i=1; m=1; t=5; d=ex..com; mf=PD4=; rt=PGFAYj4=; s=s:a:QQ==", ParseError::Invalid("d")),
        (
            "i=1; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s=s:a:QQ==,S:b:QQ==",
            ParseError::DuplicateSelector("s".into()),
        ),
        ("i=1; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s=s:a", ParseError::Invalid("s")),
        ("i=1; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s=s:a:", ParseError::Invalid("s")),
        ("i=1; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s=s:a:QQ==; f=a b", ParseError::Invalid("f")),
    ] {
        assert_eq!(Signature::parse(bad.as_bytes()), Err(want), "{bad}");
    }
    let long_nonce = format!("{base}; n={}", "a".repeat(MAX_NONCE + 1));
    assert_eq!(Signature::parse(long_nonce.as_bytes()), Err(ParseError::Invalid("n")));
    // Unknown tags (upper case included) are ignored.
    assert!(Signature::parse(format!("{base}; I=7; zz=whatever").as_bytes()).is_ok());
}

#[test]
fn instance_fields() {
    let mi = Instance::parse(b"m=2; h=sha256:QUJD:REVG|sha512:R0hJ:SktM, x1:QQ==:Qg==; r=eyJiIjpudWxsfQ==").unwrap();
    assert_eq!(mi.m, 2);
    let names: Vec<(&str, u32)> = mi.hashes.iter().map(|h| (h.name.as_str(), h.group)).collect();
    assert_eq!(names, vec![("sha256", 0), ("sha512", 1), ("x1", 1)]);
    assert_eq!(mi.recipe.map(|r| r.body), Some(crate::dkim2::recipe::BodyRecipe::Lost));
    assert_eq!(Instance::parse(b"m=1"), Err(ParseError::Missing("h")));
    assert_eq!(
        Instance::parse(b"m=1; h=sha256:QQ==:QQ==,sha256:Qg==:Qg=="),
        Err(ParseError::DuplicateHash("sha256".into()))
    );
    assert!(Instance::parse(b"m=1; h=sha256:QQ==:QQ==; r=e30K").is_ok());
    assert!(matches!(Instance::parse(b"m=1; h=sha256:QQ==:QQ==; r=e30Ke30K"), Err(ParseError::Recipe(_))));
}

#[test]
fn lists_inside_a_value_are_capped() {
    let s = |entries: &str| format!("i=1; m=1; t=5; d=ex.com; mf=PD4=; rt=PGFAYj4=; s={entries}");
    let many: Vec<String> = (0..=MAX_SIGNATURE_VALUES).map(|k| format!("s{k}:a:QQ==")).collect();
    assert_eq!(Signature::parse(s(&many.join(",")).as_bytes()), Err(ParseError::TooMany(MAX_SIGNATURE_VALUES, "s")));
    let rt = vec!["PGFAYj4="; MAX_RECIPIENTS + 1].join(",");
    let v = format!("i=1; m=1; t=5; d=ex.com; mf=PD4=; rt={rt}; s=s:a:QQ==");
    assert_eq!(Signature::parse(v.as_bytes()), Err(ParseError::TooMany(MAX_RECIPIENTS, "rt")));
    let h: Vec<String> = (0..=MAX_HASHES).map(|k| format!("x{k}:QQ==:QQ==")).collect();
    let h = h.join("|");
    assert_eq!(Instance::parse(format!("m=1; h={h}").as_bytes()), Err(ParseError::TooMany(MAX_HASHES, "h")));
}
