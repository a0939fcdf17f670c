//! The manager's global allocator: mimalloc, called the way Rust's own `System` allocator calls
//! `malloc`. The `mimalloc` crate passes every request to `mi_malloc_aligned`; mimalloc 3 serves
//! an aligned request of a size that is not a power of two (24, 40, 48 bytes, ...) from the next
//! larger size class through its slow over-allocating path, although every block of a size that
//! is a multiple of the alignment is aligned already. Strings, vectors and boxes are such sizes,
//! so plain `mi_malloc` serves almost all requests.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as ffi;

/// mimalloc's `MI_MAX_ALIGN_SIZE`: its size classes are multiples of 8 bytes, of 16 above 16
/// bytes, and a page's first block is 16-aligned, so a block whose size is a multiple of an
/// alignment up to this one has that alignment.
const NATURAL_ALIGN: usize = 16;

/// mimalloc as the global allocator (`#[global_allocator]` in the binary and the benchmarks).
pub struct MiMalloc;

fn naturally_aligned(size: usize, align: usize) -> bool {
    align <= NATURAL_ALIGN && size.is_multiple_of(align)
}

// SAFETY: every block comes from mimalloc and goes back to it. Blocks from the plain calls are
// only used for layouts `naturally_aligned` admits, whose alignment mimalloc's size classes give
// (NATURAL_ALIGN); the others use mimalloc's aligned calls, which honour any power of two.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain FFI calls; a null result is passed on as the allocation failure.
        unsafe {
            if naturally_aligned(layout.size(), layout.align()) {
                ffi::mi_malloc(layout.size()).cast()
            } else {
                ffi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if naturally_aligned(layout.size(), layout.align()) {
                ffi::mi_zalloc(layout.size()).cast()
            } else {
                ffi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned; mi_free takes blocks from
        // the plain and the aligned calls alike.
        unsafe { ffi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block this allocator returned; a block kept in place was
        // aligned for `layout` already, and a moved one follows the same rule as in `alloc`.
        unsafe {
            if naturally_aligned(new_size, layout.align()) {
                ffi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                ffi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(ptr: *mut u8, align: usize) -> bool {
        !ptr.is_null() && (ptr as usize).is_multiple_of(align)
    }

    /// Many live blocks of every small size and alignment, so that each size class hands out
    /// blocks from several places in its pages, then grown and shrunk.
    #[test]
    fn every_block_has_the_alignment_its_layout_asks_for() {
        let sizes = (1..=1024).chain([1500, 4096, 10_000, 70_000, 300_000, 5 << 20]);
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in sizes.clone() {
                let layout = Layout::from_size_align(size, align).unwrap();
                let blocks: Vec<*mut u8> = (0..4)
                    .map(|i| {
                        // SAFETY: a non-zero size; every block is freed below.
                        let ptr = unsafe {
                            if i % 2 == 0 {
                                MiMalloc.alloc(layout)
                            } else {
                                MiMalloc.alloc_zeroed(layout)
                            }
                        };
                        assert!(aligned(ptr, align), "size {size}, alignment {align}");
                        ptr
                    })
                    .collect();
                // SAFETY: the block of `alloc_zeroed` is `size` bytes long.
                let zeroed = unsafe { std::slice::from_raw_parts(blocks[1], size) };
                assert!(zeroed.iter().all(|byte| *byte == 0));
                for (i, ptr) in blocks.into_iter().enumerate() {
                    // SAFETY: the block was allocated with `layout` and is written only within
                    // its bytes; each is freed once.
                    unsafe {
                        ptr.write(i as u8);
                        let new_size = if i % 2 == 0 {
                            size * 3
                        } else {
                            size.div_ceil(2)
                        };
                        let moved = MiMalloc.realloc(ptr, layout, new_size);
                        assert!(
                            aligned(moved, align),
                            "realloc {size} -> {new_size}, {align}"
                        );
                        assert_eq!(moved.read(), i as u8, "realloc keeps the contents");
                        MiMalloc.dealloc(moved, Layout::from_size_align(new_size, align).unwrap());
                    }
                }
            }
        }
    }
}
