//! One row per kind of error the OTTL checker reports: the exact message, the item and the
//! column of the offending token, and the suggestion where a name is close.

use telemetry_manager::ottl::{
    Context, Item, OttlError, check_filter, check_filter_in, check_transform,
};

fn statement(text: &str) -> OttlError {
    check_transform(&[], &[text.to_string()]).expect_err(text)
}

fn filter(text: &str) -> OttlError {
    check_filter(&[text.to_string()]).expect_err(text)
}

fn at(item: Item, column: usize, message: &str) -> OttlError {
    OttlError {
        item,
        column,
        message: message.to_string(),
    }
}

const S0: Item = Item::Statement(0);
const C0: Item = Item::Condition(0);

#[test]
fn unknown_names_carry_a_suggestion_when_one_is_close() {
    let rows = [
        (
            r#"sett(span.attributes["env"], "prod")"#,
            1,
            r#"unknown function "sett"; did you mean "set"?"#,
        ),
        (
            r#"set(span.attributes["x"], ToUppercase(span.name))"#,
            27,
            r#"unknown function "ToUppercase"; did you mean "ToUpperCase"?"#,
        ),
        (
            r#"frobnicate(span.name)"#,
            1,
            r#"unknown function "frobnicate""#,
        ),
        (
            r#"set(span.nme, "x")"#,
            5,
            r#"unknown path "span.nme" in the span context; did you mean "span.name"?"#,
        ),
        // Spaces around the dots: the same path, found without the one-piece fast path.
        (
            r#"set(span . nme, "x")"#,
            5,
            r#"unknown path "span.nme" in the span context; did you mean "span.name"?"#,
        ),
        (
            r#"set(span . attributes["x"] . y, "x")"#,
            30,
            r#"path "span.attributes" cannot continue with ".y" after a key"#,
        ),
        (
            r#"set(span.name, Is Matc(span.name, "a"))"#,
            16,
            r#"unknown function "IsMatc"; did you mean "IsMatch"?"#,
        ),
        (
            r#"set(span.kind, SPAN_KIND_SERVR)"#,
            16,
            r#"unknown enum symbol "SPAN_KIND_SERVR" in the span context; did you mean "SPAN_KIND_SERVER"?"#,
        ),
        (
            r#"set(span.name, valu="x")"#,
            16,
            r#""set" has no parameter "valu"; did you mean "value"?"#,
        ),
        (
            r#"replace_pattern(span.name, "a", "b", Bogus)"#,
            38,
            r#"unknown function "Bogus""#,
        ),
    ];
    for (text, column, message) in rows {
        assert_eq!(statement(text), at(S0, column, message), "{text}");
    }
}

#[test]
fn function_position_arity_and_arguments() {
    let rows = [
        (
            r#"IsMatch(span.name, "x")"#,
            1,
            r#""IsMatch" is a converter and cannot be used as a statement; a statement starts with an editor (a lowercase name such as set)"#,
        ),
        (
            r#"set(span.name, set(span.name, "x"))"#,
            16,
            r#""set" is an editor and cannot be used inside a value or condition; converter names start with an uppercase letter"#,
        ),
        (
            r#"set(span.name)"#,
            1,
            r#""set" expects 2 arguments, got 1"#,
        ),
        (
            r#"replace_pattern(span.name)"#,
            1,
            r#""replace_pattern" expects 3 to 5 arguments, got 1"#,
        ),
        (
            r#"set(target=span.name, "x")"#,
            23,
            r#"in "set", an unnamed argument cannot follow a named one"#,
        ),
        (
            r#"set(value="x", value=span.name)"#,
            16,
            r#""set" is given its parameter "value" twice"#,
        ),
        (
            r#"set(span.attributes["u"], Substring(span.name, "0", 3))"#,
            48,
            r#"argument 2 ("start") of "Substring" must be an int, not a string ("0")"#,
        ),
        (
            r#"limit(span.attributes, -1, [])"#,
            24,
            r#"argument 2 ("limit") of "limit" must be an unsigned int literal, not -1"#,
        ),
        (
            r#"keep_keys(span.attributes, "a")"#,
            28,
            r#"argument 2 ("keys") of "keep_keys" must be a list [...], not "a""#,
        ),
        (
            r#"set("x", span.name)"#,
            5,
            r#"argument 1 ("target") of "set" must be a path, not "x""#,
        ),
        (
            r#"replace_pattern(span.name, "a", "b", "SHA256")"#,
            38,
            r#"argument 4 ("function") of "replace_pattern" must be a converter name written bare, such as SHA256, not "SHA256""#,
        ),
    ];
    for (text, column, message) in rows {
        assert_eq!(statement(text), at(S0, column, message), "{text}");
    }
}

