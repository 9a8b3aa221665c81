//! The object model: the `PyObject` header every object starts with, type
//! objects, atomic reference counting, owned handles, and destruction.
//!
//! Objects are C-visible: C code reads `ob_refcnt` and `ob_type` directly and
//! the header's inline `Py_INCREF`/`Py_DECREF` work on the count with atomic
//! builtins, so the count lives in the header, not inside an `Arc`. Statically
//! allocated objects (None, small ints, type objects, constant messages) start
//! at [`IMMORTAL_REFCNT`]; both the Rust and the C side skip counting for
//! them, so shared singletons never bounce between cores.
//!
//! Destruction recurses only a bounded depth: an object whose count reaches
//! zero is destroyed at once, as in CPython, unless this thread is already
//! [`INLINE_DEPTH`] destructions deep; then it is queued on a per-thread list
//! (linked through its dead `ob_refcnt` word) and the outermost destruction
//! drains the list. A chain of a million contexts, each holding the previous
//! one, is freed in bounded stack (CPython's "trashcan", in effect).

use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};
#[cfg(not(contextvars_tsan))]
use std::sync::atomic::fence;
use std::sync::atomic::{AtomicIsize, Ordering};

use crate::errors::PyErr;

/// CPython's signed size type.
#[allow(non_camel_case_types)]
pub type Py_ssize_t = isize;

/// Every object starts with this header, as in CPython: the reference count,
/// then the type. The count is updated atomically by every thread.
#[repr(C)]
pub struct PyObject {
    /// The reference count. Read it with `Py_REFCNT()`; change it only with
    /// the reference-counting functions and macros.
    pub ob_refcnt: AtomicIsize,
    /// The object's type; never changes.
    pub ob_type: *mut PyTypeObject,
}

/// A destructor called with an object whose count reached zero.
#[allow(non_camel_case_types)]
pub type destructor = Option<unsafe extern "C" fn(*mut PyObject)>;

/// A type object. Only the fields the C API needs are public; `tp_dealloc`
/// is what `Py_DECREF` calls when a count reaches zero.
#[repr(C)]
pub struct PyTypeObject {
    /// The type object's own header (type objects are immortal).
    pub ob_base: PyObject,
    /// The type's name, e.g. `"_contextvars.Context"`.
    pub tp_name: *const c_char,
    /// The size of an instance in bytes (0 for variable-size objects).
    pub tp_basicsize: Py_ssize_t,
    /// Destroys an instance whose count reached zero.
    pub tp_dealloc: destructor,
    /// The base type (exception types form CPython's hierarchy), or NULL.
    pub tp_base: *mut PyTypeObject,
}

/// The count static objects start at. Counting stops at [`IMMORTAL_MIN`], so
/// no sequence of increments and decrements can free a static object.
pub(crate) const IMMORTAL_REFCNT: isize = 1 << 62;
/// Counts at or above this are immortal (see `CONTEXTVARS_IMMORTAL_REFCNT`).
pub(crate) const IMMORTAL_MIN: isize = 1 << 61;

impl PyObject {
    /// A header for a new heap object: one reference, owned by the creator.
    pub(crate) const fn new(ty: *mut PyTypeObject) -> PyObject {
        PyObject { ob_refcnt: AtomicIsize::new(1), ob_type: ty }
    }

    /// A header for a statically allocated, immortal object.
    pub(crate) const fn immortal(ty: *mut PyTypeObject) -> PyObject {
        PyObject { ob_refcnt: AtomicIsize::new(IMMORTAL_REFCNT), ob_type: ty }
    }

    pub(crate) fn ty(&self) -> *mut PyTypeObject {
        self.ob_type
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self as *const PyObject as *mut PyObject
    }

    /// The type's name as Rust text ("?" if a foreign type has none).
    pub(crate) fn type_name(&self) -> &str {
        // SAFETY: every object's type is a live type object.
        unsafe { &*self.ob_type }.name()
    }
}

