/* Threads (library-only: CPython serialises everything with the GIL and
 * needs a thread state per thread). Each thread has its own current context
 * and error indicator; entering is exclusive across threads; copies of a
 * context another thread keeps setting are consistent snapshots; tokens
 * belong to contexts, not threads; thread exit releases everything. */
#include "harness.h"

#if LIBRARY_ONLY
#include <pthread.h>
#include <sched.h>

static void start(pthread_t *th, void *(*fn)(void *), void *arg) {
    int r = pthread_create(th, NULL, fn, arg);
    CHECK_EQ_LONG(0, r);
    if (r != 0) abort(); /* a join on a thread that does not exist would hang */
}

static void join(pthread_t th) { CHECK_EQ_LONG(0, pthread_join(th, NULL)); }

static PyObject *shared_var, *shared_var2;

static void *set_and_read_own(void *arg) {
    long id = (long)(intptr_t)arg;
    CHECK_EQ_LONG(H_MISSING, h_get_long(shared_var, NULL)); /* a new thread starts empty */
    for (int i = 0; i < 2000; i++) {
        PyObject *t = h_set_long(shared_var, id * 100000 + i);
        CHECK(t != NULL);
        Py_XDECREF(t);
        sched_yield();
        CHECK_EQ_LONG(id * 100000 + i, h_get_long(shared_var, NULL));
    }
    return NULL;
}

TEST(each_thread_has_its_own_current_context) {
    shared_var = PyContextVar_New("shared", NULL);
    PyObject *t = h_set_long(shared_var, 7);
    pthread_t th[4];
    for (long i = 0; i < 4; i++) start(&th[i], set_and_read_own, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < 4; i++) join(th[i]);
    CHECK_EQ_LONG(7, h_get_long(shared_var, NULL)); /* untouched by the others */
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var, t));
    Py_DECREF(t);
    Py_CLEAR(shared_var);
}

static void *read_fresh(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(H_MISSING, h_get_long(shared_var, NULL)); /* a new thread starts empty */
    CHECK_EQ_LONG(99, h_get_long(shared_var2, NULL)); /* the var's default is the var's */
    return NULL;
}

TEST(a_new_thread_does_not_inherit_values) {
    PyObject *d = PyLong_FromLong(99);
    shared_var = PyContextVar_New("shared", NULL);
    shared_var2 = PyContextVar_New("with_default", d);
    PyObject *t = h_set_long(shared_var, 1), *t2 = h_set_long(shared_var2, 2);
    pthread_t th;
    start(&th, read_fresh, NULL);
    join(th);
    CHECK_EQ_LONG(1, h_get_long(shared_var, NULL));
    CHECK_EQ_LONG(2, h_get_long(shared_var2, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var2, t2));
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var, t));
    Py_DECREF(t); Py_DECREF(t2); Py_DECREF(d);
    Py_CLEAR(shared_var);
    Py_CLEAR(shared_var2);
}

/* Each thread has its own error indicator. */
static pthread_barrier_t err_barrier;

static void *own_error(void *arg) {
    long me = (long)(intptr_t)arg;
    CHECK_NO_ERROR();
    PyErr_SetString(me == 1 ? PyExc_KeyError : PyExc_ValueError, me == 1 ? "from one" : "from two");
    pthread_barrier_wait(&err_barrier); /* both have set theirs */
    pthread_barrier_wait(&err_barrier); /* the main thread looked at its own */
    if (me == 1) CHECK_ERROR(PyExc_KeyError, "from one");
    else CHECK_ERROR(PyExc_ValueError, "from two");
    pthread_barrier_wait(&err_barrier);
    PyErr_SetString(PyExc_RuntimeError, "left pending at thread exit"); /* released with the thread */
    return NULL;
}

TEST(each_thread_has_its_own_error_indicator) {
    pthread_barrier_init(&err_barrier, NULL, 3);
    PyErr_SetString(PyExc_TypeError, "main");
    pthread_t a, b;
    start(&a, own_error, (void *)(intptr_t)1);
    start(&b, own_error, (void *)(intptr_t)2);
    pthread_barrier_wait(&err_barrier);
    CHECK(PyErr_Occurred() == PyExc_TypeError);
    pthread_barrier_wait(&err_barrier);
    pthread_barrier_wait(&err_barrier);
    join(a);
    join(b);
    CHECK_ERROR(PyExc_TypeError, "main");
    pthread_barrier_destroy(&err_barrier);
}

