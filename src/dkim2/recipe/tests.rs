use super::*;

#[test]
fn reads_header_and_body_recipes() {
    let r = Recipe::from_json(
        br#" {"h":{"Subject":[{"c":[1,1]},{"d":["old \u00e9 \ud83d\ude00"]}],"received":[{"d":["x"]}],"list-id":[]},
             "b":[{"c":[2,3],"zz":1},{"u":["/w=="]},7,"x",[1]],"other":{"deep":[true,false,null,-1.5e3]}} "#,
    )
    .unwrap();
    assert_eq!(
        r.headers,
        vec![
            ("subject".to_string(), vec![Step::Copy(1, 1), Step::Data(vec!["old é 😀".as_bytes().to_vec()])]),
            ("list-id".to_string(), vec![]),
        ]
    );
    assert_eq!(r.body, BodyRecipe::Steps(vec![Step::Copy(2, 3), Step::Data(vec![vec![0xff]])]));
    assert_eq!(Recipe::from_json(b"{}").unwrap(), Recipe::default());
    assert_eq!(Recipe::from_json(br#"{"b":null}"#).unwrap().body, BodyRecipe::Lost);
    assert_eq!(
        Recipe::from_json(br#"{"b":[{"c":[1,99999999999]}]}"#).unwrap().body,
        BodyRecipe::Steps(vec![Step::Copy(1, u32::MAX)])
    );
}

#[test]
fn refuses_what_could_inject_or_confuse() {
    for bad in [
        &br#"{"h":{"a":[],"A":[]}}"#[..],
        br#"{"h":{"a b":[]}}"#,
        br#"{"h":{"a:":[]}}"#,
        br#"{"b":[{"d":["a\r\nFrom: x"]}]}"#,
        br#"{"b":[{"u":["DQo="]}]}"#,
        br#"{"b":[{"c":[1,2],"d":["x"]}]}"#,
        br#"{"b":[{"c":[-1,2]}]}"#,
        br#"{"b":[{"c":[1]}]}"#,
        br#"{"b":[{"c":[1.5,2]}]}"#,
        br#"{"b":[],"b":[]}"#,
        br#"{"b":[]} x"#,
        br#"{"b":[{"d":["\ud800"]}]}"#,
        br#"{"b":[{"d":[""#,
        b"[]",
        b"",
    ] {
        assert!(Recipe::from_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    let deep = format!("{{\"x\":{}{}}}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
    assert!(Recipe::from_json(deep.as_bytes()).is_err());
}

#[test]
fn applies_a_body_recipe() {
    let body = b"one\r\ntwo\nthree\r\nfour\r\n";
    let steps = [Step::Copy(1, 1), Step::Data(vec![b"new".to_vec()]), Step::Copy(1, 3), Step::Copy(9, 12)];
    // The second copy starts after the first one's end: line 1 is not copied twice.
    assert_eq!(apply_body(body, &steps), b"one\r\nnew\r\ntwo\r\nthree\r\n");
    assert_eq!(apply_body(body, &[]), b"\r\n");
    assert_eq!(apply_body(b"a\n\n", &[Step::Copy(1, 5)]), b"a\r\n\r\n");
}

#[test]
fn applies_a_header_recipe() {
    let h = crate::message::Headers::parse(
        b"Subject: new\r\nFrom: a@b\r\nX-Mine: 1\r\nsubject: two\r\n\tfolded\r\n".to_vec(),
    );
    let fields: Vec<Field> = h.fields.iter().map(|f| (h.name(f), h.value(f))).collect();
    // Instances number bottom up: 1 is "two folded", 2 is "new".
    let r = Recipe {
        headers: vec![("subject".into(), vec![Step::Data(vec![b"old".to_vec()]), Step::Copy(2, 2)])],
        body: BodyRecipe::Unchanged,
    };
    assert_eq!(String::from_utf8(r.apply_headers(&fields)).unwrap(), "from: a@b\r\nsubject: new\r\nsubject: old\r\n");
}
