//! Loom model of the reference count (src/object.rs `incref`/`decref`, and
//! the map nodes' `NodeRef` clone/drop in src/hamt.rs): increments are
//! Relaxed, decrements Release, and the thread that takes the count to zero
//! issues an Acquire fence before destroying. Two threads each use the
//! object (read and write its data, as a destructor or Set would) and drop
//! their reference; loom checks, over every interleaving and every allowed
//! reordering, that exactly one thread destroys it and that the destruction
//! happens after every other thread's use (no data race on the contents).
//!
//! Run: `make loom` (RUSTFLAGS="--cfg loom" cargo test --release --test loom_refcount).
#![cfg(loom)]
// The unsafe blocks are the protocol under test; loom checks them.
#![allow(clippy::undocumented_unsafe_blocks)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicIsize, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

struct Object {
    refcnt: AtomicIsize,
    data: UnsafeCell<u64>,
}

/// `incref`: a new reference is made from an existing one.
fn incref(o: &Object) {
    o.refcnt.fetch_add(1, Ordering::Relaxed);
}

/// `decref`: returns true if this call destroyed the object.
fn decref(o: &Object, destroyed: &AtomicUsize) -> bool {
    if o.refcnt.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        // Destruction writes the object (drop_in_place, then free).
        o.data.with_mut(|d| unsafe { *d = u64::MAX });
        destroyed.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    false
}

#[test]
fn two_threads_drop_the_last_two_references() {
    loom::model(|| {
        // The object lives in an Arc only so loom can share it; its own count
        // decides who destroys it.
        let o = Arc::new(Object { refcnt: AtomicIsize::new(2), data: UnsafeCell::new(0) });
        let destroyed = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2u64)
            .map(|i| {
                let (o, destroyed) = (o.clone(), destroyed.clone());
                thread::spawn(move || {
                    // The reference's owner uses the object (its own writes
                    // happen before it lets go).
                    o.data.with(|d| assert_ne!(unsafe { *d }, u64::MAX, "used after destruction"));
                    let _ = i;
                    decref(&o, &destroyed);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(destroyed.load(Ordering::Relaxed), 1, "destroyed exactly once");
    });
}

#[test]
fn a_thread_shares_a_new_reference_then_both_drop() {
    loom::model(|| {
        // One owner writes the object, makes a reference for another thread
        // (incref, then hands it over), and both drop theirs concurrently.
        let o = Arc::new(Object { refcnt: AtomicIsize::new(1), data: UnsafeCell::new(0) });
        let destroyed = Arc::new(AtomicUsize::new(0));
        o.data.with_mut(|d| unsafe { *d = 1 });
        incref(&o);
        let (o2, destroyed2) = (o.clone(), destroyed.clone());
        let t = thread::spawn(move || {
            o2.data.with(|d| assert_eq!(unsafe { *d }, 1));
            decref(&o2, &destroyed2);
        });
        o.data.with(|d| assert_eq!(unsafe { *d }, 1));
        decref(&o, &destroyed);
        t.join().unwrap();
        assert_eq!(destroyed.load(Ordering::Relaxed), 1);
    });
}
