//! Checks a parsed statement or condition against one context the way the collector does when it
//! loads its configuration: paths, enum symbols, functions, arguments, and the arguments some
//! functions already check then (regular expressions, modes).

use super::ast::{Arg, Call, Expr, ExprKind, Path, Statement};
use super::context::Context;
use super::functions::{ArgKind, Function, Getter, MAX_PARAMS, Param, Surface};
use super::lexer::unescape;
use super::pattern::surely_valid;
use super::suggest::{closest, did_you_mean};
use regex_syntax::hir::{Hir, HirKind};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub offset: usize,
    pub message: String,
}

type Checked = Result<(), Problem>;

#[cold]
fn problem(offset: usize, message: impl Into<String>) -> Problem {
    Problem {
        offset,
        message: message.into(),
    }
}

/// What the checker knows while it walks one text.
pub(crate) struct Checker {
    pub surface: Surface,
    pub context: Context,
    /// With the context inferred every path must start with a context name; with an explicit
    /// context a bare path (`name`) belongs to that context.
    pub inferred: bool,
}

/// A name a text uses that the collector's context inference looks at.
#[derive(Clone, Copy)]
pub(crate) enum Use<'a> {
    /// The context name a path starts with.
    Context(&'a str),
    Function(&'a Call<'a>),
    Enum(&'a str),
    /// A path without a context name.
    BarePath(&'a Path<'a>),
}

/// Calls `visit` with every use in a statement, in the order written, and where it is.
pub(crate) fn statement_uses<'a>(
    statement: &'a Statement<'a>,
    visit: &mut impl FnMut(Use<'a>, usize),
) {
    call_uses(&statement.editor, visit);
    if let Some(condition) = &statement.condition {
        expr_uses(condition, visit);
    }
}

fn call_uses<'a>(call: &'a Call<'a>, visit: &mut impl FnMut(Use<'a>, usize)) {
    visit(Use::Function(call), call.at.0);
    for arg in call.args {
        expr_uses(&arg.value, visit);
    }
    for key in call.keys {
        expr_uses(key, visit);
    }
}

/// Like [`statement_uses`] for a condition or value.
pub(crate) fn expr_uses<'a>(expr: &'a Expr<'a>, visit: &mut impl FnMut(Use<'a>, usize)) {
    match &expr.kind {
        ExprKind::Or(items) | ExprKind::And(items) | ExprKind::List(items) => {
            items.iter().for_each(|item| expr_uses(item, visit));
        }
        ExprKind::Not(inner) | ExprKind::Sign(_, inner) | ExprKind::Paren(inner) => {
            expr_uses(inner, visit)
        }
        ExprKind::Compare(left, _, right) => {
            expr_uses(left, visit);
            expr_uses(right, visit);
        }
        ExprKind::Math(first, rest) => {
            expr_uses(first, visit);
            rest.iter()
                .for_each(|(_, operand)| expr_uses(operand, visit));
        }
        ExprKind::Map(entries) => entries
            .iter()
            .for_each(|(_, value)| expr_uses(value, visit)),
        ExprKind::Enum(symbol) => visit(Use::Enum(symbol), expr.at.0),
        ExprKind::Path(path) => {
            match path.context {
                Some(context) => visit(Use::Context(context), expr.at.0),
                None => visit(Use::BarePath(path), expr.at.0),
            }
            for field in path.fields {
                field.keys.iter().for_each(|key| expr_uses(key, visit));
            }
        }
        ExprKind::Call(call) => call_uses(call, visit),
        ExprKind::Nil
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Bytes(_)
        | ExprKind::FunctionName(_) => {}
    }
}

/// The type a literal argument has when the collector converts it while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Literal<'a> {
    /// The string as written between the quotes.
    Str(&'a str),
    Int,
    Float,
    Bool,
    Nil,
    Bytes,
    List,
    Map,
}

impl Literal<'_> {
    fn noun(self) -> &'static str {
        match self {
            Literal::Str(_) => "a string",
            Literal::Int => "an int",
            Literal::Float => "a float",
            Literal::Bool => "a bool",
            Literal::Nil => "nil",
            Literal::Bytes => "bytes",
            Literal::List => "a list",
            Literal::Map => "a map",
        }
    }
}

