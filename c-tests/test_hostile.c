/* R1, hostile arguments: every exported function, table-driven, gets NULL in
 * each pointer parameter and every kind of object (Context, ContextVar,
 * Token, None, int, str, capsule, an exception type) in each object
 * parameter (and a type that is not an exception type), one parameter at a time, plus all pointers NULL at once. Each
 * call must give its documented result: the error value with SystemError
 * for NULL and CPython's TypeError (or ValueError, SystemError) with its
 * exact message for a wrong type, or success where any object is accepted.
 * After every call nothing else may have changed: no error left pending, no
 * reference gained or lost by any of the objects, the current context's
 * values intact.
 *
 * The wrong-type rows build against CPython 3.11 too and prove the messages
 * there; the NULL rows are library-only (CPython crashes on most of them).
 * tools/check_symbols.py checks the table names every function the header
 * declares. */
#include "harness.h"

#define BAD_CALL "bad argument to internal function"
#define CTX_MSG "an instance of Context was expected"
#define VAR_MSG "an instance of ContextVar was expected"
#define TOKEN_MSG "an instance of Token was expected"

enum { K_NULL, K_CONTEXT, K_VAR, K_TOKEN, K_NONE, K_INT, K_STR, K_CAPSULE, K_EXC_TYPE, K_TYPE, NKINDS };
static const char *kind_names[NKINDS] = {"NULL", "Context", "ContextVar", "Token", "None",
                                         "int", "str", "capsule", "exception type", "type"};
static PyObject *kind_obj[NKINDS];
static char kind_repr[NKINDS][160];
static int capsule_target;

/* Parameter classes: what a parameter accepts. */
enum {
    P_PTR,     /* a non-object pointer (text, out-pointer, C pointer): NULL only */
    P_ANY,     /* any object or NULL as documented: every kind, all must work */
    P_OBJ,     /* any object, NULL is SystemError */
    P_CTX, P_VAR, P_TOKEN, P_INT, P_STR, P_CAPSULE, /* a checked type */
    P_EXC,     /* an exception type (PyErr_SetString/SetNone) */
};
static int matching_kind(int p) {
    switch (p) {
    case P_CTX: return K_CONTEXT;
    case P_VAR: return K_VAR;
    case P_TOKEN: return K_TOKEN;
    case P_INT: return K_INT;
    case P_STR: return K_STR;
    case P_CAPSULE: return K_CAPSULE;
    case P_EXC: return K_EXC_TYPE;
    default: return -1;
    }
}

/* The combinations run (printed and checked). */
#define HOSTILE_EXPECTED_LIB 260L
#define HOSTILE_EXPECTED_CPYTHON 229L

#define ALL (-1) /* every pointer parameter NULL at once */
#define MAXP 3
static PyObject *valid_var;       /* a variable with no value anywhere */
static PyObject *canary_var;      /* set in the current context; must survive */
static long combos, null_combos, type_combos, accepted_combos;

/* The error the common argument checks give for `kind` in a parameter that
 * wanted `msg`'s type: SystemError for NULL, else TypeError(msg). */
static void expect_arg_error(int kind, const char *msg) {
    if (kind == K_NULL) CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    else CHECK_ERROR(PyExc_TypeError, msg);
}

/* Each runner calls its function with `arg` in parameter `param` (or NULL
 * in every pointer parameter when param is ALL) and valid values elsewhere,
 * checks the outcome and undoes any effect. */
typedef void (*runner)(int param, int kind, PyObject *arg);
#define ARG(i, valid) ((param == (i) || param == ALL) ? arg : (valid))

static void run_context_copy(int param, int kind, PyObject *arg) {
    (void)param;
    CHECK(PyContext_Copy(arg) == NULL);
    expect_arg_error(kind, CTX_MSG);
}

static void run_context_enter(int param, int kind, PyObject *arg) {
    (void)param;
    CHECK_EQ_LONG(-1, PyContext_Enter(arg));
    expect_arg_error(kind, CTX_MSG);
}