/* Two threads race to enter one context, 1000 times: exactly one wins each
 * round; the loser fails while the winner is inside. */
#define RACE_ROUNDS 1000
static PyObject *race_ctxs[RACE_ROUNDS];
static int race_wins[RACE_ROUNDS], race_losses_ok[RACE_ROUNDS];
static pthread_barrier_t race_barrier;

static void *racer(void *arg) {
    (void)arg;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        PyObject *c = race_ctxs[i];
        pthread_barrier_wait(&race_barrier);
        int r = PyContext_Enter(c);
        if (r == 0) {
            __atomic_fetch_add(&race_wins[i], 1, __ATOMIC_RELAXED);
        } else {
            char expected[200];
            snprintf(expected, sizeof expected,
                     "cannot enter context: <_contextvars.Context object at %p> is already entered", (void *)c);
            if (CHECK_ERROR(PyExc_RuntimeError, expected)) __atomic_fetch_add(&race_losses_ok[i], 1, __ATOMIC_RELAXED);
        }
        pthread_barrier_wait(&race_barrier); /* both tried; the winner is still inside */
        if (r == 0) CHECK_EQ_LONG(0, PyContext_Exit(c));
    }
    return NULL;
}

TEST(two_threads_racing_to_enter_exactly_one_wins) {
    for (int i = 0; i < RACE_ROUNDS; i++) {
        race_ctxs[i] = PyContext_New();
        race_wins[i] = race_losses_ok[i] = 0;
    }
    pthread_barrier_init(&race_barrier, NULL, 2);
    pthread_t a, b;
    start(&a, racer, NULL);
    start(&b, racer, NULL);
    join(a);
    join(b);
    pthread_barrier_destroy(&race_barrier);
    int bad_rounds = 0;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        if (race_wins[i] != 1 || race_losses_ok[i] != 1) bad_rounds++;
        /* the winner's Exit left it enterable */
        CHECK_EQ_LONG(0, PyContext_Enter(race_ctxs[i]));
        CHECK_EQ_LONG(0, PyContext_Exit(race_ctxs[i]));
        CHECK_EQ_LONG(1, Py_REFCNT(race_ctxs[i]));
        Py_CLEAR(race_ctxs[i]);
    }
    CHECK_EQ_LONG(0, bad_rounds);
}

static PyObject *handoff_ctx;

static void *exit_or_enter_from_other_thread(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(-1, PyContext_Exit(handoff_ctx));
    CHECK_ERROR(PyExc_RuntimeError, "cannot exit context: thread state references a different context object");
    char expected[200];
    snprintf(expected, sizeof expected, "cannot enter context: <_contextvars.Context object at %p> is already entered",
             (void *)handoff_ctx);
    CHECK_EQ_LONG(-1, PyContext_Enter(handoff_ctx));
    CHECK_ERROR(PyExc_RuntimeError, expected);
    CHECK_EQ_LONG(H_MISSING, h_get_long(shared_var, NULL)); /* the failures changed nothing here */
    return NULL;
}

static void *enter_read_exit(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(0, PyContext_Enter(handoff_ctx));
    CHECK_EQ_LONG(42, h_get_long(shared_var, NULL)); /* values travel with the context */
    PyObject *t = h_set_long(shared_var2, 43);
    Py_XDECREF(t);
    CHECK_EQ_LONG(0, PyContext_Exit(handoff_ctx));
    CHECK_EQ_LONG(H_MISSING, h_get_long(shared_var, NULL));
    return NULL;
}

