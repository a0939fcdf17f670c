//! Finding a name in a static table by hashing instead of binary search: every statement looks
//! up each function it calls and each path it reads, and comparing a name with the seven
//! candidates of a binary search cost more than the rest of checking it.

/// A hash index over a table's names; a dotted name may be looked up in segments
/// (`["span", "attributes"]` finds `span.attributes`) without joining them.
pub(crate) struct NameIndex {
    names: Vec<&'static str>,
    /// Open addressing with linear probing; a slot holds a position in `names` plus one, or 0.
    slots: Vec<u16>,
}

/// FNV-1a over the segments joined with dots.
fn hash<'s>(segments: impl Iterator<Item = &'s str>) -> usize {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    let mut mix = |byte: u8| hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
    for (i, segment) in segments.enumerate() {
        if i > 0 {
            mix(b'.');
        }
        segment.bytes().for_each(&mut mix);
    }
    // The upper bits are the well-mixed ones.
    (hash ^ (hash >> 32)) as usize
}

/// Whether the segments joined with dots are `name`.
fn is<'s>(name: &str, segments: impl Iterator<Item = &'s str>) -> bool {
    let mut rest = name;
    for (i, segment) in segments.enumerate() {
        if i > 0 {
            match rest.strip_prefix('.') {
                Some(after) => rest = after,
                None => return false,
            }
        }
        match rest.strip_prefix(segment) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

impl NameIndex {
    pub fn new(names: impl IntoIterator<Item = &'static str>) -> NameIndex {
        let names: Vec<&'static str> = names.into_iter().collect();
        assert!(
            names.len() < usize::from(u16::MAX),
            "too many names to index"
        );
        // At most half full, so that probes stay short.
        let mut slots = vec![0u16; (names.len() * 2).next_power_of_two().max(2)];
        let mask = slots.len() - 1;
        for (position, name) in names.iter().enumerate() {
            let mut slot = hash(std::iter::once(*name)) & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = position as u16 + 1;
        }
        NameIndex { names, slots }
    }

    /// The position of the name the segments form.
    pub fn find<'s>(&self, segments: impl Iterator<Item = &'s str> + Clone) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut slot = hash(segments.clone()) & mask;
        loop {
            let position = usize::from(self.slots[slot]).checked_sub(1)?;
            if is(self.names[position], segments.clone()) {
                return Some(position);
            }
            slot = (slot + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NameIndex;
    use proptest::prelude::*;

    #[test]
    fn finds_every_name_and_nothing_else() {
        let names = [
            "span.name",
            "span.attributes",
            "resource.attributes",
            "a",
            "",
        ];
        let index = NameIndex::new(names);
        for (position, name) in names.iter().enumerate() {
            assert_eq!(index.find(name.split('.')), Some(position), "{name}");
            assert_eq!(index.find(std::iter::once(*name)), Some(position), "{name}");
        }
        for missing in ["span", "span.nam", "span.name.x", "b", "spanname"] {
            assert_eq!(index.find(missing.split('.')), None, "{missing}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_linear_search(
            names in proptest::collection::hash_set("[ab.]{0,4}", 0..40),
            wanted in proptest::collection::vec("[ab.]{0,2}", 1..3),
        ) {
            let names: Vec<&'static str> = names
                .into_iter()
                .map(|name| &*Box::leak(name.into_boxed_str()))
                .collect();
            let index = NameIndex::new(names.iter().copied());
            let joined = wanted.join(".");
            prop_assert_eq!(
                index.find(wanted.iter().map(String::as_str)),
                names.iter().position(|name| *name == joined)
            );
        }
    }
}
