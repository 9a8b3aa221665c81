//! The one fallible allocation path.
//!
//! Every object, map node and message buffer is allocated here. A failure is
//! reported as `None` (callers turn it into MemoryError) instead of aborting
//! the process, as Rust's infallible collections would. Under the `testing`
//! feature an injector can make the Nth allocation fail, so tests can walk
//! every failure point.

use std::alloc::Layout;
use std::ptr::{self, NonNull};

#[cfg(feature = "testing")]
pub mod inject {
    //! Test-only allocation-failure injection (process-wide countdown).
    use std::sync::atomic::{AtomicI64, Ordering};

    /// Allocations left before the armed failure; negative when disarmed.
    static COUNTDOWN: AtomicI64 = AtomicI64::new(-1);
    /// Whether every allocation after the first failure fails too.
    static PERSISTENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    /// Failures injected since the last `arm`.
    static INJECTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// Arms the injector: allocation number `n` (0-based) from now fails.
    pub fn arm(n: i64, persistent: bool) {
        INJECTED.store(0, Ordering::Relaxed);
        PERSISTENT.store(persistent, Ordering::Relaxed);
        COUNTDOWN.store(n, Ordering::Relaxed);
    }

    /// Disarms the injector; returns whether any failure was injected.
    pub fn disarm() -> bool {
        COUNTDOWN.store(-1, Ordering::Relaxed);
        INJECTED.load(Ordering::Relaxed) > 0
    }

    /// Whether the allocation being made now must fail.
    pub(crate) fn should_fail() -> bool {
        let mut left = COUNTDOWN.load(Ordering::Relaxed);
        loop {
            if left < 0 {
                return false;
            }
            if left == 0 {
                if !PERSISTENT.load(Ordering::Relaxed) {
                    COUNTDOWN.store(-1, Ordering::Relaxed);
                }
                INJECTED.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            match COUNTDOWN.compare_exchange_weak(left, left - 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return false,
                Err(now) => left = now,
            }
        }
    }
}

/// Small blocks (objects, map nodes of up to a few entries) are kept on a
/// per-thread free list per size class after they are freed, and handed out
/// again before asking malloc: contexts, tokens and delta nodes come and go
/// on every task step, and a list pop is a fraction of malloc + free (callgrind:
/// ~130 instructions per pair). Classes are 16 bytes apart up to
/// `CACHED_MAX`; each list keeps at most `CACHE_DEPTH` blocks. The lists are
/// plain thread-local cells, emptied by the thread-exit hook (`context.rs`);
/// a thread whose hook cannot be armed, or which is past it, frees directly.
/// `CONTEXTVARS_BLOCK_CACHE=0` in the environment turns the cache off (for
/// hunting memory errors with valgrind or AddressSanitizer).
mod cache {
    use std::alloc::Layout;
    use std::cell::Cell;
    use std::ptr::{self, NonNull};
    use std::sync::atomic::{AtomicU8, Ordering};

    pub(super) const CLASS: usize = 16;
    pub(super) const CACHED_MAX: usize = 128;
    const CLASSES: usize = CACHED_MAX / CLASS;
    const CACHE_DEPTH: u32 = 64;

    /// Thread state: not yet decided, caching, or not caching (turned off,
    /// no exit hook, or the thread is past its exit hook).
    const UNDECIDED: u8 = 0;
    const ON: u8 = 1;
    const OFF: u8 = 2;

    /// One thread's lists (one thread-local, so one TLS lookup a call).
    struct Lists {
        heads: [Cell<*mut u8>; CLASSES],
        counts: [Cell<u32>; CLASSES],
        state: Cell<u8>,
    }

    thread_local! {
        static LISTS: Lists = const {
            Lists {
                heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
                counts: [const { Cell::new(0) }; CLASSES],
                state: Cell::new(UNDECIDED),
            }
        };
    }

    /// The environment switch, read once.
    static ENABLED: AtomicU8 = AtomicU8::new(UNDECIDED);

    fn enabled() -> bool {
        match ENABLED.load(Ordering::Relaxed) {
            ON => true,
            OFF => false,
            _ => {
                let on = std::env::var_os("CONTEXTVARS_BLOCK_CACHE").is_none_or(|v| v != "0");
                ENABLED.store(if on { ON } else { OFF }, Ordering::Relaxed);
                on
            }
        }
    }

    /// The size class of a layout the cache serves (its blocks are
    /// allocated at the class size, 16-aligned), or `None`.
    #[inline]
    pub(super) fn class_of(layout: Layout) -> Option<usize> {
        (layout.size() <= CACHED_MAX && layout.align() <= CLASS).then(|| (layout.size() - 1) / CLASS)
    }

    pub(super) fn class_layout(class: usize) -> Layout {
        // SAFETY: non-zero size, power-of-two alignment, no overflow.
        unsafe { Layout::from_size_align_unchecked((class + 1) * CLASS, CLASS) }
    }

    #[inline]
    pub(super) fn pop(class: usize) -> Option<NonNull<u8>> {
        LISTS.with(|l| {
            let block = NonNull::new(l.heads[class].get())?;
            // SAFETY: a cached block is a free block of this class whose
            // first word holds the next link; only this thread reaches it.
            l.heads[class].set(unsafe { block.as_ptr().cast::<*mut u8>().read() });
            l.counts[class].set(l.counts[class].get() - 1);
            Some(block)
        })
    }

