//! A recursive-descent parser for the collector's OTTL grammar. Conditions and values are parsed
//! by one precedence-climbing expression parser and then held to the grammar's narrower shapes
//! (a value is not a condition, math takes only numbers, paths and calls, ...), which keeps
//! parsing linear: no alternative is ever tried twice. In optimised builds the levels between a
//! statement and a primary value are forced inline: each call level moves its whole
//! `Result<Expr>` on return, and those moves were a quarter of the parsing time. Debug builds
//! keep them apart, as their unoptimised frames would add up to one huge frame per nesting level.

use super::ast::{Arg, Call, CompareOp, Expr, ExprKind, Field, MathOp, Offset, Path, Statement};
use super::functions::function_index;
use super::lexer::{Token, TokenKind, char_column, tokenize};

/// Where the parser puts syntax trees: every node of a statement or condition, freed together.
pub type Arena = bumpalo::Bump;

type ArenaVec<'a, T> = bumpalo::collections::Vec<'a, T>;

/// How deeply parentheses, lists, maps, calls and keys may nest. Real statements stay far below;
/// the limit turns a pathological input into an error instead of exhausting the stack.
pub const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based column, in characters.
    pub column: usize,
    pub message: String,
}

/// A syntax error while parsing, at a byte offset; its column is counted only when reported.
struct Misparse {
    offset: usize,
    message: String,
}

type Parsed<T> = Result<T, Misparse>;

impl Misparse {
    fn in_text(self, text: &str) -> SyntaxError {
        SyntaxError {
            column: char_column(text, self.offset),
            message: self.message,
        }
    }
}

/// Token storage for parsing several texts one after the other without allocating it anew.
#[derive(Default)]
pub(crate) struct Tokens(Vec<Token>);

impl Tokens {
    /// How many tokens the buffer holds without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

/// Parses one transform statement into `arena`.
pub fn parse_statement<'a>(text: &'a str, arena: &'a Arena) -> Result<Statement<'a>, SyntaxError> {
    parse_statement_with(text, arena, &mut Tokens::default())
}

/// Parses one condition (a filter condition, or one of a statement group's conditions) into
/// `arena`.
pub fn parse_condition<'a>(text: &'a str, arena: &'a Arena) -> Result<Expr<'a>, SyntaxError> {
    parse_condition_with(text, arena, &mut Tokens::default())
}

/// [`parse_statement`] with its tokens in `tokens`.
pub(crate) fn parse_statement_with<'a>(
    text: &'a str,
    arena: &'a Arena,
    tokens: &mut Tokens,
) -> Result<Statement<'a>, SyntaxError> {
    parse_whole(text, arena, tokens, |parser| parser.statement())
}

/// [`parse_condition`] with its tokens in `tokens`.
pub(crate) fn parse_condition_with<'a>(
    text: &'a str,
    arena: &'a Arena,
    tokens: &mut Tokens,
) -> Result<Expr<'a>, SyntaxError> {
    parse_whole(text, arena, tokens, |parser| {
        if parser.peek().kind == TokenKind::End {
            return Err(parser.error_here("a condition is empty"));
        }
        parser.boolean()
    })
}

/// Parses all of `text` with `parse`: nothing may follow what it reads.
fn parse_whole<'a, T>(
    text: &'a str,
    arena: &'a Arena,
    tokens: &mut Tokens,
    parse: impl FnOnce(&mut Parser<'a, '_>) -> Parsed<T>,
) -> Result<T, SyntaxError> {
    let run = || {
        let mut parser = Parser::new(text, arena, &mut tokens.0)?;
        let parsed = parse(&mut parser)?;
        parser.expect_end()?;
        Ok(parsed)
    };
    run().map_err(|e: Misparse| e.in_text(text))
}

struct Parser<'a, 't> {
    text: &'a str,
    arena: &'a Arena,
    tokens: &'t [Token],
    at: usize,
    /// The kind of `tokens[at]`, which the parser asks for several times per token.
    next: TokenKind,
    depth: usize,
}

fn is_math(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Path(_) | ExprKind::Call(_) => true,
        ExprKind::Math(..) | ExprKind::Sign(..) => true,
        ExprKind::Paren(inner) => is_math(inner),
        _ => false,
    }
}

