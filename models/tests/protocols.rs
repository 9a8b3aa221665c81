//! Loom models of the library's lock-free protocols. Each model copies the
//! orderings of the real code (the file and function are named above each)
//! onto loom's atomics; loom runs every interleaving and every weak-memory
//! outcome the C++ model allows, and flags data races on the `UnsafeCell`
//! payloads that stand for the objects' contents. A payload write at free
//! time stands for the free: a holder's read racing with it is a
//! use-after-free.

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// An object: a count word and contents. `freed` counts frees (must end at
/// exactly one).
struct Obj {
    count: AtomicIsize,
    contents: UnsafeCell<usize>,
    freed: AtomicUsize,
}

impl Obj {
    fn new(count: isize) -> Obj {
        Obj { count: AtomicIsize::new(count), contents: UnsafeCell::new(7), freed: AtomicUsize::new(0) }
    }

    fn free(&self) {
        // The destructor writes the contents: ordered after every holder's
        // use, or loom reports a race.
        self.contents.with_mut(|c| unsafe { *c = 0 });
        self.freed.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self) -> usize {
        self.contents.with(|c| unsafe { *c })
    }

    /// object.rs `incref`.
    fn incref(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// object.rs `decref`, with the unique-owner shortcut.
    fn decref(&self) {
        let n = self.count.load(Ordering::Acquire);
        if n == 1 {
            self.count.store(0, Ordering::Relaxed);
            self.free();
            return;
        }
        if self.count.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            self.free();
        }
    }

    /// object.rs `decref_by` (Exit dropping the entered flag).
    fn decref_by(&self, units: isize) {
        if self.count.fetch_sub(units, Ordering::Release) == units {
            fence(Ordering::Acquire);
            self.free();
        }
    }
}

/// object.rs decref: two threads drop their references (one also makes and
/// drops another on the way); the object is freed once, after both are done
/// reading it, whichever path (shortcut or decrement) frees it.
#[test]
fn refcount_to_free() {
    loom::model(|| {
        let o = Arc::new(Obj::new(2));
        let o2 = o.clone();
        let t = thread::spawn(move || {
            assert_eq!(o2.read(), 7);
            o2.incref();
            o2.decref();
            o2.decref();
        });
        assert_eq!(o.read(), 7);
        o.decref();
        t.join().unwrap();
        assert_eq!(o.freed.load(Ordering::Relaxed), 1);
    });
}

/// context.rs: the entered flag, a bit of the count word that also stands
/// for the entering thread's reference.
const ENTERED: isize = 1 << 48;

/// context.rs `enter`: claim the flag with a compare-exchange loop.
fn enter(ctx: &Obj) -> bool {
    let mut count = ctx.count.load(Ordering::Relaxed);
    loop {
        if count & ENTERED != 0 {
            return false;
        }
        match ctx.count.compare_exchange_weak(count, count + ENTERED, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => count = now,
        }
    }
}

/// Two threads race to enter one context, each holding a reference. The
/// winner writes the context's map (the contents) and exits; a thread that
/// enters later reads what the earlier one wrote. Exactly one is inside at a
/// time, every write is visible to the next enterer, and the context is
/// freed once, by whichever thread lets go last.
#[test]
fn entered_flag_is_exclusive_and_publishes_the_map() {
    loom::model(|| {
        let ctx = Arc::new(Obj::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let run = |ctx: Arc<Obj>, inside: Arc<AtomicUsize>, mark: usize| {
            let mut entered = false;
            for _ in 0..2 {
                if enter(&ctx) {
                    entered = true;
                    assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0, "two threads inside");
                    let seen = ctx.read();
                    assert!(seen == 7 || seen == 10 || seen == 20);
                    ctx.contents.with_mut(|c| unsafe { *c = mark });
                    inside.fetch_sub(1, Ordering::Relaxed);
                    ctx.decref_by(ENTERED); // exit
                    break;
                }
                thread::yield_now();
            }
            ctx.decref(); // the caller's own reference
            entered
        };
        let (c2, i2) = (ctx.clone(), inside.clone());
        let t = thread::spawn(move || run(c2, i2, 20));
        let a = run(ctx.clone(), inside.clone(), 10);
        let b = t.join().unwrap();
        assert!(a || b, "someone entered");
        assert_eq!(ctx.freed.load(Ordering::Relaxed), 1);
    });
}

