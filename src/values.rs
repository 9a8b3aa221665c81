//! The values the API needs: None, int, str and capsule objects, and the
//! `repr()` used inside error messages.
//!
//! Only what the C API uses is here: ints are C longs (CPython's cache of
//! -5..256 included, as immortal statics), strs are immutable UTF-8 decoded
//! strictly with CPython's error messages, capsules carry a C pointer and a
//! destructor that runs exactly once when the capsule dies.

use std::ffi::{c_char, c_long, c_void, CStr};
use std::fmt;
use std::ptr::{self, NonNull};

use crate::errors::{Exc, PyErr};
use crate::object::{
    dealloc_entry, new_object, free_object, Owned, PyLayout, PyObject, PyTypeObject, TYPE_TYPE,
};

// ---------------------------------------------------------------- None

static mut NONE_TYPE: PyTypeObject =
    PyTypeObject::new(&raw mut TYPE_TYPE, c"NoneType", size_of::<PyObject>(), None, ptr::null_mut());

/// The `None` object; C code names it `Py_None`. Immortal.
#[unsafe(no_mangle)]
pub static mut _Py_NoneStruct: PyObject = PyObject::immortal(&raw mut NONE_TYPE);

pub(crate) fn none() -> *mut PyObject {
    &raw mut _Py_NoneStruct
}

// ---------------------------------------------------------------- int

/// An int object: a C long.
#[repr(C)]
pub(crate) struct Long {
    ob_base: PyObject,
    value: c_long,
}

// SAFETY: repr(C), header first.
unsafe impl PyLayout for Long {}

/// The `int` type.
#[unsafe(no_mangle)]
pub static mut PyLong_Type: PyTypeObject =
    PyTypeObject::new(&raw mut TYPE_TYPE, c"int", size_of::<Long>(), Some(dealloc_entry), ptr::null_mut());

pub(crate) fn long_type() -> *mut PyTypeObject {
    &raw mut PyLong_Type
}

const SMALL_MIN: c_long = -5;
const SMALL_MAX: c_long = 256;
const SMALL_COUNT: usize = (SMALL_MAX - SMALL_MIN + 1) as usize;

/// CPython's shared small ints: `PyLong_FromLong(7)` is always one object.
static SMALL_INTS: [Long; SMALL_COUNT] = {
    let mut ints = [const { Long { ob_base: PyObject::immortal(&raw mut PyLong_Type), value: 0 } }; SMALL_COUNT];
    let mut i = 0;
    while i < SMALL_COUNT {
        ints[i].value = SMALL_MIN + i as c_long;
        i += 1;
    }
    ints
};

/// `PyLong_FromLong`: a new reference to an int.
pub(crate) fn long_from(value: c_long) -> Result<Owned, PyErr> {
    if (SMALL_MIN..=SMALL_MAX).contains(&value) {
        let small = &SMALL_INTS[(value - SMALL_MIN) as usize];
        return Ok(Owned::from_ref(&small.ob_base));
    }
    Ok(new_object(Long { ob_base: PyObject::new(long_type()), value })?.upcast())
}

/// The value of an int object, or `None` for any other object.
pub(crate) fn long_value(o: &PyObject) -> Option<c_long> {
    if o.ty() != long_type() {
        return None;
    }
    // SAFETY: the type says this is a Long.
    Some(unsafe { (*(o as *const PyObject).cast::<Long>()).value })
}

/// `PyLong_AsLong`: CPython's TypeError for anything but an int.
pub(crate) fn long_as_long(o: &PyObject) -> Result<c_long, PyErr> {
    long_value(o).ok_or_else(|| {
        PyErr::format(Exc::Type, format_args!("'{}' object cannot be interpreted as an integer", o.type_name()))
    })
}

// ---------------------------------------------------------------- str

/// A str object: immutable UTF-8, NUL-terminated, stored inline after the
/// header.
#[repr(C)]
pub(crate) struct Str {
    ob_base: PyObject,
    len: usize,
    data: [u8; 0],
}

