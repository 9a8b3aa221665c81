//! Context variables and tokens: `PyContextVar_New`, `Get`, `Set`, `Reset`.
//!
//! Each variable gets a unique 64-bit hash from a bijective mix of a global
//! counter, so map shapes never depend on addresses or hash seeds and two
//! variables never collide. Set builds its token before it changes anything,
//! and Reset builds the new map before it spends the token, so a failure
//! (MemoryError) leaves the variable and the token as they were.

use std::ffi::CStr;
use std::fmt;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::context::{self, Context};
use crate::errors::{Exc, PyErr};
use crate::object::{dealloc_entry, new_object, Owned, PyLayout, PyObject, PyTypeObject, TYPE_TYPE};
use crate::values::{self, Str};

/// A context variable.
#[repr(C)]
pub struct ContextVar {
    ob_base: PyObject,
    hash: u64,
    name: Owned<Str>,
    default: Option<Owned>,
}

// SAFETY: repr(C), header first.
unsafe impl PyLayout for ContextVar {}

/// A token: what a Set changed, so Reset can restore it.
#[repr(C)]
pub struct Token {
    ob_base: PyObject,
    ctx: Owned<Context>,
    var: Owned<ContextVar>,
    /// The value before the Set, or `None` for "missing".
    old: Option<Owned>,
    used: AtomicBool,
}

// SAFETY: repr(C), header first.
unsafe impl PyLayout for Token {}

/// The ContextVar type (`_contextvars.ContextVar`).
#[unsafe(no_mangle)]
pub static mut PyContextVar_Type: PyTypeObject = PyTypeObject::new(
    &raw mut TYPE_TYPE,
    c"_contextvars.ContextVar",
    size_of::<ContextVar>(),
    Some(dealloc_entry),
    ptr::null_mut(),
);

/// The Token type (`_contextvars.Token`).
#[unsafe(no_mangle)]
pub static mut PyContextToken_Type: PyTypeObject = PyTypeObject::new(
    &raw mut TYPE_TYPE,
    c"_contextvars.Token",
    size_of::<Token>(),
    Some(dealloc_entry),
    ptr::null_mut(),
);

pub(crate) fn var_type() -> *mut PyTypeObject {
    &raw mut PyContextVar_Type
}

pub(crate) fn token_type() -> *mut PyTypeObject {
    &raw mut PyContextToken_Type
}

/// splitmix64's finaliser: a bijection on u64, so distinct counters give
/// distinct, well-spread hashes.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

static NEXT_VAR_ID: AtomicU64 = AtomicU64::new(0);

/// The hash of a map key (always a ContextVar).
pub(crate) fn var_hash_of(key: *mut PyObject) -> u64 {
    // SAFETY: map keys are live ContextVars (the map owns a reference).
    unsafe { (*key.cast::<ContextVar>()).hash }
}

impl Token {
    /// The variable whose Set made the token.
    pub(crate) fn var(&self) -> &ContextVar {
        &self.var
    }

    /// The value before the Set, or `None` if the variable had none.
    pub(crate) fn old_value(&self) -> Option<&PyObject> {
        self.old.as_deref()
    }

    /// Visits the references the token holds: its context, variable and
    /// old value.
    pub(crate) fn traverse(&self, visit: &mut dyn FnMut(&PyObject)) {
        visit(self.ctx.object());
        visit(self.var.object());
        if let Some(old) = &self.old {
            visit(old.object());
        }
    }
}

impl ContextVar {
    /// Visits the references the variable holds: its name and default.
    pub(crate) fn traverse(&self, visit: &mut dyn FnMut(&PyObject)) {
        visit(self.name.object());
        if let Some(d) = &self.default {
            visit(d.object());
        }
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.ob_base.as_ptr()
    }

    /// The variable's map hash.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The name (a str object).
    pub(crate) fn name(&self) -> &PyObject {
        self.name.object()
    }

    /// The default, if any.
    pub(crate) fn default(&self) -> Option<&PyObject> {
        self.default.as_deref()
    }
}

/// `PyContextVar_New`: the name is decoded as strict UTF-8.
pub(crate) fn new_var(name: &CStr, default: Option<&PyObject>) -> Result<Owned<ContextVar>, PyErr> {
    let name = values::new_str(name.to_bytes())?;
    let id = NEXT_VAR_ID.fetch_add(1, Ordering::Relaxed);
    new_object(ContextVar {
        ob_base: PyObject::new(var_type()),
        hash: mix(id),
        name,
        default: default.map(Owned::from_ref),
    })
}

/// `PyContextVar_Get`: the value in the current context, else `default`,
/// else the variable's default, else nothing (a new reference in each case).
/// Never creates the base context; allocates nothing.
#[inline]
pub(crate) fn get(var: &ContextVar, default: Option<&PyObject>) -> Option<Owned> {
    if let Some(ctx) = context::current() {
        if let Some(v) = ctx.owner_map().get(var.as_ptr(), var.hash) {
            // SAFETY: the current map holds a reference to `v`.
            return Some(Owned::from_ref(unsafe { &*v }));
        }
    }
    default.or(var.default()).map(Owned::from_ref)
}

