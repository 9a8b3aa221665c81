/* bench.c: one benchmark source, built against CPython 3.11 (-DUSE_CPYTHON)
 * and against libcontextvars. Prints "case ns_per_op" lines; compare.py
 * puts two runs side by side. Every timed loop checks its results; each Get
 * includes the Py_DECREF of its result and each Set the Py_DECREF of its
 * token. Each case reports the best of REPEATS timed runs. */
#define _POSIX_C_SOURCE 200809L
#ifdef USE_CPYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#else
#include "contextvars.h"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPEATS 5

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "bench: check failed: %s\n", what);
    exit(1);
}
#define CHECK(c) do { if (!(c)) die(#c); } while (0)

static PyObject *vars[10];
static PyObject *vals[2];
static long sink;

typedef void (*loop_fn)(long n);

static void get_hit(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *v;
        if (PyContextVar_Get(vars[0], NULL, &v) < 0 || v != vals[0]) die("get_hit");
        Py_DECREF(v);
    }
}

static void get_miss_default(long n) {
    PyObject *missing = PyContextVar_New("missing", NULL);
    for (long i = 0; i < n; i++) {
        PyObject *v;
        if (PyContextVar_Get(missing, vals[1], &v) < 0 || v != vals[1]) die("get_miss_default");
        Py_DECREF(v);
    }
    Py_DECREF(missing);
}

static void set_alternating(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *t = PyContextVar_Set(vars[3], vals[i & 1]);
        if (t == NULL) die("set");
        Py_DECREF(t);
    }
}

static void set_reset(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *t = PyContextVar_Set(vars[4], vals[i & 1]);
        if (t == NULL || PyContextVar_Reset(vars[4], t) < 0) die("set_reset");
        Py_DECREF(t);
    }
}

static PyObject *ctx10;

static void copy_10(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *c = PyContext_Copy(ctx10);
        if (c == NULL) die("copy");
        Py_DECREF(c);
    }
}

static void copy_current(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *c = PyContext_CopyCurrent();
        if (c == NULL) die("copy_current");
        Py_DECREF(c);
    }
}

static void enter_exit(long n) {
    for (long i = 0; i < n; i++) {
        if (PyContext_Enter(ctx10) < 0 || PyContext_Exit(ctx10) < 0) die("enter_exit");
    }
}

static void new_decref(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *c = PyContext_New();
        if (c == NULL) die("new");
        Py_DECREF(c);
    }
}

static void var_new_decref(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *v = PyContextVar_New("bench_var", NULL);
        if (v == NULL) die("var_new");
        Py_DECREF(v);
    }
}

/* CopyCurrent, Enter, Set 2 variables, Get both, Exit, drop. */
static void task_step(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *c = PyContext_CopyCurrent();
        if (c == NULL || PyContext_Enter(c) < 0) die("task enter");
        PyObject *t1 = PyContextVar_Set(vars[1], vals[0]);
        PyObject *t2 = PyContextVar_Set(vars[2], vals[1]);
        PyObject *a, *b;
        if (!t1 || !t2 || PyContextVar_Get(vars[1], NULL, &a) < 0 || PyContextVar_Get(vars[2], NULL, &b) < 0) die("task");
        if (a != vals[0] || b != vals[1]) die("task values");
        Py_DECREF(a);
        Py_DECREF(b);
        Py_DECREF(t1);
        Py_DECREF(t2);
        if (PyContext_Exit(c) < 0) die("task exit");
        Py_DECREF(c);
    }
}

static double measure(loop_fn f) {
    long n = 1000;
    for (;;) { /* calibrate to ~0.1 s */
        double t0 = now();
        f(n);
        double dt = now() - t0;
        if (dt > 0.05) { n = (long)(n * 0.1 / dt) + 1; break; }
        n *= 4;
    }
    double best = 1e30;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        f(n);
        double dt = (now() - t0) / n * 1e9;
        if (dt < best) best = dt;
    }
    return best;
}

int main(int argc, char **argv) {
#ifdef USE_CPYTHON
    Py_Initialize();
#endif
    const char *only = argc > 1 ? argv[1] : NULL;
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "v%d", i);
        vars[i] = PyContextVar_New(name, NULL);
        CHECK(vars[i] != NULL);
    }
    vals[0] = PyLong_FromLong(100001);
    vals[1] = PyLong_FromLong(100002);
    /* The current context holds 10 variables. */
    for (int i = 0; i < 10; i++) {
        PyObject *t = PyContextVar_Set(vars[i], vals[0]);
        CHECK(t != NULL);
        Py_DECREF(t);
    }
    ctx10 = PyContext_CopyCurrent();
    CHECK(ctx10 != NULL);

    struct { const char *name; loop_fn f; } cases[] = {
        {"get_hit", get_hit}, {"get_miss_default", get_miss_default}, {"set", set_alternating},
        {"set_reset", set_reset}, {"copy_10", copy_10}, {"copy_current", copy_current},
        {"enter_exit", enter_exit}, {"new_decref", new_decref}, {"var_new_decref", var_new_decref},
        {"task_step", task_step},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (only && strcmp(only, cases[i].name) != 0) continue;
        printf("%s %.2f\n", cases[i].name, measure(cases[i].f));
        fflush(stdout);
    }
    (void)sink;
    return 0;
}
