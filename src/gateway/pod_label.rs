//! Pod labels as span attributes (docs/reference/gateway-enrichment.md#pod-labels): the keys an
//! operator names with `--extract-pod-label`, checked as Kubernetes checks label keys, so that
//! what reaches the collector config is a key or a plain prefix and never a pattern.

/// A pod label, or every pod label with a prefix, that the gateway adds to spans
/// (docs/reference/gateway-enrichment.md#pod-labels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodLabel {
    /// `team`: exactly this label.
    Key(String),
    /// `app.kubernetes.io/*`: every label whose key starts with this text.
    Prefix(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{text:?} is not a pod label key or KEY_PREFIX*: {reason}")]
pub struct PodLabelError {
    text: String,
    reason: &'static str,
}

impl std::str::FromStr for PodLabel {
    type Err = PodLabelError;

    /// Label keys as Kubernetes takes them: an optional DNS-subdomain prefix and `/`, then a
    /// name of at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter
    /// or digit. A trailing `*` takes every key that starts with the text before it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| PodLabelError {
            text: text.to_string(),
            reason,
        };
        let (key, prefix) = match text.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (text, false),
        };
        if key.contains('*') {
            return Err(error("`*` may only end a prefix"));
        }
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        {
            return Err(error(
                "only letters, digits, '-', '_', '.' and one '/' may appear",
            ));
        }
        let (domain, name) = match key.split_once('/') {
            Some((domain, name)) => (Some(domain), name),
            None => (None, key),
        };
        if name.contains('/') {
            return Err(error("a key has at most one '/'"));
        }
        if let Some(domain) = domain {
            let label_ok = |label: &str| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            };
            if domain.len() > 253 || !domain.split('.').all(label_ok) {
                return Err(error(
                    "the part before '/' must be a DNS subdomain (lowercase letters, digits, '-', '.')",
                ));
            }
        }
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if name.len() > 63 {
            return Err(error(
                "the name after the prefix is longer than 63 characters",
            ));
        }
        if prefix {
            if !name.is_empty() && !edge_ok(name.chars().next()) {
                return Err(error("the name must start with a letter or digit"));
            }
            return Ok(PodLabel::Prefix(key.to_string()));
        }
        if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
            return Err(error("the name must start and end with a letter or digit"));
        }
        Ok(PodLabel::Key(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes_are_checked_as_kubernetes_checks_label_keys() {
        let key = |k: &str| Ok(PodLabel::Key(k.into()));
        let prefix = |p: &str| Ok(PodLabel::Prefix(p.into()));
        let long_name = "a".repeat(64);
        let long_domain = format!("{}.io/name", "a".repeat(64));
        let table: Vec<(&str, Result<PodLabel, &str>)> = vec![
            ("team", key("team")),
            ("app.kubernetes.io/name", key("app.kubernetes.io/name")),
            ("Team_1.x-y", key("Team_1.x-y")),
            ("app.kubernetes.io/*", prefix("app.kubernetes.io/")),
            ("team-*", prefix("team-")),
            ("*", prefix("")),
            (
                "",
                Err("the name must start and end with a letter or digit"),
            ),
            (
                "-team",
                Err("the name must start and end with a letter or digit"),
            ),
            (
                "team.",
                Err("the name must start and end with a letter or digit"),
            ),
            (
                "team name",
                Err("only letters, digits, '-', '_', '.' and one '/' may appear"),
            ),
            (
                "tea$m",
                Err("only letters, digits, '-', '_', '.' and one '/' may appear"),
            ),
            ("a*b", Err("`*` may only end a prefix")),
            ("a**", Err("`*` may only end a prefix")),
            ("a/b/c", Err("a key has at most one '/'")),
            (
                "Example.com/name",
                Err(
                    "the part before '/' must be a DNS subdomain (lowercase letters, digits, '-', '.')",
                ),
            ),
            (
                "/name",
                Err(
                    "the part before '/' must be a DNS subdomain (lowercase letters, digits, '-', '.')",
                ),
            ),
            (
                &long_domain,
                Err(
                    "the part before '/' must be a DNS subdomain (lowercase letters, digits, '-', '.')",
                ),
            ),
            (
                &long_name,
                Err("the name after the prefix is longer than 63 characters"),
            ),
            (
                "example.com/-*",
                Err("the name must start with a letter or digit"),
            ),
        ];
        for (text, expected) in table {
            let parsed = text.parse::<PodLabel>().map_err(|e| e.reason);
            assert_eq!(parsed, expected, "{text:?}");
        }
        assert_eq!(
            "a b".parse::<PodLabel>().unwrap_err().to_string(),
            r#""a b" is not a pod label key or KEY_PREFIX*: only letters, digits, '-', '_', '.' and one '/' may appear"#
        );
    }
}
