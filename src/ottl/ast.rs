//! The syntax tree of one OTTL statement or condition, and its canonical text (`Display`). Names
//! and literals borrow from the text parsed; nodes live in the parser's arena.

use std::fmt;

/// Where a node was written: the byte offset of its first character in the text. Positions are
/// not part of what a node means, so they compare equal: a re-parsed printout equals the original
/// tree.
#[derive(Debug, Clone, Copy, Eq)]
pub struct Offset(pub usize);

impl PartialEq for Offset {
    fn eq(&self, _: &Offset) -> bool {
        true
    }
}

/// `editor(args) [where condition]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    pub editor: Call<'a>,
    pub condition: Option<Expr<'a>>,
}

/// A function call: an editor at the top of a statement, a converter anywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// In the arena when written in pieces (`Is Match(...)`, which the collector reads as one
    /// name), else borrowed from the text.
    pub name: &'a str,
    pub at: Offset,
    pub args: &'a [Arg<'a>],
    /// Keys indexing a converter's result: `Split(span.name, ",")[0]`.
    pub keys: &'a [Expr<'a>],
    /// Where the function of this name sits in the collector's function table, if any surface
    /// defines it: found once while parsing, since context inference and the checks each ask
    /// for it.
    pub(crate) function: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg<'a> {
    /// `name=value` for a named argument.
    pub name: Option<&'a str>,
    pub at: Offset,
    pub value: Expr<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expr<'a> {
    pub at: Offset,
    pub kind: ExprKind<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// An expression's shape. Subtrees live in the arena the parser was given
/// ([`super::parser::Arena`]), so a tree is freed at once with its arena and copying a node is
/// copying references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprKind<'a> {
    /// Two or more operands joined by `or`.
    Or(&'a [Expr<'a>]),
    /// Two or more operands joined by `and`.
    And(&'a [Expr<'a>]),
    Not(&'a Expr<'a>),
    Compare(&'a Expr<'a>, CompareOp, &'a Expr<'a>),
    /// A chain of operators of one precedence level: `a + b - c` or `a * b / c`.
    Math(&'a Expr<'a>, &'a [(MathOp, Expr<'a>)]),
    /// A unary sign; `true` for minus.
    Sign(bool, &'a Expr<'a>),
    Paren(&'a Expr<'a>),
    Nil,
    Bool(bool),
    Int(i64),
    /// The float as written (`1.5`, `.5`, `1.5e3`).
    Float(&'a str),
    /// The string as written between the quotes, escapes not decoded.
    Str(&'a str),
    /// The hex digits after `0x`.
    Bytes(&'a str),
    Enum(&'a str),
    List(&'a [Expr<'a>]),
    /// Keys as written between the quotes, and values.
    Map(&'a [(&'a str, Expr<'a>)]),
    Path(&'a Path<'a>),
    Call(&'a Call<'a>),
    /// A converter named without calling it, as an argument: `replace_pattern(..., Murmur3Hash)`.
    FunctionName(&'a str),
}

/// `[context.]field{.field}`, each field with optional keys.
#[derive(Debug, Clone, Copy)]
pub struct Path<'a> {
    pub context: Option<&'a str>,
    pub fields: &'a [Field<'a>],
    /// The dotted name as written, when it is one piece of the text (`span.attributes`, not
    /// `span . attributes`): the checker looks it up without joining the segments. How a path
    /// was spaced is not part of what it means, so it does not take part in comparisons.
    pub written: Option<&'a str>,
}

impl PartialEq for Path<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.context == other.context && self.fields == other.fields
    }
}

impl Eq for Path<'_> {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub at: Offset,
    pub keys: &'a [Expr<'a>],
}

impl Path<'_> {
    /// The dotted name without keys: `span.attributes`.
    pub fn dotted(&self) -> String {
        let mut out = String::new();
        if let Some(context) = &self.context {
            out.push_str(context);
        }
        for field in self.fields {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(field.name);
        }
        out
    }
}

impl CompareOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

impl MathOp {
    pub fn symbol(self) -> &'static str {
        match self {
            MathOp::Add => "+",
            MathOp::Sub => "-",
            MathOp::Mul => "*",
            MathOp::Div => "/",
        }
    }
}

fn keys(f: &mut fmt::Formatter<'_>, keys: &[Expr]) -> fmt::Result {
    for key in keys {
        write!(f, "[{key}]")?;
    }
    Ok(())
}

fn joined(f: &mut fmt::Formatter<'_>, items: &[Expr], separator: &str) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for Statement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.editor)?;
        if let Some(condition) = &self.condition {
            write!(f, " where {condition}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if let Some(name) = &arg.name {
                write!(f, "{name}=")?;
            }
            write!(f, "{}", arg.value)?;
        }
        f.write_str(")")?;
        keys(f, self.keys)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(context) = &self.context {
            write!(f, "{context}.")?;
        }
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(field.name)?;
            keys(f, field.keys)?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Or(items) => joined(f, items, " or "),
            ExprKind::And(items) => joined(f, items, " and "),
            ExprKind::Not(operand) => write!(f, "not {operand}"),
            ExprKind::Compare(left, op, right) => write!(f, "{left} {} {right}", op.symbol()),
            ExprKind::Math(first, rest) => {
                write!(f, "{first}")?;
                for (op, operand) in *rest {
                    write!(f, " {} {operand}", op.symbol())?;
                }
                Ok(())
            }
            ExprKind::Sign(minus, operand) => {
                write!(f, "{}{operand}", if *minus { "-" } else { "+" })
            }
            ExprKind::Paren(inner) => write!(f, "({inner})"),
            ExprKind::Nil => f.write_str("nil"),
            ExprKind::Bool(value) => write!(f, "{value}"),
            ExprKind::Int(value) => write!(f, "{value}"),
            ExprKind::Float(text) | ExprKind::Enum(text) => f.write_str(text),
            ExprKind::FunctionName(name) => f.write_str(name),
            ExprKind::Str(raw) => write!(f, "\"{raw}\""),
            ExprKind::Bytes(hex) => write!(f, "0x{hex}"),
            ExprKind::List(items) => {
                f.write_str("[")?;
                joined(f, items, ", ")?;
                f.write_str("]")
            }
            ExprKind::Map(entries) => {
                f.write_str("{")?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "\"{key}\": {value}")?;
                }
                f.write_str("}")
            }
            ExprKind::Path(path) => write!(f, "{path}"),
            ExprKind::Call(call) => write!(f, "{call}"),
        }
    }
}

// Every parsing level returns an `Expr` by value; keep it to a few words.
const _: () = assert!(std::mem::size_of::<Expr>() <= 40);
