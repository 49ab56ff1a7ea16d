//! The connector's global allocator (feature `global-allocator`, on by
//! default): free lists of power-of-two size classes in front of the
//! standard library's own allocator (wasi-libc's dlmalloc).
//!
//! A hook's call parses an event into maps, strings and vectors, almost all
//! of them small, and drops them all before it returns; the next call makes
//! the same shapes again. Here a small block is taken from its class's free
//! list (or cut from a 64 KiB chunk) and put back on it when freed: a few
//! instructions each, where dlmalloc splits, coalesces and bins. Blocks above
//! [`MAX_SMALL`] bytes, or aligned to more than [`MAX_ALIGN`], and the chunks
//! themselves, come from dlmalloc, which takes its memory from `memory.grow`:
//! the host's memory limit binds exactly as without this allocator.
//!
//! The cost: a freed small block is kept for its own class only, so memory
//! that small blocks of one size used (at their peak) is not given back to
//! blocks of another size or to large ones.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// The smallest class: 8 bytes (a free block holds the next one's address).
const MIN_SHIFT: u32 = 3;
/// The largest class: 8 KiB.
const MAX_SHIFT: u32 = 13;
/// The largest block kept in a size class.
pub const MAX_SMALL: usize = 1 << MAX_SHIFT;
/// The largest alignment a size class serves.
pub const MAX_ALIGN: usize = 16;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// What a new chunk takes from the underlying allocator.
const CHUNK: usize = 64 << 10;

/// Size-class free lists over `System` (see the module documentation).
pub struct Allocator(UnsafeCell<Heap>);

struct Heap {
    /// The first free block of each class; each free block starts with the
    /// address of the next (null ends the list).
    free: [*mut u8; CLASSES],
    /// The part of the current chunk no block was cut from yet.
    next: usize,
    end: usize,
}

// SAFETY: on wasm without threads (`target_feature = "atomics"` off) no two
// calls can overlap. Elsewhere it is not `Sync`, so it cannot be a
// `static`, let alone the global allocator (the unit tests use their own
// instances, each from one thread).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl Sync for Allocator {}

impl Allocator {
    pub const fn new() -> Allocator {
        Allocator(UnsafeCell::new(Heap {
            free: [ptr::null_mut(); CLASSES],
            next: 0,
            end: 0,
        }))
    }
}

impl Default for Allocator {
    fn default() -> Allocator {
        Allocator::new()
    }
}

/// The size class (its index) of a block of `size` bytes aligned to
/// `align`, or `None` for one left to `System`. The same layout always gives
/// the same answer, so `dealloc` finds the class `alloc` used.
#[inline]
fn class(size: usize, align: usize) -> Option<usize> {
    if size > MAX_SMALL || align > MAX_ALIGN {
        return None;
    }
    // A block is aligned to its size (up to MAX_ALIGN): an alignment above
    // the size takes a larger class.
    let shift = size
        .max(align)
        .max(1 << MIN_SHIFT)
        .next_power_of_two()
        .trailing_zeros();
    Some((shift - MIN_SHIFT) as usize)
}

impl Heap {
    /// A block of class `class` (`1 << (class + MIN_SHIFT)` bytes, aligned to
    /// its size up to `MAX_ALIGN`), or null when `System` has no memory left.
    #[inline]
    unsafe fn take(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: a free block starts with the next one's address.
            self.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        unsafe { self.cut(class) }
    }

    /// A new block of class `class` cut from the current chunk (a new chunk
    /// when it has no room left).
    #[cold]
    unsafe fn cut(&mut self, class: usize) -> *mut u8 {
        let size = 1usize << (class as u32 + MIN_SHIFT);
        let align = size.min(MAX_ALIGN);
        let mut start = (self.next + align - 1) & !(align - 1);
        if start + size > self.end {
            // SAFETY: CHUNK is non-zero and MAX_ALIGN a power of two.
            let chunk =
                unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, MAX_ALIGN)) };
            if chunk.is_null() {
                return chunk;
            }
            // The rest of the old chunk (too small for this block) is left unused.
            start = chunk as usize;
            self.end = start + CHUNK;
        }
        self.next = start + size;
        start as *mut u8
    }

    /// Puts a block of class `class` back on its free list.
    #[inline]
    unsafe fn give(&mut self, class: usize, block: *mut u8) {
        // SAFETY: the block is at least a pointer wide and aligned to one.
        unsafe { block.cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = block;
    }
}

unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            // SAFETY: no other call runs at the same time (see `Sync`).
            Some(class) => unsafe { (*self.0.get()).take(class) },
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            Some(class) => unsafe {
                let block = (*self.0.get()).take(class);
                if !block.is_null() {
                    ptr::write_bytes(block, 0, layout.size());
                }
                block
            },
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class(layout.size(), layout.align()) {
            Some(class) => unsafe { (*self.0.get()).give(class, block) },
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = class(layout.size(), layout.align());
        let new = class(new_size, layout.align());
        match (old, new) {
            // Still fits its block.
            (Some(old), Some(new)) if old == new => block,
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => unsafe {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
                moved
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fall_in_power_of_two_classes() {
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(8, 8), Some(0));
        assert_eq!(class(9, 1), Some(1));
        assert_eq!(class(16, 16), Some(1));
        assert_eq!(class(17, 4), Some(2));
        assert_eq!(class(MAX_SMALL, 8), Some(CLASSES - 1));
        assert_eq!(class(MAX_SMALL + 1, 8), None);
        assert_eq!(class(64, 32), None);
        assert_eq!(class(1, 16), Some(1));
    }

    /// A small deterministic generator (xorshift), for the mixed workload.
    fn numbers(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn blocks_keep_their_contents_and_never_overlap() {
        let heap = Allocator::new();
        let mut next = numbers(0x5eed);
        // (address, layout, fill byte) of each live block.
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let check = |block: *mut u8, layout: Layout, fill: u8| {
            let bytes = unsafe { std::slice::from_raw_parts(block, layout.size()) };
            assert!(bytes.iter().all(|b| *b == fill), "a block was overwritten");
        };
        for round in 0..20_000u32 {
            let choice = next() % 10;
            if choice < 5 || live.is_empty() {
                let size = match next() % 8 {
                    0 => (next() % 40_000) as usize + 1,
                    _ => (next() % 300) as usize + 1,
                };
                let align = [1, 2, 4, 8, 16, 32][(next() % 6) as usize];
                let layout = Layout::from_size_align(size, align).unwrap();
                let block = if round % 7 == 0 {
                    unsafe { heap.alloc_zeroed(layout) }
                } else {
                    unsafe { heap.alloc(layout) }
                };
                assert!(!block.is_null());
                assert_eq!(block as usize % align, 0, "misaligned for {layout:?}");
                if round % 7 == 0 {
                    check(block, layout, 0);
                }
                let fill = round as u8;
                unsafe { ptr::write_bytes(block, fill, layout.size()) };
                live.push((block, layout, fill));
            } else if choice < 8 {
                let (block, layout, fill) = live.swap_remove((next() as usize) % live.len());
                check(block, layout, fill);
                unsafe { heap.dealloc(block, layout) };
            } else {
                let at = (next() as usize) % live.len();
                let (block, layout, fill) = live[at];
                check(block, layout, fill);
                let new_size = match next() % 3 {
                    0 => layout.size() / 2 + 1,
                    1 => layout.size() * 2,
                    _ => (next() % 20_000) as usize + layout.align(),
                };
                let moved = unsafe { heap.realloc(block, layout, new_size) };
                assert!(!moved.is_null());
                let new_layout = Layout::from_size_align(new_size, layout.align()).unwrap();
                let kept = layout.size().min(new_size);
                let bytes = unsafe { std::slice::from_raw_parts(moved, kept) };
                assert!(bytes.iter().all(|b| *b == fill), "realloc lost contents");
                unsafe { ptr::write_bytes(moved, fill, new_size) };
                live[at] = (moved, new_layout, fill);
            }
            if round % 1_000 == 0 {
                let mut spans: Vec<(usize, usize)> = live
                    .iter()
                    .map(|(block, layout, _)| (*block as usize, layout.size()))
                    .collect();
                spans.sort_unstable();
                for pair in spans.windows(2) {
                    assert!(pair[0].0 + pair[0].1 <= pair[1].0, "blocks overlap");
                }
            }
        }
        for (block, layout, fill) in live {
            check(block, layout, fill);
            unsafe { heap.dealloc(block, layout) };
        }
    }

    #[test]
    fn a_freed_block_is_reused_by_its_class() {
        let heap = Allocator::new();
        let layout = Layout::from_size_align(24, 8).unwrap();
        let first = unsafe { heap.alloc(layout) };
        unsafe { heap.dealloc(first, layout) };
        let again = unsafe { heap.alloc(Layout::from_size_align(32, 8).unwrap()) };
        assert_eq!(first, again);
    }
}
