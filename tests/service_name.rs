//! The gateway's own OTTL (docs/reference/gateway-enrichment.md): the service-name resolution
//! and the cluster identity, checked against the facts of the 0.151.0 collector in
//! `tests/fixtures/ottl-0.151/` (lexed with its token rules; every function defined for
//! transform statements in the resource context with a fitting arity and argument kinds; every
//! path a resource path, so the inferred context is resource; every call and condition shaped
//! like one the collector accepted), and then run on resource attributes, row by row, by a small
//! evaluator of exactly these shapes.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde_json::Value;
use telemetry_manager::gateway::config::{
    SERVICE_NAME_LABELS, SERVICE_NAME_SOURCES, cluster_identity_statements, service_name_statements,
};

const FIXTURES: &str = "tests/fixtures/ottl-0.151";

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Str(String),
    Nil,
    Not,
    Or,
    And,
    Comparison(String),
    LParen,
    RParen,
    Punct(char),
    /// Upper- and lowercase tokens written together: one name (`IsMatch`, `delete_key`).
    Word(String),
    /// Anything else the lexer knows, by its rule name (`Int`, `Boolean`, `OpAddSub`, …).
    Other(String),
}

/// The collector's lexer rules, in order (grammar.json `tokens`); the first that matches wins.
struct Lexer {
    rules: Vec<(String, Regex)>,
}

impl Lexer {
    fn new() -> Lexer {
        let grammar = fixture("grammar.json");
        let rules = grammar["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rule| {
                let pattern = rule["pattern"].as_str().unwrap();
                (
                    rule["name"].as_str().unwrap().to_string(),
                    Regex::new(&format!("^(?:{pattern})")).unwrap(),
                )
            })
            .collect();
        Lexer { rules }
    }

    fn tokens(&self, text: &str) -> Result<Vec<Token>, String> {
        let mut tokens: Vec<Token> = Vec::new();
        let mut rest = text;
        let mut after_word = false;
        while !rest.is_empty() {
            let (name, length) = self
                .rules
                .iter()
                .find_map(|(name, rule)| rule.find(rest).map(|m| (name.as_str(), m.end())))
                .filter(|(_, length)| *length > 0)
                .ok_or_else(|| format!("no token at {rest:?}"))?;
            let lexeme = &rest[..length];
            rest = &rest[length..];
            let continues_word =
                std::mem::replace(&mut after_word, matches!(name, "Uppercase" | "Lowercase"));
            let token = match name {
                "whitespace" => continue,
                "String" => Token::Str(unescape(lexeme)?),
                "Nil" => Token::Nil,
                "OpNot" => Token::Not,
                "OpOr" => Token::Or,
                "OpAnd" => Token::And,
                "OpComparison" => Token::Comparison(lexeme.into()),
                "LParen" => Token::LParen,
                "RParen" => Token::RParen,
                "Punct" => Token::Punct(lexeme.chars().next().unwrap()),
                "Uppercase" | "Lowercase" => {
                    if continues_word && let Some(Token::Word(word)) = tokens.last_mut() {
                        word.push_str(lexeme);
                        continue;
                    }
                    Token::Word(lexeme.into())
                }
                _ => Token::Other(name.into()),
            };
            tokens.push(token);
        }
        Ok(tokens)
    }
}

