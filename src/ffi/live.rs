//! Export: the live-object counters (`contextvars_live_counts`), for leak
//! checks by programs and by the C suite's refleak mode.

use std::ffi::c_int;

use crate::errors::PyErr;
use crate::live::{self, Kind};
use crate::object::Py_ssize_t;

use super::guard;

/// How many objects of each kind exist right now, in the whole process
/// (`contextvars_live_counts()` fills it in). Statically allocated objects
/// (None, small ints, type objects, constant messages) are not counted.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct contextvars_LiveCounts {
    /// Contexts (including each thread's base context).
    pub contexts: Py_ssize_t,
    /// Context variables.
    pub vars: Py_ssize_t,
    /// Tokens.
    pub tokens: Py_ssize_t,
    /// Ints (outside the cached -5..256).
    pub ints: Py_ssize_t,
    /// Strs (including error messages and variable names).
    pub strs: Py_ssize_t,
    /// Capsules.
    pub capsules: Py_ssize_t,
    /// The nodes of contexts' maps (not objects; shared between copies).
    pub map_nodes: Py_ssize_t,
    /// The six object kinds together (map nodes excluded).
    pub objects: Py_ssize_t,
}

/// Fills `*out` with the number of live objects of each kind, summed over
/// every thread: a leak check compares two snapshots. Cheap to keep (each
/// thread counts in its own counters, without atomic read-modify-writes);
/// a snapshot reads every thread's counters, so it costs a few loads per
/// thread that ever used the library. Exact when no other thread is creating
/// or releasing objects during the call, otherwise a recent value. An
/// object released on another thread than the one that made it is counted
/// correctly.
///
/// Returns 0, or -1 with SystemError "bad argument to internal function"
/// if `out` is NULL. Not part of CPython's API.
///
/// # Safety
/// `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn contextvars_live_counts(out: *mut contextvars_LiveCounts) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(PyErr::bad_internal_call());
        }
        let c = live::counts();
        let k = |kind: Kind| c[kind as usize] as Py_ssize_t;
        let objects = [Kind::Context, Kind::Var, Kind::Token, Kind::Int, Kind::Str, Kind::Capsule]
            .into_iter()
            .map(k)
            .sum();
        // SAFETY: per this function's contract.
        unsafe {
            out.write(contextvars_LiveCounts {
                contexts: k(Kind::Context),
                vars: k(Kind::Var),
                tokens: k(Kind::Token),
                ints: k(Kind::Int),
                strs: k(Kind::Str),
                capsules: k(Kind::Capsule),
                map_nodes: k(Kind::MapNode),
                objects,
            })
        };
        Ok(0)
    })
}
