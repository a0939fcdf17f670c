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
        let next = bytes.get(at + 1).copied();
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
            b'=' | b'!' | b'<' | b'>' if next == Some(b'=') => (TokenKind::Compare, at + 2),
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
            _ => {
                return Err(LexError {
                    offset: at,
                    message: format!(
                        "unexpected character {:?}",
                        text[at..].chars().next().unwrap_or(' ')
                    ),
                });
            }
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
        match bytes[end] {
            b'\\' => {
                escaped = true;
                end += 1;
                // `\\.` takes one whole character.
                while end + 1 < bytes.len() && (bytes[end + 1] & 0xC0) == 0x80 {
                    end += 1;
                }
                end += 1;
            }
            b'"' => {
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
            _ => end += 1,
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
fn lowercase(text: &str, at: usize) -> (TokenKind, usize) {
    let bytes = text.as_bytes();
    let word_end = run_of(bytes, at + 1, LOWER);
    let boundary_before = at == 0 || !is_word(bytes[at - 1]);
    let boundary_after = word_end == bytes.len() || !is_word(bytes[word_end]);
    if boundary_before
        && boundary_after
        && let Some(kind) = keyword(&text[at..word_end])
    {
        return (kind, word_end);
    }
    (
        TokenKind::Lowercase,
        run_of(bytes, word_end, LOWER | DIGIT | UNDERSCORE),
    )
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
}
