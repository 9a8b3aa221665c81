/* Context watchers, as CPython 3.14 defines them (library-only: CPython
 * 3.11 has none): ids 0..7 and their exhaustion, ClearWatcher's errors,
 * the events of Enter and Exit in order and on the switching thread, a
 * failing callback reported on stderr and cleared, callbacks that clear
 * themselves or switch contexts, and adding/clearing while threads switch. */
#include "harness.h"

#if LIBRARY_ONLY
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

/* What the recording watcher saw, on the main thread. */
#define MAX_SEEN 64
static PyObject *seen[MAX_SEEN];
static int seen_tag[MAX_SEEN];
static int n_seen;

static void record(int tag, PyContextEvent event, PyObject *ctx) {
    CHECK_EQ_LONG(Py_CONTEXT_SWITCHED, event);
    CHECK(PyContext_CheckExact(ctx) || ctx == Py_None);
    CHECK(Py_REFCNT(ctx) > 0);
    if (n_seen < MAX_SEEN) { seen[n_seen] = ctx; seen_tag[n_seen] = tag; n_seen++; }
}
static int watch_a(PyContextEvent e, PyObject *ctx) { record('a', e, ctx); return 0; }
static int watch_b(PyContextEvent e, PyObject *ctx) { record('b', e, ctx); return 0; }
static int watch_noop(PyContextEvent e, PyObject *ctx) { (void)e; (void)ctx; return 0; }

TEST(ids_are_the_lowest_free_and_run_out_after_eight) {
    int ids[8];
    for (int i = 0; i < 8; i++) {
        ids[i] = PyContext_AddWatcher(watch_noop);
        CHECK_EQ_LONG(i, ids[i]);
    }
    CHECK_EQ_LONG(-1, PyContext_AddWatcher(watch_noop));
    CHECK_ERROR(PyExc_RuntimeError, "no more context watcher IDs available");
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(3));
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(5));
    CHECK_EQ_LONG(3, PyContext_AddWatcher(watch_noop)); /* reused, lowest first */
    CHECK_EQ_LONG(5, PyContext_AddWatcher(watch_noop));
    CHECK_EQ_LONG(-1, PyContext_AddWatcher(watch_noop));
    CHECK_ERROR(PyExc_RuntimeError, "no more context watcher IDs available");
    for (int i = 0; i < 8; i++) CHECK_EQ_LONG(0, PyContext_ClearWatcher(i));
    CHECK_NO_ERROR();
}

TEST(clear_watcher_errors) {
    CHECK_EQ_LONG(-1, PyContext_ClearWatcher(-1));
    CHECK_ERROR(PyExc_ValueError, "Invalid context watcher ID -1");
    CHECK_EQ_LONG(-1, PyContext_ClearWatcher(8));
    CHECK_ERROR(PyExc_ValueError, "Invalid context watcher ID 8");
    CHECK_EQ_LONG(-1, PyContext_ClearWatcher(1));
    CHECK_ERROR(PyExc_ValueError, "No context watcher set for ID 1");
    int id = PyContext_AddWatcher(watch_noop);
    CHECK_EQ_LONG(0, id);
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(id));
    CHECK_EQ_LONG(-1, PyContext_ClearWatcher(id)); /* twice */
    CHECK_ERROR(PyExc_ValueError, "No context watcher set for ID 0");
    CHECK_EQ_LONG(-1, PyContext_AddWatcher(NULL));
    CHECK_ERROR(PyExc_SystemError, "bad argument to internal function");
}

