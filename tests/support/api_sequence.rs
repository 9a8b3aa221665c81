//! Decodes bytes into a sequence of C-API calls over a small handle table and
//! checks, after every call, that the library kept its promises: no crash,
//! the error indicator set exactly when the return value says so, NULL
//! arguments answered with SystemError, and every capsule destroyed once
//! everything is dropped (LeakSanitizer checks every other object).
//! Values and defaults are leaves (ints, strs, None, capsules): containers as
//! values can form reference cycles, which the library does not collect (see
//! README); the differential test covers them.
//! Shared by the libFuzzer target (fuzz/) and the corpus replay test
//! (tests/fuzz_corpus.rs). Each input runs on a fresh thread, so thread
//! teardown is exercised too.

#![allow(dead_code)]

use std::ffi::{c_char, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};

use contextvars::ffi::context::*;
use contextvars::ffi::errors::*;
use contextvars::ffi::object::*;
use contextvars::ffi::values::*;
use contextvars::ffi::var::*;
use contextvars::errors::PyExc_SystemError;
use contextvars::object::PyObject;
use contextvars::values::{PyCapsule_Type, PyLong_Type, PyUnicode_Type};

const SLOTS: usize = 12;

static CAPSULES_MADE: AtomicUsize = AtomicUsize::new(0);
static CAPSULES_FREED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn capsule_freed(_: *mut PyObject) {
    CAPSULES_FREED.fetch_add(1, Ordering::Relaxed);
}

struct Run<'a> {
    data: &'a [u8],
    pos: usize,
    slots: [*mut PyObject; SLOTS],
    /// Contexts this thread entered (alive while entered), innermost last.
    entered: Vec<*mut PyObject>,
}

impl Run<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A handle argument: a slot's object, or NULL (empty slot).
    fn arg(&mut self) -> *mut PyObject {
        let i = self.byte() as usize % SLOTS;
        self.slots[i]
    }

    /// A value argument: a leaf object from the table, else NULL.
    fn value(&mut self) -> *mut PyObject {
        let o = self.arg();
        if o.is_null() {
            return o;
        }
        // SAFETY: slot objects are live.
        let leaf = unsafe { (*o).ob_type } == (&raw mut PyLong_Type) || unsafe { (*o).ob_type } == (&raw mut PyUnicode_Type)
            || unsafe { (*o).ob_type } == (&raw mut PyCapsule_Type) || o == (&raw mut contextvars::values::_Py_NoneStruct);
        if leaf { o } else { null_mut() }
    }

    fn store(&mut self, o: *mut PyObject) {
        let i = self.byte() as usize % SLOTS;
        let old = std::mem::replace(&mut self.slots[i], o);
        // SAFETY: the slot owned its reference.
        unsafe { Py_DecRef(old) };
    }
}

/// Checks that an error is pending exactly when `failed`, then clears it.
fn expect_error(failed: bool, what: &str) {
    let pending = !PyErr_Occurred().is_null();
    assert_eq!(pending, failed, "{what}: error indicator disagrees with the return value");
    PyErr_Clear();
}

fn is_system_error_pending() -> bool {
    // SAFETY: reading an exported static pointer.
    unsafe { PyErr_ExceptionMatches(PyExc_SystemError) == 1 }
}

static NAMES: [&[u8]; 5] = [b"v\0", b"\0", b"n\xc3\xa9\0", b"\xff\0", b"ab\xe2\x82\0"];

