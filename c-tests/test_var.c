/* Context variables: PyContextVar_New (names, defaults), PyContextVar_Get
 * (precedence, new references, no side effects) and PyContextVar_Set
 * (tokens, values of every kind). Cases work inside a fresh entered context
 * or reset what they set at the base level. */
#include "harness.h"

#define MISSING H_MISSING
#define GET_FAILED H_GET_FAILED
#define NOT_VAR_MSG "an instance of ContextVar was expected"

#define get_long_with h_get_long
#define get_long(var) h_get_long((var), NULL)

/* Get's result object (new reference, NULL when nothing is found). Checks
 * that Get succeeds without an error. */
static PyObject *get_obj(PyObject *var, PyObject *dflt) {
    PyObject *val = (PyObject *)&val;
    CHECK_EQ_LONG(0, PyContextVar_Get(var, dflt, &val));
    CHECK_NO_ERROR();
    if (val == (PyObject *)&val) return NULL;
    return val;
}

static int set_long(PyObject *var, long v) {
    PyObject *t = h_set_long(var, v);
    Py_XDECREF(t);
    return t != NULL;
}

#define enter_new h_enter_new
#define leave h_leave

/* ---- PyContextVar_New ---- */

TEST(new_var_without_default_get_returns_null_without_error) {
    PyObject *v = PyContextVar_New("v", NULL);
    CHECK(v != NULL);
    CHECK(PyContextVar_CheckExact(v));
    CHECK(Py_TYPE(v) == &PyContextVar_Type);
    PyObject *val = (PyObject *)&val;
    CHECK_EQ_LONG(0, PyContextVar_Get(v, NULL, &val));
    CHECK(val == NULL);
    CHECK_NO_ERROR();
    Py_DECREF(v);
}

TEST(new_var_with_default_get_returns_that_object) {
    PyObject *d = PyUnicode_FromString("the default");
    PyObject *v = PyContextVar_New("v", d);
    CHECK(v != NULL);
    PyObject *val = get_obj(v, NULL);
    CHECK(val == d);
    CHECK_STR("the default", val ? PyUnicode_AsUTF8(val) : NULL);
    Py_XDECREF(val);
    Py_DECREF(d);
    Py_DECREF(v);
}

TEST(none_default_is_a_real_value) {
    PyObject *v = PyContextVar_New("v", Py_None);
    PyObject *val = get_obj(v, NULL);
    CHECK(val == Py_None);
    Py_XDECREF(val);
    /* and an explicit Py_None default is used too */
    PyObject *w = PyContextVar_New("w", NULL);
    val = get_obj(w, Py_None);
    CHECK(val == Py_None);
    Py_XDECREF(val);
    Py_DECREF(v);
    Py_DECREF(w);
}

TEST(vars_with_the_same_name_are_distinct) {
    PyObject *a = PyContextVar_New("same", NULL), *b = PyContextVar_New("same", NULL);
    CHECK(a != NULL && b != NULL && a != b);
    PyObject *c = enter_new();
    CHECK(set_long(a, 1));
    CHECK_EQ_LONG(1, get_long(a));
    CHECK_EQ_LONG(MISSING, get_long(b));
    CHECK(set_long(b, 2));
    CHECK_EQ_LONG(1, get_long(a));
    CHECK_EQ_LONG(2, get_long(b));
    leave(c);
    Py_DECREF(a);
    Py_DECREF(b);
}

TEST(valid_utf8_names_are_accepted) {
    const char *names[] = {"", "v", "with space", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
                           "\xf0\x9f\x98\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "it's", "a\"b"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        PyObject *v = PyContextVar_New(names[i], NULL);
        CHECK(v != NULL && PyContextVar_CheckExact(v));
        CHECK_NO_ERROR();
        Py_XDECREF(v);
    }
}