TEST(enter_and_exit_report_the_new_current_context_in_order) {
    PyObject *base_probe = PyContext_CopyCurrent(); /* makes sure the thread has a base context */
    Py_DECREF(base_probe);
    PyObject *c1 = PyContext_New(), *c2 = PyContext_New();
    n_seen = 0;
    int a = PyContext_AddWatcher(watch_a), b = PyContext_AddWatcher(watch_b);
    CHECK(a >= 0 && b == a + 1);
    CHECK_EQ_LONG(0, PyContext_Enter(c1));
    CHECK_EQ_LONG(0, PyContext_Enter(c2));
    CHECK_EQ_LONG(0, PyContext_Exit(c2));
    CHECK_EQ_LONG(0, PyContext_Exit(c1));
    CHECK_EQ_LONG(8, n_seen);
    PyObject *expect[4] = { c1, c2, c1, NULL };
    for (int i = 0; i < 4 && i * 2 + 1 < n_seen; i++) {
        CHECK_EQ_LONG('a', seen_tag[2 * i]); /* id order */
        CHECK_EQ_LONG('b', seen_tag[2 * i + 1]);
        CHECK(seen[2 * i] == seen[2 * i + 1]);
        if (expect[i] != NULL) CHECK(seen[2 * i] == expect[i]);
    }
    /* Back in the base context: a real context, neither c1 nor c2. */
    CHECK(PyContext_CheckExact(seen[6]) && seen[6] != c1 && seen[6] != c2);
    /* Failed switches report nothing; neither do Set, Get or Copy. */
    n_seen = 0;
    CHECK_EQ_LONG(-1, PyContext_Exit(c1)); PyErr_Clear();
    CHECK_EQ_LONG(0, PyContext_Enter(c1));
    CHECK_EQ_LONG(-1, PyContext_Enter(c1)); PyErr_Clear();
    CHECK_EQ_LONG(-1, PyContext_Enter(Py_None)); PyErr_Clear();
    PyObject *v = PyContextVar_New("v", NULL), *t = h_set_long(v, 1);
    PyObject *cp = PyContext_CopyCurrent();
    CHECK_EQ_LONG(1, h_get_long(v, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t));
    CHECK_EQ_LONG(0, PyContext_Exit(c1));
    CHECK_EQ_LONG(4, n_seen); /* just the one Enter and the one Exit */
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(a));
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(b));
    n_seen = 0;
    CHECK_EQ_LONG(0, PyContext_Enter(c1));
    CHECK_EQ_LONG(0, PyContext_Exit(c1));
    CHECK_EQ_LONG(0, n_seen); /* cleared: no longer called */
    Py_DECREF(t); Py_DECREF(cp); Py_DECREF(v); Py_DECREF(c1); Py_DECREF(c2);
}

/* On a fresh thread: exiting the outermost context reports None, and the
 * lazily created base context (by Set) reports nothing. */
static _Thread_local PyObject *thread_seen[8];
static _Thread_local int thread_n;
static int watch_thread(PyContextEvent e, PyObject *ctx) {
    (void)e;
    if (thread_n < 8) thread_seen[thread_n++] = ctx;
    return 0;
}
static void *fresh_thread(void *arg) {
    PyObject *c = arg, *v = PyContextVar_New("v", NULL);
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_EQ_LONG(2, thread_n);
    CHECK(thread_seen[0] == c);
    CHECK(thread_seen[1] == Py_None);
    PyObject *t = h_set_long(v, 5); /* creates the base context: no event */
    CHECK_EQ_LONG(2, thread_n);
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_EQ_LONG(4, thread_n);
    CHECK(PyContext_CheckExact(thread_seen[3]) && thread_seen[3] != c); /* the base context now */
    Py_DECREF(t); Py_DECREF(v);
    return NULL;
}

TEST(a_thread_without_a_base_context_gets_none_and_lazy_creation_is_silent) {
    PyObject *c = PyContext_New();
    int id = PyContext_AddWatcher(watch_thread);
    pthread_t th;
    CHECK_EQ_LONG(0, pthread_create(&th, NULL, fresh_thread, c));
    CHECK_EQ_LONG(0, pthread_join(th, NULL));
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(id));
    Py_DECREF(c);
}

