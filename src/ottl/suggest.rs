//! "Did you mean" for near-miss names: the closest candidate by edit distance.

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `written`: equal but for case, or within about one edit per five
/// characters. Ties go to the first candidate. A candidate whose length differs from the written
/// name's by more than that is skipped unmeasured (the distance is at least the difference), so
/// a name of thousands of characters costs a length comparison per candidate, not a table of
/// its length times theirs.
pub(crate) fn closest<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let length = written.chars().count();
    let limit = (length / 5).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == written {
            continue;
        }
        let d = if candidate.eq_ignore_ascii_case(written) {
            0
        } else if candidate.chars().count().abs_diff(length) > limit {
            continue;
        } else {
            distance(written, candidate)
        };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `; did you mean "x"?` or nothing.
pub(crate) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!("; did you mean \"{s}\"?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_find_their_name_and_far_ones_none() {
        assert_eq!(closest("sett", ["set", "limit"]), Some("set"));
        assert_eq!(
            closest("ToUppercase", ["ToLowerCase", "ToUpperCase"]),
            Some("ToUpperCase")
        );
        assert_eq!(
            closest("span.nme", ["span.kind", "span.name"]),
            Some("span.name")
        );
        assert_eq!(closest("frobnicate", ["set", "limit"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn names_too_long_or_short_to_be_near_are_skipped() {
        // Within one edit per five characters, length included.
        assert_eq!(closest("span.nameee", ["span.name"]), Some("span.name"));
        assert_eq!(closest("span.nameeee", ["span.name"]), None);
        assert_eq!(closest("sp", ["span.name"]), None);
        // Multi-byte characters count as one each.
        assert_eq!(closest("spän.name", ["span.name"]), Some("span.name"));
        assert_eq!(closest("SPAN.NAME", ["span.name"]), Some("span.name"));
        assert_eq!(closest(&"a".repeat(60_000), ["set", "span.name"]), None);
    }
}
