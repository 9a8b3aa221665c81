/* R9, re-entrancy: values whose destructors call back into the library
 * (Get, Set, Reset, Copy, CopyCurrent, Enter, Exit, the release of other
 * objects, the error indicator) while the library is releasing them: from
 * the release of a token, from Reset (to no value, and to a value, the
 * replaced value dying inside the call), from Exit and the release of a
 * context, from the release of a Set's token, and from PyErr_Clear,
 * PyErr_Restore and PyErr_SetString. (Set itself never releases a value:
 * the token takes the replaced one.) The results must be those of the calls run one after the
 * other (the destructor's calls come after the releasing call's own
 * effect), and the whole suite runs under valgrind and ASan.
 *
 * Shared with CPython where CPython gets it right; CPython 3.11's variable
 * cache goes stale when a destructor sets the same variable while
 * contextvar_set releases the old map (python/cpython#148891 family), so
 * those cases are library-only. */
#include "harness.h"

/* A capsule that runs `fn` when it dies. */
struct reent {
    void (*fn)(struct reent *);
    int ran;
};
static void reent_destructor(PyObject *cap) {
    struct reent *r = PyCapsule_GetPointer(cap, "reent");
    if (r == NULL) { PyErr_Clear(); return; }
    r->ran++;
    if (r->fn) r->fn(r);
}
static PyObject *reent_capsule(struct reent *r) { return PyCapsule_New(r, "reent", reent_destructor); }

static PyObject *var_a, *var_b;
static PyObject *kept_token_a, *kept_token_b; /* tokens the destructors made */
static PyObject *nested_cap;                  /* released by a destructor */
static long seen_a, seen_b, seen_copy_a, seen_copy_b, seen_inner, seen_after_exit;
static int copy_ok, enter_ok, nested_ran;

static void reset_globals(void) {
    var_a = PyContextVar_New("a", NULL);
    var_b = PyContextVar_New("b", NULL);
    kept_token_a = kept_token_b = nested_cap = NULL;
    seen_a = seen_b = seen_copy_a = seen_copy_b = seen_inner = seen_after_exit = 0;
    copy_ok = enter_ok = nested_ran = 0;
}
static void drop_globals(void) {
    Py_CLEAR(kept_token_a);
    Py_CLEAR(kept_token_b);
    Py_CLEAR(nested_cap);
    Py_CLEAR(var_a);
    Py_CLEAR(var_b);
}

static void count_nested(struct reent *r) { (void)r; nested_ran++; }
static struct reent nested = {count_nested, 0};

/* Everything at once: read, set another variable, copy the current
 * context and work inside the copy, enter and exit a fresh context, release
 * another capsule (whose destructor runs at once, nested). */
static void do_everything(struct reent *r) {
    (void)r;
    seen_a = h_get_long(var_a, NULL);
    kept_token_b = h_set_long(var_b, 7);
    PyObject *copy = PyContext_CopyCurrent();
    copy_ok = copy != NULL;
    if (copy != NULL) {
        if (PyContext_Enter(copy) == 0) {
            seen_copy_a = h_get_long(var_a, NULL);
            seen_copy_b = h_get_long(var_b, NULL);
            PyObject *t = h_set_long(var_a, 9); /* only in the copy */
            Py_XDECREF(t);
            PyContext_Exit(copy);
        }
        Py_DECREF(copy);
    }
    PyObject *fresh = PyContext_New();
    if (PyContext_Enter(fresh) == 0) {
        seen_inner = h_get_long(var_a, NULL); /* an empty context */
        enter_ok = PyContext_Exit(fresh) == 0;
    }
    Py_XDECREF(fresh);
    seen_after_exit = h_get_long(var_a, NULL);
    Py_CLEAR(nested_cap);
}

