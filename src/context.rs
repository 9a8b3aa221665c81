//! Contexts and each thread's current context.
//!
//! A Context is a mutable cell holding an immutable map ([`Map`]). Setting a
//! variable swaps in a new map; copying shares the map. Each thread has its
//! own current context (a strong reference, or none until the first Set,
//! Reset or CopyCurrent creates the thread's base context lazily), and the
//! contexts it entered form a stack through `prev`.
//!
//! Who may touch what, which is what makes this safe without a global lock:
//! - The entered flag ([`ENTERED`], a bit of the count word) is claimed with
//!   a compare-exchange, so a context is on at most one thread's stack; only
//!   that thread sets `prev` and writes the map. The flag also stands for the
//!   entering thread's reference, so Enter and Exit each make one atomic
//!   step, not two.
//!   The base context is never handed out, so only its thread writes it.
//! - The owning thread reads its own map without synchronisation (no one
//!   else writes it). Another thread copying the context takes `map_lock`
//!   around loading the pointer and adding a reference, and the owner takes
//!   it around swapping the pointer, so a copier never adds a reference to a
//!   map the owner is freeing. The lock is per context and held for a few
//!   instructions; Get never takes it.

use std::cell::Cell;
use std::fmt;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use crate::errors::{Exc, PyErr};
use crate::hamt::Map;
use crate::object::{decref, decref_by, dealloc_entry, new_object, Owned, PyLayout, PyObject, PyTypeObject, TYPE_TYPE};
use crate::values::Repr;

/// A context object.
#[repr(C)]
pub struct Context {
    ob_base: PyObject,
    /// The map, as `Map::into_raw` (a strong reference; NULL when empty).
    map: AtomicPtr<()>,
    /// Guards swapping `map` against another thread's copy (module doc).
    map_lock: AtomicBool,
    /// While entered: the thread's previous current context (a strong
    /// reference or NULL). Only the entering thread reads or writes it.
    prev: AtomicPtr<Context>,
}

// SAFETY: repr(C), header first.
unsafe impl PyLayout for Context {}

/// Added to a context's count word while it is on some thread's stack: the
/// entered flag and that thread's reference in one (far below the immortal
/// range, far above any real count). The header's `Py_REFCNT` shows it as 1.
pub(crate) const ENTERED: isize = 1 << 48;

/// The Context type (`_contextvars.Context`).
#[unsafe(no_mangle)]
pub static mut PyContext_Type: PyTypeObject = PyTypeObject::new(
    &raw mut TYPE_TYPE,
    c"_contextvars.Context",
    size_of::<Context>(),
    Some(dealloc_entry),
    ptr::null_mut(),
);

pub(crate) fn context_type() -> *mut PyTypeObject {
    &raw mut PyContext_Type
}

impl Drop for Context {
    fn drop(&mut self) {
        // A context dies only when not entered (the entered flag is a
        // reference), and Exit and the thread-exit release clear `prev`
        // before dropping the flag: there is no link left to release.
        debug_assert!(self.prev.get_mut().is_null(), "a dying context has no previous context");
        // SAFETY: the context is dead: we own its map.
        drop(unsafe { Map::from_raw(*self.map.get_mut()) });
    }
}

impl Context {
    /// A new, not entered context holding `map`.
    pub(crate) fn new(map: Map) -> Result<Owned<Context>, PyErr> {
        new_object(Context {
            ob_base: PyObject::new(context_type()),
            map: AtomicPtr::new(map.into_raw()),
            map_lock: AtomicBool::new(false),
            prev: AtomicPtr::new(ptr::null_mut()),
        })
    }

    /// Whether the context is on some thread's stack. Acquire pairs with the
    /// Release of the Exit that cleared it.
    pub(crate) fn is_entered(&self) -> bool {
        self.ob_base.ob_refcnt.load(Ordering::Acquire) & ENTERED != 0
    }