    /// Keeps a freed block; false if it must go back to malloc instead.
    #[inline]
    pub(super) fn push(class: usize, block: NonNull<u8>) -> bool {
        LISTS.with(|l| {
            let accepting = match l.state.get() {
                ON => true,
                OFF => false,
                _ => decide(l),
            };
            if !accepting || l.counts[class].get() >= CACHE_DEPTH {
                return false;
            }
            // SAFETY: the block is free, at least 16 bytes and 16-aligned;
            // its first word becomes the link.
            unsafe { block.as_ptr().cast::<*mut u8>().write(l.heads[class].get()) };
            l.heads[class].set(block.as_ptr());
            l.counts[class].set(l.counts[class].get() + 1);
            true
        })
    }

    #[cold]
    fn decide(l: &Lists) -> bool {
        // Cache only on threads whose exit hook will empty the lists.
        let on = enabled() && crate::context::register_thread_exit_hook();
        l.state.set(if on { ON } else { OFF });
        on
    }

    /// Frees every cached block and stops caching on this thread (its exit).
    pub(crate) fn close() {
        LISTS.with(|l| l.state.set(OFF));
        for class in 0..CLASSES {
            while let Some(block) = pop(class) {
                // SAFETY: cached blocks were allocated at the class layout.
                unsafe { std::alloc::dealloc(block.as_ptr(), class_layout(class)) };
            }
        }
    }
}

pub(crate) use cache::close as close_thread_cache;

/// Allocates `layout` (non-zero size). `None` means out of memory.
#[inline]
pub(crate) fn allocate(layout: Layout) -> Option<NonNull<u8>> {
    debug_assert!(layout.size() > 0);
    #[cfg(feature = "testing")]
    if inject::should_fail() {
        return None;
    }
    if let Some(class) = cache::class_of(layout) {
        if let Some(block) = cache::pop(class) {
            return Some(block);
        }
        // SAFETY: the class layout has a non-zero size.
        return NonNull::new(unsafe { std::alloc::alloc(cache::class_layout(class)) });
    }
    // SAFETY: every layout passed here has a non-zero size (all callers
    // allocate a header of at least one word).
    NonNull::new(unsafe { std::alloc::alloc(layout) })
}

/// Grows a block from `allocate`. `None` leaves it untouched.
pub(crate) fn reallocate(ptr: NonNull<u8>, old: Layout, new_size: usize) -> Option<NonNull<u8>> {
    debug_assert!(new_size >= old.size());
    if cache::class_of(old).is_some() {
        // A class block: move it (allocate, copy, free) on this path.
        let new = allocate(Layout::from_size_align(new_size, old.align()).ok()?)?;
        // SAFETY: both blocks are live and distinct; the old one holds
        // `old.size()` bytes and the new one at least as many.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), old.size());
            free(ptr, old);
        }
        return Some(new);
    }
    #[cfg(feature = "testing")]
    if inject::should_fail() {
        return None;
    }
    // SAFETY: `ptr` was allocated by `allocate`/`reallocate` with `old`
    // (not a class block: checked), and `new_size` is non-zero.
    NonNull::new(unsafe { std::alloc::realloc(ptr.as_ptr(), old, new_size) })
}

/// Frees a block from `allocate` with the layout it was allocated with.
///
/// # Safety
/// `ptr` must come from `allocate` (or `reallocate`) with exactly `layout`,
/// and must not be used again.
#[inline]
pub(crate) unsafe fn free(ptr: NonNull<u8>, layout: Layout) {
    if let Some(class) = cache::class_of(layout) {
        if !cache::push(class, ptr) {
            // SAFETY: class blocks are allocated at the class layout.
            unsafe { std::alloc::dealloc(ptr.as_ptr(), cache::class_layout(class)) }
        }
        return;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
}

/// A growable byte buffer on the fallible path, for building messages and
/// reprs. Once an allocation fails it stays failed, so a whole message can
/// be written with `write!` and checked once.
pub(crate) struct Buf {
    ptr: Option<NonNull<u8>>,
    len: usize,
    cap: usize,
    failed: bool,
}

impl Buf {
    pub(crate) const fn new() -> Buf {
        Buf { ptr: None, len: 0, cap: 0, failed: false }
    }

    /// The bytes written so far, or `None` if an allocation failed.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        if self.failed {
            return None;
        }
        Some(match self.ptr {
            // SAFETY: `ptr` holds `len` initialised bytes.
            Some(p) => unsafe { std::slice::from_raw_parts(p.as_ptr(), self.len) },
            None => &[],
        })
    }

    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        if self.failed || bytes.is_empty() {
            return;
        }
        let need = self.len + bytes.len();
        if need > self.cap {
            let new_cap = need.max(self.cap * 2).max(64);
            let grown = match self.ptr {
                None => Layout::array::<u8>(new_cap).ok().and_then(allocate),
                Some(p) => Layout::array::<u8>(self.cap).ok().and_then(|old| reallocate(p, old, new_cap)),
            };
            match grown {
                Some(p) => {
                    self.ptr = Some(p);
                    self.cap = new_cap;
                }
                None => {
                    self.failed = true;
                    return;
                }
            }
        }
        let Some(p) = self.ptr else { return };
        // SAFETY: capacity was ensured above; the source cannot overlap our
        // private allocation.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().add(self.len), bytes.len()) };
        self.len = need;
    }
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_bytes(s.as_bytes());
        if self.failed { Err(std::fmt::Error) } else { Ok(()) }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: allocated by us with this capacity.
            unsafe { free(p, Layout::array::<u8>(self.cap).expect("layout was valid when allocated")) };
        }
    }
}
