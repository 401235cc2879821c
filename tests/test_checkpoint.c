/*
 * test_checkpoint.c: checkpoints (esu/model.h).
 *
 * - Checkpoints written by PyTorch (tests/golden/gen_checkpoint.py) load in C
 *   and score a batch as PyTorch did (1e-5).
 * - Save then load gives the same tensors and the same scores.
 * - Bad checkpoints are refused with a message naming the file and what is
 *   wrong: truncated, oversized, wrongly typed, mis-shaped, a tensor missing
 *   or foreign, metadata missing, malformed or of an unknown model.
 */
#include "esu/model.h"
#include "loaders/safetensors.h"
#include "lsim.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *golden(const char *name)
{
    const char *root = getenv("LSIM_SOURCE_ROOT");
    char *p = malloc(1024);
    snprintf(p, 1024, "%s/tests/golden/%s", root ? root : ".", name);
    return p;
}

typedef struct loaded_batch {
    model_batch b;
    uint32_t *u32[8];
} loaded_batch;

static const void *need(const st_file *f, const char *prefix, const char *name, const st_tensor **t)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    const st_tensor *x = st_find(f, full);
    cr_assert(x, "inputs have no %s", full);
    if (t) *t = x;
    return x->data;
}

static uint32_t *u32_of(const st_file *f, const char *prefix, const char *name, size_t *n)
{
    const st_tensor *t;
    const int32_t *src = need(f, prefix, name, &t);
    uint32_t *v = malloc(t->numel * sizeof *v + 1);
    for (size_t i = 0; i < t->numel; i++) v[i] = (uint32_t)src[i];
    if (n) *n = t->numel;
    return v;
}

static void load_batch(loaded_batch *lb, const st_file *f, const char *prefix)
{
    memset(lb, 0, sizeof *lb);
    size_t B, BS, BK;
    model_batch *b = &lb->b;
    b->target_item = lb->u32[0] = u32_of(f, prefix, "target_item", &B);
    b->target_cat = lb->u32[1] = u32_of(f, prefix, "target_cat", NULL);
    b->hist_item = lb->u32[2] = u32_of(f, prefix, "hist_item", &BS);
    b->hist_cat = lb->u32[3] = u32_of(f, prefix, "hist_cat", NULL);
    b->hist_len = lb->u32[4] = u32_of(f, prefix, "hist_len", NULL);
    b->long_item = lb->u32[5] = u32_of(f, prefix, "long_item", &BK);
    b->long_cat = lb->u32[6] = u32_of(f, prefix, "long_cat", NULL);
    b->long_len = lb->u32[7] = u32_of(f, prefix, "long_len", NULL);
    b->long_ts = need(f, prefix, "long_ts", NULL);
    b->now = need(f, prefix, "now", NULL);
    b->b = B;
    b->s = BS / B;
    b->k = BK / B;
}

static void free_batch(loaded_batch *lb)
{
    for (int i = 0; i < 8; i++) free(lb->u32[i]);
}

static void serves_like_pytorch(const char *ckpt, const char *prefix)
{
    char *path = golden(ckpt), *ipath = golden("ckpt_inputs.safetensors"), err[512];
    st_file *in;
    cr_assert_eq(st_open(&in, ipath, err, sizeof err), 0, "%s", err);
    loaded_batch lb;
    load_batch(&lb, in, prefix);
    model *m;
    cr_assert_eq(model_load(&m, path, lb.b.b, lb.b.s, lb.b.k, err, sizeof err), 0, "%s", err);
    float *logits = malloc(lb.b.b * sizeof *logits);
    model_forward(m, &lb.b, logits, 0);
    cr_assert_eq(tu_compare_f32("logits", logits, need(in, prefix, "logits", NULL), lb.b.b, 1e-5), 0,
                 "%s: lsim's scores differ from PyTorch's", ckpt);

    /* save and load again: the same scores */
    char *dir = tu_tmpdir("ckpt"), again[1024];
    snprintf(again, sizeof again, "%s/again.safetensors", dir);
    const char *extra[] = {"note", "round trip", NULL};
    cr_assert_eq(model_save(m, again, extra, err, sizeof err), 0, "%s", err);
    model *m2;
    cr_assert_eq(model_load(&m2, again, lb.b.b, lb.b.s, lb.b.k, err, sizeof err), 0, "%s", err);
    cr_assert_eq(model_get_spec(m2)->kind, model_get_spec(m)->kind);
    float *logits2 = malloc(lb.b.b * sizeof *logits2);
    model_forward(m2, &lb.b, logits2, 0);
    cr_assert_eq(memcmp(logits, logits2, lb.b.b * sizeof *logits), 0, "scores changed across save and load");
    model_free(m2);
    model_free(m);
    free(logits);
    free(logits2);
    free_batch(&lb);
    st_close(in);
    tu_rmrf(dir);
    free(dir);
    free(path);
    free(ipath);
}

