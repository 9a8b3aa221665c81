/* Contexts: PyContext_New, Copy, CopyCurrent, Enter/Exit and the three
 * CheckExact checks. Every case holds its own reference to each context from
 * Enter until Exit (CPython's rule, S1) and leaves the thread where it found
 * it. */
#include "harness.h"

#define MISSING H_MISSING
#define GET_FAILED H_GET_FAILED

/* The value of `var` in the current context as a long: MISSING when Get
 * finds nothing, GET_FAILED when Get fails (error cleared). */
#define get_long(var) h_get_long((var), NULL)

/* Sets `var` to the int `v` and drops the token; 1 on success. */
static int set_long(PyObject *var, long v) {
    PyObject *t = h_set_long(var, v);
    Py_XDECREF(t);
    return t != NULL;
}

static void ctx_repr(char *buf, size_t n, PyObject *ctx) {
    snprintf(buf, n, "<_contextvars.Context object at %p>", (void *)ctx);
}

static void expect_already_entered(PyObject *ctx) {
    char msg[256], r[128];
    ctx_repr(r, sizeof r, ctx);
    snprintf(msg, sizeof msg, "cannot enter context: %s is already entered", r);
    CHECK_ERROR(PyExc_RuntimeError, msg);
}

static void expect_not_entered(PyObject *ctx) {
    char msg[256], r[128];
    ctx_repr(r, sizeof r, ctx);
    snprintf(msg, sizeof msg, "cannot exit context: %s has not been entered", r);
    CHECK_ERROR(PyExc_RuntimeError, msg);
}

#define DIFFERENT_MSG "cannot exit context: thread state references a different context object"
#define NOT_CONTEXT_MSG "an instance of Context was expected"

/* Objects of every kind that is not a Context. */
enum { Z_SMALL_INT, Z_BIG_INT, Z_STR, Z_NONE, Z_CAPSULE, Z_VAR, Z_VAR_DEFAULT, Z_TOKEN,
       Z_USED_TOKEN, Z_CONTEXT_TYPE, Z_VAR_TYPE, Z_TOKEN_TYPE, Z_LONG_TYPE, Z_N };
static int zoo_anchor;

static void zoo_make(PyObject *z[Z_N]) {
    z[Z_SMALL_INT] = PyLong_FromLong(1);
    z[Z_BIG_INT] = PyLong_FromLong(123456789);
    z[Z_STR] = PyUnicode_FromString("not a context");
    z[Z_NONE] = Py_NewRef(Py_None);
    z[Z_CAPSULE] = PyCapsule_New(&zoo_anchor, "zoo", NULL);
    z[Z_VAR] = PyContextVar_New("zoo", NULL);
    z[Z_VAR_DEFAULT] = PyContextVar_New("zoo_default", z[Z_BIG_INT]);
    /* Tokens are made in a throwaway context, so the thread is untouched. */
    PyObject *tmp = PyContext_New();
    PyContext_Enter(tmp);
    z[Z_TOKEN] = PyContextVar_Set(z[Z_VAR], z[Z_SMALL_INT]);
    z[Z_USED_TOKEN] = PyContextVar_Set(z[Z_VAR_DEFAULT], z[Z_STR]);
    PyContextVar_Reset(z[Z_VAR_DEFAULT], z[Z_USED_TOKEN]);
    PyContext_Exit(tmp);
    Py_DECREF(tmp);
    z[Z_CONTEXT_TYPE] = Py_NewRef((PyObject *)&PyContext_Type);
    z[Z_VAR_TYPE] = Py_NewRef((PyObject *)&PyContextVar_Type);
    z[Z_TOKEN_TYPE] = Py_NewRef((PyObject *)&PyContextToken_Type);
    z[Z_LONG_TYPE] = Py_NewRef((PyObject *)&PyLong_Type);
    for (int i = 0; i < Z_N; i++) CHECK(z[i] != NULL);
    CHECK_NO_ERROR();
}

static void zoo_free(PyObject *z[Z_N]) {
    for (int i = 0; i < Z_N; i++) Py_CLEAR(z[i]);
}

