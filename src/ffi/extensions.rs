//! Exports beyond CPython's C API, all named `contextvars_*` so they can
//! never collide with a CPython symbol: running code in a context, reading a
//! context without entering it, variable and token accessors.

use std::ffi::{c_int, c_void};

use crate::errors::{Exc, PyErr};
use crate::object::{Owned, PyObject, Py_ssize_t};
use crate::var::{var_type, ContextVar};
use crate::views::{self, contextvars_run_fn};

use super::guard;

/// Python's mapping check for a context's key: TypeError "a ContextVar key
/// was expected, got <repr>".
///
/// # Safety
/// As for [`super::object`].
unsafe fn key<'a>(p: *mut PyObject) -> Result<&'a ContextVar, PyErr> {
    // SAFETY: per the caller.
    let o = unsafe { super::object(p) }?;
    if o.ty() != var_type() {
        return Err(PyErr::format(
            Exc::Type,
            format_args!("a ContextVar key was expected, got {}", crate::values::Repr(o)),
        ));
    }
    // SAFETY: the type says this is a ContextVar.
    Ok(unsafe { &*p.cast::<ContextVar>() })
}

/// Runs `callback(arg)` in `ctx`, as Python's `Context.run` does: enters
/// `ctx`, calls the callback, exits `ctx` even when the callback fails, and
/// returns the callback's result. Watchers see both switches.
///
/// `callback` returns a new reference, or NULL with an error set (NULL
/// without an error becomes SystemError "contextvars_context_run: callback
/// returned NULL without setting an exception"). The callback may set
/// variables (they stay in `ctx`), enter and exit other contexts (balanced),
/// and run other contexts; it must not exit `ctx` itself.
///
/// Return value: the callback's result (new reference), or NULL with an
/// error set:
/// - the callback's error (`ctx` has been exited);
/// - any error of `PyContext_Enter()` (TypeError "an instance of Context
///   was expected", RuntimeError "cannot enter context: ... is already
///   entered"); the callback is not called;
/// - any error of `PyContext_Exit()` (if the callback left `ctx` not
///   current); it replaces the callback's error, and the callback's result is
///   released;
/// - SystemError "bad argument to internal function" if `ctx` or `callback`
///   is NULL.
///
/// Thread safety: runs on the calling thread; `ctx` must not be entered
/// anywhere (as for Enter).
///
/// # Safety
/// `ctx` must be NULL or a live object; `callback` must be safe to call
/// with `arg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_context_run(
    ctx: *mut PyObject,
    callback: contextvars_run_fn,
    arg: *mut c_void,
) -> *mut PyObject {
    guard(|| {
        // SAFETY: per this function's contract.
        let ctx = unsafe { super::context(ctx) }?;
        let f = callback.ok_or_else(PyErr::bad_internal_call)?;
        views::run(ctx, f, arg)
    })
}

/// The number of variables set in `ctx` (Python's `len(ctx)`).
///
/// Returns the count, or -1 with an error set: TypeError "an instance of
/// Context was expected"; SystemError "bad argument to internal function" if
/// `ctx` is NULL.
///
/// Thread safety: any thread, for any context, entered or not (a snapshot).
///
/// # Safety
/// `ctx` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_context_len(ctx: *mut PyObject) -> Py_ssize_t {
    guard(|| {
        // SAFETY: per this function's contract.
        let ctx = unsafe { super::context(ctx) }?;
        Ok(views::len(ctx) as Py_ssize_t)
    })
}

/// Reads `var` in `ctx` without entering it: `*value` receives what
/// `PyContextVar_Get(var, default_value, value)` would give if `ctx` were
/// the current context: the value set in `ctx`, else `default_value` if not
/// NULL, else the variable's default if it has one, else NULL (not an
/// error). Use `contextvars_context_contains()` to tell a value set in `ctx`
/// from a default.
///
/// Returns 0 with `*value` a new reference (or NULL as above); -1 with an
/// error set and `*value` NULL:
/// - TypeError "an instance of Context was expected" (`ctx`);
/// - TypeError "a ContextVar key was expected, got <repr>" (`var`, as
///   Python's `ctx[key]`);
/// - SystemError "bad argument to internal function" if `ctx`, `var` or
///   `value` is NULL.
///
/// Thread safety: any thread, for any context (a consistent snapshot even
/// while another thread sets variables in it).
///
/// # Safety
/// `ctx`, `var` and `default_value` must be NULL or live objects; `value`
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_context_get(
    ctx: *mut PyObject,
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
        let (ctx, var) = unsafe { (super::context(ctx)?, key(var)?) };
        if value.is_null() {
            return Err(PyErr::bad_internal_call());
        }
        // SAFETY: per this function's contract.
        let found = views::get(ctx, var, unsafe { super::optional(default_value) });
        // SAFETY: `value` is writable and not NULL (checked).
        unsafe { *value = found.map_or(std::ptr::null_mut(), Owned::into_raw) };
        Ok(0)
    })
}

