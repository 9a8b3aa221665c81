/* difftest.c: differential conformance test. One source, built against
 * CPython 3.11 (-DUSE_CPYTHON) and against libcontextvars, runs seeded
 * pseudo-random sequences of API calls over small pools of variables,
 * contexts, tokens and plain values, and prints one line per call: the
 * call, its return value, the value read (by content), and the exception
 * type and full message. Object addresses inside messages are replaced by
 * the pool name of the object (`@c2`), so the two outputs must be byte for
 * byte identical.
 *
 * Each seed runs on a fresh thread (a fresh thread state: no context yet).
 * It keeps away from the inputs where the library deliberately differs from
 * CPython (NULL arguments; Exit of a context whose only reference the
 * caller dropped; out of memory).
 *
 * Usage: difftest FIRST_SEED SEEDS STEPS [SKIP_LIST]
 *   SKIP_LIST: comma-separated step numbers to generate but not execute
 *   (used by compare.py to shrink a failing sequence). */
#define _POSIX_C_SOURCE 200809L
#ifdef USE_CPYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#else
#include "contextvars.h"
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVARS 4
#define NCTXS 4
#define NTOKS 6
#define NVALS 6
#define MAXSTACK 64

static PyObject *vars[NVARS], *ctxs[NCTXS], *toks[NTOKS], *vals[NVALS];
static PyObject *tok_var[NTOKS]; /* borrowed: the var each token was made by */
static PyObject *stack[MAXSTACK]; /* contexts this thread entered, innermost last */
static int depth;
static uint64_t rng;
static long step_no;
static const char *skip_list;
static int executing;

/* Messages the C API can raise, for the coverage report. */
static const char *const MESSAGES[] = {
    "an instance of Context was expected",
    "cannot enter context: @ is already entered",
    "cannot exit context: @ has not been entered",
    "cannot exit context: thread state references a different context object",
    "an instance of ContextVar was expected",
    "an instance of Token was expected",
    "@ has already been used once",
    "@ was created by a different ContextVar",
    "@ was created in a different Context",
    "'utf-8' codec can't decode",
};
#define NMESSAGES (sizeof MESSAGES / sizeof MESSAGES[0])
static long message_hits[NMESSAGES];

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int pick(int n) { return (int)(next() % (uint64_t)n); }

/* The pool name of an object, or NULL. */
static const char *pool_name(const void *p, char *buf, size_t len) {
    for (int i = 0; i < NVARS; i++) if (vars[i] && (void *)vars[i] == p) { snprintf(buf, len, "@v%d", i); return buf; }
    for (int i = 0; i < NCTXS; i++) if (ctxs[i] && (void *)ctxs[i] == p) { snprintf(buf, len, "@c%d", i); return buf; }
    for (int i = 0; i < NTOKS; i++) if (toks[i] && (void *)toks[i] == p) { snprintf(buf, len, "@t%d", i); return buf; }
    for (int i = 0; i < NVALS; i++) if (vals[i] && (void *)vals[i] == p) { snprintf(buf, len, "@x%d", i); return buf; }
    return NULL;
}

/* Replaces each 0x... address in `msg` by the pool name of its object. */
static void normalize(const char *msg, char *out, size_t len) {
    size_t o = 0;
    while (*msg && o + 16 < len) {
        if (msg[0] == '0' && msg[1] == 'x') {
            char *end;
            unsigned long long a = strtoull(msg, &end, 16);
            char buf[16];
            const char *name = pool_name((void *)(uintptr_t)a, buf, sizeof buf);
            o += (size_t)snprintf(out + o, len - o, "%s", name ? name : "@?");
            msg = end;
        } else {
            out[o++] = *msg++;
        }
    }
    out[o] = 0;
}

/* A value read back, by content. */
static void describe(PyObject *v, char *out, size_t len) {
    char buf[16];
    if (v == NULL) snprintf(out, len, "NULL");
    else if (v == Py_None) snprintf(out, len, "None");
    else if (PyLong_Check(v)) snprintf(out, len, "%ld", PyLong_AsLong(v));
    else if (PyUnicode_Check(v)) snprintf(out, len, "'%s'", PyUnicode_AsUTF8(v));
    else if (pool_name(v, buf, sizeof buf)) snprintf(out, len, "%s", buf);
    else if (PyContext_CheckExact(v)) snprintf(out, len, "<dropped context>");
    else if (PyContextToken_CheckExact(v)) snprintf(out, len, "<dropped token>");
    else if (PyContextVar_CheckExact(v)) snprintf(out, len, "<dropped var>");
    else snprintf(out, len, "<%s>", Py_TYPE(v)->tp_name);
}

