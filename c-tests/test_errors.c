/* The per-thread error indicator and the exception hierarchy. */
#include "harness.h"

TEST(fetch_with_nothing_pending_gives_nulls) {
    PyObject *t = Py_None, *v = Py_None, *tb = Py_None;
    PyErr_Fetch(&t, &v, &tb);
    CHECK(t == NULL && v == NULL && tb == NULL);
    CHECK(PyErr_Occurred() == NULL);
}

TEST(set_string_then_fetch_gives_type_and_message) {
    PyErr_SetString(PyExc_KeyError, "the message");
    CHECK(PyErr_Occurred() == PyExc_KeyError);
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    CHECK(PyErr_Occurred() == NULL);
    CHECK(t == PyExc_KeyError);
    CHECK(v != NULL && PyUnicode_Check(v));
    if (v) CHECK_STR("the message", PyUnicode_AsUTF8(v));
    CHECK(tb == NULL);
    PyErr_Restore(t, v, tb);
    CHECK(PyErr_Occurred() == PyExc_KeyError);
    CHECK_ERROR(PyExc_KeyError, "the message");
}

TEST(set_none_has_no_value) {
    PyErr_SetNone(PyExc_RuntimeError);
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    CHECK(t == PyExc_RuntimeError && v == NULL && tb == NULL);
    Py_XDECREF(t);
}

TEST(a_new_error_replaces_the_old) {
    PyErr_SetString(PyExc_ValueError, "first");
    PyErr_SetString(PyExc_TypeError, "second");
    CHECK_ERROR(PyExc_TypeError, "second");
    PyErr_SetString(PyExc_ValueError, "x");
    PyErr_Clear();
    CHECK_NO_ERROR();
    PyErr_Restore(NULL, NULL, NULL);
    CHECK_NO_ERROR();
}

TEST(exception_hierarchy_matches_cpython) {
    CHECK(PyErr_GivenExceptionMatches(PyExc_KeyError, PyExc_LookupError));
    CHECK(PyErr_GivenExceptionMatches(PyExc_KeyError, PyExc_Exception));
    CHECK(PyErr_GivenExceptionMatches(PyExc_KeyError, PyExc_BaseException));
    CHECK(!PyErr_GivenExceptionMatches(PyExc_KeyError, PyExc_ValueError));
    CHECK(PyErr_GivenExceptionMatches(PyExc_UnicodeDecodeError, PyExc_UnicodeError));
    CHECK(PyErr_GivenExceptionMatches(PyExc_UnicodeDecodeError, PyExc_ValueError));
    CHECK(!PyErr_GivenExceptionMatches(PyExc_ValueError, PyExc_UnicodeError));
    CHECK(PyErr_GivenExceptionMatches(PyExc_MemoryError, PyExc_Exception));
    CHECK(PyErr_GivenExceptionMatches(PyExc_SystemError, PyExc_Exception));
    CHECK(PyErr_GivenExceptionMatches(PyExc_TypeError, PyExc_TypeError));
    CHECK(PyErr_GivenExceptionMatches(PyExc_RuntimeError, PyExc_Exception));
    CHECK(!PyErr_GivenExceptionMatches(PyExc_Exception, PyExc_TypeError));
    CHECK(!PyErr_GivenExceptionMatches(NULL, PyExc_TypeError));
    CHECK(!PyErr_GivenExceptionMatches(PyExc_TypeError, NULL));
    CHECK(PyErr_GivenExceptionMatches(Py_None, Py_None));
    PyErr_SetString(PyExc_KeyError, "k");
    CHECK(PyErr_ExceptionMatches(PyExc_LookupError));
    CHECK(!PyErr_ExceptionMatches(PyExc_ValueError));
    PyErr_Clear();
    CHECK(!PyErr_ExceptionMatches(PyExc_Exception)); /* nothing pending */
}

TEST(no_memory_sets_memory_error_and_returns_null) {
    CHECK(PyErr_NoMemory() == NULL);
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    CHECK(t == PyExc_MemoryError && v == NULL);
    Py_XDECREF(t);
}