/* ---- PyContext_New ---- */

TEST(new_returns_distinct_contexts) {
    PyObject *a = PyContext_New(), *b = PyContext_New();
    CHECK(a != NULL && b != NULL);
    CHECK(a != b);
    CHECK(PyContext_CheckExact(a));
    CHECK(Py_TYPE(b) == &PyContext_Type);
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
}

TEST(new_context_is_empty_and_not_entered) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *outer = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(outer));
    CHECK(set_long(v, 5));
    PyObject *c = PyContext_New(); /* made while v is set: still empty */
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_EQ_LONG(5, get_long(v)); /* New did not touch the current context */
    CHECK_EQ_LONG(0, PyContext_Exit(outer));
    CHECK_NO_ERROR();
    Py_DECREF(c);
    Py_DECREF(outer);
    Py_DECREF(v);
}

/* ---- PyContext_Copy ---- */

TEST(copy_returns_new_unentered_context) {
    PyObject *a = PyContext_New();
    PyObject *b = PyContext_Copy(a);
    CHECK(b != NULL);
    CHECK(b != a);
    CHECK(PyContext_CheckExact(b));
    CHECK_EQ_LONG(0, PyContext_Enter(b));
    CHECK_EQ_LONG(0, PyContext_Enter(a)); /* both independent, neither entered by Copy */
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_EQ_LONG(0, PyContext_Exit(b));
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
}

TEST(copy_is_snapshot_later_sets_invisible_both_ways) {
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    CHECK(set_long(v, 1));
    PyContext_Exit(a);
    PyObject *b = PyContext_Copy(a);
    CHECK(b != NULL);
    /* change the original */
    PyContext_Enter(a);
    CHECK(set_long(v, 2));
    CHECK(set_long(w, 3));
    PyContext_Exit(a);
    /* the copy still has the snapshot; change it */
    PyContext_Enter(b);
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(MISSING, get_long(w));
    CHECK(set_long(v, 10));
    CHECK(set_long(w, 30));
    PyContext_Exit(b);
    /* the original is unaffected */
    PyContext_Enter(a);
    CHECK_EQ_LONG(2, get_long(v));
    CHECK_EQ_LONG(3, get_long(w));
    PyContext_Exit(a);
    PyContext_Enter(b);
    CHECK_EQ_LONG(10, get_long(v));
    CHECK_EQ_LONG(30, get_long(w));
    PyContext_Exit(b);
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(v);
    Py_DECREF(w);
}

TEST(copy_of_entered_context_is_snapshot_and_not_entered) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(a));
    CHECK(set_long(v, 1));
    PyObject *b = PyContext_Copy(a); /* a is the current context */
    CHECK(b != NULL && b != a);
    CHECK(set_long(v, 2));
    CHECK_EQ_LONG(0, PyContext_Enter(b)); /* the copy is not entered */
    CHECK_EQ_LONG(1, get_long(v));
    CHECK(set_long(v, 3));
    CHECK_EQ_LONG(0, PyContext_Exit(b));
    CHECK_EQ_LONG(2, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(v);
}

TEST(copy_of_outer_entered_context_while_nested) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New(), *inner = PyContext_New();
    PyContext_Enter(a);
    CHECK(set_long(v, 7));
    PyContext_Enter(inner);
    PyObject *b = PyContext_Copy(a); /* a is entered but not current */
    CHECK(b != NULL);
    CHECK_EQ_LONG(0, PyContext_Enter(b));
    CHECK_EQ_LONG(7, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(b));
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(inner));
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(inner);
    Py_DECREF(v);
}

TEST(copy_of_copy_keeps_values) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    CHECK(set_long(v, 11));
    PyContext_Exit(a);
    PyObject *b = PyContext_Copy(a);
    PyObject *c = PyContext_Copy(b);
    CHECK(c != NULL && c != a && c != b);
    Py_DECREF(a);
    Py_DECREF(b);
    PyContext_Enter(c);
    CHECK_EQ_LONG(11, get_long(v));
    PyContext_Exit(c);
    CHECK_NO_ERROR();
    Py_DECREF(c);
    Py_DECREF(v);
}

