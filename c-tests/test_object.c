/* The object model: reference counting, types, None. */
#include "harness.h"

static PyObject *return_none(void) { Py_RETURN_NONE; }

TEST(a_new_object_has_one_reference) {
    PyObject *o = PyLong_FromLong(123456789);
    CHECK_EQ_LONG(1, Py_REFCNT(o));
    Py_DECREF(o);
    PyObject *c = PyContext_New();
    CHECK_EQ_LONG(1, Py_REFCNT(c));
    Py_DECREF(c);
}

TEST(refcount_macros_and_functions) {
    PyObject *o = PyUnicode_FromString("refs");
    Py_INCREF(o);
    CHECK_EQ_LONG(2, Py_REFCNT(o));
    Py_IncRef(o);
    CHECK_EQ_LONG(3, Py_REFCNT(o));
    Py_DecRef(o);
    Py_DECREF(o);
    CHECK_EQ_LONG(1, Py_REFCNT(o));
    PyObject *n = Py_NewRef(o);
    CHECK(n == o);
    CHECK_EQ_LONG(2, Py_REFCNT(o));
    PyObject *x = Py_XNewRef(o);
    CHECK(x == o);
    CHECK_EQ_LONG(3, Py_REFCNT(o));
    CHECK(Py_XNewRef(NULL) == NULL);
    Py_XINCREF(o);
    Py_XDECREF(o);
    Py_XINCREF((PyObject *)NULL);
    Py_XDECREF((PyObject *)NULL);
    Py_DECREF(n);
    Py_DECREF(x);
    CHECK_EQ_LONG(1, Py_REFCNT(o));
    PyObject *cleared = o;
    Py_CLEAR(cleared);
    CHECK(cleared == NULL);
    Py_CLEAR(cleared); /* NULL: nothing happens */
    CHECK(cleared == NULL);
}

TEST(types_of_each_kind) {
    PyObject *var = PyContextVar_New("v", NULL), *ctx = PyContext_New();
    PyObject *tok = PyContextVar_Set(var, Py_None);
    PyObject *i = PyLong_FromLong(5), *s = PyUnicode_FromString("s");
    PyObject *cap = PyCapsule_New(&i, NULL, NULL);
    CHECK(Py_TYPE(ctx) == &PyContext_Type);
    CHECK(Py_TYPE(var) == &PyContextVar_Type);
    CHECK(Py_TYPE(tok) == &PyContextToken_Type);
    CHECK(Py_TYPE(i) == &PyLong_Type);
    CHECK(Py_TYPE(s) == &PyUnicode_Type);
    CHECK(Py_TYPE(cap) == &PyCapsule_Type);
    CHECK_STR("_contextvars.Context", PyContext_Type.tp_name);
    CHECK_STR("_contextvars.ContextVar", PyContextVar_Type.tp_name);
    CHECK_STR("_contextvars.Token", PyContextToken_Type.tp_name);
    CHECK_STR("int", PyLong_Type.tp_name);
    CHECK_STR("str", PyUnicode_Type.tp_name);
    CHECK_STR("PyCapsule", PyCapsule_Type.tp_name);
    CHECK_STR("NoneType", Py_TYPE(Py_None)->tp_name);
    CHECK_STR("type", Py_TYPE(&PyContext_Type)->tp_name);
    CHECK_STR("TypeError", ((PyTypeObject *)PyExc_TypeError)->tp_name);
    CHECK(PyContextVar_Reset(var, tok) == 0);
    Py_DECREF(tok); Py_DECREF(var); Py_DECREF(ctx); Py_DECREF(i); Py_DECREF(s); Py_DECREF(cap);
}

TEST(py_return_none_gives_a_new_reference_to_none) {
    PyObject *n = return_none();
    CHECK(n == Py_None);
    Py_DECREF(n);
}

TEST(small_ints_are_shared_objects) {
    PyObject *a = PyLong_FromLong(7), *b = PyLong_FromLong(7);
    CHECK(a == b);
    PyObject *c = PyLong_FromLong(-5), *d = PyLong_FromLong(-5);
    CHECK(c == d);
    Py_DECREF(a); Py_DECREF(b); Py_DECREF(c); Py_DECREF(d);
}

TEST(setref_replaces_then_releases) {
    PyObject *x = PyLong_FromLong(5000), *y = PyLong_FromLong(6000);
    Py_INCREF(x);
    PyObject *old = x;
    Py_SETREF(x, y); /* steals y, releases the old x */
    CHECK(x == y);
    CHECK_EQ_LONG(1, Py_REFCNT(old));
    Py_DECREF(old);
    Py_XSETREF(x, NULL);
    CHECK(x == NULL);
    Py_XSETREF(x, PyLong_FromLong(7));
    CHECK_EQ_LONG(7, h_long(x));
    Py_DECREF(x);
}

void suite_object(void) {
    RUN(setref_replaces_then_releases);
    RUN(a_new_object_has_one_reference);
    RUN(refcount_macros_and_functions);
    RUN(types_of_each_kind);
    RUN(py_return_none_gives_a_new_reference_to_none);
    RUN(small_ints_are_shared_objects);
}
