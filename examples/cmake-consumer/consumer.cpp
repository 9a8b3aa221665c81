// consumer.cpp: C++17 with contextvars.hpp, linked with contextvars::contextvars.
#include <contextvars.hpp>

#include <cstdio>
#include <cstring>

int main() {
    if (std::strcmp(CONTEXTVARS_VERSION, PACKAGE_VERSION_STRING) != 0) return 1;
    auto var = contextvars::Ref::steal(PyContextVar_New("user", NULL));
    auto id = contextvars::Ref::steal(PyLong_FromLong(42));
    auto ctx = contextvars::Ref::steal(PyContext_New());
    long inside = 0, after = 0;
    {
        contextvars::ScopedEnter entered(ctx.get());
        contextvars::ScopedSet set(var.get(), id.get());
        PyObject *v = NULL;
        if (!entered || !set || PyContextVar_Get(var.get(), NULL, &v) < 0 || v == NULL) return 1;
        inside = PyLong_AsLong(v);
        Py_DECREF(v);
    }
    PyObject *v = NULL;
    if (PyContextVar_Get(var.get(), NULL, &v) < 0) return 1;
    after = v == NULL ? -1 : 0;
    Py_XDECREF(v);
    bool ok = inside == 42 && after == -1;
    std::printf("consumer_cxx: libcontextvars %s: %s\n", CONTEXTVARS_VERSION, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