TEST(invalid_utf8_names_raise_unicode_decode_error) {
    static const struct { const char *name, *msg; } cases[] = {
        {"\xff", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"},
        {"\x80", "'utf-8' codec can't decode byte 0x80 in position 0: invalid start byte"},
        {"a\xff" "b", "'utf-8' codec can't decode byte 0xff in position 1: invalid start byte"},
        {"\xfe\xff", "'utf-8' codec can't decode byte 0xfe in position 0: invalid start byte"},
        {"\xc0\x80", "'utf-8' codec can't decode byte 0xc0 in position 0: invalid start byte"},
        {"\xc1\xbf", "'utf-8' codec can't decode byte 0xc1 in position 0: invalid start byte"},
        {"\xf5\x80\x80\x80", "'utf-8' codec can't decode byte 0xf5 in position 0: invalid start byte"},
        {"\xf8\x88\x80\x80\x80", "'utf-8' codec can't decode byte 0xf8 in position 0: invalid start byte"},
        {"ok\xf0\x9f\x98\x80\xfe", "'utf-8' codec can't decode byte 0xfe in position 6: invalid start byte"},
        {"caf\xc3\xa9\xff", "'utf-8' codec can't decode byte 0xff in position 5: invalid start byte"},
        {"\xc3", "'utf-8' codec can't decode byte 0xc3 in position 0: unexpected end of data"},
        {"\xe2\x82", "'utf-8' codec can't decode bytes in position 0-1: unexpected end of data"},
        {"\xf0\x9f\x98", "'utf-8' codec can't decode bytes in position 0-2: unexpected end of data"},
        {"abc\xe2\x82", "'utf-8' codec can't decode bytes in position 3-4: unexpected end of data"},
        {"\xef\xbf", "'utf-8' codec can't decode bytes in position 0-1: unexpected end of data"},
        {"\xc3(", "'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte"},
        {"\xe2(\xa1", "'utf-8' codec can't decode byte 0xe2 in position 0: invalid continuation byte"},
        {"\xe2\x82(", "'utf-8' codec can't decode bytes in position 0-1: invalid continuation byte"},
        {"\xed\xa0\x80", "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte"},
        {"\xe0\x80\x80", "'utf-8' codec can't decode byte 0xe0 in position 0: invalid continuation byte"},
        {"\xf0\x80\x80\x80", "'utf-8' codec can't decode byte 0xf0 in position 0: invalid continuation byte"},
        {"\xf4\x90\x80\x80", "'utf-8' codec can't decode byte 0xf4 in position 0: invalid continuation byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        PyObject *d = PyLong_FromLong(100000 + (long)i);
        Py_ssize_t rd = Py_REFCNT(d);
        PyObject *v = PyContextVar_New(cases[i].name, d);
        CHECK(v == NULL);
        CHECK(PyErr_ExceptionMatches(PyExc_ValueError));
        CHECK(PyErr_ExceptionMatches(PyExc_UnicodeError));
        CHECK(PyErr_ExceptionMatches(PyExc_UnicodeDecodeError));
        CHECK(!PyErr_ExceptionMatches(PyExc_TypeError));
        CHECK_ERROR(PyExc_UnicodeDecodeError, cases[i].msg);
        CHECK_EQ_LONG(rd, Py_REFCNT(d)); /* the default was not kept */
        Py_XDECREF(v);
        Py_DECREF(d);
    }
}

/* ---- PyContextVar_Get ---- */

TEST(get_precedence_value_then_explicit_then_var_default) {
    PyObject *vd = PyLong_FromLong(30), *ed = PyLong_FromLong(20);
    PyObject *with = PyContextVar_New("with", vd), *without = PyContextVar_New("without", NULL);
    PyObject *c = enter_new();
    /* nothing set */
    CHECK_EQ_LONG(MISSING, get_long_with(without, NULL));
    CHECK_EQ_LONG(20, get_long_with(without, ed));
    CHECK_EQ_LONG(30, get_long_with(with, NULL));
    CHECK_EQ_LONG(20, get_long_with(with, ed)); /* explicit beats the var's */
    /* a value beats both defaults */
    CHECK(set_long(with, 10));
    CHECK(set_long(without, 11));
    CHECK_EQ_LONG(10, get_long_with(with, NULL));
    CHECK_EQ_LONG(10, get_long_with(with, ed));
    CHECK_EQ_LONG(11, get_long_with(without, NULL));
    CHECK_EQ_LONG(11, get_long_with(without, ed));
    leave(c);
    /* outside, the defaults again */
    CHECK_EQ_LONG(30, get_long_with(with, NULL));
    CHECK_EQ_LONG(20, get_long_with(with, ed));
    CHECK_EQ_LONG(MISSING, get_long_with(without, NULL));
    CHECK_NO_ERROR();
    Py_DECREF(with);
    Py_DECREF(without);
    Py_DECREF(vd);
    Py_DECREF(ed);
}

TEST(get_value_none_beats_defaults) {
    PyObject *d = PyLong_FromLong(5);
    PyObject *v = PyContextVar_New("v", d);
    PyObject *c = enter_new();
    PyObject *t = PyContextVar_Set(v, Py_None);
    PyObject *val = get_obj(v, d);
    CHECK(val == Py_None);
    Py_XDECREF(val);
    leave(c);
    Py_XDECREF(t);
    Py_DECREF(v);
    Py_DECREF(d);
}

TEST(get_returns_new_reference_from_every_source) {
    PyObject *value = PyUnicode_FromString("value in context");
    PyObject *explicit_d = PyLong_FromLong(987654321);
    PyObject *var_d = PyUnicode_FromString("var default");
    PyObject *v = PyContextVar_New("v", var_d);
    PyObject *c = enter_new();

    /* var default */
    Py_ssize_t r = Py_REFCNT(var_d);
    PyObject *got = get_obj(v, NULL);
    CHECK(got == var_d);
    CHECK_EQ_LONG(r + 1, Py_REFCNT(var_d));
    Py_XDECREF(got);
    CHECK_EQ_LONG(r, Py_REFCNT(var_d));

    /* explicit default */
    r = Py_REFCNT(explicit_d);
    got = get_obj(v, explicit_d);
    CHECK(got == explicit_d);
    CHECK_EQ_LONG(r + 1, Py_REFCNT(explicit_d));
    Py_XDECREF(got);
    CHECK_EQ_LONG(r, Py_REFCNT(explicit_d));

    /* value in the context, read twice */
    PyObject *t = PyContextVar_Set(v, value);
    r = Py_REFCNT(value);
    PyObject *g1 = get_obj(v, explicit_d);
    PyObject *g2 = get_obj(v, NULL);
    CHECK(g1 == value && g2 == value);
    CHECK_EQ_LONG(r + 2, Py_REFCNT(value));
    Py_XDECREF(g1);
    Py_XDECREF(g2);
    CHECK_EQ_LONG(r, Py_REFCNT(value));

    leave(c);
    Py_XDECREF(t);
    Py_DECREF(v);
    Py_DECREF(value);
    Py_DECREF(explicit_d);
    Py_DECREF(var_d);
}

TEST(get_with_wrong_type_var_raises_type_error) {
    PyObject *ctx = PyContext_New();
    PyObject *n = PyLong_FromLong(1);
    PyObject *s = PyUnicode_FromString("v");
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *tmp = enter_new();
    PyObject *tok = PyContextVar_Set(v, n);
    leave(tmp);
    PyObject *bad[] = {ctx, n, s, Py_None, tok, (PyObject *)&PyContextVar_Type};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        PyObject *val = NULL;
        CHECK_EQ_LONG(-1, PyContextVar_Get(bad[i], NULL, &val));
        CHECK_ERROR(PyExc_TypeError, NOT_VAR_MSG);
        CHECK_EQ_LONG(-1, PyContextVar_Get(bad[i], n, &val)); /* a default does not help */
        CHECK_ERROR(PyExc_TypeError, NOT_VAR_MSG);
    }
    CHECK_NO_ERROR();
    Py_XDECREF(tok);
    Py_DECREF(v);
    Py_DECREF(ctx);
    Py_DECREF(n);
    Py_DECREF(s);
}

/* Get does not create or replace the current context (S3): a token made in
 * the current context stays valid through any number of Gets. */
TEST(get_leaves_the_current_context_alone) {
    PyObject *v = PyContextVar_New("v", NULL), *other = PyContextVar_New("other", NULL);
    PyObject *d = PyLong_FromLong(3);
    /* on an empty context Get just reports nothing */
    PyObject *c = enter_new();
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(3, get_long_with(v, d));
    PyObject *snap = PyContext_CopyCurrent();
    leave(c);
    /* at the base level too */
    CHECK_EQ_LONG(MISSING, get_long(other));
    PyObject *one = PyLong_FromLong(1);
    PyObject *t = PyContextVar_Set(v, one);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_LONG(1, get_long(v));
        CHECK_EQ_LONG(MISSING, get_long(other));
        CHECK_EQ_LONG(3, get_long_with(other, d));
    }
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t)); /* same context as at Set */
    CHECK_EQ_LONG(MISSING, get_long(v));
    /* the copy taken after only Gets is still empty */
    PyContext_Enter(snap);
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(MISSING, get_long(other));
    PyContext_Exit(snap);
    CHECK_NO_ERROR();
    Py_XDECREF(t);
    Py_DECREF(one);
    Py_DECREF(snap);
    Py_DECREF(d);
    Py_DECREF(v);
    Py_DECREF(other);
}