Test(checkpoint, pytorch_din_checkpoint_serves_the_same_scores)
{
    serves_like_pytorch("ckpt_din.safetensors", "din");
}

Test(checkpoint, pytorch_sim_soft_checkpoint_serves_the_same_scores)
{
    serves_like_pytorch("ckpt_sim_soft.safetensors", "sim");
}

/* ---- bad checkpoints ---- */

static char *g_dir;

static void setup(void)
{
    g_dir = tu_tmpdir("badckpt");
}

static void teardown(void)
{
    tu_rmrf(g_dir);
    free(g_dir);
}

/* Rewrites the good DIN checkpoint with one change: `mutate` is called for
 * each tensor and may alter its dtype / shape / data or drop it (return 0). */
typedef int (*mutate_fn)(const char *name, st_dtype *dt, size_t *ndim, uint64_t *shape, const void **data,
                         void *scratch);

static char *variant_of(char *good, const char *tag, mutate_fn mutate, const char *drop_meta,
                        const char *set_meta_key, const char *set_meta_val, int add_foreign)
{
    char err[512];
    st_file *f;
    cr_assert_eq(st_open(&f, good, err, sizeof err), 0, "%s", err);
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    for (size_t i = 0; i < st_meta_count(f); i++) {
        const char *k, *v;
        st_meta_at(f, i, &k, &v);
        if (drop_meta && strcmp(k, drop_meta) == 0) continue;
        if (set_meta_key && strcmp(k, set_meta_key) == 0) v = set_meta_val;
        cr_assert_eq(st_writer_meta(w, k, v), 0);
    }
    static double scratch[1 << 16];
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        st_dtype dt = t->dtype;
        size_t ndim = t->ndim;
        uint64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        const void *data = t->data;
        if (mutate && !mutate(t->name, &dt, &ndim, shape, &data, scratch)) continue;
        cr_assert_eq(st_writer_add(w, t->name, dt, ndim, shape, data), 0);
    }
    if (add_foreign) {
        float x[2] = {1, 2};
        uint64_t s = 2;
        cr_assert_eq(st_writer_add(w, "some.other.weight", ST_F32, 1, &s, x), 0);
    }
    char *path = malloc(1024);
    snprintf(path, 1024, "%s/%s.safetensors", g_dir, tag);
    cr_assert_eq(st_writer_write(w, path, err, sizeof err), 0, "%s", err);
    st_writer_free(w);
    st_close(f);
    free(good);
    return path;
}

static char *variant(const char *tag, mutate_fn mutate, const char *drop_meta, const char *set_meta_key,
                     const char *set_meta_val, int add_foreign)
{
    return variant_of(golden("ckpt_din.safetensors"), tag, mutate, drop_meta, set_meta_key, set_meta_val,
                      add_foreign);
}

static void refused(const char *path, int code, const char *must_say)
{
    model *m = (model *)1;
    char err[512] = "";
    int rc = model_load(&m, path, 8, 6, 12, err, sizeof err);
    cr_assert_eq(rc, code, "%s: code %d (%s), want %d; message: %s", path, rc, lsim_strerror(rc), code, err);
    cr_assert_null(m);
    cr_assert(strstr(err, must_say), "message '%s' should say '%s'", err, must_say);
}

static int as_f64(const char *name, st_dtype *dt, size_t *ndim, uint64_t *shape, const void **data, void *scratch)
{
    (void)ndim;
    if (strcmp(name, "att.fc2.weight") != 0) return 1;
    size_t n = (size_t)(shape[0] * shape[1]);
    const float *src = *data;
    double *d = scratch;
    for (size_t i = 0; i < n; i++) d[i] = src[i];
    *dt = ST_F64;
    *data = d;
    return 1;
}

static int transposed(const char *name, st_dtype *dt, size_t *ndim, uint64_t *shape, const void **data, void *scratch)
{
    (void)dt;
    (void)ndim;
    (void)data;
    (void)scratch;
    if (strcmp(name, "mlp.fc1.weight") == 0) {
        uint64_t t = shape[0];
        shape[0] = shape[1];
        shape[1] = t;
    }
    return 1;
}