/* Prints the call's line: result, then the error if one is set. */
static void report(const char *call, const char *result) {
    char line[1024];
    int n = snprintf(line, sizeof line, "%ld %s -> %s", step_no, call, result);
    if (PyErr_Occurred()) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        char msg[800] = "", norm[800];
#ifdef USE_CPYTHON
        PyObject *s = v ? PyObject_Str(v) : NULL;
        if (s) snprintf(msg, sizeof msg, "%s", PyUnicode_AsUTF8(s));
        Py_XDECREF(s);
#else
        if (v && PyUnicode_Check(v)) snprintf(msg, sizeof msg, "%s", PyUnicode_AsUTF8(v));
#endif
        normalize(msg, norm, sizeof norm);
        for (size_t i = 0; i < NMESSAGES; i++) {
            const char *pat = MESSAGES[i], *at = strchr(pat, '@');
            int hit = at == NULL ? strncmp(norm, pat, strlen(pat)) == 0
                                 : (strstr(norm, at + 1) != NULL && strncmp(norm, pat, (size_t)(at - pat)) == 0);
            if (hit) message_hits[i]++;
        }
        snprintf(line + n, sizeof line - (size_t)n, " ! %s: %s", t ? ((PyTypeObject *)t)->tp_name : "?", norm);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    puts(line);
}

/* Any object of the pools (possibly of the wrong type), never NULL. */
static PyObject *any_object(void) {
    for (int tries = 0; tries < 8; tries++) {
        PyObject *o;
        switch (pick(4)) {
        case 0: o = vars[pick(NVARS)]; break;
        case 1: o = ctxs[pick(NCTXS)]; break;
        case 2: o = toks[pick(NTOKS)]; break;
        default: o = vals[pick(NVALS)]; break;
        }
        if (o) return o;
    }
    return Py_None;
}

/* Mostly an object of the right kind, sometimes any object. */
static PyObject *arg_from(PyObject **pool, int n) {
    if (pick(8) == 0) return any_object();
    PyObject *o = pool[pick(n)];
    return o ? o : any_object();
}

static int is_entered(PyObject *c) {
    for (int i = 0; i < depth; i++) if (stack[i] == c) return 1;
    return 0;
}

static void set_slot(PyObject **slot, PyObject *o) {
    PyObject *old = *slot;
    *slot = o;
    Py_XDECREF(old);
}

static const char *const NAMES[] = {"a", "b", "v", "n\xc3\xa9", "", "\xff", "a\x80", "\xe2\x82", "x\xe2\x28\xa1"};

static int skipped(long step) {
    if (skip_list == NULL) return 0;
    char key[32];
    snprintf(key, sizeof key, ",%ld,", step);
    return strstr(skip_list, key) != NULL;
}

