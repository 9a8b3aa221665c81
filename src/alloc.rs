//! The one fallible allocation path.
//!
//! Every object, map node and message buffer is allocated here. A failure is
//! reported as `None` (callers turn it into MemoryError) instead of aborting
//! the process, as Rust's infallible collections would. Under the `testing`
//! feature an injector can make the Nth allocation fail, so tests can walk
//! every failure point.

use std::alloc::Layout;
use std::ptr::NonNull;

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

/// Allocates `layout` (non-zero size). `None` means out of memory.
#[inline]
pub(crate) fn allocate(layout: Layout) -> Option<NonNull<u8>> {
    debug_assert!(layout.size() > 0);
    #[cfg(feature = "testing")]
    if inject::should_fail() {
        return None;
    }
    // SAFETY: every layout passed here has a non-zero size (all callers
    // allocate a header of at least one word).
    NonNull::new(unsafe { std::alloc::alloc(layout) })
}

/// Grows or shrinks a block from `allocate`. `None` leaves it untouched.
pub(crate) fn reallocate(ptr: NonNull<u8>, old: Layout, new_size: usize) -> Option<NonNull<u8>> {
    #[cfg(feature = "testing")]
    if inject::should_fail() {
        return None;
    }
    // SAFETY: `ptr` was allocated by `allocate`/`reallocate` with `old`, and
    // `new_size` is non-zero (callers only grow).
    NonNull::new(unsafe { std::alloc::realloc(ptr.as_ptr(), old, new_size) })
}

/// Frees a block from `allocate` with the layout it was allocated with.
///
/// # Safety
/// `ptr` must come from `allocate` (or `reallocate`) with exactly `layout`,
/// and must not be used again.
#[inline]
pub(crate) unsafe fn free(ptr: NonNull<u8>, layout: Layout) {
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