/// CPython's S1 hazard, made safe: the caller drops its only reference while
/// the context is entered, and another thread adds and drops a reference
/// meanwhile; Exit (dropping the flag) frees it, once.
#[test]
fn exit_frees_a_context_its_caller_dropped() {
    loom::model(|| {
        let ctx = Arc::new(Obj::new(2)); // the caller's and a copier's
        assert!(enter(&ctx));
        let c2 = ctx.clone();
        let t = thread::spawn(move || {
            c2.incref();
            assert_eq!(c2.read(), 7);
            c2.decref();
            c2.decref();
        });
        ctx.decref(); // the caller lets go while entered
        assert_eq!(ctx.read(), 7);
        ctx.decref_by(ENTERED); // exit
        t.join().unwrap();
        assert_eq!(ctx.freed.load(Ordering::Relaxed), 1);
    });
}

/// A map node (hamt.rs `Node`): count, contents, frees.
type Node = Obj;

/// context.rs: a context's map cell and its lock.
struct Cell {
    map: AtomicUsize, // index into `nodes`
    lock: AtomicBool,
    nodes: [Node; 2],
}

impl Cell {
    /// Map 0 current (the context's reference), map 1 ready to swap in.
    fn new() -> Arc<Cell> {
        Arc::new(Cell { map: AtomicUsize::new(0), lock: AtomicBool::new(false), nodes: [Node::new(1), Node::new(1)] })
    }

    fn lock(&self) {
        while self.lock.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            thread::yield_now();
        }
    }

    fn unlock(&self) {
        self.lock.store(false, Ordering::Release);
    }

    /// hamt.rs `NodeRef::drop`, with the unique-owner shortcut.
    fn drop_node(&self, i: usize) {
        self.nodes[i].decref();
    }

    /// context.rs `snapshot` from another thread: load and add a
    /// reference under the lock.
    fn snapshot(&self) -> usize {
        self.lock();
        let i = self.map.load(Ordering::Relaxed);
        assert_eq!(self.nodes[i].freed.load(Ordering::Relaxed), 0, "copied a freed map");
        self.nodes[i].incref();
        self.unlock();
        i
    }
}

/// context.rs `replace_map` (owner) against `snapshot` (another thread): the
/// owner swaps in a new map under the lock and drops the old one after; the
/// copier never adds a reference to a freed map, and reads the map it took
/// without racing with its free.
#[test]
fn map_lock_guards_copies_against_replacement() {
    loom::model(|| {
        let cell = Cell::new();
        let c2 = cell.clone();
        let copier = thread::spawn(move || {
            let i = c2.snapshot();
            assert_eq!(c2.nodes[i].read(), 7);
            c2.drop_node(i);
        });
        // Owner: node 1 is the new map (count 1, made by this thread).
        cell.lock();
        let old = cell.map.swap(1, Ordering::Relaxed);
        cell.unlock();
        cell.drop_node(old);
        copier.join().unwrap();
        assert_eq!(cell.nodes[0].freed.load(Ordering::Relaxed), 1);
        assert_eq!(cell.nodes[1].count.load(Ordering::Relaxed), 1);
    });
}

/// context.rs `replace_value_in_place` and `grow_delta_in_place` (owner)
/// against `snapshot` (another thread): under the lock the owner edits the
/// map's root in place only if its count is 1; a copier that took a
/// reference first makes the owner leave it alone, and one that already let
/// go has its reads ordered before the edit.
#[test]
fn in_place_edits_only_of_unshared_maps() {
    loom::model(|| {
        let cell = Cell::new();
        let c2 = cell.clone();
        let copier = thread::spawn(move || {
            let i = c2.snapshot();
            let seen = c2.nodes[i].read();
            assert!(seen == 7 || seen == 8);
            c2.drop_node(i);
        });
        cell.lock();
        let root = cell.map.load(Ordering::Relaxed);
        if cell.nodes[root].count.load(Ordering::Acquire) == 1 {
            cell.nodes[root].contents.with_mut(|c| unsafe { *c = 8 });
        }
        cell.unlock();
        copier.join().unwrap();
        assert_eq!(cell.nodes[0].count.load(Ordering::Relaxed), 1);
    });
}