/* ---- PyContextVar_Set ---- */

TEST(set_returns_a_new_token_each_time_even_for_the_same_value) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *x = PyLong_FromLong(424242);
    PyObject *c = enter_new();
    PyObject *t1 = PyContextVar_Set(v, x);
    PyObject *t2 = PyContextVar_Set(v, x);
    PyObject *t3 = PyContextVar_Set(v, x);
    CHECK(t1 != NULL && t2 != NULL && t3 != NULL);
    CHECK(t1 != t2 && t2 != t3 && t1 != t3);
    CHECK(PyContextToken_CheckExact(t1) && PyContextToken_CheckExact(t2));
    CHECK(Py_TYPE(t3) == &PyContextToken_Type);
    CHECK_EQ_LONG(424242, get_long(v));
    /* each token is separately usable */
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t3));
    CHECK_EQ_LONG(424242, get_long(v));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t2));
    CHECK_EQ_LONG(424242, get_long(v));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, t1));
    CHECK_EQ_LONG(MISSING, get_long(v));
    leave(c);
    CHECK_NO_ERROR();
    Py_XDECREF(t1);
    Py_XDECREF(t2);
    Py_XDECREF(t3);
    Py_DECREF(x);
    Py_DECREF(v);
}

TEST(set_overwrites_and_get_sees_latest) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *c = enter_new();
    for (long i = -3; i < 300; i += 7) {
        CHECK(set_long(v, i));
        CHECK_EQ_LONG(i, get_long(v));
    }
    leave(c);
    Py_DECREF(v);
}

