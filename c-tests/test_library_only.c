/* What only the library promises, where CPython would crash or corrupt
 * memory: NULL arguments raise SystemError, *value is written on every Get
 * error, Exit after the caller dropped its reference (S1). */
#include "harness.h"

#include <pthread.h>

#if LIBRARY_ONLY
#define BAD_CALL "bad argument to internal function"

TEST(null_object_arguments_raise_system_error) {
    PyObject *var = PyContextVar_New("v", NULL), *ctx = PyContext_New(), *out = Py_None;
    PyObject *tok = PyContextVar_Set(var, Py_None);
    CHECK(PyContext_Copy(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContext_Enter(NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContext_Exit(NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyContextVar_New(NULL, NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContextVar_Get(NULL, NULL, &out)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(out == NULL);
    CHECK_EQ_LONG(-1, PyContextVar_Get(var, NULL, NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyContextVar_Set(NULL, Py_None) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyContextVar_Set(var, NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(NULL, tok)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(var, NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyLong_AsLong(NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyUnicode_FromString(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyUnicode_AsUTF8(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK((Py_NewRef)(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(Py_NewRef(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    PyErr_SetString(NULL, "x"); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    PyErr_SetString(PyExc_ValueError, NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    PyErr_SetNone(NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    /* CPython's own answer for NULL here is ValueError; we keep it. */
    CHECK(PyCapsule_GetPointer(NULL, "x") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with invalid PyCapsule object");
    /* The state is untouched: the token still resets. */
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, tok));
    Py_DECREF(tok); Py_DECREF(ctx); Py_DECREF(var);
}

TEST(null_is_harmless_where_nothing_can_be_reported) {
    Py_IncRef(NULL); Py_DecRef(NULL);
    Py_INCREF(NULL); Py_DECREF(NULL);
    CHECK(Py_XNewRef(NULL) == NULL);
    CHECK(!PyContext_CheckExact(NULL) && !PyContextVar_CheckExact(NULL) && !PyContextToken_CheckExact(NULL));
    CHECK(!PyLong_Check(NULL) && !PyUnicode_Check(NULL) && !PyCapsule_CheckExact(NULL));
    CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches(NULL, NULL));
    PyObject *t = (PyObject *)1, *v = (PyObject *)1;
    PyErr_Fetch(&t, &v, NULL); /* nothing pending: NULLs, and a NULL slot is fine */
    CHECK(t == NULL && v == NULL);
    CHECK_NO_ERROR();
}

TEST(get_writes_null_on_its_type_error) {
    PyObject *out = Py_None;
    CHECK_EQ_LONG(-1, PyContextVar_Get(Py_None, NULL, &out));
    CHECK_ERROR(PyExc_TypeError, "an instance of ContextVar was expected");
    CHECK(out == NULL); /* CPython leaves it unwritten (S2) */
}

static int s1_freed;
static void s1_free(PyObject *c) { (void)c; s1_freed++; }

TEST(exit_after_the_caller_dropped_its_reference) {
    PyObject *var = PyContextVar_New("v", NULL);
    PyObject *outer_cap = PyCapsule_New(&s1_freed, "s1", s1_free);
    PyObject *outer = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(outer));
    PyObject *t1 = PyContextVar_Set(var, outer_cap);
    PyObject *inner = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(inner));
    PyObject *inner_cap = PyCapsule_New(&s1_freed, "s1", s1_free);
    PyObject *t2 = PyContextVar_Set(var, inner_cap);
    Py_DECREF(inner_cap); /* only `inner` holds it now */
    Py_DECREF(t2); /* the token would keep `inner` alive */
    s1_freed = 0;
    Py_DECREF(inner); /* CPython's S1 hazard: only the thread holds it now */
    CHECK_EQ_LONG(0, PyContext_Exit(inner));
    CHECK_EQ_LONG(1, s1_freed); /* inner and its value are gone... */
    PyObject *got = NULL;
    CHECK_EQ_LONG(0, PyContextVar_Get(var, NULL, &got));
    CHECK(got == outer_cap); /* ...and the outer context is intact */
    Py_XDECREF(got);
    CHECK_EQ_LONG(0, PyContext_Exit(outer));
    Py_DECREF(t1); Py_DECREF(outer); Py_DECREF(outer_cap);
    CHECK_EQ_LONG(2, s1_freed);
    Py_DECREF(var);
}

TEST(a_failed_set_changes_nothing) {
    PyObject *var = PyContextVar_New("v", NULL);
    PyObject *t = h_set_long(var, 5);
    CHECK(PyContextVar_Set(var, NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(5, h_get_long(var, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, t));
    Py_DECREF(t); Py_DECREF(var);
}

TEST(header_layout_matches_the_library) {
    /* The hand-written PyObject/PyTypeObject of the header (pinned in Rust too). */
    CHECK_EQ_LONG(16, sizeof(PyObject));
    CHECK_EQ_LONG(0, offsetof(PyObject, ob_refcnt));
    CHECK_EQ_LONG(8, offsetof(PyObject, ob_type));
    CHECK_EQ_LONG(16, offsetof(PyTypeObject, tp_name));
    CHECK_EQ_LONG(32, offsetof(PyTypeObject, tp_dealloc));
    CHECK_EQ_LONG(48, sizeof(PyTypeObject));
    CHECK(Py_REFCNT(Py_None) >= CONTEXTVARS_IMMORTAL_REFCNT);
    CHECK_STR(CONTEXTVARS_VERSION, CONTEXTVARS_VERSION); /* the macro exists */
}

TEST(null_combinations_and_non_errors) {
    PyObject *out = Py_None;
    CHECK_EQ_LONG(-1, PyContextVar_Get(NULL, NULL, NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContextVar_Get(NULL, Py_None, &out)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(out == NULL);
    CHECK(PyContextVar_Set(NULL, NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(NULL, NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyContextVar_New(NULL, Py_None) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    PyErr_SetString(NULL, NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    /* A NULL destructor or name is not an error. */
    int x;
    PyObject *cap = PyCapsule_New(&x, "n", NULL);
    CHECK(cap != NULL);
    CHECK_NO_ERROR();
    Py_XDECREF(cap);
    cap = PyCapsule_New(&x, NULL, NULL);
    CHECK(cap != NULL && PyCapsule_GetPointer(cap, NULL) == &x);
    CHECK_NO_ERROR();
    Py_XDECREF(cap);
    /* A NULL default (no default) is not an error either. */
    PyObject *var = PyContextVar_New("v", NULL);
    CHECK(var != NULL);
    CHECK_NO_ERROR();
    Py_XDECREF(var);
    /* A NULL pending error: Restore of three NULLs clears, Fetch of nothing is NULLs. */
    PyErr_Restore(NULL, NULL, NULL);
    CHECK_NO_ERROR();
}

TEST(a_failed_call_with_a_null_replaces_a_pending_error) {
    PyErr_SetString(PyExc_KeyError, "pending");
    CHECK(PyContext_Copy(NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
}

static int fetch_freed;
static void fetch_free(PyObject *c) { (void)c; fetch_freed++; }

TEST(fetch_into_null_slots_releases_those_parts) {
    fetch_freed = 0;
    PyErr_Restore(Py_NewRef(PyExc_ValueError), PyCapsule_New(&fetch_freed, NULL, fetch_free), NULL);
    PyErr_Fetch(NULL, NULL, NULL);
    CHECK_EQ_LONG(1, fetch_freed);
    CHECK_NO_ERROR();
    PyErr_Restore(Py_NewRef(PyExc_ValueError), PyCapsule_New(&fetch_freed, NULL, fetch_free), NULL);
    PyObject *t = NULL;
    PyErr_Fetch(&t, NULL, NULL);
    CHECK(t == PyExc_ValueError);
    CHECK_EQ_LONG(2, fetch_freed);
    Py_XDECREF(t);
    CHECK_NO_ERROR();
}

TEST(null_long_is_bad_internal_call_exactly) {
    CHECK_EQ_LONG(-1, PyLong_AsLong(NULL));
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    PyErr_BadInternalCall();
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
}

/* S1 at depth: three nested contexts, each kept alive only by the thread. */
static int stack_freed;
static void stack_free(PyObject *c) { (void)c; stack_freed++; }

TEST(a_stack_of_contexts_held_only_by_the_thread_unwinds) {
    PyObject *var = PyContextVar_New("v", NULL);
    PyObject *c[3], *caps[3];
    stack_freed = 0;
    for (int i = 0; i < 3; i++) {
        c[i] = PyContext_New();
        CHECK_EQ_LONG(0, PyContext_Enter(c[i]));
        caps[i] = PyCapsule_New(&caps[i], NULL, stack_free);
        PyObject *t = PyContextVar_Set(var, caps[i]);
        Py_XDECREF(t);
        Py_DECREF(caps[i]);
        Py_DECREF(c[i]); /* the thread's reference is the last */
    }
    CHECK_EQ_LONG(0, stack_freed);
    for (int i = 2; i >= 0; i--) {
        PyObject *got = NULL;
        CHECK_EQ_LONG(0, PyContextVar_Get(var, NULL, &got));
        CHECK(got == caps[i]); /* the innermost live context's value */
        if (got != NULL) CHECK(PyCapsule_GetPointer(got, NULL) == &caps[i]);
        Py_XDECREF(got);
        CHECK_EQ_LONG(0, PyContext_Exit(c[i]));
        CHECK_EQ_LONG(3 - i, stack_freed); /* c[i] and its value died at Exit */
    }
    CHECK_EQ_LONG(H_MISSING, h_get_long(var, NULL));
    Py_DECREF(var);
}

TEST(a_second_exit_after_the_thread_released_it_is_not_entered) {
    /* After Exit the thread's reference is gone; a second Exit through a
     * reference we kept elsewhere reports "not entered" instead. */
    PyObject *c = PyContext_New();
    PyObject *keep = Py_NewRef(c);
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    Py_DECREF(c);
    CHECK_EQ_LONG(2, Py_REFCNT(keep)); /* ours and the thread's */
    CHECK_EQ_LONG(0, PyContext_Exit(keep));
    CHECK_EQ_LONG(1, Py_REFCNT(keep));
    char expected[200];
    snprintf(expected, sizeof expected, "cannot exit context: <_contextvars.Context object at %p> has not been entered", (void *)keep);
    CHECK_EQ_LONG(-1, PyContext_Exit(keep));
    CHECK_ERROR(PyExc_RuntimeError, expected);
    Py_DECREF(keep);
}
#endif

#if LIBRARY_ONLY
/* The live-object counters (contextvars_live_counts) follow each kind,
 * including objects made on one thread and released on another. */
static contextvars_LiveCounts live_now(void) {
    contextvars_LiveCounts c;
    CHECK_EQ_LONG(0, contextvars_live_counts(&c));
    return c;
}
#define LIVE_DELTA(field, n, a, b) CHECK_EQ_LONG((n), (b).field - (a).field)

static PyObject *made_elsewhere[100];
static void *make_ints(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) made_elsewhere[i] = PyLong_FromLong(100000 + i);
    return NULL;
}

TEST(live_counts_follow_every_kind) {
    contextvars_LiveCounts a = live_now();
    PyObject *var = PyContextVar_New("live", NULL); /* a var and its name */
    contextvars_LiveCounts b = live_now();
    LIVE_DELTA(vars, 1, a, b); LIVE_DELTA(strs, 1, a, b); LIVE_DELTA(objects, 2, a, b);
    PyObject *ctx = PyContext_New();
    PyObject *n = PyLong_FromLong(5000), *small = PyLong_FromLong(5); /* small ints are static */
    PyObject *cap = PyCapsule_New(&a, NULL, NULL);
    b = live_now();
    LIVE_DELTA(contexts, 1, a, b); LIVE_DELTA(ints, 1, a, b); LIVE_DELTA(capsules, 1, a, b);
    LIVE_DELTA(map_nodes, 0, a, b); LIVE_DELTA(objects, 5, a, b);
    CHECK_EQ_LONG(0, PyContext_Enter(ctx));
    PyObject *t = PyContextVar_Set(var, n);
    b = live_now();
    LIVE_DELTA(tokens, 1, a, b); LIVE_DELTA(map_nodes, 1, a, b);
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, t));
    CHECK_EQ_LONG(0, PyContext_Exit(ctx));
    Py_DECREF(t); Py_DECREF(ctx); Py_DECREF(n); Py_DECREF(small); Py_DECREF(cap); Py_DECREF(var);
    b = live_now();
    LIVE_DELTA(objects, 0, a, b); LIVE_DELTA(map_nodes, 0, a, b);
    /* Made on a thread that has exited, released here: the sum is right. */
    pthread_t th;
    CHECK_EQ_LONG(0, pthread_create(&th, NULL, make_ints, NULL));
    CHECK_EQ_LONG(0, pthread_join(th, NULL));
    b = live_now();
    LIVE_DELTA(ints, 100, a, b);
    for (int i = 0; i < 100; i++) Py_DECREF(made_elsewhere[i]);
    b = live_now();
    LIVE_DELTA(ints, 0, a, b); LIVE_DELTA(objects, 0, a, b);
}
#endif

void suite_library_only(void) {
#if LIBRARY_ONLY
    RUN(null_object_arguments_raise_system_error);
    RUN(null_is_harmless_where_nothing_can_be_reported);
    RUN(get_writes_null_on_its_type_error);
    RUN(exit_after_the_caller_dropped_its_reference);
    RUN(a_failed_set_changes_nothing);
    RUN(header_layout_matches_the_library);
    RUN(null_combinations_and_non_errors);
    RUN(a_failed_call_with_a_null_replaces_a_pending_error);
    RUN(fetch_into_null_slots_releases_those_parts);
    RUN(null_long_is_bad_internal_call_exactly);
    RUN(a_stack_of_contexts_held_only_by_the_thread_unwinds);
    RUN(a_second_exit_after_the_thread_released_it_is_not_entered);
    RUN(live_counts_follow_every_kind);
#endif
}