/// The literal `expr` is, if it is one: a constant the collector converts at parse time. A signed
/// number is one; math, paths and calls are evaluated only at run time.
fn literal<'a>(expr: &Expr<'a>) -> Option<Literal<'a>> {
    match &expr.kind {
        ExprKind::Str(raw) => Some(Literal::Str(raw)),
        ExprKind::Int(_) | ExprKind::Enum(_) => Some(Literal::Int),
        ExprKind::Float(_) => Some(Literal::Float),
        ExprKind::Bool(_) => Some(Literal::Bool),
        ExprKind::Nil => Some(Literal::Nil),
        ExprKind::Bytes(_) => Some(Literal::Bytes),
        ExprKind::Sign(_, inner) => match inner.kind {
            ExprKind::Int(_) => Some(Literal::Int),
            ExprKind::Float(_) => Some(Literal::Float),
            _ => None,
        },
        ExprKind::List(items) => items
            .iter()
            .all(|i| literal(i).is_some())
            .then_some(Literal::List),
        ExprKind::Map(entries) => entries
            .iter()
            .all(|(_, v)| literal(v).is_some())
            .then_some(Literal::Map),
        _ => None,
    }
}

/// The string a literal stands for; borrowed when there is no escape to decode.
fn decoded(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(String::from_utf8_lossy(&unescape(raw).unwrap_or_default()).into_owned())
}

/// Go's `strconv.ParseBool`.
fn parses_as_bool(text: &str) -> bool {
    matches!(
        text,
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
    )
}

/// Whether a typed getter converts this literal (the collector's parse-time conversion).
fn getter_accepts(getter: Getter, literal: Literal<'_>) -> bool {
    use Literal::{Bool, Bytes, Float, Int, List, Map, Nil, Str};
    match getter {
        Getter::Getter | Getter::StringLikeGetter => true,
        Getter::StringGetter => matches!(literal, Str(_)),
        Getter::IntGetter => literal == Int,
        Getter::FloatGetter => literal == Float,
        Getter::BoolGetter => literal == Bool,
        Getter::PMapGetter => literal == Map,
        Getter::PSliceGetter => literal == List,
        Getter::IntLikeGetter => matches!(literal, Str(_) | Int | Float | Bool | Nil),
        Getter::FloatLikeGetter => match literal {
            Str(raw) => decoded(raw).parse::<f64>().is_ok(),
            other => matches!(other, Int | Float | Bool | Nil),
        },
        Getter::BoolLikeGetter => match literal {
            Str(raw) => parses_as_bool(&decoded(raw)),
            other => matches!(other, Int | Float | Bool | Nil),
        },
        Getter::ByteSliceLikeGetter => matches!(literal, Str(_) | Int | Float | Bool | Nil | Bytes),
        Getter::DurationGetter | Getter::TimeGetter => false,
    }
}

fn getter_noun(getter: Getter) -> &'static str {
    match getter {
        Getter::StringGetter => "a string",
        Getter::IntGetter => "an int",
        Getter::FloatGetter => "a float",
        Getter::BoolGetter => "a bool",
        Getter::PMapGetter => "a map",
        Getter::PSliceGetter => "a list",
        Getter::DurationGetter => "a duration (from a path or a converter such as Duration)",
        Getter::TimeGetter => "a time (from a path or a converter such as Time)",
        Getter::IntLikeGetter => "something convertible to an int",
        Getter::FloatLikeGetter => "something convertible to a float",
        Getter::BoolLikeGetter => "something convertible to a bool",
        Getter::ByteSliceLikeGetter => "something convertible to bytes",
        Getter::Getter | Getter::StringLikeGetter => "a value",
    }
}

/// Where an argument sits, for messages: `argument 2 ("pattern") of "IsMatch"`.
fn position(function: &Function, index: usize, param: &Param) -> String {
    format!(
        "argument {} (\"{}\") of \"{}\"",
        index + 1,
        param.name,
        function.name
    )
}