/// Whether `var` is set in `ctx` itself (Python's `var in ctx`; defaults do
/// not count).
///
/// Returns 1 or 0, or -1 with an error set: TypeError "an instance of
/// Context was expected"; TypeError "a ContextVar key was expected, got
/// <repr>"; SystemError "bad argument to internal function" for NULL.
///
/// Thread safety: any thread, for any context (a snapshot).
///
/// # Safety
/// `ctx` and `var` must be NULL or live objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_context_contains(ctx: *mut PyObject, var: *mut PyObject) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let (ctx, var) = unsafe { (super::context(ctx)?, key(var)?) };
        Ok(c_int::from(views::lookup(ctx, var).is_some()))
    })
}

/// Visits every variable set in `ctx` with its value (Python's
/// `ctx.items()`), in no particular order: `visit(var, value, arg)` with
/// borrowed references, valid during that call (take a reference to keep
/// one). The visit sees one snapshot of `ctx` taken at the call, even while
/// another thread sets variables in `ctx` or the visitor itself does; it
/// may call any function of the library.
///
/// `visit` returns 0 to go on, or nonzero to stop; a negative value should
/// come with an error set (it is left pending).
///
/// Returns 0 after visiting everything, the first nonzero value `visit`
/// returned, or -1 with an error set: TypeError "an instance of Context was
/// expected"; SystemError "bad argument to internal function" if `ctx` or
/// `visit` is NULL.
///
/// Thread safety: any thread, for any context.
///
/// # Safety
/// `ctx` must be NULL or a live object; `visit` must be safe to call with
/// `arg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_context_items(
    ctx: *mut PyObject,
    visit: Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut c_void) -> c_int>,
    arg: *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY: per this function's contract.
        let ctx = unsafe { super::context(ctx) }?;
        let visit = visit.ok_or_else(PyErr::bad_internal_call)?;
        // SAFETY: per this function's contract; the snapshot keeps the
        // variables and values alive during each call.
        Ok(views::items(ctx, |k, v| unsafe { visit(k, v, arg) }))
    })
}

/// The name of `var` (Python's `var.name`), a str.
///
/// Return value: New reference, or NULL with an error set: TypeError "an
/// instance of ContextVar was expected"; SystemError "bad argument to
/// internal function" if `var` is NULL.
///
/// Thread safety: any thread (a variable's name never changes).
///
/// # Safety
/// `var` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_var_name(var: *mut PyObject) -> *mut PyObject {
    guard(|| {
        // SAFETY: per this function's contract.
        let var = unsafe { super::var(var) }?;
        Ok(Owned::from_ref(var.name()).into_raw())
    })
}

/// The default of `var`, as given to `PyContextVar_New()`: what Get falls
/// back to when the variable is not set (Python does not expose it).
///
/// Returns 0 with `*value` a new reference to the default, or NULL if the
/// variable has none (not an error); -1 with an error set and `*value` NULL:
/// TypeError "an instance of ContextVar was expected"; SystemError "bad
/// argument to internal function" if `var` or `value` is NULL.
///
/// Thread safety: any thread (a variable's default never changes).
///
/// # Safety
/// `var` must be NULL or a live object; `value` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_var_default(var: *mut PyObject, value: *mut *mut PyObject) -> c_int {
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
        // SAFETY: `value` is writable and not NULL (checked).
        unsafe { *value = var.default().map_or(std::ptr::null_mut(), |d| Owned::from_ref(d).into_raw()) };
        Ok(0)
    })
}

/// The variable whose `PyContextVar_Set()` made `token` (Python's
/// `token.var`).
///
/// Return value: New reference, or NULL with an error set: TypeError "an
/// instance of Token was expected"; SystemError "bad argument to internal
/// function" if `token` is NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// `token` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_token_var(token: *mut PyObject) -> *mut PyObject {
    guard(|| {
        // SAFETY: per this function's contract.
        let token = unsafe { super::token(token) }?;
        Ok(Owned::from_ref(token.var()).into_raw())
    })
}

/// The value the variable had before the `PyContextVar_Set()` that made
/// `token` (Python's `token.old_value`), or `CONTEXTVARS_TOKEN_MISSING` if
/// it had none in that context. Unchanged by using the token.
///
/// Return value: New reference (also to the immortal marker), or NULL with
/// an error set: TypeError "an instance of Token was expected"; SystemError
/// "bad argument to internal function" if `token` is NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// `token` must be NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_token_old_value(token: *mut PyObject) -> *mut PyObject {
    guard(|| {
        // SAFETY: per this function's contract.
        let token = unsafe { super::token(token) }?;
        Ok(views::token_old_value(token).into_raw())
    })
}
