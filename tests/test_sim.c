/*
 * test_sim.c: the C SIM against the PyTorch SIM of tests/golden/gen_sim.py
 * (hard-search GSU with time info; soft-search GSU with and without) and of
 * gen_sim_branches.py (a DIEN or a DSIN short-term branch), and the GSU's
 * top-K choice against PyTorch's.
 *
 * For each case of din.safetensors: load the weights and buffers, run a
 * training forward on the same batch (logits and loss within 1e-5 relative),
 * a backward (every parameter gradient within 1e-4 relative), compare the
 * running statistics after the step and an inference-mode forward; then the
 * same on the plain C reference kernels (nn_force_reference), which must
 * agree with the BLAS path. Tolerances as tu_compare_f32 applies them
 * (relative to each value, floored at 1% of the tensor's scale and 1e-6:
 * gradients that are zero in exact arithmetic, like the last bias before a
 * softmax, come out as float32 noise near 1e-10 in both implementations).
 */
#include "loaders/safetensors.h"
#include "lsim.h"
#include "esu/sim.h"
#include "gsu/soft_search.h"
#include "models/nn.h"
#include "tests/model_fixture.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>






static void run_case(const char *file, const char *prefix, sim_gsu_mode gsu, int reference)
{
    nn_force_reference(reference);
    st_file *f = mf_open(file);
    const int32_t *dims = mf_need(f, prefix, "dims")->data;
    const st_tensor *ei = mf_need(f, prefix, "emb.item"), *ec = mf_need(f, prefix, "emb.cat");
    sim_config cfg;
    sim_config_default(&cfg, (uint32_t)ei->shape[0] - 1, (uint32_t)ec->shape[0] - 1, gsu, dims[8] > 0);
    cfg.base.d_item = (uint32_t)dims[0];
    cfg.base.d_cat = (uint32_t)dims[1];
    cfg.base.att_h1 = (uint32_t)dims[2];
    cfg.base.att_h2 = (uint32_t)dims[3];
    cfg.base.mlp_h1 = (uint32_t)dims[4];
    cfg.base.mlp_h2 = (uint32_t)dims[5];
    cfg.heads = (uint32_t)dims[6];
    cfg.d_head = (uint32_t)dims[7];
    cfg.d_time = (uint32_t)dims[8];
    cfg.gsu_d = (uint32_t)dims[9];
    cfg.topk = (uint32_t)dims[10];
    const st_tensor *dt = mf_need(f, prefix, "dims");
    if (dt->numel > 11) { /* a DIEN or DSIN short-term branch */
        cfg.branch = (sim_branch_kind)dims[11];
        cfg.dsin.max_sessions = (uint32_t)dims[12];
        cfg.dsin.session_len = (uint32_t)dims[13];
        cfg.dsin.heads = (uint32_t)dims[14];
        cfg.dsin.d_ffn = (uint32_t)dims[15];
        cfg.dsin.d_lstm = (uint32_t)dims[16];
        cfg.dsin.min_session_len = (uint32_t)dims[17];
    }
    if (dt->numel > 18) cfg.recency = (uint32_t)dims[18]; /* the head's recency input */
    if (dt->numel > 19) cfg.gsu_softmax = (uint32_t)dims[19]; /* the GSU's softmax pooling */
    if (dt->numel > 20) cfg.recency_cat = (uint32_t)dims[20]; /* the recency input's target-category part */
    if (dt->numel > 21) cfg.gsu_recency = (uint32_t)dims[21]; /* the search's recency bias */

    model_batch bt;
    mf_batch_mem mem;
    mf_batch(&bt, &mem, f, prefix);
    size_t B = bt.b;

    sim *m;
    cr_assert_eq(sim_new(&m, &cfg, B, bt.s, bt.k), 0);
    param_set *p = sim_params(m), *g = sim_grads(m), *bufs = sim_buffers(m);
    mf_load(p, f, prefix, "");
    mf_load(bufs, f, prefix, "init.");
    int bad = 0;
    float *logits = malloc(B * sizeof *logits);
    float loss = sim_forward(m, &bt, logits, 1);
    /* the GSU kept the same behaviors as PyTorch */
    const st_tensor *kept = mf_need(f, prefix, "kept");
    const int32_t *kp = kept->data;
    for (size_t b = 0; b < B; b++) {
        const uint32_t *rows;
        size_t n = sim_selected(m, b, &rows);
        size_t want = 0;
        while (want < kept->shape[1] && kp[b * kept->shape[1] + want] >= 0) want++;
        cr_assert_eq(n, want, "sample %zu: %zu behaviors kept, PyTorch kept %zu", b, n, want);
        for (size_t j = 0; j < n; j++)
            cr_assert_eq(rows[j], (uint32_t)kp[b * kept->shape[1] + j], "sample %zu: kept position %zu", b, j);
    }
    bad += mf_compare("logits", logits, mf_need(f, prefix, "logits"), MF_TOL_FWD);
    bad += mf_compare("loss", &loss, mf_need(f, prefix, "loss"), MF_TOL_FWD);
    param_set_zero(g);
    sim_backward(m, &bt);
    bad += mf_check_step(g, bufs, f, prefix);
    sim_forward(m, &bt, logits, 0);
    bad += mf_compare("logits_eval", logits, mf_need(f, prefix, "logits_eval"), MF_TOL_FWD);
    cr_assert_eq(bad, 0, "case %s (%s kernels): %d values differ from PyTorch", prefix,
                 reference ? "reference" : "BLAS", bad);
    free(logits);
    sim_free(m);
    mf_batch_free(&mem);
    st_close(f);
    nn_force_reference(0);
}