#[test]
fn functions_checks_when_the_collector_creates_them() {
    let rows = [
        (
            r#"set(span.attributes["m"], IsMatch(span.name, "["))"#,
            46,
            r#"regular expression "[" does not compile: unclosed character class"#,
        ),
        (
            r#"replace_pattern(span.name, "(", "b")"#,
            28,
            r#"regular expression "(" does not compile: unclosed group"#,
        ),
        (
            r#"set(span.attributes["p"], ExtractPatterns(span.name, "(a+)"))"#,
            54,
            r#"the pattern of "ExtractPatterns" needs at least one named capture group, such as (?P<name>...)"#,
        ),
        (
            r#"merge_maps(span.attributes, {"a": "b"}, "bogus")"#,
            41,
            r#""merge_maps" strategy must be one of insert, update, upsert, not "bogus""#,
        ),
        (
            r#"limit(span.attributes, 1, ["a", "b"])"#,
            24,
            r#""limit" limit 1 is less than the number of priority keys (2)"#,
        ),
        (
            r#"replace_all_patterns(span.attributes, "both", "a", "b")"#,
            39,
            r#""replace_all_patterns" mode must be one of key, value, not "both""#,
        ),
    ];
    for (text, column, message) in rows {
        assert_eq!(statement(text), at(S0, column, message), "{text}");
    }
}

