/* shim.h: lets one test source build against CPython 3.11 (<Python.h>, with
 * -DUSE_CPYTHON) or against this library ("contextvars.h"). Tests use only the
 * API the two have in common; what only the library promises (NULL arguments,
 * threads, S1) sits inside `#if LIBRARY_ONLY`. */
#ifndef CONTEXTVARS_TEST_SHIM_H
#define CONTEXTVARS_TEST_SHIM_H

/* POSIX (strdup, pthreads) on top of strict C11. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#ifdef USE_CPYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define LIBRARY_ONLY 0
#define TARGET_NAME "CPython " PY_VERSION
#else
#include "contextvars.h"
#define LIBRARY_ONLY 1
#define TARGET_NAME "libcontextvars"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Start the target: CPython needs an interpreter, the library needs nothing. */
static inline void shim_init(void) {
#ifdef USE_CPYTHON
    Py_Initialize();
#endif
}

/* The message carried by a fetched exception value, as a malloc'd string
 * (NULL when there is no value). In 3.11 the value is the message str for
 * every error of this API but UnicodeDecodeError, whose value CPython
 * normalises into an instance: str() gives its message there. */
static inline char *shim_error_message(PyObject *value) {
    if (value == NULL) return NULL;
#ifdef USE_CPYTHON
    PyObject *s = PyUnicode_Check(value) ? (Py_INCREF(value), value) : PyObject_Str(value);
    if (s == NULL) { PyErr_Clear(); return NULL; }
    char *out = strdup(PyUnicode_AsUTF8(s));
    Py_DECREF(s);
    return out;
#else
    const char *u = PyUnicode_AsUTF8(value);
    if (u == NULL) { PyErr_Clear(); return NULL; }
    return strdup(u);
#endif
}

#endif
