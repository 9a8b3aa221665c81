/* bench.c: one benchmark source, built against CPython 3.11 (-DUSE_CPYTHON)
 * and against libcontextvars; bench/compare.py runs both and prints the
 * side-by-side table.
 *
 *   bench [CASE]            time every case (or one): "case ns_per_op" lines
 *   bench --iters N CASE    run CASE exactly N times, untimed (for callgrind)
 *
 * Every timed loop checks its results; each Get includes the Py_DECREF of its
 * result and each Set the Py_DECREF of its token. Each case reports the best
 * of REPEATS timed runs. Thread cases report wall-clock ns per operation
 * over all threads (aggregate); the memory case reports bytes and build time
 * per context. CPython runs with the GIL held by each worker thread, as a C
 * extension doing this work would. */
#define _GNU_SOURCE
#ifdef USE_CPYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#else
#include "contextvars.h"
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ---- shared fixtures ---------------------------------------------------- */

#define NVARS 10
static PyObject *vars[NVARS];    /* set in the main thread's context */
static PyObject *vals[2];
static PyObject *ctx10;          /* a copy of that 10-variable context */

static void set_to(PyObject *var, PyObject *value) {
    PyObject *t = PyContextVar_Set(var, value);
    CHECK(t != NULL);
    Py_DECREF(t);
}

static PyObject *new_var(const char *prefix, long i) {
    char name[32];
    snprintf(name, sizeof name, "%s%ld", prefix, i);
    PyObject *v = PyContextVar_New(name, NULL);
    CHECK(v != NULL);
    return v;
}

/* Random indices, precomputed so the generator is not timed. */
#define NRAND 4096
static unsigned rand_idx[NRAND];

static void fill_random(unsigned n) {
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < NRAND; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        rand_idx[i] = (unsigned)(x % n);
    }
}

/* ---- single-thread cases ------------------------------------------------ */

static void get_hit(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *v;
        if (PyContextVar_Get(vars[0], NULL, &v) < 0 || v != vals[0]) die("get_hit");
        Py_DECREF(v);
    }
}

static void get_alt8(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *v;
        if (PyContextVar_Get(vars[i & 7], NULL, &v) < 0 || v != vals[0]) die("get_alt8");
        Py_DECREF(v);
    }
}

static void get_miss_default(long n) {
    static PyObject *missing;
    if (!missing) missing = new_var("missing", 0);
    for (long i = 0; i < n; i++) {
        PyObject *v;
        if (PyContextVar_Get(missing, vals[1], &v) < 0 || v != vals[1]) die("get_miss_default");
        Py_DECREF(v);
    }
}

/* Two contexts holding the same N variables (values differ in one), entered
 * alternately: the switch before each Get defeats any Get cache. */
static PyObject *rand_vars[100000];
static PyObject *rand_vals[100000];
static PyObject *rand_ctx[2];
static long rand_n;

static void rand_setup(long n) {
    for (long i = rand_n; i < n; i++) {
        rand_vars[i] = new_var("r", i);
        rand_vals[i] = PyLong_FromLong(1000000 + i);
        CHECK(rand_vals[i] != NULL);
    }
    if (rand_n < n) rand_n = n;
    for (int k = 0; k < 2; k++) {
        Py_XDECREF(rand_ctx[k]);
        rand_ctx[k] = PyContext_New();
        CHECK(rand_ctx[k] != NULL && PyContext_Enter(rand_ctx[k]) == 0);
        for (long i = 0; i < n; i++) set_to(rand_vars[i], rand_vals[i]);
        CHECK(PyContext_Exit(rand_ctx[k]) == 0);
    }
    fill_random((unsigned)n);
    CHECK(PyContext_Enter(rand_ctx[0]) == 0);
}

static int rand_side;

static void switch_only(long n) {
    for (long i = 0; i < n; i++) {
        if (PyContext_Exit(rand_ctx[rand_side]) < 0) die("switch exit");
        rand_side ^= 1;
        if (PyContext_Enter(rand_ctx[rand_side]) < 0) die("switch enter");
    }
}

static void switch_get_rand(long n) {
    for (long i = 0; i < n; i++) {
        if (PyContext_Exit(rand_ctx[rand_side]) < 0) die("switch exit");
        rand_side ^= 1;
        if (PyContext_Enter(rand_ctx[rand_side]) < 0) die("switch enter");
        unsigned k = rand_idx[i & (NRAND - 1)];
        PyObject *v;
        if (PyContextVar_Get(rand_vars[k], NULL, &v) < 0 || v != rand_vals[k]) die("get_rand");
        Py_DECREF(v);
    }
}

