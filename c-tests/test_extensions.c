/* The library's own API beyond CPython's (library-only): running code in a
 * context, reading a context without entering it (consistent snapshots under
 * a concurrent setter), variable and token accessors with the MISSING
 * marker, and the C scoped-set helpers. */
#include "harness.h"

#if LIBRARY_ONLY
#include <pthread.h>
#include <sched.h>

#define BAD_CALL "bad argument to internal function"

static PyObject *run_var;
static int run_calls;

static PyObject *set_and_return(void *arg) {
    run_calls++;
    PyObject *t = h_set_long(run_var, (long)(intptr_t)arg);
    if (t == NULL) return NULL;
    Py_DECREF(t);
    return PyLong_FromLong(1000 + (long)(intptr_t)arg);
}

static PyObject *fail(void *arg) {
    run_calls++;
    PyErr_SetString(PyExc_ValueError, arg);
    return NULL;
}

static PyObject *null_without_error(void *arg) { (void)arg; run_calls++; return NULL; }

static int freed;
static void count_free(PyObject *cap) { (void)cap; freed++; }

static PyObject *exit_own_context(void *ctx) {
    run_calls++;
    CHECK_EQ_LONG(0, PyContext_Exit(ctx)); /* misuse: run's own Exit then fails */
    return PyCapsule_New(&freed, "r", count_free);
}

static PyObject *nested_run(void *inner) {
    run_calls++;
    return contextvars_context_run(inner, set_and_return, (void *)(intptr_t)2);
}

TEST(run_enters_calls_and_exits) {
    run_var = PyContextVar_New("run_var", NULL);
    PyObject *ctx = PyContext_New();
    run_calls = 0;
    PyObject *r = contextvars_context_run(ctx, set_and_return, (void *)(intptr_t)7);
    CHECK_EQ_LONG(1007, h_long(r));
    Py_XDECREF(r);
    CHECK_EQ_LONG(1, run_calls);
    CHECK_EQ_LONG(H_MISSING, h_get_long(run_var, NULL)); /* set in ctx, not here */
    PyObject *v = NULL;
    CHECK_EQ_LONG(0, contextvars_context_get(ctx, run_var, NULL, &v));
    CHECK_EQ_LONG(7, h_long(v));
    Py_XDECREF(v);
    CHECK_EQ_LONG(0, PyContext_Enter(ctx)); /* exited: can be entered again */
    CHECK_EQ_LONG(0, PyContext_Exit(ctx));

    /* Nested: the inner run's sets stay in the inner context. */
    PyObject *inner = PyContext_New();
    r = contextvars_context_run(ctx, nested_run, inner);
    CHECK_EQ_LONG(1002, h_long(r));
    Py_XDECREF(r);
    CHECK_EQ_LONG(0, contextvars_context_get(inner, run_var, NULL, &v));
    CHECK_EQ_LONG(2, h_long(v)); Py_XDECREF(v);
    CHECK_EQ_LONG(0, contextvars_context_get(ctx, run_var, NULL, &v));
    CHECK_EQ_LONG(7, h_long(v)); Py_XDECREF(v);
    Py_DECREF(inner); Py_DECREF(ctx); Py_CLEAR(run_var);
}

