/* event_loop.c: what contextvars is for.
 *
 * A tiny single-threaded event loop runs three "requests" as tasks whose
 * steps interleave. Each task runs in its own copy of the context captured
 * when it was spawned (as asyncio does with copy_context()), so the request
 * id a task sets is what every later step of that task sees, and never
 * leaks into another task or into the loop itself. A request's log buffer
 * is attached as a capsule, whose destructor runs when the last context
 * holding it goes away.
 *
 * Build and run: make example */
#include "contextvars.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PyObject *request_id; /* ContextVar: the current request's id (an int) */
static PyObject *request_log; /* ContextVar: the current request's log (a capsule) */
static int logs_freed;

struct task {
    const char *name;
    PyObject *ctx; /* the context the task's steps run in */
    int step;
    int steps;
};

static void fail(const char *what) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    fprintf(stderr, "event_loop: %s failed: %s: %s\n", what, type ? ((PyTypeObject *)type)->tp_name : "?",
            value ? PyUnicode_AsUTF8(value) : "");
    exit(1);
}

static void free_log(PyObject *capsule) {
    char *log = PyCapsule_GetPointer(capsule, "request.log");
    printf("  [log of a finished request freed: \"%s\"]\n", log);
    free(log);
    logs_freed++;
}

/* The current request id, read through the context (-1 when there is none). */
static long current_request(void) {
    PyObject *value;
    if (PyContextVar_Get(request_id, NULL, &value) < 0) fail("Get");
    long id = value ? PyLong_AsLong(value) : -1;
    Py_XDECREF(value);
    return id;
}

static void append_log(const char *text) {
    PyObject *capsule;
    if (PyContextVar_Get(request_log, NULL, &capsule) < 0 || capsule == NULL) fail("Get log");
    char *log = PyCapsule_GetPointer(capsule, "request.log");
    strncat(log, text, 255 - strlen(log));
    Py_DECREF(capsule);
}

/* One step of a task; runs inside the task's context. */
static void run_step(struct task *t) {
    if (t->step == 0) {
        /* The handler's first step: bind this request's id and log. */
        static long next_id = 1000;
        PyObject *id = PyLong_FromLong(next_id++);
        char *log = calloc(256, 1);
        PyObject *capsule = PyCapsule_New(log, "request.log", free_log);
        if (id == NULL || capsule == NULL) fail("making values");
        PyObject *t1 = PyContextVar_Set(request_id, id);
        PyObject *t2 = PyContextVar_Set(request_log, capsule);
        if (t1 == NULL || t2 == NULL) fail("Set");
        Py_DECREF(t1);
        Py_DECREF(t2);
        Py_DECREF(id);
        Py_DECREF(capsule);
    }
    char line[64];
    snprintf(line, sizeof line, "%s%d", t->step ? "," : "", t->step);
    append_log(line);
    printf("%-8s step %d sees request %ld\n", t->name, t->step, current_request());
}

int main(void) {
    request_id = PyContextVar_New("request_id", NULL);
    request_log = PyContextVar_New("request_log", NULL);
    if (request_id == NULL || request_log == NULL) fail("ContextVar_New");

    struct task tasks[] = {{"login", NULL, 0, 3}, {"search", NULL, 0, 2}, {"upload", NULL, 0, 4}};
    const int n = (int)(sizeof tasks / sizeof tasks[0]);
    for (int i = 0; i < n; i++) {
        tasks[i].ctx = PyContext_CopyCurrent(); /* spawn: capture the context */
        if (tasks[i].ctx == NULL) fail("CopyCurrent");
    }

    /* Round-robin: one step of each live task per turn. */
    int live = n, ok = 1;
    while (live > 0) {
        for (int i = 0; i < n; i++) {
            struct task *t = &tasks[i];
            if (t->ctx == NULL) continue;
            if (PyContext_Enter(t->ctx) < 0) fail("Enter");
            long before = current_request();
            run_step(t);
            if (t->step > 0 && current_request() != before) ok = 0;
            if (PyContext_Exit(t->ctx) < 0) fail("Exit");
            if (current_request() != -1) ok = 0; /* nothing leaked into the loop */
            if (++t->step == t->steps) {
                printf("%-8s done\n", t->name);
                Py_CLEAR(t->ctx); /* the task's context, its id and its log go */
                live--;
            }
        }
    }

    long loop_sees = current_request();
    printf("the loop itself sees request %ld (none)\n", loop_sees);
    Py_DECREF(request_id);
    Py_DECREF(request_log);
    ok = ok && logs_freed == n && loop_sees == -1;
    printf("%s: %d tasks, %d logs freed, no request id leaked between tasks\n", ok ? "OK" : "FAILED", n, logs_freed);
    return ok ? 0 : 1;
}
