/* Scale: 10,000 variables in one context (and its copy), 10,000 stacked
 * tokens, 1,000 nested Enters. Values are capsules that count their own
 * release, so each case also proves that everything was let go. */
#include "harness.h"

#define NVARS 10000
#define NTOKENS 10000
#define NNEST 1000

static int freed[NVARS]; /* freed[i]: how many times capsule i died */
static int destructor_misuse;

static void count_free(PyObject *capsule) {
    int *slot = PyCapsule_GetPointer(capsule, "scale");
    if (slot == NULL) { PyErr_Clear(); destructor_misuse++; return; }
    (*slot)++;
}

static void reset_counts(void) {
    memset(freed, 0, sizeof freed);
    destructor_misuse = 0;
}

static int count_freed(int n, int times) {
    int k = 0;
    for (int i = 0; i < n; i++) k += freed[i] == times;
    return k;
}

/* The index of the capsule var holds in the current context, -1 if none,
 * -2 if Get failed or the value is not one of ours. */
static long index_of(PyObject *var) {
    PyObject *val = NULL;
    if (PyContextVar_Get(var, NULL, &val) != 0) { PyErr_Clear(); return -2; }
    if (val == NULL) return -1;
    int *slot = PyCapsule_GetPointer(val, "scale");
    Py_DECREF(val);
    if (slot == NULL) { PyErr_Clear(); return -2; }
    return slot - freed;
}

static PyObject *capsule(int i) { return PyCapsule_New(&freed[i], "scale", count_free); }

static PyObject *vars[NVARS];

TEST(ten_thousand_vars_in_one_context_and_its_copy) {
    reset_counts();
    int bad = 0;
    for (int i = 0; i < NVARS; i++) {
        vars[i] = PyContextVar_New("scale", NULL);
        if (vars[i] == NULL) bad++;
    }
    PyObject *a = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(a));
    for (int i = 0; i < NVARS; i++) {
        PyObject *c = capsule(i);
        PyObject *t = PyContextVar_Set(vars[i], c);
        if (t == NULL) bad++;
        Py_XDECREF(t);
        Py_DECREF(c);
    }
    CHECK_EQ_LONG(0, bad);
    for (int i = 0; i < NVARS; i++) bad += index_of(vars[i]) != i;
    CHECK_EQ_LONG(0, bad);
    PyObject *copy = PyContext_Copy(a);
    /* overwrite the even ones in the original: the copy keeps its values */
    for (int i = 0; i < NVARS; i += 2) {
        PyObject *t = PyContextVar_Set(vars[i], Py_None);
        if (t == NULL) bad++;
        Py_XDECREF(t);
    }
    CHECK_EQ_LONG(0, PyContext_Exit(a));
    CHECK_EQ_LONG(0, count_freed(NVARS, 1)); /* the copy holds them all */
    CHECK_EQ_LONG(0, PyContext_Enter(copy));
    for (int i = 0; i < NVARS; i++) bad += index_of(vars[i]) != i;
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(0, PyContext_Exit(copy));
    PyContext_Enter(a);
    for (int i = 0; i < NVARS; i++) bad += index_of(vars[i]) != (i % 2 ? i : -2); /* None */
    CHECK_EQ_LONG(0, bad);
    PyContext_Exit(a);
    Py_DECREF(copy); /* the even ones now have no holder */
    CHECK_EQ_LONG(NVARS / 2, count_freed(NVARS, 1));
    for (int i = 0; i < NVARS; i += 2) bad += freed[i] != 1;
    CHECK_EQ_LONG(0, bad);
    Py_DECREF(a);
    CHECK_EQ_LONG(NVARS, count_freed(NVARS, 1));
    CHECK_EQ_LONG(0, destructor_misuse);
    for (int i = 0; i < NVARS; i++) Py_CLEAR(vars[i]);
    CHECK_NO_ERROR();
}

