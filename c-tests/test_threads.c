/* Threads (library-only: CPython serialises everything with the GIL and
 * needs a thread state per thread). Each thread has its own current context;
 * entering is exclusive across threads; copies of a context another thread
 * keeps setting are consistent snapshots; thread exit releases everything. */
#include "harness.h"

#if LIBRARY_ONLY
#include <pthread.h>
#include <sched.h>

static PyObject *shared_var, *shared_var2;

static void *set_and_read_own(void *arg) {
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < 2000; i++) {
        PyObject *t = h_set_long(shared_var, id * 100000 + i);
        CHECK(t != NULL);
        Py_XDECREF(t);
        CHECK_EQ_LONG(id * 100000 + i, h_get_long(shared_var, NULL));
    }
    return NULL;
}

TEST(each_thread_has_its_own_current_context) {
    shared_var = PyContextVar_New("shared", NULL);
    PyObject *t = h_set_long(shared_var, 7);
    pthread_t th[4];
    for (long i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, set_and_read_own, (void *)(intptr_t)(i + 1)) == 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CHECK_EQ_LONG(7, h_get_long(shared_var, NULL)); /* untouched by the others */
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var, t));
    Py_DECREF(t);
    Py_CLEAR(shared_var);
}

static void *read_fresh(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(H_MISSING, h_get_long(shared_var, NULL)); /* a new thread starts empty */
    return NULL;
}

TEST(a_new_thread_does_not_inherit_values) {
    shared_var = PyContextVar_New("shared", NULL);
    PyObject *t = h_set_long(shared_var, 1);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, read_fresh, NULL) == 0);
    pthread_join(th, NULL);
    Py_DECREF(t);
    Py_CLEAR(shared_var);
}

/* Two threads race to enter one context: exactly one wins. */
static PyObject *race_ctx;
static pthread_barrier_t barrier;
static int wins, losses_ok;

static void *racer(void *arg) {
    (void)arg;
    pthread_barrier_wait(&barrier);
    int r = PyContext_Enter(race_ctx);
    if (r == 0) {
        __atomic_fetch_add(&wins, 1, __ATOMIC_RELAXED);
        pthread_barrier_wait(&barrier); /* the loser fails while we are inside */
        CHECK_EQ_LONG(0, PyContext_Exit(race_ctx));
    } else {
        char expected[200];
        snprintf(expected, sizeof expected, "cannot enter context: <_contextvars.Context object at %p> is already entered", (void *)race_ctx);
        if (CHECK_ERROR(PyExc_RuntimeError, expected)) __atomic_fetch_add(&losses_ok, 1, __ATOMIC_RELAXED);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

TEST(two_threads_racing_to_enter_exactly_one_wins) {
    pthread_barrier_init(&barrier, NULL, 2);
    int rounds = 500;
    wins = losses_ok = 0;
    for (int i = 0; i < rounds; i++) {
        race_ctx = PyContext_New();
        pthread_t a, b;
        pthread_create(&a, NULL, racer, NULL);
        pthread_create(&b, NULL, racer, NULL);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        Py_CLEAR(race_ctx);
    }
    CHECK_EQ_LONG(rounds, wins);
    CHECK_EQ_LONG(rounds, losses_ok);
    pthread_barrier_destroy(&barrier);
}

static PyObject *handoff_ctx;

static void *exit_from_other_thread(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(-1, PyContext_Exit(handoff_ctx));
    CHECK_ERROR(PyExc_RuntimeError, "cannot exit context: thread state references a different context object");
    return NULL;
}

static void *enter_read_exit(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(0, PyContext_Enter(handoff_ctx));
    CHECK_EQ_LONG(42, h_get_long(shared_var, NULL)); /* values travel with the context */
    PyObject *t = h_set_long(shared_var2, 43);
    Py_XDECREF(t);
    CHECK_EQ_LONG(0, PyContext_Exit(handoff_ctx));
    return NULL;
}

TEST(a_context_moves_between_threads) {
    shared_var = PyContextVar_New("a", NULL);
    shared_var2 = PyContextVar_New("b", NULL);
    handoff_ctx = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(handoff_ctx));
    PyObject *t = h_set_long(shared_var, 42);
    pthread_t th;
    pthread_create(&th, NULL, exit_from_other_thread, NULL);
    pthread_join(th, NULL);
    CHECK_EQ_LONG(0, PyContext_Exit(handoff_ctx));
    pthread_create(&th, NULL, enter_read_exit, NULL); /* entered elsewhere after Exit here */
    pthread_join(th, NULL);
    CHECK_EQ_LONG(0, PyContext_Enter(handoff_ctx));
    CHECK_EQ_LONG(43, h_get_long(shared_var2, NULL));
    CHECK_EQ_LONG(0, PyContext_Exit(handoff_ctx));
    Py_XDECREF(t);
    Py_CLEAR(handoff_ctx);
    Py_CLEAR(shared_var);
    Py_CLEAR(shared_var2);
}

static PyObject *foreign_token;

static void *reset_foreign_token(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(-1, PyContextVar_Reset(shared_var, foreign_token));
    CHECK(PyErr_ExceptionMatches(PyExc_ValueError));
    PyErr_Clear();
    return NULL;
}

TEST(a_token_from_another_thread_is_from_a_different_context) {
    shared_var = PyContextVar_New("a", NULL);
    foreign_token = h_set_long(shared_var, 1);
    pthread_t th;
    pthread_create(&th, NULL, reset_foreign_token, NULL);
    pthread_join(th, NULL);
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var, foreign_token)); /* still good here */
    Py_CLEAR(foreign_token);
    Py_CLEAR(shared_var);
}

