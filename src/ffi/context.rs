//! Exports: contexts (`PyContext_*`).

use std::ffi::c_int;

use crate::context;
use crate::object::PyObject;

use super::guard;

/// Creates a new, empty context that is not entered.
///
/// Return value: New reference, or NULL with MemoryError set.
///
/// Thread safety: callable from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn PyContext_New() -> *mut PyObject {
    guard(|| Ok(context::new_context()?.into_raw()))
}

/// Creates a shallow copy of `ctx`: a new, not entered context holding the
/// same variables and values as `ctx` at the moment of the call. O(1): the
/// values are shared, not copied; later sets in either context are invisible
/// to the other. `ctx` may be entered, current, or entered by another thread
/// (the copy is then a consistent snapshot of that thread's context).
///
/// Return value: New reference, or NULL with an error set:
/// - TypeError "an instance of Context was expected" if `ctx` is not a
///   context;
/// - SystemError "bad argument to internal function" if `ctx` is NULL;
/// - MemoryError.
///
/// # Safety
/// `ctx` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyContext_Copy(ctx: *mut PyObject) -> *mut PyObject {
    guard(|| {
        // SAFETY: per this function's contract.
        let ctx = unsafe { super::context(ctx) }?;
        Ok(context::copy(ctx)?.into_raw())
    })
}

/// Creates a copy of the calling thread's current context (never the
/// current context object itself). If the thread has no context yet, its
/// base context is created first (as CPython does).
///
/// Return value: New reference, or NULL with MemoryError set.
///
/// Thread safety: reads the calling thread's context only.
#[unsafe(no_mangle)]
pub extern "C" fn PyContext_CopyCurrent() -> *mut PyObject {
    guard(|| Ok(context::copy_current()?.into_raw()))
}

/// Makes `ctx` the calling thread's current context. The previous current
/// context is remembered and restored by `PyContext_Exit()`. Entering does not
/// copy: values set while `ctx` is current are stored in `ctx`, and an empty
/// context hides the values of the previous one. The thread holds its own
/// reference to `ctx` until the matching exit, so the caller may drop theirs.
///
/// Returns 0 on success, -1 with an error set (nothing changed):
/// - TypeError "an instance of Context was expected";
/// - RuntimeError "cannot enter context: <_contextvars.Context object at
///   0x...> is already entered" if `ctx` is entered on this thread or on any
///   other (a context is on at most one thread's stack; of two threads racing
///   to enter it exactly one wins);
/// - SystemError "bad argument to internal function" if `ctx` is NULL.
///
/// # Safety
/// `ctx` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyContext_Enter(ctx: *mut PyObject) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let ctx = unsafe { super::context(ctx) }?;
        context::enter(ctx)?;
        Ok(0)
    })
}

/// Leaves `ctx`, which must be the calling thread's current context, and
/// restores the context that was current before the matching
/// `PyContext_Enter()`. Exits are LIFO and on the entering thread.
///
/// Returns 0 on success, -1 with an error set (nothing changed):
/// - TypeError "an instance of Context was expected";
/// - RuntimeError "cannot exit context: <_contextvars.Context object at
///   0x...> has not been entered" if `ctx` is not entered (checked first);
/// - RuntimeError "cannot exit context: thread state references a different
///   context object" if `ctx` is entered but is not this thread's current
///   context (an inner context is still entered, or another thread entered
///   it);
/// - SystemError "bad argument to internal function" if `ctx` is NULL.
///
/// Unlike CPython, Exit is safe even if the caller released its own
/// reference to `ctx` after entering it.
///
/// # Safety
/// `ctx` must be NULL or a live object (a context kept alive only by this
/// thread having entered it counts as live).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyContext_Exit(ctx: *mut PyObject) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let ctx = unsafe { super::context(ctx) }?;
        context::exit(ctx)?;
        Ok(0)
    })
}