Test(sim, hard_search_with_time_info_matches_pytorch)
{
    run_case("sim.safetensors", "h.", SIM_GSU_HARD, 0);
    run_case("sim.safetensors", "h.", SIM_GSU_HARD, 1);
}

Test(sim, soft_search_with_time_info_matches_pytorch)
{
    run_case("sim.safetensors", "s.", SIM_GSU_SOFT, 0);
    run_case("sim.safetensors", "s.", SIM_GSU_SOFT, 1);
}

Test(sim, soft_search_without_time_info_matches_pytorch)
{
    run_case("sim.safetensors", "n.", SIM_GSU_SOFT, 0);
    run_case("sim.safetensors", "n.", SIM_GSU_SOFT, 1);
}

Test(sim, hard_search_with_the_recency_input_matches_pytorch)
{
    run_case("sim.safetensors", "r.", SIM_GSU_HARD, 0);
    run_case("sim.safetensors", "r.", SIM_GSU_HARD, 1);
}

Test(sim, soft_search_with_softmax_pooling_and_the_recency_input_matches_pytorch)
{
    run_case("sim.safetensors", "q.", SIM_GSU_SOFT, 0);
    run_case("sim.safetensors", "q.", SIM_GSU_SOFT, 1);
}

Test(sim, hard_search_with_the_target_category_recency_matches_pytorch)
{
    run_case("sim.safetensors", "c.", SIM_GSU_HARD, 0);
    run_case("sim.safetensors", "c.", SIM_GSU_HARD, 1);
}

Test(sim, soft_search_with_its_recency_bias_and_the_category_recency_matches_pytorch)
{
    run_case("sim.safetensors", "t.", SIM_GSU_SOFT, 0);
    run_case("sim.safetensors", "t.", SIM_GSU_SOFT, 1);
}

Test(sim, soft_search_with_a_dien_branch_matches_pytorch)
{
    run_case("sim_branches.safetensors", "sd.", SIM_GSU_SOFT, 0);
    run_case("sim_branches.safetensors", "sd.", SIM_GSU_SOFT, 1);
}

Test(sim, hard_search_with_a_dsin_branch_matches_pytorch)
{
    run_case("sim_branches.safetensors", "ss.", SIM_GSU_HARD, 0);
    run_case("sim_branches.safetensors", "ss.", SIM_GSU_HARD, 1);
}

/* Runs bt through m's inference path, then through the general one
 * (nn_force_reference(1)): the behaviors kept must be the same, the scores and
 * the attention equal to 1e-4 (the same sums in another order). grp: samples
 * sharing rows (model_batch.long_group), whose attention is the group's last
 * sample's: only that one is compared; NULL: every sample. */
static void fast_equals_reference(sim *m, const model_batch *bt, const uint32_t *grp, const char *what)
{
    size_t B = bt->b;
    float fast[25], ref[25], wf[25][8], wr[8];
    uint32_t kept[25][8];
    size_t nkept[25];
    cr_assert(B <= 25);
    sim_forward(m, bt, fast, 0);
    for (size_t b = 0; b < B; b++) {
        const uint32_t *rows;
        nkept[b] = sim_selected(m, b, &rows);
        cr_assert(nkept[b] <= 8);
        memcpy(kept[b], rows, nkept[b] * sizeof *rows);
        sim_attention(m, b, wf[b]);
    }
    nn_force_reference(1);
    sim_forward(m, bt, ref, 0);
    nn_force_reference(0);
    for (size_t b = 0; b < B; b++) {
        const uint32_t *rows;
        cr_assert_eq(sim_selected(m, b, &rows), nkept[b]);
        cr_assert_eq(memcmp(rows, kept[b], nkept[b] * sizeof *rows), 0, "%s, candidate %zu: other behaviors kept",
                     what, b);
        sim_attention(m, b, wr);
        size_t last = b;
        for (size_t c = b + 1; grp && c < B; c++)
            if (grp[c] == grp[b]) last = c;
        if (last == b)
            cr_assert_eq(tu_compare_f32("attention", wf[b], wr, nkept[b], 1e-4), 0, "%s, candidate %zu", what, b);
    }
    cr_assert_eq(tu_compare_f32("logits", fast, ref, B, 1e-4), 0, "%s: the inference path differs", what);
}