TEST(copy_rejects_every_non_context) {
    PyObject *z[Z_N];
    zoo_make(z);
    for (int i = 0; i < Z_N; i++) {
        PyObject *r = PyContext_Copy(z[i]);
        CHECK(r == NULL);
        CHECK_ERROR(PyExc_TypeError, NOT_CONTEXT_MSG);
        Py_XDECREF(r);
    }
    zoo_free(z);
}

/* ---- PyContext_CopyCurrent ---- */

TEST(copy_current_returns_new_object_each_time) {
    PyObject *c = PyContext_New();
    PyContext_Enter(c);
    PyObject *x = PyContext_CopyCurrent(), *y = PyContext_CopyCurrent();
    CHECK(x != NULL && y != NULL);
    CHECK(x != c && y != c && x != y);
    CHECK(PyContext_CheckExact(x) && PyContext_CheckExact(y));
    CHECK_EQ_LONG(0, PyContext_Enter(x)); /* not entered */
    CHECK_EQ_LONG(0, PyContext_Exit(x));
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_NO_ERROR();
    Py_DECREF(x);
    Py_DECREF(y);
    Py_DECREF(c);
}

TEST(copy_current_snapshots_current_context) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *c = PyContext_New();
    PyContext_Enter(c);
    CHECK(set_long(v, 1));
    PyObject *snap = PyContext_CopyCurrent();
    CHECK(set_long(v, 2));
    CHECK_EQ_LONG(0, PyContext_Enter(snap));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK(set_long(v, 3));
    CHECK_EQ_LONG(0, PyContext_Exit(snap));
    CHECK_EQ_LONG(2, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    PyContext_Enter(snap);
    CHECK_EQ_LONG(3, get_long(v));
    PyContext_Exit(snap);
    CHECK_NO_ERROR();
    Py_DECREF(snap);
    Py_DECREF(c);
    Py_DECREF(v);
}

TEST(copy_current_of_empty_entered_context_is_empty) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *outer = PyContext_New(), *empty = PyContext_New();
    PyContext_Enter(outer);
    CHECK(set_long(v, 1));
    PyContext_Enter(empty);
    PyObject *snap = PyContext_CopyCurrent(); /* copies `empty`, not `outer` */
    PyContext_Exit(empty);
    PyContext_Exit(outer);
    CHECK_EQ_LONG(0, PyContext_Enter(snap));
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(snap));
    CHECK_NO_ERROR();
    Py_DECREF(snap);
    Py_DECREF(empty);
    Py_DECREF(outer);
    Py_DECREF(v);
}

/* At the base level CopyCurrent copies the thread's base context (creating
 * it if there is none); the base context stays the current one afterwards. */
TEST(copy_current_at_base_level_copies_base_context) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *first = PyContext_CopyCurrent();
    CHECK(first != NULL && PyContext_CheckExact(first));
    PyObject *one = PyLong_FromLong(1);
    PyObject *t = PyContextVar_Set(v, one); /* in the base context */
    PyObject *snap = PyContext_CopyCurrent();
    CHECK(snap != NULL && snap != first);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t)); /* still the same base context */
    CHECK_EQ_LONG(MISSING, get_long(v));
    PyContext_Enter(snap);
    CHECK_EQ_LONG(1, get_long(v));
    PyContext_Exit(snap);
    PyContext_Enter(first);
    CHECK_EQ_LONG(MISSING, get_long(v));
    PyContext_Exit(first);
    CHECK_NO_ERROR();
    Py_DECREF(one);
    Py_XDECREF(t);
    Py_DECREF(snap);
    Py_DECREF(first);
    Py_DECREF(v);
}

/* ---- Enter / Exit ---- */

TEST(enter_exit_switch_the_current_context) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New(), *b = PyContext_New();
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Enter(a));
    CHECK(set_long(v, 1));
    CHECK_EQ_LONG(0, PyContext_Enter(b));
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK(set_long(v, 2));
    CHECK_EQ_LONG(2, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(b));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_EQ_LONG(MISSING, get_long(v)); /* values went into a, not the base */
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(v);
}

