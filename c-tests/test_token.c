/* Tokens and PyContextVar_Reset: the exact order of its checks and their
 * messages (with the ContextVar and Token reprs), what a failed Reset leaves
 * alone, restore-not-undo, reset to MISSING, and long token stacks. */
#include "harness.h"

#define MISSING H_MISSING
#define GET_FAILED H_GET_FAILED
#define NOT_VAR_MSG "an instance of ContextVar was expected"
#define NOT_TOKEN_MSG "an instance of Token was expected"

#define get_long_with h_get_long
#define get_long(var) h_get_long((var), NULL)
/* Sets var to the int v; returns the token (new reference). */
#define set_long h_set_long

#define enter_new h_enter_new
#define leave h_leave

/* `<ContextVar name='v' at 0x..>`; dflt is the default's repr or NULL.
 * quoted_name is the name's repr, quotes included. */
static void var_repr(char *buf, size_t n, PyObject *var, const char *quoted_name, const char *dflt) {
    if (dflt)
        snprintf(buf, n, "<ContextVar name=%s default=%s at %p>", quoted_name, dflt, (void *)var);
    else
        snprintf(buf, n, "<ContextVar name=%s at %p>", quoted_name, (void *)var);
}

static void token_repr(char *buf, size_t n, PyObject *tok, const char *vrepr, int used) {
    snprintf(buf, n, "<Token%s var=%s at %p>", used ? " used" : "", vrepr, (void *)tok);
}

/* Expected messages for the token errors of a token of the var named 'v'
 * without a default. */
static void expect_used(PyObject *tok, PyObject *var, const char *quoted_name, const char *dflt) {
    char vr[512], tr[768], msg[1024];
    var_repr(vr, sizeof vr, var, quoted_name, dflt);
    token_repr(tr, sizeof tr, tok, vr, 1);
    snprintf(msg, sizeof msg, "%s has already been used once", tr);
    CHECK_ERROR(PyExc_RuntimeError, msg);
}

static void expect_other_var(PyObject *tok, PyObject *var, const char *quoted_name, const char *dflt) {
    char vr[512], tr[768], msg[1024];
    var_repr(vr, sizeof vr, var, quoted_name, dflt);
    token_repr(tr, sizeof tr, tok, vr, 0);
    snprintf(msg, sizeof msg, "%s was created by a different ContextVar", tr);
    CHECK_ERROR(PyExc_ValueError, msg);
}

static void expect_other_context(PyObject *tok, PyObject *var, const char *quoted_name, const char *dflt) {
    char vr[512], tr[768], msg[1024];
    var_repr(vr, sizeof vr, var, quoted_name, dflt);
    token_repr(tr, sizeof tr, tok, vr, 0);
    snprintf(msg, sizeof msg, "%s was created in a different Context", tr);
    CHECK_ERROR(PyExc_ValueError, msg);
}

/* ---- check order ---- */

TEST(reset_checks_var_type_before_token) {
    static int anchor;
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    PyObject *tok = set_long(v, 1);
    PyObject *used = set_long(v, 2);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, used));
    PyObject *n = PyLong_FromLong(5), *s = PyUnicode_FromString("v");
    PyObject *cap = PyCapsule_New(&anchor, "tok", NULL);
    PyObject *ctx = PyContext_New();
    PyObject *bad_vars[] = {tok, ctx, n, s, Py_None, cap, (PyObject *)&PyContextVar_Type};
    PyObject *tokens[] = {tok, used, n, v, ctx};
    for (size_t i = 0; i < sizeof bad_vars / sizeof *bad_vars; i++)
        for (size_t j = 0; j < sizeof tokens / sizeof *tokens; j++) {
            CHECK_EQ_LONG(-1, PyContextVar_Reset(bad_vars[i], tokens[j]));
            CHECK_ERROR(PyExc_TypeError, NOT_VAR_MSG);
        }
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, tok)); /* not spent */
    CHECK_EQ_LONG(MISSING, get_long(v));
    leave(a);
    CHECK_NO_ERROR();
    Py_DECREF(tok);
    Py_DECREF(used);
    Py_DECREF(n);
    Py_DECREF(s);
    Py_DECREF(cap);
    Py_DECREF(ctx);
    Py_DECREF(v);
}

