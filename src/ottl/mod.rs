//! OTTL (the OpenTelemetry Transformation Language) as the 0.151.0 collector's transform and
//! filter processors accept it for traces: lexer, parser, printer and checker. What is checked
//! and how messages read: docs/reference/ottl.md.

pub mod ast;
mod checker;
pub mod context;
mod functions;
mod index;
mod lexer;
pub mod parser;
mod pattern;
mod suggest;
#[rustfmt::skip]
mod tables;

use checker::{Checker, Problem, Used, Uses};
pub use context::Context;
use functions::Surface;
use lexer::char_column;
use parser::{SyntaxError, parse_condition, parse_statement};

/// Why a statement group or filter item is not what the collector would accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OttlError {
    pub item: Item,
    /// 1-based column, in characters, of the offending token; 0 for [`Item::Group`].
    pub column: usize,
    pub message: String,
}

/// Which text of the item the error is about: an index into its `statements` or `conditions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Statement(usize),
    Condition(usize),
    /// The item as a whole (its context cannot be inferred).
    Group,
}

impl std::fmt::Display for OttlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.item {
            Item::Group => f.write_str(&self.message),
            _ => write!(f, "column {}: {}", self.column, self.message),
        }
    }
}

impl std::error::Error for OttlError {}

/// The deliberate difference from the collector: a filter drops spans, so it may not run in the
/// span-event context.
pub const SPANEVENT_FILTER_MESSAGE: &str =
    "spanevent context is not supported in filter conditions; use transform to drop span events";

enum Parsed<'a> {
    Statement(ast::Statement<'a>),
    Condition(ast::Expr<'a>),
}

/// One text of an item, parsed, with where it sits and which function set it uses.
struct Text<'a> {
    item: Item,
    surface: Surface,
    source: &'a str,
    parsed: Parsed<'a>,
}

impl Text<'_> {
    fn error(&self, problem: Problem) -> OttlError {
        OttlError {
            item: self.item,
            column: char_column(self.source, problem.offset),
            message: problem.message,
        }
    }

    fn check(&self, context: Context, inferred: bool) -> Result<(), OttlError> {
        let checker = Checker {
            surface: self.surface,
            context,
            inferred,
        };
        match &self.parsed {
            Parsed::Statement(statement) => checker.statement(statement),
            Parsed::Condition(condition) => checker.expr(condition),
        }
        .map_err(|problem| self.error(problem))
    }
}

fn syntax(item: Item, error: SyntaxError) -> OttlError {
    OttlError {
        item,
        column: error.column,
        message: error.message,
    }
}

fn parse_transform<'a>(
    conditions: &'a [String],
    statements: &'a [String],
) -> Result<Vec<Text<'a>>, OttlError> {
    let mut texts = Vec::with_capacity(conditions.len() + statements.len());
    for (i, text) in statements.iter().enumerate() {
        let item = Item::Statement(i);
        let statement = parse_statement(text).map_err(|e| syntax(item, e))?;
        texts.push(Text {
            item,
            surface: Surface::TransformStatement,
            source: text,
            parsed: Parsed::Statement(statement),
        });
    }
    for (i, text) in conditions.iter().enumerate() {
        let item = Item::Condition(i);
        let condition = parse_condition(text).map_err(|e| syntax(item, e))?;
        texts.push(Text {
            item,
            surface: Surface::TransformCondition,
            source: text,
            parsed: Parsed::Condition(condition),
        });
    }
    Ok(texts)
}

fn parse_filter_condition(i: usize, text: &str) -> Result<Text<'_>, OttlError> {
    let item = Item::Condition(i);
    let condition = parse_condition(text).map_err(|e| syntax(item, e))?;
    Ok(Text {
        item,
        surface: Surface::FilterCondition,
        source: text,
        parsed: Parsed::Condition(condition),
    })
}

