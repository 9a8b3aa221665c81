//! The C boundary: every exported function, each a thin wrapper that checks
//! its raw arguments once (NULL becomes SystemError, a wrong type CPython's
//! TypeError) and runs the safe core inside [`guard`], which turns an error
//! into the indicator plus the C error value, and a Rust panic into
//! SystemError. Nothing below this module dereferences a pointer from C.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::context::{context_type, Context};
use crate::errors::{Exc, PyErr};
use crate::object::PyObject;
use crate::var::{token_type, var_type, ContextVar, Token};

pub mod context;
pub mod errors;
pub mod extensions;
pub mod live;
pub mod object;
pub mod values;
pub mod var;
pub mod watchers;

/// What a C function returns when it fails: NULL or -1.
pub(crate) trait ErrorValue {
    const ERROR: Self;
}

impl ErrorValue for *mut PyObject {
    const ERROR: Self = std::ptr::null_mut();
}
impl ErrorValue for c_int {
    const ERROR: Self = -1;
}
impl ErrorValue for c_long {
    const ERROR: Self = -1;
}
impl ErrorValue for isize {
    const ERROR: Self = -1;
}
impl ErrorValue for *const c_char {
    const ERROR: Self = std::ptr::null();
}
impl ErrorValue for *mut c_void {
    const ERROR: Self = std::ptr::null_mut();
}
/// For `void` functions whose only failure is the error they set.
impl ErrorValue for () {
    const ERROR: Self = ();
}

const PANIC_MESSAGE: &str = "internal error in libcontextvars: a Rust panic was caught at the C boundary";

/// Test-only: makes the next guarded call panic inside its guard, to prove
/// every export turns a panic into SystemError (or, where nothing can be
/// reported, a message on stderr) instead of aborting.
#[cfg(feature = "testing")]
pub mod forced_panic {
    use std::sync::atomic::{AtomicBool, Ordering};

    static NEXT: AtomicBool = AtomicBool::new(false);

    /// Arms a panic in the next guarded call (on any thread).
    pub fn arm() {
        NEXT.store(true, Ordering::SeqCst);
    }

    /// Whether the armed panic was consumed; disarms.
    pub fn disarm() -> bool {
        !NEXT.swap(false, Ordering::SeqCst)
    }

    #[inline(always)]
    pub(crate) fn maybe_panic() {
        if NEXT.load(Ordering::Relaxed) && NEXT.swap(false, Ordering::SeqCst) {
            panic!("forced panic (testing feature)");
        }
    }
}

#[inline(always)]
fn before_body() {
    #[cfg(feature = "testing")]
    forced_panic::maybe_panic();
}

/// Runs an export's body: `Ok` passes through, `Err` is raised and the
/// error value returned, and a panic becomes SystemError.
#[inline(always)]
pub(crate) fn guard<R: ErrorValue>(body: impl FnOnce() -> Result<R, PyErr>) -> R {
    // AssertUnwindSafe: after a panic the body's state is abandoned; the
    // objects it touched stay consistent because every mutation of shared
    // state in the core is a single publish step done last.
    match catch_unwind(AssertUnwindSafe(|| {
        before_body();
        body()
    })) {
        Ok(Ok(value)) => value,
        Ok(Err(err)) => {
            err.restore();
            R::ERROR
        }
        Err(payload) => {
            forget_payload(payload);
            PyErr::constant(Exc::System, crate::values::static_str!(PANIC_MESSAGE)).restore();
            R::ERROR
        }
    }
}

/// For exports that cannot report an error (`Py_DecRef`, `tp_dealloc`): a
/// panic is reported on stderr and the call returns.
#[inline(always)]
pub(crate) fn guard_void(body: impl FnOnce()) {
    guard_or(body, ())
}

/// For exports whose result cannot carry an error (`PyErr_Occurred`,
/// `PyErr_ExceptionMatches`): a panic is reported on stderr and `fallback`
/// returned.
#[inline(always)]
pub(crate) fn guard_or<R>(body: impl FnOnce() -> R, fallback: R) -> R {
    match catch_unwind(AssertUnwindSafe(|| {
        before_body();
        body()
    })) {
        Ok(value) => value,
        Err(payload) => {
            forget_payload(payload);
            let _ = std::io::stderr().write_all(b"libcontextvars: a Rust panic was caught in a function that cannot report errors\n");
            fallback
        }
    }
}

/// Drops a panic payload without letting a panicking destructor escape.
fn forget_payload(payload: Box<dyn std::any::Any + Send>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

/// A required object argument: NULL is SystemError.
///
/// # Safety
/// A non-NULL `p` must be a live object for the duration of the call.
pub(crate) unsafe fn object<'a>(p: *mut PyObject) -> Result<&'a PyObject, PyErr> {
    // SAFETY: per the caller.
    unsafe { p.as_ref() }.ok_or_else(PyErr::bad_internal_call)
}

/// An optional object argument (NULL means absent).
///
/// # Safety
/// As for [`object`].
pub(crate) unsafe fn optional<'a>(p: *mut PyObject) -> Option<&'a PyObject> {
    // SAFETY: per the caller.
    unsafe { p.as_ref() }
}

/// A Context argument, with CPython's TypeError for anything else.
///
/// # Safety
/// As for [`object`].
pub(crate) unsafe fn context<'a>(p: *mut PyObject) -> Result<&'a Context, PyErr> {
    // SAFETY: per the caller.
    let o = unsafe { object(p) }?;
    if o.ty() != context_type() {
        return Err(PyErr::constant(Exc::Type, crate::values::static_str!("an instance of Context was expected")));
    }
    // SAFETY: the type says this is a Context.
    Ok(unsafe { &*p.cast::<Context>() })
}

/// A ContextVar argument, with CPython's TypeError for anything else.
///
/// # Safety
/// As for [`object`].
pub(crate) unsafe fn var<'a>(p: *mut PyObject) -> Result<&'a ContextVar, PyErr> {
    // SAFETY: per the caller.
    let o = unsafe { object(p) }?;
    if o.ty() != var_type() {
        return Err(PyErr::constant(Exc::Type, crate::values::static_str!("an instance of ContextVar was expected")));
    }
    // SAFETY: the type says this is a ContextVar.
    Ok(unsafe { &*p.cast::<ContextVar>() })
}

/// A Token argument, with CPython's TypeError for anything else.
///
/// # Safety
/// As for [`object`].
pub(crate) unsafe fn token<'a>(p: *mut PyObject) -> Result<&'a Token, PyErr> {
    // SAFETY: per the caller.
    let o = unsafe { object(p) }?;
    if o.ty() != token_type() {
        return Err(PyErr::constant(Exc::Type, crate::values::static_str!("an instance of Token was expected")));
    }
    // SAFETY: the type says this is a Token.
    Ok(unsafe { &*p.cast::<Token>() })
}