TEST(run_errors) {
    PyObject *ctx = PyContext_New();
    run_calls = 0;
    CHECK(contextvars_context_run(ctx, fail, "callback failed") == NULL);
    CHECK_ERROR(PyExc_ValueError, "callback failed");
    CHECK_EQ_LONG(0, PyContext_Enter(ctx)); /* it was exited despite the failure */
    CHECK(contextvars_context_run(ctx, fail, "x") == NULL); /* already entered: not called */
    char expected[200];
    snprintf(expected, sizeof expected, "cannot enter context: <_contextvars.Context object at %p> is already entered", (void *)ctx);
    CHECK_ERROR(PyExc_RuntimeError, expected);
    CHECK_EQ_LONG(0, PyContext_Exit(ctx));
    CHECK_EQ_LONG(1, run_calls);

    CHECK(contextvars_context_run(ctx, null_without_error, NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, "contextvars_context_run: callback returned NULL without setting an exception");

    freed = 0;
    CHECK(contextvars_context_run(ctx, exit_own_context, ctx) == NULL);
    snprintf(expected, sizeof expected, "cannot exit context: <_contextvars.Context object at %p> has not been entered", (void *)ctx);
    CHECK_ERROR(PyExc_RuntimeError, expected);
    CHECK_EQ_LONG(1, freed); /* the callback's result was released */

    CHECK(contextvars_context_run(Py_None, fail, "x") == NULL);
    CHECK_ERROR(PyExc_TypeError, "an instance of Context was expected");
    CHECK(contextvars_context_run(NULL, fail, "x") == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(contextvars_context_run(ctx, NULL, NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(3, run_calls); /* fail, null_without_error, exit_own_context */
    Py_DECREF(ctx);
}

static PyObject *rv_a, *rv_b, *rv_c;

static PyObject *set_two(void *arg) {
    (void)arg;
    PyObject *t1 = h_set_long(rv_a, 1), *t2 = h_set_long(rv_b, 2);
    Py_XDECREF(t1); Py_XDECREF(t2);
    Py_RETURN_NONE;
}

TEST(reading_a_context_len_get_contains) {
    PyObject *dflt = PyLong_FromLong(77), *other = PyLong_FromLong(88);
    rv_a = PyContextVar_New("a", NULL);
    rv_b = PyContextVar_New("b", NULL);
    rv_c = PyContextVar_New("c", dflt);
    PyObject *ctx = PyContext_New(), *v = Py_None;
    CHECK_EQ_LONG(0, contextvars_context_len(ctx));
    PyObject *r = contextvars_context_run(ctx, set_two, NULL);
    CHECK(r == Py_None); Py_XDECREF(r);
    CHECK_EQ_LONG(2, contextvars_context_len(ctx));
    CHECK_EQ_LONG(1, contextvars_context_contains(ctx, rv_a));
    CHECK_EQ_LONG(1, contextvars_context_contains(ctx, rv_b));
    CHECK_EQ_LONG(0, contextvars_context_contains(ctx, rv_c));
    CHECK_EQ_LONG(0, contextvars_context_get(ctx, rv_b, other, &v));
    CHECK_EQ_LONG(2, h_long(v)); Py_XDECREF(v);
    /* Not set in ctx: the given default, else the variable's, else NULL. */
    CHECK_EQ_LONG(0, contextvars_context_get(ctx, rv_c, other, &v));
    CHECK(v == other); Py_XDECREF(v);
    CHECK_EQ_LONG(0, contextvars_context_get(ctx, rv_c, NULL, &v));
    CHECK(v == dflt); Py_XDECREF(v);
    PyObject *unset = PyContextVar_New("unset", NULL);
    v = Py_None;
    CHECK_EQ_LONG(0, contextvars_context_get(ctx, unset, NULL, &v));
    CHECK(v == NULL);
    CHECK_NO_ERROR();
    /* The current context can be read too (the thread's own map). */
    CHECK_EQ_LONG(0, PyContext_Enter(ctx));
    CHECK_EQ_LONG(2, contextvars_context_len(ctx));
    CHECK_EQ_LONG(0, contextvars_context_get(ctx, rv_a, NULL, &v));
    CHECK_EQ_LONG(1, h_long(v)); Py_XDECREF(v);
    CHECK_EQ_LONG(0, PyContext_Exit(ctx));

    /* Errors. */
    CHECK_EQ_LONG(-1, contextvars_context_len(Py_None));
    CHECK_ERROR(PyExc_TypeError, "an instance of Context was expected");
    CHECK_EQ_LONG(-1, contextvars_context_len(NULL));
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    v = Py_None;
    CHECK_EQ_LONG(-1, contextvars_context_get(rv_a, rv_a, NULL, &v));
    CHECK_ERROR(PyExc_TypeError, "an instance of Context was expected");
    CHECK(v == NULL);
    CHECK_EQ_LONG(-1, contextvars_context_get(ctx, Py_None, NULL, &v));
    CHECK_ERROR(PyExc_TypeError, "a ContextVar key was expected, got None");
    CHECK_EQ_LONG(-1, contextvars_context_get(ctx, other, NULL, &v));
    CHECK_ERROR(PyExc_TypeError, "a ContextVar key was expected, got 88");
    CHECK_EQ_LONG(-1, contextvars_context_get(ctx, NULL, NULL, &v));
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, contextvars_context_get(ctx, rv_a, NULL, NULL));
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, contextvars_context_contains(ctx, ctx));
    char expected[200];
    snprintf(expected, sizeof expected, "a ContextVar key was expected, got <_contextvars.Context object at %p>", (void *)ctx);
    CHECK_ERROR(PyExc_TypeError, expected);
    CHECK_EQ_LONG(-1, contextvars_context_contains(NULL, rv_a));
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, contextvars_context_contains(Py_None, rv_a));
    CHECK_ERROR(PyExc_TypeError, "an instance of Context was expected");
    Py_DECREF(unset); Py_DECREF(ctx); Py_DECREF(dflt); Py_DECREF(other);
    Py_CLEAR(rv_a); Py_CLEAR(rv_b); Py_CLEAR(rv_c);
}

struct collected { int n; PyObject *vars[8]; long values[8]; int stop_after; };

static int collect(PyObject *var, PyObject *value, void *arg) {
    struct collected *c = arg;
    CHECK(PyContextVar_CheckExact(var));
    if (c->n < 8) { c->vars[c->n] = var; c->values[c->n] = h_long(value); }
    c->n++;
    if (c->stop_after && c->n == c->stop_after) return 7;
    return 0;
}

static int fail_visit(PyObject *var, PyObject *value, void *arg) {
    (void)var; (void)value; (void)arg;
    PyErr_SetString(PyExc_ValueError, "visit failed");
    return -1;
}

TEST(items_visits_every_variable_once) {
    PyObject *ctx = PyContext_New(), *vars[5];
    CHECK_EQ_LONG(0, PyContext_Enter(ctx));
    for (int i = 0; i < 5; i++) {
        vars[i] = PyContextVar_New("v", NULL);
        PyObject *t = h_set_long(vars[i], 500 + i);
        Py_XDECREF(t);
    }
    CHECK_EQ_LONG(0, PyContext_Exit(ctx));
    struct collected c = { 0, { 0 }, { 0 }, 0 };
    CHECK_EQ_LONG(0, contextvars_context_items(ctx, collect, &c));
    CHECK_EQ_LONG(5, c.n);
    for (int i = 0; i < 5; i++) {
        int found = 0;
        for (int j = 0; j < 5; j++) if (c.vars[j] == vars[i] && c.values[j] == 500 + i) found++;
        CHECK_EQ_LONG(1, found);
    }
    struct collected stop = { 0, { 0 }, { 0 }, 2 };
    CHECK_EQ_LONG(7, contextvars_context_items(ctx, collect, &stop)); /* stops at the first nonzero */
    CHECK_EQ_LONG(2, stop.n);
    CHECK_EQ_LONG(-1, contextvars_context_items(ctx, fail_visit, NULL));
    CHECK_ERROR(PyExc_ValueError, "visit failed");
    PyObject *empty = PyContext_New();
    struct collected none = { 0, { 0 }, { 0 }, 0 };
    CHECK_EQ_LONG(0, contextvars_context_items(empty, collect, &none));
    CHECK_EQ_LONG(0, none.n);
    CHECK_EQ_LONG(-1, contextvars_context_items(ctx, NULL, NULL));
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, contextvars_context_items(Py_None, collect, &c));
    CHECK_ERROR(PyExc_TypeError, "an instance of Context was expected");
    for (int i = 0; i < 5; i++) Py_DECREF(vars[i]);
    Py_DECREF(empty); Py_DECREF(ctx);
}

