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
}