/// What the texts of one group use, in text order.
fn uses<'t>(texts: &'t [Text<'_>]) -> Uses<'t> {
    let mut uses = Uses::default();
    for (i, text) in texts.iter().enumerate() {
        uses.text = i;
        match &text.parsed {
            Parsed::Statement(statement) => uses.statement(statement),
            Parsed::Condition(condition) => uses.expr(condition),
        }
    }
    uses
}

/// Whether `context` defines every function and enum symbol the texts use; otherwise the first
/// one it lacks (text by text, functions before enum symbols), as the error to report.
fn supports(texts: &[Text], uses: &Uses<'_>, context: Context) -> Result<(), OttlError> {
    let mut functions = uses.functions.iter().peekable();
    let mut enums = uses.enums.iter().peekable();
    for (i, text) in texts.iter().enumerate() {
        let checker = Checker {
            surface: text.surface,
            context,
            inferred: true,
        };
        while let Some(used) = functions.next_if(|used| used.text == i) {
            let editor = used.name.starts_with(|c: char| c.is_ascii_lowercase());
            checker
                .function(used.name, used.offset, editor)
                .map_err(|p| text.error(p))?;
        }
        while let Some(used) = enums.next_if(|used| used.text == i) {
            let symbol = used.name;
            if !context.has_enum(symbol) {
                let hint = if text.surface.function(context, symbol).is_some() {
                    " (with the context inferred, the collector reads a bare upper-case function name as an enum symbol)".to_string()
                } else {
                    suggest::did_you_mean(suggest::closest(
                        symbol,
                        context.enums().iter().map(|(s, _)| *s),
                    ))
                };
                return Err(text.error(Problem {
                    offset: used.offset,
                    message: format!(
                        "unknown enum symbol \"{symbol}\" in the {context} context{hint}"
                    ),
                }));
            }
        }
    }
    Ok(())
}

/// Why no context can be inferred: no path starts with a context name. Points at the first path
/// without one, with the context path it probably means.
fn no_context(texts: &[Text], uses: &Uses<'_>, item: Item) -> OttlError {
    let names = "resource, scope, span or spanevent";
    if let Some(&(text, path, offset)) = uses.bare_paths.first() {
        let dotted = path.dotted();
        let guess = [
            Context::Span,
            Context::Resource,
            Context::Scope,
            Context::SpanEvent,
        ]
        .into_iter()
        .map(|c| format!("{c}.{dotted}"))
        .find(|candidate| Context::SpanEvent.path(candidate).is_some());
        return texts[text].error(Problem {
            offset,
            message: format!(
                "path \"{dotted}\" does not start with a context name ({names}), so the context cannot be inferred{}",
                suggest::did_you_mean(guess.as_deref())
            ),
        });
    }
    let message = format!(
        "the context cannot be inferred: no path starts with a context name ({names}), as in span.name == \"a\""
    );
    match item {
        Item::Group => OttlError {
            item,
            column: 0,
            message,
        },
        _ => OttlError {
            item,
            column: 1,
            message,
        },
    }
}

/// The context the collector infers for these texts (one transform group, or one filter
/// condition): the highest-priority context named by a path, or, when that one lacks a function
/// or enum symbol used, the first lower context that has them all.
fn infer(texts: &[Text], item: Item, filter: bool) -> Result<Context, OttlError> {
    let uses = uses(texts);
    let mut best: Option<&Used> = None;
    for used in &uses.contexts {
        if best.is_none_or(|best| Context::rank(used.name) < Context::rank(best.name)) {
            best = Some(used);
        }
    }
    let Some(&Used { text, name, offset }) = best else {
        return Err(no_context(texts, &uses, item));
    };
    let text = &texts[text];
    let Some(context) = Context::from_name(name) else {
        let prefix = Context::ALL
            .iter()
            .any(|c| c.path_context_names().contains(&name));
        let message = if prefix {
            format!(
                "cannot infer the context from \"{name}\": it is a path prefix, not a context of its own; use it next to a path of resource, scope, span or spanevent"
            )
        } else {
            let suggestion = suggest::closest(name, Context::ALL.iter().map(|c| c.name()));
            format!(
                "\"{name}\" is not a trace context (resource, scope, span or spanevent){}",
                suggest::did_you_mean(suggestion)
            )
        };
        return Err(text.error(Problem { offset, message }));
    };
    if filter && context == Context::SpanEvent {
        return Err(text.error(Problem {
            offset,
            message: SPANEVENT_FILTER_MESSAGE.to_string(),
        }));
    }
    let first_lack = match supports(texts, &uses, context) {
        Ok(()) => return Ok(context),
        Err(error) => error,
    };
    context
        .lower_contexts()
        .filter(|lower| !(filter && *lower == Context::SpanEvent))
        .find(|lower| supports(texts, &uses, *lower).is_ok())
        .ok_or(first_lack)
}

/// One `transform[i]` item (a transform processor `trace_statements` entry), context inferred.
pub fn check_transform(conditions: &[String], statements: &[String]) -> Result<(), OttlError> {
    let texts = parse_transform(conditions, statements)?;
    let context = infer(&texts, Item::Group, false)?;
    texts.iter().try_for_each(|text| text.check(context, true))
}

/// One `filter[i]` item (a filter processor `trace_conditions` entry), context inferred.
pub fn check_filter(conditions: &[String]) -> Result<(), OttlError> {
    for (i, condition) in conditions.iter().enumerate() {
        let text = [parse_filter_condition(i, condition)?];
        let context = infer(&text, Item::Condition(i), true)?;
        text[0].check(context, true)?;
    }
    Ok(())
}

/// Like [`check_transform`] with an explicit `context:`, where bare paths (`name`) belong to it.
pub fn check_transform_in(
    context: Context,
    conditions: &[String],
    statements: &[String],
) -> Result<(), OttlError> {
    let texts = parse_transform(conditions, statements)?;
    texts.iter().try_for_each(|text| text.check(context, false))
}

/// Like [`check_filter`] with an explicit `context:`.
pub fn check_filter_in(context: Context, conditions: &[String]) -> Result<(), OttlError> {
    for (i, condition) in conditions.iter().enumerate() {
        let text = parse_filter_condition(i, condition)?;
        if context == Context::SpanEvent {
            return Err(OttlError {
                item: text.item,
                column: 1,
                message: SPANEVENT_FILTER_MESSAGE.to_string(),
            });
        }
        text.check(context, false)?;
    }
    Ok(())
}