static int drop_one(const char *name, st_dtype *dt, size_t *ndim, uint64_t *shape, const void **data, void *scratch)
{
    (void)dt;
    (void)ndim;
    (void)shape;
    (void)data;
    (void)scratch;
    return strcmp(name, "mlp.dice1.running_var") != 0;
}

Test(checkpoint, wrongly_typed_tensor_is_refused, .init = setup, .fini = teardown)
{
    char *p = variant("f64", as_f64, NULL, NULL, NULL, 0);
    refused(p, LSIM_E_FORMAT, "att.fc2.weight");
    free(p);
}

Test(checkpoint, misshaped_tensor_is_refused, .init = setup, .fini = teardown)
{
    char *p = variant("shape", transposed, NULL, NULL, NULL, 0);
    refused(p, LSIM_E_FORMAT, "mlp.fc1.weight");
    free(p);
}

Test(checkpoint, missing_and_foreign_tensors_are_refused, .init = setup, .fini = teardown)
{
    char *p = variant("missing", drop_one, NULL, NULL, NULL, 0);
    refused(p, LSIM_E_NOTFOUND, "mlp.dice1.running_var");
    free(p);
    p = variant("foreign", NULL, NULL, NULL, NULL, 1);
    refused(p, LSIM_E_FORMAT, "some.other.weight is not part of a din model");
    free(p);
}

Test(checkpoint, bad_metadata_is_refused, .init = setup, .fini = teardown)
{
    char *p = variant("nometa", NULL, "lsim.mlp_h1", NULL, NULL, 0);
    refused(p, LSIM_E_FORMAT, "lsim.mlp_h1 is missing");
    free(p);
    p = variant("nan", NULL, NULL, "lsim.d_item", "eight", 0);
    refused(p, LSIM_E_FORMAT, "lsim.d_item");
    free(p);
    p = variant("kind", NULL, NULL, "lsim.model", "bert", 0);
    refused(p, LSIM_E_FORMAT, "unknown model 'bert'");
    free(p);
    p = variant("version", NULL, NULL, "lsim.format", "7", 0);
    refused(p, LSIM_E_VERSION, "format 7");
    free(p);
    p = variant("notlsim", NULL, "lsim.model", NULL, NULL, 0);
    refused(p, LSIM_E_FORMAT, "not an lsim checkpoint");
    free(p);
    /* metadata that disagrees with the tensors: the widths say 9, the tensors have 8 */
    p = variant("disagree", NULL, NULL, "lsim.d_item", "9", 0);
    refused(p, LSIM_E_FORMAT, "emb.item");
    free(p);
}

/* MIMN's keys: each required, in range, miu_k within the slots, and the tensors fit them. */
Test(checkpoint, bad_mimn_metadata_is_refused, .init = setup, .fini = teardown)
{
    model_spec spec;
    model_spec_default(&spec, MODEL_MIMN, 20, 4);
    model *m;
    cr_assert_eq(model_new(&m, &spec, 8, 6, 12), 0);
    char base[1024], err[512];
    snprintf(base, sizeof base, "%s/mimn.safetensors", g_dir);
    cr_assert_eq(model_save(m, base, NULL, err, sizeof err), 0, "%s", err);
    model_free(m);
    static const char *const keys[] = {"lsim.mem_slots", "lsim.d_ctrl", "lsim.miu_k", "lsim.bptt", "lsim.util_reg"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *p = variant_of(strdup(base), "mimn-drop", NULL, keys[i], NULL, NULL, 0), want[64];
        snprintf(want, sizeof want, "%s is missing", keys[i]);
        refused(p, LSIM_E_FORMAT, want);
        free(p);
    }
    char *p = variant_of(strdup(base), "mimn-k", NULL, NULL, "lsim.miu_k", "5", 0);
    refused(p, LSIM_E_FORMAT, "lsim.miu_k is 5, more than lsim.mem_slots (4)");
    free(p);
    p = variant_of(strdup(base), "mimn-zero", NULL, NULL, "lsim.mem_slots", "0", 0);
    refused(p, LSIM_E_FORMAT, "lsim.mem_slots");
    free(p);
    p = variant_of(strdup(base), "mimn-neg", NULL, NULL, "lsim.util_reg", "-0.5", 0);
    refused(p, LSIM_E_FORMAT, "lsim.util_reg");
    free(p);
    p = variant_of(strdup(base), "mimn-slots", NULL, NULL, "lsim.mem_slots", "5", 0); /* the tensors have 4 */
    refused(p, LSIM_E_FORMAT, "mimn.key_m");
    free(p);
    p = variant_of(strdup(base), "mimn-ok", NULL, NULL, NULL, NULL, 0);
    cr_assert_eq(model_load(&m, p, 8, 6, 12, err, sizeof err), 0, "%s", err);
    cr_assert_eq(model_get_spec(m)->kind, MODEL_MIMN);
    cr_assert_eq(model_get_spec(m)->bptt, 30);
    cr_assert_not_null(model_mimn(m));
    model_free(m);
    free(p);
}