// SAFETY: repr(C), header first.
unsafe impl PyLayout for Str {}

/// A statically allocated str with `N - 1` bytes of text and a NUL: constant
/// error messages cost no allocation. Same layout as [`Str`].
#[repr(C)]
pub(crate) struct StaticStr<const N: usize> {
    ob_base: PyObject,
    len: usize,
    data: [u8; N],
}

impl<const N: usize> StaticStr<N> {
    pub(crate) const fn new(text: &str) -> StaticStr<N> {
        let bytes = text.as_bytes();
        assert!(bytes.len() + 1 == N);
        let mut data = [0u8; N];
        let mut i = 0;
        while i < bytes.len() {
            data[i] = bytes[i];
            i += 1;
        }
        StaticStr { ob_base: PyObject::immortal(&raw mut PyUnicode_Type), len: bytes.len(), data }
    }

    pub(crate) const fn object(&'static self) -> &'static PyObject {
        &self.ob_base
    }
}

/// A `&'static PyObject` str with constant text, allocated statically.
macro_rules! static_str {
    ($text:expr) => {{
        const TEXT: &str = $text;
        static S: $crate::values::StaticStr<{ TEXT.len() + 1 }> = $crate::values::StaticStr::new(TEXT);
        S.object()
    }};
}
pub(crate) use static_str;

/// The `str` type.
#[unsafe(no_mangle)]
pub static mut PyUnicode_Type: PyTypeObject =
    PyTypeObject::new(&raw mut TYPE_TYPE, c"str", 0, Some(dealloc_entry), ptr::null_mut());

pub(crate) fn str_type() -> *mut PyTypeObject {
    &raw mut PyUnicode_Type
}

fn str_layout(len: usize) -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(size_of::<Str>() + len + 1, align_of::<Str>())
        .expect("str size fits in isize")
}

/// A new str from bytes already known to be valid UTF-8.
pub(crate) fn new_str_from_valid_utf8(bytes: &[u8]) -> Result<Owned<Str>, PyErr> {
    let mem = crate::alloc::allocate(str_layout(bytes.len())).ok_or_else(PyErr::no_memory)?;
    let p = mem.cast::<Str>().as_ptr();
    // SAFETY: fresh allocation sized for the header, the text and a NUL.
    unsafe {
        p.write(Str { ob_base: PyObject::new(str_type()), len: bytes.len(), data: [] });
        let data = p.cast::<u8>().add(size_of::<Str>());
        ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        *data.add(bytes.len()) = 0;
        crate::object::count_new(str_type());
        Ok(Owned::from_owned(NonNull::new_unchecked(p)))
    }
}

/// `PyUnicode_FromString`: strict UTF-8, with CPython's UnicodeDecodeError.
pub(crate) fn new_str(bytes: &[u8]) -> Result<Owned<Str>, PyErr> {
    match decode_utf8(bytes) {
        Ok(()) => new_str_from_valid_utf8(bytes),
        Err(e) => Err(e.into_error(bytes)),
    }
}

/// Frees a dead str.
///
/// # Safety
/// `o` must be a dead heap str.
pub(crate) unsafe fn free_str(o: *mut PyObject) {
    // SAFETY: per the caller; the length gives the allocation's layout.
    unsafe {
        let len = (*o.cast::<Str>()).len;
        crate::alloc::free(NonNull::new_unchecked(o.cast()), str_layout(len));
    }
}

/// The text of a str object, or `None` for any other object.
pub(crate) fn str_text(o: &PyObject) -> Option<&str> {
    str_cstr(o).map(|c| {
        // SAFETY: strs hold valid UTF-8 (checked at creation).
        unsafe { std::str::from_utf8_unchecked(c.to_bytes()) }
    })
}

