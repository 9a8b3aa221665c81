/* Values: ints, strs, capsules and their checks. */
#include "harness.h"
#include <limits.h>

TEST(int_round_trip) {
    long cases[] = {0, 1, -1, 256, 257, -5, -6, 1000000, LONG_MAX, LONG_MIN};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        PyObject *o = PyLong_FromLong(cases[i]);
        CHECK(PyLong_Check(o));
        CHECK(PyLong_AsLong(o) == cases[i]);
        CHECK_NO_ERROR();
        Py_DECREF(o);
    }
}

TEST(as_long_of_a_non_int_is_type_error) {
    PyObject *ctx = PyContext_New(), *var = PyContextVar_New("v", NULL), *s = PyUnicode_FromString("x");
    PyObject *cap = PyCapsule_New(&ctx, "c", NULL);
    PyObject *tok = PyContextVar_Set(var, Py_None);
    struct { PyObject *o; const char *msg; } cases[] = {
        {Py_None, "'NoneType' object cannot be interpreted as an integer"},
        {s, "'str' object cannot be interpreted as an integer"},
        {ctx, "'_contextvars.Context' object cannot be interpreted as an integer"},
        {var, "'_contextvars.ContextVar' object cannot be interpreted as an integer"},
        {tok, "'_contextvars.Token' object cannot be interpreted as an integer"},
        {cap, "'PyCapsule' object cannot be interpreted as an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_LONG(-1, PyLong_AsLong(cases[i].o));
        CHECK_ERROR(PyExc_TypeError, cases[i].msg);
    }
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, tok));
    Py_DECREF(tok); Py_DECREF(ctx); Py_DECREF(var); Py_DECREF(s); Py_DECREF(cap);
}

TEST(str_round_trip) {
    const char *cases[] = {"", "ascii", "n\xc3\xa9", "\xf0\x9f\x98\x80 emoji", "tab\there"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        PyObject *o = PyUnicode_FromString(cases[i]);
        CHECK(PyUnicode_Check(o));
        CHECK_STR(cases[i], PyUnicode_AsUTF8(o));
        Py_DECREF(o);
    }
}

TEST(str_rejects_invalid_utf8_with_cpythons_messages) {
    struct { const char *in, *msg; } cases[] = {
        {"\xff", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"},
        {"ok\x80", "'utf-8' codec can't decode byte 0x80 in position 2: invalid start byte"},
        {"\xe2\x82", "'utf-8' codec can't decode bytes in position 0-1: unexpected end of data"},
        {"\xe2\x82\x28", "'utf-8' codec can't decode bytes in position 0-1: invalid continuation byte"},
        {"\xed\xa0\x80", "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte"},
        {"\xc0\xaf", "'utf-8' codec can't decode byte 0xc0 in position 0: invalid start byte"},
        {"\xf4\x90\x80\x80", "'utf-8' codec can't decode byte 0xf4 in position 0: invalid continuation byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(PyUnicode_FromString(cases[i].in) == NULL);
        CHECK(PyErr_ExceptionMatches(PyExc_ValueError));
        CHECK_ERROR(PyExc_UnicodeDecodeError, cases[i].msg);
    }
}

TEST(as_utf8_of_a_non_str_is_type_error) {
    PyObject *i = PyLong_FromLong(3);
    CHECK(PyUnicode_AsUTF8(i) == NULL);
    CHECK_ERROR(PyExc_TypeError, "bad argument type for built-in operation");
    Py_DECREF(i);
}

static int destroyed;
static PyObject *destroyed_with;
static void capsule_destructor(PyObject *cap) {
    destroyed++;
    destroyed_with = cap;
    CHECK(PyCapsule_GetPointer(cap, "name") == &destroyed); /* still readable */
}

TEST(capsule_pointer_name_and_destructor) {
    destroyed = 0;
    PyObject *cap = PyCapsule_New(&destroyed, "name", capsule_destructor);
    CHECK(PyCapsule_CheckExact(cap));
    CHECK(PyCapsule_GetPointer(cap, "name") == &destroyed);
    CHECK(PyCapsule_GetPointer(cap, "other") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with incorrect name");
    CHECK(PyCapsule_GetPointer(cap, NULL) == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with incorrect name");
    Py_INCREF(cap);
    Py_DECREF(cap);
    CHECK_EQ_LONG(0, destroyed);
    PyObject *expect = cap;
    Py_DECREF(cap);
    CHECK_EQ_LONG(1, destroyed);
    CHECK(destroyed_with == expect);
}

TEST(capsule_errors) {
    CHECK(PyCapsule_New(NULL, "n", NULL) == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_New called with null pointer");
    PyObject *unnamed = PyCapsule_New(&destroyed, NULL, NULL);
    CHECK(PyCapsule_GetPointer(unnamed, NULL) == &destroyed);
    CHECK(PyCapsule_GetPointer(unnamed, "x") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with incorrect name");
    CHECK(PyCapsule_GetPointer(Py_None, "x") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with invalid PyCapsule object");
    Py_DECREF(unnamed);
}

TEST(checks_on_each_kind) {
    PyObject *i = PyLong_FromLong(1000), *s = PyUnicode_FromString("s"), *c = PyContext_New();
    PyObject *cap = PyCapsule_New(&destroyed, NULL, NULL);
    PyObject *objs[] = {i, s, c, cap, Py_None};
    for (int k = 0; k < 5; k++) {
        CHECK_EQ_LONG(k == 0, PyLong_Check(objs[k]) != 0);
        CHECK_EQ_LONG(k == 1, PyUnicode_Check(objs[k]) != 0);
        CHECK_EQ_LONG(k == 3, PyCapsule_CheckExact(objs[k]) != 0);
        CHECK_EQ_LONG(k == 2, PyContext_CheckExact(objs[k]) != 0);
    }
    Py_DECREF(i); Py_DECREF(s); Py_DECREF(c); Py_DECREF(cap);
}

void suite_values(void) {
    RUN(int_round_trip);
    RUN(as_long_of_a_non_int_is_type_error);
    RUN(str_round_trip);
    RUN(str_rejects_invalid_utf8_with_cpythons_messages);
    RUN(as_utf8_of_a_non_str_is_type_error);
    RUN(capsule_pointer_name_and_destructor);
    RUN(capsule_errors);
    RUN(checks_on_each_kind);
}
