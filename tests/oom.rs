//! Out of memory: for each scenario, allocation 0, 1, 2, ... is made to fail
//! until the scenario completes without reaching the failure. After every
//! injected failure the call must return its error value with MemoryError,
//! and the observable state (the value of every variable in the current
//! context, which context is current) must be as before the call. Needs the
//! `testing` feature (the injector, which is process-wide, so these tests run
//! one at a time: `--test-threads=1`). Run by `make test`.
#![cfg(feature = "testing")]

use std::ffi::c_char;
use std::ptr::null_mut;

use contextvars::alloc::inject;
use contextvars::errors::PyExc_MemoryError;
use contextvars::ffi::context::*;
use contextvars::ffi::errors::*;
use contextvars::ffi::object::*;
use contextvars::ffi::values::*;
use contextvars::ffi::var::*;
use contextvars::object::PyObject;

/// The value of `var` as a long (-1 for none), without allocating.
fn read(var: *mut PyObject) -> i64 {
    let mut out = null_mut();
    // SAFETY: live var, writable out-pointer.
    unsafe {
        assert_eq!(PyContextVar_Get(var, null_mut(), &mut out), 0);
        if out.is_null() {
            return -1;
        }
        let v = PyLong_AsLong(out);
        Py_DecRef(out);
        v
    }
}

struct World {
    vars: Vec<*mut PyObject>,
    /// A variable set to a different value in each context this test makes
    /// current, so a change of current context shows in `snapshot`.
    marker: *mut PyObject,
}

impl World {
    fn snapshot(&self) -> Vec<i64> {
        let mut s: Vec<i64> = self.vars.iter().map(|&v| read(v)).collect();
        s.push(read(self.marker));
        s
    }
}

fn set(var: *mut PyObject, v: i64) -> *mut PyObject {
    // SAFETY: live var; the int is released after the Set took its reference.
    unsafe {
        let n = PyLong_FromLong(v);
        assert!(!n.is_null());
        let t = PyContextVar_Set(var, n);
        Py_DecRef(n);
        t
    }
}

/// Runs `op` with allocation n failing, for n = 0, 1, ... until `op` no
/// longer reaches the failure. `op` returns whether it succeeded; `undo`
/// reverts a success so the next round starts from the same state.
/// Returns the number of injection points exercised.
fn sweep(name: &str, world: &World, mut op: impl FnMut() -> bool, mut undo: impl FnMut()) -> usize {
    for n in 0.. {
        let before = world.snapshot();
        inject::arm(n, false);
        let ok = op();
        let injected = inject::disarm();
        if !injected {
            assert!(ok, "{name}: failed without an injected failure");
            assert!(PyErr_Occurred().is_null());
            undo();
            return n as usize;
        }
        if ok {
            // The failure hit an allocation the call could absorb (none do
            // today); the call must then have fully succeeded.
            assert!(PyErr_Occurred().is_null(), "{name}: success with an error set");
            undo();
        } else {
            // SAFETY: reading exported statics.
            let is_memory_error = unsafe { PyErr_ExceptionMatches(PyExc_MemoryError) } == 1;
            assert!(is_memory_error, "{name}: allocation {n} failed but the error is not MemoryError");
            PyErr_Clear();
            assert_eq!(world.snapshot(), before, "{name}: allocation {n} failed but the state changed");
        }
    }
    unreachable!()
}

