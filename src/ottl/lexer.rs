//! The collector's OTTL lexer: at each position the first matching rule of the grammar's token
//! list wins (not the longest match), and whitespace between tokens is dropped.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Bytes,
    Float,
    Int,
    String,
    Nil,
    Not,
    Or,
    And,
    Compare,
    AddSub,
    MulDiv,
    Bool,
    Equal,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Colon,
    Comma,
    Dot,
    LBracket,
    RBracket,
    Uppercase,
    Lowercase,
    End,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Byte range in the text.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    /// Byte offset of the offending character.
    pub offset: usize,
    pub message: String,
}

/// Byte classes of the lexer's rules, one table lookup per byte.
const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
const UNDERSCORE: u8 = 8;
const WORD: u8 = LOWER | UPPER | DIGIT | UNDERSCORE;

static CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        classes[byte] = match byte as u8 {
            b'a'..=b'z' => LOWER,
            b'A'..=b'Z' => UPPER,
            b'0'..=b'9' => DIGIT,
            b'_' => UNDERSCORE,
            _ => 0,
        };
        byte += 1;
    }
    classes
};

/// Where the run of bytes in `classes` that starts at `at` ends.
fn run_of(bytes: &[u8], mut at: usize, classes: u8) -> usize {
    while at < bytes.len() && CLASSES[usize::from(bytes[at])] & classes != 0 {
        at += 1;
    }
    at
}

fn is_word(byte: u8) -> bool {
    CLASSES[usize::from(byte)] & WORD != 0
}

/// Splits `text` into `tokens` (emptied first), ending with one `End` token. A token's first
/// byte decides which of the grammar's rules can match there, so each position is tried against
/// those rules only, in the grammar's order.
pub(crate) fn tokenize(text: &str, tokens: &mut Vec<Token>) -> Result<(), LexError> {
    let bytes = text.as_bytes();
    tokens.clear();
    // Statements average three to four bytes a token; a huge text grows the vector instead.
    tokens.reserve((bytes.len() / 3).min(256) + 1);
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        let (kind, end) = match byte {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                at += 1;
                continue;
            }
            b'"' => (TokenKind::String, string_end(text, at)?),
            b'a'..=b'z' => lowercase(text, at),
            b'A'..=b'Z' => (
                TokenKind::Uppercase,
                run_of(bytes, at + 1, UPPER | DIGIT | UNDERSCORE),
            ),
            b'0'..=b'9' | b'.' => number_or_dot(bytes, at),
            b'=' | b'!' | b'<' | b'>' if bytes.get(at + 1) == Some(&b'=') => {
                (TokenKind::Compare, at + 2)
            }
            b'<' | b'>' => (TokenKind::Compare, at + 1),
            b'=' => (TokenKind::Equal, at + 1),
            b'+' | b'-' => (TokenKind::AddSub, at + 1),
            b'/' | b'*' => (TokenKind::MulDiv, at + 1),
            b'(' => (TokenKind::LParen, at + 1),
            b')' => (TokenKind::RParen, at + 1),
            b'{' => (TokenKind::LBrace, at + 1),
            b'}' => (TokenKind::RBrace, at + 1),
            b':' => (TokenKind::Colon, at + 1),
            b',' => (TokenKind::Comma, at + 1),
            b'[' => (TokenKind::LBracket, at + 1),
            b']' => (TokenKind::RBracket, at + 1),
            _ => return Err(unexpected_character(text, at)),
        };
        tokens.push(Token {
            kind,
            start: at,
            end,
        });
        at = end;
    }
    tokens.push(Token {
        kind: TokenKind::End,
        start: bytes.len(),
        end: bytes.len(),
    });
    Ok(())
}

#[cold]
fn unexpected_character(text: &str, at: usize) -> LexError {
    LexError {
        offset: at,
        message: format!(
            "unexpected character {:?}",
            text[at..].chars().next().unwrap_or(' ')
        ),
    }
}

fn digits(bytes: &[u8], at: usize) -> usize {
    run_of(bytes, at, DIGIT)
}

