//! Every verdict the 0.151.0 collector gave in `tests/fixtures/ottl-0.151/` (the grammar
//! experiments and collector-verdicts.tsv) is the checker's verdict too, but for the one
//! deliberate difference: filter conditions in the spanevent context are refused.

use std::path::Path;

use telemetry_manager::ottl::{Context, OttlError, SPANEVENT_FILTER_MESSAGE};
use telemetry_manager::ottl::{check_filter, check_filter_in, check_transform, check_transform_in};

/// Filter conditions the collector accepts in the spanevent context and the checker refuses.
const SPANEVENT_FILTERS: [&str; 3] = [
    r#"spanevent.name == "a""#,
    r#"spanevent.name == "a" and span.name == "b""#,
    r#"spanevent.name == "x""#,
];

/// The statement the collector's experiments put next to a tested transform condition.
const GROUP_STATEMENT: &str = r#"set(span.attributes["matched"], true)"#;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ottl-0.151")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `text` through the checker as the collector ran it on `surface` (`ts`, `tc`, `fc`,
/// optionally `@context`).
fn check(surface: &str, text: &str) -> Result<(), OttlError> {
    let text = text.to_string();
    let (surface, context) = match surface.split_once('@') {
        Some((surface, context)) => (
            surface,
            Some(Context::from_name(context).expect("a trace context")),
        ),
        None => (surface, None),
    };
    let statement = vec![GROUP_STATEMENT.to_string()];
    match (surface, context) {
        ("ts", None) => check_transform(&[], &[text]),
        ("ts", Some(c)) => check_transform_in(c, &[], &[text]),
        ("tc", None) => check_transform(&[text], &statement),
        ("tc", Some(c)) => check_transform_in(c, &[text], &statement),
        ("fc", None) => check_filter(&[text]),
        ("fc", Some(c)) => check_filter_in(c, &[text]),
        (other, _) => panic!("unknown surface {other}"),
    }
}

struct Case {
    source: String,
    surface: String,
    text: String,
    accept: bool,
    collector_error: String,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let grammar: serde_json::Value =
        serde_json::from_str(&fixture("grammar.json")).expect("grammar.json");
    for (i, experiment) in grammar["experiments"]
        .as_array()
        .expect("experiments")
        .iter()
        .enumerate()
    {
        cases.push(Case {
            source: format!("grammar.json experiment {i}"),
            surface: experiment["surface"].as_str().expect("surface").to_string(),
            text: experiment["text"].as_str().expect("text").to_string(),
            accept: experiment["verdict"].as_str() == Some("accept"),
            collector_error: experiment["in_process_error"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        });
    }
    for (i, line) in fixture("collector-verdicts.tsv").lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split('\t').collect();
        cases.push(Case {
            source: format!("collector-verdicts.tsv line {}", i + 1),
            surface: columns[0].to_string(),
            text: columns[2].to_string(),
            accept: columns[1] == "accept",
            collector_error: columns.get(3).copied().unwrap_or_default().to_string(),
        });
    }
    cases
}

#[test]
fn the_checker_gives_the_collectors_verdicts() {
    let cases = cases();
    assert!(
        cases.len() > 340,
        "all experiments and verdicts were read: {}",
        cases.len()
    );
    let mut mismatches = Vec::new();
    let mut exceptions = 0;
    for case in &cases {
        let result = check(&case.surface, &case.text);
        let exception = case.surface == "fc" && SPANEVENT_FILTERS.contains(&case.text.as_str());
        if exception {
            exceptions += 1;
            assert!(
                case.accept,
                "{}: the collector accepts {:?}",
                case.source, case.text
            );
            match &result {
                Err(error) if error.message == SPANEVENT_FILTER_MESSAGE => continue,
                other => mismatches.push(format!(
                    "{} {} {:?}: expected the spanevent refusal, got {other:?}",
                    case.source, case.surface, case.text
                )),
            }
            continue;
        }
        match (&result, case.accept) {
            (Ok(()), true) | (Err(_), false) => {}
            (Ok(()), false) => mismatches.push(format!(
                "{} {} {:?}: accepted, the collector refuses: {}",
                case.source, case.surface, case.text, case.collector_error
            )),
            (Err(error), true) => mismatches.push(format!(
                "{} {} {:?}: refused ({error}), the collector accepts",
                case.source, case.surface, case.text
            )),
        }
    }
    assert_eq!(
        exceptions,
        SPANEVENT_FILTERS.len(),
        "each listed exception is in the facts"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} verdicts differ from the collector's:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}
