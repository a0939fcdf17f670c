//! A quick yes for the regular expressions users usually write (`^GET /api/.*`, `token=[^&]+`,
//! `/users/[0-9]+`): literals, `.`, anchors, alternation, plain groups, `* + ?` (also lazy),
//! bracket classes of literal characters and ascending ranges, and escapes of metacharacters or
//! of `d s w D S W`. Everything else (counted repetition, flags, named groups, Unicode and POSIX
//! classes, set operations, other escapes) is left to the full parser, which also explains
//! errors: this only ever says "surely valid" or "ask the parser". A property test holds it to
//! the full parser's verdict.

/// Longer patterns and deeper groups go to the full parser.
const MAX_LENGTH: usize = 1024;
const MAX_DEPTH: usize = 32;

/// Whether the syntax above shows `pattern` valid without the full parser.
pub(crate) fn surely_valid(pattern: &str) -> bool {
    if pattern.len() > MAX_LENGTH {
        return false;
    }
    let bytes = pattern.as_bytes();
    let mut depth = 0;
    // Whether the last thing read can take a quantifier: a literal, `.`, an escape, a class or
    // a group.
    let mut repeatable = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        at += 1;
        match byte {
            b'*' | b'+' | b'?' => {
                if !repeatable {
                    return false;
                }
                if bytes.get(at) == Some(&b'?') {
                    at += 1;
                }
                repeatable = false;
            }
            b'(' => {
                if bytes.get(at) == Some(&b'?') || depth == MAX_DEPTH {
                    return false;
                }
                depth += 1;
                repeatable = false;
            }
            b')' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                repeatable = true;
            }
            b'|' | b'^' | b'$' => repeatable = false,
            b'\\' => {
                match bytes.get(at) {
                    Some(escaped) if is_meta(*escaped) || b"dswDSW".contains(escaped) => at += 1,
                    _ => return false,
                }
                repeatable = true;
            }
            b'[' => match class_end(bytes, at) {
                Some(end) => {
                    at = end;
                    repeatable = true;
                }
                None => return false,
            },
            b']' | b'{' | b'}' => return false,
            _ => repeatable = true,
        }
    }
    depth == 0
}

fn is_meta(byte: u8) -> bool {
    b"\\.+*?()|[]{}^$".contains(&byte)
}

/// Where a bracket class opened just before `at` ends (after its `]`), if it is one of the
/// plain classes described above.
fn class_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    if bytes.get(at) == Some(&b'^') {
        at += 1;
    }
    let mut items = 0;
    loop {
        let byte = *bytes.get(at)?;
        match byte {
            b']' if items > 0 => return Some(at + 1),
            b'\\' => {
                let escaped = *bytes.get(at + 1)?;
                if !(is_meta(escaped) || escaped == b'-' || b"dswDSW".contains(&escaped)) {
                    return None;
                }
                at += 2;
            }
            // `&&` and `~~` are set operations in the `regex` crate.
            b'&' | b'~' if bytes.get(at + 1) == Some(&byte) => return None,
            _ if is_plain_class_member(byte) => {
                if bytes.get(at + 1) == Some(&b'-') && bytes.get(at + 2) != Some(&b']') {
                    let high = *bytes.get(at + 2)?;
                    if !is_plain_class_member(high) || high < byte {
                        return None;
                    }
                    at += 3;
                } else {
                    at += 1;
                }
            }
            _ => return None,
        }
        items += 1;
    }
}

/// ASCII characters that mean themselves in a class in both RE2 and the `regex` crate (which
/// reads `[` as a nested class), when not doubled.
fn is_plain_class_member(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"[]\\^-".contains(&byte) || byte == b' '
}

#[cfg(test)]
mod tests {
    use super::surely_valid;
    use proptest::prelude::*;

    fn parser_accepts(pattern: &str) -> bool {
        regex_syntax::Parser::new().parse(pattern).is_ok()
    }

    #[test]
    fn patterns_users_write_need_no_parser() {
        for pattern in [
            "^GET /api/.*",
            "token=[^&]+",
            "/users/[0-9]+",
            ".*/metrics",
            r"^internal\..*",
            "^kube-probe/.*",
            "(GET|POST) /v[12]/.+?$",
            r"\d+\s\w",
            "[a-zA-Z_][a-zA-Z0-9_]*",
            "",
            "ü+",
        ] {
            assert!(surely_valid(pattern), "{pattern}");
            assert!(parser_accepts(pattern), "{pattern}");
        }
    }

    #[test]
    fn unusual_or_invalid_patterns_go_to_the_parser() {
        for pattern in [
            "*a",
            "a**",
            "(",
            ")",
            "[",
            "[]",
            "[z-a]",
            "a{2}",
            "(?i)a",
            r"\p{Greek}",
            r"\b",
            "[[:alpha:]]",
            "[a&&b]",
            "[a--b]",
            r"\x41",
            "(?P<n>a)",
            "a|*",
            "^*",
            "()*+",
        ] {
            assert!(!surely_valid(pattern), "{pattern}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Never a yes the full parser would refuse, over an alphabet rich in metacharacters.
        #[test]
        fn a_yes_is_a_yes_of_the_parser(pattern in r"[a-c0-9\\.+*?()|\[\]{}^$&~:=/ _-]{0,24}") {
            if surely_valid(&pattern) {
                prop_assert!(parser_accepts(&pattern), "{pattern:?}");
            }
        }

        #[test]
        fn a_yes_is_a_yes_of_the_parser_for_classes(pattern in r"\[\^?[a-c&~!\-\]\[\\.^:]{0,8}\]?[*+?]?") {
            if surely_valid(&pattern) {
                prop_assert!(parser_accepts(&pattern), "{pattern:?}");
            }
        }

        #[test]
        fn a_yes_is_a_yes_of_the_parser_for_any_text(pattern in ".{0,24}") {
            if surely_valid(&pattern) {
                prop_assert!(parser_accepts(&pattern), "{pattern:?}");
            }
        }
    }
}