// SAFETY: type objects are only mutated through their atomic count.
unsafe impl Sync for PyTypeObject {}

impl PyTypeObject {
    /// A static type object with the given name and dealloc.
    pub(crate) const fn new(
        meta: *mut PyTypeObject,
        name: &'static CStr,
        basicsize: usize,
        dealloc: destructor,
        base: *mut PyTypeObject,
    ) -> PyTypeObject {
        PyTypeObject {
            ob_base: PyObject::immortal(meta),
            tp_name: name.as_ptr(),
            tp_basicsize: basicsize as isize,
            tp_dealloc: dealloc,
            tp_base: base,
        }
    }

    /// The type's name ("?" if a foreign type has none or it is not UTF-8).
    pub(crate) fn name(&self) -> &str {
        if self.tp_name.is_null() {
            return "?";
        }
        // SAFETY: a non-NULL tp_name is a NUL-terminated string.
        unsafe { CStr::from_ptr(self.tp_name) }.to_str().unwrap_or("?")
    }
}

/// The type of type objects (`type`), so `Py_TYPE(&PyContext_Type)` is valid.
pub(crate) static mut TYPE_TYPE: PyTypeObject =
    PyTypeObject::new(&raw mut TYPE_TYPE, c"type", size_of::<PyTypeObject>(), None, ptr::null_mut());

/// Adds a reference. No-op for immortal objects.
///
/// # Safety
/// `o` must point to a live object.
#[inline(always)]
pub(crate) unsafe fn incref(o: *mut PyObject) {
    // SAFETY: the caller guarantees `o` is live.
    let rc = unsafe { &(*o).ob_refcnt };
    if rc.load(Ordering::Relaxed) < IMMORTAL_MIN {
        // Relaxed suffices: a new reference is made from an existing one,
        // which already orders this thread after the object's creation.
        rc.fetch_add(1, Ordering::Relaxed);
    }
}

/// Drops a reference, destroying the object when it was the last.
///
/// # Safety
/// `o` must point to a live object and the caller must own the reference.
#[inline(always)]
pub(crate) unsafe fn decref(o: *mut PyObject) {
    // SAFETY: the caller owns a reference, so `o` is live.
    let rc = unsafe { &(*o).ob_refcnt };
    let n = rc.load(Ordering::Acquire);
    if n >= IMMORTAL_MIN {
        return;
    }
    if n == 1 {
        // The caller holds the only reference, so no other thread can
        // change the count (that takes a reference): skip the atomic
        // decrement. Acquire pairs with earlier holders' release decrements.
        rc.store(0, Ordering::Relaxed);
        // SAFETY: the last reference is gone: we hold the only access.
        unsafe { dealloc(o) };
        return;
    }
    // Release publishes this thread's writes to the destroying thread; the
    // acquire fence pairs with every other thread's release decrement.
    if rc.fetch_sub(1, Ordering::Release) == 1 {
        #[cfg(not(contextvars_tsan))]
        fence(Ordering::Acquire);
        // ThreadSanitizer does not model fences: its build (tools/tsan.sh)
        // acquires through the count itself, which orders the same way.
        #[cfg(contextvars_tsan)]
        rc.load(Ordering::Acquire);
        // SAFETY: the count reached zero: we hold the only access.
        unsafe { dealloc(o) };
    }
}

/// Drops `units` from the count in one step (a context leaving its thread
/// drops the entered flag, which stands for the thread's reference),
/// destroying the object if nothing is left.
///
/// # Safety
/// `o` must be a live, mortal object and the caller must own `units`.
#[inline(always)]
pub(crate) unsafe fn decref_by(o: *mut PyObject, units: isize) {
    // SAFETY: the caller owns `units`, so `o` is live.
    let rc = unsafe { &(*o).ob_refcnt };
    if rc.fetch_sub(units, Ordering::Release) == units {
        #[cfg(not(contextvars_tsan))]
        fence(Ordering::Acquire);
        // As in `decref`: ThreadSanitizer does not model fences.
        #[cfg(contextvars_tsan)]
        rc.load(Ordering::Acquire);
        // SAFETY: the count reached zero: we hold the only access.
        unsafe { dealloc(o) };
    }
}

