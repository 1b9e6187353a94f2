//! What the allocator keeps. mimalloc keeps the pages a thread freed for that thread's next
//! allocations and returns them to the system only when the thread allocates again after a
//! delay; a pool thread that goes idle after a burst of work keeps them for as long as it
//! idles. Threads that work in bursts (a write operation, an index commit) hand them back
//! when the burst ends.

/// Returns to the system the pages this thread freed and no longer uses (`mi_collect`
/// without forcing: frees what is free, touches nothing live). When mimalloc is not the
/// global allocator (the library's tests), its heaps are empty and this does nothing.
pub fn release_freed() {
    // SAFETY: mi_collect takes a flag and only walks this thread's own mimalloc heap, which
    // exists (or is created empty) for any thread that calls it.
    unsafe { libmimalloc_sys::mi_collect(false) }
}