/* SIM's recency keys: the category part needs the recency input, the search's bias needs time info, and each
 * key brings its tensor (esu.recency_cat, gsu.time_bias). */
Test(checkpoint, bad_recency_metadata_is_refused, .init = setup, .fini = teardown)
{
    model_spec spec;
    model_spec_default(&spec, MODEL_SIM_SOFT, 20, 4);
    model_spec_time_info(&spec, 1, MODEL_RECENCY_ALL);
    cr_assert(spec.recency && spec.recency_cat && spec.gsu_recency);
    model *m;
    cr_assert_eq(model_new(&m, &spec, 8, 6, 12), 0);
    char base[1024], err[512];
    snprintf(base, sizeof base, "%s/simrec.safetensors", g_dir);
    cr_assert_eq(model_save(m, base, NULL, err, sizeof err), 0, "%s", err);
    model_free(m);
    char *p = variant_of(strdup(base), "rec-cat", NULL, NULL, "lsim.recency", "0", 0);
    refused(p, LSIM_E_FORMAT, "lsim.recency_cat is 1 but lsim.recency is 0");
    free(p);
    p = variant_of(strdup(base), "rec-time", NULL, NULL, "lsim.d_time", "0", 0);
    refused(p, LSIM_E_FORMAT, "lsim.d_time is 0");
    free(p);
    p = variant_of(strdup(base), "rec-bias", NULL, NULL, "lsim.gsu_recency", "2", 0);
    refused(p, LSIM_E_FORMAT, "lsim.gsu_recency");
    free(p);
    p = variant_of(strdup(base), "rec-nobias", NULL, "lsim.gsu_recency", NULL, NULL, 0); /* absent: 0, no tensor */
    refused(p, LSIM_E_FORMAT, "gsu.time_bias is not part of a sim-soft model");
    free(p);
    p = variant_of(strdup(base), "rec-ok", NULL, NULL, NULL, NULL, 0);
    cr_assert_eq(model_load(&m, p, 8, 6, 12, err, sizeof err), 0, "%s", err);
    cr_assert(model_get_spec(m)->recency_cat && model_get_spec(m)->gsu_recency);
    model_free(m);
    free(p);
}