TEST(set_with_wrong_type_var_raises_type_error) {
    PyObject *ctx = PyContext_New();
    PyObject *n = PyLong_FromLong(1);
    PyObject *s = PyUnicode_FromString("v");
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *c = enter_new();
    PyObject *tok = PyContextVar_Set(v, n);
    PyObject *bad[] = {ctx, n, s, Py_None, tok, (PyObject *)&PyContextVar_Type};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        PyObject *t = PyContextVar_Set(bad[i], n);
        CHECK(t == NULL);
        CHECK_ERROR(PyExc_TypeError, NOT_VAR_MSG);
        Py_XDECREF(t);
    }
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(0, PyContextVar_Reset(v, tok)); /* the context was not touched */
    leave(c);
    CHECK_NO_ERROR();
    Py_XDECREF(tok);
    Py_DECREF(v);
    Py_DECREF(ctx);
    Py_DECREF(n);
    Py_DECREF(s);
}

TEST(set_and_get_across_enter_exit_and_copies) {
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *a = enter_new();
    CHECK(set_long(v, 1));
    CHECK(set_long(w, 100));
    PyObject *b = PyContext_CopyCurrent();
    CHECK_EQ_LONG(0, PyContext_Enter(b));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK_EQ_LONG(100, get_long(w));
    CHECK(set_long(v, 2));
    PyObject *inner = enter_new();
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK(set_long(v, 3));
    CHECK_EQ_LONG(3, get_long(v));
    leave(inner);
    CHECK_EQ_LONG(2, get_long(v));
    CHECK_EQ_LONG(0, PyContext_Exit(b));
    CHECK_EQ_LONG(1, get_long(v));
    CHECK(set_long(w, 101));
    leave(a);
    PyContext_Enter(b);
    CHECK_EQ_LONG(2, get_long(v));
    CHECK_EQ_LONG(100, get_long(w));
    PyContext_Exit(b);
    CHECK_NO_ERROR();
    Py_DECREF(b);
    Py_DECREF(v);
    Py_DECREF(w);
}

