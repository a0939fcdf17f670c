//! The four OTTL contexts the collector registers for traces, with their paths and enums.

use std::sync::LazyLock;

use super::index::NameIndex;
use super::tables;

/// The paths of each context, in the order of [`Context::ALL`].
static PATH_INDEXES: LazyLock<[NameIndex; 4]> = LazyLock::new(|| {
    Context::ALL.map(|context| NameIndex::new(context.paths().iter().map(|(path, _)| *path)))
});

/// Every enum symbol of any context, with the contexts that define it as a bit set.
static ENUM_INDEX: LazyLock<(NameIndex, Vec<u8>)> = LazyLock::new(|| {
    let mut symbols: Vec<&'static str> = Vec::new();
    let mut defining: Vec<u8> = Vec::new();
    for context in Context::ALL {
        for (symbol, _) in context.enums() {
            match symbols.iter().position(|s| s == symbol) {
                Some(at) => defining[at] |= context.bit(),
                None => {
                    symbols.push(symbol);
                    defining.push(context.bit());
                }
            }
        }
    }
    (NameIndex::new(symbols), defining)
});

/// A trace context of the transform and filter processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Resource,
    Scope,
    Span,
    SpanEvent,
}

impl Context {
    pub const ALL: [Context; 4] = [
        Context::Resource,
        Context::Scope,
        Context::Span,
        Context::SpanEvent,
    ];

    /// Every context as a bit set of [`Context::bit`]s.
    pub(crate) const ALL_BITS: u8 = (1 << Context::ALL.len()) - 1;

    /// This context's bit in a set of contexts.
    pub(crate) fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The contexts that define the enum `symbol`, as a bit set.
    pub(crate) fn defining_enum(symbol: &str) -> u8 {
        let (index, defining) = &*ENUM_INDEX;
        index.find(symbol).map_or(0, |at| defining[at])
    }

    /// The name as written in paths and in a processor's `context:` key.
    pub fn name(self) -> &'static str {
        match self {
            Context::Resource => "resource",
            Context::Scope => "scope",
            Context::Span => "span",
            Context::SpanEvent => "spanevent",
        }
    }

    pub fn from_name(name: &str) -> Option<Context> {
        Context::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Paths of this context (`span.name`, `resource.attributes`, ...) and whether they take keys.
    pub(crate) fn paths(self) -> &'static [(&'static str, bool)] {
        match self {
            Context::Resource => tables::PATHS_RESOURCE,
            Context::Scope => tables::PATHS_SCOPE,
            Context::Span => tables::PATHS_SPAN,
            Context::SpanEvent => tables::PATHS_SPANEVENT,
        }
    }

    /// Whether `path` (dotted, without keys) exists here, and whether it takes keys.
    pub(crate) fn path(self, path: &str) -> Option<bool> {
        PATH_INDEXES[self as usize]
            .find(path)
            .map(|at| self.paths()[at].1)
    }

    pub(crate) fn enums(self) -> &'static [(&'static str, i64)] {
        match self {
            Context::Resource => tables::ENUMS_RESOURCE,
            Context::Scope => tables::ENUMS_SCOPE,
            Context::Span => tables::ENUMS_SPAN,
            Context::SpanEvent => tables::ENUMS_SPANEVENT,
        }
    }

    pub(crate) fn has_enum(self, symbol: &str) -> bool {
        Context::defining_enum(symbol) & self.bit() != 0
    }

    /// The first path segments this context's parser accepts.
    pub(crate) fn path_context_names(self) -> &'static [&'static str] {
        match self {
            Context::Resource => tables::PATH_CONTEXT_NAMES_RESOURCE,
            Context::Scope => tables::PATH_CONTEXT_NAMES_SCOPE,
            Context::Span => tables::PATH_CONTEXT_NAMES_SPAN,
            Context::SpanEvent => tables::PATH_CONTEXT_NAMES_SPANEVENT,
        }
    }

    /// Rank in the collector's inference order; names it does not know rank last.
    pub(crate) fn rank(name: &str) -> usize {
        tables::CONTEXT_PRIORITY
            .iter()
            .position(|n| *n == name)
            .unwrap_or(tables::CONTEXT_PRIORITY.len())
    }

    /// The contexts the collector tries when this one lacks a function or enum symbol: those
    /// whose parser accepts this context as a path prefix, in priority order.
    pub(crate) fn lower_contexts(self) -> impl Iterator<Item = Context> {
        let mut lower: Vec<Context> = Context::ALL
            .into_iter()
            .filter(|c| *c != self && c.path_context_names().contains(&self.name()))
            .collect();
        lower.sort_by_key(|c| Context::rank(c.name()));
        lower.into_iter()
    }
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_found() {
        for context in Context::ALL {
            for (path, indexable) in context.paths() {
                assert_eq!(context.path(path), Some(*indexable), "{path}");
            }
            assert_eq!(context.path("span.nam"), None);
            assert_eq!(context.path("span"), None);
        }
    }

    /// The enum index answers as the tables do, for every symbol of every context.
    #[test]
    fn every_enum_symbol_is_found_in_its_contexts() {
        for context in Context::ALL {
            for (symbol, _) in Context::ALL.iter().flat_map(|c| c.enums()) {
                let listed = context.enums().iter().any(|(s, _)| s == symbol);
                assert_eq!(context.has_enum(symbol), listed, "{context} {symbol}");
            }
            assert!(!context.has_enum("SPAN_KIND_SERVR"));
            assert!(!context.has_enum(""));
        }
        assert_ne!(Context::defining_enum("SPAN_KIND_SERVER"), 0);
    }
}