/* A setter thread keeps x and y equal in ctx (x first, then y); readers on
 * another thread must see x == y or x == y + 1 in every snapshot, and every
 * value they borrow must stay alive during the visit. */
#define PAIRS 4
static PyObject *snap_ctx, *snap_x, *snap_y, *snap_pad[PAIRS];
static int snap_stop;

static void *snap_setter(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(0, PyContext_Enter(snap_ctx));
    for (long i = 1000; !__atomic_load_n(&snap_stop, __ATOMIC_ACQUIRE); i++) {
        PyObject *t = h_set_long(snap_x, i);
        Py_XDECREF(t);
        if (i % 8 == 0) sched_yield(); /* let readers catch x ahead of y */
        t = h_set_long(snap_y, i);
        Py_XDECREF(t);
    }
    CHECK_EQ_LONG(0, PyContext_Exit(snap_ctx));
    return NULL;
}

struct pair { long x, y; int n; };
static int read_pair(PyObject *var, PyObject *value, void *arg) {
    struct pair *p = arg;
    long v = h_long(value); /* the value must be alive: valgrind checks */
    if (var == snap_x) p->x = v;
    if (var == snap_y) p->y = v;
    p->n++;
    sched_yield(); /* the setter moves on meanwhile */
    return 0;
}

static PyObject *set_two_xy_initial(void *arg) {
    (void)arg;
    PyObject *t = h_set_long(snap_x, 999);
    Py_XDECREF(t);
    t = h_set_long(snap_y, 999);
    Py_XDECREF(t);
    for (int i = 0; i < PAIRS; i++) {
        snap_pad[i] = PyContextVar_New("pad", NULL);
        t = h_set_long(snap_pad[i], 5000 + i);
        Py_XDECREF(t);
    }
    Py_RETURN_NONE;
}

