//! Properties of the OTTL parser and checker: no input makes them panic or recurse without
//! bound, statements built from the function tables are accepted, and printing a parsed text
//! gives text that parses to the same tree.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use telemetry_manager::ottl::parser::{Arena, MAX_NESTING, parse_condition, parse_statement};
use telemetry_manager::ottl::{check_filter, check_transform};

fn check_everywhere(text: &str) {
    let owned = text.to_string();
    let _ = check_transform(&[], std::slice::from_ref(&owned));
    let _ = check_transform(
        std::slice::from_ref(&owned),
        &[r#"set(span.name, "x")"#.to_string()],
    );
    let _ = check_filter(std::slice::from_ref(&owned));
}

/// When `text` parses, its printout parses to the same tree and prints the same.
fn printout_is_stable(text: &str) {
    let arena = Arena::new();
    if let Ok(statement) = parse_statement(text, &arena) {
        let printed = statement.to_string();
        let again = parse_statement(&printed, &arena)
            .unwrap_or_else(|e| panic!("{printed:?} from {text:?}: {e:?}"));
        assert_eq!(again, statement, "{text:?} printed as {printed:?}");
        assert_eq!(again.to_string(), printed);
    }
    if let Ok(condition) = parse_condition(text, &arena) {
        let printed = condition.to_string();
        let again = parse_condition(&printed, &arena)
            .unwrap_or_else(|e| panic!("{printed:?} from {text:?}: {e:?}"));
        assert_eq!(again, condition, "{text:?} printed as {printed:?}");
        assert_eq!(again.to_string(), printed);
    }
}

const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    ":",
    "=",
    "==",
    "!=",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "and",
    "or",
    "not",
    "where",
    "nil",
    "true",
    "false",
    "span",
    "name",
    "attributes",
    "resource",
    "spanevent",
    "set",
    "delete_key",
    "IsMatch",
    "Concat",
    "Is",
    "Match",
    "SHA256",
    "SPAN_KIND_SERVER",
    "\"a\"",
    "\"\\\\d\"",
    "1",
    "007",
    "1.5",
    ".5",
    "0x01",
    "0x1",
    "x",
    "Y",
    "_",
    ";",
    "é",
    "\"\n\"",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|tokens| tokens.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        check_everywhere(&text);
        printout_is_stable(&text);
    }

    #[test]
    fn token_soups_never_panic_and_print_stably(text in token_soup()) {
        check_everywhere(&text);
        printout_is_stable(&text);
    }

    #[test]
    fn token_soups_without_spaces_never_panic(text in token_soup().prop_map(|t| t.replace(' ', ""))) {
        check_everywhere(&text);
        printout_is_stable(&text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = 100_000;
    let openers = ["(", "[", "{\"a\": ", "Concat(", "span.attributes[", "not ("];
    for opener in openers {
        let text = format!("set(span.name, {})", opener.repeat(deep));
        check_everywhere(&text);
        let condition = format!("{}span.name == \"a\"", opener.repeat(deep));
        let error = check_filter(&[condition]).expect_err("too deep");
        assert!(
            error.message.contains("nesting is deeper than")
                || error.message.contains("unexpected"),
            "{opener}: {error}"
        );
    }
    let nested = format!(
        "{}span.name == \"a\"{}",
        "(".repeat(MAX_NESTING - 1),
        ")".repeat(MAX_NESTING - 1)
    );
    check_filter(&[nested]).expect("nesting within the limit is accepted");
    let too_deep = format!(
        "{}span.name == \"a\"{}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    let error = check_filter(&[too_deep]).expect_err("beyond the limit");
    assert_eq!(
        error.message,
        format!("nesting is deeper than {MAX_NESTING} levels")
    );
}

const THREE_MIB: usize = 3 << 20;

#[test]
fn inputs_of_three_mebibytes_are_checked_in_one_pass() {
    let repeat = |unit: &str| unit.repeat(THREE_MIB / unit.len());
    let chain = format!("span.name == \"a\"{}", repeat(" or span.kind == 2"));
    check_filter(&[chain]).expect("a long or-chain is valid");
    let sum = format!("span.kind == 1{}", repeat(" + 1"));
    check_filter(&[sum]).expect("a long sum is valid");
    let list = format!("set(span.attributes[\"x\"], [1{}])", repeat(", 1"));
    check_transform(&[], &[list]).expect("a long list is valid");
    let string = format!("set(span.name, \"{}\")", repeat("ab"));
    check_transform(&[], &[string]).expect("a long string is valid");
    let unterminated = format!("set(span.name, \"{}", repeat("\\\""));
    check_transform(&[], &[unterminated]).expect_err("never terminated");
    let soup = repeat("( [ { , . == and ");
    check_everywhere(&soup);
}

/// What each argument kind of functions.json accepts, written as OTTL, for the `span` context.
fn spellings(function: &str, param: &Value) -> Vec<String> {
    let name = param["name"].as_str().unwrap_or_default();
    let strings = |values: &[&str]| values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>();
    match param["arg_kind"].as_str().unwrap_or_default() {
        "path" => vec![
            "span.attributes".into(),
            "span.name".into(),
            "span.attributes[\"k\"][0]".into(),
        ],
        "function_name" => vec!["Murmur3Hash".into(), "IsMatch".into()],
        "int_literal" => vec!["1".into(), "007".into()],
        "bool_literal" => vec!["true".into(), "false".into()],
        "string_literal" => match name {
            "strategy" => strings(&["insert", "update", "upsert"]),
            "mode" if function == "ParseCSV" => strings(&["strict", "lazyQuotes", "ignoreQuotes"]),
            "mode" => strings(&["value", "key"]),
            "to_case" => strings(&["lower", "snake"]),
            "order" => strings(&["asc", "desc"]),
            _ => strings(&["x", "%s"]),
        },
        "list" => match param["element"]["arg_kind"].as_str().unwrap_or_default() {
            "value" => vec!["[span.name]".into(), "[]".into()],
            _ => vec!["[\"a\"]".into(), "[]".into()],
        },
        _ => {
            let mut values = vec![
                "span.name".to_string(),
                "span.attributes[\"k\"]".to_string(),
                "Concat([\"a\", span.name], \"\")".to_string(),
                "span.start_time_unix_nano + 1".to_string(),
            ];
            if matches!(name, "pattern" | "regex_pattern") {
                values.push("\"(?P<k>a+)\"".to_string());
            } else {
                let literal = match param["getter"].as_str().unwrap_or_default() {
                    "StringGetter"
                    | "StringLikeGetter"
                    | "IntLikeGetter"
                    | "ByteSliceLikeGetter"
                    | "Getter" => "\"12\"",
                    "IntGetter" => "-3",
                    "FloatGetter" => "1.5",
                    "FloatLikeGetter" => "\"1.5\"",
                    "BoolGetter" => "true",
                    "BoolLikeGetter" => "\"true\"",
                    "PMapGetter" => "{\"a\": [1]}",
                    "PSliceGetter" => "[1, \"a\"]",
                    _ => "span.start_time",
                };
                values.push(literal.to_string());
            }
            values
        }
    }
}

/// `(function, argument count, choices)` with the choices resolved into OTTL text.
fn call_text(function: &Value, count: usize, choices: &[usize], named_from: usize) -> String {
    let params = function["params"].as_array().cloned().unwrap_or_default();
    let mut args = Vec::new();
    for (i, param) in params.iter().take(count).enumerate() {
        let options = spellings(function["name"].as_str().unwrap_or_default(), param);
        let value = &options[choices[i] % options.len()];
        let form = param["named_argument_forms"]
            .as_array()
            .and_then(|f| f.first())
            .and_then(Value::as_str);
        match form {
            Some(form) if i >= named_from => args.push(format!("{form}={value}")),
            _ => args.push(value.clone()),
        }
    }
    format!(
        "{}({})",
        function["name"].as_str().unwrap_or_default(),
        args.join(", ")
    )
}

fn span_functions(surface: &str) -> Vec<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ottl-0.151/functions.json");
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("functions.json"))
            .expect("json");
    facts["surfaces"][surface]["contexts"]["span"]["functions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Named arguments are used from `named_from` on only when every later parameter can be named.
fn valid_named_from(function: &Value, count: usize, named_from: usize) -> usize {
    let params = function["params"].as_array().cloned().unwrap_or_default();
    let nameable = params.iter().take(count).skip(named_from).all(|p| {
        p["named_argument_forms"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    });
    if nameable { named_from } else { count }
}

fn generated(surface: &'static str) -> impl Strategy<Value = (String, String)> {
    let functions = span_functions(surface);
    (
        prop::sample::select(functions),
        prop::collection::vec(0usize..8, 8),
        0usize..8,
        0usize..8,
    )
        .prop_map(|(function, choices, extra, named_from)| {
            let params = function["params"].as_array().map_or(0, Vec::len);
            let required = function["params"]
                .as_array()
                .map_or(0, |p| p.iter().filter(|p| p["optional"] != true).count());
            let count = required + extra % (params - required + 1);
            let named_from = valid_named_from(&function, count, named_from);
            let name = function["name"].as_str().unwrap_or_default().to_string();
            (name, call_text(&function, count, &choices, named_from))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn statements_built_from_the_tables_are_accepted((name, call) in generated("transform.trace_statements")) {
        let statement = if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            format!("{call} where span.name != \"\"")
        } else {
            format!("set(span.attributes[\"out\"], {call})")
        };
        let result = check_transform(&[], std::slice::from_ref(&statement));
        prop_assert!(result.is_ok(), "{statement}: {result:?}");
        printout_is_stable(&statement);
    }

    #[test]
    fn conditions_built_from_the_tables_are_accepted((name, call) in generated("filter.trace_conditions")) {
        prop_assume!(name.starts_with(|c: char| c.is_ascii_uppercase()));
        let condition = format!("{call} != nil and span.name != \"\"");
        let result = check_filter(std::slice::from_ref(&condition));
        prop_assert!(result.is_ok(), "{condition}: {result:?}");
        printout_is_stable(&condition);
    }
}
