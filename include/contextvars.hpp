/*
 * contextvars.hpp: C++17 RAII helpers over contextvars.h (header-only,
 * hand-written).
 *
 *   contextvars::Ref          an owned reference (Py_DECREF on destruction)
 *   contextvars::ScopedSet    sets a variable, resets it at scope exit
 *                             (Python 3.14's `with var.set(value):`)
 *   contextvars::ScopedEnter  enters a context, exits it at scope exit
 *   contextvars::Watcher      a context watcher, cleared at scope exit
 *   contextvars::run          runs a callable in a context
 *
 * Error policy: nothing here throws. A guard whose setup failed is not
 * ok() (it converts to false) and the library's error indicator holds the
 * error, exactly as after the C call (PyErr_Occurred, PyErr_Fetch,
 * PyErr_Clear). The try_* factories return std::optional instead, empty on
 * failure (error set). A destructor that cannot undo (only possible after
 * misuse, e.g. a scope left with another context current) leaves its error
 * in the indicator, unless an error was already pending: that one is kept.
 * Use reset() / exit() to undo early and check the result.
 *
 * Threads: a guard belongs to the thread that made it (it acts on that
 * thread's current context); destroy it on that thread, in reverse order of
 * construction (scopes do this). Guards are movable (for std::optional and
 * factories), not copyable.
 *
 * Compiles as C++17 with -Wall -Wextra -Wpedantic -Werror, with or without
 * exceptions (-fno-exceptions).
 */
#ifndef CONTEXTVARS_HPP
#define CONTEXTVARS_HPP

#include "contextvars.h"

#include <optional>
#include <type_traits>
#include <utility>

namespace contextvars {

/** An owned reference: releases it (Py_XDECREF) on destruction. */
class Ref {
public:
    Ref() noexcept = default;
    /** Takes over a new reference (may be NULL). */
    static Ref steal(PyObject *o) noexcept { return Ref(o); }
    /** Makes a new reference from a borrowed one (may be NULL). */
    static Ref borrow(PyObject *o) noexcept { Py_XINCREF(o); return Ref(o); }
    Ref(Ref &&other) noexcept : o_(std::exchange(other.o_, nullptr)) {}
    Ref &operator=(Ref &&other) noexcept {
        if (this != &other) { Py_XDECREF(o_); o_ = std::exchange(other.o_, nullptr); }
        return *this;
    }
    Ref(const Ref &other) noexcept : o_(other.o_) { Py_XINCREF(o_); }
    Ref &operator=(const Ref &other) noexcept {
        Ref copy(other);
        std::swap(o_, copy.o_);
        return *this;
    }
    ~Ref() { Py_XDECREF(o_); }
    /** The object (borrowed), or NULL. */
    PyObject *get() const noexcept { return o_; }
    /** Gives up the reference to the caller. */
    PyObject *release() noexcept { return std::exchange(o_, nullptr); }
    explicit operator bool() const noexcept { return o_ != nullptr; }

private:
    explicit Ref(PyObject *o) noexcept : o_(o) {}
    PyObject *o_ = nullptr;
};

namespace detail {
/** Runs `undo` keeping an error that was pending before it: if one was,
 *  the undo's own error (if any) is dropped. */
template <class F>
inline void undo_keeping_pending_error(F &&undo) noexcept {
    if (PyErr_Occurred() == NULL) {
        (void)undo();
        return;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (undo() < 0) PyErr_Clear();
    PyErr_Restore(type, value, traceback);
}
}  // namespace detail

/** Sets a context variable for the length of a scope: PyContextVar_Set in
 *  the constructor, PyContextVar_Reset with its token in the destructor
 *  (restoring the previous value, or no value). `var` is borrowed: keep it
 *  alive for the scope. `value` is not stolen. */
class ScopedSet {
public:
    ScopedSet(PyObject *var, PyObject *value) noexcept : s_(contextvars_scoped_set_begin(var, value)) {}
    /** A ScopedSet, or nothing if the Set failed (the error is set). */
    static std::optional<ScopedSet> try_make(PyObject *var, PyObject *value) noexcept {
        ScopedSet s(var, value);
        if (!s.ok()) return std::nullopt;
        return std::optional<ScopedSet>(std::move(s));
    }
    ScopedSet(ScopedSet &&other) noexcept : s_(other.s_) { other.s_.token = NULL; }
    ScopedSet &operator=(ScopedSet &&) = delete;
    ScopedSet(const ScopedSet &) = delete;
    ScopedSet &operator=(const ScopedSet &) = delete;
    ~ScopedSet() { contextvars_scoped_set_cleanup(&s_); }

