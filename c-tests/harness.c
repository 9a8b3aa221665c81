#include "harness.h"

int h_case_failed;
long h_checks;
static int h_passed, h_failed;
static const char *h_current = "(none)";

void h_fail(const char *file, int line, const char *what) {
    __atomic_fetch_add(&h_case_failed, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "FAIL %s: %s:%d: %s\n", h_current, file, line, what);
}

#if LIBRARY_ONLY
/* Refleak mode (CONTEXTVARS_REFLEAK=N, `make refleak`), CPython -R style:
 * after its first run, which warms up what persists (the thread's base
 * context, interned state), each case runs N more times, and every one of
 * those runs must leave every live-object count where it found it. */
static int h_refleak_runs(void) {
    static int runs = -1;
    if (runs < 0) {
        const char *e = getenv("CONTEXTVARS_REFLEAK");
        runs = e ? atoi(e) : 0;
        if (runs < 0) runs = 0;
    }
    return runs;
}

static long h_refleak_cases;

static void h_refleak(const char *name, void (*fn)(void)) {
    static const char *kinds[] = {"contexts", "vars", "tokens", "ints", "strs", "capsules", "map nodes"};
    for (int run = 1; run <= h_refleak_runs(); run++) {
        contextvars_LiveCounts a, b;
        contextvars_live_counts(&a);
        fn();
        PyErr_Clear();
        contextvars_live_counts(&b);
        Py_ssize_t before[7] = {a.contexts, a.vars, a.tokens, a.ints, a.strs, a.capsules, a.map_nodes};
        Py_ssize_t after[7] = {b.contexts, b.vars, b.tokens, b.ints, b.strs, b.capsules, b.map_nodes};
        for (int k = 0; k < 7; k++) {
            if (after[k] != before[k]) {
                char buf[256];
                snprintf(buf, sizeof buf, "refleak: %s run %d: %s %+ld", name, run, kinds[k],
                         (long)(after[k] - before[k]));
                h_fail(__FILE__, __LINE__, buf);
            }
        }
    }
    h_refleak_cases++;
}
#endif

void h_run(const char *name, void (*fn)(void)) {
    h_current = name;
    h_case_failed = 0;
    fn();
    if (PyErr_Occurred()) {
        h_fail(__FILE__, __LINE__, "case left an error set");
        PyErr_Clear();
    }
#if LIBRARY_ONLY
    if (h_refleak_runs() > 0 && !h_case_failed) h_refleak(name, fn);
#endif
    if (h_case_failed) h_failed++; else h_passed++;
}

int h_summary(void) {
    printf("%s: %ld checks\n", TARGET_NAME, h_checks);
#if LIBRARY_ONLY
    if (h_refleak_runs() > 0)
        printf("refleak: %ld cases, each run %d more times, live counts unchanged by every run\n",
               h_refleak_cases, h_refleak_runs());
#endif
    printf("%d passed, %d failed\n", h_passed, h_failed);
    return h_failed ? 1 : 0;
}

static int h_error_common(const char *file, int line, PyObject *type, const char *msg, int suffix) {
    char buf[4096];
    __atomic_fetch_add(&h_checks, 1, __ATOMIC_RELAXED);
    PyObject *t = NULL, *v = NULL, *tb = NULL;
    PyErr_Fetch(&t, &v, &tb);
    if (t == NULL) {
        snprintf(buf, sizeof buf, "expected %s, no error set", ((PyTypeObject *)type)->tp_name);
        h_fail(file, line, buf);
        return 0;
    }
    int ok = 1;
    if (t != type) {
        snprintf(buf, sizeof buf, "expected %s, got %s", ((PyTypeObject *)type)->tp_name,
                 ((PyTypeObject *)t)->tp_name);
        h_fail(file, line, buf);
        ok = 0;
    }
    if (msg != NULL) {
        char *got = shim_error_message(v);
        size_t gl = got ? strlen(got) : 0, ml = strlen(msg);
        int match = got != NULL && (suffix ? (gl >= ml && strcmp(got + gl - ml, msg) == 0)
                                           : strcmp(got, msg) == 0);
        if (!match) {
            snprintf(buf, sizeof buf, "message: expected%s \"%s\", got \"%s\"", suffix ? " suffix" : "",
                     msg, got ? got : "(null)");
            h_fail(file, line, buf);
            ok = 0;
        }
        free(got);
    }
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    return ok;
}

int h_check_error(const char *file, int line, PyObject *type, const char *msg) {
    return h_error_common(file, line, type, msg, 0);
}

int h_check_error_suffix(const char *file, int line, PyObject *type, const char *suffix) {
    return h_error_common(file, line, type, suffix, 1);
}

long h_get_long(PyObject *var, PyObject *dflt) {
    PyObject *val = (PyObject *)&val; /* a sentinel Get must overwrite */
    if (PyContextVar_Get(var, dflt, &val) != 0) {
        PyErr_Clear();
        return H_GET_FAILED;
    }
    if (val == NULL) return H_MISSING;
    long r = h_long(val);
    Py_DECREF(val);
    return r;
}

PyObject *h_set_long(PyObject *var, long v) {
    PyObject *n = PyLong_FromLong(v);
    PyObject *t = PyContextVar_Set(var, n);
    Py_DECREF(n);
    return t;
}

PyObject *h_enter_new(void) {
    PyObject *c = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    return c;
}

void h_leave(PyObject *c) {
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    Py_DECREF(c);
}

long h_long(PyObject *o) {
    if (o == NULL) return -1000000;
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1000000; }
    return v;
}
