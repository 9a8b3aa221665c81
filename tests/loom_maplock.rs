//! Loom model of a context's map lock (src/context.rs `lock_map`,
//! `unlock_map`, `snapshot`, `replace_map`, `replace_value_in_place`, and
//! src/hamt.rs `replace_in_place` and the node counts):
//! - the owner (the thread whose current context it is) reads its map with
//!   no lock;
//! - it edits the map's root in place only under the lock and only if the
//!   root's count, loaded with Acquire, is 1;
//! - it replaces the map by swapping the pointer (Relaxed) under the lock,
//!   then releases the old map after unlocking;
//! - a foreign thread copying the context takes the lock (compare_exchange
//!   Acquire), loads the pointer (Relaxed), adds a reference (Relaxed),
//!   unlocks (Release store), then reads the map and drops its reference.
//!
//! Node counts: Relaxed increment, Release decrement, Acquire fence before
//! freeing. Loom checks every interleaving: the copier never reads a node
//! being freed or edited, the owner never edits a node a copier can read,
//! and every node is freed exactly once.
//!
//! Run: `make loom` (RUSTFLAGS="--cfg loom" cargo test --release --test loom_maplock).
#![cfg(loom)]
// The unsafe blocks are the protocol under test; loom checks them.
#![allow(clippy::undocumented_unsafe_blocks)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

struct Node {
    refcnt: AtomicUsize,
    value: UnsafeCell<u64>,
}

fn new_node(value: u64) -> *mut Node {
    Box::into_raw(Box::new(Node { refcnt: AtomicUsize::new(1), value: UnsafeCell::new(value) }))
}

/// A node reference's drop (`NodeRef::drop`).
unsafe fn release(n: *mut Node, freed: &AtomicUsize) {
    let node = unsafe { &*n };
    if node.refcnt.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    fence(Ordering::Acquire);
    // Freeing writes the node (drops its entries, then frees the block).
    node.value.with_mut(|v| unsafe { *v = u64::MAX });
    freed.fetch_add(1, Ordering::Relaxed);
    drop(unsafe { Box::from_raw(n) });
}

struct Context {
    map: AtomicPtr<Node>,
    map_lock: AtomicBool,
}

impl Context {
    fn lock_map(&self) {
        // The library uses compare_exchange_weak; a spurious failure only
        // adds a retry, so the model uses the strong form (loom would
        // otherwise explore unbounded runs of spurious failures).
        while self.map_lock.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            loom::thread::yield_now();
        }
    }

    fn unlock_map(&self) {
        self.map_lock.store(false, Ordering::Release);
    }

    /// The owner's unlocked read (`owner_map().get`).
    fn owner_read(&self) -> u64 {
        let n = self.map.load(Ordering::Relaxed);
        unsafe { &*n }.value.with(|v| unsafe { *v })
    }

    /// `replace_value_in_place`: true if edited in place.
    fn replace_value_in_place(&self, value: u64) -> bool {
        self.lock_map();
        let n = unsafe { &*self.map.load(Ordering::Relaxed) };
        let unique = n.refcnt.load(Ordering::Acquire) == 1;
        if unique {
            n.value.with_mut(|v| unsafe { *v = value });
        }
        self.unlock_map();
        unique
    }

    /// `replace_map`: swap under the lock, release the old map after.
    fn replace_map(&self, new: *mut Node, freed: &AtomicUsize) {
        self.lock_map();
        let old = self.map.swap(new, Ordering::Relaxed);
        self.unlock_map();
        unsafe { release(old, freed) };
    }

    /// A foreign thread's `snapshot`.
    fn snapshot(&self) -> *mut Node {
        self.lock_map();
        let n = self.map.load(Ordering::Relaxed);
        unsafe { &*n }.refcnt.fetch_add(1, Ordering::Relaxed);
        self.unlock_map();
        n
    }
}

/// The owner sets twice (an in-place edit when it may, then a new map)
/// while a copier snapshots once and reads its copy.
#[test]
fn a_copier_and_the_owner_setting() {
    loom::model(|| {
        let freed = Arc::new(AtomicUsize::new(0));
        let ctx = Arc::new(Context { map: AtomicPtr::new(new_node(1)), map_lock: AtomicBool::new(false) });
        let copier = {
            let (ctx, freed) = (ctx.clone(), freed.clone());
            thread::spawn(move || {
                let snap = ctx.snapshot();
                let v = unsafe { &*snap }.value.with(|v| unsafe { *v });
                assert!(v == 1 || v == 2 || v == 3, "copier read {v}");
                unsafe { release(snap, &freed) };
            })
        };
        // The owner: edit in place if no copy holds the map, else a new map.
        let in_place = ctx.replace_value_in_place(2);
        if !in_place {
            ctx.replace_map(new_node(2), &freed);
        }
        assert_eq!(ctx.owner_read(), 2);
        ctx.replace_map(new_node(3), &freed);
        assert_eq!(ctx.owner_read(), 3);
        copier.join().unwrap();
        // The context dies: its map goes.
        let last = ctx.map.load(Ordering::Relaxed);
        unsafe { release(last, &freed) };
        let made = if in_place { 2 } else { 3 };
        assert_eq!(freed.load(Ordering::Relaxed), made, "every node freed exactly once");
    });
}

/// The context's death: the copier holds a reference to the context while
/// it copies (a C caller must own one) and drops it right after, keeping
/// only its snapshot; the owner replaces the map and drops its reference.
/// Whoever drops the context last releases its map. The node the copier
/// holds must outlive its read, whoever frees it.
#[test]
fn a_snapshot_outlives_the_context() {
    struct Owned {
        ctx: Context,
        refcnt: AtomicUsize,
    }
    /// Drops a reference to the context; the last releases its map.
    fn drop_ctx(o: &Owned, freed: &AtomicUsize) {
        if o.refcnt.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            unsafe { release(o.ctx.map.load(Ordering::Relaxed), freed) };
        }
    }
    loom::model(|| {
        let freed = Arc::new(AtomicUsize::new(0));
        let o = Arc::new(Owned {
            ctx: Context { map: AtomicPtr::new(new_node(1)), map_lock: AtomicBool::new(false) },
            refcnt: AtomicUsize::new(2),
        });
        let copier = {
            let (o, freed) = (o.clone(), freed.clone());
            thread::spawn(move || {
                let snap = o.ctx.snapshot();
                drop_ctx(&o, &freed);
                let v = unsafe { &*snap }.value.with(|v| unsafe { *v });
                assert!(v == 1 || v == 2, "copier read {v}");
                unsafe { release(snap, &freed) };
            })
        };
        o.ctx.replace_map(new_node(2), &freed);
        drop_ctx(&o, &freed);
        copier.join().unwrap();
        assert_eq!(freed.load(Ordering::Relaxed), 2, "every node freed exactly once");
    });
}
