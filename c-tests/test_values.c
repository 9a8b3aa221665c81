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


TEST(small_ints_minus_5_to_256_are_shared) {
    for (long v = -5; v <= 256; v++) {
        PyObject *a = PyLong_FromLong(v), *b = PyLong_FromLong(v);
        CHECK(a != NULL && a == b);
        CHECK_EQ_LONG(v, PyLong_AsLong(a));
        Py_DECREF(a); Py_DECREF(b);
    }
    /* Outside the cache the values still round-trip, object by object. */
    long outside[] = {-6, 257, -1000, 100000};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        PyObject *a = PyLong_FromLong(outside[i]), *b = PyLong_FromLong(outside[i]);
        CHECK_EQ_LONG(outside[i], PyLong_AsLong(a));
        CHECK_EQ_LONG(outside[i], PyLong_AsLong(b));
        CHECK_EQ_LONG(1, Py_REFCNT(a));
        Py_DECREF(a); Py_DECREF(b);
    }
}

TEST(as_long_minus_one_is_a_value_not_an_error) {
    PyObject *m = PyLong_FromLong(-1);
    CHECK_EQ_LONG(-1, PyLong_AsLong(m));
    CHECK_NO_ERROR();
    Py_DECREF(m);
}

TEST(more_invalid_utf8_edges) {
    struct { const char *in, *msg; } cases[] = {
        {"\xc3", "'utf-8' codec can't decode byte 0xc3 in position 0: unexpected end of data"},
        {"\xc2", "'utf-8' codec can't decode byte 0xc2 in position 0: unexpected end of data"},
        {"\xf0\x9f\x98", "'utf-8' codec can't decode bytes in position 0-2: unexpected end of data"},
        {"ab\xf0\x9f", "'utf-8' codec can't decode bytes in position 2-3: unexpected end of data"},
        {"\xc3\xa9\xe2\x82", "'utf-8' codec can't decode bytes in position 2-3: unexpected end of data"},
        {"\xf0\x90", "'utf-8' codec can't decode bytes in position 0-1: unexpected end of data"},
        {"\xf4\x8f\xbf", "'utf-8' codec can't decode bytes in position 0-2: unexpected end of data"},
        {"\xe0\x80\x80", "'utf-8' codec can't decode byte 0xe0 in position 0: invalid continuation byte"},
        {"\xe0\x80", "'utf-8' codec can't decode byte 0xe0 in position 0: invalid continuation byte"},
        {"\xed\xa0", "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte"},
        {"\xed\xbf\xbf", "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte"},
        {"\xf0\x80\x80\x80", "'utf-8' codec can't decode byte 0xf0 in position 0: invalid continuation byte"},
        {"\xf0\x8f", "'utf-8' codec can't decode byte 0xf0 in position 0: invalid continuation byte"},
        {"\xf4\x90", "'utf-8' codec can't decode byte 0xf4 in position 0: invalid continuation byte"},
        {"x\xc3(", "'utf-8' codec can't decode byte 0xc3 in position 1: invalid continuation byte"},
        {"\xf5\x80\x80\x80", "'utf-8' codec can't decode byte 0xf5 in position 0: invalid start byte"},
        {"\xc1\xbf", "'utf-8' codec can't decode byte 0xc1 in position 0: invalid start byte"},
        {"\xfe", "'utf-8' codec can't decode byte 0xfe in position 0: invalid start byte"},
        {"\x80\x80", "'utf-8' codec can't decode byte 0x80 in position 0: invalid start byte"},
        {"\xf0\x9f\x98\x80\xff", "'utf-8' codec can't decode byte 0xff in position 4: invalid start byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(PyUnicode_FromString(cases[i].in) == NULL);
        CHECK_ERROR(PyExc_UnicodeDecodeError, cases[i].msg);
    }
    /* Positions count bytes, also far into the text. */
    char buf[302];
    memset(buf, 'a', 300);
    buf[300] = '\xff';
    buf[301] = 0;
    CHECK(PyUnicode_FromString(buf) == NULL);
    CHECK_ERROR(PyExc_UnicodeDecodeError, "'utf-8' codec can't decode byte 0xff in position 300: invalid start byte");
}

TEST(str_round_trip_of_long_and_every_width) {
    /* 1-, 2-, 3- and 4-byte sequences at the edges of each range. */
    const char *edges = "\x7f \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf "
                        "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf";
    PyObject *o = PyUnicode_FromString(edges);
    CHECK(o != NULL);
    if (o) CHECK_STR(edges, PyUnicode_AsUTF8(o));
    Py_XDECREF(o);
    size_t n = 100000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    big[n] = 0;
    o = PyUnicode_FromString(big);
    CHECK(o != NULL);
    if (o) {
        const char *u = PyUnicode_AsUTF8(o);
        CHECK(u != NULL && strlen(u) == n && memcmp(u, big, n) == 0);
        CHECK(u != big); /* a copy */
    }
    Py_XDECREF(o);
    free(big);
}

TEST(as_utf8_is_owned_by_the_str) {
    char src[] = "mutable \xc3\xa9";
    PyObject *o = PyUnicode_FromString(src);
    src[0] = 'X'; /* the str copied its text */
    const char *a = PyUnicode_AsUTF8(o), *b = PyUnicode_AsUTF8(o);
    CHECK(a == b); /* stable while the str lives */
    CHECK_STR("mutable \xc3\xa9", a);
    Py_DECREF(o);
}

TEST(as_utf8_of_each_non_str_kind) {
    PyObject *objs[6];
    PyObject *var = PyContextVar_New("v", NULL);
    objs[0] = PyContext_New();
    objs[1] = Py_NewRef(var);
    objs[2] = PyContextVar_Set(var, Py_None);
    objs[3] = PyLong_FromLong(1);
    objs[4] = PyCapsule_New(objs, NULL, NULL);
    objs[5] = Py_NewRef(Py_None);
    for (int k = 0; k < 6; k++) {
        CHECK(PyUnicode_AsUTF8(objs[k]) == NULL);
        CHECK_ERROR(PyExc_TypeError, "bad argument type for built-in operation");
    }
    CHECK(PyUnicode_AsUTF8((PyObject *)&PyUnicode_Type) == NULL); /* the type is not a str */
    CHECK_ERROR(PyExc_TypeError, "bad argument type for built-in operation");
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, objs[2]));
    for (int k = 0; k < 6; k++) Py_DECREF(objs[k]);
    Py_DECREF(var);
}