    /** Whether the Set succeeded and the variable is not reset yet. */
    bool ok() const noexcept { return s_.token != NULL; }
    explicit operator bool() const noexcept { return ok(); }
    /** The Set's token (borrowed), NULL if not ok(). */
    PyObject *token() const noexcept { return s_.token; }
    /** Resets now: 0, or -1 with PyContextVar_Reset's error set. The
     *  destructor then does nothing; a second call returns 0. */
    int reset() noexcept { return contextvars_scoped_set_end(&s_); }

private:
    contextvars_scoped_set s_;
};

/** Enters a context for the length of a scope: PyContext_Enter in the
 *  constructor, PyContext_Exit in the destructor. Holds its own reference
 *  to the context while entered. */
class ScopedEnter {
public:
    explicit ScopedEnter(PyObject *ctx) noexcept : ctx_(NULL) {
        if (PyContext_Enter(ctx) == 0) { Py_INCREF(ctx); ctx_ = ctx; }
    }
    /** A ScopedEnter, or nothing if Enter failed (the error is set). */
    static std::optional<ScopedEnter> try_make(PyObject *ctx) noexcept {
        ScopedEnter e(ctx);
        if (!e.ok()) return std::nullopt;
        return std::optional<ScopedEnter>(std::move(e));
    }
    ScopedEnter(ScopedEnter &&other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}
    ScopedEnter &operator=(ScopedEnter &&) = delete;
    ScopedEnter(const ScopedEnter &) = delete;
    ScopedEnter &operator=(const ScopedEnter &) = delete;
    ~ScopedEnter() {
        if (ctx_ != NULL) detail::undo_keeping_pending_error([this] { return exit(); });
    }

    /** Whether the context was entered and not exited yet. */
    bool ok() const noexcept { return ctx_ != NULL; }
    explicit operator bool() const noexcept { return ok(); }
    /** The context (borrowed), NULL if not ok(). */
    PyObject *context() const noexcept { return ctx_; }
    /** Exits now: 0, or -1 with PyContext_Exit's error set (the guard then
     *  gives up: it will not try again). A second call returns 0. */
    int exit() noexcept {
        PyObject *ctx = std::exchange(ctx_, nullptr);
        if (ctx == NULL) return 0;
        int status = PyContext_Exit(ctx);
        Py_DECREF(ctx);
        return status;
    }

private:
    PyObject *ctx_;
};

/** A context watcher (PyContext_AddWatcher) for the length of a scope,
 *  cleared (PyContext_ClearWatcher) in the destructor. */
class Watcher {
public:
    explicit Watcher(PyContext_WatchCallback callback) noexcept : id_(PyContext_AddWatcher(callback)) {}
    Watcher(Watcher &&other) noexcept : id_(std::exchange(other.id_, -1)) {}
    Watcher &operator=(Watcher &&) = delete;
    Watcher(const Watcher &) = delete;
    Watcher &operator=(const Watcher &) = delete;
    ~Watcher() {
        if (id_ >= 0) detail::undo_keeping_pending_error([this] { return clear(); });
    }
    /** Whether the watcher is set (false: the error of AddWatcher is set). */
    bool ok() const noexcept { return id_ >= 0; }
    explicit operator bool() const noexcept { return ok(); }
    /** The watcher id, -1 if not ok(). */
    int id() const noexcept { return id_; }
    /** Clears now: 0, or -1 with PyContext_ClearWatcher's error set. */
    int clear() noexcept {
        int id = std::exchange(id_, -1);
        return id < 0 ? 0 : PyContext_ClearWatcher(id);
    }

private:
    int id_;
};

namespace detail {
template <class F>
struct RunCall {
    F *f;
    static PyObject *trampoline(void *arg) noexcept {
        RunCall *self = static_cast<RunCall *>(arg);
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
        try {
            return (*self->f)();
        } catch (...) {
            PyErr_SetString(PyExc_RuntimeError, "contextvars::run: the callable threw a C++ exception");
            return NULL;
        }
#else
        return (*self->f)();
#endif
    }
};
}  // namespace detail

/** Runs `f()` in `ctx` (contextvars_context_run): `f` returns a new
 *  reference (PyObject *), or NULL with an error set. Returns the result as
 *  a Ref, empty with the error set on failure. A C++ exception thrown by
 *  `f` does not cross the C library: it becomes RuntimeError. */
template <class F>
inline Ref run(PyObject *ctx, F &&f) noexcept {
    using Fn = std::remove_reference_t<F>;
    static_assert(std::is_convertible_v<std::invoke_result_t<Fn &>, PyObject *>, "f() must return PyObject *");
    detail::RunCall<Fn> call{&f};
    return Ref::steal(contextvars_context_run(ctx, &detail::RunCall<Fn>::trampoline, &call));
}

}  // namespace contextvars

#endif  // CONTEXTVARS_HPP