    fn lock_map(&self) {
        let mut spins = 0u32;
        while self
            .map_lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn unlock_map(&self) {
        self.map_lock.store(false, Ordering::Release);
    }

    /// The map, borrowed. Only for the thread whose current context this is
    /// (the only writer), and only until it next changes the map.
    pub(crate) fn owner_map(&self) -> &Map {
        debug_assert!(ptr::eq(CURRENT.get(), self));
        // SAFETY: the AtomicPtr's storage is a valid Map representation, and
        // only the calling thread (the owner) replaces it.
        unsafe { Map::borrow_raw(&*self.map.as_ptr()) }
    }

    /// A snapshot of the map, safe from any thread.
    pub(crate) fn snapshot(&self) -> Map {
        if ptr::eq(CURRENT.get(), self) {
            return self.owner_map().clone();
        }
        self.lock_map();
        // SAFETY: under the lock the owner cannot release the map we load.
        let map = unsafe { Map::clone_from_raw(self.map.load(Ordering::Relaxed)) };
        self.unlock_map();
        map
    }

    /// Visits the references the context holds: each variable and value in
    /// its map, and the previous context while entered. Reading `prev` is
    /// only sound while the entering thread cannot exit concurrently: a
    /// collector must stop the world (or run on that thread) first.
    pub(crate) fn traverse(&self, visit: &mut dyn FnMut(&PyObject)) {
        self.snapshot().for_each(|k, v| {
            // SAFETY: the snapshot holds references to its keys and values.
            unsafe {
                visit(&*k);
                visit(&*v);
            }
        });
        let prev = self.prev.load(Ordering::Relaxed);
        if !prev.is_null() {
            // SAFETY: an entered context holds a reference to `prev`.
            visit(unsafe { &(*prev).ob_base });
        }
    }

    /// Rebinds a variable already in the map by editing uniquely owned nodes
    /// in place (owner only); returns the replaced value, or `None` if that
    /// cannot be done and the caller must build a new map.
    pub(crate) fn replace_value_in_place(&self, key: *mut PyObject, hash: u64, value: *mut PyObject) -> Option<Owned> {
        self.lock_map();
        // SAFETY: under the lock no copier can take a reference to the map,
        // and only this thread (the owner) writes it; `value` is live.
        let old = unsafe { self.owner_map().replace_in_place(key, hash, value) };
        self.unlock_map();
        // SAFETY: the node's reference to the old value passes to us.
        old.map(|p| unsafe { Owned::from_owned(NonNull::new_unchecked(p)) })
    }

    /// Binds a variable by growing a uniquely owned delta root (owner only);
    /// false if that cannot be done and the caller must build a new map.
    pub(crate) fn grow_delta_in_place(&self, key: *mut PyObject, hash: u64, value: *mut PyObject) -> Result<bool, PyErr> {
        if !self.owner_map().delta_can_grow(key) {
            return Ok(false); // checked again under the lock
        }
        self.lock_map();
        // SAFETY: under the lock no copier can take a reference to the map,
        // and only this thread (the owner) writes it; the map's reference
        // passes through `grow_unique_delta` and back into the cell.
        let (map, grown) = unsafe {
            Map::from_raw(self.map.load(Ordering::Relaxed)).grow_unique_delta(key, hash, value)
        };
        self.map.store(map.into_raw(), Ordering::Relaxed);
        self.unlock_map();
        grown
    }

    /// Replaces the map (owner only). The old map is released after the new
    /// one is in place, so destructors that run then see the new state.
    pub(crate) fn replace_map(&self, map: Map) {
        if map.same(self.owner_map()) {
            return;
        }
        self.lock_map();
        let old = self.map.swap(map.into_raw(), Ordering::Relaxed);
        self.unlock_map();
        // SAFETY: the context owned the old map's reference.
        drop(unsafe { Map::from_raw(old) });
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Repr(&self.ob_base).fmt(f)
    }
}

thread_local! {
    /// The thread's current context: a strong reference, or NULL. A plain
    /// cell (no destructor), so it stays usable while the thread tears down.
    static CURRENT: Cell<*mut Context> = const { Cell::new(ptr::null_mut()) };
    /// Whether this thread's exit hook is armed.
    static EXIT_ARMED: Cell<bool> = const { Cell::new(false) };
    /// How many rounds of key destructors the exit hook has seen.
    static EXIT_ROUND: Cell<u32> = const { Cell::new(0) };
}

/// glibc's PTHREAD_DESTRUCTOR_ITERATIONS: the rounds of key destructors it
/// runs at thread exit while keys keep being set.
#[cfg(not(contextvars_tsan))]
const KEY_DESTRUCTOR_ROUNDS: u32 = 4;
/// ThreadSanitizer tears down its own thread state in glibc's last round
/// (its own key destructor), after which instrumented code crashes: its
/// build (tools/tsan.sh) releases one round earlier.
#[cfg(contextvars_tsan)]
const KEY_DESTRUCTOR_ROUNDS: u32 = 3;

/// Release passes in the last round before giving up on destructors that
/// keep creating state (each pass releases everything there is).
const MAX_RELEASE_PASSES: u32 = 100;

/// The pthread key whose destructor releases what a thread holds when it
/// exits (`u32::MAX` until created). A pthread key rather than a Rust
/// thread-local destructor: glibc runs key destructors after C++
/// `thread_local` and Rust thread-local destructors. While the thread still
/// has contexts entered, the hook re-arms itself (up to glibc's last round)
/// instead of releasing, so the program's own key destructors, created
/// before or after ours, can still exit contexts that only the thread holds.
/// Otherwise it releases at once, so state that other key destructors create
/// in later rounds is released too. The main thread runs no key destructors
/// at `exit()`: what it holds then stays reachable, as in CPython. The
/// library is linked with `-z nodelete` (build.rs), so the destructor stays
/// mapped even if the library is dlclose'd while threads still run.
static EXIT_KEY: AtomicU32 = AtomicU32::new(u32::MAX);

extern "C" fn thread_exit(_marker: *mut libc::c_void) {
    EXIT_ARMED.set(false);
    let round = EXIT_ROUND.get() + 1;
    EXIT_ROUND.set(round);
    // SAFETY: the thread holds a reference to its current context.
    let entered = current().is_some_and(Context::is_entered);
    if entered && round < KEY_DESTRUCTOR_ROUNDS {
        register_thread_exit();
        if EXIT_ARMED.get() {
            return; // released in a later round
        }
    }
    // Destructors run by the release may create state again (a capsule
    // destructor that calls Set): release until nothing is left, within
    // reason.
    for _ in 0..MAX_RELEASE_PASSES {
        if CURRENT.get().is_null() && crate::errors::is_empty() && crate::object::nothing_pending() {
            // Last: what the release freed went to the block cache.
            crate::alloc::close_thread_cache();
            return;
        }
        crate::ffi::guard_void(|| {
            release_thread_contexts();
            crate::errors::clear();
            crate::object::drain_pending();
        });
    }
    crate::alloc::close_thread_cache();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"libcontextvars: destructors kept creating context state while a thread exited; the rest is leaked\n",
    );
}