fn is_value(expr: &Expr) -> bool {
    is_math(expr)
        || matches!(
            expr.kind,
            ExprKind::Nil
                | ExprKind::Bool(_)
                | ExprKind::Str(_)
                | ExprKind::Bytes(_)
                | ExprKind::Enum(_)
                | ExprKind::List(_)
                | ExprKind::Map(_)
        )
}

fn is_boolean(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Or(_) | ExprKind::And(_) | ExprKind::Not(_) | ExprKind::Compare(..) => true,
        ExprKind::Bool(_) | ExprKind::Call(_) => true,
        ExprKind::Paren(inner) => is_boolean(inner),
        _ => false,
    }
}

/// A short description of what was written, for messages.
fn described(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Str(_) => format!("the string {expr}"),
        ExprKind::Path(_) => format!("the path \"{expr}\""),
        ExprKind::FunctionName(name) => format!("\"{name}\" without \"(\""),
        ExprKind::Enum(_) => format!("the enum symbol {expr}"),
        ExprKind::Paren(inner) => described(inner),
        ExprKind::Compare(..) | ExprKind::And(_) | ExprKind::Or(_) | ExprKind::Not(_) => {
            "a condition".to_string()
        }
        _ => expr.to_string(),
    }
}

impl<'a, 't> Parser<'a, 't> {
    fn new(text: &'a str, arena: &'a Arena, tokens: &'t mut Vec<Token>) -> Parsed<Parser<'a, 't>> {
        tokenize(text, tokens).map_err(|e| Misparse {
            offset: e.offset,
            message: e.message,
        })?;
        Ok(Parser {
            text,
            arena,
            next: tokens[0].kind,
            tokens,
            at: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> Token {
        self.tokens[self.at]
    }

    fn kind(&self) -> TokenKind {
        self.next
    }

    fn skip(&mut self, count: usize) {
        self.at += count;
        self.next = self.tokens[self.at].kind;
    }

    fn peek_kind(&self, ahead: usize) -> TokenKind {
        self.tokens
            .get(self.at + ahead)
            .map_or(TokenKind::End, |t| t.kind)
    }

    fn text_of(&self, token: Token) -> &'a str {
        &self.text[token.start..token.end]
    }

    fn advance(&mut self) -> Token {
        let token = self.tokens[self.at];
        if token.kind != TokenKind::End {
            self.skip(1);
        }
        token
    }

    #[cold]
    fn error_at(offset: usize, message: impl Into<String>) -> Misparse {
        Misparse {
            offset,
            message: message.into(),
        }
    }

    #[cold]
    fn error_here(&self, message: impl Into<String>) -> Misparse {
        Self::error_at(self.peek().start, message)
    }

    #[cold]
    fn unexpected(&self, expected: &str) -> Misparse {
        let token = self.peek();
        if token.kind == TokenKind::End {
            self.error_here(format!("unexpected end of text, expected {expected}"))
        } else {
            self.error_here(format!(
                "unexpected {}, expected {expected}",
                shown_token(self.text_of(token))
            ))
        }
    }

    fn expect(&mut self, kind: TokenKind, expected: &str) -> Parsed<Token> {
        if self.kind() == kind {
            Ok(self.advance())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn expect_end(&self) -> Parsed<()> {
        if self.kind() == TokenKind::End {
            Ok(())
        } else {
            Err(self.unexpected("the end of the text"))
        }
    }

    fn enter(&mut self) -> Parsed<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            Err(self.error_here(format!("nesting is deeper than {MAX_NESTING} levels")))
        } else {
            Ok(())
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// How many tokens form the function name starting here: one Uppercase or Lowercase token
    /// followed by any more of them (whitespace between them is dropped, as in the collector).
    fn name_length(&self) -> usize {
        let mut length = 0;
        while matches!(
            self.peek_kind(length),
            TokenKind::Uppercase | TokenKind::Lowercase
        ) {
            length += 1;
        }
        length
    }

    /// The name `length` tokens form. `IsMatch` is four tokens (`I`, `s`, `M`, `atch`) and one
    /// piece of the text; only a name written with spaces between its pieces is copied.
    fn take_name(&mut self, length: usize) -> &'a str {
        let pieces = &self.tokens[self.at..self.at + length];
        self.skip(length);
        let adjacent = pieces.windows(2).all(|pair| pair[0].end == pair[1].start);
        if adjacent {
            return &self.text[pieces[0].start..pieces[length - 1].end];
        }
        let mut name = bumpalo::collections::String::new_in(self.arena);
        for piece in pieces {
            name.push_str(self.text_of(*piece));
        }
        name.into_bump_str()
    }

    fn boxed(&self, expr: Expr<'a>) -> &'a Expr<'a> {
        self.arena.alloc(expr)
    }

    fn statement(&mut self) -> Parsed<Statement<'a>> {
        let first = self.peek();
        let length = self.name_length();
        if length == 0 {
            return Err(self.unexpected("an editor call such as set(...)"));
        }
        let name = self.take_name(length);
        if first.kind == TokenKind::Uppercase {
            return Err(Self::error_at(
                first.start,
                format!(
                    "\"{name}\" is a converter and cannot be used as a statement; a statement starts with an editor (a lowercase name such as set)"
                ),
            ));
        }
        if self.kind() != TokenKind::LParen {
            return Err(self.unexpected(&format!("\"(\" after \"{name}\"")));
        }
        let args = self.arguments()?;
        if self.kind() == TokenKind::LBracket {
            return Err(self.error_here(format!("the editor call \"{name}\" cannot be indexed")));
        }
        let editor = Call {
            function: function_index(name),
            name,
            at: Offset(first.start),
            args,
            keys: &[],
        };
        let condition =
            if self.kind() == TokenKind::Lowercase && self.text_of(self.peek()) == "where" {
                self.advance();
                if self.kind() == TokenKind::End {
                    return Err(self.unexpected("a condition after \"where\""));
                }
                Some(self.boolean()?)
            } else {
                None
            };
        Ok(Statement { editor, condition })
    }

    /// `( [arg {, arg}] )`
    fn arguments(&mut self) -> Parsed<&'a [Arg<'a>]> {
        self.expect(TokenKind::LParen, "\"(\"")?;
        self.enter()?;
        let mut args = ArenaVec::with_capacity_in(4, self.arena);
        if self.kind() != TokenKind::RParen {
            loop {
                args.push(self.argument()?);
                match self.kind() {
                    TokenKind::Comma => {
                        self.advance();
                    }
                    TokenKind::RParen => break,
                    _ => return Err(self.unexpected("\",\" or \")\"")),
                }
            }
        }
        self.advance();
        self.leave();
        Ok(args.into_bump_slice())
    }

    fn argument(&mut self) -> Parsed<Arg<'a>> {
        let first = self.peek();
        let length = self.name_length();
        if length > 0 && self.peek_kind(length) == TokenKind::Equal {
            let name = self.take_name(length);
            if first.kind == TokenKind::Uppercase {
                return Err(Self::error_at(
                    first.start,
                    format!("argument name \"{name}\" must start with a lowercase letter"),
                ));
            }
            self.advance();
            let value = self.value_or_function_name()?;
            return Ok(Arg {
                name: Some(name),
                at: Offset(first.start),
                value,
            });
        }
        let value = self.value_or_function_name()?;
        Ok(Arg {
            name: None,
            at: Offset(first.start),
            value,
        })
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn value_or_function_name(&mut self) -> Parsed<Expr<'a>> {
        let value = self.sum()?;
        if matches!(value.kind, ExprKind::FunctionName(_)) {
            return Ok(value);
        }
        self.held_to_value(value)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn held_to_value(&self, value: Expr<'a>) -> Parsed<Expr<'a>> {
        if is_value(&value) {
            Ok(value)
        } else {
            Err(Self::error_at(
                value.at.0,
                format!("{} is not a value", described(&value)),
            ))
        }
    }

    fn value(&mut self) -> Parsed<Expr<'a>> {
        let value = self.sum()?;
        self.held_to_value(value)
    }

    /// A condition: `or`-joined, `and`-joined operands, each a comparison, a boolean, a
    /// converter call or a parenthesised condition, optionally negated once.
    fn boolean(&mut self) -> Parsed<Expr<'a>> {
        let expr = self.disjunction()?;
        self.require_boolean(expr)
    }