TEST(a_context_moves_between_threads) {
    shared_var = PyContextVar_New("a", NULL);
    shared_var2 = PyContextVar_New("b", NULL);
    handoff_ctx = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(handoff_ctx));
    PyObject *t = h_set_long(shared_var, 42);
    pthread_t th;
    start(&th, exit_or_enter_from_other_thread, NULL);
    join(th);
    CHECK_EQ_LONG(42, h_get_long(shared_var, NULL)); /* still entered here */
    CHECK_EQ_LONG(0, PyContext_Exit(handoff_ctx));
    start(&th, enter_read_exit, NULL); /* entered elsewhere after Exit here */
    join(th);
    CHECK_EQ_LONG(0, PyContext_Enter(handoff_ctx));
    CHECK_EQ_LONG(42, h_get_long(shared_var, NULL));
    CHECK_EQ_LONG(43, h_get_long(shared_var2, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var, t)); /* the token belongs to the context */
    CHECK_EQ_LONG(H_MISSING, h_get_long(shared_var, NULL));
    CHECK_EQ_LONG(0, PyContext_Exit(handoff_ctx));
    Py_XDECREF(t);
    CHECK_EQ_LONG(1, Py_REFCNT(handoff_ctx));
    Py_CLEAR(handoff_ctx);
    Py_CLEAR(shared_var);
    Py_CLEAR(shared_var2);
}

/* Tokens belong to contexts, not threads. */
static PyObject *foreign_token, *token_ctx;

static void *reset_foreign_token(void *arg) {
    (void)arg;
    char expected[300];
    snprintf(expected, sizeof expected, "<Token var=<ContextVar name='a' at %p> at %p> was created in a different Context",
             (void *)shared_var, (void *)foreign_token);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(shared_var, foreign_token)); /* this thread's base context */
    CHECK_ERROR(PyExc_ValueError, expected);
    PyObject *c = h_enter_new(); /* nor any other context of this thread */
    CHECK_EQ_LONG(-1, PyContextVar_Reset(shared_var, foreign_token));
    CHECK_ERROR(PyExc_ValueError, expected);
    h_leave(c);
    return NULL;
}

static void *reset_in_the_tokens_context(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(0, PyContext_Enter(token_ctx));
    CHECK_EQ_LONG(2, h_get_long(shared_var, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var, foreign_token)); /* made on another thread */
    CHECK_EQ_LONG(1, h_get_long(shared_var, NULL));
    CHECK_EQ_LONG(0, PyContext_Exit(token_ctx));
    return NULL;
}

static void *reset_a_used_token(void *arg) {
    (void)arg;
    char expected[300];
    snprintf(expected, sizeof expected, "<Token used var=<ContextVar name='a' at %p> at %p> has already been used once",
             (void *)shared_var, (void *)foreign_token);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(shared_var, foreign_token));
    CHECK_ERROR(PyExc_RuntimeError, expected);
    return NULL;
}

TEST(tokens_handed_between_threads) {
    shared_var = PyContextVar_New("a", NULL);
    foreign_token = h_set_long(shared_var, 1); /* in this thread's base context */
    pthread_t th;
    start(&th, reset_foreign_token, NULL);
    join(th);
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var, foreign_token)); /* not spent: still good here */
    Py_CLEAR(foreign_token);

    token_ctx = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(token_ctx));
    PyObject *t1 = h_set_long(shared_var, 1);
    foreign_token = h_set_long(shared_var, 2);
    CHECK_EQ_LONG(0, PyContext_Exit(token_ctx));
    start(&th, reset_in_the_tokens_context, NULL);
    join(th);
    start(&th, reset_a_used_token, NULL);
    join(th);
    CHECK_EQ_LONG(0, PyContext_Enter(token_ctx));
    CHECK_EQ_LONG(1, h_get_long(shared_var, NULL)); /* the other thread's Reset is seen here */
    CHECK_EQ_LONG(0, PyContextVar_Reset(shared_var, t1));
    CHECK_EQ_LONG(H_MISSING, h_get_long(shared_var, NULL));
    CHECK_EQ_LONG(0, PyContext_Exit(token_ctx));
    Py_DECREF(t1);
    Py_CLEAR(foreign_token);
    Py_CLEAR(token_ctx);
    Py_CLEAR(shared_var);
}

/* Copy of a context another thread keeps setting: the setter sets a then b
 * to the same increasing number, so every snapshot has b == a or b == a - 1
 * (b missing only when a == 1), and snapshots never go back in time nor
 * behind the last pair the setter published. */
static PyObject *busy_ctx;
static int stop_setting;
static long setter_progress; /* the last pair fully set */