TEST(reset_checks_token_type) {
    static int anchor;
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *a = enter_new();
    PyObject *tok = set_long(v, 1);
    PyObject *n = PyLong_FromLong(5), *s = PyUnicode_FromString("t");
    PyObject *cap = PyCapsule_New(&anchor, "tok", NULL);
    PyObject *ctx = PyContext_New();
    PyObject *bad[] = {v, w, ctx, a, n, s, Py_None, cap, (PyObject *)&PyContextToken_Type};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_EQ_LONG(-1, PyContextVar_Reset(v, bad[i]));
        CHECK_ERROR(PyExc_TypeError, NOT_TOKEN_MSG);
    }
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, tok));
    leave(a);
    CHECK_NO_ERROR();
    Py_DECREF(tok);
    Py_DECREF(n);
    Py_DECREF(s);
    Py_DECREF(cap);
    Py_DECREF(ctx);
    Py_DECREF(v);
    Py_DECREF(w);
}

TEST(reset_checks_used_before_var_and_context) {
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *a = enter_new();
    PyObject *t = set_long(v, 1);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    /* right var, right context */
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t));
    expect_used(t, v, "'v'", NULL);
    /* wrong var, right context */
    CHECK_EQ_LONG(-1, PyContextVar_Reset(w, t));
    expect_used(t, v, "'v'", NULL);
    PyObject *b = enter_new();
    /* right var, wrong context; wrong var, wrong context */
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t));
    expect_used(t, v, "'v'", NULL);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(w, t));
    expect_used(t, v, "'v'", NULL);
    leave(b);
    leave(a);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(w, t)); /* base level */
    expect_used(t, v, "'v'", NULL);
    CHECK_NO_ERROR();
    Py_DECREF(t);
    Py_DECREF(v);
    Py_DECREF(w);
}

TEST(reset_checks_var_before_context) {
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *same_name = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    PyObject *t = set_long(v, 1);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(w, t)); /* right context */
    expect_other_var(t, v, "'v'", NULL);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(same_name, t)); /* identity, not name */
    expect_other_var(t, v, "'v'", NULL);
    PyObject *b = enter_new();
    CHECK_EQ_LONG(-1, PyContextVar_Reset(w, t)); /* wrong context too */
    expect_other_var(t, v, "'v'", NULL);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t)); /* only the context is wrong */
    expect_other_context(t, v, "'v'", NULL);
    leave(b);
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(MISSING, get_long(v));
    leave(a);
    CHECK_NO_ERROR();
    Py_DECREF(t);
    Py_DECREF(v);
    Py_DECREF(w);
    Py_DECREF(same_name);
}

TEST(reset_in_a_different_context_fails_everywhere_but_its_own) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    PyObject *t = set_long(v, 1);
    /* nested inside a */
    PyObject *inner = enter_new();
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t));
    expect_other_context(t, v, "'v'", NULL);
    leave(inner);
    /* a copy of a, with the same contents (S6) */
    PyObject *copy = PyContext_CopyCurrent();
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_EQ_LONG(0, PyContext_Enter(copy));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t));
    expect_other_context(t, v, "'v'", NULL);
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(copy));
    /* the base context */
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t));
    expect_other_context(t, v, "'v'", NULL);
    CHECK_EQ_LONG(MISSING, get_long(v));
    /* back in a it works */
    CHECK_EQ_LONG(0, PyContext_Enter(a));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(MISSING, get_long(v));
    leave(a);
    PyContext_Enter(copy);
    CHECK_EQ_LONG(1, get_long(v)); /* the copy kept its value */
    PyContext_Exit(copy);
    CHECK_NO_ERROR();
    Py_DECREF(copy);
    Py_DECREF(t);
    Py_DECREF(v);
}

TEST(token_made_at_base_fails_in_copy_of_base) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *t = set_long(v, 3);
    PyObject *copy = PyContext_CopyCurrent();
    PyContext_Enter(copy);
    CHECK_EQ_LONG(3, get_long(v));
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t));
    expect_other_context(t, v, "'v'", NULL);
    PyContext_Exit(copy);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_NO_ERROR();
    Py_DECREF(copy);
    Py_DECREF(t);
    Py_DECREF(v);
}

