//! What Python offers on top of the C API, for C: running code in a context
//! (`Context.run`), reading a context without entering it (the mapping view
//! of a Context), a variable's name and default, a token's variable and old
//! value, and the token's "missing" marker (`Token.MISSING`).
//!
//! Reads of a context that is not the caller's current one go through
//! [`Context::snapshot`], so they see one consistent state even while the
//! thread that has the context entered sets variables in it.

use std::ffi::{c_int, c_void};
use std::ptr;

use crate::context::{self, Context};
use crate::errors::{self, Exc, PyErr};
use crate::object::{Owned, PyObject, PyTypeObject, TYPE_TYPE};
use crate::values;
use crate::var::{ContextVar, Token};

static mut TOKEN_MISSING_TYPE: PyTypeObject =
    PyTypeObject::new(&raw mut TYPE_TYPE, c"Token.MISSING", size_of::<PyObject>(), None, ptr::null_mut());

/// The marker `contextvars_token_old_value()` gives for a token whose
/// variable had no value before the Set (Python's `Token.MISSING`; its repr
/// is `<Token.MISSING>`). C code names it `CONTEXTVARS_TOKEN_MISSING` and
/// compares pointers. Immortal.
#[unsafe(no_mangle)]
pub static mut contextvars_TokenMissing: PyObject = PyObject::immortal(&raw mut TOKEN_MISSING_TYPE);

pub(crate) fn token_missing() -> *mut PyObject {
    &raw mut contextvars_TokenMissing
}

/// The callback of `contextvars_context_run()`: called with its `arg`;
/// returns a new reference, or NULL with an error set.
#[allow(non_camel_case_types)]
pub type contextvars_run_fn = Option<unsafe extern "C" fn(*mut c_void) -> *mut PyObject>;

/// `Context.run`: enters `ctx`, calls `f(arg)`, exits `ctx` whatever `f`
/// returned, and gives `f`'s result. An error from `f` stays pending (and the
/// result is NULL) unless Exit fails, whose error then replaces it.
pub(crate) fn run(
    ctx: &Context,
    f: unsafe extern "C" fn(*mut c_void) -> *mut PyObject,
    arg: *mut c_void,
) -> Result<*mut PyObject, PyErr> {
    context::enter(ctx)?;
    // SAFETY: the caller vouches for `f` and `arg`; `ctx` stays alive while
    // entered (the thread holds a reference).
    let result = unsafe { f(arg) };
    if result.is_null() && errors::occurred().is_null() {
        PyErr::constant(
            Exc::System,
            values::static_str!("contextvars_context_run: callback returned NULL without setting an exception"),
        )
        .restore();
    }
    if let Err(e) = context::exit(ctx) {
        if !result.is_null() {
            // SAFETY: `f` returned a new reference.
            unsafe { crate::object::decref(result) };
        }
        return Err(e);
    }
    Ok(result)
}

/// The map of `ctx` as seen now (consistent even if another thread is
/// setting variables in it).
fn map_of(ctx: &Context) -> crate::hamt::Map {
    ctx.snapshot()
}

/// `len(ctx)`.
pub(crate) fn len(ctx: &Context) -> usize {
    map_of(ctx).len()
}

/// The value `var` has in `ctx` itself, if any.
pub(crate) fn lookup(ctx: &Context, var: &ContextVar) -> Option<Owned> {
    let map = map_of(ctx);
    // SAFETY: the snapshot holds a reference to its values; we take our own
    // before it is released.
    map.get(var.as_ptr(), var.hash()).map(|v| Owned::from_ref(unsafe { &*v }))
}

/// What `PyContextVar_Get(var, default)` would give if `ctx` were current.
pub(crate) fn get(ctx: &Context, var: &ContextVar, default: Option<&PyObject>) -> Option<Owned> {
    lookup(ctx, var).or_else(|| default.or(var.default()).map(Owned::from_ref))
}

/// Calls `visit(var, value)` for each variable set in `ctx`, over one
/// snapshot, until it returns nonzero; gives that value, or 0.
pub(crate) fn items(ctx: &Context, mut visit: impl FnMut(*mut PyObject, *mut PyObject) -> c_int) -> c_int {
    let map = map_of(ctx);
    let mut status = 0;
    map.for_each(|k, v| {
        if status == 0 {
            status = visit(k, v);
        }
    });
    status
}

/// A token's old value, or the MISSING marker (a new reference).
pub(crate) fn token_old_value(token: &Token) -> Owned {
    match token.old_value() {
        Some(v) => Owned::from_ref(v),
        // SAFETY: the marker is an immortal static.
        None => unsafe { Owned::from_borrowed(std::ptr::NonNull::new_unchecked(token_missing())) },
    }
}