/* One request: every candidate has the same history and long sequence. At
 * inference the GSU then scores the sequence once (soft_gsu_score_shared)
 * and the DIN branch takes its shared path; scores and the behaviors kept
 * must equal the general path's (nn_force_reference(1) selects it). */
/* A small SIM (300 items, 20 categories, time info, topk 8) for requests of
 * 25 candidates, histories of 12 and long lists of k. */
static sim *request_sim(sim_gsu_mode gsu, size_t k, uint64_t init_seed)
{
    sim_config cfg;
    sim_config_default(&cfg, 300, 20, gsu, 1);
    cfg.topk = 8;
    sim *m;
    cr_assert_eq(sim_new(&m, &cfg, 25, 12, k), 0);
    sim_init(m, init_seed);
    return m;
}

static void shared_request_case(sim_gsu_mode gsu)
{
    const size_t B = 25, S = 12, K = 60;
    sim *m = request_sim(gsu, K, 4);
    param_set *p = sim_params(m);
    uint64_t seed = 17;
    for (size_t i = 0; i < p->n; i++)
        if (strncmp(p->specs[i].name, "emb.", 4) == 0)
            for (size_t j = 0; j < p->numel[i]; j++)
                p->ptr[i][j] = (float)((double)(tu_rand(&seed) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    static uint32_t ti[25], tc[25], hi[25 * 12], hc[25 * 12], hl[25], li[25 * 60], lc[25 * 60], ll[25];
    static int64_t lts[25 * 60], now[25];
    for (size_t b = 0; b < B; b++) {
        ti[b] = (uint32_t)(tu_rand(&seed) % 310);
        tc[b] = (uint32_t)(tu_rand(&seed) % 21);
        hl[b] = 10;
        ll[b] = 55;
        now[b] = 1600000000;
        for (size_t j = 0; j < S; j++) {
            hi[b * S + j] = b ? hi[j] : (uint32_t)(tu_rand(&seed) % 300);
            hc[b * S + j] = b ? hc[j] : (uint32_t)(tu_rand(&seed) % 20);
        }
        for (size_t j = 0; j < K; j++) {
            li[b * K + j] = b ? li[j] : (uint32_t)(tu_rand(&seed) % 300);
            lc[b * K + j] = b ? lc[j] : (uint32_t)(tu_rand(&seed) % 20);
            lts[b * K + j] = 1500000000 + (int64_t)j * 100000;
        }
    }
    model_batch bt = {.b = B, .target_item = ti, .target_cat = tc, .s = S, .hist_item = hi, .hist_cat = hc,
                      .hist_len = hl, .k = K, .long_item = li, .long_cat = lc, .long_ts = lts, .long_len = ll,
                      .now = now};
    fast_equals_reference(m, &bt, NULL, gsu == SIM_GSU_SOFT ? "shared request, soft" : "shared request, hard");
    sim_free(m);
}

Test(sim, shared_request_path_equals_the_general_path)
{
    shared_request_case(SIM_GSU_SOFT);
    shared_request_case(SIM_GSU_HARD);
}

/* SIM hard at serving: candidates of one category share their long list
 * (model_batch.long_group), which the model embeds once and attends over in
 * place; scores, the behaviors kept and their attention must equal the
 * general path's (nn_force_reference(1)), lists longer than topk included. */
Test(sim, grouped_long_lists_equal_the_general_path)
{
    const size_t B = 25, S = 12, K = 10;
    sim *m = request_sim(SIM_GSU_HARD, K, 5);
    uint64_t seed = 23;
    static uint32_t ti[25], tc[25], hi[25 * 12], hc[25 * 12], hl[25], li[25 * 10], lc[25 * 10], ll[25], grp[25];
    static int64_t lts[25 * 10], now[25];
    for (size_t b = 0; b < B; b++) {
        ti[b] = (uint32_t)(tu_rand(&seed) % 310);
        grp[b] = (uint32_t)(b % 3 == 0 ? b : b % 4); /* groups of several samples, and samples alone */
        tc[b] = grp[b];
        hl[b] = 9;
        now[b] = 1600000000;
        for (size_t j = 0; j < S; j++) {
            hi[b * S + j] = b ? hi[j] : (uint32_t)(tu_rand(&seed) % 300);
            hc[b * S + j] = b ? hc[j] : (uint32_t)(tu_rand(&seed) % 20);
        }
    }
    for (size_t b = 0; b < B; b++) { /* a group's list is its first sample's */
        size_t g0 = 0;
        while (grp[g0] != grp[b]) g0++;
        ll[b] = g0 < b ? ll[g0] : (uint32_t)(tu_rand(&seed) % (K + 1));
        for (size_t j = 0; j < K; j++) {
            li[b * K + j] = g0 < b ? li[g0 * K + j] : (uint32_t)(tu_rand(&seed) % 300);
            lc[b * K + j] = grp[b];
            lts[b * K + j] = g0 < b ? lts[g0 * K + j] : 1500000000 + (int64_t)j * 100000;
        }
    }
    model_batch bt = {.b = B, .target_item = ti, .target_cat = tc, .s = S, .hist_item = hi, .hist_cat = hc,
                      .hist_len = hl, .k = K, .long_item = li, .long_cat = lc, .long_ts = lts, .long_len = ll,
                      .now = now, .hist_shared = 1, .long_group = grp};
    fast_equals_reference(m, &bt, grp, "grouped long lists");
    sim_free(m);
}

/* The GSU's top-K against a brute-force ranking: scores from a small set of
 * values (many ties, negatives, -0 beside +0), samples shorter than, equal
 * to and longer than k, and empty ones. Brute force: every row of the sample
 * ranked by (score, row) descending, the first k, in row order. */
static uint32_t lcg_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

Test(sim, soft_topk_equals_a_brute_force_ranking)
{
    static const float values[] = {-3.5f, -1.0f, -0.0f, 0.0f, 0.25f, 1.0f, 2.0f, 1e-30f, -1e30f, 7.0f};
    enum { B = 60, MAXN = 300 };
    uint32_t seed = 7, off[B + 1], sel_off[B + 1], rows[B * MAXN], want[MAXN], idx[MAXN];
    uint64_t scratch[64];
    float *score = tu_floats(B * MAXN);
    for (size_t k = 1; k <= 64; k = k * 3 + 1) {
        off[0] = 0;
        for (size_t b = 0; b < B; b++) {
            size_t n = b % 7 == 0 ? 0 : b % 5 == 0 ? k : lcg_next(&seed) % MAXN;
            off[b + 1] = off[b] + (uint32_t)n;
        }
        for (size_t r = 0; r < off[B]; r++) score[r] = values[lcg_next(&seed) % 10];
        size_t got = soft_gsu_topk(sel_off, rows, scratch, score, off, B, k);
        size_t total = 0;
        for (size_t b = 0; b < B; b++) {
            size_t lo = off[b], n = off[b + 1] - lo, m = n < k ? n : k;
            for (size_t j = 0; j < n; j++) idx[j] = (uint32_t)(lo + j);
            for (size_t j = 0; j < m; j++) /* selection: the best remaining by (score, row) */
                for (size_t t = j + 1; t < n; t++) {
                    float a = score[idx[t]], c = score[idx[j]];
                    if (a > c || (a == c && idx[t] > idx[j])) {
                        uint32_t x = idx[j];
                        idx[j] = idx[t];
                        idx[t] = x;
                    }
                }
            for (size_t j = 0; j < m; j++) want[j] = idx[j];
            for (size_t j = 1; j < m; j++) /* row order */
                for (size_t t = j; t > 0 && want[t - 1] > want[t]; t--) {
                    uint32_t x = want[t];
                    want[t] = want[t - 1];
                    want[t - 1] = x;
                }
            cr_assert_eq(sel_off[b], total, "k %zu sample %zu: offset", k, b);
            cr_assert_eq(sel_off[b + 1] - sel_off[b], m, "k %zu sample %zu: %u rows kept, want %zu", k, b,
                         sel_off[b + 1] - sel_off[b], m);
            for (size_t j = 0; j < m; j++)
                cr_assert_eq(rows[total + j], want[j], "k %zu sample %zu: kept row %u at %zu, want %u", k, b,
                             rows[total + j], j, want[j]);
            total += m;
        }
        cr_assert_eq(got, total);
    }
    free(score);
}