static void *keep_setting(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(0, PyContext_Enter(busy_ctx));
    for (long i = 1; !__atomic_load_n(&stop_setting, __ATOMIC_ACQUIRE); i++) {
        PyObject *t1 = h_set_long(shared_var, i);
        /* Now and then let the copier in between the two Sets, even on one
         * core or under valgrind (which also needs the yield to be fair). */
        if ((i & 7) == 0) sched_yield();
        PyObject *t2 = h_set_long(shared_var2, i);
        if (t1 == NULL || t2 == NULL) CHECK(!"set failed");
        Py_XDECREF(t1);
        Py_XDECREF(t2);
        __atomic_store_n(&setter_progress, i, __ATOMIC_RELEASE);
    }
    CHECK_EQ_LONG(0, PyContext_Exit(busy_ctx));
    return NULL;
}

#define COPIES 100000

TEST(copies_of_a_context_being_set_are_consistent) {
    shared_var = PyContextVar_New("a", NULL);
    shared_var2 = PyContextVar_New("b", NULL);
    busy_ctx = PyContext_New();
    stop_setting = 0;
    setter_progress = 0;
    pthread_t th;
    start(&th, keep_setting, NULL);
    long seen = 0; /* wait for the setter's first pair */
    long bad = 0, last_a = 0, copies = 0, changes = 0;
    for (int i = 0; i < COPIES; i++) {
        if ((i & 1023) == 0) { /* make sure the setter moves on (valgrind serialises threads) */
            long target = seen + 1;
            while ((seen = __atomic_load_n(&setter_progress, __ATOMIC_ACQUIRE)) < target) sched_yield();
        }
        PyObject *snap = PyContext_Copy(busy_ctx);
        if (snap == NULL || PyContext_Enter(snap) < 0) { bad++; PyErr_Clear(); Py_XDECREF(snap); continue; }
        long a = h_get_long(shared_var, NULL), b = h_get_long(shared_var2, NULL);
        int ok = a >= seen && a >= last_a && (b == a || b == a - 1 || (a == 1 && b == H_MISSING));
        if (!ok) {
            if (bad < 5) {
                char buf[200];
                snprintf(buf, sizeof buf, "inconsistent snapshot: a=%ld b=%ld (previous a=%ld)", a, b, last_a);
                h_fail(__FILE__, __LINE__, buf);
            }
            bad++;
        }
        if (a > last_a) { changes++; last_a = a; }
        if (PyContext_Exit(snap) != 0) bad++;
        Py_DECREF(snap);
        copies++;
    }
    __atomic_store_n(&stop_setting, 1, __ATOMIC_RELEASE);
    join(th);
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(COPIES, copies);
    CHECK(changes >= COPIES / 4096); /* the copies did see the setter's work progress */
    CHECK_NO_ERROR();
    CHECK_EQ_LONG(1, Py_REFCNT(busy_ctx));
    Py_CLEAR(busy_ctx);
    Py_CLEAR(shared_var);
    Py_CLEAR(shared_var2);
}

/* A thread that exits with values set, contexts entered and an error pending
 * releases all of them. */
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
        CHECK_EQ_LONG(0, PyContext_Enter(c));
        cap = PyCapsule_New(&exit_freed, "exit", count_exit_free);
        t = PyContextVar_Set(var, cap);
        Py_DECREF(t);
        Py_DECREF(cap);
        Py_DECREF(c); /* only the thread holds it now */
    }
    CHECK_EQ_LONG(0, __atomic_load_n(&exit_freed, __ATOMIC_RELAXED));
    /* an error whose value is counted too */
    PyErr_Restore(Py_NewRef(PyExc_ValueError), PyCapsule_New(&exit_freed, "exit", count_exit_free), NULL);
    return NULL;
}

TEST(thread_exit_releases_contexts_values_and_errors) {
    PyObject *var = PyContextVar_New("x", NULL);
    exit_freed = 0;
    pthread_t th;
    start(&th, exit_without_cleanup, var);
    join(th);
    CHECK_EQ_LONG(102, __atomic_load_n(&exit_freed, __ATOMIC_RELAXED));
    CHECK_EQ_LONG(1, Py_REFCNT(var)); /* no context holds the var any more */
    CHECK_NO_ERROR(); /* the thread's error was its own */
    Py_DECREF(var);
}