TEST(entering_does_not_inherit_outer_values) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *one = PyLong_FromLong(1);
    PyObject *t = PyContextVar_Set(v, one); /* base level */
    CHECK_EQ_LONG(1, get_long(v));
    PyObject *fresh = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(fresh));
    CHECK_EQ_LONG(MISSING, get_long(v));
    PyObject *copy = PyContext_CopyCurrent(); /* a copy of `fresh`: empty */
    CHECK_EQ_LONG(0, PyContext_Exit(fresh));
    PyObject *base_copy = PyContext_CopyCurrent(); /* a copy of the base: has v */
    CHECK_EQ_LONG(0, PyContext_Enter(base_copy));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Enter(copy));
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(copy));
    CHECK_EQ_LONG(0, PyContext_Exit(base_copy));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_NO_ERROR();
    Py_DECREF(one);
    Py_XDECREF(t);
    Py_DECREF(fresh);
    Py_DECREF(copy);
    Py_DECREF(base_copy);
    Py_DECREF(v);
}

TEST(reenter_after_exit_keeps_values) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New();
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_LONG(0, PyContext_Enter(a));
        CHECK_EQ_LONG(i == 0 ? MISSING : i - 1, get_long(v));
        CHECK(set_long(v, i));
        CHECK_EQ_LONG(0, PyContext_Exit(a));
        CHECK_EQ_LONG(MISSING, get_long(v));
    }
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(v);
}

TEST(thread_holds_a_reference_while_entered) {
    PyObject *a = PyContext_New(), *b = PyContext_New();
    Py_ssize_t ra = Py_REFCNT(a), rb = Py_REFCNT(b);
    PyContext_Enter(a);
    CHECK_EQ_LONG(ra + 1, Py_REFCNT(a));
    PyContext_Enter(b);
    CHECK_EQ_LONG(rb + 1, Py_REFCNT(b));
    PyContext_Exit(b);
    CHECK_EQ_LONG(rb, Py_REFCNT(b));
    PyContext_Exit(a);
    CHECK_EQ_LONG(ra, Py_REFCNT(a));
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
}

TEST(enter_of_current_context_fails_and_changes_nothing) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    CHECK(set_long(v, 4));
    Py_ssize_t ra = Py_REFCNT(a);
    CHECK_EQ_LONG(-1, PyContext_Enter(a));
    expect_already_entered(a);
    CHECK_EQ_LONG(ra, Py_REFCNT(a));
    CHECK_EQ_LONG(4, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(a)); /* one Exit suffices */
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(-1, PyContext_Exit(a));
    expect_not_entered(a);
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(v);
}

TEST(enter_of_outer_entered_context_fails) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New(), *b = PyContext_New(), *c = PyContext_New();
    PyContext_Enter(a);
    CHECK(set_long(v, 1));
    PyContext_Enter(b);
    CHECK(set_long(v, 2));
    PyContext_Enter(c);
    CHECK(set_long(v, 3));
    CHECK_EQ_LONG(-1, PyContext_Enter(a));
    expect_already_entered(a);
    CHECK_EQ_LONG(-1, PyContext_Enter(b));
    expect_already_entered(b);
    CHECK_EQ_LONG(3, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_EQ_LONG(2, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(b));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(c);
    Py_DECREF(v);
}

TEST(exit_of_never_entered_context_fails) {
    PyObject *a = PyContext_New();
    CHECK_EQ_LONG(-1, PyContext_Exit(a));
    expect_not_entered(a);
    /* also while another context is entered: "not entered" comes first (S13) */
    PyObject *b = PyContext_New();
    PyContext_Enter(b);
    CHECK_EQ_LONG(-1, PyContext_Exit(a));
    expect_not_entered(a);
    PyObject *copy = PyContext_Copy(b); /* a copy of the current context */
    CHECK_EQ_LONG(-1, PyContext_Exit(copy));
    expect_not_entered(copy);
    CHECK_EQ_LONG(0, PyContext_Exit(b));
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(copy);
}

