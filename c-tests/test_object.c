/* The object model: reference counting, types, None. */
#include "harness.h"
#include <limits.h>

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


/* One fresh object of each kind, each with exactly one reference. */
static void make_each_kind(PyObject *objs[6]) {
    PyObject *var = PyContextVar_New("kinds", NULL);
    objs[0] = PyContext_New();
    objs[1] = PyContextVar_New("fresh", NULL);
    objs[2] = PyContextVar_Set(var, Py_None); /* the token is held by nothing else */
    objs[3] = PyLong_FromLong(987654321);
    objs[4] = PyUnicode_FromString("fresh str");
    objs[5] = PyCapsule_New(objs, "kinds", NULL);
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, objs[2]));
    Py_DECREF(var);
}

TEST(refcount_deltas_on_every_kind) {
    PyObject *objs[6];
    make_each_kind(objs);
    for (int k = 0; k < 6; k++) {
        PyObject *o = objs[k];
        CHECK(o != NULL);
        if (o == NULL) continue;
        CHECK_EQ_LONG(1, Py_REFCNT(o)); /* a new object has one reference */
        Py_INCREF(o);
        CHECK_EQ_LONG(2, Py_REFCNT(o));
        Py_IncRef(o);
        CHECK_EQ_LONG(3, Py_REFCNT(o));
        Py_XINCREF(o);
        CHECK_EQ_LONG(4, Py_REFCNT(o));
        CHECK(Py_NewRef(o) == o);
        CHECK_EQ_LONG(5, Py_REFCNT(o));
        CHECK((Py_NewRef)(o) == o); /* the function, not the macro */
        CHECK_EQ_LONG(6, Py_REFCNT(o));
        CHECK(Py_XNewRef(o) == o);
        CHECK_EQ_LONG(7, Py_REFCNT(o));
        CHECK((Py_XNewRef)(o) == o);
        CHECK_EQ_LONG(8, Py_REFCNT(o));
        Py_DecRef(o);
        CHECK_EQ_LONG(7, Py_REFCNT(o));
        Py_XDECREF(o);
        CHECK_EQ_LONG(6, Py_REFCNT(o));
        for (int i = 0; i < 5; i++) Py_DECREF(o);
        CHECK_EQ_LONG(1, Py_REFCNT(o));
        Py_DECREF(o);
    }
}

TEST(null_is_accepted_by_the_x_forms) {
    PyObject *n = NULL;
    Py_XINCREF(n);
    Py_XDECREF(n);
    CHECK(Py_XNewRef(n) == NULL);
    CHECK((Py_XNewRef)(n) == NULL);
    Py_CLEAR(n);
    CHECK(n == NULL);
    CHECK_NO_ERROR();
}

/* Py_CLEAR must set the variable to NULL before the object dies, so a
 * destructor that looks at the variable sees NULL (CPython's contract). */
static PyObject *clear_target;
static int clear_saw_null = -1, clear_destroyed;
static void clear_destructor(PyObject *cap) {
    (void)cap;
    clear_destroyed++;
    clear_saw_null = clear_target == NULL;
}

TEST(py_clear_sets_null_before_the_object_dies) {
    clear_destroyed = 0;
    clear_saw_null = -1;
    clear_target = PyCapsule_New(&clear_destroyed, "clear", clear_destructor);
    PyObject *extra = Py_NewRef(clear_target);
    Py_CLEAR(clear_target); /* not the last reference: no destruction */
    CHECK(clear_target == NULL);
    CHECK_EQ_LONG(0, clear_destroyed);
    CHECK_EQ_LONG(1, Py_REFCNT(extra));
    clear_target = extra;
    Py_CLEAR(clear_target); /* the last one */
    CHECK(clear_target == NULL);
    CHECK_EQ_LONG(1, clear_destroyed);
    CHECK_EQ_LONG(1, clear_saw_null);
}

TEST(py_type_and_tp_name_of_each_kind) {
    PyObject *objs[6];
    make_each_kind(objs);
    PyTypeObject *types[6] = {&PyContext_Type, &PyContextVar_Type, &PyContextToken_Type,
                              &PyLong_Type, &PyUnicode_Type, &PyCapsule_Type};
    const char *names[6] = {"_contextvars.Context", "_contextvars.ContextVar", "_contextvars.Token",
                            "int", "str", "PyCapsule"};
    for (int k = 0; k < 6; k++) {
        CHECK(Py_TYPE(objs[k]) == types[k]);
        CHECK_STR(names[k], Py_TYPE(objs[k])->tp_name);
        CHECK(Py_TYPE(types[k]) == Py_TYPE(&PyLong_Type)); /* all are instances of `type` */
        for (int j = 0; j < 6; j++) CHECK_EQ_LONG(j == k, Py_TYPE(objs[k]) == types[j]);
        Py_DECREF(objs[k]);
    }
    CHECK_STR("NoneType", Py_TYPE(Py_None)->tp_name);
    CHECK(Py_TYPE(Py_None) != &PyLong_Type);
    PyObject *n1 = PyLong_FromLong(-3), *n2 = PyLong_FromLong(LONG_MAX);
    CHECK(Py_TYPE(n1) == &PyLong_Type && Py_TYPE(n2) == &PyLong_Type); /* cached and not */
    Py_DECREF(n1); Py_DECREF(n2);
}

TEST(py_return_none_many_times) {
    /* Each call hands out a reference the caller releases; None survives. */
    for (int i = 0; i < 1000; i++) {
        PyObject *n = return_none();
        CHECK(n == Py_None);
        Py_DECREF(n);
    }
    CHECK_STR("NoneType", Py_TYPE(Py_None)->tp_name);
    CHECK(Py_REFCNT(Py_None) > 0);
}

void suite_object(void) {
    RUN(setref_replaces_then_releases);
    RUN(a_new_object_has_one_reference);
    RUN(refcount_macros_and_functions);
    RUN(types_of_each_kind);
    RUN(py_return_none_gives_a_new_reference_to_none);
    RUN(small_ints_are_shared_objects);
    RUN(refcount_deltas_on_every_kind);
    RUN(null_is_accepted_by_the_x_forms);
    RUN(py_clear_sets_null_before_the_object_dies);
    RUN(py_type_and_tp_name_of_each_kind);
    RUN(py_return_none_many_times);
}