/* Runs `fn` with stderr sent to a file; returns what was written (malloc'd). */
static char *capture_stderr(void (*fn)(void *), void *arg) {
    fflush(stderr);
    FILE *f = tmpfile();
    int saved = dup(2);
    dup2(fileno(f), 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    if (n < 0) n = 0;
    char *out = calloc(1, (size_t)n + 1);
    rewind(f);
    if (fread(out, 1, (size_t)n, f) != (size_t)n) out[0] = 0;
    fclose(f);
    return out;
}

static int failing_calls, after_failing_calls;
static int watch_fail(PyContextEvent e, PyObject *ctx) {
    (void)e; (void)ctx;
    failing_calls++;
    PyErr_SetString(PyExc_RuntimeError, "boom!");
    return -1;
}
static int watch_after(PyContextEvent e, PyObject *ctx) {
    (void)e; (void)ctx;
    CHECK_NO_ERROR(); /* each callback starts with a clear indicator */
    after_failing_calls++;
    return 0;
}
static int watch_leaves_error(PyContextEvent e, PyObject *ctx) {
    (void)e; (void)ctx;
    PyErr_SetString(PyExc_ValueError, "left behind");
    return 0; /* success, but an error left set: reported too */
}
static int watch_fails_silently(PyContextEvent e, PyObject *ctx) { (void)e; (void)ctx; return -1; }

static void enter_exit_with_pending_error(void *c) {
    PyErr_SetString(PyExc_KeyError, "pending");
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    CHECK_ERROR(PyExc_KeyError, "pending");
    PyErr_SetString(PyExc_KeyError, "pending 2");
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_ERROR(PyExc_KeyError, "pending 2");
}

static void enter_exit(void *c) {
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    CHECK_NO_ERROR();
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_NO_ERROR();
}

TEST(a_failing_callback_is_reported_on_stderr_and_cleared) {
    PyObject *c = PyContext_New();
    PyObject *base_probe = PyContext_CopyCurrent();
    Py_DECREF(base_probe);
    int f = PyContext_AddWatcher(watch_fail), g = PyContext_AddWatcher(watch_after);
    failing_calls = after_failing_calls = 0;
    char *text = capture_stderr(enter_exit, c);
    CHECK_EQ_LONG(2, failing_calls);
    CHECK_EQ_LONG(2, after_failing_calls); /* the next watcher still runs */
    char expected[300];
    snprintf(expected, sizeof expected,
             "Exception ignored in Py_CONTEXT_SWITCHED watcher callback for <_contextvars.Context object at %p>:\n"
             "RuntimeError: boom!\n", (void *)c);
    CHECK(strncmp(text, expected, strlen(expected)) == 0);
    CHECK(strstr(text + strlen(expected), "Exception ignored in Py_CONTEXT_SWITCHED watcher callback for <_contextvars.Context object at ") != NULL);
    if (strncmp(text, expected, strlen(expected)) != 0) fprintf(stderr, "captured: %s\n", text);
    free(text);

    /* An error pending before the switch survives the callbacks. */
    text = capture_stderr(enter_exit_with_pending_error, c);
    CHECK(strstr(text, "RuntimeError: boom!") != NULL);
    free(text);
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(f));
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(g));

    int l = PyContext_AddWatcher(watch_leaves_error);
    text = capture_stderr(enter_exit, c);
    CHECK(strstr(text, "\nValueError: left behind\n") != NULL);
    free(text);
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(l));

    int s = PyContext_AddWatcher(watch_fails_silently);
    text = capture_stderr(enter_exit, c);
    CHECK(strstr(text, "\nSystemError: error return without exception set\n") != NULL);
    free(text);
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(s));
    Py_DECREF(c);
}

static int self_id = -1, self_calls;
static int watch_clears_itself(PyContextEvent e, PyObject *ctx) {
    (void)e; (void)ctx;
    self_calls++;
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(self_id));
    return 0;
}

TEST(a_callback_may_clear_itself) {
    PyObject *c = PyContext_New();
    self_calls = 0;
    self_id = PyContext_AddWatcher(watch_clears_itself);
    CHECK(self_id >= 0);
    enter_exit(c);
    CHECK_EQ_LONG(1, self_calls); /* only the Enter */
    CHECK_EQ_LONG(-1, PyContext_ClearWatcher(self_id));
    PyErr_Clear();
    Py_DECREF(c);
}

static PyObject *other_ctx;
static int switching_depth;
static int watch_switches(PyContextEvent e, PyObject *ctx) {
    record('s', e, ctx);
    if (switching_depth == 0 && ctx != other_ctx && PyContext_CheckExact(ctx) && n_seen == 1) {
        switching_depth++; /* one level only: recursion is the callback's business */
        CHECK_EQ_LONG(0, PyContext_Enter(other_ctx));
        CHECK_EQ_LONG(0, PyContext_Exit(other_ctx));
        switching_depth--;
    }
    return 0;
}

TEST(a_callback_may_enter_and_exit_another_context) {
    PyObject *c = PyContext_New();
    other_ctx = PyContext_New();
    n_seen = 0;
    int id = PyContext_AddWatcher(watch_switches);
    CHECK_EQ_LONG(0, PyContext_Enter(c));
    CHECK_EQ_LONG(3, n_seen); /* c, then other (nested), then c again */
    CHECK(seen[0] == c && seen[1] == other_ctx && seen[2] == c);
    CHECK_EQ_LONG(0, PyContext_Exit(c));
    CHECK_EQ_LONG(4, n_seen);
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(id));
    Py_CLEAR(other_ctx);
    Py_DECREF(c);
}