/// A string literal's value; only the escapes of a Go double-quoted string that the statements
/// here can need are taken, anything else is an error as it is for the collector.
fn unescape(lexeme: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = lexeme[1..lexeme.len() - 1].chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            other => return Err(format!("escape \\{other:?} in {lexeme}")),
        }
    }
    Ok(out)
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Nil,
    Str(String),
    /// Segments and keys: `resource.attributes["k"]` is (["resource", "attributes"], ["k"]).
    Path(Vec<String>, Vec<String>),
    Call(String, Vec<Expr>),
    /// An enum symbol such as `SPAN_KIND_SERVER`.
    Enum,
    /// A number, boolean or bytes literal, by its token name.
    Literal(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Condition {
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    Group(Box<Condition>),
    Compare(Expr, String, Expr),
    Call(Expr),
}

#[derive(Clone, Debug, PartialEq)]
struct Statement {
    editor: String,
    arguments: Vec<Expr>,
    condition: Option<Condition>,
}

/// A parser for the part of the grammar (grammar.json `productions`) these statements use;
/// anything else is an error.
struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<Token, String> {
        let token = self.peek().cloned().ok_or("unexpected end")?;
        self.at += 1;
        Ok(token)
    }

    fn expect(&mut self, token: Token) -> Result<(), String> {
        let next = self.next()?;
        if next == token {
            Ok(())
        } else {
            Err(format!("expected {token:?}, found {next:?}"))
        }
    }

    fn statement(text: &str, lexer: &Lexer) -> Result<Statement, String> {
        let mut parser = Parser {
            tokens: lexer.tokens(text)?,
            at: 0,
        };
        let Token::Word(editor) = parser.next()? else {
            return Err("a statement starts with an editor".into());
        };
        let arguments = parser.arguments()?;
        let condition = match parser.next() {
            Err(_) => None,
            Ok(Token::Word(word)) if word == "where" => Some(parser.or()?),
            Ok(other) => return Err(format!("unexpected {other:?}")),
        };
        if parser.at != parser.tokens.len() {
            return Err(format!("left over: {:?}", &parser.tokens[parser.at..]));
        }
        Ok(Statement {
            editor,
            arguments,
            condition,
        })
    }

    fn condition(text: &str, lexer: &Lexer) -> Result<Condition, String> {
        let mut parser = Parser {
            tokens: lexer.tokens(text)?,
            at: 0,
        };
        let condition = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(format!("left over: {:?}", &parser.tokens[parser.at..]));
        }
        Ok(condition)
    }

    fn arguments(&mut self) -> Result<Vec<Expr>, String> {
        self.expect(Token::LParen)?;
        let mut arguments = Vec::new();
        if self.peek() == Some(&Token::RParen) {
            self.at += 1;
            return Ok(arguments);
        }
        loop {
            arguments.push(self.expr()?);
            match self.next()? {
                Token::Punct(',') => continue,
                Token::RParen => return Ok(arguments),
                other => return Err(format!("unexpected {other:?} in arguments")),
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        match self.next()? {
            Token::Nil => Ok(Expr::Nil),
            Token::Str(text) => Ok(Expr::Str(text)),
            Token::Word(word) if word.starts_with(|c: char| c.is_ascii_uppercase()) => {
                if self.peek() == Some(&Token::LParen) {
                    Ok(Expr::Call(word, self.arguments()?))
                } else {
                    Ok(Expr::Enum)
                }
            }
            Token::Other(kind)
                if matches!(kind.as_str(), "Int" | "Float" | "Boolean" | "Bytes") =>
            {
                Ok(Expr::Literal(kind))
            }
            Token::Word(word) => {
                let mut segments = vec![word];
                let mut keys = Vec::new();
                loop {
                    match self.peek() {
                        Some(Token::Punct('.')) if keys.is_empty() => {
                            self.at += 1;
                            let Token::Word(segment) = self.next()? else {
                                return Err("a path segment after '.'".into());
                            };
                            segments.push(segment);
                        }
                        Some(Token::Punct('[')) => {
                            self.at += 1;
                            let Token::Str(key) = self.next()? else {
                                return Err("only string keys here".into());
                            };
                            keys.push(key);
                            self.expect(Token::Punct(']'))?;
                        }
                        _ => return Ok(Expr::Path(segments, keys)),
                    }
                }
            }
            other => Err(format!("unexpected {other:?} as a value")),
        }
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut terms = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap()
        } else {
            Condition::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut terms = vec![self.operand()?];
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            terms.push(self.operand()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap()
        } else {
            Condition::And(terms)
        })
    }

    fn operand(&mut self) -> Result<Condition, String> {
        match self.peek() {
            Some(Token::Not) => {
                self.at += 1;
                Ok(Condition::Not(Box::new(self.operand()?)))
            }
            Some(Token::LParen) => {
                self.at += 1;
                let inner = self.or()?;
                self.expect(Token::RParen)?;
                Ok(Condition::Group(Box::new(inner)))
            }
            _ => {
                let left = self.expr()?;
                match self.peek().cloned() {
                    Some(Token::Comparison(op)) => {
                        self.at += 1;
                        Ok(Condition::Compare(left, op, self.expr()?))
                    }
                    _ if matches!(left, Expr::Call(..)) => Ok(Condition::Call(left)),
                    other => Err(format!("expected a comparison, found {other:?}")),
                }
            }
        }
    }
}