TEST(items_and_get_see_a_consistent_snapshot_while_another_thread_sets) {
    snap_ctx = PyContext_New();
    snap_x = PyContextVar_New("x", NULL);
    snap_y = PyContextVar_New("y", NULL);
    PyObject *r0 = contextvars_context_run(snap_ctx, set_two_xy_initial, NULL);
    Py_XDECREF(r0);
    snap_stop = 0;
    pthread_t th;
    CHECK_EQ_LONG(0, pthread_create(&th, NULL, snap_setter, NULL));
    int ahead = 0;
    for (int i = 0; i < 2000; i++) {
        struct pair p = { -1, -1, 0 };
        CHECK_EQ_LONG(0, contextvars_context_items(snap_ctx, read_pair, &p));
        CHECK_EQ_LONG(2 + PAIRS, p.n);
        CHECK(p.x == p.y || p.x == p.y + 1);
        if (p.x == p.y + 1) ahead++;
        CHECK_EQ_LONG(2 + PAIRS, contextvars_context_len(snap_ctx));
        PyObject *v = NULL;
        CHECK_EQ_LONG(0, contextvars_context_get(snap_ctx, snap_x, NULL, &v));
        CHECK(h_long(v) >= 0);
        Py_XDECREF(v);
    }
    __atomic_store_n(&snap_stop, 1, __ATOMIC_RELEASE);
    CHECK_EQ_LONG(0, pthread_join(th, NULL));
    (void)ahead; /* usually > 0: snapshots do land between the two sets */
    Py_CLEAR(snap_ctx); Py_CLEAR(snap_x); Py_CLEAR(snap_y);
    for (int i = 0; i < PAIRS; i++) Py_CLEAR(snap_pad[i]);
}

