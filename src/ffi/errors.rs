//! Exports: the per-thread error indicator (`PyErr_*`).

use std::ffi::{c_char, c_int, CStr};
use std::ptr::NonNull;

use crate::errors::{self, PyErr};
use crate::object::{Owned, PyObject};

use super::{guard, guard_void};

/// The type of the calling thread's pending exception, or NULL if none.
///
/// Return value: Borrowed reference.
#[unsafe(no_mangle)]
pub extern "C" fn PyErr_Occurred() -> *mut PyObject {
    super::guard_or(errors::occurred, std::ptr::null_mut())
}

/// Clears the calling thread's pending exception, if any.
#[unsafe(no_mangle)]
pub extern "C" fn PyErr_Clear() {
    guard_void(errors::clear)
}

/// Moves the pending exception out of the indicator, which is left clear:
/// `*ptype`, `*pvalue` and `*ptraceback` receive new references or NULL
/// (all NULL when nothing is pending). For the errors of this library the
/// value is the message as a str, as in CPython 3.11 (UnicodeDecodeError
/// included, where CPython gives an exception instance), NULL after
/// `PyErr_SetNone()` and `PyErr_NoMemory()`; the traceback is always NULL. A part
/// whose pointer is NULL is released instead of returned.
///
/// # Safety
/// Each pointer must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyErr_Fetch(ptype: *mut *mut PyObject, pvalue: *mut *mut PyObject, ptraceback: *mut *mut PyObject) {
    guard_void(|| {
        let (t, v, tb) = errors::fetch_raw();
        for (slot, part) in [(ptype, t), (pvalue, v), (ptraceback, tb)] {
            if slot.is_null() {
                // SAFETY: we own the part the indicator gave us.
                drop(NonNull::new(part).map(|p| unsafe { Owned::from_owned(p) }));
            } else {
                // SAFETY: per this function's contract; the reference passes
                // to the caller.
                unsafe { *slot = part };
            }
        }
    })
}

/// Sets the pending exception from the three parts, stealing a reference to
/// each non-NULL one, and releases the previous exception. As in CPython
/// 3.11: a value with a NULL `type` is kept (`PyErr_Occurred()` is NULL but
/// `PyErr_Fetch()` returns it); the traceback is released, since it cannot
/// be a traceback object here.
///
/// # Safety
/// Each argument must be NULL or a live object whose reference the caller
/// owns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyErr_Restore(r#type: *mut PyObject, value: *mut PyObject, traceback: *mut PyObject) {
    guard_void(|| {
        // SAFETY: per this function's contract.
        unsafe { errors::restore_raw(r#type, value, traceback) }
    })
}

/// Sets the pending exception to `type` with the message `message` (UTF-8,
/// decoded strictly; the value is a str). Instead, as in CPython: if `type`
/// is not an exception type, SystemError "_PyErr_SetObject: exception <repr>
/// is not a BaseException subclass"; if `message` is not valid UTF-8, the
/// UnicodeDecodeError. If `type` or `message` is NULL, SystemError "bad
/// argument to internal function".
///
/// # Safety
/// `type` must be NULL or a live object; `message` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyErr_SetString(r#type: *mut PyObject, message: *const c_char) {
    guard(|| {
        // SAFETY: per this function's contract.
        let ty = unsafe { super::object(r#type) }?;
        if message.is_null() {
            return Err(PyErr::bad_internal_call());
        }
        // SAFETY: per this function's contract.
        let text = crate::values::new_str(unsafe { CStr::from_ptr(message) }.to_bytes())?;
        Err(PyErr::set_object(ty, Some(text.upcast())))
    })
}

/// Sets the pending exception to `type` with no value. A `type` that is not
/// an exception type gives the same SystemError as `PyErr_SetString()`;
/// NULL gives SystemError "bad argument to internal function".
///
/// # Safety
/// `type` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyErr_SetNone(r#type: *mut PyObject) {
    guard(|| {
        // SAFETY: per this function's contract.
        let ty = unsafe { super::object(r#type) }?;
        Err(PyErr::set_object(ty, None))
    })
}

/// Whether the pending exception matches `exc`: 1 if its type is `exc` or
/// a subclass of it in CPython's hierarchy (KeyError is a LookupError,
/// UnicodeDecodeError a UnicodeError and a ValueError, all are Exception and
/// BaseException), else 0 (also when nothing is pending).
///
/// # Safety
/// `exc` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyErr_ExceptionMatches(exc: *mut PyObject) -> c_int {
    super::guard_or(|| errors::given_exception_matches(errors::occurred(), exc) as c_int, 0)
}

/// 1 if `given` is `exc` or an exception type derived from it, else 0. NULL
/// on either side gives 0.
///
/// # Safety
/// Both must be NULL or live objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyErr_GivenExceptionMatches(given: *mut PyObject, exc: *mut PyObject) -> c_int {
    super::guard_or(|| errors::given_exception_matches(given, exc) as c_int, 0)
}

/// Sets MemoryError (with no value) and returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn PyErr_NoMemory() -> *mut PyObject {
    guard(|| Err::<*mut PyObject, _>(PyErr::no_memory()))
}

/// Sets SystemError "bad argument to internal function". (CPython's macro of
/// the same name prefixes the caller's file and line.)
#[unsafe(no_mangle)]
pub extern "C" fn PyErr_BadInternalCall() {
    guard(|| Err(PyErr::bad_internal_call()))
}
