//! # contextvars
//!
//! CPython 3.11's context variables C API (PEP 567), as a C library with no
//! interpreter: the same names, signatures, results, exception types and
//! messages as CPython, safe to use from many threads at once.
//!
//! ## Conventions of the C API
//! - **References.** Functions document each result as a *new reference*
//!   (the caller must release it with `Py_DECREF`) or a *borrowed* one.
//!   `PyErr_Restore` *steals* its arguments. Reference counts are atomic: any
//!   thread may take or drop references to any object. Static objects (None,
//!   small ints, type and exception objects) are immortal.
//! - **Errors.** A failing function sets the calling thread's error indicator
//!   and returns NULL or -1, exactly as CPython 3.11 does, message included.
//!   NULL where an object is required raises SystemError ("bad argument to
//!   internal function") instead of crashing. A Rust panic never crosses into
//!   C: it becomes SystemError. Out of memory is MemoryError, with the state
//!   unchanged.
//! - **Threads.** Each thread has its own current context; a context can be
//!   entered by one thread at a time; no global lock is taken by Get, Set,
//!   Enter, Exit or Copy. When a thread exits, what it holds is released.
//!
//! ## Layout
//! - `alloc`: the one fallible allocation path.
//! - `object`: the object header, type objects, reference counting,
//!   destruction.
//! - `errors`: exception types, the error indicator, `PyErr`.
//! - `values`: None, int, str, capsule, and `repr()`.
//! - `hamt`: the persistent map behind contexts.
//! - `live`: live-object counters (per-thread blocks, summed on demand).
//! - `context`: contexts, the thread's current context, Enter and Exit.
//! - `var`: context variables and tokens.
//! - `watchers`: context watchers (CPython 3.14's `PyContext_AddWatcher`).
//! - `views`: beyond the C API, under the `contextvars_` prefix: running
//!   code in a context, reading a context, variable and token accessors.
//! - `ffi`: the exported functions (the C boundary). Exported *data* (type
//!   and exception objects, `_Py_NoneStruct`) is defined next to the type it
//!   describes.

#![deny(unsafe_op_in_unsafe_fn)]
// Exported names are CPython's.
#![allow(non_upper_case_globals)]

#[cfg(feature = "testing")]
pub mod alloc;
#[cfg(not(feature = "testing"))]
mod alloc;
pub mod context;
pub mod errors;
#[allow(non_snake_case)]
pub mod ffi;
mod hamt;
mod live;
pub mod object;
mod unicode_printable;
pub mod values;
pub mod var;
pub mod views;
pub mod watchers;