/* On a thread that never had a context, Enter links to nothing; with the
 * caller's reference dropped (S1) Exit still works and leaves no context. */
static int fresh_freed;
static void fresh_free(PyObject *c) { (void)c; fresh_freed++; }

static void *enter_on_a_fresh_thread(void *arg) {
    PyObject *var = arg;
    PyObject *c = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    PyObject *cap = PyCapsule_New(&fresh_freed, NULL, fresh_free);
    PyObject *t = PyContextVar_Set(var, cap);
    Py_XDECREF(t);
    Py_DECREF(cap);
    Py_DECREF(c);
    CHECK_EQ_LONG(0, fresh_freed);
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_EQ_LONG(1, fresh_freed);
    CHECK_EQ_LONG(H_MISSING, h_get_long(var, NULL));
    t = h_set_long(var, 5); /* a new base context */
    CHECK_EQ_LONG(5, h_get_long(var, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, t));
    Py_XDECREF(t);
    return NULL;
}

TEST(enter_and_exit_on_a_thread_without_a_context) {
    PyObject *var = PyContextVar_New("fresh", NULL);
    fresh_freed = 0;
    pthread_t th;
    start(&th, enter_on_a_fresh_thread, var);
    join(th);
    CHECK_EQ_LONG(1, fresh_freed);
    CHECK_EQ_LONG(1, Py_REFCNT(var));
    Py_DECREF(var);
}

static PyObject *left_entered;

static void *enter_and_die(void *arg) {
    (void)arg;
    CHECK_EQ_LONG(0, PyContext_Enter(left_entered));
    PyObject *t = h_set_long(shared_var, 11);
    Py_XDECREF(t);
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
    start(&th, enter_then_leave_it_to_a_key, NULL);
    join(th);
    CHECK_EQ_LONG(1, tsd_exit_ok);
    CHECK_EQ_LONG(1, tsd_freed);
    pthread_key_delete(user_key);
    Py_CLEAR(tsd_var);
}

TEST(a_context_left_entered_by_a_dead_thread_can_be_entered_again) {
    shared_var = PyContextVar_New("left", NULL);
    left_entered = PyContext_New();
    pthread_t th;
    start(&th, enter_and_die, NULL);
    join(th);
    CHECK_EQ_LONG(0, PyContext_Enter(left_entered)); /* library-only: CPython keeps it marked */
    CHECK_EQ_LONG(11, h_get_long(shared_var, NULL)); /* with what the dead thread set */
    CHECK_EQ_LONG(0, PyContext_Exit(left_entered));
    CHECK_EQ_LONG(1, Py_REFCNT(left_entered));
    Py_CLEAR(left_entered);
    Py_CLEAR(shared_var);
}

/* Stress: 4 threads mixing Get/Set/Reset/Enter/Exit/Copy, on their own
 * contexts and on shared ones that survive the threads. Every value is an
 * int cookie (variable, thread, generation); every Get checks it. */
#define STRESS_THREADS 4
#define STRESS_VARS 8
#define STRESS_SHARED 3
#define STRESS_OPS 25000
#define STRESS_ROUNDS 4
static PyObject *stress_vars[STRESS_VARS], *stress_shared[STRESS_SHARED];
static long stress_mismatches, stress_ops, stress_busy, stress_shared_entered;

static long cookie(int v, long thread, long gen) { return ((long)v << 48) | (thread << 40) | gen; }
/* A value found in a context other threads also use: only its shape is known. */
static int cookie_ok(long got, int v) {
    if (got == H_MISSING) return 1;
    if (got < 0) return 0;
    long th = (got >> 40) & 0xff;
    return (got >> 48) == v && th >= 1 && th <= STRESS_THREADS;
}

static void stress_report(long *bad, const char *what, int v, long expected, long got) {
    if (++*bad <= 3) {
        char buf[256];
        snprintf(buf, sizeof buf, "stress mismatch (%s): var %d expected %ld got %ld", what, v, expected, got);
        h_fail(__FILE__, __LINE__, buf);
    }
}

