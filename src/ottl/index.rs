//! Finding a name in a static table by hashing instead of binary search: every statement looks
//! up each function it calls and each path it reads, and comparing a name with the seven
//! candidates of a binary search cost more than the rest of checking it.

/// A hash index over a table's names.
pub(crate) struct NameIndex {
    names: Vec<&'static str>,
    /// Open addressing with linear probing; a slot holds a position in `names` plus one, or 0.
    slots: Vec<u16>,
}

fn word(eight: &[u8]) -> u64 {
    u64::from_le_bytes(eight.try_into().expect("eight bytes"))
}

/// The up to seven bytes after a name's last whole word, as the little-endian word they would
/// form padded with zeros. Read with two overlapping loads instead of copying them into a
/// padded buffer: a copy of a variable length is a library call, and lookups made dozens of
/// them per webhook request.
fn tail_word(tail: &[u8]) -> u64 {
    let n = tail.len();
    let at = |i: usize| u64::from(tail[i]);
    match n {
        0 => 0,
        1..=3 => at(0) | at(n / 2) << (8 * (n / 2)) | at(n - 1) << (8 * (n - 1)),
        _ => {
            let low = u32::from_le_bytes(tail[..4].try_into().expect("four bytes"));
            let high = u32::from_le_bytes(tail[n - 4..].try_into().expect("four bytes"));
            u64::from(low) | u64::from(high) << (8 * (n - 4))
        }
    }
}

/// The Fx hash (rustc's) over the name eight bytes at a time: names are 3 to 40 bytes, and a
/// byte-at-a-time hash cost more than the rest of a lookup.
fn hash(name: &str) -> usize {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut hash = 0u64;
    let mut mix = |word: u64| hash = (hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    let mut chunks = name.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        mix(word(chunk));
    }
    // The length tells "a" from "a\0".
    mix(tail_word(chunks.remainder()) ^ ((name.len() as u64) << 56));
    // The upper bits are the well-mixed ones.
    ((hash >> 32) ^ hash) as usize
}

/// Whether two names are equal, compared a word at a time like [`hash`] reads them, without the
/// library call a string comparison makes.
fn same_name(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a.as_bytes().chunks_exact(8), b.as_bytes().chunks_exact(8));
    (&mut a).zip(&mut b).all(|(x, y)| word(x) == word(y))
        && tail_word(a.remainder()) == tail_word(b.remainder())
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
            if same_name(self.names[position], name) {
                return Some(position);
            }
            slot = (slot + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{NameIndex, same_name, tail_word};
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

    #[test]
    fn tail_words_are_the_zero_padded_bytes() {
        for n in 0..8 {
            let tail: Vec<u8> = (1..=n as u8).map(|b| b * 0x11).collect();
            let mut padded = [0u8; 8];
            padded[..n].copy_from_slice(&tail);
            assert_eq!(tail_word(&tail), u64::from_le_bytes(padded), "{n} bytes");
        }
    }

    proptest! {
        #[test]
        fn names_are_the_same_exactly_when_equal(a in "[ab\0]{0,20}", b in "[ab\0]{0,20}") {
            prop_assert_eq!(same_name(&a, &b), a == b);
            prop_assert!(same_name(&a, &a.clone()));
        }

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