static void run_context_exit(int param, int kind, PyObject *arg) {
    (void)param;
    CHECK_EQ_LONG(-1, PyContext_Exit(arg));
    expect_arg_error(kind, CTX_MSG);
}

static void run_var_new(int param, int kind, PyObject *arg) {
    (void)kind;
    if (param == 0 || param == ALL) {
        CHECK(PyContextVar_New(NULL, ARG(1, NULL)) == NULL);
        CHECK_ERROR(PyExc_SystemError, BAD_CALL);
        return;
    }
    PyObject *v = PyContextVar_New("hostile", arg); /* any default, NULL for none */
    CHECK(v != NULL);
    PyObject *out = (PyObject *)&out;
    CHECK_EQ_LONG(0, PyContextVar_Get(v, NULL, &out));
    CHECK(out == arg);
    Py_XDECREF(out);
    Py_XDECREF(v);
}

static void run_var_get(int param, int kind, PyObject *arg) {
    PyObject *out = (PyObject *)&out;
    if (param == 0 || param == ALL) {
        CHECK_EQ_LONG(-1, PyContextVar_Get(arg, ARG(1, NULL), param == ALL ? NULL : &out));
        expect_arg_error(kind, VAR_MSG);
#if LIBRARY_ONLY
        if (param == 0) CHECK(out == NULL); /* CPython leaves it unwritten (S2) */
#endif
    } else if (param == 1) { /* any default: it is the result */
        CHECK_EQ_LONG(0, PyContextVar_Get(valid_var, arg, &out));
        CHECK(out == arg);
        Py_XDECREF(out);
    } else {
        CHECK_EQ_LONG(-1, PyContextVar_Get(valid_var, NULL, NULL));
        CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    }
}

static void run_var_set(int param, int kind, PyObject *arg) {
    if (param == 0 || param == ALL) {
        CHECK(PyContextVar_Set(arg, ARG(1, Py_None)) == NULL);
        expect_arg_error(kind, VAR_MSG);
    } else if (kind == K_NULL) {
        CHECK(PyContextVar_Set(valid_var, NULL) == NULL);
        CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    } else { /* any value: set, read back, reset */
        PyObject *t = PyContextVar_Set(valid_var, arg);
        CHECK(t != NULL);
        PyObject *out = NULL;
        CHECK_EQ_LONG(0, PyContextVar_Get(valid_var, NULL, &out));
        CHECK(out == arg);
        Py_XDECREF(out);
        CHECK_EQ_LONG(0, PyContextVar_Reset(valid_var, t));
        Py_XDECREF(t);
    }
}

static void run_var_reset(int param, int kind, PyObject *arg) {
    PyObject *t = PyContextVar_Set(valid_var, Py_None);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(ARG(0, valid_var), ARG(1, t)));
    expect_arg_error(kind, param == 1 ? TOKEN_MSG : VAR_MSG);
    CHECK_EQ_LONG(0, PyContextVar_Reset(valid_var, t)); /* the token was not used up */
    Py_XDECREF(t);
}

static void run_incref(int param, int kind, PyObject *arg) {
    (void)param;
    Py_IncRef(arg);
    if (kind != K_NULL) Py_DecRef(arg);
}

static void run_decref(int param, int kind, PyObject *arg) {
    (void)param;
    if (kind != K_NULL) Py_IncRef(arg);
    Py_DecRef(arg);
}

static void run_new_ref(int param, int kind, PyObject *arg) {
    (void)param;
    PyObject *r = (Py_NewRef)(arg);
    CHECK(r == arg);
    if (kind == K_NULL) CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    Py_XDECREF(r);
}

static void run_xnew_ref(int param, int kind, PyObject *arg) {
    (void)param; (void)kind;
    PyObject *r = (Py_XNewRef)(arg);
    CHECK(r == arg);
    Py_XDECREF(r);
}

