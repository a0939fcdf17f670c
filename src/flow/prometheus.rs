//! A reader for the Prometheus text exposition format (0.0.4), as the collector serves it on
//! `:8888/metrics`. Only what flow health needs: sample name, labels (with escapes) and value.

use std::borrow::Cow;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
}

impl Sample<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    pub line: usize,
    pub problem: &'static str,
}

/// Parse every sample of `text`; comments and blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Sample<'_>>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |problem| ParseError {
            line: index + 1,
            problem,
        };
        samples.push(parse_line(line).map_err(fail)?);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<Sample<'_>, &'static str> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("a sample must start with a metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("a sample needs a value")?;
    let value = parse_value(value).ok_or("the value is not a number")?;
    // An optional timestamp may follow; nothing else may.
    if let Some(timestamp) = fields.next()
        && timestamp.parse::<i64>().is_err()
    {
        return Err("unexpected text after the value");
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp");
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Parse `name="value",…}` and return what follows the closing brace.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut Vec<(&'a str, Cow<'a, str>)>,
) -> Result<&'a str, &'static str> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("a label needs name=\"value\"")?;
        let name = rest[..eq].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("invalid label name");
        }
        rest = rest[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("a label value must be quoted")?;
        let (value, after) = parse_quoted(rest)?;
        labels.push((name, value));
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by commas");
        }
    }
}

/// Read a label value up to its closing quote, undoing `\\`, `\"` and `\n`.
fn parse_quoted(text: &str) -> Result<(Cow<'_, str>, &str), &'static str> {
    let bytes = text.as_bytes();
    let mut index = 0;
    let mut owned: Option<String> = None;
    let mut start = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => {
                let value = match owned {
                    Some(mut buffer) => {
                        buffer.push_str(&text[start..index]);
                        Cow::Owned(buffer)
                    }
                    None => Cow::Borrowed(&text[..index]),
                };
                return Ok((value, &text[index + 1..]));
            }
            b'\\' => {
                let buffer = owned.get_or_insert_with(String::new);
                buffer.push_str(&text[start..index]);
                let escaped = *bytes.get(index + 1).ok_or("unterminated escape")?;
                buffer.push(match escaped {
                    b'\\' => '\\',
                    b'"' => '"',
                    b'n' => '\n',
                    _ => return Err("unknown escape in a label value"),
                });
                index += 2;
                start = index;
            }
            _ => index += 1,
        }
    }
    Err("unterminated label value")
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_labels_values_and_timestamps() {
        let samples = parse(
            "# HELP x help\n# TYPE x counter\nx_total 3\ny{a=\"1\",b=\"two\"} 4.5 1700000000000\nz{} +Inf\n\n",
        )
        .unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(
            samples[0],
            Sample {
                name: "x_total",
                labels: vec![],
                value: 3.0
            }
        );
        assert_eq!(samples[1].label("b"), Some("two"));
        assert_eq!(samples[1].value, 4.5);
        assert!(samples[2].value.is_infinite());
    }

    #[test]
    fn unescapes_label_values() {
        let samples =
            parse(r#"m{path="C:\\dir",quote="say \"hi\"",nl="a\nb",comma="x,y}z"} 1"#).unwrap();
        assert_eq!(samples[0].label("path"), Some(r"C:\dir"));
        assert_eq!(samples[0].label("quote"), Some(r#"say "hi""#));
        assert_eq!(samples[0].label("nl"), Some("a\nb"));
        assert_eq!(samples[0].label("comma"), Some("x,y}z"));
    }

    #[test]
    fn reports_broken_lines_with_their_number() {
        assert_eq!(parse("ok 1\nbroken{a=\"1\" 2\n").unwrap_err().line, 2);
        assert!(parse("m{a=1} 2").is_err());
        assert!(parse("m{a=\"1\"} two").is_err());
        assert!(parse("m 1 2 3").is_err());
        assert!(parse("{a=\"1\"} 2").is_err());
        assert!(parse("m{a=\"\\x\"} 2").is_err());
    }
}