/* The per-variable cache must not leak a value across context switches. */
TEST(get_after_context_switch_and_reset_and_other_context_sets) {
    PyObject *v = PyContextVar_New("v", NULL), *w = PyContextVar_New("w", NULL);
    PyObject *a = enter_new();
    CHECK(set_long(v, 1));
    CHECK_EQ_LONG(1, get_long(v));
    PyObject *b = enter_new();
    CHECK_EQ_LONG(MISSING, get_long(v)); /* switch: not the cached 1 */
    CHECK(set_long(v, 2));
    CHECK_EQ_LONG(2, get_long(v));
    leave(b);
    CHECK_EQ_LONG(1, get_long(v));
    /* a set of another var keeps v right */
    CHECK(set_long(w, 5));
    CHECK_EQ_LONG(1, get_long(v));
    /* reset to missing after a cached read */
    PyObject *seven = PyLong_FromLong(7);
    PyObject *t = PyContextVar_Set(w, seven);
    CHECK_EQ_LONG(7, get_long(w));
    CHECK_EQ_LONG(0, PyContextVar_Reset(w, t));
    CHECK_EQ_LONG(5, get_long(w));
    PyObject *w2 = PyContextVar_New("w2", NULL);
    PyObject *t2 = PyContextVar_Set(w2, seven);
    CHECK_EQ_LONG(7, get_long(w2));
    CHECK_EQ_LONG(0, PyContextVar_Reset(w2, t2));
    CHECK_EQ_LONG(MISSING, get_long(w2));
    leave(a);
    CHECK_EQ_LONG(MISSING, get_long(v));
    CHECK_EQ_LONG(MISSING, get_long(w));
    CHECK_NO_ERROR();
    Py_XDECREF(t);
    Py_XDECREF(t2);
    Py_DECREF(seven);
    Py_DECREF(v);
    Py_DECREF(w);
    Py_DECREF(w2);
}

TEST(deep_chain_of_copies_each_sees_its_own_value) {
    enum { N = 50 };
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *ctx[N];
    PyObject *c = enter_new();
    int bad = 0;
    for (int i = 0; i < N; i++) {
        ctx[i] = PyContext_CopyCurrent(); /* a snapshot with v == i - 1 */
        if (PyContext_Enter(ctx[i]) != 0) { bad++; PyErr_Clear(); }
        if (get_long(v) != (i == 0 ? MISSING : i - 1)) bad++;
        if (!set_long(v, i) || get_long(v) != i) bad++;
    }
    CHECK_EQ_LONG(0, bad);
    for (int i = N - 1; i >= 0; i--) {
        if (get_long(v) != i) bad++;
        if (PyContext_Exit(ctx[i]) != 0) { bad++; PyErr_Clear(); }
    }
    CHECK_EQ_LONG(0, bad);
    CHECK_EQ_LONG(MISSING, get_long(v));
    leave(c);
    for (int i = 0; i < N; i++) {
        PyContext_Enter(ctx[i]);
        if (get_long(v) != i) bad++;
        PyContext_Exit(ctx[i]);
        Py_DECREF(ctx[i]);
    }
    CHECK_EQ_LONG(0, bad);
    Py_DECREF(v);
}

/* ---- values of every kind ---- */

static int cap_anchor;