/// The NUL-terminated text of a str object (`PyUnicode_AsUTF8`).
pub(crate) fn str_cstr(o: &PyObject) -> Option<&CStr> {
    if o.ty() != str_type() {
        return None;
    }
    let p = (o as *const PyObject).cast::<Str>();
    // SAFETY: the type says this is a Str (heap or static, same layout) whose
    // `len` bytes of text are followed by a NUL and contain no NUL (built
    // from C strings or constants).
    unsafe {
        let data = p.cast::<u8>().add(size_of::<Str>());
        Some(CStr::from_bytes_with_nul_unchecked(std::slice::from_raw_parts(data, (*p).len + 1)))
    }
}

/// Where strict UTF-8 decoding failed, as CPython reports it.
struct DecodeError {
    start: usize,
    end: usize,
    reason: &'static str,
}

impl DecodeError {
    fn into_error(self, bytes: &[u8]) -> PyErr {
        if self.end - self.start == 1 {
            PyErr::format(
                Exc::UnicodeDecode,
                format_args!(
                    "'utf-8' codec can't decode byte 0x{:02x} in position {}: {}",
                    bytes[self.start], self.start, self.reason
                ),
            )
        } else {
            PyErr::format(
                Exc::UnicodeDecode,
                format_args!(
                    "'utf-8' codec can't decode bytes in position {}-{}: {}",
                    self.start,
                    self.end - 1,
                    self.reason
                ),
            )
        }
    }
}

/// Validates UTF-8 the way CPython's decoder does, reporting the same error
/// span and reason: an invalid lead byte is one byte; a bad continuation
/// covers the valid bytes before it; a sequence cut short by the end of the
/// input covers everything to the end.
fn decode_utf8(b: &[u8]) -> Result<(), DecodeError> {
    let n = b.len();
    let mut i = 0;
    while i < n {
        let lead = b[i];
        if lead < 0x80 {
            i += 1;
            continue;
        }
        let (len, lo, hi) = match lead {
            0xC2..=0xDF => (2, 0x80, 0xBF),
            0xE0 => (3, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
            0xED => (3, 0x80, 0x9F),
            0xF0 => (4, 0x90, 0xBF),
            0xF1..=0xF3 => (4, 0x80, 0xBF),
            0xF4 => (4, 0x80, 0x8F),
            _ => return Err(DecodeError { start: i, end: i + 1, reason: "invalid start byte" }),
        };
        for k in 1..len {
            if i + k >= n {
                return Err(DecodeError { start: i, end: n, reason: "unexpected end of data" });
            }
            let (min, max) = if k == 1 { (lo, hi) } else { (0x80, 0xBF) };
            if !(min..=max).contains(&b[i + k]) {
                return Err(DecodeError { start: i, end: i + k, reason: "invalid continuation byte" });
            }
        }
        i += len;
    }
    Ok(())
}

/// Whether CPython's `str.isprintable()` accepts the character.
fn is_printable(c: char) -> bool {
    let c = c as u32;
    crate::unicode_printable::NON_PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

/// Writes Python's `repr()` of a str: quotes chosen as Python chooses them,
/// escapes for backslash, the quote, \t \n \r, and non-printable characters.
fn write_str_repr(w: &mut dyn fmt::Write, text: &str) -> fmt::Result {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    w.write_char(quote)?;
    for c in text.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '\t' => w.write_str("\\t")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            c if c == quote => {
                w.write_char('\\')?;
                w.write_char(c)?;
            }
            c if (c as u32) < 0x7F && (c as u32) >= 0x20 => w.write_char(c)?,
            c if (c as u32) >= 0x80 && is_printable(c) => w.write_char(c)?,
            c if (c as u32) <= 0xFF => write!(w, "\\x{:02x}", c as u32)?,
            c if (c as u32) <= 0xFFFF => write!(w, "\\u{:04x}", c as u32)?,
            c => write!(w, "\\U{:08x}", c as u32)?,
        }
    }
    w.write_char(quote)
}

// ---------------------------------------------------------------- capsule

/// `PyCapsule_Destructor`: called with the capsule when it dies.
#[allow(non_camel_case_types)]
pub type PyCapsule_Destructor = Option<unsafe extern "C" fn(*mut PyObject)>;