static void set_alternating(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *t = PyContextVar_Set(vars[3], vals[i & 1]);
        if (t == NULL) die("set");
        Py_DECREF(t);
    }
}

static PyObject *ctx1000;
static PyObject *vars1000[1000];

static void set_1000(long n) {
    if (!ctx1000) {
        ctx1000 = PyContext_New();
        CHECK(ctx1000 != NULL && PyContext_Enter(ctx1000) == 0);
        for (long i = 0; i < 1000; i++) {
            vars1000[i] = new_var("k", i);
            set_to(vars1000[i], vals[0]);
        }
        CHECK(PyContext_Exit(ctx1000) == 0);
    }
    CHECK(PyContext_Enter(ctx1000) == 0);
    for (long i = 0; i < n; i++) {
        PyObject *t = PyContextVar_Set(vars1000[(i * 7) % 1000], vals[i & 1]);
        if (t == NULL) die("set_1000");
        Py_DECREF(t);
    }
    CHECK(PyContext_Exit(ctx1000) == 0);
}

static void set_reset(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *t = PyContextVar_Set(vars[4], vals[i & 1]);
        if (t == NULL || PyContextVar_Reset(vars[4], t) < 0) die("set_reset");
        Py_DECREF(t);
    }
}

static void copy_10(long n) {
    for (long i = 0; i < n; i++) {
        PyObject *c = PyContext_Copy(ctx10);
        if (c == NULL) die("copy");
        Py_DECREF(c);
    }
}

static PyObject *ctx10000;

