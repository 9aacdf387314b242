//! Option strings in getopt style, as indimail's programs take them in the environment
//! (`DKIMSIGNOPTIONS`, `DKSIGNOPTIONS`).

/// What is wrong with an option string; the text names the offending option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionError {
    #[error("unexpected argument {0:?}")]
    Unexpected(String),
    #[error("option -{0} needs a value")]
    NeedsValue(char),
    #[error("unknown option -{0}")]
    Unknown(char),
    /// A value the option does not take, e.g. `-z 9`; `what` names what the option sets.
    #[error("invalid {what} -{option} {value}")]
    Invalid { option: char, what: &'static str, value: String },
}

impl OptionError {
    pub(crate) fn invalid(option: char, what: &'static str, value: &str) -> OptionError {
        OptionError::Invalid { option, what, value: value.to_string() }
    }
}

/// Walks an option string in getopt style (`-ab -c value -cvalue`, words split at whitespace)
/// and calls `f(option, value)` for each option in order. Options in `with_value` take the rest
/// of their word or else the next word; the others get `None`. Errors: a word that is not
/// options, a missing value, or what `f` returns (an unknown option is `f`'s to refuse).
pub(crate) fn getopt<'a>(
    s: &'a str,
    with_value: &[char],
    mut f: impl FnMut(char, Option<&'a str>) -> Result<(), OptionError>,
) -> Result<(), OptionError> {
    let mut words = s.split_ascii_whitespace();
    while let Some(w) = words.next() {
        let Some(flags) = w.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(OptionError::Unexpected(w.to_string()));
        };
        for (pos, c) in flags.char_indices() {
            if !with_value.contains(&c) {
                f(c, None)?;
                continue;
            }
            let rest = &flags[pos + c.len_utf8()..];
            let arg = if !rest.is_empty() { rest } else { words.next().ok_or(OptionError::NeedsValue(c))? };
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
        let text = |r: Result<(), OptionError>| r.unwrap_err().to_string();
        assert_eq!(text(getopt("-ac", &['c'], |_, _| Ok(()))), "option -c needs a value");
        assert_eq!(text(getopt("-a b", &[], |_, _| Ok(()))), "unexpected argument \"b\"");
        assert_eq!(getopt("-ab", &[], |c, _| Err(OptionError::Unknown(c))), Err(OptionError::Unknown('a')));
        assert_eq!(OptionError::invalid('z', "hash", "9").to_string(), "invalid hash -z 9");
    }
}
