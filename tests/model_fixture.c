/*
 * model_fixture.c: see model_fixture.h.
 */
#include "tests/model_fixture.h"

#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

st_file *mf_open(const char *file)
{
    const char *root = getenv("LSIM_SOURCE_ROOT");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/tests/golden/%s", root ? root : ".", file);
    st_file *f = NULL;
    cr_assert_eq(st_open(&f, path, err, sizeof err), 0, "%s", err);
    return f;
}

const st_tensor *mf_need(const st_file *f, const char *prefix, const char *name)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const st_tensor *t = st_find(f, full);
    cr_assert(t, "fixture has no tensor %s", full);
    return t;
}

uint32_t *mf_ids(const st_file *f, const char *prefix, const char *name, size_t *n)
{
    const st_tensor *t = mf_need(f, prefix, name);
    cr_assert_eq(t->dtype, ST_I32, "%s%s: want I32", prefix, name);
    uint32_t *v = malloc(t->numel * sizeof *v + 1);
    const int32_t *src = t->data;
    for (size_t i = 0; i < t->numel; i++) v[i] = (uint32_t)src[i];
    if (n) *n = t->numel;
    return v;
}

int mf_compare(const char *what, const float *got, const st_tensor *want, double tol)
{
    cr_assert_eq(want->dtype, ST_F32, "%s: fixture dtype", what);
    return tu_compare_f32(what, got, want->data, want->numel, tol);
}

void mf_load(param_set *ps, const st_file *f, const char *prefix, const char *sub)
{
    for (size_t i = 0; i < ps->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s%s", sub, ps->specs[i].name);
        const st_tensor *t = mf_need(f, prefix, name);
        cr_assert(t->dtype == ST_F32 && t->numel == ps->numel[i], "dtype or shape of %s%s", prefix, name);
        memcpy(ps->ptr[i], t->data, t->nbytes);
    }
}

static int check_set(const param_set *ps, const st_file *f, const char *prefix, const char *sub, double tol)
{
    int bad = 0;
    for (size_t i = 0; i < ps->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s%s", sub, ps->specs[i].name);
        bad += mf_compare(name, ps->ptr[i], mf_need(f, prefix, name), tol);
    }
    return bad;
}

int mf_check_step(const param_set *grads, const param_set *buffers, const st_file *f, const char *prefix)
{
    return check_set(grads, f, prefix, "grad.", MF_TOL_GRAD) + check_set(buffers, f, prefix, "after.", MF_TOL_FWD);
}

static const st_tensor *maybe(const st_file *f, const char *prefix, const char *name)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return st_find(f, full);
}

void mf_batch(model_batch *bt, mf_batch_mem *mem, const st_file *f, const char *prefix)
{
    memset(bt, 0, sizeof *bt);
    memset(mem, 0, sizeof *mem);
    size_t b, bs, bk;
    bt->target_item = mem->ids[0] = mf_ids(f, prefix, "target_item", &b);
    bt->target_cat = mem->ids[1] = mf_ids(f, prefix, "target_cat", NULL);
    bt->hist_item = mem->ids[2] = mf_ids(f, prefix, "hist_item", &bs);
    bt->hist_cat = mem->ids[3] = mf_ids(f, prefix, "hist_cat", NULL);
    bt->hist_len = mem->ids[4] = mf_ids(f, prefix, "hist_len", NULL);
    bt->b = b;
    bt->s = bs / b;
    const st_tensor *t;
    if ((t = maybe(f, prefix, "hist_ts"))) {
        cr_assert_eq(t->dtype, ST_I64);
        bt->hist_ts = t->data;
    }
    if (maybe(f, prefix, "hist_neg_item")) {
        bt->hist_neg_item = mem->ids[5] = mf_ids(f, prefix, "hist_neg_item", NULL);
        bt->hist_neg_cat = mem->ids[6] = mf_ids(f, prefix, "hist_neg_cat", NULL);
    }
    if (maybe(f, prefix, "long_item")) {
        bt->long_item = mem->ids[7] = mf_ids(f, prefix, "long_item", &bk);
        bt->long_cat = mem->ids[8] = mf_ids(f, prefix, "long_cat", NULL);
        bt->long_len = mem->ids[9] = mf_ids(f, prefix, "long_len", NULL);
        bt->k = bk / b;
    }
    if ((t = maybe(f, prefix, "long_ts"))) {
        cr_assert_eq(t->dtype, ST_I64);
        bt->long_ts = t->data;
    }
    if ((t = maybe(f, prefix, "now"))) {
        cr_assert_eq(t->dtype, ST_I64);
        bt->now = t->data;
    }
    if ((t = maybe(f, prefix, "label"))) {
        cr_assert_eq(t->dtype, ST_F32);
        bt->label = t->data;
    }
}

void mf_batch_free(mf_batch_mem *mem)
{
    for (size_t i = 0; i < sizeof mem->ids / sizeof mem->ids[0]; i++) free(mem->ids[i]);
    memset(mem, 0, sizeof *mem);
}
