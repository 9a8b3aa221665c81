/* tracer.c: a context watcher keeps a per-thread "current request id" up to
 * date, so tracing code can read a plain thread-local instead of calling
 * into the context API (as a profiler, a log hook or a signal handler
 * would).
 *
 * Each request runs as a task in its own context, stepped by a small event
 * loop with contextvars_context_run(). The watcher fires on every Enter and
 * Exit and copies the request id of the new current context into
 * `current_request_id`. Two loops run, one per thread, with their own ids.
 *
 * A watcher sees switches, not Sets: the request id is set in each task's
 * context when the task is created, before the loop first enters it.
 *
 * Build: cc -std=c11 -Iinclude examples/tracer.c -Ltarget/release -lcontextvars -lpthread */
#define _POSIX_C_SOURCE 200809L
#include "contextvars.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static PyObject *request_id; /* ContextVar: the id of the request being served */

/* What the tracer reads: kept current by the watcher, -1 outside requests. */
static _Thread_local long current_request_id = -1;
static _Thread_local const char *loop_name = "main";
static int mismatches;

/* The watcher: called on the switching thread with the new current context
 * (borrowed) or None. Reads the id without entering anything. */
static int track_request(PyContextEvent event, PyObject *ctx) {
    (void)event;
    long id = -1;
    if (ctx != Py_None) {
        PyObject *value = NULL;
        if (contextvars_context_get(ctx, request_id, NULL, &value) < 0) return -1;
        if (value != NULL) {
            id = PyLong_AsLong(value);
            Py_DECREF(value);
            if (id == -1 && PyErr_Occurred()) return -1;
        }
    }
    current_request_id = id;
    return 0;
}

/* Tracing: uses only the thread-local. */
static void trace(const char *task, const char *what) {
    if (current_request_id < 0)
        printf("[%s] (no request)  %s\n", loop_name, what);
    else
        printf("[%s] request %ld  %-7s %s\n", loop_name, current_request_id, task, what);
}

struct task {
    const char *name;
    long id;
    int steps, done;
    PyObject *ctx; /* the task's own context */
};

/* One step of a task, run inside the task's context. */
static PyObject *step(void *arg) {
    struct task *t = arg;
    /* The watcher's copy agrees with the context (checked for the demo). */
    PyObject *v = NULL;
    if (PyContextVar_Get(request_id, NULL, &v) < 0) return NULL;
    if (v == NULL || PyLong_AsLong(v) != current_request_id) mismatches++;
    Py_XDECREF(v);
    char what[64];
    snprintf(what, sizeof what, "step %d of %d", t->done + 1, t->steps);
    trace(t->name, what);
    t->done++;
    Py_RETURN_NONE;
}

static PyObject *set_id(void *arg) {
    struct task *t = arg;
    PyObject *id = PyLong_FromLong(t->id);
    if (id == NULL) return NULL;
    PyObject *token = PyContextVar_Set(request_id, id);
    Py_DECREF(id);
    return token; /* a new reference, released by the caller */
}

/* Runs tasks round-robin until all are done. */
static void event_loop(struct task *tasks, int n) {
    for (int i = 0; i < n; i++) {
        tasks[i].ctx = PyContext_CopyCurrent();
        PyObject *token = contextvars_context_run(tasks[i].ctx, set_id, &tasks[i]);
        if (token == NULL) { fprintf(stderr, "cannot create task\n"); exit(1); }
        Py_DECREF(token);
    }
    trace("", "loop starts");
    for (int left = n; left > 0;) {
        for (int i = 0; i < n; i++) {
            struct task *t = &tasks[i];
            if (t->done == t->steps) continue;
            PyObject *r = contextvars_context_run(t->ctx, step, t);
            if (r == NULL) { fprintf(stderr, "task failed\n"); exit(1); }
            Py_DECREF(r);
            if (t->done == t->steps) left--;
        }
    }
    trace("", "loop done");
    for (int i = 0; i < n; i++) Py_DECREF(tasks[i].ctx);
}

static void *second_loop(void *arg) {
    (void)arg;
    loop_name = "loop-2";
    struct task tasks[] = { { "upload", 2001, 2, 0, NULL }, { "report", 2002, 1, 0, NULL } };
    event_loop(tasks, 2);
    return NULL;
}

int main(void) {
    request_id = PyContextVar_New("request_id", NULL);
    int watcher = PyContext_AddWatcher(track_request);
    if (request_id == NULL || watcher < 0) return 1;

    loop_name = "loop-1";
    struct task tasks[] = {
        { "login", 1001, 2, 0, NULL }, { "search", 1002, 3, 0, NULL }, { "logout", 1003, 1, 0, NULL },
    };
    event_loop(tasks, 3);
    loop_name = "main";

    /* Another thread, another loop: its own current request id. */
    pthread_t th;
    if (pthread_create(&th, NULL, second_loop, NULL) != 0 || pthread_join(th, NULL) != 0) return 1;
    trace("", "main thread after both loops");

    PyContext_ClearWatcher(watcher);
    Py_DECREF(request_id);
    if (mismatches != 0) {
        printf("FAIL: %d steps saw a stale request id\n", mismatches);
        return 1;
    }
    printf("OK: every step's traced request id matched its context\n");
    return 0;
}