/// Where the double-quoted string at `at` ends (after its closing quote), if it is terminated
/// and its escapes decode.
fn string_end(text: &str, at: usize) -> Result<usize, LexError> {
    let bytes = text.as_bytes();
    let mut escaped = false;
    let mut end = at + 1;
    while end < bytes.len() {
        let Some(found) = memchr::memchr2(b'"', b'\\', &bytes[end..]) else {
            break;
        };
        end += found;
        match bytes[end] {
            // `\\.` takes the next character; skipping its first byte is enough, as the bytes
            // that continue a character are never a quote or a backslash.
            b'\\' => {
                escaped = true;
                end += 2;
            }
            _ => {
                end += 1;
                // Text without a backslash has nothing to decode, so it cannot be invalid.
                if escaped && let Err(problem) = unescape(&text[at + 1..end - 1]) {
                    return Err(LexError {
                        offset: at,
                        message: format!("invalid string {}: {problem}", &text[at..end]),
                    });
                }
                return Ok(end);
            }
        }
    }
    let rest: String = text[at..].chars().take(16).collect();
    Err(LexError {
        offset: at,
        message: format!("string starting {rest:?} is not terminated"),
    })
}

/// The token at a digit or a dot: Bytes `0x[a-fA-F0-9]+`, Float
/// `(\d+\.\d*|\d*\.\d+)([eE][-+]?\d+)?`, Int `\d+`, or else the dot itself.
fn number_or_dot(bytes: &[u8], at: usize) -> (TokenKind, usize) {
    if bytes[at] == b'0'
        && bytes.get(at + 1) == Some(&b'x')
        && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        let mut end = at + 2;
        while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
            end += 1;
        }
        return (TokenKind::Bytes, end);
    }
    let whole = digits(bytes, at);
    if bytes.get(whole) == Some(&b'.') {
        let fraction = digits(bytes, whole + 1);
        if whole > at || fraction > whole + 1 {
            let mut end = fraction;
            if matches!(bytes.get(end), Some(b'e' | b'E')) {
                let mut exponent = end + 1;
                if matches!(bytes.get(exponent), Some(b'+' | b'-')) {
                    exponent += 1;
                }
                let exponent_end = digits(bytes, exponent);
                if exponent_end > exponent {
                    end = exponent_end;
                }
            }
            return (TokenKind::Float, end);
        }
    }
    if whole > at {
        (TokenKind::Int, whole)
    } else {
        (TokenKind::Dot, at + 1)
    }
}

/// The token at a lowercase letter. Keywords are whole words (`\b(nil)\b` and the like); a name
/// runs on through digits and underscores but stops before an uppercase letter.
///
/// The name's run is read once: a keyword is a whole name of lowercase letters only (a digit or
/// underscore after its letters, or an uppercase letter after it, is no word boundary), so only
/// a short name with no word character after it and none before it is looked up.
fn lowercase(text: &str, at: usize) -> (TokenKind, usize) {
    const LONGEST_KEYWORD: usize = "false".len();
    let bytes = text.as_bytes();
    let end = run_of(bytes, at + 1, LOWER | DIGIT | UNDERSCORE);
    if end - at <= LONGEST_KEYWORD
        && (end == bytes.len() || !is_word(bytes[end]))
        && (at == 0 || !is_word(bytes[at - 1]))
        && let Some(kind) = keyword(&text[at..end])
    {
        return (kind, end);
    }
    (TokenKind::Lowercase, end)
}

/// The 1-based column, in characters, of the byte `offset` of `text`: tokens and syntax trees
/// keep byte offsets, and only an error needs its column.
pub(crate) fn char_column(text: &str, offset: usize) -> usize {
    text.char_indices()
        .take_while(|(start, _)| *start < offset)
        .count()
        + 1
}

/// The token a whole lowercase word is when it is one of the grammar's reserved words.
fn keyword(word: &str) -> Option<TokenKind> {
    match word {
        "nil" => Some(TokenKind::Nil),
        "not" => Some(TokenKind::Not),
        "or" => Some(TokenKind::Or),
        "and" => Some(TokenKind::And),
        "true" | "false" => Some(TokenKind::Bool),
        _ => None,
    }
}