/// A capsule: a C pointer, a name and a destructor.
#[repr(C)]
pub(crate) struct Capsule {
    ob_base: PyObject,
    pointer: *mut c_void,
    name: *const c_char,
    destructor: PyCapsule_Destructor,
}

// SAFETY: repr(C), header first.
unsafe impl PyLayout for Capsule {}

/// The capsule type.
#[unsafe(no_mangle)]
pub static mut PyCapsule_Type: PyTypeObject = PyTypeObject::new(
    &raw mut TYPE_TYPE,
    c"PyCapsule",
    size_of::<Capsule>(),
    Some(dealloc_entry),
    ptr::null_mut(),
);

pub(crate) fn capsule_type() -> *mut PyTypeObject {
    &raw mut PyCapsule_Type
}

/// `PyCapsule_New`. The name is not copied, as in CPython.
pub(crate) fn new_capsule(
    pointer: *mut c_void,
    name: *const c_char,
    destructor: PyCapsule_Destructor,
) -> Result<Owned, PyErr> {
    if pointer.is_null() {
        return Err(PyErr::constant(Exc::Value, static_str!("PyCapsule_New called with null pointer")));
    }
    Ok(new_object(Capsule { ob_base: PyObject::new(capsule_type()), pointer, name, destructor })?.upcast())
}

fn capsule_fields(o: &PyObject) -> Option<&Capsule> {
    if o.ty() != capsule_type() {
        return None;
    }
    // SAFETY: the type says this is a Capsule.
    Some(unsafe { &*(o as *const PyObject).cast::<Capsule>() })
}

/// `PyCapsule_GetPointer`: the pointer if the names match (both NULL, or
/// equal strings), with CPython's ValueErrors otherwise. NULL is an invalid
/// capsule, as in CPython.
pub(crate) fn capsule_pointer(o: Option<&PyObject>, name: *const c_char) -> Result<*mut c_void, PyErr> {
    let Some(cap) = o.and_then(capsule_fields) else {
        return Err(PyErr::constant(
            Exc::Value,
            static_str!("PyCapsule_GetPointer called with invalid PyCapsule object"),
        ));
    };
    let matches = if cap.name.is_null() || name.is_null() {
        cap.name == name
    } else {
        // SAFETY: both are NUL-terminated C strings supplied by the user.
        unsafe { CStr::from_ptr(cap.name) == CStr::from_ptr(name) }
    };
    if !matches {
        return Err(PyErr::constant(Exc::Value, static_str!("PyCapsule_GetPointer called with incorrect name")));
    }
    Ok(cap.pointer)
}

/// Destroys a dead capsule: its destructor runs, then the memory is freed.
///
/// # Safety
/// `o` must be a dead capsule.
pub(crate) unsafe fn free_capsule(o: *mut PyObject) {
    // SAFETY: per the caller; the destructor gets the capsule, still intact,
    // exactly once.
    unsafe {
        if let Some(d) = (*o.cast::<Capsule>()).destructor {
            d(o);
        }
        free_object::<Capsule>(o);
    }
}

// ---------------------------------------------------------------- repr

/// How deep reprs nest before `...` stands in (a var whose default is a
/// token whose var has a token default...): CPython would raise
/// RecursionError; a message must never overflow the stack.
const MAX_REPR_DEPTH: u32 = 64;

/// `repr()` of any object, as a `Display`.
pub(crate) struct Repr<'a>(pub &'a PyObject);

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_repr(f, self.0, 0)
    }
}