TEST(variable_name_and_default) {
    PyObject *d = PyLong_FromLong(4242);
    PyObject *with = PyContextVar_New("request_id", d), *without = PyContextVar_New("nom\xc3\xa9", NULL);
    PyObject *name = contextvars_var_name(with);
    CHECK(PyUnicode_Check(name));
    CHECK_STR("request_id", PyUnicode_AsUTF8(name));
    Py_XDECREF(name);
    name = contextvars_var_name(without);
    CHECK_STR("nom\xc3\xa9", PyUnicode_AsUTF8(name));
    Py_XDECREF(name);
    PyObject *out = Py_None;
    CHECK_EQ_LONG(0, contextvars_var_default(with, &out));
    CHECK(out == d);
    Py_XDECREF(out);
    out = Py_None;
    CHECK_EQ_LONG(0, contextvars_var_default(without, &out));
    CHECK(out == NULL);
    CHECK_NO_ERROR();
    CHECK(contextvars_var_name(d) == NULL);
    CHECK_ERROR(PyExc_TypeError, "an instance of ContextVar was expected");
    CHECK(contextvars_var_name(NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    out = Py_None;
    CHECK_EQ_LONG(-1, contextvars_var_default(d, &out));
    CHECK_ERROR(PyExc_TypeError, "an instance of ContextVar was expected");
    CHECK(out == NULL);
    CHECK_EQ_LONG(-1, contextvars_var_default(with, NULL));
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    Py_DECREF(with); Py_DECREF(without); Py_DECREF(d);
}

TEST(token_var_and_old_value_with_the_missing_marker) {
    PyObject *var = PyContextVar_New("v", NULL), *ctx = h_enter_new();
    PyObject *first = PyLong_FromLong(3001), *second = PyLong_FromLong(3002);
    PyObject *t1 = PyContextVar_Set(var, first), *t2 = PyContextVar_Set(var, second);
    PyObject *tv = contextvars_token_var(t1);
    CHECK(tv == var);
    Py_XDECREF(tv);
    Py_ssize_t missing_refcnt = Py_REFCNT(CONTEXTVARS_TOKEN_MISSING);
    PyObject *old = contextvars_token_old_value(t1);
    CHECK(old == CONTEXTVARS_TOKEN_MISSING); /* no value before the first Set */
    Py_XDECREF(old);
    CHECK_EQ_LONG(missing_refcnt, Py_REFCNT(CONTEXTVARS_TOKEN_MISSING)); /* immortal */
    old = contextvars_token_old_value(t2);
    CHECK(old == first);
    Py_XDECREF(old);
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, t2));
    old = contextvars_token_old_value(t2); /* unchanged by using the token */
    CHECK(old == first);
    Py_XDECREF(old);
    /* The marker's repr, as Python writes it. */
    PyObject *v = NULL;
    CHECK_EQ_LONG(-1, contextvars_context_get(ctx, CONTEXTVARS_TOKEN_MISSING, NULL, &v));
    CHECK_ERROR(PyExc_TypeError, "a ContextVar key was expected, got <Token.MISSING>");
    CHECK(!PyContextToken_CheckExact(CONTEXTVARS_TOKEN_MISSING) && !PyContext_CheckExact(CONTEXTVARS_TOKEN_MISSING));
    /* Errors. */
    CHECK(contextvars_token_var(var) == NULL);
    CHECK_ERROR(PyExc_TypeError, "an instance of Token was expected");
    CHECK(contextvars_token_old_value(Py_None) == NULL);
    CHECK_ERROR(PyExc_TypeError, "an instance of Token was expected");
    CHECK(contextvars_token_var(NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(contextvars_token_old_value(NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, t1));
    Py_DECREF(t1); Py_DECREF(t2); Py_DECREF(first); Py_DECREF(second);
    h_leave(ctx);
    Py_DECREF(var);
}

static int scoped_early_return(PyObject *var, PyObject *value, int leave_early) {
    CONTEXTVARS_SCOPED_SET(s, var, value);
    if (s.token == NULL) return -1;
    if (leave_early) return (int)h_get_long(var, NULL);
    return (int)h_get_long(var, NULL) + 1;
}

TEST(scoped_set_in_c) {
    PyObject *var = PyContextVar_New("v", NULL), *ctx = h_enter_new();
    PyObject *one = PyLong_FromLong(1), *two = PyLong_FromLong(2);
    contextvars_scoped_set outer = contextvars_scoped_set_begin(var, one);
    CHECK(outer.token != NULL);
    CHECK_EQ_LONG(1, h_get_long(var, NULL));
    {
        contextvars_scoped_set inner = contextvars_scoped_set_begin(var, two);
        CHECK_EQ_LONG(2, h_get_long(var, NULL));
        CHECK_EQ_LONG(0, contextvars_scoped_set_end(&inner));
        CHECK_EQ_LONG(0, contextvars_scoped_set_end(&inner)); /* a second end does nothing */
    }
    CHECK_EQ_LONG(1, h_get_long(var, NULL));
    CHECK_EQ_LONG(0, contextvars_scoped_set_end(&outer));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var, NULL));

    /* The cleanup form resets on every way out of the block. */
    CHECK_EQ_LONG(1, scoped_early_return(var, one, 1));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var, NULL));
    CHECK_EQ_LONG(3, scoped_early_return(var, two, 0));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var, NULL));
    for (int i = 0; i < 3; i++) {
        CONTEXTVARS_SCOPED_SET(s, var, two);
        if (i == 1) break;
    }
    CHECK_EQ_LONG(H_MISSING, h_get_long(var, NULL));

    /* A failed begin: the error is set, the end does nothing. */
    contextvars_scoped_set bad = contextvars_scoped_set_begin(Py_None, one);
    CHECK(bad.token == NULL);
    CHECK_ERROR(PyExc_TypeError, "an instance of ContextVar was expected");
    CHECK_EQ_LONG(0, contextvars_scoped_set_end(&bad));
    CHECK_NO_ERROR();

    /* Ending in another context fails with Reset's error... */
    contextvars_scoped_set s = contextvars_scoped_set_begin(var, one);
    PyObject *other = h_enter_new();
    CHECK_EQ_LONG(-1, contextvars_scoped_set_end(&s));
    CHECK(PyErr_ExceptionMatches(PyExc_ValueError));
    PyErr_Clear();
    /* ...and the cleanup form keeps an error that was already pending. */
    s = contextvars_scoped_set_begin(var, one);
    h_leave(other);
    other = h_enter_new();
    PyErr_SetString(PyExc_KeyError, "pending");
    contextvars_scoped_set_cleanup(&s);
    CHECK_ERROR(PyExc_KeyError, "pending");
    CHECK(s.token == NULL);
    h_leave(other);
    Py_DECREF(one); Py_DECREF(two);
    h_leave(ctx);
    Py_DECREF(var);
}
#endif

void suite_extensions(void) {
#if LIBRARY_ONLY
    RUN(run_enters_calls_and_exits);
    RUN(run_errors);
    RUN(reading_a_context_len_get_contains);
    RUN(items_visits_every_variable_once);
    RUN(items_and_get_see_a_consistent_snapshot_while_another_thread_sets);
    RUN(variable_name_and_default);
    RUN(token_var_and_old_value_with_the_missing_marker);
    RUN(scoped_set_in_c);
#endif
}