TEST(ten_thousand_vars_removed_again_by_their_tokens) {
    static PyObject *tok[NVARS];
    reset_counts();
    int bad = 0;
    for (int i = 0; i < NVARS; i++) vars[i] = PyContextVar_New("scale", NULL);
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    for (int i = 0; i < NVARS; i++) {
        PyObject *c = capsule(i);
        tok[i] = PyContextVar_Set(vars[i], c);
        if (tok[i] == NULL) bad++;
        Py_DECREF(c);
    }
    PyObject *snap = PyContext_CopyCurrent();
    /* reset in an order unrelated to insertion: each reset removes its var */
    for (int k = 0; k < NVARS; k++) {
        int i = (int)((k * 7919L) % NVARS);
        if (PyContextVar_Reset(vars[i], tok[i]) != 0) { bad++; PyErr_Clear(); }
        if (index_of(vars[i]) != -1) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    for (int i = 0; i < NVARS; i++) bad += index_of(vars[i]) != -1;
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(0, count_freed(NVARS, 1)); /* snap holds them */
    PyContext_Exit(a);
    Py_DECREF(snap);
    CHECK_EQ_LONG(NVARS, count_freed(NVARS, 1));
    for (int i = 0; i < NVARS; i++) {
        Py_CLEAR(tok[i]);
        Py_CLEAR(vars[i]);
    }
    Py_DECREF(a);
    CHECK_EQ_LONG(NVARS, count_freed(NVARS, 1));
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(ten_thousand_stacked_tokens_release_each_value_on_reset) {
    static PyObject *tok[NTOKENS];
    reset_counts();
    int bad = 0;
    PyObject *v = PyContextVar_New("stack", NULL);
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    for (int i = 0; i < NTOKENS; i++) {
        PyObject *c = capsule(i);
        tok[i] = PyContextVar_Set(v, c); /* records capsule i - 1 */
        if (tok[i] == NULL) bad++;
        Py_DECREF(c);
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(0, count_freed(NTOKENS, 1));
    CHECK_EQ_LONG(NTOKENS - 1, index_of(v));
    for (int i = NTOKENS - 1; i >= 0; i--) {
        if (PyContextVar_Reset(v, tok[i]) != 0) { bad++; PyErr_Clear(); }
        Py_CLEAR(tok[i]);
        /* capsule i had the context and tok[i + 1] as holders: both gone */
        if (freed[i] != 1) bad++;
        if (i > 0 && freed[i - 1] != 0) bad++;
        if (index_of(v) != i - 1) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(NTOKENS, count_freed(NTOKENS, 1));
    PyContext_Exit(a);
    Py_DECREF(a);
    Py_DECREF(v);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(ten_thousand_tokens_dropped_unused_release_everything) {
    reset_counts();
    int bad = 0;
    PyObject *v = PyContextVar_New("stack", NULL);
    PyObject *a = PyContext_New();
    PyContext_Enter(a);
    for (int i = 0; i < NTOKENS; i++) {
        PyObject *c = capsule(i);
        PyObject *t = PyContextVar_Set(v, c);
        if (t == NULL) bad++;
        Py_XDECREF(t);
        Py_DECREF(c);
        /* the previous value had only the token left */
        if (i > 0 && freed[i - 1] != 1) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(NTOKENS - 1, count_freed(NTOKENS, 1));
    PyContext_Exit(a);
    Py_DECREF(a);
    CHECK_EQ_LONG(NTOKENS, count_freed(NTOKENS, 1));
    Py_DECREF(v);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(thousand_nested_enters_with_a_value_at_each_level) {
    static PyObject *ctx[NNEST];
    reset_counts();
    int bad = 0, entered = 0;
    PyObject *v = PyContextVar_New("nest", NULL), *w = PyContextVar_New("outer", NULL);
    PyObject *outer = PyContext_New();
    PyContext_Enter(outer);
    PyObject *one = PyLong_FromLong(1);
    PyObject *tw = PyContextVar_Set(w, one);
    for (int i = 0; i < NNEST; i++) {
        ctx[i] = PyContext_New();
        if (PyContext_Enter(ctx[i]) != 0) { bad++; PyErr_Clear(); break; }
        entered++;
        if (index_of(v) != -1 || index_of(w) != -1) bad++; /* nothing inherited */
        PyObject *c = capsule(i);
        PyObject *t = PyContextVar_Set(v, c);
        Py_XDECREF(t);
        Py_DECREF(c);
        if (index_of(v) != i) bad++;
    }
    CHECK_EQ_LONG(NNEST, entered);
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(0, count_freed(NNEST, 1));
    for (int i = entered - 1; i >= 0; i--) {
        if (index_of(v) != i) bad++;
        if (PyContext_Exit(ctx[i]) != 0) { bad++; PyErr_Clear(); }
        Py_CLEAR(ctx[i]);
        if (freed[i] != 1) bad++; /* the context died with its value */
        if (i > 0 && freed[i - 1] != 0) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(NNEST, count_freed(NNEST, 1));
    PyObject *val = NULL;
    CHECK_EQ_LONG(0, PyContextVar_Get(w, NULL, &val));
    CHECK(val == one);
    Py_XDECREF(val);
    CHECK_EQ_LONG(0, PyContextVar_Reset(w, tw));
    CHECK_EQ_LONG(0, PyContext_Exit(outer));
    Py_DECREF(outer);
    Py_DECREF(tw);
    Py_DECREF(one);
    Py_DECREF(v);
    Py_DECREF(w);
    CHECK_EQ_LONG(0, destructor_misuse);
}

TEST(thousand_nested_copies_each_extend_the_last) {
    static PyObject *ctx[NNEST];
    reset_counts();
    int bad = 0;
    PyObject *v = PyContextVar_New("chain", NULL);
    PyObject *base = PyContext_New();
    PyContext_Enter(base);
    for (int i = 0; i < NNEST; i++) {
        ctx[i] = PyContext_CopyCurrent(); /* v == i - 1 in it */
        if (PyContext_Enter(ctx[i]) != 0) { bad++; PyErr_Clear(); }
        if (index_of(v) != i - 1) bad++;
        PyObject *c = capsule(i);
        PyObject *t = PyContextVar_Set(v, c);
        Py_XDECREF(t);
        Py_DECREF(c);
    }
    CHECK_EQ_LONG(0, bad);
    for (int i = NNEST - 1; i >= 0; i--) {
        if (index_of(v) != i) bad++;
        if (PyContext_Exit(ctx[i]) != 0) { bad++; PyErr_Clear(); }
        Py_CLEAR(ctx[i]);
        /* capsule i is held by ctx[i] (dead now) and the copy ctx[i + 1]
         * made of it before overwriting (dead already) */
        if (freed[i] != 1) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(NNEST, count_freed(NNEST, 1));
    PyContext_Exit(base);
    Py_DECREF(base);
    Py_DECREF(v);
    CHECK_EQ_LONG(0, destructor_misuse);
}

void suite_scale(void) {
    RUN(ten_thousand_vars_in_one_context_and_its_copy);
    RUN(ten_thousand_vars_removed_again_by_their_tokens);
    RUN(ten_thousand_stacked_tokens_release_each_value_on_reset);
    RUN(ten_thousand_tokens_dropped_unused_release_everything);
    RUN(thousand_nested_enters_with_a_value_at_each_level);
    RUN(thousand_nested_copies_each_extend_the_last);
}