    /// Like [`Self::boolean`], but a lone operand is returned unchecked: inside parentheses it
    /// may be a math expression, which the parentheses' user then checks.
    fn disjunction(&mut self) -> Parsed<Expr<'a>> {
        let first = self.conjunction()?;
        if self.kind() != TokenKind::Or {
            return Ok(first);
        }
        let at = first.at;
        let mut items = ArenaVec::with_capacity_in(2, self.arena);
        items.push(self.require_boolean(first)?);
        while self.kind() == TokenKind::Or {
            self.advance();
            let item = self.conjunction()?;
            items.push(self.require_boolean(item)?);
        }
        Ok(Expr {
            at,
            kind: ExprKind::Or(items.into_bump_slice()),
        })
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn conjunction(&mut self) -> Parsed<Expr<'a>> {
        let first = self.negation()?;
        if self.kind() != TokenKind::And {
            return Ok(first);
        }
        let at = first.at;
        let mut items = ArenaVec::with_capacity_in(2, self.arena);
        items.push(self.require_boolean(first)?);
        while self.kind() == TokenKind::And {
            self.advance();
            let item = self.negation()?;
            items.push(self.require_boolean(item)?);
        }
        Ok(Expr {
            at,
            kind: ExprKind::And(items.into_bump_slice()),
        })
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn negation(&mut self) -> Parsed<Expr<'a>> {
        if self.kind() == TokenKind::Not {
            let not = self.advance();
            if self.kind() == TokenKind::Not {
                return Err(self.error_here("\"not\" cannot follow \"not\"; write not (not ...)"));
            }
            let operand = self.comparison()?;
            let operand = self.require_boolean(operand)?;
            return Ok(Expr {
                at: Offset(not.start),
                kind: ExprKind::Not(self.boxed(operand)),
            });
        }
        self.comparison()
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn require_boolean(&self, operand: Expr<'a>) -> Parsed<Expr<'a>> {
        if is_boolean(&operand) {
            return Ok(operand);
        }
        if self.kind() == TokenKind::Equal {
            return Err(self.error_here("\"=\" is not a comparison operator; write \"==\""));
        }
        let hint = if is_value(&operand) {
            "; compare it with ==, !=, <, <=, > or >="
        } else {
            ""
        };
        Err(Self::error_at(
            operand.at.0,
            format!("{} is not a condition{hint}", described(&operand)),
        ))
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn comparison(&mut self) -> Parsed<Expr<'a>> {
        let left = self.sum()?;
        if self.kind() != TokenKind::Compare {
            return Ok(left);
        }
        let left = self.held_to_value(left)?;
        let operator = self.advance();
        let op = match self.text_of(operator) {
            "==" => CompareOp::Eq,
            "!=" => CompareOp::Ne,
            "<" => CompareOp::Lt,
            "<=" => CompareOp::Le,
            ">" => CompareOp::Gt,
            _ => CompareOp::Ge,
        };
        let right = self.value()?;
        if self.kind() == TokenKind::Compare {
            return Err(self.error_here("comparisons cannot be chained; join them with and"));
        }
        Ok(Expr {
            at: left.at,
            kind: ExprKind::Compare(self.boxed(left), op, self.boxed(right)),
        })
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn math_operand(&self, operand: Expr<'a>, op: Token) -> Parsed<Expr<'a>> {
        if is_math(&operand) {
            Ok(operand)
        } else {
            Err(Self::error_at(
                op.start,
                format!(
                    "\"{}\" needs numbers, paths or converter calls, not {}",
                    self.text_of(op),
                    described(&operand)
                ),
            ))
        }
    }

    fn sum(&mut self) -> Parsed<Expr<'a>> {
        self.chain(TokenKind::AddSub, Self::term)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn term(&mut self) -> Parsed<Expr<'a>> {
        self.chain(TokenKind::MulDiv, Self::factor)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn chain(
        &mut self,
        operator: TokenKind,
        operand: fn(&mut Self) -> Parsed<Expr<'a>>,
    ) -> Parsed<Expr<'a>> {
        let first = operand(self)?;
        if self.kind() != operator {
            return Ok(first);
        }
        let first = self.math_operand(first, self.peek())?;
        let at = first.at;
        let mut rest = ArenaVec::with_capacity_in(1, self.arena);
        while self.kind() == operator {
            let token = self.advance();
            let op = match self.text_of(token) {
                "+" => MathOp::Add,
                "-" => MathOp::Sub,
                "*" => MathOp::Mul,
                _ => MathOp::Div,
            };
            let next = operand(self)?;
            rest.push((op, self.math_operand(next, token)?));
        }
        Ok(Expr {
            at,
            kind: ExprKind::Math(self.boxed(first), rest.into_bump_slice()),
        })
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn factor(&mut self) -> Parsed<Expr<'a>> {
        if self.kind() == TokenKind::AddSub {
            let sign = self.advance();
            if self.kind() == TokenKind::AddSub {
                return Err(self.error_here("a sign cannot follow a sign"));
            }
            let operand = self.primary()?;
            let operand = self.math_operand(operand, sign)?;
            let minus = self.text_of(sign) == "-";
            return Ok(Expr {
                at: Offset(sign.start),
                kind: ExprKind::Sign(minus, self.boxed(operand)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Parsed<Expr<'a>> {
        let token = self.peek();
        let at = Offset(token.start);
        let text = self.text_of(token);
        let kind = match token.kind {
            TokenKind::Int => {
                self.advance();
                let value = text.parse::<i64>().map_err(|_| {
                    Self::error_at(token.start, format!("{text} does not fit a 64-bit integer"))
                })?;
                ExprKind::Int(value)
            }
            TokenKind::Float => {
                self.advance();
                match text.parse::<f64>() {
                    Ok(value) if value.is_finite() => ExprKind::Float(text),
                    _ => {
                        return Err(Self::error_at(
                            token.start,
                            format!("{text} is not a finite 64-bit float"),
                        ));
                    }
                }
            }
            TokenKind::String => {
                self.advance();
                ExprKind::Str(&text[1..text.len() - 1])
            }
            TokenKind::Bytes => {
                self.advance();
                if !text.len().is_multiple_of(2) {
                    return Err(Self::error_at(
                        token.start,
                        format!("{text} has an odd number of hex digits"),
                    ));
                }
                ExprKind::Bytes(&text[2..])
            }
            TokenKind::Nil => {
                self.advance();
                ExprKind::Nil
            }
            TokenKind::Bool => {
                self.advance();
                ExprKind::Bool(text == "true")
            }
            TokenKind::LParen => {
                self.advance();
                self.enter()?;
                let inner = self.disjunction()?;
                self.expect(TokenKind::RParen, "\")\"")?;
                self.leave();
                ExprKind::Paren(self.boxed(inner))
            }
            TokenKind::LBracket => self.list()?,
            TokenKind::LBrace => self.map()?,
            TokenKind::Uppercase => {
                let length = self.name_length();
                let name = self.take_name(length);
                if self.kind() == TokenKind::LParen {
                    let args = self.arguments()?;
                    let keys = self.keys()?;
                    ExprKind::Call(self.arena.alloc(Call {
                        function: function_index(name),
                        name,
                        at,
                        args,
                        keys,
                    }))
                } else if length == 1 {
                    ExprKind::Enum(text)
                } else {
                    ExprKind::FunctionName(name)
                }
            }
            TokenKind::Lowercase => {
                let length = self.name_length();
                if self.peek_kind(length) == TokenKind::LParen {
                    let name = self.take_name(length);
                    return Err(Self::error_at(
                        token.start,
                        format!(
                            "\"{name}\" is an editor and cannot be used inside a value or condition; converter names start with an uppercase letter"
                        ),
                    ));
                }
                ExprKind::Path(self.arena.alloc(self.path()?))
            }
            _ => return Err(self.unexpected("a value")),
        };
        Ok(Expr { at, kind })
    }

    fn path(&mut self) -> Parsed<Path<'a>> {
        let first = self.advance();
        let mut fields = ArenaVec::with_capacity_in(3, self.arena);
        // Whether the dotted name so far is one piece of the text: no space around a dot, no key
        // before one.
        let mut in_one_piece = true;
        let mut end = first.end;
        let context = (self.kind() == TokenKind::Dot).then(|| self.text_of(first));
        let mut segment = match context {
            Some(_) => self.segment_after_dot(&mut end, &mut in_one_piece)?,
            None => first,
        };
        loop {
            let keys = self.keys()?;
            fields.push(Field {
                name: self.text_of(segment),
                at: Offset(segment.start),
                keys,
            });
            if self.kind() != TokenKind::Dot {
                break;
            }
            segment = self.segment_after_dot(&mut end, &mut in_one_piece)?;
        }
        Ok(Path {
            context,
            fields: fields.into_bump_slice(),
            written: in_one_piece.then(|| &self.text[first.start..end]),
        })
    }

    /// The path segment after the dot here; notes whether the dot and the segment follow `end`
    /// without a space, and moves `end` past the segment.
    fn segment_after_dot(&mut self, end: &mut usize, in_one_piece: &mut bool) -> Parsed<Token> {
        let dot = self.advance();
        let segment = self.expect(TokenKind::Lowercase, "a lowercase path segment")?;
        *in_one_piece &= dot.start == *end && segment.start == dot.end;
        *end = segment.end;
        Ok(segment)
    }

    /// `{[key]}`: a string, an integer alone, or a math expression (paths, converter calls).
    fn keys(&mut self) -> Parsed<&'a [Expr<'a>]> {
        if self.kind() != TokenKind::LBracket {
            return Ok(&[]);
        }
        let mut keys = ArenaVec::with_capacity_in(1, self.arena);
        while self.kind() == TokenKind::LBracket {
            self.advance();
            self.enter()?;
            let token = self.peek();
            let key = match token.kind {
                TokenKind::RBracket => {
                    return Err(self.error_here("a key between [ and ] is missing"));
                }
                TokenKind::Int | TokenKind::String => {
                    let key = self.primary()?;
                    if self.kind() != TokenKind::RBracket {
                        return Err(self.unexpected(
                            "\"]\" (a key that starts with a number or string is only that)",
                        ));
                    }
                    key
                }
                _ => {
                    let key = self.sum()?;
                    if !is_math(&key) {
                        return Err(Self::error_at(
                            key.at.0,
                            format!(
                                "{} cannot be a key; a key is a string, an integer, a path, a converter call or math",
                                described(&key)
                            ),
                        ));
                    }
                    key
                }
            };
            self.expect(TokenKind::RBracket, "\"]\"")?;
            self.leave();
            keys.push(key);
        }
        Ok(keys.into_bump_slice())
    }

    /// `[ {value} {, value} ]`: the collector's grammar allows `["a" "b"]` and `[, "a"]`.
    fn list(&mut self) -> Parsed<ExprKind<'a>> {
        self.advance();
        self.enter()?;
        let mut items = ArenaVec::with_capacity_in(4, self.arena);
        while !matches!(
            self.kind(),
            TokenKind::Comma | TokenKind::RBracket | TokenKind::End
        ) {
            items.push(self.value()?);
        }
        while self.kind() == TokenKind::Comma {
            self.advance();
            items.push(self.value()?);
        }
        self.expect(TokenKind::RBracket, "\",\" or \"]\"")?;
        self.leave();
        Ok(ExprKind::List(items.into_bump_slice()))
    }

    /// `{ {"key": value [,]} }`
    fn map(&mut self) -> Parsed<ExprKind<'a>> {
        self.advance();
        self.enter()?;
        let mut entries = ArenaVec::with_capacity_in(2, self.arena);
        while self.kind() != TokenKind::RBrace {
            let key = self.expect(TokenKind::String, "a string key or \"}\"")?;
            let raw = self.text_of(key);
            self.expect(TokenKind::Colon, "\":\"")?;
            let value = self.value()?;
            entries.push((&raw[1..raw.len() - 1], value));
            if self.kind() == TokenKind::Comma {
                self.advance();
            }
        }
        self.advance();
        self.leave();
        Ok(ExprKind::Map(entries.into_bump_slice()))
    }
}

/// A token as an error message names it: a string literal as written (it brings its own quotes),
/// anything else in quotes; long tokens (a 3 MiB string) cut after 40 characters.
fn shown_token(text: &str) -> String {
    const SHOWN_CHARS: usize = 40;
    let shown: String = text.chars().take(SHOWN_CHARS).collect();
    let cut = if shown.len() < text.len() { "…" } else { "" };
    if text.starts_with('"') {
        format!("string {shown}{cut}")
    } else {
        format!("\"{shown}{cut}\"")
    }
}