fn step(r: &mut Run<'_>) {
    let op = r.byte() % 24;
    // SAFETY: (throughout) every pointer passed is NULL or a live object
    // from the table or the entered stack; out-pointers are locals.
    unsafe {
        match op {
            0 => { let c = PyContext_New(); expect_error(c.is_null(), "New"); r.store(c) }
            1 => {
                let a = r.arg();
                let c = PyContext_Copy(a);
                if a.is_null() { assert!(c.is_null() && is_system_error_pending(), "Copy(NULL)"); }
                expect_error(c.is_null(), "Copy");
                r.store(c)
            }
            2 => { let c = PyContext_CopyCurrent(); expect_error(c.is_null(), "CopyCurrent"); r.store(c) }
            3 | 4 => {
                let c = if op == 4 && !r.entered.is_empty() && r.byte() % 2 == 0 { *r.entered.last().unwrap() } else { r.arg() };
                let rc = PyContext_Enter(c);
                if c.is_null() { assert!(rc == -1 && is_system_error_pending(), "Enter(NULL)"); }
                expect_error(rc == -1, "Enter");
                if rc == 0 { r.entered.push(c) }
            }
            5 | 6 => {
                let c = if op == 6 && !r.entered.is_empty() { *r.entered.last().unwrap() } else { r.arg() };
                let rc = PyContext_Exit(c);
                expect_error(rc == -1, "Exit");
                if rc == 0 { assert_eq!(r.entered.pop(), Some(c), "Exit succeeded on a context that was not innermost") }
            }
            7 => {
                let name = NAMES[r.byte() as usize % NAMES.len()];
                let def = if r.byte() % 2 == 0 { null_mut() } else { r.value() };
                let name_ptr = if r.byte() % 16 == 0 { std::ptr::null() } else { name.as_ptr() as *const c_char };
                let v = PyContextVar_New(name_ptr, def);
                expect_error(v.is_null(), "ContextVar_New");
                r.store(v)
            }
            8 | 9 | 10 => {
                let (v, d) = (r.arg(), if r.byte() % 3 == 0 { r.value() } else { null_mut() });
                let mut out: *mut PyObject = std::ptr::NonNull::dangling().as_ptr(); // must be overwritten
                let no_out = r.byte() % 16 == 0;
                let rc = PyContextVar_Get(v, d, if no_out { null_mut() } else { &mut out });
                expect_error(rc == -1, "Get");
                if !no_out {
                    if rc == -1 { assert!(out.is_null(), "Get must write NULL on error") }
                    Py_DecRef(out);
                }
            }
            11 | 12 => {
                let (v, x) = (r.arg(), r.value());
                let t = PyContextVar_Set(v, x);
                if x.is_null() { assert!(t.is_null(), "Set(var, NULL)") }
                expect_error(t.is_null(), "Set");
                r.store(t)
            }
            13 | 14 => { let (v, t) = (r.arg(), r.arg()); let rc = PyContextVar_Reset(v, t); expect_error(rc == -1, "Reset") }
            15 => { let i = r.byte() as usize % SLOTS; let old = std::mem::replace(&mut r.slots[i], null_mut()); Py_DecRef(old) }
            16 => {
                let o = match r.byte() % 5 {
                    0 => PyLong_FromLong(r.byte() as i64 - 10),
                    1 => PyLong_FromLong(1_000_000 + r.byte() as i64),
                    2 => PyUnicode_FromString(NAMES[r.byte() as usize % NAMES.len()].as_ptr() as *const c_char),
                    3 => {
                        CAPSULES_MADE.fetch_add(1, Ordering::Relaxed);
                        PyCapsule_New(8 as *mut c_void, c"fuzz".as_ptr(), Some(capsule_freed))
                    }
                    _ => Py_NewRef(&raw mut contextvars::values::_Py_NoneStruct),
                };
                PyErr_Clear(); // invalid UTF-8 names fail here, by design
                r.store(o)
            }
            17 => { let o = r.arg(); let n = PyLong_AsLong(o); if n != -1 { expect_error(false, "AsLong") } else { PyErr_Clear() } }
            18 => { let o = r.arg(); let s = PyUnicode_AsUTF8(o); expect_error(s.is_null(), "AsUTF8") }
            19 => { let o = r.arg(); let p = PyCapsule_GetPointer(o, c"fuzz".as_ptr()); expect_error(p.is_null(), "GetPointer") }
            20 => { let o = r.arg(); let n = Py_NewRef(o); expect_error(n.is_null(), "NewRef"); Py_DecRef(n) }
            21 => {
                let o = r.arg();
                PyErr_SetString(o, c"fuzz".as_ptr());
                assert!(!PyErr_Occurred().is_null(), "SetString always leaves an error");
                let (mut t, mut v, mut tb) = (null_mut(), null_mut(), null_mut());
                PyErr_Fetch(&mut t, &mut v, &mut tb);
                assert!(!t.is_null() && PyErr_Occurred().is_null());
                PyErr_Restore(t, v, tb);
                PyErr_Clear();
            }
            _ => {
                // Hand an object to another thread, which uses and drops it.
                let o = Py_XNewRef(r.arg());
                let o_addr = o as usize;
                std::thread::spawn(move || {
                    let o = o_addr as *mut PyObject;
                    let c = PyContext_Copy(o);
                    PyErr_Clear();
                    Py_DecRef(c);
                    let mut out = null_mut();
                    if PyContextVar_Get(o, null_mut(), &mut out) == 0 { Py_DecRef(out) }
                    PyErr_Clear();
                    Py_DecRef(o);
                })
                .join()
                .expect("helper thread");
            }
        }
    }
}

fn run_input(data: &[u8]) {
    let mut r = Run { data, pos: 0, slots: [null_mut(); SLOTS], entered: Vec::new() };
    let mut steps = 0;
    while r.pos < data.len() && steps < 400 {
        step(&mut r);
        steps += 1;
    }
    // Leave every context, innermost first, then drop every handle. Half the
    // time leave them entered: thread exit must release them.
    if data.len() % 2 == 0 {
        while let Some(c) = r.entered.pop() {
            // SAFETY: an entered context is alive.
            assert_eq!(unsafe { PyContext_Exit(c) }, 0, "cleanup Exit");
        }
    }
    for s in r.slots {
        // SAFETY: each slot owns its reference.
        unsafe { Py_DecRef(s) };
    }
    assert!(PyErr_Occurred().is_null());
}

/// Runs one input on a fresh thread; panics (failing the fuzzer or the
/// test) if a promise was broken.
pub fn run(data: &[u8]) {
    let made = CAPSULES_MADE.load(Ordering::Relaxed);
    let freed = CAPSULES_FREED.load(Ordering::Relaxed);
    let input = data.to_vec();
    if let Err(e) = std::thread::spawn(move || run_input(&input)).join() {
        std::panic::resume_unwind(e);
    }
    let made = CAPSULES_MADE.load(Ordering::Relaxed) - made;
    let freed = CAPSULES_FREED.load(Ordering::Relaxed) - freed;
    assert_eq!(made, freed, "capsules made and destroyed differ: a leak");
}