impl Checker {
    pub fn statement(&self, statement: &Statement) -> Checked {
        self.call(&statement.editor, true)?;
        // The collector parses a statement's `where` clause with the statement's parser, so its
        // converters come from the statement functions.
        match &statement.condition {
            Some(condition) => self.expr(condition),
            None => Ok(()),
        }
    }

    pub fn expr(&self, expr: &Expr) -> Checked {
        match &expr.kind {
            ExprKind::Or(items) | ExprKind::And(items) | ExprKind::List(items) => {
                items.iter().try_for_each(|item| self.expr(item))
            }
            ExprKind::Not(inner) | ExprKind::Sign(_, inner) | ExprKind::Paren(inner) => {
                self.expr(inner)
            }
            ExprKind::Compare(left, _, right) => {
                self.expr(left)?;
                self.expr(right)
            }
            ExprKind::Math(first, rest) => {
                self.expr(first)?;
                rest.iter().try_for_each(|(_, operand)| self.expr(operand))
            }
            ExprKind::Map(entries) => entries.iter().try_for_each(|(_, value)| self.expr(value)),
            ExprKind::Enum(symbol) => self.enum_symbol(symbol, expr.at.0),
            ExprKind::Path(path) => self.path(path, expr.at.0),
            ExprKind::Call(call) => self.call(call, false),
            ExprKind::FunctionName(name) => Err(problem(
                expr.at.0,
                format!("\"{name}\" names a function but does not call it; write {name}(...)"),
            )),
            ExprKind::Nil
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::Bytes(_) => Ok(()),
        }
    }

    fn enum_symbol(&self, symbol: &str, offset: usize) -> Checked {
        if self.context.has_enum(symbol) {
            return Ok(());
        }
        let suggestion = closest(symbol, self.context.enums().iter().map(|(s, _)| *s));
        Err(problem(
            offset,
            format!(
                "unknown enum symbol \"{symbol}\" in the {} context{}",
                self.context,
                did_you_mean(suggestion)
            ),
        ))
    }

