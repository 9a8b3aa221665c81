//! Exports: context watchers (`PyContext_AddWatcher`,
//! `PyContext_ClearWatcher`), with CPython 3.14's names, signatures and
//! messages.

use std::ffi::c_int;

use crate::errors::PyErr;
use crate::watchers::{self, PyContext_WatchCallback};

use super::guard;

/// Registers `callback` as a context watcher and returns its id, the lowest
/// free one in 0..7 (ids are reused after `PyContext_ClearWatcher()`).
///
/// The callback is called with `Py_CONTEXT_SWITCHED` and the new current
/// context (a borrowed reference) after every switch of a thread's current
/// context by `PyContext_Enter()` or `PyContext_Exit()` (so also around
/// `contextvars_context_run()`), on the switching thread; with `Py_None`
/// when the thread is left with no current context (exiting the outermost
/// context of a thread that never had a base context). It is not called when
/// a thread's base context is created lazily (by Set, Reset or CopyCurrent),
/// nor when a thread's contexts are released at thread exit. Watchers are
/// called in id order.
///
/// The callback returns 0, or -1 with an error set. A failure (or any error
/// the callback leaves set) is reported on stderr as CPython's default
/// unraisable hook does ("Exception ignored in Py_CONTEXT_SWITCHED watcher
/// callback for <repr>:" then "Type: message") and cleared; it never reaches
/// the caller of Enter or Exit. Callbacks start with a clear error indicator:
/// an error already pending on the thread (e.g. that of a failed
/// `contextvars_context_run()` callback) is set aside and restored after.
///
/// Return value: the id, or -1 with an error set:
/// - RuntimeError "no more context watcher IDs available" if 8 watchers are
///   set;
/// - SystemError "bad argument to internal function" if `callback` is NULL.
///
/// Thread safety: watchers are global (every thread's switches are
/// reported). Adding and clearing may happen on any thread while others
/// switch contexts; a switch that races with the add may or may not report
/// to the new watcher. A callback may itself add or clear watchers and
/// enter and exit contexts (which reports those switches too: avoiding
/// unbounded recursion is the callback's job).
#[unsafe(no_mangle)]
pub extern "C" fn PyContext_AddWatcher(callback: PyContext_WatchCallback) -> c_int {
    guard(|| watchers::add(callback.ok_or_else(PyErr::bad_internal_call)?))
}

/// Removes the watcher with id `watcher_id`. The id may be reused by the
/// next `PyContext_AddWatcher()`.
///
/// Returns 0, or -1 with an error set:
/// - ValueError "Invalid context watcher ID <id>" if `watcher_id` is not in
///   0..7 (checked first);
/// - ValueError "No context watcher set for ID <id>" if no watcher has that
///   id.
///
/// Thread safety: callable from any thread, and from inside a watcher
/// callback (also to clear the running watcher). Another thread that was
/// already dispatching a switch when this is called may still call the
/// cleared callback once, after this returns: keep its code and data valid.
#[unsafe(no_mangle)]
pub extern "C" fn PyContext_ClearWatcher(watcher_id: c_int) -> c_int {
    guard(|| {
        watchers::clear(watcher_id)?;
        Ok(0)
    })
}