fn exit_key() -> Option<libc::pthread_key_t> {
    let key = EXIT_KEY.load(Ordering::Acquire);
    if key != u32::MAX {
        return Some(key);
    }
    let mut created: libc::pthread_key_t = 0;
    // SAFETY: `created` is a valid out-pointer; the destructor is an
    // `extern "C"` function that never unwinds (it runs the guard).
    if unsafe { libc::pthread_key_create(&mut created, Some(thread_exit)) } != 0 || created == u32::MAX {
        return None; // no key now (all in use): the next call tries again
    }
    match EXIT_KEY.compare_exchange(u32::MAX, created, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(created),
        Err(winner) => {
            // Another thread created the key first: use theirs.
            // SAFETY: our key was never used.
            unsafe { libc::pthread_key_delete(created) };
            Some(winner)
        }
    }
}

/// [`register_thread_exit`], telling whether the hook is armed (the block
/// cache in `alloc.rs` is used only then).
pub(crate) fn register_thread_exit_hook() -> bool {
    register_thread_exit();
    EXIT_ARMED.get()
}

/// Makes sure the thread's contexts, pending error and cached blocks are
/// released when it exits. Cheap after the first call on a thread.
pub(crate) fn register_thread_exit() {
    if EXIT_ARMED.get() {
        return;
    }
    if let Some(key) = exit_key() {
        // Any non-NULL value arms the destructor for this thread.
        // SAFETY: the key exists; the marker is never read.
        if unsafe { libc::pthread_setspecific(key, ptr::NonNull::<u8>::dangling().as_ptr().cast()) } == 0 {
            EXIT_ARMED.set(true);
        }
    }
}