static void *stress(void *arg) {
    long me = (long)(intptr_t)arg;
    long expect[STRESS_VARS], prev[STRESS_VARS];
    PyObject *tok[STRESS_VARS] = {0};
    for (int v = 0; v < STRESS_VARS; v++) expect[v] = prev[v] = H_MISSING;
    unsigned x = (unsigned)me * 2654435761u + (unsigned)__atomic_load_n(&stress_ops, __ATOMIC_RELAXED) + 1;
    long gen = 0, bad = 0, busy = 0, entered = 0;
    PyObject *mine = h_enter_new(); /* this thread's own context */
    for (int op = 0; op < STRESS_OPS; op++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        int v = (int)(x % STRESS_VARS);
        switch ((x >> 8) % 10) {
        case 0: case 1: case 2: { /* Set, keeping the token */
            long c = cookie(v, me, ++gen);
            PyObject *t = h_set_long(stress_vars[v], c);
            if (t == NULL) { stress_report(&bad, "set", v, c, 0); PyErr_Clear(); break; }
            Py_XDECREF(tok[v]);
            tok[v] = t;
            prev[v] = expect[v];
            expect[v] = c;
            break;
        }
        case 3: { /* Reset the latest token: the value before it comes back */
            if (tok[v] == NULL) break;
            if (PyContextVar_Reset(stress_vars[v], tok[v]) != 0) { stress_report(&bad, "reset", v, 0, -1); PyErr_Clear(); }
            Py_CLEAR(tok[v]);
            expect[v] = prev[v];
            long got = h_get_long(stress_vars[v], NULL);
            if (got != expect[v]) stress_report(&bad, "get after reset", v, expect[v], got);
            break;
        }
        case 4: { /* a step in a copy of the current context, then back */
            PyObject *c = PyContext_CopyCurrent();
            if (c == NULL || PyContext_Enter(c) != 0) { stress_report(&bad, "copy/enter", v, 0, -1); PyErr_Clear(); Py_XDECREF(c); break; }
            long got = h_get_long(stress_vars[v], NULL);
            if (got != expect[v]) stress_report(&bad, "get in copy", v, expect[v], got);
            long inner = cookie(v, me, ++gen);
            PyObject *t = h_set_long(stress_vars[v], inner);
            got = h_get_long(stress_vars[v], NULL);
            if (got != inner) stress_report(&bad, "get in copy after set", v, inner, got);
            if (t == NULL || PyContextVar_Reset(stress_vars[v], t) != 0) stress_report(&bad, "reset in copy", v, 0, -1);
            Py_XDECREF(t);
            if (PyContext_Exit(c) != 0) stress_report(&bad, "exit copy", v, 0, -1);
            Py_DECREF(c);
            got = h_get_long(stress_vars[v], NULL);
            if (got != expect[v]) stress_report(&bad, "get after exit", v, expect[v], got);
            break;
        }
        case 5: case 6: { /* enter a shared context (another thread may be inside) */
            PyObject *s = stress_shared[x % STRESS_SHARED];
            if (PyContext_Enter(s) != 0) {
                if (PyErr_ExceptionMatches(PyExc_RuntimeError)) busy++;
                else stress_report(&bad, "enter shared", v, 0, -1);
                PyErr_Clear();
                break;
            }
            entered++;
            for (int w = 0; w < STRESS_VARS; w++) {
                long got = h_get_long(stress_vars[w], NULL);
                if (!cookie_ok(got, w)) stress_report(&bad, "get in shared", w, -2, got);
            }
            long c = cookie(v, me, ++gen);
            PyObject *t = h_set_long(stress_vars[v], c);
            Py_XDECREF(t);
            sched_yield(); /* stay inside a while: nobody else may change it */
            long got = h_get_long(stress_vars[v], NULL);
            if (got != c) stress_report(&bad, "get in shared after set", v, c, got);
            if (PyContext_Exit(s) != 0) stress_report(&bad, "exit shared", v, 0, -1);
            got = h_get_long(stress_vars[v], NULL);
            if (got != expect[v]) stress_report(&bad, "get after shared", v, expect[v], got);
            break;
        }
        case 7: { /* copy a shared context, maybe while another thread sets it */
            PyObject *c = PyContext_Copy(stress_shared[x % STRESS_SHARED]);
            if (c == NULL || PyContext_Enter(c) != 0) { stress_report(&bad, "copy shared", v, 0, -1); PyErr_Clear(); Py_XDECREF(c); break; }
            for (int w = 0; w < STRESS_VARS; w++) {
                long got = h_get_long(stress_vars[w], NULL);
                if (!cookie_ok(got, w)) stress_report(&bad, "get in shared copy", w, -2, got);
            }
            if (PyContext_Exit(c) != 0) stress_report(&bad, "exit shared copy", v, 0, -1);
            Py_DECREF(c);
            break;
        }
        default: { /* Get checks the cookie */
            long got = h_get_long(stress_vars[v], NULL);
            if (got != expect[v]) stress_report(&bad, "get", v, expect[v], got);
        }
        }
        if (PyErr_Occurred()) { stress_report(&bad, "error left set", v, 0, -1); PyErr_Clear(); }
    }
    for (int v = 0; v < STRESS_VARS; v++) Py_XDECREF(tok[v]);
    h_leave(mine);
    __atomic_fetch_add(&stress_mismatches, bad, __ATOMIC_RELAXED);
    __atomic_fetch_add(&stress_ops, (long)STRESS_OPS, __ATOMIC_RELAXED);
    __atomic_fetch_add(&stress_busy, busy, __ATOMIC_RELAXED);
    __atomic_fetch_add(&stress_shared_entered, entered, __ATOMIC_RELAXED);
    return NULL;
}

