//! The process's memory allocator: mimalloc for everything, except blocks
//! of [`BIG`] bytes or more, which are mapped from the kernel on their own
//! and unmapped when freed (what glibc does above its mmap threshold).
//!
//! Why. A list of a million entries is loaded into a few blocks of tens of
//! MB (the file, the name and reference arenas, the entry table). Under
//! mimalloc alone, such a block freed by another thread than the one that
//! allocated it (the loader threads end; the old snapshot is freed by
//! whoever drops it last) stayed resident until that thread allocated
//! again, and a growing or shrinking arena was copied: a reload of the 1M
//! list peaked at 311 MiB and stayed at 220 where 136 were in use.
//! Mapped on their own, a freed block is returned at once, a block
//! reserved larger than needed costs only the pages written, and growing
//! or shrinking one moves page tables (`mremap`), not bytes.
//!
//! The one other module allowed `unsafe` (besides the UDP system calls): a
//! global allocator is unsafe by definition. Every path is routed by the
//! layout's size alone, which Rust passes back unchanged on free and
//! realloc, so a block is always freed by the side that made it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;

/// Blocks of this size or more are mapped on their own. Nothing on the
/// query path allocates this much; the list loader, the answer cache's
/// shards and the audit writer's buffers do.
pub const BIG: usize = 1 << 20;

/// Mapped blocks are page aligned: a larger alignment goes to mimalloc.
const PAGE: usize = 4096;

/// The allocator `rempart` runs with (`#[global_allocator]` in the binary).
pub struct Allocator;

/// Turns transparent huge pages off for the process (`PR_SET_THP_DISABLE`;
/// Rempart starts no other program that would inherit it); call first
/// thing in `main`.
///
/// Why. mimalloc asks for huge pages on its arenas (`MADV_HUGEPAGE`), and
/// under Debian's default (`madvise`) each 2 MiB region a thread writes
/// to becomes resident whole: 16 MiB at idle, and 20 MiB more once the
/// answer cache holds 100k answers, for no measured gain on the query path
/// (the compiled lists, the largest blocks, are mapped here on 4 KiB
/// pages already). Memory the operator sized with `upstream.cache_bytes`
/// should be what the process holds. A kernel without the call (before
/// 3.15) leaves things as they were.
pub fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE reads only its integer
    // arguments and changes a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// True if a block of `layout` is mapped on its own.
#[inline]
fn big(layout: Layout) -> bool {
    cfg!(target_os = "linux") && layout.size() >= BIG && layout.align() <= PAGE
}

/// `size` rounded up to whole pages.
#[inline]
fn pages(size: usize) -> usize {
    size.div_ceil(PAGE) * PAGE
}

#[cfg(target_os = "linux")]
mod os {
    use super::pages;

    /// Fresh zeroed pages (untouched pages cost no memory), or null.
    pub fn map(size: usize) -> *mut u8 {
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choice touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages(size),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    /// Return the pages of a block from [`map`] or [`remap`].
    ///
    /// # Safety
    /// `p` and `size` are a block this module mapped, no longer used.
    pub unsafe fn unmap(p: *mut u8, size: usize) {
        // SAFETY: the caller's: the whole mapping, and nothing else.
        unsafe { libc::munmap(p.cast(), pages(size)) };
    }

    /// The block `p` of `old` bytes resized to `new` (both mapped sizes),
    /// its content kept up to the smaller; moved by the kernel if need be.
    /// Null if it cannot be: `p` is then unchanged.
    ///
    /// # Safety
    /// `p` and `old` are a block this module mapped.
    pub unsafe fn remap(p: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: the caller's; MREMAP_MAYMOVE leaves `p` valid on failure.
        let q = unsafe { libc::mremap(p.cast(), pages(old), pages(new), libc::MREMAP_MAYMOVE) };
        if q == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            q.cast()
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    pub fn map(_: usize) -> *mut u8 {
        unreachable!("only Linux maps blocks on their own")
    }
    pub unsafe fn unmap(_: *mut u8, _: usize) {
        unreachable!("only Linux maps blocks on their own")
    }
    pub unsafe fn remap(_: *mut u8, _: usize, _: usize) -> *mut u8 {
        unreachable!("only Linux maps blocks on their own")
    }
}

// SAFETY: each method keeps GlobalAlloc's contract: a mapped block is
// page aligned (at least the alignment asked, checked by `big`) and as
// large as asked; a block is freed or resized by the same side that made
// it, since the side depends only on the layout, which the caller passes
// back as it was.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if big(layout) {
            os::map(layout.size())
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if big(layout) {
            // Fresh anonymous pages read as zero.
            os::map(layout.size())
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if big(layout) {
            // SAFETY: `big` was true when it was made: we mapped it.
            unsafe { os::unmap(ptr, layout.size()) }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (for the layout): the caller guarantees that `new_size`,
        // rounded up to the alignment, does not overflow isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (big(layout), big(new_layout)) {
            // SAFETY: mapped by us, at its old size.
            (true, true) => unsafe { os::remap(ptr, layout.size(), new_size) },
            // SAFETY: the caller's contract, passed on.
            (false, false) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            (_, _) => {
                // From one side to the other: a new block, the content
                // copied, the old one freed.
                // SAFETY: `new_layout` has a non-zero size (the caller's).
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are at least this long, distinct.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every transition between the two sides keeps the content.
    #[test]
    fn blocks_keep_their_bytes_across_sizes() {
        let a = Allocator;
        let sizes = [64, BIG - 1, BIG, BIG + 1, 3 * BIG + 17, 100, 5 * BIG, 10];
        let mut layout = Layout::from_size_align(sizes[0], 8).unwrap();
        // SAFETY: a non-zero layout, then realloc/dealloc with the layout
        // of the last size, as the contract says.
        unsafe {
            let mut p = a.alloc(layout);
            assert!(!p.is_null());
            for i in 0..layout.size() {
                *p.add(i) = (i % 251) as u8;
            }
            for &size in &sizes[1..] {
                let kept = layout.size().min(size);
                p = a.realloc(p, layout, size);
                assert!(!p.is_null(), "realloc to {size}");
                for i in 0..kept {
                    assert_eq!(
                        *p.add(i),
                        (i % 251) as u8,
                        "byte {i} after realloc to {size}"
                    );
                }
                layout = Layout::from_size_align(size, 8).unwrap();
                for i in kept..size {
                    *p.add(i) = (i % 251) as u8;
                }
            }
            a.dealloc(p, layout);
        }
    }

    /// A big zeroed block reads as zero; a big block is page aligned.
    #[test]
    fn big_blocks_are_zeroed_and_page_aligned() {
        let a = Allocator;
        let layout = Layout::from_size_align(2 * BIG, 64).unwrap();
        // SAFETY: a non-zero layout, freed with the same layout.
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % PAGE, 0);
            assert!((0..layout.size()).step_by(997).all(|i| *p.add(i) == 0));
            a.dealloc(p, layout);
        }
    }
}