/* Threads: a steady watcher counts every switch and tracks each thread's
 * current context; meanwhile a thread adds and clears other watchers (which
 * clear themselves, too). */
#define SWITCHERS 3
#define ROUNDS 3000
static long steady_count, churn_count;
static _Thread_local PyObject *last_seen;
static int watch_steady(PyContextEvent e, PyObject *ctx) {
    (void)e;
    __atomic_fetch_add(&steady_count, 1, __ATOMIC_RELAXED);
    last_seen = ctx;
    return 0;
}
static int watch_churn(PyContextEvent e, PyObject *ctx) {
    (void)e;
    CHECK(PyContext_CheckExact(ctx) || ctx == Py_None);
    __atomic_fetch_add(&churn_count, 1, __ATOMIC_RELAXED);
    return 0;
}
static int stop_churn;
static void *switcher(void *arg) {
    (void)arg;
    PyObject *outer = PyContext_New(), *inner = PyContext_New();
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_EQ_LONG(0, PyContext_Enter(outer));
        CHECK(last_seen == outer);
        CHECK_EQ_LONG(0, PyContext_Enter(inner));
        CHECK(last_seen == inner);
        CHECK_EQ_LONG(0, PyContext_Exit(inner));
        CHECK(last_seen == outer);
        CHECK_EQ_LONG(0, PyContext_Exit(outer));
        CHECK(last_seen == Py_None); /* the thread never made a base context */
    }
    Py_DECREF(outer); Py_DECREF(inner);
    return NULL;
}
static void *churner(void *arg) {
    (void)arg;
    int adds = 0;
    while (!__atomic_load_n(&stop_churn, __ATOMIC_ACQUIRE) || adds < 10) {
        int ids[6], n = 0;
        for (int k = 0; k < 6; k++) {
            int id = PyContext_AddWatcher(watch_churn);
            if (id < 0) { CHECK_ERROR(PyExc_RuntimeError, "no more context watcher IDs available"); break; }
            ids[n++] = id;
        }
        adds += n;
        sched_yield();
        for (int k = 0; k < n; k++) CHECK_EQ_LONG(0, PyContext_ClearWatcher(ids[k]));
    }
    return NULL;
}

TEST(watchers_are_added_and_cleared_while_threads_switch) {
    steady_count = churn_count = 0;
    stop_churn = 0;
    int steady = PyContext_AddWatcher(watch_steady);
    CHECK(steady >= 0);
    pthread_t sw[SWITCHERS], ch[2];
    for (int i = 0; i < 2; i++) CHECK_EQ_LONG(0, pthread_create(&ch[i], NULL, churner, NULL));
    for (int i = 0; i < SWITCHERS; i++) CHECK_EQ_LONG(0, pthread_create(&sw[i], NULL, switcher, NULL));
    for (int i = 0; i < SWITCHERS; i++) CHECK_EQ_LONG(0, pthread_join(sw[i], NULL));
    __atomic_store_n(&stop_churn, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) CHECK_EQ_LONG(0, pthread_join(ch[i], NULL));
    CHECK_EQ_LONG(0, PyContext_ClearWatcher(steady));
    CHECK_EQ_LONG((long)SWITCHERS * ROUNDS * 4, steady_count); /* every switch, exactly once */
    /* Every id is free again. */
    for (int i = 0; i < 8; i++) CHECK_EQ_LONG(i, PyContext_AddWatcher(watch_noop));
    for (int i = 0; i < 8; i++) CHECK_EQ_LONG(0, PyContext_ClearWatcher(i));
    CHECK_NO_ERROR();
}
#endif

void suite_watchers(void) {
#if LIBRARY_ONLY
    RUN(ids_are_the_lowest_free_and_run_out_after_eight);
    RUN(clear_watcher_errors);
    RUN(enter_and_exit_report_the_new_current_context_in_order);
    RUN(a_thread_without_a_base_context_gets_none_and_lazy_creation_is_silent);
    RUN(a_failing_callback_is_reported_on_stderr_and_cleared);
    RUN(a_callback_may_clear_itself);
    RUN(a_callback_may_enter_and_exit_another_context);
    RUN(watchers_are_added_and_cleared_while_threads_switch);
#endif
}