TEST(bad_internal_call_is_system_error) {
    PyErr_BadInternalCall();
    CHECK_ERROR_SUFFIX(PyExc_SystemError, "bad argument to internal function");
}

TEST(setting_a_non_exception_type_is_system_error) {
    char expected[200];
    PyErr_SetString(Py_None, "x");
    CHECK_ERROR(PyExc_SystemError, "_PyErr_SetObject: exception None is not a BaseException subclass");
    PyObject *n = PyLong_FromLong(5000);
    PyErr_SetNone(n);
    CHECK_ERROR(PyExc_SystemError, "_PyErr_SetObject: exception 5000 is not a BaseException subclass");
    Py_DECREF(n);
    PyErr_SetString((PyObject *)&PyContext_Type, "x");
    snprintf(expected, sizeof expected, "_PyErr_SetObject: exception <class '_contextvars.Context'> is not a BaseException subclass");
    CHECK_ERROR(PyExc_SystemError, expected);
}

TEST(set_string_with_invalid_utf8_raises_the_decode_error) {
    PyErr_SetString(PyExc_KeyError, "\xff");
    CHECK_ERROR(PyExc_UnicodeDecodeError, "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte");
}

TEST(restore_keeps_a_value_without_a_type_and_drops_the_traceback) {
    PyObject *v = PyLong_FromLong(12345), *tb = PyLong_FromLong(777);
    PyErr_Restore(NULL, Py_NewRef(v), NULL);
    CHECK(PyErr_Occurred() == NULL); /* no type: nothing pending... */
    PyObject *t, *got, *gtb;
    PyErr_Fetch(&t, &got, &gtb);
    CHECK(t == NULL && got == v && gtb == NULL); /* ...but the value is kept */
    Py_XDECREF(got);
    PyErr_Restore(Py_NewRef(PyExc_ValueError), NULL, Py_NewRef(tb));
    PyErr_Fetch(&t, &got, &gtb);
    CHECK(t == PyExc_ValueError && got == NULL && gtb == NULL); /* not a traceback: dropped */
    Py_XDECREF(t);
    Py_DECREF(v);
    Py_DECREF(tb);
}


/* An error value whose death is counted: a capsule. */
static int err_freed;
static void err_value_free(PyObject *cap) { (void)cap; err_freed++; }
static PyObject *counted_value(void) { return PyCapsule_New(&err_freed, "err", err_value_free); }
static void restore_counted(PyObject *type) { PyErr_Restore(Py_NewRef(type), counted_value(), NULL); }

TEST(overwriting_or_clearing_an_error_releases_the_old_one) {
    err_freed = 0;
    restore_counted(PyExc_ValueError);
    CHECK(PyErr_Occurred() == PyExc_ValueError);
    CHECK_EQ_LONG(0, err_freed);
    PyErr_SetString(PyExc_TypeError, "second");
    CHECK_EQ_LONG(1, err_freed);
    CHECK_ERROR(PyExc_TypeError, "second");
    restore_counted(PyExc_ValueError);
    PyErr_SetNone(PyExc_KeyError);
    CHECK_EQ_LONG(2, err_freed);
    CHECK(PyErr_ExceptionMatches(PyExc_KeyError));
    restore_counted(PyExc_ValueError);
    CHECK_EQ_LONG(2, err_freed); /* the KeyError had no value */
    restore_counted(PyExc_RuntimeError); /* Restore over a pending error */
    CHECK_EQ_LONG(3, err_freed);
    CHECK(PyErr_NoMemory() == NULL);
    CHECK_EQ_LONG(4, err_freed);
    restore_counted(PyExc_ValueError);
    PyErr_BadInternalCall();
    CHECK_EQ_LONG(5, err_freed);
    CHECK_ERROR_SUFFIX(PyExc_SystemError, "bad argument to internal function");
    restore_counted(PyExc_ValueError);
    PyErr_Clear();
    CHECK_EQ_LONG(6, err_freed);
    CHECK_NO_ERROR();
    restore_counted(PyExc_ValueError);
    PyErr_Restore(NULL, NULL, NULL); /* clears too */
    CHECK_EQ_LONG(7, err_freed);
    CHECK_NO_ERROR();
}

