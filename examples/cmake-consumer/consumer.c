/* consumer.c: C11, linked with contextvars::contextvars_static. */
#include <contextvars.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    if (strcmp(CONTEXTVARS_VERSION, PACKAGE_VERSION_STRING) != 0) {
        printf("header %s, package %s\n", CONTEXTVARS_VERSION, PACKAGE_VERSION_STRING);
        return 1;
    }
    PyObject *var = PyContextVar_New("user", NULL), *ctx = PyContext_New();
    PyObject *id = PyLong_FromLong(7);
    PyObject *token = PyContextVar_Set(var, id);
    PyObject *seen = NULL;
    int ok = token != NULL && PyContextVar_Get(var, NULL, &seen) == 0 && seen == id;
    ok = ok && contextvars_context_len(ctx) == 0;
    ok = ok && PyContextVar_Reset(var, token) == 0;
    Py_XDECREF(seen); Py_XDECREF(token); Py_DECREF(id); Py_DECREF(ctx); Py_DECREF(var);
    printf("consumer_c_static: libcontextvars %s (%d.%d.%d): %s\n", CONTEXTVARS_VERSION, CONTEXTVARS_VERSION_MAJOR,
           CONTEXTVARS_VERSION_MINOR, CONTEXTVARS_VERSION_PATCH, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
