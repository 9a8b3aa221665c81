// Tests of include/contextvars.hpp (C++17), on the C harness: ScopedSet,
// ScopedEnter, Watcher, run and Ref, including their failure paths and the
// error policy (nothing throws; errors stay in the indicator; destructors
// keep a pending error). Prints `N passed, M failed`.
extern "C" {
#include "../harness.h"
}
#include "contextvars.hpp"

#include <optional>
#include <vector>

using contextvars::Ref;
using contextvars::ScopedEnter;
using contextvars::ScopedSet;
using contextvars::Watcher;

static Ref new_long(long v) { return Ref::steal(PyLong_FromLong(v)); }

TEST(scoped_set_sets_and_resets_nested) {
    Ref var = Ref::steal(PyContextVar_New("cxx", NULL));
    Ref one = new_long(1), two = new_long(2);
    {
        ScopedSet outer(var.get(), one.get());
        CHECK(outer.ok() && static_cast<bool>(outer));
        CHECK(PyContextToken_CheckExact(outer.token()));
        CHECK_EQ_LONG(1, h_get_long(var.get(), NULL));
        {
            ScopedSet inner(var.get(), two.get());
            CHECK_EQ_LONG(2, h_get_long(var.get(), NULL));
        }
        CHECK_EQ_LONG(1, h_get_long(var.get(), NULL));
    }
    CHECK_EQ_LONG(H_MISSING, h_get_long(var.get(), NULL));
    CHECK_NO_ERROR();
}

static long inside(PyObject *var, PyObject *value, bool early) {
    ScopedSet s(var, value);
    if (early) return h_get_long(var, NULL);
    return h_get_long(var, NULL) + 100;
}

TEST(scoped_set_resets_on_every_way_out) {
    Ref var = Ref::steal(PyContextVar_New("cxx", NULL));
    Ref one = new_long(1);
    CHECK_EQ_LONG(1, inside(var.get(), one.get(), true));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var.get(), NULL));
    CHECK_EQ_LONG(101, inside(var.get(), one.get(), false));
    CHECK_EQ_LONG(H_MISSING, h_get_long(var.get(), NULL));
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
    try {
        ScopedSet s(var.get(), one.get());
        throw 42;
    } catch (int) {
    }
    CHECK_EQ_LONG(H_MISSING, h_get_long(var.get(), NULL));
#endif
}

TEST(scoped_set_failure_and_early_reset) {
    Ref one = new_long(1);
    ScopedSet bad(Py_None, one.get());
    CHECK(!bad.ok() && bad.token() == NULL);
    CHECK_ERROR(PyExc_TypeError, "an instance of ContextVar was expected");
    CHECK_EQ_LONG(0, bad.reset());
    std::optional<ScopedSet> none = ScopedSet::try_make(Py_None, one.get());
    CHECK(!none.has_value());
    CHECK_ERROR(PyExc_TypeError, "an instance of ContextVar was expected");

    Ref var = Ref::steal(PyContextVar_New("cxx", NULL));
    {
        std::optional<ScopedSet> s = ScopedSet::try_make(var.get(), one.get());
        CHECK(s.has_value() && s->ok());
        CHECK_EQ_LONG(1, h_get_long(var.get(), NULL));
        CHECK_EQ_LONG(0, s->reset());
        CHECK(!s->ok());
        CHECK_EQ_LONG(H_MISSING, h_get_long(var.get(), NULL));
        CHECK_EQ_LONG(0, s->reset());
    }
    CHECK_NO_ERROR();
}

TEST(a_destructor_that_cannot_reset_keeps_a_pending_error) {
    Ref var = Ref::steal(PyContextVar_New("cxx", NULL));
    Ref one = new_long(1);
    Ref other = Ref::steal(PyContext_New());
    {
        ScopedSet s(var.get(), one.get());
        CHECK_EQ_LONG(0, PyContext_Enter(other.get()));
        PyErr_SetString(PyExc_KeyError, "pending");
    }   // Reset fails (another context is current): the pending error wins
    CHECK_ERROR(PyExc_KeyError, "pending");
    {
        ScopedSet s(var.get(), one.get()); // set in `other` this time
        CHECK_EQ_LONG(0, PyContext_Exit(other.get()));
    }   // Reset fails and nothing was pending: its error is left set
    CHECK(PyErr_ExceptionMatches(PyExc_ValueError));
    PyErr_Clear();
}