TEST(a_token_release_runs_a_destructor_that_uses_everything) {
    reset_globals();
    nested.ran = 0;
    nested_cap = reent_capsule(&nested);
    struct reent r = {do_everything, 0};
    PyObject *ctx = h_enter_new();
    PyObject *cap = reent_capsule(&r);
    PyObject *t1 = PyContextVar_Set(var_a, cap);
    Py_DECREF(cap);
    PyObject *t2 = h_set_long(var_a, 5); /* t2 now holds the capsule */
    Py_DECREF(t1);
    CHECK_EQ_LONG(0, r.ran);
    Py_DECREF(t2); /* the capsule dies here */
    CHECK_EQ_LONG(1, r.ran);
    CHECK_EQ_LONG(5, seen_a);
    CHECK(copy_ok);
    CHECK_EQ_LONG(5, seen_copy_a);
    CHECK_EQ_LONG(7, seen_copy_b);
    CHECK_EQ_LONG(H_MISSING, seen_inner);
    CHECK(enter_ok);
    CHECK_EQ_LONG(5, seen_after_exit); /* the copy's 9 stayed in the copy */
    CHECK_EQ_LONG(1, nested.ran);
    CHECK(nested_cap == NULL);
    CHECK_EQ_LONG(7, h_get_long(var_b, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_b, kept_token_b));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var_b, NULL));
    CHECK_NO_ERROR();
    h_leave(ctx);
    drop_globals();
}

/* Reset to no value: the value dies inside Reset, after the variable was
 * reset; the destructor sees it missing and sets it again. */
static void see_a_then_set_a(struct reent *r) {
    (void)r;
    seen_a = h_get_long(var_a, NULL);
    kept_token_a = h_set_long(var_a, 42);
    kept_token_b = h_set_long(var_b, 1);
}

TEST(reset_to_missing_releases_into_a_set_of_the_same_variable) {
    reset_globals();
    struct reent r = {see_a_then_set_a, 0};
    PyObject *ctx = h_enter_new();
    PyObject *cap = reent_capsule(&r);
    PyObject *t = PyContextVar_Set(var_a, cap);
    Py_DECREF(cap); /* only the context holds it */
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, t));
    CHECK_EQ_LONG(1, r.ran);
    CHECK_EQ_LONG(H_MISSING, seen_a);
    CHECK_EQ_LONG(42, h_get_long(var_a, NULL)); /* the destructor's Set came last */
    CHECK_EQ_LONG(1, h_get_long(var_b, NULL));
    /* The token is used; the destructor's tokens work. */
    CHECK_EQ_LONG(-1, PyContextVar_Reset(var_a, t));
    CHECK(PyErr_ExceptionMatches(PyExc_RuntimeError));
    PyErr_Clear();
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, kept_token_a));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var_a, NULL));
    Py_DECREF(t);
    h_leave(ctx);
    drop_globals();
}

#if LIBRARY_ONLY
/* Reset to a value: the replaced value dies inside Reset. CPython's cache
 * would then hold the reset value while the map holds the destructor's. */
TEST(reset_to_a_value_releases_into_a_set_of_the_same_variable) {
    reset_globals();
    struct reent r = {see_a_then_set_a, 0};
    PyObject *ctx = h_enter_new();
    PyObject *t0 = h_set_long(var_a, 3);
    PyObject *cap = reent_capsule(&r);
    PyObject *t = PyContextVar_Set(var_a, cap);
    Py_DECREF(cap);
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, t));
    CHECK_EQ_LONG(1, r.ran);
    CHECK_EQ_LONG(3, seen_a); /* already reset when the destructor ran */
    CHECK_EQ_LONG(42, h_get_long(var_a, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, kept_token_a));
    CHECK_EQ_LONG(3, h_get_long(var_a, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, t0));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var_a, NULL));
    Py_DECREF(t); Py_DECREF(t0);
    h_leave(ctx);
    drop_globals();
}

#endif

/* The canonical C pattern Py_DECREF(PyContextVar_Set(...)): the token
 * holds the replaced value, which dies at the decref and sets the same
 * variable again. */
TEST(releasing_a_sets_token_runs_a_destructor_that_sets_the_same_variable) {
    reset_globals();
    struct reent r = {see_a_then_set_a, 0};
    PyObject *ctx = h_enter_new();
    PyObject *cap = reent_capsule(&r);
    PyObject *t = PyContextVar_Set(var_a, cap);
    Py_DECREF(cap);
    Py_DECREF(t); /* the context is the capsule's only holder */
    PyObject *t2 = h_set_long(var_a, 8); /* the token takes the capsule */
    CHECK_EQ_LONG(0, r.ran);
    Py_DECREF(t2);
    CHECK_EQ_LONG(1, r.ran);
    CHECK_EQ_LONG(8, seen_a);
    CHECK_EQ_LONG(42, h_get_long(var_a, NULL));
    h_leave(ctx);
    drop_globals();
}


/* Exit releases the context (the caller's reference is dropped right
 * after), its map, and the capsule in it: the destructor runs in the outer
 * context, sets there, resets a token made there, enters and exits. */
