/* harness.h: the C test harness. A case is a function; it passes when every
 * CHECK in it holds. Failures print file:line and the expression, and the run
 * goes on. main() ends with `N passed, M failed` and exits non-zero on any
 * failure. Counters are atomic so checks may run on any thread. */
#ifndef CONTEXTVARS_TEST_HARNESS_H
#define CONTEXTVARS_TEST_HARNESS_H

#include "shim.h"

extern int h_case_failed;      /* checks failed in the running case */
extern long h_checks;          /* checks run, all cases */
void h_run(const char *name, void (*fn)(void));
void h_fail(const char *file, int line, const char *what);
int h_summary(void);           /* prints the closing line; returns exit status */

/* Compares the pending error with `type` (exact match) and, when `msg` is not
 * NULL, its message byte for byte; clears the error. Returns 1 on a match. */
int h_check_error(const char *file, int line, PyObject *type, const char *msg);
/* Like h_check_error, but the message only has to end with `suffix`
 * (CPython's PyErr_BadInternalCall prefixes "file:line: "). */
int h_check_error_suffix(const char *file, int line, PyObject *type, const char *suffix);

#define TEST(name) static void name(void)
#define RUN(name) h_run(#name, name)

#define CHECK(cond) do { __atomic_fetch_add(&h_checks, 1, __ATOMIC_RELAXED); \
        if (!(cond)) h_fail(__FILE__, __LINE__, #cond); } while (0)
#define CHECK_EQ_LONG(expected, actual) do { long h_e = (long)(expected), h_a = (long)(actual); \
        __atomic_fetch_add(&h_checks, 1, __ATOMIC_RELAXED); \
        if (h_e != h_a) { char h_buf[512]; snprintf(h_buf, sizeof h_buf, "%s == %s (expected %ld, got %ld)", \
            #expected, #actual, h_e, h_a); h_fail(__FILE__, __LINE__, h_buf); } } while (0)
#define CHECK_STR(expected, actual) do { const char *h_e = (expected), *h_a = (actual); \
        __atomic_fetch_add(&h_checks, 1, __ATOMIC_RELAXED); \
        if (h_a == NULL || strcmp(h_e, h_a) != 0) { char h_buf[2048]; snprintf(h_buf, sizeof h_buf, \
            "%s: expected \"%s\", got \"%s\"", #actual, h_e, h_a ? h_a : "(null)"); h_fail(__FILE__, __LINE__, h_buf); } } while (0)
/* An error of exactly `type` is pending (message checked unless NULL); clears it. */
#define CHECK_ERROR(type, msg) h_check_error(__FILE__, __LINE__, (type), (msg))
#define CHECK_ERROR_SUFFIX(type, suffix) h_check_error_suffix(__FILE__, __LINE__, (type), (suffix))
#define CHECK_NO_ERROR() CHECK(PyErr_Occurred() == NULL)

/* The value of an int object, or -1000000 when it is not one (error cleared). */
long h_long(PyObject *o);

/* What h_get_long returns when Get finds nothing, and when Get fails. */
#define H_MISSING (-1000001L)
#define H_GET_FAILED (-1000002L)
/* The value of `var` in the current context (with `dflt`, may be NULL) as a
 * long: H_MISSING when Get finds nothing, H_GET_FAILED when Get fails (the
 * error is cleared). Also checks Get overwrote its out-pointer. */
long h_get_long(PyObject *var, PyObject *dflt);
/* Sets `var` to the int `v`; returns the token (new reference) or NULL. */
PyObject *h_set_long(PyObject *var, long v);
/* A new context, entered (checked). */
PyObject *h_enter_new(void);
/* Exits `c` (checked) and releases the caller's reference. */
void h_leave(PyObject *c);

/* Test suites, one per file, each calling RUN() on its cases. */
void suite_context(void);
void suite_var(void);
void suite_token(void);
void suite_object(void);
void suite_errors(void);
void suite_values(void);
void suite_lifetime(void);
void suite_scale(void);
void suite_library_only(void);
void suite_threads(void);
void suite_deep(void);
void suite_watchers(void);
void suite_extensions(void);
void suite_hostile(void);
void suite_reentry(void);

#endif
