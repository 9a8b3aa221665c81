/* Deep structures: million-long chains of contexts, tokens and nested
 * Enters are freed without recursion, on a thread with a 256 KiB stack.
 * Library-only: CPython's context and token deallocation recurses. */
#include "harness.h"

#if LIBRARY_ONLY
#include <pthread.h>

#define DEPTH 1000000
#define SMALL_STACK (256 * 1024)

static int freed;
static void count_free(PyObject *capsule) { (void)capsule; freed++; }

static void run_on_small_stack(void *(*fn)(void *)) {
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SMALL_STACK);
    CHECK(pthread_create(&th, &attr, fn, NULL) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    pthread_attr_destroy(&attr);
}

/* Context i binds v to context i-1; the first binds a capsule. */
static void *context_chain(void *arg) {
    (void)arg;
    PyObject *v = PyContextVar_New("link", NULL);
    PyObject *prev = PyCapsule_New(&freed, "deep", count_free);
    for (int i = 0; i < DEPTH; i++) {
        PyObject *c = PyContext_New();
        if (c == NULL || PyContext_Enter(c) < 0) break;
        PyObject *t = PyContextVar_Set(v, prev);
        PyContext_Exit(c);
        Py_XDECREF(t);
        Py_DECREF(prev);
        prev = c;
    }
    freed = 0;
    Py_DECREF(prev); /* frees the whole chain */
    CHECK_EQ_LONG(1, freed);
    Py_DECREF(v);
    return NULL;
}

TEST(million_contexts_as_values_free_on_small_stack) { run_on_small_stack(context_chain); }

/* Each token's old value is an earlier token. */
static void *token_chain(void *arg) {
    (void)arg;
    PyObject *v = PyContextVar_New("tok", NULL);
    PyObject *first = PyCapsule_New(&freed, "deep", count_free);
    PyObject *t = PyContextVar_Set(v, first);
    Py_DECREF(first);
    for (int i = 0; i < DEPTH && t != NULL; i++) {
        PyObject *next = PyContextVar_Set(v, t); /* next's old value is t */
        Py_DECREF(t);
        t = next;
    }
    CHECK(t != NULL);
    freed = 0;
    PyObject *end = PyContextVar_Set(v, Py_None); /* the context lets go of the chain */
    Py_XDECREF(end);
    Py_XDECREF(t); /* frees the whole chain */
    CHECK_EQ_LONG(1, freed);
    Py_DECREF(v);
    return NULL;
}

TEST(million_tokens_free_on_small_stack) { run_on_small_stack(token_chain); }

static PyObject *nested[DEPTH];

static void *nested_enters(void *arg) {
    int unwind = arg != NULL;
    PyObject *v = PyContextVar_New("depth", NULL);
    int entered = 0;
    for (int i = 0; i < DEPTH; i++) {
        nested[i] = PyContext_New();
        if (nested[i] == NULL || PyContext_Enter(nested[i]) < 0) break;
        entered++;
    }
    CHECK_EQ_LONG(DEPTH, entered);
    PyObject *cap = PyCapsule_New(&freed, "deep", count_free);
    PyObject *t = PyContextVar_Set(v, cap); /* held by the innermost context */
    Py_DECREF(cap);
    Py_DECREF(t);
    for (int i = 0; i < entered; i++) Py_DECREF(nested[i]); /* the thread keeps them alive */
    freed = 0;
    if (unwind) {
        int ok = 1;
        for (int i = entered - 1; i >= 0; i--) ok &= PyContext_Exit(nested[i]) == 0;
        CHECK(ok);
        CHECK_EQ_LONG(1, freed);
    }
    Py_DECREF(v);
    return NULL; /* otherwise thread exit releases the million entered contexts */
}

static void *nested_unwound(void *arg) { (void)arg; return nested_enters((void *)1); }
static void *nested_abandoned(void *arg) { (void)arg; return nested_enters(NULL); }

TEST(million_nested_enters_unwound_by_exit) { run_on_small_stack(nested_unwound); }

TEST(million_nested_enters_released_by_thread_exit) {
    run_on_small_stack(nested_abandoned);
    CHECK_EQ_LONG(1, freed);
}
#endif

void suite_deep(void) {
#if LIBRARY_ONLY
    RUN(million_contexts_as_values_free_on_small_stack);
    RUN(million_tokens_free_on_small_stack);
    RUN(million_nested_enters_unwound_by_exit);
    RUN(million_nested_enters_released_by_thread_exit);
#endif
}