TEST(exit_twice_fails_with_not_entered) {
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_EQ_LONG(-1, PyContext_Exit(a));
    expect_not_entered(a);
    CHECK_EQ_LONG(0, PyContext_Enter(a)); /* and it can be entered again */
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_NO_ERROR();
    Py_DECREF(a);
}

TEST(exit_of_non_innermost_context_fails_and_changes_nothing) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New(), *b = PyContext_New();
    PyContext_Enter(a);
    CHECK(set_long(v, 1));
    PyContext_Enter(b);
    CHECK(set_long(v, 2));
    Py_ssize_t ra = Py_REFCNT(a), rb = Py_REFCNT(b);
    CHECK_EQ_LONG(-1, PyContext_Exit(a));
    CHECK_ERROR(PyExc_RuntimeError, DIFFERENT_MSG);
    CHECK_EQ_LONG(ra, Py_REFCNT(a));
    CHECK_EQ_LONG(rb, Py_REFCNT(b));
    CHECK_EQ_LONG(2, get_long(v)); /* b is still current */
    CHECK_EQ_LONG(-1, PyContext_Enter(a)); /* a is still entered */
    expect_already_entered(a);
    CHECK_EQ_LONG(0, PyContext_Exit(b));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(v);
}

TEST(enter_and_exit_reject_every_non_context) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    CHECK(set_long(v, 9));
    PyObject *z[Z_N];
    zoo_make(z);
    for (int i = 0; i < Z_N; i++) {
        CHECK_EQ_LONG(-1, PyContext_Enter(z[i]));
        CHECK_ERROR(PyExc_TypeError, NOT_CONTEXT_MSG);
        CHECK_EQ_LONG(-1, PyContext_Exit(z[i]));
        CHECK_ERROR(PyExc_TypeError, NOT_CONTEXT_MSG);
    }
    zoo_free(z);
    CHECK_EQ_LONG(9, get_long(v)); /* nothing changed */
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(v);
}

/* Type comes before state: a non-context never reaches the entered checks. */
TEST(enter_exit_type_error_even_with_contexts_entered) {
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    PyObject *copy = PyContext_CopyCurrent();
    PyObject *s = PyUnicode_FromString("x");
    CHECK_EQ_LONG(-1, PyContext_Exit(s));
    CHECK_ERROR(PyExc_TypeError, NOT_CONTEXT_MSG);
    CHECK_EQ_LONG(0, PyContext_Enter(copy));
    CHECK_EQ_LONG(0, PyContext_Exit(copy));
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_NO_ERROR();
    Py_DECREF(s);
    Py_DECREF(copy);
    Py_DECREF(a);
}

TEST(error_messages_use_each_contexts_own_address) {
    PyObject *a = PyContext_New(), *b = PyContext_Copy(a);
    PyContext_Enter(a);
    PyContext_Enter(b);
    CHECK_EQ_LONG(-1, PyContext_Enter(a));
    expect_already_entered(a);
    CHECK_EQ_LONG(-1, PyContext_Enter(b));
    expect_already_entered(b);
    PyContext_Exit(b);
    PyContext_Exit(a);
    CHECK_EQ_LONG(-1, PyContext_Exit(b));
    expect_not_entered(b);
    CHECK_NO_ERROR();
    Py_DECREF(a);
    Py_DECREF(b);
}

/* ---- CheckExact ---- */