static PyObject *outer_token_b;
static void in_outer_context(struct reent *r) {
    (void)r;
    seen_a = h_get_long(var_a, NULL);
    seen_b = h_get_long(var_b, NULL);
    if (PyContextVar_Reset(var_b, outer_token_b) != 0) { PyErr_Clear(); seen_b = -99; }
    kept_token_a = h_set_long(var_a, 11);
    PyObject *fresh = PyContext_New();
    if (PyContext_Enter(fresh) == 0) enter_ok = PyContext_Exit(fresh) == 0;
    Py_XDECREF(fresh);
}

TEST(exit_and_release_of_a_context_runs_a_destructor_in_the_outer_context) {
    reset_globals();
    struct reent r = {in_outer_context, 0};
    PyObject *outer = h_enter_new();
    PyObject *ta = h_set_long(var_a, 1);
    outer_token_b = h_set_long(var_b, 2);
    PyObject *inner = h_enter_new();
    PyObject *cap = reent_capsule(&r);
    PyObject *t = PyContextVar_Set(var_a, cap);
    Py_DECREF(cap);
    Py_DECREF(t);
    CHECK_EQ_LONG(0, PyContext_Exit(inner));
    CHECK_EQ_LONG(0, r.ran);
    Py_DECREF(inner); /* the last reference: context, map and capsule die */
    CHECK_EQ_LONG(1, r.ran);
    CHECK_EQ_LONG(1, seen_a);
    CHECK_EQ_LONG(2, seen_b);
    CHECK(enter_ok);
    CHECK_EQ_LONG(11, h_get_long(var_a, NULL));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var_b, NULL)); /* the destructor's Reset */
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, kept_token_a));
    CHECK_EQ_LONG(1, h_get_long(var_a, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, ta));
    Py_DECREF(ta);
    Py_CLEAR(outer_token_b);
    h_leave(outer);
    drop_globals();
}

#if LIBRARY_ONLY
/* The same with Exit itself releasing the context (the caller dropped its
 * reference while it was entered: CPython's S1 hazard). */
TEST(exit_itself_releases_a_context_whose_value_reenters) {
    reset_globals();
    struct reent r = {in_outer_context, 0};
    PyObject *outer = h_enter_new();
    PyObject *ta = h_set_long(var_a, 1);
    outer_token_b = h_set_long(var_b, 2);
    PyObject *inner = h_enter_new();
    PyObject *cap = reent_capsule(&r);
    PyObject *t = PyContextVar_Set(var_a, cap);
    Py_DECREF(cap);
    Py_DECREF(t);
    Py_DECREF(inner); /* only the thread holds it now */
    CHECK_EQ_LONG(0, PyContext_Exit(inner)); /* context, map and capsule die in here */
    CHECK_EQ_LONG(1, r.ran);
    CHECK_EQ_LONG(1, seen_a);
    CHECK_EQ_LONG(2, seen_b);
    CHECK(enter_ok);
    CHECK_EQ_LONG(11, h_get_long(var_a, NULL));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var_b, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, kept_token_a));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, ta));
    Py_DECREF(ta);
    Py_CLEAR(outer_token_b);
    h_leave(outer);
    drop_globals();
}
#endif

/* A destructor that re-enters the context being destroyed's neighbour: a
 * copy of the dying context's map, entered and exited from the destructor
 * while the original map is being released. */
static PyObject *survivor;
static void enter_the_survivor(struct reent *r) {
    (void)r;
    if (PyContext_Enter(survivor) == 0) {
        seen_a = h_get_long(var_a, NULL);
        PyObject *t = h_set_long(var_b, 5);
        Py_XDECREF(t);
        enter_ok = PyContext_Exit(survivor) == 0;
    }
}

