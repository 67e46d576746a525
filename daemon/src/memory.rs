//! glibc's allocator, told to give large buffers back.
//!
//! By default glibc raises its mmap threshold each time a large mapping is freed, after which
//! buffers of that size (a 30 MB D-Bus argument, say) come from the heap and stay with the
//! process. A fixed threshold keeps every large buffer its own mapping, unmapped when freed;
//! two arenas keep hundreds of short-lived worker threads from each holding a heap.

/// Buffers from this size on are their own mapping.
const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;
/// Heaps shared by all threads.
const ARENAS: libc::c_int = 2;

/// Set once at start, before any thread: `mallopt` is not meant to race allocations.
#[allow(unsafe_code)]
pub fn give_large_buffers_back() {
    // SAFETY: mallopt takes plain integers and changes only the allocator's tunables.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Return freed heap memory at the top of each arena to the system.
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