TEST(fetch_and_restore_move_references) {
    err_freed = 0;
    PyObject *v = counted_value();
    CHECK_EQ_LONG(1, Py_REFCNT(v));
    PyErr_Restore(Py_NewRef(PyExc_LookupError), Py_NewRef(v), NULL);
    CHECK_EQ_LONG(2, Py_REFCNT(v)); /* the indicator owns one, stolen */
    CHECK(PyErr_Occurred() == PyExc_LookupError);
    CHECK_EQ_LONG(2, Py_REFCNT(v)); /* Occurred borrows */
    PyObject *t = NULL, *got = NULL, *tb = NULL;
    PyErr_Fetch(&t, &got, &tb);
    CHECK(t == PyExc_LookupError && got == v && tb == NULL);
    CHECK_EQ_LONG(2, Py_REFCNT(v)); /* moved to us, not copied */
    CHECK_NO_ERROR();
    PyErr_Restore(t, got, tb); /* and back */
    CHECK_EQ_LONG(2, Py_REFCNT(v));
    PyErr_Fetch(&t, &got, &tb);
    CHECK(t == PyExc_LookupError && got == v && tb == NULL);
    Py_XDECREF(t);
    Py_XDECREF(got);
    CHECK_EQ_LONG(1, Py_REFCNT(v));
    CHECK_EQ_LONG(0, err_freed);
    Py_DECREF(v);
    CHECK_EQ_LONG(1, err_freed);
}

TEST(occurred_is_the_exact_type_that_was_set) {
    PyObject *types[] = {PyExc_BaseException, PyExc_Exception, PyExc_TypeError, PyExc_ValueError,
                         PyExc_RuntimeError, PyExc_LookupError, PyExc_KeyError, PyExc_SystemError,
                         PyExc_MemoryError, PyExc_UnicodeError, PyExc_UnicodeDecodeError};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        CHECK_NO_ERROR();
        PyErr_SetString(types[i], "m");
        CHECK(PyErr_Occurred() == types[i]);
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        CHECK(t == types[i]);
        CHECK(v != NULL && PyUnicode_Check(v));
        if (v != NULL && PyUnicode_Check(v)) CHECK_STR("m", PyUnicode_AsUTF8(v));
        Py_XDECREF(t); Py_XDECREF(v); Py_XDECREF(tb);
    }
}

/* The whole subclass relation over the eleven exception types. */
TEST(given_exception_matches_over_the_whole_hierarchy) {
    enum { BASE, EXC, TYPE, VALUE, RUNTIME, LOOKUP, KEY, SYSTEM, MEMORY, UNICODE, UDECODE, N };
    PyObject *t[N] = {PyExc_BaseException, PyExc_Exception, PyExc_TypeError, PyExc_ValueError,
                      PyExc_RuntimeError, PyExc_LookupError, PyExc_KeyError, PyExc_SystemError,
                      PyExc_MemoryError, PyExc_UnicodeError, PyExc_UnicodeDecodeError};
    const int parent[N] = {-1, BASE, EXC, EXC, EXC, EXC, LOOKUP, EXC, EXC, VALUE, UNICODE};
    for (int a = 0; a < N; a++) {
        for (int b = 0; b < N; b++) {
            int expected = 0;
            for (int p = a; p >= 0; p = parent[p]) if (p == b) expected = 1;
            int got = PyErr_GivenExceptionMatches(t[a], t[b]);
            if (got != expected) {
                char buf[200];
                snprintf(buf, sizeof buf, "GivenExceptionMatches(%s, %s) == %d", ((PyTypeObject *)t[a])->tp_name,
                         ((PyTypeObject *)t[b])->tp_name, got);
                h_fail(__FILE__, __LINE__, buf);
            }
            PyErr_SetNone(t[a]);
            CHECK_EQ_LONG(expected, PyErr_ExceptionMatches(t[b]));
            CHECK(PyErr_Occurred() == t[a]); /* matching does not clear */
            PyErr_Clear();
        }
        CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches(t[a], NULL));
        CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches(NULL, t[a]));
        CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches(t[a], (PyObject *)&PyLong_Type));
        CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches((PyObject *)&PyLong_Type, t[a]));
        CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches(Py_None, t[a]));
        CHECK_EQ_LONG(0, PyErr_ExceptionMatches(t[a])); /* nothing pending */
    }
    /* Not exception types: only identity matches. */
    CHECK_EQ_LONG(1, PyErr_GivenExceptionMatches((PyObject *)&PyLong_Type, (PyObject *)&PyLong_Type));
    CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches((PyObject *)&PyLong_Type, (PyObject *)&PyUnicode_Type));
    CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches(NULL, NULL));
    PyErr_SetString(PyExc_KeyError, "k");
    CHECK_EQ_LONG(0, PyErr_ExceptionMatches(NULL));
    CHECK_ERROR(PyExc_KeyError, "k");
}