/// The base context is created lazily: on a fresh thread, with every
/// allocation failing, Get (with or without a default) and Enter/Exit still
/// work, because none of them creates it or allocates anything.
#[test]
fn get_enter_and_exit_allocate_nothing_on_a_fresh_thread() {
    // SAFETY: live objects made here; out-pointers are locals.
    unsafe {
        let var = PyContextVar_New(c"lazy".as_ptr(), null_mut());
        let ctx = PyContext_New();
        let default = PyLong_FromLong(424242);
        let (var_a, ctx_a, def_a) = (var as usize, ctx as usize, default as usize);
        std::thread::spawn(move || {
            let (var, ctx, default) = (var_a as *mut PyObject, ctx_a as *mut PyObject, def_a as *mut PyObject);
            inject::arm(0, true);
            let mut out = null_mut();
            let get_plain = PyContextVar_Get(var, null_mut(), &mut out) == 0 && out.is_null();
            let get_default = PyContextVar_Get(var, default, &mut out) == 0 && out == default;
            Py_DecRef(out);
            let enter_exit = PyContext_Enter(ctx) == 0 && PyContext_Exit(ctx) == 0;
            let injected = inject::disarm();
            assert!(get_plain && get_default && enter_exit, "Get/Enter/Exit failed under OOM on a fresh thread");
            assert!(!injected, "Get, Enter or Exit allocated on a fresh thread");
            assert!(PyErr_Occurred().is_null());
        })
        .join()
        .expect("fresh thread");
        for o in [var, ctx, default] { Py_DecRef(o) }
    }
}

