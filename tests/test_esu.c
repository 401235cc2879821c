/*
 * test_esu.c: SIM's ESU attention (esu/esu_attention.c) against the PyTorch
 * ESU of tests/golden/gen_esu.py, with and without the time embedding:
 * the output within 1e-5, every gradient within 1e-4 (tu_compare_f32), the
 * time buckets exactly, and padding rows receiving no gradient; and the
 * inference path (esu_attention_forward_infer) against the same output and
 * the training forward, within 1e-5 (float sums in another order).
 */
#include "esu/esu_attention.h"
#include "loaders/safetensors.h"
#include "lsim.h"
#include "models/nn.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const st_tensor *need(const st_file *f, const char *prefix, const char *name)
{
    char full[128];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const st_tensor *t = st_find(f, full);
    cr_assert(t, "fixture has no tensor %s", full);
    return t;
}

static void run_case(const char *prefix, int reference)
{
    nn_force_reference(reference);
    const char *root = getenv("LSIM_SOURCE_ROOT");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/tests/golden/esu.safetensors", root ? root : ".");
    st_file *f;
    cr_assert_eq(st_open(&f, path, err, sizeof err), 0, "%s", err);
    const int32_t *dims = need(f, prefix, "dims")->data;
    size_t E = (size_t)dims[0], DT = (size_t)dims[1], Q = (size_t)dims[2], D = (size_t)dims[3], NB = (size_t)dims[4];
    const st_tensor *tel = need(f, prefix, "el");
    size_t B = tel->shape[0], K = tel->shape[1], Z = E + DT;
    const int32_t *len = need(f, prefix, "len")->data, *want_bucket = need(f, prefix, "bucket")->data;
    const int64_t *ts_pad = need(f, prefix, "ts")->data, *now = need(f, prefix, "now")->data;
    const float *el_pad = tel->data;

    param_list pl = {0};
    cr_assert_eq(esu_attention_register(&pl, E, DT, Q, D, NB), 0);
    param_set p, g;
    cr_assert_eq(param_set_init(&p, pl.specs, pl.n), 0);
    cr_assert_eq(param_set_init(&g, pl.specs, pl.n), 0);
    param_list_free(&pl);
    memcpy(param_find(&p, "esu.wa"), need(f, prefix, "wa")->data, need(f, prefix, "wa")->nbytes);
    memcpy(param_find(&p, "esu.wb"), need(f, prefix, "wb")->data, need(f, prefix, "wb")->nbytes);
    if (DT)
        memcpy(param_find(&p, "esu.time_emb"), need(f, prefix, "time_emb")->data,
               need(f, prefix, "time_emb")->nbytes);
    esu_attention u;
    esu_attention_bind(&u, E, DT, Q, D, NB, &p, &g);
    arena a = {0};
    esu_attention_carve(&u, &a, B, B * K);
    void *ws = arena_alloc(&a, a.used);
    esu_attention_carve(&u, &a, B, B * K);

    /* pack the valid rows */
    uint32_t *off = malloc((B + 1) * sizeof *off);
    float *el = calloc(B * K * E, sizeof *el), *del = calloc(B * K * E, sizeof *del);
    int64_t *ts = malloc(B * K * sizeof *ts);
    size_t r = 0;
    for (size_t b = 0; b < B; b++) {
        off[b] = (uint32_t)r;
        for (size_t j = 0; j < (size_t)len[b]; j++, r++) {
            memcpy(el + r * E, el_pad + (b * K + j) * E, E * sizeof(float));
            ts[r] = ts_pad[b * K + j];
        }
    }
    off[B] = (uint32_t)r;

    float *out = malloc(B * Q * Z * sizeof *out), *dea = calloc(B * E, sizeof *dea);
    esu_attention_forward(&u, out, need(f, prefix, "ea")->data, el, ts, now, off, B);
    int bad = tu_compare_f32("out", out, need(f, prefix, "out")->data, B * Q * Z, 1e-5);
    if (DT)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < (size_t)len[b]; j++)
                cr_assert_eq(u.bucket[off[b] + j], (uint32_t)want_bucket[b * K + j], "bucket of sample %zu row %zu", b,
                             j);
    /* the inference path (queries folded through W_b): the same output, summed in another order */
    float *out_inf = malloc(B * Q * Z * sizeof *out_inf), *att = malloc(r * Q * sizeof *att);
    uint32_t *cnt = malloc(B * sizeof *cnt);
    for (size_t b = 0; b < B; b++) cnt[b] = off[b + 1] - off[b];
    esu_attention_forward_infer(&u, out_inf, need(f, prefix, "ea")->data, el, ts, now, off, cnt, B);
    free(cnt);
    memcpy(att, u.att, r * Q * sizeof *att);
    bad += tu_compare_f32("out (inference path)", out_inf, need(f, prefix, "out")->data, B * Q * Z, 1e-5);
    bad += tu_compare_f32("out (inference path against the training forward)", out_inf, out, B * Q * Z, 1e-5);
    esu_attention_forward(&u, out, need(f, prefix, "ea")->data, el, ts, now, off, B); /* for the backward */
    bad += tu_compare_f32("attention weights (inference path)", att, u.att, r * Q, 1e-5);
    free(out_inf);
    free(att);
    esu_attention_backward(&u, dea, del, need(f, prefix, "dout")->data);
    bad += tu_compare_f32("grad.ea", dea, need(f, prefix, "grad.ea")->data, B * E, 1e-4);
    /* unpack del to the padded layout; padded rows must have no gradient */
    float *del_pad = calloc(B * K * E, sizeof *del_pad);
    for (size_t b = 0; b < B; b++)
        memcpy(del_pad + b * K * E, del + off[b] * E, (size_t)len[b] * E * sizeof(float));
    bad += tu_compare_f32("grad.el", del_pad, need(f, prefix, "grad.el")->data, B * K * E, 1e-4);
    bad += tu_compare_f32("grad.wa", param_find(&g, "esu.wa"), need(f, prefix, "grad.wa")->data, Q * D * E, 1e-4);
    bad += tu_compare_f32("grad.wb", param_find(&g, "esu.wb"), need(f, prefix, "grad.wb")->data, Q * D * Z, 1e-4);
    if (DT)
        bad += tu_compare_f32("grad.time_emb", param_find(&g, "esu.time_emb"), need(f, prefix, "grad.time_emb")->data,
                              NB * DT, 1e-4);
    cr_assert_eq(bad, 0, "case %s (%s kernels): %d values differ from PyTorch", prefix,
                 reference ? "reference" : "BLAS", bad);
    free(off);
    free(el);
    free(del);
    free(del_pad);
    free(ts);
    free(out);
    free(dea);
    free(ws);
    param_set_free(&p);
    param_set_free(&g);
    st_close(f);
    nn_force_reference(0);
}

Test(esu, with_time_info_matches_pytorch)
{
    run_case("t.", 0);
    run_case("t.", 1);
}

Test(esu, without_time_info_matches_pytorch)
{
    run_case("n.", 0);
    run_case("n.", 1);
}

Test(esu, time_buckets)
{
    /* floor(log2(1 + minutes)), capped: hand-worked values */
    cr_assert_eq(esu_time_bucket(0, 24), 0);
    cr_assert_eq(esu_time_bucket(59, 24), 0);
    cr_assert_eq(esu_time_bucket(60, 24), 1);      /* 1 minute: log2(2) */
    cr_assert_eq(esu_time_bucket(179, 24), 1);     /* 2 minutes: log2(3) = 1.58 */
    cr_assert_eq(esu_time_bucket(180, 24), 2);     /* 3 minutes: log2(4) */
    cr_assert_eq(esu_time_bucket(86400, 24), 10);  /* a day: 1441 minutes, log2 = 10.49 */
    cr_assert_eq(esu_time_bucket(-5, 24), 0);      /* never negative */
    cr_assert_eq(esu_time_bucket(INT64_MAX, 24), 23);
}