TEST(stress_four_threads_with_cookies) {
    for (int v = 0; v < STRESS_VARS; v++) stress_vars[v] = PyContextVar_New("s", NULL);
    for (int s = 0; s < STRESS_SHARED; s++) stress_shared[s] = PyContext_New();
    stress_mismatches = stress_ops = stress_busy = stress_shared_entered = 0;
    for (int round = 0; round < STRESS_ROUNDS; round++) { /* threads torn down and recreated */
        pthread_t th[STRESS_THREADS];
        for (long i = 0; i < STRESS_THREADS; i++) start(&th[i], stress, (void *)(intptr_t)(i + 1));
        for (int i = 0; i < STRESS_THREADS; i++) join(th[i]);
    }
    CHECK_EQ_LONG(0, stress_mismatches);
    CHECK_EQ_LONG((long)STRESS_ROUNDS * STRESS_THREADS * STRESS_OPS, stress_ops);
    CHECK(stress_shared_entered > 0);
    /* The shared contexts outlived every thread, hold only valid cookies and
     * are not left entered. */
    for (int s = 0; s < STRESS_SHARED; s++) {
        CHECK_EQ_LONG(0, PyContext_Enter(stress_shared[s]));
        for (int w = 0; w < STRESS_VARS; w++) CHECK(cookie_ok(h_get_long(stress_vars[w], NULL), w));
        CHECK_EQ_LONG(0, PyContext_Exit(stress_shared[s]));
        CHECK_EQ_LONG(1, Py_REFCNT(stress_shared[s]));
        Py_CLEAR(stress_shared[s]);
    }
    for (int v = 0; v < STRESS_VARS; v++) {
        CHECK_EQ_LONG(1, Py_REFCNT(stress_vars[v])); /* no context holds them any more */
        Py_CLEAR(stress_vars[v]);
    }
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

#endif

void suite_threads(void) {
#if LIBRARY_ONLY
    RUN(each_thread_has_its_own_current_context);
    RUN(a_new_thread_does_not_inherit_values);
    RUN(each_thread_has_its_own_error_indicator);
    RUN(two_threads_racing_to_enter_exactly_one_wins);
    RUN(a_context_moves_between_threads);
    RUN(tokens_handed_between_threads);
    RUN(copies_of_a_context_being_set_are_consistent);
    RUN(thread_exit_releases_contexts_values_and_errors);
    RUN(enter_and_exit_on_a_thread_without_a_context);
    RUN(thread_exit_hooks_of_the_program_may_still_use_contexts);
    RUN(a_context_left_entered_by_a_dead_thread_can_be_entered_again);
    RUN(stress_four_threads_with_cookies);
    RUN(a_key_destructor_may_exit_a_context_in_a_later_round);
    RUN(thread_exit_releases_an_error_value_without_a_type);
#endif
}
