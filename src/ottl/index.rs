//! Finding a name in a static table by hashing instead of binary search: every statement looks
//! up each function it calls and each path it reads, and comparing a name with the seven
//! candidates of a binary search cost more than the rest of checking it.

/// A hash index over a table's names.
pub(crate) struct NameIndex {
    names: Vec<&'static str>,
    /// Open addressing with linear probing; a slot holds a position in `names` plus one, or 0.
    slots: Vec<u16>,
}

/// The Fx hash (rustc's) over the name eight bytes at a time: names are 3 to 40 bytes, and a
/// byte-at-a-time hash cost more than the rest of a lookup.
fn hash(name: &str) -> usize {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut hash = 0u64;
    let mut mix = |word: u64| hash = (hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    let mut chunks = name.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        mix(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
    }
    let tail = chunks.remainder();
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    // The length tells "a" from "a\0".
    mix(u64::from_le_bytes(last) ^ ((name.len() as u64) << 56));
    // The upper bits are the well-mixed ones.
    ((hash >> 32) ^ hash) as usize
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
            let mut slot = hash(name) & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = position as u16 + 1;
        }
        NameIndex { names, slots }
    }

    /// The position of `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut slot = hash(name) & mask;
        loop {
            let position = usize::from(self.slots[slot]).checked_sub(1)?;
            if self.names[position] == name {
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
            assert_eq!(index.find(name), Some(position), "{name}");
        }
        for missing in ["span", "span.nam", "span.name.x", "b", "spanname", "a\0"] {
            assert_eq!(index.find(missing), None, "{missing}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_linear_search(
            names in proptest::collection::hash_set("[ab.\0]{0,10}", 0..40),
            wanted in "[ab.\0]{0,10}",
        ) {
            let names: Vec<&'static str> = names
                .into_iter()
                .map(|name| &*Box::leak(name.into_boxed_str()))
                .collect();
            let index = NameIndex::new(names.iter().copied());
            prop_assert_eq!(
                index.find(&wanted),
                names.iter().position(|name| *name == wanted)
            );
        }
    }
}