Test(checkpoint, truncated_and_oversized_files_are_refused, .init = setup, .fini = teardown)
{
    char *good = golden("ckpt_din.safetensors");
    FILE *f = fopen(good, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *bytes = malloc((size_t)size + 64);
    cr_assert_eq(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    char path[1024];
    snprintf(path, sizeof path, "%s/cut.safetensors", g_dir);
    /* cut at many lengths: header, mid-header, mid-data, one byte short */
    long cuts[] = {0, 4, 8, 20, 100, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(tu_write_file(path, bytes, (size_t)cuts[i]), 0);
        refused(path, LSIM_E_CORRUPT, "cut.safetensors: corrupt checkpoint: ");
    }
    /* trailing bytes */
    memset(bytes + size, 0, 64);
    cr_assert_eq(tu_write_file(path, bytes, (size_t)size + 16), 0);
    refused(path, LSIM_E_CORRUPT, "cut.safetensors: corrupt checkpoint: ");
    /* a header length larger than the file */
    uint64_t huge = (uint64_t)size * 4;
    memcpy(bytes, &huge, 8);
    cr_assert_eq(tu_write_file(path, bytes, (size_t)size), 0);
    refused(path, LSIM_E_CORRUPT, "cut.safetensors: corrupt checkpoint: ");
    free(bytes);
    free(good);
}

Test(checkpoint, missing_file_is_refused, .init = setup, .fini = teardown)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/none.safetensors", g_dir);
    refused(path, LSIM_E_IO, "none.safetensors");
}

/* Every kind: a fresh model saved and loaded scores a batch identically and
 * keeps its hyperparameters. */
Test(checkpoint, every_kind_round_trips)
{
    char *dir = tu_tmpdir("ckptkinds"), path[1024], err[512];
    const size_t B = 6, S = 7, K = 9;
    uint32_t ti[6], tc[6], hi[42], hc[42], hl[6] = {0, 1, 7, 3, 5, 2}, li[54], lc[54], ll[6] = {9, 0, 3, 9, 1, 5};
    uint32_t ni[42], nc[42];
    int64_t hts[42], lts[54], now[6];
    uint64_t seed = 5;
    for (size_t i = 0; i < 42; i++) {
        hi[i] = (uint32_t)(tu_rand(&seed) % 25);
        hc[i] = (uint32_t)(tu_rand(&seed) % 5);
        ni[i] = (uint32_t)(tu_rand(&seed) % 25);
        nc[i] = (uint32_t)(tu_rand(&seed) % 5);
    }
    for (size_t b = 0; b < B; b++) {
        ti[b] = (uint32_t)(tu_rand(&seed) % 25);
        tc[b] = (uint32_t)(tu_rand(&seed) % 5);
        now[b] = 1500000000;
        for (size_t j = 0; j < S; j++) hts[b * S + j] = 1499990000 + (int64_t)(j * 1000);
        for (size_t j = 0; j < K; j++) lts[b * K + j] = 1490000000 + (int64_t)(j * 5000);
    }
    for (size_t i = 0; i < 54; i++) {
        li[i] = (uint32_t)(tu_rand(&seed) % 25);
        lc[i] = (uint32_t)(tu_rand(&seed) % 5);
    }
    model_batch bt = {.b = B, .target_item = ti, .target_cat = tc, .s = S, .hist_item = hi, .hist_cat = hc,
                      .hist_len = hl, .hist_ts = hts, .hist_neg_item = ni, .hist_neg_cat = nc, .k = K,
                      .long_item = li, .long_cat = lc, .long_ts = lts, .long_len = ll, .now = now};
    size_t all_off[6] = {0, 2, 10, 0, 30, 40};
    uint32_t all_len[6] = {0, 5, 20, 54, 10, 14};
    bt.all_item = li, bt.all_cat = lc, bt.all_off = all_off, bt.all_len = all_len; /* MIMN's whole histories */
    for (int kb = MODEL_DIN; kb <= MODEL_SIM_SOFT + 6; kb++) {
        /* the kinds up to SIM soft, then SIM hard and soft again with the DIEN and the DSIN branch, then BST, MIMN */
        int k = kb <= MODEL_SIM_SOFT     ? kb
                : kb == MODEL_SIM_SOFT + 5 ? MODEL_BST
                : kb == MODEL_SIM_SOFT + 6 ? MODEL_MIMN
                : (kb - MODEL_SIM_SOFT - 1) % 2 ? MODEL_SIM_SOFT
                                              : MODEL_SIM_HARD;
        model_spec spec;
        model_spec_default(&spec, (model_kind)k, 20, 4);
        spec.base.mlp_h1 = 12;
        spec.base.mlp_h2 = 6;
        if (k == MODEL_MIMN) spec.mem_slots = 3, spec.miu_k = 2, spec.bptt = 7, spec.util_reg = 0.25f, spec.d_ctrl = 11;
        if (kb > MODEL_SIM_SOFT && k != MODEL_BST && k != MODEL_MIMN)
            spec.short_branch = kb - MODEL_SIM_SOFT <= 2 ? SIM_BRANCH_DIEN : SIM_BRANCH_DSIN;
        model *m, *m2;
        cr_assert_eq(model_new(&m, &spec, B, S, K), 0, "%s", model_kind_name((model_kind)k));
        model_init(m, 42);
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, model_kind_name((model_kind)k));
        cr_assert_eq(model_save(m, path, NULL, err, sizeof err), 0, "%s", err);
        cr_assert_eq(model_load(&m2, path, B, S, K, err, sizeof err), 0, "%s", err);
        cr_assert_eq(memcmp(model_get_spec(m2), model_get_spec(m), sizeof(model_spec)), 0, "%s: spec changed",
                     model_kind_name((model_kind)k));
        float a[6], b2[6];
        model_forward(m, &bt, a, 0);
        model_forward(m2, &bt, b2, 0);
        cr_assert_eq(memcmp(a, b2, sizeof a), 0, "%s: scores changed across save and load",
                     model_kind_name((model_kind)k));
        for (size_t i = 0; i < B; i++) cr_assert(isfinite(a[i]), "%s: a non-finite score", model_kind_name((model_kind)k));
        model_free(m);
        model_free(m2);
    }
    tu_rmrf(dir);
    free(dir);
}
