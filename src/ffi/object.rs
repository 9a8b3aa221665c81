//! Exports: reference counting functions (`Py_IncRef`, `Py_DecRef`,
//! `Py_NewRef`, `Py_XNewRef`). The header's macros do the same inline.

use crate::errors::PyErr;
use crate::object::{decref, incref, PyObject};

use super::{guard, guard_void};

/// Adds a reference to `o`; does nothing if `o` is NULL. Atomic: any thread
/// may call it on any object.
///
/// # Safety
/// `o` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Py_IncRef(o: *mut PyObject) {
    guard_void(|| {
        if !o.is_null() {
            // SAFETY: per this function's contract.
            unsafe { incref(o) }
        }
    })
}

/// Releases a reference to `o`; does nothing if `o` is NULL. When the last
/// reference goes, the object is destroyed, once, on the calling thread
/// (iteratively: long chains of objects do not use stack).
///
/// # Safety
/// `o` must be NULL or a live object, and the caller must own the reference.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Py_DecRef(o: *mut PyObject) {
    guard_void(|| {
        if !o.is_null() {
            // SAFETY: per this function's contract.
            unsafe { decref(o) }
        }
    })
}

/// Adds a reference to `o` and returns `o`.
///
/// Return value: New reference. NULL with SystemError "bad argument to
/// internal function" if `o` is NULL (CPython crashes).
///
/// # Safety
/// `o` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Py_NewRef(o: *mut PyObject) -> *mut PyObject {
    guard(|| {
        if o.is_null() {
            return Err(PyErr::bad_internal_call());
        }
        // SAFETY: per this function's contract.
        unsafe { incref(o) };
        Ok(o)
    })
}

/// Like `Py_NewRef()`, but NULL gives NULL without an error.
///
/// # Safety
/// `o` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Py_XNewRef(o: *mut PyObject) -> *mut PyObject {
    guard(|| {
        if !o.is_null() {
            // SAFETY: per this function's contract.
            unsafe { incref(o) };
        }
        Ok(o)
    })
}