static void one_step(void) {
    char call[256], res[256], a[16], b[16];
    int op = pick(16);
    executing = !skipped(step_no);
#define RUN_IF_EXECUTING if (!executing) return
    switch (op) {
    case 0: { /* PyContext_New */
        int s = pick(NCTXS);
        if (ctxs[s] && is_entered(ctxs[s])) return;
        RUN_IF_EXECUTING;
        PyObject *c = PyContext_New();
        set_slot(&ctxs[s], c);
        snprintf(call, sizeof call, "New()"); snprintf(res, sizeof res, "c%d", s);
        report(call, c ? res : "NULL");
        break;
    }
    case 1: case 2: { /* PyContext_Copy / CopyCurrent */
        int s = pick(NCTXS);
        if (ctxs[s] && is_entered(ctxs[s])) return;
        PyObject *src = op == 1 ? arg_from(ctxs, NCTXS) : NULL;
        RUN_IF_EXECUTING;
        if (op == 1) describe(src, a, sizeof a);
        PyObject *c = op == 1 ? PyContext_Copy(src) : PyContext_CopyCurrent();
        if (op == 1) snprintf(call, sizeof call, "Copy(%s)", a); else snprintf(call, sizeof call, "CopyCurrent()");
        snprintf(res, sizeof res, "c%d", s);
        report(call, c ? res : "NULL");
        if (c) set_slot(&ctxs[s], c);
        break;
    }
    case 3: case 4: { /* Enter */
        PyObject *c = pick(4) == 0 && depth > 0 ? stack[depth - 1] : arg_from(ctxs, NCTXS);
        if (depth >= MAXSTACK) return;
        RUN_IF_EXECUTING;
        describe(c, a, sizeof a);
        int r = PyContext_Enter(c);
        if (r == 0) { Py_INCREF(c); stack[depth++] = c; } /* we keep our own reference (S1) */
        snprintf(call, sizeof call, "Enter(%s)", a); snprintf(res, sizeof res, "%d", r);
        report(call, res);
        break;
    }
    case 5: case 6: { /* Exit: the innermost usually, else any */
        PyObject *c = depth > 0 && pick(3) != 0 ? stack[depth - 1] : arg_from(ctxs, NCTXS);
        RUN_IF_EXECUTING;
        describe(c, a, sizeof a);
        int r = PyContext_Exit(c);
        if (r == 0) { depth--; Py_DECREF(stack[depth]); }
        snprintf(call, sizeof call, "Exit(%s)", a); snprintf(res, sizeof res, "%d", r);
        report(call, res);
        break;
    }
    case 7: { /* PyContextVar_New */
        int s = pick(NVARS);
        const char *name = NAMES[pick((int)(sizeof NAMES / sizeof NAMES[0]))];
        PyObject *def = pick(2) ? any_object() : NULL;
        RUN_IF_EXECUTING;
        describe(def, b, sizeof b);
        PyObject *v = PyContextVar_New(name, def);
        snprintf(call, sizeof call, "ContextVar_New(%zu bytes, %s)", strlen(name), b);
        snprintf(res, sizeof res, "v%d", s);
        report(call, v ? res : "NULL");
        if (v) set_slot(&vars[s], v);
        break;
    }
    case 8: case 9: case 10: { /* Get */
        PyObject *v = arg_from(vars, NVARS);
        PyObject *def = pick(3) == 0 ? any_object() : NULL;
        RUN_IF_EXECUTING;
        describe(v, a, sizeof a);
        describe(def, b, sizeof b);
        PyObject *out = NULL;
        int r = PyContextVar_Get(v, def, &out);
        char got[64];
        describe(r == 0 ? out : NULL, got, sizeof got);
        snprintf(call, sizeof call, "Get(%s, %s)", a, b);
        snprintf(res, sizeof res, "%d %s", r, got);
        report(call, res);
        if (r == 0) Py_XDECREF(out);
        break;
    }
    case 11: case 12: { /* Set */
        int s = pick(NTOKS);
        PyObject *v = arg_from(vars, NVARS), *x = any_object();
        RUN_IF_EXECUTING;
        describe(v, a, sizeof a);
        describe(x, b, sizeof b);
        PyObject *t = PyContextVar_Set(v, x);
        snprintf(call, sizeof call, "Set(%s, %s)", a, b); snprintf(res, sizeof res, "t%d", s);
        report(call, t ? res : "NULL");
        if (t) { set_slot(&toks[s], t); tok_var[s] = v; }
        break;
    }
    case 13: { /* Reset: usually with the token's own variable, if still pooled */
        int s = pick(NTOKS);
        PyObject *t = toks[s] && pick(8) ? toks[s] : arg_from(toks, NTOKS);
        PyObject *v = arg_from(vars, NVARS);
        if (t == toks[s] && pick(3)) for (int i = 0; i < NVARS; i++) if (vars[i] && vars[i] == tok_var[s]) v = vars[i];
        RUN_IF_EXECUTING;
        describe(v, a, sizeof a);
        describe(t, b, sizeof b);
        int r = PyContextVar_Reset(v, t);
        snprintf(call, sizeof call, "Reset(%s, %s)", a, b); snprintf(res, sizeof res, "%d", r);
        report(call, res);
        break;
    }
    case 14: { /* the three checks */
        PyObject *o = any_object();
        RUN_IF_EXECUTING;
        describe(o, a, sizeof a);
        snprintf(call, sizeof call, "CheckExact(%s)", a);
        snprintf(res, sizeof res, "%d%d%d", PyContext_CheckExact(o), PyContextVar_CheckExact(o), PyContextToken_CheckExact(o));
        report(call, res);
        break;
    }
    default: { /* drop a reference, or make a plain value */
        int kind = pick(4), s;
        RUN_IF_EXECUTING;
        if (kind == 0) { s = pick(NVARS); set_slot(&vars[s], NULL); snprintf(call, sizeof call, "drop v%d", s); }
        else if (kind == 1) {
            s = pick(NCTXS);
            if (ctxs[s] && is_entered(ctxs[s])) return;
            set_slot(&ctxs[s], NULL); snprintf(call, sizeof call, "drop c%d", s);
        } else if (kind == 2) { s = pick(NTOKS); set_slot(&toks[s], NULL); snprintf(call, sizeof call, "drop t%d", s); }
        else {
            s = pick(NVALS);
            int what = pick(4);
            PyObject *x = what == 0 ? PyLong_FromLong(pick(3) - 1) : what == 1 ? PyLong_FromLong(1000 + pick(1000))
                        : what == 2 ? PyUnicode_FromString(pick(2) ? "s" : "t\xc3\xa9") : Py_NewRef(Py_None);
            set_slot(&vals[s], x);
            describe(x, a, sizeof a);
            snprintf(call, sizeof call, "value x%d = %s", s, a);
        }
        report(call, "ok");
        break;
    }
    }
}

