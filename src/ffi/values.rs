//! Exports: int, str and capsule values (`PyLong_*`, `PyUnicode_*`,
//! `PyCapsule_*`).

use std::ffi::{c_char, c_long, c_void, CStr};

use crate::errors::{Exc, PyErr};
use crate::object::PyObject;
use crate::values::{self, PyCapsule_Destructor};

use super::guard;

/// Creates an int with the value `v`. Ints from -5 to 256 are shared,
/// immortal objects, as in CPython.
///
/// Return value: New reference, or NULL with MemoryError set.
#[unsafe(no_mangle)]
pub extern "C" fn PyLong_FromLong(v: c_long) -> *mut PyObject {
    guard(|| Ok(values::long_from(v)?.into_raw()))
}

/// The value of the int `o`.
///
/// Returns -1 with an error set on failure (check `PyErr_Occurred()`, since
/// -1 is also a value):
/// - TypeError "'<type name>' object cannot be interpreted as an integer"
///   for anything but an int (e.g. 'NoneType', 'str', '_contextvars.Context');
/// - SystemError "bad argument to internal function" if `o` is NULL.
///
/// # Safety
/// `o` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyLong_AsLong(o: *mut PyObject) -> c_long {
    guard(|| {
        // SAFETY: per this function's contract.
        let o = unsafe { super::object(o) }?;
        values::long_as_long(o)
    })
}

/// Creates a str from the NUL-terminated UTF-8 text `s`, decoded strictly.
///
/// Return value: New reference, or NULL with an error set:
/// - UnicodeDecodeError with CPython's message for invalid UTF-8;
/// - SystemError "bad argument to internal function" if `s` is NULL;
/// - MemoryError.
///
/// # Safety
/// `s` must be NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyUnicode_FromString(s: *const c_char) -> *mut PyObject {
    guard(|| {
        if s.is_null() {
            return Err(PyErr::bad_internal_call());
        }
        // SAFETY: per this function's contract.
        let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
        Ok(values::new_str(bytes)?.upcast().into_raw())
    })
}

/// The UTF-8 text of the str `o`, NUL-terminated, owned by `o` (valid while
/// `o` lives).
///
/// Returns NULL with an error set: TypeError "bad argument type for built-in
/// operation" if `o` is not a str; SystemError "bad argument to internal
/// function" if `o` is NULL.
///
/// # Safety
/// `o` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyUnicode_AsUTF8(o: *mut PyObject) -> *const c_char {
    guard(|| {
        // SAFETY: per this function's contract.
        let o = unsafe { super::object(o) }?;
        values::str_cstr(o).map(CStr::as_ptr).ok_or_else(|| {
            PyErr::constant(Exc::Type, values::static_str!("bad argument type for built-in operation"))
        })
    })
}

/// Creates a capsule carrying `pointer`, with the name `name` (may be NULL;
/// not copied: it must outlive the capsule) and `destructor` (may be NULL),
/// which is called exactly once, with the capsule, when the capsule dies:
/// the way to attach C data to a context variable.
///
/// Return value: New reference, or NULL with an error set: ValueError
/// "PyCapsule_New called with null pointer" if `pointer` is NULL;
/// MemoryError.
///
/// # Safety
/// `name` must be NULL or NUL-terminated and outlive the capsule.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyCapsule_New(pointer: *mut c_void, name: *const c_char, destructor: PyCapsule_Destructor) -> *mut PyObject {
    guard(|| Ok(values::new_capsule(pointer, name, destructor)?.into_raw()))
}

/// The pointer stored in the capsule `capsule`, if `name` matches its name
/// (both NULL, or equal strings).
///
/// Returns NULL with ValueError set: "PyCapsule_GetPointer called with
/// incorrect name", or "PyCapsule_GetPointer called with invalid PyCapsule
/// object" if `capsule` is not a capsule or is NULL (as in CPython).
///
/// # Safety
/// `capsule` must be NULL or a live object; `name` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyCapsule_GetPointer(capsule: *mut PyObject, name: *const c_char) -> *mut c_void {
    guard(|| {
        // SAFETY: per this function's contract.
        values::capsule_pointer(unsafe { super::optional(capsule) }, name)
    })
}
