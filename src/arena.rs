//! The dispatcher's memory allocator on Spin: a bump arena, because an instance lives for one
//! request. Spin makes a fresh instance per request and throws its memory away afterwards, so
//! nothing is gained by reusing freed memory within one request, and a request allocates little
//! (about 2 KiB over some 70 allocations for a subdomain `GET`: header lists, names, the log
//! line). The general-purpose allocator (wasi-libc's dlmalloc) spent about 15,000 of the 57,000
//! WebAssembly instructions such a request ran (the test host's fuel count), and on Spin the
//! guest's instructions are time (docs/performance.md).
//!
//! An allocation takes the next aligned bytes of a 16 KiB region in the module's own data, so
//! the instance's initial memory does not grow. Freeing the newest allocation takes its bytes
//! back, growing the newest one grows it in place (a `String` being pushed to, a `Vec` being
//! collected), and once no block of the region is in use it starts again from the beginning,
//! so a loop that allocates and frees does not use the region up (nor would an instance that
//! served several requests). Anything that does not fit goes to the system allocator, so a
//! large request costs what it did before and never fails for want of arena.

use std::alloc::Layout;
use std::cell::Cell;

/// The region's size. A subdomain `GET` with browser-sized headers uses under a quarter of it.
pub const SIZE: usize = 16 * 1024;

/// The bump pointer over a region at `base` of `size` bytes: the offset of its first free byte,
/// and how many of the region's blocks are in use. The region itself is the caller's, so the
/// logic is tested on the host with a buffer.
#[derive(Debug, Default)]
pub struct Bump {
    top: Cell<usize>,
    live: Cell<usize>,
}

impl Bump {
    pub const fn new() -> Bump {
        Bump {
            top: Cell::new(0),
            live: Cell::new(0),
        }
    }

    /// The address of fresh memory for `layout`, or `None` when the region has no room left.
    pub fn alloc(&self, base: usize, size: usize, layout: Layout) -> Option<usize> {
        let start = (base + self.top.get()).checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        if end > base.checked_add(size)? {
            return None;
        }
        self.top.set(end - base);
        self.live.set(self.live.get() + 1);
        Some(start)
    }

    /// Whether `ptr` lies in the region (else it came from the system allocator).
    pub fn owns(base: usize, size: usize, ptr: usize) -> bool {
        ptr >= base && ptr < base + size
    }

    /// Gives back the bytes of the block at `ptr` if it is the newest one, and the whole region
    /// once no block of it is in use; an older block's bytes stay used until then.
    pub fn free(&self, base: usize, ptr: usize, layout: Layout) {
        let live = self.live.get() - 1;
        self.live.set(live);
        if live == 0 {
            self.top.set(0);
        } else if ptr + layout.size() == base + self.top.get() {
            self.top.set(ptr - base);
        }
    }

    /// Resizes the block at `ptr` to `new_size` where it is, which works for the newest block
    /// while the region has room (and for any block that shrinks).
    pub fn resize_in_place(&self, base: usize, size: usize, ptr: usize, layout: Layout, new_size: usize) -> bool {
        let newest = ptr + layout.size() == base + self.top.get();
        if newest && ptr.checked_add(new_size).is_some_and(|end| end <= base + size) {
            self.top.set(ptr + new_size - base);
            true
        } else {
            new_size <= layout.size()
        }
    }
}

