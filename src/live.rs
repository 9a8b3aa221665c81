//! Live-object counters: how many objects of each kind (and map nodes) exist
//! right now, for leak checks (`contextvars_live_counts`, the C suite's
//! refleak mode).
//!
//! Cheap on the hot path and scalable: no shared read-modify-write per
//! allocation. Each thread owns a block of counters, registered once in a
//! global list; the owner updates its own cells with a relaxed load and a
//! relaxed store (no lock prefix, no cache line shared with other writers).
//! An object freed on another thread than the one that made it is counted
//! down in the freeing thread's block, so one block's net count may be
//! negative; only the sum over all blocks means anything. A reader sums every
//! block with relaxed loads: exact when no other thread is allocating,
//! otherwise a recent value.
//!
//! Blocks are never freed. When a thread exits, its block goes on a free
//! list, counts and all, and the next new thread takes it over (the free
//! list's mutex orders the old owner's last store before the new owner's
//! first load). Counting that happens after the block was given back (in
//! pthread key destructors that run after Rust's thread-local ones) goes to
//! one shared block, with atomic adds: rare, and only at thread exit.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering};
use std::sync::Mutex;

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Kind {
    Context = 0,
    Var = 1,
    Token = 2,
    Int = 3,
    Str = 4,
    Capsule = 5,
    MapNode = 6,
}

/// The number of kinds.
pub(crate) const KINDS: usize = 7;

/// One thread's counters.
struct Block {
    cells: [AtomicIsize; KINDS],
    /// The next block in [`ALL`] (set before publishing, then fixed).
    next: *const Block,
    /// The next block on the free list (under [`FREE`]'s mutex).
    free_next: Cell<*const Block>,
}

// SAFETY: the cells are atomic; `next` never changes after publication;
// `free_next` is only touched under the FREE mutex.
unsafe impl Sync for Block {}

impl Block {
    const fn new() -> Block {
        Block { cells: [const { AtomicIsize::new(0) }; KINDS], next: ptr::null(), free_next: Cell::new(ptr::null()) }
    }
}

/// Every block ever made (a push-only list).
static ALL: AtomicPtr<Block> = AtomicPtr::new(ptr::null_mut());
/// Counting with no block of one's own (thread teardown): atomic adds.
static SHARED: Block = Block::new();

/// Blocks whose threads exited, ready for reuse (the head, as an address).
static FREE: Mutex<usize> = Mutex::new(0);

/// `BLOCK` after the thread gave its block back.
const GONE: *const Block = ptr::dangling();

thread_local! {
    /// This thread's block; NULL until its first count, [`GONE`] after
    /// thread-local destruction. A plain cell: no lazy-init check.
    static BLOCK: Cell<*const Block> = const { Cell::new(ptr::null()) };
    /// Gives the block back when the thread exits.
    static GIVE_BACK: GiveBack = const { GiveBack };
}

struct GiveBack;

impl Drop for GiveBack {
    fn drop(&mut self) {
        let b = BLOCK.replace(GONE);
        if b.is_null() || b == GONE {
            return;
        }
        let mut head = FREE.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: blocks are never freed; the list is only touched under the lock.
        unsafe { (*b).free_next.set(*head as *const Block) };
        *head = b as usize;
    }
}

/// Counts one new object (or map node) of `kind`.
#[inline(always)]
pub(crate) fn on_alloc(kind: Kind) {
    add(kind, 1)
}

/// Counts one freed object (or map node) of `kind`.
#[inline(always)]
pub(crate) fn on_free(kind: Kind) {
    add(kind, -1)
}

#[inline(always)]
fn add(kind: Kind, delta: isize) {
    let b = BLOCK.get();
    if b as usize > GONE as usize {
        // SAFETY: blocks are never freed.
        let cell = unsafe { &(*b).cells[kind as usize] };
        // Only this thread writes its block: no read-modify-write needed.
        cell.store(cell.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
    } else {
        add_slow(kind, delta)
    }
}

#[cold]
#[inline(never)]
fn add_slow(kind: Kind, delta: isize) {
    if BLOCK.get().is_null() {
        if let Some(b) = take_block() {
            // SAFETY: the block is ours now.
            let cell = unsafe { &(*b).cells[kind as usize] };
            cell.store(cell.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
            return;
        }
    }
    SHARED.cells[kind as usize].fetch_add(delta, Ordering::Relaxed);
}

/// Gives this thread a block (reused or new), or `None` while thread-locals
/// are being torn down.
fn take_block() -> Option<*const Block> {
    // Arms the give-back; fails once thread-local destruction has begun.
    GIVE_BACK.try_with(|_| ()).ok()?;
    let reused = {
        let mut head = FREE.lock().unwrap_or_else(|e| e.into_inner());
        let b = *head as *const Block;
        if !b.is_null() {
            // SAFETY: under the lock; blocks are never freed.
            *head = unsafe { (*b).free_next.get() } as usize;
        }
        b
    };
    let b = if reused.is_null() {
        let fresh: &'static mut Block = Box::leak(Box::new(Block::new()));
        let mut head = ALL.load(Ordering::Relaxed);
        loop {
            fresh.next = head;
            match ALL.compare_exchange_weak(head, fresh, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        fresh as *const Block
    } else {
        reused
    };
    BLOCK.set(b);
    Some(b)
}

/// The kind of a library object's type (`None` for a foreign type).
#[inline(always)]
pub(crate) fn kind_of(ty: *mut crate::object::PyTypeObject) -> Option<Kind> {
    Some(if ty == crate::context::context_type() {
        Kind::Context
    } else if ty == crate::var::var_type() {
        Kind::Var
    } else if ty == crate::var::token_type() {
        Kind::Token
    } else if ty == crate::values::long_type() {
        Kind::Int
    } else if ty == crate::values::str_type() {
        Kind::Str
    } else if ty == crate::values::capsule_type() {
        Kind::Capsule
    } else {
        return None;
    })
}

/// The sum over every block: live objects of each kind.
pub(crate) fn counts() -> [isize; KINDS] {
    let mut sum = [0isize; KINDS];
    let mut add_block = |b: &Block| {
        for (s, c) in sum.iter_mut().zip(&b.cells) {
            *s = s.wrapping_add(c.load(Ordering::Relaxed));
        }
    };
    add_block(&SHARED);
    let mut b = ALL.load(Ordering::Acquire) as *const Block;
    while !b.is_null() {
        // SAFETY: published blocks are never freed and their `next` is fixed.
        let block = unsafe { &*b };
        add_block(block);
        b = block.next;
    }
    sum
}