/// How an expression looks, without its names and keys.
fn expr_shape(expr: &Expr) -> String {
    match expr {
        Expr::Nil => "nil".into(),
        Expr::Str(_) => "STRING".into(),
        Expr::Path(..) => "PATH".into(),
        Expr::Enum => "ENUM".into(),
        Expr::Literal(kind) => kind.to_uppercase(),
        Expr::Call(name, arguments) => format!(
            "{name}({})",
            arguments
                .iter()
                .map(expr_shape)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The shapes of a condition's comparisons and calls, and the kinds of its connectives.
fn condition_shapes(condition: &Condition, out: &mut BTreeSet<String>) {
    match condition {
        Condition::Or(terms) | Condition::And(terms) => {
            let kind = if matches!(condition, Condition::Or(_)) {
                "or"
            } else {
                "and"
            };
            for term in terms {
                if matches!(term, Condition::Group(_)) {
                    out.insert(format!("{kind} with a parenthesised operand"));
                }
                condition_shapes(term, out);
            }
            out.insert(kind.into());
        }
        Condition::Not(inner) => {
            out.insert("not".into());
            condition_shapes(inner, out);
        }
        Condition::Group(inner) => condition_shapes(inner, out),
        Condition::Compare(left, op, right) => {
            out.insert(format!("{} {op} {}", expr_shape(left), expr_shape(right)));
        }
        Condition::Call(call) => {
            out.insert(expr_shape(call));
        }
    }
}

fn paths<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::Path(..) => out.push(expr),
        Expr::Call(_, arguments) => arguments.iter().for_each(|a| paths(a, out)),
        Expr::Nil | Expr::Str(_) | Expr::Enum | Expr::Literal(_) => {}
    }
}

fn condition_exprs<'a>(condition: &'a Condition, out: &mut Vec<&'a Expr>) {
    match condition {
        Condition::Or(terms) | Condition::And(terms) => {
            terms.iter().for_each(|t| condition_exprs(t, out))
        }
        Condition::Not(inner) | Condition::Group(inner) => condition_exprs(inner, out),
        Condition::Compare(left, _, right) => {
            out.push(left);
            out.push(right);
        }
        Condition::Call(call) => out.push(call),
    }
}

fn calls<'a>(expr: &'a Expr, out: &mut Vec<(&'a str, &'a [Expr])>) {
    if let Expr::Call(name, arguments) = expr {
        out.push((name, arguments));
        arguments.iter().for_each(|a| calls(a, out));
    }
}