// The global allocator below shares its bump pointer without locks.
#[cfg(all(target_arch = "wasm32", feature = "component", target_feature = "atomics"))]
compile_error!("the dispatcher's arena allocator is for single-threaded wasm only");

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod global {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::UnsafeCell;

    use super::{Bump, SIZE};

    #[repr(C, align(16))]
    struct Region(UnsafeCell<[u8; SIZE]>);

    struct Arena {
        region: Region,
        bump: Bump,
    }

    // A wasm32-wasip2 component has one thread: nothing here is ever shared between threads.
    unsafe impl Sync for Arena {}

    impl Arena {
        fn base(&self) -> usize {
            self.region.0.get() as usize
        }

        /// The region's byte at `address`, keeping the region's provenance.
        fn at(&self, address: usize) -> *mut u8 {
            // SAFETY: `address` came from `Bump::alloc` over this region, so it lies within it.
            unsafe { self.region.0.get().cast::<u8>().add(address - self.base()) }
        }
    }

    #[global_allocator]
    static ARENA: Arena = Arena {
        region: Region(UnsafeCell::new([0; SIZE])),
        bump: Bump::new(),
    };

    unsafe impl GlobalAlloc for Arena {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            match self.bump.alloc(self.base(), SIZE, layout) {
                Some(address) => self.at(address),
                // SAFETY: the caller's contract for `layout` is passed on as it is.
                None => unsafe { System.alloc(layout) },
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if Bump::owns(self.base(), SIZE, ptr as usize) {
                self.bump.free(self.base(), ptr as usize, layout);
            } else {
                // SAFETY: a block outside the region came from `System.alloc` with this layout.
                unsafe { System.dealloc(ptr, layout) }
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if !Bump::owns(self.base(), SIZE, ptr as usize) {
                // SAFETY: as in `dealloc`; the new size's contract is the caller's.
                return unsafe { System.realloc(ptr, layout, new_size) };
            }
            if self
                .bump
                .resize_in_place(self.base(), SIZE, ptr as usize, layout, new_size)
            {
                return ptr;
            }
            // SAFETY: `GlobalAlloc::realloc`'s contract makes this layout valid.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: as above; the old block is live and at least `min` bytes long.
            unsafe {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: usize = 0x1000;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_and_never_overlap() {
        let bump = Bump::new();
        let a = bump.alloc(BASE, 64, layout(3, 1)).unwrap();
        let b = bump.alloc(BASE, 64, layout(8, 8)).unwrap();
        assert_eq!(a, BASE);
        assert_eq!(b, BASE + 8, "aligned up past the 3 bytes of a");
        assert!(bump.alloc(BASE, 64, layout(49, 1)).is_none(), "48 bytes are left");
        assert_eq!(bump.alloc(BASE, 64, layout(48, 1)), Some(BASE + 16));
        assert!(bump.alloc(BASE, 64, layout(1, 1)).is_none());
    }

    #[test]
    fn only_the_newest_block_is_taken_back() {
        let bump = Bump::new();
        let a = bump.alloc(BASE, 64, layout(16, 1)).unwrap();
        let b = bump.alloc(BASE, 64, layout(16, 1)).unwrap();
        let c = bump.alloc(BASE, 64, layout(16, 1)).unwrap();
        bump.free(BASE, a, layout(16, 1));
        assert_eq!(
            bump.alloc(BASE, 64, layout(1, 1)),
            Some(BASE + 48),
            "a's bytes stay used"
        );
        bump.free(BASE, BASE + 48, layout(1, 1));
        bump.free(BASE, c, layout(16, 1));
        assert_eq!(bump.alloc(BASE, 64, layout(1, 1)), Some(c), "c's bytes came back");
        assert!(b < c);
    }

    #[test]
    fn the_region_starts_again_once_no_block_is_in_use() {
        let bump = Bump::new();
        let a = bump.alloc(BASE, 64, layout(16, 1)).unwrap();
        let b = bump.alloc(BASE, 64, layout(16, 1)).unwrap();
        bump.free(BASE, a, layout(16, 1));
        assert_eq!(bump.alloc(BASE, 64, layout(40, 1)), None, "b still holds the middle");
        bump.free(BASE, b, layout(16, 1));
        assert_eq!(bump.alloc(BASE, 64, layout(64, 1)), Some(BASE), "all of it again");
    }

    #[test]
    fn the_newest_block_grows_in_place_while_there_is_room() {
        let bump = Bump::new();
        let a = bump.alloc(BASE, 64, layout(8, 1)).unwrap();
        assert!(bump.resize_in_place(BASE, 64, a, layout(8, 1), 40));
        assert_eq!(bump.alloc(BASE, 64, layout(1, 1)), Some(BASE + 40));
        assert!(
            !bump.resize_in_place(BASE, 64, a, layout(40, 1), 41),
            "no longer the newest"
        );
        assert!(
            bump.resize_in_place(BASE, 64, a, layout(40, 1), 10),
            "shrinking is always fine"
        );
        let b = BASE + 40;
        assert!(
            !bump.resize_in_place(BASE, 64, b, layout(1, 1), 25),
            "past the region's end"
        );
        assert!(bump.resize_in_place(BASE, 64, b, layout(1, 1), 24));
    }

    #[test]
    fn addresses_outside_the_region_are_not_its_own() {
        assert!(Bump::owns(BASE, 64, BASE));
        assert!(Bump::owns(BASE, 64, BASE + 63));
        assert!(!Bump::owns(BASE, 64, BASE + 64));
        assert!(!Bump::owns(BASE, 64, BASE - 1));
    }
}
