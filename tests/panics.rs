//! Forced panics at the C boundary (feature `testing`): a panic inside any
//! export must come back as SystemError with the export's error value, or,
//! for exports that cannot report errors, a line on stderr and a harmless
//! result — never an abort or unwinding into C. Every export is covered; the
//! list is checked against the header.
#![cfg(feature = "testing")]

use std::ffi::c_char;
use std::ptr::null_mut;

use contextvars::errors::{PyExc_SystemError, PyExc_ValueError};
use contextvars::ffi::context::*;
use contextvars::ffi::errors::*;
use contextvars::ffi::extensions::*;
use contextvars::ffi::forced_panic;
use contextvars::ffi::live::*;
use contextvars::ffi::object::*;
use contextvars::ffi::values::*;
use contextvars::ffi::var::*;
use contextvars::ffi::watchers::*;
use contextvars::object::PyObject;
use contextvars::watchers::PyContextEvent;

unsafe extern "C" fn noop_watcher(_: PyContextEvent, _: *mut PyObject) -> i32 {
    0
}

unsafe extern "C" fn run_returns_none(_: *mut std::ffi::c_void) -> *mut PyObject {
    // SAFETY: None is immortal.
    unsafe { Py_NewRef(&raw mut contextvars::values::_Py_NoneStruct) }
}

unsafe extern "C" fn visit_nothing(_: *mut PyObject, _: *mut PyObject, _: *mut std::ffi::c_void) -> i32 {
    0
}

const PANIC_MESSAGE: &str = "internal error in libcontextvars: a Rust panic was caught at the C boundary";

/// The pending error is SystemError with the panic message; clears it.
fn system_error_pending() -> bool {
    let (mut t, mut v, mut tb) = (null_mut(), null_mut(), null_mut());
    // SAFETY: out-pointers are locals; the fetched references are released.
    unsafe {
        PyErr_Fetch(&mut t, &mut v, &mut tb);
        let ok = t == PyExc_SystemError
            && !v.is_null()
            && std::ffi::CStr::from_ptr(PyUnicode_AsUTF8(v)).to_str() == Ok(PANIC_MESSAGE);
        Py_DecRef(t);
        Py_DecRef(v);
        ok
    }
}

