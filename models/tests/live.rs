//! Loom model of the live-object counters (src/live.rs): each thread counts
//! in its own block with a relaxed load and a relaxed store (no
//! read-modify-write); a new block is pushed on the global list with a
//! compare-exchange; an exiting thread gives its block back on a
//! mutex-guarded free list and a later thread takes it over, counts and
//! all; a reader sums every block with relaxed loads. Loom checks that no
//! count is lost: with one thread's block handed to the next, and a
//! reader running meanwhile, the sum once the threads are done is exactly
//! the net of what they counted.
//!
//! Run: `make loom` (cd models && cargo test --release --test live).

use std::ptr;

use loom::sync::atomic::{AtomicIsize, AtomicPtr, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

struct Block {
    cell: AtomicIsize,
    next: *const Block,
}

struct Registry {
    all: AtomicPtr<Block>,
    /// The free list (the real one links through the blocks; a Vec here).
    free: Mutex<Vec<usize>>,
}

impl Registry {
    /// `take_block`: reuse a given-back block, or make and publish one.
    fn take(&self) -> *const Block {
        if let Some(b) = self.free.lock().unwrap().pop() {
            return b as *const Block;
        }
        let fresh = Box::into_raw(Box::new(Block { cell: AtomicIsize::new(0), next: ptr::null() }));
        let mut head = self.all.load(Ordering::Relaxed);
        loop {
            unsafe { (*fresh).next = head };
            match self.all.compare_exchange(head, fresh, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return fresh,
                Err(now) => head = now,
            }
        }
    }

    /// `GiveBack::drop`.
    fn give_back(&self, b: *const Block) {
        self.free.lock().unwrap().push(b as usize);
    }

    /// `counts`.
    fn sum(&self) -> isize {
        let mut sum = 0;
        let mut b = self.all.load(Ordering::Acquire) as *const Block;
        while !b.is_null() {
            let block = unsafe { &*b };
            sum += block.cell.load(Ordering::Relaxed);
            b = block.next;
        }
        sum
    }

    fn free_all(&self) {
        let mut b = self.all.load(Ordering::Relaxed);
        while !b.is_null() {
            let next = unsafe { (*b).next } as *mut Block;
            drop(unsafe { Box::from_raw(b) });
            b = next;
        }
    }
}

/// The owner's update: a relaxed load and a relaxed store.
fn add(b: *const Block, delta: isize) {
    let cell = unsafe { &(*b).cell };
    cell.store(cell.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
}

#[test]
fn a_block_handed_over_between_threads_loses_no_count() {
    loom::model(|| {
        let reg = Arc::new(Registry { all: AtomicPtr::new(ptr::null_mut()), free: Mutex::new(Vec::new()) });
        // Thread 1 makes two objects and exits; thread 2 frees one of them
        // and makes another, in whichever block it gets (maybe thread 1's).
        let t1 = {
            let reg = reg.clone();
            thread::spawn(move || {
                let b = reg.take();
                add(b, 1);
                add(b, 1);
                reg.give_back(b);
            })
        };
        let t2 = {
            let reg = reg.clone();
            thread::spawn(move || {
                let b = reg.take();
                add(b, -1);
                add(b, 1);
                reg.give_back(b);
            })
        };
        // A reader meanwhile: any recent value, never a crash.
        let during = reg.sum();
        assert!((-1..=3).contains(&during), "read {during}");
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(reg.sum(), 2, "a count was lost");
        reg.free_all();
    });
}