struct run { unsigned long seed; long steps; };

static void *run_seed(void *arg) {
    struct run *r = arg;
#ifdef USE_CPYTHON
    PyGILState_STATE g = PyGILState_Ensure();
#endif
    rng = r->seed * 0x9E3779B97F4A7C15ull + 1;
    printf("seed %lu\n", r->seed);
    for (int i = 0; i < NVALS; i++) vals[i] = PyLong_FromLong(i);
    vals[NVALS - 1] = Py_NewRef(Py_None);
    /* Start with a few objects so the first steps are not all type errors. */
    vars[0] = PyContextVar_New("a", NULL);
    vars[1] = PyContextVar_New("b", vals[2]);
    ctxs[0] = PyContext_New();
    for (step_no = 0; step_no < r->steps; step_no++) one_step();
    while (depth > 0) { /* leave every context we entered */
        depth--;
        if (PyContext_Exit(stack[depth]) < 0) { puts("cleanup exit failed"); PyErr_Clear(); }
        Py_DECREF(stack[depth]);
    }
    for (int i = 0; i < NTOKS; i++) set_slot(&toks[i], NULL);
    for (int i = 0; i < NCTXS; i++) set_slot(&ctxs[i], NULL);
    for (int i = 0; i < NVARS; i++) set_slot(&vars[i], NULL);
    for (int i = 0; i < NVALS; i++) set_slot(&vals[i], NULL);
#ifdef USE_CPYTHON
    PyGILState_Release(g);
#endif
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: difftest FIRST_SEED SEEDS STEPS [SKIP_LIST]\n"); return 2; }
    unsigned long first = strtoul(argv[1], NULL, 10);
    long seeds = strtol(argv[2], NULL, 10), steps = strtol(argv[3], NULL, 10);
    char *skips = NULL;
    if (argc > 4) {
        skips = malloc(strlen(argv[4]) + 3);
        sprintf(skips, ",%s,", argv[4]);
        skip_list = skips;
    }
#ifdef USE_CPYTHON
    Py_Initialize();
    PyThreadState *main_state = PyEval_SaveThread();
#endif
    for (long s = 0; s < seeds; s++) {
        struct run r = {first + (unsigned long)s, steps};
        pthread_t th;
        if (pthread_create(&th, NULL, run_seed, &r) != 0 || pthread_join(th, NULL) != 0) return 2;
    }
#ifdef USE_CPYTHON
    PyEval_RestoreThread(main_state);
#endif
    /* Coverage of the error messages, on stderr (not compared). */
    for (size_t i = 0; i < NMESSAGES; i++) fprintf(stderr, "coverage %ld %s\n", message_hits[i], MESSAGES[i]);
    free(skips);
    return 0;
}