/// Decodes the inside of a double-quoted string the way Go's `strconv.Unquote` does (the
/// collector's rule), except that a raw line break is allowed.
pub(crate) fn unescape(raw: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(backslash) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..backslash]);
        let mut chars = rest[backslash + 1..].chars();
        let Some(escape) = chars.next() else {
            return Err("it ends with a lone backslash".to_string());
        };
        let simple = match escape {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            rest = chars.as_str();
            continue;
        }
        let (count, radix) = match escape {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            other => {
                return Err(format!(
                    "\\{other} is not an escape (write \\\\{other} for a backslash)"
                ));
            }
        };
        let mut digits = String::new();
        if radix == 8 {
            digits.push(escape);
        }
        for _ in 0..count {
            match chars.next() {
                Some(d) if d.is_digit(radix) => digits.push(d),
                _ => return Err(format!("\\{escape} needs {count} more digits")),
            }
        }
        let value = u32::from_str_radix(&digits, radix).map_err(|e| e.to_string())?;
        match escape {
            'x' => out.push(value as u8),
            'u' | 'U' => {
                let c = char::from_u32(value)
                    .ok_or_else(|| format!("\\{escape}{digits} is not a valid character"))?;
                let mut buffer = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
            _ => {
                out.push(u8::try_from(value).map_err(|_| format!("\\{digits} is larger than 255"))?)
            }
        }
        rest = chars.as_str();
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keywords are the collector's reserved words (grammar.json), and only those.
    #[test]
    fn keywords_are_the_reserved_words_of_the_grammar() {
        let grammar = crate::ottl::grammar_facts();
        let reserved = grammar["keywords"]["reserved_words"]
            .as_array()
            .expect("reserved words");
        assert_eq!(reserved.len(), 6);
        for word in reserved {
            let word = word.as_str().expect("a word");
            assert!(keyword(word).is_some(), "{word}");
            let mut tokens = Vec::new();
            tokenize(word, &mut tokens).expect("lexes");
            assert_eq!(tokens[0].kind, keyword(word).expect("kind"));
        }
        for word in ["where", "set", "nils", "an", "orr", "notx", "span"] {
            assert_eq!(keyword(word), None, "{word}");
        }
        assert_eq!(keyword("true"), Some(TokenKind::Bool));
        assert_eq!(keyword("nil"), Some(TokenKind::Nil));
    }

    /// What Go's `strconv.Unquote` gives for the same insides of a double-quoted string.
    #[test]
    fn unescape_decodes_as_go_does() {
        let decoded: &[(&str, &[u8])] = &[
            ("", b""),
            ("plain", b"plain"),
            (r"a\\b", br"a\b"),
            (r#"say \"hi\""#, br#"say "hi""#),
            (r"\a\b\f\n\r\t\v", b"\x07\x08\x0c\n\r\t\x0b"),
            (r"^internal\\..*", br"^internal\..*"),
            (r"\x41\x7a", b"Az"),
            (r"\xff", b"\xff"),
            (r"\101\000", b"A\0"),
            (r"\u00e9 \U0001F600", "é 😀".as_bytes()),
            (r"ü\\ö", r"ü\ö".as_bytes()),
            (r"über\tall", "über\tall".as_bytes()),
        ];
        for (raw, expected) in decoded {
            assert_eq!(unescape(raw).as_deref(), Ok(*expected), "{raw}");
        }
        let refused = [
            (r"ends\", "it ends with a lone backslash"),
            (r"\q", r"\q is not an escape (write \\q for a backslash)"),
            (r"\x4", r"\x needs 2 more digits"),
            (r"\u12", r"\u needs 4 more digits"),
            (r"\777", r"\777 is larger than 255"),
            (r"\uD800", r"\uD800 is not a valid character"),
        ];
        for (raw, message) in refused {
            assert_eq!(unescape(raw), Err(message.to_string()), "{raw}");
        }
    }

    /// The collector's token rules (grammar.json), tried in order at each position with the text
    /// before it in view (for `\b`); the first to match wins and whitespace is dropped. The
    /// tokens up to where no rule matches, and that offset.
    fn reference_tokens(text: &str) -> (Vec<(TokenKind, usize, usize)>, Option<usize>) {
        static RULES: std::sync::LazyLock<Vec<(String, regex::Regex)>> =
            std::sync::LazyLock::new(|| {
                let grammar = crate::ottl::grammar_facts();
                grammar["tokens"]
                    .as_array()
                    .expect("token rules")
                    .iter()
                    .map(|rule| {
                        // Go's classes are ASCII-only; the `regex` crate's are Unicode.
                        let pattern = rule["pattern"]
                            .as_str()
                            .expect("pattern")
                            .replace(r"\b", r"(?-u:\b)")
                            .replace(r"\d", "[0-9]")
                            .replace(r"\s", r"[\t\n\x0C\r ]");
                        let name = rule["name"].as_str().expect("name").to_string();
                        (name, regex::Regex::new(&pattern).expect("a regex"))
                    })
                    .collect()
            });
        let mut tokens = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let Some((name, end)) = RULES.iter().find_map(|(name, rule)| {
                rule.find_at(text, at)
                    .filter(|found| found.start() == at && found.end() > at)
                    .map(|found| (name.as_str(), found.end()))
            }) else {
                return (tokens, Some(at));
            };
            let kind = match name {
                "whitespace" => None,
                "Bytes" => Some(TokenKind::Bytes),
                "Float" => Some(TokenKind::Float),
                "Int" => Some(TokenKind::Int),
                "String" => Some(TokenKind::String),
                "Nil" => Some(TokenKind::Nil),
                "OpNot" => Some(TokenKind::Not),
                "OpOr" => Some(TokenKind::Or),
                "OpAnd" => Some(TokenKind::And),
                "OpComparison" => Some(TokenKind::Compare),
                "OpAddSub" => Some(TokenKind::AddSub),
                "OpMultDiv" => Some(TokenKind::MulDiv),
                "Boolean" => Some(TokenKind::Bool),
                "Equal" => Some(TokenKind::Equal),
                "LParen" => Some(TokenKind::LParen),
                "RParen" => Some(TokenKind::RParen),
                "LBrace" => Some(TokenKind::LBrace),
                "RBrace" => Some(TokenKind::RBrace),
                "Colon" => Some(TokenKind::Colon),
                "Punct" => Some(match &text[at..end] {
                    "," => TokenKind::Comma,
                    "." => TokenKind::Dot,
                    "[" => TokenKind::LBracket,
                    _ => TokenKind::RBracket,
                }),
                "Uppercase" => Some(TokenKind::Uppercase),
                "Lowercase" => Some(TokenKind::Lowercase),
                other => panic!("a rule the lexer does not know: {other}"),
            };
            if let Some(kind) = kind {
                tokens.push((kind, at, end));
            }
            at = end;
        }
        tokens.push((TokenKind::End, text.len(), text.len()));
        (tokens, None)
    }

    const PIECES: &[&str] = &[
        "a",
        "z9",
        "_",
        "or",
        "and",
        "not",
        "nil",
        "true",
        "false",
        "where",
        "X",
        "Is",
        "Y_2",
        "0",
        "17",
        "0x1f",
        "0xg",
        ".",
        "5e3",
        "e",
        "E",
        "+",
        "-",
        "*",
        "/",
        "=",
        "==",
        "!",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ":",
        ",",
        "\"",
        "\\",
        r#""a\"b""#,
        r#""\x41""#,
        r#""\q""#,
        " ",
        "  ",
        "\t",
        "\n",
        "#",
        "é",
        "\\é",
        "\x0B",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]
        /// Token kinds and spans agree with the collector's rules applied one by one; where a
        /// string's escapes do not decode, the lexer refuses it at its opening quote.
        #[test]
        fn tokens_follow_the_grammar_rules(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..24)
        ) {
            let text = pieces.concat();
            let mut tokens = Vec::new();
            let lexed = tokenize(&text, &mut tokens)
                .map(|()| tokens.iter().map(|t| (t.kind, t.start, t.end)).collect::<Vec<_>>())
                .map_err(|error| error.offset);
            let (tokens, stuck) = reference_tokens(&text);
            let undecodable = tokens.iter().find(|(kind, start, end)| {
                *kind == TokenKind::String && unescape(&text[start + 1..end - 1]).is_err()
            });
            let expected = match (undecodable, stuck) {
                (Some((_, start, _)), _) => Err(*start),
                (None, Some(offset)) => Err(offset),
                (None, None) => Ok(tokens),
            };
            proptest::prop_assert_eq!(lexed, expected, "{:?}", text);
        }
    }
}