/// What the collector accepted (grammar.json experiments and collector-verdicts.tsv): the shapes
/// of statement calls, and of conditions (the same grammar on every surface).
fn accepted_shapes(lexer: &Lexer) -> (BTreeSet<String>, BTreeSet<String>) {
    let grammar = fixture("grammar.json");
    let mut accepted: Vec<(String, String)> = grammar["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["verdict"] == "accept")
        .map(|e| {
            (
                e["surface"].as_str().unwrap().to_string(),
                e["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let verdicts = std::fs::read_to_string(format!("{FIXTURES}/collector-verdicts.tsv")).unwrap();
    for line in verdicts.lines().filter(|l| !l.starts_with('#')) {
        let columns: Vec<&str> = line.split('\t').collect();
        if columns[1] == "accept" {
            accepted.push((columns[0].to_string(), columns[2].to_string()));
        }
    }
    let (mut statement_shapes, mut conditions) = (BTreeSet::new(), BTreeSet::new());
    for (surface, text) in accepted {
        // Texts outside the part of the grammar parsed here add no shapes.
        if surface == "ts" {
            if let Ok(statement) = Parser::statement(&text, lexer) {
                statement_shapes.insert(expr_shape(&Expr::Call(
                    statement.editor.clone(),
                    statement.arguments.clone(),
                )));
                if let Some(condition) = &statement.condition {
                    condition_shapes(condition, &mut conditions);
                }
            }
        } else if !surface.contains('@')
            && let Ok(condition) = Parser::condition(&text, lexer)
        {
            condition_shapes(&condition, &mut conditions);
        }
    }
    (statement_shapes, conditions)
}

/// A function of the resource context of transform statements (functions.json).
fn function<'a>(functions: &'a [Value], name: &str) -> &'a Value {
    functions
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not a function of the resource context"))
}

fn check_arguments(functions: &[Value], name: &str, arguments: &[Expr], statement: &str) {
    let function = function(functions, name);
    let count = arguments.len() as u64;
    assert!(
        function["min_args"].as_u64().unwrap() <= count
            && function["max_args"].as_u64().is_none_or(|max| count <= max),
        "{name} with {count} arguments: {statement}"
    );
    for (argument, parameter) in arguments.iter().zip(function["params"].as_array().unwrap()) {
        match parameter["arg_kind"].as_str().unwrap() {
            "path" => assert!(
                matches!(argument, Expr::Path(..)),
                "{name} takes a path as {}: {statement}",
                parameter["name"]
            ),
            "value" => {}
            other => panic!("{name}'s {} takes {other}: {statement}", parameter["name"]),
        }
    }
}

#[test]
fn the_gateway_ottl_follows_the_collectors_facts() {
    let lexer = Lexer::new();
    let functions_json = fixture("functions.json");
    let functions = functions_json["surfaces"]["transform.trace_statements"]["contexts"]
        ["resource"]["functions"]
        .as_array()
        .unwrap();
    let paths_json = fixture("paths.json");
    let resource = &paths_json["contexts"]["resource"];
    let context_names: Vec<&str> = resource["path_context_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let rows = resource["paths"].as_array().unwrap();
    let grammar = fixture("grammar.json");
    let trace_contexts = grammar["context_inference"]["trace_contexts"]
        .as_array()
        .unwrap();
    let (accepted_calls, accepted_conditions) = accepted_shapes(&lexer);

    let statements: Vec<String> = service_name_statements()
        .into_iter()
        .chain(cluster_identity_statements(
            Some(r#"prod "eu" \ 1"#),
            Some("5f0c8a2e-3b9d-4c61-9e0a-7d2b1c4e8f35"),
        ))
        .collect();
    let mut contexts = BTreeSet::new();
    for text in &statements {
        let statement = Parser::statement(text, &lexer).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(
            statement
                .editor
                .starts_with(|c: char| c.is_ascii_lowercase()),
            "{text}"
        );
        assert_eq!(function(functions, &statement.editor)["kind"], "editor");
        check_arguments(functions, &statement.editor, &statement.arguments, text);
        let call = expr_shape(&Expr::Call(
            statement.editor.clone(),
            statement.arguments.clone(),
        ));
        assert!(
            accepted_calls.contains(&call),
            "{call} is not shaped like an accepted statement ({accepted_calls:?})"
        );

        let mut exprs: Vec<&Expr> = statement.arguments.iter().collect();
        if let Some(condition) = &statement.condition {
            condition_exprs(condition, &mut exprs);
            let mut shapes = BTreeSet::new();
            condition_shapes(condition, &mut shapes);
            for shape in shapes {
                assert!(
                    accepted_conditions.contains(&shape),
                    "`{shape}` is not shaped like an accepted condition: {text}"
                );
            }
        }
        let mut found = Vec::new();
        for expr in &exprs {
            paths(expr, &mut found);
            let mut converters = Vec::new();
            calls(expr, &mut converters);
            for (name, arguments) in converters {
                assert_eq!(function(functions, name)["kind"], "converter", "{text}");
                check_arguments(functions, name, arguments, text);
                if name == "IsMatch"
                    && let Expr::Str(pattern) = &arguments[1]
                {
                    Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
                }
            }
        }
        for path in found {
            let Expr::Path(segments, keys) = path else {
                unreachable!()
            };
            assert!(context_names.contains(&segments[0].as_str()), "{text}");
            // As paths.json writes them: `resource.attributes` and `resource.attributes[""]`.
            let row = format!("{}{}", segments.join("."), r#"[""]"#.repeat(keys.len()));
            assert!(
                rows.iter()
                    .any(|r| r["path"] == row && r["accepted_transform_statement"] == true),
                "{row} is not a resource path: {text}"
            );
            contexts.insert(segments[0].clone());
        }
    }
    // One context among all paths: the collector infers it, and it is a trace context.
    assert_eq!(contexts, BTreeSet::from(["resource".to_string()]));
    assert!(trace_contexts.iter().any(|c| c == "resource"));
}

/// Evaluate a statement on resource attributes as the collector would.
fn run(statement: &Statement, attributes: &mut BTreeMap<String, String>) {
    let key = |expr: &Expr| match expr {
        Expr::Path(_, keys) => keys[0].clone(),
        other => panic!("{other:?} is not an attribute"),
    };
    if let Some(condition) = &statement.condition
        && !holds(condition, attributes)
    {
        return;
    }
    match statement.editor.as_str() {
        // `set` leaves the target alone when the value is nil.
        "set" => {
            if let Some(value) = value(&statement.arguments[1], attributes) {
                attributes.insert(key(&statement.arguments[0]), value);
            }
        }
        "delete_key" => {
            let Expr::Str(name) = &statement.arguments[1] else {
                panic!("a literal key")
            };
            attributes.remove(name);
        }
        other => panic!("no evaluator for {other}"),
    }
}

fn value(expr: &Expr, attributes: &BTreeMap<String, String>) -> Option<String> {
    match expr {
        Expr::Nil => None,
        Expr::Str(text) => Some(text.clone()),
        Expr::Path(_, keys) => attributes.get(&keys[0]).cloned(),
        other => panic!("{other:?} is not a value here"),
    }
}

fn holds(condition: &Condition, attributes: &BTreeMap<String, String>) -> bool {
    match condition {
        Condition::Or(terms) => terms.iter().any(|t| holds(t, attributes)),
        Condition::And(terms) => terms.iter().all(|t| holds(t, attributes)),
        Condition::Not(inner) => !holds(inner, attributes),
        Condition::Group(inner) => holds(inner, attributes),
        Condition::Compare(left, op, right) => {
            let equal = value(left, attributes) == value(right, attributes);
            match op.as_str() {
                "==" => equal,
                "!=" => !equal,
                other => panic!("no evaluator for {other}"),
            }
        }
        // IsMatch of nil is false.
        Condition::Call(Expr::Call(name, arguments)) if name == "IsMatch" => {
            let (Some(target), Expr::Str(pattern)) =
                (value(&arguments[0], attributes), &arguments[1])
            else {
                return false;
            };
            Regex::new(pattern).unwrap().is_match(&target)
        }
        Condition::Call(other) => panic!("no evaluator for {other:?}"),
    }
}

/// service.name before, the attributes a resource carries, service.name after.
type Row<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>, Option<&'a str>);

/// The resolution order, row by row: what a resource carries (pod labels as k8s_attributes puts
/// them in their temporary attributes) and the service.name it leaves with.
#[test]
fn service_names_resolve_in_order() {
    let lexer = Lexer::new();
    let statements: Vec<Statement> = service_name_statements()
        .iter()
        .map(|text| Parser::statement(text, &lexer).unwrap())
        .collect();
    let label = |name: &str| {
        SERVICE_NAME_LABELS
            .iter()
            .find(|(label, _)| *label == name)
            .unwrap()
            .1
    };
    let all_sources = [
        (label("app.kubernetes.io/name"), "shop"),
        (label("app"), "legacy-shop"),
        ("k8s.deployment.name", "shop-v2"),
        ("k8s.daemonset.name", "agent"),
        ("k8s.statefulset.name", "db"),
        ("k8s.job.name", "migrate"),
        ("k8s.pod.name", "shop-v2-7d9f-abcde"),
    ];
    let without = |skip: usize| -> Vec<(&str, &str)> { all_sources[skip..].to_vec() };
    let table: Vec<Row> = vec![
        // A real name stays.
        (Some("orders"), without(0), Some("orders")),
        (
            Some("my_unknown_service"),
            without(0),
            Some("my_unknown_service"),
        ),
        // Missing, empty or unknown_service…: the first source that is set and not empty.
        (None, without(0), Some("shop")),
        (Some(""), without(1), Some("legacy-shop")),
        (Some("unknown_service"), without(2), Some("shop-v2")),
        (Some("unknown_service:java"), without(3), Some("agent")),
        (None, without(4), Some("db")),
        (None, without(5), Some("migrate")),
        (None, without(6), Some("shop-v2-7d9f-abcde")),
        (
            None,
            vec![(label("app.kubernetes.io/name"), ""), (label("app"), "a")],
            Some("a"),
        ),
        // Nothing to take it from: left as it was.
        (None, vec![], None),
        (
            Some("unknown_service:node"),
            vec![],
            Some("unknown_service:node"),
        ),
    ];
    assert_eq!(
        all_sources.map(|(key, _)| key),
        SERVICE_NAME_SOURCES,
        "the table covers every source in order"
    );
    for (name, sources, expected) in table {
        let mut attributes: BTreeMap<String, String> = sources
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(name) = name {
            attributes.insert("service.name".into(), name.into());
        }
        for statement in &statements {
            run(statement, &mut attributes);
        }
        assert_eq!(
            attributes.get("service.name").map(String::as_str),
            expected,
            "{name:?} with {sources:?}"
        );
        for (_, temporary) in SERVICE_NAME_LABELS {
            assert!(!attributes.contains_key(temporary), "{temporary} is left");
        }
        for (key, value) in &sources {
            if !key.starts_with("telemetry-manager.tmp.") {
                assert_eq!(attributes[*key], *value, "{key} is kept");
            }
        }
    }
}

/// The statements as the gateway writes them, run through the checker that admission uses: the
/// collector would load them.
#[test]
fn the_gateway_statements_pass_the_ottl_checker() {
    let cases = [
        ("service name", service_name_statements()),
        (
            "cluster name and uid",
            cluster_identity_statements(Some("prod-eu"), Some("5f0c6d4e-8a4b-4d39-9c1e")),
        ),
        (
            "a cluster name with quotes and backslashes",
            cluster_identity_statements(Some(r#"we"ird\name"#), None),
        ),
    ];
    for (case, statements) in cases {
        assert!(!statements.is_empty(), "{case}");
        if let Err(error) = telemetry_manager::ottl::check_transform(&[], &statements) {
            panic!("{case}: {error:?} in {statements:#?}");
        }
    }
}
