//! What every fuzz target links: an allocator that stops the run at the first request over
//! 1 GiB. libFuzzer's `-malloc_limit_mb` only sees allocations through a sanitizer's hooks,
//! and these targets are built without one (the code under test is safe Rust; the
//! sanitizer would halve the executions per second), so the limit is kept here instead.

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest single allocation a parser may make for any input.
pub const MAX_ALLOCATION: usize = 1 << 30;

struct Limited;

unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // No formatting machinery here: it could allocate inside the allocator.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"==glimpse-fuzz== an allocation over 1 GiB was requested\n",
        );
        std::process::abort();
    }
}

#[global_allocator]
static ALLOCATOR: Limited = Limited;