TEST(scoped_enter_enters_and_exits) {
    Ref var = Ref::steal(PyContextVar_New("cxx", NULL));
    Ref ctx = Ref::steal(PyContext_New());
    {
        ScopedEnter e(ctx.get());
        CHECK(e.ok() && e.context() == ctx.get());
        Ref t = Ref::steal(h_set_long(var.get(), 5));
        CHECK_EQ_LONG(5, h_get_long(var.get(), NULL));
        ScopedEnter again(ctx.get()); // already entered
        CHECK(!again.ok());
        CHECK(PyErr_ExceptionMatches(PyExc_RuntimeError));
        PyErr_Clear();
    }
    CHECK_EQ_LONG(H_MISSING, h_get_long(var.get(), NULL));
    CHECK_EQ_LONG(0, PyContext_Enter(ctx.get())); // exited: can enter again
    CHECK_EQ_LONG(0, PyContext_Exit(ctx.get()));
    std::optional<ScopedEnter> e = ScopedEnter::try_make(Py_None);
    CHECK(!e.has_value());
    CHECK_ERROR(PyExc_TypeError, "an instance of Context was expected");
    std::optional<ScopedEnter> entered = ScopedEnter::try_make(ctx.get());
    CHECK(entered.has_value() && entered->ok());
    CHECK_EQ_LONG(0, entered->exit());
    CHECK_EQ_LONG(0, entered->exit());
    CHECK_NO_ERROR();
}

TEST(scoped_enter_holds_its_own_reference) {
    PyObject *ctx = PyContext_New();
    {
        ScopedEnter e(ctx);
        Py_DECREF(ctx); // the guard (and the thread) keep it alive
        CHECK(PyContext_CheckExact(e.context()));
    }
    CHECK_NO_ERROR();
}

static std::vector<PyObject *> *switches;
static int record_switch(PyContextEvent, PyObject *ctx) {
    switches->push_back(ctx);
    return 0;
}

TEST(watcher_and_run) {
    std::vector<PyObject *> seen;
    switches = &seen;
    Ref var = Ref::steal(PyContextVar_New("cxx", NULL));
    Ref ctx = Ref::steal(PyContext_New());
    int id;
    {
        Watcher w(record_switch);
        CHECK(w.ok());
        id = w.id();
        long captured = 0;
        Ref r = contextvars::run(ctx.get(), [&]() -> PyObject * {
            Ref t = Ref::steal(h_set_long(var.get(), 9));
            captured = h_get_long(var.get(), NULL);
            return PyLong_FromLong(captured * 2);
        });
        CHECK_EQ_LONG(18, h_long(r.get()));
        CHECK_EQ_LONG(9, captured);
        CHECK_EQ_LONG(2, static_cast<long>(seen.size()));
        if (seen.size() == 2) CHECK(seen[0] == ctx.get());
        Ref failed = contextvars::run(ctx.get(), []() -> PyObject * {
            PyErr_SetString(PyExc_ValueError, "from the lambda");
            return NULL;
        });
        CHECK(!failed);
        CHECK_ERROR(PyExc_ValueError, "from the lambda");
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
        Ref threw = contextvars::run(ctx.get(), []() -> PyObject * { throw 1; });
        CHECK(!threw);
        CHECK_ERROR(PyExc_RuntimeError, "contextvars::run: the callable threw a C++ exception");
#endif
    }
    // The watcher was cleared by its destructor.
    CHECK_EQ_LONG(-1, PyContext_ClearWatcher(id));
    PyErr_Clear();
    PyObject *v = NULL;
    CHECK_EQ_LONG(0, contextvars_context_get(ctx.get(), var.get(), NULL, &v));
    CHECK_EQ_LONG(9, h_long(v));
    Py_XDECREF(v);
}

TEST(ref_owns_its_reference) {
    PyObject *o = PyLong_FromLong(123456);
    {
        Ref a = Ref::borrow(o);
        CHECK_EQ_LONG(2, Py_REFCNT(o));
        Ref b = a;
        CHECK_EQ_LONG(3, Py_REFCNT(o));
        Ref c = std::move(b);
        CHECK(!b && c.get() == o);
        CHECK_EQ_LONG(3, Py_REFCNT(o));
        a = c;
        CHECK_EQ_LONG(3, Py_REFCNT(o));
        PyObject *raw = c.release();
        CHECK_EQ_LONG(3, Py_REFCNT(o));
        Py_DECREF(raw);
    }
    CHECK_EQ_LONG(1, Py_REFCNT(o));
    Py_DECREF(o);
}

int main() {
    shim_init();
    RUN(scoped_set_sets_and_resets_nested);
    RUN(scoped_set_resets_on_every_way_out);
    RUN(scoped_set_failure_and_early_reset);
    RUN(a_destructor_that_cannot_reset_keeps_a_pending_error);
    RUN(scoped_enter_enters_and_exits);
    RUN(scoped_enter_holds_its_own_reference);
    RUN(watcher_and_run);
    RUN(ref_owns_its_reference);
    return h_summary();
}