#[test]
fn every_allocation_failure_is_memory_error_with_state_unchanged() {
    std::thread::spawn(|| {
        // SAFETY: (throughout) every pointer is a live object made here.
        unsafe {
            // Scenario: first use on a fresh thread (lazy base context).
            let probe = PyContextVar_New(c"probe".as_ptr(), null_mut());
            let world0 = World { vars: vec![], marker: probe };
            let mut points = sweep("first Set on a new thread", &world0, || {
                let t = set(probe, 1);
                if t.is_null() { return false }
                Py_DecRef(t);
                true
            }, || {});

            let mut vars: Vec<*mut PyObject> = (0..40).map(|_| PyContextVar_New(c"v".as_ptr(), null_mut())).collect();
            for (i, &v) in vars.iter().enumerate() {
                if i % 2 == 0 { Py_DecRef(set(v, 1000 + i as i64)) }
            }
            let marker = PyContextVar_New(c"marker".as_ptr(), null_mut());
            Py_DecRef(set(marker, 1));
            let small = PyContext_CopyCurrent();
            let world = World { vars: vars.clone(), marker };

            points += sweep("PyContext_New", &world, || { let c = PyContext_New(); Py_DecRef(c); !c.is_null() }, || {});
            points += sweep("PyContext_Copy", &world, || { let c = PyContext_Copy(small); Py_DecRef(c); !c.is_null() }, || {});
            points += sweep("PyContext_CopyCurrent", &world, || { let c = PyContext_CopyCurrent(); Py_DecRef(c); !c.is_null() }, || {});
            points += sweep("PyContextVar_New", &world, || { let v = PyContextVar_New(c"name".as_ptr(), small); Py_DecRef(v); !v.is_null() }, || {});
            points += sweep("PyContextVar_Get with default", &world, || {
                let mut out = null_mut();
                let ok = PyContextVar_Get(vars[1], small, &mut out) == 0;
                Py_DecRef(out);
                ok
            }, || {});
            for (label, var) in [("Set of a new variable", vars[1]), ("Set of a set variable", vars[0])] {
                let token = std::cell::Cell::new(null_mut());
                points += sweep(label, &world, || { token.set(set(var, 7)); !token.get().is_null() }, || {
                    assert_eq!(PyContextVar_Reset(var, token.get()), 0);
                    Py_DecRef(token.get());
                });
            }
            // A copy shares the map, so the next Set must copy nodes (not
            // edit them in place): more allocations to fail.
            let shared = PyContext_CopyCurrent();
            let token = std::cell::Cell::new(null_mut());
            points += sweep("Set in a shared map", &world, || { token.set(set(vars[2], 8)); !token.get().is_null() }, || {
                assert_eq!(PyContextVar_Reset(vars[2], token.get()), 0);
                Py_DecRef(token.get());
            });
            // Reset to a value and to missing (the token is made outside the sweep).
            let to_value = set(vars[4], 9);
            points += sweep("Reset to a value", &world, || PyContextVar_Reset(vars[4], to_value) == 0, || {});
            let to_missing = set(vars[5], 9);
            points += sweep("Reset to missing", &world, || PyContextVar_Reset(vars[5], to_missing) == 0, || {});
            // A delta in front of a shared map: fill it with 8 new
            // variables, then a ninth folds it into the map (many copies).
            let share_again = PyContext_CopyCurrent();
            Py_DecRef(set(vars[1], 2000));
            // The delta is now this context's alone: the next new variable
            // grows it by moving its entries into a larger node.
            points += sweep("Set growing a delta", &world, || { token.set(set(vars[21], 3)); !token.get().is_null() }, || {
                assert_eq!(PyContextVar_Reset(vars[21], token.get()), 0);
                Py_DecRef(token.get());
            });
            Py_DecRef(share_again);
            let share_again = PyContext_CopyCurrent();
            for i in 0..8 { Py_DecRef(set(vars[1 + 2 * i], 2000 + i as i64)) }
            points += sweep("Set folding a full delta", &world, || { token.set(set(vars[17], 3)); !token.get().is_null() }, || {
                assert_eq!(PyContextVar_Reset(vars[17], token.get()), 0);
                Py_DecRef(token.get());
            });
            // Removing through a delta folds it too.
            let share_third = PyContext_CopyCurrent();
            let to_missing_in_delta = set(vars[19], 4);
            points += sweep("Reset to missing through a delta", &world, || PyContextVar_Reset(vars[19], to_missing_in_delta) == 0, || {});
            Py_DecRef(to_missing_in_delta);
            Py_DecRef(share_again);
            Py_DecRef(share_third);
            // A large context: 2000 variables.
            let many: Vec<*mut PyObject> = (0..2000).map(|_| PyContextVar_New(c"m".as_ptr(), null_mut())).collect();
            for &v in &many { Py_DecRef(set(v, 5)) }
            let keep = PyContext_CopyCurrent(); // forces copies below
            let token = std::cell::Cell::new(null_mut());
            points += sweep("Set in a 2000-variable shared context", &world, || { token.set(set(many[777], 6)); !token.get().is_null() }, || {
                assert_eq!(PyContextVar_Reset(many[777], token.get()), 0);
                Py_DecRef(token.get());
            });
            let fresh = PyContextVar_New(c"fresh".as_ptr(), null_mut());
            points += sweep("Set of a new variable in a 2000-variable context", &world, || { token.set(set(fresh, 6)); !token.get().is_null() }, || {
                assert_eq!(PyContextVar_Reset(fresh, token.get()), 0);
                Py_DecRef(token.get());
            });
            // Enter and Exit allocate nothing; the sweep proves it.
            let ctx = PyContext_New();
            points += sweep("Enter+Exit", &world, || PyContext_Enter(ctx) == 0 && PyContext_Exit(ctx) == 0, || {});
            // Values.
            points += sweep("PyLong_FromLong", &world, || { let o = PyLong_FromLong(123456); Py_DecRef(o); !o.is_null() }, || {});
            points += sweep("PyUnicode_FromString", &world, || { let o = PyUnicode_FromString(c"text".as_ptr() as *const c_char); Py_DecRef(o); !o.is_null() }, || {});
            points += sweep("PyCapsule_New", &world, || { let o = PyCapsule_New(8 as *mut _, null_mut(), None); Py_DecRef(o); !o.is_null() }, || {});
            // An error whose message embeds reprs (allocates the message).
            let used = set(vars[6], 1);
            assert_eq!(PyContextVar_Reset(vars[6], used), 0);
            let before = world.snapshot();
            inject::arm(0, false);
            assert_eq!(PyContextVar_Reset(vars[6], used), -1);
            assert!(inject::disarm());
            assert_eq!(PyErr_ExceptionMatches(PyExc_MemoryError), 1, "an error message that cannot be allocated is MemoryError");
            PyErr_Clear();
            assert_eq!(world.snapshot(), before);

            println!("oom: {points} injection points exercised");
            assert!(points >= 20, "too few allocation sites reached: {points}");
            for o in [small, shared, keep, ctx, to_value, to_missing, used, marker, probe, fresh] { Py_DecRef(o) }
            for v in vars.drain(..).chain(many) { Py_DecRef(v) }
        }
    })
    .join()
    .expect("the OOM sweep thread");
}
