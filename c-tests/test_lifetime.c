/* Lifetimes (S15), seen through capsule destructors: each capsule points at
 * its own counter, which its destructor increments. Who keeps a value alive:
 * the contexts holding it, tokens recording it, vars defaulting to it, the
 * thread while a context is entered. Reference counts are compared only as
 * deltas, and only where the API fixes them. No case builds a cycle. */
#include "harness.h"

#define MISSING H_MISSING

static int destructor_misuse; /* a destructor that could not read its capsule */

static void count_free(PyObject *capsule) {
    int *counter = PyCapsule_GetPointer(capsule, "lifetime");
    if (counter == NULL) {
        PyErr_Clear();
        destructor_misuse++;
        return;
    }
    (*counter)++;
}

/* A capsule whose death increments *counter (which starts at 0). */
static PyObject *tracked(int *counter) {
    *counter = 0;
    PyObject *c = PyCapsule_New(counter, "lifetime", count_free);
    CHECK(c != NULL);
    return c;
}

#define enter_new h_enter_new
#define leave h_leave

/* Sets var to value, consuming our reference to value and dropping the token. */
static void set_steal(PyObject *var, PyObject *value) {
    PyObject *t = PyContextVar_Set(var, value);
    CHECK(t != NULL);
    Py_XDECREF(t);
    Py_DECREF(value);
}

/* Whether the current value of var is the capsule for `counter`. */
static int holds(PyObject *var, int *counter) {
    PyObject *val = NULL;
    if (PyContextVar_Get(var, NULL, &val) != 0) { PyErr_Clear(); return 0; }
    if (val == NULL) return 0;
    int r = PyCapsule_GetPointer(val, "lifetime") == counter;
    if (!r) PyErr_Clear();
    Py_DECREF(val);
    return r;
}