TEST(a_destructor_enters_a_copy_of_the_dying_context) {
    reset_globals();
    struct reent r = {enter_the_survivor, 0};
    PyObject *dying = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(dying));
    PyObject *ta = h_set_long(var_a, 21);
    PyObject *cap = reent_capsule(&r);
    PyObject *t = PyContextVar_Set(var_b, cap);
    survivor = PyContext_CopyCurrent(); /* shares the map: a=21, b=capsule */
    Py_DECREF(cap);
    Py_DECREF(t);
    Py_DECREF(ta);
    CHECK_EQ_LONG(0, PyContext_Exit(dying));
    Py_DECREF(dying); /* capsule still held by the survivor's map */
    CHECK_EQ_LONG(0, r.ran);
    /* Replace b in the survivor: its old map's node held the capsule. */
    CHECK_EQ_LONG(0, PyContext_Enter(survivor));
    PyObject *t2 = h_set_long(var_b, 4);
    CHECK_EQ_LONG(0, PyContext_Exit(survivor));
    CHECK_EQ_LONG(0, r.ran); /* the token holds it */
    Py_DECREF(t2); /* dies: the destructor enters the survivor */
    CHECK_EQ_LONG(1, r.ran);
    CHECK(enter_ok);
    CHECK_EQ_LONG(21, seen_a);
    CHECK_EQ_LONG(0, PyContext_Enter(survivor));
    CHECK_EQ_LONG(5, h_get_long(var_b, NULL));
    CHECK_EQ_LONG(0, PyContext_Exit(survivor));
    Py_CLEAR(survivor);
    drop_globals();
}

/* A destructor that leaves the current context (and works in the outer
 * one) while Reset, running in that context, releases the value. */
static PyObject *leave_me;
static void exit_the_current_context(struct reent *r) {
    (void)r;
    enter_ok = PyContext_Exit(leave_me) == 0;
    seen_a = h_get_long(var_a, NULL); /* the outer context's value */
    kept_token_b = h_set_long(var_b, 3); /* set in the outer context */
}

TEST(a_destructor_exits_the_context_a_reset_is_running_in) {
    reset_globals();
    struct reent r = {exit_the_current_context, 0};
    PyObject *outer = h_enter_new();
    PyObject *ta = h_set_long(var_a, 1);
    leave_me = h_enter_new();
    PyObject *cap = reent_capsule(&r);
    PyObject *t = PyContextVar_Set(var_a, cap);
    Py_DECREF(cap);
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, t)); /* to no value: the capsule dies */
    CHECK_EQ_LONG(1, r.ran);
    CHECK(enter_ok);
    CHECK_EQ_LONG(1, seen_a);
    CHECK_EQ_LONG(1, h_get_long(var_a, NULL)); /* now in the outer context */
    CHECK_EQ_LONG(3, h_get_long(var_b, NULL));
    /* The left context was reset before the destructor ran. */
    CHECK_EQ_LONG(0, PyContext_Enter(leave_me));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var_a, NULL)); /* a new context: nothing inherited */
    CHECK_EQ_LONG(0, PyContext_Exit(leave_me));
    Py_DECREF(t);
    Py_CLEAR(leave_me);
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_b, kept_token_b));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var_a, ta));
    Py_DECREF(ta);
    h_leave(outer);
    drop_globals();
}

/* The error indicator: a destructor that raises while PyErr_Clear or
 * PyErr_Restore releases the previous error leaves its own error pending
 * (the indicator is replaced before the old parts are released, as in
 * CPython). */
static void raise_from_destructor(struct reent *r) {
    (void)r;
    PyErr_SetString(PyExc_KeyError, "from a destructor");
}

TEST(a_destructor_raising_while_the_indicator_is_cleared) {
    struct reent r = {raise_from_destructor, 0};
    PyErr_Restore(Py_NewRef(PyExc_ValueError), reent_capsule(&r), NULL);
    PyErr_Clear();
    CHECK_EQ_LONG(1, r.ran);
    CHECK_ERROR(PyExc_KeyError, "from a destructor");
    r.ran = 0;
    PyErr_Restore(Py_NewRef(PyExc_ValueError), reent_capsule(&r), NULL);
    PyErr_SetString(PyExc_TypeError, "replacing");
    CHECK_EQ_LONG(1, r.ran);
    CHECK_ERROR(PyExc_KeyError, "from a destructor"); /* set after the replacement */
}

void suite_reentry(void) {
    RUN(a_token_release_runs_a_destructor_that_uses_everything);
    RUN(reset_to_missing_releases_into_a_set_of_the_same_variable);
#if LIBRARY_ONLY
    RUN(reset_to_a_value_releases_into_a_set_of_the_same_variable);
    RUN(exit_itself_releases_a_context_whose_value_reenters);
#endif
    RUN(releasing_a_sets_token_runs_a_destructor_that_sets_the_same_variable);
    RUN(exit_and_release_of_a_context_runs_a_destructor_in_the_outer_context);
    RUN(a_destructor_enters_a_copy_of_the_dying_context);
    RUN(a_destructor_exits_the_context_a_reset_is_running_in);
    RUN(a_destructor_raising_while_the_indicator_is_cleared);
}