/* S8: type, var and context failures leave the token unused. */
TEST(failed_reset_does_not_spend_the_token) {
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *n = PyLong_FromLong(0);
    PyObject *a = enter_new();
    PyObject *t1 = set_long(v, 1);
    PyObject *t2 = set_long(v, 2);
    for (int round = 0; round < 3; round++) {
        CHECK_EQ_LONG(-1, PyContextVar_Reset(n, t2));
        CHECK_ERROR(PyExc_TypeError, NOT_VAR_MSG);
        CHECK_EQ_LONG(-1, PyContextVar_Reset(w, t2));
        expect_other_var(t2, v, "'v'", NULL); /* the repr still says unused */
        PyObject *b = enter_new();
        CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t2));
        expect_other_context(t2, v, "'v'", NULL);
        leave(b);
    }
    CHECK_EQ_LONG(2, get_long(v));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t2));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t2)); /* now it is spent */
    expect_used(t2, v, "'v'", NULL);
    CHECK_EQ_LONG(1, get_long(v)); /* and the failed reuse changed nothing */
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t1));
    CHECK_EQ_LONG(MISSING, get_long(v));
    leave(a);
    CHECK_NO_ERROR();
    Py_DECREF(t1);
    Py_DECREF(t2);
    Py_DECREF(n);
    Py_DECREF(v);
    Py_DECREF(w);
}

/* ---- what Reset does ---- */

TEST(reset_restores_it_does_not_undo) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    PyObject *t1 = set_long(v, 1);
    PyObject *t2 = set_long(v, 2);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t1)); /* t1 recorded MISSING */
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t2)); /* t2 recorded 1 */
    CHECK_EQ_LONG(1, get_long(v));
    leave(a);
    CHECK_NO_ERROR();
    Py_DECREF(t1);
    Py_DECREF(t2);
    Py_DECREF(v);
}

TEST(reset_in_forward_order_restores_each_recorded_value) {
    enum { N = 20 };
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *t[N];
    PyObject *a = enter_new();
    for (int i = 0; i < N; i++) t[i] = set_long(v, i);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (PyContextVar_Reset(v, t[i]) != 0) { bad++; PyErr_Clear(); }
        if (get_long(v) != (i == 0 ? MISSING : i - 1)) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(N - 2, get_long(v));
    leave(a);
    for (int i = 0; i < N; i++) Py_DECREF(t[i]);
    Py_DECREF(v);
}

TEST(reset_in_shuffled_order_restores_each_recorded_value) {
    enum { N = 16 };
    static const int order[N] = {7, 3, 12, 0, 15, 9, 1, 14, 4, 10, 6, 2, 13, 8, 11, 5};
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *t[N];
    PyObject *a = enter_new();
    for (int i = 0; i < N; i++) t[i] = set_long(v, i * 3);
    int bad = 0;
    for (int k = 0; k < N; k++) {
        int i = order[k];
        if (PyContextVar_Reset(v, t[i]) != 0) { bad++; PyErr_Clear(); }
        if (get_long(v) != (i == 0 ? MISSING : (i - 1) * 3)) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(4 * 3, get_long(v)); /* t[5] was last: it recorded 4 * 3 */
    leave(a);
    for (int i = 0; i < N; i++) Py_DECREF(t[i]);
    Py_DECREF(v);
}

TEST(reset_to_missing_removes_the_var_so_defaults_show) {
    PyObject *d = PyLong_FromLong(42), *ed = PyLong_FromLong(-9);
    PyObject *v = PyContextVar_New("v", d), *w = PyContextVar_New("w", NULL);
    PyObject *a = enter_new();
    PyObject *tv = set_long(v, 1);
    PyObject *tw = set_long(w, 2);
    PyObject *tv2 = set_long(v, 3); /* later sets do not matter */
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, tv));
    CHECK_EQ_LONG(42, get_long(v));
    CHECK_EQ_LONG(-9, get_long_with(v, ed));
    CHECK_EQ_LONG(0, PyContextVar_Reset(w, tw));
    CHECK_EQ_LONG(MISSING, get_long(w));
    CHECK_EQ_LONG(-9, get_long_with(w, ed));
    /* the snapshot taken now has neither */
    PyObject *snap = PyContext_CopyCurrent();
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, tv2)); /* tv2 recorded 1 */
    CHECK_EQ_LONG(1, get_long(v));
    leave(a);
    PyContext_Enter(snap);
    CHECK_EQ_LONG(42, get_long(v));
    CHECK_EQ_LONG(MISSING, get_long(w));
    PyContext_Exit(snap);
    CHECK_NO_ERROR();
    Py_DECREF(snap);
    Py_DECREF(tv);
    Py_DECREF(tw);
    Py_DECREF(tv2);
    Py_DECREF(v);
    Py_DECREF(w);
    Py_DECREF(d);
    Py_DECREF(ed);
}