#[test]
fn a_panic_in_any_export_is_contained() {
    std::panic::set_hook(Box::new(|_| {})); // the forced panics are expected
    let mut covered: Vec<&str> = Vec::new();
    // SAFETY: (throughout) valid arguments; objects made here are released.
    unsafe {
        let var = PyContextVar_New(c"v".as_ptr(), null_mut());
        let ctx = PyContext_New();
        let int = PyLong_FromLong(100_000);
        let text = PyUnicode_FromString(c"t".as_ptr());
        let cap = PyCapsule_New(8 as *mut _, c"n".as_ptr(), None);
        let token = PyContextVar_Set(var, int);
        assert!(!var.is_null() && !ctx.is_null() && !token.is_null());

        macro_rules! reports {
            ($name:literal, $call:expr, $is_error:expr) => {{
                forced_panic::arm();
                let r = $call;
                assert!(forced_panic::disarm(), "{}: the forced panic did not happen", $name);
                assert!($is_error(r), "{}: wrong error value after a panic", $name);
                assert!(system_error_pending(), "{}: no SystemError after a panic", $name);
                covered.push($name);
            }};
        }
        let null_obj = |r: *mut PyObject| r.is_null();
        let minus_one = |r: i32| r == -1;
        reports!("PyContext_New", PyContext_New(), null_obj);
        reports!("PyContext_Copy", PyContext_Copy(ctx), null_obj);
        reports!("PyContext_CopyCurrent", PyContext_CopyCurrent(), null_obj);
        reports!("PyContext_Enter", PyContext_Enter(ctx), minus_one);
        reports!("PyContext_Exit", PyContext_Exit(ctx), minus_one);
        reports!("PyContextVar_New", PyContextVar_New(c"w".as_ptr(), null_mut()), null_obj);
        let mut out: *mut PyObject = std::ptr::NonNull::dangling().as_ptr();
        reports!("PyContextVar_Get", PyContextVar_Get(var, null_mut(), &mut out), minus_one);
        assert!(out.is_null(), "Get writes NULL even when it panics");
        reports!("PyContextVar_Set", PyContextVar_Set(var, int), null_obj);
        reports!("PyContextVar_Reset", PyContextVar_Reset(var, token), minus_one);
        reports!("PyLong_FromLong", PyLong_FromLong(5), null_obj);
        reports!("PyLong_AsLong", PyLong_AsLong(int), |r: i64| r == -1);
        reports!("PyUnicode_FromString", PyUnicode_FromString(c"x".as_ptr() as *const c_char), null_obj);
        reports!("PyUnicode_AsUTF8", PyUnicode_AsUTF8(text), |r: *const c_char| r.is_null());
        reports!("PyCapsule_New", PyCapsule_New(8 as *mut _, null_mut(), None), null_obj);
        reports!("PyCapsule_GetPointer", PyCapsule_GetPointer(cap, c"n".as_ptr()), |r: *mut std::ffi::c_void| r.is_null());
        reports!("Py_NewRef", Py_NewRef(int), null_obj);
        reports!("Py_XNewRef", Py_XNewRef(int), null_obj);
        reports!("PyErr_NoMemory", PyErr_NoMemory(), null_obj);
        reports!("PyErr_BadInternalCall", PyErr_BadInternalCall(), |_: ()| true);
        reports!("PyErr_SetString", PyErr_SetString(PyExc_ValueError, c"m".as_ptr()), |_: ()| true);
        reports!("PyErr_SetNone", PyErr_SetNone(PyExc_ValueError), |_: ()| true);
        reports!("PyContext_AddWatcher", PyContext_AddWatcher(Some(noop_watcher)), minus_one);
        reports!("PyContext_ClearWatcher", PyContext_ClearWatcher(0), minus_one);
        reports!("contextvars_context_run", contextvars_context_run(ctx, Some(run_returns_none), null_mut()), null_obj);
        reports!("contextvars_context_len", contextvars_context_len(ctx), |r: isize| r == -1);
        out = std::ptr::NonNull::dangling().as_ptr();
        reports!("contextvars_context_get", contextvars_context_get(ctx, var, null_mut(), &mut out), minus_one);
        assert!(out.is_null(), "contextvars_context_get writes NULL even when it panics");
        reports!("contextvars_context_contains", contextvars_context_contains(ctx, var), minus_one);
        reports!("contextvars_context_items", contextvars_context_items(ctx, Some(visit_nothing), null_mut()), minus_one);
        reports!("contextvars_var_name", contextvars_var_name(var), null_obj);
        out = std::ptr::NonNull::dangling().as_ptr();
        reports!("contextvars_var_default", contextvars_var_default(var, &mut out), minus_one);
        assert!(out.is_null(), "contextvars_var_default writes NULL even when it panics");
        reports!("contextvars_token_var", contextvars_token_var(token), null_obj);
        reports!("contextvars_token_old_value", contextvars_token_old_value(token), null_obj);
        let mut counts = std::mem::MaybeUninit::<contextvars_LiveCounts>::zeroed();
        reports!("contextvars_live_counts", contextvars_live_counts(counts.as_mut_ptr()), minus_one);

        // Exports that cannot report an error: contained, harmless result.
        macro_rules! contained {
            ($name:literal, $call:expr) => {{
                forced_panic::arm();
                let r = $call;
                assert!(forced_panic::disarm(), "{}: the forced panic did not happen", $name);
                covered.push($name);
                r
            }};
        }
        assert!(contained!("PyErr_Occurred", PyErr_Occurred()).is_null());
        assert_eq!(contained!("PyErr_ExceptionMatches", PyErr_ExceptionMatches(PyExc_ValueError)), 0);
        assert_eq!(contained!("PyErr_GivenExceptionMatches", PyErr_GivenExceptionMatches(PyExc_ValueError, PyExc_ValueError)), 0);
        contained!("PyErr_Clear", PyErr_Clear());
        let (mut t, mut v, mut tb) = (null_mut(), null_mut(), null_mut());
        contained!("PyErr_Fetch", PyErr_Fetch(&mut t, &mut v, &mut tb));
        contained!("PyErr_Restore", PyErr_Restore(null_mut(), null_mut(), null_mut()));
        contained!("Py_IncRef", Py_IncRef(int)); // the count may or may not have moved:
        contained!("Py_DecRef", Py_DecRef(int)); // both panicked before touching it
        assert!(PyErr_Occurred().is_null());

        // Everything still works afterwards.
        assert_eq!(PyContext_Enter(ctx), 0);
        assert_eq!(PyContext_Exit(ctx), 0);
        assert_eq!(PyContextVar_Reset(var, token), 0);
        for o in [token, var, ctx, int, text, cap] {
            Py_DecRef(o);
        }
    }
    // Every function the header declares was covered.
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/contextvars.h")).unwrap();
    let mut checked = 0;
    for line in header.lines() {
        if let Some(name) = line.split('(').next().and_then(|l| l.split_whitespace().last()) {
            let name = name.trim_start_matches('*');
            if line.contains('(') && !line.starts_with("static") && !line.starts_with('#') && !line.starts_with(' ')
                && !line.starts_with("typedef") && !line.starts_with('/')
                && (name.starts_with("Py") || name.starts_with("_Py") || name.starts_with("contextvars_")) {
                assert!(covered.contains(&name), "export {name} is not covered by the forced-panic test");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, covered.len(), "every covered export is a header function");
    let _ = std::panic::take_hook();
}
