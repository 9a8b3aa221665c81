//! Exports: context variables and tokens (`PyContextVar_*`).

use std::ffi::{c_char, c_int, CStr};

use crate::errors::PyErr;
use crate::object::{Owned, PyObject};
use crate::var;

use super::guard;

/// Creates a new context variable named `name` (UTF-8, decoded strictly)
/// with default value `def` (NULL for no default; `Py_None` is a real
/// default). The variable holds a reference to `def`. Variables with the same
/// name are distinct.
///
/// Return value: New reference, or NULL with an error set:
/// - UnicodeDecodeError (a ValueError) if `name` is not valid UTF-8, with
///   CPython's message, e.g. "'utf-8' codec can't decode byte 0xff in
///   position 0: invalid start byte";
/// - SystemError "bad argument to internal function" if `name` is NULL;
/// - MemoryError.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string; `def` NULL or a live
/// object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyContextVar_New(name: *const c_char, def: *mut PyObject) -> *mut PyObject {
    guard(|| {
        if name.is_null() {
            return Err(PyErr::bad_internal_call());
        }
        // SAFETY: per this function's contract.
        let (name, def) = unsafe { (CStr::from_ptr(name), super::optional(def)) };
        Ok(var::new_var(name, def)?.into_raw())
    })
}

/// Reads `var` in the calling thread's current context. `*value` receives,
/// in order of preference: the value set in the current context, else
/// `default_value` if not NULL, else the variable's default if it has one,
/// else NULL (which is not an error). Never creates the thread's base
/// context, never allocates.
///
/// Returns 0 on success with `*value` a new reference (or NULL as above);
/// -1 with an error set and `*value` set to NULL (CPython leaves it
/// unwritten on the TypeError):
/// - TypeError "an instance of ContextVar was expected";
/// - SystemError "bad argument to internal function" if `var` or `value` is
///   NULL.
///
/// # Safety
/// `var` and `default_value` must be NULL or live objects; `value` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyContextVar_Get(
    var: *mut PyObject,
    default_value: *mut PyObject,
    value: *mut *mut PyObject,
) -> c_int {
    if !value.is_null() {
        // SAFETY: per this function's contract, `value` is writable.
        unsafe { *value = std::ptr::null_mut() };
    }
    guard(|| {
        // SAFETY: per this function's contract.
        let var = unsafe { super::var(var) }?;
        if value.is_null() {
            return Err(PyErr::bad_internal_call());
        }
        // SAFETY: per this function's contract.
        let found = var::get(var, unsafe { super::optional(default_value) });
        // SAFETY: `value` is writable and not NULL (checked).
        unsafe { *value = found.map_or(std::ptr::null_mut(), Owned::into_raw) };
        Ok(0)
    })
}

/// Sets `var` to `value` in the calling thread's current context (creating
/// the thread's base context if it has none). The context holds a reference
/// to `value`; the value it replaces is released unless a token holds it.
///
/// Return value: a new Token (new reference) recording the previous value,
/// for `PyContextVar_Reset()`; a new token on every call, even for the same
/// value. NULL with an error set, and nothing changed:
/// - TypeError "an instance of ContextVar was expected";
/// - SystemError "bad argument to internal function" if `var` or `value` is
///   NULL;
/// - MemoryError (the token is made before anything changes, so unlike
///   CPython a failure never leaves the variable half set).
///
/// # Safety
/// `var` and `value` must be NULL or live objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyContextVar_Set(var: *mut PyObject, value: *mut PyObject) -> *mut PyObject {
    guard(|| {
        // SAFETY: per this function's contract.
        let (var, value) = unsafe { (super::var(var)?, super::object(value)?) };
        Ok(var::set(var, value)?.into_raw())
    })
}

/// Restores `var` to the value it had before the `PyContextVar_Set()` that
/// made `token`: the recorded value, or no value at all if it had none (then
/// Get falls back to the defaults). Restores, does not undo: tokens may be
/// used in any order, each restoring what it recorded. A token is used once.
///
/// Returns 0 on success, -1 with an error set. Checks, in CPython's order; a
/// failed check does not use up the token:
/// 1. TypeError "an instance of ContextVar was expected" (`var`);
/// 2. TypeError "an instance of Token was expected" (`token`);
/// 3. RuntimeError "<Token used var=<ContextVar name='v' at 0x...> at
///    0x...> has already been used once";
/// 4. ValueError "<Token var=... at 0x...> was created by a different
///    ContextVar";
/// 5. (the thread's base context is created here if it has none)
///    ValueError "<Token var=... at 0x...> was created in a different
///    Context" unless the current context is the very object that was
///    current at the Set (a copy does not count).
///
/// SystemError "bad argument to internal function" for NULL arguments;
/// MemoryError leaves the variable unchanged and the token unused.
///
/// # Safety
/// `var` and `token` must be NULL or live objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyContextVar_Reset(var: *mut PyObject, token: *mut PyObject) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let (var, token) = unsafe { (super::var(var)?, super::token(token)?) };
        var::reset(var, token)?;
        Ok(0)
    })
}