TEST(check_exact_on_every_kind_of_object) {
    PyObject *z[Z_N];
    zoo_make(z);
    for (int i = 0; i < Z_N; i++) {
        CHECK(!PyContext_CheckExact(z[i]));
        CHECK_EQ_LONG(i == Z_VAR || i == Z_VAR_DEFAULT, PyContextVar_CheckExact(z[i]));
        CHECK_EQ_LONG(i == Z_TOKEN || i == Z_USED_TOKEN, PyContextToken_CheckExact(z[i]));
    }
    zoo_free(z);

    PyObject *fresh = PyContext_New(), *copy = PyContext_Copy(fresh), *cur = PyContext_CopyCurrent();
    PyObject *entered = PyContext_New();
    PyContext_Enter(entered);
    PyObject *ctxs[] = {fresh, copy, cur, entered};
    for (int i = 0; i < 4; i++) {
        CHECK(PyContext_CheckExact(ctxs[i]));
        CHECK(!PyContextVar_CheckExact(ctxs[i]));
        CHECK(!PyContextToken_CheckExact(ctxs[i]));
        CHECK(Py_TYPE(ctxs[i]) == &PyContext_Type);
    }
    PyContext_Exit(entered);
    CHECK(PyContext_CheckExact(entered));
    CHECK_NO_ERROR();
    for (int i = 0; i < 4; i++) Py_DECREF(ctxs[i]);
}

/* ---- depth ---- */

#define NEST 1000

TEST(thousand_nested_enters_unwound_in_order) {
    static PyObject *ctx[NEST];
    PyObject *v = PyContextVar_New("depth", NULL);
    int entered = 0, bad = 0;
    for (int i = 0; i < NEST; i++) {
        ctx[i] = PyContext_New();
        if (PyContext_Enter(ctx[i]) != 0) break;
        entered++;
        if (get_long(v) != MISSING || !set_long(v, i) || get_long(v) != i) bad++;
    }
    CHECK_EQ_LONG(NEST, entered);
    CHECK_EQ_LONG(0, bad);
    /* any of them but the innermost refuses both Enter and Exit */
    CHECK_EQ_LONG(-1, PyContext_Exit(ctx[NEST / 2]));
    CHECK_ERROR(PyExc_RuntimeError, DIFFERENT_MSG);
    CHECK_EQ_LONG(-1, PyContext_Enter(ctx[0]));
    expect_already_entered(ctx[0]);
    CHECK_EQ_LONG(NEST - 1, get_long(v));
    for (int i = entered - 1; i >= 0; i--) {
        if (PyContext_Exit(ctx[i]) != 0) { bad++; PyErr_Clear(); }
        if (get_long(v) != (i == 0 ? MISSING : i - 1)) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    for (int i = 0; i < NEST; i++) {
        CHECK(PyContext_Exit(ctx[i]) == -1); /* all exited */
        if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) bad++;
        PyErr_Clear();
        Py_CLEAR(ctx[i]);
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_NO_ERROR();
    Py_DECREF(v);
}

void suite_context(void) {
    RUN(new_returns_distinct_contexts);
    RUN(new_context_is_empty_and_not_entered);
    RUN(copy_returns_new_unentered_context);
    RUN(copy_is_snapshot_later_sets_invisible_both_ways);
    RUN(copy_of_entered_context_is_snapshot_and_not_entered);
    RUN(copy_of_outer_entered_context_while_nested);
    RUN(copy_of_copy_keeps_values);
    RUN(copy_rejects_every_non_context);
    RUN(copy_current_returns_new_object_each_time);
    RUN(copy_current_snapshots_current_context);
    RUN(copy_current_of_empty_entered_context_is_empty);
    RUN(copy_current_at_base_level_copies_base_context);
    RUN(enter_exit_switch_the_current_context);
    RUN(entering_does_not_inherit_outer_values);
    RUN(reenter_after_exit_keeps_values);
    RUN(thread_holds_a_reference_while_entered);
    RUN(enter_of_current_context_fails_and_changes_nothing);
    RUN(enter_of_outer_entered_context_fails);
    RUN(exit_of_never_entered_context_fails);
    RUN(exit_twice_fails_with_not_entered);
    RUN(exit_of_non_innermost_context_fails_and_changes_nothing);
    RUN(enter_and_exit_reject_every_non_context);
    RUN(enter_exit_type_error_even_with_contexts_entered);
    RUN(error_messages_use_each_contexts_own_address);
    RUN(check_exact_on_every_kind_of_object);
    RUN(thousand_nested_enters_unwound_in_order);
}