/// `PyContextVar_Set`.
pub(crate) fn set(var: &ContextVar, value: &PyObject) -> Result<Owned<Token>, PyErr> {
    let ctx = context::current_or_create()?;
    let map = ctx.owner_map();
    let old = map.get(var.as_ptr(), var.hash);
    // The token first: if anything below fails, nothing has changed. Its old
    // value is filled in below, once we know whose reference it gets.
    let mut token = new_object(Token {
        ob_base: PyObject::new(token_type()),
        ctx: Owned::from_ref(ctx),
        var: Owned::from_ref(var),
        old: None,
        used: AtomicBool::new(false),
    })?;
    // SAFETY: the token was just made; no one else can reach it yet.
    let token_old = unsafe { &mut token.get_mut_unshared().old };
    if old.is_some() {
        if let Some(replaced) = ctx.replace_value_in_place(var.as_ptr(), var.hash, value.as_ptr()) {
            // The map's reference to the old value moves into the token.
            *token_old = Some(replaced);
            return Ok(token);
        }
    }
    // SAFETY: the map holds a reference to the old value.
    *token_old = old.map(|v| Owned::from_ref(unsafe { &*v }));
    if ctx.grow_delta_in_place(var.as_ptr(), var.hash, value.as_ptr())? {
        return Ok(token);
    }
    // Borrowed afresh: the attempt above stored the (unchanged) map back.
    let new_map = ctx.owner_map().insert(var.as_ptr(), var.hash, value.as_ptr())?;
    ctx.replace_map(new_map);
    Ok(token)
}

/// `PyContextVar_Reset`, with CPython's checks in CPython's order.
pub(crate) fn reset(var: &ContextVar, token: &Token) -> Result<(), PyErr> {
    if token.used.load(Ordering::Acquire) {
        return Err(PyErr::format(Exc::Runtime, format_args!("{} has already been used once", TokenRepr(token))));
    }
    if !ptr::eq(&*token.var, var) {
        return Err(PyErr::format(
            Exc::Value,
            format_args!("{} was created by a different ContextVar", TokenRepr(token)),
        ));
    }
    let ctx = context::current_or_create()?;
    if !ptr::eq(&*token.ctx, ctx) {
        return Err(PyErr::format(Exc::Value, format_args!("{} was created in a different Context", TokenRepr(token))));
    }
    if let Some(old) = &token.old {
        if let Some(replaced) = ctx.replace_value_in_place(var.as_ptr(), var.hash, old.as_ptr()) {
            // Spent before the replaced value is released, so a destructor
            // that runs then sees the token used.
            token.used.store(true, Ordering::Release);
            drop(replaced);
            return Ok(());
        }
    }
    let map = ctx.owner_map();
    let new_map = match &token.old {
        Some(old) => map.insert(var.as_ptr(), var.hash, old.as_ptr())?,
        None => match map.remove(var.as_ptr(), var.hash)? {
            Some(m) => m,
            // Unreachable through the C API (CPython's S5), kept as CPython has it.
            None => return Err(PyErr::with_value(Exc::Lookup, Owned::from_ref(&var.ob_base))),
        },
    };
    // Only the thread whose current context is token.ctx gets here, and only
    // one thread has a given context current, so this cannot race; the
    // exchange keeps "used once" true even if it could.
    if token.used.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(PyErr::format(Exc::Runtime, format_args!("{} has already been used once", TokenRepr(token))));
    }
    ctx.replace_map(new_map);
    Ok(())
}

struct TokenRepr<'a>(&'a Token);

impl fmt::Display for TokenRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_repr(f, &self.0.ob_base, 0)
    }
}

/// `repr()` of a ContextVar or Token, as CPython 3.11 writes it.
pub(crate) fn write_repr(w: &mut dyn fmt::Write, o: &PyObject, depth: u32) -> fmt::Result {
    let p = o.as_ptr();
    if o.ty() == var_type() {
        // SAFETY: the type says this is a ContextVar.
        let var = unsafe { &*p.cast::<ContextVar>() };
        w.write_str("<ContextVar name=")?;
        values::write_repr(w, var.name(), depth + 1)?;
        if let Some(d) = var.default() {
            w.write_str(" default=")?;
            values::write_repr(w, d, depth + 1)?;
        }
        write!(w, " at {p:p}>")
    } else {
        // SAFETY: callers pass only ContextVars and Tokens.
        let token = unsafe { &*p.cast::<Token>() };
        w.write_str(if token.used.load(Ordering::Relaxed) { "<Token used var=" } else { "<Token var=" })?;
        values::write_repr(w, &token.var.ob_base, depth + 1)?;
        write!(w, " at {p:p}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::traverse;
    use crate::values::long_from;

    fn referents(o: &PyObject) -> Vec<*mut PyObject> {
        let mut seen = Vec::new();
        traverse(o, &mut |r| seen.push(r.as_ptr()));
        seen
    }

    /// Every container type enumerates exactly the references it holds.
    #[test]
    fn containers_enumerate_their_references() {
        let default = long_from(5000).unwrap();
        let var = new_var(c"v", Some(default.object())).unwrap();
        assert_eq!(referents(var.object()), vec![var.name().as_ptr(), default.as_ptr()]);

        let ctx = crate::context::new_context().unwrap();
        crate::context::current_or_create().unwrap(); // a base context to return to
        crate::context::enter(&ctx).unwrap();
        let value = long_from(6000).unwrap();
        let token = set(&var, value.object()).unwrap();
        let second = set(&var, default.object()).unwrap();
        let ctx_refs = referents(ctx.object());
        assert_eq!(ctx_refs.len(), 3, "var, value, previous context");
        assert_eq!(&ctx_refs[..2], &[var.as_ptr(), default.as_ptr()]);
        assert_eq!(referents(second.object()), vec![ctx.as_ptr(), var.as_ptr(), value.as_ptr()]);
        assert_eq!(referents(token.object()), vec![ctx.as_ptr(), var.as_ptr()], "old value missing");
        crate::context::exit(&ctx).unwrap();
        assert_eq!(referents(ctx.object()).len(), 2, "no previous context once exited");
        assert!(referents(value.object()).is_empty());
    }
}
