//! Loom model of a context's `entered` flag (src/context.rs `enter`/`exit`):
//! Enter claims the context with compare_exchange(false -> true, Acquire,
//! Relaxed) and then writes the context's thread-owned state (`prev`, the
//! map); Exit clears the flag with a Release store. Loom checks that of two
//! threads racing to Enter exactly one wins while neither exits, and that
//! when each enters, writes and exits, the writes never race: a thread that
//! wins after another exited sees everything the other wrote.
//!
//! Run: `make loom` (RUSTFLAGS="--cfg loom" cargo test --release --test loom_enter).
#![cfg(loom)]
// The unsafe blocks are the protocol under test; loom checks them.
#![allow(clippy::undocumented_unsafe_blocks)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

struct Context {
    entered: AtomicBool,
    /// What only the entering thread touches (`prev`, the map pointer).
    owned: UnsafeCell<u64>,
}

fn enter(c: &Context) -> bool {
    c.entered.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
}

fn exit(c: &Context) {
    c.entered.store(false, Ordering::Release);
}

#[test]
fn of_two_threads_racing_to_enter_exactly_one_wins() {
    loom::model(|| {
        let c = Arc::new(Context { entered: AtomicBool::new(false), owned: UnsafeCell::new(0) });
        let wins = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (c, wins) = (c.clone(), wins.clone());
                thread::spawn(move || {
                    if enter(&c) {
                        c.owned.with_mut(|o| unsafe { *o += 1 });
                        wins.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(wins.load(Ordering::Relaxed), 1);
        assert!(c.entered.load(Ordering::Relaxed));
    });
}

#[test]
fn enter_write_exit_on_two_threads_never_races() {
    loom::model(|| {
        let c = Arc::new(Context { entered: AtomicBool::new(false), owned: UnsafeCell::new(0) });
        let wins = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (c, wins) = (c.clone(), wins.clone());
                thread::spawn(move || {
                    if enter(&c) {
                        // Reads what the previous holder wrote, then writes.
                        c.owned.with_mut(|o| unsafe { *o += 1 });
                        wins.fetch_add(1, Ordering::Relaxed);
                        exit(&c);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let w = wins.load(Ordering::Relaxed);
        assert!(w >= 1);
        c.owned.with(|o| assert_eq!(unsafe { *o }, w as u64, "a holder missed another's write"));
        assert!(!c.entered.load(Ordering::Relaxed));
    });
}