TEST(as_long_of_type_objects_is_type_error) {
    CHECK_EQ_LONG(-1, PyLong_AsLong((PyObject *)&PyLong_Type));
    CHECK_ERROR(PyExc_TypeError, "'type' object cannot be interpreted as an integer");
    CHECK_EQ_LONG(-1, PyLong_AsLong(PyExc_ValueError));
    CHECK_ERROR(PyExc_TypeError, "'type' object cannot be interpreted as an integer");
}

static int cap_freed;
static PyObject *cap_freed_arg;
static void cap_count(PyObject *cap) { cap_freed++; cap_freed_arg = cap; }

TEST(capsule_names_compare_by_content) {
    char name[] = "first";
    PyObject *cap = PyCapsule_New(&cap_freed, name, NULL); /* NULL destructor: fine */
    CHECK(cap != NULL);
    CHECK_NO_ERROR();
    char same[] = "first";
    CHECK(PyCapsule_GetPointer(cap, same) == &cap_freed); /* another buffer, same text */
    CHECK(PyCapsule_GetPointer(cap, "firs") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with incorrect name");
    CHECK(PyCapsule_GetPointer(cap, "first!") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with incorrect name");
    CHECK(PyCapsule_GetPointer(cap, "") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with incorrect name");
    strcpy(name, "other"); /* the name is not copied (documented: it must outlive the capsule) */
    CHECK(PyCapsule_GetPointer(cap, "other") == &cap_freed);
    Py_DECREF(cap);
    PyObject *empty = PyCapsule_New(&cap_freed, "", NULL);
    CHECK(PyCapsule_GetPointer(empty, "") == &cap_freed);
    CHECK(PyCapsule_GetPointer(empty, NULL) == NULL); /* "" is a name, NULL is none */
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with incorrect name");
    Py_DECREF(empty);
}

TEST(capsule_get_pointer_of_non_capsules) {
    PyObject *var = PyContextVar_New("v", NULL);
    PyObject *objs[] = {PyContext_New(), Py_NewRef(var), PyContextVar_Set(var, Py_None),
                        PyLong_FromLong(5), PyUnicode_FromString("s"), Py_NewRef(Py_None)};
    for (int k = 0; k < 6; k++) {
        CHECK(PyCapsule_GetPointer(objs[k], NULL) == NULL);
        CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with invalid PyCapsule object");
        CHECK(PyCapsule_GetPointer(objs[k], "n") == NULL);
        CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with invalid PyCapsule object");
    }
    /* CPython checks NULL here too (_is_legal_capsule). */
    CHECK(PyCapsule_GetPointer(NULL, "x") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with invalid PyCapsule object");
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, objs[2]));
    for (int k = 0; k < 6; k++) Py_DECREF(objs[k]);
    Py_DECREF(var);
}

TEST(capsule_destructor_runs_once_per_capsule_with_it) {
    cap_freed = 0;
    PyObject *caps[50];
    for (int i = 0; i < 50; i++) {
        caps[i] = PyCapsule_New(&caps[i], NULL, cap_count);
        CHECK(PyCapsule_GetPointer(caps[i], NULL) == &caps[i]);
    }
    for (int i = 49; i >= 0; i--) {
        PyObject *c = caps[i];
        Py_INCREF(c);
        Py_DECREF(c);
        CHECK_EQ_LONG(49 - i, cap_freed); /* not yet */
        Py_DECREF(c);
        CHECK_EQ_LONG(50 - i, cap_freed);
        CHECK(cap_freed_arg == c);
    }
    /* Failed creation runs no destructor. */
    CHECK(PyCapsule_New(NULL, NULL, cap_count) == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_New called with null pointer");
    CHECK_EQ_LONG(50, cap_freed);
}

TEST(every_check_on_every_kind) {
    PyObject *var = PyContextVar_New("v", NULL);
    PyObject *objs[7] = {PyContext_New(), Py_NewRef(var), PyContextVar_Set(var, Py_None), PyLong_FromLong(1000),
                         PyUnicode_FromString("s"), PyCapsule_New(&cap_freed, NULL, NULL), Py_NewRef(Py_None)};
    for (int k = 0; k < 7; k++) {
        PyObject *o = objs[k];
        CHECK_EQ_LONG(k == 0, PyContext_CheckExact(o) != 0);
        CHECK_EQ_LONG(k == 1, PyContextVar_CheckExact(o) != 0);
        CHECK_EQ_LONG(k == 2, PyContextToken_CheckExact(o) != 0);
        CHECK_EQ_LONG(k == 3, PyLong_Check(o) != 0);
        CHECK_EQ_LONG(k == 4, PyUnicode_Check(o) != 0);
        CHECK_EQ_LONG(k == 5, PyCapsule_CheckExact(o) != 0);
    }
    /* Type objects are not instances of themselves. */
    CHECK(!PyContext_CheckExact((PyObject *)&PyContext_Type));
    CHECK(!PyLong_Check((PyObject *)&PyLong_Type));
    CHECK(!PyUnicode_Check((PyObject *)&PyUnicode_Type));
    CHECK(!PyCapsule_CheckExact((PyObject *)&PyCapsule_Type));
    PyObject *small = PyLong_FromLong(3);
    CHECK(PyLong_Check(small));
    Py_DECREF(small);
    CHECK_NO_ERROR();
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, objs[2]));
    for (int k = 0; k < 7; k++) Py_DECREF(objs[k]);
    Py_DECREF(var);
}


TEST(as_long_of_null_is_bad_internal_call) {
    /* CPython checks NULL here (PyLong_AsLongAndOverflow). */
    CHECK_EQ_LONG(-1, PyLong_AsLong(NULL));
    CHECK_ERROR_SUFFIX(PyExc_SystemError, "bad argument to internal function");
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
    RUN(small_ints_minus_5_to_256_are_shared);
    RUN(as_long_minus_one_is_a_value_not_an_error);
    RUN(more_invalid_utf8_edges);
    RUN(str_round_trip_of_long_and_every_width);
    RUN(as_utf8_is_owned_by_the_str);
    RUN(as_utf8_of_each_non_str_kind);
    RUN(as_long_of_type_objects_is_type_error);
    RUN(capsule_names_compare_by_content);
    RUN(capsule_get_pointer_of_non_capsules);
    RUN(capsule_destructor_runs_once_per_capsule_with_it);
    RUN(every_check_on_every_kind);
    RUN(as_long_of_null_is_bad_internal_call);
}