/// Drops the thread's stack: every entered context is left (and may be
/// entered again by any thread), then the base context is released.
fn release_thread_contexts() {
    let mut c = CURRENT.replace(ptr::null_mut());
    while !c.is_null() {
        // SAFETY: the thread owns a reference to each context on its stack
        // (to the top one directly, to the others through `prev`).
        unsafe {
            let prev = (*c).prev.load(Ordering::Relaxed);
            (*c).prev.store(ptr::null_mut(), Ordering::Relaxed);
            if (*c).is_entered() {
                decref_by(c.cast(), ENTERED);
            } else {
                decref(c.cast()); // the base context
            }
            c = prev;
        }
    }
}

/// The current context, if the thread has one (borrowed: valid until the
/// thread switches context).
pub(crate) fn current() -> Option<&'static Context> {
    let c = CURRENT.get();
    // SAFETY: the thread holds a reference to its current context until it
    // switches; callers use the borrow only within one API call.
    (!c.is_null()).then(|| unsafe { &*c })
}

/// The current context, creating the thread's base context if it has none
/// (CPython's `context_get`).
pub(crate) fn current_or_create() -> Result<&'static Context, PyErr> {
    if let Some(c) = current() {
        return Ok(c);
    }
    let base = Context::new(Map::new())?;
    register_thread_exit();
    CURRENT.set(base.into_raw().cast());
    Ok(current().expect("just set"))
}

/// `PyContext_New`.
pub(crate) fn new_context() -> Result<Owned<Context>, PyErr> {
    Context::new(Map::new())
}

/// `PyContext_Copy`.
pub(crate) fn copy(ctx: &Context) -> Result<Owned<Context>, PyErr> {
    Context::new(ctx.snapshot())
}

/// `PyContext_CopyCurrent`.
pub(crate) fn copy_current() -> Result<Owned<Context>, PyErr> {
    let ctx = current_or_create()?;
    Context::new(ctx.owner_map().clone())
}

/// `PyContext_Enter`.
pub(crate) fn enter(ctx: &Context) -> Result<(), PyErr> {
    // Setting the flag claims the context and takes the thread's own
    // reference, so Exit is safe even if the caller drops theirs first
    // (CPython's S1 hazard). Acquire pairs with the Release in `exit` on
    // whichever thread last left this context, so its map writes are
    // visible here. The caller's reference keeps ctx alive meanwhile.
    let rc = &ctx.ob_base.ob_refcnt;
    let mut count = rc.load(Ordering::Relaxed);
    loop {
        if count & ENTERED != 0 {
            return Err(PyErr::format(Exc::Runtime, format_args!("cannot enter context: {ctx} is already entered")));
        }
        match rc.compare_exchange_weak(count, count + ENTERED, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => count = now,
        }
    }
    register_thread_exit();
    ctx.prev.store(CURRENT.get(), Ordering::Relaxed);
    CURRENT.set(ctx as *const Context as *mut Context);
    crate::watchers::context_switched(CURRENT.get());
    Ok(())
}

/// `PyContext_Exit`.
pub(crate) fn exit(ctx: &Context) -> Result<(), PyErr> {
    if !ctx.is_entered() {
        return Err(PyErr::format(Exc::Runtime, format_args!("cannot exit context: {ctx} has not been entered")));
    }
    let me = ctx as *const Context as *mut Context;
    if CURRENT.get() != me {
        return Err(PyErr::constant(
            Exc::Runtime,
            crate::values::static_str!("cannot exit context: thread state references a different context object"),
        ));
    }
    // Unlink first, release last: if the thread held the last reference, the
    // context dies with `prev` already cleared, so the previous context keeps
    // the reference the thread now relies on.
    CURRENT.set(ctx.prev.load(Ordering::Relaxed));
    ctx.prev.store(ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: the flag is the thread's own reference, taken by `enter`;
    // Release publishes this thread's map writes to the next enterer.
    unsafe { decref_by(NonNull::from(ctx).as_ptr().cast(), ENTERED) };
    crate::watchers::context_switched(CURRENT.get());
    Ok(())
}