TEST(errors_raised_by_the_api_match_their_bases) {
    /* A real UnicodeDecodeError from the API is a ValueError to callers. */
    CHECK(PyUnicode_FromString("\xc3") == NULL);
    CHECK(PyErr_Occurred() == PyExc_UnicodeDecodeError);
    CHECK(PyErr_ExceptionMatches(PyExc_UnicodeError));
    CHECK(PyErr_ExceptionMatches(PyExc_ValueError));
    CHECK(PyErr_ExceptionMatches(PyExc_Exception));
    CHECK(!PyErr_ExceptionMatches(PyExc_TypeError));
    CHECK_ERROR(PyExc_UnicodeDecodeError, "'utf-8' codec can't decode byte 0xc3 in position 0: unexpected end of data");
    CHECK(PyErr_NoMemory() == NULL);
    CHECK(PyErr_ExceptionMatches(PyExc_Exception));
    CHECK(!PyErr_ExceptionMatches(PyExc_SystemError));
    CHECK_ERROR(PyExc_MemoryError, NULL);
    PyErr_BadInternalCall();
    CHECK(PyErr_ExceptionMatches(PyExc_SystemError));
    CHECK(!PyErr_ExceptionMatches(PyExc_MemoryError));
    CHECK_ERROR_SUFFIX(PyExc_SystemError, "bad argument to internal function");
}

TEST(bad_internal_call_message) {
    PyErr_BadInternalCall();
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    CHECK(t == PyExc_SystemError);
    CHECK(v != NULL && PyUnicode_Check(v));
    if (v != NULL && PyUnicode_Check(v)) {
        const char *m = PyUnicode_AsUTF8(v);
#if LIBRARY_ONLY
        CHECK_STR("bad argument to internal function", m);
#else
        /* "<file>:<line>: bad argument to internal function": CPython's macro. */
        CHECK(strstr(m, ": bad argument to internal function") != NULL);
#endif
    }
    Py_XDECREF(t); Py_XDECREF(v); Py_XDECREF(tb);
}

void suite_errors(void) {
    RUN(restore_keeps_a_value_without_a_type_and_drops_the_traceback);
    RUN(fetch_with_nothing_pending_gives_nulls);
    RUN(set_string_then_fetch_gives_type_and_message);
    RUN(set_none_has_no_value);
    RUN(a_new_error_replaces_the_old);
    RUN(exception_hierarchy_matches_cpython);
    RUN(no_memory_sets_memory_error_and_returns_null);
    RUN(bad_internal_call_is_system_error);
    RUN(setting_a_non_exception_type_is_system_error);
    RUN(set_string_with_invalid_utf8_raises_the_decode_error);
    RUN(overwriting_or_clearing_an_error_releases_the_old_one);
    RUN(fetch_and_restore_move_references);
    RUN(occurred_is_the_exact_type_that_was_set);
    RUN(given_exception_matches_over_the_whole_hierarchy);
    RUN(errors_raised_by_the_api_match_their_bases);
    RUN(bad_internal_call_message);
}