static void run_long_as_long(int param, int kind, PyObject *arg) {
    (void)param;
    CHECK_EQ_LONG(-1, PyLong_AsLong(arg));
    if (kind == K_NULL) {
        CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "'%s' object cannot be interpreted as an integer", Py_TYPE(arg)->tp_name);
        CHECK_ERROR(PyExc_TypeError, msg);
    }
}

static void run_unicode_from_string(int param, int kind, PyObject *arg) {
    (void)param; (void)kind; (void)arg;
    CHECK(PyUnicode_FromString(NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
}

static void run_unicode_as_utf8(int param, int kind, PyObject *arg) {
    (void)param;
    CHECK(PyUnicode_AsUTF8(arg) == NULL);
    if (kind == K_NULL) CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    else CHECK_ERROR(PyExc_TypeError, "bad argument type for built-in operation");
}

static int hostile_destroyed;
static void hostile_destructor(PyObject *c) { (void)c; hostile_destroyed++; }

static void run_capsule_new(int param, int kind, PyObject *arg) {
    (void)kind; (void)arg;
    void *p = param == 0 || param == ALL ? NULL : &capsule_target;
    const char *name = param == 1 || param == ALL ? NULL : "hostile";
    PyCapsule_Destructor d = param == 2 || param == ALL ? NULL : hostile_destructor;
    PyObject *c = PyCapsule_New(p, name, d);
    if (p == NULL) {
        CHECK(c == NULL);
        CHECK_ERROR(PyExc_ValueError, "PyCapsule_New called with null pointer");
        return;
    }
    CHECK(c != NULL);
    CHECK(PyCapsule_GetPointer(c, name) == &capsule_target);
    int before = hostile_destroyed;
    Py_XDECREF(c);
    CHECK_EQ_LONG(before + (d != NULL), hostile_destroyed);
}

static void run_capsule_get_pointer(int param, int kind, PyObject *arg) {
    (void)kind;
    CHECK(PyCapsule_GetPointer(ARG(0, kind_obj[K_CAPSULE]), param == 1 || param == ALL ? NULL : "hostile") == NULL);
    if (param == 1) CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with incorrect name");
    else CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with invalid PyCapsule object");
}

static void run_err_fetch(int param, int kind, PyObject *arg) {
    (void)kind; (void)arg;
    PyErr_SetString(PyExc_ValueError, "hostile");
    PyObject *t = (PyObject *)&t, *v = (PyObject *)&v, *tb = (PyObject *)&tb;
    PyErr_Fetch(param == 0 || param == ALL ? NULL : &t, param == 1 || param == ALL ? NULL : &v,
                param == 2 || param == ALL ? NULL : &tb);
    CHECK_NO_ERROR(); /* the indicator is clear; parts with a NULL slot were released */
    if (param != 0 && param != ALL) { CHECK(t == PyExc_ValueError); Py_XDECREF(t); }
    if (param != 1 && param != ALL) {
        char *m = shim_error_message(v);
        CHECK_STR("hostile", m);
        free(m);
        Py_XDECREF(v);
    }
    if (param != 2 && param != ALL) CHECK(tb == NULL);
}

static void run_err_restore(int param, int kind, PyObject *arg) {
    (void)kind;
    PyObject *type = param == 0 || param == ALL ? arg : PyExc_ValueError;
    PyObject *msg = PyUnicode_FromString("hostile");
    PyObject *value = param == 1 || param == ALL ? arg : msg;
    PyObject *tb = param == 2 || param == ALL ? arg : NULL;
    Py_XINCREF(type); Py_XINCREF(value); Py_XINCREF(tb); /* Restore steals them */
    PyErr_Restore(type, value, tb);
    CHECK(PyErr_Occurred() == type); /* whatever it is, as in CPython 3.11 */
    PyObject *t2 = NULL, *v2 = NULL, *tb2 = NULL;
    PyErr_Fetch(&t2, &v2, &tb2);
    CHECK(t2 == type && v2 == value);
    CHECK(tb2 == NULL); /* not a traceback: released */
    Py_XDECREF(t2); Py_XDECREF(v2); Py_XDECREF(tb2);
    Py_XDECREF(msg);
}

/* SystemError "_PyErr_SetObject: exception <repr> is not a BaseException subclass". */
static void expect_not_an_exception(int kind) {
    char msg[300];
    snprintf(msg, sizeof msg, "_PyErr_SetObject: exception %s is not a BaseException subclass", kind_repr[kind]);
    CHECK_ERROR(PyExc_SystemError, msg);
}

static void run_err_set_string(int param, int kind, PyObject *arg) {
    PyErr_SetString(ARG(0, PyExc_ValueError), param == 1 || param == ALL ? NULL : "hostile");
    if (kind == K_NULL) CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    else expect_not_an_exception(kind);
}

static void run_err_set_none(int param, int kind, PyObject *arg) {
    (void)param;
    PyErr_SetNone(arg);
    if (kind == K_NULL) CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    else expect_not_an_exception(kind);
}

static void run_err_exception_matches(int param, int kind, PyObject *arg) {
    (void)param;
    PyErr_SetString(PyExc_ValueError, "hostile");
    CHECK_EQ_LONG(kind == K_EXC_TYPE, PyErr_ExceptionMatches(arg)); /* the kind is ValueError */
    PyErr_Clear();
}

static void run_err_given_exception_matches(int param, int kind, PyObject *arg) {
    /* Only ValueError (the exception-type kind) matches Exception, or is matched by ValueError. */
    CHECK_EQ_LONG(param != ALL && kind == K_EXC_TYPE,
                  PyErr_GivenExceptionMatches(ARG(0, PyExc_ValueError), ARG(1, PyExc_Exception)));
}

#if LIBRARY_ONLY
static void run_live_counts(int param, int kind, PyObject *arg) {
    (void)param; (void)kind; (void)arg;
    CHECK_EQ_LONG(-1, contextvars_live_counts(NULL));
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
}
#endif

/* Every exported function, with what each parameter accepts. Functions
 * without pointer parameters have no hostile input; they are listed so the
 * table covers the header. */
static const struct fn {
    const char *name;
    runner run;
    int nparams;
    int params[MAXP];
} fns[] = {
    {"PyContext_New", NULL, 0, {0}},
    {"PyContext_Copy", run_context_copy, 1, {P_CTX}},
    {"PyContext_CopyCurrent", NULL, 0, {0}},
    {"PyContext_Enter", run_context_enter, 1, {P_CTX}},
    {"PyContext_Exit", run_context_exit, 1, {P_CTX}},
    {"PyContextVar_New", run_var_new, 2, {P_PTR, P_ANY}},
    {"PyContextVar_Get", run_var_get, 3, {P_VAR, P_ANY, P_PTR}},
    {"PyContextVar_Set", run_var_set, 2, {P_VAR, P_OBJ}},
    {"PyContextVar_Reset", run_var_reset, 2, {P_VAR, P_TOKEN}},
    {"Py_IncRef", run_incref, 1, {P_ANY}},
    {"Py_DecRef", run_decref, 1, {P_ANY}},
    {"Py_NewRef", run_new_ref, 1, {P_OBJ}},
    {"Py_XNewRef", run_xnew_ref, 1, {P_ANY}},
    {"PyLong_FromLong", NULL, 0, {0}},
    {"PyLong_AsLong", run_long_as_long, 1, {P_INT}},
    {"PyUnicode_FromString", run_unicode_from_string, 1, {P_PTR}},
    {"PyUnicode_AsUTF8", run_unicode_as_utf8, 1, {P_STR}},
    {"PyCapsule_New", run_capsule_new, 3, {P_PTR, P_PTR, P_PTR}},
    {"PyCapsule_GetPointer", run_capsule_get_pointer, 2, {P_CAPSULE, P_PTR}},
    {"PyErr_Occurred", NULL, 0, {0}},
    {"PyErr_Clear", NULL, 0, {0}},
    {"PyErr_Fetch", run_err_fetch, 3, {P_PTR, P_PTR, P_PTR}},
    {"PyErr_Restore", run_err_restore, 3, {P_ANY, P_ANY, P_ANY}},
    {"PyErr_SetString", run_err_set_string, 2, {P_EXC, P_PTR}},
    {"PyErr_SetNone", run_err_set_none, 1, {P_EXC}},
    {"PyErr_ExceptionMatches", run_err_exception_matches, 1, {P_ANY}},
    {"PyErr_GivenExceptionMatches", run_err_given_exception_matches, 2, {P_ANY, P_ANY}},
    {"PyErr_NoMemory", NULL, 0, {0}},
    {"PyErr_BadInternalCall", NULL, 0, {0}},
#if LIBRARY_ONLY
    {"contextvars_live_counts", run_live_counts, 1, {P_PTR}},
#endif
};
#define NFNS ((int)(sizeof fns / sizeof fns[0]))

/* Whether the target survives `kind` in a parameter of class `p` at all:
 * CPython crashes on NULL wherever the library raises SystemError. */
static int runs_here(const struct fn *f, int p, int kind) {
    (void)f; (void)p;
#if LIBRARY_ONLY
    (void)kind;
    return 1;
#else
    if (kind != K_NULL) return 1;
    /* NULL rows CPython survives too. */
    return (strcmp(f->name, "Py_IncRef") == 0 || strcmp(f->name, "Py_DecRef") == 0 ||
            strcmp(f->name, "Py_XNewRef") == 0 || strcmp(f->name, "PyCapsule_New") == 0 ||
            strcmp(f->name, "PyErr_Restore") == 0 ||
            strcmp(f->name, "PyErr_ExceptionMatches") == 0 ||
            strcmp(f->name, "PyErr_GivenExceptionMatches") == 0 ||
            (strcmp(f->name, "PyContextVar_New") == 0 && p == P_ANY) ||
            (strcmp(f->name, "PyContextVar_Get") == 0 && p == P_ANY) ||
            (strcmp(f->name, "PyCapsule_GetPointer") == 0 && p == P_PTR) ||
            (strcmp(f->name, "PyCapsule_GetPointer") == 0 && p == P_CAPSULE));
#endif
}

static void make_kinds(void) {
    kind_obj[K_NULL] = NULL;
    kind_obj[K_CONTEXT] = PyContext_New();
    kind_obj[K_VAR] = PyContextVar_New("hostile", NULL);
    kind_obj[K_TOKEN] = PyContextVar_Set(kind_obj[K_VAR], Py_None);
    kind_obj[K_NONE] = Py_NewRef(Py_None);
    kind_obj[K_INT] = PyLong_FromLong(5000);
    kind_obj[K_STR] = PyUnicode_FromString("hostile");
    kind_obj[K_CAPSULE] = PyCapsule_New(&capsule_target, "hostile", NULL);
    kind_obj[K_EXC_TYPE] = Py_NewRef(PyExc_ValueError);
    kind_obj[K_TYPE] = Py_NewRef((PyObject *)&PyLong_Type);
    snprintf(kind_repr[K_CONTEXT], sizeof kind_repr[0], "<_contextvars.Context object at %p>", (void *)kind_obj[K_CONTEXT]);
    snprintf(kind_repr[K_VAR], sizeof kind_repr[0], "<ContextVar name='hostile' at %p>", (void *)kind_obj[K_VAR]);
    snprintf(kind_repr[K_TOKEN], sizeof kind_repr[0], "<Token var=<ContextVar name='hostile' at %p> at %p>",
             (void *)kind_obj[K_VAR], (void *)kind_obj[K_TOKEN]);
    strcpy(kind_repr[K_NONE], "None");
    strcpy(kind_repr[K_INT], "5000");
    strcpy(kind_repr[K_STR], "'hostile'");
    strcpy(kind_repr[K_TYPE], "<class 'int'>");
    snprintf(kind_repr[K_CAPSULE], sizeof kind_repr[0], "<capsule object \"hostile\" at %p>", (void *)kind_obj[K_CAPSULE]);
}

/* Runs one combination and checks that nothing else changed. */
static void one(const struct fn *f, int param, int kind) {
    Py_ssize_t before[NKINDS];
    for (int k = 1; k < NKINDS; k++) before[k] = Py_REFCNT(kind_obj[k]);
    int failed_before = h_case_failed;
    f->run(param, kind, kind_obj[kind]);
    combos++;
    CHECK_NO_ERROR();
    PyErr_Clear();
    for (int k = 1; k < NKINDS; k++) {
        if (Py_REFCNT(kind_obj[k]) != before[k]) {
            char buf[200];
            snprintf(buf, sizeof buf, "%s: the %s's reference count changed", f->name, kind_names[k]);
            h_fail(__FILE__, __LINE__, buf);
        }
    }
    CHECK_EQ_LONG(77, h_get_long(canary_var, NULL));
    if (h_case_failed != failed_before)
        fprintf(stderr, "  in %s, parameter %d, %s\n", f->name, param == ALL ? -1 : param, kind_names[kind]);
}

TEST(every_export_survives_hostile_arguments) {
    combos = null_combos = type_combos = accepted_combos = 0;
    make_kinds();
    valid_var = PyContextVar_New("valid", NULL);
    canary_var = PyContextVar_New("canary", NULL);
    PyObject *ctx = h_enter_new();
    PyObject *canary_token = h_set_long(canary_var, 77);
    for (int i = 0; i < NFNS; i++) {
        const struct fn *f = &fns[i];
        if (f->run == NULL) continue;
        int pointers = 0;
        for (int p = 0; p < f->nparams; p++) {
            int cls = f->params[p];
            pointers++;
            for (int kind = 0; kind < NKINDS; kind++) {
                if (cls == P_PTR && kind != K_NULL) continue;
                if (kind == matching_kind(cls)) continue; /* the right type is not hostile */
                if (!runs_here(f, cls, kind)) continue;
                one(f, p, kind);
                if (kind == K_NULL) null_combos++;
                else if (cls == P_ANY || cls == P_OBJ) accepted_combos++;
                else type_combos++;
            }
        }
        if (pointers > 1 && LIBRARY_ONLY) {
            one(f, ALL, K_NULL);
            null_combos++;
        }
    }
    CHECK_EQ_LONG(0, PyContextVar_Reset(canary_var, canary_token));
    Py_DECREF(canary_token);
    h_leave(ctx);
    printf("hostile arguments: %ld combinations (%ld NULL, %ld wrong type, %ld any-object accepted)\n",
           combos, null_combos, type_combos, accepted_combos);
    /* The figure is part of the check: a shrinking table fails. */
#if LIBRARY_ONLY
    CHECK_EQ_LONG(HOSTILE_EXPECTED_LIB, combos);
#else
    CHECK_EQ_LONG(HOSTILE_EXPECTED_CPYTHON, combos);
#endif
    /* The token kind was made in the base context: take its variable out. */
    CHECK_EQ_LONG(0, PyContextVar_Reset(kind_obj[K_VAR], kind_obj[K_TOKEN]));
    for (int k = 1; k < NKINDS; k++) Py_DECREF(kind_obj[k]);
    Py_CLEAR(valid_var);
    Py_CLEAR(canary_var);
}

void suite_hostile(void) {
    RUN(every_export_survives_hostile_arguments);
}
