//! Option strings in getopt style, as indimail's programs take them in the environment
//! (`DKIMSIGNOPTIONS`, `DKSIGNOPTIONS`).

/// Walks an option string in getopt style (`-ab -c value -cvalue`, words split at whitespace)
/// and calls `f(option, value)` for each option in order. Options in `with_value` take the rest
/// of their word or else the next word; the others get `None`. Errors: a word that is not
/// options, a missing value, or what `f` returns (an unknown option is `f`'s to refuse).
pub fn getopt<'a>(
    s: &'a str,
    with_value: &[char],
    mut f: impl FnMut(char, Option<&'a str>) -> Result<(), String>,
) -> Result<(), String> {
    let mut words = s.split_ascii_whitespace();
    while let Some(w) = words.next() {
        let Some(flags) = w.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(format!("unexpected argument {w:?}"));
        };
        for (pos, c) in flags.char_indices() {
            if !with_value.contains(&c) {
                f(c, None)?;
                continue;
            }
            let rest = &flags[pos + c.len_utf8()..];
            let arg = if !rest.is_empty() {
                rest
            } else {
                words.next().ok_or_else(|| format!("option -{c} needs a value"))?
            };
            f(c, Some(arg))?;
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getopt_words() {
        let mut seen = Vec::new();
        getopt("-ab -cx -c y\t-d", &['c'], |c, v| {
            seen.push((c, v));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [('a', None), ('b', None), ('c', Some("x")), ('c', Some("y")), ('d', None)]);
        assert_eq!(getopt("-ac", &['c'], |_, _| Ok(())), Err("option -c needs a value".to_string()));
        assert_eq!(getopt("-a b", &[], |_, _| Ok(())), Err("unexpected argument \"b\"".to_string()));
        assert_eq!(getopt("-ab", &[], |c, _| Err(format!("no -{c}"))), Err("no -a".to_string()));
    }
}
