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

use checker::{Checker, Problem, Use, expr_uses, statement_uses};
pub use context::Context;
use functions::Surface;
use lexer::char_column;
use parser::{Arena, SyntaxError, Tokens, parse_condition_with, parse_statement_with};

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
    /// Calls `visit` with every use in this text, in the order written.
    fn uses<'t>(&'t self, visit: &mut impl FnMut(Use<'t>, usize)) {
        match &self.parsed {
            Parsed::Statement(statement) => statement_uses(statement, visit),
            Parsed::Condition(condition) => expr_uses(condition, visit),
        }
    }

    #[cold]
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

#[cold]
fn syntax(item: Item, error: SyntaxError) -> OttlError {
    OttlError {
        item,
        column: error.column,
        message: error.message,
    }
}

/// The arena and token buffer the checks of one thread reuse: a webhook request then parses into
/// memory the previous one left in the caches, and allocates neither. One that grew beyond a
/// usual pipeline's needs is dropped after the check, so that each of the runtime's threads
/// (one per core of the node) keeps at most about 100 KiB.
struct Scratch {
    arena: Arena,
    tokens: Tokens,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Option<Scratch>> = const { std::cell::Cell::new(None) };
}

/// Runs `check` with this thread's scratch, emptied.
fn with_scratch<T>(check: impl FnOnce(&mut Arena, &mut Tokens) -> T) -> T {
    // Real pipelines' trees take a few KiB: the webhook benchmark's 17 texts about 10.
    const INITIAL_ARENA: usize = 16 * 1024;
    const KEPT_ARENA: usize = 64 * 1024;
    const KEPT_TOKENS: usize = 2 * 1024;
    let mut scratch = SCRATCH.take().unwrap_or_else(|| Scratch {
        arena: Arena::with_capacity(INITIAL_ARENA),
        tokens: Tokens::default(),
    });
    scratch.arena.reset();
    let result = check(&mut scratch.arena, &mut scratch.tokens);
    if scratch.arena.allocated_bytes() <= KEPT_ARENA && scratch.tokens.capacity() <= KEPT_TOKENS {
        SCRATCH.set(Some(scratch));
    }
    result
}

fn parse_transform<'a>(
    conditions: &'a [String],
    statements: &'a [String],
    arena: &'a Arena,
    tokens: &mut Tokens,
) -> Result<Vec<Text<'a>>, OttlError> {
    let mut texts = Vec::with_capacity(conditions.len() + statements.len());
    for (i, text) in statements.iter().enumerate() {
        let item = Item::Statement(i);
        let statement = parse_statement_with(text, arena, tokens).map_err(|e| syntax(item, e))?;
        texts.push(Text {
            item,
            surface: Surface::TransformStatement,
            source: text,
            parsed: Parsed::Statement(statement),
        });
    }
    for (i, text) in conditions.iter().enumerate() {
        let item = Item::Condition(i);
        let condition = parse_condition_with(text, arena, tokens).map_err(|e| syntax(item, e))?;
        texts.push(Text {
            item,
            surface: Surface::TransformCondition,
            source: text,
            parsed: Parsed::Condition(condition),
        });
    }
    Ok(texts)
}

fn parse_filter_condition<'a>(
    i: usize,
    text: &'a str,
    arena: &'a Arena,
    tokens: &mut Tokens,
) -> Result<Text<'a>, OttlError> {
    let item = Item::Condition(i);
    let condition = parse_condition_with(text, arena, tokens).map_err(|e| syntax(item, e))?;
    Ok(Text {
        item,
        surface: Surface::FilterCondition,
        source: text,
        parsed: Parsed::Condition(condition),
    })
}

/// Whether `context` defines every function and enum symbol the texts use; otherwise the first
/// one it lacks (text by text, functions before enum symbols), as the error to report.
fn supports(texts: &[Text], context: Context) -> Result<(), OttlError> {
    for text in texts {
        let checker = Checker {
            surface: text.surface,
            context,
            inferred: true,
        };
        let mut lacking_function = None;
        let mut lacking_enum = None;
        text.uses(&mut |used, offset| match used {
            Use::Function(call) if lacking_function.is_none() => {
                let editor = call.name.starts_with(|c: char| c.is_ascii_lowercase());
                lacking_function = checker.called(call, editor).err();
            }
            Use::Enum(symbol) if lacking_enum.is_none() && !context.has_enum(symbol) => {
                lacking_enum = Some(unknown_enum(text, context, symbol, offset));
            }
            _ => {}
        });
        if let Some(problem) = lacking_function {
            return Err(text.error(problem));
        }
        if let Some(problem) = lacking_enum {
            return Err(text.error(problem));
        }
    }
    Ok(())
}

fn unknown_enum(text: &Text, context: Context, symbol: &str, offset: usize) -> Problem {
    let hint = if text.surface.function(context, symbol).is_some() {
        " (with the context inferred, the collector reads a bare upper-case function name as an enum symbol)".to_string()
    } else {
        suggest::did_you_mean(suggest::closest(
            symbol,
            context.enums().iter().map(|(s, _)| *s),
        ))
    };
    Problem {
        offset,
        message: format!("unknown enum symbol \"{symbol}\" in the {context} context{hint}"),
    }
}