static void copy_10000(long n) {
    if (!ctx10000) {
        ctx10000 = PyContext_New();
        CHECK(ctx10000 != NULL && PyContext_Enter(ctx10000) == 0);
        for (long i = 0; i < 10000; i++) {
            PyObject *v = new_var("c", i);
            set_to(v, vals[0]);
            Py_DECREF(v);
        }
        CHECK(PyContext_Exit(ctx10000) == 0);
    }
    for (long i = 0; i < n; i++) {
        PyObject *c = PyContext_Copy(ctx10000);
        if (c == NULL) die("copy_10000");
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
static void task_loop(long n, PyObject *x, PyObject *y) {
    for (long i = 0; i < n; i++) {
        PyObject *c = PyContext_CopyCurrent();
        if (c == NULL || PyContext_Enter(c) < 0) die("task enter");
        PyObject *t1 = PyContextVar_Set(vars[1], x);
        PyObject *t2 = PyContextVar_Set(vars[2], y);
        PyObject *a, *b;
        if (!t1 || !t2 || PyContextVar_Get(vars[1], NULL, &a) < 0 || PyContextVar_Get(vars[2], NULL, &b) < 0) die("task");
        if (a != x || b != y) die("task values");
        Py_DECREF(a);
        Py_DECREF(b);
        Py_DECREF(t1);
        Py_DECREF(t2);
        if (PyContext_Exit(c) < 0) die("task exit");
        Py_DECREF(c);
    }
}

static void task_step(long n) {
    task_loop(n, vals[0], vals[1]);
}

typedef void (*loop_fn)(long n);

static long calibrate(loop_fn f) {
    long n = 1000;
    for (;;) { /* to ~0.1 s per timed run */
        double t0 = now();
        f(n);
        double dt = now() - t0;
        if (dt > 0.05) return (long)(n * 0.1 / dt) + 1;
        n *= 4;
    }
}

static double measure(loop_fn f) {
    long n = calibrate(f);
    double best = 1e30;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        f(n);
        double dt = (now() - t0) / n * 1e9;
        if (dt < best) best = dt;
    }
    return best;
}

/* ---- thread cases -------------------------------------------------------- */

/* Each worker thread sets the shared variable vars[0] to its own value in its
 * own context and Gets it (shared_get), or runs task steps over its own
 * 10-variable context (task). Reported: wall-clock ns per operation over all
 * threads, from a common start to the last thread's end. */
struct worker {
    pthread_t thread;
    loop_fn body;
    long n;
    double start, end;
};

static pthread_barrier_t start_line;

static void shared_get(long n) {
    PyObject *mine = PyLong_FromLong(200000 + (long)(intptr_t)pthread_self() % 1000);
    CHECK(mine != NULL);
    set_to(vars[0], mine);
    for (long i = 0; i < n; i++) {
        PyObject *v;
        if (PyContextVar_Get(vars[0], NULL, &v) < 0 || v != mine) die("shared_get");
        Py_DECREF(v);
    }
    Py_DECREF(mine);
}

/* Variables are shared between threads; values are each thread's own (a
 * task's request-scoped objects). */
static void thread_task(long n) {
    PyObject *x = PyLong_FromLong(300001), *y = PyLong_FromLong(300002);
    CHECK(x != NULL && y != NULL);
    for (int i = 0; i < NVARS; i++) set_to(vars[i], x);
    task_loop(n, x, y);
    Py_DECREF(x);
    Py_DECREF(y);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
#ifdef USE_CPYTHON
    PyGILState_STATE g = PyGILState_Ensure();
    /* Each thread needs its own context: the one it runs in is fresh. */
    PyObject *ctx = PyContext_New();
    CHECK(ctx != NULL && PyContext_Enter(ctx) == 0);
    Py_BEGIN_ALLOW_THREADS
    pthread_barrier_wait(&start_line);
    Py_END_ALLOW_THREADS
#else
    PyObject *ctx = PyContext_New();
    CHECK(ctx != NULL && PyContext_Enter(ctx) == 0);
    pthread_barrier_wait(&start_line);
#endif
    w->start = now();
    w->body(w->n);
    w->end = now();
    CHECK(PyContext_Exit(ctx) == 0);
    Py_DECREF(ctx);
#ifdef USE_CPYTHON
    PyGILState_Release(g);
#endif
    return NULL;
}

static double run_threads(loop_fn body, int nthreads, long n_each) {
    struct worker w[2];
    CHECK(pthread_barrier_init(&start_line, NULL, (unsigned)nthreads) == 0);
#ifdef USE_CPYTHON
    PyThreadState *saved = PyEval_SaveThread();
#endif
    for (int i = 0; i < nthreads; i++) {
        w[i].body = body;
        w[i].n = n_each;
        CHECK(pthread_create(&w[i].thread, NULL, worker_main, &w[i]) == 0);
    }
    for (int i = 0; i < nthreads; i++) CHECK(pthread_join(w[i].thread, NULL) == 0);
#ifdef USE_CPYTHON
    PyEval_RestoreThread(saved);
#endif
    pthread_barrier_destroy(&start_line);
    double start = w[0].start, end = w[0].end;
    for (int i = 1; i < nthreads; i++) {
        if (w[i].start < start) start = w[i].start;
        if (w[i].end > end) end = w[i].end;
    }
    return (end - start) / ((double)n_each * nthreads) * 1e9;
}

static void thread_case(const char *name, loop_fn body, long n_each) {
    for (int threads = 1; threads <= 2; threads++) {
        double best = 1e30;
        for (int r = 0; r < REPEATS; r++) {
            double ns = run_threads(body, threads, n_each);
            if (ns < best) best = ns;
        }
        printf("%s_%dt %.2f\n", name, threads, best);
        fflush(stdout);
    }
}

/* ---- memory ------------------------------------------------------------- */

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size, resident;
    CHECK(f != NULL && fscanf(f, "%ld %ld", &size, &resident) == 2);
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* 1,000,000 live contexts, each a Copy of one 100-variable base with one
 * variable set to a value of its own (a new int each). */
#define MEM_CONTEXTS 1000000
static void memory_case(void) {
    static PyObject *mvars[100];
    PyObject *base = PyContext_New();
    CHECK(base != NULL && PyContext_Enter(base) == 0);
    for (int i = 0; i < 100; i++) {
        mvars[i] = new_var("m", i);
        set_to(mvars[i], vals[0]);
    }
    CHECK(PyContext_Exit(base) == 0);
    PyObject **ctxs = calloc(MEM_CONTEXTS, sizeof *ctxs);
    CHECK(ctxs != NULL);
    long rss0 = rss_bytes();
    double t0 = now();
    for (long i = 0; i < MEM_CONTEXTS; i++) {
        PyObject *c = PyContext_Copy(base);
        PyObject *value = PyLong_FromLong(10000000 + i);
        if (c == NULL || value == NULL || PyContext_Enter(c) < 0) die("memory build");
        PyObject *t = PyContextVar_Set(mvars[i % 100], value);
        if (t == NULL || PyContext_Exit(c) < 0) die("memory set");
        Py_DECREF(t);
        Py_DECREF(value);
        ctxs[i] = c;
    }
    double build = now() - t0;
    long rss1 = rss_bytes();
    /* Spot-check, then free. */
    CHECK(PyContext_Enter(ctxs[123457]) == 0);
    PyObject *v;
    CHECK(PyContextVar_Get(mvars[57], NULL, &v) == 0 && PyLong_AsLong(v) == 10123457);
    Py_DECREF(v);
    CHECK(PyContext_Exit(ctxs[123457]) == 0);
    for (long i = 0; i < MEM_CONTEXTS; i++) Py_DECREF(ctxs[i]);
    free(ctxs);
    for (int i = 0; i < 100; i++) Py_DECREF(mvars[i]);
    Py_DECREF(base);
    printf("mem_bytes_per_ctx %.1f\n", (double)(rss1 - rss0) / MEM_CONTEXTS);
    printf("mem_build_ns_per_ctx %.2f\n", build / MEM_CONTEXTS * 1e9);
    fflush(stdout);
}

/* ---- driver ------------------------------------------------------------- */

struct bench_case {
    const char *name;
    loop_fn f;
    long rand_n; /* > 0: a get_rand case over this many variables */
};

static const struct bench_case cases[] = {
    {"get_hit", get_hit, 0},
    {"get_alt8", get_alt8, 0},
    {"get_miss_default", get_miss_default, 0},
    {"get_rand_1", switch_get_rand, 1},
    {"get_rand_10", switch_get_rand, 10},
    {"get_rand_100", switch_get_rand, 100},
    {"get_rand_1000", switch_get_rand, 1000},
    {"get_rand_100000", switch_get_rand, 100000},
    {"exit_enter_switch", switch_only, 10},
    {"set", set_alternating, 0},
    {"set_1000", set_1000, 0},
    {"set_reset", set_reset, 0},
    {"copy_10", copy_10, 0},
    {"copy_10000", copy_10000, 0},
    {"copy_current", copy_current, 0},
    {"enter_exit", enter_exit, 0},
    {"new_decref", new_decref, 0},
    {"var_new_decref", var_new_decref, 0},
    {"task_step", task_step, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* Runs one case: the rand cases run inside their two contexts and report
 * switch+Get minus the switch alone. */
static void run_case(const struct bench_case *c, long iters) {
    if (c->rand_n > 0) {
        rand_setup(c->rand_n);
        rand_side = 0;
        if (iters > 0) {
            c->f(iters);
        } else if (c->f == switch_only) {
            printf("%s %.2f\n", c->name, measure(switch_only));
        } else {
            double both = measure(switch_get_rand);
            double sw = measure(switch_only);
            printf("%s %.2f\n", c->name, both - sw);
        }
        CHECK(PyContext_Exit(rand_ctx[rand_side]) == 0);
    } else if (iters > 0) {
        c->f(iters);
    } else {
        printf("%s %.2f\n", c->name, measure(c->f));
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
#ifdef USE_CPYTHON
    Py_Initialize();
#endif
    long iters = 0;
    if (argc > 2 && strcmp(argv[1], "--iters") == 0) {
        iters = atol(argv[2]);
        argc -= 2;
        argv += 2;
    }
    const char *only = argc > 1 ? argv[1] : NULL;
    for (int i = 0; i < NVARS; i++) vars[i] = new_var("v", i);
    vals[0] = PyLong_FromLong(100001);
    vals[1] = PyLong_FromLong(100002);
    CHECK(vals[0] != NULL && vals[1] != NULL);
    /* The current context holds 10 variables. */
    for (int i = 0; i < NVARS; i++) set_to(vars[i], vals[0]);
    ctx10 = PyContext_CopyCurrent();
    CHECK(ctx10 != NULL);

    int ran = 0;
    for (size_t i = 0; i < NCASES; i++) {
        if (only && strcmp(only, cases[i].name) != 0) continue;
        run_case(&cases[i], iters);
        ran = 1;
    }
    if (iters == 0 && (!only || strcmp(only, "threads") == 0)) {
        thread_case("thr_shared_get", shared_get, 2000000);
        thread_case("thr_task_step", thread_task, 300000);
        ran = 1;
    }
    if (iters == 0 && (!only || strcmp(only, "memory") == 0)) {
        memory_case();
        ran = 1;
    }
    if (!ran) {
        fprintf(stderr, "bench: unknown case %s\n", only);
        return 2;
    }
    return 0;
}