TEST(values_of_every_kind_round_trip_by_identity) {
    PyObject *v = PyContextVar_New("v", NULL);
    PyObject *other_var = PyContextVar_New("other", Py_None);
    PyObject *tmp = enter_new();
    PyObject *tok = PyContextVar_Set(other_var, Py_None); /* a token of another context */
    leave(tmp);
    PyObject *vals[] = {
        PyLong_FromLong(0), PyLong_FromLong(-5), PyLong_FromLong(1L << 40), Py_NewRef(Py_None),
        PyUnicode_FromString(""), PyUnicode_FromString("caf\xc3\xa9"),
        PyCapsule_New(&cap_anchor, "var.values", NULL), PyContext_New(),
        Py_NewRef(tok), Py_NewRef(other_var), Py_NewRef(v), Py_NewRef((PyObject *)&PyLong_Type),
    };
    size_t n = sizeof vals / sizeof *vals;
    PyObject *c = enter_new();
    for (size_t i = 0; i < n; i++) {
        PyObject *t = PyContextVar_Set(v, vals[i]);
        CHECK(t != NULL);
        PyObject *got = get_obj(v, NULL);
        CHECK(got == vals[i]);
        Py_XDECREF(got);
        Py_XDECREF(t);
    }
    /* the last one set stays; a few read back with their own API */
    PyObject *t = PyContextVar_Set(v, vals[2]);
    PyObject *got = get_obj(v, NULL);
    CHECK_EQ_LONG(1L << 40, h_long(got));
    Py_XDECREF(got);
    Py_XDECREF(t);
    t = PyContextVar_Set(v, vals[5]);
    got = get_obj(v, NULL);
    CHECK_STR("caf\xc3\xa9", got ? PyUnicode_AsUTF8(got) : NULL);
    Py_XDECREF(got);
    Py_XDECREF(t);
    t = PyContextVar_Set(v, vals[6]);
    got = get_obj(v, NULL);
    CHECK(got && PyCapsule_GetPointer(got, "var.values") == &cap_anchor);
    Py_XDECREF(got);
    Py_XDECREF(t);
    leave(c);
    CHECK_NO_ERROR();
    for (size_t i = 0; i < n; i++) Py_DECREF(vals[i]);
    Py_DECREF(tok);
    Py_DECREF(v);
    Py_DECREF(other_var);
}

TEST(many_vars_in_one_context_are_independent) {
    enum { N = 100 };
    PyObject *vars[N];
    for (int i = 0; i < N; i++) vars[i] = PyContextVar_New("many", NULL);
    PyObject *c = enter_new();
    for (int i = 0; i < N; i += 2) CHECK(set_long(vars[i], i * 10));
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (get_long(vars[i]) != (i % 2 ? MISSING : i * 10)) bad++;
    CHECK_EQ_LONG(0, bad);
    leave(c);
    for (int i = 0; i < N; i++) Py_DECREF(vars[i]);
}

void suite_var(void) {
    RUN(new_var_without_default_get_returns_null_without_error);
    RUN(new_var_with_default_get_returns_that_object);
    RUN(none_default_is_a_real_value);
    RUN(vars_with_the_same_name_are_distinct);
    RUN(valid_utf8_names_are_accepted);
    RUN(invalid_utf8_names_raise_unicode_decode_error);
    RUN(get_precedence_value_then_explicit_then_var_default);
    RUN(get_value_none_beats_defaults);
    RUN(get_returns_new_reference_from_every_source);
    RUN(get_with_wrong_type_var_raises_type_error);
    RUN(get_leaves_the_current_context_alone);
    RUN(set_returns_a_new_token_each_time_even_for_the_same_value);
    RUN(set_overwrites_and_get_sees_latest);
    RUN(set_with_wrong_type_var_raises_type_error);
    RUN(set_and_get_across_enter_exit_and_copies);
    RUN(get_after_context_switch_and_reset_and_other_context_sets);
    RUN(deep_chain_of_copies_each_sees_its_own_value);
    RUN(values_of_every_kind_round_trip_by_identity);
    RUN(many_vars_in_one_context_are_independent);
}