/// Marks a Rust type as a C object layout: `#[repr(C)]`, starting with a
/// `PyObject` header, and destroyed by [`dealloc`].
///
/// # Safety
/// Implementors must be `#[repr(C)]` with a `PyObject` as first field.
pub(crate) unsafe trait PyLayout {}

// SAFETY: trivially a PyObject.
unsafe impl PyLayout for PyObject {}

/// An owned (strong) reference: `Clone` adds a reference, `Drop` releases it.
pub(crate) struct Owned<T: PyLayout = PyObject> {
    ptr: NonNull<T>,
    _own: PhantomData<T>,
}

// SAFETY: objects are shared between threads by design; their counts are
// atomic and their mutable state is atomic or owned by one thread at a time.
unsafe impl<T: PyLayout> Send for Owned<T> {}
// SAFETY: as above.
unsafe impl<T: PyLayout> Sync for Owned<T> {}

impl<T: PyLayout> Owned<T> {
    /// Takes over a reference the caller owns ("steals" it).
    ///
    /// # Safety
    /// `ptr` must be a live object of layout `T` and the caller must own one
    /// reference, which passes to the result.
    #[inline]
    pub(crate) unsafe fn from_owned(ptr: NonNull<T>) -> Owned<T> {
        Owned { ptr, _own: PhantomData }
    }

    /// Makes a new reference from a borrowed one.
    ///
    /// # Safety
    /// `ptr` must be a live object of layout `T`.
    #[inline]
    pub(crate) unsafe fn from_borrowed(ptr: NonNull<T>) -> Owned<T> {
        // SAFETY: live per the caller.
        unsafe { incref(ptr.as_ptr().cast()) };
        Owned { ptr, _own: PhantomData }
    }

    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.ptr.as_ptr().cast()
    }

    /// Mutable access to an object that was just made.
    ///
    /// # Safety
    /// No one else may hold or have held a reference: the object came from
    /// [`new_object`] and has not been handed out.
    pub(crate) unsafe fn get_mut_unshared(&mut self) -> &mut T {
        debug_assert_eq!(self.object().ob_refcnt.load(Ordering::Relaxed), 1);
        // SAFETY: per the caller, this handle is the only access.
        unsafe { self.ptr.as_mut() }
    }

    /// Gives the reference to the caller (a new reference in C terms).
    #[inline]
    pub(crate) fn into_raw(self) -> *mut PyObject {
        let p = self.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Forgets the static type.
    #[inline]
    pub(crate) fn upcast(self) -> Owned<PyObject> {
        let p = self.ptr.cast();
        std::mem::forget(self);
        Owned { ptr: p, _own: PhantomData }
    }

    #[inline]
    pub(crate) fn object(&self) -> &PyObject {
        // SAFETY: every PyLayout starts with a PyObject header.
        unsafe { &*self.as_ptr() }
    }
}

impl<T: PyLayout> Owned<T> {
    /// A new reference to a borrowed object.
    pub(crate) fn from_ref(o: &T) -> Owned<T> {
        // SAFETY: a reference proves the object is live.
        unsafe { Owned::from_borrowed(NonNull::from(o)) }
    }
}

impl<T: PyLayout> Deref for Owned<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: we own a reference, so the object is live.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: PyLayout> Clone for Owned<T> {
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: we own a reference, so the object is live.
        unsafe { Owned::from_borrowed(self.ptr) }
    }
}

impl<T: PyLayout> Drop for Owned<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own exactly this reference.
        unsafe { decref(self.as_ptr()) }
    }
}