/* Copy of a context another thread keeps setting: the setter sets a then b
 * to the same increasing number; any snapshot must have b <= a. */
static PyObject *busy_ctx;
static int stop_setting, setter_started;

static void *keep_setting(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(0, PyContext_Enter(busy_ctx));
    for (long i = 1; !__atomic_load_n(&stop_setting, __ATOMIC_ACQUIRE); i++) {
        PyObject *t1 = h_set_long(shared_var, i), *t2 = h_set_long(shared_var2, i);
        Py_XDECREF(t1);
        Py_XDECREF(t2);
        __atomic_store_n(&setter_started, 1, __ATOMIC_RELEASE);
    }
    CHECK_EQ_LONG(0, PyContext_Exit(busy_ctx));
    return NULL;
}

TEST(copies_of_a_context_being_set_are_consistent) {
    shared_var = PyContextVar_New("a", NULL);
    shared_var2 = PyContextVar_New("b", NULL);
    busy_ctx = PyContext_New();
    stop_setting = setter_started = 0;
    pthread_t th;
    pthread_create(&th, NULL, keep_setting, NULL);
    while (!__atomic_load_n(&setter_started, __ATOMIC_ACQUIRE)) sched_yield(); /* valgrind serialises threads */
    long bad = 0, last_a = 0, copies = 0;
    for (int i = 0; i < 100000; i++) {
        PyObject *snap = PyContext_Copy(busy_ctx);
        if (snap == NULL || PyContext_Enter(snap) < 0) { bad++; PyErr_Clear(); Py_XDECREF(snap); continue; }
        long a = h_get_long(shared_var, NULL), b = h_get_long(shared_var2, NULL);
        if (a != H_MISSING || b != H_MISSING) {
            if (a == H_MISSING || a < 0 || b > a || a < last_a) bad++;
            if (a != H_MISSING) last_a = a;
        }
        PyContext_Exit(snap);
        Py_DECREF(snap);
        copies++;
    }
    __atomic_store_n(&stop_setting, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    CHECK_EQ_LONG(0, bad);
    CHECK(copies == 100000);
    CHECK(last_a > 0); /* the copies did see the setter's work */
    Py_CLEAR(busy_ctx);
    Py_CLEAR(shared_var);
    Py_CLEAR(shared_var2);
}

/* A thread that exits with values set and contexts entered releases all. */
static int exit_freed;
static void count_exit_free(PyObject *c) { (void)c; __atomic_fetch_add(&exit_freed, 1, __ATOMIC_RELAXED); }

static void *exit_without_cleanup(void *arg) {
    PyObject *var = arg;
    PyObject *cap = PyCapsule_New(&exit_freed, "exit", count_exit_free);
    PyObject *t = PyContextVar_Set(var, cap); /* in the thread's base context */
    Py_DECREF(t);
    Py_DECREF(cap);
    for (int i = 0; i < 100; i++) {
        PyObject *c = PyContext_New();
        PyContext_Enter(c);
        cap = PyCapsule_New(&exit_freed, "exit", count_exit_free);
        t = PyContextVar_Set(var, cap);
        Py_DECREF(t);
        Py_DECREF(cap);
        Py_DECREF(c); /* only the thread holds it now */
    }
    PyErr_SetString(PyExc_ValueError, "left pending at exit");
    return NULL;
}

TEST(thread_exit_releases_contexts_values_and_errors) {
    PyObject *var = PyContextVar_New("x", NULL);
    exit_freed = 0;
    pthread_t th;
    pthread_create(&th, NULL, exit_without_cleanup, var);
    pthread_join(th, NULL);
    CHECK_EQ_LONG(101, exit_freed);
    Py_DECREF(var);
}

static PyObject *left_entered;

static void *enter_and_die(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(0, PyContext_Enter(left_entered));
    return NULL;
}

/* A program's own thread-exit hooks may still use contexts: a pthread key
 * created after the library's first use on the thread exits a context only
 * the thread holds, and sets a value; both are released afterwards. */
static pthread_key_t user_key;
static PyObject *tsd_var;
static int tsd_exit_ok, tsd_freed;
static void tsd_value_free(PyObject *c) { (void)c; tsd_freed++; }
static void user_key_destructor(void *ctx) {
    tsd_exit_ok = PyContext_Exit((PyObject *)ctx) == 0;
    PyObject *cap = PyCapsule_New(&tsd_freed, NULL, tsd_value_free);
    PyObject *t = PyContextVar_Set(tsd_var, cap); /* new state during teardown */
    Py_XDECREF(t);
    Py_XDECREF(cap);
}

static void *enter_then_leave_it_to_a_key(void *arg) {
    (void)arg;
    PyObject *ctx = PyContext_New();
    PyContext_Enter(ctx); /* first library use on this thread */
    Py_DECREF(ctx);       /* only the thread holds it now */
    pthread_setspecific(user_key, ctx);
    return NULL;
}

TEST(thread_exit_hooks_of_the_program_may_still_use_contexts) {
    tsd_var = PyContextVar_New("tsd", NULL);
    tsd_exit_ok = tsd_freed = 0;
    pthread_key_create(&user_key, user_key_destructor);
    pthread_t th;
    pthread_create(&th, NULL, enter_then_leave_it_to_a_key, NULL);
    pthread_join(th, NULL);
    CHECK_EQ_LONG(1, tsd_exit_ok);
    CHECK_EQ_LONG(1, tsd_freed);
    pthread_key_delete(user_key);
    Py_CLEAR(tsd_var);
}

/* The same in a later round: a key destructor that re-arms once and exits
 * the context only in the second round of key destructors. */
static pthread_key_t late_key;
static int late_exit_ok;
static void late_key_destructor(void *ctx) {
    static __thread int round;
    if (++round == 1) { pthread_setspecific(late_key, ctx); return; }
    late_exit_ok = PyContext_Exit((PyObject *)ctx) == 0;
}

static void *enter_then_leave_it_to_a_late_key(void *arg) {
    (void)arg;
    PyObject *ctx = PyContext_New();
    PyContext_Enter(ctx);
    Py_DECREF(ctx);
    pthread_setspecific(late_key, ctx);
    return NULL;
}

TEST(a_key_destructor_may_exit_a_context_in_a_later_round) {
    late_exit_ok = 0;
    pthread_key_create(&late_key, late_key_destructor);
    pthread_t th;
    pthread_create(&th, NULL, enter_then_leave_it_to_a_late_key, NULL);
    pthread_join(th, NULL);
    CHECK_EQ_LONG(1, late_exit_ok);
    pthread_key_delete(late_key);
}

/* A value restored without a type (kept, as in CPython) is released too. */
static int typeless_freed;
static void typeless_free(PyObject *c) { (void)c; typeless_freed++; }
static void *leave_a_typeless_error_value(void *arg) {
    (void)arg;
    PyErr_Restore(NULL, PyCapsule_New(&typeless_freed, NULL, typeless_free), NULL);
    return NULL;
}

TEST(thread_exit_releases_an_error_value_without_a_type) {
    typeless_freed = 0;
    pthread_t th;
    pthread_create(&th, NULL, leave_a_typeless_error_value, NULL);
    pthread_join(th, NULL);
    CHECK_EQ_LONG(1, typeless_freed);
}

TEST(a_context_left_entered_by_a_dead_thread_can_be_entered_again) {
    left_entered = PyContext_New();
    pthread_t th;
    pthread_create(&th, NULL, enter_and_die, NULL);
    pthread_join(th, NULL);
    CHECK_EQ_LONG(0, PyContext_Enter(left_entered)); /* library-only: CPython keeps it marked */
    CHECK_EQ_LONG(0, PyContext_Exit(left_entered));
    Py_CLEAR(left_entered);
}

/* Stress: 4 threads mixing every operation; each value carries a cookie
 * (thread, variable, generation) checked on every Get. */
#define STRESS_THREADS 4
#define STRESS_VARS 8
static PyObject *stress_vars[STRESS_VARS];
static long stress_mismatches, stress_ops;

static void *stress(void *arg) {
    long me = (long)(intptr_t)arg;
    long expect[STRESS_VARS];
    for (int v = 0; v < STRESS_VARS; v++) expect[v] = H_MISSING;
    unsigned x = (unsigned)me * 2654435761u + 1;
    long ops = 0, bad = 0;
    PyObject *ctx = PyContext_New();
    for (int round = 0; round < 40000; round++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        int v = (int)(x % STRESS_VARS);
        switch (x >> 28) {
        case 0: case 1: case 2: case 3: case 4: { /* Set with a cookie */
            long cookie = me * 1000000000L + v * 10000000L + round;
            PyObject *t = h_set_long(stress_vars[v], cookie);
            if (t == NULL) bad++;
            Py_XDECREF(t);
            expect[v] = cookie;
            break;
        }
        case 5: { /* Set then Reset restores */
            PyObject *t = h_set_long(stress_vars[v], -5);
            if (t == NULL || PyContextVar_Reset(stress_vars[v], t) != 0) bad++;
            Py_XDECREF(t);
            break;
        }
        case 6: { /* run a step in a copy, then come back */
            PyObject *c = PyContext_CopyCurrent();
            if (c == NULL || PyContext_Enter(c) != 0) { bad++; break; }
            PyObject *t = h_set_long(stress_vars[v], 1);
            Py_XDECREF(t);
            if (PyContext_Exit(c) != 0) bad++;
            Py_DECREF(c);
            break;
        }
        case 7: { /* copy another thread's context (consistency not checked here) */
            PyObject *c = PyContext_Copy(ctx);
            if (c == NULL) bad++;
            Py_XDECREF(c);
            break;
        }
        default: { /* Get checks the cookie */
            long got = h_get_long(stress_vars[v], NULL);
            if (got != expect[v]) bad++;
        }
        }
        ops++;
    }
    Py_DECREF(ctx);
    __atomic_fetch_add(&stress_mismatches, bad, __ATOMIC_RELAXED);
    __atomic_fetch_add(&stress_ops, ops, __ATOMIC_RELAXED);
    return NULL;
}

TEST(stress_four_threads_with_cookies) {
    for (int v = 0; v < STRESS_VARS; v++) stress_vars[v] = PyContextVar_New("s", NULL);
    stress_mismatches = stress_ops = 0;
    for (int generation = 0; generation < 5; generation++) { /* threads torn down and recreated */
        pthread_t th[STRESS_THREADS];
        for (long i = 0; i < STRESS_THREADS; i++) pthread_create(&th[i], NULL, stress, (void *)(intptr_t)(i + 1));
        for (int i = 0; i < STRESS_THREADS; i++) pthread_join(th[i], NULL);
    }
    CHECK_EQ_LONG(0, stress_mismatches);
    CHECK_EQ_LONG(5L * STRESS_THREADS * 40000, stress_ops);
    for (int v = 0; v < STRESS_VARS; v++) Py_CLEAR(stress_vars[v]);
}
#endif

void suite_threads(void) {
#if LIBRARY_ONLY
    RUN(each_thread_has_its_own_current_context);
    RUN(a_new_thread_does_not_inherit_values);
    RUN(two_threads_racing_to_enter_exactly_one_wins);
    RUN(a_context_moves_between_threads);
    RUN(a_token_from_another_thread_is_from_a_different_context);
    RUN(copies_of_a_context_being_set_are_consistent);
    RUN(thread_exit_releases_contexts_values_and_errors);
    RUN(thread_exit_hooks_of_the_program_may_still_use_contexts);
    RUN(a_key_destructor_may_exit_a_context_in_a_later_round);
    RUN(thread_exit_releases_an_error_value_without_a_type);
    RUN(a_context_left_entered_by_a_dead_thread_can_be_entered_again);
    RUN(stress_four_threads_with_cookies);
#endif
}