TEST(capsule_destructor_runs_once_on_last_release) {
    int n;
    PyObject *c = tracked(&n);
    Py_INCREF(c);
    Py_DECREF(c);
    CHECK_EQ_LONG(0, n);
    Py_DECREF(c);
    CHECK_EQ_LONG(1, n);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(context_owns_its_values) {
    int n1, n2;
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *c = enter_new();
    set_steal(v, tracked(&n1));
    set_steal(w, tracked(&n2));
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_EQ_LONG(0, n1);
    CHECK_EQ_LONG(0, n2);
    PyContext_Enter(c);
    CHECK(holds(v, &n1));
    CHECK(holds(w, &n2));
    PyContext_Exit(c);
    Py_DECREF(c); /* the last reference: the values go with it */
    CHECK_EQ_LONG(1, n1);
    CHECK_EQ_LONG(1, n2);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
    Py_DECREF(w);
}

TEST(var_owns_its_default) {
    int n;
    PyObject *d = tracked(&n);
    PyObject *v = PyContextVar_New("v", d);
    Py_DECREF(d);
    CHECK_EQ_LONG(0, n);
    CHECK(holds(v, &n));
    Py_DECREF(v);
    CHECK_EQ_LONG(1, n);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(var_used_as_key_lives_as_long_as_the_context) {
    int nd;
    PyObject *d = tracked(&nd);
    PyObject *v = PyContextVar_New("v", d);
    Py_DECREF(d);
    PyObject *c = enter_new();
    PyObject *one = PyLong_FromLong(1);
    set_steal(v, one);
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    Py_DECREF(v); /* c still holds the var as a key */
    CHECK_EQ_LONG(0, nd);
    Py_DECREF(c);
    CHECK_EQ_LONG(1, nd);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(get_result_outlives_context_and_var) {
    int n;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *c = enter_new();
    set_steal(v, tracked(&n));
    PyObject *val = NULL;
    CHECK_EQ_LONG(0, PyContextVar_Get(v, NULL, &val));
    leave(c);
    Py_DECREF(v);
    CHECK_EQ_LONG(0, n); /* ours */
    Py_XDECREF(val);
    CHECK_EQ_LONG(1, n);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(get_default_result_is_a_new_reference) {
    int n;
    PyObject *d = tracked(&n);
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *val = NULL;
    CHECK_EQ_LONG(0, PyContextVar_Get(v, d, &val));
    CHECK(val == d);
    Py_DECREF(d);
    CHECK_EQ_LONG(0, n);
    Py_XDECREF(val);
    CHECK_EQ_LONG(1, n);
    Py_DECREF(v);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(overwriting_releases_the_old_value_at_once) {
    int n1, n2, n3;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *c = enter_new();
    set_steal(v, tracked(&n1));
    CHECK_EQ_LONG(0, n1);
    set_steal(v, tracked(&n2)); /* its token recorded n1, and is gone */
    CHECK_EQ_LONG(1, n1);
    CHECK_EQ_LONG(0, n2);
    CHECK(holds(v, &n2));
    PyObject *none_tok = PyContextVar_Set(v, Py_None);
    CHECK_EQ_LONG(0, n2); /* this token records n2 */
    Py_XDECREF(none_tok);
    CHECK_EQ_LONG(1, n2);
    set_steal(v, tracked(&n3));
    leave(c);
    CHECK_EQ_LONG(1, n3);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(token_owns_its_old_value) {
    int n1, n2;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *c = enter_new();
    set_steal(v, tracked(&n1));
    PyObject *cap2 = tracked(&n2);
    PyObject *t = PyContextVar_Set(v, cap2);
    Py_DECREF(cap2);
    CHECK_EQ_LONG(0, n1); /* t records it */
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t)); /* back to n1; n2 released */
    CHECK_EQ_LONG(1, n2);
    CHECK(holds(v, &n1));
    CHECK_EQ_LONG(0, n1);
    Py_DECREF(t);
    CHECK_EQ_LONG(0, n1); /* the context holds it again */
    leave(c);
    CHECK_EQ_LONG(1, n1);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(token_owns_its_context) {
    int n1, n2;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *c = enter_new();
    PyObject *cap1 = tracked(&n1), *cap2 = tracked(&n2);
    PyObject *t1 = PyContextVar_Set(v, cap1); /* records MISSING */
    PyObject *t2 = PyContextVar_Set(v, cap2); /* records cap1 */
    Py_DECREF(cap1);
    Py_DECREF(cap2);
    leave(c); /* only the tokens hold c now */
    CHECK_EQ_LONG(0, n1);
    CHECK_EQ_LONG(0, n2);
    Py_DECREF(t1); /* t2 still holds c, and c holds cap2 */
    CHECK_EQ_LONG(0, n1);
    CHECK_EQ_LONG(0, n2);
    Py_DECREF(t2);
    CHECK_EQ_LONG(1, n1);
    CHECK_EQ_LONG(1, n2);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(token_owns_its_var) {
    int nd;
    PyObject *d = tracked(&nd);
    PyObject *v = PyContextVar_New("v", d);
    Py_DECREF(d);
    PyObject *c = enter_new();
    PyObject *t = PyContextVar_Set(v, Py_None);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t)); /* c no longer holds v as a key */
    leave(c);
    Py_DECREF(v);
    CHECK_EQ_LONG(0, nd); /* t holds v */
    Py_DECREF(t);
    CHECK_EQ_LONG(1, nd);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(reset_to_missing_releases_the_value_at_once) {
    int n;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *c = enter_new();
    PyObject *cap = tracked(&n);
    PyObject *t = PyContextVar_Set(v, cap);
    Py_DECREF(cap);
    CHECK(holds(v, &n));
    CHECK_EQ_LONG(0, n);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(1, n);
    Py_DECREF(t);
    leave(c);
    CHECK_EQ_LONG(1, n);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(reset_to_missing_at_base_level_releases_the_value) {
    int n;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *cap = tracked(&n);
    PyObject *t = PyContextVar_Set(v, cap); /* the base context holds it */
    Py_DECREF(cap);
    PyObject *x = enter_new();
    leave(x);
    CHECK_EQ_LONG(0, n);
    CHECK(holds(v, &n));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(1, n);
    Py_DECREF(t);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(failed_reset_keeps_token_and_value_alive) {
    int n;
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *c = enter_new();
    set_steal(v, tracked(&n));
    PyObject *t = PyContextVar_Set(v, Py_None); /* records the capsule */
    CHECK_EQ_LONG(-1, PyContextVar_Reset(w, t));
    PyErr_Clear();
    CHECK_EQ_LONG(0, n);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK(holds(v, &n));
    Py_DECREF(t);
    CHECK_EQ_LONG(0, n);
    leave(c);
    CHECK_EQ_LONG(1, n);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
    Py_DECREF(w);
}

/* The thread holds the entered context: with the caller's reference and
 * the token gone, the value survives while the context is current. A second
 * token is taken before Exit, because CPython needs the caller to hold a
 * reference across Exit (S1). */
TEST(current_context_keeps_values_alive_while_entered) {
    int n;
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *c = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    set_steal(v, tracked(&n));
    Py_DECREF(c); /* only the thread holds c */
    PyObject *x = enter_new();
    leave(x);
    CHECK_EQ_LONG(0, n);
    CHECK(holds(v, &n));
    PyObject *keep = PyContextVar_Set(w, Py_None); /* a reference to c again */
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_EQ_LONG(0, n);
    Py_DECREF(keep); /* c dies */
    CHECK_EQ_LONG(1, n);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
    Py_DECREF(w);
}

TEST(base_context_keeps_values_alive) {
    int n;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *cap = tracked(&n);
    PyObject *t = PyContextVar_Set(v, cap);
    Py_DECREF(cap);
    PyObject *copy = PyContext_CopyCurrent();
    Py_DECREF(copy);
    for (int i = 0; i < 3; i++) {
        PyObject *x = enter_new();
        leave(x);
    }
    CHECK_EQ_LONG(0, n);
    CHECK(holds(v, &n));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(1, n);
    Py_DECREF(t);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(copies_share_values) {
    int n;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    set_steal(v, tracked(&n));
    PyObject *b = PyContext_CopyCurrent();
    PyObject *c = PyContext_Copy(b);
    leave(a);
    CHECK_EQ_LONG(0, n);
    Py_DECREF(b);
    CHECK_EQ_LONG(0, n);
    PyContext_Enter(c);
    CHECK(holds(v, &n));
    PyContext_Exit(c);
    Py_DECREF(c);
    CHECK_EQ_LONG(1, n);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(overwrite_in_a_copy_leaves_the_original_holding) {
    int n1, n2;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    set_steal(v, tracked(&n1));
    PyObject *b = PyContext_CopyCurrent();
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    PyContext_Enter(b);
    set_steal(v, tracked(&n2));
    PyContext_Exit(b);
    CHECK_EQ_LONG(0, n1); /* a holds it */
    Py_DECREF(a);
#if LIBRARY_ONLY
    /* b's Set went into a delta over the map it shares with a; that map
     * keeps the first value until b goes (README: differences). */
    CHECK_EQ_LONG(0, n1);
#else
    CHECK_EQ_LONG(1, n1);
#endif
    CHECK_EQ_LONG(0, n2);
    Py_DECREF(b);
    CHECK_EQ_LONG(1, n1);
    CHECK_EQ_LONG(1, n2);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(setting_the_same_value_twice_releases_nothing) {
    int n;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    PyObject *cap = tracked(&n);
    PyObject *t1 = PyContextVar_Set(v, cap);
    PyObject *t2 = PyContextVar_Set(v, cap);
    Py_DECREF(cap);
    Py_DECREF(t1);
    Py_DECREF(t2); /* recorded cap, which the context still holds */
    CHECK_EQ_LONG(0, n);
    CHECK(holds(v, &n));
    leave(a);
    CHECK_EQ_LONG(1, n);
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(values_held_by_nested_contexts_die_with_them) {
    enum { N = 8 };
    int n[N];
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *ctx[N];
    for (int i = 0; i < N; i++) {
        ctx[i] = enter_new();
        set_steal(v, tracked(&n[i]));
    }
    for (int i = N - 1; i >= 0; i--) {
        CHECK(holds(v, &n[i]));
        leave(ctx[i]);
        CHECK_EQ_LONG(1, n[i]);
        if (i > 0) CHECK_EQ_LONG(0, n[i - 1]);
    }
    CHECK_EQ_LONG(0, destructor_misuse);
    Py_DECREF(v);
}

TEST(set_takes_one_reference_and_reset_gives_it_back) {
    /* a str: no small-object caching in either implementation */
    PyObject *s = PyUnicode_FromString("tracked by refcount");
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    Py_ssize_t r = Py_REFCNT(s);
    PyObject *t = PyContextVar_Set(v, s);
    CHECK(Py_REFCNT(s) > r); /* held by the context */
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(r, Py_REFCNT(s)); /* all of it released */
    Py_DECREF(t);
    leave(a);
    CHECK_EQ_LONG(r, Py_REFCNT(s));
    Py_DECREF(s);
    Py_DECREF(v);
}

/* A destructor that releases another value sees it die at once (CPython
 * destroys nested releases immediately too). */
static PyObject *nested_var, *nested_token;
static int nested_b_freed, nested_b_freed_inside;
static void nested_b_free(PyObject *c) { (void)c; nested_b_freed = 1; }
static void nested_a_free(PyObject *c) {
    (void)c;
    PyContextVar_Reset(nested_var, nested_token); /* releases B's last holder */
    Py_CLEAR(nested_token);
    nested_b_freed_inside = nested_b_freed;
}

TEST(a_value_released_inside_a_destructor_dies_at_once) {
    nested_var = PyContextVar_New("nested", NULL);
    nested_b_freed = nested_b_freed_inside = 0;
    PyObject *b = PyCapsule_New(&nested_b_freed, NULL, nested_b_free);
    nested_token = PyContextVar_Set(nested_var, b);
    Py_DECREF(b);
    PyObject *a = PyCapsule_New(&nested_b_freed, NULL, nested_a_free);
    Py_DECREF(a);
    CHECK_EQ_LONG(1, nested_b_freed_inside);
    CHECK(nested_token == NULL);
    Py_CLEAR(nested_var);
}

void suite_lifetime(void) {
    RUN(a_value_released_inside_a_destructor_dies_at_once);
    RUN(capsule_destructor_runs_once_on_last_release);
    RUN(context_owns_its_values);
    RUN(var_owns_its_default);
    RUN(var_used_as_key_lives_as_long_as_the_context);
    RUN(get_result_outlives_context_and_var);
    RUN(get_default_result_is_a_new_reference);
    RUN(overwriting_releases_the_old_value_at_once);
    RUN(token_owns_its_old_value);
    RUN(token_owns_its_context);
    RUN(token_owns_its_var);
    RUN(reset_to_missing_releases_the_value_at_once);
    RUN(reset_to_missing_at_base_level_releases_the_value);
    RUN(failed_reset_keeps_token_and_value_alive);
    RUN(current_context_keeps_values_alive_while_entered);
    RUN(base_context_keeps_values_alive);
    RUN(copies_share_values);
    RUN(overwrite_in_a_copy_leaves_the_original_holding);
    RUN(setting_the_same_value_twice_releases_nothing);
    RUN(values_held_by_nested_contexts_die_with_them);
    RUN(set_takes_one_reference_and_reset_gives_it_back);
}