#[test]
fn paths_and_contexts() {
    let rows = [
        (
            r#"set(span.name["a"], "x")"#,
            5,
            r#"path "span.name" cannot be indexed"#,
        ),
        (
            r#"set(span.attributes["a"].b, "x")"#,
            26,
            r#"path "span.attributes" cannot continue with ".b" after a key"#,
        ),
        (
            r#"set(span.attributes["x"], "y") where resource.cache["a"] == "b""#,
            38,
            r#"the cache of the span context is written "span.cache", not "resource.cache""#,
        ),
        (
            r#"set(attributes["x"], "v")"#,
            5,
            r#"path "attributes" does not start with a context name (resource, scope, span or spanevent), so the context cannot be inferred; did you mean "span.attributes"?"#,
        ),
        (
            r#"set(otelcol.client.addr, "x")"#,
            5,
            r#"cannot infer the context from "otelcol": it is a path prefix, not a context of its own; use it next to a path of resource, scope, span or spanevent"#,
        ),
        (
            r#"set(span.name, "x") where foo.bar == 1"#,
            27,
            r#"path "foo.bar" starts with "foo", which the span context cannot use; paths start with one of instrumentation_scope, otelcol, resource, scope, span"#,
        ),
        (
            r#"replace_pattern(span.name, "a", "b", SHA256)"#,
            38,
            r#"unknown enum symbol "SHA256" in the span context (with the context inferred, the collector reads a bare upper-case function name as an enum symbol)"#,
        ),
    ];
    for (text, column, message) in rows {
        assert_eq!(statement(text), at(S0, column, message), "{text}");
    }
    assert_eq!(
        statement(r#"set("x", "y")"#),
        at(
            Item::Group,
            0,
            r#"the context cannot be inferred: no path starts with a context name (resource, scope, span or spanevent), as in span.name == "a""#
        )
    );
}

#[test]
fn syntax_errors_point_at_the_token() {
    let statements = [
        (r#"set(span.name, "x");"#, 20, "unexpected character ';'"),
        (
            r#"set(span.name, "\d")"#,
            16,
            r#"invalid string "\d": \d is not an escape (write \\d for a backslash)"#,
        ),
        (
            r#"set(span.name, "open)"#,
            16,
            r#"string starting "\"open)" is not terminated"#,
        ),
        (
            r#"set(span.name, ("a"))"#,
            16,
            r#"the string "a" is not a value"#,
        ),
        (
            r#"set(span.name, "a" + "b")"#,
            20,
            r#""+" needs numbers, paths or converter calls, not the string "a""#,
        ),
        (
            r#"set(span.name, 0x123)"#,
            16,
            "0x123 has an odd number of hex digits",
        ),
        (
            r#"set(span.name, 9223372036854775808)"#,
            16,
            "9223372036854775808 does not fit a 64-bit integer",
        ),
        (
            r#"set(span.name, "x") where"#,
            26,
            r#"unexpected end of text, expected a condition after "where""#,
        ),
        (
            r#"set(span.name, "x")["a"]"#,
            20,
            r#"the editor call "set" cannot be indexed"#,
        ),
        (r#"set(span.name, - -1)"#, 18, "a sign cannot follow a sign"),
        (
            r#"set(span.name, ["a",])"#,
            21,
            r#"unexpected "]", expected a value"#,
        ),
        (
            r#"set(span.name "checkout")"#,
            15,
            r#"unexpected string "checkout", expected "," or ")""#,
        ),
        (
            r#"set(span.name "a very long string literal that goes on and on")"#,
            15,
            r#"unexpected string "a very long string literal that goes on…, expected "," or ")""#,
        ),
    ];
    for (text, column, message) in statements {
        assert_eq!(statement(text), at(S0, column, message), "{text}");
    }
    let conditions = [
        (
            r#"span.name = "a""#,
            11,
            r#""=" is not a comparison operator; write "==""#,
        ),
        (
            r#"not not span.name == "a""#,
            5,
            r#""not" cannot follow "not"; write not (not ...)"#,
        ),
        (
            "1 < 2 < 3",
            7,
            "comparisons cannot be chained; join them with and",
        ),
        (
            "span.name",
            1,
            r#"the path "span.name" is not a condition; compare it with ==, !=, <, <=, > or >="#,
        ),
        (
            r#"span.attributes[1 + 1] == "c""#,
            19,
            r#"unexpected "+", expected "]" (a key that starts with a number or string is only that)"#,
        ),
        ("", 1, "a condition is empty"),
    ];
    for (text, column, message) in conditions {
        assert_eq!(filter(text), at(C0, column, message), "{text}");
    }
}

#[test]
fn filters_refuse_the_spanevent_context() {
    let message = "spanevent context is not supported in filter conditions; use transform to drop span events";
    assert_eq!(filter(r#"spanevent.name == "x""#), at(C0, 1, message));
    assert_eq!(
        check_filter_in(Context::SpanEvent, &[r#"name == "x""#.to_string()])
            .expect_err("explicit spanevent"),
        at(C0, 1, message)
    );
    check_transform(
        &[],
        &[r#"set(spanevent.attributes["handled"], true)"#.to_string()],
    )
    .expect("transform may use spanevent");
    check_filter(&[r#"resource.attributes["a"] == SPAN_KIND_SERVER"#.to_string()])
        .expect("the enum fallback skips spanevent and finds span");
}

#[test]
fn errors_name_the_item_and_display_with_the_column() {
    let error = check_transform(
        &[
            r#"span.name == "a""#.to_string(),
            r#"span.nam == "b""#.to_string(),
        ],
        &[r#"set(span.attributes["x"], "y")"#.to_string()],
    )
    .expect_err("second condition");
    assert_eq!(error.item, Item::Condition(1));
    assert_eq!(
        error.to_string(),
        r#"column 1: unknown path "span.nam" in the span context; did you mean "span.name"?"#
    );
    let group = statement(r#"set("x", "y")"#);
    assert!(
        group
            .to_string()
            .starts_with("the context cannot be inferred"),
        "{group}"
    );
    let filters = check_filter(&[
        r#"span.name == "a""#.to_string(),
        r#"span.kind == 9 and Foo()"#.to_string(),
    ])
    .expect_err("second filter condition");
    assert_eq!(
        filters,
        at(Item::Condition(1), 20, r#"unknown function "Foo""#)
    );
}

#[test]
fn context_inference_uses_the_whole_group() {
    // The condition names only resource paths; the statement's span path decides.
    check_transform(
        &[r#"resource.attributes["a"] == "b""#.to_string()],
        &[r#"set(span.attributes["x"], span.name)"#.to_string()],
    )
    .expect("span context");
    // IsRootSpan exists only in span: the resource group falls back to a lower context.
    check_transform(
        &[],
        &[r#"set(resource.attributes["k"], "v") where IsRootSpan()"#.to_string()],
    )
    .expect("falls back to span");
    let error = check_transform(
        &[],
        &[r#"set(resource.attributes["k"], Foo())"#.to_string()],
    )
    .expect_err("Foo");
    assert_eq!(error, at(S0, 31, r#"unknown function "Foo""#));
}

#[test]
fn the_reference_pages_message_table_is_what_the_checker_says() {
    const PAGE: &str = "docs/reference/ottl.md";
    let page = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PAGE))
        .expect(PAGE);
    let section = page
        .split("## Messages")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Messages section");
    let mut rows = 0;
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [written, message] = cells.as_slice() else {
            panic!("{PAGE}: two cells per row: {line}");
        };
        let unquote = |cell: &str| {
            cell.strip_prefix('`')
                .and_then(|c| c.strip_suffix('`'))
                .expect("a code span")
                .to_string()
        };
        let error = check_transform(&[], &[unquote(written)]).expect_err(written);
        assert_eq!(error.to_string(), unquote(message), "{PAGE}: {written}");
        rows += 1;
    }
    assert!(rows >= 10, "{PAGE}: found {rows} rows");
}

#[test]
fn only_trace_contexts_can_be_inferred() {
    assert_eq!(
        filter(r#"log.body == "x""#),
        at(
            C0,
            1,
            r#""log" is not a trace context (resource, scope, span or spanevent)"#
        )
    );
    assert_eq!(
        filter(r#"spn.name == "x""#),
        at(
            C0,
            1,
            r#""spn" is not a trace context (resource, scope, span or spanevent); did you mean "span"?"#
        )
    );
    assert_eq!(
        filter(r#"instrumentation_scope.name == "x""#),
        at(
            C0,
            1,
            r#"cannot infer the context from "instrumentation_scope": it is a path prefix, not a context of its own; use it next to a path of resource, scope, span or spanevent"#
        )
    );
}

/// Columns count characters, not bytes: an error after a multi-byte string points at the same
/// place as after an ASCII one of as many characters.
#[test]
fn columns_count_characters_after_multibyte_text() {
    assert_eq!(
        statement(r#"set(span.attributes["日本"], "ü") where span.nme == "x""#),
        at(
            S0,
            39,
            r#"unknown path "span.nme" in the span context; did you mean "span.name"?"#
        )
    );
    assert_eq!(
        statement(r#"set(span.attributes["ab"], "u") where span.nme == "x""#).column,
        39
    );
    let syntax = filter(r#"span.attributes["日本"] == "ü" ==="#);
    assert_eq!(syntax.column, 30, "{syntax}");
    assert_eq!(
        filter(r#"span.attributes["ab"] == "u" ==="#).column,
        syntax.column
    );
}