TEST(reset_restores_none_as_a_value) {
    PyObject *d = PyLong_FromLong(42);
    PyObject *v = PyContextVar_New("v", d);
    PyObject *a = enter_new();
    PyObject *t0 = PyContextVar_Set(v, Py_None);
    PyObject *t1 = set_long(v, 1);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t1));
    PyObject *val = NULL;
    CHECK_EQ_LONG(0, PyContextVar_Get(v, NULL, &val));
    CHECK(val == Py_None);
    Py_XDECREF(val);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t0));
    CHECK_EQ_LONG(42, get_long(v));
    leave(a);
    CHECK_NO_ERROR();
    Py_DECREF(t0);
    Py_DECREF(t1);
    Py_DECREF(v);
    Py_DECREF(d);
}

TEST(tokens_stay_valid_across_enter_exit_of_other_contexts) {
    PyObject *v = PyContextVar_New("v", NULL);
    /* made at the base level */
    PyObject *tb = set_long(v, 1);
    PyObject *x = enter_new();
    PyObject *tx = set_long(v, 2);
    leave(x);
    for (int i = 0; i < 3; i++) {
        PyObject *y = enter_new();
        PyObject *z = enter_new();
        leave(z);
        leave(y);
    }
    CHECK_EQ_LONG(1, get_long(v));
    /* made in a, with others entered and exited inside a meanwhile */
    PyObject *a = enter_new();
    PyObject *ta = set_long(v, 10);
    PyObject *b = enter_new();
    PyObject *tb2 = set_long(v, 20);
    leave(b);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, tb2)); /* b's token, not a's */
    expect_other_context(tb2, v, "'v'", NULL);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, ta));
    CHECK_EQ_LONG(MISSING, get_long(v));
    leave(a);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, tb));
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_NO_ERROR();
    Py_DECREF(tb);
    Py_DECREF(tx);
    Py_DECREF(ta);
    Py_DECREF(tb2);
    Py_DECREF(v);
}

TEST(token_of_reentered_context_is_valid) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    PyObject *t1 = set_long(v, 1);
    PyObject *t2 = set_long(v, 2);
    PyContext_Exit(a);
    PyContext_Enter(a);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t2));
    CHECK_EQ_LONG(1, get_long(v));
    PyContext_Exit(a);
    /* entered again, nested inside another context this time */
    PyObject *outer = enter_new();
    PyContext_Enter(a);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t1));
    CHECK_EQ_LONG(MISSING, get_long(v));
    PyContext_Exit(a);
    leave(outer);
    CHECK_NO_ERROR();
    Py_DECREF(t1);
    Py_DECREF(t2);
    Py_DECREF(a);
    Py_DECREF(v);
}

/* ---- reprs in the messages ---- */

static void check_reprs_for(PyObject *v, const char *quoted_name, const char *dflt) {
    PyObject *w = PyContextVar_New("w", NULL);
    PyObject *a = enter_new();
    PyObject *t = set_long(v, 1);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(w, t));
    expect_other_var(t, v, quoted_name, dflt);
    PyObject *b = enter_new();
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t));
    expect_other_context(t, v, quoted_name, dflt);
    leave(b);
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(-1, PyContextVar_Reset(v, t));
    expect_used(t, v, quoted_name, dflt);
    leave(a);
    Py_DECREF(t);
    Py_DECREF(w);
}

TEST(reprs_without_default) {
    PyObject *v = PyContextVar_New("v", NULL);
    check_reprs_for(v, "'v'", NULL);
    Py_DECREF(v);
    v = PyContextVar_New("a longer_name", NULL);
    check_reprs_for(v, "'a longer_name'", NULL);
    Py_DECREF(v);
}

TEST(reprs_with_int_default) {
    PyObject *d = PyLong_FromLong(42);
    PyObject *v = PyContextVar_New("v", d);
    check_reprs_for(v, "'v'", "42");
    Py_DECREF(v);
    Py_DECREF(d);
    d = PyLong_FromLong(-1234567);
    v = PyContextVar_New("v", d);
    check_reprs_for(v, "'v'", "-1234567");
    Py_DECREF(v);
    Py_DECREF(d);
}

