//! The shape of an OTTL function as the collector's parser sees it: arity and, per parameter,
//! what may be written there. The tables themselves are generated (`tables.rs`).

use std::sync::LazyLock;

use super::context::Context;
use super::index::NameIndex;
use super::tables;

/// What an argument position accepts (the kinds the trace functions of 0.151.0 use; the
/// generator refuses others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgKind {
    /// A path (a setter): nothing else.
    Path,
    /// Any value; a literal is converted when the statement is parsed, so a literal the getter
    /// cannot convert is refused then.
    Value(Getter),
    /// A converter name written bare, e.g. `SHA256`.
    FunctionName,
    StringLiteral,
    IntLiteral,
    BoolLiteral,
    /// A `[...]` list whose elements follow the element kind.
    List(&'static ArgKind),
}

/// The typed getters of the collector's OTTL package.
#[allow(
    clippy::enum_variant_names,
    reason = "the variants are the collector's getter type names, as the fact tables spell them"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Getter {
    Getter,
    StringGetter,
    StringLikeGetter,
    IntGetter,
    IntLikeGetter,
    FloatGetter,
    FloatLikeGetter,
    BoolGetter,
    BoolLikeGetter,
    PMapGetter,
    PSliceGetter,
    DurationGetter,
    TimeGetter,
    ByteSliceLikeGetter,
}

#[derive(Debug)]
pub(crate) struct Param {
    /// The spelling used in messages.
    pub name: &'static str,
    /// The named-argument spellings that reach this parameter.
    pub forms: &'static [&'static str],
    pub optional: bool,
    pub kind: ArgKind,
}

/// At least the most parameters a function has (`CommunityID` and `replace_all_patterns` have
/// six), so that a call's arguments can be sorted into parameters without allocating.
pub(crate) const MAX_PARAMS: usize = 8;

#[derive(Debug)]
pub(crate) struct Function {
    pub name: &'static str,
    pub editor: bool,
    /// Minimum and maximum argument count; `None` when the function has no arguments struct,
    /// so the collector ignores whatever arguments are written.
    pub arity: Option<(u8, u8)>,
    pub params: &'static [Param],
}

/// Where the function `name` sits in [`tables::FUNCTIONS`], if any surface defines it.
pub(crate) fn function_index(name: &str) -> Option<u16> {
    static NAMES: LazyLock<NameIndex> =
        LazyLock::new(|| NameIndex::new(tables::FUNCTIONS.iter().map(|function| function.name)));
    NAMES.find(name).and_then(|at| u16::try_from(at).ok())
}

/// Which functions each surface and context defines, one bit per position in
/// [`tables::FUNCTIONS`], at `surface * 4 + context`: every call is looked up in its surface and
/// context during inference and again while it is checked.
static MEMBERSHIP: LazyLock<Vec<Vec<u64>>> = LazyLock::new(|| {
    Surface::ALL
        .into_iter()
        .flat_map(|surface| Context::ALL.map(|context| surface.table(context)))
        .map(|table| {
            let mut words = vec![0u64; tables::FUNCTIONS.len().div_ceil(64)];
            for &index in table {
                words[usize::from(index) / 64] |= 1 << (index % 64);
            }
            words
        })
        .collect()
});

/// Where a call is written, which decides the function set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    TransformStatement,
    TransformCondition,
    FilterCondition,
}

impl Surface {
    /// In declaration order, which [`MEMBERSHIP`] is indexed by.
    const ALL: [Surface; 3] = [
        Surface::TransformStatement,
        Surface::TransformCondition,
        Surface::FilterCondition,
    ];

    fn table(self, context: Context) -> &'static [u16] {
        use Context::{Resource, Scope, Span, SpanEvent};
        match (self, context) {
            (Surface::TransformStatement, Resource) => tables::TRANSFORM_STATEMENTS_RESOURCE,
            (Surface::TransformStatement, Scope) => tables::TRANSFORM_STATEMENTS_SCOPE,
            (Surface::TransformStatement, Span) => tables::TRANSFORM_STATEMENTS_SPAN,
            (Surface::TransformStatement, SpanEvent) => tables::TRANSFORM_STATEMENTS_SPANEVENT,
            (Surface::TransformCondition, Resource) => tables::TRANSFORM_CONDITIONS_RESOURCE,
            (Surface::TransformCondition, Scope) => tables::TRANSFORM_CONDITIONS_SCOPE,
            (Surface::TransformCondition, Span) => tables::TRANSFORM_CONDITIONS_SPAN,
            (Surface::TransformCondition, SpanEvent) => tables::TRANSFORM_CONDITIONS_SPANEVENT,
            (Surface::FilterCondition, Resource) => tables::FILTER_CONDITIONS_RESOURCE,
            (Surface::FilterCondition, Scope) => tables::FILTER_CONDITIONS_SCOPE,
            (Surface::FilterCondition, Span) => tables::FILTER_CONDITIONS_SPAN,
            (Surface::FilterCondition, SpanEvent) => tables::FILTER_CONDITIONS_SPANEVENT,
        }
    }

    /// The function of that name in this surface and context.
    pub(crate) fn function(self, context: Context, name: &str) -> Option<&'static Function> {
        self.function_at(context, function_index(name))
    }

    /// The function at `index` of [`tables::FUNCTIONS`] (from [`function_index`]), if this
    /// surface and context define it.
    pub(crate) fn function_at(
        self,
        context: Context,
        index: Option<u16>,
    ) -> Option<&'static Function> {
        let index = usize::from(index?);
        self.defines(context, index)
            .then(|| &tables::FUNCTIONS[index])
    }

    /// The contexts in which this surface defines the function at `index`, as a bit set of
    /// [`Context::bit`]s.
    pub(crate) fn defining_contexts(self, index: Option<u16>) -> u8 {
        let Some(index) = index else {
            return 0;
        };
        Context::ALL.into_iter().fold(0, |bits, context| {
            if self.defines(context, usize::from(index)) {
                bits | context.bit()
            } else {
                bits
            }
        })
    }

    fn defines(self, context: Context, index: usize) -> bool {
        let words = &MEMBERSHIP[self as usize * Context::ALL.len() + context as usize];
        words[index / 64] >> (index % 64) & 1 == 1
    }

    /// Every function of this surface and context.
    pub(crate) fn functions(self, context: Context) -> impl Iterator<Item = &'static Function> {
        self.table(context)
            .iter()
            .map(|&i| &tables::FUNCTIONS[usize::from(i)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_sorted_and_fit_the_parameter_slots() {
        assert!(
            tables::FUNCTIONS
                .iter()
                .all(|function| function.params.len() <= MAX_PARAMS)
        );
        for surface in Surface::ALL {
            for context in Context::ALL {
                let table = surface.table(context);
                assert!(table.windows(2).all(|pair| pair[0] < pair[1]));
                assert!(surface.function(context, "IsMatch").is_some());
                for (index, function) in tables::FUNCTIONS.iter().enumerate() {
                    let index = u16::try_from(index).unwrap();
                    let defined = surface.function_at(context, Some(index));
                    assert_eq!(
                        defined.is_some(),
                        table.contains(&index),
                        "{surface:?} {context:?} {}",
                        function.name
                    );
                    assert!(defined.is_none_or(|defined| std::ptr::eq(defined, function)));
                }
                assert!(surface.function_at(context, None).is_none());
            }
        }
        assert_eq!(function_index("NoSuchFunction"), None);
    }
}
