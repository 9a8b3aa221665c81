/* What only the library promises, where CPython would crash or corrupt
 * memory: NULL arguments raise SystemError, *value is written on every Get
 * error, Exit after the caller dropped its reference (S1). */
#include "harness.h"

#if LIBRARY_ONLY
#define BAD_CALL "bad argument to internal function"

TEST(null_object_arguments_raise_system_error) {
    PyObject *var = PyContextVar_New("v", NULL), *ctx = PyContext_New(), *out = Py_None;
    PyObject *tok = PyContextVar_Set(var, Py_None);
    CHECK(PyContext_Copy(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContext_Enter(NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContext_Exit(NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyContextVar_New(NULL, NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContextVar_Get(NULL, NULL, &out)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(out == NULL);
    CHECK_EQ_LONG(-1, PyContextVar_Get(var, NULL, NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyContextVar_Set(NULL, Py_None) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyContextVar_Set(var, NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(NULL, tok)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyContextVar_Reset(var, NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(-1, PyLong_AsLong(NULL)); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyUnicode_FromString(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(PyUnicode_AsUTF8(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK((Py_NewRef)(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK(Py_NewRef(NULL) == NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    PyErr_SetString(NULL, "x"); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    PyErr_SetString(PyExc_ValueError, NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    PyErr_SetNone(NULL); CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    /* CPython's own answer for NULL here is ValueError; we keep it. */
    CHECK(PyCapsule_GetPointer(NULL, "x") == NULL);
    CHECK_ERROR(PyExc_ValueError, "PyCapsule_GetPointer called with invalid PyCapsule object");
    /* The state is untouched: the token still resets. */
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, tok));
    Py_DECREF(tok); Py_DECREF(ctx); Py_DECREF(var);
}

TEST(null_is_harmless_where_nothing_can_be_reported) {
    Py_IncRef(NULL); Py_DecRef(NULL);
    Py_INCREF(NULL); Py_DECREF(NULL);
    CHECK(Py_XNewRef(NULL) == NULL);
    CHECK(!PyContext_CheckExact(NULL) && !PyContextVar_CheckExact(NULL) && !PyContextToken_CheckExact(NULL));
    CHECK(!PyLong_Check(NULL) && !PyUnicode_Check(NULL) && !PyCapsule_CheckExact(NULL));
    CHECK_EQ_LONG(0, PyErr_GivenExceptionMatches(NULL, NULL));
    PyObject *t = (PyObject *)1, *v = (PyObject *)1;
    PyErr_Fetch(&t, &v, NULL); /* nothing pending: NULLs, and a NULL slot is fine */
    CHECK(t == NULL && v == NULL);
    CHECK_NO_ERROR();
}

TEST(get_writes_null_on_its_type_error) {
    PyObject *out = Py_None;
    CHECK_EQ_LONG(-1, PyContextVar_Get(Py_None, NULL, &out));
    CHECK_ERROR(PyExc_TypeError, "an instance of ContextVar was expected");
    CHECK(out == NULL); /* CPython leaves it unwritten (S2) */
}

static int s1_freed;
static void s1_free(PyObject *c) { (void)c; s1_freed++; }

TEST(exit_after_the_caller_dropped_its_reference) {
    PyObject *var = PyContextVar_New("v", NULL);
    PyObject *outer_cap = PyCapsule_New(&s1_freed, "s1", s1_free);
    PyObject *outer = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(outer));
    PyObject *t1 = PyContextVar_Set(var, outer_cap);
    PyObject *inner = PyContext_New();
    CHECK_EQ_LONG(0, PyContext_Enter(inner));
    PyObject *inner_cap = PyCapsule_New(&s1_freed, "s1", s1_free);
    PyObject *t2 = PyContextVar_Set(var, inner_cap);
    Py_DECREF(inner_cap); /* only `inner` holds it now */
    Py_DECREF(t2); /* the token would keep `inner` alive */
    s1_freed = 0;
    Py_DECREF(inner); /* CPython's S1 hazard: only the thread holds it now */
    CHECK_EQ_LONG(0, PyContext_Exit(inner));
    CHECK_EQ_LONG(1, s1_freed); /* inner and its value are gone... */
    PyObject *got = NULL;
    CHECK_EQ_LONG(0, PyContextVar_Get(var, NULL, &got));
    CHECK(got == outer_cap); /* ...and the outer context is intact */
    Py_XDECREF(got);
    CHECK_EQ_LONG(0, PyContext_Exit(outer));
    Py_DECREF(t1); Py_DECREF(outer); Py_DECREF(outer_cap);
    CHECK_EQ_LONG(2, s1_freed);
    Py_DECREF(var);
}

TEST(a_failed_set_changes_nothing) {
    PyObject *var = PyContextVar_New("v", NULL);
    PyObject *t = h_set_long(var, 5);
    CHECK(PyContextVar_Set(var, NULL) == NULL);
    CHECK_ERROR(PyExc_SystemError, BAD_CALL);
    CHECK_EQ_LONG(5, h_get_long(var, NULL));
    CHECK_EQ_LONG(0, PyContextVar_Reset(var, t));
    Py_DECREF(t); Py_DECREF(var);
}

TEST(header_layout_matches_the_library) {
    /* The hand-written PyObject/PyTypeObject of the header (pinned in Rust too). */
    CHECK_EQ_LONG(16, sizeof(PyObject));
    CHECK_EQ_LONG(0, offsetof(PyObject, ob_refcnt));
    CHECK_EQ_LONG(8, offsetof(PyObject, ob_type));
    CHECK_EQ_LONG(16, offsetof(PyTypeObject, tp_name));
    CHECK_EQ_LONG(32, offsetof(PyTypeObject, tp_dealloc));
    CHECK_EQ_LONG(48, sizeof(PyTypeObject));
    CHECK(Py_REFCNT(Py_None) >= CONTEXTVARS_IMMORTAL_REFCNT);
    CHECK_STR(CONTEXTVARS_VERSION, CONTEXTVARS_VERSION); /* the macro exists */
}
#endif

void suite_library_only(void) {
#if LIBRARY_ONLY
    RUN(null_object_arguments_raise_system_error);
    RUN(null_is_harmless_where_nothing_can_be_reported);
    RUN(get_writes_null_on_its_type_error);
    RUN(exit_after_the_caller_dropped_its_reference);
    RUN(a_failed_set_changes_nothing);
    RUN(header_layout_matches_the_library);
#endif
}