/// Writes `repr(o)` as CPython 3.11 does for the objects of this library.
pub(crate) fn write_repr(w: &mut dyn fmt::Write, o: &PyObject, depth: u32) -> fmt::Result {
    if depth > MAX_REPR_DEPTH {
        return w.write_str("...");
    }
    let ty = o.ty();
    if let Some(v) = long_value(o) {
        write!(w, "{v}")
    } else if let Some(text) = str_text(o) {
        write_str_repr(w, text)
    } else if o.as_ptr() == none() {
        w.write_str("None")
    } else if o.as_ptr() == crate::views::token_missing() {
        w.write_str("<Token.MISSING>")
    } else if ty == crate::context::context_type() {
        write!(w, "<_contextvars.Context object at {:p}>", o.as_ptr())
    } else if ty == crate::var::var_type() || ty == crate::var::token_type() {
        crate::var::write_repr(w, o, depth)
    } else if let Some(cap) = capsule_fields(o) {
        if cap.name.is_null() {
            write!(w, "<capsule object NULL at {:p}>", o.as_ptr())
        } else {
            // SAFETY: a capsule's name is a NUL-terminated C string.
            let name = unsafe { CStr::from_ptr(cap.name) }.to_string_lossy();
            write!(w, "<capsule object \"{name}\" at {:p}>", o.as_ptr())
        }
    } else if ty == &raw mut TYPE_TYPE {
        // SAFETY: objects of type `type` are type objects.
        let t = unsafe { &*o.as_ptr().cast::<PyTypeObject>() };
        write!(w, "<class '{}'>", t.name())
    } else {
        write!(w, "<{} object at {:p}>", o.type_name(), o.as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(bytes: &[u8]) -> String {
        new_str(bytes).err().and_then(|e| e.message()).unwrap()
    }

    #[test]
    fn utf8_errors_match_cpython() {
        // Expected texts observed on CPython 3.11.7.
        assert_eq!(msg(b"\xff"), "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte");
        assert_eq!(msg(b"a\x80"), "'utf-8' codec can't decode byte 0x80 in position 1: invalid start byte");
        assert_eq!(msg(b"\xe2\x82"), "'utf-8' codec can't decode bytes in position 0-1: unexpected end of data");
        assert_eq!(msg(b"\xe2\x28\xa1"), "'utf-8' codec can't decode byte 0xe2 in position 0: invalid continuation byte");
        assert_eq!(msg(b"\xe2\x82\x28"), "'utf-8' codec can't decode bytes in position 0-1: invalid continuation byte");
        assert_eq!(msg(b"\xed\xa0\x80"), "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte");
        assert_eq!(msg(b"\xc0\xaf"), "'utf-8' codec can't decode byte 0xc0 in position 0: invalid start byte");
        assert_eq!(msg(b"ab\xf0\x9f\x98"), "'utf-8' codec can't decode bytes in position 2-4: unexpected end of data");
        assert_eq!(msg(b"\xf0\x9f\x98\x28"), "'utf-8' codec can't decode bytes in position 0-2: invalid continuation byte");
        assert_eq!(msg(b"\xc2"), "'utf-8' codec can't decode byte 0xc2 in position 0: unexpected end of data");
        assert!(new_str(b"\xff").err().unwrap().is(Exc::UnicodeDecode));
        assert!(new_str("né😀".as_bytes()).is_ok());
    }

    #[test]
    fn str_repr_matches_cpython() {
        let mut s = String::new();
        write_str_repr(&mut s, "n\u{e9}\n'\"\u{1}").unwrap();
        assert_eq!(s, r#"'né\n\'"\x01'"#);
        s.clear();
        write_str_repr(&mut s, "a\u{a0}\u{85}\u{200b}\u{feff}😀\u{7f}\\").unwrap();
        assert_eq!(s, r"'a\xa0\x85\u200b\ufeff😀\x7f\\'");
        s.clear();
        write_str_repr(&mut s, "d'q").unwrap();
        assert_eq!(s, "\"d'q\"");
    }

    #[test]
    fn small_ints_are_shared() {
        let a = long_from(256).unwrap();
        let b = long_from(256).unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr());
        let c = long_from(257).unwrap();
        let d = long_from(257).unwrap();
        assert_ne!(c.as_ptr(), d.as_ptr());
        assert_eq!(long_value(c.object()), Some(257));
    }
}