TEST(reprs_with_str_default_show_quotes) {
    PyObject *d = PyUnicode_FromString("x");
    PyObject *v = PyContextVar_New("v", d);
    check_reprs_for(v, "'v'", "'x'");
    Py_DECREF(v);
    Py_DECREF(d);
    d = PyUnicode_FromString("");
    v = PyContextVar_New("v", d);
    check_reprs_for(v, "'v'", "''");
    Py_DECREF(v);
    Py_DECREF(d);
    d = PyUnicode_FromString("it's");
    v = PyContextVar_New("v", d);
    check_reprs_for(v, "'v'", "\"it's\"");
    Py_DECREF(v);
    Py_DECREF(d);
}

TEST(reprs_with_none_default) {
    PyObject *v = PyContextVar_New("v", Py_None);
    check_reprs_for(v, "'v'", "None");
    Py_DECREF(v);
}

TEST(reprs_with_object_defaults) {
    char buf[128];
    PyObject *ctx = PyContext_New();
    PyObject *v = PyContextVar_New("v", ctx);
    snprintf(buf, sizeof buf, "<_contextvars.Context object at %p>", (void *)ctx);
    check_reprs_for(v, "'v'", buf);
    Py_DECREF(v);
    PyObject *inner = PyContextVar_New("inner", NULL);
    v = PyContextVar_New("v", inner);
    snprintf(buf, sizeof buf, "<ContextVar name='inner' at %p>", (void *)inner);
    check_reprs_for(v, "'v'", buf);
    Py_DECREF(v);
    Py_DECREF(inner);
    Py_DECREF(ctx);
}

TEST(reprs_with_quoted_and_non_ascii_names) {
    PyObject *v = PyContextVar_New("it's", NULL);
    check_reprs_for(v, "\"it's\"", NULL);
    Py_DECREF(v);
    v = PyContextVar_New("caf\xc3\xa9", NULL);
    check_reprs_for(v, "'caf\xc3\xa9'", NULL);
    Py_DECREF(v);
    v = PyContextVar_New("", NULL);
    check_reprs_for(v, "''", NULL);
    Py_DECREF(v);
}

/* ---- stacks ---- */

#define STACK 10000

TEST(ten_thousand_stacked_tokens_reset_in_reverse) {
    static PyObject *t[STACK];
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *a = enter_new();
    int bad = 0;
    for (int i = 0; i < STACK; i++) {
        t[i] = set_long(v, i);
        if (t[i] == NULL) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(STACK - 1, get_long(v));
    for (int i = STACK - 1; i >= 0; i--) {
        if (PyContextVar_Reset(v, t[i]) != 0) { bad++; PyErr_Clear(); }
        if (get_long(v) != (i == 0 ? MISSING : i - 1)) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    for (int i = 0; i < STACK; i++) { /* all spent */
        if (PyContextVar_Reset(v, t[i]) != -1 || !PyErr_ExceptionMatches(PyExc_RuntimeError)) bad++;
        PyErr_Clear();
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(MISSING, get_long(v));
    leave(a);
    for (int i = 0; i < STACK; i++) Py_CLEAR(t[i]);
    Py_DECREF(v);
}

void suite_token(void) {
    RUN(reset_checks_var_type_before_token);
    RUN(reset_checks_token_type);
    RUN(reset_checks_used_before_var_and_context);
    RUN(reset_checks_var_before_context);
    RUN(reset_in_a_different_context_fails_everywhere_but_its_own);
    RUN(token_made_at_base_fails_in_copy_of_base);
    RUN(failed_reset_does_not_spend_the_token);
    RUN(reset_restores_it_does_not_undo);
    RUN(reset_in_forward_order_restores_each_recorded_value);
    RUN(reset_in_shuffled_order_restores_each_recorded_value);
    RUN(reset_to_missing_removes_the_var_so_defaults_show);
    RUN(reset_restores_none_as_a_value);
    RUN(tokens_stay_valid_across_enter_exit_of_other_contexts);
    RUN(token_of_reentered_context_is_valid);
    RUN(reprs_without_default);
    RUN(reprs_with_int_default);
    RUN(reprs_with_str_default_show_quotes);
    RUN(reprs_with_none_default);
    RUN(reprs_with_object_defaults);
    RUN(reprs_with_quoted_and_non_ascii_names);
    RUN(ten_thousand_stacked_tokens_reset_in_reverse);
}