    /// The function `call` calls, as this surface and context define it, or the error to report.
    pub fn called(&self, call: &Call, editor: bool) -> Result<&'static Function, Problem> {
        match self.surface.function_at(self.context, call.function) {
            Some(function) => Ok(function),
            None => Err(self.unknown_function(call.name, call.at.0, editor)),
        }
    }

    /// The function `name` as this surface and context define it, or the error to report.
    pub fn function(
        &self,
        name: &str,
        offset: usize,
        editor: bool,
    ) -> Result<&'static Function, Problem> {
        match self.surface.function(self.context, name) {
            Some(function) => Ok(function),
            None => Err(self.unknown_function(name, offset, editor)),
        }
    }

    #[cold]
    fn unknown_function(&self, name: &str, offset: usize, editor: bool) -> Problem {
        let suggestion = closest(
            name,
            self.surface
                .functions(self.context)
                .filter(|f| f.editor == editor)
                .map(|f| f.name),
        );
        problem(
            offset,
            format!("unknown function \"{name}\"{}", did_you_mean(suggestion)),
        )
    }

    fn call(&self, call: &Call, top: bool) -> Checked {
        let function = self.called(call, top)?;
        if !top && function.editor {
            return Err(problem(
                call.at.0,
                format!(
                    "\"{}\" is an editor and cannot be used inside a value or condition",
                    call.name
                ),
            ));
        }
        for key in call.keys {
            self.expr(key)?;
        }
        // Without an arguments struct the collector ignores whatever arguments are written.
        let Some((min, max)) = function.arity else {
            return Ok(());
        };
        let count = call.args.len();
        if count < usize::from(min) || count > usize::from(max) {
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            let noun = if max == 1 { "argument" } else { "arguments" };
            return Err(problem(
                call.at.0,
                format!("\"{}\" expects {expected} {noun}, got {count}", call.name),
            ));
        }
        let mut slots = [None; MAX_PARAMS];
        let assigned: &mut [Option<&Arg>] = &mut slots[..function.params.len()];
        let mut named_seen = false;
        for (index, arg) in call.args.iter().enumerate() {
            let slot = match &arg.name {
                None if named_seen => {
                    return Err(problem(
                        arg.at.0,
                        format!(
                            "in \"{}\", an unnamed argument cannot follow a named one",
                            call.name
                        ),
                    ));
                }
                None => index,
                Some(name) => {
                    named_seen = true;
                    match function.params.iter().position(|p| p.forms.contains(name)) {
                        Some(slot) => slot,
                        None => {
                            let forms =
                                function.params.iter().flat_map(|p| p.forms.iter().copied());
                            return Err(problem(
                                arg.at.0,
                                format!(
                                    "\"{}\" has no parameter \"{name}\"{}",
                                    call.name,
                                    did_you_mean(closest(name, forms))
                                ),
                            ));
                        }
                    }
                }
            };
            if assigned[slot].is_some() {
                return Err(problem(
                    arg.at.0,
                    format!(
                        "\"{}\" is given its parameter \"{}\" twice",
                        call.name, function.params[slot].name
                    ),
                ));
            }
            assigned[slot] = Some(arg);
        }
        for (index, (param, arg)) in function.params.iter().zip(assigned.iter()).enumerate() {
            match arg {
                Some(arg) => self.argument(function, index, param, param.kind, &arg.value)?,
                None if !param.optional => {
                    return Err(problem(
                        call.at.0,
                        format!(
                            "\"{}\" is missing its parameter \"{}\"",
                            call.name, param.name
                        ),
                    ));
                }
                None => {}
            }
        }
        self.function_specific(function, assigned)
    }

    fn argument(
        &self,
        function: &Function,
        index: usize,
        param: &Param,
        kind: ArgKind,
        value: &Expr,
    ) -> Checked {
        let at = value.at.0;
        let wrong = |needed: &str| {
            Err(problem(
                at,
                format!(
                    "{} must be {needed}, not {value}",
                    position(function, index, param)
                ),
            ))
        };
        match kind {
            ArgKind::Path => match &value.kind {
                ExprKind::Path(path) => self.path(path, at),
                _ => wrong("a path"),
            },
            ArgKind::Value(getter) => {
                self.expr(value)?;
                match literal(value) {
                    Some(found) if !getter_accepts(getter, found) => Err(problem(
                        at,
                        format!(
                            "{} must be {}, not {} ({value})",
                            position(function, index, param),
                            getter_noun(getter),
                            found.noun()
                        ),
                    )),
                    _ => Ok(()),
                }
            }
            ArgKind::FunctionName => match &value.kind {
                ExprKind::Enum(name) => self.function(name, at, false).map(|_| ()),
                ExprKind::FunctionName(name) => self.function(name, at, false).map(|_| ()),
                _ => wrong("a converter name written bare, such as SHA256"),
            },
            ArgKind::StringLiteral => match value.kind {
                ExprKind::Str(_) => Ok(()),
                _ => wrong("a string literal"),
            },
            ArgKind::IntLiteral => match value.kind {
                ExprKind::Int(_) => Ok(()),
                _ => wrong("an unsigned int literal"),
            },
            ArgKind::BoolLiteral => match value.kind {
                ExprKind::Bool(_) => Ok(()),
                _ => wrong("true or false"),
            },
            ArgKind::List(element) => match &value.kind {
                ExprKind::List(items) => items
                    .iter()
                    .try_for_each(|item| self.argument(function, index, param, *element, item)),
                _ => wrong("a list [...]"),
            },
        }
    }

    fn path(&self, path: &Path, offset: usize) -> Checked {
        let names = self.context.path_context_names();
        // With an explicit context, a path not starting with a name its parser knows belongs to
        // that context: `name` is read as `span.name`.
        let implied = match path.context {
            Some(context) if names.contains(&context) => None,
            Some(context) if self.inferred => {
                return Err(problem(
                    offset,
                    format!(
                        "path \"{}\" starts with \"{context}\", which the {} context cannot use; paths start with one of {}",
                        path.dotted(),
                        self.context,
                        names.join(", ")
                    ),
                ));
            }
            None if self.inferred => {
                let dotted = path.dotted();
                let guess = names
                    .iter()
                    .map(|name| format!("{name}.{dotted}"))
                    .find(|candidate| self.context.path(candidate).is_some());
                return Err(problem(
                    offset,
                    format!(
                        "path \"{dotted}\" must start with a context name ({}){}",
                        names.join(", "),
                        did_you_mean(guess.as_deref())
                    ),
                ));
            }
            _ => Some(self.context.name()),
        };
        let segments = || {
            implied
                .into_iter()
                .chain(path.context)
                .chain(path.fields.iter().map(|field| field.name))
        };
        let full = || segments().collect::<Vec<_>>().join(".");
        let mut leading = segments();
        let context_name = leading.next().unwrap_or_default();
        if leading.next() == Some("cache") && context_name != self.context.name() {
            return Err(problem(
                offset,
                format!(
                    "the cache of the {} context is written \"{}.cache\", not \"{context_name}.cache\"",
                    self.context, self.context
                ),
            ));
        }
        let last = path.fields.len() - 1;
        for (i, field) in path.fields.iter().enumerate() {
            if i < last && !field.keys.is_empty() {
                let next = &path.fields[i + 1];
                let kept = segments().count() - (last - i);
                let prefix: Vec<&str> = segments().take(kept).collect();
                return Err(problem(
                    next.at.0,
                    format!(
                        "path \"{}\" cannot continue with \".{}\" after a key",
                        prefix.join("."),
                        next.name
                    ),
                ));
            }
        }
        let found = match (implied, path.written) {
            (None, Some(written)) => self.context.path(written),
            _ => self.context.path(&full()),
        };
        match found {
            None => {
                let full = full();
                let suggestion = closest(&full, self.context.paths().iter().map(|(p, _)| *p));
                Err(problem(
                    offset,
                    format!(
                        "unknown path \"{full}\" in the {} context{}",
                        self.context,
                        did_you_mean(suggestion)
                    ),
                ))
            }
            Some(false) if !path.fields[last].keys.is_empty() => Err(problem(
                offset,
                format!("path \"{}\" cannot be indexed", full()),
            )),
            Some(_) => path.fields[last]
                .keys
                .iter()
                .try_for_each(|key| self.expr(key)),
        }
    }

    /// Checks some functions make when the collector creates them, on literal arguments.
    fn function_specific(&self, function: &Function, args: &[Option<&Arg>]) -> Checked {
        let param = |name: &str| {
            function
                .params
                .iter()
                .position(|p| p.name == name)
                .and_then(|i| args[i])
                .map(|arg| &arg.value)
        };
        let string = |name: &str| match param(name).map(|v| (v, &v.kind)) {
            Some((value, ExprKind::Str(raw))) => Some((value.at.0, decoded(raw))),
            _ => None,
        };
        let one_of = |name: &str, allowed: &[&str]| match string(name) {
            Some((offset, text)) if !allowed.contains(&text.as_ref()) => Err(problem(
                offset,
                format!(
                    "\"{}\" {name} must be one of {}, not \"{text}\"",
                    function.name,
                    allowed.join(", ")
                ),
            )),
            _ => Ok(()),
        };
        match function.name {
            "IsMatch" | "delete_matching_keys" | "keep_matching_keys" => {
                valid_regex(string("pattern"))
            }
            "replace_pattern" => valid_regex(string("regex_pattern")),
            "replace_all_patterns" => {
                one_of("mode", &["key", "value"])?;
                valid_regex(string("regex_pattern"))
            }
            "ExtractPatterns" => match regex(string("pattern"))? {
                Some((offset, parsed)) if !has_named_group(&parsed) => Err(problem(
                    offset,
                    "the pattern of \"ExtractPatterns\" needs at least one named capture group, such as (?P<name>...)",
                )),
                _ => Ok(()),
            },
            "merge_maps" => one_of("strategy", &["insert", "update", "upsert"]),
            "ParseCSV" => one_of("mode", &["strict", "lazyQuotes", "ignoreQuotes"]),
            "ConvertCase" => one_of("to_case", &["lower", "upper", "snake", "camel"]),
            "Sort" => one_of("order", &["asc", "desc"]),
            "limit" => match (param("limit"), param("priority_keys")) {
                (
                    Some(Expr {
                        kind: ExprKind::Int(limit),
                        at,
                    }),
                    Some(Expr {
                        kind: ExprKind::List(keys),
                        ..
                    }),
                ) if usize::try_from(*limit).is_ok_and(|l| l < keys.len()) => Err(problem(
                    at.0,
                    format!(
                        "\"limit\" limit {limit} is less than the number of priority keys ({})",
                        keys.len()
                    ),
                )),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// Parses a literal pattern as the collector compiles it (Go's RE2 syntax; the `regex` crate's
/// parser reads the same syntax), or says why it is not a regular expression.
fn regex(pattern: Option<(usize, Cow<'_, str>)>) -> Result<Option<(usize, Hir)>, Problem> {
    let Some((offset, pattern)) = pattern else {
        return Ok(None);
    };
    match regex_syntax::Parser::new().parse(&pattern) {
        Ok(parsed) => Ok(Some((offset, parsed))),
        Err(error) => Err(not_a_regex(offset, &pattern, &error)),
    }
}

/// Whether a literal pattern is a regular expression, as [`regex`] decides: without the parser
/// when the pattern is of the plain kinds [`surely_valid`] knows, and without building its
/// translation when that cannot fail. Translating a syntax tree into a `Hir` fails only
/// where Unicode mode is off or on a Unicode class the tables lack: without flags (always written
/// `(?...)`) Unicode mode stays on, and without `\p` or `\P` no Unicode class is named, while
/// the Perl classes, word boundaries and case folding have their tables built in (the crate's
/// default `unicode` feature).
fn valid_regex(pattern: Option<(usize, Cow<'_, str>)>) -> Checked {
    let Some((offset, pattern)) = pattern else {
        return Ok(());
    };
    if surely_valid(&pattern) {
        return Ok(());
    }
    let translation_can_fail =
        pattern.contains("(?") || pattern.contains("\\p") || pattern.contains("\\P");
    if translation_can_fail {
        return regex(Some((offset, pattern))).map(|_| ());
    }
    match regex_syntax::ast::parse::Parser::new().parse(&pattern) {
        Ok(_) => Ok(()),
        Err(error) => Err(not_a_regex(offset, &pattern, &error)),
    }
}

#[cold]
fn not_a_regex(offset: usize, pattern: &str, error: &dyn std::fmt::Display) -> Problem {
    let text = error.to_string();
    let reason = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text)
        .trim();
    let reason = reason.strip_prefix("error: ").unwrap_or(reason);
    problem(
        offset,
        format!("regular expression \"{pattern}\" does not compile: {reason}"),
    )
}

/// Whether a parsed pattern has a named capture group, `(?P<name>...)`.
fn has_named_group(pattern: &Hir) -> bool {
    let mut pending = vec![pattern];
    while let Some(hir) = pending.pop() {
        match hir.kind() {
            HirKind::Capture(capture) if capture.name.is_some() => return true,
            HirKind::Capture(capture) => pending.push(&capture.sub),
            HirKind::Repetition(repetition) => pending.push(&repetition.sub),
            HirKind::Concat(items) | HirKind::Alternation(items) => pending.extend(items),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ottl::parser::{Arena, parse_statement};

    fn getter(name: &str) -> Getter {
        match name {
            "Getter" => Getter::Getter,
            "StringGetter" => Getter::StringGetter,
            "StringLikeGetter" => Getter::StringLikeGetter,
            "IntGetter" => Getter::IntGetter,
            "IntLikeGetter" => Getter::IntLikeGetter,
            "FloatGetter" => Getter::FloatGetter,
            "FloatLikeGetter" => Getter::FloatLikeGetter,
            "BoolGetter" => Getter::BoolGetter,
            "BoolLikeGetter" => Getter::BoolLikeGetter,
            "PMapGetter" => Getter::PMapGetter,
            "PSliceGetter" => Getter::PSliceGetter,
            "DurationGetter" => Getter::DurationGetter,
            "TimeGetter" => Getter::TimeGetter,
            "ByteSliceLikeGetter" => Getter::ByteSliceLikeGetter,
            other => panic!("unknown getter {other}"),
        }
    }

    /// The argument kind of a grammar.json `arg_shape`, or `None` for kinds no trace function
    /// of 0.151.0 has (float, bytes and enum literals).
    fn kind(shape: &serde_json::Value) -> Option<ArgKind> {
        let leaked = |kind: ArgKind| -> &'static ArgKind { Box::leak(Box::new(kind)) };
        match shape["arg_kind"].as_str()? {
            "path" => Some(ArgKind::Path),
            "value" => Some(ArgKind::Value(getter(shape["getter"].as_str()?))),
            "function_name" => Some(ArgKind::FunctionName),
            "string_literal" => Some(ArgKind::StringLiteral),
            "int_literal" => Some(ArgKind::IntLiteral),
            "bool_literal" => Some(ArgKind::BoolLiteral),
            "list" => Some(ArgKind::List(leaked(kind(&shape["element"])?))),
            _ => None,
        }
    }

    /// Skipping the translation never changes a verdict or message: patterns that fail in the
    /// syntax tree, in the translation (Unicode mode off, unknown classes) and that pass.
    #[test]
    fn valid_regex_agrees_with_the_full_parse() {
        let patterns = [
            "/users/[0-9]+",
            ".*/metrics",
            "^GET",
            r"\d+\s\w\b",
            "[[:alpha:]]+",
            r"[^\x00-\x{10FFFF}]",
            r"\xFF",
            r"\\p{Greek}",
            r"\p{Greek}",
            r"\pN",
            r"\PL",
            r"\p{Bogus}",
            r"[\p{Bogus}]",
            r"(?-u)\xFF",
            r"(?-u:.)",
            r"(?-u:\W)",
            "(?i)k",
            "(?P<name>x)",
            "[",
            "(",
            "a{2,1}",
            "x**",
        ];
        for pattern in patterns {
            let full = regex(Some((1, Cow::Borrowed(pattern)))).map(|_| ());
            let skipped = valid_regex(Some((1, Cow::Borrowed(pattern))));
            assert_eq!(skipped, full, "{pattern}");
        }
        assert!(regex(Some((1, Cow::Borrowed(r"(?-u)\xFF")))).is_err());
        assert!(regex(Some((1, Cow::Borrowed(r"\p{Bogus}")))).is_err());
    }

    /// grammar.json's `argument_literal_acceptance`: for each parameter type, every probed
    /// spelling is accepted or refused as the collector's parser did with an explicit span
    /// context.
    #[test]
    fn argument_kinds_accept_the_spellings_the_collector_accepts() {
        let grammar = crate::ottl::grammar_facts();
        let forms = grammar["literal_forms_probed"].as_object().expect("forms");
        let checker = Checker {
            surface: Surface::TransformStatement,
            context: Context::Span,
            inferred: false,
        };
        let mut mismatches = Vec::new();
        let mut checked = 0;
        for entry in grammar["argument_literal_acceptance"]
            .as_array()
            .expect("entries")
        {
            let Some(kind) = kind(&entry["arg_shape"]) else {
                continue;
            };
            let params: &'static [Param] = Box::leak(Box::new([Param {
                name: "probe",
                forms: &[],
                optional: false,
                kind,
            }]));
            let param = &params[0];
            let function = Function {
                name: "Probe",
                editor: false,
                arity: Some((1, 1)),
                params,
            };
            for (form, text) in forms {
                let accepted = entry["accept"]
                    .as_array()
                    .expect("accept")
                    .iter()
                    .any(|a| a == form);
                let written = format!("set(span.name, {})", text.as_str().expect("text"));
                let arena = Arena::new();
                let statement =
                    parse_statement(&written, &arena).expect("every probed spelling parses");
                let value = &statement.editor.args[1].value;
                let result = checker.argument(&function, 0, param, kind, value);
                checked += 1;
                if result.is_ok() != accepted {
                    mismatches.push(format!(
                        "{} {form}: accepted {}, collector {accepted}",
                        entry["param_type"],
                        result.is_ok()
                    ));
                }
            }
        }
        assert!(checked > 500, "{checked} probes");
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }
}