/// Allocates a heap object on the fallible path. On failure `value` is
/// dropped (releasing whatever it owned) and MemoryError is returned.
pub(crate) fn new_object<T: PyLayout>(value: T) -> Result<Owned<T>, PyErr> {
    let Some(mem) = crate::alloc::allocate(std::alloc::Layout::new::<T>()) else {
        drop(value);
        return Err(PyErr::no_memory());
    };
    let p = mem.cast::<T>();
    // SAFETY: fresh allocation of T's layout; `value`'s header holds one
    // reference, which the handle takes over.
    unsafe {
        p.as_ptr().write(value);
        count_new((*p.as_ptr().cast::<PyObject>()).ob_type);
        Ok(Owned::from_owned(p))
    }
}

/// Counts a new heap object of type `ty` (the live counters; the one place
/// objects are counted in, for [`new_object`] and variable-size strs).
#[inline(always)]
pub(crate) fn count_new(ty: *mut PyTypeObject) {
    if let Some(kind) = crate::live::kind_of(ty) {
        crate::live::on_alloc(kind);
    }
}

/// Destroys a fixed-size object made by [`new_object`]: drops its fields,
/// then frees its memory.
///
/// # Safety
/// `o` must be a dead (count zero) object allocated by `new_object::<T>`.
pub(crate) unsafe fn free_object<T: PyLayout>(o: *mut PyObject) {
    let p = o.cast::<T>();
    // SAFETY: per the caller the object is dead and was allocated as T.
    unsafe {
        ptr::drop_in_place(p);
        crate::alloc::free(NonNull::new_unchecked(p.cast()), std::alloc::Layout::new::<T>());
    }
}

/// How many destructions may nest on one thread before further ones are
/// queued. Bounds stack use (a 256 KiB thread stack frees million-long
/// chains) while objects released by a destructor still die at once.
const INLINE_DEPTH: u32 = 32;

thread_local! {
    /// Objects waiting to be destroyed, linked through their (dead)
    /// `ob_refcnt` words. Plain cells: usable while the thread tears down.
    static PENDING: Cell<*mut PyObject> = const { Cell::new(ptr::null_mut()) };
    /// How many destructions are running on this thread, nested.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Destroys an object whose count reached zero (see the module doc).
///
/// # Safety
/// `o` must be a dead object no one else can reach.
pub(crate) unsafe fn dealloc(o: *mut PyObject) {
    let depth = DEPTH.get();
    if depth >= INLINE_DEPTH {
        // SAFETY: the object is dead; its count word is free to hold a link.
        unsafe { (*o).ob_refcnt.store(PENDING.get() as isize, Ordering::Relaxed) };
        PENDING.set(o);
        return;
    }
    /// Restores the depth even if a destructor panics.
    struct Restore(u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEPTH.set(self.0);
        }
    }
    let _restore = Restore(depth);
    DEPTH.set(depth + 1);
    // SAFETY: per the caller; destroying it may destroy or queue more.
    unsafe { destroy(o) };
    if depth == 0 {
        // The outermost destruction drains what deeper ones queued.
        drain_pending_at_depth_one();
    }
}

/// Destroys every queued object (the caller is at depth 1).
fn drain_pending_at_depth_one() {
    loop {
        let next = PENDING.get();
        if next.is_null() {
            break;
        }
        // SAFETY: queued objects are dead; their count word holds the link.
        let link = unsafe { (*next).ob_refcnt.load(Ordering::Relaxed) } as *mut PyObject;
        // SAFETY: as above (no other thread can see a dead object).
        unsafe { (*next).ob_refcnt.store(0, Ordering::Relaxed) };
        PENDING.set(link);
        // SAFETY: as above.
        unsafe { destroy(next) };
    }
}

/// Whether no destruction is queued on this thread.
pub(crate) fn nothing_pending() -> bool {
    PENDING.get().is_null()
}

