//! Context watchers, as CPython 3.14 defines them: up to 8 callbacks told
//! after each switch of a thread's current context by Enter or Exit.
//!
//! Cost when no watcher is set: one relaxed load of [`ACTIVE`] per Enter or
//! Exit ([`context_switched`], inlined). Everything else is in the cold
//! [`notify`].
//!
//! Concurrency: adding and clearing are serialised by [`REGISTRY`] (they are
//! rare), so a slot and its bit in [`ACTIVE`] change together; dispatch
//! takes no lock and reads the mask and then each slot, so it tolerates a
//! bit whose slot was just cleared (skipped) and may call a callback that a
//! concurrent ClearWatcher is removing (once, on a thread that had already
//! loaded it). Callbacks run with no lock held, so they may add or clear
//! watchers and enter or exit contexts.

use std::ffi::c_int;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::context::Context;
use crate::errors::{self, Exc, PyErr};
use crate::object::PyObject;
use crate::values::{self, Repr};

/// CPython's CONTEXT_MAX_WATCHERS.
pub(crate) const MAX_WATCHERS: usize = 8;

/// The events a watcher is told about (CPython 3.14's `PyContextEvent`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum PyContextEvent {
    /// The thread's current context changed (by Enter or Exit); the callback
    /// gets the new current context, or None if the thread has none.
    Py_CONTEXT_SWITCHED = 0,
}

/// A context watcher: called with the event and the new current context
/// (borrowed) or None. Returns 0, or -1 with an error set (the error is
/// reported on stderr and cleared, never propagated).
#[allow(non_camel_case_types)]
pub type PyContext_WatchCallback = Option<unsafe extern "C" fn(PyContextEvent, *mut PyObject) -> c_int>;

/// Bit i set: slot i may hold a callback. Read on every Enter and Exit.
static ACTIVE: AtomicU8 = AtomicU8::new(0);
/// The callbacks, as function addresses (0: empty).
static SLOTS: [AtomicUsize; MAX_WATCHERS] = [const { AtomicUsize::new(0) }; MAX_WATCHERS];
/// Serialises AddWatcher and ClearWatcher.
static REGISTRY: Mutex<()> = Mutex::new(());

fn lock_registry() -> std::sync::MutexGuard<'static, ()> {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `PyContext_AddWatcher`: the lowest free id.
pub(crate) fn add(callback: unsafe extern "C" fn(PyContextEvent, *mut PyObject) -> c_int) -> Result<c_int, PyErr> {
    let _registry = lock_registry();
    for (i, slot) in SLOTS.iter().enumerate() {
        if slot.load(Ordering::Relaxed) == 0 {
            // Release pairs with the Acquire in `notify`: whatever the
            // program set up before adding is visible to the callback.
            slot.store(callback as usize, Ordering::Release);
            ACTIVE.fetch_or(1 << i, Ordering::Release);
            return Ok(i as c_int);
        }
    }
    Err(PyErr::constant(Exc::Runtime, values::static_str!("no more context watcher IDs available")))
}

/// `PyContext_ClearWatcher`: range first, then whether the slot is set.
pub(crate) fn clear(id: c_int) -> Result<(), PyErr> {
    if !(0..MAX_WATCHERS as c_int).contains(&id) {
        return Err(PyErr::format(Exc::Value, format_args!("Invalid context watcher ID {id}")));
    }
    let _registry = lock_registry();
    let slot = &SLOTS[id as usize];
    if slot.load(Ordering::Relaxed) == 0 {
        return Err(PyErr::format(Exc::Value, format_args!("No context watcher set for ID {id}")));
    }
    ACTIVE.fetch_and(!(1u8 << id), Ordering::Relaxed);
    slot.store(0, Ordering::Relaxed);
    Ok(())
}

/// Called once by Enter and once by Exit, after the switch, with the new
/// current context (NULL: none). One relaxed load when no watcher is set.
#[inline(always)]
pub(crate) fn context_switched(current: *mut Context) {
    if ACTIVE.load(Ordering::Relaxed) != 0 {
        notify(current);
    }
}

/// Calls every active watcher. The caller's pending error (Exit runs while a
/// failed `contextvars_context_run` callback's error is pending) is set
/// aside so each callback starts with a clear indicator, and put back after.
#[cold]
#[inline(never)]
fn notify(current: *mut Context) {
    let ctx: *mut PyObject = if current.is_null() { values::none() } else { current.cast() };
    let (saved_ty, saved_value, saved_tb) = errors::fetch_raw();
    let mut bits = ACTIVE.load(Ordering::Acquire);
    let mut i = 0;
    while bits != 0 {
        if bits & 1 != 0 {
            let f = SLOTS[i].load(Ordering::Acquire);
            if f != 0 {
                // SAFETY: only `add` stores non-zero values, each a callback
                // of this type.
                let cb: unsafe extern "C" fn(PyContextEvent, *mut PyObject) -> c_int = unsafe { std::mem::transmute(f) };
                // SAFETY: `ctx` is the thread's current context (the thread
                // holds a reference) or None, alive for the call.
                let status = unsafe { cb(PyContextEvent::Py_CONTEXT_SWITCHED, ctx) };
                if status < 0 || !errors::is_empty() {
                    report_unraisable(ctx);
                }
            }
        }
        i += 1;
        bits >>= 1;
    }
    // SAFETY: the references fetched above go back to the indicator.
    unsafe { errors::restore_raw(saved_ty, saved_value, saved_tb) };
}

/// Writes what CPython's default unraisable hook writes for a failed
/// watcher, then clears the error:
/// `Exception ignored in Py_CONTEXT_SWITCHED watcher callback for <ctx>:`
/// and `<Type>: <message>`.
fn report_unraisable(ctx: *mut PyObject) {
    let (ty, value, tb) = errors::fetch_raw();
    let mut text = String::new();
    // SAFETY: `ctx` is alive (see `notify`); the fetched references are
    // ours until released below.
    unsafe {
        use std::fmt::Write as _;
        let _ = writeln!(text, "Exception ignored in Py_CONTEXT_SWITCHED watcher callback for {}:", Repr(&*ctx));
        let type_name = if ty.is_null() {
            "SystemError".to_owned()
        } else if errors::is_exception_type(ty) {
            (*ty.cast::<crate::object::PyTypeObject>()).name().to_owned()
        } else {
            Repr(&*ty).to_string()
        };
        let message = if ty.is_null() && value.is_null() {
            Some("error return without exception set".to_owned())
        } else if value.is_null() {
            None
        } else if let Some(s) = values::str_text(&*value) {
            Some(s.to_owned())
        } else {
            Some(Repr(&*value).to_string())
        };
        match message {
            Some(m) if !m.is_empty() => {
                let _ = writeln!(text, "{type_name}: {m}");
            }
            _ => {
                let _ = writeln!(text, "{type_name}");
            }
        }
        errors::restore_raw(ty, value, tb);
    }
    errors::clear();
    let _ = std::io::stderr().write_all(text.as_bytes());
}