/// Why no context can be inferred: no path starts with a context name. Points at the first path
/// without one, with the context path it probably means.
#[cold]
fn no_context(texts: &[Text], item: Item) -> OttlError {
    let names = "resource, scope, span or spanevent";
    let mut bare = None;
    for (i, text) in texts.iter().enumerate() {
        text.uses(&mut |used, offset| {
            if let (Use::BarePath(path), None) = (used, &bare) {
                bare = Some((i, path.dotted(), offset));
            }
        });
    }
    if let Some((text, dotted, offset)) = bare {
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
    // The first context name of the best rank, and where it is written.
    let mut best: Option<(usize, &str, usize, usize)> = None;
    // The contexts that define every function and enum symbol used, one bit each: the same walk
    // answers which context can take the texts, and `supports` runs only to explain a lack.
    let mut defining = Context::ALL_BITS;
    for (i, text) in texts.iter().enumerate() {
        text.uses(&mut |used, offset| match used {
            Use::Context(name) => {
                let rank = Context::rank(name);
                if best.is_none_or(|(_, _, _, best_rank)| rank < best_rank) {
                    best = Some((i, name, offset, rank));
                }
            }
            Use::Function(call) => defining &= text.surface.defining_contexts(call.function),
            Use::Enum(symbol) => defining &= Context::defining_enum(symbol),
            Use::BarePath(_) => {}
        });
    }
    let defines_all = |context: Context| defining & context.bit() != 0;
    let Some((text, name, offset, _)) = best else {
        return Err(no_context(texts, item));
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
    if defines_all(context) {
        return Ok(context);
    }
    let first_lack = match supports(texts, context) {
        Ok(()) => return Ok(context),
        Err(error) => error,
    };
    context
        .lower_contexts()
        .filter(|lower| !(filter && *lower == Context::SpanEvent))
        .find(|lower| defines_all(*lower))
        .ok_or(first_lack)
}

/// One `transform[i]` item (a transform processor `trace_statements` entry), context inferred.
pub fn check_transform(conditions: &[String], statements: &[String]) -> Result<(), OttlError> {
    with_scratch(|arena, tokens| {
        let texts = parse_transform(conditions, statements, arena, tokens)?;
        let context = infer(&texts, Item::Group, false)?;
        texts.iter().try_for_each(|text| text.check(context, true))
    })
}

/// One `filter[i]` item (a filter processor `trace_conditions` entry), context inferred.
pub fn check_filter(conditions: &[String]) -> Result<(), OttlError> {
    with_scratch(|arena, tokens| {
        for (i, condition) in conditions.iter().enumerate() {
            arena.reset();
            let text = [parse_filter_condition(i, condition, arena, tokens)?];
            let context = infer(&text, Item::Condition(i), true)?;
            text[0].check(context, true)?;
        }
        Ok(())
    })
}

/// Like [`check_transform`] with an explicit `context:`, where bare paths (`name`) belong to it.
pub fn check_transform_in(
    context: Context,
    conditions: &[String],
    statements: &[String],
) -> Result<(), OttlError> {
    with_scratch(|arena, tokens| {
        let texts = parse_transform(conditions, statements, arena, tokens)?;
        texts.iter().try_for_each(|text| text.check(context, false))
    })
}

/// Like [`check_filter`] with an explicit `context:`.
pub fn check_filter_in(context: Context, conditions: &[String]) -> Result<(), OttlError> {
    with_scratch(|arena, tokens| {
        for (i, condition) in conditions.iter().enumerate() {
            arena.reset();
            let text = parse_filter_condition(i, condition, arena, tokens)?;
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
    })
}

/// The collector's grammar facts (`tests/fixtures/ottl-0.151/grammar.json`), for unit tests that
/// hold the lexer and checker to them.
#[cfg(test)]
fn grammar_facts() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ottl-0.151/grammar.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("grammar.json")).expect("json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> Option<(usize, usize)> {
        let scratch = SCRATCH.take()?;
        let sizes = (scratch.arena.allocated_bytes(), scratch.tokens.capacity());
        SCRATCH.set(Some(scratch));
        Some(sizes)
    }

    /// A thread keeps its scratch after usual pipelines, and drops what a large one grew.
    #[test]
    fn scratch_is_kept_only_while_small() {
        let statements = ["set(span.name, \"x\") where span.kind == SPAN_KIND_SERVER".to_string()];
        assert_eq!(check_transform(&[], &statements), Ok(()));
        let (arena, tokens) = kept().expect("kept after a small pipeline");
        assert!(arena <= 64 * 1024 && tokens <= 2 * 1024, "{arena} {tokens}");
        // The same answers again, from the reused scratch.
        assert_eq!(check_transform(&[], &statements), Ok(()));
        assert_eq!(
            check_filter(&["sspan.name == \"x\"".to_string()]).map_err(|e| e.column),
            Err(1)
        );

        let list = vec!["1"; 20_000].join(",");
        let large = [format!("set(span.name, Concat([{list}], \"\"))")];
        assert_eq!(check_transform(&[], &large), Ok(()));
        assert_eq!(kept(), None, "dropped after a large pipeline");
        assert_eq!(check_transform(&[], &statements), Ok(()));
        assert!(kept().is_some());
    }
}