/// Destroys what a destruction interrupted by a panic left queued (thread
/// exit calls this; normally the queue is already empty).
pub(crate) fn drain_pending() {
    if DEPTH.get() == 0 && !nothing_pending() {
        DEPTH.set(1);
        drain_pending_at_depth_one();
        DEPTH.set(0);
    }
}

/// Runs the type-specific destruction of one dead object.
///
/// # Safety
/// As for [`dealloc`].
unsafe fn destroy(o: *mut PyObject) {
    // SAFETY: the object is dead, its header still valid.
    let ty = unsafe { (*o).ob_type };
    if let Some(kind) = crate::live::kind_of(ty) {
        crate::live::on_free(kind);
    }
    // SAFETY: the object is dead and unreachable (the caller's contract), and
    // the type pointer identifies its layout in every arm.
    unsafe {
        if ty == crate::values::long_type() {
            free_object::<crate::values::Long>(o)
        } else if ty == crate::context::context_type() {
            free_object::<crate::context::Context>(o)
        } else if ty == crate::var::token_type() {
            free_object::<crate::var::Token>(o)
        } else if ty == crate::values::str_type() {
            crate::values::free_str(o)
        } else if ty == crate::values::capsule_type() {
            crate::values::free_capsule(o)
        } else if ty == crate::var::var_type() {
            free_object::<crate::var::ContextVar>(o)
        } else if let Some(d) = (*ty).tp_dealloc {
            // A foreign object (a C user's own type): its own destructor.
            d(o)
        }
    }
}

/// Calls `visit` with every object reference `o` holds (CPython's
/// `tp_traverse`): what a cycle collector needs to find reference cycles
/// made through values. Leaves (None, int, str, capsule) hold none; a map's
/// entries are visited through the context that holds the map.
#[allow(dead_code)] // the hook for a cycle collector, which is not built yet
pub(crate) fn traverse(o: &PyObject, visit: &mut dyn FnMut(&PyObject)) {
    let ty = o.ty();
    let p = o.as_ptr();
    if ty == crate::context::context_type() {
        // SAFETY: the type says this live object is a Context.
        unsafe { &*p.cast::<crate::context::Context>() }.traverse(visit)
    } else if ty == crate::var::var_type() {
        // SAFETY: the type says this live object is a ContextVar.
        unsafe { &*p.cast::<crate::var::ContextVar>() }.traverse(visit)
    } else if ty == crate::var::token_type() {
        // SAFETY: the type says this live object is a Token.
        unsafe { &*p.cast::<crate::var::Token>() }.traverse(visit)
    }
}

/// `tp_dealloc` of every heap type of this library: the C side's
/// `Py_DECREF` calls it when a count reaches zero.
pub(crate) unsafe extern "C" fn dealloc_entry(o: *mut PyObject) {
    crate::ffi::guard_void(|| {
        if !o.is_null() {
            // SAFETY: called by Py_DECREF with an object whose count reached
            // zero (the only legitimate caller).
            unsafe { dealloc(o) };
        }
    })
}

// SAFETY: the header's count is atomic and its type pointer never changes,
// so a header may be shared between threads.
unsafe impl Sync for PyObject {}
// SAFETY: as above.
unsafe impl Send for PyObject {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// The header's hand-written PyObject and PyTypeObject (cbindgen.toml)
    /// must have exactly this layout; c-tests check the same numbers.
    #[test]
    fn c_layout_matches_header() {
        assert_eq!(size_of::<PyObject>(), 16);
        assert_eq!(offset_of!(PyObject, ob_refcnt), 0);
        assert_eq!(offset_of!(PyObject, ob_type), 8);
        assert_eq!(offset_of!(PyTypeObject, tp_name), 16);
        assert_eq!(offset_of!(PyTypeObject, tp_basicsize), 24);
        assert_eq!(offset_of!(PyTypeObject, tp_dealloc), 32);
        assert_eq!(offset_of!(PyTypeObject, tp_base), 40);
        assert_eq!(size_of::<PyTypeObject>(), 48);
    }
}
